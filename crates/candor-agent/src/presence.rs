//! Heartbeats: who and what this desktop is, and which policy it applies —
//! told to the server, and to the desktop's own users through `status.json`.

use crate::credentials::Credentials;
use crate::net::error_text;
use crate::spool::Spool;
use crate::{host, Stop};
use candor_proto::api::Heartbeat;
use candor_proto::policy::EffectivePolicy;
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::watch;

pub struct Presence {
    pub client: reqwest::Client,
    pub creds: Credentials,
    pub every: Duration,
    pub policy: watch::Receiver<Arc<EffectivePolicy>>,
    pub spool: Arc<Spool>,
    pub notices: crate::notices::Notices,
    /// Where `status.json` goes.
    pub state_dir: std::path::PathBuf,
    pub stop: Stop,
}

pub async fn run(p: Presence) {
    let Presence { client, creds, every, policy, spool, notices, state_dir, stop } = p;
    let url = format!("{}/api/v1/agent/heartbeat", creds.server_url);
    let mut policy = policy;
    loop {
        let s = spool.clone();
        let spool_events =
            tokio::task::spawn_blocking(move || s.stats().map(|s| s.events).unwrap_or(0)).await.unwrap_or(0);
        let status = crate::status::Status::new(
            creds.agent_id,
            &creds.server_url,
            &policy.borrow(),
            spool_events,
            notices.list(),
        );
        if let Err(e) = status.write(&state_dir) {
            tracing::warn!(error = %e, "cannot write the local status file");
        }
        let hb = Heartbeat {
            hostname: host::hostname(),
            os: host::os_name(),
            agent_version: env!("CARGO_PKG_VERSION").into(),
            users: host::logged_in_users(),
            addresses: host::addresses(),
            applied_policy: Some(policy.borrow().etag.clone()),
            spool_events,
            notices: notices.list(),
        };
        match client.post(&url).header(reqwest::header::AUTHORIZATION, creds.bearer()).json(&hb).send().await {
            Ok(r) if r.status().is_success() => {}
            Ok(r) => {
                let error = error_text(r).await;
                tracing::debug!(%error, "heartbeat refused");
            }
            Err(e) => tracing::debug!(error = %e, "heartbeat failed"),
        }
        // Report a new policy at once, so admins see it applied.
        tokio::select! {
            _ = tokio::time::sleep(every) => {}
            _ = policy.changed() => {}
            _ = stop.wait() => return,
        }
    }
}
