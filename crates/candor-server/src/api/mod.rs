//! HTTP API: routes, shared state and error mapping. Agent routes live in
//! [`agent`], admin authentication in [`auth`], admin resources in [`admin`].

pub mod admin;
pub mod agent;
pub mod auth;
pub mod portal;

use crate::config::ServerConfig;
use crate::ingest::IngestWriter;
use crate::store::{AgentCredential, Store, StoreError};
use axum::http::{header, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{delete, get, post, put};
use axum::{Json, Router};
use candor_proto::event::CategorySet;
use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use tokio::sync::watch;

pub struct AppState {
    pub store: Arc<dyn Store>,
    pub config: ServerConfig,
    pub public_url: String,
    pub ca_fingerprint: String,
    pub ca_pem: String,
    pub writer: IngestWriter,
    /// Bumped whenever anything that feeds an effective policy changes;
    /// long-polling agents and the ingest category check watch it.
    pub epoch: watch::Sender<u64>,
    pub(crate) creds: Mutex<HashMap<u64, AgentCredential>>,
    pub(crate) allowed: Mutex<HashMap<u64, (u64, CategorySet)>>,
    pub(crate) login_limiter: auth::LoginLimiter,
    pub chat: Arc<crate::chat::Chat>,
    pub web: Arc<crate::web::WebLists>,
    /// Screen frames (and other large objects) by content.
    pub blobs: Arc<crate::store::blob::FolderBlobStore>,
    /// Who watches which screen live, and the pictures on their way.
    pub live: Arc<crate::live::Live>,
}

pub type State = axum::extract::State<Arc<AppState>>;

impl AppState {
    pub fn bump_epoch(&self) {
        self.epoch.send_modify(|e| *e += 1);
    }

    /// The policy an agent is served: its policy and consent, and a live
    /// request while anyone watches its screen.
    pub async fn effective(self: &Arc<Self>, agent_id: u64) -> Result<candor_proto::policy::EffectivePolicy, ApiError> {
        let eff = self.db(move |s| crate::policy::effective_for(s, agent_id)).await?;
        Ok(eff.with_live(self.live.request(agent_id)))
    }

    /// Run a store call on the blocking pool.
    pub async fn db<T: Send + 'static>(
        self: &Arc<Self>,
        f: impl FnOnce(&dyn Store) -> crate::store::Result<T> + Send + 'static,
    ) -> Result<T, ApiError> {
        let store = self.store.clone();
        tokio::task::spawn_blocking(move || f(store.as_ref()))
            .await
            .map_err(|e| ApiError::internal(format!("task failed: {e}")))?
            .map_err(ApiError::from)
    }
}

/// Every error leaves as `{"error": "..."}` with a fitting status.
#[derive(Debug)]
pub struct ApiError {
    pub status: StatusCode,
    pub message: String,
}

impl ApiError {
    pub fn new(status: StatusCode, message: impl Into<String>) -> Self {
        ApiError { status, message: message.into() }
    }
    pub fn bad_request(m: impl Into<String>) -> Self {
        Self::new(StatusCode::BAD_REQUEST, m)
    }
    pub fn unauthorized(m: impl Into<String>) -> Self {
        Self::new(StatusCode::UNAUTHORIZED, m)
    }
    pub fn forbidden(m: impl Into<String>) -> Self {
        Self::new(StatusCode::FORBIDDEN, m)
    }
    pub fn internal(m: impl Into<String>) -> Self {
        Self::new(StatusCode::INTERNAL_SERVER_ERROR, m)
    }
}

impl From<StoreError> for ApiError {
    fn from(e: StoreError) -> Self {
        let status = match &e {
            StoreError::NotFound(_) => StatusCode::NOT_FOUND,
            StoreError::Conflict(_) => StatusCode::CONFLICT,
            StoreError::Invalid(_) => StatusCode::BAD_REQUEST,
            StoreError::Backend(_) => StatusCode::INTERNAL_SERVER_ERROR,
        };
        if status == StatusCode::INTERNAL_SERVER_ERROR {
            tracing::error!(error = %e, "store error");
        }
        ApiError::new(status, e.to_string())
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        (self.status, Json(candor_proto::api::ApiError { error: self.message })).into_response()
    }
}

/// JSON bodies with errors in our shape rather than axum's plain text.
pub struct JsonBody<T>(pub T);

