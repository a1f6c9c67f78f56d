-- When impact stopped, beside acknowledged_at and resolved_at, for time-to-mitigate.
ALTER TABLE incident ADD COLUMN mitigated_at TEXT;
-- Incidents past mitigation: the first move to `mitigated` on their timeline, else their
-- resolution (resolved without a mitigated step), else their last change.
UPDATE incident SET mitigated_at = COALESCE(
    (SELECT MIN(t.occurred_at) FROM timeline_event t
     WHERE t.incident_id = incident.id AND t.kind = 'status_changed'
       AND (t.message LIKE '% to mitigated' OR t.message LIKE '% to mitigated (%')),
    resolved_at, updated_at)
WHERE status IN ('mitigated', 'resolved', 'closed');
