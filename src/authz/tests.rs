use super::*;

fn headers(pairs: &[(&str, &str)]) -> HeaderMap {
    let mut h = HeaderMap::new();
    for (n, v) in pairs {
        h.append(
            HeaderName::from_bytes(n.as_bytes()).expect("name"),
            HeaderValue::from_str(v).expect("value"),
        );
    }
    h
}

const TRAEFIK: [(&str, &str); 5] = [
    ("x-forwarded-method", "GET"),
    ("x-forwarded-proto", "https"),
    ("x-forwarded-host", "help.test"),
    ("x-forwarded-uri", "/kb/a?x=1"),
    ("x-forwarded-for", "203.0.113.9"),
];

fn with(base: &[(&'static str, &'static str)], extra: &[(&'static str, &'static str)]) -> HeaderMap {
    let mut all = base.to_vec();
    all.extend_from_slice(extra);
    headers(&all)
}

#[test]
fn forward_auth_reads_the_original_request_from_its_own_headers() {
    let o = read_forward_auth(&headers(&TRAEFIK)).expect("read");
    assert_eq!(
        o,
        Original {
            method: Method::GET,
            https: Some(true),
            host: "help.test".into(),
            target: "/kb/a?x=1".into()
        }
    );
    assert_eq!(o.url(false), "https://help.test/kb/a?x=1");
}

#[test]
fn forward_auth_refuses_repeated_or_respelled_headers() {
    let twice = with(&TRAEFIK, &[("x-forwarded-uri", "/admin")]);
    assert_eq!(read_forward_auth(&twice), Err(Malformed::Repeated("x-forwarded-uri")));
    let respelled = with(&TRAEFIK, &[("x_forwarded_host", "admin.test")]);
    assert_eq!(read_forward_auth(&respelled), Err(Malformed::Repeated("x-forwarded-host")));
}

#[test]
fn forward_auth_refuses_the_auth_request_dialect_beside_its_own() {
    let mixed = with(&TRAEFIK, &[("x-original-url", "https://help.test/")]);
    assert_eq!(read_forward_auth(&mixed), Err(Malformed::OtherDialect("x-original-url")));
}

#[test]
fn forward_auth_refuses_absent_absolute_or_malformed_values() {
    let without =
        |name: &str| headers(&TRAEFIK.iter().copied().filter(|(n, _)| *n != name).collect::<Vec<_>>());
    assert_eq!(read_forward_auth(&without("x-forwarded-uri")), Err(Malformed::Missing("x-forwarded-uri")));
    assert_eq!(read_forward_auth(&without("x-forwarded-host")), Err(Malformed::Missing("x-forwarded-host")));
    assert_eq!(
        read_forward_auth(&without("x-forwarded-method")),
        Err(Malformed::Missing("x-forwarded-method"))
    );
    assert_eq!(read_forward_auth(&without("x-forwarded-proto")).expect("proto optional").https, None);
    let uri = |u: &'static str| {
        let mut h = without("x-forwarded-uri");
        h.insert("x-forwarded-uri", HeaderValue::from_static(u));
        read_forward_auth(&h)
    };
    assert_eq!(uri("https://admin.test/x"), Err(Malformed::AbsoluteForm("x-forwarded-uri")));
    assert_eq!(uri("//admin.test/x"), Err(Malformed::AbsoluteForm("x-forwarded-uri")));
    assert_eq!(uri("kb"), Err(Malformed::BadTarget("x-forwarded-uri")));
    assert_eq!(uri("*"), Err(Malformed::BadTarget("x-forwarded-uri")));
    assert_eq!(uri("/kb#x"), Err(Malformed::BadTarget("x-forwarded-uri")));
    assert_eq!(uri("/a b"), Err(Malformed::BadTarget("x-forwarded-uri")));
    let long = format!("/{}", "a".repeat(MAX_TARGET));
    let mut h = without("x-forwarded-uri");
    h.insert("x-forwarded-uri", HeaderValue::from_str(&long).expect("value"));
    let too_long = read_forward_auth(&h).expect_err("too long");
    assert_eq!(
        (too_long.status(), too_long),
        (StatusCode::URI_TOO_LONG, Malformed::TooLong("x-forwarded-uri"))
    );
    for (name, value) in [
        ("x-forwarded-host", "help.test, admin.test"),
        ("x-forwarded-host", "user@help.test"),
        ("x-forwarded-host", "help.test/x"),
        ("x-forwarded-proto", "ftp"),
        ("x-forwarded-method", "G(T"),
    ] {
        let mut h = without(name);
        h.insert(HeaderName::from_static(name), HeaderValue::from_static(value));
        assert!(read_forward_auth(&h).is_err(), "{name}: {value}");
    }
    let mut h = without("x-forwarded-uri");
    h.insert("x-forwarded-uri", HeaderValue::from_bytes(b"/caf\xc3\xa9").expect("value"));
    assert_eq!(read_forward_auth(&h), Err(Malformed::NotText("x-forwarded-uri")));
}

