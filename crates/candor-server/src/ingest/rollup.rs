//! Activity rollups computed while a batch is decoded: each activity span
//! becomes per-day deltas (split at the company's midnights) and each
//! catalogue entry an application upsert. The store applies them in the
//! ingest transaction, only for events it had not stored before, so a
//! resent batch counts once.

use crate::company_time::{date_at, day_bounds};
use base64::Engine;
use candor_proto::{Category, Event, Payload};
use chrono_tz::Tz;

/// Longest span accepted into rollups: the agent cuts spans at 60 s, so
/// anything much longer is a broken or hostile agent, clipped to this.
const MAX_SPAN_MS: u64 = 3_600_000;
const MAX_ICON: usize = 32 * 1024;

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RollupDelta {
    /// The event that produced it: applied only if that event is new.
    pub seq: u64,
    pub day: String,
    pub user: String,
    pub app: String,
    pub state: String,
    pub duration_ms: i64,
    pub first_ms: i64,
    pub last_ms: i64,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AppUpsert {
    pub app: String,
    pub desktop_id: String,
    pub name: String,
    pub name_zh: Option<String>,
    pub categories: Vec<String>,
    pub icon: Option<Vec<u8>>,
}

fn clip(s: &str, chars: usize) -> String {
    s.chars().take(chars).collect()
}

const STATES: [&str; 3] = ["active", "idle", "locked"];

pub fn deltas(tz: Tz, events: &[Event]) -> (Vec<RollupDelta>, Vec<AppUpsert>) {
    let mut out = Vec::new();
    let mut apps = Vec::new();
    // Only activity events carry spans or catalogue entries: others are not parsed again.
    for e in events.iter().filter(|e| e.category == Category::Activity) {
        match serde_json::from_slice::<Payload>(&e.payload) {
            Ok(Payload::Activity { app, state, user, .. }) => {
                let Some(state) = STATES.iter().find(|s| **s == state) else { continue };
                let duration = e.duration_ms.unwrap_or(0).min(MAX_SPAN_MS) as i64;
                let end = e.ts_ms.saturating_add(duration);
                let mut start = e.ts_ms;
                while start < end {
                    let date = date_at(tz, start);
                    let (_, day_end) = day_bounds(tz, date);
                    // A broken zone table must not loop forever.
                    let stop = if day_end > start { day_end.min(end) } else { end };
                    out.push(RollupDelta {
                        seq: e.seq,
                        day: date.to_string(),
                        user: clip(user.as_deref().unwrap_or_default(), 64),
                        app: clip(&app, 256),
                        state: state.to_string(),
                        duration_ms: stop - start,
                        first_ms: start,
                        last_ms: stop,
                    });
                    start = stop;
                }
            }
            Ok(Payload::AppInfo { app, desktop_id, name, name_zh, categories, icon_png }) => {
                let icon = icon_png
                    .and_then(|b| base64::engine::general_purpose::STANDARD.decode(b).ok())
                    .filter(|b| b.len() <= MAX_ICON && b.starts_with(b"\x89PNG\r\n\x1a\n"));
                apps.push(AppUpsert {
                    app: clip(&app, 256),
                    desktop_id: clip(&desktop_id, 256),
                    name: clip(&name, 128),
                    name_zh: name_zh.map(|n| clip(&n, 128)),
                    categories: categories.iter().take(16).map(|c| clip(c, 64)).collect(),
                    icon,
                });
            }
            _ => {}
        }
    }
    (out, apps)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::company_time::parse_tz;

    fn span(seq: u64, ts: i64, dur: u64, state: &str) -> Event {
        Event {
            seq,
            ts_ms: ts,
            duration_ms: Some(dur),
            category: Category::Activity,
            payload: Payload::Activity {
                app: "wps".into(),
                exe: None,
                wm_class: None,
                title: None,
                title_hash: None,
                pid: None,
                pid_verified: false,
                state: state.into(),
                user: Some("zhang".into()),
            }
            .to_json(),
        }
    }

    #[test]
    fn spans_split_at_company_midnight() {
        let sh = parse_tz("Asia/Shanghai").unwrap();
        // 2026-11-28T15:59:30Z is 23:59:30 in Shanghai.
        let ts = 1_795_881_570_000;
        let (d, _) = deltas(sh, &[span(1, ts, 60_000, "active")]);
        assert_eq!(d.len(), 2);
        assert_eq!((d[0].day.as_str(), d[0].duration_ms), ("2026-11-28", 30_000));
        assert_eq!((d[1].day.as_str(), d[1].duration_ms), ("2026-11-29", 30_000));
        assert_eq!(d[0].last_ms, d[1].first_ms);
        assert_eq!(d.iter().map(|x| x.duration_ms).sum::<i64>(), 60_000, "nothing lost in the split");
    }

    #[test]
    fn hostile_spans_are_clipped_or_skipped() {
        let sh = parse_tz("Asia/Shanghai").unwrap();
        let (d, _) = deltas(sh, &[span(1, i64::MAX - 5, u64::MAX, "active"), span(2, 0, 10, "asleep")]);
        assert!(d.iter().all(|x| x.duration_ms <= MAX_SPAN_MS as i64));
        assert!(d.iter().all(|x| x.seq == 1), "unknown state skipped");
        let (d, _) = deltas(sh, &[span(3, 0, u64::MAX, "idle")]);
        assert_eq!(d.iter().map(|x| x.duration_ms).sum::<i64>(), MAX_SPAN_MS as i64);
    }
}
