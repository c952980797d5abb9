-- 0006 compliance probes: what each ISP resolver answered for a sample of
-- blocked names and for canaries, against the serial in force.
CREATE TABLE compliance_probes (
    id           TEXT PRIMARY KEY,
    party_id     TEXT NOT NULL REFERENCES parties (id),
    resolver     TEXT NOT NULL,
    serial       BIGINT NOT NULL,
    probed_at    BIGINT NOT NULL,
    enforced     BIGINT NOT NULL,
    not_enforced BIGINT NOT NULL,
    overblocked  BIGINT NOT NULL,
    unreachable  BIGINT NOT NULL,
    detail       TEXT NOT NULL
);
CREATE INDEX compliance_probes_party ON compliance_probes (party_id, probed_at);
