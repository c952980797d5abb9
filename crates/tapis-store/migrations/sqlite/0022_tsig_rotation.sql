-- 0022 an ISP rotates its TSIG key: the key it replaced (name and sealed
-- secret) stays valid until previous_tsig_valid_until, so its secondaries
-- can move to the new key without a flag day; key_generation numbers the
-- keys (the first is 1) and makes each new key's name.
ALTER TABLE isp_resolvers ADD COLUMN key_generation INTEGER NOT NULL DEFAULT 1;
ALTER TABLE isp_resolvers ADD COLUMN tsig_created_at INTEGER;
ALTER TABLE isp_resolvers ADD COLUMN previous_tsig_key_name TEXT;
ALTER TABLE isp_resolvers ADD COLUMN previous_tsig_secret TEXT;
ALTER TABLE isp_resolvers ADD COLUMN previous_tsig_valid_until INTEGER;
