//! Keeping a session's provider groups current: every `session.recheck_interval` the
//! provider the person signed in with is asked again (a directory with its service
//! connection, an OIDC provider with the sealed refresh token) and the session is resolved
//! again from the answer, or ended when the provider no longer vouches for the person.
//!
//! A provider that cannot answer leaves the session as it is (never with more rights) and
//! is asked again [`RETRY`] later. One check runs at a time per session across every
//! replica: a one-time value in the session store marks it, and is left to expire so that
//! replicas still reading the session from before the check do not run it again.

use std::sync::Arc;

use crate::accounts::AccountStore;
use crate::error::GatewayError;
use crate::session::{Session, SessionKey, SessionStore, StoreError, token_binding};
use crate::signin::deadline;
use crate::state::AppState;

/// How long after a provider could not answer it is asked again, and how long a check
/// keeps others from starting (longer than any replica reuses a session it read).
pub const RETRY: u64 = 120;

/// Whether `session` is due for a check at `now`.
pub fn due(state: &AppState, session: &Session, now: u64) -> bool {
    let Some(interval) = state.config.session.recheck_interval else { return false };
    rechecked(state, &session.provider) && now >= session.checked_at.saturating_add(interval.as_secs())
}

/// Whether sessions of `provider` are checked again: directories always, OIDC providers
/// with `refresh_groups`; a provider no longer configured too (its sessions then end).
fn rechecked(state: &AppState, provider: &str) -> bool {
    #[cfg(feature = "oidc")]
    if provider.starts_with("oidc.") {
        return state.config.oidc.iter().find(|p| p.id == provider).is_none_or(|p| p.oidc.refresh_groups());
    }
    let _ = state;
    provider.starts_with("ldap.")
}

/// What the provider said.
enum Answer {
    /// The person as the provider sees them now.
    Current {
        identity: deskgate_provider::Identity,
        /// The usergroups its groups map to, compared as the provider's groups are.
        usergroups: Vec<String>,
        /// A new sealed refresh token, when the provider rotated it.
        refresh_token: Option<Box<str>>,
    },
    /// The provider no longer vouches for the person.
    Ended(&'static str),
    /// The provider could not be asked now.
    Unreachable,
}

/// Checks `session` with its provider; returns the session to use, or `None` when it ended.
pub async fn run(
    state: &AppState,
    key: &SessionKey,
    session: Arc<Session>,
    epoch: u64,
    now: u64,
) -> Result<Option<Arc<Session>>, GatewayError> {
    let mark = format!("recheck:{}", key.text());
    match state.sessions.put_once(&mark, Vec::new(), now + RETRY).await {
        Ok(true) => {}
        // Another request (here or on another replica) is checking it.
        Ok(false) => return Ok(Some(session)),
        // The memory store's bound on one-time values: checked at a later request.
        Err(StoreError::Full(_)) => return Ok(Some(session)),
        Err(e) => return Err(e.into()),
    }
    match ask(state, &session).await {
        Answer::Ended(why) => {
            state.sessions.delete(key).await?;
            tracing::info!(
                target: "deskgate::audit",
                account = %session.account_id,
                provider = %session.provider,
                reason = why,
                "Session ended at its provider re-check"
            );
            Ok(None)
        }
        Answer::Unreachable => {
            let interval = state.config.session.recheck_interval.map_or(0, |d| d.as_secs());
            let mut kept = session.touched(now);
            // Due again RETRY from now, not a whole interval.
            kept.checked_at = (now + RETRY.min(interval)).saturating_sub(interval);
            tracing::warn!(
                account = %session.account_id,
                provider = %session.provider,
                retry_secs = RETRY.min(interval),
                "The provider could not be asked about the person; the session keeps its groups"
            );
            Ok(Some(state.sessions.put(key, kept, deadline(state, session.created_at, now)).await?))
        }
        Answer::Current { identity, usergroups, refresh_token } => {
            let mut fresh = session.touched(now);
            fresh.provider_usergroups = usergroups;
            let named = identity.attributes.get("organization").cloned().unwrap_or_default();
            state
                .accounts
                .set_provider_claims(&session.account_id, &crate::signin::said(&identity, &named))
                .await?;
            fresh.provider_organizations = named;
            fresh.checked_at = now;
            if refresh_token.is_some() {
                fresh.refresh_token = refresh_token;
            }
            if fresh.provider_usergroups != session.provider_usergroups {
                tracing::info!(
                    target: "deskgate::audit",
                    account = %session.account_id,
                    provider = %session.provider,
                    before = ?session.provider_usergroups,
                    now = ?fresh.provider_usergroups,
                    "The provider's groups changed during the session"
                );
            }
            // Resolved as at sign-in: assignments, organizations and these groups.
            super::refresh(state, key, &fresh, epoch, now).await
        }
    }
}

/// Asks the session's provider about the person.
async fn ask(state: &AppState, session: &Session) -> Answer {
    if session.subject.is_empty() {
        return Answer::Ended("the session was made before re-checks and names no subject");
    }
    #[cfg(feature = "ldap")]
    if let Some(p) = state.config.ldap.iter().find(|p| p.id == session.provider) {
        return match p.ldap.recheck(&session.subject).await {
            Ok(deskgate_ldap::Standing::Present(identity)) => Answer::Current {
                usergroups: p.policy.map_groups(&identity.groups),
                identity,
                refresh_token: None,
            },
            Ok(deskgate_ldap::Standing::Disabled) => Answer::Ended("the directory account is disabled"),
            Ok(deskgate_ldap::Standing::Expired) => Answer::Ended("the directory account has expired"),
            Ok(deskgate_ldap::Standing::Gone) => Answer::Ended("the directory entry is gone"),
            Err(deskgate_provider::AuthError::Unavailable(_)) => Answer::Unreachable,
            Err(_) => Answer::Ended("the directory refused the person"),
        };
    }
    #[cfg(feature = "oidc")]
    if let Some(p) = state.config.oidc.iter().find(|p| p.id == session.provider) {
        let binding = token_binding(&session.account_id, &session.provider, &session.subject);
        let Some(token) =
            session.refresh_token.as_deref().and_then(|t| state.pending.open_token(&binding, t))
        else {
            return Answer::Ended("the session holds no refresh token that opens here");
        };
        return match p.oidc.refresh(&token, &session.subject).await {
            Ok(refreshed) => Answer::Current {
                usergroups: p.policy.map_groups(&refreshed.identity.groups),
                identity: refreshed.identity,
                refresh_token: refreshed.refresh_token.map(|t| state.pending.seal_token(&binding, &t).into()),
            },
            Err(deskgate_provider::AuthError::Unavailable(_)) => Answer::Unreachable,
            Err(_) => Answer::Ended("the provider no longer honours the sign-in"),
        };
    }
    let _ = state;
    Answer::Ended("the provider is no longer configured")
}
