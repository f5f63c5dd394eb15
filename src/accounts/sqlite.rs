//! The embedded account store: one SQLite file.

use std::path::Path;
use std::str::FromStr;

use deskgate_builtin::StoredCredential;
use sqlx::sqlite::{SqliteConnectOptions, SqliteJournalMode, SqlitePool, SqlitePoolOptions};
use sqlx::{QueryBuilder, Row, Sqlite, SqlitePool as Pool};

use super::listing::{self, push_where};
use super::{
    Account, AccountError, AccountPage, AccountQuery, AccountStatus, AccountStore, Listed, Membership,
    NewAccount, Organization, ProviderClaims, attach_claims, claim_rows, db, gather_claims,
    gather_organizations, new_account_id,
};

pub(super) const MIGRATIONS: &[(i64, &str)] = &[
    (1, include_str!("../../migrations/sqlite/0001_accounts.sql")),
    (2, include_str!("../../migrations/sqlite/0002_account_status.sql")),
    (3, include_str!("../../migrations/sqlite/0003_organizations_and_claims.sql")),
    (4, include_str!("../../migrations/sqlite/0004_email_verified.sql")),
    (5, include_str!("../../migrations/sqlite/0005_password_serial.sql")),
    (7, include_str!("../../migrations/sqlite/0007_api_tokens.sql")),
    (8, include_str!("../../migrations/sqlite/0008_second_factors.sql")),
    (9, include_str!("../../migrations/sqlite/0009_security_keys.sql")),
];

/// Accounts in a SQLite database.
#[derive(Debug, Clone)]
pub struct SqliteStore {
    pub(super) pool: Pool,
}

impl SqliteStore {
    /// Opens (creating when missing) the database at `path` (`:memory:` for a private
    /// in-memory one) and brings its schema up to date.
    pub async fn open(path: &Path) -> Result<SqliteStore, AccountError> {
        let memory = path.as_os_str() == ":memory:";
        if !memory {
            refuse_read_only(path)?;
        }
        let options = if memory {
            SqliteConnectOptions::from_str("sqlite::memory:").map_err(db)?
        } else {
            SqliteConnectOptions::new()
                .filename(path)
                .create_if_missing(true)
                .journal_mode(SqliteJournalMode::Wal)
                .busy_timeout(std::time::Duration::from_secs(5))
        }
        .foreign_keys(true);
        // An in-memory database exists per connection: keep exactly one, forever.
        let pool: SqlitePool = if memory {
            SqlitePoolOptions::new()
                .max_connections(1)
                .min_connections(1)
                .idle_timeout(None)
                .max_lifetime(None)
        } else {
            SqlitePoolOptions::new().max_connections(4)
        }
        .connect_with(options)
        .await
        .map_err(db)?;
        migrate(&pool).await?;
        Ok(SqliteStore { pool })
    }
}

/// Names the file when it, or the folder its journal goes in, is marked read-only: SQLite
/// itself would only say "unable to open database file (code 14)", or fail at the first write.
fn refuse_read_only(path: &Path) -> Result<(), AccountError> {
    if std::fs::metadata(path).is_ok_and(|m| m.permissions().readonly()) {
        return Err(AccountError::ReadOnly(path.to_owned()));
    }
    let folder = match path.parent() {
        Some(p) if !p.as_os_str().is_empty() => p,
        _ => Path::new("."),
    };
    if std::fs::metadata(folder).is_ok_and(|m| m.permissions().readonly()) {
        return Err(AccountError::ReadOnly(folder.to_owned()));
    }
    Ok(())
}

impl SqliteStore {
    /// Runs a trivial query.
    pub async fn ping(&self) -> Result<(), AccountError> {
        sqlx::query("SELECT 1").execute(&self.pool).await.map(|_| ()).map_err(db)
    }
}

async fn migrate(pool: &Pool) -> Result<(), AccountError> {
    sqlx::query("CREATE TABLE IF NOT EXISTS deskgate_migrations (version INTEGER PRIMARY KEY, applied_at INTEGER NOT NULL)")
        .execute(pool)
        .await
        .map_err(db)?;
    for (version, sql) in MIGRATIONS {
        let mut tx = pool.begin().await.map_err(db)?;
        let done: Option<i64> =
            sqlx::query_scalar("SELECT version FROM deskgate_migrations WHERE version = ?")
                .bind(version)
                .fetch_optional(&mut *tx)
                .await
                .map_err(db)?;
        if done.is_some() {
            continue;
        }
        sqlx::raw_sql(sql).execute(&mut *tx).await.map_err(db)?;
        sqlx::query("INSERT INTO deskgate_migrations (version, applied_at) VALUES (?, strftime('%s','now'))")
            .bind(version)
            .execute(&mut *tx)
            .await
            .map_err(db)?;
        tx.commit().await.map_err(db)?;
    }
    Ok(())
}

