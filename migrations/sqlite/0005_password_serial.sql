-- How many times the account's password was reset: a session signed in under an earlier
-- count ends at its next request.
ALTER TABLE accounts ADD COLUMN password_serial INTEGER NOT NULL DEFAULT 0;
