-- 0009 due process on the blocking path: authoriser parties, orders that
-- need an independent authorisation, platforms told before a block, their
-- responses, and the record of how each order came to be published.

-- widen the party kinds
ALTER TABLE parties DROP CONSTRAINT parties_kind_check;
ALTER TABLE parties ADD CONSTRAINT parties_kind_check
    CHECK (kind IN ('authority', 'flagger', 'platform', 'isp', 'authoriser'));

ALTER TABLE orders ADD COLUMN emergency BIGINT NOT NULL DEFAULT 0;
-- why the order needs an authorisation (JSON list; empty: it does not)
ALTER TABLE orders ADD COLUMN needs_authorisation TEXT NOT NULL DEFAULT '[]';
ALTER TABLE orders ADD COLUMN platforms_notified_at BIGINT;

-- platforms whose names an order would affect (told before it is approved)
CREATE TABLE order_platforms (
    order_id  TEXT NOT NULL REFERENCES orders (id),
    party_id  TEXT NOT NULL REFERENCES parties (id),
    PRIMARY KEY (order_id, party_id)
);

CREATE TABLE order_authorisations (
    id            TEXT PRIMARY KEY,
    order_id      TEXT NOT NULL REFERENCES orders (id),
    party_id      TEXT NOT NULL REFERENCES parties (id),
    token_label   TEXT NOT NULL,
    decision      TEXT NOT NULL CHECK (decision IN ('authorise', 'refuse')),
    reasons       TEXT NOT NULL,
    order_sha256  TEXT NOT NULL,
    public_key    TEXT NOT NULL,
    signature     TEXT NOT NULL,
    receipt       TEXT NOT NULL,
    created_at    BIGINT NOT NULL
);
CREATE INDEX order_authorisations_order ON order_authorisations (order_id, created_at);

CREATE TABLE order_responses (
    id           TEXT PRIMARY KEY,
    order_id     TEXT NOT NULL REFERENCES orders (id),
    party_id     TEXT NOT NULL REFERENCES parties (id),
    token_label  TEXT NOT NULL,
    kind         TEXT NOT NULL CHECK (kind IN ('comply', 'dispute', 'clarification')),
    text         TEXT NOT NULL,
    created_at   BIGINT NOT NULL
);
CREATE INDEX order_responses_order ON order_responses (order_id, created_at);

-- written only by the RPZ compiler when it lets an order into the zone:
-- the zone is recomputed from published orders alone
CREATE TABLE order_publications (
    order_id          TEXT PRIMARY KEY REFERENCES orders (id),
    basis             TEXT NOT NULL,
    authorisation_id  TEXT,
    until             BIGINT,
    published_at      BIGINT NOT NULL
);
INSERT INTO order_publications (order_id, basis, authorisation_id, until, published_at)
SELECT id, 'before_due_process', NULL, NULL, COALESCE(activated_at, updated_at)
  FROM orders WHERE state = 'in_force';
