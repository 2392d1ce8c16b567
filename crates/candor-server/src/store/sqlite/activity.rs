//! [`ActivityStore`] for SQLite: reads of the rollups written at ingest, and
//! the application catalogue with its classification.

use super::SqliteStore;
use crate::store::{ActivityRow, ActivityStore, AppClass, Application, Result};
use rusqlite::{params, OptionalExtension};

impl ActivityStore for SqliteStore {
    fn activity_rows(&self, from: &str, to: &str, agents: Option<&[u64]>) -> Result<Vec<ActivityRow>> {
        let scope = agents.map(|a| serde_json::to_string(a).unwrap_or_default());
        self.read(|c| {
            let mut st = c.prepare_cached(
                "SELECT day, agent_id, user, app, state, duration_ms, spans, first_ms, last_ms FROM activity_daily
                 WHERE day >= ?1 AND day <= ?2 AND (?3 IS NULL OR agent_id IN (SELECT value FROM json_each(?3)))",
            )?;
            let rows = st.query_map(params![from, to, scope], |r| {
                Ok(ActivityRow {
                    day: r.get(0)?,
                    agent_id: r.get::<_, i64>(1)? as u64,
                    user: r.get(2)?,
                    app: r.get(3)?,
                    state: r.get(4)?,
                    duration_ms: r.get(5)?,
                    spans: r.get(6)?,
                    first_ms: r.get(7)?,
                    last_ms: r.get(8)?,
                })
            })?;
            Ok(rows.collect::<rusqlite::Result<_>>()?)
        })
    }

    fn applications(&self) -> Result<Vec<Application>> {
        self.read(|c| {
            let mut st = c.prepare_cached(
                "SELECT app, desktop_id, name, name_zh, categories, icon IS NOT NULL, first_seen_ms
                 FROM applications ORDER BY app",
            )?;
            let rows = st.query_map([], |r| {
                Ok(Application {
                    app: r.get(0)?,
                    desktop_id: r.get(1)?,
                    name: r.get(2)?,
                    name_zh: r.get(3)?,
                    categories: serde_json::from_str(&r.get::<_, String>(4)?).unwrap_or_default(),
                    has_icon: r.get(5)?,
                    first_seen_ms: r.get(6)?,
                })
            })?;
            Ok(rows.collect::<rusqlite::Result<_>>()?)
        })
    }

    fn app_icon(&self, app: &str) -> Result<Option<Vec<u8>>> {
        self.read(|c| {
            Ok(c.query_row("SELECT icon FROM applications WHERE app = ?1", [app], |r| r.get(0)).optional()?.flatten())
        })
    }

    fn app_classes(&self) -> Result<Vec<AppClass>> {
        self.read(|c| {
            let mut st = c.prepare_cached(
                "SELECT app, department_id, class, updated_by, updated_ms FROM app_classes ORDER BY app, department_id",
            )?;
            let rows = st.query_map([], |r| {
                Ok(AppClass {
                    app: r.get(0)?,
                    department_id: r.get::<_, i64>(1)? as u64,
                    class: r.get(2)?,
                    updated_by: r.get(3)?,
                    updated_ms: r.get(4)?,
                })
            })?;
            Ok(rows.collect::<rusqlite::Result<_>>()?)
        })
    }

    fn set_app_class(&self, app: &str, department_id: u64, class: Option<&str>, by: &str, now_ms: i64) -> Result<()> {
        self.write(|c| {
            match class {
                Some(class) => c.execute(
                    "INSERT INTO app_classes (app, department_id, class, updated_by, updated_ms) VALUES (?1, ?2, ?3, ?4, ?5)
                     ON CONFLICT (app, department_id) DO UPDATE SET class = excluded.class,
                       updated_by = excluded.updated_by, updated_ms = excluded.updated_ms",
                    params![app, department_id as i64, class, by, now_ms],
                )?,
                None => c.execute(
                    "DELETE FROM app_classes WHERE app = ?1 AND department_id = ?2",
                    params![app, department_id as i64],
                )?,
            };
            Ok(())
        })
    }
}
