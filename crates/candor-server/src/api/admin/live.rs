//! Live view and the screen wall over WebSocket. Opening either is written
//! to the access log first; while it is open the endpoint's agent streams
//! (and tells the employee they are being watched), and when the last viewer
//! leaves it stops. Only endpoints whose screen may be collected (policy and
//! consent) can be watched.

use super::{audit, not_found, Visibility};
use crate::api::auth::AdminSession;
use crate::api::{ApiError, AppState, State};
use crate::live::{Frame, Kind, Watching};
use crate::roles::Perm;
use crate::store::Agent;
use axum::extract::ws::{Message, WebSocket, WebSocketUpgrade};
use axum::extract::{Path, Query};
use axum::http::{header, HeaderMap, StatusCode};
use axum::response::Response;
use candor_proto::Category;
use serde::{Deserialize, Serialize};
use std::collections::HashSet;
use std::sync::Arc;
use tokio::sync::broadcast;

/// A browser may open these only from the console's own pages: the session
/// cookie alone must not let another site watch screens.
fn same_origin(headers: &HeaderMap) -> Result<(), ApiError> {
    let Some(origin) = headers.get(header::ORIGIN) else { return Ok(()) };
    let host = headers.get(header::HOST).and_then(|h| h.to_str().ok()).unwrap_or("");
    let origin_host = origin.to_str().ok().and_then(|o| o.split_once("://")).map(|(_, h)| h);
    if origin_host == Some(host) {
        Ok(())
    } else {
        Err(ApiError::new(StatusCode::FORBIDDEN, "live screens open only from the console's own origin"))
    }
}

async fn watchable(state: &Arc<AppState>, session: &AdminSession) -> Result<Vec<(Agent, bool)>, ApiError> {
    let scope = Visibility::load(state, session).await?;
    let agents = state.db(|s| s.agents()).await?;
    let mut out = Vec::new();
    for a in agents.into_iter().filter(|a| scope.agent(a) && a.revoked_ms.is_none()) {
        let allowed = state.effective(a.id).await?.allows(Category::Screen);
        out.push((a, allowed));
    }
    Ok(out)
}

fn owner(a: &Agent) -> String {
    a.employee_id.map_or_else(|| "unassigned".into(), |e| format!("employee:{e}"))
}

/// Watch one endpoint's screen live.
pub async fn live(
    state: State,
    session: AdminSession,
    Path(id): Path<u64>,
    headers: HeaderMap,
    ws: WebSocketUpgrade,
) -> Result<Response, ApiError> {
    session.require(Perm::ViewEvents)?;
    same_origin(&headers)?;
    let (agent, allowed) = watchable(&state, &session)
        .await?
        .into_iter()
        .find(|(a, _)| a.id == id)
        .ok_or_else(|| not_found(format!("agent {id}")))?;
    if !allowed {
        return Err(ApiError::new(
            StatusCode::CONFLICT,
            format!("the screen of agent {id} is not collected (policy or consent), so it cannot be watched"),
        ));
    }
    audit(&state, &session.0, "screen.live", format!("{} agent:{id}", owner(&agent))).await?;
    let (rx, guard) = state.live.watch(vec![id], Kind::View);
    Ok(ws.on_upgrade(move |socket| forward(socket, rx, guard, None)))
}

#[derive(Deserialize)]
pub struct WallQuery {
    department: Option<u64>,
}

/// A tile of the wall, sent as the first (text) message.
#[derive(Serialize)]
struct Tile {
    agent: u64,
    hostname: String,
    employee_id: Option<u64>,
}

/// How often an open wall looks again for endpoints that came online, or
/// whose screen may now (or may no longer) be collected.
const WALL_RESCAN: std::time::Duration = std::time::Duration::from_secs(3);

/// The endpoints a wall shows now: online, in scope (and the department), screen collected.
async fn wall_tiles(
    state: &Arc<AppState>,
    session: &AdminSession,
    department: Option<u64>,
) -> Result<Vec<Agent>, ApiError> {
    Ok(watchable(state, session)
        .await?
        .into_iter()
        .filter(|(a, allowed)| *allowed && a.online && department.is_none_or(|d| a.department_id == Some(d)))
        .map(|(a, _)| a)
        .collect())
}

