//! Admin resources: agents, enrollment tokens, events, policies and their
//! assignment, consent records, departments, employees, and the access log.
//! Every read of personal data appends to the access log before answering.

use super::auth::AdminSession;
use super::{ApiError, AppState, JsonBody, State};
use crate::store::{
    AccessEntry, Admin, Agent, Assignment, ConsentRecord, Department, Employee, EventQuery, NewConsent, OfflineGap,
    Policy, Scope, StoredEvent, TokenInfo,
};
use axum::extract::{Path, Query};
use axum::http::StatusCode;
use axum::Json;
use candor_proto::policy::{EffectivePolicy, PolicyDoc};
use candor_proto::{now_ms, Category};
use serde::{Deserialize, Serialize};
use std::sync::Arc;

/// Append to the access log; the read does not happen if logging fails.
async fn audit(state: &Arc<AppState>, admin: &Admin, action: &str, target: String) -> Result<(), ApiError> {
    let (actor, action) = (admin.username.clone(), action.to_string());
    state.db(move |s| s.append_access(&actor, &action, &target, now_ms())).await
}

pub async fn list_agents(state: State, _a: AdminSession) -> Result<Json<Vec<Agent>>, ApiError> {
    Ok(Json(state.db(|s| s.agents()).await?))
}

#[derive(Serialize)]
pub struct AgentDetail {
    agent: Agent,
    offline_gaps: Vec<OfflineGap>,
}

