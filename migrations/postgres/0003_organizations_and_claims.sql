-- Organizations administrators create (the config's own are not stored), their email
-- domains (each in at most one organization) and the usergroups they are linked to.
CREATE TABLE organizations (
    id   TEXT PRIMARY KEY,
    name TEXT NOT NULL
);

CREATE TABLE organization_domains (
    domain          TEXT PRIMARY KEY,
    organization_id TEXT NOT NULL REFERENCES organizations(id) ON DELETE CASCADE
);

CREATE TABLE organization_usergroups (
    organization_id TEXT NOT NULL REFERENCES organizations(id) ON DELETE CASCADE,
    usergroup       TEXT NOT NULL,
    PRIMARY KEY (organization_id, usergroup)
);

-- What each provider said of an account at its last sign-in through it: kind 'group' (a
-- group name as the provider gives it) or 'organization' (an organization's name).
CREATE TABLE account_provider_claims (
    account_id TEXT NOT NULL REFERENCES accounts(id) ON DELETE CASCADE,
    provider   TEXT NOT NULL,
    kind       TEXT NOT NULL,
    value      TEXT NOT NULL,
    PRIMARY KEY (account_id, provider, kind, value)
);
