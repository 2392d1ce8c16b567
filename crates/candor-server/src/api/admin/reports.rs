//! Per-person and per-department views of collected data: one employee's
//! day (the timeline) and statistics over a date range, with CSV and XLSX
//! export. Days are the company's (`console.timezone`). Looking at one
//! person's data is written to the access log.

use super::activity::{self, ActivitySummary, AppTime};
use super::{agents_of, audit, not_found, visible_employee, Visibility};
use crate::api::auth::AdminSession;
use crate::api::{ApiError, AppState, State};
use crate::company_time::{date_at, day_bounds, parse_date, parse_tz};
use crate::roles::Perm;
use crate::store::{Alert, AlertQuery, CategoryTotal, Employee, EventQuery, StoredEvent};
use axum::extract::{Path, Query};
use axum::http::header;
use axum::response::{IntoResponse, Response};
use axum::Json;
use candor_proto::now_ms;
use chrono::{Days, NaiveDate};
use serde::{Deserialize, Serialize};
use std::sync::Arc;

const MAX_DAYS: u64 = 366;
const TIMELINE_MAX_EVENTS: u32 = 5000;

#[derive(Deserialize)]
pub struct DayParam {
    date: Option<String>,
}

#[derive(Serialize)]
pub struct Timeline {
    employee: Employee,
    date: String,
    day_start_ms: i64,
    day_end_ms: i64,
    agents: Vec<u64>,
    events: Vec<StoredEvent>,
    /// True when the day has more events than one answer carries.
    truncated: bool,
    alerts: Vec<Alert>,
    /// The day's rollup: time per application and class, idle, locked, first and last activity.
    activity: ActivitySummary,
}

pub async fn timeline(
    state: State,
    session: AdminSession,
    Path(id): Path<u64>,
    Query(p): Query<DayParam>,
) -> Result<Json<Timeline>, ApiError> {
    session.require(Perm::ViewEvents)?;
    let tz = parse_tz(&state.config.console.timezone).map_err(ApiError::internal)?;
    let date = match &p.date {
        Some(d) => parse_date(d).map_err(ApiError::bad_request)?,
        None => date_at(tz, now_ms()),
    };
    let employee = visible_employee(&state, &session, id).await?;
    audit(&state, &session.0, "timeline.view", format!("employee:{id} date:{date}")).await?;
    let (start, end) = day_bounds(tz, date);
    let agents = agents_of(&state.db(|s| s.agents()).await?, &employee);
    let q = EventQuery {
        scope: Some(agents.clone()),
        from_ms: start,
        to_ms: end,
        limit: TIMELINE_MAX_EVENTS,
        ..Default::default()
    };
    let events = state.db(move |s| s.events(&q)).await?;
    let aq = AlertQuery {
        scope: Some(agents.clone()),
        from_ms: Some(start),
        to_ms: Some(end),
        limit: 500,
        ..Default::default()
    };
    let alerts = state.db(move |s| s.alerts(&aq)).await?;
    let scope = Visibility::load(&state, &session).await?.agent_ids_async(&state).await?;
    let activity = activity::load(&state, date, date, scope, Some(&employee)).await?;
    Ok(Json(Timeline {
        activity,
        employee,
        date: date.to_string(),
        day_start_ms: start,
        day_end_ms: end,
        agents,
        truncated: events.len() == TIMELINE_MAX_EVENTS as usize,
        events,
        alerts,
    }))
}

#[derive(Deserialize)]
pub struct StatsParams {
    pub from: String,
    pub to: String,
    pub department: Option<u64>,
    pub employee: Option<u64>,
    pub format: Option<String>,
}

#[derive(Serialize)]
pub struct DayTotals {
    date: String,
    totals: Vec<CategoryTotal>,
}

#[derive(Serialize)]
pub struct Stats {
    from: String,
    to: String,
    /// Events per category per day (every collector).
    days: Vec<DayTotals>,
    /// Time per application and class, from the activity rollups.
    activity: ActivitySummary,
}

