//! Policy sync: long-polls the server for the effective policy (policy ×
//! consent) and publishes it atomically to the gate. The last policy is kept
//! on disk so an agent restarted while the server is away applies it at once.

use crate::credentials::{write_atomic_private, Credentials};
use crate::net::error_text;
use crate::Stop;
use candor_proto::policy::EffectivePolicy;
use reqwest::StatusCode;
use std::path::Path;
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::watch;

const FILE: &str = "policy.json";

pub fn load_saved(state_dir: &Path) -> EffectivePolicy {
    std::fs::read(state_dir.join(FILE))
        .ok()
        .and_then(|d| serde_json::from_slice(&d).ok())
        .unwrap_or_else(EffectivePolicy::nothing)
}

pub async fn run(
    client: reqwest::Client,
    creds: Credentials,
    wait_secs: u64,
    tx: watch::Sender<Arc<EffectivePolicy>>,
    stop: Stop,
) {
    let url = format!("{}/api/v1/agent/policy", creds.server_url);
    let mut failures = 0u32;
    loop {
        let etag = tx.borrow().etag.clone();
        let req = client
            .get(&url)
            .query(&[("etag", etag.as_str()), ("wait", &wait_secs.to_string())])
            .header(reqwest::header::AUTHORIZATION, creds.bearer())
            .timeout(Duration::from_secs(wait_secs + 15))
            .send();
        let resp = tokio::select! {
            r = req => r,
            _ = stop.wait() => return,
        };
        let retry = match resp {
            Ok(r) if r.status() == StatusCode::OK => match r.json::<EffectivePolicy>().await {
                Ok(p) => {
                    apply(&stop.state_dir, &tx, p);
                    false
                }
                Err(e) => {
                    tracing::warn!(error = %e, "bad policy from server");
                    true
                }
            },
            Ok(r) if r.status() == StatusCode::NOT_MODIFIED => false,
            Ok(r) if r.status() == StatusCode::FORBIDDEN || r.status() == StatusCode::UNAUTHORIZED => {
                let reason = error_text(r).await;
                tracing::error!(%reason, "policy refused: this agent is no longer accepted by the server");
                crate::credentials::mark_revoked(&stop.state_dir, &reason);
                stop.trigger(Some(reason));
                return;
            }
            Ok(r) => {
                let error = error_text(r).await;
                tracing::warn!(%error, "policy fetch failed");
                true
            }
            Err(e) => {
                if failures == 0 {
                    tracing::warn!(error = %crate::host::error_chain(&e), "policy fetch failed; keeping the last policy");
                }
                true
            }
        };
        if retry {
            failures += 1;
            let secs = 2u64.saturating_pow(failures.min(5)).min(30);
            if stop.sleep(Duration::from_secs(secs)).await {
                return;
            }
        } else {
            failures = 0;
        }
    }
}

fn apply(state_dir: &Path, tx: &watch::Sender<Arc<EffectivePolicy>>, p: EffectivePolicy) {
    if let Ok(data) = serde_json::to_vec(&p) {
        if let Err(e) = write_atomic_private(&state_dir.join(FILE), &data) {
            tracing::warn!(error = %e, "could not save policy");
        }
    }
    let allowed: Vec<_> = p.allowed.iter().map(|c| c.as_str()).collect();
    tracing::info!(etag = %p.etag, ?allowed, "policy applied");
    tx.send_replace(Arc::new(p));
}
