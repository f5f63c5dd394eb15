//! What a person may change of their own account beside its password and address: the
//! display name. A store trait of its own, implemented by both backends.

use std::future::Future;

use super::{AccountError, Accounts, PostgresStore, SqliteStore, db, one_account};

/// Where people's own changes to their accounts are kept.
pub trait ProfileStore: Send + Sync {
    /// Replaces an account's display name; [`AccountError::NotFound`] for a missing account.
    fn set_name(&self, account_id: &str, name: &str)
    -> impl Future<Output = Result<(), AccountError>> + Send;
}

/// The same SQL serves both backends (`$n` parameters).
macro_rules! profile_store {
    ($store:ty) => {
        impl ProfileStore for $store {
            async fn set_name(&self, account_id: &str, name: &str) -> Result<(), AccountError> {
                let done = sqlx::query("UPDATE accounts SET name = $1 WHERE id = $2")
                    .bind(name)
                    .bind(account_id)
                    .execute(&self.pool)
                    .await
                    .map_err(db)?;
                one_account(done.rows_affected())
            }
        }
    };
}

profile_store!(SqliteStore);
profile_store!(PostgresStore);

impl ProfileStore for Accounts {
    async fn set_name(&self, account_id: &str, name: &str) -> Result<(), AccountError> {
        match self {
            Accounts::Sqlite(s) => s.set_name(account_id, name).await,
            Accounts::Postgres(s) => s.set_name(account_id, name).await,
        }
    }
}
