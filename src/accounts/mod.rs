//! Accounts: the record deskgate keeps for each person, and the store trait with its
//! backends. Migrations are plain SQL files embedded in the binary.

mod factors;
mod keys;
mod listing;
mod postgres;
mod profile;
mod sqlite;
pub mod tokens;

use std::future::Future;

use deskgate_builtin::{CredentialSource, StoredCredential};
use deskgate_provider::AuthError;

pub use factors::{FactorStore, TotpFactor};
pub use keys::{Added, KeyStore, NewKey, StoredKey};
pub use listing::{AccountPage, AccountQuery, Listed, Membership};
pub use postgres::PostgresStore;
pub use profile::ProfileStore;
pub use sqlite::SqliteStore;
pub use tokens::{ApiToken, TokenStore};

pub use crate::usergroups::Organization;

/// A person's account.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Account {
    /// Stable id, sent to the backend as the user id.
    pub id: String,
    /// Email address (the built-in login name), if any.
    pub email: Option<String>,
    /// Whether `email` is verified: validated by the sign-up mail, vouched for by an identity
    /// provider, or set by an administrator. Only a verified address grants anything
    /// (organizations by domain, `[[assignments]]`) or links a provider's identity.
    pub email_verified: bool,
    /// Display name.
    pub name: String,
    /// Whether sign-in is refused.
    pub disabled: bool,
    /// Where it stands in sign-up.
    pub status: AccountStatus,
    /// When it was created (Unix seconds).
    pub created_at: u64,
    /// Usergroups assigned to it.
    pub usergroups: Vec<String>,
}

/// Where an account stands in sign-up. Only an active one signs in.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum AccountStatus {
    /// Signs in (subject to `disabled`).
    #[default]
    Active,
    /// Signed up; waits for its email address to be confirmed.
    PendingValidation,
    /// Signed up; waits for an administrator.
    PendingApproval,
    /// An administrator turned the sign-up down: it never signs in.
    Rejected,
}

impl AccountStatus {
    /// The stored spelling.
    pub fn as_str(self) -> &'static str {
        match self {
            AccountStatus::Active => "active",
            AccountStatus::PendingValidation => "pending-validation",
            AccountStatus::PendingApproval => "pending-approval",
            AccountStatus::Rejected => "rejected",
        }
    }

    /// Reads a stored spelling; an unknown one is treated as rejected, so that it never
    /// lets anyone in.
    pub fn parse(s: &str) -> AccountStatus {
        match s {
            "active" => AccountStatus::Active,
            "pending-validation" => AccountStatus::PendingValidation,
            "pending-approval" => AccountStatus::PendingApproval,
            _ => AccountStatus::Rejected,
        }
    }

    /// Why a built-in sign-in is refused, as the person is told it; `None` when active.
    pub fn pending_reason(self) -> Option<&'static str> {
        match self {
            AccountStatus::Active => None,
            AccountStatus::PendingValidation => {
                Some("Please confirm your email address first: open the link in the email we sent you.")
            }
            AccountStatus::PendingApproval => Some(
                "An administrator has not approved this account yet. You can sign in once it is approved.",
            ),
            AccountStatus::Rejected => Some("This sign-up was not approved. The account cannot sign in."),
        }
    }
}

/// What is needed to create an account.
#[derive(Debug, Clone, Default)]
pub struct NewAccount {
    /// Email address.
    pub email: Option<String>,
    /// Display name.
    pub name: String,
    /// argon2id hash, for built-in sign-in.
    pub password_hash: Option<String>,
    /// Usergroups to assign.
    pub usergroups: Vec<String>,
    /// Where it starts in sign-up.
    pub status: AccountStatus,
    /// Creation time (Unix seconds).
    pub created_at: u64,
    /// Whether `email` is verified (see [`Account::email_verified`]). A verified address
    /// takes the address from an account that holds it unverified.
    pub email_verified: bool,
    /// A provider identity (provider id, subject) linked to the account in the same
    /// transaction, so that an account made at a first sign-in never exists without its link.
    pub link: Option<(String, String)>,
}

/// Logs that an account lost an address it held unverified to a verified claim of it.
fn log_released(account_id: &str) {
    tracing::info!(
        target: "deskgate::audit",
        account = %account_id,
        "Unverified email address released: another account verified it"
    );
}

