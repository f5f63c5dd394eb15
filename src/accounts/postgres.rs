//! The shared account store: PostgreSQL, for several replicas of the gateway.

use deskgate_builtin::StoredCredential;
use sqlx::postgres::{PgConnection, PgPool, PgRow};
use sqlx::{Postgres, QueryBuilder, Row};

use super::listing::{self, push_where};
use super::{
    Account, AccountError, AccountPage, AccountQuery, AccountStatus, AccountStore, Listed, Membership,
    NewAccount, Organization, ProviderClaims, attach_claims, claim_rows, gather_claims, gather_organizations,
    new_account_id,
};

mod open;

pub(super) const MIGRATIONS: &[(i64, &str)] = &[
    (1, include_str!("../../migrations/postgres/0001_accounts.sql")),
    (2, include_str!("../../migrations/postgres/0002_account_status.sql")),
    (3, include_str!("../../migrations/postgres/0003_organizations_and_claims.sql")),
    (4, include_str!("../../migrations/postgres/0004_email_verified.sql")),
    (5, include_str!("../../migrations/postgres/0005_password_serial.sql")),
    (7, include_str!("../../migrations/postgres/0007_api_tokens.sql")),
    (8, include_str!("../../migrations/postgres/0008_second_factors.sql")),
    (9, include_str!("../../migrations/postgres/0009_security_keys.sql")),
];

/// Name of the unique constraint on `email_lower`, told apart from other unique violations.
const EMAIL_UNIQUE: &str = "accounts_email_lower_unique";

/// Selects accounts with their usergroups in one round trip. The usergroups come in byte
/// order (collation "C"), the order a Rust sort gives and the SQLite store returns.
macro_rules! select_account {
    ($from_where:literal) => {
        concat!(
            "SELECT a.id, a.email, a.email_verified, a.name, a.disabled, a.status, a.created_at, ",
            "COALESCE(array_agg(g.usergroup ORDER BY g.usergroup COLLATE \"C\") ",
            "FILTER (WHERE g.usergroup IS NOT NULL), '{}') AS usergroups ",
            $from_where,
            " GROUP BY a.id"
        )
    };
}

fn db(e: impl std::error::Error + Send + Sync + 'static) -> AccountError {
    AccountError::Database(Box::new(e))
}

/// Accounts in a PostgreSQL database.
#[derive(Debug, Clone)]
pub struct PostgresStore {
    pub(super) pool: PgPool,
}

impl PostgresStore {
    /// Runs a trivial query.
    pub async fn ping(&self) -> Result<(), AccountError> {
        sqlx::query("SELECT 1").execute(&self.pool).await.map(|_| ()).map_err(db)
    }
}

fn account(row: &PgRow) -> Result<Account, AccountError> {
    Ok(Account {
        id: row.try_get("id").map_err(db)?,
        email: row.try_get("email").map_err(db)?,
        email_verified: row.try_get("email_verified").map_err(db)?,
        name: row.try_get("name").map_err(db)?,
        disabled: row.try_get("disabled").map_err(db)?,
        status: AccountStatus::parse(row.try_get("status").map_err(db)?),
        created_at: u64::try_from(row.try_get::<i64, _>("created_at").map_err(db)?).unwrap_or(0),
        usergroups: row.try_get("usergroups").map_err(db)?,
    })
}

impl PostgresStore {
    async fn one(&self, sql: &'static str, args: &[&str]) -> Result<Option<Account>, AccountError> {
        let mut query = sqlx::query(sql);
        for a in args {
            query = query.bind(*a);
        }
        let row = query.fetch_optional(&self.pool).await.map_err(db)?;
        row.as_ref().map(account).transpose()
    }
}

impl PostgresStore {
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
            Err(sqlx::Error::Database(e))
                if e.is_unique_violation() && e.constraint() == Some(EMAIL_UNIQUE) =>
            {
                return Err(AccountError::EmailTaken);
            }
            other => other.map_err(db)?,
        };
        super::one_account(done.rows_affected())?;
        tx.commit().await.map_err(db)
    }

    async fn count(&self, query: &AccountQuery) -> Result<u64, AccountError> {
        let mut qb = QueryBuilder::<Postgres>::new("SELECT count(*) FROM accounts a");
        push_where(&mut qb, query);
        let n: i64 = qb.build_query_scalar().fetch_one(&self.pool).await.map_err(db)?;
        Ok(u64::try_from(n).unwrap_or(0))
    }
}

