-- The postmortem of an incident: sections as JSON, a version bumped by every save so a
-- stale save is refused rather than overwriting; and pins choosing its timeline.
CREATE TABLE postmortem (
    incident_id INTEGER PRIMARY KEY REFERENCES incident(id) ON DELETE CASCADE,
    version     INTEGER NOT NULL,
    sections    TEXT NOT NULL,
    author      TEXT,
    updated_at  TEXT NOT NULL
);
ALTER TABLE timeline_event ADD COLUMN pinned INTEGER NOT NULL DEFAULT 0;
