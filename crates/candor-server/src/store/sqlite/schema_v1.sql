-- Candor embedded schema, version 1. Timestamps are UTC milliseconds.
CREATE TABLE admins (
    id INTEGER PRIMARY KEY,
    username TEXT NOT NULL UNIQUE,
    password_hash TEXT NOT NULL,
    role TEXT NOT NULL,
    created_ms INTEGER NOT NULL
);
CREATE TABLE sessions (
    token_hash TEXT PRIMARY KEY,
    admin_id INTEGER NOT NULL REFERENCES admins(id) ON DELETE CASCADE,
    expires_ms INTEGER NOT NULL
);
CREATE TABLE departments (
    id INTEGER PRIMARY KEY,
    name TEXT NOT NULL,
    parent_id INTEGER REFERENCES departments(id),
    UNIQUE (parent_id, name)
);
CREATE TABLE employees (
    id INTEGER PRIMARY KEY,
    name TEXT NOT NULL,
    username TEXT UNIQUE,
    department_id INTEGER REFERENCES departments(id),
    created_ms INTEGER NOT NULL
);
CREATE TABLE enroll_tokens (
    id INTEGER PRIMARY KEY,
    secret_hash TEXT NOT NULL UNIQUE,
    department_id INTEGER REFERENCES departments(id),
    created_ms INTEGER NOT NULL,
    expires_ms INTEGER NOT NULL,
    used_ms INTEGER,
    used_by_agent INTEGER
);
CREATE TABLE agents (
    id INTEGER PRIMARY KEY,
    secret_hash TEXT NOT NULL,
    hostname TEXT NOT NULL,
    os TEXT NOT NULL,
    agent_version TEXT NOT NULL,
    department_id INTEGER REFERENCES departments(id),
    employee_id INTEGER REFERENCES employees(id),
    enrolled_ms INTEGER NOT NULL,
    revoked_ms INTEGER,
    revoked_reason TEXT,
    last_seen_ms INTEGER,
    online INTEGER NOT NULL DEFAULT 0,
    users TEXT NOT NULL DEFAULT '[]',
    addresses TEXT NOT NULL DEFAULT '[]',
    applied_policy TEXT,
    spool_events INTEGER NOT NULL DEFAULT 0,
    notices TEXT NOT NULL DEFAULT '[]',
    acked_seq INTEGER NOT NULL DEFAULT 0,
    refused_events INTEGER NOT NULL DEFAULT 0
);
CREATE TABLE agent_gaps (
    agent_id INTEGER NOT NULL REFERENCES agents(id),
    offline_from_ms INTEGER NOT NULL,
    offline_to_ms INTEGER NOT NULL
);
CREATE INDEX agent_gaps_agent ON agent_gaps(agent_id, offline_from_ms);
-- (agent_id, seq) is the dedupe key: at-least-once on the wire, exactly-once here.
CREATE TABLE events (
    agent_id INTEGER NOT NULL,
    seq INTEGER NOT NULL,
    ts_ms INTEGER NOT NULL,
    duration_ms INTEGER,
    category INTEGER NOT NULL,
    payload BLOB NOT NULL,
    PRIMARY KEY (agent_id, seq)
) WITHOUT ROWID;
CREATE INDEX events_ts ON events(ts_ms);
CREATE TABLE policies (
    id INTEGER PRIMARY KEY,
    name TEXT NOT NULL UNIQUE,
    doc TEXT NOT NULL,
    revision INTEGER NOT NULL DEFAULT 1,
    updated_ms INTEGER NOT NULL
);
CREATE TABLE policy_assignments (
    scope TEXT NOT NULL CHECK (scope IN ('global', 'department', 'agent')),
    target INTEGER NOT NULL,
    policy_id INTEGER NOT NULL REFERENCES policies(id),
    PRIMARY KEY (scope, target)
);
-- Consent records are immutable: a withdrawal is a new record.
CREATE TABLE consents (
    id INTEGER PRIMARY KEY,
    employee_id INTEGER NOT NULL REFERENCES employees(id),
    category TEXT NOT NULL,
    granted INTEGER NOT NULL,
    method TEXT NOT NULL,
    note TEXT,
    recorded_by TEXT NOT NULL,
    recorded_ms INTEGER NOT NULL
);
CREATE INDEX consents_employee ON consents(employee_id, category, id);
CREATE TRIGGER consents_no_update BEFORE UPDATE ON consents
BEGIN SELECT RAISE(ABORT, 'consent records are immutable'); END;
CREATE TRIGGER consents_no_delete BEFORE DELETE ON consents
BEGIN SELECT RAISE(ABORT, 'consent records are immutable'); END;
-- Append-only, hash-chained record of every admin read of personal data.
CREATE TABLE access_log (
    id INTEGER PRIMARY KEY,
    ts_ms INTEGER NOT NULL,
    actor TEXT NOT NULL,
    action TEXT NOT NULL,
    target TEXT NOT NULL,
    prev_hash TEXT NOT NULL,
    hash TEXT NOT NULL
);
CREATE TRIGGER access_log_no_update BEFORE UPDATE ON access_log
BEGIN SELECT RAISE(ABORT, 'the access log is append-only'); END;
CREATE TRIGGER access_log_no_delete BEFORE DELETE ON access_log
BEGIN SELECT RAISE(ABORT, 'the access log is append-only'); END;
