-- 0021 an optional second step at sign-in (TOTP, RFC 6238): the account's
-- secret (sealed with the secret key when one is configured), a secret
-- being set up and not yet confirmed, and the step of the last code
-- accepted, so no code is accepted twice.
ALTER TABLE accounts ADD COLUMN totp_secret TEXT;
ALTER TABLE accounts ADD COLUMN totp_pending TEXT;
ALTER TABLE accounts ADD COLUMN totp_last_step INTEGER;
