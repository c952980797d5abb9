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
    effective_at           INTEGER NOT NULL,
    expires_at             INTEGER NOT NULL,
    review_at              INTEGER NOT NULL,
    notices                TEXT NOT NULL,
    escalation_id          TEXT,
    target_count           INTEGER NOT NULL,
    proposer_party_id      TEXT NOT NULL REFERENCES parties (id),
    proposer_token_id      TEXT NOT NULL,
    proposer_label         TEXT NOT NULL,
    approver_token_id      TEXT,
    approver_label         TEXT,
    approved_at            INTEGER,
    reviewed_at            INTEGER,
    activated_at           INTEGER,
    ended_at               INTEGER,
    end_reason             TEXT,
    created_at             INTEGER NOT NULL,
    updated_at             INTEGER NOT NULL
);
CREATE INDEX orders_state ON orders (state);

CREATE TABLE order_targets (
    order_id            TEXT NOT NULL REFERENCES orders (id),
    name                TEXT NOT NULL,
    include_subdomains  INTEGER NOT NULL,
    PRIMARY KEY (order_id, name)
);
CREATE INDEX order_targets_name ON order_targets (name);

CREATE TABLE rpz_records (
    owner     TEXT PRIMARY KEY,
    action    TEXT NOT NULL,
    order_id  TEXT NOT NULL REFERENCES orders (id)
);

CREATE TABLE rpz_serials (
    serial      INTEGER PRIMARY KEY,
    created_at  INTEGER NOT NULL,
    changes     INTEGER NOT NULL,
    reason      TEXT NOT NULL
);

CREATE TABLE rpz_journal (
    serial  INTEGER NOT NULL,
    seq     INTEGER NOT NULL,
    op      TEXT NOT NULL CHECK (op IN ('add', 'del')),
    owner   TEXT NOT NULL,
    action  TEXT NOT NULL,
    PRIMARY KEY (serial, seq)
);

CREATE TABLE jobs (
    id          TEXT PRIMARY KEY,
    kind        TEXT NOT NULL,
    subject_id  TEXT NOT NULL,
    due_at      INTEGER NOT NULL,
    state       TEXT NOT NULL CHECK (state IN ('pending', 'fired', 'cancelled')),
    fired_at    INTEGER,
    UNIQUE (kind, subject_id)
);
CREATE INDEX jobs_due ON jobs (state, due_at);
