//! Forward auth: a proxy deskgate does not replace asks "may this request pass, and who is
//! it?", and copies the answer's headers to its upstream.
//!
//! One endpoint per header dialect, each reading only its own headers (a URL read from one
//! dialect's header by another's endpoint is how anchors get bypassed):
//!
//! - `forward-auth`: `X-Forwarded-Method`, `-Proto`, `-Host`, `-Uri` (Traefik, Caddy, HAProxy);
//! - `auth-request`: `X-Original-URL`, `X-Original-Method` (nginx, ingress-nginx);
//! - `ext-authz/<original path>`: Envoy's HTTP check, the method and `Host` of the request.
//!
//! The original URL is believed only from `server.trusted_proxies`; anyone else gets 403
//! and a log line. The request is decided by the same `decide_for_host`, over the same path
//! normalization, as the full proxy. Allowed: 200 with every identity header, empty when
//! there is nothing to say, so that a proxy copying them never leaves a client's own value
//! in place. Refused: 401 (auth-request: nginx turns it into its sign-in redirect) or a 302
//! to the sign-in page for a browser and 401 for an API client (the other two: their
//! proxies hand the answer to the client), 403 to someone signed in but not permitted.
//! A header that is repeated, malformed, absolute-form, oversize or of another dialect is
//! answered with a 4xx naming it, never decided on. Every answer says `no-store`.

use std::net::SocketAddr;

use axum::Router;
use axum::extract::{ConnectInfo, Request, State};
use axum::response::{IntoResponse, Response};
use axum::routing::any;
use http::{HeaderMap, HeaderName, HeaderValue, Method, StatusCode, header};

use crate::forwarded;
use crate::html::query_value;
use crate::policy::{Decision, Who, normalize, request_host, verdict_for_host};
use crate::state::AppState;
use crate::visitor::Visitor;
use crate::web::{AUTHZ, PREFIX, wants_html};

/// The longest original target (path and query) read, in bytes.
pub const MAX_TARGET: usize = 8 * 1024;

/// The headers of the forward-auth dialect.
const FORWARDED: [&str; 4] =
    ["x-forwarded-method", "x-forwarded-proto", "x-forwarded-host", "x-forwarded-uri"];
/// The headers of the auth-request dialect.
const ORIGINAL: [&str; 2] = ["x-original-url", "x-original-method"];
/// Headers of the other dialects that name a URL or method: their presence is refused.
const FORWARDED_URL: [&str; 2] = ["x-forwarded-uri", "x-forwarded-method"];

/// Which proxy's headers an endpoint reads.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Dialect {
    /// Traefik `forwardAuth`, Caddy `forward_auth`, HAProxy (Lua).
    ForwardAuth,
    /// nginx `auth_request`, ingress-nginx `auth-url`.
    AuthRequest,
    /// Envoy `ext_authz` over HTTP.
    ExtAuthz,
}

impl Dialect {
    fn name(self) -> &'static str {
        match self {
            Dialect::ForwardAuth => "forward-auth",
            Dialect::AuthRequest => "auth-request",
            Dialect::ExtAuthz => "ext-authz",
        }
    }
}

/// The request a proxy asks about.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Original {
    /// Its method.
    pub method: Method,
    /// Whether it came over https.
    pub https: Option<bool>,
    /// Its host as sent (a name or address, with the port if one was given).
    pub host: String,
    /// Its path and query, origin-form.
    pub target: String,
}

impl Original {
    /// The URL to come back to after signing in.
    fn url(&self, default_https: bool) -> String {
        let scheme = if self.https.unwrap_or(default_https) { "https" } else { "http" };
        format!("{scheme}://{}{}", self.host, self.target)
    }
}

