-- 0019 clarifications, disputes and appeals (issue 13, items 3 and 4).
--
-- A platform's question or dispute about a notice item holds the notice's
-- clock: `notice_pauses` has a row while any is open (since when, how many
-- are open), and `held_jobs` names the ladder jobs set aside meanwhile
-- (cancelled in `jobs`, and put back, later by the time paused, when the
-- last question is answered). An appeal is known publicly by its
-- reference; no client address and no contact address is stored (the
-- appellant keeps the reference).
CREATE TABLE clarifications (
    id           TEXT PRIMARY KEY,
    notice_id    TEXT NOT NULL REFERENCES notices (id),
    item_id      TEXT NOT NULL REFERENCES notice_items (id),
    platform_id  TEXT NOT NULL REFERENCES parties (id),
    question     TEXT NOT NULL,
    asked_by     TEXT NOT NULL,
    asked_at     INTEGER NOT NULL,
    state        TEXT NOT NULL CHECK (state IN ('open', 'answered')),
    answer       TEXT,
    answered_by  TEXT,
    answered_at  INTEGER
);
CREATE INDEX clarifications_notice ON clarifications (notice_id, state);
CREATE INDEX clarifications_state ON clarifications (state, asked_at);

CREATE TABLE disputes (
    id                    TEXT PRIMARY KEY,
    notice_id             TEXT NOT NULL REFERENCES notices (id),
    item_id               TEXT NOT NULL REFERENCES notice_items (id),
    platform_id           TEXT NOT NULL REFERENCES parties (id),
    reason                TEXT NOT NULL,
    opened_by             TEXT NOT NULL,
    opened_at             INTEGER NOT NULL,
    state                 TEXT NOT NULL CHECK (state IN ('open', 'upheld', 'withdrawn', 'amended')),
    review_reason         TEXT,
    amended_explanation   TEXT,
    amended_basis_ref     TEXT,
    amended_basis_text    TEXT,
    reviewed_by           TEXT,
    reviewer_person       TEXT,
    reviewed_at           INTEGER
);
CREATE INDEX disputes_notice ON disputes (notice_id, state);
CREATE INDEX disputes_state ON disputes (state, opened_at);

CREATE TABLE notice_pauses (
    notice_id   TEXT PRIMARY KEY REFERENCES notices (id),
    since       INTEGER NOT NULL,
    open_holds  INTEGER NOT NULL
);

CREATE TABLE held_jobs (
    job_id     TEXT PRIMARY KEY REFERENCES jobs (id),
    notice_id  TEXT NOT NULL REFERENCES notices (id)
);
CREATE INDEX held_jobs_notice ON held_jobs (notice_id);

CREATE TABLE appeals (
    id                  TEXT PRIMARY KEY,
    reference           TEXT NOT NULL UNIQUE,
    subject_kind        TEXT NOT NULL CHECK (subject_kind IN ('item', 'order')),
    notice_id           TEXT REFERENCES notices (id),
    item_id             TEXT REFERENCES notice_items (id),
    order_id            TEXT REFERENCES orders (id),
    appellant_kind      TEXT NOT NULL CHECK (appellant_kind IN ('content_owner', 'platform', 'isp', 'public')),
    appellant_party_id  TEXT REFERENCES parties (id),
    appellant_token_id  TEXT,
    reason              TEXT NOT NULL,
    evidence            TEXT NOT NULL,
    state               TEXT NOT NULL CHECK (state IN ('received', 'under_review', 'upheld', 'rejected', 'referred')),
    received_at         INTEGER NOT NULL,
    due_at              INTEGER NOT NULL,
    overdue_at          INTEGER,
    review_started_at   INTEGER,
    reviewer_token_id   TEXT,
    reviewer_person     TEXT,
    decided_at          INTEGER,
    decider_token_id    TEXT,
    decider_person      TEXT,
    outcome             TEXT,
    reasons             TEXT,
    referred_to         TEXT
);
CREATE INDEX appeals_state ON appeals (state, due_at);
CREATE INDEX appeals_order ON appeals (order_id);
CREATE INDEX appeals_notice ON appeals (notice_id);
