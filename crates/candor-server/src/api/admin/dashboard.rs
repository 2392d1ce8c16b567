//! The dashboard's figures: endpoints online and offline, endpoints with
//! problems, and (for roles that read collected data) today's events per
//! category, active time and top applications, and the newest open alerts — all within the caller's scope.

use super::activity::Totals;
use super::Visibility;
use crate::api::auth::AdminSession;
use crate::api::{ApiError, State};
use crate::company_time::{date_at, day_bounds, parse_tz};
use crate::roles::Perm;
use crate::store::{Alert, AlertQuery, CategoryTotal};
use axum::Json;
use candor_proto::now_ms;
use serde::Serialize;

#[derive(Serialize)]
pub struct Problem {
    agent_id: u64,
    hostname: String,
    /// `offline`, `revoked`, `old_version`, `spool_backlog`, `notice`
    kind: &'static str,
    detail: String,
}

#[derive(Serialize)]
pub struct Dashboard {
    agents_total: u64,
    agents_online: u64,
    agents_offline: u64,
    problems: Vec<Problem>,
    /// Since the start of today in the company time zone; absent when the
    /// role may not read collected data.
    events_today: Option<Vec<CategoryTotal>>,
    /// Today's active time, class split and top ten applications (roles that read collected data).
    activity_today: Option<Totals>,
    /// The five newest open alerts (roles that read alerts).
    recent_alerts: Option<Vec<Alert>>,
    day_start_ms: i64,
}

pub async fn dashboard(state: State, session: AdminSession) -> Result<Json<Dashboard>, ApiError> {
    session.require(Perm::ViewAgents)?;
    let scope = Visibility::load(&state, &session).await?;
    let agents: Vec<_> = state.db(|s| s.agents()).await?.into_iter().filter(|a| scope.agent(a)).collect();
    let version = env!("CARGO_PKG_VERSION");
    let mut problems = Vec::new();
    for a in &agents {
        let mut add = |kind, detail: String| {
            problems.push(Problem { agent_id: a.id, hostname: a.hostname.clone(), kind, detail })
        };
        if a.revoked_ms.is_some() {
            add("revoked", a.revoked_reason.clone().unwrap_or_default());
            continue;
        }
        if !a.online {
            add("offline", a.last_seen_ms.map_or("never seen".into(), |t| format!("last seen {t}")));
        }
        if a.agent_version != version {
            add("old_version", format!("{} (server {version})", a.agent_version));
        }
        if a.spool_events > 100_000 {
            add("spool_backlog", format!("{} events waiting", a.spool_events));
        }
        for n in &a.notices {
            add("notice", n.clone());
        }
    }
    let online = agents.iter().filter(|a| a.online).count() as u64;
    let tz = parse_tz(&state.config.console.timezone).map_err(ApiError::internal)?;
    let (day_start, day_end) = day_bounds(tz, date_at(tz, now_ms()));
    let ids: Option<Vec<u64>> = scope.is_limited().then(|| agents.iter().map(|a| a.id).collect());
    let (events_today, activity_today) = if session.0.role.can(Perm::ViewEvents) {
        let scope = ids.clone();
        let events = state.db(move |s| s.category_totals(day_start, day_end, scope.as_deref())).await?;
        let today = date_at(tz, now_ms());
        let mut totals = super::activity::load(&state, today, today, ids.clone(), None).await?.totals;
        totals.apps.truncate(10);
        (Some(events), Some(totals))
    } else {
        (None, None)
    };
    let recent_alerts = if session.0.role.can(Perm::ViewAlerts) {
        let q = AlertQuery { status: Some("open".into()), scope: ids, limit: 5, ..Default::default() };
        Some(state.db(move |s| s.alerts(&q)).await?)
    } else {
        None
    };
    Ok(Json(Dashboard {
        agents_total: agents.len() as u64,
        agents_online: online,
        agents_offline: agents.len() as u64 - online,
        problems,
        events_today,
        activity_today,
        recent_alerts,
        day_start_ms: day_start,
    }))
}
