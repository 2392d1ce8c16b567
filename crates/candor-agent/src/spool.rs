//! The durable spool: every recorded event waits here until the server has
//! acknowledged it.
//!
//! SQLite in WAL mode with `synchronous=FULL`: an event counts as recorded only
//! once its transaction is synced, and it is where `seq` is assigned, so seqs
//! are gap-free except where the spool itself drops events. The spool is
//! bounded by bytes and age; when either is exceeded the oldest events go and
//! a `spool_dropped` event records how many and which, so every loss is
//! visible on the server.

use anyhow::Context;
use candor_proto::{now_ms, Category, Event, Payload};
use rusqlite::{params, Connection, OptionalExtension, Transaction};
use std::path::Path;
use std::sync::Mutex;

/// Bookkeeping bytes counted per event on top of its payload.
const ROW_OVERHEAD: u64 = 32;

/// An event as a source hands it over, before it has a seq.
#[derive(Debug, Clone)]
pub struct Record {
    pub category: Category,
    pub ts_ms: i64,
    pub duration_ms: Option<u64>,
    pub payload: Vec<u8>,
    /// Source progress committed with the event (e.g. the synthetic source's
    /// index), so a restarted source resumes exactly after what was recorded.
    pub checkpoint: Option<(&'static str, i64)>,
}

#[derive(Debug, Clone, Copy)]
pub struct SpoolLimits {
    pub max_bytes: u64,
    pub max_age_ms: i64,
}

pub struct Spool {
    conn: Mutex<Connection>,
    limits: SpoolLimits,
}

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct SpoolStats {
    pub events: u64,
    pub bytes: u64,
}

impl Spool {
    pub fn open(path: &Path, limits: SpoolLimits) -> anyhow::Result<Spool> {
        let conn = Connection::open(path).with_context(|| format!("opening spool {}", path.display()))?;
        conn.execute_batch(
            "PRAGMA journal_mode=WAL; PRAGMA synchronous=FULL; PRAGMA busy_timeout=10000; PRAGMA cache_size=-512;
             CREATE TABLE IF NOT EXISTS spool (
                 seq INTEGER PRIMARY KEY, ts_ms INTEGER NOT NULL, duration_ms INTEGER,
                 category INTEGER NOT NULL, payload BLOB NOT NULL);
             CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value INTEGER NOT NULL);
             CREATE TABLE IF NOT EXISTS checkpoints (source TEXT PRIMARY KEY, value INTEGER NOT NULL);
             INSERT OR IGNORE INTO meta VALUES ('next_seq', 1), ('bytes', 0);",
        )
        .context("initialising spool")?;
        Ok(Spool { conn: Mutex::new(conn), limits })
    }

