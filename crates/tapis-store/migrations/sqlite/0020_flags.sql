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

-- Trusted-flagger status: granted by the authority for one platform and a
-- scope, confirmed by the platform itself, suspended and reinstated on the
-- record. A notice built from flags a confirmed grant covers is marked.
CREATE TABLE trusted_flagger_grants (
    id              TEXT PRIMARY KEY,
    flagger_id      TEXT NOT NULL REFERENCES parties (id),
    platform_id     TEXT NOT NULL REFERENCES parties (id),
    categories      TEXT NOT NULL,
    item_kinds      TEXT NOT NULL,
    state           TEXT NOT NULL,
    granted_at      INTEGER NOT NULL,
    granted_by      TEXT NOT NULL,
    confirmed_at    INTEGER,
    confirmed_by    TEXT,
    changed_at      INTEGER NOT NULL,
    reason          TEXT
);
CREATE INDEX trusted_flagger_grants_pair ON trusted_flagger_grants (flagger_id, platform_id);

ALTER TABLE notices ADD COLUMN trusted_flagger INTEGER NOT NULL DEFAULT 0;
