//! Which identity the helpdesk believes, seen through `/whoami` and its pages.

use serde_json::{Value, json};

use crate::support::{Account, Helpdesk, JwksServer, Key, encode, guest, header, settings};

const WARNING: &str = "identity could not be verified";

async fn setup() -> (Key, JwksServer, Helpdesk) {
    let key = Key::generate("deskgate-1");
    let jwks = JwksServer::start(&[&key]).await;
    let helpdesk = Helpdesk::start(settings(&jwks)).await;
    (key, jwks, helpdesk)
}

/// Asserts that `headers` were served as an unverified guest, for the reason `code`.
async fn assert_unverified(helpdesk: &Helpdesk, headers: &[(String, String)], code: &str) {
    let whoami = helpdesk.whoami(headers).await;
    assert_eq!(whoami["guest"], true, "{whoami}");
    assert_eq!(whoami["verified"], false, "{whoami}");
    assert_eq!(whoami["user"], Value::Null, "{whoami}");
    assert_eq!(whoami["claims"], Value::Null, "{whoami}");
    assert_eq!(whoami["permissions"], json!([]), "{whoami}");
    assert_eq!(whoami["warning"], format!("{WARNING} ({code})"), "{whoami}");

    let home = helpdesk.page("/", headers).await;
    assert!(home.contains(WARNING), "{home}");
    assert!(home.contains("Guest"), "{home}");
    assert!(!home.contains("Signed in as"), "{home}");
    assert!(!home.contains("href=\"/kb\""), "{home}");
    assert_eq!(helpdesk.get("/kb", headers).await.status(), 403);
}

#[tokio::test]
async fn a_valid_token_with_matching_headers_is_a_verified_person() {
    let (key, jwks, helpdesk) = setup().await;
    let account = Account::power_user();
    let headers = account.headers(&key);

    let whoami = helpdesk.whoami(&headers).await;
    assert_eq!(whoami["guest"], false, "{whoami}");
    assert_eq!(whoami["verified"], true);
    assert_eq!(whoami["user"], "acc-7");
    assert_eq!(whoami["email"], "zoe@example.com");
    assert_eq!(whoami["name"], "Zoë Müller");
    assert_eq!(whoami["provider"], "builtin");
    assert_eq!(whoami["usergroups"], json!(["everyone", "registered", "power_users"]));
    assert_eq!(
        whoami["permissions"],
        json!(["comments.unmoderated", "kb.category.advanced", "kb.read", "news.read"])
    );
    assert_eq!(whoami["claims"], account.claims());
    assert_eq!(whoami["warning"], Value::Null);
    assert_eq!(whoami["headers"]["x-deskgate-name"], "Zo%C3%AB%20M%C3%BCller");

    let home = helpdesk.page("/", &headers).await;
    assert!(
        home.contains(
            "Signed in as Zoë Müller (zoe@example.com) — usergroups: everyone, registered, power_users"
        ),
        "{home}"
    );
    assert!(home.contains("<a href=\"/kb\">Knowledgebase</a>"), "{home}");
    assert!(home.contains("<a href=\"/news\">News</a>"), "{home}");
    assert!(!home.contains("Chat with"), "{home}");
    assert!(!home.contains(WARNING), "{home}");

    let kb = helpdesk.page("/kb", &headers).await;
    assert!(kb.contains("Advanced configuration"), "{kb}");
    let advanced = helpdesk.page("/kb/advanced", &headers).await;
    assert!(advanced.contains("Connecting your company"), "{advanced}");
    assert_eq!(jwks.fetches(), 1, "the JWKS is cached between requests");
}

#[tokio::test]
async fn a_guest_gets_the_permissions_deskgate_sends() {
    let (_key, jwks, helpdesk) = setup().await;
    let headers = guest("kb.read");

    let whoami = helpdesk.whoami(&headers).await;
    assert_eq!(whoami["guest"], true, "{whoami}");
    assert_eq!(whoami["verified"], false);
    assert_eq!(whoami["usergroups"], json!(["everyone"]));
    assert_eq!(whoami["permissions"], json!(["kb.read"]));
    assert_eq!(whoami["warning"], Value::Null);

    let home = helpdesk.page("/", &headers).await;
    assert!(home.contains("Guest — usergroups: everyone"), "{home}");
    assert!(home.contains("href=\"/kb\""), "{home}");
    assert!(!home.contains("href=\"/news\""), "{home}");
    assert!(!home.contains(WARNING), "{home}");
    let kb = helpdesk.page("/kb", &headers).await;
    assert!(kb.contains("Getting started"), "{kb}");
    assert!(!kb.contains("Advanced configuration"), "{kb}");
    assert_eq!(helpdesk.get("/kb/advanced", &headers).await.status(), 403);
    assert_eq!(jwks.fetches(), 0, "guests carry no token to check");
}

#[tokio::test]
async fn a_token_signed_by_another_key_is_not_believed() {
    let (_key, _jwks, helpdesk) = setup().await;
    let impostor = Key::generate("deskgate-1");
    let headers = Account::power_user().headers(&impostor);
    assert_unverified(&helpdesk, &headers, "token-signature-invalid").await;
}

#[tokio::test]
async fn an_expired_token_is_not_believed() {
    let (key, _jwks, helpdesk) = setup().await;
    let account = Account::power_user();
    let mut claims = account.claims();
    claims["iat"] = json!(claims["iat"].as_u64().unwrap() - 7200);
    claims["exp"] = json!(claims["exp"].as_u64().unwrap() - 7200);
    let mut headers = account.plain_headers();
    headers.push(header("X-Deskgate-Jwt", &key.token(&claims)));
    assert_unverified(&helpdesk, &headers, "token-expired").await;
}

