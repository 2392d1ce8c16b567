//! [`RetentionStore`] for SQLite.

use super::SqliteStore;
use crate::store::{LegalHold, PurgeRecord, Result, RetentionStore, StoreError};
use candor_proto::Category;
use rusqlite::params;

/// Rows deleted per transaction: the ingest writer waits at most one chunk.
const CHUNK: i64 = 5000;

/// Endpoints whose data is held: assigned to an employee under hold.
const HELD: &str = "SELECT id FROM agents WHERE employee_id IN (SELECT employee_id FROM legal_holds)";

impl RetentionStore for SqliteStore {
    fn legal_holds(&self) -> Result<Vec<LegalHold>> {
        self.read(|c| {
            let mut st =
                c.prepare_cached("SELECT employee_id, reason, set_by, set_ms FROM legal_holds ORDER BY employee_id")?;
            let rows = st.query_map([], |r| {
                Ok(LegalHold {
                    employee_id: r.get::<_, i64>(0)? as u64,
                    reason: r.get(1)?,
                    set_by: r.get(2)?,
                    set_ms: r.get(3)?,
                })
            })?;
            Ok(rows.collect::<rusqlite::Result<_>>()?)
        })
    }

    fn set_legal_hold(&self, employee_id: u64, reason: Option<&str>, by: &str, now_ms: i64) -> Result<()> {
        self.write(|c| {
            let known: bool =
                c.query_row("SELECT count(*) FROM employees WHERE id = ?1", [employee_id as i64], |r| r.get(0))?;
            if !known {
                return Err(StoreError::NotFound(format!("employee {employee_id}")));
            }
            match reason {
                Some(reason) => c.execute(
                    "INSERT INTO legal_holds (employee_id, reason, set_by, set_ms) VALUES (?1, ?2, ?3, ?4)
                     ON CONFLICT (employee_id) DO UPDATE SET reason = excluded.reason, set_by = excluded.set_by,
                       set_ms = excluded.set_ms",
                    params![employee_id as i64, reason, by, now_ms],
                )?,
                None => c.execute("DELETE FROM legal_holds WHERE employee_id = ?1", [employee_id as i64])?,
            };
            Ok(())
        })
    }

    fn purge(&self, category: Category, cutoff_ms: i64, cutoff_day: Option<&str>, now_ms: i64) -> Result<PurgeRecord> {
        let mut events = 0u64;
        loop {
            let n = self.write(|c| {
                Ok(c.execute(
                    &format!(
                        "DELETE FROM events WHERE (agent_id, seq) IN (
                           SELECT agent_id, seq FROM events
                           WHERE ts_ms < ?1 AND category = ?2 AND agent_id NOT IN ({HELD}) LIMIT ?3)"
                    ),
                    params![cutoff_ms, category.code(), CHUNK],
                )?)
            })?;
            events += n as u64;
            if (n as i64) < CHUNK {
                break;
            }
        }
        let mut frames = 0u64;
        if category == Category::Screen {
            loop {
                let n = self.write(|c| Ok(super::screen::purge_chunk(c, cutoff_ms, HELD, CHUNK)?))?;
                frames += n;
                if (n as i64) < CHUNK {
                    break;
                }
            }
        }
        if category == Category::Chat {
            loop {
                let n = self.purge_chat_chunk(cutoff_ms, CHUNK)?;
                events += n;
                if (n as i64) < CHUNK {
                    break;
                }
            }
        }
        self.write(|c| {
            let table = match category {
                Category::Activity => Some("activity_daily"),
                Category::Web => Some("web_daily"),
                _ => None,
            };
            let rollups = match (cutoff_day, table) {
                (Some(day), Some(table)) => c
                    .execute(&format!("DELETE FROM {table} WHERE day < ?1 AND agent_id NOT IN ({HELD})"), [day])?
                    as u64,
                // For screens, the rollups are the frame index rows.
                _ => frames,
            };
            let held: i64 = c.query_row(&format!("SELECT count(*) FROM ({HELD})"), [], |r| r.get(0))?;
            // A run that found nothing to delete leaves no row (it would be most rows).
            let id = if events + rollups > 0 {
                c.execute(
                    "INSERT INTO purge_log (ts_ms, category, cutoff_ms, events, rollups, held_endpoints)
                     VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
                    params![now_ms, category.as_str(), cutoff_ms, events as i64, rollups as i64, held],
                )?;
                c.last_insert_rowid() as u64
            } else {
                0
            };
            Ok(PurgeRecord {
                id,
                ts_ms: now_ms,
                category: category.as_str().into(),
                cutoff_ms,
                events,
                rollups,
                held_endpoints: held as u64,
            })
        })
    }

    fn purge_log(&self, limit: u32) -> Result<Vec<PurgeRecord>> {
        self.read(|c| {
            let mut st = c.prepare_cached(
                "SELECT id, ts_ms, category, cutoff_ms, events, rollups, held_endpoints FROM purge_log
                 ORDER BY id DESC LIMIT ?1",
            )?;
            let rows = st.query_map([limit], |r| {
                Ok(PurgeRecord {
                    id: r.get::<_, i64>(0)? as u64,
                    ts_ms: r.get(1)?,
                    category: r.get(2)?,
                    cutoff_ms: r.get(3)?,
                    events: r.get::<_, i64>(4)? as u64,
                    rollups: r.get::<_, i64>(5)? as u64,
                    held_endpoints: r.get::<_, i64>(6)? as u64,
                })
            })?;
            Ok(rows.collect::<rusqlite::Result<_>>()?)
        })
    }
}
