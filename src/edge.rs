//! What is settled about a request before anything else looks at it: methods and targets
//! deskgate never forwards, upgrades other than WebSocket, and client headers a backend
//! framework might trust for routing.
//!
//! The rules: `CONNECT` is refused (405); a `*` target is answered here for `OPTIONS` and
//! refused otherwise (it is never forwarded as `/*`). `Upgrade` is kept only for a WebSocket
//! handshake (GET over HTTP/1.1, `Connection: upgrade`, a 16-byte `Sec-WebSocket-Key`,
//! version 13, no body), which is refused with 400 when malformed; any other `Upgrade`
//! (`h2c`, ...) is removed, and the request goes on as an ordinary one. Client headers whose
//! name holds `_` are dropped unless `server.allow_underscores_in_headers`; override headers
//! (`X-Original-URL`, `X-HTTP-Method-Override`, ...) are dropped unless named in
//! `server.allowed_override_headers`.

use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use http::header::{self, HeaderMap, HeaderName, HeaderValue};
use http::{Method, Request, StatusCode, Version};

/// Headers some backend frameworks take as the "real" URL or method of a request. Matched
/// in lower case with `_` read as `-`.
const OVERRIDE_HEADERS: [&str; 8] = [
    "x-original-url",
    "x-original-uri",
    "x-rewrite-url",
    "x-original-method",
    "x-http-method-override",
    "x-http-method",
    "x-method-override",
    "x-override-url",
];

/// Whether `name`, in any spelling, is an override header.
pub fn is_override_header(name: &HeaderName) -> bool {
    let n = name.as_str().as_bytes();
    OVERRIDE_HEADERS.iter().any(|o| {
        n.len() == o.len() && n.iter().zip(o.as_bytes()).all(|(a, b)| a == b || (*a == b'_' && *b == b'-'))
    })
}

/// Removes the client headers a backend must not be handed: names with `_` (unless
/// allowed) and override headers not in `allowed`. Returns how many were removed.
pub fn strip_untrusted(headers: &mut HeaderMap, allow_underscores: bool, allowed: &[HeaderName]) -> usize {
    let doomed: Vec<HeaderName> = headers
        .keys()
        .filter(|name| {
            (!allow_underscores && name.as_str().contains('_'))
                || (is_override_header(name) && !allowed.contains(name))
        })
        .cloned()
        .collect();
    let mut removed = 0;
    for name in doomed {
        removed += headers.get_all(&name).iter().count();
        headers.remove(&name);
    }
    removed
}

/// Why a request is answered at the edge.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Refusal {
    /// `CONNECT`: deskgate is no tunnel.
    Connect,
    /// `OPTIONS *`: answered by deskgate itself.
    OptionsStar,
    /// A `*` target with another method.
    StarTarget,
    /// A WebSocket handshake that is not one.
    BadWebSocket(&'static str),
}

impl Refusal {
    /// The status it is answered with.
    pub fn status(&self) -> StatusCode {
        match self {
            Refusal::Connect => StatusCode::METHOD_NOT_ALLOWED,
            Refusal::OptionsStar => StatusCode::OK,
            Refusal::StarTarget | Refusal::BadWebSocket(_) => StatusCode::BAD_REQUEST,
        }
    }
}

/// The methods deskgate forwards, for `Allow`.
pub const ALLOW: &str = "GET, HEAD, POST, PUT, PATCH, DELETE, OPTIONS";

/// Settles the method, target and upgrade of `req`: an `Err` is answered at once; `Ok`
/// means the request goes on, with any non-WebSocket upgrade removed.
pub fn check<B>(req: &mut Request<B>) -> Result<(), Refusal> {
    if req.method() == Method::CONNECT {
        return Err(Refusal::Connect);
    }
    if req.uri() == "*" {
        return Err(if req.method() == Method::OPTIONS { Refusal::OptionsStar } else { Refusal::StarTarget });
    }
    let headers = req.headers();
    if !headers.contains_key(header::UPGRADE) && !headers.contains_key("http2-settings") {
        return Ok(());
    }
    if asks_for_websocket(headers) {
        return websocket_handshake(req.method(), req.version(), headers).map_err(Refusal::BadWebSocket);
    }
    remove_upgrade(req.headers_mut());
    Ok(())
}

