//! The employee self-service portal (PIPL: the right to know, access and
//! copy): an employee account sees its own day as admins see it, who viewed
//! its data and when, and downloads everything collected about it as a ZIP
//! of JSON files. There is no parameter naming another person.

use super::admin::activity::{self, ActivitySummary};
use super::auth::AdminSession;
use super::{ApiError, AppState, State};
use crate::company_time::{date_at, day_bounds, parse_date, parse_tz};
use crate::roles::Perm;
use crate::store::{AccessEntry, ConsentRecord, Employee, EventQuery, StoredEvent};
use axum::extract::Query;
use axum::http::header;
use axum::response::{IntoResponse, Response};
use axum::Json;
use candor_proto::now_ms;
use serde::{Deserialize, Serialize};
use std::io::Write;
use std::sync::Arc;

/// Events in one export at most (a year of a busy desktop is well below).
const EXPORT_MAX_EVENTS: usize = 2_000_000;
const PAGE: u32 = 10_000;

/// The employee behind this account and the endpoints that carry their data.
async fn me(state: &Arc<AppState>, session: &AdminSession) -> Result<(Employee, Vec<u64>), ApiError> {
    session.require(Perm::OwnData)?;
    let name = session.0.username.clone();
    let employees = state.db(|s| s.employees()).await?;
    let e = employees
        .into_iter()
        .find(|e| e.username.as_deref() == Some(name.as_str()))
        .ok_or_else(|| ApiError::forbidden("this account is not linked to an employee"))?;
    let mine = super::admin::agents_of(&state.db(|s| s.agents()).await?, &e);
    Ok((e, mine))
}

#[derive(Deserialize)]
pub struct DayParam {
    date: Option<String>,
}

#[derive(Serialize)]
pub struct MyDay {
    employee: Employee,
    date: String,
    day_start_ms: i64,
    day_end_ms: i64,
    events: Vec<StoredEvent>,
    truncated: bool,
    activity: ActivitySummary,
    consents: Vec<ConsentRecord>,
}

pub async fn day(state: State, session: AdminSession, Query(p): Query<DayParam>) -> Result<Json<MyDay>, ApiError> {
    let (employee, agents) = me(&state, &session).await?;
    let tz = parse_tz(&state.config.console.timezone).map_err(ApiError::internal)?;
    let date = match &p.date {
        Some(d) => parse_date(d).map_err(ApiError::bad_request)?,
        None => date_at(tz, now_ms()),
    };
    let (start, end) = day_bounds(tz, date);
    let q = EventQuery { scope: Some(agents.clone()), from_ms: start, to_ms: end, limit: 5000, ..Default::default() };
    let events = state.db(move |s| s.events(&q)).await?;
    let activity = activity::load(&state, date, date, Some(agents), Some(&employee)).await?;
    let id = employee.id;
    let consents = state.db(move |s| s.consents(Some(id))).await?;
    Ok(Json(MyDay {
        date: date.to_string(),
        day_start_ms: start,
        day_end_ms: end,
        truncated: events.len() == 5000,
        events,
        activity,
        consents,
        employee,
    }))
}

/// Whether an access-log entry concerns this employee: it names them, one of
/// their endpoints, or it queried all endpoints at once (which includes theirs).
fn concerns(target: &str, employee: u64, agents: &[u64]) -> bool {
    target.split_whitespace().any(|t| {
        t == format!("employee:{employee}")
            || t == format!("consents:employee:{employee}")
            || t == "agent=*"
            || agents.iter().any(|a| t == format!("agent:{a}") || t == format!("agent={a}"))
    })
}

/// The most recent entries concerning this employee, from the last `scan` entries of the log.
async fn views_of(
    state: &Arc<AppState>,
    employee: u64,
    agents: &[u64],
    scan: u32,
) -> Result<Vec<AccessEntry>, ApiError> {
    let log = state.db(move |s| s.access_log(scan, None)).await?;
    Ok(log.into_iter().filter(|e| concerns(&e.target, employee, agents)).collect())
}

pub async fn views(state: State, session: AdminSession) -> Result<Json<Vec<AccessEntry>>, ApiError> {
    let (e, agents) = me(&state, &session).await?;
    Ok(Json(views_of(&state, e.id, &agents, 50_000).await?))
}

/// Everything collected about the employee: events of their endpoints,
/// consents, who viewed their data; JSON in a ZIP.
pub async fn export(state: State, session: AdminSession) -> Result<Response, ApiError> {
    let (employee, agents) = me(&state, &session).await?;
    let mut events: Vec<StoredEvent> = Vec::new();
    let mut after = None;
    loop {
        let q = EventQuery {
            scope: Some(agents.clone()),
            from_ms: i64::MIN,
            to_ms: i64::MAX,
            after,
            limit: PAGE,
            ..Default::default()
        };
        let page = state.db(move |s| s.events(&q)).await?;
        let n = page.len();
        after = page.last().map(|e| (e.ts_ms, e.agent_id, e.seq));
        events.extend(page);
        if n < PAGE as usize || events.len() >= EXPORT_MAX_EVENTS {
            break;
        }
    }
    let id = employee.id;
    let consents = state.db(move |s| s.consents(Some(id))).await?;
    let viewed = views_of(&state, id, &agents, 1_000_000).await?;
    let readme = format!(
        "Candor export for {} ({}), made {}.\nevents.json: every event stored from your endpoints ({}).\n\
         consents.json: your consent records. access.json: every time an administrator viewed your data.\n",
        employee.name,
        employee.username.as_deref().unwrap_or(""),
        now_ms(),
        events.len()
    );
    let zip = (|| -> zip::result::ZipResult<Vec<u8>> {
        let mut w = zip::ZipWriter::new(std::io::Cursor::new(Vec::new()));
        let opts = zip::write::SimpleFileOptions::default();
        for (name, body) in [
            ("README.txt", readme.into_bytes()),
            ("employee.json", serde_json::to_vec_pretty(&employee).unwrap_or_default()),
            ("events.json", serde_json::to_vec(&events).unwrap_or_default()),
            ("consents.json", serde_json::to_vec_pretty(&consents).unwrap_or_default()),
            ("access.json", serde_json::to_vec_pretty(&viewed).unwrap_or_default()),
        ] {
            w.start_file(name, opts)?;
            w.write_all(&body)?;
        }
        Ok(w.finish()?.into_inner())
    })()
    .map_err(|e| ApiError::internal(format!("building the export: {e}")))?;
    let filename = format!("candor-export-{}.zip", employee.username.as_deref().unwrap_or("me"));
    Ok((
        [
            (header::CONTENT_TYPE, "application/zip".to_string()),
            (header::CONTENT_DISPOSITION, format!("attachment; filename=\"{filename}\"")),
        ],
        zip,
    )
        .into_response())
}

#[cfg(test)]
mod tests {
    #[test]
    fn which_log_entries_concern_whom() {
        let c = |t| super::concerns(t, 12, &[3]);
        assert!(c("employee:12 date:2026-11-29") && c("agent:3") && c("events agent=3 category=*"));
        assert!(c("events agent=* category=activity from=* to=*"), "a query over everyone includes them");
        assert!(c("consents:employee:12"));
        assert!(!c("employee:1 date:x") && !c("employee:123") && !c("agent:33") && !c("app:x department:0"));
    }
}