    fn lock(&self) -> anyhow::Result<std::sync::MutexGuard<'_, Connection>> {
        self.conn.lock().map_err(|_| anyhow::anyhow!("spool lock poisoned"))
    }

    /// Durably record `records`; returns the last seq assigned.
    pub fn append(&self, records: &[Record]) -> anyhow::Result<u64> {
        let mut conn = self.lock()?;
        let tx = conn.transaction()?;
        let mut seq: i64 = meta(&tx, "next_seq")?;
        let mut added = 0u64;
        {
            let mut ins = tx.prepare_cached(
                "INSERT INTO spool (seq, ts_ms, duration_ms, category, payload) VALUES (?1, ?2, ?3, ?4, ?5)",
            )?;
            let mut cp = tx.prepare_cached(
                "INSERT INTO checkpoints (source, value) VALUES (?1, ?2)
                 ON CONFLICT (source) DO UPDATE SET value = max(value, excluded.value)",
            )?;
            for r in records {
                ins.execute(params![seq, r.ts_ms, r.duration_ms.map(|d| d as i64), r.category.code(), r.payload])?;
                if let Some((source, value)) = r.checkpoint {
                    cp.execute(params![source, value])?;
                }
                added += r.payload.len() as u64 + ROW_OVERHEAD;
                seq += 1;
            }
        }
        set_meta(&tx, "next_seq", seq)?;
        let bytes = meta(&tx, "bytes")? as u64 + added;
        set_meta(&tx, "bytes", bytes as i64)?;
        let last = self.trim(&tx, bytes)?.unwrap_or(seq as u64 - 1);
        tx.commit().context("committing to spool")?;
        Ok(last)
    }

    /// Drop the oldest events beyond the bounds and record the loss. Trims to
    /// 90% of the byte bound so that a full spool does not trim on every append.
    fn trim(&self, tx: &Transaction, bytes: u64) -> anyhow::Result<Option<u64>> {
        let cutoff = now_ms() - self.limits.max_age_ms;
        let oldest: Option<i64> = tx.query_row("SELECT min(ts_ms) FROM spool", [], |r| r.get(0))?;
        let over_bytes = bytes > self.limits.max_bytes;
        if !over_bytes && oldest.is_none_or(|t| t >= cutoff) {
            return Ok(None);
        }
        let target = if over_bytes { self.limits.max_bytes / 10 * 9 } else { bytes };
        let mut freed = 0u64;
        let (mut count, mut first, mut last) = (0u64, None, (0i64, 0i64));
        {
            // `count` is how many seqs will never arrive. A loss report that is
            // dropped in turn folds its count (plus itself) into the new one, so
            // the reports that survive add up exactly.
            let mut st = tx.prepare(
                "SELECT seq, ts_ms, length(payload), CASE WHEN category = ?1 THEN payload END FROM spool ORDER BY seq",
            )?;
            let mut rows = st.query([Category::System.code()])?;
            while let Some(r) = rows.next()? {
                let (seq, ts, len): (i64, i64, i64) = (r.get(0)?, r.get(1)?, r.get(2)?);
                if bytes - freed <= target && ts >= cutoff {
                    break;
                }
                freed += len as u64 + ROW_OVERHEAD;
                let system: Option<Vec<u8>> = r.get(3)?;
                count += match system.and_then(|p| serde_json::from_slice::<Payload>(&p).ok()) {
                    Some(Payload::SpoolDropped { count, .. }) => count + 1,
                    _ => 1,
                };
                first.get_or_insert((seq, ts));
                last = (seq, ts);
            }
        }
        let Some(first) = first else { return Ok(None) };
        tx.execute("DELETE FROM spool WHERE seq <= ?1", [last.0])?;
        let reason = if over_bytes { "spool full" } else { "older than spool max age" };
        tracing::warn!(count, first_seq = first.0, last_seq = last.0, reason, "spool dropped its oldest events");
        let payload = Payload::SpoolDropped {
            count,
            first_seq: first.0 as u64,
            last_seq: last.0 as u64,
            first_ts_ms: first.1,
            last_ts_ms: last.1,
            reason: reason.into(),
        }
        .to_json();
        let seq: i64 = meta(tx, "next_seq")?;
        tx.execute(
            "INSERT INTO spool (seq, ts_ms, duration_ms, category, payload) VALUES (?1, ?2, NULL, ?3, ?4)",
            params![seq, now_ms(), Category::System.code(), payload],
        )?;
        set_meta(tx, "next_seq", seq + 1)?;
        set_meta(tx, "bytes", (bytes - freed + payload.len() as u64 + ROW_OVERHEAD) as i64)?;
        Ok(Some(seq as u64))
    }

    /// The oldest `max` events, in seq order.
    pub fn peek(&self, max: usize) -> anyhow::Result<Vec<Event>> {
        let conn = self.lock()?;
        let mut st =
            conn.prepare_cached("SELECT seq, ts_ms, duration_ms, category, payload FROM spool ORDER BY seq LIMIT ?1")?;
        let rows = st.query_map([max as i64], |r| {
            Ok(Event {
                seq: r.get::<_, i64>(0)? as u64,
                ts_ms: r.get(1)?,
                duration_ms: r.get::<_, Option<i64>>(2)?.map(|d| d as u64),
                category: Category::from_code(r.get(3)?).unwrap_or(Category::System),
                payload: r.get(4)?,
            })
        })?;
        Ok(rows.collect::<rusqlite::Result<_>>()?)
    }

    /// Forget every event up to and including `seq` (acknowledged by the
    /// server, or rejected for good).
    pub fn remove_through(&self, seq: u64) -> anyhow::Result<u64> {
        let mut conn = self.lock()?;
        let tx = conn.transaction()?;
        let (n, freed): (i64, i64) = tx.query_row(
            "SELECT count(*), coalesce(sum(length(payload)), 0) FROM spool WHERE seq <= ?1",
            [seq as i64],
            |r| Ok((r.get(0)?, r.get(1)?)),
        )?;
        if n == 0 {
            return Ok(0);
        }
        tx.execute("DELETE FROM spool WHERE seq <= ?1", [seq as i64])?;
        let bytes = meta(&tx, "bytes")? - freed - n * ROW_OVERHEAD as i64;
        set_meta(&tx, "bytes", bytes.max(0))?;
        tx.commit()?;
        Ok(n as u64)
    }

    pub fn checkpoint(&self, source: &str) -> anyhow::Result<Option<i64>> {
        let conn = self.lock()?;
        Ok(conn.query_row("SELECT value FROM checkpoints WHERE source = ?1", [source], |r| r.get(0)).optional()?)
    }

    pub fn stats(&self) -> anyhow::Result<SpoolStats> {
        let conn = self.lock()?;
        let events: i64 = conn.query_row("SELECT count(*) FROM spool", [], |r| r.get(0))?;
        let bytes: i64 = conn.query_row("SELECT value FROM meta WHERE key = 'bytes'", [], |r| r.get(0))?;
        Ok(SpoolStats { events: events as u64, bytes: bytes as u64 })
    }
}

