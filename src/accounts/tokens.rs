//! API tokens and service accounts in the account store: a store trait of its own beside
//! [`AccountStore`](super::AccountStore), implemented by both backends.
//!
//! A token is `dg_` followed by 32 random bytes (base64url); the store keeps only its
//! SHA-256, so a copy of the database cannot be replayed. A token is found by that hash,
//! never compared as text. A token carries all of its account's permissions, or a subset of
//! them (always narrowed again to what the account holds at the time of use).

use std::future::Future;

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use sha2::{Digest, Sha256};
use sqlx::Row;

use super::{AccountError, Accounts, PostgresStore, SqliteStore, db, signed, unsigned};

/// What every token starts with: how deskgate tells its own bearer tokens from others.
pub const TOKEN_PREFIX: &str = "dg_";

/// Length of a token's random part, base64url without padding (32 bytes).
const SECRET_LEN: usize = 43;

/// A token as stored (never its secret).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ApiToken {
    /// Stable id, shown in lists and used to revoke.
    pub id: String,
    /// The account it acts as.
    pub account_id: String,
    /// What its owner called it.
    pub name: String,
    /// The permissions it is limited to, sorted; `None`: every permission of the account.
    pub permissions: Option<Vec<String>>,
    /// When it was made (Unix seconds).
    pub created_at: u64,
    /// When it stops working (Unix seconds).
    pub expires_at: u64,
    /// When it was last used, to a minute.
    pub last_used_at: Option<u64>,
}

/// A new token's secret, as shown once to whoever made it.
pub fn new_secret() -> String {
    let bytes: [u8; 32] = rand::random();
    format!("{TOKEN_PREFIX}{}", URL_SAFE_NO_PAD.encode(bytes))
}

