//! Candor desktop agent.
//!
//! Data flows one way: `sources` → [`gate`] (policy × consent) → [`spool`]
//! (durable, bounded) → [`uplink`] (batches, acks) → server. The effective
//! policy flows the other way through [`policy_sync`]. Platform facts come
//! from [`host`].

pub mod config;
pub mod credentials;
pub mod desktop_notify;
pub mod enroll;
pub mod gate;
pub mod host;
pub mod live;
pub mod net;
pub mod notices;
pub mod platform;
pub mod policy_sync;
pub mod presence;
pub mod software;
pub mod sources;
pub mod spool;
pub mod status;
pub mod stop;
pub mod tray;
pub mod uplink;
pub mod visibility;
pub mod web;

use anyhow::{bail, Context};
use candor_proto::{now_ms, Category, Payload};
use config::AgentConfig;
use spool::{Record, Spool, SpoolLimits};
use std::sync::Arc;
use std::time::Duration;
pub use stop::Stop;
use tokio::sync::{mpsc, watch, Notify};

#[derive(Debug, Clone, Default)]
pub struct RunOptions {
    /// Test/bench only: run the synthetic source.
    pub synthetic: Option<sources::synthetic::SyntheticOptions>,
}

/// Most records the spool writer commits at once.
const WRITE_GROUP: usize = 5000;

/// How long the spool writer gathers records before one commit: a burst of
/// process starts becomes one fsync instead of hundreds.
const WRITE_LINGER: Duration = Duration::from_millis(100);

/// Commit records in groups as they arrive; a failed write is retried, never
/// dropped (the channel back-pressures the sources meanwhile).
async fn spool_writer(mut rx: mpsc::Receiver<Record>, spool: Arc<Spool>, appended: Arc<Notify>) {
    while let Some(first) = rx.recv().await {
        let mut group = vec![first];
        let until = tokio::time::Instant::now() + WRITE_LINGER;
        while group.len() < WRITE_GROUP {
            match tokio::time::timeout_at(until, rx.recv()).await {
                Ok(Some(r)) => group.push(r),
                _ => break,
            }
        }
        let group = Arc::new(group);
        loop {
            let (s, g) = (spool.clone(), group.clone());
            match tokio::task::spawn_blocking(move || s.append(&g)).await {
                Ok(Ok(_)) => break,
                Ok(Err(e)) => tracing::error!(error = %e, "writing to the spool failed; retrying"),
                Err(e) => tracing::error!(error = %e, "spool task failed; retrying"),
            }
            tokio::time::sleep(Duration::from_secs(1)).await;
        }
        appended.notify_one();
    }
}

