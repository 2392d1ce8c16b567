//! Screen playback: the frames recorded for an employee over a time range,
//! and the picture of one display at any instant (its last key frame and
//! the changed tiles after it, composed on the server). Every call is
//! written to the access log before anything is read.

use super::{agents_of, audit, not_found, visible_employee, Visibility};
use crate::api::auth::AdminSession;
use crate::api::{ApiError, AppState, State};
use crate::roles::Perm;
use crate::store::blob::BlobStore as _;
use crate::store::ScreenFrame;
use axum::extract::Query;
use axum::http::{header, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Json;
use serde::{Deserialize, Serialize};
use std::sync::Arc;

/// Frames listed in one answer (about 14 hours at one every 10 s).
const MAX_FRAMES: u32 = 5000;
/// Longest range listed at once.
const MAX_RANGE_MS: i64 = 31 * 86_400_000;

#[derive(Deserialize)]
pub struct FramesQuery {
    employee: u64,
    from_ms: i64,
    to_ms: i64,
}

#[derive(Serialize)]
pub struct Frames {
    employee_id: u64,
    frames: Vec<ScreenFrame>,
    /// More frames exist in the range than were listed.
    truncated: bool,
}

pub async fn frames(
    state: State,
    session: AdminSession,
    Query(q): Query<FramesQuery>,
) -> Result<Json<Frames>, ApiError> {
    session.require(Perm::ViewEvents)?;
    if q.to_ms < q.from_ms || q.to_ms - q.from_ms > MAX_RANGE_MS {
        return Err(ApiError::bad_request("the range must run forward and span at most 31 days"));
    }
    let employee = visible_employee(&state, &session, q.employee).await?;
    audit(&state, &session.0, "screen.frames", format!("employee:{} {}..{}", employee.id, q.from_ms, q.to_ms)).await?;
    let agents = state.db(|s| s.agents()).await?;
    let mine = agents_of(&agents, &employee);
    let (from, to) = (q.from_ms, q.to_ms);
    let rows = state.db(move |s| s.screen_frames(&mine, from, to, MAX_FRAMES + 1)).await?;
    let truncated = rows.len() > MAX_FRAMES as usize;
    let frames = rows.into_iter().take(MAX_FRAMES as usize).collect();
    Ok(Json(Frames { employee_id: employee.id, frames, truncated }))
}

#[derive(Deserialize)]
pub struct ImageQuery {
    agent: u64,
    display: String,
    at_ms: i64,
}

/// Why a picture cannot be shown.
enum Render {
    Missing(u64),
    Corrupt(u64, String),
}

pub async fn image(state: State, session: AdminSession, Query(q): Query<ImageQuery>) -> Result<Response, ApiError> {
    session.require(Perm::ViewEvents)?;
    let vis = Visibility::load(&state, &session).await?;
    let agent = state
        .db(|s| s.agents())
        .await?
        .into_iter()
        .find(|a| a.id == q.agent && vis.agent(a))
        .ok_or_else(|| not_found(format!("agent {}", q.agent)))?;
    let owner = agent.employee_id.map_or_else(|| "unassigned".into(), |e| format!("employee:{e}"));
    audit(&state, &session.0, "screen.view", format!("{owner} agent:{} {} at {}", agent.id, q.display, q.at_ms))
        .await?;
    picture(&state, agent.id, q.display, q.at_ms).await
}

/// The picture of `display` at `at_ms`: the last key frame at or before it and
/// the deltas after that, composed. Callers check access and log it first.
pub(crate) async fn picture(
    state: &Arc<AppState>,
    agent: u64,
    display: String,
    at_ms: i64,
) -> Result<Response, ApiError> {
    let d = display.clone();
    let chain = state.db(move |s| s.screen_chain(agent, &d, at_ms)).await?;
    let Some(last) = chain.last().map(|f| f.ts_ms) else {
        return Err(not_found(format!("screen frame of agent {agent} on {display} at or before {at_ms}")));
    };
    let blobs = state.blobs.clone();
    let rendered = tokio::task::spawn_blocking(move || {
        let mut canvas = candor_screen::Canvas::new();
        for f in &chain {
            let bytes = match blobs.get(&f.blob) {
                Ok(Some(b)) => b,
                Ok(None) => return Err(Render::Missing(f.seq)),
                Err(e) => return Err(Render::Corrupt(f.seq, e.to_string())),
            };
            canvas.apply(&bytes).map_err(|e| Render::Corrupt(f.seq, e.to_string()))?;
        }
        canvas.to_jpeg(90).ok_or(Render::Corrupt(0, "nothing to show".into()))
    })
    .await
    .map_err(|e| ApiError::internal(e.to_string()))?;
    match rendered {
        Ok(jpeg) => Ok((
            [
                (header::CONTENT_TYPE, "image/jpeg".to_string()),
                (header::CACHE_CONTROL, "private, no-store".to_string()),
                (header::HeaderName::from_static("x-candor-frame-ts"), last.to_string()),
            ],
            jpeg,
        )
            .into_response()),
        Err(Render::Missing(seq)) => Err(ApiError::new(
            StatusCode::GONE,
            format!("screen frame {seq} of agent {} is missing from the blob store", agent),
        )),
        Err(Render::Corrupt(seq, e)) => {
            tracing::warn!(agent = agent, seq, error = %e, "corrupt screen frame");
            Err(ApiError::new(
                StatusCode::UNPROCESSABLE_ENTITY,
                format!("screen frame {seq} of agent {} is corrupt: {e}", agent),
            ))
        }
    }
}