/// Locks the account's row for the rest of `tx`, so that concurrent replacements of what
/// hangs off it take turns; fails with [`AccountError::NotFound`] when there is none.
async fn lock_account(tx: &mut PgConnection, account_id: &str) -> Result<(), AccountError> {
    let exists: Option<String> = sqlx::query_scalar("SELECT id FROM accounts WHERE id = $1 FOR UPDATE")
        .bind(account_id)
        .fetch_optional(&mut *tx)
        .await
        .map_err(db)?;
    exists.map(drop).ok_or(AccountError::NotFound)
}

/// Clears `email_lower` from another account that holds it unverified, inside `tx`: a
/// verified address takes precedence over an unclaimed copy (see [`AccountStore::set_email`]).
async fn release_unverified(
    tx: &mut PgConnection,
    email_lower: &str,
    keep: &str,
) -> Result<(), AccountError> {
    let released: Option<String> = sqlx::query_scalar(
        "UPDATE accounts SET email = NULL, email_lower = NULL, email_verified = FALSE \
         WHERE email_lower = $1 AND NOT email_verified AND id <> $2 RETURNING id",
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

/// The usergroups and linked providers of the account `a`, each in byte order.
const GROUPS_AND_LINKS: &str = "COALESCE((SELECT array_agg(g.usergroup ORDER BY g.usergroup COLLATE \"C\") \
     FROM account_usergroups g WHERE g.account_id = a.id), '{}') AS usergroups, \
     COALESCE((SELECT array_agg(p ORDER BY p COLLATE \"C\") FROM \
     (SELECT DISTINCT l.provider AS p FROM account_links l WHERE l.account_id = a.id) d), '{}') AS linked";

impl AccountStore for PostgresStore {
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
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8)",
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
            Err(sqlx::Error::Database(e))
                if e.is_unique_violation() && e.constraint() == Some(EMAIL_UNIQUE) =>
            {
                return Err(AccountError::EmailTaken);
            }
            other => other.map_err(db)?,
        };
        sqlx::query(
            "INSERT INTO account_usergroups (account_id, usergroup) SELECT $1, unnest($2::text[]) ON CONFLICT DO NOTHING",
        )
        .bind(&id)
        .bind(new.usergroups.as_slice())
        .execute(&mut *tx)
        .await
        .map_err(db)?;
        if let Some((provider, subject)) = &new.link {
            sqlx::query(
                "INSERT INTO account_links (provider, subject, account_id) VALUES ($1, $2, $3) \
                 ON CONFLICT (provider, subject) DO UPDATE SET account_id = EXCLUDED.account_id",
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
        let sql = select_account!(
            "FROM accounts a LEFT JOIN account_usergroups g ON g.account_id = a.id WHERE a.id = $1"
        );
        self.one(sql, &[id]).await
    }

    async fn by_email(&self, email: &str) -> Result<Option<Account>, AccountError> {
        let sql = select_account!(
            "FROM accounts a LEFT JOIN account_usergroups g ON g.account_id = a.id WHERE a.email_lower = $1"
        );
        self.one(sql, &[&email.to_lowercase()]).await
    }

    async fn by_link(&self, provider: &str, subject: &str) -> Result<Option<Account>, AccountError> {
        let sql = select_account!(
            "FROM account_links l JOIN accounts a ON a.id = l.account_id \
             LEFT JOIN account_usergroups g ON g.account_id = a.id \
             WHERE l.provider = $1 AND l.subject = $2"
        );
        self.one(sql, &[provider, subject]).await
    }

    async fn link(&self, provider: &str, subject: &str, account_id: &str) -> Result<(), AccountError> {
        sqlx::query(
            "INSERT INTO account_links (provider, subject, account_id) VALUES ($1, $2, $3) \
             ON CONFLICT (provider, subject) DO UPDATE SET account_id = EXCLUDED.account_id",
        )
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
        // Locking the account's row makes concurrent replacements take turns; without it two
        // could each delete the old set and leave the union of both new ones.
        lock_account(&mut tx, account_id).await?;
        sqlx::query("DELETE FROM account_usergroups WHERE account_id = $1")
            .bind(account_id)
            .execute(&mut *tx)
            .await
            .map_err(db)?;
        sqlx::query(
            "INSERT INTO account_usergroups (account_id, usergroup) SELECT $1, unnest($2::text[]) ON CONFLICT DO NOTHING",
        )
        .bind(account_id)
        .bind(usergroups)
        .execute(&mut *tx)
        .await
        .map_err(db)?;
        tx.commit().await.map_err(db)
    }

    async fn credential(&self, email: &str) -> Result<Option<StoredCredential>, AccountError> {
        let row = sqlx::query(
            "SELECT id, email, name, password_hash, disabled, status FROM accounts \
             WHERE email_lower = $1 AND password_hash IS NOT NULL",
        )
        .bind(email.to_lowercase())
        .fetch_optional(&self.pool)
        .await
        .map_err(db)?;
        let Some(row) = row else {
            return Ok(None);
        };
        Ok(Some(StoredCredential {
            account_id: row.try_get("id").map_err(db)?,
            email: row.try_get("email").map_err(db)?,
            name: row.try_get("name").map_err(db)?,
            password_hash: row.try_get("password_hash").map_err(db)?,
            disabled: row.try_get("disabled").map_err(db)?,
            pending: AccountStatus::parse(row.try_get("status").map_err(db)?).pending_reason(),
        }))
    }

    async fn list(&self, query: &AccountQuery, offset: u64, limit: u64) -> Result<AccountPage, AccountError> {
        let total = self.count(query).await?;
        let mut qb = QueryBuilder::<Postgres>::new(format!(
            "SELECT a.id, a.email, a.email_verified, a.name, a.disabled, a.status, a.created_at, \
             a.password_hash IS NOT NULL AS has_password, {GROUPS_AND_LINKS} FROM accounts a"
        ));
        push_where(&mut qb, query);
        qb.push(" ORDER BY a.email_lower IS NULL, a.email_lower COLLATE \"C\", a.id COLLATE \"C\" LIMIT ")
            .push_bind(i64::try_from(limit).unwrap_or(i64::MAX))
            .push(" OFFSET ")
            .push_bind(i64::try_from(offset).unwrap_or(i64::MAX));
        let rows = qb.build().fetch_all(&self.pool).await.map_err(db)?;
        let mut accounts = Vec::with_capacity(rows.len());
        for row in &rows {
            let has_password: bool = row.try_get("has_password").map_err(db)?;
            let linked: Vec<String> = row.try_get("linked").map_err(db)?;
            let providers = listing::providers(has_password, linked);
            accounts.push(Listed { account: account(row)?, providers, claims: Vec::new() });
        }
        let ids: Vec<&str> = accounts.iter().map(|l| l.account.id.as_str()).collect();
        if !ids.is_empty() {
            let rows = sqlx::query_as(
                "SELECT account_id, provider, kind, value FROM account_provider_claims \
                 WHERE account_id = ANY($1) ORDER BY account_id, provider COLLATE \"C\", kind, value COLLATE \"C\"",
            )
            .bind(&ids)
            .fetch_all(&self.pool)
            .await
            .map_err(db)?;
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
        let row = sqlx::query(&format!(
            "SELECT a.password_hash IS NOT NULL AS has_password, {GROUPS_AND_LINKS} FROM accounts a WHERE a.id = $1"
        ))
        .bind(account_id)
        .fetch_optional(&self.pool)
        .await
        .map_err(db)?;
        let Some(row) = row else {
            return Err(AccountError::NotFound);
        };
        let has_password: bool = row.try_get("has_password").map_err(db)?;
        Ok(listing::providers(has_password, row.try_get("linked").map_err(db)?))
    }

    async fn by_reference(&self, reference: &str) -> Result<Vec<String>, AccountError> {
        sqlx::query_scalar(
            "SELECT id FROM accounts WHERE id = $1 \
             UNION SELECT account_id FROM account_links WHERE subject = $1 OR provider || ' ' || subject = $1 \
             UNION SELECT account_id FROM account_provider_claims \
             WHERE kind = 'attribute' AND lower(value) = lower('username: ' || $1) ORDER BY 1",
        )
        .bind(reference)
        .fetch_all(&self.pool)
        .await
        .map_err(db)
    }

    async fn links(&self, account_id: &str) -> Result<Vec<(String, String)>, AccountError> {
        sqlx::query_as(
            "SELECT provider, subject FROM account_links WHERE account_id = $1 ORDER BY provider, subject",
        )
        .bind(account_id)
        .fetch_all(&self.pool)
        .await
        .map_err(db)
    }

    async fn unlink(&self, provider: &str, subject: &str, account_id: &str) -> Result<(), AccountError> {
        let done =
            sqlx::query("DELETE FROM account_links WHERE provider = $1 AND subject = $2 AND account_id = $3")
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
            "UPDATE accounts SET password_hash = $1, password_serial = password_serial + 1 \
             WHERE id = $2 AND password_hash IS NOT NULL RETURNING password_serial",
        )
        .bind(password_hash)
        .bind(account_id)
        .fetch_optional(&self.pool)
        .await
        .map_err(db)?;
        serial.map(|n| n.max(0) as u64).ok_or(AccountError::NotFound)
    }

    async fn password_serial(&self, account_id: &str) -> Result<u64, AccountError> {
        let serial: Option<i64> = sqlx::query_scalar("SELECT password_serial FROM accounts WHERE id = $1")
            .bind(account_id)
            .fetch_optional(&self.pool)
            .await
            .map_err(db)?;
        Ok(serial.unwrap_or(0).max(0) as u64)
    }

    async fn set_disabled(&self, account_id: &str, disabled: bool) -> Result<(), AccountError> {
        let done = sqlx::query("UPDATE accounts SET disabled = $1 WHERE id = $2")
            .bind(disabled)
            .bind(account_id)
            .execute(&self.pool)
            .await
            .map_err(db)?;
        super::one_account(done.rows_affected())
    }

    async fn set_status(&self, account_id: &str, status: AccountStatus) -> Result<(), AccountError> {
        let done = sqlx::query("UPDATE accounts SET status = $1 WHERE id = $2")
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
        let sql = "UPDATE accounts SET email = $1, email_lower = $2, email_verified = $3 WHERE id = $4";
        self.write_email(sql, account_id, email, verified).await
    }

    async fn confirm_email(&self, account_id: &str, email: &str) -> Result<(), AccountError> {
        let sql = "UPDATE accounts SET email = $1, email_lower = $2, email_verified = $3, status = 'active' \
                   WHERE id = $4 AND status = 'pending-validation'";
        self.write_email(sql, account_id, Some(email), true).await
    }

    async fn delete(&self, account_id: &str) -> Result<(), AccountError> {
        let done = sqlx::query("DELETE FROM accounts WHERE id = $1")
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
        // The account's row lock makes two sign-ins through one provider take turns.
        lock_account(&mut tx, account_id).await?;
        sqlx::query("DELETE FROM account_provider_claims WHERE account_id = $1 AND provider = $2")
            .bind(account_id)
            .bind(provider)
            .execute(&mut *tx)
            .await
            .map_err(db)?;
        let (kinds, values): (Vec<&str>, Vec<&str>) = claim_rows(claims).into_iter().unzip();
        sqlx::query(
            "INSERT INTO account_provider_claims (account_id, provider, kind, value) \
             SELECT $1, $2, k, v FROM unnest($3::text[], $4::text[]) AS c(k, v) ON CONFLICT DO NOTHING",
        )
        .bind(account_id)
        .bind(provider)
        .bind(kinds)
        .bind(values)
        .execute(&mut *tx)
        .await
        .map_err(db)?;
        tx.commit().await.map_err(db)
    }

    async fn provider_claims(&self, account_id: &str) -> Result<Vec<ProviderClaims>, AccountError> {
        let rows: Vec<(String, String, String)> = sqlx::query_as(
            "SELECT provider, kind, value FROM account_provider_claims WHERE account_id = $1 \
             ORDER BY provider COLLATE \"C\", kind, value COLLATE \"C\"",
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
        let domains = sqlx::query_as(
            "SELECT organization_id, domain FROM organization_domains ORDER BY domain COLLATE \"C\"",
        )
        .fetch_all(&self.pool)
        .await
        .map_err(db)?;
        let groups = sqlx::query_as(
            "SELECT organization_id, usergroup FROM organization_usergroups ORDER BY usergroup COLLATE \"C\"",
        )
        .fetch_all(&self.pool)
        .await
        .map_err(db)?;
        Ok(gather_organizations(orgs, domains, groups))
    }

    async fn put_organization(&self, org: &Organization) -> Result<(), AccountError> {
        let mut tx = self.pool.begin().await.map_err(db)?;
        sqlx::query(
            "INSERT INTO organizations (id, name) VALUES ($1, $2) ON CONFLICT (id) DO UPDATE SET name = excluded.name",
        )
        .bind(&org.id)
        .bind(&org.name)
        .execute(&mut *tx)
        .await
        .map_err(db)?;
        for table in ["organization_domains", "organization_usergroups"] {
            sqlx::query(&format!("DELETE FROM {table} WHERE organization_id = $1"))
                .bind(&org.id)
                .execute(&mut *tx)
                .await
                .map_err(db)?;
        }
        for domain in &org.domains {
            let inserted =
                sqlx::query("INSERT INTO organization_domains (domain, organization_id) VALUES ($1, $2)")
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
        sqlx::query(
            "INSERT INTO organization_usergroups (organization_id, usergroup) \
             SELECT $1, unnest($2::text[]) ON CONFLICT DO NOTHING",
        )
        .bind(&org.id)
        .bind(&org.usergroups)
        .execute(&mut *tx)
        .await
        .map_err(db)?;
        tx.commit().await.map_err(db)
    }

    async fn delete_organization(&self, id: &str) -> Result<(), AccountError> {
        let done = sqlx::query("DELETE FROM organizations WHERE id = $1")
            .bind(id)
            .execute(&self.pool)
            .await
            .map_err(db)?;
        super::one_account(done.rows_affected())
    }
}
