//! The consent gate: the one place that decides what may be recorded.
//!
//! Sources ask [`Recorder::allows`] before doing any work and hand events to
//! [`Recorder::record`], which drops anything the effective
//! policy (policy × consent, see `candor_proto::policy`) does not allow at
//! that moment; so a withdrawal takes effect on events already in flight.
//! Allowed events go on to the spool writer. Outside the policy's collection
//! hours (if it sets any) only system events pass.

use crate::spool::Record;
use candor_proto::policy::EffectivePolicy;
use candor_proto::Category;
use std::sync::Arc;
use tokio::sync::{mpsc, watch};

#[derive(Clone)]
pub struct Recorder {
    policy: watch::Receiver<Arc<EffectivePolicy>>,
    tx: mpsc::Sender<Record>,
}

impl Recorder {
    pub fn new(policy: watch::Receiver<Arc<EffectivePolicy>>, tx: mpsc::Sender<Record>) -> Self {
        Recorder { policy, tx }
    }

    pub fn allows(&self, c: Category) -> bool {
        self.policy.borrow().allows(c)
    }

    /// Wait until `c` is allowed (returns immediately if it is).
    pub async fn wait_allowed(&mut self, c: Category) {
        self.wait_any_allowed(&[c]).await
    }

    /// Wait until one of `cats` is allowed.
    pub async fn wait_any_allowed(&mut self, cats: &[Category]) {
        let _ = self.policy.wait_for(|p| cats.iter().any(|c| p.allows(*c))).await;
    }

    /// Whether an event at `ts_ms` falls inside the policy's collection hours
    /// (decided at the event's start: spans are cut every 60 s, so one
    /// overruns the window by at most that).
    fn in_hours(&self, c: Category, ts_ms: i64) -> bool {
        let p = self.policy.borrow();
        c == Category::System
            || p.doc.collect_hours.as_ref().is_none_or(|w| {
                let (day, minute) = crate::host::local_time(ts_ms);
                w.contains(day, minute)
            })
    }

    /// Whether `c` may be collected at `ts_ms` (policy × consent × hours):
    /// sources that capture something costly (screens) ask before capturing.
    pub fn collecting(&self, c: Category, ts_ms: i64) -> bool {
        self.allows(c) && self.in_hours(c, ts_ms)
    }

    /// Returns false when the agent is shutting down.
    pub async fn record(&self, r: Record) -> bool {
        if !self.allows(r.category) || !self.in_hours(r.category, r.ts_ms) {
            return true;
        }
        self.tx.send(r).await.is_ok()
    }
}
