//! Agent-facing routes: enrollment, ingest, heartbeat, policy long-poll.
//! Agents authenticate as `Authorization: Bearer <agent_id>.<secret>`.

use super::{ApiError, AppState, JsonBody, State};
use crate::store::IngestItem;
use axum::body::Bytes;
use axum::extract::rejection::BytesRejection;
use axum::extract::{FromRequestParts, Query};
use axum::http::request::Parts;
use axum::http::{header, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Json;
use candor_proto::api::{EnrollRequest, EnrollResponse, Heartbeat, IngestAck};
use candor_proto::event::CategorySet;
use candor_proto::policy::EffectivePolicy;
use candor_proto::token::sha256_hex;
use candor_proto::{batch, now_ms};
use serde::Deserialize;
use std::sync::Arc;
use std::time::Duration;

/// An authenticated, non-revoked agent.
pub struct AgentAuth(pub u64);

impl FromRequestParts<Arc<AppState>> for AgentAuth {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &Arc<AppState>) -> Result<Self, ApiError> {
        let value = parts
            .headers
            .get(header::AUTHORIZATION)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.strip_prefix("Bearer "))
            .ok_or_else(|| ApiError::unauthorized("agent credentials missing"))?;
        let (id, secret) = value
            .split_once('.')
            .and_then(|(id, s)| Some((id.parse::<u64>().ok()?, s)))
            .ok_or_else(|| ApiError::unauthorized("agent credentials malformed"))?;
        let cached = state.creds.lock().ok().and_then(|c| c.get(&id).cloned());
        let cred = match cached {
            Some(c) => c,
            None => {
                let c = state
                    .db(move |s| s.agent_credential(id))
                    .await?
                    .ok_or_else(|| ApiError::unauthorized("unknown agent"))?;
                if let Ok(mut m) = state.creds.lock() {
                    m.insert(id, c.clone());
                }
                c
            }
        };
        if sha256_hex(secret.as_bytes()) != cred.secret_hash {
            return Err(ApiError::unauthorized("agent credentials rejected"));
        }
        if let Some(reason) = cred.revoked_reason {
            return Err(ApiError::forbidden(format!("agent revoked: {reason}")));
        }
        Ok(AgentAuth(id))
    }
}

pub async fn ca_pem(state: State) -> impl IntoResponse {
    ([(header::CONTENT_TYPE, "application/x-pem-file")], state.ca_pem.clone())
}

pub async fn enroll(state: State, JsonBody(req): JsonBody<EnrollRequest>) -> Result<Json<EnrollResponse>, ApiError> {
    let resp = state.db(move |s| crate::enrollment::enroll(s, &req)).await.map_err(|e| {
        // Say plainly why a token is refused.
        let status = match e.status {
            StatusCode::NOT_FOUND => StatusCode::UNAUTHORIZED,
            StatusCode::CONFLICT => StatusCode::FORBIDDEN,
            s => s,
        };
        ApiError::new(status, e.message.trim_start_matches("not found: ").trim_start_matches("conflict: "))
    })?;
    tracing::info!(agent_id = resp.agent_id, "agent enrolled");
    Ok(Json(resp))
}

/// Categories this agent may send now; cached until the policy epoch moves.
async fn allowed(state: &Arc<AppState>, agent_id: u64) -> Result<CategorySet, ApiError> {
    let epoch = *state.epoch.borrow();
    if let Some((e, set)) = state.allowed.lock().ok().and_then(|m| m.get(&agent_id).copied()) {
        if e == epoch {
            return Ok(set);
        }
    }
    let eff = state.db(move |s| crate::policy::effective_for(s, agent_id)).await?;
    if let Ok(mut m) = state.allowed.lock() {
        m.insert(agent_id, (epoch, eff.allowed));
    }
    Ok(eff.allowed)
}

pub async fn ingest(
    state: State,
    AgentAuth(agent_id): AgentAuth,
    body: Result<Bytes, BytesRejection>,
) -> Result<Json<IngestAck>, ApiError> {
    let body = body.map_err(|e| ApiError::new(e.status(), format!("batch body: {}", e.body_text())))?;
    let limits = state.config.ingest.limits();
    let decoded = batch::decode(&body, &limits).map_err(|e| {
        let status = match e {
            batch::BatchError::TooLarge(..) | batch::BatchError::DecompressedTooLarge(_) => {
                StatusCode::PAYLOAD_TOO_LARGE
            }
            _ => StatusCode::BAD_REQUEST,
        };
        ApiError::new(status, e.to_string())
    })?;
    if decoded.agent_id != agent_id {
        return Err(ApiError::forbidden(format!(
            "batch claims agent {} but the credentials are agent {agent_id}'s",
            decoded.agent_id
        )));
    }
    let allowed = allowed(&state, agent_id).await?;
    let (mut events, refused): (Vec<_>, Vec<_>) =
        decoded.events.into_iter().partition(|e| allowed.contains(e.category));
    if !refused.is_empty() {
        tracing::warn!(agent_id, refused = refused.len(), "refused events of categories not allowed for this agent");
    }
    let (events, screens) = if events.iter().any(|e| e.category == candor_proto::Category::Screen) {
        let blobs = state.blobs.clone();
        tokio::task::spawn_blocking(move || {
            let rows = crate::ingest::screen::store_frames(blobs.as_ref(), agent_id, &mut events);
            rows.map(|r| (events, r))
        })
        .await
        .map_err(|e| ApiError::internal(e.to_string()))?
        .map_err(|e| ApiError::internal(format!("storing screen frames: {e}")))?
    } else {
        (events, Vec::new())
    };
    let tz = crate::company_time::parse_tz(&state.config.console.timezone).map_err(ApiError::internal)?;
    let (rollups, apps) = crate::ingest::rollup::deltas(tz, &events);
    let item = IngestItem {
        agent_id,
        floor: decoded.floor,
        rollups,
        apps,
        web: crate::ingest::web_rollup::deltas(tz, &events),
        screens,
        alerts: crate::ingest::alerts::raised_by(agent_id, &events, &refused),
        refused: refused.iter().map(|e| e.seq).collect(),
        events,
    };
    let o = state.writer.submit(item).await.map_err(ApiError::internal)?;
    Ok(Json(IngestAck { acked: o.acked, stored: o.stored, duplicates: o.duplicates, refused: o.refused }))
}

