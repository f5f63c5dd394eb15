CREATE TABLE accounts (
    id            TEXT PRIMARY KEY,
    email         TEXT,
    email_lower   TEXT CONSTRAINT accounts_email_lower_unique UNIQUE,
    name          TEXT NOT NULL,
    password_hash TEXT,
    disabled      BOOLEAN NOT NULL DEFAULT FALSE,
    created_at    BIGINT NOT NULL
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
