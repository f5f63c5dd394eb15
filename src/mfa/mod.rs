//! Second factors: which sign-in methods a session used (`amr`, RFC 8176), checking a code
//! (authenticator app or recovery code) under its limits, the sign-in step that waits for
//! the code, and the layer that takes people whose usergroups require a second factor to
//! enrol before anything else.
//!
//! The second step of a sign-in keeps nothing on the server: the password's result waits in
//! a sealed browser cookie (see [`crate::pending`]) that is no session and opens nothing but
//! the code form; the session is made only after the code.

pub mod totp;

use std::net::IpAddr;
use std::sync::Arc;

use axum::extract::{Request, State};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use deskgate_provider::Identity;
use http::{HeaderMap, HeaderValue, StatusCode, header};

use crate::accounts::FactorStore;
use crate::error::GatewayError;
use crate::html;
use crate::limits::{Refused, counted_address};
use crate::pending::Pending;
use crate::session::{Session, SessionKey, SessionStore};
use crate::signin::deadline;
use crate::state::AppState;
use crate::visitor::Visitor;
use crate::web::PREFIX;
use crate::web::{self, CookieAttrs, wants_html};

pub use crate::amr::{AMR, STRONG, amr_of, satisfied, with_methods};

/// Wrong codes allowed per account, and per client address, in `rate_limit.window`; past
/// them every code is refused (429) until the window ends.
pub const WRONG_CODES: u64 = 5;

/// How a code turned out.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Checked {
    /// An authenticator app's code, now used.
    Totp,
    /// A recovery code, now used.
    Recovery,
    /// Wrong, already used, or the account has no second factor.
    Wrong,
    /// Too many wrong codes for this account or from this address: refused unread.
    Limited(Refused),
}

/// Checks `code` for `account_id` from `addr`: six digits as an authenticator app's code
/// (one step either side of now; a code is good once), anything else as a recovery code.
/// Counting reserves first (see [`crate::limits`]): a right code takes its hits back.
pub async fn check_code(
    state: &AppState,
    account_id: &str,
    code: &str,
    addr: IpAddr,
) -> Result<Checked, GatewayError> {
    let window = state.config.rate_limit.window.as_secs();
    let account = format!("mfa:acct:{account_id}");
    let address = format!("mfa:addr:{}", counted_address(addr));
    let over_account = state.sessions.incr(&account, window).await? > WRONG_CODES;
    let over_address = state.sessions.incr(&address, window).await? > WRONG_CODES;
    if over_account || over_address {
        state
            .notices
            .sign_in
            .hit(state.clock.now(), "an account or address is over its wrong second-factor codes");
        return Ok(Checked::Limited(Refused::Client));
    }
    let code: String = code.chars().filter(|c| !c.is_whitespace()).collect();
    let checked = if code.len() == totp::DIGITS && code.bytes().all(|b| b.is_ascii_digit()) {
        let step = match state.accounts.totp(account_id).await? {
            Some(factor) => totp::matching_step(&factor.secret, &code, state.clock.now()),
            None => None,
        };
        match step {
            Some(step) if state.accounts.take_totp_step(account_id, step).await? => Checked::Totp,
            _ => Checked::Wrong,
        }
    } else if !code.is_empty() && code.len() <= 64 {
        let hash = totp::recovery_hash(&code);
        if state.accounts.take_recovery_code(account_id, &hash).await? {
            Checked::Recovery
        } else {
            Checked::Wrong
        }
    } else {
        Checked::Wrong
    };
    if checked != Checked::Wrong {
        state.sessions.release(&account).await?;
        state.sessions.release(&address).await?;
    }
    Ok(checked)
}

/// Whether the account has a second factor.
pub async fn has_factor(state: &AppState, account_id: &str) -> Result<bool, GatewayError> {
    Ok(state.accounts.totp(account_id).await?.is_some())
}

/// The provider name the second step's sealed cookie is bound to.
const SECOND_STEP: &str = "second-factor";
/// How long a password's result waits for its code.
pub const SECOND_STEP_TTL: u64 = 300;

/// A sign-in whose password checked out and which waits for its second factor.
#[derive(Debug, Clone)]
pub struct SecondStep {
    /// The account.
    pub account_id: String,
    /// What the password provider said, to start the session with.
    pub identity: Identity,
    /// Where to go afterwards (already checked).
    pub next: String,
}

fn second_step_cookie(state: &AppState) -> String {
    format!("{}_second_step", state.config.session.cookie_name)
}

/// The cookie that holds a waiting second step (`None`: its deletion).
pub fn second_step_set_cookie(state: &AppState, step: Option<&SecondStep>) -> HeaderValue {
    let value = step.map(|s| {
        state.pending.seal(&Pending {
            provider: SECOND_STEP.to_owned(),
            key: s.account_id.clone(),
            state: serde_json::to_string(&s.identity).unwrap_or_default(),
            next: s.next.clone(),
            expires: state.clock.now() + SECOND_STEP_TTL,
        })
    });
    let attrs = CookieAttrs {
        path: PREFIX,
        secure: state.config.server.secure,
        max_age: value.as_ref().map_or(0, |_| SECOND_STEP_TTL),
        domain: None,
    };
    web::set_cookie(&second_step_cookie(state), value.as_deref().unwrap_or(""), attrs)
}