/// Whose data a statistics request covers.
pub struct StatsScope {
    pub from: NaiveDate,
    pub to: NaiveDate,
    /// Endpoints in scope (`None`: all).
    pub agents: Option<Vec<u64>>,
    /// Endpoints the admin may see at all (`None`: all).
    pub visible: Option<Vec<u64>>,
    pub employee: Option<Employee>,
    pub all_agents: Vec<crate::store::Agent>,
}

/// Check the range and narrow to what the admin may see, the department's
/// subtree and the employee's endpoints; looking at one employee is written
/// to the access log as `action`.
pub async fn stats_scope(
    state: &Arc<AppState>,
    session: &AdminSession,
    p: &StatsParams,
    action: &str,
) -> Result<StatsScope, ApiError> {
    let (from, to) =
        (parse_date(&p.from).map_err(ApiError::bad_request)?, parse_date(&p.to).map_err(ApiError::bad_request)?);
    if to < from || (to - from).num_days() as u64 >= MAX_DAYS {
        return Err(ApiError::bad_request(format!("the range must run forward and span at most {MAX_DAYS} days")));
    }
    let vis = Visibility::load(state, session).await?;
    let all_agents = state.db(|s| s.agents()).await?;
    let mut agents: Option<Vec<u64>> =
        if vis.is_limited() { Some(all_agents.iter().filter(|a| vis.agent(a)).map(|a| a.id).collect()) } else { None };
    let visible = agents.clone();
    let mut employee = None;
    if let Some(e) = p.employee {
        let found = visible_employee(state, session, e).await?;
        audit(state, &session.0, action, format!("employee:{e} {from}..{to}")).await?;
        let mine = agents_of(&all_agents, &found);
        agents = Some(mine.into_iter().filter(|a| agents.as_ref().is_none_or(|v| v.contains(a))).collect());
        employee = Some(found);
    }
    if let Some(d) = p.department {
        let departments = state.db(|s| s.departments()).await?;
        if !vis.department(Some(d)) {
            return Err(not_found(format!("department {d}")));
        }
        let subtree = subtree(&departments, d);
        let ids: Vec<u64> =
            all_agents.iter().filter(|a| a.department_id.is_some_and(|x| subtree.contains(&x))).map(|a| a.id).collect();
        agents = Some(ids.into_iter().filter(|a| agents.as_ref().is_none_or(|v| v.contains(a))).collect());
    }
    Ok(StatsScope { from, to, agents, visible, employee, all_agents })
}

async fn compute_stats(state: &Arc<AppState>, session: &AdminSession, p: &StatsParams) -> Result<Stats, ApiError> {
    session.require(Perm::ViewEvents)?;
    let tz = parse_tz(&state.config.console.timezone).map_err(ApiError::internal)?;
    let StatsScope { from, to, agents, visible, employee, .. } =
        stats_scope(state, session, p, "stats.employee").await?;
    let mut days = Vec::new();
    let mut date = from;
    while date <= to {
        let (start, end) = day_bounds(tz, date);
        let scope = agents.clone();
        let totals = state.db(move |s| s.category_totals(start, end, scope.as_deref())).await?;
        days.push(DayTotals { date: date.to_string(), totals });
        date = date.checked_add_days(Days::new(1)).unwrap_or(NaiveDate::MAX);
    }
    // An employee's sessions are found on any endpoint in scope, not only on theirs.
    let activity_scope = if employee.is_some() && p.department.is_none() { visible } else { agents };
    let activity = activity::load(state, from, to, activity_scope, employee.as_ref()).await?;
    Ok(Stats { from: from.to_string(), to: to.to_string(), days, activity })
}

fn subtree(departments: &[crate::store::Department], root: u64) -> Vec<u64> {
    let mut out = vec![root];
    let mut i = 0;
    while i < out.len() {
        let parent = out[i];
        out.extend(departments.iter().filter(|d| d.parent_id == Some(parent)).map(|d| d.id));
        i += 1;
    }
    out
}

pub async fn stats(state: State, session: AdminSession, Query(p): Query<StatsParams>) -> Result<Json<Stats>, ApiError> {
    Ok(Json(compute_stats(&state, &session, &p).await?))
}

