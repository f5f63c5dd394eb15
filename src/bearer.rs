//! `Authorization: Bearer` on proxied requests and forward-auth questions: a token acts as
//! an account for that one request, with no session.
//!
//! Which kind of token a value is gets settled in one place, [`kind`]: deskgate's own API
//! tokens start with `dg_`; any other value is a JWT from an OpenID Connect provider whose
//! `bearer_audiences` is set. With no such provider, other bearer values are not deskgate's
//! business and reach the backend as before. Otherwise a token deskgate reads is either
//! accepted (the request goes on as that account, the `Authorization` header removed) or
//! answered 401 with `WWW-Authenticate: Bearer error="invalid_token"` and a JSON body, never
//! a sign-in redirect: the caller is a program. Failures count per client address like
//! failed passwords (`rate_limit.per_address` in `rate_limit.window`); over the limit the
//! client gets 429 without its token being looked at.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, UNIX_EPOCH};

use axum::response::{IntoResponse, Response};
use deskgate_provider::AuthError;
use http::{HeaderMap, HeaderValue, StatusCode, header};

use crate::error::GatewayError;
use crate::forwarded;
use crate::limits::counted_address;
use crate::session::SessionStore;
use crate::state::AppState;
use crate::visitor::Visitor;

/// The longest bearer token read, in bytes; a longer one is refused unread.
pub const MAX_TOKEN: usize = 16 * 1024;

/// What a request's bearer token comes to.
#[derive(Debug)]
pub enum Bearer {
    /// No bearer token deskgate reads: the request goes on as its cookie says, headers as sent.
    Absent,
    /// A valid token: the request acts as this visitor; the caller removes `Authorization`.
    Accepted(Visitor),
    /// The answer to send instead of forwarding anything.
    Refused(Response),
}

/// Whose a bearer value is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    /// deskgate's own API tokens (`dg_…`).
    ApiToken,
    /// A JWT of a configured OpenID Connect provider.
    Provider,
}

/// The one dispatch on a bearer value's form.
pub fn kind(token: &str) -> Kind {
    if token.starts_with("dg_") { Kind::ApiToken } else { Kind::Provider }
}

/// Why a token deskgate reads was not accepted (for the log; the client only learns
/// `invalid_token`).
#[derive(Debug, Clone, PartialEq, Eq)]
enum Invalid {
    /// Several `Authorization` headers, an empty value, or one that is not visible ASCII.
    Malformed,
    /// Longer than [`MAX_TOKEN`].
    TooLong,
    /// Not from the issuer of a provider that accepts bearer tokens.
    UnknownIssuer,
    /// The provider's checks refused it.
    Refused(String),
    /// Valid, but nobody has an account for it and none may be made.
    NoAccount,
    /// Valid, for a disabled or not yet active account.
    Disabled,
}

impl Invalid {
    fn code(&self) -> &'static str {
        match self {
            Invalid::Malformed => "malformed",
            Invalid::TooLong => "too-long",
            Invalid::UnknownIssuer => "unknown-issuer",
            Invalid::Refused(_) => "refused",
            Invalid::NoAccount => "no-account",
            Invalid::Disabled => "account-disabled",
        }
    }
}

/// The bearer value of `headers`: `None` when no `Authorization` header uses the Bearer
/// scheme (another scheme is the backend's), `Err` when one does but it cannot be read.
fn token(headers: &HeaderMap) -> Option<Result<&str, Invalid>> {
    let mut values = headers.get_all(header::AUTHORIZATION).iter();
    let first = values.next()?;
    let several = values.next().is_some();
    let bearer = |v: &HeaderValue| {
        let b = v.as_bytes();
        b.len() >= 7 && b[..6].eq_ignore_ascii_case(b"bearer") && (b[6] == b' ' || b[6] == b'\t')
    };
    if several {
        // Two credentials for one request: which one a backend would read is anyone's guess.
        return headers.get_all(header::AUTHORIZATION).iter().any(bearer).then_some(Err(Invalid::Malformed));
    }
    if !bearer(first) {
        return None;
    }
    if first.len() > MAX_TOKEN + 16 {
        return Some(Err(Invalid::TooLong));
    }
    let Ok(text) = first.to_str() else { return Some(Err(Invalid::Malformed)) };
    let value = text[7..].trim_matches([' ', '\t']);
    if value.is_empty() || !value.bytes().all(|b| b.is_ascii_graphic()) {
        return Some(Err(Invalid::Malformed));
    }
    Some(Ok(value))
}

