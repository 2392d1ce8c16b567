//! Event queries (personal data: access-logged, scoped) and the access log.

use super::{audit, Visibility};
use crate::api::auth::AdminSession;
use crate::api::{ApiError, State};
use crate::roles::Perm;
use crate::store::{AccessEntry, EventQuery, StoredEvent};
use axum::extract::Query;
use axum::Json;
use candor_proto::Category;
use serde::{Deserialize, Serialize};

#[derive(Deserialize)]
pub struct EventsParams {
    agent: Option<u64>,
    category: Option<String>,
    #[serde(rename = "type")]
    kind: Option<String>,
    from: Option<i64>,
    to: Option<i64>,
    cursor: Option<String>,
    limit: Option<u32>,
}

#[derive(Serialize)]
pub struct EventsPage {
    events: Vec<StoredEvent>,
    /// Pass as `cursor` for the next page; absent on the last page.
    next_cursor: Option<String>,
}

fn parse_cursor(c: &str) -> Option<(i64, u64, u64)> {
    let mut it = c.split(':');
    let v = (it.next()?.parse().ok()?, it.next()?.parse().ok()?, it.next()?.parse().ok()?);
    it.next().is_none().then_some(v)
}

pub async fn query_events(
    state: State,
    session: AdminSession,
    Query(p): Query<EventsParams>,
) -> Result<Json<EventsPage>, ApiError> {
    session.require(Perm::ViewEvents)?;
    let category = p.category.as_deref().map(str::parse::<Category>).transpose().map_err(ApiError::bad_request)?;
    let after =
        p.cursor.as_deref().map(|c| parse_cursor(c).ok_or_else(|| ApiError::bad_request("bad cursor"))).transpose()?;
    let limit = p.limit.unwrap_or(100).clamp(1, 1000);
    let scope = Visibility::load(&state, &session).await?;
    let scope = state.db(move |s| scope.agent_ids(s)).await?;
    if let (Some(ids), Some(a)) = (&scope, p.agent) {
        if !ids.contains(&a) {
            return Err(super::not_found(format!("agent {a}")));
        }
    }
    let q = EventQuery {
        agent_id: p.agent,
        scope,
        category,
        kind: p.kind.clone(),
        from_ms: p.from.unwrap_or(i64::MIN),
        to_ms: p.to.unwrap_or(i64::MAX),
        after,
        limit,
    };
    let target = format!(
        "events agent={} category={} type={} from={} to={}",
        p.agent.map_or("*".into(), |a| a.to_string()),
        q.category.map_or("*", |c| c.as_str()),
        q.kind.as_deref().unwrap_or("*"),
        p.from.map_or("*".into(), |v| v.to_string()),
        p.to.map_or("*".into(), |v| v.to_string()),
    );
    audit(&state, &session.0, "events.query", target).await?;
    let events = state.db(move |s| s.events(&q)).await?;
    let next_cursor = (events.len() == limit as usize)
        .then(|| events.last().map(|e| format!("{}:{}:{}", e.ts_ms, e.agent_id, e.seq)))
        .flatten();
    Ok(Json(EventsPage { events, next_cursor }))
}

#[derive(Deserialize)]
pub struct AccessParams {
    limit: Option<u32>,
    before: Option<u64>,
}

pub async fn access_log(
    state: State,
    session: AdminSession,
    Query(p): Query<AccessParams>,
) -> Result<Json<Vec<AccessEntry>>, ApiError> {
    session.require(Perm::ViewAccessLog)?;
    let limit = p.limit.unwrap_or(100).clamp(1, 1000);
    Ok(Json(state.db(move |s| s.access_log(limit, p.before)).await?))
}