/// Watch `tiles` (logged first, naming each endpoint) and the text message listing them.
async fn show_tiles(
    state: &Arc<AppState>,
    session: &AdminSession,
    tiles: &[Agent],
) -> Result<(broadcast::Receiver<Arc<Frame>>, Watching, String), ApiError> {
    let target: Vec<String> = tiles.iter().map(|a| format!("{} agent:{}", owner(a), a.id)).collect();
    audit(state, &session.0, "screen.wall", if target.is_empty() { "none".into() } else { target.join(" ") }).await?;
    let list: Vec<Tile> =
        tiles.iter().map(|a| Tile { agent: a.id, hostname: a.hostname.clone(), employee_id: a.employee_id }).collect();
    let (rx, guard) = state.live.watch(tiles.iter().map(|a| a.id).collect(), Kind::Wall);
    Ok((rx, guard, serde_json::to_string(&list).unwrap_or_default()))
}

/// Thumbnails of every online endpoint in scope (or one department's) whose
/// screen may be collected. The tile list (a text message) is sent again
/// whenever that set changes while the wall is open; each change is logged.
pub async fn wall(
    state: State,
    session: AdminSession,
    Query(q): Query<WallQuery>,
    headers: HeaderMap,
    ws: WebSocketUpgrade,
) -> Result<Response, ApiError> {
    session.require(Perm::ViewEvents)?;
    same_origin(&headers)?;
    let tiles = wall_tiles(&state, &session, q.department).await?;
    let (rx, guard, intro) = show_tiles(&state, &session, &tiles).await?;
    let ids = tiles.iter().map(|a| a.id).collect();
    let scope = WallScope { state: state.0.clone(), session, department: q.department, ids };
    Ok(ws.on_upgrade(move |mut socket| async move {
        if socket.send(Message::Text(intro.into())).await.is_ok() {
            forward(socket, rx, guard, Some(scope)).await;
        }
    }))
}

/// What an open wall shows, to look again every `WALL_RESCAN`.
struct WallScope {
    state: Arc<AppState>,
    session: AdminSession,
    department: Option<u64>,
    ids: HashSet<u64>,
}

impl WallScope {
    /// The new watch and tile list if the set of tiles changed.
    async fn rescan(&mut self) -> Result<Option<(broadcast::Receiver<Arc<Frame>>, Watching, String)>, ApiError> {
        let now = wall_tiles(&self.state, &self.session, self.department).await?;
        let ids: HashSet<u64> = now.iter().map(|a| a.id).collect();
        if ids == self.ids {
            return Ok(None);
        }
        self.ids = ids;
        show_tiles(&self.state, &self.session, &now).await.map(Some)
    }
}

/// Send each picture to the viewer until either side closes; a wall viewer
/// gets only its own tiles, and a new tile list when they change.
async fn forward(
    mut socket: WebSocket,
    mut rx: broadcast::Receiver<Arc<Frame>>,
    mut guard: Watching,
    mut wall: Option<WallScope>,
) {
    let mut rescan = tokio::time::interval_at(tokio::time::Instant::now() + WALL_RESCAN, WALL_RESCAN);
    loop {
        tokio::select! {
            f = rx.recv() => match f {
                Ok(f) if wall.as_ref().is_none_or(|w| w.ids.contains(&f.head.agent)) => {
                    if socket.send(Message::Binary(f.message().into())).await.is_err() {
                        break;
                    }
                }
                Ok(_) | Err(broadcast::error::RecvError::Lagged(_)) => {}
                Err(broadcast::error::RecvError::Closed) => break,
            },
            m = socket.recv() => match m {
                Some(Ok(Message::Close(_))) | Some(Err(_)) | None => break,
                Some(Ok(_)) => {}
            },
            _ = rescan.tick(), if wall.is_some() => {
                let Some(w) = wall.as_mut() else { continue };
                match w.rescan().await {
                    Ok(None) => {}
                    Ok(Some((new_rx, new_guard, list))) => {
                        // The new watch starts before the old one ends, so kept tiles keep streaming.
                        rx = new_rx;
                        drop(std::mem::replace(&mut guard, new_guard));
                        if socket.send(Message::Text(list.into())).await.is_err() {
                            break;
                        }
                    }
                    Err(_) => break,
                }
            }
        }
    }
    drop(guard);
}