impl<T: serde::de::DeserializeOwned, S: Send + Sync> axum::extract::FromRequest<S> for JsonBody<T> {
    type Rejection = ApiError;
    async fn from_request(req: axum::extract::Request, state: &S) -> Result<Self, Self::Rejection> {
        match Json::<T>::from_request(req, state).await {
            Ok(Json(v)) => Ok(JsonBody(v)),
            Err(e) => Err(ApiError::new(e.status(), e.body_text())),
        }
    }
}

const OPENAPI: &str = include_str!("openapi.json");
mod assets {
    pub const INDEX: &str = include_str!("../console/index.html");
    pub const JS: &str = include_str!("../console/console.js");
    pub const I18N: &str = include_str!("../console/i18n.js");
    pub const CSS: &str = include_str!("../console/console.css");
}

/// A console file with headers that keep it from being framed or fed
/// foreign scripts.
fn asset(content_type: &'static str, body: &'static str) -> Response {
    (
        [
            (header::CONTENT_TYPE, content_type),
            (header::CACHE_CONTROL, "no-cache"),
            (header::X_FRAME_OPTIONS, "DENY"),
            (header::CONTENT_SECURITY_POLICY, "default-src 'self'; img-src 'self' blob:; frame-ancestors 'none'"),
            (header::X_CONTENT_TYPE_OPTIONS, "nosniff"),
        ],
        body,
    )
        .into_response()
}

pub fn router(state: Arc<AppState>) -> Router {
    use admin::{
        activity, admins, agents, alerts, chat, consent, dashboard, events, live, org, policies, reports, retention,
        screen, web,
    };
    let body_limit = state.config.ingest.max_batch_bytes;
    Router::new()
        .route("/", get(|| async { asset("text/html; charset=utf-8", assets::INDEX) }))
        .route("/assets/console.js", get(|| async { asset("text/javascript; charset=utf-8", assets::JS) }))
        .route("/assets/i18n.js", get(|| async { asset("text/javascript; charset=utf-8", assets::I18N) }))
        .route("/assets/console.css", get(|| async { asset("text/css; charset=utf-8", assets::CSS) }))
        .route("/healthz", get(|| async { "ok" }))
        .route("/api/openapi.json", get(|| async { ([(header::CONTENT_TYPE, "application/json")], OPENAPI) }))
        .route("/api/v1/ca.pem", get(agent::ca_pem))
        // Agents.
        .route("/api/v1/enroll", post(agent::enroll))
        .route("/api/v1/ingest", post(agent::ingest))
        .route("/api/v1/agent/heartbeat", post(agent::heartbeat))
        .route("/api/v1/agent/policy", get(agent::policy))
        .route("/api/v1/agent/web-lists/{sha256}", get(agent::web_list))
        .route(
            "/api/v1/agent/live",
            post(agent::live_frame).layer(axum::extract::DefaultBodyLimit::max(agent::MAX_LIVE_BYTES)),
        )
        // Admins.
        .route("/api/v1/auth/login", post(auth::login))
        .route("/api/v1/auth/logout", post(auth::logout))
        .route("/api/v1/auth/me", get(auth::me).put(auth::set_prefs))
        .route("/api/v1/auth/totp/setup", post(auth::totp_setup))
        .route("/api/v1/auth/totp", put(auth::totp_confirm))
        .route("/api/v1/dashboard", get(dashboard::dashboard))
        .route("/api/v1/admins", get(admins::list_admins).post(admins::create_admin))
        .route("/api/v1/admins/{id}", put(admins::update_admin))
        .route("/api/v1/agents", get(agents::list_agents))
        .route("/api/v1/agents/{id}", get(agents::get_agent))
        .route("/api/v1/agents/{id}/revoke", post(agents::revoke_agent))
        .route("/api/v1/agents/{id}/assignment", put(agents::assign_agent))
        .route("/api/v1/agents/{id}/effective-policy", get(agents::effective_policy))
        .route("/api/v1/tokens", get(agents::list_tokens).post(agents::create_token))
        .route("/api/v1/events", get(events::query_events))
        .route("/api/v1/access-log", get(events::access_log))
        .route("/api/v1/policies", get(policies::list_policies).post(policies::create_policy))
        .route(
            "/api/v1/policies/{id}",
            get(policies::get_policy).put(policies::update_policy).delete(policies::delete_policy),
        )
        .route(
            "/api/v1/assignments",
            get(policies::list_assignments).put(policies::assign_policy).delete(policies::unassign_policy),
        )
        .route("/api/v1/consents", get(consent::list_consents).post(consent::record_consent))
        .route(
            "/api/v1/consents/scans",
            post(consent::upload_scan).layer(axum::extract::DefaultBodyLimit::max(consent::MAX_SCAN_BYTES)),
        )
        .route("/api/v1/consents/scans/{key}", get(consent::get_scan))
        .route("/api/v1/notices", get(consent::list_notices).post(consent::publish_notice))
        .route("/api/v1/departments", get(org::list_departments).post(org::create_department))
        .route("/api/v1/employees", get(org::list_employees).post(org::create_employee))
        .route("/api/v1/employees/{id}", get(org::get_employee).put(org::update_employee))
        .route("/api/v1/org/import", post(org::import_org))
        .route("/api/v1/employees/{id}/timeline", get(reports::timeline))
        .route("/api/v1/stats", get(reports::stats))
        .route("/api/v1/stats/export", get(reports::export))
        .route("/api/v1/portal/day", get(portal::day))
        .route("/api/v1/portal/views", get(portal::views))
        .route("/api/v1/portal/export", get(portal::export))
        .route("/api/v1/portal/notice", get(portal::notice).post(portal::answer))
        .route("/api/v1/portal/screen/image", get(portal::screen_image))
        .route("/api/v1/retention", get(retention::overview))
        .route("/api/v1/retention/purge", post(retention::purge))
        .route("/api/v1/employees/{id}/legal-hold", put(retention::place_hold).delete(retention::release_hold))
        .route("/api/v1/apps", get(activity::catalogue))
        .route("/api/v1/apps/{app}/class", put(activity::set_class))
        .route("/api/v1/apps/{app}/icon", get(activity::icon))
        .route("/api/v1/alerts", get(alerts::list_alerts))
        .route("/api/v1/alerts/{id}", get(alerts::get_alert).put(alerts::update_alert))
        .route("/api/v1/alerts/{id}/comments", post(alerts::comment_alert))
        .route(
            "/api/v1/chat/import",
            post(chat::import).layer(axum::extract::DefaultBodyLimit::max(state.config.chat.max_import_bytes)),
        )
        .route("/api/v1/chat/search", get(chat::search))
        .route("/api/v1/chat/messages/{id}/conversation", get(chat::conversation))
        .route("/api/v1/chat/contacts", get(chat::contacts))
        .route("/api/v1/chat/errors", get(chat::errors))
        .route("/api/v1/dlp/rules", get(chat::get_rules).put(chat::put_rules))
        .route("/api/v1/web/stats", get(web::stats))
        .route(
            "/api/v1/web/lists",
            get(web::list_lists)
                .post(web::put_list)
                .layer(axum::extract::DefaultBodyLimit::max(crate::web::MAX_LIST_BYTES * 2)),
        )
        .route("/api/v1/web/lists/{id}", delete(web::delete_list))
        .route("/api/v1/screen/frames", get(screen::frames))
        .route("/api/v1/screen/image", get(screen::image))
        .route("/api/v1/screen/live/{id}", get(live::live))
        .route("/api/v1/screen/wall", get(live::wall))
        .fallback(|| async { ApiError::new(StatusCode::NOT_FOUND, "no such route") })
        .layer(axum::extract::DefaultBodyLimit::max(body_limit))
        .with_state(state)
}

