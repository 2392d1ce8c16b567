-- Version 4: activity rollups maintained at ingest, the application catalogue and its classification.
-- One row per company day, endpoint, session user, application and state;
-- spans crossing midnight are split at ingest. Queries sum these rows, never the events.
CREATE TABLE activity_daily (
    day TEXT NOT NULL,
    agent_id INTEGER NOT NULL,
    user TEXT NOT NULL,
    app TEXT NOT NULL,
    state TEXT NOT NULL,
    duration_ms INTEGER NOT NULL,
    spans INTEGER NOT NULL,
    first_ms INTEGER NOT NULL,
    last_ms INTEGER NOT NULL,
    PRIMARY KEY (day, agent_id, user, app, state)
) WITHOUT ROWID;
CREATE TABLE applications (
    app TEXT PRIMARY KEY,
    desktop_id TEXT,
    name TEXT,
    name_zh TEXT,
    categories TEXT NOT NULL DEFAULT '[]',
    icon BLOB,
    first_seen_ms INTEGER NOT NULL,
    updated_ms INTEGER NOT NULL
);
-- Admin classification; department 0 is the company-wide default.
CREATE TABLE app_classes (
    app TEXT NOT NULL,
    department_id INTEGER NOT NULL,
    class TEXT NOT NULL,
    updated_by TEXT NOT NULL,
    updated_ms INTEGER NOT NULL,
    PRIMARY KEY (app, department_id)
);
