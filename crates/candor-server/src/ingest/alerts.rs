//! Alerts raised by what arrives, as a pure function of the batch: data the
//! spool had to drop, and events refused because policy × consent forbids
//! them. blocked or reported program starts (software control). (DLP adds its own kinds as it lands.)

use crate::store::{NewAlert, Severity};
use candor_proto::{Event, Payload};

pub fn raised_by(agent_id: u64, events: &[Event], refused: &[Event]) -> Vec<NewAlert> {
    let mut out = Vec::new();
    for e in events {
        let payload = serde_json::from_slice(&e.payload);
        if let Ok(Payload::SoftwareControl { outcome, reason, rule, exe, sha256, user, count, mode, .. }) = &payload {
            let who = user.as_deref().unwrap_or("a system account");
            let why = rule.as_deref().map(|r| format!("rule “{r}”")).unwrap_or_else(|| reason.replace('_', " "));
            let times = if *count > 1 { format!(" ({count} attempts)") } else { String::new() };
            out.push(NewAlert {
                ts_ms: e.ts_ms,
                agent_id,
                kind: if reason == "install" { "install_blocked" } else { "software_blocked" },
                severity: if outcome == "blocked" { Severity::Warning } else { Severity::Info },
                detail: format!("{who} tried to start {exe}{times}: {outcome} ({why})"),
                data: serde_json::json!({"outcome": outcome, "reason": reason, "rule": rule, "exe": exe,
                    "sha256": sha256, "user": user, "count": count, "mode": mode}),
                source_seq: e.seq,
            });
        }
        if let Ok(Payload::SpoolDropped { count, first_seq, last_seq, reason, .. }) = payload {
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
        let blocked = Payload::SoftwareControl {
            outcome: "blocked".into(),
            reason: "rule".into(),
            rule: Some("游戏".into()),
            exe: "/tmp/game".into(),
            sha256: None,
            package: None,
            user: Some("alice".into()),
            uid: Some(1000),
            pid: 9,
            mode: "fanotify".into(),
            count: 3,
        };
        let a = raised_by(3, &[ev(9, Category::System, blocked)], &[]);
        assert_eq!((a[0].kind, a[0].severity), ("software_blocked", Severity::Warning));
        assert_eq!(a[0].detail, "alice tried to start /tmp/game (3 attempts): blocked (rule “游戏”)");
    }
}
