//! Uplink: spool → server. Sends the oldest events as zstd batches, deletes
//! them only after the server acknowledges them as durably stored, retries
//! with exponential backoff and full jitter, and paces itself at
//! `drain_rate` so a reconnect after a long outage does not flood the server.

use crate::config::UplinkConfig;
use crate::credentials::Credentials;
use crate::net::error_text;
use crate::spool::Spool;
use crate::Stop;
use candor_proto::api::IngestAck;
use candor_proto::batch::{self, Batch};
use rand::Rng;
use reqwest::StatusCode;
use std::sync::Arc;
use std::time::{Duration, Instant};
use tokio::sync::Notify;

pub struct Uplink {
    pub client: reqwest::Client,
    pub creds: Credentials,
    pub spool: Arc<Spool>,
    pub config: UplinkConfig,
    /// Signalled by the spool writer after each append.
    pub appended: Arc<Notify>,
    pub stop: Stop,
}

enum Outcome {
    Acked(IngestAck),
    /// The server refuses this batch for good (4xx other than auth).
    Rejected(String),
    Revoked(String),
    Retry(String),
}

impl Uplink {
    pub async fn run(self) {
        let url = format!("{}/api/v1/ingest", self.creds.server_url);
        let mut backoff = Duration::from_millis(self.config.backoff_min_ms);
        let mut batch_max = self.config.batch_max_events.max(1);
        let mut failing = false;
        let linger = Duration::from_millis(self.config.linger_ms);
        // When the spool first had something to send since the last batch.
        let mut waiting_since: Option<Instant> = None;
        loop {
            let spool = self.spool.clone();
            let events = match tokio::task::spawn_blocking(move || spool.peek(batch_max)).await {
                Ok(Ok(e)) => e,
                other => {
                    tracing::error!(?other, "reading spool failed");
                    if self.stop.sleep(Duration::from_secs(1)).await {
                        return;
                    }
                    continue;
                }
            };
            if events.is_empty() {
                tokio::select! {
                    _ = self.appended.notified() => {}
                    _ = tokio::time::sleep(Duration::from_secs(1)) => {}
                    _ = self.stop.wait() => return,
                }
                continue;
            }
            // A part-full batch waits a little for company: one request per
            // second under a steady trickle instead of one per event.
            let since = *waiting_since.get_or_insert_with(Instant::now);
            if events.len() < batch_max && !failing {
                if let Some(rest) = linger.checked_sub(since.elapsed()).filter(|r| !r.is_zero()) {
                    if self.stop.sleep(rest).await {
                        return;
                    }
                    continue;
                }
            }
            waiting_since = None;
            let (first, last, n) = (events[0].seq, events[events.len() - 1].seq, events.len());
            let body =
                batch::encode(&Batch { agent_id: self.creds.agent_id, floor: first, events }, self.config.zstd_level);
            let started = Instant::now();
            match self.send(&url, body).await {
                Outcome::Acked(ack) => {
                    if failing {
                        tracing::info!("server reachable again; draining spool");
                        failing = false;
                    }
                    backoff = Duration::from_millis(self.config.backoff_min_ms);
                    batch_max = self.config.batch_max_events.max(1);
                    if ack.refused > 0 {
                        tracing::warn!(refused = ack.refused, "server refused events of categories not allowed");
                    }
                    let spool = self.spool.clone();
                    let upto = ack.acked.min(last);
                    if let Ok(Err(e)) = tokio::task::spawn_blocking(move || spool.remove_through(upto)).await {
                        tracing::error!(error = %e, "removing acknowledged events failed");
                    }
                    let budget = Duration::from_secs_f64(n as f64 / self.config.drain_rate.max(1) as f64);
                    if let Some(rest) = budget.checked_sub(started.elapsed()) {
                        if self.stop.sleep(rest).await {
                            return;
                        }
                    }
                }
                Outcome::Rejected(msg) if n > 1 => {
                    // Halve until the offending event is alone.
                    tracing::warn!(error = %msg, events = n, "batch rejected; retrying smaller");
                    batch_max = (n / 2).max(1);
                }
                Outcome::Rejected(msg) => {
                    tracing::error!(seq = first, error = %msg, "server rejected event for good; discarding it");
                    let spool = self.spool.clone();
                    let _ = tokio::task::spawn_blocking(move || spool.remove_through(first)).await;
                }
                Outcome::Revoked(reason) => {
                    tracing::error!(%reason, "this agent was revoked by the server; uploads stopped");
                    crate::credentials::mark_revoked(&self.stop.state_dir, &reason);
                    self.stop.trigger(Some(reason));
                    return;
                }
                Outcome::Retry(msg) => {
                    if !failing {
                        tracing::warn!(error = %msg, "upload failed; will retry with backoff");
                        failing = true;
                    }
                    let jittered = rand::thread_rng().gen_range(Duration::ZERO..=backoff);
                    if self.stop.sleep(jittered).await {
                        return;
                    }
                    backoff = (backoff * 2).min(Duration::from_millis(self.config.backoff_max_ms));
                }
            }
        }
    }

    async fn send(&self, url: &str, body: Vec<u8>) -> Outcome {
        let resp = self
            .client
            .post(url)
            .header(reqwest::header::AUTHORIZATION, self.creds.bearer())
            .header(reqwest::header::CONTENT_TYPE, batch::CONTENT_TYPE)
            .body(body)
            .send()
            .await;
        let resp = match resp {
            Ok(r) => r,
            Err(e) => return Outcome::Retry(crate::host::error_chain(&e)),
        };
        classify(resp).await
    }
}

async fn classify(resp: reqwest::Response) -> Outcome {
    match resp.status() {
        StatusCode::OK => match resp.json::<IngestAck>().await {
            Ok(a) => Outcome::Acked(a),
            Err(e) => Outcome::Retry(format!("bad ack: {e}")),
        },
        status @ (StatusCode::UNAUTHORIZED | StatusCode::FORBIDDEN) => {
            let text = error_text(resp).await;
            if status == StatusCode::UNAUTHORIZED || text.starts_with("agent revoked") {
                Outcome::Revoked(text)
            } else {
                Outcome::Rejected(text)
            }
        }
        s if s.is_client_error() && s != StatusCode::REQUEST_TIMEOUT && s != StatusCode::TOO_MANY_REQUESTS => {
            Outcome::Rejected(error_text(resp).await)
        }
        _ => Outcome::Retry(error_text(resp).await),
    }
}
