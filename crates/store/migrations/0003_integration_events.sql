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

-- Deployments that came by webhook used to be keyed per status (`github:deploy:o/r:7:success`)
-- while the sync keys them by deployment id (`github:deploy:o/r:7`), so one deployment could be
-- stored twice. Re-key the webhook copies; where one incident holds several statuses of a
-- deployment (or already the sync's copy), only one takes the key (OR IGNORE) and the others
-- stay as they are: evidence people may have linked is never deleted by a migration.
UPDATE OR IGNORE external_item
SET key = substr(key, 1, length(key) - length(s.suffix))
FROM (SELECT ':' || value AS suffix FROM json_each(
        '["success","failure","error","inactive","in_progress","queued","pending"]')) AS s
WHERE external_item.key GLOB 'github:deploy:*:*:*'
  AND substr(external_item.key, -length(s.suffix)) = s.suffix;
