//! Forward auth: the questions Traefik, Caddy and HAProxy (`forward-auth`), nginx
//! (`auth-request`) and Envoy (`ext-authz`) ask, shaped exactly as each proxy sends them,
//! against a gateway guarding two hosts.

use crate::support::*;

/// Everyone may read help.test; admin.test needs `chat.support` (VIPs).
pub const TWO_HOSTS: &str = r#"
[everyone]
enabled = true
permissions = ["portal.view", "kb.read"]

[usergroups.trial_users]
name = "Trial Users"
permissions = ["chat.sales"]

[usergroups.vips]
name = "VIPs"
permissions = ["chat.support"]

[[rules]]
host = "help.test"
path = "/"
permission = "portal.view"

[[rules]]
host = "help.test"
path = "/chat/sales"
permission = "chat.sales"

[[rules]]
host = "admin.test"
path = "/"
permission = "chat.support"
"#;

/// Request headers as (name, value).
type Headers<'a> = Vec<(&'a str, &'a str)>;

const FA: &str = "/.deskgate/authz/forward-auth";
const AR: &str = "/.deskgate/authz/auth-request";
const EXT: &str = "/.deskgate/authz/ext-authz";

const IDENTITY: [&str; 10] = [
    "x-deskgate-user",
    "x-deskgate-email",
    "x-deskgate-email-verified",
    "x-deskgate-name",
    "x-deskgate-usergroups",
    "x-deskgate-permissions",
    "x-deskgate-provider",
    "x-deskgate-auth",
    "x-deskgate-jwt",
    "x-deskgate-amr",
];

async fn two_hosts(trusted: bool) -> Stack {
    let server = if trusted { "trusted_proxies = [\"127.0.0.1\"]\n" } else { "" };
    start(Options { server: server.into(), model: TWO_HOSTS.into(), ..Default::default() }).await
}

/// The headers Traefik's forwardAuth sends for `https://{host}{uri}`.
fn traefik<'a>(host: &'a str, uri: &'a str) -> Vec<(&'a str, &'a str)> {
    vec![
        ("x-forwarded-method", "GET"),
        ("x-forwarded-proto", "https"),
        ("x-forwarded-host", host),
        ("x-forwarded-uri", uri),
        ("x-forwarded-for", "203.0.113.9"),
    ]
}

fn with<'a>(mut base: Vec<(&'a str, &'a str)>, extra: &[(&'a str, &'a str)]) -> Vec<(&'a str, &'a str)> {
    base.extend_from_slice(extra);
    base
}

fn header<'p>(page: &'p Page, name: &str) -> Option<&'p str> {
    page.headers.get(name).map(|v| v.to_str().unwrap())
}

#[tokio::test]
async fn a_question_from_an_untrusted_peer_is_refused_and_not_decided() {
    let stack = two_hosts(false).await;
    let mut b = signed_in(&stack, "vip@example.org", &["vips"]).await;
    for (path, headers) in [
        (FA.to_owned(), traefik("admin.test", "/")),
        (AR.to_owned(), vec![("x-original-url", "https://admin.test/")]),
        (format!("{EXT}/"), vec![("host", "admin.test")]),
    ] {
        let page = b.get_with(&path, &headers).await;
        assert_eq!(page.status, 403, "{path}: {}", page.body);
        assert!(page.body.contains("trusted proxy"), "{}", page.body);
        assert_eq!(header(&page, "cache-control"), Some("no-store"));
        assert!(header(&page, "x-deskgate-user").is_none(), "no decision, no identity");
    }
}

#[tokio::test]
async fn a_question_from_an_untrusted_peer_reads_no_session_so_a_cookie_cannot_make_it_load_the_store() {
    use deskgate::session::{SessionKey, SessionStore};
    let stack = two_hosts(false).await;
    let mut b = signed_in(&stack, "vip@example.org", &["vips"]).await;
    let key = SessionKey::from_cookie(&b.session_cookie().unwrap());
    let last_seen = async || stack.gateway.sessions.get(&key).await.unwrap().expect("the session").last_seen;
    let before = last_seen().await;
    // A session looked up more than a minute after it was last seen is touched: the mark
    // that the lookup ran.
    stack.clock.advance(120);
    for (path, headers) in [
        (FA.to_owned(), traefik("admin.test", "/")),
        (AR.to_owned(), vec![("x-original-url", "https://admin.test/")]),
        (format!("{EXT}/"), vec![("host", "admin.test")]),
    ] {
        let page = b.get_with(&path, &headers).await;
        assert_eq!(page.status, 403, "{path}: {}", page.body);
        assert!(page.body.contains("trusted proxy"), "{}", page.body);
    }
    assert_eq!(last_seen().await, before, "refused without reading the session");
    // The same cookie on a page of its own is looked up (and touched).
    let page = b.get("/.deskgate/").await;
    assert_eq!(page.status, 200, "{}", page.body);
    assert!(last_seen().await > before, "a page reads the session");
}

