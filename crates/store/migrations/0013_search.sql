-- Search over everything a person wrote or a tool produced (issue 16).
--
-- `search_doc` holds one row per searchable entry with its text as written (for snippets and
-- the hit's title); `search_fts` indexes that text. Both are kept in step by triggers on the
-- tables the entries live in, so they change in the same transaction as the write, whatever
-- code path wrote it. A changed entry is deleted and inserted again: its new id marks it as
-- recent, and ids follow time, which is what bounds the search's work (see search.rs).
--
-- Kinds: incident (title, description), evidence (title, content; a screenshot's content is
-- its findings' text, so it is left to the finding), finding (a screenshot's findings:
-- summary, panels, metrics, anomalies, errors, answers), hypothesis, action (title, owner),
-- note (timeline notes and observations a person wrote), status_update (status, impact,
-- text), postmortem (every section).

DROP TRIGGER incident_ai;
DROP TRIGGER incident_au;
DROP TRIGGER incident_ad;
DROP TRIGGER evidence_ai;
DROP TRIGGER evidence_au;
DROP TRIGGER evidence_ad;
DROP TABLE search_index;

CREATE TABLE search_doc (
    id          INTEGER PRIMARY KEY,
    kind        TEXT NOT NULL,
    ref_id      INTEGER NOT NULL,
    incident_id INTEGER NOT NULL,
    title       TEXT NOT NULL,
    body        TEXT NOT NULL,
    at          TEXT NOT NULL,
    -- Copied from the incident: what the index holds for this entry (see search_doc_ad).
    status      TEXT NOT NULL DEFAULT '',
    severity    TEXT NOT NULL DEFAULT '',
    month       TEXT NOT NULL DEFAULT ''
);
CREATE UNIQUE INDEX search_doc_ref ON search_doc(kind, ref_id);
CREATE INDEX search_doc_incident ON search_doc(incident_id);

-- Tokens keep `.-_:/` inside them, so `v2.41.0`, `checkout-api`, `db-1.prod.internal`,
-- `10.0.3.7:8080` and `14:07:32` are single tokens. A `.` or `:` that ends a word ("error.",
-- "Error: …") is dropped before indexing so the word matches without it. Contentless: the text
-- lives once, in search_doc. `kind` is indexed too, so a kind filter is part of the match.
-- Prefix indexes for 2 and 3 characters: `ch*` reads one list instead of merging every word
-- that begins so.
CREATE VIRTUAL TABLE search_fts USING fts5(
    kind, status, severity, month, title, body,
    content = '',
    tokenize = "unicode61 remove_diacritics 2 tokenchars '.-_:/'",
    prefix = '2 3'
);

-- Each entry carries its incident's status, severity and month of opening (`2026-11`), so
-- those filters are part of the match too, as cheap as a word. A status or severity change
-- re-indexes the incident's entries under the same ids (their recency is kept).
-- A contentless table forgets a row by being told the values it indexed ('delete'): search_doc
-- keeps exactly those (its own text and the copied incident fields), and nothing else ever
-- writes to search_fts. (`contentless_delete` would avoid that, but SQLite < 3.43 — Debian's
-- sqlite3 shell among them — could then not write to this database at all.)
CREATE TRIGGER search_doc_ai AFTER INSERT ON search_doc BEGIN
    UPDATE search_doc SET status = i.status, severity = i.severity, month = substr(i.created_at, 1, 7)
    FROM incident i WHERE search_doc.id = new.id AND i.id = new.incident_id;
    INSERT INTO search_fts(rowid, kind, status, severity, month, title, body)
    SELECT d.id, d.kind, d.status, d.severity, d.month,
        replace(replace(replace(replace(replace(replace(replace(replace(d.title || ' ',
            '. ', '  '), ': ', '  '), '.' || char(10), '  '), ':' || char(10), '  '),
            '.' || char(13), '  '), ':' || char(13), '  '), '.' || char(9), '  '), ':' || char(9), '  '),
        replace(replace(replace(replace(replace(replace(replace(replace(d.body || ' ',
            '. ', '  '), ': ', '  '), '.' || char(10), '  '), ':' || char(10), '  '),
            '.' || char(13), '  '), ':' || char(13), '  '), '.' || char(9), '  '), ':' || char(9), '  ')
    FROM search_doc d WHERE d.id = new.id;
END;
CREATE TRIGGER search_doc_ad AFTER DELETE ON search_doc BEGIN
    INSERT INTO search_fts(search_fts, rowid, kind, status, severity, month, title, body)
    VALUES ('delete', old.id, old.kind, old.status, old.severity, old.month,
        replace(replace(replace(replace(replace(replace(replace(replace(old.title || ' ',
            '. ', '  '), ': ', '  '), '.' || char(10), '  '), ':' || char(10), '  '),
            '.' || char(13), '  '), ':' || char(13), '  '), '.' || char(9), '  '), ':' || char(9), '  '),
        replace(replace(replace(replace(replace(replace(replace(replace(old.body || ' ',
            '. ', '  '), ': ', '  '), '.' || char(10), '  '), ':' || char(10), '  '),
            '.' || char(13), '  '), ':' || char(13), '  '), '.' || char(9), '  '), ':' || char(9), '  '));
END;
CREATE TRIGGER search_incident_state AFTER UPDATE OF status, severity ON incident
WHEN old.status IS NOT new.status OR old.severity IS NOT new.severity BEGIN
    INSERT INTO search_fts(search_fts, rowid, kind, status, severity, month, title, body)
    SELECT 'delete', d.id, d.kind, d.status, d.severity, d.month,
        replace(replace(replace(replace(replace(replace(replace(replace(d.title || ' ',
            '. ', '  '), ': ', '  '), '.' || char(10), '  '), ':' || char(10), '  '),
            '.' || char(13), '  '), ':' || char(13), '  '), '.' || char(9), '  '), ':' || char(9), '  '),
        replace(replace(replace(replace(replace(replace(replace(replace(d.body || ' ',
            '. ', '  '), ': ', '  '), '.' || char(10), '  '), ':' || char(10), '  '),
            '.' || char(13), '  '), ':' || char(13), '  '), '.' || char(9), '  '), ':' || char(9), '  ')
    FROM search_doc d WHERE d.incident_id = new.id;
    UPDATE search_doc SET status = new.status, severity = new.severity WHERE incident_id = new.id;
    INSERT INTO search_fts(rowid, kind, status, severity, month, title, body)
    SELECT d.id, d.kind, d.status, d.severity, d.month,
        replace(replace(replace(replace(replace(replace(replace(replace(d.title || ' ',
            '. ', '  '), ': ', '  '), '.' || char(10), '  '), ':' || char(10), '  '),
            '.' || char(13), '  '), ':' || char(13), '  '), '.' || char(9), '  '), ':' || char(9), '  '),
        replace(replace(replace(replace(replace(replace(replace(replace(d.body || ' ',
            '. ', '  '), ': ', '  '), '.' || char(10), '  '), ':' || char(10), '  '),
            '.' || char(13), '  '), ':' || char(13), '  '), '.' || char(9), '  '), ':' || char(9), '  ')
    FROM search_doc d WHERE d.incident_id = new.id;
END;

-- Incidents. Deleting one removes every entry of it (its rows go by cascade, too).
CREATE TRIGGER search_incident_ai AFTER INSERT ON incident BEGIN
    INSERT INTO search_doc(kind, ref_id, incident_id, title, body, at)
    VALUES ('incident', new.id, new.id, new.title, new.description, new.created_at);
END;
CREATE TRIGGER search_incident_au AFTER UPDATE OF title, description ON incident
WHEN old.title IS NOT new.title OR old.description IS NOT new.description BEGIN
    DELETE FROM search_doc WHERE kind = 'incident' AND ref_id = old.id;
    INSERT INTO search_doc(kind, ref_id, incident_id, title, body, at)
    VALUES ('incident', new.id, new.id, new.title, new.description, new.created_at);
END;
CREATE TRIGGER search_incident_ad AFTER DELETE ON incident BEGIN
    DELETE FROM search_doc WHERE incident_id = old.id;
END;

-- Evidence and the findings of screenshots.
CREATE TRIGGER search_evidence_ai AFTER INSERT ON evidence BEGIN
    INSERT INTO search_doc(kind, ref_id, incident_id, title, body, at)
    VALUES ('evidence', new.id, new.incident_id, new.title,
            CASE WHEN new.evidence_type = 'screenshot' AND new.findings IS NOT NULL THEN ''
                 ELSE new.content END,
            new.created_at);
    INSERT INTO search_doc(kind, ref_id, incident_id, title, body, at)
    SELECT 'finding', new.id, new.incident_id, new.title, (SELECT coalesce(group_concat(j.value, ' '), '') FROM json_tree(new.findings) j
            WHERE j.type = 'text' AND j.key IN ('summary', 'title', 'metric', 'unit', 'current',
                'peak', 'trend', 'description', 'message', 'code', 'question', 'answer')), new.created_at
    WHERE new.findings IS NOT NULL AND json_valid(new.findings);
END;
CREATE TRIGGER search_evidence_au AFTER UPDATE OF title, content, findings, incident_id ON evidence
WHEN old.title IS NOT new.title OR old.content IS NOT new.content
  OR old.findings IS NOT new.findings OR old.incident_id IS NOT new.incident_id BEGIN
    DELETE FROM search_doc WHERE kind IN ('evidence', 'finding') AND ref_id = old.id;
    INSERT INTO search_doc(kind, ref_id, incident_id, title, body, at)
    VALUES ('evidence', new.id, new.incident_id, new.title,
            CASE WHEN new.evidence_type = 'screenshot' AND new.findings IS NOT NULL THEN ''
                 ELSE new.content END,
            new.created_at);
    INSERT INTO search_doc(kind, ref_id, incident_id, title, body, at)
    SELECT 'finding', new.id, new.incident_id, new.title, (SELECT coalesce(group_concat(j.value, ' '), '') FROM json_tree(new.findings) j
            WHERE j.type = 'text' AND j.key IN ('summary', 'title', 'metric', 'unit', 'current',
                'peak', 'trend', 'description', 'message', 'code', 'question', 'answer')), new.created_at
    WHERE new.findings IS NOT NULL AND json_valid(new.findings);
END;
CREATE TRIGGER search_evidence_ad AFTER DELETE ON evidence BEGIN
    DELETE FROM search_doc WHERE kind IN ('evidence', 'finding') AND ref_id = old.id;
END;

-- Hypotheses.
CREATE TRIGGER search_hypothesis_ai AFTER INSERT ON hypothesis BEGIN
    INSERT INTO search_doc(kind, ref_id, incident_id, title, body, at)
    VALUES ('hypothesis', new.id, new.incident_id, new.statement, '', new.created_at);
END;
CREATE TRIGGER search_hypothesis_au AFTER UPDATE OF statement, incident_id ON hypothesis
WHEN old.statement IS NOT new.statement OR old.incident_id IS NOT new.incident_id BEGIN
    DELETE FROM search_doc WHERE kind = 'hypothesis' AND ref_id = old.id;
    INSERT INTO search_doc(kind, ref_id, incident_id, title, body, at)
    VALUES ('hypothesis', new.id, new.incident_id, new.statement, '', new.created_at);
END;
CREATE TRIGGER search_hypothesis_ad AFTER DELETE ON hypothesis BEGIN
    DELETE FROM search_doc WHERE kind = 'hypothesis' AND ref_id = old.id;
END;

-- Action items: the title and the owner's name.
CREATE TRIGGER search_action_ai AFTER INSERT ON action_item BEGIN
    INSERT INTO search_doc(kind, ref_id, incident_id, title, body, at)
    VALUES ('action', new.id, new.incident_id, new.title, coalesce(new.owner, ''), new.created_at);
END;
CREATE TRIGGER search_action_au AFTER UPDATE OF title, owner, incident_id ON action_item
WHEN old.title IS NOT new.title OR old.owner IS NOT new.owner OR old.incident_id IS NOT new.incident_id BEGIN
    DELETE FROM search_doc WHERE kind = 'action' AND ref_id = old.id;
    INSERT INTO search_doc(kind, ref_id, incident_id, title, body, at)
    VALUES ('action', new.id, new.incident_id, new.title, coalesce(new.owner, ''), new.created_at);
END;
CREATE TRIGGER search_action_ad AFTER DELETE ON action_item BEGIN
    DELETE FROM search_doc WHERE kind = 'action' AND ref_id = old.id;
END;

-- Notes: what a person wrote on the timeline (notes, and observations not read off a
-- screenshot — those are the findings'). Entries OpsLens words itself are not indexed.
CREATE TRIGGER search_note_ai AFTER INSERT ON timeline_event
WHEN new.kind = 'note' OR (new.kind = 'observation' AND new.evidence_id IS NULL) BEGIN
    INSERT INTO search_doc(kind, ref_id, incident_id, title, body, at)
    VALUES ('note', new.id, new.incident_id, '', new.message, new.created_at);
END;
CREATE TRIGGER search_note_au AFTER UPDATE OF message, incident_id ON timeline_event
WHEN (new.kind = 'note' OR (new.kind = 'observation' AND new.evidence_id IS NULL))
  AND (old.message IS NOT new.message OR old.incident_id IS NOT new.incident_id) BEGIN
    DELETE FROM search_doc WHERE kind = 'note' AND ref_id = old.id;
    INSERT INTO search_doc(kind, ref_id, incident_id, title, body, at)
    VALUES ('note', new.id, new.incident_id, '', new.message, new.created_at);
END;
CREATE TRIGGER search_note_ad AFTER DELETE ON timeline_event BEGIN
    DELETE FROM search_doc WHERE kind = 'note' AND ref_id = old.id;
END;

-- Status updates to stakeholders.
CREATE TRIGGER search_status_update_ai AFTER INSERT ON status_update BEGIN
    INSERT INTO search_doc(kind, ref_id, incident_id, title, body, at)
    VALUES ('status_update', new.id, new.incident_id, new.impact, new.text, new.created_at);
END;
CREATE TRIGGER search_status_update_au AFTER UPDATE OF impact, text, incident_id ON status_update
WHEN old.impact IS NOT new.impact OR old.text IS NOT new.text OR old.incident_id IS NOT new.incident_id BEGIN
    DELETE FROM search_doc WHERE kind = 'status_update' AND ref_id = old.id;
    INSERT INTO search_doc(kind, ref_id, incident_id, title, body, at)
    VALUES ('status_update', new.id, new.incident_id, new.impact, new.text, new.created_at);
END;
CREATE TRIGGER search_status_update_ad AFTER DELETE ON status_update BEGIN
    DELETE FROM search_doc WHERE kind = 'status_update' AND ref_id = old.id;
END;

-- Postmortems: every section's text (the timeline entries' text too), one entry per incident.
CREATE TRIGGER search_postmortem_ai AFTER INSERT ON postmortem BEGIN
    INSERT INTO search_doc(kind, ref_id, incident_id, title, body, at)
    SELECT 'postmortem', new.incident_id, new.incident_id, coalesce(new.sections ->> '$.summary', ''),
           (SELECT coalesce(group_concat(j.value, ' '), '') FROM json_tree(new.sections) j
            WHERE j.type = 'text' AND j.key NOT IN ('summary', 'at')),
           new.updated_at
    WHERE json_valid(new.sections);
END;
CREATE TRIGGER search_postmortem_au AFTER UPDATE OF sections ON postmortem
WHEN old.sections IS NOT new.sections BEGIN
    DELETE FROM search_doc WHERE kind = 'postmortem' AND ref_id = old.incident_id;
    INSERT INTO search_doc(kind, ref_id, incident_id, title, body, at)
    SELECT 'postmortem', new.incident_id, new.incident_id, coalesce(new.sections ->> '$.summary', ''),
           (SELECT coalesce(group_concat(j.value, ' '), '') FROM json_tree(new.sections) j
            WHERE j.type = 'text' AND j.key NOT IN ('summary', 'at')),
           new.updated_at
    WHERE json_valid(new.sections);
END;
CREATE TRIGGER search_postmortem_ad AFTER DELETE ON postmortem BEGIN
    DELETE FROM search_doc WHERE kind = 'postmortem' AND ref_id = old.incident_id;
END;

-- Backfill, oldest first so ids follow time. Each row goes through the same triggers' SQL.
CREATE TEMP TABLE search_backfill AS
SELECT 'incident' AS kind, id AS ref_id, id AS incident_id, title, description AS body, created_at AS at
FROM incident
UNION ALL
SELECT 'evidence', id, incident_id, title,
       CASE WHEN evidence_type = 'screenshot' AND findings IS NOT NULL THEN '' ELSE content END, created_at
FROM evidence
UNION ALL
SELECT 'finding', e.id, e.incident_id, e.title,
       (SELECT coalesce(group_concat(j.value, ' '), '') FROM json_tree(e.findings) j
        WHERE j.type = 'text' AND j.key IN ('summary', 'title', 'metric', 'unit', 'current',
            'peak', 'trend', 'description', 'message', 'code', 'question', 'answer')),
       e.created_at
FROM evidence e WHERE e.findings IS NOT NULL AND json_valid(e.findings)
UNION ALL
SELECT 'hypothesis', id, incident_id, statement, '', created_at FROM hypothesis
UNION ALL
SELECT 'action', id, incident_id, title, coalesce(owner, ''), created_at FROM action_item
UNION ALL
SELECT 'note', id, incident_id, '', message, created_at FROM timeline_event
WHERE kind = 'note' OR (kind = 'observation' AND evidence_id IS NULL)
UNION ALL
SELECT 'status_update', id, incident_id, impact, text, created_at FROM status_update
UNION ALL
SELECT 'postmortem', p.incident_id, p.incident_id, coalesce(p.sections ->> '$.summary', ''),
       (SELECT coalesce(group_concat(j.value, ' '), '') FROM json_tree(p.sections) j
        WHERE j.type = 'text' AND j.key NOT IN ('summary', 'at')),
       p.updated_at
FROM postmortem p WHERE json_valid(p.sections);
INSERT INTO search_doc(kind, ref_id, incident_id, title, body, at)
SELECT kind, ref_id, incident_id, title, body, at FROM search_backfill ORDER BY at, kind, ref_id;
DROP TABLE search_backfill;
