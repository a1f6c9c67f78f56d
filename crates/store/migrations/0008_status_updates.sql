-- Structured status updates to stakeholders: status, impact, free text and when the next one
-- is due; the incident keeps the due time of its latest update.
CREATE TABLE status_update (
    id             INTEGER PRIMARY KEY,
    incident_id    INTEGER NOT NULL REFERENCES incident(id) ON DELETE CASCADE,
    status         TEXT NOT NULL,
    impact         TEXT NOT NULL DEFAULT '',
    text           TEXT NOT NULL DEFAULT '',
    next_update_at TEXT,
    author         TEXT,
    created_at     TEXT NOT NULL
);
CREATE INDEX status_update_incident ON status_update(incident_id, id);
CREATE TRIGGER status_update_author AFTER INSERT ON status_update WHEN new.author IS NULL BEGIN
    UPDATE status_update SET author = (SELECT name FROM person WHERE is_local_user = 1) WHERE id = new.id;
END;
ALTER TABLE incident ADD COLUMN next_update_at TEXT;
