//! Small HTTP helpers shared by deskgate's own pages: their reserved paths, cookies, CSRF
//! tokens, form bodies, and telling browsers from API clients.

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use hmac::{Hmac, Mac};
use http::{HeaderMap, HeaderValue, header};
use sha2::Sha256;

/// The reserved prefix of deskgate's own pages; never proxied.
pub const PREFIX: &str = "/.deskgate";

/// The forward-auth endpoints' common path under [`PREFIX`].
pub const AUTHZ: &str = "/authz";

/// The value of cookie `name` in the request, if present.
pub fn cookie<'a>(headers: &'a HeaderMap, name: &str) -> Option<&'a str> {
    headers
        .get_all(header::COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .filter_map(|pair| pair.trim().split_once('='))
        .find(|(k, _)| *k == name)
        .map(|(_, v)| v.trim_matches('"'))
}

/// Removes cookie `name` from the request's Cookie headers, so the upstream never sees it.
pub fn remove_cookie(headers: &mut HeaderMap, name: &str) {
    let values: Vec<String> = headers
        .get_all(header::COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .map(|v| {
            v.split(';')
                .map(str::trim)
                .filter(|pair| pair.split_once('=').is_none_or(|(k, _)| k != name) && !pair.is_empty())
                .collect::<Vec<_>>()
                .join("; ")
        })
        .filter(|v| !v.is_empty())
        .collect();
    headers.remove(header::COOKIE);
    for v in values {
        if let Ok(v) = HeaderValue::from_str(&v) {
            headers.append(header::COOKIE, v);
        }
    }
}

/// How a cookie is set.
#[derive(Debug, Clone, Copy)]
pub struct CookieAttrs<'a> {
    /// `Path`.
    pub path: &'a str,
    /// `Secure`.
    pub secure: bool,
    /// `Max-Age` in seconds; 0 deletes.
    pub max_age: u64,
    /// `Domain`: sent to every host under it; `None`: to this host only.
    pub domain: Option<&'a str>,
}

/// A `Set-Cookie` value: always HttpOnly and SameSite=Lax.
pub fn set_cookie(name: &str, value: &str, attrs: CookieAttrs<'_>) -> HeaderValue {
    let secure = if attrs.secure { "; Secure" } else { "" };
    let domain = attrs.domain.map(|d| format!("; Domain={d}")).unwrap_or_default();
    let text = format!(
        "{name}={value}; Path={}{domain}; Max-Age={}; HttpOnly; SameSite=Lax{secure}",
        attrs.path, attrs.max_age
    );
    HeaderValue::from_str(&text).unwrap_or_else(|_| HeaderValue::from_static("invalid=; Max-Age=0"))
}

/// A JSON answer that no cache keeps.
pub fn json(status: http::StatusCode, body: &serde_json::Value) -> axum::response::Response {
    use axum::response::IntoResponse;
    let mut resp = (status, body.to_string()).into_response();
    let h = resp.headers_mut();
    h.insert(header::CONTENT_TYPE, HeaderValue::from_static("application/json"));
    h.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    resp
}

/// Whether the client is a browser that wants a page (rather than an API client).
pub fn wants_html(headers: &HeaderMap) -> bool {
    headers.get(header::ACCEPT).and_then(|v| v.to_str().ok()).is_some_and(|a| a.contains("text/html"))
}

/// CSRF tokens: an HMAC of a random per-browser cookie value, so a cross-site form can
/// neither read nor forge one.
#[derive(Clone)]
pub struct Csrf {
    key: Vec<u8>,
}

impl std::fmt::Debug for Csrf {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Csrf(..)")
    }
}

impl Csrf {
    /// Tokens keyed by `key`.
    pub fn new(key: Vec<u8>) -> Csrf {
        Csrf { key }
    }

    fn mac(&self, binding: &str) -> Hmac<Sha256> {
        let mut mac = <Hmac<Sha256> as Mac>::new_from_slice(&self.key).unwrap_or_else(|_| {
            // HMAC accepts keys of any length; this branch cannot be taken.
            <Hmac<Sha256> as Mac>::new_from_slice(b"deskgate").expect("fixed key")
        });
        mac.update(b"deskgate-csrf:");
        mac.update(binding.as_bytes());
        mac
    }

    /// The token for a binding value.
    pub fn token(&self, binding: &str) -> String {
        URL_SAFE_NO_PAD.encode(self.mac(binding).finalize().into_bytes())
    }

    /// Whether `token` belongs to `binding`, compared in constant time.
    pub fn verify(&self, binding: &str, token: &str) -> bool {
        match URL_SAFE_NO_PAD.decode(token) {
            Ok(bytes) => !binding.is_empty() && self.mac(binding).verify_slice(&bytes).is_ok(),
            Err(_) => false,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn csrf_tokens_verify_only_for_their_binding() {
        let csrf = Csrf::new(vec![7; 32]);
        let t = csrf.token("browser-a");
        assert!(csrf.verify("browser-a", &t));
        assert!(!csrf.verify("browser-b", &t));
        assert!(!csrf.verify("", &csrf.token("")));
        assert!(!csrf.verify("browser-a", "garbage!"));
        assert!(!Csrf::new(vec![8; 32]).verify("browser-a", &t));
    }

    #[test]
    fn our_cookie_is_removed_and_the_others_kept() {
        let mut h = HeaderMap::new();
        h.append(header::COOKIE, HeaderValue::from_static("a=1; deskgate_session=secret; b=2"));
        h.append(header::COOKIE, HeaderValue::from_static("deskgate_session=other"));
        assert_eq!(cookie(&h, "deskgate_session"), Some("secret"));
        remove_cookie(&mut h, "deskgate_session");
        let all: Vec<_> = h.get_all(header::COOKIE).iter().collect();
        assert_eq!(all, ["a=1; b=2"]);
    }
}
