//! Presence: agents are online while they heartbeat; a sweeper marks the
//! silent ones offline (the gap itself is recorded when they come back).

use crate::api::AppState;
use candor_proto::now_ms;
use std::sync::Arc;
use std::time::Duration;

pub fn spawn(state: Arc<AppState>) {
    let offline_after = state.config.presence.offline_after_secs as i64 * 1000;
    let period = Duration::from_millis((offline_after as u64 / 3).clamp(500, 10_000));
    tokio::spawn(async move {
        let mut tick = tokio::time::interval(period);
        loop {
            tick.tick().await;
            match state.db(move |s| s.mark_offline(now_ms(), offline_after)).await {
                Ok(n) if n > 0 => tracing::info!(agents = n, "marked offline"),
                Ok(_) => {}
                Err(e) => tracing::warn!(error = %e.message, "presence sweep failed"),
            }
        }
    });
}
