-- Entries are indexed when their write batch commits, not row by row (issue 13).
--
-- Every write is a savepoint in the writer's batch transaction (group commit), and FTS5 writes
-- its pending terms out as a new segment at every savepoint. Indexing inside the triggers thus
-- made one segment per write, and merging those segments was the largest part of creating an
-- incident. Now the triggers note a new entry in search_pending, and the writer indexes every
-- noted entry in one statement just before its COMMIT (`search::index_pending`), in the same
-- transaction: a committed entry is always searchable, and a batch makes one segment.
--
-- Whoever writes search_doc past the writer (another process, the sqlite3 shell) leaves
-- entries noted; the next batch, search or start indexes them.

CREATE TABLE search_pending (doc_id INTEGER PRIMARY KEY);

-- What the index holds for each entry: its text with a `.` or `:` that ends a word dropped
-- (as migration 0013's triggers clean it). Indexing and re-indexing read it from here.
CREATE VIEW search_doc_indexed AS
SELECT d.id, d.kind, d.status, d.severity, d.month,
    replace(replace(replace(replace(replace(replace(replace(replace(d.title || ' ',
            '. ', '  '), ': ', '  '), '.' || char(10), '  '), ':' || char(10), '  '),
            '.' || char(13), '  '), ':' || char(13), '  '), '.' || char(9), '  '), ':' || char(9), '  ') AS title,
    replace(replace(replace(replace(replace(replace(replace(replace(d.body || ' ',
            '. ', '  '), ': ', '  '), '.' || char(10), '  '), ':' || char(10), '  '),
            '.' || char(13), '  '), ':' || char(13), '  '), '.' || char(9), '  '), ':' || char(9), '  ') AS body
FROM search_doc d;

-- An entry takes its incident's status, severity and month from the incident, except the
-- incident's own entry, which is written with them (one write of the row, not two).
DROP TRIGGER search_doc_ai;
CREATE TRIGGER search_doc_ai AFTER INSERT ON search_doc WHEN new.status = '' BEGIN
    UPDATE search_doc SET status = i.status, severity = i.severity, month = substr(i.created_at, 1, 7)
    FROM incident i WHERE search_doc.id = new.id AND i.id = new.incident_id;
END;
CREATE TRIGGER search_doc_noted AFTER INSERT ON search_doc BEGIN
    INSERT OR IGNORE INTO search_pending(doc_id) VALUES (new.id);
END;
DROP TRIGGER search_incident_ai;
CREATE TRIGGER search_incident_ai AFTER INSERT ON incident BEGIN
    INSERT INTO search_doc(kind, ref_id, incident_id, title, body, at, status, severity, month)
    VALUES ('incident', new.id, new.id, new.title, new.description, new.created_at,
            new.status, new.severity, substr(new.created_at, 1, 7));
END;
DROP TRIGGER search_incident_au;
CREATE TRIGGER search_incident_au AFTER UPDATE OF title, description ON incident
WHEN old.title IS NOT new.title OR old.description IS NOT new.description BEGIN
    DELETE FROM search_doc WHERE kind = 'incident' AND ref_id = old.id;
    INSERT INTO search_doc(kind, ref_id, incident_id, title, body, at, status, severity, month)
    VALUES ('incident', new.id, new.id, new.title, new.description, new.created_at,
            new.status, new.severity, substr(new.created_at, 1, 7));
END;

-- An entry still waiting is only forgotten; an indexed one is deleted from the index with the
-- values it was indexed under.
DROP TRIGGER search_doc_ad;
CREATE TRIGGER search_doc_ad AFTER DELETE ON search_doc BEGIN
    INSERT INTO search_fts(search_fts, rowid, kind, status, severity, month, title, body)
    SELECT 'delete', old.id, old.kind, old.status, old.severity, old.month,
        replace(replace(replace(replace(replace(replace(replace(replace(old.title || ' ',
            '. ', '  '), ': ', '  '), '.' || char(10), '  '), ':' || char(10), '  '),
            '.' || char(13), '  '), ':' || char(13), '  '), '.' || char(9), '  '), ':' || char(9), '  '),
        replace(replace(replace(replace(replace(replace(replace(replace(old.body || ' ',
            '. ', '  '), ': ', '  '), '.' || char(10), '  '), ':' || char(10), '  '),
            '.' || char(13), '  '), ':' || char(13), '  '), '.' || char(9), '  '), ':' || char(9), '  ')
    WHERE NOT EXISTS (SELECT 1 FROM search_pending WHERE doc_id = old.id);
    DELETE FROM search_pending WHERE doc_id = old.id;
END;

-- A status or severity change takes the incident's indexed entries out of the index and notes
-- them all again: the batch's commit indexes them under the new values (same ids).
DROP TRIGGER search_incident_state;
CREATE TRIGGER search_incident_state AFTER UPDATE OF status, severity ON incident
WHEN old.status IS NOT new.status OR old.severity IS NOT new.severity BEGIN
    INSERT INTO search_fts(search_fts, rowid, kind, status, severity, month, title, body)
    SELECT 'delete', x.id, x.kind, x.status, x.severity, x.month, x.title, x.body
    FROM search_doc_indexed x WHERE x.id IN (SELECT id FROM search_doc WHERE incident_id = new.id)
      AND NOT EXISTS (SELECT 1 FROM search_pending p WHERE p.doc_id = x.id);
    UPDATE search_doc SET status = new.status, severity = new.severity WHERE incident_id = new.id;
    INSERT OR IGNORE INTO search_pending(doc_id) SELECT id FROM search_doc WHERE incident_id = new.id;
END;
