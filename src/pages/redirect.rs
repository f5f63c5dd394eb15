//! What every redirect provider (OIDC, SAML) shares: keeping the pending login in a sealed
//! cookie in the browser that started it (the server keeps nothing until the provider's
//! answer arrives), taking it back exactly once at the callback, and finishing the sign-in.

use axum::response::{IntoResponse, Redirect, Response};
use deskgate_provider::{AuthError, Identity, Started};
use http::{HeaderMap, HeaderValue, StatusCode, header};

use crate::error::GatewayError;
use crate::forms;
use crate::html;
use crate::metrics::SignIn;
use crate::pending::{self, Pending, Unsealed};
use crate::session::{SessionKey, SessionStore};
use crate::signin::{self, AccountPolicy, Refusal};
use crate::state::AppState;
use crate::web::{self, PREFIX};

/// How long a person has to come back from the provider.
pub const PENDING_SECS: u64 = 600;

/// How the provider's answer comes back to the callback, which decides the cookie's
/// SameSite.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Return {
    /// A top-level GET redirect (OIDC): SameSite=Lax cookies are sent with it.
    Redirect,
    /// A form the IdP's page posts cross-site (SAML HTTP-POST): only SameSite=None cookies
    /// are sent with it, and browsers take those only with Secure, so on a plain-http public
    /// URL the cookie falls back to Lax and the sign-in finishes only same-site.
    CrossSitePost,
}

/// Where a provider's pending cookies live and how they are sent back.
#[derive(Debug, Clone, Copy)]
pub struct Site<'a> {
    /// The provider id (`oidc.google`), sealed into the cookie.
    pub provider: &'a str,
    /// The provider's path prefix (`/.deskgate/oidc/google`): the cookie goes nowhere else.
    pub path: &'a str,
    /// How the answer comes back.
    pub back: Return,
}

impl Site<'_> {
    fn cookie(&self, state: &AppState, name: &str, value: &str, max_age: u64) -> HeaderValue {
        let secure = state.config.server.secure;
        let same_site = if self.back == Return::CrossSitePost && secure { "None" } else { "Lax" };
        let secure = if secure { "; Secure" } else { "" };
        let text = format!(
            "{name}={value}; Path={}; Max-Age={max_age}; HttpOnly; SameSite={same_site}{secure}",
            self.path
        );
        HeaderValue::from_str(&text).unwrap_or_else(|_| HeaderValue::from_static("invalid=; Max-Age=0"))
    }
}

/// Sign-ins one browser keeps under way at one provider: a start beyond this clears the
/// oldest, so the Cookie header these add stays small (each is about 700 bytes) for
/// whatever proxy sits in front.
pub const MAX_PARALLEL: usize = 4;

/// Seals a started sign-in into a cookie of its own and sends the browser to the provider.
/// `headers`: the start's request, whose pending cookies (this provider's path) are counted.
pub fn stash(
    state: &AppState,
    site: Site<'_>,
    headers: &HeaderMap,
    started: Started,
    next: String,
) -> Response {
    let pending = Pending {
        provider: site.provider.to_owned(),
        key: started.key,
        state: started.pending,
        next,
        expires: state.clock.now() + PENDING_SECS,
    };
    let name = pending::cookie_name(&pending.key);
    let cookie = site.cookie(state, &name, &state.pending.seal(&pending), PENDING_SECS);
    let mut resp = Redirect::to(&started.location).into_response();
    resp.headers_mut().append(header::SET_COOKIE, cookie);
    for old in surplus(state, headers) {
        resp.headers_mut().append(header::SET_COOKIE, site.cookie(state, old, "", 0));
    }
    resp
}

/// The pending cookies a start should clear to keep [`MAX_PARALLEL`] with the new one:
/// the oldest, and any that do not open. At most 32 are looked at.
fn surplus<'a>(state: &AppState, headers: &'a HeaderMap) -> Vec<&'a str> {
    let mut held: Vec<(u64, &str)> = headers
        .get_all(header::COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .filter_map(|pair| pair.trim().split_once('='))
        .filter(|(name, _)| name.starts_with(pending::COOKIE_PREFIX))
        .take(32)
        .map(|(name, value)| (state.pending.unseal(value).map_or(0, |p| p.expires), name))
        .collect();
    // Newest first; the new sign-in takes one of the places.
    held.sort_unstable_by(|a, b| b.cmp(a));
    held.into_iter().skip(MAX_PARALLEL - 1).map(|(_, name)| name).collect()
}

/// Why a callback has no pending sign-in to finish.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum NoPending {
    /// No cookie for the callback's state: another browser (or cookie jar), or long expired.
    NotThisBrowser,
    /// A cookie that is damaged, for another sign-in, or expired.
    Refused(Unsealed),
    /// A valid cookie whose state was already used once.
    Used,
}

/// What a callback found: the pending sign-in, or why not; and the header that clears its
/// cookie, when it presented one.
#[derive(Debug)]
pub struct Claim {
    /// The pending sign-in, taken for good.
    pub pending: Result<Pending, NoPending>,
    clear: Option<HeaderValue>,
}

