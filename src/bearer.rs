//! `Authorization: Bearer` on proxied requests, the forward-auth endpoints and the account
//! lookup: a token acts as an account for that one request, with no session stored.
//!
//! Two kinds of token are read, told apart in one place ([`read`]): deskgate's own API
//! tokens start with `dg_`; any other bearer value is a JWT of an OpenID Connect provider
//! whose `bearer_audiences` is set. With no such provider, other bearer values are not
//! deskgate's business and reach the backend as sent. Every header naming a `dg_` token is
//! removed from the request whatever happens, so the backend never sees one; an accepted
//! provider token is removed too (the backend is told who it is, not handed the
//! credential). A token deskgate reads is either accepted or answered 401 JSON with
//! `WWW-Authenticate: Bearer … error="invalid_token"`, never a sign-in redirect: the caller
//! is a program. Failures count per client address like failed passwords
//! (`rate_limit.per_address` in `rate_limit.window`); over the limit the client gets 429
//! without its token being looked at.
//!
//! A verified API token is kept for the session cache window (`storage.redis_local_cache`,
//! 1 s by default) in a bounded per-replica cache keyed by the token's hash: a revocation,
//! or a change to the account, reaches every replica within that window.

use std::net::IpAddr;
use std::sync::Arc;
use std::time::{Duration, Instant, UNIX_EPOCH};

use axum::response::Response;
#[cfg(feature = "oidc")]
use deskgate_provider::AuthError;
use http::{HeaderMap, HeaderValue, StatusCode, header};

use crate::accounts::tokens::{self, ApiToken, TOKEN_PREFIX, TokenStore};
use crate::accounts::{Account, AccountStatus, AccountStore};
use crate::error::GatewayError;
use crate::limits::counted_address;
use crate::session::{Session, SessionStore, TOKEN_PROVIDER, TokenEntry};
use crate::state::AppState;
use crate::usergroups::Resolved;
use crate::web::{AUTHZ, PREFIX};

pub mod issue;

/// The account lookup, the one deskgate page a token reaches (under the reserved prefix).
pub const LOOKUP_PATH: &str = "/api/accounts/lookup";

/// The longest provider token read, in bytes; a longer one is refused unread.
pub const MAX_TOKEN: usize = 16 * 1024;

/// What a request's bearer token comes to.
#[derive(Debug)]
pub enum Outcome {
    /// No bearer token deskgate reads: the request goes on as its cookie says.
    Absent,
    /// A valid token: the request acts as this stand-in session (never stored).
    Accepted(Arc<Session>),
    /// The answer to send instead of anything else.
    Refused(Response),
}

/// What the request's `Authorization` headers hold, as far as deskgate is concerned.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Read<'a> {
    /// Nothing of ours (no header, or another scheme).
    None,
    /// A deskgate API token (the text after the scheme, not yet checked).
    ApiToken(String),
    /// Two `Authorization` headers with a `dg_` token among them.
    Ambiguous,
    /// Another bearer value, or one that cannot be read: a provider's, if any takes them.
    Other(Result<&'a str, Invalid>),
}

/// The one dispatch on what a request's `Authorization` headers carry. The scheme is
/// compared without regard to case and may be followed by several spaces (RFC 7235).
fn read(headers: &HeaderMap) -> Read<'_> {
    let all = headers.get_all(header::AUTHORIZATION);
    let mut ours = all.iter().filter_map(|v| api_token_text(v.as_bytes()));
    match (ours.next(), ours.next()) {
        (Some(_), Some(_)) => Read::Ambiguous,
        (Some(_), None) if all.iter().count() > 1 => Read::Ambiguous,
        (Some(token), None) => Read::ApiToken(token),
        (None, _) => provider_text(headers).map_or(Read::None, Read::Other),
    }
}

