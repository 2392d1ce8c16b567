//! Web visit rollups computed while a batch is decoded: each folded visit
//! record becomes a delta of its company day, domain and outcome, applied by
//! the store only for events it had not stored before (a resent batch counts
//! once).

use crate::company_time::date_at;
use candor_proto::{Category, Event, Payload};
use chrono_tz::Tz;

/// Longest dwell one record may add: the agent folds over minutes, so more
/// is a broken or hostile agent.
const MAX_DWELL_MS: u64 = 24 * 3_600_000;

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WebDelta {
    pub seq: u64,
    pub day: String,
    pub domain: String,
    pub blocked: bool,
    pub visits: i64,
    pub bytes: i64,
    pub dwell_ms: i64,
    pub ts_ms: i64,
}

pub fn deltas(tz: Tz, events: &[Event]) -> Vec<WebDelta> {
    events
        .iter()
        .filter(|e| matches!(e.category, Category::Web | Category::System))
        .filter_map(|e| match serde_json::from_slice::<Payload>(&e.payload) {
            Ok(Payload::WebVisit { domain, source, blocked, count, bytes_in, bytes_out, .. }) => {
                let domain = candor_webrules::normalise(&domain).ok()?;
                let bytes = bytes_in.unwrap_or(0).saturating_add(bytes_out.unwrap_or(0)).min(i64::MAX as u64);
                Some(WebDelta {
                    seq: e.seq,
                    day: date_at(tz, e.ts_ms).to_string(),
                    domain,
                    blocked,
                    visits: count.clamp(1, 1_000_000) as i64,
                    bytes: bytes as i64,
                    // Dwell is time in the active tab; a connection's lifetime is not.
                    dwell_ms: if source == "browser" { e.duration_ms.unwrap_or(0).min(MAX_DWELL_MS) as i64 } else { 0 },
                    ts_ms: e.ts_ms,
                })
            }
            _ => None,
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::company_time::parse_tz;

    fn visit(seq: u64, domain: &str, blocked: bool, count: u64) -> Event {
        let p = Payload::WebVisit {
            domain: domain.into(),
            source: "browser".into(),
            blocked,
            rule: None,
            count,
            url: None,
            title: None,
            search: None,
            bytes_out: Some(10),
            bytes_in: Some(u64::MAX),
        };
        Event {
            seq,
            ts_ms: 1_795_881_570_000,
            duration_ms: Some(u64::MAX),
            category: p.required_category().unwrap(),
            payload: p.to_json(),
        }
    }

    #[test]
    fn visits_become_bounded_day_deltas() {
        let sh = parse_tz("Asia/Shanghai").unwrap();
        let d = deltas(
            sh,
            &[visit(1, "WWW.Example.com", false, 3), visit(2, "bad domain", true, 1), visit(3, "x.cn", true, 0)],
        );
        assert_eq!(d.len(), 2, "an invalid domain is skipped");
        assert_eq!((d[0].day.as_str(), d[0].domain.as_str(), d[0].visits), ("2026-11-28", "www.example.com", 3));
        assert_eq!(d[0].bytes, i64::MAX);
        assert_eq!(d[0].dwell_ms, MAX_DWELL_MS as i64);
        assert!(d[1].blocked && d[1].visits == 1);
    }
}