/// Fails with [`AccountError::NotFound`] unless the account exists, read inside `tx`.
async fn require_account(tx: &mut sqlx::SqliteConnection, account_id: &str) -> Result<(), AccountError> {
    let exists: Option<String> = sqlx::query_scalar("SELECT id FROM accounts WHERE id = ?")
        .bind(account_id)
        .fetch_optional(&mut *tx)
        .await
        .map_err(db)?;
    exists.map(drop).ok_or(AccountError::NotFound)
}

/// Clears `email_lower` from another account that holds it unverified, inside `tx`: a
/// verified address takes precedence over an unclaimed copy (see [`AccountStore::set_email`]).
async fn release_unverified(
    tx: &mut sqlx::SqliteConnection,
    email_lower: &str,
    keep: &str,
) -> Result<(), AccountError> {
    let released: Option<String> = sqlx::query_scalar(
        "UPDATE accounts SET email = NULL, email_lower = NULL, email_verified = 0 \
         WHERE email_lower = ? AND email_verified = 0 AND id <> ? RETURNING id",
    )
    .bind(email_lower)
    .bind(keep)
    .fetch_optional(&mut *tx)
    .await
    .map_err(db)?;
    if let Some(id) = released {
        super::log_released(&id);
    }
    Ok(())
}

impl SqliteStore {
    async fn account_where(&self, clause: &str, arg: &str) -> Result<Option<Account>, AccountError> {
        let sql = format!(
            "SELECT id, email, email_verified, name, disabled, status, created_at FROM accounts WHERE {clause}"
        );
        let Some(row) = sqlx::query(&sql).bind(arg).fetch_optional(&self.pool).await.map_err(db)? else {
            return Ok(None);
        };
        let id: String = row.get("id");
        let usergroups = sqlx::query_scalar(
            "SELECT usergroup FROM account_usergroups WHERE account_id = ? ORDER BY usergroup",
        )
        .bind(&id)
        .fetch_all(&self.pool)
        .await
        .map_err(db)?;
        Ok(Some(Account {
            id,
            email: row.get("email"),
            email_verified: row.get::<i64, _>("email_verified") != 0,
            name: row.get("name"),
            disabled: row.get::<i64, _>("disabled") != 0,
            status: AccountStatus::parse(row.get("status")),
            created_at: u64::try_from(row.get::<i64, _>("created_at")).unwrap_or(0),
            usergroups,
        }))
    }
}

impl SqliteStore {
    async fn count(&self, query: &AccountQuery) -> Result<u64, AccountError> {
        let mut qb = QueryBuilder::<Sqlite>::new("SELECT count(*) FROM accounts a");
        push_where(&mut qb, query);
        let n: i64 = qb.build_query_scalar().fetch_one(&self.pool).await.map_err(db)?;
        Ok(u64::try_from(n).unwrap_or(0))
    }

    /// The `(account id, value)` rows that `sql`, ending in `IN`, selects for `ids`, by value.
    async fn pairs(&self, sql: &str, ids: &[String]) -> Result<Vec<(String, String)>, AccountError> {
        if ids.is_empty() {
            return Ok(Vec::new());
        }
        let mut qb = QueryBuilder::<Sqlite>::new(sql);
        qb.push(" (");
        let mut list = qb.separated(", ");
        for id in ids {
            list.push_bind(id.clone());
        }
        qb.push(") ORDER BY 2");
        let rows = qb.build().fetch_all(&self.pool).await.map_err(db)?;
        Ok(rows.iter().map(|r| (r.get(0), r.get(1))).collect())
    }
}

