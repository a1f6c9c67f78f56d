-- OpsLens schema v2: integrations. Secrets never go here: outbox rows name their target
-- (`slack`, `webhook:0`), not the URL, and deliveries keep the body, not the signature headers.

-- Incoming webhook deliveries, one row per (provider, delivery id): redeliveries hit the
-- unique key and change nothing.
CREATE TABLE webhook_delivery (
    id           INTEGER PRIMARY KEY,
    provider     TEXT NOT NULL,
    delivery_id  TEXT NOT NULL,
    event_type   TEXT NOT NULL DEFAULT '',
    received_at  TEXT NOT NULL,
    body         TEXT NOT NULL,
    status       TEXT NOT NULL,          -- processed | ignored
    note         TEXT,
    UNIQUE (provider, delivery_id)
);

-- Persistent outbox of outgoing posts (Slack, Teams, custom webhooks).
CREATE TABLE outbox (
    id              INTEGER PRIMARY KEY,
    message_id      TEXT NOT NULL UNIQUE,
    target          TEXT NOT NULL,
    event_type      TEXT NOT NULL,
    incident_id     INTEGER REFERENCES incident(id) ON DELETE SET NULL,
    payload         TEXT NOT NULL,
    status          TEXT NOT NULL,       -- pending | delivered | dead
    attempts        INTEGER NOT NULL DEFAULT 0,
    next_attempt_at TEXT NOT NULL,
    last_status     INTEGER,
    last_error      TEXT,
    created_at      TEXT NOT NULL,
    updated_at      TEXT NOT NULL,
    delivered_at    TEXT
);
CREATE INDEX outbox_due ON outbox(status, next_attempt_at);

-- Sync bookkeeping per integration.
CREATE TABLE integration_state (
    name            TEXT PRIMARY KEY,
    last_sync_at    TEXT,
    last_success_at TEXT,
    cursor          TEXT,
    items_synced    INTEGER NOT NULL DEFAULT 0,
    last_error      TEXT,
    last_error_at   TEXT
);

-- Items brought in from other systems, by their key there: makes syncs idempotent and keeps
-- the time and kind of each change/alert for correlation.
CREATE TABLE external_item (
    incident_id   INTEGER NOT NULL REFERENCES incident(id) ON DELETE CASCADE,
    key           TEXT NOT NULL,
    signal        TEXT NOT NULL,         -- change | alert | other | correlation
    occurred_at   TEXT NOT NULL,
    message       TEXT NOT NULL,
    evidence_id   INTEGER REFERENCES evidence(id) ON DELETE SET NULL,
    hypothesis_id INTEGER REFERENCES hypothesis(id) ON DELETE SET NULL,
    PRIMARY KEY (incident_id, key)
);
