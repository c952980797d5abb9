-- 0002 government channel: platform channels, the outbox, the platform
-- event stream, timers, escalations, signing keys and receipts.

CREATE TABLE channels (
    party_id              TEXT PRIMARY KEY REFERENCES parties (id),
    webhook_url           TEXT,
    emails                TEXT NOT NULL,
    public_key            TEXT,
    secret                TEXT,
    previous_secret       TEXT,
    previous_valid_until  INTEGER,
    updated_at            INTEGER NOT NULL
);

CREATE TABLE outbox (
    id               TEXT PRIMARY KEY,
    channel          TEXT NOT NULL CHECK (channel IN ('webhook', 'email')),
    party_id         TEXT NOT NULL REFERENCES parties (id),
    notice_id        TEXT REFERENCES notices (id),
    event_id         TEXT NOT NULL,
    event_type       TEXT NOT NULL,
    payload          TEXT NOT NULL,
    state            TEXT NOT NULL CHECK (state IN ('pending', 'delivered', 'dead', 'cancelled')),
    attempts         INTEGER NOT NULL,
    next_attempt_at  INTEGER NOT NULL,
    lease_owner      TEXT,
    lease_until      INTEGER,
    last_error       TEXT,
    created_at       INTEGER NOT NULL,
    delivered_at     INTEGER
);
CREATE INDEX outbox_due ON outbox (state, next_attempt_at);
CREATE INDEX outbox_notice ON outbox (notice_id);

CREATE TABLE platform_events (
    seq         INTEGER PRIMARY KEY AUTOINCREMENT,
    id          TEXT NOT NULL UNIQUE,
    party_id    TEXT NOT NULL REFERENCES parties (id),
    notice_id   TEXT REFERENCES notices (id),
    event_type  TEXT NOT NULL,
    payload     TEXT NOT NULL,
    created_at  INTEGER NOT NULL
);
CREATE INDEX platform_events_party ON platform_events (party_id, seq);

CREATE TABLE timers (
    id         TEXT PRIMARY KEY,
    notice_id  TEXT NOT NULL REFERENCES notices (id),
    step       TEXT NOT NULL,
    due_at     INTEGER NOT NULL,
    state      TEXT NOT NULL CHECK (state IN ('pending', 'fired', 'cancelled')),
    fired_at   INTEGER,
    UNIQUE (notice_id, step)
);
CREATE INDEX timers_due ON timers (state, due_at);

CREATE TABLE escalations (
    id          TEXT PRIMARY KEY,
    notice_id   TEXT NOT NULL REFERENCES notices (id),
    reason      TEXT NOT NULL,
    items       TEXT NOT NULL,
    state       TEXT NOT NULL CHECK (state IN ('open', 'decided')),
    decision    TEXT,
    note        TEXT,
    decided_by  TEXT,
    decided_at  INTEGER,
    created_at  INTEGER NOT NULL
);
CREATE INDEX escalations_state ON escalations (state, created_at);

CREATE TABLE signing_keys (
    kid         TEXT PRIMARY KEY,
    public_key  TEXT NOT NULL,
    created_at  INTEGER NOT NULL
);

CREATE TABLE receipts (
    id                  TEXT PRIMARY KEY,
    notice_id           TEXT NOT NULL REFERENCES notices (id),
    receipt             TEXT NOT NULL,
    platform_signature  TEXT,
    created_at          INTEGER NOT NULL
);
CREATE INDEX receipts_notice ON receipts (notice_id);

ALTER TABLE notices ADD COLUMN document TEXT;
ALTER TABLE notices ADD COLUMN document_sha256 TEXT;