#[tokio::test]
async fn an_unsigned_token_is_not_believed() {
    let (_key, jwks, helpdesk) = setup().await;
    let account = Account::power_user();
    let unsigned = format!(
        "{}.{}.",
        encode(&json!({"alg": "none", "typ": "JWT", "kid": "deskgate-1"})),
        encode(&account.claims())
    );
    let mut headers = account.plain_headers();
    headers.push(header("X-Deskgate-Jwt", &unsigned));
    assert_unverified(&helpdesk, &headers, "token-algorithm-unsupported").await;
    assert_eq!(jwks.fetches(), 0);
}

#[tokio::test]
async fn headers_that_differ_from_the_token_are_not_believed() {
    let (key, _jwks, helpdesk) = setup().await;
    let registered = Account::registered();
    let token = key.token(&registered.claims());

    // Each identity header in turn claims more than the token says.
    for (name, value) in [
        ("X-Deskgate-User", "acc-7"),
        ("X-Deskgate-Email", "zoe@example.com"),
        ("X-Deskgate-Name", "Zo%C3%AB"),
        ("X-Deskgate-Provider", "ldap"),
        ("X-Deskgate-Usergroups", "everyone,registered,vips"),
        ("X-Deskgate-Permissions", "kb.read,news.read,chat.support"),
        ("X-Deskgate-Email-Verified", "true"),
    ] {
        let mut headers: Vec<_> =
            registered.plain_headers().into_iter().filter(|(existing, _)| existing != name).collect();
        headers.push(header(name, value));
        headers.push(header("X-Deskgate-Jwt", &token));
        assert_unverified(&helpdesk, &headers, "header-mismatch").await;
    }
}

#[tokio::test]
async fn an_unverified_email_is_shown_as_not_verified() {
    let (key, _jwks, helpdesk) = setup().await;
    let registered = Account::registered();
    let mut claims = registered.claims();
    claims["email_verified"] = json!(false);
    let mut headers = registered.plain_headers();
    headers.push(header("X-Deskgate-Email-Verified", "false"));
    headers.push(header("X-Deskgate-Jwt", &key.token(&claims)));
    let whoami = helpdesk.whoami(&headers).await;
    assert_eq!(whoami["verified"], true, "{whoami}");
    assert_eq!(whoami["email_verified"], false, "{whoami}");
    let home = helpdesk.page("/", &headers).await;
    assert!(home.contains("Signed in as Bob (bob@example.com, not verified)"), "{home}");
}

#[tokio::test]
async fn identity_headers_without_a_token_are_not_believed() {
    let (_key, _jwks, helpdesk) = setup().await;
    let headers = Account::power_user().plain_headers();
    assert_unverified(&helpdesk, &headers, "token-missing").await;
}

#[tokio::test]
async fn a_repeated_identity_header_is_not_believed() {
    let (key, _jwks, helpdesk) = setup().await;
    let mut headers = Account::registered().headers(&key);
    headers.push(header("X-Deskgate-User", "acc-8"));
    assert_unverified(&helpdesk, &headers, "header-malformed").await;
}

#[tokio::test]
async fn the_issuer_is_checked_when_configured() {
    let (key, _jwks, helpdesk) = setup().await;
    let account = Account::registered();
    let mut claims = account.claims();
    claims["iss"] = json!("http://other-gateway.example");
    let mut headers = account.plain_headers();
    headers.push(header("X-Deskgate-Jwt", &key.token(&claims)));
    assert_unverified(&helpdesk, &headers, "token-issuer-mismatch").await;
}

#[tokio::test]
async fn a_configured_header_prefix_is_the_only_one_read() {
    let key = Key::generate("deskgate-1");
    let jwks = JwksServer::start(&[&key]).await;
    let mut settings = crate::support::settings(&jwks);
    settings.header_prefix = "X-Portal-".to_owned();
    let helpdesk = Helpdesk::start(settings).await;

    let account = Account::vip();
    let renamed: Vec<_> = account
        .headers(&key)
        .into_iter()
        .map(|(name, value)| (name.replace("X-Deskgate-", "X-Portal-"), value))
        .collect();
    let whoami = helpdesk.whoami(&renamed).await;
    assert_eq!(whoami["verified"], true, "{whoami}");
    assert_eq!(whoami["user"], "acc-9");

    // deskgate's default spelling means nothing to a portal configured otherwise.
    let whoami = helpdesk.whoami(&account.headers(&key)).await;
    assert_eq!(whoami["guest"], true, "{whoami}");
    assert_eq!(whoami["warning"], Value::Null);
    assert_eq!(whoami["permissions"], json!([]));
}

#[tokio::test]
async fn whoami_echoes_every_header_received() {
    let (_key, _jwks, helpdesk) = setup().await;
    let headers = vec![
        header("X-Request-Id", "req-1"),
        header("Accept-Language", "de"),
        header("X-Custom", "one"),
        header("X-Custom", "two"),
    ];
    let whoami = helpdesk.whoami(&headers).await;
    assert_eq!(whoami["headers"]["x-request-id"], "req-1", "{whoami}");
    assert_eq!(whoami["headers"]["accept-language"], "de");
    assert_eq!(whoami["headers"]["x-custom"], "one, two");
    assert_eq!(whoami["headers"]["host"], helpdesk.address.as_str());
}
