-- OpsLens schema v3: versioned external items (one deployment, whether it came by webhook or
-- by sync, replaced by its newer states) and a short history of integration errors.

-- Items that change at their source carry a version; NULL for items that never change.
ALTER TABLE external_item ADD COLUMN version TEXT;

-- Recent errors per integration (sync failures, failed outgoing posts), newest kept, oldest
-- pruned on insert: `GET /integrations` shows more than the last one.
CREATE TABLE integration_error (
    id          INTEGER PRIMARY KEY,
    name        TEXT NOT NULL,
    occurred_at TEXT NOT NULL,
    message     TEXT NOT NULL
);
CREATE INDEX integration_error_name ON integration_error(name, id);
