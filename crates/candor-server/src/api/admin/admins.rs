//! Console accounts: list, create (with a one-time password), change role,
//! department scope, disable, unlock. System admins only.

use super::{not_found, Created};
use crate::api::auth::{generate_password, hash_password, AdminSession};
use crate::api::{ApiError, JsonBody, State};
use crate::roles::{Perm, Role};
use crate::store::{Admin, AdminUpdate};
use axum::extract::Path;
use axum::http::StatusCode;
use axum::Json;
use serde::{Deserialize, Serialize};

pub async fn list_admins(state: State, session: AdminSession) -> Result<Json<Vec<Admin>>, ApiError> {
    session.require(Perm::ManageAdmins)?;
    Ok(Json(state.db(|s| s.admins()).await?))
}

#[derive(Deserialize)]
pub struct NewAdmin {
    username: String,
    role: Role,
    #[serde(default)]
    departments: Vec<u64>,
}

#[derive(Serialize)]
pub struct CreatedAdmin {
    #[serde(flatten)]
    created: Created,
    /// Shown once; the new admin logs in with it.
    password: String,
}

pub async fn create_admin(
    state: State,
    session: AdminSession,
    JsonBody(b): JsonBody<NewAdmin>,
) -> Result<Json<CreatedAdmin>, ApiError> {
    session.require(Perm::ManageAdmins)?;
    if b.role == Role::DepartmentManager && b.departments.is_empty() {
        return Err(ApiError::bad_request("a department manager needs at least one department"));
    }
    if b.role == Role::Employee {
        let name = b.username.clone();
        let known =
            state.db(move |s| s.employees()).await?.iter().any(|e| e.username.as_deref() == Some(name.as_str()));
        if !known {
            return Err(ApiError::bad_request(format!(
                "an employee account's username must be an employee's login name; no employee has {:?}",
                b.username
            )));
        }
    }
    let password = generate_password();
    let pw = password.clone();
    let hash = tokio::task::spawn_blocking(move || hash_password(&pw))
        .await
        .map_err(|e| ApiError::internal(e.to_string()))?
        .map_err(ApiError::internal)?;
    let id = state.db(move |s| s.create_admin(&b.username, &hash, b.role, &b.departments)).await?;
    Ok(Json(CreatedAdmin { created: Created { id }, password }))
}

#[derive(Deserialize)]
pub struct AdminChange {
    role: Option<Role>,
    departments: Option<Vec<u64>>,
    disabled: Option<bool>,
    #[serde(default)]
    unlock: bool,
}

pub async fn update_admin(
    state: State,
    session: AdminSession,
    Path(id): Path<u64>,
    JsonBody(b): JsonBody<AdminChange>,
) -> Result<StatusCode, ApiError> {
    let me = session.require(Perm::ManageAdmins)?;
    if id == me.id && (b.disabled == Some(true) || b.role.is_some_and(|r| r != Role::SystemAdmin)) {
        return Err(ApiError::bad_request("you cannot disable or demote yourself"));
    }
    let u =
        AdminUpdate { role: b.role, departments: b.departments, disabled: b.disabled, unlock: b.unlock, lang: None };
    state.db(move |s| s.update_admin(id, &u)).await.map_err(|e| {
        if e.status == StatusCode::NOT_FOUND {
            not_found(format!("admin {id}"))
        } else {
            e
        }
    })?;
    Ok(StatusCode::NO_CONTENT)
}
