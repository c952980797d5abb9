-- 0001 foundation: parties, tokens, notices, items, the audit chain.
-- Times are Unix milliseconds (BIGINT); JSON columns hold canonical text,
-- not jsonb, so that stored bytes hash exactly as they were written.

CREATE TABLE parties (
    id          TEXT PRIMARY KEY,
    kind        TEXT NOT NULL CHECK (kind IN ('authority', 'flagger', 'platform', 'isp')),
    name        TEXT NOT NULL,
    contacts    TEXT NOT NULL,
    domains     TEXT NOT NULL,
    handles     TEXT NOT NULL,
    created_at  BIGINT NOT NULL,
    updated_at  BIGINT NOT NULL
);
CREATE UNIQUE INDEX parties_kind_name ON parties (kind, name);

CREATE TABLE tokens (
    id           TEXT PRIMARY KEY,
    party_id     TEXT NOT NULL REFERENCES parties (id),
    role         TEXT NOT NULL,
    label        TEXT NOT NULL,
    secret_hash  TEXT NOT NULL UNIQUE,
    created_at   BIGINT NOT NULL,
    revoked_at   BIGINT
);
CREATE INDEX tokens_party ON tokens (party_id);

CREATE TABLE notices (
    id                     TEXT PRIMARY KEY,
    issuer_party_id        TEXT NOT NULL REFERENCES parties (id),
    issuer_token_id        TEXT REFERENCES tokens (id),
    issuer_label           TEXT NOT NULL,
    platform_id            TEXT NOT NULL REFERENCES parties (id),
    category               TEXT NOT NULL,
    taxonomy_version       TEXT NOT NULL,
    urgency                TEXT NOT NULL,
    legal_basis_reference  TEXT NOT NULL,
    legal_basis_text       TEXT NOT NULL,
    explanation            TEXT NOT NULL,
    territorial_scope      TEXT NOT NULL,
    may_notify_user        BIGINT NOT NULL,
    state                  TEXT NOT NULL,
    sla_version            TEXT,
    due_at                 BIGINT,
    idempotency_key        TEXT,
    request_hash           TEXT,
    created_at             BIGINT NOT NULL,
    submitted_at           BIGINT,
    delivered_at           BIGINT,
    acknowledged_at        BIGINT,
    closed_at              BIGINT,
    updated_at             BIGINT NOT NULL
);
CREATE UNIQUE INDEX notices_idempotency ON notices (issuer_party_id, idempotency_key)
    WHERE idempotency_key IS NOT NULL;
CREATE INDEX notices_platform_state ON notices (platform_id, state);
CREATE INDEX notices_state_due ON notices (state, due_at);

CREATE TABLE notice_items (
    id            TEXT PRIMARY KEY,
    notice_id     TEXT NOT NULL REFERENCES notices (id),
    position      BIGINT NOT NULL,
    platform_id   TEXT NOT NULL REFERENCES parties (id),
    kind          TEXT NOT NULL,
    value         TEXT NOT NULL,
    normalized    TEXT NOT NULL,
    native_id     TEXT,
    evidence      TEXT NOT NULL,
    state         TEXT NOT NULL,
    reason        TEXT,
    decided_at    BIGINT,
    duplicate_of  TEXT REFERENCES notice_items (id),
    UNIQUE (notice_id, position)
);
CREATE INDEX notice_items_target ON notice_items (platform_id, kind, normalized);
CREATE INDEX notice_items_duplicate_of ON notice_items (duplicate_of);

CREATE TABLE audit_events (
    seq           BIGINT PRIMARY KEY,
    at            BIGINT NOT NULL,
    actor         TEXT NOT NULL,
    action        TEXT NOT NULL,
    subject_type  TEXT NOT NULL,
    subject_id    TEXT NOT NULL,
    before        TEXT NOT NULL,
    after         TEXT NOT NULL,
    prev_hash     TEXT NOT NULL,
    hash          TEXT NOT NULL
);
CREATE INDEX audit_events_subject ON audit_events (subject_type, subject_id, seq);

-- The log is append-only for the application; anyone who bypasses this
-- (by dropping the trigger) is caught by `tapis audit verify`.
CREATE FUNCTION audit_events_append_only() RETURNS trigger LANGUAGE plpgsql AS $fn$
BEGIN
    RAISE EXCEPTION 'audit events are append-only';
END
$fn$;
CREATE TRIGGER audit_events_no_change BEFORE UPDATE OR DELETE ON audit_events
    FOR EACH ROW EXECUTE FUNCTION audit_events_append_only();
