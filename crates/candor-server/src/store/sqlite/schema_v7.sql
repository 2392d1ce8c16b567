-- Version 7: chat audit (WeCom chat archive and imports), contact consent, DLP rules.
CREATE TABLE chat_messages (
    -- AUTOINCREMENT: ids are never reused, so the search index and the purge
    -- queue can name a message by id alone.
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    msgid TEXT NOT NULL UNIQUE,
    ts_ms INTEGER NOT NULL,
    action TEXT NOT NULL,
    sender TEXT NOT NULL,
    receivers TEXT NOT NULL,          -- JSON array
    roomid TEXT NOT NULL,
    -- The conversation: the room, or the two people of a one-to-one chat.
    conv TEXT NOT NULL,
    msgtype TEXT NOT NULL,
    content TEXT NOT NULL,            -- the searchable text
    media TEXT NOT NULL DEFAULT '[]', -- JSON: what the SDK can fetch
    revokes TEXT,                     -- for a recall: the msgid it withdraws
    revoked_by TEXT,                  -- set on a message that was recalled
    raw TEXT NOT NULL,
    source TEXT NOT NULL,
    stored_ms INTEGER NOT NULL
);
CREATE INDEX chat_messages_conv ON chat_messages (conv, ts_ms, id);
CREATE INDEX chat_messages_ts ON chat_messages (ts_ms);
CREATE INDEX chat_messages_revokes ON chat_messages (revokes) WHERE revokes IS NOT NULL;

-- Everyone who took part in an archived chat; external = WeCom external contact.
CREATE TABLE chat_people (
    id TEXT PRIMARY KEY,
    external INTEGER NOT NULL
) WITHOUT ROWID;

-- Immutable history of external contacts' archiving consent; the latest by
-- time is in force. From agree/disagree messages and the check_*_agree APIs.
CREATE TABLE chat_contact_consent (
    id INTEGER PRIMARY KEY,
    contact TEXT NOT NULL,
    agree INTEGER NOT NULL,
    ts_ms INTEGER NOT NULL,
    source TEXT NOT NULL,
    UNIQUE (contact, ts_ms, agree)
);

-- Lines or messages that could not be taken in, kept so nothing is lost silently.
CREATE TABLE chat_errors (
    id INTEGER PRIMARY KEY,
    ts_ms INTEGER NOT NULL,
    source TEXT NOT NULL,
    position TEXT NOT NULL,
    error TEXT NOT NULL,
    raw TEXT
);

-- The DLP rule list in force (JSON array of rule specs); one row.
CREATE TABLE dlp_rules (
    id INTEGER PRIMARY KEY CHECK (id = 1),
    spec TEXT NOT NULL,
    updated_by TEXT NOT NULL,
    updated_ms INTEGER NOT NULL
);

-- Ids of purged messages whose search-index entries are still to be deleted
-- (the index is not in this database; this makes the deletion crash-safe).
CREATE TABLE chat_unindex (id INTEGER PRIMARY KEY);

-- Where each archive source's pull continues (the SDK's seq).
CREATE TABLE chat_cursors (
    source TEXT PRIMARY KEY,
    seq INTEGER NOT NULL,
    updated_ms INTEGER NOT NULL
);
