-- Memory across incidents: screenshot fingerprints, merged incidents, redacted screenshots.

-- A 32×32 grey thumbnail of each stored image, keyed by the content hash of its file: the
-- perceptual fingerprint the similar-incidents ranking compares. Computed once per blob (at
-- upload, or by the backfill for blobs stored before this table existed).
CREATE TABLE image_fingerprint (
    sha256      TEXT PRIMARY KEY,
    thumb       BLOB NOT NULL,
    created_at  TEXT NOT NULL
);

-- An incident merged into another: its evidence, timeline, hypotheses and actions moved to
-- `merged_into`; reads of it point there.
ALTER TABLE incident ADD COLUMN merged_into INTEGER REFERENCES incident(id) ON DELETE SET NULL;

-- A screenshot's redacted copy (a second blob, the original kept): what exports and posts use.
ALTER TABLE evidence ADD COLUMN redacted_blob TEXT;
ALTER TABLE evidence ADD COLUMN redacted_sha256 TEXT;
ALTER TABLE evidence ADD COLUMN redaction_boxes TEXT;
ALTER TABLE evidence ADD COLUMN redacted_at TEXT;
CREATE INDEX evidence_redacted_blob ON evidence(redacted_blob) WHERE redacted_blob IS NOT NULL;
