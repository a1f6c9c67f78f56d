-- Idempotent uploads (issue 17, the desktop against a team server): a laptop that lost its
-- connection mid-upload sends the same capture again with the same `Idempotency-Key`; the
-- key is kept on the evidence row it made, so the repeat finds that row instead of adding a
-- second. Unique among the rows that have one; uploads without a key are unaffected.

ALTER TABLE evidence ADD COLUMN upload_key TEXT;
CREATE UNIQUE INDEX evidence_upload_key ON evidence(upload_key) WHERE upload_key IS NOT NULL;
