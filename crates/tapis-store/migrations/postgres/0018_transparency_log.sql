-- 0018 the transparency log: the audit events as leaves of an RFC 6962
-- Merkle tree (tapis-core/src/tlog). Written in the transaction that
-- appends the event. Event `seq` is leaf `seq - 1`.
--   tlog_salts: each event's random salt (hex), revealed only to those who
--     may see the event; its leaf commits to the event under it.
--   tlog_nodes: the hash (hex) of every complete, aligned subtree: level 0
--     the leaves, level k the subtree of leaves [idx * 2^k, (idx + 1) * 2^k).
--   tlog_checkpoints: signed checkpoints (C2SP signed notes), by tree size.
--   tlog_cosignatures: witnesses' cosignature lines on a checkpoint.
CREATE TABLE tlog_salts (
    seq   BIGINT PRIMARY KEY,
    salt  TEXT NOT NULL
);

CREATE TABLE tlog_nodes (
    level  INTEGER NOT NULL,
    idx    BIGINT NOT NULL,
    hash   TEXT NOT NULL,
    PRIMARY KEY (level, idx)
);

CREATE TABLE tlog_checkpoints (
    size        BIGINT PRIMARY KEY,
    root        TEXT NOT NULL,
    note        TEXT NOT NULL,
    created_at  BIGINT NOT NULL
);

CREATE TABLE tlog_cosignatures (
    size         BIGINT NOT NULL REFERENCES tlog_checkpoints (size),
    witness      TEXT NOT NULL,
    key_id       TEXT NOT NULL,
    line         TEXT NOT NULL,
    signed_at    BIGINT NOT NULL,
    received_at  BIGINT NOT NULL,
    PRIMARY KEY (size, witness, key_id)
);

CREATE FUNCTION tlog_append_only() RETURNS trigger LANGUAGE plpgsql AS $fn$
BEGIN
    RAISE EXCEPTION 'the transparency log is append-only';
END
$fn$;
CREATE TRIGGER tlog_nodes_no_change BEFORE UPDATE OR DELETE ON tlog_nodes
    FOR EACH ROW EXECUTE FUNCTION tlog_append_only();
CREATE TRIGGER tlog_checkpoints_no_change BEFORE UPDATE OR DELETE ON tlog_checkpoints
    FOR EACH ROW EXECUTE FUNCTION tlog_append_only();
