//! The employee self-service portal (PIPL: the right to know, access and
//! copy): an employee account reads the company's monitoring notice and
//! answers it per category, sees its own day, screen pictures and alerts as
//! admins see them, who viewed its data and when, and downloads everything
//! collected about it as a ZIP. There is no parameter naming another person.

use super::admin::activity::{self, ActivitySummary};
use super::auth::AdminSession;
use super::{ApiError, AppState, State};
use crate::company_time::{date_at, day_bounds, parse_date, parse_tz};
use crate::roles::Perm;
use crate::store::blob::BlobStore as _;
use crate::store::{
    AccessEntry, Alert, AlertQuery, ChatRow, ConsentRecord, Employee, EventQuery, NewConsent, Notice, ScreenFrame,
    StoredEvent,
};
use axum::extract::Query;
use axum::http::{header, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Json;
use candor_proto::now_ms;
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::io::Write;
use std::sync::Arc;

/// Events in one export at most (a year of a busy desktop is well below).
const EXPORT_MAX_EVENTS: usize = 2_000_000;
const PAGE: u32 = 10_000;
/// Screen pictures in one export at most (all frames are listed; a month at
/// one changed frame a minute of work is well below).
const EXPORT_MAX_PICTURES: usize = 20_000;
const EXPORT_MAX_CHATS: u32 = 1_000_000;

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
    /// Screen frames recorded that day (pictures from `/portal/screen/image`).
    screen_frames: Vec<ScreenFrame>,
    alerts: Vec<Alert>,
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
    let activity = activity::load(&state, date, date, Some(agents.clone()), Some(&employee)).await?;
    let id = employee.id;
    let consents = state.db(move |s| s.consents(Some(id))).await?;
    let a = agents.clone();
    let screen_frames = state.db(move |s| s.screen_frames(&a, start, end, 5000)).await?;
    let alerts = alerts_of(&state, agents, Some((start, end))).await?;
    Ok(Json(MyDay {
        screen_frames,
        alerts,
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

async fn alerts_of(state: &Arc<AppState>, agents: Vec<u64>, range: Option<(i64, i64)>) -> Result<Vec<Alert>, ApiError> {
    let q = AlertQuery {
        scope: Some(agents),
        from_ms: range.map(|r| r.0),
        to_ms: range.map(|r| r.1),
        limit: 100_000,
        ..Default::default()
    };
    state.db(move |s| s.alerts(&q)).await
}

#[derive(Deserialize)]
pub struct PictureQuery {
    agent: u64,
    display: String,
    at_ms: i64,
}

/// One of the employee's own screen pictures, composed as for admins.
pub async fn screen_image(
    state: State,
    session: AdminSession,
    Query(q): Query<PictureQuery>,
) -> Result<Response, ApiError> {
    let (_, agents) = me(&state, &session).await?;
    if !agents.contains(&q.agent) {
        return Err(super::admin::not_found(format!("agent {}", q.agent)));
    }
    super::admin::screen::picture(&state, q.agent, q.display, q.at_ms).await
}

#[derive(Serialize)]
pub struct MyNotice {
    /// The notice in force (`None`: the company has not published one).
    notice: Option<Notice>,
    /// The newest version this employee has answered.
    answered: Option<u64>,
    /// The latest consent record per category.
    decisions: BTreeMap<String, bool>,
}

pub async fn notice(state: State, session: AdminSession) -> Result<Json<MyNotice>, ApiError> {
    let (employee, _) = me(&state, &session).await?;
    let notice = state.db(|s| s.notices()).await?.into_iter().next();
    let id = employee.id;
    let consents = state.db(move |s| s.consents(Some(id))).await?;
    let answered = consents.iter().filter_map(|c| c.notice_version).max();
    // Records are in id order: the last one per category is in force.
    let decisions = consents.iter().map(|c| (c.category.as_str().to_string(), c.granted)).collect();
    Ok(Json(MyNotice { notice, answered, decisions }))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Answer {
    /// The version read; answering an older one is refused.
    version: u64,
    /// Every category the notice names → consent given or declined.
    decisions: BTreeMap<String, bool>,
}

#[derive(Serialize)]
pub struct Answered {
    recorded: usize,
}

/// The employee accepts or declines each category of the notice in force:
/// one immutable consent record per category, effective on their desktop
/// within seconds.
pub async fn answer(
    state: State,
    session: AdminSession,
    super::JsonBody(a): super::JsonBody<Answer>,
) -> Result<Json<Answered>, ApiError> {
    let (employee, _) = me(&state, &session).await?;
    let current = state
        .db(|s| s.notices())
        .await?
        .into_iter()
        .next()
        .ok_or_else(|| ApiError::bad_request("the company has not published a monitoring notice"))?;
    if a.version != current.version {
        return Err(ApiError::new(
            StatusCode::CONFLICT,
            format!("the notice has changed: read version {} and answer it", current.version),
        ));
    }
    let asked = current.body.categories();
    let mut records = Vec::new();
    for c in &asked {
        let granted = *a
            .decisions
            .get(c.as_str())
            .ok_or_else(|| ApiError::bad_request(format!("answer every category of the notice: {c} is missing")))?;
        records.push(NewConsent {
            employee_id: employee.id,
            category: *c,
            granted,
            method: "portal".into(),
            note: None,
            recorded_by: session.0.username.clone(),
            notice_version: Some(current.version),
            scan: None,
        });
    }
    if let Some(extra) = a.decisions.keys().find(|k| !asked.iter().any(|c| c.as_str() == k.as_str())) {
        return Err(ApiError::bad_request(format!("the notice does not ask about {extra:?}")));
    }
    let recorded = records.len();
    state
        .db(move |s| {
            for r in &records {
                s.record_consent(r)?;
            }
            Ok(())
        })
        .await?;
    state.bump_epoch();
    Ok(Json(Answered { recorded }))
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
    let alerts = alerts_of(&state, agents.clone(), None).await?;
    let a = agents.clone();
    let frames = state.db(move |s| s.screen_frames(&a, i64::MIN, i64::MAX, u32::MAX)).await?;
    // Chat messages are the employee's by their login name (their WeCom userid).
    let chats: Vec<ChatRow> = match employee.username.clone() {
        Some(u) => state.db(move |s| s.chat_of_person(&u, EXPORT_MAX_CHATS)).await?,
        None => Vec::new(),
    };
    let blobs = state.blobs.clone();
    let filename = format!("candor-export-{}.zip", employee.username.as_deref().unwrap_or("me"));
    let readme = format!(
        "Candor export for {} ({}), made {}.\n\
         events.json: every event stored from your endpoints ({}), in every category (activity, processes, web visits, ...).\n\
         screen/frames.json: every screen frame recorded ({}); screen/<agent>-<display>-<time>.jpg: the picture at each frame.\n\
         chat.json: archived chat messages you sent or received ({}).\n\
         alerts.json: alerts raised on your endpoints ({}).\n\
         consents.json: your consent records; consents/<key>: scans of forms you signed.\n\
         access.json: every time an administrator viewed your data.\n",
        employee.name,
        employee.username.as_deref().unwrap_or(""),
        now_ms(),
        events.len(),
        frames.len(),
        chats.len(),
        alerts.len(),
    );
    let zip = tokio::task::spawn_blocking(move || -> Result<Vec<u8>, String> {
        let mut w = zip::ZipWriter::new(std::io::Cursor::new(Vec::new()));
        let opts = zip::write::SimpleFileOptions::default();
        let json = |v: serde_json::Result<Vec<u8>>| v.map_err(|e| e.to_string());
        let mut files: Vec<(String, Vec<u8>)> = vec![
            ("README.txt".into(), readme.into_bytes()),
            ("employee.json".into(), json(serde_json::to_vec_pretty(&employee))?),
            ("events.json".into(), json(serde_json::to_vec(&events))?),
            ("screen/frames.json".into(), json(serde_json::to_vec(&frames))?),
            ("chat.json".into(), json(serde_json::to_vec(&chats))?),
            ("alerts.json".into(), json(serde_json::to_vec_pretty(&alerts))?),
            ("consents.json".into(), json(serde_json::to_vec_pretty(&consents))?),
            ("access.json".into(), json(serde_json::to_vec_pretty(&viewed))?),
        ];
        for key in consents.iter().filter_map(|c| c.scan.as_deref()).collect::<std::collections::BTreeSet<_>>() {
            if let Ok(Some(data)) = blobs.get(key) {
                files.push((format!("consents/{key}"), data));
            }
        }
        for (name, body) in files {
            w.start_file(name, opts).map_err(|e| e.to_string())?;
            w.write_all(&body).map_err(|e| e.to_string())?;
        }
        write_pictures(&mut w, opts, &frames, blobs.as_ref())?;
        Ok(w.finish().map_err(|e| e.to_string())?.into_inner())
    })
    .await
    .map_err(|e| ApiError::internal(e.to_string()))?
    .map_err(|e| ApiError::internal(format!("building the export: {e}")))?;
    Ok((
        [
            (header::CONTENT_TYPE, "application/zip".to_string()),
            (header::CONTENT_DISPOSITION, format!("attachment; filename=\"{filename}\"")),
        ],
        zip,
    )
        .into_response())
}

/// The picture at every frame, composed in order per endpoint and display
/// (each key frame starts afresh); a frame that cannot be read is left out
/// and named in `screen/unreadable.txt`.
fn write_pictures(
    w: &mut zip::ZipWriter<std::io::Cursor<Vec<u8>>>,
    opts: zip::write::SimpleFileOptions,
    frames: &[ScreenFrame],
    blobs: &crate::store::blob::FolderBlobStore,
) -> Result<(), String> {
    let mut sorted: Vec<&ScreenFrame> = frames.iter().collect();
    sorted.sort_by(|a, b| (a.agent_id, &a.display, a.ts_ms, a.seq).cmp(&(b.agent_id, &b.display, b.ts_ms, b.seq)));
    let mut unreadable = String::new();
    let mut written = 0;
    let mut canvas: Option<((u64, &str), candor_screen::Canvas)> = None;
    for f in sorted {
        let stream = (f.agent_id, f.display.as_str());
        if canvas.as_ref().is_none_or(|(s, _)| *s != stream) {
            canvas = Some((stream, candor_screen::Canvas::new()));
        }
        let Some((_, c)) = canvas.as_mut() else { continue };
        let applied = match blobs.get(&f.blob) {
            Ok(Some(bytes)) => c.apply(&bytes).map_err(|e| e.to_string()),
            Ok(None) => Err("missing from the blob store".into()),
            Err(e) => Err(e.to_string()),
        };
        match applied.and_then(|_| c.to_jpeg(80).ok_or_else(|| "nothing to show".to_string())) {
            Ok(jpeg) if written < EXPORT_MAX_PICTURES => {
                let display: String =
                    f.display.chars().map(|ch| if ch.is_ascii_alphanumeric() { ch } else { '_' }).collect();
                w.start_file(format!("screen/{}-{display}-{}.jpg", f.agent_id, f.ts_ms), opts)
                    .map_err(|e| e.to_string())?;
                w.write_all(&jpeg).map_err(|e| e.to_string())?;
                written += 1;
            }
            Ok(_) => unreadable
                .push_str(&format!("agent {} seq {}: beyond {EXPORT_MAX_PICTURES} pictures\n", f.agent_id, f.seq)),
            Err(e) => unreadable.push_str(&format!("agent {} seq {}: {e}\n", f.agent_id, f.seq)),
        }
    }
    if !unreadable.is_empty() {
        w.start_file("screen/unreadable.txt", opts).map_err(|e| e.to_string())?;
        w.write_all(unreadable.as_bytes()).map_err(|e| e.to_string())?;
    }
    Ok(())
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