impl SqliteStore {
    /// Runs `sql` (binding email, its lower case, verified, id) in one transaction with the
    /// release of the address from an account that holds it unverified.
    async fn write_email(
        &self,
        sql: &'static str,
        account_id: &str,
        email: Option<&str>,
        verified: bool,
    ) -> Result<(), AccountError> {
        let lower = email.map(str::to_lowercase);
        let verified = email.is_some() && verified;
        let mut tx = self.pool.begin().await.map_err(db)?;
        if let Some(lower) = lower.as_deref().filter(|_| verified) {
            release_unverified(&mut tx, lower, account_id).await?;
        }
        let done =
            sqlx::query(sql).bind(email).bind(&lower).bind(verified).bind(account_id).execute(&mut *tx).await;
        let done = match done {
            Err(sqlx::Error::Database(e)) if e.is_unique_violation() => return Err(AccountError::EmailTaken),
            other => other.map_err(db)?,
        };
        super::one_account(done.rows_affected())?;
        tx.commit().await.map_err(db)
    }
}

impl AccountStore for SqliteStore {
    async fn create(&self, new: NewAccount) -> Result<Account, AccountError> {
        let id = new_account_id();
        let email_lower = new.email.as_ref().map(|e| e.to_lowercase());
        let email_verified = new.email.is_some() && new.email_verified;
        let mut tx = self.pool.begin().await.map_err(db)?;
        if let Some(lower) = email_lower.as_deref().filter(|_| email_verified) {
            release_unverified(&mut tx, lower, &id).await?;
        }
        let inserted = sqlx::query(
            "INSERT INTO accounts (id, email, email_lower, name, password_hash, created_at, status, email_verified) \
             VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
        )
        .bind(&id)
        .bind(&new.email)
        .bind(&email_lower)
        .bind(&new.name)
        .bind(&new.password_hash)
        .bind(i64::try_from(new.created_at).unwrap_or(i64::MAX))
        .bind(new.status.as_str())
        .bind(email_verified)
        .execute(&mut *tx)
        .await;
        match inserted {
            Err(sqlx::Error::Database(e)) if e.is_unique_violation() => {
                return Err(AccountError::EmailTaken);
            }
            other => other.map_err(db)?,
        };
        for g in &new.usergroups {
            sqlx::query("INSERT OR IGNORE INTO account_usergroups (account_id, usergroup) VALUES (?, ?)")
                .bind(&id)
                .bind(g)
                .execute(&mut *tx)
                .await
                .map_err(db)?;
        }
        if let Some((provider, subject)) = &new.link {
            sqlx::query(
                "INSERT OR REPLACE INTO account_links (provider, subject, account_id) VALUES (?, ?, ?)",
            )
            .bind(provider)
            .bind(subject)
            .bind(&id)
            .execute(&mut *tx)
            .await
            .map_err(db)?;
        }
        tx.commit().await.map_err(db)?;
        let mut usergroups = new.usergroups;
        usergroups.sort();
        usergroups.dedup();
        Ok(Account {
            id,
            email: new.email,
            email_verified,
            name: new.name,
            disabled: false,
            status: new.status,
            created_at: new.created_at,
            usergroups,
        })
    }

    async fn by_id(&self, id: &str) -> Result<Option<Account>, AccountError> {
        self.account_where("id = ?", id).await
    }

    async fn by_email(&self, email: &str) -> Result<Option<Account>, AccountError> {
        self.account_where("email_lower = ?", &email.to_lowercase()).await
    }

    async fn by_link(&self, provider: &str, subject: &str) -> Result<Option<Account>, AccountError> {
        let id: Option<String> =
            sqlx::query_scalar("SELECT account_id FROM account_links WHERE provider = ? AND subject = ?")
                .bind(provider)
                .bind(subject)
                .fetch_optional(&self.pool)
                .await
                .map_err(db)?;
        match id {
            Some(id) => self.by_id(&id).await,
            None => Ok(None),
        }
    }

    async fn link(&self, provider: &str, subject: &str, account_id: &str) -> Result<(), AccountError> {
        sqlx::query("INSERT OR REPLACE INTO account_links (provider, subject, account_id) VALUES (?, ?, ?)")
            .bind(provider)
            .bind(subject)
            .bind(account_id)
            .execute(&self.pool)
            .await
            .map_err(db)?;
        Ok(())
    }

