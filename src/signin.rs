//! Turning a provider's [`Identity`] into a session: account resolution, usergroups,
//! session rotation. The sign-in attempt limits are in [`crate::limits`].

use deskgate_provider::Identity;

use crate::accounts::{Account, AccountStore};
pub use crate::config::AccountPolicy;
use crate::error::GatewayError;
use crate::session::{Session, SessionKey, SessionStore, new_cookie_value};
use crate::state::AppState;
use crate::usergroups::Member;

/// Why an identity does not get a session.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Refusal {
    /// No account is linked and this provider may not create one.
    NoAccount,
    /// The account is disabled.
    Disabled,
    /// The provider vouches for an address that another account holds, verified, and this
    /// provider may not link to it: the person signs in as before, or an administrator links
    /// the sign-in (or allows `link_by_email`). Names how that account signs in.
    EmailInUse {
        /// The providers the account holding the address signs in with.
        signs_in_with: Vec<String>,
    },
}

/// Finds (or, where allowed, links or creates) the account for an identity.
///
/// Only an address the provider vouches for links to an account, and only to an account
/// whose own address is verified: an address anyone could type (open sign-up, a provider
/// that does not verify) must never hand over someone's account. A vouched address that an
/// account holds unverified is taken from it when the account is created here.
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
        (Some(a), _) => Some(adopt_email(state, a, identity).await?),
        (None, Some(email)) if policy.link_by_email && identity.email_verified => {
            match state.accounts.by_email(email).await? {
                Some(a) if a.email_verified => {
                    state.accounts.link(&identity.provider, &identity.subject, &a.id).await?;
                    Some(a)
                }
                Some(a) => {
                    tracing::info!(
                        target: "deskgate::audit",
                        account = %a.id,
                        provider = %identity.provider,
                        "Not linked by email: the account's address is not verified"
                    );
                    None
                }
                None => None,
            }
        }
        _ => None,
    };
    let account = match found {
        Some(a) => a,
        None if policy.create_accounts => match create_for(state, identity).await? {
            Ok(a) => a,
            Err(refusal) => return Ok(Err(refusal)),
        },
        None => return Ok(Err(Refusal::NoAccount)),
    };
    // A sign-up still waiting (or rejected) must not get in through another provider that
    // links by email either.
    if account.disabled || account.status != crate::accounts::AccountStatus::Active {
        return Ok(Err(Refusal::Disabled));
    }
    // A service account acts through its API tokens only: no password, no provider.
    if crate::accounts::TokenStore::is_service(&state.accounts, &account.id).await? {
        tracing::info!(
            target: "deskgate::audit",
            account = %account.id,
            provider = %identity.provider,
            "Sign-in refused: a service account does not sign in"
        );
        return Ok(Err(Refusal::Disabled));
    }
    Ok(Ok(account))
}

/// Creates the account of an identity (just-in-time), with its address as the provider
/// gave it. An unverified address that another account holds is left off (the session
/// still forwards it, marked unverified): it must not be refused, and must not take the
/// address from anyone.
///
/// A vouched address that another account holds verified is never taken and never linked
/// here (that is `link_by_email`'s decision): the person is told which way that account
/// signs in.
async fn create_for(state: &AppState, identity: &Identity) -> Result<Result<Account, Refusal>, GatewayError> {
    let name = identity
        .display_name
        .clone()
        .or_else(|| identity.username.clone())
        .unwrap_or_else(|| identity.subject.clone());
    let new = crate::accounts::NewAccount {
        email: identity.email.clone(),
        email_verified: identity.email_verified,
        name,
        created_at: state.clock.now(),
        // One transaction with the account: never an account without its link.
        link: Some((identity.provider.clone(), identity.subject.clone())),
        ..Default::default()
    };
    // An account that holds a vouched address unverified loses it to this one: its sessions
    // stop forwarding the address at their next request.
    let holder = match (&identity.email, identity.email_verified) {
        (Some(email), true) => state.accounts.by_email(email).await?.filter(|h| !h.email_verified),
        _ => None,
    };
    let a = match state.accounts.create(new.clone()).await {
        Err(crate::accounts::AccountError::EmailTaken) if !identity.email_verified => {
            state.accounts.create(crate::accounts::NewAccount { email: None, ..new }).await?
        }
        Err(crate::accounts::AccountError::EmailTaken) => {
            let email = identity.email.as_deref().unwrap_or_default();
            let signs_in_with = match state.accounts.by_email(email).await? {
                Some(holder) => state.accounts.providers(&holder.id).await?,
                None => Vec::new(),
            };
            tracing::info!(
                target: "deskgate::audit",
                provider = %identity.provider,
                subject = %identity.subject,
                "Sign-in refused: an account with this email exists and this provider does not link to it"
            );
            return Ok(Err(Refusal::EmailInUse { signs_in_with }));
        }
        other => other?,
    };
    if let Some(holder) = holder {
        state.sessions.bump_account_epoch(&holder.id).await?;
    }
    tracing::info!(
        target: "deskgate::audit",
        account = %a.id,
        provider = %identity.provider,
        email_verified = a.email_verified,
        "Account created at first sign-in"
    );
    Ok(Ok(a))
}

