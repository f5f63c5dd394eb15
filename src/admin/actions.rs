//! What an administrator can change, shared by the pages and the API: each change is
//! checked, stored, made to reach the person's sessions (by moving the account's epoch on)
//! and written to the audit log.

use std::collections::BTreeSet;

use super::{Admin, assignable};
use crate::accounts::{Account, AccountError, AccountStatus, AccountStore, NewAccount};
use crate::error::GatewayError;
use crate::session::{SessionStore, StoreError};
use crate::state::AppState;

/// Why a change was refused or failed.
#[derive(Debug, thiserror::Error)]
pub enum AdminError {
    /// No account has this id.
    #[error("no such account")]
    NoSuchAccount,
    /// The usergroup is built in or not defined.
    #[error("usergroup `{0}` cannot be assigned")]
    NotAssignable(String),
    /// Another account has the email.
    #[error("an account with this email already exists")]
    EmailTaken,
    /// A field is missing or malformed; the text says which, for the administrator.
    #[error("{0}")]
    Invalid(&'static str),
    /// No organization has this id (or it is one of the config file's).
    #[error("no such organization")]
    NoSuchOrganization,
    /// The change clashes with what exists; the text says how, for the administrator.
    #[error("{0}")]
    Conflict(String),
    /// A store failed; the rescue layer answers.
    #[error(transparent)]
    Failed(#[from] GatewayError),
}

impl AdminError {
    /// The HTTP status that tells a client what went wrong.
    pub fn status(&self) -> http::StatusCode {
        use http::StatusCode;
        match self {
            AdminError::Failed(_) => StatusCode::INTERNAL_SERVER_ERROR,
            AdminError::NoSuchAccount | AdminError::NoSuchOrganization => StatusCode::NOT_FOUND,
            AdminError::EmailTaken | AdminError::Conflict(_) => StatusCode::CONFLICT,
            AdminError::NotAssignable(_) | AdminError::Invalid(_) => StatusCode::UNPROCESSABLE_ENTITY,
        }
    }
}

impl From<AccountError> for AdminError {
    fn from(e: AccountError) -> AdminError {
        match e {
            AccountError::NotFound => AdminError::NoSuchAccount,
            AccountError::EmailTaken => AdminError::EmailTaken,
            AccountError::DomainTaken(d) => {
                AdminError::Conflict(format!("The domain {d} already belongs to another organization."))
            }
            e => AdminError::Failed(e.into()),
        }
    }
}

impl From<StoreError> for AdminError {
    fn from(e: StoreError) -> AdminError {
        AdminError::Failed(e.into())
    }
}

/// The account with this id.
pub async fn account(state: &AppState, id: &str) -> Result<Account, AdminError> {
    state.accounts.by_id(id).await?.ok_or(AdminError::NoSuchAccount)
}

/// `wanted` as a sorted set of assignable usergroup ids, or the first that is not one.
pub(super) fn checked(state: &AppState, wanted: &[String]) -> Result<Vec<String>, AdminError> {
    let mut out = BTreeSet::new();
    for id in wanted.iter().map(|id| id.trim()).filter(|id| !id.is_empty()) {
        if !assignable(&state.config.model).any(|g| g.id == id) {
            return Err(AdminError::NotAssignable(id.to_owned()));
        }
        out.insert(id.to_owned());
    }
    Ok(out.into_iter().collect())
}

/// Replaces the usergroups assigned to an account. The store is written first and the
/// epoch moved on after, so a session that sees the new epoch re-reads the new assignment;
/// if the epoch cannot be moved the change is reported as failed, and saving again is safe.
pub async fn set_usergroups(
    state: &AppState,
    admin: &Admin,
    id: &str,
    wanted: &[String],
) -> Result<Account, AdminError> {
    let usergroups = checked(state, wanted)?;
    let before = account(state, id).await?;
    state.accounts.set_usergroups(id, &usergroups).await?;
    state.sessions.bump_account_epoch(id).await?;
    let added: Vec<&String> = usergroups.iter().filter(|g| !before.usergroups.contains(g)).collect();
    let removed: Vec<&String> = before.usergroups.iter().filter(|g| !usergroups.contains(g)).collect();
    tracing::info!(
        target: "deskgate::audit",
        actor = %admin.account_id,
        account = %id,
        email = before.email.as_deref().unwrap_or("-"),
        ?added,
        ?removed,
        "Usergroups changed by an administrator"
    );
    Ok(Account { usergroups, ..before })
}

/// Disables or enables an account; a disabled account's sessions end on their next request.
pub async fn set_disabled(
    state: &AppState,
    admin: &Admin,
    id: &str,
    disabled: bool,
) -> Result<Account, AdminError> {
    if disabled && id == admin.account_id {
        return Err(AdminError::Invalid("You cannot disable your own account."));
    }
    let before = account(state, id).await?;
    state.accounts.set_disabled(id, disabled).await?;
    state.sessions.bump_account_epoch(id).await?;
    tracing::info!(
        target: "deskgate::audit",
        actor = %admin.account_id,
        account = %id,
        email = before.email.as_deref().unwrap_or("-"),
        "{}",
        if disabled { "Account disabled by an administrator" } else { "Account enabled by an administrator" }
    );
    Ok(Account { disabled, ..before })
}

/// Links a provider sign-in (its subject, as the refusal page and the audit log give it) to
/// an account: the person then signs in to it through that provider too. A sign-in linked to
/// another account is refused rather than moved.
pub async fn link(
    state: &AppState,
    admin: &Admin,
    id: &str,
    provider: &str,
    subject: &str,
) -> Result<(), AdminError> {
    let subject = subject.trim();
    if !state.config.account_policies().iter().any(|(p, _)| *p == provider) {
        return Err(AdminError::Invalid("Choose one of the configured sign-in providers."));
    }
    if subject.is_empty() || subject.len() > 1024 || subject.chars().any(char::is_control) {
        return Err(AdminError::Invalid("Give the sign-in's reference as the refusal page showed it."));
    }
    account(state, id).await?;
    if let Some(other) = state.accounts.by_link(provider, subject).await? {
        if other.id == id {
            return Ok(());
        }
        return Err(AdminError::Conflict(format!(
            "This sign-in is linked to another account ({}): unlink it there first.",
            other.email.as_deref().unwrap_or(&other.name)
        )));
    }
    state.accounts.link(provider, subject, id).await?;
    tracing::info!(
        target: "deskgate::audit",
        actor = %admin.account_id,
        account = %id,
        %provider,
        %subject,
        "Provider sign-in linked by an administrator"
    );
    Ok(())
}

/// Removes a provider sign-in from an account; its sessions through that provider end at
/// their next request.
pub async fn unlink(
    state: &AppState,
    admin: &Admin,
    id: &str,
    provider: &str,
    subject: &str,
) -> Result<(), AdminError> {
    account(state, id).await?;
    match state.accounts.unlink(provider, subject, id).await {
        Err(AccountError::NotFound) => {
            return Err(AdminError::Invalid("That sign-in is not linked to this account."));
        }
        other => other?,
    }
    state.sessions.bump_account_epoch(id).await?;
    tracing::info!(
        target: "deskgate::audit",
        actor = %admin.account_id,
        account = %id,
        %provider,
        %subject,
        "Provider sign-in unlinked by an administrator"
    );
    Ok(())
}

/// The id of another account than `except` that holds `email` unverified (and would lose it
/// to a verified claim), so that its sessions can be told.
async fn unverified_holder(
    state: &AppState,
    email: &str,
    except: Option<&str>,
) -> Result<Option<String>, AdminError> {
    let holder = state.accounts.by_email(email).await?;
    Ok(holder.filter(|a| !a.email_verified && Some(a.id.as_str()) != except).map(|a| a.id))
}

/// Sets an account's email address, verified: an administrator vouches for it. An account
/// that holds the address unverified loses it; one that holds it verified keeps it, and the
/// change is refused.
pub async fn set_email(
    state: &AppState,
    admin: &Admin,
    id: &str,
    email: &str,
) -> Result<Account, AdminError> {
    let email = email.trim().to_owned();
    if !plausible_email(&email) {
        return Err(AdminError::Invalid("Please give a valid email address."));
    }
    let before = account(state, id).await?;
    let holder = unverified_holder(state, &email, Some(id)).await?;
    state.accounts.set_email(id, Some(&email), true).await?;
    state.sessions.bump_account_epoch(id).await?;
    if let Some(holder) = &holder {
        state.sessions.bump_account_epoch(holder).await?;
    }
    tracing::info!(
        target: "deskgate::audit",
        actor = %admin.account_id,
        account = %id,
        before = before.email.as_deref().unwrap_or("-"),
        email = %email,
        released_from = holder.as_deref().unwrap_or("-"),
        "Email address set (verified) by an administrator"
    );
    Ok(Account { email: Some(email), email_verified: true, ..before })
}

/// Approves (active) or rejects (never signs in) a sign-up waiting for approval.
pub async fn decide(state: &AppState, admin: &Admin, id: &str, approve: bool) -> Result<Account, AdminError> {
    let before = account(state, id).await?;
    if before.status != AccountStatus::PendingApproval {
        return Err(AdminError::Invalid("This sign-up is not waiting for approval."));
    }
    let status = if approve { AccountStatus::Active } else { AccountStatus::Rejected };
    state.accounts.set_status(id, status).await?;
    tracing::info!(
        target: "deskgate::audit",
        actor = %admin.account_id,
        account = %id,
        email = before.email.as_deref().unwrap_or("-"),
        "{}",
        if approve { "Sign-up approved by an administrator" } else { "Sign-up rejected by an administrator" }
    );
    Ok(Account { status, ..before })
}

/// What an administrator asks for when creating an account.
#[derive(Debug, Default)]
pub struct Creation {
    /// Email, the built-in login name.
    pub email: String,
    /// Display name.
    pub name: String,
    /// Password; empty for an account that signs in only through a provider that links by
    /// email.
    pub password: String,
    /// Usergroups to assign.
    pub usergroups: Vec<String>,
}

/// Whether `email` looks like an address: one `@`, a dot in the domain, no spaces.
pub fn plausible_email(email: &str) -> bool {
    email.len() <= 254
        && email.split_once('@').is_some_and(|(l, d)| {
            !l.is_empty() && d.contains('.') && !d.starts_with('.') && !d.ends_with('.') && !d.contains('@')
        })
        && !email.chars().any(|c| c.is_whitespace() || c.is_control() || c == ',')
}

/// Creates an account.
pub async fn create(state: &AppState, admin: &Admin, c: Creation) -> Result<Account, AdminError> {
    let (email, name) = (c.email.trim().to_owned(), c.name.trim().to_owned());
    if name.is_empty() || name.chars().count() > 100 || name.chars().any(char::is_control) {
        return Err(AdminError::Invalid("Please give a name of up to 100 characters."));
    }
    if !plausible_email(&email) {
        return Err(AdminError::Invalid("Please give a valid email address."));
    }
    if !c.password.is_empty() && (c.password.chars().count() < 10 || c.password.len() > 1024) {
        return Err(AdminError::Invalid("The password must have at least 10 characters."));
    }
    let usergroups = checked(state, &c.usergroups)?;
    let password_hash = if c.password.is_empty() {
        None
    } else {
        let password = c.password;
        let hashed = tokio::task::spawn_blocking(move || deskgate_builtin::hash_password(&password))
            .await
            .map_err(GatewayError::from)?;
        Some(hashed.map_err(|_| AdminError::Invalid("That password cannot be used."))?)
    };
    // An administrator's word counts as verification; it takes the address from an account
    // that holds it unverified.
    let holder = unverified_holder(state, &email, None).await?;
    let new = NewAccount {
        email: Some(email),
        email_verified: true,
        name,
        password_hash,
        usergroups,
        created_at: state.clock.now(),
        ..Default::default()
    };
    let account = state.accounts.create(new).await?;
    if let Some(holder) = holder {
        state.sessions.bump_account_epoch(&holder).await?;
    }
    tracing::info!(
        target: "deskgate::audit",
        actor = %admin.account_id,
        account = %account.id,
        email = account.email.as_deref().unwrap_or("-"),
        usergroups = ?account.usergroups,
        "Account created by an administrator"
    );
    Ok(account)
}
