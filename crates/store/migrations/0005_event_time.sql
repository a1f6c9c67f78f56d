-- Event time: when something happened, beside when it was recorded. Timeline entries already
-- had `occurred_at`; evidence gets one (existing rows: the moment they were recorded), and both
-- say where the time came from: 'recorded', 'user' (a person gave it) or 'derived' (read from
-- the content or from an integration's event time).
ALTER TABLE evidence ADD COLUMN occurred_at TEXT NOT NULL DEFAULT '';
ALTER TABLE evidence ADD COLUMN occurred_at_source TEXT NOT NULL DEFAULT 'recorded';
UPDATE evidence SET occurred_at = created_at;
CREATE INDEX evidence_occurred ON evidence(incident_id, occurred_at);

ALTER TABLE timeline_event ADD COLUMN occurred_at_source TEXT NOT NULL DEFAULT 'recorded';
-- Observations were placed at the times read off screenshots or brought by integrations;
-- other entries with a time of their own were given it through the API.
UPDATE timeline_event SET occurred_at_source = CASE WHEN kind = 'observation' THEN 'derived' ELSE 'user' END
WHERE occurred_at <> created_at;
-- Evidence brought by integrations carries the event's time on its timeline entry.
UPDATE evidence SET occurred_at = (
        SELECT t.occurred_at FROM timeline_event t
        WHERE t.evidence_id = evidence.id AND t.kind = 'evidence_added' ORDER BY t.id LIMIT 1),
    occurred_at_source = 'derived'
WHERE id IN (SELECT evidence_id FROM external_item WHERE evidence_id IS NOT NULL)
  AND EXISTS (SELECT 1 FROM timeline_event t WHERE t.evidence_id = evidence.id AND t.kind = 'evidence_added');
UPDATE timeline_event SET occurred_at_source = 'derived'
WHERE kind = 'evidence_added' AND evidence_id IN (SELECT evidence_id FROM external_item WHERE evidence_id IS NOT NULL);

-- Writers that predate event time insert evidence without one: it then happened when recorded.
CREATE TRIGGER evidence_occurred_default AFTER INSERT ON evidence WHEN new.occurred_at = '' BEGIN
    UPDATE evidence SET occurred_at = new.created_at WHERE id = new.id;
END;
