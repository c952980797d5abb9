-- 0025 who answers for a platform: its legal representative in the
-- country and its technical and administrative contacts, set by the
-- platform itself and each verified with a one-time code sent to its
-- email. `details` is the contact as JSON, sealed under the secrets key
-- when one is configured (personal data: shown only to the platform and
-- the authority); the code is kept as a SHA-256 only.
CREATE TABLE platform_contacts (
    platform_id      TEXT NOT NULL REFERENCES parties (id),
    role             TEXT NOT NULL CHECK (role IN ('legal', 'technical', 'administrative')),
    details          TEXT NOT NULL,
    state            TEXT NOT NULL CHECK (state IN ('unverified', 'code_sent', 'verified')),
    code_hash        TEXT,
    code_sent_at     INTEGER,
    code_expires_at  INTEGER,
    code_attempts    INTEGER NOT NULL DEFAULT 0,
    verified_at      INTEGER,
    updated_at       INTEGER NOT NULL,
    updated_by       TEXT NOT NULL,
    PRIMARY KEY (platform_id, role)
);

-- A notice copied to the representative, once per cause.
CREATE TABLE representative_copies (
    notice_id    TEXT NOT NULL REFERENCES notices (id),
    cause        TEXT NOT NULL,
    platform_id  TEXT NOT NULL REFERENCES parties (id),
    created_at   INTEGER NOT NULL,
    PRIMARY KEY (notice_id, cause)
);

-- An email to someone other than the party's own addresses (the
-- representative): the address (and a code), sealed like `details`.
ALTER TABLE outbox ADD COLUMN recipient TEXT;

-- The representative an escalation named when it was written (sealed).
ALTER TABLE escalations ADD COLUMN representative TEXT;
