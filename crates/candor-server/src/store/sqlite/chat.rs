//! Chat messages, participants, contact consent, chat errors and DLP rules.

use super::SqliteStore;
use crate::store::*;
use candor_chat::message::{is_external, ChatMessage};
use rusqlite::{params, OptionalExtension, Row};

const COLS: &str = "id, msgid, ts_ms, action, sender, receivers, roomid, msgtype, content, media, revoked_by";

fn chat_row(r: &Row) -> rusqlite::Result<ChatRow> {
    let json = |i: usize| -> rusqlite::Result<serde_json::Value> {
        Ok(serde_json::from_str(&r.get::<_, String>(i)?).unwrap_or(serde_json::Value::Null))
    };
    Ok(ChatRow {
        id: r.get::<_, i64>(0)? as u64,
        msgid: r.get(1)?,
        ts_ms: r.get(2)?,
        action: r.get(3)?,
        from: r.get(4)?,
        tolist: serde_json::from_value(json(5)?).unwrap_or_default(),
        roomid: r.get(6)?,
        msgtype: r.get(7)?,
        text: r.get(8)?,
        media: json(9)?,
        revoked_by: r.get(10)?,
    })
}

/// The conversation a message belongs to: its room, or its two people.
fn conversation(m: &ChatMessage) -> String {
    if !m.roomid.is_empty() {
        return format!("room:{}", m.roomid);
    }
    let other = m.tolist.first().map(String::as_str).unwrap_or("");
    let (a, b) = if m.from.as_str() <= other { (m.from.as_str(), other) } else { (other, m.from.as_str()) };
    format!("pair:{a}\u{1f}{b}")
}

fn json_text<T: serde::Serialize>(v: &T) -> Result<String> {
    serde_json::to_string(v).map_err(|e| StoreError::Backend(format!("encoding: {e}")))
}

