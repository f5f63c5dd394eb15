//! Security keys and passkeys registered as a second factor: their own store trait, kept
//! beside the account store and implemented for the same backends. The store keeps the
//! WebAuthn credential as opaque text (the ceremony code's serialisation); it only knows
//! which account a credential id belongs to, so that one credential never serves two.

use std::future::Future;

use super::{AccountError, Accounts, PostgresStore, SqliteStore, db, new_account_id, signed, unsigned};

/// A registered key.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StoredKey {
    /// Our id for it (what the remove form names).
    pub id: String,
    /// The account it signs in.
    pub account_id: String,
    /// The credential id the authenticator gave, base64url.
    pub credential_id: String,
    /// What the person called it.
    pub name: String,
    /// The credential (public key, counter, flags), as the ceremony code serialised it.
    pub credential: String,
    /// When it was registered (Unix seconds).
    pub created_at: u64,
    /// When it last signed in (Unix seconds).
    pub last_used_at: Option<u64>,
}

/// A key to register.
#[derive(Debug, Clone)]
pub struct NewKey {
    /// The account it is for.
    pub account_id: String,
    /// The credential id, base64url.
    pub credential_id: String,
    /// Its name.
    pub name: String,
    /// The serialised credential.
    pub credential: String,
    /// Now (Unix seconds).
    pub created_at: u64,
}

/// What registering a key came to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Added {
    /// Stored.
    Added(StoredKey),
    /// This credential is already registered (to this account or another): nothing stored.
    Duplicate,
    /// The account already has as many keys as it may.
    TooMany,
}

/// Where registered keys are kept.
pub trait KeyStore: Send + Sync {
    /// Registers a key unless its credential id is taken or the account has `max` keys;
    /// [`AccountError::NotFound`] when the account does not exist.
    fn add_key(&self, key: NewKey, max: u64) -> impl Future<Output = Result<Added, AccountError>> + Send;
    /// An account's keys, oldest first.
    fn keys(&self, account_id: &str) -> impl Future<Output = Result<Vec<StoredKey>, AccountError>> + Send;
    /// Removes one of the account's keys; false when the account has no key with this id.
    fn remove_key(
        &self,
        account_id: &str,
        id: &str,
    ) -> impl Future<Output = Result<bool, AccountError>> + Send;
    /// Records a sign-in with a key: its updated credential (the counter moves on) and when.
    /// False when the account has no such key any more.
    fn key_used(
        &self,
        account_id: &str,
        id: &str,
        credential: &str,
        at: u64,
    ) -> impl Future<Output = Result<bool, AccountError>> + Send;
}

/// A row as both backends read it.
type KeyRow = (String, String, String, String, String, i64, Option<i64>);

fn stored(row: KeyRow) -> StoredKey {
    let (id, account_id, credential_id, name, credential, created_at, last_used_at) = row;
    StoredKey {
        id,
        account_id,
        credential_id,
        name,
        credential,
        created_at: unsigned(created_at),
        last_used_at: last_used_at.map(unsigned),
    }
}

fn made(key: NewKey) -> StoredKey {
    StoredKey {
        id: new_account_id(),
        account_id: key.account_id,
        credential_id: key.credential_id,
        name: key.name,
        credential: key.credential,
        created_at: key.created_at,
        last_used_at: None,
    }
}

/// The same SQL serves both backends (`$n` parameters, a no-op update as the row lock).
macro_rules! key_store {
    ($store:ty) => {
        impl KeyStore for $store {
            async fn add_key(&self, key: NewKey, max: u64) -> Result<Added, AccountError> {
                let mut tx = self.pool.begin().await.map_err(db)?;
                // Writing the account's row first orders concurrent registrations (SQLite takes
                // its write lock, PostgreSQL the row's): the count stays true.
                let locked = sqlx::query("UPDATE accounts SET password_serial = password_serial WHERE id = $1")
                    .bind(&key.account_id)
                    .execute(&mut *tx)
                    .await
                    .map_err(db)?;
                if locked.rows_affected() != 1 {
                    return Err(AccountError::NotFound);
                }
                let count: i64 = sqlx::query_scalar("SELECT count(*) FROM security_keys WHERE account_id = $1")
                    .bind(&key.account_id)
                    .fetch_one(&mut *tx)
                    .await
                    .map_err(db)?;
                if unsigned(count) >= max {
                    return Ok(Added::TooMany);
                }
                let k = made(key);
                // Another account's registration of the same credential may run at once: the
                // unique constraint decides.
                let inserted = sqlx::query(
                    "INSERT INTO security_keys (id, account_id, credential_id, name, credential, created_at) \
                     VALUES ($1, $2, $3, $4, $5, $6) ON CONFLICT (credential_id) DO NOTHING",
                )
                .bind(&k.id)
                .bind(&k.account_id)
                .bind(&k.credential_id)
                .bind(&k.name)
                .bind(&k.credential)
                .bind(signed(k.created_at))
                .execute(&mut *tx)
                .await
                .map_err(db)?;
                if inserted.rows_affected() == 0 {
                    return Ok(Added::Duplicate);
                }
                tx.commit().await.map_err(db)?;
                Ok(Added::Added(k))
            }

            async fn keys(&self, account_id: &str) -> Result<Vec<StoredKey>, AccountError> {
                let rows: Vec<KeyRow> = sqlx::query_as(
                    "SELECT id, account_id, credential_id, name, credential, created_at, last_used_at \
                     FROM security_keys WHERE account_id = $1 ORDER BY created_at, id",
                )
                .bind(account_id)
                .fetch_all(&self.pool)
                .await
                .map_err(db)?;
                Ok(rows.into_iter().map(stored).collect())
            }

            async fn remove_key(&self, account_id: &str, id: &str) -> Result<bool, AccountError> {
                let done = sqlx::query("DELETE FROM security_keys WHERE account_id = $1 AND id = $2")
                    .bind(account_id)
                    .bind(id)
                    .execute(&self.pool)
                    .await
                    .map_err(db)?;
                Ok(done.rows_affected() > 0)
            }

            async fn key_used(&self, account_id: &str, id: &str, credential: &str, at: u64) -> Result<bool, AccountError> {
                let done = sqlx::query(
                    "UPDATE security_keys SET credential = $1, last_used_at = $2 WHERE account_id = $3 AND id = $4",
                )
                .bind(credential)
                .bind(signed(at))
                .bind(account_id)
                .bind(id)
                .execute(&self.pool)
                .await
                .map_err(db)?;
                Ok(done.rows_affected() > 0)
            }
        }
    };
}

key_store!(SqliteStore);
key_store!(PostgresStore);

macro_rules! delegate {
    ($self:ident, $s:ident => $e:expr) => {
        match $self {
            Accounts::Sqlite($s) => $e,
            Accounts::Postgres($s) => $e,
        }
    };
}

impl KeyStore for Accounts {
    async fn add_key(&self, key: NewKey, max: u64) -> Result<Added, AccountError> {
        delegate!(self, s => s.add_key(key, max).await)
    }
    async fn keys(&self, account_id: &str) -> Result<Vec<StoredKey>, AccountError> {
        delegate!(self, s => s.keys(account_id).await)
    }
    async fn remove_key(&self, account_id: &str, id: &str) -> Result<bool, AccountError> {
        delegate!(self, s => s.remove_key(account_id, id).await)
    }
    async fn key_used(
        &self,
        account_id: &str,
        id: &str,
        credential: &str,
        at: u64,
    ) -> Result<bool, AccountError> {
        delegate!(self, s => s.key_used(account_id, id, credential, at).await)
    }
}

#[cfg(test)]
mod conformance;
