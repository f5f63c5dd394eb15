use std::path::PathBuf;
use std::sync::atomic::{AtomicUsize, Ordering};

use serde_json::json;

use super::*;

/// A new file per call: tests run in parallel, and a file rewritten under a reader looks empty.
fn secret_file(name: &str, contents: &str) -> PathBuf {
    static NEXT: AtomicUsize = AtomicUsize::new(0);
    let n = NEXT.fetch_add(1, Ordering::Relaxed);
    let path = std::env::temp_dir().join(format!("deskgate-oidc-{}-{name}-{n}", std::process::id()));
    std::fs::write(&path, contents).expect("write secret");
    remove_when_the_test_ends(&path);
    path
}

/// Removes `path` when the test's thread ends (each test runs on a thread of its own).
fn remove_when_the_test_ends(path: &std::path::Path) {
    struct Doomed(Vec<PathBuf>);
    impl Drop for Doomed {
        fn drop(&mut self) {
            for p in &self.0 {
                let _ = std::fs::remove_file(p);
            }
        }
    }
    thread_local! {
        static DOOMED: std::cell::RefCell<Doomed> = const { std::cell::RefCell::new(Doomed(Vec::new())) };
    }
    DOOMED.with(|d| d.borrow_mut().0.push(path.to_owned()));
}

fn config() -> OidcConfig {
    OidcConfig {
        issuer: Some("https://id.example.com".into()),
        client_id: "deskgate".into(),
        client_secret_file: Some(secret_file("ok", "s3cret\n")),
        ..OidcConfig::default()
    }
}

fn problems(config: &OidcConfig) -> Vec<(String, String)> {
    match config.build("corp") {
        Ok(_) => Vec::new(),
        Err(problems) => problems.into_iter().map(|p| (p.path, p.message)).collect(),
    }
}

fn paths(config: &OidcConfig) -> Vec<String> {
    problems(config).into_iter().map(|(path, _)| path).collect()
}

#[test]
fn a_minimal_table_builds_with_the_defaults() {
    let oidc = config().build("corp").expect("builds");
    assert_eq!(oidc.provider_id(), "oidc.corp");
    assert_eq!(oidc.issuer(), "https://id.example.com");
    assert_eq!(oidc.display_name(), "corp");
    let s = &oidc.inner.settings;
    assert_eq!(s.client_secret.expose(), "s3cret");
    assert_eq!(s.scope, "openid email profile");
    assert_eq!(s.algorithms, Algorithm::DEFAULT);
    assert_eq!(s.clock_skew, Duration::from_secs(60));
    assert_eq!(s.hd_hint, None);
    assert!(!format!("{oidc:?}").contains("s3cret"), "the secret stays out of Debug output");
}

#[test]
fn the_table_deserializes_with_serde_defaults() {
    let table: OidcConfig = serde_json::from_value(json!({
        "preset": "google",
        "client_id": "123.apps.googleusercontent.com",
        "client_secret_env": "GOOGLE_SECRET",
        "allowed_domains": ["corp.example.com"],
        "groups": [{ "group": "hd:corp.example.com", "usergroups": ["staff"] }],
    }))
    .expect("deserializes");
    assert_eq!(table.preset, Some(Preset::Google));
    assert!(!table.end_session);
    assert_eq!(table.groups.len(), 1);
    assert!(serde_json::from_value::<OidcConfig>(json!({ "preset": "gogle" })).is_err());
}

#[test]
fn the_google_preset_fills_issuer_label_and_domain_hint() {
    let google = OidcConfig {
        preset: Some(Preset::Google),
        issuer: None,
        allowed_domains: vec!["Corp.Example.com".into()],
        ..config()
    };
    let oidc = google.build("google").expect("builds");
    assert_eq!(oidc.issuer(), GOOGLE_ISSUER);
    assert_eq!(oidc.display_name(), "Google");
    let s = &oidc.inner.settings;
    assert_eq!(s.hd_hint.as_deref(), Some("corp.example.com"));
    assert_eq!(s.allowed_domains, ["corp.example.com"]);
    assert!(s.accepted_issuers.contains(&"accounts.google.com".to_owned()));

    let several = OidcConfig {
        allowed_domains: vec!["a.example.com".into(), "b.example.com".into()],
        ..google.clone()
    };
    assert_eq!(several.build("g").expect("builds").inner.settings.hd_hint.as_deref(), Some("*"));

    let same_issuer = OidcConfig { issuer: Some(GOOGLE_ISSUER.into()), ..google.clone() };
    assert!(same_issuer.build("g").is_ok());
    let other_issuer = OidcConfig { issuer: Some("https://id.example.com".into()), ..google };
    assert_eq!(paths(&other_issuer), ["issuer"]);
}

#[test]
fn domains_are_only_a_hint_for_google() {
    let generic = OidcConfig { allowed_domains: vec!["corp.example.com".into()], ..config() };
    let oidc = generic.build("corp").expect("builds");
    assert_eq!(oidc.inner.settings.hd_hint, None);
    assert_eq!(oidc.inner.settings.allowed_domains, ["corp.example.com"]);
}

#[test]
fn issuers_must_be_https_or_loopback_http() {
    for good in [
        "https://id.example.com",
        "https://id.example.com/realms/x/",
        "http://127.0.0.1:19380",
        "http://localhost:8080",
    ] {
        let c = OidcConfig { issuer: Some(good.into()), ..config() };
        assert!(c.build("x").is_ok(), "{good} should be accepted");
    }
    for bad in [
        "http://id.example.com",
        "id.example.com",
        "https://id.example.com/?x=1",
        "https://id.example.com/#f",
        "ftp://x",
    ] {
        let c = OidcConfig { issuer: Some(bad.into()), ..config() };
        assert_eq!(paths(&c), ["issuer"], "{bad} should be refused");
    }
    assert_eq!(paths(&OidcConfig { issuer: None, ..config() }), ["issuer"]);
}

