//! Chat audit for admins: import, substring search, conversation view,
//! contact consent, errors, and the DLP rules. Every search and every
//! conversation opened is written to the access log first.

use super::{audit, visible_employee};
use crate::api::auth::AdminSession;
use crate::api::{ApiError, AppState, JsonBody, State};
use crate::chat::{Chat, Order, TakeIn, Visibility};
use crate::roles::Perm;
use crate::store::{ChatError, ChatRoomName, ChatRow, ContactConsent, Store};
use axum::body::Bytes;
use axum::extract::{Path, Query};
use axum::http::StatusCode;
use axum::Json;
use candor_chat::import::{self, Format};
use candor_chat::index::SearchQuery;
use candor_chat::text::highlights;
use candor_dlp::RuleSpec;
use serde::{Deserialize, Serialize};
use std::sync::Arc;

/// Runs chat work (store and index) on the blocking pool.
async fn chat_op<T: Send + 'static>(
    state: &Arc<AppState>,
    f: impl FnOnce(&dyn Store, &Chat) -> crate::store::Result<T> + Send + 'static,
) -> Result<T, ApiError> {
    let (store, chat) = (state.store.clone(), state.chat.clone());
    tokio::task::spawn_blocking(move || f(store.as_ref(), &chat))
        .await
        .map_err(|e| ApiError::internal(format!("task failed: {e}")))?
        .map_err(ApiError::from)
}

#[derive(Deserialize)]
pub struct ImportParams {
    format: Option<String>,
}

pub async fn import(
    state: State,
    session: AdminSession,
    Query(p): Query<ImportParams>,
    body: Bytes,
) -> Result<Json<TakeIn>, ApiError> {
    session.require(Perm::ViewChat)?;
    let format: Format = p.format.as_deref().unwrap_or("jsonl").parse().map_err(ApiError::bad_request)?;
    audit(&state, &session.0, "chat.import", format!("{} bytes", body.len())).await?;
    let source = format!("import:{}", session.0.username);
    let out = chat_op(&state, move |store, chat| {
        let mut msgs = Vec::new();
        let mut errors = Vec::new();
        for (line, r) in import::read(format, &body) {
            match r {
                Ok(m) => msgs.push(m),
                Err(e) => errors.push((format!("line {line}"), e, None)),
            }
        }
        chat.take_in(store, &source, &msgs, errors)
    })
    .await?;
    Ok(Json(out))
}

#[derive(Deserialize)]
pub struct SearchParams {
    #[serde(default)]
    q: String,
    employee: Option<u64>,
    contact: Option<String>,
    room: Option<String>,
    #[serde(rename = "type")]
    kind: Option<String>,
    from: Option<i64>,
    to: Option<i64>,
    limit: Option<usize>,
    offset: Option<usize>,
    #[serde(default)]
    order: Order,
}

#[derive(Serialize)]
pub struct Hit {
    #[serde(flatten)]
    message: ChatRow,
    /// Character ranges `[from, to)` of the query in `text`.
    highlights: Vec<(usize, usize)>,
}

#[derive(Serialize)]
pub struct SearchResult {
    total: usize,
    hits: Vec<Hit>,
}

pub async fn search(
    state: State,
    session: AdminSession,
    Query(p): Query<SearchParams>,
) -> Result<Json<SearchResult>, ApiError> {
    session.require(Perm::ViewChat)?;
    let mut people = Vec::new();
    if let Some(id) = p.employee {
        let e = visible_employee(&state, &session, id).await?;
        people.push(e.username.ok_or_else(|| ApiError::bad_request(format!("employee {id} has no login name")))?);
    }
    people.extend(p.contact.clone().filter(|c| !c.is_empty()));
    audit(
        &state,
        &session.0,
        "chat.search",
        format!(
            "q={:?} people={} room={} type={} from={} to={} order={:?}",
            p.q,
            if people.is_empty() { "*".into() } else { people.join(",") },
            p.room.as_deref().unwrap_or("*"),
            p.kind.as_deref().unwrap_or("*"),
            p.from.map_or("*".into(), |v| v.to_string()),
            p.to.map_or("*".into(), |v| v.to_string()),
            p.order,
        ),
    )
    .await?;
    let text = p.q.trim().to_string();
    let q = SearchQuery {
        text: text.clone(),
        from_ms: p.from,
        to_ms: p.to,
        people,
        room: p.room.filter(|r| !r.is_empty()),
        kind: p.kind.filter(|k| !k.is_empty()),
        limit: p.limit.unwrap_or(50).clamp(1, 500),
        offset: p.offset.unwrap_or(0).min(100_000),
        // What consent hides is filled in by `Chat::search`.
        ..SearchQuery::default()
    };
    let order = p.order;
    let (total, rows) = chat_op(&state, move |store, chat| chat.search(store, q, order)).await?;
    let hits = rows
        .into_iter()
        .map(|m| Hit { highlights: if text.is_empty() { Vec::new() } else { highlights(&m.text, &text) }, message: m })
        .collect();
    Ok(Json(SearchResult { total, hits }))
}