/// A new token id.
pub fn new_token_id() -> String {
    let bytes: [u8; 12] = rand::random();
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// Whether `text` is shaped like a token: the prefix and exactly 43 base64url characters.
pub fn well_formed(text: &str) -> bool {
    text.strip_prefix(TOKEN_PREFIX).is_some_and(|s| {
        s.len() == SECRET_LEN && s.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
    })
}

/// The stored form of a token: its SHA-256, base64url.
pub fn token_hash(secret: &str) -> String {
    URL_SAFE_NO_PAD.encode(Sha256::digest(secret.as_bytes()))
}

fn joined(permissions: &Option<Vec<String>>) -> Option<String> {
    permissions.as_ref().map(|p| p.join("\n"))
}

fn split(text: Option<String>) -> Option<Vec<String>> {
    text.map(|t| t.split('\n').filter(|p| !p.is_empty()).map(str::to_owned).collect())
}

/// Where tokens and the mark of service accounts live.
pub trait TokenStore: Send + Sync {
    /// Stores a token under the hash of its secret; [`AccountError::NotFound`] when its
    /// account does not exist.
    fn add_token(
        &self,
        token: &ApiToken,
        hash: &str,
    ) -> impl Future<Output = Result<(), AccountError>> + Send;
    /// The token whose secret hashes to `hash`, expired or not.
    fn token_by_hash(
        &self,
        hash: &str,
    ) -> impl Future<Output = Result<Option<ApiToken>, AccountError>> + Send;
    /// An account's tokens, oldest first.
    fn tokens(&self, account_id: &str) -> impl Future<Output = Result<Vec<ApiToken>, AccountError>> + Send;
    /// Deletes an account's token; [`AccountError::NotFound`] when the account has no token
    /// with this id (another account's token is never touched).
    fn revoke_token(
        &self,
        account_id: &str,
        token_id: &str,
    ) -> impl Future<Output = Result<(), AccountError>> + Send;
    /// Notes that a token was used at `at`.
    fn touch_token(&self, token_id: &str, at: u64) -> impl Future<Output = Result<(), AccountError>> + Send;
    /// Marks an account as a service account: it never signs in interactively.
    fn mark_service(&self, account_id: &str) -> impl Future<Output = Result<(), AccountError>> + Send;
    /// Whether an account is a service account.
    fn is_service(&self, account_id: &str) -> impl Future<Output = Result<bool, AccountError>> + Send;
}

// One query text for both backends (`$n` parameters).
const INSERT: &str = "INSERT INTO api_tokens (id, account_id, hash, name, permissions, created_at, expires_at) \
                      SELECT $1, $2, $3, $4, $5, $6, $7 WHERE EXISTS (SELECT 1 FROM accounts WHERE id = $2)";
macro_rules! columns {
    () => {
        "SELECT id, account_id, name, permissions, created_at, expires_at, last_used_at FROM api_tokens"
    };
}
const BY_HASH: &str = concat!(columns!(), " WHERE hash = $1");
const OF_ACCOUNT: &str = concat!(columns!(), " WHERE account_id = $1 ORDER BY created_at, id");
const REVOKE: &str = "DELETE FROM api_tokens WHERE account_id = $1 AND id = $2";
const TOUCH: &str = "UPDATE api_tokens SET last_used_at = $1 WHERE id = $2";
const MARK: &str = "INSERT INTO service_accounts (account_id) SELECT $1 WHERE EXISTS (SELECT 1 FROM accounts WHERE id = $1) \
                    ON CONFLICT (account_id) DO NOTHING";
const IS_SERVICE: &str = "SELECT account_id FROM service_accounts WHERE account_id = $1";

macro_rules! token_row {
    ($row:expr) => {{
        let row = $row;
        ApiToken {
            id: row.try_get("id").map_err(db)?,
            account_id: row.try_get("account_id").map_err(db)?,
            name: row.try_get("name").map_err(db)?,
            permissions: split(row.try_get("permissions").map_err(db)?),
            created_at: unsigned(row.try_get("created_at").map_err(db)?),
            expires_at: unsigned(row.try_get("expires_at").map_err(db)?),
            last_used_at: row.try_get::<Option<i64>, _>("last_used_at").map_err(db)?.map(unsigned),
        }
    }};
}

/// The same statements on both backends.
macro_rules! token_store {
    ($store:ty) => {
        impl TokenStore for $store {
            async fn add_token(&self, t: &ApiToken, hash: &str) -> Result<(), AccountError> {
                let done = sqlx::query(INSERT)
                    .bind(&t.id)
                    .bind(&t.account_id)
                    .bind(hash)
                    .bind(&t.name)
                    .bind(joined(&t.permissions))
                    .bind(signed(t.created_at))
                    .bind(signed(t.expires_at))
                    .execute(&self.pool)
                    .await
                    .map_err(db)?;
                super::one_account(done.rows_affected())
            }

            async fn token_by_hash(&self, hash: &str) -> Result<Option<ApiToken>, AccountError> {
                let row = sqlx::query(BY_HASH).bind(hash).fetch_optional(&self.pool).await.map_err(db)?;
                Ok(match row {
                    Some(row) => Some(token_row!(row)),
                    None => None,
                })
            }

            async fn tokens(&self, account_id: &str) -> Result<Vec<ApiToken>, AccountError> {
                let rows =
                    sqlx::query(OF_ACCOUNT).bind(account_id).fetch_all(&self.pool).await.map_err(db)?;
                let mut out = Vec::with_capacity(rows.len());
                for row in rows {
                    out.push(token_row!(row));
                }
                Ok(out)
            }

            async fn revoke_token(&self, account_id: &str, token_id: &str) -> Result<(), AccountError> {
                let done = sqlx::query(REVOKE)
                    .bind(account_id)
                    .bind(token_id)
                    .execute(&self.pool)
                    .await
                    .map_err(db)?;
                super::one_account(done.rows_affected())
            }

            async fn touch_token(&self, token_id: &str, at: u64) -> Result<(), AccountError> {
                sqlx::query(TOUCH).bind(signed(at)).bind(token_id).execute(&self.pool).await.map_err(db)?;
                Ok(())
            }

            async fn mark_service(&self, account_id: &str) -> Result<(), AccountError> {
                sqlx::query(MARK).bind(account_id).execute(&self.pool).await.map_err(db)?;
                if self.is_service(account_id).await? { Ok(()) } else { Err(AccountError::NotFound) }
            }

            async fn is_service(&self, account_id: &str) -> Result<bool, AccountError> {
                let found: Option<String> = sqlx::query_scalar(IS_SERVICE)
                    .bind(account_id)
                    .fetch_optional(&self.pool)
                    .await
                    .map_err(db)?;
                Ok(found.is_some())
            }
        }
    };
}

token_store!(SqliteStore);
token_store!(PostgresStore);

macro_rules! delegate {
    ($self:ident, $s:ident => $e:expr) => {
        match $self {
            Accounts::Sqlite($s) => $e,
            Accounts::Postgres($s) => $e,
        }
    };
}

impl TokenStore for Accounts {
    async fn add_token(&self, token: &ApiToken, hash: &str) -> Result<(), AccountError> {
        delegate!(self, s => s.add_token(token, hash).await)
    }
    async fn token_by_hash(&self, hash: &str) -> Result<Option<ApiToken>, AccountError> {
        delegate!(self, s => s.token_by_hash(hash).await)
    }
    async fn tokens(&self, account_id: &str) -> Result<Vec<ApiToken>, AccountError> {
        delegate!(self, s => s.tokens(account_id).await)
    }
    async fn revoke_token(&self, account_id: &str, token_id: &str) -> Result<(), AccountError> {
        delegate!(self, s => s.revoke_token(account_id, token_id).await)
    }
    async fn touch_token(&self, token_id: &str, at: u64) -> Result<(), AccountError> {
        delegate!(self, s => s.touch_token(token_id, at).await)
    }
    async fn mark_service(&self, account_id: &str) -> Result<(), AccountError> {
        delegate!(self, s => s.mark_service(account_id).await)
    }
    async fn is_service(&self, account_id: &str) -> Result<bool, AccountError> {
        delegate!(self, s => s.is_service(account_id).await)
    }
}

#[cfg(test)]
mod tests;