#[test]
fn weak_and_unknown_algorithms_are_refused() {
    let c = OidcConfig {
        algorithms: Some(vec!["none".into(), "HS256".into(), "RS1".into(), "ES384".into(), "PS256".into()]),
        ..config()
    };
    let found = problems(&c);
    let at = |path: &str| found.iter().find(|(p, _)| p == path).map(|(_, m)| m.clone()).unwrap_or_default();
    assert!(at("algorithms[0]").contains("unsigned"), "{found:?}");
    assert!(at("algorithms[1]").contains("HMAC"), "{found:?}");
    assert!(at("algorithms[2]").contains("not supported"), "{found:?}");
    assert_eq!(found.len(), 3, "{found:?}");

    let empty = OidcConfig { algorithms: Some(Vec::new()), ..config() };
    assert_eq!(paths(&empty), ["algorithms"]);
    let strong = OidcConfig { algorithms: Some(vec!["ES384".into(), "PS256".into()]), ..config() };
    assert_eq!(
        strong.build("x").expect("builds").inner.settings.algorithms,
        [Algorithm::Es384, Algorithm::Ps256]
    );
}

#[test]
fn the_secret_comes_from_exactly_one_place() {
    let both = OidcConfig { client_secret_env: Some("X".into()), ..config() };
    assert_eq!(paths(&both), ["client_secret_env"]);
    let neither = OidcConfig { client_secret_file: None, ..config() };
    assert_eq!(paths(&neither), ["client_secret_file"]);
    let missing = OidcConfig { client_secret_file: Some("/nonexistent/deskgate/secret".into()), ..config() };
    assert_eq!(paths(&missing), ["client_secret_file"]);
    let empty = OidcConfig { client_secret_file: Some(secret_file("empty", "\n")), ..config() };
    assert_eq!(paths(&empty), ["client_secret_file"]);
    let unset = OidcConfig {
        client_secret_file: None,
        client_secret_env: Some("DESKGATE_OIDC_TEST_SURELY_UNSET".into()),
        ..config()
    };
    assert_eq!(paths(&unset), ["client_secret_env"]);
}

#[test]
fn every_problem_is_reported_at_once_with_its_path() {
    let c = OidcConfig {
        issuer: Some("http://id.example.com".into()),
        client_id: " ".into(),
        client_secret_env: Some("X".into()),
        scopes: Some(vec!["email".into(), "bad scope".into()]),
        allowed_domains: vec!["corp.example.com".into(), "@gmail.com".into(), "*.example.com".into()],
        groups_claim: Some("".into()),
        algorithms: Some(vec!["HS256".into()]),
        clock_skew: Some("1h".into()),
        http_timeout: Some("soon".into()),
        display_name: Some("  ".into()),
        allow_unverified_email: true,
        link_by_email: true,
        groups: vec![
            GroupRule { group: "".into(), usergroups: vec!["agents".into()] },
            GroupRule { group: "hd:corp.example.com".into(), usergroups: Vec::new() },
        ],
        ..config()
    };
    assert_eq!(
        paths(&c),
        [
            "issuer",
            "client_id",
            "client_secret_env",
            "scopes",
            "scopes[1]",
            "allowed_domains[1]",
            "allowed_domains[2]",
            "groups_claim",
            "algorithms[0]",
            "clock_skew",
            "http_timeout",
            "display_name",
            "link_by_email",
            "groups[0].group",
            "groups[1].usergroups",
        ]
    );
}

#[test]
fn durations_have_bounds() {
    let zero = OidcConfig { http_timeout: Some("0s".into()), ..config() };
    assert_eq!(paths(&zero), ["http_timeout"]);
    let long = OidcConfig { http_timeout: Some("3m".into()), ..config() };
    assert_eq!(paths(&long), ["http_timeout"]);
    let fine = OidcConfig { clock_skew: Some("0s".into()), http_timeout: Some("30s".into()), ..config() };
    assert!(fine.build("x").is_ok());
}

#[test]
fn refresh_groups_asks_for_offline_access_except_at_google() {
    let generic = OidcConfig { refresh_groups: true, ..config() }.build("corp").expect("builds");
    assert_eq!(generic.inner.settings.scope, "openid email profile offline_access");
    assert!(generic.refresh_groups());
    let google = OidcConfig { preset: Some(Preset::Google), issuer: None, refresh_groups: true, ..config() }
        .build("google")
        .expect("builds");
    assert_eq!(google.inner.settings.scope, "openid email profile", "Google refuses offline_access");
    assert!(google.inner.settings.google);
}

#[test]
fn bearer_audiences_are_off_when_absent_and_checked_when_given() {
    assert!(!config().build("corp").expect("builds").accepts_bearer());
    let on = OidcConfig { bearer_audiences: Some(vec!["helpdesk-api".into()]), ..config() };
    assert!(on.build("corp").expect("builds").accepts_bearer());
    let empty = OidcConfig { bearer_audiences: Some(Vec::new()), ..config() };
    assert_eq!(paths(&empty), ["bearer_audiences"]);
    let bad = OidcConfig {
        bearer_audiences: Some(vec!["ok".into(), " spaced".into(), String::new(), "ok".into()]),
        ..config()
    };
    assert_eq!(paths(&bad), ["bearer_audiences[1]", "bearer_audiences[2]", "bearer_audiences[3]"]);
}
