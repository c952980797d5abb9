-- 0007 what the primary sees each ISP's secondaries do: every transfer
-- and NOTIFY answer (a log), and the latest SOA poll per ISP. Compliance
-- starts from this evidence; resolver probes come on top.

CREATE TABLE rpz_sync_log (
    id           TEXT PRIMARY KEY,
    party_id     TEXT NOT NULL REFERENCES parties (id),
    peer         TEXT NOT NULL,
    -- AXFR, IXFR, IXFR(AXFR) or NOTIFY
    kind         TEXT NOT NULL,
    -- the serial the secondary said it held (IXFR)
    from_serial  INTEGER,
    serial       INTEGER NOT NULL,
    -- transfer sent to the end / NOTIFY answered
    complete     INTEGER NOT NULL,
    detail       TEXT NOT NULL,
    at           INTEGER NOT NULL
);
CREATE INDEX rpz_sync_log_party ON rpz_sync_log (party_id, serial);

CREATE TABLE rpz_polls (
    party_id  TEXT PRIMARY KEY REFERENCES parties (id),
    peer      TEXT NOT NULL,
    serial    INTEGER NOT NULL,
    polls     INTEGER NOT NULL,
    at        INTEGER NOT NULL
);
