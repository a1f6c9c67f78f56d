-- Entries are indexed when their write batch commits, not row by row (issue 13).
--
-- Every write is a savepoint in the writer's batch transaction (group commit), and FTS5 writes
-- its pending terms out as a new segment at every savepoint. Indexing inside the triggers thus
-- made one segment per write, and merging those segments was the largest part of creating an
-- incident. Now the triggers note a new entry in search_pending, and the writer indexes every
-- noted entry in one statement just before its COMMIT (`search::index_pending`), in the same
-- transaction: a committed entry is always searchable, and a batch makes one segment.
--
-- Whoever writes search_doc outside the writer (the sqlite3 shell) leaves entries noted; the
-- next batch indexes them.

CREATE TABLE search_pending (doc_id INTEGER PRIMARY KEY);

DROP TRIGGER search_doc_ai;
CREATE TRIGGER search_doc_ai AFTER INSERT ON search_doc BEGIN
    UPDATE search_doc SET status = i.status, severity = i.severity, month = substr(i.created_at, 1, 7)
    FROM incident i WHERE search_doc.id = new.id AND i.id = new.incident_id;
    INSERT OR IGNORE INTO search_pending(doc_id) VALUES (new.id);
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
    SELECT 'delete', d.id, d.kind, d.status, d.severity, d.month,
        replace(replace(replace(replace(replace(replace(replace(replace(d.title || ' ',
            '. ', '  '), ': ', '  '), '.' || char(10), '  '), ':' || char(10), '  '),
            '.' || char(13), '  '), ':' || char(13), '  '), '.' || char(9), '  '), ':' || char(9), '  '),
        replace(replace(replace(replace(replace(replace(replace(replace(d.body || ' ',
            '. ', '  '), ': ', '  '), '.' || char(10), '  '), ':' || char(10), '  '),
            '.' || char(13), '  '), ':' || char(13), '  '), '.' || char(9), '  '), ':' || char(9), '  ')
    FROM search_doc d WHERE d.incident_id = new.id
      AND NOT EXISTS (SELECT 1 FROM search_pending p WHERE p.doc_id = d.id);
    UPDATE search_doc SET status = new.status, severity = new.severity WHERE incident_id = new.id;
    INSERT OR IGNORE INTO search_pending(doc_id) SELECT id FROM search_doc WHERE incident_id = new.id;
END;
