//! Consent records (immutable; a withdrawal is a new record), the company's
//! versioned monitoring notice, and scans of signed paper consent forms.
//! Employees answer the notice themselves in the portal (`api::portal`).

use super::{audit, not_found, Created};
use crate::api::auth::AdminSession;
use crate::api::{ApiError, JsonBody, State};
use crate::notice::NoticeBody;
use crate::roles::Perm;
use crate::store::blob::BlobStore as _;
use crate::store::{ConsentRecord, NewConsent, Notice};
use axum::body::Bytes;
use axum::extract::{Path, Query};
use axum::http::{header, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Json;
use candor_proto::Category;
use serde::{Deserialize, Serialize};

/// Largest scan of a signed form accepted.
pub const MAX_SCAN_BYTES: usize = 20 << 20;

#[derive(Deserialize)]
pub struct ConsentParams {
    employee_id: Option<u64>,
}

pub async fn list_consents(
    state: State,
    session: AdminSession,
    Query(p): Query<ConsentParams>,
) -> Result<Json<Vec<ConsentRecord>>, ApiError> {
    session.require(Perm::ViewConsent)?;
    let target = p.employee_id.map_or("consents:*".into(), |e| format!("consents:employee:{e}"));
    audit(&state, &session.0, "consents.view", target).await?;
    Ok(Json(state.db(move |s| s.consents(p.employee_id)).await?))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ConsentBody {
    employee_id: u64,
    category: String,
    granted: bool,
    /// How consent was given: `api` (default) or `paper` (needs `scan`).
    /// Portal consent is recorded only by the employee, in the portal.
    method: Option<String>,
    note: Option<String>,
    /// Blob key from `POST /api/v1/consents/scans`: the signed form.
    scan: Option<String>,
    /// The notice version the signed form answers, if it was the notice.
    notice_version: Option<u64>,
}

pub async fn record_consent(
    state: State,
    session: AdminSession,
    JsonBody(b): JsonBody<ConsentBody>,
) -> Result<Json<Created>, ApiError> {
    let admin = session.require(Perm::ManageConsent)?;
    let category: Category = b.category.parse().map_err(ApiError::bad_request)?;
    if category == Category::System {
        return Err(ApiError::bad_request("the system category needs no consent"));
    }
    let method = b.method.unwrap_or_else(|| "api".into());
    match (method.as_str(), &b.scan) {
        ("api", None) | ("paper", Some(_)) => {}
        ("paper", None) => {
            return Err(ApiError::bad_request(
                "a paper consent needs the scan of the signed form (upload it to /api/v1/consents/scans first)",
            ))
        }
        ("api", Some(_)) => return Err(ApiError::bad_request("a scan belongs to a paper consent (method paper)")),
        ("portal", _) => return Err(ApiError::bad_request("portal consent is given by the employee in the portal")),
        _ => return Err(ApiError::bad_request("method must be api or paper")),
    }
    if let Some(key) = &b.scan {
        let key = key.clone();
        let blobs = state.blobs.clone();
        let found = tokio::task::spawn_blocking(move || blobs.get(&key))
            .await
            .map_err(|e| ApiError::internal(e.to_string()))?
            .map_err(|e| ApiError::bad_request(format!("scan {}: {e}", b.scan.as_deref().unwrap_or(""))))?;
        if found.as_deref().and_then(scan_type).is_none() {
            return Err(ApiError::bad_request("no uploaded scan has that key"));
        }
    }
    if let Some(v) = b.notice_version {
        if !state.db(|s| s.notices()).await?.iter().any(|n| n.version == v) {
            return Err(ApiError::bad_request(format!("no notice version {v} was published")));
        }
    }
    let c = NewConsent {
        employee_id: b.employee_id,
        category,
        granted: b.granted,
        method,
        note: b.note.map(|n| n.chars().take(1000).collect()),
        recorded_by: admin.username.clone(),
        notice_version: b.notice_version,
        scan: b.scan,
    };
    let id = state.db(move |s| s.record_consent(&c)).await?;
    state.bump_epoch();
    Ok(Json(Created { id }))
}

/// What a scan is, from its first bytes: PDF, PNG or JPEG, nothing else.
pub(crate) fn scan_type(data: &[u8]) -> Option<&'static str> {
    if data.starts_with(b"%PDF-") {
        Some("application/pdf")
    } else if data.starts_with(b"\x89PNG\r\n\x1a\n") {
        Some("image/png")
    } else if data.starts_with(b"\xff\xd8\xff") {
        Some("image/jpeg")
    } else {
        None
    }
}

#[derive(Serialize)]
pub struct ScanStored {
    scan: String,
    content_type: &'static str,
    bytes: usize,
}

/// Stores the scan of a signed consent form (the body, PDF/PNG/JPEG) and
/// returns the key a paper consent record names.
pub async fn upload_scan(state: State, session: AdminSession, body: Bytes) -> Result<Json<ScanStored>, ApiError> {
    session.require(Perm::ManageConsent)?;
    let content_type =
        scan_type(&body).ok_or_else(|| ApiError::bad_request("a scan must be a PDF, PNG or JPEG file"))?;
    let blobs = state.blobs.clone();
    let bytes = body.len();
    let scan = tokio::task::spawn_blocking(move || blobs.put(&body))
        .await
        .map_err(|e| ApiError::internal(e.to_string()))?
        .map_err(|e| ApiError::internal(format!("storing the scan: {e}")))?;
    Ok(Json(ScanStored { scan, content_type, bytes }))
}

/// The scan behind consent records; opening it is access-logged under the
/// employees whose records name it.
pub async fn get_scan(state: State, session: AdminSession, Path(key): Path<String>) -> Result<Response, ApiError> {
    session.require(Perm::ViewConsent)?;
    let k = key.clone();
    let owners: Vec<u64> = state
        .db(move |s| s.consents(None))
        .await?
        .into_iter()
        .filter(|c| c.scan.as_deref() == Some(k.as_str()))
        .map(|c| c.employee_id)
        .collect();
    let Some(first) = owners.first() else {
        return Err(not_found(format!("consent scan {key}")));
    };
    audit(&state, &session.0, "consents.scan", format!("consents:employee:{first} scan:{key}")).await?;
    let blobs = state.blobs.clone();
    let data = tokio::task::spawn_blocking(move || blobs.get(&key))
        .await
        .map_err(|e| ApiError::internal(e.to_string()))?
        .map_err(|e| ApiError::new(StatusCode::UNPROCESSABLE_ENTITY, format!("the scan is corrupt: {e}")))?
        .ok_or_else(|| ApiError::new(StatusCode::GONE, "the scan is missing from the blob store"))?;
    let content_type = scan_type(&data).unwrap_or("application/octet-stream");
    Ok(([(header::CONTENT_TYPE, content_type), (header::CACHE_CONTROL, "private, no-store")], data).into_response())
}

pub async fn list_notices(state: State, session: AdminSession) -> Result<Json<Vec<Notice>>, ApiError> {
    session.require(Perm::ViewConsent)?;
    Ok(Json(state.db(|s| s.notices()).await?))
}

#[derive(Serialize)]
pub struct Published {
    version: u64,
}

/// Publishes a new version: every employee must answer it again, and the
/// agents tell them so on their desktops.
pub async fn publish_notice(
    state: State,
    session: AdminSession,
    JsonBody(body): JsonBody<NoticeBody>,
) -> Result<Json<Published>, ApiError> {
    let admin = session.require(Perm::ManageConsent)?;
    body.validate().map_err(ApiError::bad_request)?;
    let by = admin.username.clone();
    let version = state.db(move |s| s.publish_notice(&body, &by)).await?;
    state.bump_epoch();
    Ok(Json(Published { version }))
}

#[cfg(test)]
mod tests {
    #[test]
    fn scans_are_told_by_their_first_bytes() {
        assert_eq!(super::scan_type(b"%PDF-1.7\n..."), Some("application/pdf"));
        assert_eq!(super::scan_type(b"\x89PNG\r\n\x1a\n\0\0"), Some("image/png"));
        assert_eq!(super::scan_type(b"\xff\xd8\xff\xe0"), Some("image/jpeg"));
        assert_eq!(super::scan_type(b"<html>"), None);
        assert_eq!(super::scan_type(b""), None);
    }
}