#[tokio::test]
async fn forward_auth_sends_a_guest_browser_to_sign_in_and_an_api_client_gets_401() {
    let stack = two_hosts(true).await;
    let mut guest = Browser::new(&stack);
    let page =
        guest.get_with(FA, &with(traefik("help.test", "/chat/sales?x=1"), &[("accept", "text/html")])).await;
    assert_eq!(page.status, 302, "{}", page.body);
    let expected = format!("{}/.deskgate/login?next=https%3A//help.test/chat/sales%3Fx%3D1", stack.base);
    assert_eq!(page.location(), Some(expected.as_str()));
    assert_eq!(header(&page, "cache-control"), Some("no-store"));
    let api = guest
        .get_with(FA, &with(traefik("help.test", "/chat/sales"), &[("accept", "application/json")]))
        .await;
    assert_eq!(api.status, 401);
    assert_eq!(header(&api, "cache-control"), Some("no-store"));
}

#[tokio::test]
async fn an_allowed_guest_gets_every_identity_header_even_empty_so_no_client_value_survives() {
    let stack = two_hosts(true).await;
    let mut guest = Browser::new(&stack);
    let forged = [("x-deskgate-user", "forged-admin"), ("x-deskgate-jwt", "forged")];
    let page = guest.get_with(FA, &with(traefik("help.test", "/kb"), &forged)).await;
    assert_eq!(page.status, 200, "{}", page.body);
    for name in IDENTITY {
        assert!(header(&page, name).is_some(), "{name} is set, empty if need be");
    }
    assert_eq!(header(&page, "x-deskgate-user"), Some(""));
    assert_eq!(header(&page, "x-deskgate-jwt"), Some(""));
    assert_eq!(header(&page, "x-deskgate-usergroups"), Some("everyone"));
    assert_eq!(header(&page, "cache-control"), Some("no-store"));
}

#[tokio::test]
async fn a_signed_in_person_passes_on_one_host_and_gets_403_on_the_other() {
    let stack = two_hosts(true).await;
    let mut b = signed_in(&stack, "trial@example.org", &["trial_users"]).await;
    let page = b.get_with(FA, &traefik("Help.Test:443", "/chat/sales")).await;
    assert_eq!(page.status, 200, "{}", page.body);
    assert_eq!(header(&page, "x-deskgate-email"), Some("trial@example.org"));
    assert_eq!(header(&page, "x-deskgate-usergroups"), Some("everyone,registered,trial_users"));
    assert!(header(&page, "x-deskgate-jwt").unwrap().split('.').count() == 3, "a JWT");
    let admin = b.get_with(FA, &with(traefik("admin.test", "/"), &[("accept", "text/html")])).await;
    assert_eq!(admin.status, 403, "signed in but not permitted: {}", admin.body);
    assert!(admin.body.contains("permission-missing"), "{}", admin.body);
    assert!(header(&admin, "x-deskgate-user").is_none());
    let elsewhere = b.get_with(FA, &traefik("other.test", "/")).await;
    assert_eq!(elsewhere.status, 403);
    assert!(elsewhere.body.contains("no-host-rule"), "{}", elsewhere.body);
}

#[tokio::test]
async fn a_path_trick_in_the_forwarded_uri_decides_as_the_normalized_path() {
    let stack = two_hosts(true).await;
    let mut guest = Browser::new(&stack);
    for trick in
        ["/kb/../chat/sales", "/kb/%2e%2e/chat/sales", "//chat//sales", "/CHAT/Sales", "/chat/sales;x=1"]
    {
        let page = guest.get_with(FA, &traefik("help.test", trick)).await;
        assert!(matches!(page.status, 400 | 401), "{trick}: {} {}", page.status, page.body);
    }
    let encoded = guest.get_with(FA, &traefik("help.test", "/chat%2fsales")).await;
    assert_eq!(encoded.status, 401, "{}", encoded.body);
}

