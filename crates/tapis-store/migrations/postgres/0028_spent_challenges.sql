-- 0028 spent proof-of-work challenges: a public report's challenge is
-- good once, across every `tapis serve` on the database. The insert is
-- the check (the primary key refuses a second use); a row is needed only
-- until its challenge expires, and expired rows are pruned on insert.
CREATE TABLE spent_challenges (
    nonce       TEXT PRIMARY KEY,
    expires_at  BIGINT NOT NULL
);
CREATE INDEX spent_challenges_expiry ON spent_challenges (expires_at);
