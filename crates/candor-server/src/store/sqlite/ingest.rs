//! The ingest transaction: insert-or-ignore on (agent, seq), then advance each
//! agent's contiguous acknowledgement, all in one commit per group of batches.

use super::SqliteStore;
use crate::ingest::ack::advance;
use crate::ingest::rollup::RollupDelta;
use crate::store::{IngestItem, IngestOutcome, Result};
use candor_proto::Event;
use rusqlite::{params, OptionalExtension, Statement, Transaction};
use std::collections::{BTreeMap, HashSet};

/// Rows per multi-row INSERT: one statement step per chunk instead of per row
/// (measured ~1.2× on the writer thread, which bounds ingest).
const CHUNK: usize = 64;

fn insert_sql(rows: usize) -> String {
    let mut sql =
        String::from("INSERT OR IGNORE INTO events (agent_id, seq, ts_ms, duration_ms, category, payload) VALUES ");
    for i in 0..rows {
        sql.push_str(if i == 0 { "(?,?,?,?,?,?)" } else { ",(?,?,?,?,?,?)" });
    }
    sql
}

/// Insert `events` for `agent`; returns how many were new.
fn insert_events<'c>(
    tx: &'c Transaction,
    full: &mut Statement<'c>,
    agent: i64,
    events: &[Event],
) -> rusqlite::Result<u64> {
    let mut stored = 0;
    for chunk in events.chunks(CHUNK) {
        let mut partial;
        let st = if chunk.len() == CHUNK {
            &mut *full
        } else {
            partial = tx.prepare_cached(&insert_sql(chunk.len()))?;
            &mut partial
        };
        for (i, e) in chunk.iter().enumerate() {
            let base = i * 6;
            st.raw_bind_parameter(base + 1, agent)?;
            st.raw_bind_parameter(base + 2, e.seq as i64)?;
            st.raw_bind_parameter(base + 3, e.ts_ms)?;
            st.raw_bind_parameter(base + 4, e.duration_ms.map(|d| d as i64))?;
            st.raw_bind_parameter(base + 5, e.category.code())?;
            st.raw_bind_parameter(base + 6, &e.payload)?;
        }
        stored += st.raw_execute()? as u64;
    }
    Ok(stored)
}

/// Summed deltas for one rollup row.
#[derive(Default)]
struct RowSum {
    duration_ms: i64,
    spans: i64,
    first_ms: i64,
    last_ms: i64,
}

type RowKey<'a> = (&'a str, &'a str, &'a str, &'a str);

/// Which of `seqs` are stored already for `agent`.
fn stored_seqs(
    existing: &mut Statement,
    agent: i64,
    seqs: impl Iterator<Item = u64> + Clone,
) -> rusqlite::Result<HashSet<u64>> {
    let (Some(lo), Some(hi)) = (seqs.clone().min(), seqs.max()) else {
        return Ok(HashSet::new());
    };
    existing
        .query_map(params![agent, lo as i64, hi as i64], |r| r.get::<_, i64>(0))?
        .map(|s| s.map(|s| s as u64))
        .collect()
}

/// The deltas of events not stored before, summed per rollup row.
fn fresh_rollups<'a>(
    existing: &mut Statement,
    agent: i64,
    deltas: &'a [RollupDelta],
) -> rusqlite::Result<BTreeMap<RowKey<'a>, RowSum>> {
    let mut out: BTreeMap<RowKey<'a>, RowSum> = BTreeMap::new();
    let stored = stored_seqs(existing, agent, deltas.iter().map(|d| d.seq))?;
    for d in deltas.iter().filter(|d| !stored.contains(&d.seq)) {
        let r = out.entry((d.day.as_str(), d.user.as_str(), d.app.as_str(), d.state.as_str())).or_insert(RowSum {
            first_ms: d.first_ms,
            last_ms: d.last_ms,
            ..Default::default()
        });
        r.duration_ms += d.duration_ms;
        r.spans += 1;
        r.first_ms = r.first_ms.min(d.first_ms);
        r.last_ms = r.last_ms.max(d.last_ms);
    }
    Ok(out)
}

