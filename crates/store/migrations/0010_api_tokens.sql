-- Per-person API tokens for a shared server: each hangs off a person (whose name becomes the
-- author of what the token writes) with a role; only a SHA-256 of the token is kept, so the
-- database never holds a usable credential. Revoked tokens stay for the record.
CREATE TABLE api_token (
    id           INTEGER PRIMARY KEY,
    person_id    INTEGER NOT NULL REFERENCES person(id) ON DELETE CASCADE,
    role         TEXT NOT NULL CHECK (role IN ('admin', 'member', 'viewer')),
    token_sha256 TEXT NOT NULL UNIQUE,
    created_at   TEXT NOT NULL,
    revoked_at   TEXT,
    last_used_at TEXT
);
-- One live token per person: a new one needs the old one revoked first.
CREATE UNIQUE INDEX api_token_live ON api_token(person_id) WHERE revoked_at IS NULL;
