-- Version 5: retention. Legal holds suspend purging for an employee; every purge is logged.
CREATE TABLE legal_holds (
    employee_id INTEGER PRIMARY KEY REFERENCES employees(id),
    reason TEXT NOT NULL,
    set_by TEXT NOT NULL,
    set_ms INTEGER NOT NULL
);
CREATE TABLE purge_log (
    id INTEGER PRIMARY KEY,
    ts_ms INTEGER NOT NULL,
    category TEXT NOT NULL,
    cutoff_ms INTEGER NOT NULL,
    events INTEGER NOT NULL,
    rollups INTEGER NOT NULL,
    held_endpoints INTEGER NOT NULL
);
