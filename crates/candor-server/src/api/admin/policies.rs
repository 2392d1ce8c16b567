//! Policies and their assignment to scopes.

use super::{not_found, Created};
use crate::api::auth::AdminSession;
use crate::api::{ApiError, JsonBody, State};
use crate::roles::Perm;
use crate::store::{Assignment, Policy, Scope};
use axum::extract::{Path, Query};
use axum::http::StatusCode;
use axum::Json;
use candor_proto::policy::PolicyDoc;
use serde::{Deserialize, Serialize};

pub async fn list_policies(state: State, session: AdminSession) -> Result<Json<Vec<Policy>>, ApiError> {
    session.require(Perm::ViewPolicies)?;
    Ok(Json(state.db(|s| s.policies()).await?))
}

pub async fn get_policy(state: State, session: AdminSession, Path(id): Path<u64>) -> Result<Json<Policy>, ApiError> {
    session.require(Perm::ViewPolicies)?;
    state.db(move |s| s.policy(id)).await?.map(Json).ok_or_else(|| not_found(format!("policy {id}")))
}

fn validate(doc: &PolicyDoc) -> Result<(), ApiError> {
    doc.software.validate().map_err(ApiError::bad_request)?;
    doc.screen.validate().map_err(ApiError::bad_request)?;
    for (name, p) in [("title_pattern", &doc.screen.title_pattern), ("hide_titles", &doc.screen.hide_titles)] {
        if let Some(p) = p {
            regex::Regex::new(p).map_err(|e| ApiError::bad_request(format!("screen.{name}: {e}")))?;
        }
    }
    if let Some(w) = &doc.collect_hours {
        w.validate().map_err(|e| ApiError::bad_request(format!("collect_hours: {e}")))?;
    }
    for (section, lines) in [("web.block", &doc.web.block), ("web.allow", &doc.web.allow)] {
        for (i, line) in lines.iter().enumerate() {
            let mut rules = 0;
            candor_webrules::parse_line(line, &mut |_| rules += 1)
                .and_then(|()| if rules == 0 { Err("no rule on this line".into()) } else { Ok(()) })
                .map_err(|e| ApiError::bad_request(format!("{section}[{i}] {line:?}: {e}")))?;
        }
    }
    for (i, c) in doc.web.block_categories.iter().enumerate() {
        if let Some(s) = &c.schedule {
            s.validate().map_err(|e| ApiError::bad_request(format!("web.block_categories[{i}]: {e}")))?;
        }
    }
    Ok(())
}

/// The stated reason when a policy turns the live-view notice off: saving
/// such a policy is written to the access log, where auditors see it.
fn notice_off(doc: &PolicyDoc) -> Option<String> {
    (!doc.screen.live_notice).then(|| doc.screen.live_notice_off_reason.clone().unwrap_or_default())
}

#[derive(Deserialize)]
pub struct PolicyBody {
    name: Option<String>,
    doc: PolicyDoc,
}

pub async fn create_policy(
    state: State,
    session: AdminSession,
    JsonBody(b): JsonBody<PolicyBody>,
) -> Result<Json<Created>, ApiError> {
    let name = b.name.filter(|n| !n.trim().is_empty()).ok_or_else(|| ApiError::bad_request("a policy needs a name"))?;
    let admin = session.require(Perm::ManagePolicies)?;
    validate(&b.doc)?;
    let off = notice_off(&b.doc);
    let id = state.db(move |s| s.create_policy(name.trim(), &b.doc)).await?;
    if let Some(reason) = off {
        super::audit(&state, admin, "policy.live_notice_off", format!("policy:{id} reason:{reason}")).await?;
    }
    Ok(Json(Created { id }))
}

#[derive(Serialize)]
pub struct Revision {
    revision: u64,
}

pub async fn update_policy(
    state: State,
    session: AdminSession,
    Path(id): Path<u64>,
    JsonBody(b): JsonBody<PolicyBody>,
) -> Result<Json<Revision>, ApiError> {
    let admin = session.require(Perm::ManagePolicies)?;
    validate(&b.doc)?;
    let off = notice_off(&b.doc);
    let revision = state.db(move |s| s.update_policy(id, b.name.as_deref(), &b.doc)).await?;
    if let Some(reason) = off {
        super::audit(&state, admin, "policy.live_notice_off", format!("policy:{id} reason:{reason}")).await?;
    }
    state.bump_epoch();
    Ok(Json(Revision { revision }))
}

pub async fn delete_policy(state: State, session: AdminSession, Path(id): Path<u64>) -> Result<StatusCode, ApiError> {
    session.require(Perm::ManagePolicies)?;
    state.db(move |s| s.delete_policy(id)).await?;
    Ok(StatusCode::NO_CONTENT)
}

pub async fn list_assignments(state: State, session: AdminSession) -> Result<Json<Vec<Assignment>>, ApiError> {
    session.require(Perm::ViewPolicies)?;
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
    session: AdminSession,
    JsonBody(b): JsonBody<AssignBody>,
) -> Result<StatusCode, ApiError> {
    session.require(Perm::ManagePolicies)?;
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
    session: AdminSession,
    Query(p): Query<UnassignParams>,
) -> Result<StatusCode, ApiError> {
    session.require(Perm::ManagePolicies)?;
    state.db(move |s| s.unassign_policy(p.scope, p.target)).await?;
    state.bump_epoch();
    Ok(StatusCode::NO_CONTENT)
}