/// Export rows: minutes per company day and application.
fn rows(stats: &Stats) -> impl Iterator<Item = (&str, &AppTime)> {
    stats.activity.days.iter().flat_map(|d| d.totals.apps.iter().map(move |a| (d.date.as_str(), a)))
}

const COLUMNS: [&str; 7] = ["date", "application", "name", "class", "active_minutes", "idle_minutes", "locked_minutes"];

fn minutes(ms: i64) -> f64 {
    (ms as f64 / 60_000.0 * 10.0).round() / 10.0
}

fn csv_field(s: &str) -> String {
    // Quote everything that could break a row, and defuse spreadsheet formulas.
    let s = if s.starts_with(['=', '+', '-', '@']) { format!("'{s}") } else { s.to_string() };
    if s.contains([',', '"', '\n', '\r']) {
        format!("\"{}\"", s.replace('"', "\"\""))
    } else {
        s
    }
}

pub async fn export(state: State, session: AdminSession, Query(p): Query<StatsParams>) -> Result<Response, ApiError> {
    let stats = compute_stats(&state, &session, &p).await?;
    let name = format!("candor-stats-{}-{}", stats.from, stats.to);
    match p.format.as_deref().unwrap_or("csv") {
        "csv" => {
            let mut out = COLUMNS.join(",") + "\n";
            for (date, a) in rows(&stats) {
                out.push_str(&format!(
                    "{date},{},{},{},{},{},{}\n",
                    csv_field(&a.app),
                    csv_field(a.name.as_deref().unwrap_or("")),
                    csv_field(&a.class),
                    minutes(a.active_ms),
                    minutes(a.idle_ms),
                    minutes(a.locked_ms)
                ));
            }
            Ok((
                [
                    (header::CONTENT_TYPE, "text/csv; charset=utf-8".to_string()),
                    (header::CONTENT_DISPOSITION, format!("attachment; filename=\"{name}.csv\"")),
                ],
                out,
            )
                .into_response())
        }
        "xlsx" => {
            let bytes = xlsx(&stats).map_err(|e| ApiError::internal(format!("building XLSX: {e}")))?;
            Ok((
                [
                    (
                        header::CONTENT_TYPE,
                        "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet".to_string(),
                    ),
                    (header::CONTENT_DISPOSITION, format!("attachment; filename=\"{name}.xlsx\"")),
                ],
                bytes,
            )
                .into_response())
        }
        other => Err(ApiError::bad_request(format!("format {other:?} is not csv or xlsx"))),
    }
}

/// Two sheets: time per day and application, and events per day and category.
fn xlsx(stats: &Stats) -> Result<Vec<u8>, rust_xlsxwriter::XlsxError> {
    let mut book = rust_xlsxwriter::Workbook::new();
    let sheet = book.add_worksheet();
    sheet.set_name("applications")?;
    for (col, title) in COLUMNS.iter().enumerate() {
        sheet.write_string(0, col as u16, *title)?;
    }
    for (i, (date, a)) in rows(stats).enumerate() {
        let r = i as u32 + 1;
        sheet.write_string(r, 0, date)?;
        sheet.write_string(r, 1, &a.app)?;
        sheet.write_string(r, 2, a.name.as_deref().unwrap_or(""))?;
        sheet.write_string(r, 3, &a.class)?;
        sheet.write_number(r, 4, minutes(a.active_ms))?;
        sheet.write_number(r, 5, minutes(a.idle_ms))?;
        sheet.write_number(r, 6, minutes(a.locked_ms))?;
    }
    let events = book.add_worksheet();
    events.set_name("events")?;
    for (col, title) in ["date", "category", "events", "minutes"].iter().enumerate() {
        events.write_string(0, col as u16, *title)?;
    }
    let per_category = stats.days.iter().flat_map(|d| d.totals.iter().map(move |t| (d.date.as_str(), t)));
    for (i, (date, t)) in per_category.enumerate() {
        let r = i as u32 + 1;
        events.write_string(r, 0, date)?;
        events.write_string(r, 1, t.category.as_str())?;
        events.write_number(r, 2, t.events as f64)?;
        events.write_number(r, 3, minutes(t.duration_ms as i64))?;
    }
    book.save_to_buffer()
}