/// Why an account operation failed.
#[derive(Debug, thiserror::Error)]
pub enum AccountError {
    /// Another account already has this email.
    #[error("an account with this email already exists")]
    EmailTaken,
    /// No such account.
    #[error("no such account")]
    NotFound,
    /// Another organization already has this email domain.
    #[error("the domain {0} already belongs to another organization")]
    DomainTaken(String),
    /// The database failed.
    #[error("account store failed")]
    Database(#[source] Box<dyn std::error::Error + Send + Sync>),
    /// The SQLite file (or its folder, where the journal goes) cannot be written.
    #[error("{0} is read-only: the account store needs to write it (and its folder, for the journal)")]
    ReadOnly(std::path::PathBuf),
}

/// What a provider said of an account at its last sign-in through it, as the provider put it.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ProviderClaims {
    /// Provider id.
    pub provider: String,
    /// Its group names, sorted.
    pub groups: Vec<String>,
    /// Organization names it gave, sorted.
    pub organizations: Vec<String>,
    /// The attributes it gave that deskgate used (`name: value`: subject, username, email,
    /// name, ...), sorted: for administrators debugging a mapping.
    pub attributes: Vec<String>,
}

/// Most values of one kind kept per provider and account: enough for any directory's nesting,
/// and a bound on what one sign-in can write.
pub const CLAIMS_MAX: usize = 1000;

/// Claims rows `(provider, kind, value)` as [`ProviderClaims`], in provider order.
fn gather_claims(rows: Vec<(String, String, String)>) -> Vec<ProviderClaims> {
    let mut out: Vec<ProviderClaims> = Vec::new();
    for (provider, kind, value) in rows {
        if out.last().is_none_or(|c| c.provider != provider) {
            out.push(ProviderClaims { provider, ..Default::default() });
        }
        let Some(claims) = out.last_mut() else { continue };
        match kind.as_str() {
            "group" => claims.groups.push(value),
            "organization" => claims.organizations.push(value),
            "attribute" => claims.attributes.push(value),
            _ => {}
        }
    }
    out
}

/// The `(kind, value)` rows to store for a provider's claims: deduplicated, at most
/// [`CLAIMS_MAX`] of each kind.
fn claim_rows(claims: &ProviderClaims) -> Vec<(&'static str, &str)> {
    let mut rows = Vec::new();
    for (kind, values) in [
        ("group", &claims.groups),
        ("organization", &claims.organizations),
        ("attribute", &claims.attributes),
    ] {
        let set: std::collections::BTreeSet<&str> = values.iter().map(String::as_str).collect();
        if set.len() > CLAIMS_MAX {
            tracing::warn!(
                kind,
                count = set.len(),
                kept = CLAIMS_MAX,
                "A provider gave more values than are kept"
            );
        }
        rows.extend(set.into_iter().take(CLAIMS_MAX).map(|v| (kind, v)));
    }
    rows
}

/// Claims rows `(account id, provider, kind, value)`, sorted, handed out to `listed`.
fn attach_claims(listed: &mut [Listed], rows: Vec<(String, String, String, String)>) {
    let mut by_account: std::collections::HashMap<String, Vec<(String, String, String)>> = Default::default();
    for (account, provider, kind, value) in rows {
        by_account.entry(account).or_default().push((provider, kind, value));
    }
    for l in listed {
        if let Some(rows) = by_account.remove(&l.account.id) {
            l.claims = gather_claims(rows);
        }
    }
}

/// Organizations from their rows: `(id, name)`, `(organization id, domain)` and
/// `(organization id, usergroup)`, each sorted by its second column.
fn gather_organizations(
    orgs: Vec<(String, String)>,
    domains: Vec<(String, String)>,
    usergroups: Vec<(String, String)>,
) -> Vec<Organization> {
    let mut out: Vec<Organization> = orgs
        .into_iter()
        .map(|(id, name)| Organization { id, name, domains: Vec::new(), usergroups: Vec::new() })
        .collect();
    out.sort_by(|a, b| a.id.cmp(&b.id));
    for (id, domain) in domains {
        if let Ok(i) = out.binary_search_by(|o| o.id.as_str().cmp(&id)) {
            out[i].domains.push(domain);
        }
    }
    for (id, usergroup) in usergroups {
        if let Ok(i) = out.binary_search_by(|o| o.id.as_str().cmp(&id)) {
            out[i].usergroups.push(usergroup);
        }
    }
    out
}

