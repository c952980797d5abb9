-- 0027 signal banks: the filtering management service. A bank holds
-- content signals (url, domain, sha256, md5, pdq) with labels and the
-- notice or order that is their legal basis. Removing a signal is a
-- tombstone (removed_at and a change), never a delete. Every addition and
-- tombstone takes the bank's next sequence number in bank_changes: the
-- sync feed reads it in order and every process's in-memory index catches
-- up from it.
CREATE TABLE banks (
    id              TEXT PRIMARY KEY,
    name            TEXT NOT NULL UNIQUE,
    description     TEXT NOT NULL,
    enabled         INTEGER NOT NULL,
    pdq_threshold   INTEGER NOT NULL,
    shared_with     TEXT NOT NULL,
    contributors    TEXT NOT NULL,
    review_after    INTEGER NOT NULL,
    seq             INTEGER NOT NULL,
    created_at      INTEGER NOT NULL,
    created_by      TEXT NOT NULL,
    changed_at      INTEGER NOT NULL
);

CREATE TABLE bank_signals (
    id                     TEXT PRIMARY KEY,
    bank_id                TEXT NOT NULL REFERENCES banks (id),
    kind                   TEXT NOT NULL,
    value                  TEXT NOT NULL,
    quality                INTEGER,
    category               TEXT,
    tier                   TEXT,
    grp                    TEXT,
    source_type            TEXT NOT NULL,
    source_id              TEXT NOT NULL,
    legal_basis_reference  TEXT NOT NULL,
    legal_basis_text       TEXT NOT NULL,
    added_by               TEXT NOT NULL,
    added_party            TEXT NOT NULL REFERENCES parties (id),
    added_at               INTEGER NOT NULL,
    added_seq              INTEGER NOT NULL,
    removed_at             INTEGER,
    removed_by             TEXT,
    removed_seq            INTEGER,
    removed_reason         TEXT,
    review_flagged_at      INTEGER
);
CREATE UNIQUE INDEX bank_signals_live ON bank_signals (bank_id, kind, value) WHERE removed_at IS NULL;

CREATE TABLE bank_changes (
    bank_id    TEXT NOT NULL REFERENCES banks (id),
    seq        INTEGER NOT NULL,
    op         TEXT NOT NULL,
    signal_id  TEXT NOT NULL REFERENCES bank_signals (id),
    at         INTEGER NOT NULL,
    PRIMARY KEY (bank_id, seq)
);

CREATE TABLE match_feedback (
    id           TEXT PRIMARY KEY,
    signal_id    TEXT NOT NULL REFERENCES bank_signals (id),
    bank_id      TEXT NOT NULL REFERENCES banks (id),
    platform_id  TEXT NOT NULL REFERENCES parties (id),
    verdict      TEXT NOT NULL,
    note         TEXT,
    token_id     TEXT NOT NULL,
    at           INTEGER NOT NULL
);
CREATE INDEX match_feedback_signal ON match_feedback (signal_id);
CREATE INDEX match_feedback_bank ON match_feedback (bank_id);
