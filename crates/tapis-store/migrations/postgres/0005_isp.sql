-- 0005 ISPs: their resolvers, NOTIFY targets, transfer keys and allow
-- lists, and their acknowledgements of zone serials.

CREATE TABLE isp_resolvers (
    party_id             TEXT PRIMARY KEY REFERENCES parties (id),
    resolvers            TEXT NOT NULL,
    notify               TEXT NOT NULL,
    allow_transfer_from  TEXT NOT NULL,
    tsig_key_name        TEXT NOT NULL UNIQUE,
    tsig_secret          TEXT NOT NULL,
    updated_at           BIGINT NOT NULL
);

CREATE TABLE rpz_acks (
    id          TEXT PRIMARY KEY,
    party_id    TEXT NOT NULL REFERENCES parties (id),
    serial      BIGINT NOT NULL,
    acked_at    BIGINT NOT NULL,
    label       TEXT NOT NULL
);
CREATE INDEX rpz_acks_party ON rpz_acks (party_id, serial);
