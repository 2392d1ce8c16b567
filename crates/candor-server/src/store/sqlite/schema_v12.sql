-- Version 12: archiving consent per conversation, as WeCom keeps it
-- (decision 0013). A scope is the employee of a one-to-one chat
-- (`user:<userid>`) or a group chat (`room:<roomid>`); the empty scope
-- applies to every conversation of the contact (the records kept before).
CREATE TABLE chat_contact_consent_v12 (
    id INTEGER PRIMARY KEY,
    contact TEXT NOT NULL,
    scope TEXT NOT NULL,
    agree INTEGER NOT NULL,
    ts_ms INTEGER NOT NULL,
    source TEXT NOT NULL,
    UNIQUE (contact, scope, ts_ms, agree)
);
INSERT INTO chat_contact_consent_v12 (id, contact, scope, agree, ts_ms, source)
    SELECT id, contact, '', agree, ts_ms, source FROM chat_contact_consent;
DROP TABLE chat_contact_consent;
ALTER TABLE chat_contact_consent_v12 RENAME TO chat_contact_consent;

-- Every (external contact, scope) that stored messages depend on, kept as
-- messages arrive (`candor_chat::consent::pairs`); filled here for the
-- messages already stored, by the same rule.
CREATE TABLE chat_scopes (
    contact TEXT NOT NULL,
    scope TEXT NOT NULL,
    PRIMARY KEY (contact, scope)
) WITHOUT ROWID;
CREATE TEMP VIEW chat_parts AS
    SELECT m.id, m.roomid, p.id AS person, p.external FROM chat_messages AS m
    JOIN chat_people AS p ON p.id = m.sender OR p.id IN (SELECT value FROM json_each(m.receivers));
INSERT OR IGNORE INTO chat_scopes (contact, scope)
    SELECT c.person, CASE WHEN c.roomid != '' THEN 'room:' || c.roomid ELSE coalesce('user:' || e.person, '') END
    FROM chat_parts AS c
    LEFT JOIN chat_parts AS e ON c.roomid = '' AND e.id = c.id AND e.external = 0 AND e.person != ''
    WHERE c.external = 1;
DROP VIEW chat_parts;
