//! [`ScreenStore`] for SQLite: the frame time index written at ingest, the
//! chain of frames one instant needs, purging that never breaks a chain a
//! kept frame depends on, and the queue of blob files to delete.

use super::SqliteStore;
use crate::store::{Result, ScreenFrame, ScreenStore};
use rusqlite::{params, Connection};

/// Frames one instant may need at most (a key frame every 360 captures,
/// split into parts): beyond it the chain is refused as damaged.
const MAX_CHAIN: i64 = 4096;

const COLUMNS: &str = "agent_id, seq, ts_ms, display, width, height, key, tiles, bytes, reason, blob";

fn row(r: &rusqlite::Row) -> rusqlite::Result<ScreenFrame> {
    Ok(ScreenFrame {
        agent_id: r.get::<_, i64>(0)? as u64,
        seq: r.get::<_, i64>(1)? as u64,
        ts_ms: r.get(2)?,
        display: r.get(3)?,
        width: r.get(4)?,
        height: r.get(5)?,
        key: r.get(6)?,
        tiles: r.get(7)?,
        bytes: r.get::<_, i64>(8)? as u64,
        reason: r.get(9)?,
        blob: r.get(10)?,
    })
}

/// Delete up to `limit` index rows older than `cutoff_ms` that no later frame
/// needs (frames before the key frame that the first kept frame builds on),
/// outside legal holds; queue blobs nothing references any more. Returns
/// how many rows went.
pub(super) fn purge_chunk(c: &Connection, cutoff_ms: i64, held: &str, limit: i64) -> rusqlite::Result<u64> {
    let first_kept = "(SELECT min(a.seq) FROM screen_frames a
                       WHERE a.agent_id = f.agent_id AND a.display = f.display AND a.ts_ms >= ?1)";
    let sql = format!(
        "DELETE FROM screen_frames WHERE (agent_id, seq) IN (
           SELECT f.agent_id, f.seq FROM screen_frames f
           WHERE f.ts_ms < ?1 AND f.agent_id NOT IN ({held})
             AND f.seq < coalesce(
               (SELECT max(k.seq) FROM screen_frames k
                WHERE k.agent_id = f.agent_id AND k.display = f.display AND k.key = 1 AND k.seq <= {first_kept}),
               {first_kept},
               9223372036854775807)
           LIMIT ?2)
         RETURNING blob"
    );
    let blobs: Vec<String> =
        c.prepare(&sql)?.query_map(params![cutoff_ms, limit], |r| r.get(0))?.collect::<rusqlite::Result<_>>()?;
    let mut queue = c.prepare_cached(
        "INSERT OR IGNORE INTO blob_purge_queue (key)
         SELECT ?1 WHERE NOT EXISTS (SELECT 1 FROM screen_frames WHERE blob = ?1)",
    )?;
    for b in &blobs {
        queue.execute([b])?;
    }
    Ok(blobs.len() as u64)
}

impl ScreenStore for SqliteStore {
    fn screen_frames(&self, agents: &[u64], from_ms: i64, to_ms: i64, limit: u32) -> Result<Vec<ScreenFrame>> {
        let scope = serde_json::to_string(agents).unwrap_or_default();
        self.read(|c| {
            let mut st = c.prepare_cached(&format!(
                "SELECT {COLUMNS} FROM screen_frames
                 WHERE agent_id IN (SELECT value FROM json_each(?1)) AND ts_ms >= ?2 AND ts_ms <= ?3
                 ORDER BY ts_ms, agent_id, seq LIMIT ?4"
            ))?;
            let rows = st.query_map(params![scope, from_ms, to_ms, limit], row)?;
            Ok(rows.collect::<rusqlite::Result<_>>()?)
        })
    }

    fn screen_chain(&self, agent: u64, display: &str, at_ms: i64) -> Result<Vec<ScreenFrame>> {
        self.read(|c| {
            let key: Option<i64> = c.query_row(
                "SELECT max(seq) FROM screen_frames WHERE agent_id = ?1 AND display = ?2 AND key = 1 AND ts_ms <= ?3",
                params![agent as i64, display, at_ms],
                |r| r.get(0),
            )?;
            let Some(key) = key else { return Ok(Vec::new()) };
            let mut st = c.prepare_cached(&format!(
                "SELECT {COLUMNS} FROM screen_frames
                 WHERE agent_id = ?1 AND display = ?2 AND seq >= ?3 AND ts_ms <= ?4 ORDER BY seq LIMIT ?5"
            ))?;
            let rows = st.query_map(params![agent as i64, display, key, at_ms, MAX_CHAIN], row)?;
            Ok(rows.collect::<rusqlite::Result<_>>()?)
        })
    }

    fn blob_purge_queue(&self, limit: u32) -> Result<Vec<String>> {
        self.read(|c| {
            let mut st = c.prepare_cached("SELECT key FROM blob_purge_queue LIMIT ?1")?;
            let rows = st.query_map([limit], |r| r.get(0))?;
            Ok(rows.collect::<rusqlite::Result<_>>()?)
        })
    }

    fn blobs_purged(&self, keys: &[String]) -> Result<()> {
        self.write(|c| {
            let tx = c.transaction()?;
            {
                let mut st = tx.prepare_cached("DELETE FROM blob_purge_queue WHERE key = ?1")?;
                for k in keys {
                    st.execute([k])?;
                }
            }
            tx.commit()?;
            Ok(())
        })
    }
}