/// A linked account whose address the provider now vouches for has it marked verified.
async fn adopt_email(
    state: &AppState,
    account: Account,
    identity: &Identity,
) -> Result<Account, GatewayError> {
    let vouched = identity.email_verified
        && !account.email_verified
        && identity.provider != deskgate_builtin::PROVIDER_ID
        && matches!((&account.email, &identity.email), (Some(a), Some(i)) if a.to_lowercase() == i.to_lowercase());
    if !vouched {
        return Ok(account);
    }
    state.accounts.set_email(&account.id, account.email.as_deref(), true).await?;
    tracing::info!(
        target: "deskgate::audit",
        account = %account.id,
        provider = %identity.provider,
        "Email address verified by the provider"
    );
    Ok(Account { email_verified: true, ..account })
}

/// What a provider said of a person, as it is kept with the account for administrators.
pub(crate) fn said(identity: &Identity, organizations: &[String]) -> crate::accounts::ProviderClaims {
    let mut attributes = vec![format!("subject: {}", identity.subject)];
    let mut add = |name: &str, value: &Option<String>| {
        if let Some(v) = value {
            attributes.push(format!("{name}: {v}"));
        }
    };
    add("username", &identity.username);
    add("email", &identity.email);
    add("name", &identity.display_name);
    if identity.email.is_some() {
        attributes.push(format!("email verified: {}", if identity.email_verified { "yes" } else { "no" }));
    }
    for (name, values) in &identity.attributes {
        attributes.extend(values.iter().map(|v| format!("{name}: {v}")));
    }
    crate::accounts::ProviderClaims {
        provider: identity.provider.clone(),
        groups: identity.groups.clone(),
        organizations: organizations.to_vec(),
        attributes,
    }
}

/// Where a sign-in came from, kept with the session for its owner's list of sessions.
#[derive(Debug, Clone, Default)]
pub struct Client {
    /// The client's address (behind trusted proxies, the forwarded one).
    pub addr: Option<std::net::IpAddr>,
    /// The `User-Agent` it sent, without control characters, cut to
    /// [`crate::session::USER_AGENT_MAX`] characters.
    pub user_agent: Option<String>,
}

impl Client {
    /// The client at `addr` that sent `user_agent`.
    pub fn new(addr: Option<std::net::IpAddr>, user_agent: Option<&str>) -> Client {
        let user_agent = user_agent
            .map(|ua| {
                ua.chars()
                    .filter(|c| !c.is_control())
                    .take(crate::session::USER_AGENT_MAX)
                    .collect::<String>()
            })
            .filter(|ua| !ua.trim().is_empty());
        Client { addr, user_agent }
    }
}