#[derive(Deserialize)]
pub struct ConversationParams {
    before: Option<u32>,
    after: Option<u32>,
}

/// A message with its conversation around it; refused while consent hides it.
pub async fn conversation(
    state: State,
    session: AdminSession,
    Path(id): Path<u64>,
    Query(p): Query<ConversationParams>,
) -> Result<Json<Vec<ChatRow>>, ApiError> {
    session.require(Perm::ViewChat)?;
    audit(&state, &session.0, "chat.conversation", format!("message:{id}")).await?;
    let (before, after) = (p.before.unwrap_or(20).min(200), p.after.unwrap_or(20).min(200));
    let rows = chat_op(&state, move |store, _| {
        let visibility = Visibility::now(store)?;
        let rows = store.chat_conversation(id, before, after)?;
        let visible = |r: &ChatRow| visibility.shows(&r.from, &r.tolist, &r.roomid);
        if !rows.iter().any(|r| r.id == id && visible(r)) {
            return Err(crate::store::StoreError::NotFound(format!("chat message {id}")));
        }
        Ok(rows.into_iter().filter(visible).collect())
    })
    .await?;
    Ok(Json(rows))
}

#[derive(Serialize)]
pub struct Contacts {
    /// External contacts' archiving consent in force, per scope.
    consents: Vec<ContactConsent>,
    /// Employees whose chats are hidden now (no chat consent).
    hidden: Vec<String>,
    /// External contacts' conversations hidden now (no agreement there):
    /// `{contact, scope}`.
    hidden_scopes: Vec<HiddenScope>,
    /// Employees WeCom archives (its permit list, as last synced).
    archived: Vec<String>,
    /// Internal group chats' names (as last synced).
    rooms: Vec<ChatRoomName>,
}

#[derive(Serialize, PartialEq, Eq, PartialOrd, Ord)]
pub struct HiddenScope {
    contact: String,
    scope: String,
}

pub async fn contacts(state: State, session: AdminSession) -> Result<Json<Contacts>, ApiError> {
    session.require(Perm::ViewChat)?;
    let contacts = state
        .db(|s| {
            let visibility = Visibility::now(s)?;
            let mut hidden: Vec<String> = visibility.people.into_iter().collect();
            hidden.sort();
            let mut hidden_scopes: Vec<HiddenScope> =
                visibility.scopes.into_iter().map(|(contact, scope)| HiddenScope { contact, scope }).collect();
            hidden_scopes.sort();
            Ok(Contacts {
                consents: s.contact_consents()?,
                hidden,
                hidden_scopes,
                archived: s.chat_permit_users()?,
                rooms: s.chat_room_names()?,
            })
        })
        .await?;
    Ok(Json(contacts))
}

pub async fn errors(state: State, session: AdminSession) -> Result<Json<Vec<ChatError>>, ApiError> {
    session.require(Perm::ViewChat)?;
    Ok(Json(state.db(|s| s.chat_errors(500)).await?))
}

pub async fn get_rules(state: State, session: AdminSession) -> Result<Json<Vec<RuleSpec>>, ApiError> {
    session.require(Perm::ViewPolicies)?;
    Ok(Json(state.db(crate::chat::stored_rules).await?))
}

pub async fn put_rules(
    state: State,
    session: AdminSession,
    JsonBody(rules): JsonBody<Vec<RuleSpec>>,
) -> Result<StatusCode, ApiError> {
    session.require(Perm::ManagePolicies)?;
    let by = session.0.username.clone();
    chat_op(&state, move |store, chat| chat.set_rules(store, &rules, &by)).await?;
    Ok(StatusCode::NO_CONTENT)
}
