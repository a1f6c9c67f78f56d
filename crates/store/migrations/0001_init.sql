-- OpsLens schema v1. Shipped migrations are never edited; add 0002_… instead.

CREATE TABLE incident (
    id              INTEGER PRIMARY KEY,
    title           TEXT NOT NULL,
    description     TEXT NOT NULL DEFAULT '',
    severity        TEXT NOT NULL,
    status          TEXT NOT NULL,
    source          TEXT NOT NULL DEFAULT 'manual',
    external_id     TEXT,
    created_at      TEXT NOT NULL,
    updated_at      TEXT NOT NULL,
    acknowledged_at TEXT,
    resolved_at     TEXT
);
CREATE UNIQUE INDEX incident_external ON incident(source, external_id) WHERE external_id IS NOT NULL;
CREATE INDEX incident_created ON incident(created_at);

CREATE TABLE evidence (
    id             INTEGER PRIMARY KEY,
    incident_id    INTEGER NOT NULL REFERENCES incident(id) ON DELETE CASCADE,
    evidence_type  TEXT NOT NULL,
    title          TEXT NOT NULL,
    content        TEXT NOT NULL DEFAULT '',
    source         TEXT NOT NULL DEFAULT '',
    sha256         TEXT NOT NULL,
    blob_path      TEXT,
    image_mime     TEXT,
    image_width    INTEGER,
    image_height   INTEGER,
    image_bytes    INTEGER,
    original_name  TEXT,
    analysis_state TEXT,
    analysis_model TEXT,
    analysis_error TEXT,
    analysis_ms    INTEGER,
    findings       TEXT,
    created_at     TEXT NOT NULL,
    updated_at     TEXT NOT NULL
);
CREATE INDEX evidence_incident ON evidence(incident_id, id);
CREATE INDEX evidence_analysis ON evidence(analysis_state) WHERE analysis_state IS NOT NULL;
CREATE INDEX evidence_blob ON evidence(blob_path) WHERE blob_path IS NOT NULL;

CREATE TABLE timeline_event (
    id          INTEGER PRIMARY KEY,
    incident_id INTEGER NOT NULL REFERENCES incident(id) ON DELETE CASCADE,
    kind        TEXT NOT NULL,
    message     TEXT NOT NULL,
    occurred_at TEXT NOT NULL,
    created_at  TEXT NOT NULL,
    evidence_id INTEGER REFERENCES evidence(id) ON DELETE SET NULL
);
CREATE INDEX timeline_incident ON timeline_event(incident_id, occurred_at);

CREATE TABLE hypothesis (
    id          INTEGER PRIMARY KEY,
    incident_id INTEGER NOT NULL REFERENCES incident(id) ON DELETE CASCADE,
    statement   TEXT NOT NULL,
    status      TEXT NOT NULL,
    origin      TEXT NOT NULL,
    created_at  TEXT NOT NULL,
    updated_at  TEXT NOT NULL
);
CREATE INDEX hypothesis_incident ON hypothesis(incident_id);

CREATE TABLE hypothesis_evidence (
    hypothesis_id INTEGER NOT NULL REFERENCES hypothesis(id) ON DELETE CASCADE,
    evidence_id   INTEGER NOT NULL REFERENCES evidence(id) ON DELETE CASCADE,
    PRIMARY KEY (hypothesis_id, evidence_id)
);

CREATE TABLE action_item (
    id          INTEGER PRIMARY KEY,
    incident_id INTEGER NOT NULL REFERENCES incident(id) ON DELETE CASCADE,
    title       TEXT NOT NULL,
    owner       TEXT,
    status      TEXT NOT NULL,
    due_at      TEXT,
    created_at  TEXT NOT NULL,
    updated_at  TEXT NOT NULL
);
CREATE INDEX action_incident ON action_item(incident_id);

-- Full-text index over incidents and evidence, kept in step by triggers so no code path can
-- forget it. `kind` is 'incident' or 'evidence'; `ref_id` the row id.
CREATE VIRTUAL TABLE search_index USING fts5(
    kind UNINDEXED, ref_id UNINDEXED, incident_id UNINDEXED, title, body,
    tokenize = 'unicode61 remove_diacritics 2'
);

CREATE TRIGGER incident_ai AFTER INSERT ON incident BEGIN
    INSERT INTO search_index(kind, ref_id, incident_id, title, body)
    VALUES ('incident', new.id, new.id, new.title, new.description);
END;
CREATE TRIGGER incident_au AFTER UPDATE OF title, description ON incident BEGIN
    DELETE FROM search_index WHERE kind = 'incident' AND ref_id = old.id;
    INSERT INTO search_index(kind, ref_id, incident_id, title, body)
    VALUES ('incident', new.id, new.id, new.title, new.description);
END;
CREATE TRIGGER incident_ad AFTER DELETE ON incident BEGIN
    DELETE FROM search_index WHERE incident_id = old.id;
END;
CREATE TRIGGER evidence_ai AFTER INSERT ON evidence BEGIN
    INSERT INTO search_index(kind, ref_id, incident_id, title, body)
    VALUES ('evidence', new.id, new.incident_id, new.title, new.content);
END;
CREATE TRIGGER evidence_au AFTER UPDATE OF title, content ON evidence BEGIN
    DELETE FROM search_index WHERE kind = 'evidence' AND ref_id = old.id;
    INSERT INTO search_index(kind, ref_id, incident_id, title, body)
    VALUES ('evidence', new.id, new.incident_id, new.title, new.content);
END;
CREATE TRIGGER evidence_ad AFTER DELETE ON evidence BEGIN
    DELETE FROM search_index WHERE kind = 'evidence' AND ref_id = old.id;
END;
