//! Alerts raised by what arrives, as a pure function of the batch: data the
//! spool had to drop, and events refused because policy × consent forbids
//! them. (DLP and blocked attempts add their own kinds as they land.)

use crate::store::{NewAlert, Severity};
use candor_proto::{Event, Payload};

pub fn raised_by(agent_id: u64, events: &[Event], refused: &[Event]) -> Vec<NewAlert> {
    let mut out = Vec::new();
    for e in events {
        if let Ok(Payload::SpoolDropped { count, first_seq, last_seq, reason, .. }) = serde_json::from_slice(&e.payload)
        {
            out.push(NewAlert {
                ts_ms: e.ts_ms,
                agent_id,
                kind: "spool_dropped",
                severity: Severity::Warning,
                detail: format!("the endpoint dropped {count} events (seq {first_seq}–{last_seq}): {reason}"),
                data: serde_json::json!({"count": count, "first_seq": first_seq, "last_seq": last_seq, "reason": reason}),
                source_seq: e.seq,
            });
        }
    }
    if let Some(first) = refused.first() {
        let mut cats: Vec<&str> = refused.iter().map(|e| e.category.as_str()).collect();
        cats.sort_unstable();
        cats.dedup();
        out.push(NewAlert {
            ts_ms: first.ts_ms,
            agent_id,
            kind: "refused_events",
            severity: Severity::Warning,
            detail: format!(
                "{} events refused: category {} not allowed by policy and consent for this endpoint",
                refused.len(),
                cats.join(", ")
            ),
            data: serde_json::json!({"count": refused.len(), "categories": cats.join(", ")}),
            source_seq: first.seq,
        });
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use candor_proto::Category;

    fn ev(seq: u64, category: Category, payload: Payload) -> Event {
        Event { seq, ts_ms: 1, duration_ms: None, category, payload: payload.to_json() }
    }

    #[test]
    fn spool_losses_and_refusals_raise_alerts() {
        let dropped = Payload::SpoolDropped {
            count: 5,
            first_seq: 1,
            last_seq: 5,
            first_ts_ms: 0,
            last_ts_ms: 1,
            reason: "spool full".into(),
        };
        let events =
            vec![ev(6, Category::System, dropped), ev(7, Category::Activity, Payload::Synthetic { n: 1, note: None })];
        let refused = vec![ev(8, Category::Web, Payload::Synthetic { n: 2, note: None })];
        let a = raised_by(3, &events, &refused);
        assert_eq!(a.len(), 2);
        assert_eq!((a[0].kind, a[0].source_seq), ("spool_dropped", 6));
        assert!(a[1].detail.contains("category web"));
        assert!(raised_by(3, &events[1..], &[]).is_empty());
    }
}
