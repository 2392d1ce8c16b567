//! Sends alerts outside the console: to a WeCom group robot (群机器人
//! webhook, `alerts.wecom_webhook`). Raisers hand alerts to a channel and
//! never wait for the network; a task posts them, at most one at a time,
//! and a failed post is logged, not retried forever (the console keeps the
//! alert either way).

use crate::config::AlertSinkConfig;
use crate::store::NewAlert;
use tokio::sync::mpsc;

/// Alerts waiting to be sent; more are dropped (and counted in the log).
const QUEUE: usize = 1000;

#[derive(Clone)]
pub struct AlertSink(Option<mpsc::Sender<NewAlert>>);

impl AlertSink {
    pub fn none() -> AlertSink {
        AlertSink(None)
    }

    /// Queues `a` if it is severe enough for the configured sinks.
    pub fn send(&self, a: &NewAlert) {
        if let Some(tx) = &self.0 {
            if tx.try_send(a.clone()).is_err() {
                tracing::warn!(kind = a.kind, "alert sink queue full; alert kept in the console only");
            }
        }
    }
}

/// The robot's text message: what, how severe, the detail and the evidence.
pub fn robot_text(a: &NewAlert) -> serde_json::Value {
    let mut text = format!("[Candor {}] {}: {}", a.severity.as_str(), a.kind, a.detail);
    if let Some(ev) = a.data.get("evidence").and_then(|e| e.as_array()) {
        for e in ev.iter().filter_map(|e| e.as_str()) {
            text.push_str("\n· ");
            text.push_str(e);
        }
    }
    serde_json::json!({"msgtype": "text", "text": {"content": text}})
}

/// Starts the sender when a sink is configured.
pub fn spawn(config: &AlertSinkConfig) -> anyhow::Result<AlertSink> {
    if config.wecom_webhook.is_empty() {
        return Ok(AlertSink::none());
    }
    let url = config.wecom_webhook.clone();
    let min = config.min_severity;
    let http = crate::outbound::client()?;
    let (tx, mut rx) = mpsc::channel::<NewAlert>(QUEUE);
    tokio::spawn(async move {
        while let Some(a) = rx.recv().await {
            if a.severity < min {
                continue;
            }
            let sent = http.post(&url).json(&robot_text(&a)).send().await;
            match sent {
                Ok(r) if r.status().is_success() => {}
                Ok(r) => tracing::warn!(status = %r.status(), "WeCom robot refused an alert"),
                Err(e) => tracing::warn!(error = %e, "WeCom robot unreachable"),
            }
        }
    });
    Ok(AlertSink(Some(tx)))
}
