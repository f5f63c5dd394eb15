-- Whether the account's email address is verified: validated by the sign-up mail, vouched
-- for by an identity provider, or set by an administrator. Only a verified address counts
-- for organizations by email domain and [[assignments]] by email, and for linking.
-- Accounts from before are taken as verified (how their address was set is not recorded),
-- except sign-ups still waiting for their validation link.
ALTER TABLE accounts ADD COLUMN email_verified BOOLEAN NOT NULL DEFAULT FALSE;
UPDATE accounts SET email_verified = TRUE WHERE email IS NOT NULL AND status <> 'pending-validation';