#[cfg(test)]
mod tests {
    /// Every route the router serves is in the OpenAPI document with the same
    /// methods, and the document names no route that does not exist.
    #[test]
    fn openapi_matches_router() {
        let doc: serde_json::Value = serde_json::from_str(super::OPENAPI).unwrap();
        let src = include_str!("mod.rs");
        let start = src.find("pub fn router").unwrap();
        let end = start + src[start..].find(".fallback(").unwrap();
        let wiring: String = src[start..end].chars().filter(|c| !c.is_whitespace()).collect();
        let routes: std::collections::BTreeMap<String, String> = wiring
            .split(".route(\"")
            .skip(1)
            .map(|r| {
                let (path, rest) = r.split_once('"').unwrap();
                (path.to_string(), rest.to_string())
            })
            .filter(|(p, _)| p != "/" && !p.starts_with("/assets/"))
            .collect();
        let documented = doc["paths"].as_object().unwrap();
        assert_eq!(documented.keys().collect::<Vec<_>>(), routes.keys().collect::<Vec<_>>());
        for (path, ops) in documented {
            for method in ops.as_object().unwrap().keys() {
                let handler_call = format!("{method}(");
                assert!(routes[path].contains(&handler_call), "{method} {path} documented but not routed");
            }
            let routed_methods =
                ["get(", "post(", "put(", "delete("].iter().filter(|m| routes[path].contains(*m)).count();
            assert_eq!(routed_methods, ops.as_object().unwrap().len(), "{path}: methods differ");
        }
    }
}