pub async fn get_agent(
    state: State,
    AdminSession(admin): AdminSession,
    Path(id): Path<u64>,
) -> Result<Json<AgentDetail>, ApiError> {
    audit(&state, &admin, "agent.view", format!("agent:{id}")).await?;
    let agent = state
        .db(move |s| s.agent(id))
        .await?
        .ok_or_else(|| ApiError::new(StatusCode::NOT_FOUND, format!("no agent {id}")))?;
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
    AdminSession(admin): AdminSession,
    Path(id): Path<u64>,
    JsonBody(r): JsonBody<Revoke>,
) -> Result<StatusCode, ApiError> {
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

/// Distinguishes an absent field (outer `None`) from an explicit `null`.
fn present<'de, D: serde::Deserializer<'de>>(d: D) -> Result<Option<Option<u64>>, D::Error> {
    Option::<u64>::deserialize(d).map(Some)
}

/// `{"employee_id": 3}` sets the employee and leaves the department as it
/// is; `null` clears a field.
#[derive(Deserialize)]
pub struct AgentAssignment {
    #[serde(default, deserialize_with = "present")]
    employee_id: Option<Option<u64>>,
    #[serde(default, deserialize_with = "present")]
    department_id: Option<Option<u64>>,
}

pub async fn assign_agent(
    state: State,
    _a: AdminSession,
    Path(id): Path<u64>,
    JsonBody(r): JsonBody<AgentAssignment>,
) -> Result<StatusCode, ApiError> {
    let current = state
        .db(move |s| s.agent(id))
        .await?
        .ok_or_else(|| ApiError::new(StatusCode::NOT_FOUND, format!("no agent {id}")))?;
    let employee = r.employee_id.unwrap_or(current.employee_id);
    let department = r.department_id.unwrap_or(current.department_id);
    state.db(move |s| s.assign_agent(id, employee, department)).await?;
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
    _a: AdminSession,
    Path(id): Path<u64>,
) -> Result<Json<EffectiveView>, ApiError> {
    let current = state.db(move |s| crate::policy::effective_for(s, id)).await?;
    let applied = state.db(move |s| s.agent(id)).await?.and_then(|a| a.applied_policy);
    Ok(Json(EffectiveView { current, applied }))
}

pub async fn list_tokens(state: State, _a: AdminSession) -> Result<Json<Vec<TokenInfo>>, ApiError> {
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
    _a: AdminSession,
    JsonBody(r): JsonBody<NewToken>,
) -> Result<Json<CreatedToken>, ApiError> {
    let ttl =
        crate::enrollment::parse_duration_ms(r.expires.as_deref().unwrap_or("7d")).map_err(ApiError::bad_request)?;
    let (url, fp) = (state.public_url.clone(), state.ca_fingerprint.clone());
    let (token, id) = state.db(move |s| crate::enrollment::create_token(s, &url, &fp, r.department_id, ttl)).await?;
    Ok(Json(CreatedToken { id, token }))
}

#[derive(Deserialize)]
pub struct EventsParams {
    agent: Option<u64>,
    category: Option<String>,
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
    AdminSession(admin): AdminSession,
    Query(p): Query<EventsParams>,
) -> Result<Json<EventsPage>, ApiError> {
    let category = p.category.as_deref().map(str::parse::<Category>).transpose().map_err(ApiError::bad_request)?;
    let after =
        p.cursor.as_deref().map(|c| parse_cursor(c).ok_or_else(|| ApiError::bad_request("bad cursor"))).transpose()?;
    let limit = p.limit.unwrap_or(100).clamp(1, 1000);
    let q = EventQuery {
        agent_id: p.agent,
        category,
        from_ms: p.from.unwrap_or(i64::MIN),
        to_ms: p.to.unwrap_or(i64::MAX),
        after,
        limit,
    };
    let target = format!(
        "events agent={} category={} from={} to={}",
        p.agent.map_or("*".into(), |a| a.to_string()),
        q.category.map_or("*", |c| c.as_str()),
        p.from.map_or("*".into(), |v| v.to_string()),
        p.to.map_or("*".into(), |v| v.to_string()),
    );
    audit(&state, &admin, "events.query", target).await?;
    let events = state.db(move |s| s.events(&q)).await?;
    let next_cursor = (events.len() == limit as usize)
        .then(|| events.last().map(|e| format!("{}:{}:{}", e.ts_ms, e.agent_id, e.seq)))
        .flatten();
    Ok(Json(EventsPage { events, next_cursor }))
}

pub async fn list_policies(state: State, _a: AdminSession) -> Result<Json<Vec<Policy>>, ApiError> {
    Ok(Json(state.db(|s| s.policies()).await?))
}

pub async fn get_policy(state: State, _a: AdminSession, Path(id): Path<u64>) -> Result<Json<Policy>, ApiError> {
    state
        .db(move |s| s.policy(id))
        .await?
        .map(Json)
        .ok_or_else(|| ApiError::new(StatusCode::NOT_FOUND, format!("no policy {id}")))
}

#[derive(Deserialize)]
pub struct PolicyBody {
    name: Option<String>,
    doc: PolicyDoc,
}

#[derive(Serialize)]
pub struct Created {
    id: u64,
}

pub async fn create_policy(
    state: State,
    _a: AdminSession,
    JsonBody(b): JsonBody<PolicyBody>,
) -> Result<Json<Created>, ApiError> {
    let name = b.name.filter(|n| !n.trim().is_empty()).ok_or_else(|| ApiError::bad_request("a policy needs a name"))?;
    let id = state.db(move |s| s.create_policy(name.trim(), &b.doc)).await?;
    Ok(Json(Created { id }))
}

#[derive(Serialize)]
pub struct Revision {
    revision: u64,
}

pub async fn update_policy(
    state: State,
    _a: AdminSession,
    Path(id): Path<u64>,
    JsonBody(b): JsonBody<PolicyBody>,
) -> Result<Json<Revision>, ApiError> {
    let revision = state.db(move |s| s.update_policy(id, b.name.as_deref(), &b.doc)).await?;
    state.bump_epoch();
    Ok(Json(Revision { revision }))
}

pub async fn delete_policy(state: State, _a: AdminSession, Path(id): Path<u64>) -> Result<StatusCode, ApiError> {
    state.db(move |s| s.delete_policy(id)).await?;
    Ok(StatusCode::NO_CONTENT)
}

pub async fn list_assignments(state: State, _a: AdminSession) -> Result<Json<Vec<Assignment>>, ApiError> {
    Ok(Json(state.db(|s| s.assignments()).await?))
}

#[derive(Deserialize)]
pub struct AssignBody {
    scope: Scope,
    #[serde(default)]
    target: u64,
    policy_id: u64,
}

pub async fn assign_policy(
    state: State,
    _a: AdminSession,
    JsonBody(b): JsonBody<AssignBody>,
) -> Result<StatusCode, ApiError> {
    state.db(move |s| s.assign_policy(b.scope, b.target, b.policy_id)).await?;
    state.bump_epoch();
    Ok(StatusCode::NO_CONTENT)
}

#[derive(Deserialize)]
pub struct UnassignParams {
    scope: Scope,
    #[serde(default)]
    target: u64,
}

pub async fn unassign_policy(
    state: State,
    _a: AdminSession,
    Query(p): Query<UnassignParams>,
) -> Result<StatusCode, ApiError> {
    state.db(move |s| s.unassign_policy(p.scope, p.target)).await?;
    state.bump_epoch();
    Ok(StatusCode::NO_CONTENT)
}

#[derive(Deserialize)]
pub struct ConsentParams {
    employee_id: Option<u64>,
}

pub async fn list_consents(
    state: State,
    AdminSession(admin): AdminSession,
    Query(p): Query<ConsentParams>,
) -> Result<Json<Vec<ConsentRecord>>, ApiError> {
    let target = p.employee_id.map_or("consents:*".into(), |e| format!("consents:employee:{e}"));
    audit(&state, &admin, "consents.view", target).await?;
    Ok(Json(state.db(move |s| s.consents(p.employee_id)).await?))
}

#[derive(Deserialize)]
pub struct ConsentBody {
    employee_id: u64,
    category: String,
    granted: bool,
    /// How consent was given: `api` (default), `portal`, `paper`.
    method: Option<String>,
    note: Option<String>,
}

pub async fn record_consent(
    state: State,
    AdminSession(admin): AdminSession,
    JsonBody(b): JsonBody<ConsentBody>,
) -> Result<Json<Created>, ApiError> {
    let category: Category = b.category.parse().map_err(ApiError::bad_request)?;
    if category == Category::System {
        return Err(ApiError::bad_request("the system category needs no consent"));
    }
    let method = b.method.unwrap_or_else(|| "api".into());
    if !["api", "portal", "paper"].contains(&method.as_str()) {
        return Err(ApiError::bad_request("method must be api, portal or paper"));
    }
    let c = NewConsent {
        employee_id: b.employee_id,
        category,
        granted: b.granted,
        method,
        note: b.note.map(|n| n.chars().take(1000).collect()),
        recorded_by: admin.username.clone(),
    };
    let id = state.db(move |s| s.record_consent(&c)).await?;
    state.bump_epoch();
    Ok(Json(Created { id }))
}

pub async fn list_departments(state: State, _a: AdminSession) -> Result<Json<Vec<Department>>, ApiError> {
    Ok(Json(state.db(|s| s.departments()).await?))
}

#[derive(Deserialize)]
pub struct DepartmentBody {
    name: String,
    parent_id: Option<u64>,
}

pub async fn create_department(
    state: State,
    _a: AdminSession,
    JsonBody(b): JsonBody<DepartmentBody>,
) -> Result<Json<Created>, ApiError> {
    let id = state.db(move |s| s.create_department(&b.name, b.parent_id)).await?;
    Ok(Json(Created { id }))
}

pub async fn list_employees(state: State, _a: AdminSession) -> Result<Json<Vec<Employee>>, ApiError> {
    Ok(Json(state.db(|s| s.employees()).await?))
}

#[derive(Deserialize)]
pub struct EmployeeBody {
    name: String,
    username: Option<String>,
    department_id: Option<u64>,
}

pub async fn create_employee(
    state: State,
    _a: AdminSession,
    JsonBody(b): JsonBody<EmployeeBody>,
) -> Result<Json<Created>, ApiError> {
    let id = state.db(move |s| s.create_employee(&b.name, b.username.as_deref(), b.department_id)).await?;
    state.bump_epoch();
    Ok(Json(Created { id }))
}

#[derive(Deserialize)]
pub struct AccessParams {
    limit: Option<u32>,
    before: Option<u64>,
}

pub async fn access_log(
    state: State,
    _a: AdminSession,
    Query(p): Query<AccessParams>,
) -> Result<Json<Vec<AccessEntry>>, ApiError> {
    let limit = p.limit.unwrap_or(100).clamp(1, 1000);
    Ok(Json(state.db(move |s| s.access_log(limit, p.before)).await?))
}
