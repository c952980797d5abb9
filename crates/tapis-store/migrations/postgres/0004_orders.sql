-- 0004 blocking orders and the Response Policy Zone: orders and their
-- targets, the zone as it stands (rpz_records), every serial and its diff
-- (rpz_serials, rpz_journal) for IXFR, and generic scheduled jobs.

CREATE TABLE orders (
    id                     TEXT PRIMARY KEY,
    state                  TEXT NOT NULL,
    action                 TEXT NOT NULL,
    category               TEXT NOT NULL,
    legal_basis_reference  TEXT NOT NULL,
    legal_basis_text       TEXT NOT NULL,
    explanation            TEXT,
    effective_at           BIGINT NOT NULL,
    expires_at             BIGINT NOT NULL,
    review_at              BIGINT NOT NULL,
    notices                TEXT NOT NULL,
    escalation_id          TEXT,
    target_count           BIGINT NOT NULL,
    proposer_party_id      TEXT NOT NULL REFERENCES parties (id),
    proposer_token_id      TEXT NOT NULL,
    proposer_label         TEXT NOT NULL,
    approver_token_id      TEXT,
    approver_label         TEXT,
    approved_at            BIGINT,
    reviewed_at            BIGINT,
    activated_at           BIGINT,
    ended_at               BIGINT,
    end_reason             TEXT,
    created_at             BIGINT NOT NULL,
    updated_at             BIGINT NOT NULL
);
CREATE INDEX orders_state ON orders (state);

CREATE TABLE order_targets (
    order_id            TEXT NOT NULL REFERENCES orders (id),
    name                TEXT NOT NULL,
    include_subdomains  BIGINT NOT NULL,
    PRIMARY KEY (order_id, name)
);
CREATE INDEX order_targets_name ON order_targets (name);

CREATE TABLE rpz_records (
    owner     TEXT PRIMARY KEY,
    action    TEXT NOT NULL,
    order_id  TEXT NOT NULL REFERENCES orders (id)
);

CREATE TABLE rpz_serials (
    serial      BIGINT PRIMARY KEY,
    created_at  BIGINT NOT NULL,
    changes     BIGINT NOT NULL,
    reason      TEXT NOT NULL
);

CREATE TABLE rpz_journal (
    serial  BIGINT NOT NULL,
    seq     BIGINT NOT NULL,
    op      TEXT NOT NULL CHECK (op IN ('add', 'del')),
    owner   TEXT NOT NULL,
    action  TEXT NOT NULL,
    PRIMARY KEY (serial, seq)
);

CREATE TABLE jobs (
    id          TEXT PRIMARY KEY,
    kind        TEXT NOT NULL,
    subject_id  TEXT NOT NULL,
    due_at      BIGINT NOT NULL,
    state       TEXT NOT NULL CHECK (state IN ('pending', 'fired', 'cancelled')),
    fired_at    BIGINT,
    UNIQUE (kind, subject_id)
);
CREATE INDEX jobs_due ON jobs (state, due_at);