    async fn set_usergroups(&self, account_id: &str, usergroups: &[String]) -> Result<(), AccountError> {
        let mut tx = self.pool.begin().await.map_err(db)?;
        // Write first: SQLite then takes the write lock at once, where a transaction that
        // opened with a read could not upgrade while another writer holds it.
        sqlx::query("DELETE FROM account_usergroups WHERE account_id = ?")
            .bind(account_id)
            .execute(&mut *tx)
            .await
            .map_err(db)?;
        require_account(&mut tx, account_id).await?;
        for g in usergroups {
            sqlx::query("INSERT OR IGNORE INTO account_usergroups (account_id, usergroup) VALUES (?, ?)")
                .bind(account_id)
                .bind(g)
                .execute(&mut *tx)
                .await
                .map_err(db)?;
        }
        tx.commit().await.map_err(db)
    }

    async fn credential(&self, email: &str) -> Result<Option<StoredCredential>, AccountError> {
        let row = sqlx::query(
            "SELECT id, email, name, password_hash, disabled, status FROM accounts WHERE email_lower = ? AND password_hash IS NOT NULL",
        )
        .bind(email.to_lowercase())
        .fetch_optional(&self.pool)
        .await
        .map_err(db)?;
        Ok(row.map(|row| StoredCredential {
            account_id: row.get("id"),
            email: row.get("email"),
            name: row.get("name"),
            password_hash: row.get("password_hash"),
            disabled: row.get::<i64, _>("disabled") != 0,
            pending: AccountStatus::parse(row.get("status")).pending_reason(),
        }))
    }

    async fn list(&self, query: &AccountQuery, offset: u64, limit: u64) -> Result<AccountPage, AccountError> {
        let total = self.count(query).await?;
        let mut qb = QueryBuilder::<Sqlite>::new(
            "SELECT a.id, a.email, a.email_verified, a.name, a.disabled, a.status, a.created_at, \
             a.password_hash IS NOT NULL AS has_password \
             FROM accounts a",
        );
        push_where(&mut qb, query);
        qb.push(" ORDER BY a.email_lower IS NULL, a.email_lower, a.id LIMIT ")
            .push_bind(i64::try_from(limit).unwrap_or(i64::MAX))
            .push(" OFFSET ")
            .push_bind(i64::try_from(offset).unwrap_or(i64::MAX));
        let rows = qb.build().fetch_all(&self.pool).await.map_err(db)?;
        let ids: Vec<String> = rows.iter().map(|r| r.get("id")).collect();
        let groups = self
            .pairs("SELECT account_id, usergroup FROM account_usergroups WHERE account_id IN", &ids)
            .await?;
        let links = self
            .pairs("SELECT DISTINCT account_id, provider FROM account_links WHERE account_id IN", &ids)
            .await?;
        let of = |pairs: &[(String, String)], id: &str| -> Vec<String> {
            pairs.iter().filter(|(a, _)| a == id).map(|(_, v)| v.clone()).collect()
        };
        let accounts = rows
            .iter()
            .map(|row| {
                let id: String = row.get("id");
                let providers = listing::providers(row.get::<i64, _>("has_password") != 0, of(&links, &id));
                let account = Account {
                    usergroups: of(&groups, &id),
                    email: row.get("email"),
                    email_verified: row.get::<i64, _>("email_verified") != 0,
                    name: row.get("name"),
                    disabled: row.get::<i64, _>("disabled") != 0,
                    status: AccountStatus::parse(row.get("status")),
                    created_at: u64::try_from(row.get::<i64, _>("created_at")).unwrap_or(0),
                    id,
                };
                Listed { account, providers, claims: Vec::new() }
            })
            .collect::<Vec<_>>();
        let mut accounts = accounts;
        if !ids.is_empty() {
            let mut qb = QueryBuilder::<Sqlite>::new(
                "SELECT account_id, provider, kind, value FROM account_provider_claims WHERE account_id IN (",
            );
            let mut list = qb.separated(", ");
            for id in &ids {
                list.push_bind(id.clone());
            }
            qb.push(") ORDER BY account_id, provider, kind, value");
            let rows = qb.build_query_as().fetch_all(&self.pool).await.map_err(db)?;
            attach_claims(&mut accounts, rows);
        }
        Ok(AccountPage { total, accounts })
    }

    async fn count_by_usergroup(&self, groups: &[Membership]) -> Result<Vec<u64>, AccountError> {
        let mut out = Vec::with_capacity(groups.len());
        for g in groups {
            out.push(self.count(&AccountQuery { usergroup: Some(g.clone()), ..Default::default() }).await?);
        }
        Ok(out)
    }

