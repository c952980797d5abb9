-- 0012 ownership lease: which `tapis serve` process owns the scheduler,
-- NOTIFY and the compliance prober when several share one database. A
-- holder keeps the row by renewing it before `expires_at` (milliseconds,
-- the database's own clock); another process may take it only once it has
-- expired, and every takeover increments `token`, the fencing token the
-- owner's job-firing transactions check (see `lease.rs`).
CREATE TABLE leases (
    name         TEXT PRIMARY KEY,
    holder       TEXT NOT NULL,
    token        BIGINT NOT NULL,
    acquired_at  BIGINT NOT NULL,
    expires_at   BIGINT NOT NULL
);