pub(super) fn run(store: &SqliteStore, items: &[IngestItem]) -> Result<Vec<IngestOutcome>> {
    store.write(|conn| {
        let tx = conn.transaction()?;
        let mut outcomes = Vec::with_capacity(items.len());
        {
            let mut insert = tx.prepare_cached(&insert_sql(CHUNK))?;
            let mut high_of = tx.prepare_cached("SELECT acked_seq FROM agents WHERE id = ?1")?;
            let mut exists = tx.prepare_cached("SELECT 1 FROM events WHERE agent_id = ?1 AND seq = ?2")?;
            let mut existing =
                tx.prepare_cached("SELECT seq FROM events WHERE agent_id = ?1 AND seq BETWEEN ?2 AND ?3")?;
            let mut alert = tx.prepare_cached(
                "INSERT OR IGNORE INTO alerts (ts_ms, agent_id, kind, severity, detail, updated_ms, source_seq, data)
                 VALUES (?1, ?2, ?3, ?4, ?5, ?1, ?6, ?7)",
            )?;
            let mut rollup = tx.prepare_cached(
                "INSERT INTO activity_daily (day, agent_id, user, app, state, duration_ms, spans, first_ms, last_ms)
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9)
                 ON CONFLICT (day, agent_id, user, app, state) DO UPDATE SET
                   duration_ms = duration_ms + excluded.duration_ms, spans = spans + excluded.spans,
                   first_ms = min(first_ms, excluded.first_ms), last_ms = max(last_ms, excluded.last_ms)",
            )?;
            let mut web = tx.prepare_cached(
                "INSERT INTO web_daily (day, agent_id, domain, blocked, visits, bytes, dwell_ms, first_ms, last_ms)
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?8)
                 ON CONFLICT (day, agent_id, domain, blocked) DO UPDATE SET
                   visits = visits + excluded.visits, bytes = bytes + excluded.bytes,
                   dwell_ms = dwell_ms + excluded.dwell_ms,
                   first_ms = min(first_ms, excluded.first_ms), last_ms = max(last_ms, excluded.last_ms)",
            )?;
            let mut app = tx.prepare_cached(
                "INSERT INTO applications (app, desktop_id, name, name_zh, categories, icon, first_seen_ms, updated_ms)
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?7)
                 ON CONFLICT (app) DO UPDATE SET desktop_id = excluded.desktop_id, name = excluded.name,
                   name_zh = excluded.name_zh, categories = excluded.categories,
                   icon = coalesce(excluded.icon, icon), updated_ms = excluded.updated_ms",
            )?;
            let mut seen_app = tx.prepare_cached(
                "INSERT OR IGNORE INTO applications (app, first_seen_ms, updated_ms) VALUES (?1, ?2, ?2)",
            )?;
            let mut screen = tx.prepare_cached(
                "INSERT OR IGNORE INTO screen_frames
                   (agent_id, seq, ts_ms, display, width, height, key, tiles, bytes, reason, blob)
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11)",
            )?;
            let mut update = tx.prepare_cached(
                "UPDATE agents SET acked_seq = ?2, refused_events = refused_events + ?3 WHERE id = ?1",
            )?;
            for item in items {
                let agent = item.agent_id as i64;
                // Which rollup sources are new must be known before they are inserted;
                // deltas are then summed per row, so a batch costs one upsert per
                // (day, user, application, state) rather than one per span.
                let fresh = fresh_rollups(&mut existing, agent, &item.rollups)?;
                let web_stored = stored_seqs(&mut existing, agent, item.web.iter().map(|d| d.seq))?;
                let stored = insert_events(&tx, &mut insert, agent, &item.events)?;
                for f in &item.screens {
                    screen.execute(params![
                        agent,
                        f.seq as i64,
                        f.ts_ms,
                        f.display,
                        f.width,
                        f.height,
                        f.key,
                        f.tiles,
                        f.bytes as i64,
                        f.reason,
                        f.blob
                    ])?;
                }
                for d in item.web.iter().filter(|d| !web_stored.contains(&d.seq)) {
                    web.execute(params![d.day, agent, d.domain, d.blocked, d.visits, d.bytes, d.dwell_ms, d.ts_ms])?;
                }
                for ((day, user, app, state), r) in &fresh {
                    seen_app.execute(params![app, r.first_ms])?;
                    rollup.execute(params![
                        day,
                        agent,
                        user,
                        app,
                        state,
                        r.duration_ms,
                        r.spans,
                        r.first_ms,
                        r.last_ms
                    ])?;
                }
                for a in &item.apps {
                    app.execute(params![
                        a.app,
                        a.desktop_id,
                        a.name,
                        a.name_zh,
                        serde_json::to_string(&a.categories).unwrap_or_else(|_| "[]".into()),
                        a.icon,
                        candor_proto::now_ms()
                    ])?;
                }
                let high: i64 = high_of.query_row([agent], |r| r.get(0))?;
                let mut processed: Vec<u64> =
                    item.events.iter().map(|e| e.seq).chain(item.refused.iter().copied()).collect();
                processed.sort_unstable();
                let mut high = advance(high as u64, item.floor, &processed);
                // Events stored earlier beyond a gap count once the gap fills.
                while exists.query_row(params![agent, (high + 1) as i64], |_| Ok(())).optional()?.is_some() {
                    high += 1;
                }
                update.execute(params![agent, high as i64, item.refused.len() as i64])?;
                for a in &item.alerts {
                    alert.execute(params![
                        a.ts_ms,
                        agent,
                        a.kind,
                        a.severity.as_str(),
                        a.detail,
                        a.source_seq as i64,
                        a.data.to_string()
                    ])?;
                }
                outcomes.push(IngestOutcome {
                    acked: high,
                    stored,
                    duplicates: item.events.len() as u64 - stored,
                    refused: item.refused.len() as u64,
                });
            }
        }
        tx.commit()?;
        Ok(outcomes)
    })
}