impl Claim {
    /// `resp` with the pending cookie cleared, whatever the outcome: a cookie is good for
    /// one callback.
    pub fn answer(&self, mut resp: Response) -> Response {
        if let Some(clear) = &self.clear {
            resp.headers_mut().append(header::SET_COOKIE, clear.clone());
        }
        resp
    }
}

/// Takes the pending sign-in named by a callback's `key` from the browser's cookie, once.
/// Only a callback with a valid cookie writes anything (the used state, until the cookie's
/// expiry), so garbage callbacks leave no trace on the server.
pub async fn claim(
    state: &AppState,
    site: Site<'_>,
    headers: &HeaderMap,
    key: Option<&str>,
) -> Result<Claim, GatewayError> {
    let none = |why| Ok(Claim { pending: Err(why), clear: None });
    let Some(key) = key.filter(|k| !k.is_empty() && k.len() <= 512) else {
        return none(NoPending::NotThisBrowser);
    };
    let name = pending::cookie_name(key);
    let Some(value) = web::cookie(headers, &name) else { return none(NoPending::NotThisBrowser) };
    let clear = Some(site.cookie(state, &name, "", 0));
    let pending = match state.pending.open(value, site.provider, key, state.clock.now()) {
        Ok(pending) => pending,
        Err(why) => return Ok(Claim { pending: Err(NoPending::Refused(why)), clear }),
    };
    // Keyed by a hash: the stored key's size does not depend on what the provider echoed.
    let used = format!("login-used:{}:{}", site.provider, SessionKey::from_cookie(key).text());
    let first = state.sessions.put_once(&used, Vec::new(), pending.expires).await?;
    let pending = if first { Ok(pending) } else { Err(NoPending::Used) };
    Ok(Claim { pending, clear })
}

/// The page for a callback with no pending sign-in. Logged at debug only: anyone can send
/// these at any rate, and the log must not be the thing that floods.
pub fn no_pending(provider: &str, why: NoPending) -> Response {
    tracing::debug!(%provider, ?why, "Callback without a pending sign-in of this browser; refused");
    match why {
        NoPending::NotThisBrowser => html::message(
            StatusCode::BAD_REQUEST,
            "Sign-in not started in this browser",
            "A sign-in can only be finished in the browser that started it, within 10 minutes. \
             Please start again here.",
            Some((&format!("{PREFIX}/login"), "Sign in")),
        ),
        NoPending::Refused(_) | NoPending::Used => start_again(StatusCode::BAD_REQUEST),
    }
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
/// A refusal by deskgate's own rules for the provider (an allowed domain, a verified
/// address) is said in plain words, naming the provider by its label.
pub fn refused(provider: &str, label: &str, error: AuthError) -> Result<Response, GatewayError> {
    tracing::info!(
        target: "deskgate::audit",
        %provider,
        reason = error.code(),
        detail = %error,
        "Sign-in refused by the provider's checks"
    );
    let (status, text) = match error {
        AuthError::Unavailable(e) => return Err(GatewayError::IdentitySource(AuthError::Unavailable(e))),
        AuthError::NotAllowed(why) => {
            (StatusCode::FORBIDDEN, format!("Signing in with {label} was refused: {why}."))
        }
        AuthError::AccountDisabled => {
            (StatusCode::FORBIDDEN, "This account is disabled. Please contact an administrator.".to_owned())
        }
        _ => (StatusCode::BAD_REQUEST, "The sign-in could not be completed. Please start again.".to_owned()),
    };
    Ok(html::message(status, "Sign-in failed", &text, Some((&format!("{PREFIX}/login"), "Sign in"))))
}

/// Resolves the account for a provider's identity and starts the session.
pub async fn finish(
    state: &AppState,
    headers: &HeaderMap,
    client: &signin::Client,
    identity: Identity,
    policy: &AccountPolicy,
    next: &str,
    refresh_token: Option<&str>,
) -> Result<Response, GatewayError> {
    let account = match signin::resolve_account(state, &identity, policy).await? {
        Ok(a) => a,
        Err(Refusal::Disabled) => {
            state.metrics.sign_in(&identity.provider, SignIn::Refused);
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
            state.metrics.sign_in(&identity.provider, SignIn::Refused);
            tracing::info!(
                target: "deskgate::audit",
                provider = %identity.provider,
                subject = %identity.subject,
                "Sign-in refused: no account"
            );
            return Ok(super::login::no_account());
        }
        Err(Refusal::EmailInUse { signs_in_with }) => {
            state.metrics.sign_in(&identity.provider, SignIn::Refused);
            return Ok(super::login::email_in_use(state, &identity, &signs_in_with));
        }
    };
    state.metrics.sign_in(&identity.provider, SignIn::Success);
    let previous = web::cookie(headers, &state.config.session.cookie_name).map(SessionKey::from_cookie);
    let cookie =
        signin::start_session(state, &account, &identity, policy, previous, refresh_token, client).await?;
    let mut resp = Redirect::to(&forms::next_or_root(state, Some(next))).into_response();
    resp.headers_mut().append(header::SET_COOKIE, forms::session_cookie(state, Some(&cookie)));
    Ok(resp)
}
