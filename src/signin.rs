//! Turning a provider's [`Identity`] into a session: account resolution, usergroups,
//! session rotation. The sign-in attempt limits are in [`crate::limits`].

use deskgate_provider::Identity;

use crate::accounts::{Account, AccountStore};
use crate::app::AppState;
pub use crate::config::AccountPolicy;
use crate::error::GatewayError;
use crate::session::{Session, SessionKey, SessionStore, deadline, new_cookie_value};
use crate::usergroups::{Member, map_groups};

/// Why an identity does not get a session.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Refusal {
    /// No account is linked and this provider may not create one.
    NoAccount,
    /// The account is disabled.
    Disabled,
}

/// Finds (or, where allowed, links or creates) the account for an identity.
pub async fn resolve_account(
    state: &AppState,
    identity: &Identity,
    policy: &AccountPolicy,
) -> Result<Result<Account, Refusal>, GatewayError> {
    let found = if identity.provider == deskgate_builtin::PROVIDER_ID {
        state.accounts.by_id(&identity.subject).await?
    } else {
        state.accounts.by_link(&identity.provider, &identity.subject).await?
    };
    let found = match (found, identity.email.as_deref()) {
        (Some(a), _) => Some(a),
        (None, Some(email)) if policy.link_by_email && identity.email_verified => {
            let a = state.accounts.by_email(email).await?;
            if let Some(a) = &a {
                state.accounts.link(&identity.provider, &identity.subject, &a.id).await?;
            }
            a
        }
        _ => None,
    };
    let account = match found {
        Some(a) => a,
        None if policy.create_accounts => {
            let name = identity
                .display_name
                .clone()
                .or_else(|| identity.username.clone())
                .unwrap_or_else(|| identity.subject.clone());
            let email = identity.email.clone().filter(|_| identity.email_verified);
            let a = state
                .accounts
                .create(crate::accounts::NewAccount {
                    email,
                    name,
                    created_at: state.clock.now(),
                    ..Default::default()
                })
                .await?;
            state.accounts.link(&identity.provider, &identity.subject, &a.id).await?;
            tracing::info!(
                target: "deskgate::audit",
                account = %a.id,
                provider = %identity.provider,
                "Account created at first sign-in"
            );
            a
        }
        None => return Ok(Err(Refusal::NoAccount)),
    };
    // A sign-up still waiting (or rejected) must not get in through another provider that
    // links by email either.
    if account.disabled || account.status != crate::accounts::AccountStatus::Active {
        return Ok(Err(Refusal::Disabled));
    }
    Ok(Ok(account))
}

/// Starts a fresh session for `account`; any session the browser had is ended, so a
/// session id planted before sign-in is never the one after it. Returns the cookie value.
pub async fn start_session(
    state: &AppState,
    account: &Account,
    identity: &Identity,
    policy: &AccountPolicy,
    previous: Option<SessionKey>,
) -> Result<String, GatewayError> {
    if let Some(old) = previous {
        state.sessions.delete(&old).await?;
    }
    let now = state.clock.now();
    let provider_usergroups = map_groups(&policy.group_rules, &identity.groups);
    let named = identity.attributes.get("organization").map(Vec::as_slice).unwrap_or_default();
    if identity.provider != deskgate_builtin::PROVIDER_ID {
        // Kept with the account, so that administrators can see (and count) where a person's
        // provider usergroups come from when the person is not signed in.
        state.accounts.set_provider_claims(&account.id, &identity.provider, &identity.groups, named).await?;
    }
    let model = state.model().await?;
    let resolved = model.resolve(&Member {
        email: account.email.as_deref(),
        assigned: &account.usergroups,
        provider: &provider_usergroups,
        organizations: &model.organizations_named(named),
    });
    let provider_organizations = named.to_vec();
    let session = Session {
        account_id: account.id.clone(),
        email: account.email.clone(),
        name: account.name.clone(),
        provider: identity.provider.clone(),
        provider_usergroups,
        assigned_usergroups: account.usergroups.clone(),
        provider_organizations,
        resolved: state.interner.intern(resolved),
        generation: state.generation,
        // The account was read just now; 0 only means the first request after an earlier
        // change to the account re-resolves once more, which is always safe.
        epoch: 0,
        created_at: now,
        last_seen: now,
        cache: Default::default(),
    };
    let cookie = new_cookie_value();
    state.sessions.put(&SessionKey::from_cookie(&cookie), session, deadline(state, now, now)).await?;
    tracing::info!(
        target: "deskgate::audit",
        account = %account.id,
        provider = %identity.provider,
        "Signed in"
    );
    Ok(cookie)
}
