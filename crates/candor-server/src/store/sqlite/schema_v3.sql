-- Version 3: the alerts inbox.
CREATE TABLE alerts (
    id INTEGER PRIMARY KEY,
    ts_ms INTEGER NOT NULL,
    agent_id INTEGER REFERENCES agents(id),
    kind TEXT NOT NULL,
    severity TEXT NOT NULL CHECK (severity IN ('info', 'warning', 'critical')),
    detail TEXT NOT NULL,
    -- The figures behind `detail`, so the console can word it in the reader's language.
    data TEXT NOT NULL DEFAULT '{}',
    status TEXT NOT NULL DEFAULT 'open' CHECK (status IN ('open', 'acknowledged', 'closed')),
    assignee TEXT,
    updated_ms INTEGER NOT NULL,
    -- The event that raised it: a resent batch raises nothing twice.
    source_seq INTEGER NOT NULL,
    UNIQUE (agent_id, kind, source_seq)
);
CREATE INDEX alerts_status ON alerts(status, ts_ms);
CREATE INDEX alerts_agent ON alerts(agent_id, ts_ms);
CREATE TABLE alert_comments (
    id INTEGER PRIMARY KEY,
    alert_id INTEGER NOT NULL REFERENCES alerts(id),
    author TEXT NOT NULL,
    text TEXT NOT NULL,
    ts_ms INTEGER NOT NULL
);
CREATE INDEX alert_comments_alert ON alert_comments(alert_id, id);
