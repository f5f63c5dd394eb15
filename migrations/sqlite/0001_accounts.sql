CREATE TABLE accounts (
    id            TEXT PRIMARY KEY,
    email         TEXT,
    email_lower   TEXT UNIQUE,
    name          TEXT NOT NULL,
    password_hash TEXT,
    disabled      INTEGER NOT NULL DEFAULT 0,
    created_at    INTEGER NOT NULL
);

CREATE TABLE account_links (
    provider   TEXT NOT NULL,
    subject    TEXT NOT NULL,
    account_id TEXT NOT NULL REFERENCES accounts(id) ON DELETE CASCADE,
    PRIMARY KEY (provider, subject)
);

CREATE TABLE account_usergroups (
    account_id TEXT NOT NULL REFERENCES accounts(id) ON DELETE CASCADE,
    usergroup  TEXT NOT NULL,
    PRIMARY KEY (account_id, usergroup)
);
