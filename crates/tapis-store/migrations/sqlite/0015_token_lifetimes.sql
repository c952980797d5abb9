-- 0015 token lifetimes: a token may expire (set when it is created), and
-- its first use is noted so the first admin token's file can be removed
-- once it has done its job. First use is bookkeeping, not an audited
-- change: the request it authenticated is what the log records.
ALTER TABLE tokens ADD COLUMN expires_at INTEGER;
ALTER TABLE tokens ADD COLUMN first_used_at INTEGER;