/// A question with a body (or an `Upgrade`) goes through the whole tower stack; a plain one
/// takes the short way proxies' questions take (`stack::question`). Whatever is asked, both
/// ways must answer alike, or a question could be reshaped to be decided differently.
#[tokio::test]
async fn a_question_is_answered_alike_the_short_way_and_through_the_whole_stack() {
    let stack = two_hosts(true).await;
    let mut guest = Browser::new(&stack);
    let mut vip = signed_in(&stack, "vip@example.org", &["vips"]).await;
    let mut trial = signed_in(&stack, "trial@example.org", &["trial_users"]).await;
    let html = [("accept", "text/html")];
    let questions: Vec<(&str, String, Headers)> = vec![
        ("guest allowed", FA.into(), traefik("help.test", "/kb")),
        ("guest sent to sign in", FA.into(), with(traefik("admin.test", "/x?y=1"), &html)),
        ("guest, API client", FA.into(), traefik("admin.test", "/")),
        ("guest, nginx", AR.into(), vec![("x-original-url", "https://admin.test/a%2F..%2Fb")]),
        ("guest, envoy", format!("{EXT}/chat/sales"), vec![("host", "help.test")]),
        ("vip allowed", FA.into(), traefik("admin.test", "/")),
        (
            "vip, nginx",
            AR.into(),
            vec![("x-original-url", "http://admin.test/queue"), ("x-original-method", "POST")],
        ),
        ("vip, envoy", format!("{EXT}/"), vec![("host", "admin.test")]),
        ("trial refused", FA.into(), traefik("admin.test", "/")),
        ("trial, path trick", FA.into(), traefik("help.test", "/kb/../chat/sales/%2e%2e/x")),
        ("missing header", FA.into(), vec![("x-forwarded-host", "help.test")]),
        (
            "mixed dialects",
            AR.into(),
            with(traefik("help.test", "/"), &[("x-original-url", "https://help.test/")]),
        ),
        ("repeated", FA.into(), with(traefik("help.test", "/"), &[("x_forwarded_uri", "/admin")])),
        ("spoofed identity", FA.into(), with(traefik("help.test", "/"), &[("x-deskgate-user", "root")])),
        ("unknown endpoint", "/.deskgate/authz/forward-auth/".into(), traefik("help.test", "/")),
    ];
    for (who, path, headers) in &questions {
        for b in [&mut guest, &mut vip, &mut trial] {
            let short = b.send_with(reqwest::Method::GET, path, headers, None).await;
            let whole = b.send_with(reqwest::Method::GET, path, headers, Some("{}")).await;
            let upgrade = with(headers.clone(), &[("upgrade", "h2c"), ("connection", "upgrade")]);
            let upgraded = b.send_with(reqwest::Method::GET, path, &upgrade, None).await;
            for other in [&whole, &upgraded] {
                assert_eq!(short.status, other.status, "{who} {path}: {} / {}", short.body, other.body);
                assert_eq!(short.body, other.body, "{who} {path}");
                for (name, value) in &short.headers {
                    if ["date", "x-request-id", "content-length"].contains(&name.as_str()) {
                        continue;
                    }
                    let theirs = other.headers.get(name).map(|v| v.to_str().unwrap());
                    if name == "x-deskgate-jwt" {
                        assert_eq!(value.is_empty(), theirs.is_some_and(str::is_empty), "{who} {path}: jwt");
                    } else {
                        assert_eq!(Some(value.to_str().unwrap()), theirs, "{who} {path}: {name}");
                    }
                }
                assert_eq!(
                    short.headers.len(),
                    other.headers.len(),
                    "{who} {path}: {:?} / {:?}",
                    short.headers,
                    other.headers
                );
            }
            if short.status != 404 {
                assert_eq!(header(&short, "cache-control"), Some("no-store"), "{who} {path}");
            }
            assert!(header(&short, "x-request-id").is_some_and(|id| id.len() == 16), "{who} {path}");
        }
    }
    // The client's request id is kept, and the spoofed identity never answered.
    let asked = vip
        .send_with(
            reqwest::Method::GET,
            FA,
            &with(traefik("admin.test", "/"), &[("x-request-id", "abc123")]),
            None,
        )
        .await;
    assert_eq!(asked.status, 200);
    assert_eq!(header(&asked, "x-request-id"), Some("abc123"));
    let user = header(&asked, "x-deskgate-user").expect("the account id");
    assert!(!user.is_empty() && user != "root", "{user}");
}

