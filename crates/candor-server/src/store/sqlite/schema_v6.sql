-- Version 6: personal-device mode per endpoint (collects nothing but system events).
ALTER TABLE agents ADD COLUMN personal INTEGER NOT NULL DEFAULT 0;
