//! A synthetic source for tests and benchmarks (never used in production):
//! emits `total` events numbered 1..=total at `rate` per second, resuming
//! after the last one the spool recorded. With one category, numbers are
//! spent only while it is allowed (so they arrive without gaps); with
//! several, event n is in category n mod len and the gate alone decides
//! what is kept — what consent tests need to watch.

use crate::gate::Recorder;
use crate::spool::{Record, Spool};
use candor_proto::{now_ms, Category, Payload};
use std::sync::Arc;
use std::time::Duration;

const CHECKPOINT: &str = "synthetic";

#[derive(Debug, Clone)]
pub struct SyntheticOptions {
    pub rate: u64,
    pub total: u64,
    pub categories: Vec<Category>,
}

pub async fn run(
    mut recorder: Recorder,
    spool: Arc<Spool>,
    opts: SyntheticOptions,
    stop: crate::Stop,
) -> anyhow::Result<()> {
    let s = spool.clone();
    let mut n = tokio::task::spawn_blocking(move || s.checkpoint(CHECKPOINT)).await??.unwrap_or(0) as u64;
    let tick = Duration::from_millis(10);
    let per_tick = (opts.rate / 100).max(1);
    let mut interval = tokio::time::interval(tick);
    interval.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    while n < opts.total {
        tokio::select! {
            _ = recorder.wait_any_allowed(&opts.categories) => {}
            _ = stop.wait() => return Ok(()),
        }
        tokio::select! {
            _ = interval.tick() => {}
            _ = stop.wait() => return Ok(()),
        }
        for _ in 0..per_tick.min(opts.total - n) {
            let Some(&category) = opts.categories.get(n as usize % opts.categories.len().max(1)) else { break };
            if opts.categories.len() == 1 && !recorder.allows(category) {
                break;
            }
            n += 1;
            let rec = Record {
                category,
                ts_ms: now_ms(),
                duration_ms: None,
                payload: Payload::Synthetic { n, note: None }.to_json(),
                checkpoint: Some((CHECKPOINT, n as i64)),
            };
            if !recorder.record(rec).await {
                return Ok(());
            }
        }
    }
    tracing::info!(total = opts.total, "synthetic source finished");
    Ok(())
}