#[cfg(test)]
mod tests {
    use crate::store::sqlite::SqliteStore;
    use crate::store::{AlertQuery, AlertStore, IngestItem, NewAlert, Severity, Store};
    use candor_proto::{Category, Event, Payload};

    #[test]
    fn resent_batches_store_and_alert_once() {
        let dir = tempfile::tempdir().unwrap();
        let store = SqliteStore::open(&dir.path().join("t.db")).unwrap();
        let token = crate::enrollment::random_secret();
        store.create_token(&candor_proto::token::sha256_hex(token.as_bytes()), None, i64::MAX).unwrap();
        let agent = store.enroll(&candor_proto::token::sha256_hex(token.as_bytes()), "x", "h", "os", "v", 0).unwrap();
        let events: Vec<Event> = (1..=100)
            .map(|seq| Event {
                seq,
                ts_ms: seq as i64,
                duration_ms: None,
                category: Category::Activity,
                payload: Payload::Synthetic { n: seq, note: None }.to_json(),
            })
            .collect();
        let item = || IngestItem {
            agent_id: agent,
            rollups: vec![],
            web: vec![],
            screens: vec![],
            apps: vec![],
            floor: 1,
            events: events.clone(),
            refused: vec![101],
            alerts: vec![NewAlert {
                ts_ms: 1,
                agent_id: agent,
                kind: "refused_events",
                severity: Severity::Warning,
                detail: "d".into(),
                data: serde_json::json!({"count": 1}),
                source_seq: 101,
            }],
        };
        let first = store.ingest(&[item()]).unwrap();
        assert_eq!((first[0].acked, first[0].stored, first[0].refused), (101, 100, 1));
        let again = store.ingest(&[item()]).unwrap();
        assert_eq!((again[0].stored, again[0].duplicates), (0, 100));
        let alerts = store.alerts(&AlertQuery { limit: 10, ..Default::default() }).unwrap();
        assert_eq!(alerts.len(), 1, "raised once");
        assert_eq!(alerts[0].data["count"], 1);
    }
}
