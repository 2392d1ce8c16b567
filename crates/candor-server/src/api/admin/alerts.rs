//! The alerts inbox: list and filter, acknowledge or close, assign, comment.

use super::{not_found, present, Created, Visibility};
use crate::api::auth::AdminSession;
use crate::api::{ApiError, JsonBody, State};
use crate::roles::Perm;
use crate::store::{Alert, AlertComment, AlertQuery};
use axum::extract::{Path, Query};
use axum::http::StatusCode;
use axum::Json;
use serde::{Deserialize, Serialize};

#[derive(Deserialize)]
pub struct AlertParams {
    status: Option<String>,
    kind: Option<String>,
    agent: Option<u64>,
    from: Option<i64>,
    to: Option<i64>,
    limit: Option<u32>,
}

pub async fn list_alerts(
    state: State,
    session: AdminSession,
    Query(p): Query<AlertParams>,
) -> Result<Json<Vec<Alert>>, ApiError> {
    session.require(Perm::ViewAlerts)?;
    let vis = Visibility::load(&state, &session).await?;
    let scope = state.db(move |s| vis.agent_ids(s)).await?;
    let q = AlertQuery {
        status: p.status,
        kind: p.kind,
        agent_id: p.agent,
        scope,
        from_ms: p.from,
        to_ms: p.to,
        limit: p.limit.unwrap_or(200).clamp(1, 1000),
    };
    Ok(Json(state.db(move |s| s.alerts(&q)).await?))
}

#[derive(Serialize)]
pub struct AlertDetail {
    alert: Alert,
    comments: Vec<AlertComment>,
}

async fn visible_alert(state: &State, session: &AdminSession, id: u64) -> Result<(Alert, Vec<AlertComment>), ApiError> {
    let vis = Visibility::load(state, session).await?;
    let scope = state.db(move |s| vis.agent_ids(s)).await?;
    let found = state.db(move |s| s.alert(id)).await?;
    found
        .filter(|(a, _)| scope.as_ref().is_none_or(|ids| a.agent_id.is_some_and(|x| ids.contains(&x))))
        .ok_or_else(|| not_found(format!("alert {id}")))
}

pub async fn get_alert(
    state: State,
    session: AdminSession,
    Path(id): Path<u64>,
) -> Result<Json<AlertDetail>, ApiError> {
    session.require(Perm::ViewAlerts)?;
    let (alert, comments) = visible_alert(&state, &session, id).await?;
    Ok(Json(AlertDetail { alert, comments }))
}

#[derive(Deserialize)]
pub struct AlertChange {
    status: Option<String>,
    /// Absent: unchanged; null: unassigned.
    #[serde(default, deserialize_with = "present")]
    assignee: Option<Option<String>>,
}

pub async fn update_alert(
    state: State,
    session: AdminSession,
    Path(id): Path<u64>,
    JsonBody(b): JsonBody<AlertChange>,
) -> Result<StatusCode, ApiError> {
    session.require(Perm::ManageAlerts)?;
    state.db(move |s| s.update_alert(id, b.status.as_deref(), b.assignee.as_ref().map(|a| a.as_deref()))).await?;
    Ok(StatusCode::NO_CONTENT)
}

#[derive(Deserialize)]
pub struct NewComment {
    text: String,
}

pub async fn comment_alert(
    state: State,
    session: AdminSession,
    Path(id): Path<u64>,
    JsonBody(b): JsonBody<NewComment>,
) -> Result<Json<Created>, ApiError> {
    let admin = session.require(Perm::ManageAlerts)?.clone();
    let text: String = b.text.chars().take(4000).collect();
    let id = state.db(move |s| s.comment_alert(id, &admin.username, &text)).await?;
    Ok(Json(Created { id }))
}
