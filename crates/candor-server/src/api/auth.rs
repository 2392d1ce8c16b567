//! Admin authentication: argon2id passwords, server-side sessions presented
//! as a bearer token or an HttpOnly cookie.

use super::{ApiError, AppState, JsonBody, State};
use crate::store::Admin;
use argon2::password_hash::{PasswordHash, PasswordHasher, PasswordVerifier, SaltString};
use argon2::Argon2;
use axum::extract::FromRequestParts;
use axum::http::request::Parts;
use axum::http::{header, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Json;
use candor_proto::now_ms;
use candor_proto::token::sha256_hex;
use serde::{Deserialize, Serialize};
use std::sync::Arc;

const COOKIE: &str = "candor_session";

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

/// The admin behind a request's session.
pub struct AdminSession(pub Admin);

fn session_token(parts: &Parts) -> Option<String> {
    if let Some(v) = parts.headers.get(header::AUTHORIZATION).and_then(|v| v.to_str().ok()) {
        return v.strip_prefix("Bearer ").map(str::to_string);
    }
    parts
        .headers
        .get_all(header::COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .find_map(|kv| kv.trim().strip_prefix(COOKIE).and_then(|r| r.strip_prefix('=')).map(str::to_string))
}

impl FromRequestParts<Arc<AppState>> for AdminSession {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &Arc<AppState>) -> Result<Self, ApiError> {
        let token = session_token(parts).ok_or_else(|| ApiError::unauthorized("log in first"))?;
        let hash = sha256_hex(token.as_bytes());
        state
            .db(move |s| s.session_admin(&hash, now_ms()))
            .await?
            .map(AdminSession)
            .ok_or_else(|| ApiError::unauthorized("session expired or invalid; log in again"))
    }
}

#[derive(Deserialize)]
pub struct Login {
    username: String,
    password: String,
}

#[derive(Serialize)]
pub struct LoginOk {
    token: String,
    expires_ms: i64,
    admin: Admin,
}

pub async fn login(state: State, JsonBody(req): JsonBody<Login>) -> Result<Response, ApiError> {
    if req.username.len() > 128 || req.password.len() > 1024 {
        return Err(ApiError::bad_request("username or password too long"));
    }
    let found = state.db(move |s| s.admin_password_hash(&req.username)).await?;
    let password = req.password;
    let admin = tokio::task::spawn_blocking(move || match found {
        Some((admin, hash)) if verify_password(&password, &hash) => Some(admin),
        // Same work for unknown users, so timing does not reveal them.
        _ => {
            let _ = hash_password(&password);
            None
        }
    })
    .await
    .map_err(|e| ApiError::internal(e.to_string()))?
    .ok_or_else(|| ApiError::unauthorized("wrong username or password"))?;
    let token = crate::enrollment::random_secret();
    let expires_ms = now_ms() + state.config.auth.session_hours as i64 * 3_600_000;
    let (hash, id) = (sha256_hex(token.as_bytes()), admin.id);
    state.db(move |s| s.create_session(id, &hash, expires_ms)).await?;
    let cookie = format!("{COOKIE}={token}; Path=/; HttpOnly; Secure; SameSite=Strict");
    Ok(([(header::SET_COOKIE, cookie)], Json(LoginOk { token, expires_ms, admin })).into_response())
}

pub async fn logout(state: State, parts: Parts) -> Result<Response, ApiError> {
    if let Some(token) = session_token(&parts) {
        let hash = sha256_hex(token.as_bytes());
        state.db(move |s| s.delete_session(&hash)).await?;
    }
    let cookie = format!("{COOKIE}=; Path=/; HttpOnly; Secure; SameSite=Strict; Max-Age=0");
    Ok(([(header::SET_COOKIE, cookie)], StatusCode::NO_CONTENT).into_response())
}

pub async fn me(AdminSession(admin): AdminSession) -> Json<Admin> {
    Json(admin)
}
