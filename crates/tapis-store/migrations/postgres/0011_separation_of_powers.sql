-- 0011 separation of powers: people behind tokens (four eyes compares
-- people), one-time invitations instead of the authority holding other
-- parties' tokens, and authorisers' keys enrolled on the host.

-- The person holding a token, normalised (trimmed, case-folded, inner
-- whitespace collapsed); NULL for a machine credential, which may not
-- propose or approve. Tokens made before this migration had no person:
-- they become machine credentials, except the bootstrap admin, which is
-- the operator who first started tapis.
ALTER TABLE tokens ADD COLUMN person TEXT;
UPDATE tokens SET person = 'operator' WHERE role = 'admin' AND label = 'bootstrap admin';

-- who proposed and approved an order, as people (NULL for orders
-- proposed before people were recorded: compared by token only)
ALTER TABLE orders ADD COLUMN proposer_person TEXT;
ALTER TABLE orders ADD COLUMN approver_person TEXT;

-- One-time enrolment codes for a party's members: only the SHA-256 of
-- the code is kept; used once, before it expires.
CREATE TABLE invitations (
    id           TEXT PRIMARY KEY,
    code_hash    TEXT NOT NULL UNIQUE,
    party_id     TEXT NOT NULL REFERENCES parties (id),
    role         TEXT NOT NULL,
    created_at   BIGINT NOT NULL,
    expires_at   BIGINT NOT NULL,
    accepted_at  BIGINT,
    token_id     TEXT REFERENCES tokens (id)
);
CREATE INDEX invitations_party ON invitations (party_id);

-- Authorisers' signing keys, enrolled on the host (`tapis authoriser
-- enrol`), never through the API. A new key retires the previous one;
-- signatures made with a retired key still count for what they signed.
-- Keys set on authoriser channels before this migration are not carried
-- over: each authoriser's key is enrolled again, and its fingerprint
-- checked against what the authoriser publishes.
CREATE TABLE authoriser_keys (
    party_id     TEXT NOT NULL REFERENCES parties (id),
    public_key   TEXT NOT NULL,
    fingerprint  TEXT NOT NULL,
    enrolled_at  BIGINT NOT NULL,
    retired_at   BIGINT,
    PRIMARY KEY (party_id, public_key)
);
