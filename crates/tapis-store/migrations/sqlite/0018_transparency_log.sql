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
    seq   INTEGER PRIMARY KEY,
    salt  TEXT NOT NULL
);

CREATE TABLE tlog_nodes (
    level  INTEGER NOT NULL,
    idx    INTEGER NOT NULL,
    hash   TEXT NOT NULL,
    PRIMARY KEY (level, idx)
);

CREATE TABLE tlog_checkpoints (
    size        INTEGER PRIMARY KEY,
    root        TEXT NOT NULL,
    note        TEXT NOT NULL,
    created_at  INTEGER NOT NULL
);

CREATE TABLE tlog_cosignatures (
    size         INTEGER NOT NULL REFERENCES tlog_checkpoints (size),
    witness      TEXT NOT NULL,
    key_id       TEXT NOT NULL,
    line         TEXT NOT NULL,
    signed_at    INTEGER NOT NULL,
    received_at  INTEGER NOT NULL,
    PRIMARY KEY (size, witness, key_id)
);

CREATE TRIGGER tlog_nodes_no_update BEFORE UPDATE ON tlog_nodes
BEGIN
    SELECT RAISE(ABORT, 'the transparency log is append-only');
END;
CREATE TRIGGER tlog_nodes_no_delete BEFORE DELETE ON tlog_nodes
BEGIN
    SELECT RAISE(ABORT, 'the transparency log is append-only');
END;
CREATE TRIGGER tlog_checkpoints_no_update BEFORE UPDATE ON tlog_checkpoints
BEGIN
    SELECT RAISE(ABORT, 'the transparency log is append-only');
END;
CREATE TRIGGER tlog_checkpoints_no_delete BEFORE DELETE ON tlog_checkpoints
BEGIN
    SELECT RAISE(ABORT, 'the transparency log is append-only');
END;
