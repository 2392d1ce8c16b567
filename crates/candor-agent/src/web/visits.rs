//! Visits noted by the resolver (and the SNI/Host filter), folded per domain
//! and outcome over `flush` so that a page loading a hundred times is one
//! record with a count, then handed to the consent gate.

use crate::gate::Recorder;
use crate::spool::Record;
use crate::Stop;
use candor_proto::{now_ms, Category, Payload};
use std::collections::HashMap;
use std::time::Duration;
use tokio::sync::mpsc;

/// Distinct (domain, outcome) pairs held before an early flush.
const MAX_PENDING: usize = 4096;

#[derive(Debug, Clone, Default)]
pub struct Visit {
    pub domain: String,
    pub source: &'static str,
    /// The list that blocked it.
    pub blocked: Option<String>,
    pub bytes_out: Option<u64>,
    pub bytes_in: Option<u64>,
    /// How long the connection lasted (SNI/Host filter).
    pub duration_ms: Option<u64>,
}

impl Visit {
    pub fn lookup(domain: &str, blocked: Option<&str>) -> Visit {
        Visit { domain: domain.into(), source: "dns", blocked: blocked.map(str::to_string), ..Default::default() }
    }
}

struct Fold {
    first_ms: i64,
    count: u64,
    rule: Option<String>,
    bytes_out: Option<u64>,
    bytes_in: Option<u64>,
    duration_ms: Option<u64>,
}

fn add(a: Option<u64>, b: Option<u64>) -> Option<u64> {
    match (a, b) {
        (None, None) => None,
        (a, b) => Some(a.unwrap_or(0).saturating_add(b.unwrap_or(0))),
    }
}

pub async fn run(mut rx: mpsc::Receiver<Visit>, recorder: Recorder, flush: Duration, stop: Stop) {
    let mut pending: HashMap<(String, &'static str, bool), Fold> = HashMap::new();
    let mut tick = tokio::time::interval(flush);
    loop {
        let mut done = false;
        let full = tokio::select! {
            v = rx.recv() => match v {
                Some(v) => {
                    let now = now_ms();
                    let f = pending.entry((v.domain, v.source, v.blocked.is_some())).or_insert(Fold {
                        first_ms: now,
                        count: 0,
                        rule: None,
                        bytes_out: None,
                        bytes_in: None,
                        duration_ms: None,
                    });
                    f.count += 1;
                    f.rule = v.blocked.or(f.rule.take());
                    f.bytes_out = add(f.bytes_out, v.bytes_out);
                    f.bytes_in = add(f.bytes_in, v.bytes_in);
                    f.duration_ms = add(f.duration_ms, v.duration_ms);
                    pending.len() >= MAX_PENDING
                }
                None => {
                    done = true;
                    true
                }
            },
            _ = tick.tick() => true,
            _ = stop.wait() => {
                done = true;
                true
            }
        };
        if full {
            for ((domain, source, blocked), f) in pending.drain() {
                let payload = Payload::WebVisit {
                    domain,
                    source: source.into(),
                    blocked,
                    rule: f.rule,
                    count: f.count,
                    url: None,
                    title: None,
                    search: None,
                    bytes_out: f.bytes_out,
                    bytes_in: f.bytes_in,
                };
                let category = payload.required_category().unwrap_or(Category::Web);
                let r = Record {
                    category,
                    ts_ms: f.first_ms,
                    duration_ms: f.duration_ms,
                    payload: payload.to_json(),
                    checkpoint: None,
                };
                if !recorder.record(r).await {
                    return;
                }
            }
        }
        if done {
            return;
        }
    }
}