    async fn providers(&self, account_id: &str) -> Result<Vec<String>, AccountError> {
        let has_password: Option<i64> =
            sqlx::query_scalar("SELECT password_hash IS NOT NULL FROM accounts WHERE id = ?")
                .bind(account_id)
                .fetch_optional(&self.pool)
                .await
                .map_err(db)?;
        let Some(has_password) = has_password else {
            return Err(AccountError::NotFound);
        };
        let linked = sqlx::query_scalar("SELECT DISTINCT provider FROM account_links WHERE account_id = ?")
            .bind(account_id)
            .fetch_all(&self.pool)
            .await
            .map_err(db)?;
        Ok(listing::providers(has_password != 0, linked))
    }

    async fn by_reference(&self, reference: &str) -> Result<Vec<String>, AccountError> {
        sqlx::query_scalar(
            "SELECT id FROM accounts WHERE id = ?1 \
             UNION SELECT account_id FROM account_links WHERE subject = ?1 OR provider || ' ' || subject = ?1 \
             UNION SELECT account_id FROM account_provider_claims \
             WHERE kind = 'attribute' AND lower(value) = lower('username: ' || ?1) ORDER BY 1",
        )
        .bind(reference)
        .fetch_all(&self.pool)
        .await
        .map_err(db)
    }

    async fn links(&self, account_id: &str) -> Result<Vec<(String, String)>, AccountError> {
        sqlx::query_as(
            "SELECT provider, subject FROM account_links WHERE account_id = ? ORDER BY provider, subject",
        )
        .bind(account_id)
        .fetch_all(&self.pool)
        .await
        .map_err(db)
    }

    async fn unlink(&self, provider: &str, subject: &str, account_id: &str) -> Result<(), AccountError> {
        let done =
            sqlx::query("DELETE FROM account_links WHERE provider = ? AND subject = ? AND account_id = ?")
                .bind(provider)
                .bind(subject)
                .bind(account_id)
                .execute(&self.pool)
                .await
                .map_err(db)?;
        super::one_account(done.rows_affected())
    }

    async fn set_password(&self, account_id: &str, password_hash: &str) -> Result<u64, AccountError> {
        let serial: Option<i64> = sqlx::query_scalar(
            "UPDATE accounts SET password_hash = ?, password_serial = password_serial + 1 \
             WHERE id = ? AND password_hash IS NOT NULL RETURNING password_serial",
        )
        .bind(password_hash)
        .bind(account_id)
        .fetch_optional(&self.pool)
        .await
        .map_err(db)?;
        serial.map(|n| n.max(0) as u64).ok_or(AccountError::NotFound)
    }

    async fn password_serial(&self, account_id: &str) -> Result<u64, AccountError> {
        let serial: Option<i64> = sqlx::query_scalar("SELECT password_serial FROM accounts WHERE id = ?")
            .bind(account_id)
            .fetch_optional(&self.pool)
            .await
            .map_err(db)?;
        Ok(serial.unwrap_or(0).max(0) as u64)
    }

    async fn set_disabled(&self, account_id: &str, disabled: bool) -> Result<(), AccountError> {
        let done = sqlx::query("UPDATE accounts SET disabled = ? WHERE id = ?")
            .bind(disabled)
            .bind(account_id)
            .execute(&self.pool)
            .await
            .map_err(db)?;
        super::one_account(done.rows_affected())
    }

    async fn set_status(&self, account_id: &str, status: AccountStatus) -> Result<(), AccountError> {
        let done = sqlx::query("UPDATE accounts SET status = ? WHERE id = ?")
            .bind(status.as_str())
            .bind(account_id)
            .execute(&self.pool)
            .await
            .map_err(db)?;
        super::one_account(done.rows_affected())
    }

    async fn set_email(
        &self,
        account_id: &str,
        email: Option<&str>,
        verified: bool,
    ) -> Result<(), AccountError> {
        let sql = "UPDATE accounts SET email = ?, email_lower = ?, email_verified = ? WHERE id = ?";
        self.write_email(sql, account_id, email, verified).await
    }

    async fn confirm_email(&self, account_id: &str, email: &str) -> Result<(), AccountError> {
        let sql = "UPDATE accounts SET email = ?, email_lower = ?, email_verified = ?, status = 'active' \
                   WHERE id = ? AND status = 'pending-validation'";
        self.write_email(sql, account_id, Some(email), true).await
    }

