-- Version 9: the time index of recorded screen frames (the frames are blobs),
-- and blob files whose last reference a purge removed, deleted after commit.
CREATE TABLE screen_frames (
    agent_id INTEGER NOT NULL,
    seq INTEGER NOT NULL,
    ts_ms INTEGER NOT NULL,
    display TEXT NOT NULL,
    width INTEGER NOT NULL,
    height INTEGER NOT NULL,
    key INTEGER NOT NULL,
    tiles INTEGER NOT NULL,
    bytes INTEGER NOT NULL,
    reason TEXT NOT NULL,
    blob TEXT NOT NULL,
    PRIMARY KEY (agent_id, seq)
) WITHOUT ROWID;
CREATE INDEX screen_frames_time ON screen_frames (agent_id, display, ts_ms);
CREATE INDEX screen_frames_blob ON screen_frames (blob);

CREATE TABLE blob_purge_queue (key TEXT PRIMARY KEY) WITHOUT ROWID;
