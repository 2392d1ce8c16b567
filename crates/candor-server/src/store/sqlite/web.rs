//! [`WebStore`] for SQLite: reads of the web rollups written at ingest, and
//! the domain lists (metadata here, text in the blob store).

use super::SqliteStore;
use crate::store::{Result, WebList, WebRow, WebStore};
use rusqlite::params;

impl WebStore for SqliteStore {
    fn web_rows(&self, from: &str, to: &str, agents: Option<&[u64]>) -> Result<Vec<WebRow>> {
        let scope = agents.map(|a| serde_json::to_string(a).unwrap_or_default());
        self.read(|c| {
            let mut st = c.prepare_cached(
                "SELECT day, agent_id, domain, blocked, visits, bytes, dwell_ms, first_ms, last_ms FROM web_daily
                 WHERE day >= ?1 AND day <= ?2 AND (?3 IS NULL OR agent_id IN (SELECT value FROM json_each(?3)))",
            )?;
            let rows = st.query_map(params![from, to, scope], |r| {
                Ok(WebRow {
                    day: r.get(0)?,
                    agent_id: r.get::<_, i64>(1)? as u64,
                    domain: r.get(2)?,
                    blocked: r.get(3)?,
                    visits: r.get(4)?,
                    bytes: r.get(5)?,
                    dwell_ms: r.get(6)?,
                    first_ms: r.get(7)?,
                    last_ms: r.get(8)?,
                })
            })?;
            Ok(rows.collect::<rusqlite::Result<_>>()?)
        })
    }

    fn web_lists(&self) -> Result<Vec<WebList>> {
        self.read(|c| {
            let mut st = c.prepare_cached(
                "SELECT id, name, category, sha256, bytes, rules, errors, source_url, refresh_hours, fetched_ms,
                        fetch_error, updated_by, updated_ms FROM web_lists ORDER BY category, name",
            )?;
            let rows = st.query_map([], |r| {
                Ok(WebList {
                    id: r.get::<_, i64>(0)? as u64,
                    name: r.get(1)?,
                    category: r.get(2)?,
                    sha256: r.get(3)?,
                    bytes: r.get::<_, i64>(4)? as u64,
                    rules: r.get::<_, i64>(5)? as u64,
                    errors: r.get::<_, i64>(6)? as u64,
                    source_url: r.get(7)?,
                    refresh_hours: r.get(8)?,
                    fetched_ms: r.get(9)?,
                    fetch_error: r.get(10)?,
                    updated_by: r.get(11)?,
                    updated_ms: r.get(12)?,
                })
            })?;
            Ok(rows.collect::<rusqlite::Result<_>>()?)
        })
    }

    fn put_web_list(&self, l: &WebList) -> Result<u64> {
        self.write(|c| {
            Ok(c.query_row(
                "INSERT INTO web_lists (name, category, sha256, bytes, rules, errors, source_url, refresh_hours,
                                        fetched_ms, fetch_error, updated_by, updated_ms)
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, NULL, ?10, ?11)
                 ON CONFLICT (name) DO UPDATE SET category = excluded.category, sha256 = excluded.sha256,
                   bytes = excluded.bytes, rules = excluded.rules, errors = excluded.errors,
                   source_url = excluded.source_url, refresh_hours = excluded.refresh_hours,
                   fetched_ms = excluded.fetched_ms, fetch_error = NULL,
                   updated_by = excluded.updated_by, updated_ms = excluded.updated_ms
                 RETURNING id",
                params![
                    l.name,
                    l.category,
                    l.sha256,
                    l.bytes as i64,
                    l.rules as i64,
                    l.errors as i64,
                    l.source_url,
                    l.refresh_hours,
                    l.fetched_ms,
                    l.updated_by,
                    l.updated_ms
                ],
                |r| r.get::<_, i64>(0),
            )? as u64)
        })
    }

    fn delete_web_list(&self, id: u64) -> Result<bool> {
        self.write(|c| Ok(c.execute("DELETE FROM web_lists WHERE id = ?1", [id as i64])? > 0))
    }

    fn set_web_list_fetch_error(&self, id: u64, error: &str, now_ms: i64) -> Result<()> {
        self.write(|c| {
            c.execute(
                "UPDATE web_lists SET fetch_error = ?2, fetched_ms = ?3 WHERE id = ?1",
                params![id as i64, error, now_ms],
            )?;
            Ok(())
        })
    }
}
