-- The persistent analysis queue: one row per model run over a screenshot (the full analysis,
-- or a question about it). A restart turns `running` rows back into `queued`.
CREATE TABLE analysis_job (
    id          INTEGER PRIMARY KEY,
    evidence_id INTEGER NOT NULL REFERENCES evidence(id) ON DELETE CASCADE,
    question    TEXT,
    state       TEXT NOT NULL,
    attempts    INTEGER NOT NULL DEFAULT 0,
    model       TEXT,
    answer      TEXT,
    error       TEXT,
    timings     TEXT,
    raw_output  TEXT,
    created_at  TEXT NOT NULL,
    started_at  TEXT,
    finished_at TEXT
);
CREATE INDEX analysis_job_pending ON analysis_job(state, id) WHERE state IN ('queued', 'running');
CREATE INDEX analysis_job_evidence ON analysis_job(evidence_id, id);

-- Screenshots stored before the queue existed get a job, so they are analysed too.
INSERT INTO analysis_job(evidence_id, state, created_at)
SELECT id, 'queued', created_at FROM evidence
WHERE analysis_state IN ('waiting-for-model', 'queued', 'running');
UPDATE evidence SET analysis_state = 'waiting-for-model'
WHERE analysis_state IN ('queued', 'running');
