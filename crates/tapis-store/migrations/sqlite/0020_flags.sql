-- 0020 flags: reports from flagger parties and the public, reviewed by an
-- officer into notices. A public report stores no client address and no
-- account; its optional contact is sealed under the secrets key (or kept
-- only as a SHA-256 when no key is configured). The reference is the only
-- thing a public reporter needs to read the status.
CREATE TABLE flags (
    id                TEXT PRIMARY KEY,
    reference         TEXT NOT NULL UNIQUE,
    source_kind       TEXT NOT NULL,
    party_id          TEXT REFERENCES parties (id),
    token_id          TEXT,
    contact           TEXT,
    category          TEXT NOT NULL,
    taxonomy_version  TEXT NOT NULL,
    reasons           TEXT NOT NULL,
    evidence          TEXT NOT NULL,
    state             TEXT NOT NULL,
    notice_id         TEXT REFERENCES notices (id),
    platform_id       TEXT REFERENCES parties (id),
    decision_reason   TEXT,
    decided_at        INTEGER,
    decided_by        TEXT,
    idempotency_key   TEXT,
    request_hash      TEXT,
    batch_position    INTEGER NOT NULL DEFAULT 0,
    created_at        INTEGER NOT NULL
);
CREATE INDEX flags_party ON flags (party_id, created_at);
CREATE INDEX flags_state ON flags (state, created_at);
CREATE INDEX flags_idempotency ON flags (party_id, idempotency_key);
CREATE INDEX flags_notice ON flags (notice_id);

CREATE TABLE flag_targets (
    flag_id      TEXT NOT NULL REFERENCES flags (id),
    position     INTEGER NOT NULL,
    kind         TEXT NOT NULL,
    value        TEXT NOT NULL,
    normalized   TEXT NOT NULL,
    native_id    TEXT,
    PRIMARY KEY (flag_id, position)
);
CREATE INDEX flag_targets_normalized ON flag_targets (kind, normalized);
