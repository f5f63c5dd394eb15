-- Security keys and passkeys (WebAuthn credentials) registered as a second factor. A
-- credential id belongs to one account only.
CREATE TABLE security_keys (
    id            TEXT PRIMARY KEY,
    account_id    TEXT NOT NULL REFERENCES accounts(id) ON DELETE CASCADE,
    credential_id TEXT NOT NULL UNIQUE,
    name          TEXT NOT NULL,
    credential    TEXT NOT NULL,
    created_at    INTEGER NOT NULL,
    last_used_at  INTEGER
);
CREATE INDEX security_keys_account ON security_keys (account_id);
