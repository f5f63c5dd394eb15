-- Where an account stands in sign-up: active, pending-validation, pending-approval, rejected.
ALTER TABLE accounts ADD COLUMN status TEXT NOT NULL DEFAULT 'active';
