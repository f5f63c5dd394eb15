//! What every redirect provider (OIDC, SAML) shares: keeping the pending login in the
//! session store under the key the callback will carry, taking it back exactly once, and
//! finishing the sign-in.

use axum::response::{IntoResponse, Redirect, Response};
use deskgate_provider::{AuthError, Identity, Started};
use http::{HeaderMap, StatusCode, header};

use super::PREFIX;
use super::forms;
use super::html;
use crate::app::AppState;
use crate::error::GatewayError;
use crate::session::{SessionKey, SessionStore};
use crate::signin::{self, AccountPolicy, Refusal};
use crate::web;

/// How long a person has to come back from the provider.
const PENDING_SECS: u64 = 600;

/// A sign-in waiting for its callback.
#[derive(Debug, serde::Serialize, serde::Deserialize)]
pub struct Pending {
    /// The provider id (`oidc.google`), so a callback at another provider is refused.
    pub provider: String,
    /// The provider's own state.
    pub state: String,
    /// Where to go afterwards (already checked to be local).
    pub next: String,
}

fn store_key(key: &str) -> String {
    format!("login:{key}")
}

/// Keeps a started sign-in until its callback; the browser is then sent to the provider.
pub async fn stash(
    state: &AppState,
    provider: &str,
    started: Started,
    next: String,
) -> Result<Response, GatewayError> {
    let pending = Pending { provider: provider.to_owned(), state: started.pending, next };
    let value = serde_json::to_vec(&pending).unwrap_or_default();
    let stored =
        state.sessions.put_once(&store_key(&started.key), value, state.clock.now() + PENDING_SECS).await?;
    if !stored {
        // A random 128-bit key that is already taken: refuse rather than overwrite.
        return Ok(start_again(StatusCode::CONFLICT));
    }
    Ok(Redirect::to(&started.location).into_response())
}

/// Takes the pending sign-in named by a callback, once.
pub async fn take(
    state: &AppState,
    provider: &str,
    key: Option<&str>,
) -> Result<Option<Pending>, GatewayError> {
    let Some(key) = key.filter(|k| !k.is_empty() && k.len() <= 512) else { return Ok(None) };
    let Some(bytes) = state.sessions.take(&store_key(key)).await? else { return Ok(None) };
    let pending: Option<Pending> = serde_json::from_slice(&bytes).ok();
    Ok(pending.filter(|p| p.provider == provider))
}

/// The page for a callback with no pending sign-in (expired, replayed or forged).
pub fn start_again(status: StatusCode) -> Response {
    html::message(
        status,
        "Sign-in expired",
        "This sign-in has expired or was already used. Please start again.",
        Some((&format!("{PREFIX}/login"), "Sign in")),
    )
}

/// The page for a provider's refusal; the detail goes to the log only.
pub fn refused(provider: &str, error: AuthError) -> Result<Response, GatewayError> {
    tracing::info!(
        target: "deskgate::audit",
        %provider,
        reason = error.code(),
        detail = %error,
        "Sign-in refused by the provider's checks"
    );
    let (status, text) = match error {
        AuthError::Unavailable(e) => return Err(GatewayError::IdentitySource(AuthError::Unavailable(e))),
        AuthError::NotAllowed(_) => (StatusCode::FORBIDDEN, "This account may not sign in here."),
        AuthError::AccountDisabled => {
            (StatusCode::FORBIDDEN, "This account is disabled. Please contact an administrator.")
        }
        _ => (StatusCode::BAD_REQUEST, "The sign-in could not be completed. Please start again."),
    };
    Ok(html::message(status, "Sign-in failed", text, Some((&format!("{PREFIX}/login"), "Sign in"))))
}

/// Resolves the account for a provider's identity and starts the session.
pub async fn finish(
    state: &AppState,
    headers: &HeaderMap,
    identity: Identity,
    policy: &AccountPolicy,
    next: &str,
) -> Result<Response, GatewayError> {
    let account = match signin::resolve_account(state, &identity, policy).await? {
        Ok(a) => a,
        Err(Refusal::Disabled) => {
            tracing::info!(
                target: "deskgate::audit",
                provider = %identity.provider,
                subject = %identity.subject,
                "Sign-in refused: account disabled"
            );
            return Ok(html::message(
                StatusCode::FORBIDDEN,
                "Sign-in failed",
                "This account is disabled. Please contact an administrator.",
                None,
            ));
        }
        Err(Refusal::NoAccount) => {
            tracing::info!(
                target: "deskgate::audit",
                provider = %identity.provider,
                subject = %identity.subject,
                "Sign-in refused: no account"
            );
            return Ok(super::login::no_account());
        }
    };
    let previous = web::cookie(headers, &state.config.session.cookie_name).map(SessionKey::from_cookie);
    let cookie = signin::start_session(state, &account, &identity, policy, previous).await?;
    let mut resp = Redirect::to(&forms::next_or_root(Some(next))).into_response();
    resp.headers_mut().append(header::SET_COOKIE, forms::session_cookie(state, Some(&cookie)));
    Ok(resp)
}
