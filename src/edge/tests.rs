use super::*;

fn request(method: &str, target: &str, headers: &[(&str, &str)]) -> Request<()> {
    let mut b = Request::builder().method(method).uri(target);
    for (k, v) in headers {
        b = b.header(*k, *v);
    }
    b.body(()).expect("request")
}

const KEY: &str = "dGhlIHNhbXBsZSBub25jZQ==";

fn websocket(extra: &[(&str, &str)]) -> Request<()> {
    let mut h = vec![
        ("upgrade", "websocket"),
        ("connection", "Upgrade"),
        ("sec-websocket-key", KEY),
        ("sec-websocket-version", "13"),
    ];
    h.extend_from_slice(extra);
    request("GET", "/chat", &h)
}

#[test]
fn h2c_upgrade_is_removed_so_no_tunnel_can_be_asked_for() {
    let mut req = request(
        "GET",
        "/kb",
        &[
            ("upgrade", "h2c"),
            ("http2-settings", "AAMAAABkAAQAAP__"),
            ("connection", "Upgrade, HTTP2-Settings"),
        ],
    );
    assert_eq!(check(&mut req), Ok(()));
    assert!(req.headers().get("upgrade").is_none());
    assert!(req.headers().get("http2-settings").is_none());
    assert!(req.headers().get("connection").is_none());
}

#[test]
fn other_protocols_and_mixed_lists_are_not_websocket() {
    for upgrade in ["h2c", "TLS/1.2", "websocket, h2c", "h2c, websocket", "websocketx", ""] {
        let mut req = websocket(&[]);
        req.headers_mut().insert("upgrade", HeaderValue::from_str(upgrade).expect("value"));
        assert_eq!(check(&mut req), Ok(()), "{upgrade}");
        assert!(req.headers().get("upgrade").is_none(), "{upgrade} is removed");
    }
    let mut twice = websocket(&[]);
    twice.headers_mut().append("upgrade", HeaderValue::from_static("websocket"));
    assert_eq!(check(&mut twice), Ok(()));
    assert!(twice.headers().get("upgrade").is_none(), "two Upgrade headers are not a handshake");
}

#[test]
fn a_proper_websocket_handshake_is_kept_whatever_the_case() {
    let mut req = websocket(&[]);
    req.headers_mut().insert("upgrade", HeaderValue::from_static("WebSocket"));
    assert_eq!(check(&mut req), Ok(()));
    assert_eq!(req.headers()["upgrade"], "WebSocket");
}

#[test]
fn malformed_websocket_handshakes_are_refused() {
    let cases: Vec<Request<()>> = vec![
        request(
            "POST",
            "/chat",
            &[
                ("upgrade", "websocket"),
                ("connection", "upgrade"),
                ("sec-websocket-key", KEY),
                ("sec-websocket-version", "13"),
            ],
        ),
        request(
            "GET",
            "/chat",
            &[
                ("upgrade", "websocket"),
                ("connection", "keep-alive"),
                ("sec-websocket-key", KEY),
                ("sec-websocket-version", "13"),
            ],
        ),
        request(
            "GET",
            "/chat",
            &[("upgrade", "websocket"), ("connection", "upgrade"), ("sec-websocket-version", "13")],
        ),
        request(
            "GET",
            "/chat",
            &[
                ("upgrade", "websocket"),
                ("connection", "upgrade"),
                ("sec-websocket-key", "c2hvcnQ="),
                ("sec-websocket-version", "13"),
            ],
        ),
        request(
            "GET",
            "/chat",
            &[
                ("upgrade", "websocket"),
                ("connection", "upgrade"),
                ("sec-websocket-key", KEY),
                ("sec-websocket-version", "8"),
            ],
        ),
        websocket(&[("content-length", "40")]),
        websocket(&[("transfer-encoding", "chunked")]),
        websocket(&[("sec-websocket-key", KEY)]),
    ];
    for mut req in cases {
        assert!(matches!(check(&mut req), Err(Refusal::BadWebSocket(_))), "{req:?}");
    }
}

#[test]
fn connect_is_refused_and_star_is_answered_here() {
    let mut connect = request("CONNECT", "backend.internal:443", &[]);
    assert_eq!(check(&mut connect), Err(Refusal::Connect));
    assert_eq!(Refusal::Connect.status(), StatusCode::METHOD_NOT_ALLOWED);
    let mut options = request("OPTIONS", "*", &[]);
    assert_eq!(check(&mut options), Err(Refusal::OptionsStar));
    let mut get = request("GET", "*", &[]);
    assert_eq!(check(&mut get), Err(Refusal::StarTarget));
    let mut plain = request("OPTIONS", "/kb", &[]);
    assert_eq!(check(&mut plain), Ok(()));
}

#[test]
fn override_headers_are_stripped_in_every_spelling_unless_allowed() {
    let mut h = HeaderMap::new();
    for name in [
        "X-Original-URL",
        "x-rewrite-url",
        "X-HTTP-Method-Override",
        "X-Original-Method",
        "X-Method-Override",
        "X-HTTP-Method",
    ] {
        h.append(HeaderName::from_bytes(name.as_bytes()).expect("name"), HeaderValue::from_static("/admin"));
    }
    h.append("x-original-url", HeaderValue::from_static("/second"));
    h.insert("accept", HeaderValue::from_static("*/*"));
    assert_eq!(strip_untrusted(&mut h, false, &[]), 7);
    assert_eq!(h.len(), 1);

    let mut h = HeaderMap::new();
    h.insert("x_original_url", HeaderValue::from_static("/admin"));
    h.insert("x-http-method-override", HeaderValue::from_static("DELETE"));
    let allowed = [HeaderName::from_static("x-http-method-override")];
    assert_eq!(
        strip_untrusted(&mut h, true, &allowed),
        1,
        "with underscores allowed, `_` still spells an override"
    );
    assert!(h.contains_key("x-http-method-override"));
}

#[test]
fn underscore_headers_are_dropped_by_default() {
    let mut h = HeaderMap::new();
    h.insert("x_custom_role", HeaderValue::from_static("admin"));
    h.insert("x-custom", HeaderValue::from_static("kept"));
    assert_eq!(strip_untrusted(&mut h, false, &[]), 1);
    assert!(h.contains_key("x-custom"));
    let mut h = HeaderMap::new();
    h.insert("x_custom_role", HeaderValue::from_static("admin"));
    assert_eq!(strip_untrusted(&mut h, true, &[]), 0);
}

#[test]
fn websocket_accept_is_the_rfc_example() {
    assert_eq!(websocket_accept(KEY.as_bytes()), "s3pPLMBiTxaQ9kYGzzhZRbK+xOo=");
}