#[tokio::test]
async fn malformed_or_mixed_questions_get_a_clear_4xx_and_no_decision() {
    let stack = two_hosts(true).await;
    let mut b = signed_in(&stack, "vip@example.org", &["vips"]).await;
    let long = format!("/{}", "a".repeat(9000));
    let cases: Vec<(&str, Headers<'_>, u16)> = vec![
        (FA, with(traefik("help.test", "/"), &[("x-forwarded-uri", "/admin")]), 400),
        (FA, traefik("help.test", "https://admin.test/"), 400),
        (FA, traefik("help.test, admin.test", "/"), 400),
        (FA, with(traefik("help.test", "/"), &[("x-original-url", "https://admin.test/")]), 400),
        (FA, vec![("x-forwarded-host", "admin.test")], 400),
        (FA, traefik("help.test", &long), 414),
        (AR, vec![("x-original-url", "https://admin.test/"), ("x-forwarded-uri", "/")], 400),
        (AR, vec![("x-original-url", "https://help.test@admin.test/")], 400),
        (AR, vec![("x-original-url", "/")], 400),
        (AR, vec![], 400),
        (AR, vec![("x-original-url", "https://admin.test/"), ("x-original-url", "https://help.test/")], 400),
    ];
    for (path, headers, status) in cases {
        let page = b.get_with(path, &headers).await;
        assert_eq!(page.status, status, "{path} {headers:?}: {}", page.body);
        assert!(header(&page, "x-deskgate-user").is_none(), "{headers:?}");
        assert_eq!(header(&page, "cache-control"), Some("no-store"));
    }
}

#[tokio::test]
async fn auth_request_answers_401_for_a_guest_and_passes_a_permitted_person() {
    let stack = two_hosts(true).await;
    let mut guest = Browser::new(&stack);
    let page = guest
        .get_with(
            AR,
            &[
                ("x-original-url", "https://admin.test/x"),
                ("x-original-method", "GET"),
                ("accept", "text/html"),
            ],
        )
        .await;
    assert_eq!(page.status, 401, "nginx itself sends the guest to sign in: {}", page.body);
    let mut vip = signed_in(&stack, "vip@example.org", &["vips"]).await;
    let page =
        vip.get_with(AR, &[("x-original-url", "https://admin.test/x"), ("x-original-method", "POST")]).await;
    assert_eq!(page.status, 200, "{}", page.body);
    assert_eq!(header(&page, "x-deskgate-email"), Some("vip@example.org"));
    // A forwarded URI a client slipped in beside nginx's headers is never believed.
    let page =
        vip.get_with(AR, &[("x-original-url", "https://admin.test/x"), ("x-forwarded-uri", "/kb")]).await;
    assert_eq!(page.status, 400);
}

#[tokio::test]
async fn ext_authz_decides_the_path_after_its_prefix_on_the_checked_host() {
    let stack = two_hosts(true).await;
    let mut vip = signed_in(&stack, "vip@example.org", &["vips"]).await;
    let page = vip.get_with(&format!("{EXT}/tickets?id=1"), &[("host", "admin.test")]).await;
    assert_eq!(page.status, 200, "{}", page.body);
    assert_eq!(header(&page, "x-deskgate-email"), Some("vip@example.org"));
    let mut guest = Browser::new(&stack);
    let page = guest.get_with(&format!("{EXT}/"), &[("host", "admin.test"), ("accept", "text/html")]).await;
    assert_eq!(page.status, 302);
    assert!(
        page.location().unwrap().ends_with("/.deskgate/login?next=http%3A//admin.test/"),
        "{:?}",
        page.location()
    );
    let page = guest.get_with(&format!("{EXT}/kb"), &[("host", "help.test")]).await;
    assert_eq!(page.status, 200);
    let mut trial = signed_in(&stack, "trial@example.org", &["trial_users"]).await;
    let page = trial.get_with(&format!("{EXT}/kb/../x"), &[("host", "admin.test")]).await;
    assert_eq!(page.status, 403, "{}", page.body);
}

/// One sign-in for several apps: the cookie for the parent domain, returns to its hosts.
async fn one_sign_in() -> Stack {
    start(Options {
        server: "public_url = \"https://auth.apps.test\"\ntrusted_proxies = [\"127.0.0.1\"]\n".into(),
        head:
            "[session]\ncookie_domain = \".apps.test\"\nredirect_domains = [\"apps.test\", \"help.test\"]\n"
                .into(),
        model: TWO_HOSTS.into(),
        ..Default::default()
    })
    .await
}

