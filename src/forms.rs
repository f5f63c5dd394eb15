//! What every form page shares: the CSRF cookie and token, the `next` target, and the
//! client's address.

use std::net::{IpAddr, SocketAddr};

use axum::response::Response;
use http::{HeaderMap, HeaderValue, header};

use crate::html::esc;
use crate::redirect::safe_target;
use crate::state::AppState;
use crate::web::{self, CookieAttrs, PREFIX};

/// The CSRF binding of a browser, and the cookie to set when it had none.
pub struct Binding {
    value: String,
    set_cookie: Option<HeaderValue>,
}

fn csrf_cookie_name(state: &AppState) -> String {
    format!("{}_csrf", state.config.session.cookie_name)
}

/// The browser's CSRF binding, made when missing.
pub fn binding(state: &AppState, headers: &HeaderMap) -> Binding {
    match web::cookie(headers, &csrf_cookie_name(state)).filter(|v| v.len() >= 16) {
        Some(v) => Binding { value: v.to_owned(), set_cookie: None },
        None => {
            let value = crate::session::new_cookie_value();
            let attrs = CookieAttrs {
                path: PREFIX,
                secure: state.config.server.secure,
                max_age: 86_400,
                domain: None,
            };
            let set_cookie = Some(web::set_cookie(&csrf_cookie_name(state), &value, attrs));
            Binding { value, set_cookie }
        }
    }
}

impl Binding {
    /// The hidden form field carrying the token.
    pub fn field(&self, state: &AppState) -> String {
        format!("<input type=\"hidden\" name=\"csrf\" value=\"{}\">", self.token(state))
    }

    /// The token itself, for clients that send it in a header.
    pub fn token(&self, state: &AppState) -> String {
        state.csrf.token(&self.value)
    }

    /// Adds the cookie to a response when the browser had none.
    pub fn attach(self, mut resp: Response) -> Response {
        if let Some(c) = self.set_cookie {
            resp.headers_mut().append(header::SET_COOKIE, c);
        }
        resp
    }
}

/// Whether a posted form's token matches the browser's binding.
pub fn csrf_ok(state: &AppState, headers: &HeaderMap, token: &str) -> bool {
    web::cookie(headers, &csrf_cookie_name(state)).is_some_and(|b| state.csrf.verify(b, token))
}

/// `next` when it is a safe local path or an https URL under `session.redirect_domains`,
/// else `/`; refusals are logged.
pub fn next_or_root(state: &AppState, next: Option<&str>) -> String {
    match next.filter(|n| !n.is_empty()) {
        None => "/".into(),
        Some(n) => match safe_target(n, &state.config.session.redirect_domains) {
            Some(ok) => ok.to_owned(),
            None => {
                tracing::warn!(next = %n.escape_debug(), "Refused a redirect target that is not a local path");
                "/".into()
            }
        },
    }
}

/// The hidden `next` field.
pub fn next_field(next: &str) -> String {
    format!("<input type=\"hidden\" name=\"next\" value=\"{}\">", esc(next))
}

/// The client's address (behind trusted proxies, the forwarded one).
pub fn client_ip(state: &AppState, peer: SocketAddr, headers: &HeaderMap) -> IpAddr {
    crate::forwarded::client_addr(peer.ip(), headers, &state.config.server.trusted_proxies)
}

impl axum::extract::FromRequestParts<AppState> for crate::signin::Client {
    type Rejection = std::convert::Infallible;

    async fn from_request_parts(
        parts: &mut http::request::Parts,
        state: &AppState,
    ) -> Result<Self, Self::Rejection> {
        let peer = parts.extensions.get::<axum::extract::ConnectInfo<SocketAddr>>().map(|c| c.0);
        let addr = peer.map(|p| client_ip(state, p, &parts.headers));
        let user_agent = parts.headers.get(header::USER_AGENT).and_then(|v| v.to_str().ok());
        Ok(crate::signin::Client::new(addr, user_agent))
    }
}

/// The session cookie for a value, or its deletion when `value` is `None`.
pub fn session_cookie(state: &AppState, value: Option<&str>) -> HeaderValue {
    let s = &state.config.session;
    let attrs = CookieAttrs {
        path: "/",
        secure: state.config.server.secure,
        max_age: value.map_or(0, |_| s.absolute_timeout.as_secs()),
        domain: s.cookie_domain.as_deref(),
    };
    web::set_cookie(&s.cookie_name, value.unwrap_or(""), attrs)
}

/// A posted form's fields in order; a repeated name (a group of checkboxes) stays repeated,
/// which `axum::Form` cannot express.
pub struct Fields(Vec<(String, String)>);

impl Fields {
    /// Reads an `application/x-www-form-urlencoded` body.
    pub fn parse(body: &[u8]) -> Fields {
        let text = String::from_utf8_lossy(body);
        let decode = |s: &str| {
            let s = s.replace('+', " ");
            crate::policy::path::percent_decode(&s).unwrap_or(s)
        };
        Fields(
            text.split('&')
                .filter(|p| !p.is_empty())
                .map(|pair| {
                    let (k, v) = pair.split_once('=').unwrap_or((pair, ""));
                    (decode(k), decode(v))
                })
                .collect(),
        )
    }

    /// The first value of `name`, or "".
    pub fn one(&self, name: &str) -> &str {
        self.0.iter().find(|(k, _)| k == name).map_or("", |(_, v)| v.as_str())
    }

    /// Every value of `name`.
    pub fn all(&self, name: &str) -> Vec<String> {
        self.0.iter().filter(|(k, _)| k == name).map(|(_, v)| v.clone()).collect()
    }
}
