//! [`AlertStore`] for SQLite.

use super::SqliteStore;
use crate::store::{Alert, AlertComment, AlertQuery, AlertStore, Result, StoreError};
use candor_proto::now_ms;
use rusqlite::{params, OptionalExtension, Row};

const COLS: &str = "id, ts_ms, agent_id, kind, severity, detail, status, assignee, updated_ms, data";

fn alert_row(r: &Row) -> rusqlite::Result<Alert> {
    Ok(Alert {
        id: r.get::<_, i64>(0)? as u64,
        ts_ms: r.get(1)?,
        agent_id: r.get::<_, Option<i64>>(2)?.map(|v| v as u64),
        kind: r.get(3)?,
        severity: r.get(4)?,
        detail: r.get(5)?,
        status: r.get(6)?,
        assignee: r.get(7)?,
        updated_ms: r.get(8)?,
        data: serde_json::from_str(&r.get::<_, String>(9)?).unwrap_or_default(),
    })
}

impl AlertStore for SqliteStore {
    fn alerts(&self, q: &AlertQuery) -> Result<Vec<Alert>> {
        let scope = q.scope.as_ref().map(|s| serde_json::to_string(s).unwrap_or_default());
        self.read(|c| {
            let mut st = c.prepare_cached(&format!(
                "SELECT {COLS} FROM alerts
                 WHERE (?1 IS NULL OR status = ?1) AND (?2 IS NULL OR kind = ?2) AND (?3 IS NULL OR agent_id = ?3)
                   AND (?4 IS NULL OR agent_id IN (SELECT value FROM json_each(?4)))
                   AND ts_ms >= coalesce(?5, -9223372036854775808) AND ts_ms < coalesce(?6, 9223372036854775807)
                 ORDER BY ts_ms DESC, id DESC LIMIT ?7"
            ))?;
            let rows = st.query_map(
                params![q.status, q.kind, q.agent_id.map(|a| a as i64), scope, q.from_ms, q.to_ms, q.limit],
                alert_row,
            )?;
            Ok(rows.collect::<rusqlite::Result<_>>()?)
        })
    }

    fn alert(&self, id: u64) -> Result<Option<(Alert, Vec<AlertComment>)>> {
        self.read(|c| {
            let Some(a) =
                c.query_row(&format!("SELECT {COLS} FROM alerts WHERE id = ?1"), [id as i64], alert_row).optional()?
            else {
                return Ok(None);
            };
            let mut st =
                c.prepare("SELECT id, author, text, ts_ms FROM alert_comments WHERE alert_id = ?1 ORDER BY id")?;
            let comments = st
                .query_map([id as i64], |r| {
                    Ok(AlertComment {
                        id: r.get::<_, i64>(0)? as u64,
                        author: r.get(1)?,
                        text: r.get(2)?,
                        ts_ms: r.get(3)?,
                    })
                })?
                .collect::<rusqlite::Result<_>>()?;
            Ok(Some((a, comments)))
        })
    }

    fn update_alert(&self, id: u64, status: Option<&str>, assignee: Option<Option<&str>>) -> Result<()> {
        if let Some(s) = status {
            if !["open", "acknowledged", "closed"].contains(&s) {
                return Err(StoreError::Invalid("status must be open, acknowledged or closed".into()));
            }
        }
        self.write(|c| {
            let n = c.execute(
                "UPDATE alerts SET status = coalesce(?2, status),
                    assignee = CASE WHEN ?3 THEN ?4 ELSE assignee END, updated_ms = ?5 WHERE id = ?1",
                params![id as i64, status, assignee.is_some(), assignee.flatten(), now_ms()],
            )?;
            if n == 0 {
                return Err(StoreError::NotFound(format!("alert {id}")));
            }
            Ok(())
        })
    }

    fn comment_alert(&self, id: u64, author: &str, text: &str) -> Result<u64> {
        if text.trim().is_empty() {
            return Err(StoreError::Invalid("comment is empty".into()));
        }
        self.write(|c| {
            c.execute(
                "INSERT INTO alert_comments (alert_id, author, text, ts_ms) VALUES (?1, ?2, ?3, ?4)",
                params![id as i64, author, text, now_ms()],
            )
            .map_err(|e| match StoreError::from(e) {
                StoreError::Conflict(_) => StoreError::NotFound(format!("alert {id}")),
                other => other,
            })?;
            Ok(c.last_insert_rowid() as u64)
        })
    }
}