/// A database error as the account stores report it.
fn db(e: sqlx::Error) -> AccountError {
    AccountError::Database(Box::new(e))
}

/// A stored time or step: non-negative, though SQL integers are signed.
fn unsigned(v: i64) -> u64 {
    u64::try_from(v).unwrap_or(0)
}

/// A time or step as SQL stores it.
fn signed(v: u64) -> i64 {
    i64::try_from(v).unwrap_or(i64::MAX)
}

/// An update or delete that matched no row names no account.
fn one_account(rows_affected: u64) -> Result<(), AccountError> {
    if rows_affected == 0 { Err(AccountError::NotFound) } else { Ok(()) }
}

/// A new random account id.
pub fn new_account_id() -> String {
    let b: [u8; 16] = rand::random();
    let h = |r: std::ops::Range<usize>| b[r].iter().map(|x| format!("{x:02x}")).collect::<String>();
    format!("{}-{}-{}-{}-{}", h(0..4), h(4..6), h(6..8), h(8..10), h(10..16))
}

/// Where accounts live.
pub trait AccountStore: Send + Sync {
    /// Creates an account; the email must be unused (case-insensitively), except that a
    /// verified one takes the address from an account that holds it unverified (see
    /// [`AccountStore::set_email`]).
    fn create(&self, new: NewAccount) -> impl Future<Output = Result<Account, AccountError>> + Send;
    /// The account with this id.
    fn by_id(&self, id: &str) -> impl Future<Output = Result<Option<Account>, AccountError>> + Send;
    /// The account with this email, case-insensitively.
    fn by_email(&self, email: &str) -> impl Future<Output = Result<Option<Account>, AccountError>> + Send;
    /// The account linked to a provider's subject.
    fn by_link(
        &self,
        provider: &str,
        subject: &str,
    ) -> impl Future<Output = Result<Option<Account>, AccountError>> + Send;
    /// Links a provider's subject to an account.
    fn link(
        &self,
        provider: &str,
        subject: &str,
        account_id: &str,
    ) -> impl Future<Output = Result<(), AccountError>> + Send;
    /// Replaces the usergroups assigned to an account.
    fn set_usergroups(
        &self,
        account_id: &str,
        usergroups: &[String],
    ) -> impl Future<Output = Result<(), AccountError>> + Send;
    /// The built-in credential for an email.
    fn credential(
        &self,
        email: &str,
    ) -> impl Future<Output = Result<Option<StoredCredential>, AccountError>> + Send;
    /// The accounts matching `query`, `limit` of them from `offset`, with the total.
    fn list(
        &self,
        query: &AccountQuery,
        offset: u64,
        limit: u64,
    ) -> impl Future<Output = Result<AccountPage, AccountError>> + Send;
    /// How many accounts are members of each usergroup (see [`Membership`]), in the order
    /// given. Disabled accounts are members too.
    fn count_by_usergroup(
        &self,
        groups: &[Membership],
    ) -> impl Future<Output = Result<Vec<u64>, AccountError>> + Send;
    /// How an account signs in: `builtin` when it has a password, then each linked provider.
    fn providers(&self, account_id: &str) -> impl Future<Output = Result<Vec<String>, AccountError>> + Send;
    /// The ids of the accounts a reference names, for administrators: an account id, a
    /// provider subject (alone, or as `provider subject`), or a username a provider gave at
    /// the last sign-in (without regard to ASCII case). Sorted.
    fn by_reference(&self, reference: &str)
    -> impl Future<Output = Result<Vec<String>, AccountError>> + Send;
    /// The provider sign-ins linked to an account, `(provider, subject)`, sorted.
    fn links(
        &self,
        account_id: &str,
    ) -> impl Future<Output = Result<Vec<(String, String)>, AccountError>> + Send;
    /// Removes a provider sign-in from an account; `NotFound` when it is not linked to it.
    fn unlink(
        &self,
        provider: &str,
        subject: &str,
        account_id: &str,
    ) -> impl Future<Output = Result<(), AccountError>> + Send;
    /// Replaces the password of an account that signs in with one, and counts the change:
    /// returns the account's new password serial. [`AccountError::NotFound`] when no such
    /// account has a password.
    fn set_password(
        &self,
        account_id: &str,
        password_hash: &str,
    ) -> impl Future<Output = Result<u64, AccountError>> + Send;
    /// How many times the account's password was replaced (0 for a missing account): a
    /// session made under an earlier serial has ended.
    fn password_serial(&self, account_id: &str) -> impl Future<Output = Result<u64, AccountError>> + Send;
    /// Disables (sign-in refused) or enables an account.
    fn set_disabled(
        &self,
        account_id: &str,
        disabled: bool,
    ) -> impl Future<Output = Result<(), AccountError>> + Send;
    /// Moves an account to `status`.
    fn set_status(
        &self,
        account_id: &str,
        status: AccountStatus,
    ) -> impl Future<Output = Result<(), AccountError>> + Send;
    /// Sets (or with `None` clears) an account's email and whether it is verified. The
    /// address must be unused by other accounts (case-insensitively), except that a verified
    /// address takes it from an account that holds it unverified: that account's email is
    /// cleared, so an unproven claim never keeps an address from its owner.
    fn set_email(
        &self,
        account_id: &str,
        email: Option<&str>,
        verified: bool,
    ) -> impl Future<Output = Result<(), AccountError>> + Send;
    /// Activates a sign-up waiting for its validation link, with the address the link
    /// proved, verified (taken from an account that holds it unverified, as by
    /// [`AccountStore::set_email`]): all in one transaction, so that a failure leaves the
    /// sign-up waiting and every address as it was. [`AccountError::NotFound`] when no
    /// account with this id is waiting for its link.
    fn confirm_email(
        &self,
        account_id: &str,
        email: &str,
    ) -> impl Future<Output = Result<(), AccountError>> + Send;
    /// Deletes an account with its links and usergroups.
    fn delete(&self, account_id: &str) -> impl Future<Output = Result<(), AccountError>> + Send;
    /// Replaces what `claims.provider` said of an account (its groups, the organizations it
    /// named, the attributes used).
    fn set_provider_claims(
        &self,
        account_id: &str,
        claims: &ProviderClaims,
    ) -> impl Future<Output = Result<(), AccountError>> + Send;
    /// What each provider said of an account at its last sign-in, by provider.
    fn provider_claims(
        &self,
        account_id: &str,
    ) -> impl Future<Output = Result<Vec<ProviderClaims>, AccountError>> + Send;
    /// The stored organizations, by id, each with its domains and usergroups sorted.
    fn organizations(&self) -> impl Future<Output = Result<Vec<Organization>, AccountError>> + Send;
    /// Creates or replaces an organization (name, domains, usergroups) under its id. A domain
    /// of another organization refuses the whole change.
    fn put_organization(&self, org: &Organization) -> impl Future<Output = Result<(), AccountError>> + Send;
    /// Deletes an organization.
    fn delete_organization(&self, id: &str) -> impl Future<Output = Result<(), AccountError>> + Send;
}