fn meta(tx: &Transaction, key: &str) -> rusqlite::Result<i64> {
    tx.query_row("SELECT value FROM meta WHERE key = ?1", [key], |r| r.get(0))
}

fn set_meta(tx: &Transaction, key: &str, value: i64) -> rusqlite::Result<usize> {
    tx.execute("UPDATE meta SET value = ?2 WHERE key = ?1", params![key, value])
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rec(n: u64) -> Record {
        Record {
            category: Category::Activity,
            ts_ms: now_ms(),
            duration_ms: None,
            payload: Payload::Synthetic { n, note: None }.to_json(),
            checkpoint: Some(("synthetic", n as i64)),
        }
    }

    fn open(dir: &Path, max_bytes: u64) -> Spool {
        Spool::open(&dir.join("spool.db"), SpoolLimits { max_bytes, max_age_ms: 3_600_000 }).unwrap()
    }

    #[test]
    fn seqs_persist_and_ack_removes() {
        let dir = tempfile::tempdir().unwrap();
        let s = open(dir.path(), 1 << 30);
        assert_eq!(s.append(&[rec(1), rec(2)]).unwrap(), 2);
        drop(s);
        let s = open(dir.path(), 1 << 30);
        assert_eq!(s.append(&[rec(3)]).unwrap(), 3);
        assert_eq!(s.checkpoint("synthetic").unwrap(), Some(3));
        assert_eq!(s.peek(10).unwrap().iter().map(|e| e.seq).collect::<Vec<_>>(), vec![1, 2, 3]);
        assert_eq!(s.remove_through(2).unwrap(), 2);
        assert_eq!(s.stats().unwrap().events, 1);
        let one = rec(3).payload.len() as u64 + ROW_OVERHEAD;
        assert_eq!(s.stats().unwrap().bytes, one);
    }

    #[test]
    fn full_spool_drops_oldest_and_says_so() {
        let dir = tempfile::tempdir().unwrap();
        let one = rec(1).payload.len() as u64 + ROW_OVERHEAD;
        let s = open(dir.path(), one * 100);
        for n in 1..=150 {
            s.append(&[rec(n)]).unwrap();
        }
        let events = s.peek(1000).unwrap();
        let last_seq = events.last().unwrap().seq;
        let dropped: u64 = events
            .iter()
            .filter_map(|e| match serde_json::from_slice::<Payload>(&e.payload).unwrap() {
                Payload::SpoolDropped { count, .. } => Some(count),
                _ => None,
            })
            .sum();
        assert!(dropped > 0);
        assert_eq!(events.len() as u64 + dropped, last_seq, "every seq is either kept or counted as dropped");
        assert!(s.stats().unwrap().bytes <= one * 100);
    }
}
