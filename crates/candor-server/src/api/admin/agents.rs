//! Endpoints: list, detail, revoke, employee/department assignment, the
//! policy each should apply, and enrollment tokens.

use super::{audit, not_found, present, Visibility};
use crate::api::auth::AdminSession;
use crate::api::{ApiError, JsonBody, State};
use crate::roles::Perm;
use crate::store::{Agent, OfflineGap, TokenInfo};
use axum::extract::Path;
use axum::http::StatusCode;
use axum::Json;
use candor_proto::now_ms;
use candor_proto::policy::EffectivePolicy;
use serde::{Deserialize, Serialize};

pub async fn list_agents(state: State, session: AdminSession) -> Result<Json<Vec<Agent>>, ApiError> {
    session.require(Perm::ViewAgents)?;
    let scope = Visibility::load(&state, &session).await?;
    let agents = state.db(|s| s.agents()).await?;
    Ok(Json(agents.into_iter().filter(|a| scope.agent(a)).collect()))
}

/// An agent the caller may see, or 404.
async fn visible_agent(state: &State, session: &AdminSession, id: u64) -> Result<Agent, ApiError> {
    let scope = Visibility::load(state, session).await?;
    state.db(move |s| s.agent(id)).await?.filter(|a| scope.agent(a)).ok_or_else(|| not_found(format!("agent {id}")))
}

#[derive(Serialize)]
pub struct AgentDetail {
    agent: Agent,
    offline_gaps: Vec<OfflineGap>,
}

pub async fn get_agent(
    state: State,
    session: AdminSession,
    Path(id): Path<u64>,
) -> Result<Json<AgentDetail>, ApiError> {
    session.require(Perm::ViewAgents)?;
    let agent = visible_agent(&state, &session, id).await?;
    audit(&state, &session.0, "agent.view", format!("agent:{id}")).await?;
    let offline_gaps = state.db(move |s| s.offline_gaps(id)).await?;
    Ok(Json(AgentDetail { agent, offline_gaps }))
}

#[derive(Deserialize)]
pub struct Revoke {
    #[serde(default)]
    reason: String,
}

pub async fn revoke_agent(
    state: State,
    session: AdminSession,
    Path(id): Path<u64>,
    JsonBody(r): JsonBody<Revoke>,
) -> Result<StatusCode, ApiError> {
    let admin = session.require(Perm::ManageAgents)?;
    let reason = if r.reason.trim().is_empty() {
        format!("revoked by {}", admin.username)
    } else {
        r.reason.chars().take(500).collect()
    };
    state.db(move |s| s.revoke_agent(id, &reason, now_ms())).await?;
    if let Ok(mut m) = state.creds.lock() {
        m.remove(&id);
    }
    tracing::info!(agent_id = id, by = %admin.username, "agent revoked");
    Ok(StatusCode::NO_CONTENT)
}

/// `{"employee_id": 3}` sets the employee and leaves the department as it
/// is; `null` clears a field.
#[derive(Deserialize)]
pub struct AgentAssignment {
    #[serde(default, deserialize_with = "present")]
    employee_id: Option<Option<u64>>,
    #[serde(default, deserialize_with = "present")]
    department_id: Option<Option<u64>>,
    /// Personal-device mode: nothing but system events is collected.
    #[serde(default)]
    personal: Option<bool>,
}

pub async fn assign_agent(
    state: State,
    session: AdminSession,
    Path(id): Path<u64>,
    JsonBody(r): JsonBody<AgentAssignment>,
) -> Result<StatusCode, ApiError> {
    session.require(Perm::ManageAgents)?;
    let current = state.db(move |s| s.agent(id)).await?.ok_or_else(|| not_found(format!("agent {id}")))?;
    let employee = r.employee_id.unwrap_or(current.employee_id);
    let department = r.department_id.unwrap_or(current.department_id);
    state.db(move |s| s.assign_agent(id, employee, department)).await?;
    if let Some(personal) = r.personal.filter(|p| *p != current.personal) {
        audit(&state, &session.0, "agent.personal", format!("agent:{id} personal:{personal}")).await?;
        state.db(move |s| s.set_agent_personal(id, personal)).await?;
    }
    state.bump_epoch();
    Ok(StatusCode::NO_CONTENT)
}

#[derive(Serialize)]
pub struct EffectiveView {
    /// What the agent should apply now.
    current: EffectivePolicy,
    /// What it reported applying last.
    applied: Option<String>,
}

pub async fn effective_policy(
    state: State,
    session: AdminSession,
    Path(id): Path<u64>,
) -> Result<Json<EffectiveView>, ApiError> {
    session.require(Perm::ViewAgents)?;
    let agent = visible_agent(&state, &session, id).await?;
    let current = state.effective(id).await?;
    Ok(Json(EffectiveView { current, applied: agent.applied_policy }))
}

pub async fn list_tokens(state: State, session: AdminSession) -> Result<Json<Vec<TokenInfo>>, ApiError> {
    session.require(Perm::ManageAgents)?;
    Ok(Json(state.db(|s| s.tokens()).await?))
}

#[derive(Deserialize)]
pub struct NewToken {
    department_id: Option<u64>,
    /// Lifetime such as `7d` or `12h`; default 7d.
    expires: Option<String>,
}

#[derive(Serialize)]
pub struct CreatedToken {
    id: u64,
    token: String,
}

pub async fn create_token(
    state: State,
    session: AdminSession,
    JsonBody(r): JsonBody<NewToken>,
) -> Result<Json<CreatedToken>, ApiError> {
    session.require(Perm::ManageAgents)?;
    let ttl =
        crate::enrollment::parse_duration_ms(r.expires.as_deref().unwrap_or("7d")).map_err(ApiError::bad_request)?;
    let (url, fp) = (state.public_url.clone(), state.ca_fingerprint.clone());
    let (token, id) = state.db(move |s| crate::enrollment::create_token(s, &url, &fp, r.department_id, ttl)).await?;
    Ok(Json(CreatedToken { id, token }))
}
