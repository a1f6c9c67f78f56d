-- People, their roles on incidents, and the author of every entry.
--
-- A person is a name with an optional handle and email; exactly one may be the local user,
-- the author of whatever is written through this install's token. Per-user tokens will hang
-- off these rows later.
CREATE TABLE person (
    id            INTEGER PRIMARY KEY,
    name          TEXT NOT NULL,
    handle        TEXT,
    email         TEXT,
    is_local_user INTEGER NOT NULL DEFAULT 0,
    created_at    TEXT NOT NULL
);
CREATE UNIQUE INDEX person_handle ON person(lower(handle)) WHERE handle IS NOT NULL;
CREATE UNIQUE INDEX person_local_user ON person(is_local_user) WHERE is_local_user = 1;

-- Commander, communications and scribe have one holder each (enforced by the writer);
-- participants any number.
CREATE TABLE incident_role (
    incident_id INTEGER NOT NULL REFERENCES incident(id) ON DELETE CASCADE,
    role        TEXT NOT NULL,
    person_id   INTEGER NOT NULL REFERENCES person(id) ON DELETE CASCADE,
    assigned_at TEXT NOT NULL,
    PRIMARY KEY (incident_id, role, person_id)
);

-- Who wrote it: a person's name, or the integration that brought it ('github', 'pagerduty',
-- 'analysis'). Rows written without one are the local user's (the only token there is).
ALTER TABLE timeline_event ADD COLUMN author TEXT;
ALTER TABLE evidence ADD COLUMN author TEXT;
ALTER TABLE hypothesis ADD COLUMN author TEXT;
ALTER TABLE action_item ADD COLUMN author TEXT;

CREATE TRIGGER timeline_event_author AFTER INSERT ON timeline_event WHEN new.author IS NULL BEGIN
    UPDATE timeline_event SET author = (SELECT name FROM person WHERE is_local_user = 1) WHERE id = new.id;
END;
CREATE TRIGGER evidence_author AFTER INSERT ON evidence WHEN new.author IS NULL BEGIN
    UPDATE evidence SET author = (SELECT name FROM person WHERE is_local_user = 1) WHERE id = new.id;
END;
CREATE TRIGGER hypothesis_author AFTER INSERT ON hypothesis WHEN new.author IS NULL BEGIN
    UPDATE hypothesis SET author = (SELECT name FROM person WHERE is_local_user = 1) WHERE id = new.id;
END;
CREATE TRIGGER action_item_author AFTER INSERT ON action_item WHEN new.author IS NULL BEGIN
    UPDATE action_item SET author = (SELECT name FROM person WHERE is_local_user = 1) WHERE id = new.id;
END;

-- What integrations brought shows the integration as its author.
UPDATE evidence SET author = (
    SELECT substr(x.key, 1, instr(x.key, ':') - 1) FROM external_item x WHERE x.evidence_id = evidence.id LIMIT 1)
WHERE id IN (SELECT evidence_id FROM external_item WHERE evidence_id IS NOT NULL);
UPDATE timeline_event SET author = (SELECT e.author FROM evidence e WHERE e.id = timeline_event.evidence_id)
WHERE kind = 'evidence_added' AND evidence_id IN (SELECT evidence_id FROM external_item WHERE evidence_id IS NOT NULL);
UPDATE hypothesis SET author = 'correlation' WHERE origin = 'correlation';
UPDATE timeline_event SET author = 'analysis' WHERE kind = 'observation' AND evidence_id IS NOT NULL
  AND evidence_id IN (SELECT id FROM evidence WHERE evidence_type = 'screenshot');