/// The browser's waiting second step, if its cookie opens, is one and has not expired.
pub fn second_step(state: &AppState, headers: &HeaderMap) -> Option<SecondStep> {
    let value = web::cookie(headers, &second_step_cookie(state))?;
    let pending = state.pending.unseal(value).ok()?;
    if pending.provider != SECOND_STEP || pending.expires <= state.clock.now() {
        return None;
    }
    let identity = serde_json::from_str(&pending.state).ok()?;
    Some(SecondStep { account_id: pending.key, identity, next: pending.next })
}

/// Records in a session that a second factor was used now (`methods`, plus `mfa`).
pub async fn upgrade(
    state: &AppState,
    key: &SessionKey,
    session: &Session,
    methods: &[&str],
) -> Result<Arc<Session>, GatewayError> {
    let now = state.clock.now();
    let mut fresh = session.touched(now);
    fresh.amr = with_methods(&with_methods(&session.amr, methods), &["mfa"]);
    Ok(state.sessions.put(key, fresh, deadline(state, session.created_at, now)).await?)
}

/// The page that asks for the second factor, coming back to `next` after it.
pub fn step_up_url(next: &str) -> String {
    format!("{PREFIX}/mfa?next={}", html::query_value(next))
}

/// The enrolment page, coming back to `next` after it.
pub fn enrolment_url(next: &str) -> String {
    format!("{PREFIX}/account/security?next={}", html::query_value(next))
}

/// Sends a browser to `to` (302); an API client gets 403 JSON saying a second factor is
/// needed, with the page as `Location`.
pub fn send_to(headers: &HeaderMap, to: &str, reason: &'static str) -> Response {
    let location = HeaderValue::from_str(to).unwrap_or_else(|_| HeaderValue::from_static("/.deskgate/mfa"));
    if wants_html(headers) {
        return (StatusCode::FOUND, [(header::LOCATION, location)]).into_response();
    }
    let mut resp = refused(reason);
    resp.headers_mut().insert(header::LOCATION, location);
    resp
}

/// 403 JSON saying a second factor is needed: what a bearer token gets where one is
/// required, since a program cannot give one.
pub fn refused(reason: &'static str) -> Response {
    crate::web::json(
        StatusCode::FORBIDDEN,
        &serde_json::json!({"error": "second factor required", "reason": reason}),
    )
}

/// deskgate's pages a person who must enrol may still reach: enrolling, the code form,
/// signing out, and the ones that say nothing of anybody. Matched exactly, so no dot
/// segment or other spelling can lead past the layer.
const WHILE_ENROLLING: [&str; 12] = [
    "/account/security",
    "/account/keys",
    "/account/keys/begin",
    "/account/security/totp",
    "/account/security/disable",
    "/mfa",
    "/mfa/key",
    "/logout",
    "/healthz",
    "/readyz",
    "/jwks.json",
    "/login",
];

/// Whether a signed-in session must enrol (or use) a second factor before anything else:
/// one of its usergroups requires it and the session has not used one.
pub fn must_use_factor(state: &AppState, session: &Session) -> bool {
    !satisfied(&session.amr) && state.config.model.requires_mfa(&session.resolved.usergroups)
}

/// The layer: a signed-in member of a usergroup that requires a second factor who has not
/// used one in this session reaches only [`WHILE_ENROLLING`] and forward-auth questions
/// (which answer for themselves); everything else sends them to enrol.
pub async fn require_for_usergroups(State(state): State<AppState>, req: Request, next: Next) -> Response {
    let session = match req.extensions().get::<Visitor>() {
        Some(Visitor::SignedIn { session, .. }) => session,
        // A bearer token's account in such a usergroup is refused unless its token says a
        // second factor was used: a program cannot enrol. Forward-auth questions answer for
        // themselves.
        Some(Visitor::Bearer { session }) => {
            let question =
                req.uri().path().strip_prefix(PREFIX).is_some_and(|rest| {
                    rest.strip_prefix(crate::web::AUTHZ).is_some_and(|r| r.starts_with('/'))
                });
            if must_use_factor(&state, session) && !question {
                tracing::info!(account = %session.account_id, "A usergroup requires a second factor a bearer token cannot give");
                return refused("mfa-enrolment-required");
            }
            return next.run(req).await;
        }
        _ => return next.run(req).await,
    };
    if !must_use_factor(&state, session) {
        return next.run(req).await;
    }
    let path = req.uri().path();
    let own = path.strip_prefix(PREFIX);
    let allowed = own.is_some_and(|rest| {
        WHILE_ENROLLING.contains(&rest)
            || rest.strip_prefix(crate::web::AUTHZ).is_some_and(|r| r.starts_with('/'))
    });
    if allowed {
        return next.run(req).await;
    }
    tracing::info!(account = %session.account_id, %path, "A usergroup requires a second factor: sent to enrol");
    let back = req.uri().path_and_query().map_or("/", |pq| pq.as_str());
    send_to(req.headers(), &enrolment_url(back), "mfa-enrolment-required")
}
