//! Making and revoking API tokens, shared by the self page, the administration pages and
//! the administration API: each is checked here and written to the audit log.

use deskgate_provider::config::parse_duration;

use crate::accounts::tokens::{self, ApiToken, TokenStore};
use crate::accounts::{Account, AccountError};
use crate::error::GatewayError;
use crate::state::AppState;

/// Longest token name.
const NAME_MAX: usize = 100;

/// What a new token is asked to be.
#[derive(Debug, Clone, Default)]
pub struct Wanted {
    /// Its name.
    pub name: String,
    /// How long it works, as a duration (`30d`, `12h`).
    pub expires_in: String,
    /// The permissions it is limited to; empty: all of the account's.
    pub permissions: Vec<String>,
}

/// Why a token was not made or not revoked.
#[derive(Debug, thiserror::Error)]
pub enum IssueError {
    /// A field is missing or malformed; the text says which.
    #[error("{0}")]
    Invalid(String),
    /// The account holds as many live tokens as it may.
    #[error("this account already has {0} tokens that have not expired: revoke one first")]
    TooMany(u32),
    /// No such token (of this account), or no such account.
    #[error("no such token")]
    NotFound,
    /// A store failed.
    #[error(transparent)]
    Failed(#[from] GatewayError),
}

impl IssueError {
    /// The status a client is answered with.
    pub fn status(&self) -> http::StatusCode {
        match self {
            IssueError::Invalid(_) => http::StatusCode::UNPROCESSABLE_ENTITY,
            IssueError::TooMany(_) => http::StatusCode::CONFLICT,
            IssueError::NotFound => http::StatusCode::NOT_FOUND,
            IssueError::Failed(_) => http::StatusCode::INTERNAL_SERVER_ERROR,
        }
    }
}

impl From<AccountError> for IssueError {
    fn from(e: AccountError) -> IssueError {
        match e {
            AccountError::NotFound => IssueError::NotFound,
            e => IssueError::Failed(e.into()),
        }
    }
}

/// Makes a token for `account` as `actor` asked; returns it with its secret, which is
/// never stored and must be shown now or never.
pub async fn issue(
    state: &AppState,
    account: &Account,
    wanted: &Wanted,
    actor: &str,
) -> Result<(ApiToken, String), IssueError> {
    let name = wanted.name.trim();
    if name.is_empty() || name.chars().count() > NAME_MAX || name.chars().any(char::is_control) {
        return Err(IssueError::Invalid(format!("The name must be 1 to {NAME_MAX} characters of text.")));
    }
    let max = state.config.api_tokens.max_ttl;
    let ttl = parse_duration(wanted.expires_in.trim())
        .map_err(|_| IssueError::Invalid("The expiry must be a duration such as 30d or 12h.".into()))?;
    if ttl.as_secs() < 60 || ttl > max {
        let days = max.as_secs() / 86_400;
        return Err(IssueError::Invalid(format!(
            "The expiry must be between 1m and {}.",
            if days > 0 { format!("{days}d") } else { format!("{}h", max.as_secs() / 3600) }
        )));
    }
    let held = super::account_resolution(state, account).await?;
    let mut only: Vec<String> =
        wanted.permissions.iter().map(|p| p.trim().to_owned()).filter(|p| !p.is_empty()).collect();
    only.sort();
    only.dedup();
    if let Some(p) = only.iter().find(|p| !held.permits(p)) {
        return Err(IssueError::Invalid(format!("The account does not hold the permission `{p}`.")));
    }
    let now = state.clock.now();
    let live = state.accounts.tokens(&account.id).await?.iter().filter(|t| t.expires_at > now).count();
    let cap = state.config.api_tokens.max_per_account;
    if live >= usize::try_from(cap).unwrap_or(usize::MAX) {
        return Err(IssueError::TooMany(cap));
    }
    let secret = tokens::new_secret();
    let token = ApiToken {
        id: tokens::new_token_id(),
        account_id: account.id.clone(),
        name: name.to_owned(),
        permissions: (!only.is_empty()).then_some(only),
        created_at: now,
        expires_at: now + ttl.as_secs(),
        last_used_at: None,
    };
    state.accounts.add_token(&token, &tokens::token_hash(&secret)).await?;
    tracing::info!(
        target: "deskgate::audit",
        %actor,
        account = %account.id,
        token = %token.id,
        expires_at = token.expires_at,
        permissions = ?token.permissions,
        "API token created"
    );
    Ok((token, secret))
}

/// Revokes an account's token: refused at once on this replica, and on the others within
/// the session cache window.
pub async fn revoke(
    state: &AppState,
    account_id: &str,
    token_id: &str,
    actor: &str,
) -> Result<(), IssueError> {
    state.accounts.revoke_token(account_id, token_id).await?;
    state.tokens.forget(token_id);
    tracing::info!(target: "deskgate::audit", %actor, account = %account_id, token = %token_id, "API token revoked");
    Ok(())
}

/// A token as JSON, never with its secret.
pub fn token_json(t: &ApiToken) -> serde_json::Value {
    serde_json::json!({
        "id": t.id,
        "name": t.name,
        "permissions": t.permissions,
        "created_at": t.created_at,
        "expires_at": t.expires_at,
        "last_used_at": t.last_used_at,
    })
}