/// Why the original request could not be read.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Malformed {
    /// A header the dialect needs is absent.
    #[error("`{0}` is absent")]
    Missing(&'static str),
    /// A header is sent more than once (or in more than one spelling).
    #[error("`{0}` is sent more than once")]
    Repeated(&'static str),
    /// A header of another proxy's dialect came along.
    #[error("`{0}` belongs to another proxy's endpoint")]
    OtherDialect(&'static str),
    /// A value is not visible ASCII.
    #[error("`{0}` is not plain text")]
    NotText(&'static str),
    /// The target is longer than [`MAX_TARGET`].
    #[error("`{0}` is too long")]
    TooLong(&'static str),
    /// The target is in absolute form where a path was expected.
    #[error("`{0}` must be a path, not a whole URL")]
    AbsoluteForm(&'static str),
    /// The target or URL cannot be read.
    #[error("`{0}` is not a valid request target")]
    BadTarget(&'static str),
    /// The URL is not http(s), carries user information or no host.
    #[error("`{0}` must be an http or https URL with a host and nothing before it")]
    BadUrl(&'static str),
    /// The host is not a host name or address.
    #[error("`{0}` is not a host")]
    BadHost(&'static str),
    /// The scheme is neither `http` nor `https`.
    #[error("`{0}` must be http or https")]
    BadScheme(&'static str),
    /// The method is not an HTTP method.
    #[error("`{0}` is not a method")]
    BadMethod(&'static str),
}

impl Malformed {
    /// The status it is answered with.
    pub fn status(&self) -> StatusCode {
        match self {
            Malformed::TooLong(_) => StatusCode::URI_TOO_LONG,
            _ => StatusCode::BAD_REQUEST,
        }
    }
}

/// The one value of header `name` (lower case, `-`), counting every `_` spelling too.
fn single<'h>(headers: &'h HeaderMap, name: &'static str) -> Result<Option<&'h str>, Malformed> {
    let mut found = None;
    for (n, v) in headers {
        let same = n.as_str().len() == name.len()
            && n.as_str().bytes().zip(name.bytes()).all(|(a, b)| a == b || (a == b'_' && b == b'-'));
        if !same {
            continue;
        }
        if found.is_some() {
            return Err(Malformed::Repeated(name));
        }
        found = Some(v);
    }
    found.map(|v| v.to_str().map_err(|_| Malformed::NotText(name))).transpose()
}

fn required<'h>(headers: &'h HeaderMap, name: &'static str) -> Result<&'h str, Malformed> {
    single(headers, name)?.ok_or(Malformed::Missing(name))
}

fn refuse_present(headers: &HeaderMap, names: &[&'static str]) -> Result<(), Malformed> {
    for name in names {
        if single(headers, name).map_or(true, |v| v.is_some()) {
            return Err(Malformed::OtherDialect(name));
        }
    }
    Ok(())
}

fn method(text: &str, name: &'static str) -> Result<Method, Malformed> {
    Method::from_bytes(text.trim().as_bytes()).map_err(|_| Malformed::BadMethod(name))
}

fn host(text: &str, name: &'static str) -> Result<String, Malformed> {
    let text = text.trim();
    request_host(text).ok_or(Malformed::BadHost(name))?;
    Ok(text.to_owned())
}

/// An origin-form target: `/path?query`, no fragment, at most [`MAX_TARGET`] bytes.
fn target(text: &str, name: &'static str) -> Result<String, Malformed> {
    if text.len() > MAX_TARGET {
        return Err(Malformed::TooLong(name));
    }
    if !text.starts_with('/') {
        return Err(if text.contains("://") || text.starts_with("//") {
            Malformed::AbsoluteForm(name)
        } else {
            Malformed::BadTarget(name)
        });
    }
    if text.starts_with("//") {
        // Read by some as `//host/path`: a network-path reference, not a path.
        return Err(Malformed::AbsoluteForm(name));
    }
    if text.contains('#') {
        return Err(Malformed::BadTarget(name));
    }
    let pq: http::uri::PathAndQuery = text.parse().map_err(|_| Malformed::BadTarget(name))?;
    Ok(pq.as_str().to_owned())
}

/// Reads a forward-auth request (Traefik, Caddy, HAProxy).
pub fn read_forward_auth(headers: &HeaderMap) -> Result<Original, Malformed> {
    refuse_present(headers, &ORIGINAL)?;
    let [m, p, h, u] = FORWARDED;
    let https = match single(headers, p)?.map(|s| s.trim().to_ascii_lowercase()) {
        None => None,
        Some(s) if s == "https" => Some(true),
        Some(s) if s == "http" => Some(false),
        Some(_) => return Err(Malformed::BadScheme(p)),
    };
    Ok(Original {
        method: method(required(headers, m)?, m)?,
        https,
        host: host(required(headers, h)?, h)?,
        target: target(required(headers, u)?, u)?,
    })
}

/// Reads an auth-request subrequest (nginx, ingress-nginx).
pub fn read_auth_request(headers: &HeaderMap) -> Result<Original, Malformed> {
    refuse_present(headers, &FORWARDED_URL)?;
    let [u, m] = ORIGINAL;
    let text = required(headers, u)?;
    if text.len() > MAX_TARGET + 300 {
        return Err(Malformed::TooLong(u));
    }
    let (scheme, rest) = text.split_once("://").ok_or(Malformed::BadUrl(u))?;
    let https = match scheme.to_ascii_lowercase().as_str() {
        "https" => true,
        "http" => false,
        _ => return Err(Malformed::BadUrl(u)),
    };
    let split = rest.find(['/', '?', '#']).unwrap_or(rest.len());
    let (authority, path) = rest.split_at(split);
    if authority.contains('@') {
        return Err(Malformed::BadUrl(u));
    }
    let path = match path {
        "" => "/".to_owned(),
        p if p.starts_with('?') => format!("/{p}"),
        p => p.to_owned(),
    };
    let method = match single(headers, m)? {
        Some(text) => method(text, m)?,
        None => Method::GET,
    };
    Ok(Original { method, https: Some(https), host: host(authority, u)?, target: target(&path, u)? })
}

/// Reads an Envoy check: the original path after the endpoint's path, the method and the
/// `Host` of the check request itself.
pub fn read_ext_authz(method: &Method, rest: &str, headers: &HeaderMap) -> Result<Original, Malformed> {
    refuse_present(headers, &ORIGINAL)?;
    refuse_present(headers, &FORWARDED_URL)?;
    refuse_present(headers, &["x-forwarded-host"])?;
    let rest = if rest.is_empty() || rest.starts_with('?') { format!("/{rest}") } else { rest.to_owned() };
    let https = match single(headers, "x-forwarded-proto")?.map(|s| s.trim().to_ascii_lowercase()) {
        Some(s) if s == "https" => Some(true),
        Some(s) if s == "http" => Some(false),
        Some(_) => return Err(Malformed::BadScheme("x-forwarded-proto")),
        None => None,
    };
    Ok(Original {
        method: method.clone(),
        https,
        host: host(required(headers, "host")?, "host")?,
        target: target(&rest, "path")?,
    })
}

/// The override headers a trusted proxy's question keeps: the auth-request dialect's, read
/// by its endpoint, and seen (and refused) by the others.
pub fn override_headers() -> [HeaderName; 2] {
    ORIGINAL.map(HeaderName::from_static)
}

/// The endpoints, under [`AUTHZ`]. Questions that reach the ordinary stack come here (one
/// carrying an `Upgrade`, say); the others take [`crate::stack::question`], which calls
/// the same [`ask`].
pub fn routes() -> Router<AppState> {
    Router::new()
        .route("/authz/forward-auth", any(forward_auth))
        .route("/authz/auth-request", any(auth_request))
        .route("/authz/ext-authz", any(ext_authz))
        .route("/authz/ext-authz/", any(ext_authz))
        .route("/authz/ext-authz/{*rest}", any(ext_authz))
}

/// The endpoint a request's whole path (with the reserved prefix) names, if it names one.
pub fn dialect_of(path: &str) -> Option<Dialect> {
    match path.strip_prefix(PREFIX)?.strip_prefix(AUTHZ)? {
        "/forward-auth" => Some(Dialect::ForwardAuth),
        "/auth-request" => Some(Dialect::AuthRequest),
        rest if rest == "/ext-authz" || rest.starts_with("/ext-authz/") => Some(Dialect::ExtAuthz),
        _ => None,
    }
}

async fn forward_auth(
    State(state): State<AppState>,
    ConnectInfo(peer): ConnectInfo<SocketAddr>,
    visitor: Visitor,
    req: Request,
) -> Response {
    ask(&state, peer, visitor, (req.method(), req.uri(), req.headers()), Dialect::ForwardAuth).await
}

async fn auth_request(
    State(state): State<AppState>,
    ConnectInfo(peer): ConnectInfo<SocketAddr>,
    visitor: Visitor,
    req: Request,
) -> Response {
    ask(&state, peer, visitor, (req.method(), req.uri(), req.headers()), Dialect::AuthRequest).await
}

async fn ext_authz(
    State(state): State<AppState>,
    ConnectInfo(peer): ConnectInfo<SocketAddr>,
    visitor: Visitor,
    req: Request,
) -> Response {
    ask(&state, peer, visitor, (req.method(), req.uri(), req.headers()), Dialect::ExtAuthz).await
}

/// Answers `req`, a question of `dialect` from `peer` about a request by `visitor`. Every
/// answer says `no-store`.
pub async fn ask(
    state: &AppState,
    peer: SocketAddr,
    visitor: Visitor,
    (method, uri, headers): (&Method, &http::Uri, &HeaderMap),
    dialect: Dialect,
) -> Response {
    let read = match dialect {
        Dialect::ForwardAuth => read_forward_auth(headers),
        Dialect::AuthRequest => read_auth_request(headers),
        Dialect::ExtAuthz => {
            // Nested under the reserved prefix, the router sees the path without it.
            let full = uri.path_and_query().map_or("/", |pq| pq.as_str());
            let full = full.strip_prefix(PREFIX).unwrap_or(full);
            match full.strip_prefix(AUTHZ).and_then(|r| r.strip_prefix("/ext-authz")) {
                Some(rest) if rest.is_empty() || rest.starts_with(['/', '?']) => {
                    read_ext_authz(method, rest, headers)
                }
                _ => Err(Malformed::BadTarget("path")),
            }
        }
    };
    let mut resp = answer(state, peer, visitor, headers, dialect, read).await;
    resp.headers_mut().insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    resp
}

fn text(status: StatusCode, body: String) -> Response {
    let mut resp = (status, body).into_response();
    resp.headers_mut().insert(header::CONTENT_TYPE, HeaderValue::from_static("text/plain; charset=utf-8"));
    resp
}

async fn answer(
    state: &AppState,
    peer: SocketAddr,
    visitor: Visitor,
    headers: &HeaderMap,
    dialect: Dialect,
    read: Result<Original, Malformed>,
) -> Response {
    if !forwarded::trusted(peer.ip(), &state.config.server.trusted_proxies) {
        tracing::warn!(client = %peer.ip(), endpoint = dialect.name(), "Refused a forward-auth question from a peer that is not a trusted proxy");
        return text(StatusCode::FORBIDDEN, "Only a trusted proxy may ask here.\n".into());
    }
    let original = match read {
        Ok(o) => o,
        Err(e) => {
            tracing::info!(endpoint = dialect.name(), reason = %e, "Refused a malformed forward-auth question");
            return text(e.status(), format!("{e}\n"));
        }
    };
    let path_only = original.target.split('?').next().unwrap_or("/");
    let path = match normalize(path_only) {
        Ok(p) => p,
        Err(e) => {
            tracing::info!(endpoint = dialect.name(), reason = %e, "Refused a malformed original path");
            return text(StatusCode::BAD_REQUEST, "The original path is malformed.\n".into());
        }
    };
    // The client's own bearer token, copied by the proxy, was read by the session lookup
    // as on a proxied request.
    let visitor = &visitor;
    let who = match visitor.session() {
        None => Who::Guest(&state.guest),
        Some(session) => Who::SignedIn(&session.resolved),
    };
    let everyone = state.config.model.everyone_enabled;
    let verdict =
        verdict_for_host(&state.config.policy, everyone, who, Some(&original.host), &original.method, &path);
    // As in the gateway: a guest on a public rule is nobody, not Everyone.
    let anonymous =
        matches!(visitor, Visitor::Guest) && (!everyone || verdict.rule.is_some_and(|r| r.is_public()));
    // A second factor, as in the gateway: a rule's step-up, or a usergroup's enrolment.
    let second = match visitor {
        Visitor::SignedIn { session, .. } if crate::mfa::must_use_factor(state, session) => {
            Some("account/security")
        }
        Visitor::SignedIn { session, .. } if verdict.mfa && !crate::mfa::satisfied(&session.amr) => {
            Some("mfa")
        }
        Visitor::Guest if verdict.mfa => Some("login"),
        // A bearer token cannot give a second factor: refused below.
        Visitor::Bearer { session }
            if crate::mfa::must_use_factor(state, session)
                || verdict.mfa && !crate::mfa::satisfied(&session.amr) =>
        {
            Some("")
        }
        _ => None,
    };
    match (verdict.decision, second) {
        (Decision::Allow, Some("")) => {
            state.metrics.decision("second-factor", "");
            crate::mfa::refused("mfa-required")
        }
        (Decision::Allow, Some(page)) => {
            state.metrics.decision("second-factor", "");
            login_required(state, dialect, headers, &original, page)
        }
        (Decision::Allow, None) => {
            state.metrics.decision("allow", "");
            let mut resp = StatusCode::OK.into_response();
            identity(state, visitor, anonymous, &original.host, resp.headers_mut());
            resp
        }
        (Decision::LoginRequired, _) => {
            state.metrics.decision("login", "");
            login_required(state, dialect, headers, &original, "login")
        }
        (Decision::Deny(reason), _) => {
            state.metrics.decision("deny", reason.code());
            let account = visitor.session().map_or("-", |s| s.account_id.as_str());
            tracing::info!(%account, host = %original.host, %path, reason = reason.code(), endpoint = dialect.name(), "Refused");
            let body = serde_json::json!({"error": "forbidden", "reason": reason.code()}).to_string();
            let mut resp = (StatusCode::FORBIDDEN, body).into_response();
            resp.headers_mut().insert(header::CONTENT_TYPE, HeaderValue::from_static("application/json"));
            resp
        }
    }
}

/// Every identity header, set even when empty, and the JWT (empty for a guest).
fn identity(state: &AppState, visitor: &Visitor, anonymous: bool, host: &str, out: &mut HeaderMap) {
    let n = &state.names;
    out.reserve(12);
    match visitor {
        Visitor::Guest => {
            for name in n.all() {
                out.insert(name.clone(), HeaderValue::from_static(""));
            }
            if !anonymous {
                state.guest_headers.apply(out);
            }
        }
        Visitor::SignedIn { session, .. } | Visitor::Bearer { session } => {
            // Sets every header but the address when there is none.
            let audience = state.config.jwt.audience_for(Some(host));
            state.told.apply(n, &state.signer, session, visitor.auth(), audience, state.clock.now(), out);
            if !out.contains_key(&n.email) {
                out.insert(n.email.clone(), HeaderValue::from_static(""));
            }
        }
    }
}

/// Sends the person to deskgate's `page` (sign-in, or the second factor's pages) and back
/// to the original URL, as each proxy can: 401 with `Location` for nginx, else 302 for
/// browsers and 401 for API clients.
fn login_required(
    state: &AppState,
    dialect: Dialect,
    headers: &HeaderMap,
    original: &Original,
    page: &str,
) -> Response {
    let unauthorized = || {
        let mut resp = (StatusCode::UNAUTHORIZED, r#"{"error":"sign-in required"}"#).into_response();
        let h = resp.headers_mut();
        h.insert(header::CONTENT_TYPE, HeaderValue::from_static("application/json"));
        h.insert(header::WWW_AUTHENTICATE, HeaderValue::from_static(r#"Cookie realm="deskgate""#));
        resp
    };
    let next = original.url(state.config.server.secure);
    let to = format!("{}{PREFIX}/{page}?next={}", state.config.server.public_url, query_value(&next));
    let location = HeaderValue::from_str(&to).ok();
    // nginx takes any other status than 2xx, 401 and 403 as an error: the 401 carries the
    // sign-in URL, with the original URL encoded in it, as its Location, and nginx's
    // `error_page 401 =302 $…` sends the person there (nginx cannot encode it itself).
    if dialect == Dialect::AuthRequest {
        let mut resp = unauthorized();
        if let Some(location) = location {
            resp.headers_mut().insert(header::LOCATION, location);
        }
        return resp;
    }
    match location {
        Some(location) if wants_html(headers) => {
            (StatusCode::FOUND, [(header::LOCATION, location)]).into_response()
        }
        _ => unauthorized(),
    }
}

#[cfg(test)]
mod tests;
