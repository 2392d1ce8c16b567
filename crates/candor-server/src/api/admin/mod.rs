//! Admin resources, one module per area. Every handler states the permission
//! it needs ([`AdminSession::require`]); department managers are confined to
//! their departments by [`Visibility`]; every read of personal data appends to the
//! access log before answering.

pub mod activity;
pub mod admins;
pub mod agents;
pub mod alerts;
pub mod chat;
pub mod consent;
pub mod dashboard;
pub mod events;
pub mod live;
pub mod org;
pub mod policies;
pub mod reports;
pub mod retention;
pub mod screen;
pub mod web;

use super::auth::AdminSession;
use super::{ApiError, AppState};
use crate::store::{Admin, Agent, Department, Store};
use axum::http::StatusCode;
use candor_proto::now_ms;
use serde::{Deserialize, Serialize};
use std::collections::HashSet;
use std::sync::Arc;

/// Append to the access log; the read does not happen if logging fails.
pub(crate) async fn audit(state: &Arc<AppState>, admin: &Admin, action: &str, target: String) -> Result<(), ApiError> {
    let (actor, action) = (admin.username.clone(), action.to_string());
    state.db(move |s| s.append_access(&actor, &action, &target, now_ms())).await
}

#[derive(Serialize)]
pub struct Created {
    pub id: u64,
}

/// Distinguishes an absent field (outer `None`) from an explicit `null`.
pub(crate) fn present<'de, D: serde::Deserializer<'de>, T: Deserialize<'de>>(
    d: D,
) -> Result<Option<Option<T>>, D::Error> {
    Option::<T>::deserialize(d).map(Some)
}

/// The departments (with all descendants) an admin may see; `None` = all.
#[derive(Debug, Clone)]
pub struct Visibility(Option<HashSet<u64>>);

impl Visibility {
    pub fn of(admin: &Admin, departments: &[Department]) -> Visibility {
        if !admin.role.is_scoped() {
            return Visibility(None);
        }
        let mut set: HashSet<u64> = admin.departments.iter().copied().collect();
        // Close over children until nothing changes (the tree is small).
        loop {
            let before = set.len();
            for d in departments {
                if d.parent_id.is_some_and(|p| set.contains(&p)) {
                    set.insert(d.id);
                }
            }
            if set.len() == before {
                break;
            }
        }
        Visibility(Some(set))
    }

    pub async fn load(state: &Arc<AppState>, session: &AdminSession) -> Result<Visibility, ApiError> {
        if !session.0.role.is_scoped() {
            return Ok(Visibility(None));
        }
        let departments = state.db(|s| s.departments()).await?;
        Ok(Visibility::of(&session.0, &departments))
    }

    pub fn is_limited(&self) -> bool {
        self.0.is_some()
    }

    pub fn department(&self, id: Option<u64>) -> bool {
        match &self.0 {
            None => true,
            Some(set) => id.is_some_and(|d| set.contains(&d)),
        }
    }

    pub fn agent(&self, a: &Agent) -> bool {
        self.department(a.department_id)
    }

    /// [`Visibility::agent_ids`] from async code.
    pub async fn agent_ids_async(&self, state: &Arc<AppState>) -> Result<Option<Vec<u64>>, ApiError> {
        let v = self.clone();
        state.db(move |s| v.agent_ids(s)).await
    }

    /// Agent ids in scope, or `None` when unrestricted.
    pub fn agent_ids(&self, store: &dyn Store) -> crate::store::Result<Option<Vec<u64>>> {
        if self.0.is_none() {
            return Ok(None);
        }
        Ok(Some(store.agents()?.into_iter().filter(|a| self.agent(a)).map(|a| a.id).collect()))
    }
}

/// The endpoints an employee uses: assigned to them, or with their login name signed in.
pub(crate) fn agents_of(agents: &[Agent], e: &crate::store::Employee) -> Vec<u64> {
    agents
        .iter()
        .filter(|a| a.employee_id == Some(e.id) || e.username.as_ref().is_some_and(|u| a.users.contains(u)))
        .map(|a| a.id)
        .collect()
}

/// An employee the caller may see; not found otherwise.
pub(crate) async fn visible_employee(
    state: &Arc<AppState>,
    session: &AdminSession,
    id: u64,
) -> Result<crate::store::Employee, ApiError> {
    let vis = Visibility::load(state, session).await?;
    let all = state.db(|s| s.employees()).await?;
    all.into_iter()
        .find(|e| e.id == id && vis.department(e.department_id))
        .ok_or_else(|| not_found(format!("employee {id}")))
}

/// Not found, whether it does not exist or is outside the caller's scope.
pub(crate) fn not_found(what: String) -> ApiError {
    ApiError::new(StatusCode::NOT_FOUND, format!("no {what}"))
}
