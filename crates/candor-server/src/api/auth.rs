//! Admin authentication: argon2id passwords, optional TOTP, lock-out after
//! repeated failures, per-address rate limiting, server-side sessions
//! presented as a bearer token or an HttpOnly cookie, and CSRF protection for
//! cookie-authenticated writes (the `x-csrf-token` header must carry the
//! session's CSRF token, which only the page that logged in knows).

use super::{ApiError, AppState, JsonBody, State};
use crate::roles::Perm;
use crate::store::{Admin, AdminUpdate};
use argon2::password_hash::{PasswordHash, PasswordHasher, PasswordVerifier, SaltString};
use argon2::Argon2;
use axum::extract::{ConnectInfo, FromRequestParts};
use axum::http::request::Parts;
use axum::http::{header, Method, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Json;
use candor_proto::now_ms;
use candor_proto::token::sha256_hex;
use serde::{Deserialize, Serialize};
use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;
use totp_rs::{Algorithm, Secret, TOTP};

const COOKIE: &str = "candor_session";
pub const CSRF_HEADER: &str = "x-csrf-token";

pub fn hash_password(password: &str) -> Result<String, String> {
    let salt = SaltString::generate(&mut rand::rngs::OsRng);
    Argon2::default()
        .hash_password(password.as_bytes(), &salt)
        .map(|h| h.to_string())
        .map_err(|e| format!("hashing password: {e}"))
}

pub fn verify_password(password: &str, hash: &str) -> bool {
    PasswordHash::new(hash).map(|h| Argon2::default().verify_password(password.as_bytes(), &h).is_ok()).unwrap_or(false)
}

/// A readable one-time password (no look-alike characters).
pub fn generate_password() -> String {
    use rand::Rng;
    const CHARS: &[u8] = b"abcdefghijkmnpqrstuvwxyzABCDEFGHJKLMNPQRSTUVWXYZ23456789";
    let mut rng = rand::thread_rng();
    (0..16).map(|_| CHARS[rng.gen_range(0..CHARS.len())] as char).collect()
}

fn csrf_for(session_token: &str) -> String {
    sha256_hex(format!("csrf:{session_token}").as_bytes())
}

/// Whether `code` is current for the base32 `secret` (one step of skew allowed).
fn totp_ok(secret_b32: &str, code: &str) -> bool {
    Secret::Encoded(secret_b32.to_string())
        .to_bytes()
        .ok()
        .and_then(|bytes| TOTP::new(Algorithm::SHA1, 6, 1, 30, bytes).ok())
        .and_then(|t| t.check_current(code.trim()).ok())
        .unwrap_or(false)
}

/// The admin behind a request's session.
pub struct AdminSession(pub Admin);

impl AdminSession {
    /// Refuse unless the admin's role has `p`.
    pub fn require(&self, p: Perm) -> Result<&Admin, ApiError> {
        if self.0.role.can(p) {
            Ok(&self.0)
        } else {
            Err(ApiError::forbidden(format!("your role ({}) may not do this", self.0.role.as_str())))
        }
    }
}

fn session_token(parts: &Parts) -> Option<(String, bool)> {
    if let Some(v) = parts.headers.get(header::AUTHORIZATION).and_then(|v| v.to_str().ok()) {
        return v.strip_prefix("Bearer ").map(|t| (t.to_string(), false));
    }
    parts
        .headers
        .get_all(header::COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .find_map(|kv| kv.trim().strip_prefix(COOKIE).and_then(|r| r.strip_prefix('=')).map(|t| (t.to_string(), true)))
}

impl FromRequestParts<Arc<AppState>> for AdminSession {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &Arc<AppState>) -> Result<Self, ApiError> {
        let (token, from_cookie) = session_token(parts).ok_or_else(|| ApiError::unauthorized("log in first"))?;
        if from_cookie && !matches!(parts.method, Method::GET | Method::HEAD) {
            let sent = parts.headers.get(CSRF_HEADER).and_then(|v| v.to_str().ok()).unwrap_or_default();
            if sent != csrf_for(&token) {
                return Err(ApiError::forbidden("missing or wrong CSRF token"));
            }
        }
        let hash = sha256_hex(token.as_bytes());
        state
            .db(move |s| s.session_admin(&hash, now_ms()))
            .await?
            .map(AdminSession)
            .ok_or_else(|| ApiError::unauthorized("session expired or invalid; log in again"))
    }
}

/// Per-address login attempts in the current minute.
#[derive(Default)]
pub struct LoginLimiter {
    slots: std::sync::Mutex<std::collections::HashMap<IpAddr, (i64, u32)>>,
}

impl LoginLimiter {
    fn allow(&self, ip: IpAddr, per_minute: u32) -> bool {
        let minute = now_ms() / 60_000;
        let Ok(mut m) = self.slots.lock() else { return true };
        if m.len() > 10_000 {
            m.retain(|_, (w, _)| *w == minute);
        }
        let slot = m.entry(ip).or_insert((minute, 0));
        if slot.0 != minute {
            *slot = (minute, 0);
        }
        slot.1 += 1;
        slot.1 <= per_minute
    }
}

#[derive(Deserialize)]
pub struct Login {
    username: String,
    password: String,
    /// Six-digit code, when the account has TOTP.
    totp: Option<String>,
}

#[derive(Serialize)]
pub struct LoginOk {
    token: String,
    csrf: String,
    expires_ms: i64,
    admin: Admin,
}

pub async fn login(
    state: State,
    ConnectInfo(peer): ConnectInfo<SocketAddr>,
    JsonBody(req): JsonBody<Login>,
) -> Result<Response, ApiError> {
    let auth = &state.config.auth;
    if !state.login_limiter.allow(peer.ip(), auth.login_attempts_per_minute) {
        return Err(ApiError::new(StatusCode::TOO_MANY_REQUESTS, "too many login attempts; wait a minute"));
    }
    if req.username.len() > 128 || req.password.len() > 1024 {
        return Err(ApiError::bad_request("username or password too long"));
    }
    let username = req.username.clone();
    let info = state.db(move |s| s.login_info(&username)).await?;
    let password = req.password;
    let (info, password_ok) = tokio::task::spawn_blocking(move || match info {
        Some(i) => {
            let ok = verify_password(&password, &i.password_hash);
            (Some(i), ok)
        }
        // Same work for unknown users, so timing does not reveal them.
        None => {
            let _ = hash_password(&password);
            (None, false)
        }
    })
    .await
    .map_err(|e| ApiError::internal(e.to_string()))?;
    let wrong = || ApiError::unauthorized("wrong username or password");
    let info = info.ok_or_else(wrong)?;
    let admin = info.admin.clone();
    let now = now_ms();
    if admin.locked_until_ms > now {
        let minutes = (admin.locked_until_ms - now + 59_999) / 60_000;
        return Err(ApiError::new(
            StatusCode::LOCKED,
            format!("account locked after repeated failures; try again in {minutes} min"),
        ));
    }
    if admin.disabled {
        return Err(ApiError::forbidden("account disabled"));
    }
    let totp_ok = match &info.totp_secret {
        None => true,
        Some(secret) => match req.totp.as_deref() {
            None => return Err(ApiError::new(StatusCode::UNAUTHORIZED, "totp required")),
            Some(code) => totp_ok(secret, code),
        },
    };
    if !password_ok || !totp_ok {
        let (id, max, lock) = (admin.id, auth.max_failed_logins, auth.lockout_minutes as i64 * 60_000);
        let until = state.db(move |s| s.login_failed(id, now, max, lock)).await?;
        if until > 0 {
            tracing::warn!(admin = %admin.username, "account locked after repeated login failures");
        }
        return Err(if password_ok { ApiError::unauthorized("wrong one-time code") } else { wrong() });
    }
    let id = admin.id;
    state.db(move |s| s.login_succeeded(id)).await?;
    let token = crate::enrollment::random_secret();
    let expires_ms = now + auth.session_hours as i64 * 3_600_000;
    let hash = sha256_hex(token.as_bytes());
    state.db(move |s| s.create_session(id, &hash, expires_ms)).await?;
    let cookie = format!("{COOKIE}={token}; Path=/; HttpOnly; Secure; SameSite=Strict");
    let csrf = csrf_for(&token);
    Ok(([(header::SET_COOKIE, cookie)], Json(LoginOk { token, csrf, expires_ms, admin })).into_response())
}

pub async fn logout(state: State, parts: Parts) -> Result<Response, ApiError> {
    if let Some((token, _)) = session_token(&parts) {
        let hash = sha256_hex(token.as_bytes());
        state.db(move |s| s.delete_session(&hash)).await?;
    }
    let cookie = format!("{COOKIE}=; Path=/; HttpOnly; Secure; SameSite=Strict; Max-Age=0");
    Ok(([(header::SET_COOKIE, cookie)], StatusCode::NO_CONTENT).into_response())
}

#[derive(Serialize)]
pub struct Me {
    admin: Admin,
    /// For cookie sessions: the header value writes must carry.
    csrf: Option<String>,
    timezone: String,
    permissions: Vec<&'static str>,
}

pub async fn me(state: State, parts: Parts, AdminSession(admin): AdminSession) -> Json<Me> {
    use Perm::*;
    let all = [
        (ManageAdmins, "manage_admins"),
        (ManageOrg, "manage_org"),
        (ViewOrg, "view_org"),
        (ManageAgents, "manage_agents"),
        (ViewAgents, "view_agents"),
        (ManagePolicies, "manage_policies"),
        (ViewPolicies, "view_policies"),
        (ManageConsent, "manage_consent"),
        (ViewConsent, "view_consent"),
        (ViewEvents, "view_events"),
        (ViewAlerts, "view_alerts"),
        (ManageAlerts, "manage_alerts"),
        (ViewAccessLog, "view_access_log"),
        (ViewChat, "view_chat"),
        (OwnData, "own_data"),
    ];
    let permissions = all.iter().filter(|(p, _)| admin.role.can(*p)).map(|(_, n)| *n).collect();
    let csrf = session_token(&parts).map(|(t, _)| csrf_for(&t));
    Json(Me { admin, csrf, timezone: state.config.console.timezone.clone(), permissions })
}

#[derive(Deserialize)]
pub struct Prefs {
    lang: String,
}

pub async fn set_prefs(
    state: State,
    AdminSession(admin): AdminSession,
    JsonBody(p): JsonBody<Prefs>,
) -> Result<StatusCode, ApiError> {
    if !["zh-CN", "en"].contains(&p.lang.as_str()) {
        return Err(ApiError::bad_request("lang must be zh-CN or en"));
    }
    let u = AdminUpdate { lang: Some(p.lang), ..Default::default() };
    state.db(move |s| s.update_admin(admin.id, &u)).await?;
    Ok(StatusCode::NO_CONTENT)
}

#[derive(Serialize)]
pub struct TotpSetup {
    secret: String,
    otpauth_url: String,
}

/// Start TOTP enrolment: returns a new secret; it takes effect once confirmed.
pub async fn totp_setup(AdminSession(admin): AdminSession) -> Result<Json<TotpSetup>, ApiError> {
    let secret = Secret::Raw(rand::random::<[u8; 20]>().to_vec()).to_encoded().to_string();
    let otpauth_url = format!("otpauth://totp/Candor:{}?secret={secret}&issuer=Candor", admin.username);
    Ok(Json(TotpSetup { secret, otpauth_url }))
}

#[derive(Deserialize)]
pub struct TotpConfirm {
    /// The secret from setup, or null to turn TOTP off.
    secret: Option<String>,
    code: String,
}

pub async fn totp_confirm(
    state: State,
    AdminSession(admin): AdminSession,
    JsonBody(c): JsonBody<TotpConfirm>,
) -> Result<StatusCode, ApiError> {
    let check = |secret: &str| totp_ok(secret, &c.code);
    match &c.secret {
        Some(secret) if check(secret) => {}
        Some(_) => return Err(ApiError::bad_request("the code does not match the secret")),
        None => {
            let username = admin.username.clone();
            let current = state.db(move |s| s.login_info(&username)).await?.and_then(|i| i.totp_secret);
            if !current.as_deref().is_some_and(check) {
                return Err(ApiError::bad_request("give a current code to turn TOTP off"));
            }
        }
    }
    state.db(move |s| s.set_admin_totp(admin.id, c.secret.as_deref())).await?;
    Ok(StatusCode::NO_CONTENT)
}
