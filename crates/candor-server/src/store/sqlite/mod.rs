//! The embedded SQLite store: connection handling and migrations here, the
//! [`Store`](super::Store) methods in [`records`], the ingest transaction in
//! [`ingest`].
//!
//! One writer connection (behind a mutex, so SQLite never returns BUSY to
//! ourselves) and a small pool of readers; WAL lets readers run beside the
//! writer. `synchronous=FULL` makes a commit durable before an ack is sent.

mod activity;
mod admins;
mod alerts;
mod chat;
mod ingest;
mod records;
mod retention;
mod screen;
mod web;

use super::{Result, StoreError};
use rusqlite::Connection;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

/// Migrations in order; `PRAGMA user_version` counts how many were applied.
pub const MIGRATIONS: &[&str] = &[
    include_str!("schema_v1.sql"),
    include_str!("schema_v2.sql"),
    include_str!("schema_v3.sql"),
    include_str!("schema_v4.sql"),
    include_str!("schema_v5.sql"),
    include_str!("schema_v6.sql"),
    include_str!("schema_v7.sql"),
    include_str!("schema_v8.sql"),
    include_str!("schema_v9.sql"),
    include_str!("schema_v10.sql"),
    include_str!("schema_v11.sql"),
    include_str!("schema_v12.sql"),
];

pub struct SqliteStore {
    path: PathBuf,
    writer: Mutex<Connection>,
    readers: Mutex<Vec<Connection>>,
    stop_checkpointer: Arc<AtomicBool>,
}

impl Drop for SqliteStore {
    fn drop(&mut self) {
        self.stop_checkpointer.store(true, Ordering::Relaxed);
    }
}

/// Checkpoint the WAL from a thread of its own, so the writer never stalls
/// copying pages into the database file (measured: the writer thread is the
/// ingest bottleneck; see docs/decisions/0002-storage-layout.md).
fn spawn_checkpointer(path: &Path, stop: Arc<AtomicBool>) -> Result<()> {
    let conn = open_conn(path)?;
    std::thread::Builder::new()
        .name("sqlite-checkpoint".into())
        .spawn(move || {
            while !stop.load(Ordering::Relaxed) {
                std::thread::sleep(Duration::from_millis(250));
                if let Err(e) = conn.query_row("PRAGMA wal_checkpoint(PASSIVE)", [], |_| Ok(())) {
                    tracing::warn!(error = %e, "WAL checkpoint failed");
                }
            }
        })
        .map_err(|e| StoreError::Backend(format!("starting checkpointer: {e}")))?;
    Ok(())
}

impl From<rusqlite::Error> for StoreError {
    fn from(e: rusqlite::Error) -> Self {
        match e {
            rusqlite::Error::SqliteFailure(ref f, _) if f.code == rusqlite::ErrorCode::ConstraintViolation => {
                StoreError::Conflict(e.to_string())
            }
            rusqlite::Error::QueryReturnedNoRows => StoreError::NotFound("no such record".into()),
            _ => StoreError::Backend(e.to_string()),
        }
    }
}

fn open_conn(path: &Path) -> Result<Connection> {
    let conn = Connection::open(path).map_err(|e| StoreError::Backend(format!("open {}: {e}", path.display())))?;
    conn.execute_batch(
        "PRAGMA journal_mode=WAL; PRAGMA synchronous=FULL; PRAGMA foreign_keys=ON;
         PRAGMA busy_timeout=10000; PRAGMA cache_size=-32768; PRAGMA temp_store=MEMORY;",
    )?;
    Ok(conn)
}

impl SqliteStore {
    /// Open (creating if needed) and migrate the database at `path`.
    pub fn open(path: &Path) -> Result<Self> {
        let mut conn = open_conn(path)?;
        migrate(&mut conn)?;
        conn.pragma_update(None, "wal_autocheckpoint", 0)?;
        let stop_checkpointer = Arc::new(AtomicBool::new(false));
        spawn_checkpointer(path, stop_checkpointer.clone())?;
        Ok(SqliteStore {
            path: path.to_owned(),
            writer: Mutex::new(conn),
            readers: Mutex::new(Vec::new()),
            stop_checkpointer,
        })
    }

    fn write<T>(&self, f: impl FnOnce(&mut Connection) -> Result<T>) -> Result<T> {
        let mut conn = self.writer.lock().map_err(|_| StoreError::Backend("writer lock poisoned".into()))?;
        f(&mut conn)
    }

    fn read<T>(&self, f: impl FnOnce(&Connection) -> Result<T>) -> Result<T> {
        let pooled = self.readers.lock().ok().and_then(|mut p| p.pop());
        let conn = match pooled {
            Some(c) => c,
            None => open_conn(&self.path)?,
        };
        let out = f(&conn);
        if let Ok(mut p) = self.readers.lock() {
            if p.len() < 8 {
                p.push(conn);
            }
        }
        out
    }
}

fn migrate(conn: &mut Connection) -> Result<()> {
    let applied: usize = conn.query_row("PRAGMA user_version", [], |r| r.get::<_, i64>(0))? as usize;
    if applied > MIGRATIONS.len() {
        return Err(StoreError::Backend(format!(
            "database schema version {applied} is newer than this build understands ({}); upgrade candor",
            MIGRATIONS.len()
        )));
    }
    for (i, sql) in MIGRATIONS.iter().enumerate().skip(applied) {
        let tx = conn.transaction()?;
        tx.execute_batch(sql).map_err(|e| StoreError::Backend(format!("migration {}: {e}", i + 1)))?;
        tx.pragma_update(None, "user_version", (i + 1) as i64)?;
        tx.commit()?;
    }
    Ok(())
}
