//! `Authorization: Bearer dg_…`: an API token acting as its account, with the token's
//! permissions, on proxied requests, the forward-auth endpoints and the account lookup.
//!
//! [`credential`] is the one place that reads the `Authorization` header and says whose it
//! is: a value that is not a `dg_` token is not ours and is left alone (it goes to the
//! backend as sent). A `dg_` token is removed from the request whatever happens, so the
//! backend never sees it; a bad, expired or revoked one is answered 401 JSON here, never
//! sent to sign in, and each failure counts against the client's address like a failed
//! password (`rate_limit.per_address` per `rate_limit.window`).
//!
//! A verified token is kept for the session cache window (`storage.redis_local_cache`, 1 s
//! by default) in a bounded per-replica cache keyed by the token's hash: a revocation, or a
//! change to the account, reaches every replica within that window.

use std::net::IpAddr;
use std::sync::Arc;
use std::time::Instant;

use axum::response::Response;
use http::{HeaderMap, HeaderValue, StatusCode, header};

use crate::accounts::tokens::{self, ApiToken, TOKEN_PREFIX, TokenStore};
use crate::accounts::{Account, AccountStatus, AccountStore};
use crate::error::GatewayError;
use crate::limits::counted_address;
use crate::session::{Session, SessionKey, SessionStore, TOKEN_PROVIDER, TokenEntry};
use crate::state::AppState;
use crate::usergroups::Resolved;

pub mod issue;

/// The account lookup, the one deskgate page a token reaches (under the reserved prefix).
pub const LOOKUP_PATH: &str = "/api/accounts/lookup";

/// The reserved prefix and the forward-auth endpoints' path under it, as `pages::PREFIX`
/// and `authz::AUTHZ` (spelled here so that this module, which the session lookup calls,
/// imports neither; a test checks they agree).
const PREFIX: &str = "/.deskgate";
const AUTHZ: &str = "/authz";

/// What the request's `Authorization` header holds, as far as deskgate is concerned.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Credential {
    /// Nothing of ours (no header, or another scheme or kind of token): left alone.
    None,
    /// A deskgate API token (the text after the scheme, not yet checked).
    ApiToken(String),
    /// Something of ours that cannot be read: a repeated header carrying a `dg_` token.
    Malformed,
}

/// Reads the `Authorization` header. The scheme is compared without regard to case and may be
/// followed by several spaces (RFC 7235); whatever follows must then be one token. Every
/// header that names a `dg_` token is ours, so that no spelling of one reaches the backend.
pub fn credential(headers: &HeaderMap) -> Credential {
    let mut ours = headers.get_all(header::AUTHORIZATION).iter().filter_map(|v| bearer_text(v.as_bytes()));
    match (ours.next(), ours.next()) {
        (None, _) => Credential::None,
        (Some(_), Some(_)) => Credential::Malformed,
        (Some(_), None) if headers.get_all(header::AUTHORIZATION).iter().count() > 1 => Credential::Malformed,
        (Some(token), None) => Credential::ApiToken(token),
    }
}

/// The credentials of a `Bearer` value whose credentials start with [`TOKEN_PREFIX`].
fn bearer_text(value: &[u8]) -> Option<String> {
    let text = String::from_utf8_lossy(value);
    let text = text.trim_matches(|c: char| c == ' ' || c == '\t');
    let (scheme, rest) = text.split_once([' ', '\t'])?;
    if !scheme.eq_ignore_ascii_case("bearer") {
        return None;
    }
    let rest = rest.trim_start_matches([' ', '\t']);
    rest.starts_with(TOKEN_PREFIX).then(|| rest.to_owned())
}

/// Removes every `Authorization` header that carries a `dg_` token.
fn strip(headers: &mut HeaderMap) {
    let kept: Vec<HeaderValue> = headers
        .get_all(header::AUTHORIZATION)
        .iter()
        .filter(|v| bearer_text(v.as_bytes()).is_none())
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
    /// This client failed too often.
    TooMany,
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
            Refusal::TooMany => (
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
        resp.headers_mut().insert(header::WWW_AUTHENTICATE, HeaderValue::from_static(challenge));
        resp
    }
}

