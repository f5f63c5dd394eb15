//! Second factors kept with accounts: an authenticator app's TOTP secret with the step of
//! the last code accepted, and the hashes of single-use recovery codes. A store of its own
//! beside [`AccountStore`](super::AccountStore), for the same backends.

use std::future::Future;

use sqlx::{Postgres, QueryBuilder, Sqlite};

use super::{AccountError, Accounts, PostgresStore, SqliteStore, db, signed, unsigned};

/// An enrolled authenticator app.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TotpFactor {
    /// The shared secret, base32 (RFC 4648, no padding).
    pub secret: String,
    /// The time step of the last code accepted: a code of this step or an earlier one is
    /// refused, so each code is good once.
    pub last_step: u64,
    /// When it was enrolled (Unix seconds).
    pub created_at: u64,
}

/// Where second factors live.
pub trait FactorStore: Send + Sync {
    /// The account's authenticator app, if it has one.
    fn totp(&self, account_id: &str)
    -> impl Future<Output = Result<Option<TotpFactor>, AccountError>> + Send;
    /// Enrols `secret` (replacing an earlier one) whose code of `step` was just confirmed,
    /// with the hashes of new recovery codes (replacing earlier ones), in one transaction.
    fn enrol_totp(
        &self,
        account_id: &str,
        secret: &str,
        step: u64,
        recovery_hashes: &[String],
        now: u64,
    ) -> impl Future<Output = Result<(), AccountError>> + Send;
    /// Takes the code of `step`: true only when it is later than the step of every code
    /// taken before, and then it is the last one. Atomic, so a code is good once on every
    /// replica sharing the store.
    fn take_totp_step(
        &self,
        account_id: &str,
        step: u64,
    ) -> impl Future<Output = Result<bool, AccountError>> + Send;
    /// Takes a recovery code by its hash: true the first time, false after (or for a hash
    /// the account never had).
    fn take_recovery_code(
        &self,
        account_id: &str,
        code_hash: &str,
    ) -> impl Future<Output = Result<bool, AccountError>> + Send;
    /// How many recovery codes the account has left.
    fn recovery_codes_left(&self, account_id: &str)
    -> impl Future<Output = Result<u64, AccountError>> + Send;
    /// Removes every second factor of the account (authenticator app, recovery codes and
    /// security keys); returns whether it had any.
    fn remove_factors(&self, account_id: &str) -> impl Future<Output = Result<bool, AccountError>> + Send;
    /// Those of `account_ids` that have a second factor (an authenticator app or a key).
    fn enrolled(
        &self,
        account_ids: &[String],
    ) -> impl Future<Output = Result<Vec<String>, AccountError>> + Send;
}