/// Whether the request's one `Upgrade` header names WebSocket alone.
fn asks_for_websocket(headers: &HeaderMap) -> bool {
    let mut upgrades = headers.get_all(header::UPGRADE).iter();
    match (upgrades.next(), upgrades.next()) {
        (Some(v), None) => v.to_str().is_ok_and(|v| v.trim().eq_ignore_ascii_case("websocket")),
        _ => false,
    }
}

/// The checks RFC 6455 section 4.2.1 makes of an opening handshake.
fn websocket_handshake(method: &Method, version: Version, headers: &HeaderMap) -> Result<(), &'static str> {
    if method != Method::GET || version != Version::HTTP_11 {
        return Err("a WebSocket handshake is a GET over HTTP/1.1");
    }
    if !connection_has_token(headers, "upgrade") {
        return Err("a WebSocket handshake says `Connection: upgrade`");
    }
    let mut keys = headers.get_all(header::SEC_WEBSOCKET_KEY).iter();
    let key_ok = match (keys.next(), keys.next()) {
        (Some(k), None) => STANDARD.decode(k.as_bytes()).is_ok_and(|k| k.len() == 16),
        _ => false,
    };
    if !key_ok {
        return Err("a WebSocket handshake carries one 16-byte Sec-WebSocket-Key");
    }
    let mut versions = headers.get_all(header::SEC_WEBSOCKET_VERSION).iter();
    if !matches!((versions.next(), versions.next()), (Some(v), None) if v.as_bytes() == b"13") {
        return Err("a WebSocket handshake is version 13");
    }
    let has_body = headers.contains_key(header::TRANSFER_ENCODING)
        || headers.get_all(header::CONTENT_LENGTH).iter().any(|v| v.as_bytes() != b"0");
    if has_body {
        return Err("a WebSocket handshake has no body");
    }
    Ok(())
}

/// Removes `Upgrade`, `HTTP2-Settings` and their `Connection` tokens.
fn remove_upgrade(headers: &mut HeaderMap) {
    headers.remove(header::UPGRADE);
    headers.remove("http2-settings");
    let kept: Vec<String> = connection_tokens(headers)
        .filter(|t| !t.eq_ignore_ascii_case("upgrade") && !t.eq_ignore_ascii_case("http2-settings"))
        .map(str::to_owned)
        .collect();
    headers.remove(header::CONNECTION);
    if !kept.is_empty()
        && let Ok(v) = HeaderValue::from_str(&kept.join(", "))
    {
        headers.insert(header::CONNECTION, v);
    }
}

/// Whether any `Connection` header lists `token`.
pub(crate) fn connection_has_token(headers: &HeaderMap, token: &str) -> bool {
    connection_tokens(headers).any(|t| t.eq_ignore_ascii_case(token))
}

/// The comma-separated tokens of every `Connection` header.
pub(crate) fn connection_tokens(headers: &HeaderMap) -> impl Iterator<Item = &str> {
    headers
        .get_all(header::CONNECTION)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','))
        .map(str::trim)
        .filter(|t| !t.is_empty())
}

/// The `Sec-WebSocket-Accept` an upstream must answer a handshake's key with.
pub fn websocket_accept(key: &[u8]) -> String {
    use sha1::{Digest, Sha1};
    let mut sha = Sha1::new();
    sha.update(key);
    sha.update(b"258EAFA5-E914-47DA-95CA-C5AB0DC85B11");
    STANDARD.encode(sha.finalize())
}

#[cfg(test)]
mod tests;