/// The usergroups and permissions an account holds now, without a session: its assignments,
/// organizations, config assignments and what its providers said at its last sign-in,
/// mapped by today's rules (as the person page explains them).
pub async fn account_resolution(state: &AppState, account: &Account) -> Result<Resolved, GatewayError> {
    let claims = state.accounts.provider_claims(&account.id).await?;
    let claimed = crate::admin::explain::Claimed::new(&state.config, &claims);
    let model = state.model().await?;
    let (provider, named) = claimed.for_member(&model);
    Ok(model.resolve(&crate::admin::explain::claimed_member(account, &provider, &named)))
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

/// The stand-in session a request's token makes (with a store key no session has), or the
/// answer that refuses it; `None` when the request carries nothing of ours (the session
/// cookie decides). Removes the token from the request.
pub async fn authenticate(
    state: &AppState,
    headers: &mut HeaderMap,
    client: IpAddr,
) -> Result<Option<Result<(SessionKey, Arc<Session>), Refusal>>, GatewayError> {
    let token = match credential(headers) {
        Credential::None => return Ok(None),
        Credential::Malformed => {
            strip(headers);
            return Ok(Some(Err(Refusal::Ambiguous)));
        }
        Credential::ApiToken(t) => t,
    };
    strip(headers);
    Ok(Some(verify(state, &token, client).await?))
}

async fn verify(
    state: &AppState,
    token: &str,
    client: IpAddr,
) -> Result<Result<(SessionKey, Arc<Session>), Refusal>, GatewayError> {
    let now = state.clock.now();
    let hash = tokens::token_hash(token);
    let key = || SessionKey::from_cookie(&format!("token:{hash}"));
    if let Some((id, last_used, session)) = state.tokens.get(&hash, now) {
        touch(state, &hash, &id, last_used, now).await?;
        return Ok(Ok((key(), session)));
    }
    let counter = format!("rl:token:{}", counted_address(client));
    let rl = state.config.rate_limit;
    if state.sessions.count(&counter).await? >= u64::from(rl.per_address) {
        state.notices.sign_in.hit(now, "an address is over rate_limit.per_address with API tokens");
        return Ok(Err(Refusal::TooMany));
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
    Ok(Ok((key(), session)))
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
        assert_eq!(credential(&headers(&[])), Credential::None);
        for other in ["Basic dXNlcjpwYXNz", "Bearer eyJhbGciOi.x.y", "Bearer", "dg_abc", "Token dg_abc"] {
            assert_eq!(credential(&headers(&[other])), Credential::None, "{other}");
        }
        for ours in ["Bearer dg_abc", "bearer dg_abc", "BEARER   dg_abc", " Bearer\tdg_abc "] {
            assert_eq!(credential(&headers(&[ours])), Credential::ApiToken(t.into()), "{ours}");
        }
        // Extra text after the token stays part of it (and fails the format check).
        assert_eq!(credential(&headers(&["Bearer dg_abc def"])), Credential::ApiToken("dg_abc def".into()));
        assert_eq!(credential(&headers(&["Bearer dg_a", "Bearer dg_b"])), Credential::Malformed);
        assert_eq!(credential(&headers(&["Basic x", "Bearer dg_b"])), Credential::Malformed);
        assert_eq!(credential(&headers(&["Basic x", "Basic y"])), Credential::None);
    }

    #[test]
    fn a_token_is_removed_and_other_authorization_kept() {
        let mut h = headers(&["bearer  dg_x", "Basic y"]);
        strip(&mut h);
        let left: Vec<_> = h.get_all(header::AUTHORIZATION).iter().collect();
        assert_eq!(left, ["Basic y"]);
    }

    #[test]
    fn the_paths_spelled_here_are_the_pages_own() {
        assert_eq!(PREFIX, crate::pages::PREFIX);
        assert_eq!(AUTHZ, crate::authz::AUTHZ);
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
}
