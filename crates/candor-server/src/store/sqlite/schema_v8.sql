-- Version 8: web visits rolled up per company day, and uploaded domain lists.
CREATE TABLE web_daily (
    day TEXT NOT NULL,
    agent_id INTEGER NOT NULL,
    domain TEXT NOT NULL,
    blocked INTEGER NOT NULL,
    visits INTEGER NOT NULL,
    bytes INTEGER NOT NULL,
    -- Connection time (SNI/Host filter) or active-tab time (browser extension).
    dwell_ms INTEGER NOT NULL,
    first_ms INTEGER NOT NULL,
    last_ms INTEGER NOT NULL,
    PRIMARY KEY (day, agent_id, domain, blocked)
) WITHOUT ROWID;
CREATE INDEX web_daily_agent ON web_daily (agent_id, day);

-- Lists of domains by category; the text is a blob (key = its SHA-256).
CREATE TABLE web_lists (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    name TEXT NOT NULL UNIQUE,
    category TEXT NOT NULL,
    sha256 TEXT NOT NULL,
    bytes INTEGER NOT NULL,
    rules INTEGER NOT NULL,
    errors INTEGER NOT NULL,
    -- Fetched from here every refresh_hours, when set.
    source_url TEXT,
    refresh_hours INTEGER,
    fetched_ms INTEGER,
    fetch_error TEXT,
    updated_by TEXT NOT NULL,
    updated_ms INTEGER NOT NULL
);