impl ChatStore for SqliteStore {
    fn chat_insert(&self, msgs: &[ChatMessage], source: &str, now: i64) -> Result<ChatInsert> {
        self.write(|c| {
            let tx = c.transaction()?;
            let mut out = ChatInsert::default();
            {
                let mut insert = tx.prepare_cached(
                    "INSERT OR IGNORE INTO chat_messages
                       (msgid, ts_ms, action, sender, receivers, roomid, conv, msgtype, content, media, revokes, raw, source, stored_ms,
                        revoked_by)
                     VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13, ?14,
                        (SELECT msgid FROM chat_messages WHERE revokes = ?1 LIMIT 1))",
                )?;
                let mut person = tx.prepare_cached("INSERT OR IGNORE INTO chat_people (id, external) VALUES (?1, ?2)")?;
                let mut recall = tx.prepare_cached("UPDATE chat_messages SET revoked_by = ?1 WHERE msgid = ?2")?;
                let mut consent = tx.prepare_cached(
                    "INSERT OR IGNORE INTO chat_contact_consent (contact, scope, agree, ts_ms, source)
                     VALUES (?1, ?2, ?3, ?4, ?5)",
                )?;
                let mut scope = tx.prepare_cached("INSERT OR IGNORE INTO chat_scopes (contact, scope) VALUES (?1, ?2)")?;
                for (k, m) in msgs.iter().enumerate() {
                    let n = insert.execute(params![
                        m.msgid,
                        m.ts_ms,
                        m.action,
                        m.from,
                        json_text(&m.tolist)?,
                        m.roomid,
                        conversation(m),
                        m.msgtype,
                        m.text,
                        json_text(&m.media)?,
                        m.revokes,
                        m.raw,
                        source,
                        now
                    ])?;
                    if n == 0 {
                        out.duplicates += 1;
                        continue;
                    }
                    out.stored += 1;
                    out.new_ids.push((k, tx.last_insert_rowid() as u64));
                    let people: Vec<&str> =
                        std::iter::once(&m.from).chain(&m.tolist).map(String::as_str).filter(|p| !p.is_empty()).collect();
                    for p in &people {
                        person.execute(params![p, is_external(p)])?;
                    }
                    for (contact, s) in candor_chat::consent::pairs(&people, &m.roomid) {
                        scope.execute(params![contact, s])?;
                    }
                    if let Some(pre) = &m.revokes {
                        out.recalls += recall.execute(params![m.msgid, pre])?;
                    }
                    if let Some(cc) = &m.consent {
                        // In force in this conversation: with its employee, or in its room.
                        for s in candor_chat::consent::scopes(&cc.contact, people.iter().copied(), &m.roomid) {
                            out.consent_changes += consent.execute(params![cc.contact, s, cc.agree, cc.ts_ms, source])?;
                        }
                    }
                }
            }
            tx.commit()?;
            Ok(out)
        })
    }

    fn chat_rows(&self, ids: &[u64]) -> Result<Vec<ChatRow>> {
        let ids = json_text(&ids)?;
        self.read(|c| {
            let mut st = c.prepare_cached(&format!(
                "SELECT {COLS} FROM chat_messages WHERE id IN (SELECT value FROM json_each(?1))"
            ))?;
            let rows = st.query_map([ids], chat_row)?;
            Ok(rows.collect::<rusqlite::Result<_>>()?)
        })
    }

    fn chat_after(&self, after: u64, limit: u32) -> Result<Vec<ChatRow>> {
        self.read(|c| {
            let mut st =
                c.prepare_cached(&format!("SELECT {COLS} FROM chat_messages WHERE id > ?1 ORDER BY id LIMIT ?2"))?;
            let rows = st.query_map(params![after as i64, limit], chat_row)?;
            Ok(rows.collect::<rusqlite::Result<_>>()?)
        })
    }

    fn chat_of_person(&self, person: &str, limit: u32) -> Result<Vec<ChatRow>> {
        self.read(|c| {
            let mut st = c.prepare_cached(&format!(
                "SELECT {COLS} FROM chat_messages WHERE sender = ?1
                   OR EXISTS (SELECT 1 FROM json_each(receivers) WHERE value = ?1) ORDER BY ts_ms, id LIMIT ?2"
            ))?;
            let rows = st.query_map(params![person, limit], chat_row)?;
            Ok(rows.collect::<rusqlite::Result<_>>()?)
        })
    }

    fn chat_max_id(&self) -> Result<u64> {
        self.read(|c| {
            Ok(c.query_row("SELECT coalesce(max(id), 0) FROM chat_messages", [], |r| r.get::<_, i64>(0))? as u64)
        })
    }

    fn chat_conversation(&self, id: u64, before: u32, after: u32) -> Result<Vec<ChatRow>> {
        self.read(|c| {
            let anchor: Option<(String, i64)> = c
                .query_row("SELECT conv, ts_ms FROM chat_messages WHERE id = ?1", [id as i64], |r| Ok((r.get(0)?, r.get(1)?)))
                .optional()?;
            let Some((conv, ts)) = anchor else { return Err(StoreError::NotFound(format!("chat message {id}"))) };
            let mut earlier = c.prepare_cached(&format!(
                "SELECT {COLS} FROM chat_messages WHERE conv = ?1 AND (ts_ms, id) < (?2, ?3) ORDER BY ts_ms DESC, id DESC LIMIT ?4"
            ))?;
            let mut rows: Vec<ChatRow> =
                earlier.query_map(params![conv, ts, id as i64, before], chat_row)?.collect::<rusqlite::Result<_>>()?;
            rows.reverse();
            let mut later = c.prepare_cached(&format!(
                "SELECT {COLS} FROM chat_messages WHERE conv = ?1 AND (ts_ms, id) >= (?2, ?3) ORDER BY ts_ms, id LIMIT ?4"
            ))?;
            rows.extend(later.query_map(params![conv, ts, id as i64, after + 1], chat_row)?.collect::<rusqlite::Result<Vec<_>>>()?);
            Ok(rows)
        })
    }

    fn chat_people(&self) -> Result<Vec<ChatPerson>> {
        self.read(|c| {
            let mut st = c.prepare_cached("SELECT id, external FROM chat_people ORDER BY id")?;
            let rows = st.query_map([], |r| Ok(ChatPerson { id: r.get(0)?, external: r.get(1)? }))?;
            Ok(rows.collect::<rusqlite::Result<_>>()?)
        })
    }

    fn chat_pairs(&self) -> Result<Vec<(String, String)>> {
        self.read(|c| {
            let mut st = c.prepare_cached(
                "SELECT substr(scope, 6), contact FROM chat_scopes WHERE scope LIKE 'user:%' ORDER BY scope, contact",
            )?;
            let rows = st.query_map([], |r| Ok((r.get(0)?, r.get(1)?)))?;
            Ok(rows.collect::<rusqlite::Result<_>>()?)
        })
    }

    fn chat_rooms(&self) -> Result<Vec<String>> {
        self.read(|c| {
            let mut st = c.prepare_cached(
                "SELECT DISTINCT substr(scope, 6) FROM chat_scopes WHERE scope LIKE 'room:%' ORDER BY 1",
            )?;
            let rows = st.query_map([], |r| r.get(0))?;
            Ok(rows.collect::<rusqlite::Result<_>>()?)
        })
    }

    fn chat_scopes(&self) -> Result<Vec<(String, String)>> {
        self.read(|c| {
            let mut st = c.prepare_cached("SELECT contact, scope FROM chat_scopes")?;
            let rows = st.query_map([], |r| Ok((r.get(0)?, r.get(1)?)))?;
            Ok(rows.collect::<rusqlite::Result<_>>()?)
        })
    }

    fn chat_internal_rooms(&self) -> Result<Vec<String>> {
        let external: std::collections::HashSet<String> = self.chat_rooms()?.into_iter().collect();
        let all: Vec<String> = self.read(|c| {
            let mut st = c.prepare_cached("SELECT DISTINCT roomid FROM chat_messages WHERE roomid != ''")?;
            let rows = st.query_map([], |r| r.get(0))?;
            Ok(rows.collect::<rusqlite::Result<_>>()?)
        })?;
        Ok(all.into_iter().filter(|r| !external.contains(r)).collect())
    }

    fn set_chat_permit_users(&self, users: &[String], now: i64) -> Result<()> {
        self.write(|c| {
            let tx = c.transaction()?;
            tx.execute("DELETE FROM chat_permit_users", [])?;
            {
                let mut st =
                    tx.prepare_cached("INSERT OR IGNORE INTO chat_permit_users (userid, updated_ms) VALUES (?1, ?2)")?;
                for u in users {
                    st.execute(params![u, now])?;
                }
            }
            tx.commit()?;
            Ok(())
        })
    }

    fn chat_permit_users(&self) -> Result<Vec<String>> {
        self.read(|c| {
            let mut st = c.prepare_cached("SELECT userid FROM chat_permit_users ORDER BY userid")?;
            let rows = st.query_map([], |r| r.get(0))?;
            Ok(rows.collect::<rusqlite::Result<_>>()?)
        })
    }

    fn set_chat_room_name(&self, room: &ChatRoomName, now: i64) -> Result<()> {
        self.write(|c| {
            c.execute(
                "INSERT INTO chat_room_names (roomid, name, creator, members, updated_ms) VALUES (?1, ?2, ?3, ?4, ?5)
                 ON CONFLICT (roomid) DO UPDATE SET name = excluded.name, creator = excluded.creator,
                   members = excluded.members, updated_ms = excluded.updated_ms",
                params![room.roomid, room.name, room.creator, room.members, now],
            )?;
            Ok(())
        })
    }

    fn chat_room_names(&self) -> Result<Vec<ChatRoomName>> {
        self.read(|c| {
            let mut st =
                c.prepare_cached("SELECT roomid, name, creator, members FROM chat_room_names ORDER BY roomid")?;
            let rows = st.query_map([], |r| {
                Ok(ChatRoomName { roomid: r.get(0)?, name: r.get(1)?, creator: r.get(2)?, members: r.get(3)? })
            })?;
            Ok(rows.collect::<rusqlite::Result<_>>()?)
        })
    }

    fn contact_consents(&self) -> Result<Vec<ContactConsent>> {
        self.read(|c| {
            // The latest record per (contact, scope): by time, then by arrival.
            let mut st = c.prepare_cached(
                "SELECT contact, scope, agree, ts_ms, source FROM chat_contact_consent AS a
                 WHERE id = (SELECT id FROM chat_contact_consent AS b WHERE b.contact = a.contact AND b.scope = a.scope
                             ORDER BY ts_ms DESC, id DESC LIMIT 1)
                 ORDER BY contact, scope",
            )?;
            let rows = st.query_map([], |r| {
                Ok(ContactConsent {
                    contact: r.get(0)?,
                    scope: r.get(1)?,
                    agree: r.get(2)?,
                    ts_ms: r.get(3)?,
                    source: r.get(4)?,
                })
            })?;
            Ok(rows.collect::<rusqlite::Result<_>>()?)
        })
    }

    fn record_contact_consent(&self, cc: &ContactConsent) -> Result<()> {
        self.write(|c| {
            c.execute(
                "INSERT OR IGNORE INTO chat_contact_consent (contact, scope, agree, ts_ms, source)
                 VALUES (?1, ?2, ?3, ?4, ?5)",
                params![cc.contact, cc.scope, cc.agree, cc.ts_ms, cc.source],
            )?;
            Ok(())
        })
    }

    fn add_chat_errors(&self, source: &str, errors: &[(String, String, Option<String>)], now: i64) -> Result<()> {
        self.write(|c| {
            let tx = c.transaction()?;
            {
                let mut st = tx.prepare_cached(
                    "INSERT INTO chat_errors (ts_ms, source, position, error, raw) VALUES (?1, ?2, ?3, ?4, ?5)",
                )?;
                for (position, error, raw) in errors {
                    st.execute(params![now, source, position, error, raw])?;
                }
            }
            tx.commit()?;
            Ok(())
        })
    }

    fn chat_errors(&self, limit: u32) -> Result<Vec<ChatError>> {
        self.read(|c| {
            let mut st = c.prepare_cached(
                "SELECT id, ts_ms, source, position, error FROM chat_errors ORDER BY id DESC LIMIT ?1",
            )?;
            let rows = st.query_map([limit], |r| {
                Ok(ChatError {
                    id: r.get::<_, i64>(0)? as u64,
                    ts_ms: r.get(1)?,
                    source: r.get(2)?,
                    position: r.get(3)?,
                    error: r.get(4)?,
                })
            })?;
            Ok(rows.collect::<rusqlite::Result<_>>()?)
        })
    }

    fn chat_unindex_pending(&self, limit: u32) -> Result<Vec<u64>> {
        self.read(|c| {
            let mut st = c.prepare_cached("SELECT id FROM chat_unindex ORDER BY id LIMIT ?1")?;
            let rows = st.query_map([limit], |r| r.get::<_, i64>(0))?;
            Ok(rows.map(|r| r.map(|v| v as u64)).collect::<rusqlite::Result<_>>()?)
        })
    }

    fn chat_unindexed(&self, ids: &[u64]) -> Result<()> {
        let ids = json_text(&ids)?;
        self.write(|c| {
            c.execute("DELETE FROM chat_unindex WHERE id IN (SELECT value FROM json_each(?1))", [ids])?;
            Ok(())
        })
    }

    fn chat_cursor(&self, source: &str) -> Result<u64> {
        self.read(|c| {
            let seq: Option<i64> =
                c.query_row("SELECT seq FROM chat_cursors WHERE source = ?1", [source], |r| r.get(0)).optional()?;
            Ok(seq.unwrap_or(0) as u64)
        })
    }

    fn set_chat_cursor(&self, source: &str, seq: u64, now: i64) -> Result<()> {
        self.write(|c| {
            c.execute(
                "INSERT INTO chat_cursors (source, seq, updated_ms) VALUES (?1, ?2, ?3)
                 ON CONFLICT (source) DO UPDATE SET seq = max(seq, excluded.seq), updated_ms = excluded.updated_ms",
                params![source, seq as i64, now],
            )?;
            Ok(())
        })
    }

    fn set_chat_media(&self, id: u64, media: &serde_json::Value) -> Result<()> {
        self.write(|c| {
            c.execute("UPDATE chat_messages SET media = ?1 WHERE id = ?2", params![media.to_string(), id as i64])?;
            Ok(())
        })
    }

    fn dlp_rules(&self) -> Result<Option<String>> {
        self.read(|c| Ok(c.query_row("SELECT spec FROM dlp_rules WHERE id = 1", [], |r| r.get(0)).optional()?))
    }

    fn set_dlp_rules(&self, spec: &str, by: &str, now: i64) -> Result<()> {
        self.write(|c| {
            c.execute(
                "INSERT INTO dlp_rules (id, spec, updated_by, updated_ms) VALUES (1, ?1, ?2, ?3)
                 ON CONFLICT (id) DO UPDATE SET spec = excluded.spec, updated_by = excluded.updated_by,
                   updated_ms = excluded.updated_ms",
                params![spec, by, now],
            )?;
            Ok(())
        })
    }

    fn raise_unbound_alert(&self, a: &NewAlert) -> Result<bool> {
        self.write(|c| {
            let n = c.execute(
                "INSERT INTO alerts (ts_ms, agent_id, kind, severity, detail, updated_ms, source_seq, data)
                 SELECT ?1, NULL, ?2, ?3, ?4, ?1, ?5, ?6
                 WHERE NOT EXISTS (SELECT 1 FROM alerts WHERE agent_id IS NULL AND kind = ?2 AND source_seq = ?5)",
                params![a.ts_ms, a.kind, a.severity.as_str(), a.detail, a.source_seq as i64, a.data.to_string()],
            )?;
            Ok(n == 1)
        })
    }
}

/// Login names of employees under legal hold: their chats are kept.
const HELD_USERS: &str =
    "SELECT username FROM employees WHERE username IS NOT NULL AND id IN (SELECT employee_id FROM legal_holds)";

impl SqliteStore {
    /// One chunk of the chat purge: deletes up to `chunk` messages older than
    /// `cutoff_ms` that involve nobody under hold, and queues their index entries.
    pub(super) fn purge_chat_chunk(&self, cutoff_ms: i64, chunk: i64) -> Result<u64> {
        self.write(|c| {
            let tx = c.transaction()?;
            let n = tx.execute(
                &format!(
                    "INSERT INTO chat_unindex (id)
                     SELECT id FROM chat_messages AS m WHERE ts_ms < ?1 AND sender NOT IN ({HELD_USERS})
                       AND NOT EXISTS (SELECT 1 FROM json_each(m.receivers) WHERE value IN ({HELD_USERS}))
                     LIMIT ?2"
                ),
                params![cutoff_ms, chunk],
            )?;
            tx.execute("DELETE FROM chat_messages WHERE id IN (SELECT id FROM chat_unindex)", [])?;
            tx.commit()?;
            Ok(n as u64)
        })
    }
}
