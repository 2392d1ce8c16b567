//! Ingest: the single writer that owns the store's ingest path.
//!
//! HTTP handlers decode and validate batches on their own tasks, then hand
//! them here. One thread takes whatever batches are waiting (up to a bound)
//! and commits them in one transaction, so under load many agents share one
//! fsync, and SQLite never contends with itself.

pub mod ack;
pub mod alerts;
pub mod rollup;
pub mod screen;
pub mod web_rollup;

use crate::store::{IngestItem, IngestOutcome, Store};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Instant;
use tokio::sync::{mpsc, oneshot};

struct Job {
    item: IngestItem,
    reply: oneshot::Sender<Result<IngestOutcome, String>>,
}

#[derive(Clone)]
pub struct IngestWriter {
    tx: mpsc::Sender<Job>,
    stats: Arc<WriterStats>,
}

/// Counters for the bench and diagnostics.
#[derive(Debug, Default)]
pub struct WriterStats {
    pub commits: AtomicU64,
    pub batches: AtomicU64,
    pub events: AtomicU64,
    /// Time spent inside the store's ingest transaction, commit included.
    pub busy_ns: AtomicU64,
}

impl IngestWriter {
    pub fn spawn(store: Arc<dyn Store>, max_group_events: usize) -> std::io::Result<Self> {
        let (tx, mut rx) = mpsc::channel::<Job>(1024);
        let stats = Arc::new(WriterStats::default());
        let counters = stats.clone();
        std::thread::Builder::new().name("ingest-writer".into()).spawn(move || {
            while let Some(first) = rx.blocking_recv() {
                let mut n = first.item.events.len();
                let mut jobs = vec![first];
                while n < max_group_events {
                    match rx.try_recv() {
                        Ok(j) => {
                            n += j.item.events.len();
                            jobs.push(j);
                        }
                        Err(_) => break,
                    }
                }
                let (items, replies): (Vec<_>, Vec<_>) = jobs.into_iter().map(|j| (j.item, j.reply)).unzip();
                let started = Instant::now();
                let result = store.ingest(&items);
                counters.busy_ns.fetch_add(started.elapsed().as_nanos() as u64, Ordering::Relaxed);
                counters.commits.fetch_add(1, Ordering::Relaxed);
                counters.batches.fetch_add(items.len() as u64, Ordering::Relaxed);
                counters.events.fetch_add(n as u64, Ordering::Relaxed);
                match result {
                    Ok(outcomes) => {
                        for (reply, o) in replies.into_iter().zip(outcomes) {
                            let _ = reply.send(Ok(o));
                        }
                    }
                    Err(e) => {
                        tracing::error!(error = %e, batches = items.len(), "ingest commit failed");
                        for reply in replies {
                            let _ = reply.send(Err(e.to_string()));
                        }
                    }
                }
            }
        })?;
        Ok(IngestWriter { tx, stats })
    }

    pub fn stats(&self) -> &WriterStats {
        &self.stats
    }

    /// Queue a batch and wait until it is durably committed.
    pub async fn submit(&self, item: IngestItem) -> Result<IngestOutcome, String> {
        let (reply, rx) = oneshot::channel();
        self.tx.send(Job { item, reply }).await.map_err(|_| "ingest writer has stopped".to_string())?;
        rx.await.map_err(|_| "ingest writer has stopped".to_string())?
    }
}
