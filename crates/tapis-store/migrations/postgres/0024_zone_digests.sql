-- 0024 the ZONEMD digest (RFC 8976, SIMPLE, SHA-384) of each RPZ serial the
-- primary served or announced, under the zone settings it was computed
-- with (`params`: a fingerprint of the zone name, SOA, TTL, block page and
-- explanation settings, which the digest covers besides the records).
-- Each row is written with its `rpz.digest` audit event.
CREATE TABLE rpz_digests (
    serial      BIGINT NOT NULL,
    params      TEXT NOT NULL,
    scheme      BIGINT NOT NULL,
    algorithm   BIGINT NOT NULL,
    digest      TEXT NOT NULL,
    created_at  BIGINT NOT NULL,
    event_seq   BIGINT NOT NULL,
    PRIMARY KEY (serial, params)
);