/// Starts a fresh session for `account`; any session the browser had is ended, so a
/// session id planted before sign-in is never the one after it. Returns the cookie value.
pub async fn start_session(
    state: &AppState,
    account: &Account,
    identity: &Identity,
    policy: &AccountPolicy,
    previous: Option<SessionKey>,
    refresh_token: Option<&str>,
    client: &Client,
) -> Result<String, GatewayError> {
    if let Some(old) = previous {
        state.sessions.delete(&old).await?;
    }
    let now = state.clock.now();
    let provider_usergroups = policy.map_groups(&identity.groups);
    let named = identity.attributes.get("organization").map(Vec::as_slice).unwrap_or_default();
    if identity.provider != deskgate_builtin::PROVIDER_ID {
        // Kept with the account, so that administrators can see (and count) where a person's
        // provider usergroups come from when the person is not signed in.
        state.accounts.set_provider_claims(&account.id, &said(identity, named)).await?;
        if tracing::enabled!(tracing::Level::DEBUG) {
            let unmapped: Vec<&String> = identity
                .groups
                .iter()
                .filter(|g| policy.map_groups(std::slice::from_ref(*g)).is_empty())
                .collect();
            tracing::debug!(
                account = %account.id,
                provider = %identity.provider,
                groups = ?identity.groups,
                mapped_to = ?provider_usergroups,
                not_mapped = ?unmapped,
                "What the provider said, and how its groups were mapped"
            );
        }
    }
    let mut session = resolve_session(state, account, identity, provider_usergroups, refresh_token).await?;
    session.client_addr = client.addr.map(|a| a.to_string());
    session.user_agent = client.user_agent.clone();
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

/// The session `account` gets for `identity` (not stored): its usergroups resolved with the
/// provider's mapped groups and the organizations the provider named. A sign-in stores it
/// under a new cookie; a bearer token acts with it for one request.
pub async fn resolve_session(
    state: &AppState,
    account: &Account,
    identity: &Identity,
    provider_usergroups: Vec<String>,
    refresh_token: Option<&str>,
) -> Result<Session, GatewayError> {
    let now = state.clock.now();
    let named = identity.attributes.get("organization").map(Vec::as_slice).unwrap_or_default();
    let model = state.model().await?;
    let resolved = model.resolve(&Member {
        email: account.email.as_deref(),
        email_verified: account.email_verified,
        assigned: &account.usergroups,
        provider: &provider_usergroups,
        organizations: &model.organizations_named(named),
    });
    let provider_organizations = named.to_vec();
    // Read after the account: a reset landing in between makes this session end at once.
    let password_serial = state.accounts.password_serial(&account.id).await?;
    // An account with no address of its own still tells the backend the one its provider
    // gave, marked unverified: it is not on the account, so it grants and links nothing.
    let (email, email_verified) = match &account.email {
        Some(e) => (Some(e.clone()), account.email_verified),
        None => (identity.email.clone(), false),
    };
    Ok(Session {
        account_id: account.id.clone(),
        email,
        email_verified,
        provider_email: account.email.is_none().then(|| identity.email.clone()).flatten(),
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
        refresh_token: refresh_token.map(|t| {
            let binding = crate::session::token_binding(&account.id, &identity.provider, &identity.subject);
            state.pending.seal_token(&binding, t).into()
        }),
        subject: identity.subject.as_str().into(),
        checked_at: now,
        password_serial,
        amr: crate::amr::amr_of(identity, is_password_provider(state, &identity.provider)),
        created_at: now,
        last_seen: now,
        cache: Default::default(),
        ..Session::default()
    })
}

/// Whether `provider` checks passwords (built-in accounts, LDAP): its sign-ins are `pwd`.
pub fn is_password_provider(state: &AppState, provider: &str) -> bool {
    if provider == deskgate_builtin::PROVIDER_ID {
        return true;
    }
    #[cfg(feature = "ldap")]
    if state.config.ldap.iter().any(|p| p.id == provider) {
        return true;
    }
    let _ = state;
    false
}

/// The session's store deadline: idle timeout from now, capped by the absolute timeout.
pub fn deadline(state: &AppState, created_at: u64, now: u64) -> u64 {
    let s = &state.config.session;
    (now + s.idle_timeout.as_secs()).min(created_at + s.absolute_timeout.as_secs())
}

/// The longest a sign-out waits for the provider to revoke the session's refresh token.
#[cfg(feature = "oidc")]
const REVOCATION_WAIT: std::time::Duration = std::time::Duration::from_secs(3);

/// Revokes the refresh token an OIDC sign-in kept (`refresh_groups`) at its provider, so the
/// grant does not outlive the session: called when a session is ended on purpose (signed
/// out, or ended from the account page). Best effort: the session is gone whatever the
/// provider answers, and a provider that is slow or down only costs the wait.
#[cfg(feature = "oidc")]
pub async fn revoke_grant(state: &AppState, session: &Session) {
    let Some(sealed) = session.refresh_token.as_deref() else { return };
    let Some(p) = state.config.oidc.iter().find(|p| p.id == session.provider) else { return };
    let binding = crate::session::token_binding(&session.account_id, &session.provider, &session.subject);
    let Some(token) = state.pending.open_token(&binding, sealed) else { return };
    match tokio::time::timeout(REVOCATION_WAIT, p.oidc.revoke(&token)).await {
        Ok(Ok(true)) => {
            tracing::debug!(provider = %p.id, account = %session.account_id, "Refresh token revoked")
        }
        Ok(Ok(false)) => {}
        Ok(Err(e)) => {
            tracing::warn!(provider = %p.id, cause = %e, "The provider did not revoke the refresh token")
        }
        Err(_) => tracing::warn!(provider = %p.id, "The provider did not answer the revocation in time"),
    }
}

/// Without OIDC, no session holds a provider's grant.
#[cfg(not(feature = "oidc"))]
pub async fn revoke_grant(_: &AppState, _: &Session) {}