#[test]
fn auth_request_reads_the_original_url_and_method() {
    let h = headers(&[
        ("x-original-url", "HTTPS://Help.test:8443/kb/../chat?x=1"),
        ("x-original-method", "POST"),
    ]);
    let o = read_auth_request(&h).expect("read");
    assert_eq!(
        o,
        Original {
            method: Method::POST,
            https: Some(true),
            host: "Help.test:8443".into(),
            target: "/kb/../chat?x=1".into()
        }
    );
    let bare = read_auth_request(&headers(&[("x-original-url", "http://help.test")])).expect("read");
    assert_eq!((bare.method, bare.target, bare.https), (Method::GET, "/".to_owned(), Some(false)));
    let query = read_auth_request(&headers(&[("x-original-url", "http://help.test?a=1")])).expect("read");
    assert_eq!(query.target, "/?a=1");
}

#[test]
fn auth_request_refuses_urls_that_could_name_another_host_or_path() {
    for bad in [
        "https://evil@help.test/",
        "https://help.test@evil.test/",
        "javascript://help.test/",
        "/kb",
        "https:///kb",
        "https://help.test:x/",
        "https://help.test/a b",
        "https://help.test//evil.test/",
    ] {
        assert!(read_auth_request(&headers(&[("x-original-url", bad)])).is_err(), "{bad}");
    }
    let twice =
        headers(&[("x-original-url", "https://help.test/"), ("x-original-url", "https://admin.test/")]);
    assert_eq!(read_auth_request(&twice), Err(Malformed::Repeated("x-original-url")));
    assert_eq!(read_auth_request(&headers(&[])), Err(Malformed::Missing("x-original-url")));
}

#[test]
fn auth_request_refuses_a_forwarded_uri_beside_its_own_url() {
    let mixed = headers(&[("x-original-url", "https://help.test/"), ("x-forwarded-uri", "/admin")]);
    assert_eq!(read_auth_request(&mixed), Err(Malformed::OtherDialect("x-forwarded-uri")));
    // The load balancer in front of nginx may well say which host and scheme it served.
    let lb = headers(&[("x-original-url", "https://help.test/"), ("x-forwarded-host", "lb.test")]);
    assert_eq!(read_auth_request(&lb).expect("read").host, "help.test");
}

#[test]
fn ext_authz_reads_the_method_host_and_path_of_the_check_itself() {
    let h = headers(&[("host", "admin.test"), ("cookie", "deskgate_session=x")]);
    let o = read_ext_authz(&Method::DELETE, "/tickets/1?force=1", &h).expect("read");
    assert_eq!(
        o,
        Original {
            method: Method::DELETE,
            https: None,
            host: "admin.test".into(),
            target: "/tickets/1?force=1".into()
        }
    );
    assert_eq!(read_ext_authz(&Method::GET, "", &h).expect("root").target, "/");
    for (name, value) in [
        ("x-original-url", "https://help.test/"),
        ("x-forwarded-uri", "/"),
        ("x-forwarded-host", "help.test"),
    ] {
        let mixed = with(&[("host", "admin.test")], &[(name, value)]);
        assert!(
            matches!(read_ext_authz(&Method::GET, "/", &mixed), Err(Malformed::OtherDialect(_))),
            "{name}"
        );
    }
    assert_eq!(read_ext_authz(&Method::GET, "/", &headers(&[])), Err(Malformed::Missing("host")));
    assert_eq!(
        read_ext_authz(&Method::GET, "//evil.test/x", &headers(&[("host", "admin.test")])),
        Err(Malformed::AbsoluteForm("path"))
    );
}

mod properties {
    use proptest::prelude::*;

    use super::*;

    fn value() -> impl Strategy<Value = String> {
        prop_oneof![
            "[ -~]{0,40}",
            "(https?|HTTP|ftp)://[a-zA-Z0-9.:@\\[\\]%/?#_-]{0,30}",
            "/[a-zA-Z0-9./%;?#@\\\\-]{0,30}",
        ]
    }

    proptest! {
        #![proptest_config(ProptestConfig { cases: 512, failure_persistence: None, ..ProptestConfig::default() })]

        /// Whatever a client or a proxy sends, the readers answer without panicking, and
        /// what they accept is a path on a host the rules can read.
        #[test]
        fn readers_never_panic_and_accept_only_a_path_on_a_readable_host(
            method in "[A-Za-z(]{0,8}", proto in value(), host in value(), uri in value(), url in value(),
        ) {
            let mut h = HeaderMap::new();
            for (name, v) in [
                ("x-forwarded-method", &method),
                ("x-forwarded-proto", &proto),
                ("x-forwarded-host", &host),
                ("x-forwarded-uri", &uri),
            ] {
                if let Ok(v) = HeaderValue::from_str(v) {
                    h.insert(HeaderName::from_static(name), v);
                }
            }
            let mut o = HeaderMap::new();
            if let Ok(v) = HeaderValue::from_str(&url) {
                o.insert("x-original-url", v);
            }
            let mut e = HeaderMap::new();
            if let Ok(v) = HeaderValue::from_str(&host) {
                e.insert("host", v);
            }
            let reads = [read_forward_auth(&h), read_auth_request(&o), read_ext_authz(&Method::GET, &uri, &e)];
            for original in reads.into_iter().flatten() {
                prop_assert!(original.target.starts_with('/') && !original.target.starts_with("//"));
                prop_assert!(request_host(&original.host).is_some(), "{}", original.host);
            }
        }
    }
}