fn urlencode(s: &str) -> String {
    s.bytes()
        .map(|b| if b.is_ascii_alphanumeric() { char::from(b).to_string() } else { format!("%{b:02X}") })
        .collect()
}

#[tokio::test]
async fn sign_in_returns_to_an_https_app_under_the_redirect_domains_with_a_parent_domain_cookie() {
    let stack = one_sign_in().await;
    account(&stack, "r@example.org", "R", "correct horse battery", &[]).await;
    let mut b = Browser::new(&stack);
    let page =
        b.sign_in_next("r@example.org", "correct horse battery", "https://help.apps.test/kb?x=1").await;
    assert_eq!(page.status, 303, "{}", page.body);
    assert_eq!(page.location(), Some("https://help.apps.test/kb?x=1"));
    let cookie = page
        .headers
        .get_all("set-cookie")
        .iter()
        .map(|v| v.to_str().unwrap())
        .find(|c| c.starts_with("deskgate_session="))
        .expect("session cookie");
    assert!(cookie.contains("; Domain=apps.test;") && cookie.contains("Secure"), "{cookie}");
    // ingress-nginx names it `rd`.
    let again = b.get(&format!("/.deskgate/login?rd={}", urlencode("https://help.test/x"))).await;
    assert_eq!(again.location(), Some("https://help.test/x"));

    // Sign-out ends the session for every app: the forward-auth question no longer passes.
    let signed = b.get_with(FA, &traefik("admin.apps.test", "/")).await;
    assert_eq!(signed.status, 403, "no host rule for admin.apps.test, but signed in: {}", signed.body);
    let kept = b.clone();
    b.sign_out().await;
    let mut old = kept;
    let after = old.get_with(FA, &traefik("help.test", "/chat/sales")).await;
    assert_eq!(after.status, 401, "the old cookie is signed out everywhere: {}", after.body);
}

#[tokio::test]
async fn sign_in_return_targets_outside_the_redirect_domains_fall_back_to_root() {
    let stack = one_sign_in().await;
    account(&stack, "r@example.org", "R", "correct horse battery", &[]).await;
    let beside_the_domains = [
        "https://help.test.evil.example",
        "https://evilhelp.test",
        "https://apps.test.evil.example/",
        "http://help.apps.test/",
        "https://help.test@evil.example/",
        "https://evil.example\\@help.test/",
        "https://help.test%2eevil.example/",
    ];
    for evil in crate::redirects::OPEN_REDIRECTS.into_iter().chain(beside_the_domains) {
        let mut b = Browser::new(&stack);
        let page = b.sign_in_next("r@example.org", "correct horse battery", evil).await;
        assert_eq!(page.status, 303, "{evil}");
        assert_eq!(page.location(), Some("/"), "{evil} was refused");
        let form = b.get(&format!("/.deskgate/login?rd={}", urlencode(evil))).await;
        assert_eq!(form.location(), Some("/"), "{evil}");
    }
}

#[tokio::test]
async fn a_host_with_its_own_audience_gets_tokens_for_it_and_others_the_default() {
    use base64::Engine;
    let stack = start(Options {
        server: "trusted_proxies = [\"127.0.0.1\"]\n".into(),
        head: "[jwt.host_audiences]\n\"admin.test\" = \"admin-console\"\n".into(),
        model: TWO_HOSTS.into(),
        ..Default::default()
    })
    .await;
    let mut vip = signed_in(&stack, "vip@example.org", &["vips"]).await;
    let aud = |page: &Page| {
        let token = header(page, "x-deskgate-jwt").unwrap();
        let claims = token.split('.').nth(1).unwrap();
        let claims: serde_json::Value =
            serde_json::from_slice(&base64::engine::general_purpose::URL_SAFE_NO_PAD.decode(claims).unwrap())
                .unwrap();
        claims["aud"].as_str().unwrap().to_owned()
    };
    let admin = vip.get_with(FA, &traefik("admin.test", "/")).await;
    assert_eq!(admin.status, 200, "{}", admin.body);
    assert_eq!(aud(&admin), "admin-console");
    let help = vip.get_with(FA, &traefik("help.test", "/")).await;
    assert_eq!(aud(&help), "deskgate");
}
