-- 0016 people's accounts for the web interface. An account belongs to one
-- party, names a person (four eyes compares it) and holds one or more
-- roles; its password is an argon2id PHC string (NULL until its holder
-- sets one through a one-time link). Sessions and reset links are stored
-- as SHA-256 of their random secrets, never the secrets themselves.
CREATE TABLE accounts (
    id                  TEXT PRIMARY KEY,
    party_id            TEXT NOT NULL REFERENCES parties (id),
    login               TEXT NOT NULL UNIQUE,
    person              TEXT NOT NULL,
    roles               TEXT NOT NULL,
    password_hash       TEXT,
    created_at          BIGINT NOT NULL,
    disabled_at         BIGINT,
    failed_signins      BIGINT NOT NULL DEFAULT 0,
    locked_until        BIGINT
);
CREATE INDEX accounts_party ON accounts (party_id);

CREATE TABLE web_sessions (
    id_hash       TEXT PRIMARY KEY,
    account_id    TEXT NOT NULL REFERENCES accounts (id),
    role          TEXT NOT NULL,
    csrf          TEXT NOT NULL,
    created_at    BIGINT NOT NULL,
    last_seen_at  BIGINT NOT NULL,
    ended_at      BIGINT
);
CREATE INDEX web_sessions_account ON web_sessions (account_id);

CREATE TABLE account_links (
    code_hash    TEXT PRIMARY KEY,
    account_id   TEXT NOT NULL REFERENCES accounts (id),
    created_at   BIGINT NOT NULL,
    expires_at   BIGINT NOT NULL,
    used_at      BIGINT
);

-- an invitation may be redeemed for an account instead of a token
ALTER TABLE invitations ADD COLUMN account_id TEXT REFERENCES accounts (id);