/// The credentials of a `Bearer` value whose credentials start with [`TOKEN_PREFIX`].
fn api_token_text(value: &[u8]) -> Option<String> {
    let text = String::from_utf8_lossy(value);
    let text = text.trim_matches(|c: char| c == ' ' || c == '\t');
    let (scheme, rest) = text.split_once([' ', '\t'])?;
    if !scheme.eq_ignore_ascii_case("bearer") {
        return None;
    }
    let rest = rest.trim_start_matches([' ', '\t']);
    rest.starts_with(TOKEN_PREFIX).then(|| rest.to_owned())
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

/// The bearer value of `headers` that is not an API token: `None` when no `Authorization` header uses the Bearer
/// scheme (another scheme is the backend's), `Err` when one does but it cannot be read.
fn provider_text(headers: &HeaderMap) -> Option<Result<&str, Invalid>> {
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

/// Removes every `Authorization` header that carries a `dg_` token.
fn strip(headers: &mut HeaderMap) {
    let kept: Vec<HeaderValue> = headers
        .get_all(header::AUTHORIZATION)
        .iter()
        .filter(|v| api_token_text(v.as_bytes()).is_none())
        .cloned()
        .collect();
    headers.remove(header::AUTHORIZATION);
    for v in kept {
        headers.append(header::AUTHORIZATION, v);
    }
}

/// Whether a token is read on this path: anything proxied, the forward-auth endpoints and
/// the account lookup; deskgate's other pages work by session only.
pub fn applies(path: &str) -> bool {
    match path.strip_prefix(PREFIX) {
        None => true,
        Some(rest) => {
            rest == LOOKUP_PATH
                || rest.strip_prefix(AUTHZ).is_some_and(|r| r.is_empty() || r.starts_with('/'))
        }
    }
}

/// Why a token was refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Refusal {
    /// Unknown, altered, expired, revoked, or its account cannot be used.
    Invalid,
    /// Two `Authorization` headers with a token among them.
    Ambiguous,
    /// This client failed too often: try again after this long.
    TooMany(Duration),
    /// The identity provider could not be asked for its keys.
    Unavailable,
}

impl Refusal {
    /// The answer: RFC 6750's error in JSON and in `WWW-Authenticate`.
    pub fn response(self) -> Response {
        let (status, error, text) = match self {
            Refusal::Invalid => {
                (StatusCode::UNAUTHORIZED, "invalid_token", "The API token is unknown, expired or revoked.")
            }
            Refusal::Ambiguous => {
                (StatusCode::BAD_REQUEST, "invalid_request", "Send one Authorization header.")
            }
            Refusal::Unavailable => (
                StatusCode::SERVICE_UNAVAILABLE,
                "temporarily_unavailable",
                "The identity provider cannot be reached; try again later.",
            ),
            Refusal::TooMany(_) => (
                StatusCode::TOO_MANY_REQUESTS,
                "too_many_attempts",
                "Too many failed attempts; try again later.",
            ),
        };
        let mut resp =
            crate::web::json(status, &serde_json::json!({ "error": error, "error_description": text }));
        let challenge = match self {
            Refusal::Ambiguous => r#"Bearer realm="deskgate", error="invalid_request""#,
            _ => r#"Bearer realm="deskgate", error="invalid_token""#,
        };
        let h = resp.headers_mut();
        match self {
            Refusal::Unavailable => {}
            _ => {
                h.insert(header::WWW_AUTHENTICATE, HeaderValue::from_static(challenge));
            }
        }
        if let Refusal::TooMany(window) = self
            && let Ok(v) = HeaderValue::from_str(&window.as_secs().to_string())
        {
            h.insert(header::RETRY_AFTER, v);
        }
        resp
    }
}

/// The usergroups and permissions an account holds now, without a session: its assignments,
/// organizations, config assignments and what its providers said at its last sign-in,
/// mapped by today's rules (as the person page explains them).
pub async fn account_resolution(state: &AppState, account: &Account) -> Result<Resolved, GatewayError> {
    let claims = state.accounts.provider_claims(&account.id).await?;
    let claimed = crate::explain::Claimed::new(&state.config, &claims);
    let model = state.model().await?;
    let (provider, named) = claimed.for_member(&model);
    Ok(model.resolve(&crate::explain::claimed_member(account, &provider, &named)))
}

/// What a token may do: its account's permissions, narrowed to the token's own list.
pub fn narrowed(account: Resolved, token: &ApiToken) -> Resolved {
    match &token.permissions {
        None => account,
        Some(only) => Resolved {
            permissions: account.permissions.into_iter().filter(|p| only.contains(p)).collect(),
            usergroups: account.usergroups,
        },
    }
}

/// Reads the request's bearer token, if deskgate is to read it (see the module doc), and
/// removes what it read from the request. `client` is the address failures count against.
pub async fn authenticate(
    state: &AppState,
    headers: &mut HeaderMap,
    client: IpAddr,
) -> Result<Outcome, GatewayError> {
    let refused = |r: Refusal| Ok(Outcome::Refused(r.response()));
    match read(headers) {
        Read::None => Ok(Outcome::Absent),
        Read::Ambiguous => {
            strip(headers);
            refused(Refusal::Ambiguous)
        }
        Read::ApiToken(token) => {
            strip(headers);
            match verify(state, &token, client).await? {
                Ok(session) => Ok(Outcome::Accepted(session)),
                Err(r) => refused(r),
            }
        }
        Read::Other(_) if !accepts_provider_tokens(state) => Ok(Outcome::Absent),
        Read::Other(value) => {
            let value = value.map(str::to_owned);
            match provider(state, value, client).await? {
                Ok(session) => {
                    headers.remove(header::AUTHORIZATION);
                    Ok(Outcome::Accepted(session))
                }
                Err(r) => refused(r),
            }
        }
    }
}

/// Whether the client at `counter` is over its failures; notes it when it is.
async fn over_limit(state: &AppState, counter: &str, what: &'static str) -> Result<bool, GatewayError> {
    let over = state.sessions.count(counter).await? >= u64::from(state.config.rate_limit.per_address);
    if over {
        state.notices.sign_in.hit(state.clock.now(), what);
    }
    Ok(over)
}

async fn verify(
    state: &AppState,
    token: &str,
    client: IpAddr,
) -> Result<Result<Arc<Session>, Refusal>, GatewayError> {
    let now = state.clock.now();
    let hash = tokens::token_hash(token);
    if let Some((id, last_used, session)) = state.tokens.get(&hash, now) {
        touch(state, &hash, &id, last_used, now).await?;
        return Ok(Ok(session));
    }
    let counter = format!("rl:token:{}", counted_address(client));
    let rl = state.config.rate_limit;
    if over_limit(state, &counter, "an address is over rate_limit.per_address with API tokens").await? {
        return Ok(Err(Refusal::TooMany(rl.window)));
    }
    let found = match tokens::well_formed(token) {
        true => usable(state, &hash, now).await?,
        false => None,
    };
    let Some((record, account)) = found else {
        state.sessions.incr(&counter, rl.window.as_secs()).await?;
        tracing::info!(client = %client, "Refused an API token: unknown, expired, revoked or its account unusable");
        return Ok(Err(Refusal::Invalid));
    };
    let resolved = narrowed(account_resolution(state, &account).await?, &record);
    let session = Arc::new(Session {
        account_id: account.id.clone(),
        email: account.email.clone(),
        email_verified: account.email.is_some() && account.email_verified,
        name: account.name.clone(),
        provider: TOKEN_PROVIDER.to_owned(),
        resolved: state.interner.intern(resolved),
        generation: state.generation,
        subject: record.id.as_str().into(),
        created_at: record.created_at,
        last_seen: now,
        amr: vec![TOKEN_PROVIDER.to_owned()],
        ..Session::default()
    });
    state.tokens.put(
        hash.clone(),
        TokenEntry {
            token_id: record.id.clone(),
            expires_at: record.expires_at,
            last_used_at: record.last_used_at,
            session: session.clone(),
            read_at: Instant::now(),
        },
    );
    touch(state, &hash, &record.id, record.last_used_at, now).await?;
    Ok(Ok(session))
}

/// The token under `hash` and its account, when both may be used now.
async fn usable(state: &AppState, hash: &str, now: u64) -> Result<Option<(ApiToken, Account)>, GatewayError> {
    let Some(record) = state.accounts.token_by_hash(hash).await? else { return Ok(None) };
    if now >= record.expires_at {
        return Ok(None);
    }
    let account = state.accounts.by_id(&record.account_id).await?;
    Ok(account.filter(|a| !a.disabled && a.status == AccountStatus::Active).map(|a| (record, a)))
}

/// Notes the use at most once a minute per token and replica.
async fn touch(
    state: &AppState,
    hash: &str,
    id: &str,
    last: Option<u64>,
    now: u64,
) -> Result<(), GatewayError> {
    if last.is_some_and(|l| now < l + 60) {
        return Ok(());
    }
    state.tokens.used(hash, now);
    state.accounts.touch_token(id, now).await?;
    Ok(())
}

/// Checks a provider's JWT: rate limit, verification, and the account as a sign-in would
/// resolve it.
async fn provider(
    state: &AppState,
    value: Result<String, Invalid>,
    client: IpAddr,
) -> Result<Result<Arc<Session>, Refusal>, GatewayError> {
    let counter = format!("rl:bearer:{}", counted_address(client));
    let rl = state.config.rate_limit;
    if over_limit(state, &counter, "an address is over rate_limit.per_address with bearer tokens").await? {
        return Ok(Err(Refusal::TooMany(rl.window)));
    }
    let outcome = match value {
        Ok(value) if value.len() > MAX_TOKEN => Err(Some(Invalid::TooLong)),
        Ok(value) => provider_token(state, &value).await?,
        Err(invalid) => Err(Some(invalid)),
    };
    match outcome {
        Ok(session) => Ok(Ok(session)),
        Err(Some(invalid)) => {
            tracing::info!(client = %client, reason = invalid.code(), detail = ?invalid, "Refused a bearer token");
            state.metrics.decision("bearer", invalid.code());
            let _ = state.sessions.incr(&counter, rl.window.as_secs()).await;
            Ok(Err(Refusal::Invalid))
        }
        Err(None) => Ok(Err(Refusal::Unavailable)),
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
) -> Result<Result<Arc<Session>, Option<Invalid>>, GatewayError> {
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
        return Ok(Ok(Arc::new(session)));
    }
    Ok(Err(Some(last)))
}

#[cfg(not(feature = "oidc"))]
async fn provider_token(
    _: &AppState,
    _: &str,
) -> Result<Result<Arc<Session>, Option<Invalid>>, GatewayError> {
    Ok(Err(Some(Invalid::UnknownIssuer)))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn headers(values: &[&str]) -> HeaderMap {
        let mut h = HeaderMap::new();
        for v in values {
            h.append(header::AUTHORIZATION, HeaderValue::from_str(v).expect("value"));
        }
        h
    }

    #[test]
    fn only_dg_bearer_tokens_are_ours_in_every_spelling() {
        let t = "dg_abc";
        assert_eq!(read(&headers(&[])), Read::None);
        for other in ["Basic dXNlcjpwYXNz", "Bearer", "dg_abc", "Token dg_abc"] {
            assert_eq!(read(&headers(&[other])), Read::None, "{other}");
        }
        for ours in ["Bearer dg_abc", "bearer dg_abc", "BEARER   dg_abc", " Bearer\tdg_abc "] {
            assert_eq!(read(&headers(&[ours])), Read::ApiToken(t.into()), "{ours}");
        }
        // Extra text after the token stays part of it (and fails the format check).
        assert_eq!(read(&headers(&["Bearer dg_abc def"])), Read::ApiToken("dg_abc def".into()));
        assert_eq!(read(&headers(&["Bearer dg_a", "Bearer dg_b"])), Read::Ambiguous);
        assert_eq!(read(&headers(&["Basic x", "Bearer dg_b"])), Read::Ambiguous);
        assert_eq!(read(&headers(&["Basic x", "Basic y"])), Read::None);
    }

    #[test]
    fn a_token_is_removed_and_other_authorization_kept() {
        let mut h = headers(&["bearer  dg_x", "Basic y"]);
        strip(&mut h);
        let left: Vec<_> = h.get_all(header::AUTHORIZATION).iter().collect();
        assert_eq!(left, ["Basic y"]);
    }

    #[test]
    fn tokens_apply_to_proxied_paths_forward_auth_and_the_lookup_only() {
        assert!(applies("/api/tickets"));
        assert!(applies("/"));
        assert!(applies("/.deskgate/authz/forward-auth"));
        assert!(applies("/.deskgate/api/accounts/lookup"));
        assert!(!applies("/.deskgate/api/people"));
        assert!(!applies("/.deskgate/account/tokens"));
        assert!(!applies("/.deskgate/admin/people"));
        assert!(!applies("/.deskgate/authzx"));
    }

    #[test]
    fn a_limited_token_holds_only_what_its_account_still_holds() {
        let account = Resolved {
            usergroups: vec!["everyone".into(), "registered".into()],
            permissions: vec!["kb.read".into(), "tickets.read".into()],
        };
        let token = ApiToken {
            id: "t".into(),
            account_id: "a".into(),
            name: "n".into(),
            permissions: Some(vec!["tickets.read".into(), "chat.sales".into()]),
            created_at: 0,
            expires_at: 1,
            last_used_at: None,
        };
        assert_eq!(narrowed(account.clone(), &token).permissions, ["tickets.read"]);
        let all = ApiToken { permissions: None, ..token };
        assert_eq!(narrowed(account.clone(), &all), account);
    }
    #[test]
    fn api_tokens_and_provider_tokens_are_told_apart_by_their_prefix() {
        assert_eq!(read(&headers(&["Bearer dg_abc"])), Read::ApiToken("dg_abc".into()));
        assert_eq!(read(&headers(&["Bearer eyJhbGciOi.x.y"])), Read::Other(Ok("eyJhbGciOi.x.y")));
        assert_eq!(read(&headers(&["Bearer DG_abc"])), Read::Other(Ok("DG_abc")));
        assert_eq!(read(&headers(&["Bearer eyJ.x.y", "Bearer dg_abc"])), Read::Ambiguous);
        assert_eq!(read(&headers(&["Bearer a", "Bearer b"])), Read::Other(Err(Invalid::Malformed)));
    }

    #[test]
    fn only_the_bearer_scheme_is_read() {
        assert!(provider_text(&HeaderMap::new()).is_none());
        assert!(provider_text(&headers(&["Basic dXNlcjpwYXNz"])).is_none());
        assert!(provider_text(&headers(&["Bearerx abc"])).is_none());
        assert_eq!(provider_text(&headers(&["Bearer abc"])), Some(Ok("abc")));
        assert_eq!(provider_text(&headers(&["bEARER \t abc "])), Some(Ok("abc")));
    }

    #[test]
    fn repeated_empty_or_oversize_bearer_values_are_invalid() {
        assert_eq!(provider_text(&headers(&["Bearer a", "Bearer b"])), Some(Err(Invalid::Malformed)));
        assert_eq!(provider_text(&headers(&["Basic x", "Bearer b"])), Some(Err(Invalid::Malformed)));
        assert!(provider_text(&headers(&["Basic x", "Basic y"])).is_none());
        assert_eq!(provider_text(&headers(&["Bearer  "])), Some(Err(Invalid::Malformed)));
        let long = format!("Bearer {}", "a".repeat(MAX_TOKEN + 100));
        assert_eq!(provider_text(&headers(&[&long])), Some(Err(Invalid::TooLong)));
    }
}
