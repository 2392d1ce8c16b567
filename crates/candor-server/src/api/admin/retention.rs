//! Retention for admins: the periods in force, legal holds (placing and
//! releasing one is written to the access log) and the purge log; a purge
//! can also be run at once.

use super::{audit, visible_employee};
use crate::api::auth::AdminSession;
use crate::api::{ApiError, JsonBody, State};
use crate::config::RetentionConfig;
use crate::roles::Perm;
use crate::store::{LegalHold, PurgeRecord};
use axum::extract::Path;
use axum::http::StatusCode;
use axum::Json;
use candor_proto::now_ms;
use serde::{Deserialize, Serialize};

#[derive(Serialize)]
pub struct Retention {
    periods: RetentionConfig,
    holds: Vec<LegalHold>,
    purges: Vec<PurgeRecord>,
}

pub async fn overview(state: State, session: AdminSession) -> Result<Json<Retention>, ApiError> {
    session.require(Perm::ViewConsent)?;
    let (holds, purges) = state.db(|s| Ok((s.legal_holds()?, s.purge_log(200)?))).await?;
    Ok(Json(Retention { periods: state.config.retention.clone(), holds, purges }))
}

#[derive(Deserialize)]
pub struct HoldBody {
    reason: String,
}

pub async fn place_hold(
    state: State,
    session: AdminSession,
    Path(id): Path<u64>,
    JsonBody(b): JsonBody<HoldBody>,
) -> Result<StatusCode, ApiError> {
    session.require(Perm::ManageConsent)?;
    let reason = b.reason.trim().to_string();
    if reason.is_empty() || reason.chars().count() > 500 {
        return Err(ApiError::bad_request("a legal hold needs a reason (up to 500 characters)"));
    }
    visible_employee(&state, &session, id).await?;
    audit(&state, &session.0, "legal_hold.place", format!("employee:{id} reason:{reason}")).await?;
    let by = session.0.username.clone();
    state.db(move |s| s.set_legal_hold(id, Some(&reason), &by, now_ms())).await?;
    Ok(StatusCode::NO_CONTENT)
}

pub async fn release_hold(state: State, session: AdminSession, Path(id): Path<u64>) -> Result<StatusCode, ApiError> {
    session.require(Perm::ManageConsent)?;
    visible_employee(&state, &session, id).await?;
    audit(&state, &session.0, "legal_hold.release", format!("employee:{id}")).await?;
    let by = session.0.username.clone();
    state.db(move |s| s.set_legal_hold(id, None, &by, now_ms())).await?;
    Ok(StatusCode::NO_CONTENT)
}

pub async fn purge(state: State, session: AdminSession) -> Result<Json<Vec<PurgeRecord>>, ApiError> {
    session.require(Perm::ManageConsent)?;
    audit(&state, &session.0, "retention.purge", "all categories".into()).await?;
    Ok(Json(crate::retention::purge_now(&state).await?))
}
