-- Version 2: console roles, department scopes, lock-out, TOTP and language per admin.
ALTER TABLE admins ADD COLUMN departments TEXT NOT NULL DEFAULT '[]';
ALTER TABLE admins ADD COLUMN failed_logins INTEGER NOT NULL DEFAULT 0;
ALTER TABLE admins ADD COLUMN locked_until_ms INTEGER NOT NULL DEFAULT 0;
ALTER TABLE admins ADD COLUMN totp_secret TEXT;
ALTER TABLE admins ADD COLUMN lang TEXT NOT NULL DEFAULT 'zh-CN';
ALTER TABLE admins ADD COLUMN disabled INTEGER NOT NULL DEFAULT 0;
CREATE INDEX employees_department ON employees(department_id);
CREATE INDEX agents_department ON agents(department_id);