pub async fn heartbeat(
    state: State,
    AgentAuth(agent_id): AgentAuth,
    JsonBody(hb): JsonBody<Heartbeat>,
) -> Result<StatusCode, ApiError> {
    let offline_after = state.config.presence.offline_after_secs as i64 * 1000;
    let mut hb = hb;
    // Bound what an agent can make us store.
    hb.users.truncate(64);
    hb.addresses.truncate(64);
    hb.notices.truncate(32);
    let users_changed = state.db(move |s| s.heartbeat(agent_id, &hb, now_ms(), offline_after)).await?;
    if users_changed {
        state.bump_epoch();
    }
    Ok(StatusCode::NO_CONTENT)
}

#[derive(Deserialize)]
pub struct PolicyPoll {
    /// The etag the agent has; the call waits until the policy differs.
    etag: Option<String>,
    /// Seconds to wait at most (capped by the server).
    wait: Option<u64>,
}

pub async fn policy(
    state: State,
    AgentAuth(agent_id): AgentAuth,
    Query(q): Query<PolicyPoll>,
) -> Result<Response, ApiError> {
    let wait = Duration::from_secs(q.wait.unwrap_or(0).min(state.config.presence.policy_poll_secs));
    let deadline = tokio::time::Instant::now() + wait;
    let mut epochs = state.epoch.subscribe();
    loop {
        epochs.mark_unchanged();
        let eff: EffectivePolicy = state.effective(agent_id).await?;
        if q.etag.as_deref() != Some(eff.etag.as_str()) {
            return Ok(Json(eff).into_response());
        }
        match tokio::time::timeout_at(deadline, epochs.changed()).await {
            Ok(Ok(())) => continue,
            _ => return Ok(StatusCode::NOT_MODIFIED.into_response()),
        }
    }
}

/// The text of a domain list the agent's policy names, by SHA-256.
pub async fn web_list(
    state: State,
    AgentAuth(agent_id): AgentAuth,
    axum::extract::Path(sha256): axum::extract::Path<String>,
) -> Result<Response, ApiError> {
    let eff: EffectivePolicy = state.db(move |s| crate::policy::effective_for(s, agent_id)).await?;
    // Only lists this agent's policy names: nothing else is readable this way.
    if !eff.web_lists.iter().any(|l| l.sha256 == sha256) {
        return Err(ApiError::new(StatusCode::NOT_FOUND, "no such list in this agent's policy"));
    }
    let web = state.web.clone();
    let text = tokio::task::spawn_blocking(move || crate::store::blob::BlobStore::get(&web.blobs, &sha256))
        .await
        .map_err(|e| ApiError::internal(e.to_string()))?
        .map_err(|e| ApiError::internal(e.to_string()))?
        .ok_or_else(|| ApiError::new(StatusCode::NOT_FOUND, "list text missing"))?;
    Ok(([(axum::http::header::CONTENT_TYPE, "text/plain; charset=utf-8")], text).into_response())
}

/// Largest live picture accepted (a 4K screen at high JPEG quality fits).
pub const MAX_LIVE_BYTES: usize = 4 << 20;

#[derive(Deserialize)]
pub struct LiveParams {
    /// `view` (full pictures) or `wall` (thumbnails).
    kind: String,
    display: String,
}

/// One live picture from the agent, handed to whoever watches: 204 when
/// someone does, 410 when nobody of that kind does any more (the agent stops).
pub async fn live_frame(
    state: State,
    AgentAuth(agent_id): AgentAuth,
    Query(p): Query<LiveParams>,
    headers: axum::http::HeaderMap,
    body: Bytes,
) -> Result<StatusCode, ApiError> {
    let kind = match p.kind.as_str() {
        "view" => crate::live::Kind::View,
        "wall" => crate::live::Kind::Wall,
        other => return Err(ApiError::bad_request(format!("live kind must be view or wall, not {other:?}"))),
    };
    if p.display.is_empty() || p.display.len() > 64 {
        return Err(ApiError::bad_request("display must be 1..=64 bytes"));
    }
    if !body.starts_with(b"\xff\xd8\xff") {
        return Err(ApiError::bad_request("a live picture must be a JPEG"));
    }
    // Live pictures are screen data: never without policy and consent.
    if !allowed(&state, agent_id).await?.contains(candor_proto::Category::Screen) {
        return Err(ApiError::new(StatusCode::FORBIDDEN, "screen is not allowed for this endpoint"));
    }
    let captured_ms = headers
        .get("x-candor-captured-ms")
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse().ok())
        .unwrap_or_else(candor_proto::now_ms);
    let head = crate::live::FrameHead { agent: agent_id, display: p.display, captured_ms, bytes: body.len() };
    let watched = state.live.publish(kind, crate::live::Frame { head, jpeg: body });
    Ok(if watched { StatusCode::NO_CONTENT } else { StatusCode::GONE })
}