/// The same SQL serves both backends (`$n` parameters; a no-op update of the account's row
/// as its lock, which SQLite takes as its write lock and PostgreSQL as the row's).
macro_rules! factor_store {
    ($store:ty, $db:ty) => {
        impl FactorStore for $store {
            async fn totp(&self, account_id: &str) -> Result<Option<TotpFactor>, AccountError> {
                let row: Option<(String, i64, i64)> = sqlx::query_as(
                    "SELECT secret, last_step, created_at FROM account_totp WHERE account_id = $1",
                )
                .bind(account_id)
                .fetch_optional(&self.pool)
                .await
                .map_err(db)?;
                Ok(row.map(|(secret, last, at)| TotpFactor {
                    secret,
                    last_step: unsigned(last),
                    created_at: unsigned(at),
                }))
            }

            async fn enrol_totp(
                &self,
                account_id: &str,
                secret: &str,
                step: u64,
                recovery_hashes: &[String],
                now: u64,
            ) -> Result<(), AccountError> {
                let mut tx = self.pool.begin().await.map_err(db)?;
                // An enrolment and a deletion of the account do not interleave.
                let locked = sqlx::query("UPDATE accounts SET password_serial = password_serial WHERE id = $1")
                    .bind(account_id)
                    .execute(&mut *tx)
                    .await
                    .map_err(db)?;
                if locked.rows_affected() != 1 {
                    return Err(AccountError::NotFound);
                }
                sqlx::query(
                    "INSERT INTO account_totp (account_id, secret, last_step, created_at) VALUES ($1, $2, $3, $4) \
                     ON CONFLICT (account_id) DO UPDATE SET secret = excluded.secret, \
                     last_step = excluded.last_step, created_at = excluded.created_at",
                )
                .bind(account_id)
                .bind(secret)
                .bind(signed(step))
                .bind(signed(now))
                .execute(&mut *tx)
                .await
                .map_err(db)?;
                sqlx::query("DELETE FROM account_recovery_codes WHERE account_id = $1")
                    .bind(account_id)
                    .execute(&mut *tx)
                    .await
                    .map_err(db)?;
                if !recovery_hashes.is_empty() {
                    let mut insert: QueryBuilder<$db> =
                        QueryBuilder::new("INSERT INTO account_recovery_codes (account_id, code_hash) ");
                    insert.push_values(recovery_hashes, |mut row, hash| {
                        row.push_bind(account_id).push_bind(hash);
                    });
                    insert.push(" ON CONFLICT DO NOTHING");
                    insert.build().execute(&mut *tx).await.map_err(db)?;
                }
                tx.commit().await.map_err(db)
            }

            async fn take_totp_step(&self, account_id: &str, step: u64) -> Result<bool, AccountError> {
                let done = sqlx::query(
                    "UPDATE account_totp SET last_step = $1 WHERE account_id = $2 AND last_step < $1",
                )
                .bind(signed(step))
                .bind(account_id)
                .execute(&self.pool)
                .await
                .map_err(db)?;
                Ok(done.rows_affected() == 1)
            }

            async fn take_recovery_code(&self, account_id: &str, code_hash: &str) -> Result<bool, AccountError> {
                let done =
                    sqlx::query("DELETE FROM account_recovery_codes WHERE account_id = $1 AND code_hash = $2")
                        .bind(account_id)
                        .bind(code_hash)
                        .execute(&self.pool)
                        .await
                        .map_err(db)?;
                Ok(done.rows_affected() == 1)
            }

            async fn recovery_codes_left(&self, account_id: &str) -> Result<u64, AccountError> {
                let n: i64 =
                    sqlx::query_scalar("SELECT count(*) FROM account_recovery_codes WHERE account_id = $1")
                        .bind(account_id)
                        .fetch_one(&self.pool)
                        .await
                        .map_err(db)?;
                Ok(unsigned(n))
            }

            async fn remove_factors(&self, account_id: &str) -> Result<bool, AccountError> {
                let mut tx = self.pool.begin().await.map_err(db)?;
                let mut removed = 0;
                for table in ["account_totp", "account_recovery_codes", "security_keys"] {
                    let done = sqlx::query(&format!("DELETE FROM {table} WHERE account_id = $1"))
                        .bind(account_id)
                        .execute(&mut *tx)
                        .await
                        .map_err(db)?;
                    removed += done.rows_affected();
                }
                tx.commit().await.map_err(db)?;
                Ok(removed > 0)
            }

            async fn enrolled(&self, account_ids: &[String]) -> Result<Vec<String>, AccountError> {
                let mut out = Vec::new();
                // SQLite binds at most 32766 values: ask in slices.
                for chunk in account_ids.chunks(500) {
                    let mut q: QueryBuilder<$db> = QueryBuilder::new(
                        "SELECT account_id FROM (SELECT account_id FROM account_totp \
                         UNION SELECT account_id FROM security_keys) AS f WHERE account_id IN (",
                    );
                    let mut list = q.separated(", ");
                    for id in chunk {
                        list.push_bind(id);
                    }
                    q.push(")");
                    let ids: Vec<String> = q.build_query_scalar().fetch_all(&self.pool).await.map_err(db)?;
                    out.extend(ids);
                }
                out.sort();
                Ok(out)
            }
        }
    };
}

factor_store!(SqliteStore, Sqlite);
factor_store!(PostgresStore, Postgres);

macro_rules! delegate {
    ($self:ident, $s:ident => $e:expr) => {
        match $self {
            Accounts::Sqlite($s) => $e,
            Accounts::Postgres($s) => $e,
        }
    };
}

impl FactorStore for Accounts {
    async fn totp(&self, account_id: &str) -> Result<Option<TotpFactor>, AccountError> {
        delegate!(self, s => s.totp(account_id).await)
    }
    async fn enrol_totp(
        &self,
        account_id: &str,
        secret: &str,
        step: u64,
        recovery_hashes: &[String],
        now: u64,
    ) -> Result<(), AccountError> {
        delegate!(self, s => s.enrol_totp(account_id, secret, step, recovery_hashes, now).await)
    }
    async fn take_totp_step(&self, account_id: &str, step: u64) -> Result<bool, AccountError> {
        delegate!(self, s => s.take_totp_step(account_id, step).await)
    }
    async fn take_recovery_code(&self, account_id: &str, code_hash: &str) -> Result<bool, AccountError> {
        delegate!(self, s => s.take_recovery_code(account_id, code_hash).await)
    }
    async fn recovery_codes_left(&self, account_id: &str) -> Result<u64, AccountError> {
        delegate!(self, s => s.recovery_codes_left(account_id).await)
    }
    async fn remove_factors(&self, account_id: &str) -> Result<bool, AccountError> {
        delegate!(self, s => s.remove_factors(account_id).await)
    }
    async fn enrolled(&self, account_ids: &[String]) -> Result<Vec<String>, AccountError> {
        delegate!(self, s => s.enrolled(account_ids).await)
    }
}

#[cfg(test)]
#[path = "factors/conformance.rs"]
pub(crate) mod conformance;
