//! Retention: a scheduled purge deletes collected data older than its
//! category's period (`[retention]`), rows and the activity rollups alike,
//! except for employees under legal hold. Every purge that deletes
//! something is logged with its counts.

use crate::api::{ApiError, AppState};
use crate::company_time::{date_at, parse_tz};
use crate::store::PurgeRecord;
use candor_proto::{now_ms, Category};
use std::sync::Arc;
use std::time::Duration;

/// Purge every category once, now.
pub async fn purge_now(state: &Arc<AppState>) -> Result<Vec<PurgeRecord>, ApiError> {
    let tz = parse_tz(&state.config.console.timezone).map_err(ApiError::internal)?;
    let now = now_ms();
    let mut out = Vec::new();
    for c in Category::ALL {
        let days = state.config.retention.days(c);
        if days == 0 {
            continue;
        }
        let cutoff = now - days as i64 * 86_400_000;
        // Rollup days wholly before the cutoff day go; the cutoff day stays.
        let day = matches!(c, Category::Activity | Category::Web).then(|| date_at(tz, cutoff).to_string());
        let r = state.db(move |s| s.purge(c, cutoff, day.as_deref(), now)).await?;
        if r.events + r.rollups > 0 {
            tracing::info!(category = %c, events = r.events, rollups = r.rollups, held_endpoints = r.held_endpoints, "purged");
        }
        out.push(r);
    }
    // Purged chat messages leave the search index too (queued by the purge).
    let chat = state.chat.clone();
    state.db(move |s| chat.apply_purges(s)).await?;
    delete_blobs(state).await?;
    Ok(out)
}

/// Delete the blob files a purge left unreferenced. The queue is written in
/// the purge's transaction and emptied only after the files are gone, so a
/// crash in between repeats the deletion rather than leaking files.
async fn delete_blobs(state: &Arc<AppState>) -> Result<(), ApiError> {
    loop {
        let keys = state.db(|s| s.blob_purge_queue(1000)).await?;
        if keys.is_empty() {
            return Ok(());
        }
        let blobs = state.blobs.clone();
        let done = tokio::task::spawn_blocking(move || {
            use crate::store::blob::BlobStore as _;
            let mut done = Vec::with_capacity(keys.len());
            for k in keys {
                if let Err(e) = blobs.delete(&k) {
                    tracing::warn!(blob = %k, error = %e, "cannot delete a purged blob; it stays queued");
                    break;
                }
                done.push(k);
            }
            done
        })
        .await
        .map_err(|e| ApiError::internal(e.to_string()))?;
        let progressed = !done.is_empty();
        state.db(move |s| s.blobs_purged(&done)).await?;
        if !progressed {
            return Ok(());
        }
    }
}

pub fn spawn(state: Arc<AppState>) {
    let every = Duration::from_secs(state.config.retention.purge_every_minutes.max(1) * 60);
    tokio::spawn(async move {
        // The first run waits a little: starting the server should be quick.
        tokio::time::sleep(Duration::from_secs(30).min(every)).await;
        loop {
            if let Err(e) = purge_now(&state).await {
                tracing::warn!(error = %e.message, "retention purge failed");
            }
            tokio::time::sleep(every).await;
        }
    });
}
