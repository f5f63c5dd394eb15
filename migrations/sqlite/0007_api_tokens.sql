-- API tokens: only the SHA-256 of each token is kept. `permissions` lists the subset of
-- the account's permissions the token carries (one per line); NULL carries them all.
CREATE TABLE api_tokens (
    id           TEXT PRIMARY KEY,
    account_id   TEXT NOT NULL REFERENCES accounts(id) ON DELETE CASCADE,
    hash         TEXT NOT NULL UNIQUE,
    name         TEXT NOT NULL,
    permissions  TEXT,
    created_at   INTEGER NOT NULL,
    expires_at   INTEGER NOT NULL,
    last_used_at INTEGER
);
CREATE INDEX api_tokens_account ON api_tokens (account_id);

-- Accounts for machines: they use API tokens and never sign in interactively.
CREATE TABLE service_accounts (
    account_id TEXT PRIMARY KEY REFERENCES accounts(id) ON DELETE CASCADE
);