/// The configured account store.
#[derive(Debug, Clone)]
pub enum Accounts {
    /// SQLite.
    Sqlite(SqliteStore),
    /// PostgreSQL.
    Postgres(PostgresStore),
}

macro_rules! delegate {
    ($self:ident, $s:ident => $e:expr) => {
        match $self {
            Accounts::Sqlite($s) => $e,
            Accounts::Postgres($s) => $e,
        }
    };
}

impl Accounts {
    /// Whether the database answers a trivial query, for readiness checks.
    pub async fn ping(&self) -> Result<(), AccountError> {
        delegate!(self, s => s.ping().await)
    }
}

impl AccountStore for Accounts {
    async fn create(&self, new: NewAccount) -> Result<Account, AccountError> {
        delegate!(self, s => s.create(new).await)
    }
    async fn by_id(&self, id: &str) -> Result<Option<Account>, AccountError> {
        delegate!(self, s => s.by_id(id).await)
    }
    async fn by_email(&self, email: &str) -> Result<Option<Account>, AccountError> {
        delegate!(self, s => s.by_email(email).await)
    }
    async fn by_link(&self, provider: &str, subject: &str) -> Result<Option<Account>, AccountError> {
        delegate!(self, s => s.by_link(provider, subject).await)
    }
    async fn link(&self, provider: &str, subject: &str, account_id: &str) -> Result<(), AccountError> {
        delegate!(self, s => s.link(provider, subject, account_id).await)
    }
    async fn set_usergroups(&self, account_id: &str, usergroups: &[String]) -> Result<(), AccountError> {
        delegate!(self, s => s.set_usergroups(account_id, usergroups).await)
    }
    async fn credential(&self, email: &str) -> Result<Option<StoredCredential>, AccountError> {
        delegate!(self, s => s.credential(email).await)
    }
    async fn list(&self, query: &AccountQuery, offset: u64, limit: u64) -> Result<AccountPage, AccountError> {
        delegate!(self, s => s.list(query, offset, limit).await)
    }
    async fn count_by_usergroup(&self, groups: &[Membership]) -> Result<Vec<u64>, AccountError> {
        delegate!(self, s => s.count_by_usergroup(groups).await)
    }
    async fn providers(&self, account_id: &str) -> Result<Vec<String>, AccountError> {
        delegate!(self, s => s.providers(account_id).await)
    }
    async fn by_reference(&self, reference: &str) -> Result<Vec<String>, AccountError> {
        delegate!(self, s => s.by_reference(reference).await)
    }
    async fn links(&self, account_id: &str) -> Result<Vec<(String, String)>, AccountError> {
        delegate!(self, s => s.links(account_id).await)
    }
    async fn unlink(&self, provider: &str, subject: &str, account_id: &str) -> Result<(), AccountError> {
        delegate!(self, s => s.unlink(provider, subject, account_id).await)
    }
    async fn set_password(&self, account_id: &str, password_hash: &str) -> Result<u64, AccountError> {
        delegate!(self, s => s.set_password(account_id, password_hash).await)
    }
    async fn password_serial(&self, account_id: &str) -> Result<u64, AccountError> {
        delegate!(self, s => s.password_serial(account_id).await)
    }
    async fn set_disabled(&self, account_id: &str, disabled: bool) -> Result<(), AccountError> {
        delegate!(self, s => s.set_disabled(account_id, disabled).await)
    }
    async fn set_status(&self, account_id: &str, status: AccountStatus) -> Result<(), AccountError> {
        delegate!(self, s => s.set_status(account_id, status).await)
    }
    async fn set_email(
        &self,
        account_id: &str,
        email: Option<&str>,
        verified: bool,
    ) -> Result<(), AccountError> {
        delegate!(self, s => s.set_email(account_id, email, verified).await)
    }
    async fn confirm_email(&self, account_id: &str, email: &str) -> Result<(), AccountError> {
        delegate!(self, s => s.confirm_email(account_id, email).await)
    }
    async fn delete(&self, account_id: &str) -> Result<(), AccountError> {
        delegate!(self, s => s.delete(account_id).await)
    }
    async fn set_provider_claims(
        &self,
        account_id: &str,
        claims: &ProviderClaims,
    ) -> Result<(), AccountError> {
        delegate!(self, s => s.set_provider_claims(account_id, claims).await)
    }
    async fn provider_claims(&self, account_id: &str) -> Result<Vec<ProviderClaims>, AccountError> {
        delegate!(self, s => s.provider_claims(account_id).await)
    }
    async fn organizations(&self) -> Result<Vec<Organization>, AccountError> {
        delegate!(self, s => s.organizations().await)
    }
    async fn put_organization(&self, org: &Organization) -> Result<(), AccountError> {
        delegate!(self, s => s.put_organization(org).await)
    }
    async fn delete_organization(&self, id: &str) -> Result<(), AccountError> {
        delegate!(self, s => s.delete_organization(id).await)
    }
}

impl CredentialSource for Accounts {
    async fn credential(&self, email: &str) -> Result<Option<StoredCredential>, AuthError> {
        AccountStore::credential(self, email).await.map_err(|e| AuthError::Unavailable(Box::new(e)))
    }
}

#[cfg(test)]
pub(crate) mod conformance;