/// Reads the request's bearer token, if deskgate is to read it (see the module doc).
pub async fn authenticate(
    state: &AppState,
    peer: SocketAddr,
    headers: &HeaderMap,
) -> Result<Bearer, GatewayError> {
    let read = match token(headers) {
        None => return Ok(Bearer::Absent),
        Some(read) => read,
    };
    // Until deskgate's own tokens are read here, a `dg_` value goes on to the backend as before.
    if let Ok(value) = read
        && kind(value) == Kind::ApiToken
    {
        return Ok(Bearer::Absent);
    }
    if !accepts_provider_tokens(state) {
        return Ok(Bearer::Absent);
    }
    let client = forwarded::client_addr(peer.ip(), headers, &state.config.server.trusted_proxies);
    let counter = format!("rl:bearer:{}", counted_address(client));
    let rl = state.config.rate_limit;
    if state.sessions.count(&counter).await? >= u64::from(rl.per_address) {
        state
            .notices
            .sign_in
            .hit(state.clock.now(), "an address is over rate_limit.per_address with bearer tokens");
        return Ok(Bearer::Refused(too_many(rl.window)));
    }
    let outcome = match read {
        Ok(value) if value.len() > MAX_TOKEN => Err(Some(Invalid::TooLong)),
        Ok(value) => provider_token(state, value).await?,
        Err(invalid) => Err(Some(invalid)),
    };
    match outcome {
        Ok(visitor) => Ok(Bearer::Accepted(visitor)),
        Err(Some(invalid)) => {
            tracing::info!(client = %client, reason = invalid.code(), detail = ?invalid, "Refused a bearer token");
            state.metrics.decision("bearer", invalid.code());
            let _ = state.sessions.incr(&counter, rl.window.as_secs()).await;
            Ok(Bearer::Refused(invalid_token()))
        }
        Err(None) => Ok(Bearer::Refused(unavailable())),
    }
}

#[cfg(feature = "oidc")]
fn accepts_provider_tokens(state: &AppState) -> bool {
    state.config.oidc.iter().any(|p| p.oidc.accepts_bearer())
}

#[cfg(not(feature = "oidc"))]
fn accepts_provider_tokens(_: &AppState) -> bool {
    false
}

/// Verifies a provider's JWT and resolves its account as a sign-in would. `Err(None)`: the
/// provider could not be asked for its keys.
#[cfg(feature = "oidc")]
async fn provider_token(
    state: &AppState,
    token: &str,
) -> Result<Result<Visitor, Option<Invalid>>, GatewayError> {
    let Some(iss) = deskgate_oidc::unverified_issuer(token) else { return Ok(Err(Some(Invalid::Malformed))) };
    let now = UNIX_EPOCH + Duration::from_secs(state.clock.now());
    let mut last = Invalid::UnknownIssuer;
    for p in state.config.oidc.iter().filter(|p| p.oidc.accepts_bearer() && p.oidc.is_issuer(&iss)) {
        let identity = match p.oidc.verify_bearer(token, now).await {
            Ok(identity) => identity,
            Err(AuthError::Unavailable(cause)) => {
                tracing::warn!(provider = %p.id, cause = %deskgate_provider::error_chain(cause.as_ref()), "Cannot check a bearer token: the identity provider is unavailable");
                return Ok(Err(None));
            }
            Err(e) => {
                last = Invalid::Refused(e.to_string());
                continue;
            }
        };
        let account = match crate::signin::resolve_account(state, &identity, &p.policy).await? {
            Ok(account) => account,
            Err(crate::signin::Refusal::Disabled) => return Ok(Err(Some(Invalid::Disabled))),
            Err(_) => return Ok(Err(Some(Invalid::NoAccount))),
        };
        let groups = p.policy.map_groups(&identity.groups);
        let session = crate::signin::resolve_session(state, &account, &identity, groups, None).await?;
        tracing::debug!(account = %account.id, provider = %p.id, "Bearer token accepted");
        return Ok(Ok(Visitor::Bearer { session: Arc::new(session) }));
    }
    Ok(Err(Some(last)))
}

