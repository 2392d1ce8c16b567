//! The dashboard's figures: endpoints online and offline, endpoints with
//! problems, and (for roles that read collected data) today's events per
//! category — all within the caller's scope.

use super::Visibility;
use crate::api::auth::AdminSession;
use crate::api::{ApiError, State};
use crate::roles::Perm;
use axum::Json;
use candor_proto::{now_ms, Category};
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
    events_today: Option<Vec<(Category, u64)>>,
    day_start_ms: i64,
}

/// Midnight today in a fixed-offset approximation of the company time zone.
/// (Zones used by our customers have no DST; a zone database comes with the
/// statistics pages.)
pub fn day_start_ms(now: i64, tz: &str) -> i64 {
    let offset_ms: i64 = match tz {
        "Asia/Shanghai" | "Asia/Chongqing" | "Asia/Harbin" | "Asia/Urumqi" | "Asia/Hong_Kong" | "Asia/Macau"
        | "Asia/Taipei" | "Asia/Singapore" => 8 * 3_600_000,
        "Asia/Tokyo" | "Asia/Seoul" => 9 * 3_600_000,
        _ => 0,
    };
    (now + offset_ms).div_euclid(86_400_000) * 86_400_000 - offset_ms
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
    let day_start = day_start_ms(now_ms(), &state.config.console.timezone);
    let events_today = if session.0.role.can(Perm::ViewEvents) {
        let ids: Option<Vec<u64>> = scope.is_limited().then(|| agents.iter().map(|a| a.id).collect());
        Some(state.db(move |s| s.category_counts(day_start, ids.as_deref())).await?)
    } else {
        None
    };
    Ok(Json(Dashboard {
        agents_total: agents.len() as u64,
        agents_online: online,
        agents_offline: agents.len() as u64 - online,
        problems,
        events_today,
        day_start_ms: day_start,
    }))
}

#[cfg(test)]
mod tests {
    #[test]
    fn day_start_in_shanghai() {
        // 2026-11-29 01:30 in Shanghai is 2026-11-28 17:30 UTC.
        let t = 1_795_887_000_000; // 2026-11-28T17:30:00Z
        let start = super::day_start_ms(t, "Asia/Shanghai");
        assert_eq!(start, 1_795_881_600_000); // 2026-11-28T16:00:00Z = 00:00 in Shanghai
        assert_eq!(super::day_start_ms(t, "UTC"), 1_795_824_000_000);
    }
}