    async fn delete(&self, account_id: &str) -> Result<(), AccountError> {
        let done = sqlx::query("DELETE FROM accounts WHERE id = ?")
            .bind(account_id)
            .execute(&self.pool)
            .await
            .map_err(db)?;
        super::one_account(done.rows_affected())
    }

    async fn set_provider_claims(
        &self,
        account_id: &str,
        claims: &ProviderClaims,
    ) -> Result<(), AccountError> {
        let provider = claims.provider.as_str();
        let mut tx = self.pool.begin().await.map_err(db)?;
        sqlx::query("DELETE FROM account_provider_claims WHERE account_id = ? AND provider = ?")
            .bind(account_id)
            .bind(provider)
            .execute(&mut *tx)
            .await
            .map_err(db)?;
        require_account(&mut tx, account_id).await?;
        for (kind, value) in claim_rows(claims) {
            sqlx::query(
                "INSERT OR IGNORE INTO account_provider_claims (account_id, provider, kind, value) VALUES (?, ?, ?, ?)",
            )
            .bind(account_id)
            .bind(provider)
            .bind(kind)
            .bind(value)
            .execute(&mut *tx)
            .await
            .map_err(db)?;
        }
        tx.commit().await.map_err(db)
    }

    async fn provider_claims(&self, account_id: &str) -> Result<Vec<ProviderClaims>, AccountError> {
        let rows: Vec<(String, String, String)> = sqlx::query_as(
            "SELECT provider, kind, value FROM account_provider_claims WHERE account_id = ? ORDER BY provider, kind, value",
        )
        .bind(account_id)
        .fetch_all(&self.pool)
        .await
        .map_err(db)?;
        Ok(gather_claims(rows))
    }

    async fn organizations(&self) -> Result<Vec<Organization>, AccountError> {
        let orgs =
            sqlx::query_as("SELECT id, name FROM organizations").fetch_all(&self.pool).await.map_err(db)?;
        let domains =
            sqlx::query_as("SELECT organization_id, domain FROM organization_domains ORDER BY domain")
                .fetch_all(&self.pool)
                .await
                .map_err(db)?;
        let groups = sqlx::query_as(
            "SELECT organization_id, usergroup FROM organization_usergroups ORDER BY usergroup",
        )
        .fetch_all(&self.pool)
        .await
        .map_err(db)?;
        Ok(gather_organizations(orgs, domains, groups))
    }

    async fn put_organization(&self, org: &Organization) -> Result<(), AccountError> {
        let mut tx = self.pool.begin().await.map_err(db)?;
        sqlx::query("INSERT INTO organizations (id, name) VALUES (?, ?) ON CONFLICT (id) DO UPDATE SET name = excluded.name")
            .bind(&org.id)
            .bind(&org.name)
            .execute(&mut *tx)
            .await
            .map_err(db)?;
        for table in ["organization_domains", "organization_usergroups"] {
            sqlx::query(&format!("DELETE FROM {table} WHERE organization_id = ?"))
                .bind(&org.id)
                .execute(&mut *tx)
                .await
                .map_err(db)?;
        }
        for domain in &org.domains {
            let inserted =
                sqlx::query("INSERT INTO organization_domains (domain, organization_id) VALUES (?, ?)")
                    .bind(domain)
                    .bind(&org.id)
                    .execute(&mut *tx)
                    .await;
            match inserted {
                Err(sqlx::Error::Database(e)) if e.is_unique_violation() => {
                    return Err(AccountError::DomainTaken(domain.clone()));
                }
                other => other.map_err(db)?,
            };
        }
        for g in &org.usergroups {
            sqlx::query(
                "INSERT OR IGNORE INTO organization_usergroups (organization_id, usergroup) VALUES (?, ?)",
            )
            .bind(&org.id)
            .bind(g)
            .execute(&mut *tx)
            .await
            .map_err(db)?;
        }
        tx.commit().await.map_err(db)
    }

    async fn delete_organization(&self, id: &str) -> Result<(), AccountError> {
        let done = sqlx::query("DELETE FROM organizations WHERE id = ?")
            .bind(id)
            .execute(&self.pool)
            .await
            .map_err(db)?;
        super::one_account(done.rows_affected())
    }
}
