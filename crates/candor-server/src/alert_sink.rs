//! Sends alerts outside the console: to a WeCom group robot (群机器人
//! webhook, `alerts.wecom_webhook`) and by e-mail (`alerts.smtp_url`).
//! Raisers hand alerts to a channel and never wait for the network; a task
//! sends them one at a time, and a failed send is logged, not retried
//! forever (the console keeps the alert either way).

use crate::config::AlertSinkConfig;
use crate::store::NewAlert;
use anyhow::Context;
use lettre::message::{header::ContentType, Mailbox};
use lettre::{AsyncSmtpTransport, AsyncTransport, Message, Tokio1Executor};
use tokio::sync::mpsc;

/// Alerts waiting to be sent; more are dropped (and counted in the log).
const QUEUE: usize = 1000;

#[derive(Clone)]
pub struct AlertSink(Option<mpsc::Sender<NewAlert>>);

impl AlertSink {
    pub fn none() -> AlertSink {
        AlertSink(None)
    }

    /// Queues `a` for the configured sinks.
    pub fn send(&self, a: &NewAlert) {
        if let Some(tx) = &self.0 {
            if tx.try_send(a.clone()).is_err() {
                tracing::warn!(kind = a.kind, "alert sink queue full; alert kept in the console only");
            }
        }
    }
}

/// The alert as text: what, how severe, the detail and the (masked) evidence.
pub fn alert_text(a: &NewAlert) -> String {
    let mut text = format!("[Candor {}] {}: {}", a.severity.as_str(), a.kind, a.detail);
    if let Some(ev) = a.data.get("evidence").and_then(|e| e.as_array()) {
        for e in ev.iter().filter_map(|e| e.as_str()) {
            text.push_str("\n· ");
            text.push_str(e);
        }
    }
    text
}

struct Mail {
    transport: AsyncSmtpTransport<Tokio1Executor>,
    from: Mailbox,
    to: Vec<Mailbox>,
}

impl Mail {
    fn new(config: &AlertSinkConfig) -> anyhow::Result<Option<Mail>> {
        if config.smtp_url.is_empty() {
            return Ok(None);
        }
        let transport = AsyncSmtpTransport::<Tokio1Executor>::from_url(&config.smtp_url)
            .context("alerts.smtp_url (smtp://, smtp://…?tls=required or smtps://)")?
            .build();
        let from = config.smtp_from.parse().with_context(|| format!("alerts.smtp_from {:?}", config.smtp_from))?;
        let to = config
            .smtp_to
            .iter()
            .map(|t| t.parse().with_context(|| format!("alerts.smtp_to {t:?}")))
            .collect::<anyhow::Result<Vec<Mailbox>>>()?;
        anyhow::ensure!(!to.is_empty(), "alerts.smtp_to names no recipient");
        Ok(Some(Mail { transport, from, to }))
    }

    async fn send(&self, a: &NewAlert) -> anyhow::Result<()> {
        let mut m = Message::builder().from(self.from.clone());
        for to in &self.to {
            m = m.to(to.clone());
        }
        let subject = format!("[Candor {}] {}", a.severity.as_str(), a.kind);
        let message = m.subject(subject).header(ContentType::TEXT_PLAIN).body(alert_text(a))?;
        self.transport.send(message).await?;
        Ok(())
    }
}

/// Starts the sender when a sink is configured.
pub fn spawn(config: &AlertSinkConfig) -> anyhow::Result<AlertSink> {
    let mail = Mail::new(config)?;
    if config.wecom_webhook.is_empty() && mail.is_none() {
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
            if !url.is_empty() {
                let body = serde_json::json!({"msgtype": "text", "text": {"content": alert_text(&a)}});
                match http.post(&url).json(&body).send().await {
                    Ok(r) if r.status().is_success() => {}
                    Ok(r) => tracing::warn!(status = %r.status(), "WeCom robot refused an alert"),
                    Err(e) => tracing::warn!(error = %e, "WeCom robot unreachable"),
                }
            }
            if let Some(mail) = &mail {
                if let Err(e) = mail.send(&a).await {
                    tracing::warn!(error = %e, "alert e-mail not sent");
                }
            }
        }
    });
    Ok(AlertSink(Some(tx)))
}