#[cfg(not(feature = "oidc"))]
async fn provider_token(_: &AppState, _: &str) -> Result<Result<Visitor, Option<Invalid>>, GatewayError> {
    Ok(Err(Some(Invalid::UnknownIssuer)))
}

fn json(status: StatusCode, body: &'static str) -> Response {
    let mut resp = (status, body).into_response();
    let h = resp.headers_mut();
    h.insert(header::CONTENT_TYPE, HeaderValue::from_static("application/json"));
    h.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    resp
}

/// RFC 6750's answer to a token that is not accepted.
fn invalid_token() -> Response {
    let mut resp = json(StatusCode::UNAUTHORIZED, r#"{"error":"invalid_token"}"#);
    resp.headers_mut()
        .insert(header::WWW_AUTHENTICATE, HeaderValue::from_static(r#"Bearer error="invalid_token""#));
    resp
}

fn too_many(window: Duration) -> Response {
    let mut resp = json(StatusCode::TOO_MANY_REQUESTS, r#"{"error":"too many invalid tokens"}"#);
    if let Ok(v) = HeaderValue::from_str(&window.as_secs().to_string()) {
        resp.headers_mut().insert(header::RETRY_AFTER, v);
    }
    resp
}

fn unavailable() -> Response {
    json(StatusCode::SERVICE_UNAVAILABLE, r#"{"error":"the identity provider is unavailable"}"#)
}

#[cfg(test)]
#[allow(clippy::unwrap_used, reason = "tests fail loudly on purpose")]
mod tests {
    use super::*;

    fn headers(values: &[&str]) -> HeaderMap {
        let mut h = HeaderMap::new();
        for v in values {
            h.append(header::AUTHORIZATION, HeaderValue::from_str(v).unwrap());
        }
        h
    }

    #[test]
    fn api_tokens_and_provider_tokens_are_told_apart_by_their_prefix() {
        assert_eq!(kind("dg_abc"), Kind::ApiToken);
        assert_eq!(kind("eyJhbGciOi.x.y"), Kind::Provider);
        assert_eq!(kind("DG_abc"), Kind::Provider);
    }

    #[test]
    fn only_the_bearer_scheme_is_read() {
        assert!(token(&HeaderMap::new()).is_none());
        assert!(token(&headers(&["Basic dXNlcjpwYXNz"])).is_none());
        assert!(token(&headers(&["Bearerx abc"])).is_none());
        assert_eq!(token(&headers(&["Bearer abc"])), Some(Ok("abc")));
        assert_eq!(token(&headers(&["bEARER \t abc "])), Some(Ok("abc")));
    }

    #[test]
    fn repeated_empty_or_oversize_bearer_values_are_invalid() {
        assert_eq!(token(&headers(&["Bearer a", "Bearer b"])), Some(Err(Invalid::Malformed)));
        assert_eq!(token(&headers(&["Basic x", "Bearer b"])), Some(Err(Invalid::Malformed)));
        assert!(token(&headers(&["Basic x", "Basic y"])).is_none());
        assert_eq!(token(&headers(&["Bearer  "])), Some(Err(Invalid::Malformed)));
        let long = format!("Bearer {}", "a".repeat(MAX_TOKEN + 100));
        assert_eq!(token(&headers(&[&long])), Some(Err(Invalid::TooLong)));
    }
}
