-- Version 10: the company's monitoring notice, versioned and immutable, and
-- what each consent record was given against: the notice version an employee
-- answered in the portal, or the scan of a signed paper form (a blob key).
CREATE TABLE notices (
    version INTEGER PRIMARY KEY,
    body TEXT NOT NULL,
    published_by TEXT NOT NULL,
    published_ms INTEGER NOT NULL
);
CREATE TRIGGER notices_no_update BEFORE UPDATE ON notices
BEGIN SELECT RAISE(ABORT, 'published notices are immutable'); END;
CREATE TRIGGER notices_no_delete BEFORE DELETE ON notices
BEGIN SELECT RAISE(ABORT, 'published notices are immutable'); END;
ALTER TABLE consents ADD COLUMN notice_version INTEGER;
ALTER TABLE consents ADD COLUMN scan TEXT;
CREATE INDEX consents_scan ON consents(scan) WHERE scan IS NOT NULL;