/// Run the agent until SIGINT/SIGTERM or revocation.
pub async fn run(config: AgentConfig, opts: RunOptions) -> anyhow::Result<()> {
    let state_dir = config.state_dir.clone();
    if let Some(reason) = credentials::revoked_reason(&state_dir) {
        bail!("this agent was revoked by the server ({reason}); enroll it again to resume");
    }
    let creds = credentials::Credentials::load(&state_dir)?;
    let spool = Arc::new(Spool::open(
        &state_dir.join("spool.db"),
        SpoolLimits { max_bytes: config.spool.max_bytes, max_age_ms: config.spool.max_age_hours as i64 * 3_600_000 },
    )?);
    let client = net::pinned_client(&creds.ca_fingerprint)?;
    let stop = Stop::new(state_dir.clone());
    let (web_client, web_creds) = (client.clone(), creds.clone());
    let (live_client, live_creds) = (client.clone(), creds.clone());
    let (policy_tx, policy_rx) = watch::channel(Arc::new(policy_sync::load_saved(&state_dir)));
    let (rec_tx, rec_rx) = mpsc::channel(10_000);
    let appended = Arc::new(Notify::new());
    let recorder = gate::Recorder::new(policy_rx.clone(), rec_tx);
    tracing::info!(agent_id = creds.agent_id, server = %creds.server_url, "agent starting");

    let notices = notices::Notices::default();
    let writer = tokio::spawn(spool_writer(rec_rx, spool.clone(), appended.clone()));
    let mut tasks = tokio::task::JoinSet::new();
    tasks.spawn(policy_sync::run(
        client.clone(),
        creds.clone(),
        config.uplink.policy_wait_secs,
        policy_tx,
        stop.clone(),
    ));
    tasks.spawn(presence::run(presence::Presence {
        client: client.clone(),
        creds: creds.clone(),
        every: Duration::from_secs(config.uplink.heartbeat_secs.max(1)),
        policy: policy_rx.clone(),
        spool: spool.clone(),
        notices: notices.clone(),
        state_dir: state_dir.clone(),
        stop: stop.clone(),
    }));
    let watched = tray::Watched::default();
    tasks.spawn(visibility::run(visibility::Visibility {
        policy: policy_rx.clone(),
        watched: watched.clone(),
        sessions_dir: config.x11.sessions_dir.clone(),
        state_dir: state_dir.clone(),
        server_url: creds.server_url.clone(),
        stop: stop.clone(),
    }));
    tasks.spawn(
        uplink::Uplink {
            client,
            creds,
            spool: spool.clone(),
            config: config.uplink.clone(),
            appended,
            stop: stop.clone(),
        }
        .run(),
    );
    let mut sources = tokio::task::JoinSet::new();
    recorder
        .record(Record {
            category: Category::System,
            ts_ms: now_ms(),
            duration_ms: None,
            payload: Payload::AgentStarted { version: env!("CARGO_PKG_VERSION").into() }.to_json(),
            checkpoint: None,
        })
        .await;
    sources.spawn(sources::activity::supervise(
        recorder.clone(),
        policy_rx.clone(),
        config.x11.clone(),
        notices.clone(),
        stop.clone(),
    ));
    sources.spawn(sources::screen::supervise(
        recorder.clone(),
        policy_rx.clone(),
        config.x11.clone(),
        notices.clone(),
        stop.clone(),
    ));
    sources.spawn(sources::process::supervise(
        recorder.clone(),
        policy_rx.clone(),
        config.process.clone(),
        notices.clone(),
        stop.clone(),
    ));
    sources.spawn(software::supervise(
        recorder.clone(),
        policy_rx.clone(),
        config.software.clone(),
        notices.clone(),
        stop.clone(),
    ));
    sources.spawn(web::supervise(web::Web {
        recorder: recorder.clone(),
        policy: policy_rx.clone(),
        config: config.web.clone(),
        client: web_client,
        creds: web_creds,
        notices: notices.clone(),
        stop: stop.clone(),
    }));
    sources.spawn(live::supervise(live::Live {
        recorder: recorder.clone(),
        policy: policy_rx.clone(),
        x11: config.x11.clone(),
        client: live_client,
        creds: live_creds,
        notices: notices.clone(),
        watched,
        stop: stop.clone(),
    }));
    if let Some(o) = opts.synthetic {
        tracing::warn!(rate = o.rate, total = o.total, categories = ?o.categories, "synthetic test source enabled");
        let (r, s, st) = (recorder.clone(), spool.clone(), stop.clone());
        sources.spawn(async move {
            if let Err(e) = sources::synthetic::run(r, s, o, st).await {
                tracing::error!(error = %e, "synthetic source failed");
            }
        });
    }
    drop(recorder);

    let mut term =
        tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()).context("SIGTERM handler")?;
    tokio::select! {
        _ = tokio::signal::ctrl_c() => stop.trigger(None),
        _ = term.recv() => stop.trigger(None),
        _ = stop.wait() => {}
    }
    tracing::info!("agent stopping");
    // Sources stop first (each records what it has open), then the writer
    // drains what they handed over.
    let _ = tokio::time::timeout(Duration::from_secs(5), async { while sources.join_next().await.is_some() {} }).await;
    sources.shutdown().await;
    let _ = tokio::time::timeout(Duration::from_secs(10), writer).await;
    tasks.shutdown().await;
    match stop.reason() {
        Some(reason) => bail!("agent stopped: {reason}"),
        None => Ok(()),
    }
}
