//! Provider bearer tokens: an ID token from the real OpenID Connect provider of the test
//! peers, sent as `Authorization: Bearer`, acts as its account for one request; tokens for
//! another audience, expired, signed by another key, forged or malformed get 401 with
//! `WWW-Authenticate: Bearer realm="deskgate", error="invalid_token"`, never a sign-in redirect.
//!
//! The tokens are fetched from the provider directly (its login form driven with a cookie
//! jar, the code exchanged at its token endpoint), for a callback URL on port 19820 that the
//! provider knows (tests/run registers it); nothing listens there.

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use ring::rand::SystemRandom;
use ring::signature::{ECDSA_P256_SHA256_FIXED_SIGNING, EcdsaKeyPair};
use serde_json::{Value, json};
use sha2::Digest;

use deskgate::accounts::AccountStore;

use crate::oidc::{AtProvider, SECRET_FILE};
use crate::support::*;

const CALLBACK: &str = "http://127.0.0.1:19820/.deskgate/oidc/corp/callback";
const CHALLENGE: &str = r#"Bearer realm="deskgate", error="invalid_token""#;

const MODEL: &str = r#"
[everyone]
enabled = false

[registered]
permissions = ["portal.view"]

[usergroups.agents]
name = "Agents"
permissions = ["tickets.read"]

[[rules]]
path = "/"
permission = "portal.view"

[[rules]]
path = "/api/tickets"
permission = "tickets.read"
"#;

/// `[providers.oidc.corp]` for the client `deskgate-test`, accepting its ID tokens as
/// bearer tokens, with `extra` keys.
fn provider(issuer: &str, extra: &str) -> String {
    format!(
        r#"
[providers.oidc.corp]
issuer = "{issuer}"
client_id = "deskgate-test"
client_secret_file = "{secret}"
groups_claim = "groups"
bearer_audiences = ["deskgate-test"]
{extra}

[[providers.oidc.corp.groups]]
group = "helpdesk-agents"
usergroups = ["agents"]
"#,
        secret = SECRET_FILE.0,
    )
}

async fn stack(port: u16, issuer: &str, extra: &str, per_address: u32) -> Stack {
    start(Options {
        server: "trusted_proxies = [\"127.0.0.1\"]\n".into(),
        head: format!("{}\n[rate_limit]\nper_address = {per_address}\n", provider(issuer, extra)),
        model: MODEL.into(),
        port: Some(port),
        files: vec![SECRET_FILE],
        ..Default::default()
    })
    .await
}

fn b64(bytes: impl AsRef<[u8]>) -> String {
    URL_SAFE_NO_PAD.encode(bytes)
}

async fn discovery(issuer: &str) -> Value {
    let url = format!("{issuer}/.well-known/openid-configuration");
    reqwest::get(url).await.unwrap().json().await.unwrap()
}

/// An ID token the provider issues to `client` for `email`, through its real code flow.
async fn id_token(issuer: &str, client: &str, email: &str) -> String {
    let meta = discovery(issuer).await;
    let verifier = b64(rand::random::<[u8; 32]>());
    let challenge = b64(sha2::Sha256::digest(verifier.as_bytes()));
    let mut authorize = url::Url::parse(meta["authorization_endpoint"].as_str().unwrap()).unwrap();
    authorize
        .query_pairs_mut()
        .append_pair("client_id", client)
        .append_pair("response_type", "code")
        .append_pair("scope", "openid email profile")
        .append_pair("redirect_uri", CALLBACK)
        .append_pair("state", &b64(rand::random::<[u8; 16]>()))
        .append_pair("nonce", &b64(rand::random::<[u8; 16]>()))
        .append_pair("code_challenge", &challenge)
        .append_pair("code_challenge_method", "S256");
    let callback = AtProvider::default().sign_in(authorize.as_str(), email, "http://127.0.0.1:19820/").await;
    let callback = url::Url::parse(&callback).unwrap();
    let code = callback.query_pairs().find(|(k, _)| k == "code").expect("a code").1.into_owned();
    let answer: Value = reqwest::Client::new()
        .post(meta["token_endpoint"].as_str().unwrap())
        .basic_auth(client, Some(SECRET_FILE.1.trim()))
        .form(&[
            ("grant_type", "authorization_code"),
            ("code", code.as_str()),
            ("redirect_uri", CALLBACK),
            ("code_verifier", verifier.as_str()),
        ])
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    answer["id_token"].as_str().unwrap_or_else(|| panic!("no ID token: {answer}")).to_owned()
}

/// The provider's published keys.
async fn jwks(issuer: &str) -> Vec<Value> {
    let meta = discovery(issuer).await;
    let set: Value = reqwest::get(meta["jwks_uri"].as_str().unwrap()).await.unwrap().json().await.unwrap();
    set["keys"].as_array().unwrap().clone()
}

fn part(token: &str, i: usize) -> Value {
    let text = token.split('.').nth(i).unwrap();
    serde_json::from_slice(&URL_SAFE_NO_PAD.decode(text).unwrap()).unwrap()
}

/// A token signed with a P-256 key made here, which the provider never published.
fn es256(header: &Value, claims: &Value) -> String {
    let rng = SystemRandom::new();
    let pkcs8 = EcdsaKeyPair::generate_pkcs8(&ECDSA_P256_SHA256_FIXED_SIGNING, &rng).unwrap();
    let key = EcdsaKeyPair::from_pkcs8(&ECDSA_P256_SHA256_FIXED_SIGNING, pkcs8.as_ref(), &rng).unwrap();
    let input = format!("{}.{}", b64(header.to_string()), b64(claims.to_string()));
    let signature = key.sign(&rng, input.as_bytes()).unwrap();
    format!("{input}.{}", b64(signature.as_ref()))
}

fn hs256(claims: &Value, secret: &[u8]) -> String {
    let input =
        format!("{}.{}", b64(json!({"alg": "HS256", "typ": "JWT"}).to_string()), b64(claims.to_string()));
    let key = ring::hmac::Key::new(ring::hmac::HMAC_SHA256, secret);
    format!("{input}.{}", b64(ring::hmac::sign(&key, input.as_bytes()).as_ref()))
}

struct Answer {
    status: u16,
    headers: reqwest::header::HeaderMap,
    body: String,
}

impl Answer {
    fn json(&self) -> Value {
        serde_json::from_str(&self.body).unwrap_or_else(|_| panic!("not JSON: {}", self.body))
    }

    /// A 401 for an invalid token, the way a program is told, never a sign-in redirect.
    fn assert_invalid_token(&self, what: &str) {
        assert_eq!(self.status, 401, "{what}: {}", self.body);
        let challenge = self.headers.get("www-authenticate").map(|v| v.to_str().unwrap());
        assert_eq!(challenge, Some(CHALLENGE), "{what}");
        assert!(self.headers.get("location").is_none(), "{what}: no redirect");
        assert!(self.headers.get("set-cookie").is_none(), "{what}: no session");
        assert_eq!(self.json()["error"], "invalid_token", "{what}");
    }
}

async fn get(stack: &Stack, path: &str, headers: &[(&str, &str)]) -> Answer {
    let client = reqwest::Client::builder().redirect(reqwest::redirect::Policy::none()).build().unwrap();
    let mut req = client.get(format!("{}{path}", stack.base));
    for (k, v) in headers {
        req = req.header(*k, *v);
    }
    let resp = req.send().await.unwrap();
    let (status, headers) = (resp.status().as_u16(), resp.headers().clone());
    Answer { status, headers, body: resp.text().await.unwrap() }
}

async fn with_token(stack: &Stack, path: &str, token: &str) -> Answer {
    get(stack, path, &[("authorization", &format!("Bearer {token}")), ("accept", "application/json")]).await
}

#[tokio::test]
async fn a_provider_id_token_acts_as_its_account_with_the_mapped_usergroups() {
    let Some(issuer) = peer("DESKGATE_TEST_OIDC_ISSUER") else { return };
    let stack = stack(19842, &issuer, "create_accounts = true", 1000).await;
    let token = id_token(&issuer, "deskgate-test", "alice@corp.example.com").await;

    let seen = with_token(&stack, "/whoami", &token).await;
    assert_eq!(seen.status, 200, "{}", seen.body);
    assert!(seen.headers.get("set-cookie").is_none(), "a bearer token makes no session");
    let seen = seen.json();
    let h = &seen["headers"];
    assert_eq!(h["x-deskgate-email"], "alice@corp.example.com");
    assert_eq!(h["x-deskgate-provider"], "oidc.corp");
    assert_eq!(h["x-deskgate-auth"], "bearer", "told how the request came");
    assert_eq!(h["x-deskgate-usergroups"], "registered,agents");
    assert!(h.get("authorization").is_none(), "the token deskgate consumed is not forwarded: {h}");
    assert_eq!(seen["verified"], true, "the backend's JWT verifies");
    assert_eq!(with_token(&stack, "/api/tickets", &token).await.status, 200, "agents read tickets");

    // Without it the same client is a guest, and Everyone is disabled.
    assert_eq!(get(&stack, "/whoami", &[("accept", "application/json")]).await.status, 401);

    // A forward-auth question carrying the client's token is answered for that account.
    let question = [
        ("authorization", format!("Bearer {token}")),
        ("x-forwarded-method", "GET".into()),
        ("x-forwarded-proto", "https".into()),
        ("x-forwarded-host", "help.test".into()),
        ("x-forwarded-uri", "/api/tickets".into()),
    ];
    let question: Vec<(&str, &str)> = question.iter().map(|(k, v)| (*k, v.as_str())).collect();
    let answer = get(&stack, "/.deskgate/authz/forward-auth", &question).await;
    assert_eq!(answer.status, 200, "{}", answer.body);
    assert_eq!(answer.headers["x-deskgate-usergroups"], "registered,agents");
    assert_eq!(answer.headers["x-deskgate-email"], "alice@corp.example.com");
    let mut forged = question.clone();
    forged[0].1 = "Bearer not.a.token";
    get(&stack, "/.deskgate/authz/forward-auth", &forged).await.assert_invalid_token("forward-auth");

    // The account is looked up at every request: once disabled, its tokens stop working.
    let account =
        stack.gateway.accounts.by_email("alice@corp.example.com").await.unwrap().expect("made at first use");
    stack.gateway.accounts.set_disabled(&account.id, true).await.unwrap();
    with_token(&stack, "/whoami", &token).await.assert_invalid_token("a disabled account");
}

#[tokio::test]
async fn tokens_for_another_audience_expired_or_signed_by_an_unknown_key_are_refused() {
    let Some(issuer) = peer("DESKGATE_TEST_OIDC_ISSUER") else { return };
    let stack = stack(19843, &issuer, "create_accounts = true", 1000).await;
    let token = id_token(&issuer, "deskgate-test", "alice@corp.example.com").await;
    assert_eq!(with_token(&stack, "/whoami", &token).await.status, 200);

    let other = id_token(&issuer, "deskgate-test-es256", "alice@corp.example.com").await;
    assert_eq!(part(&other, 1)["aud"], "deskgate-test-es256");
    with_token(&stack, "/whoami", &other).await.assert_invalid_token("another audience");
    // A browser is not sent to sign in either: the token was meant for a program.
    let html =
        get(&stack, "/whoami", &[("authorization", &format!("Bearer {other}")), ("accept", "text/html")])
            .await;
    html.assert_invalid_token("another audience, asked for as a page");

    // Same header shape and claims, a key the provider never published: a fresh key id,
    // and the key id of the provider's own P-256 key.
    let claims = part(&token, 1);
    let unknown =
        es256(&json!({"alg": "ES256", "typ": "JWT", "kid": "a3f5c2d0-5b1e-4c1f-9d0a-unknown"}), &claims);
    with_token(&stack, "/whoami", &unknown).await.assert_invalid_token("an unknown key id");
    let keys = jwks(&issuer).await;
    let ec = keys.iter().find(|k| k["kty"] == "EC").expect("the provider publishes a P-256 key");
    let borrowed = es256(&json!({"alg": "ES256", "typ": "JWT", "kid": ec["kid"]}), &claims);
    with_token(&stack, "/whoami", &borrowed).await.assert_invalid_token("the provider's key id, another key");

    // An hour and more later the ID token has expired (the gateway's clock moves; the
    // provider's tokens live an hour).
    stack.clock.advance(2 * 3600);
    with_token(&stack, "/whoami", &token).await.assert_invalid_token("expired");
}

#[tokio::test]
async fn forged_and_malformed_bearer_tokens_are_refused_and_nothing_panics() {
    let Some(issuer) = peer("DESKGATE_TEST_OIDC_ISSUER") else { return };
    let stack = stack(19844, &issuer, "create_accounts = true", 1000).await;
    let token = id_token(&issuer, "deskgate-test", "alice@corp.example.com").await;
    let header = part(&token, 0);
    let claims = part(&token, 1);
    let keys = jwks(&issuer).await;
    let rsa = keys.iter().find(|k| k["kty"] == "RSA").expect("the provider publishes an RSA key");
    let sig = token.split('.').nth(2).unwrap();

    let mut elevated = claims.clone();
    elevated["groups"] = json!(["helpdesk-agents", "administrators"]);
    elevated["email"] = json!("bob@gmail.example");
    let mut stranger = claims.clone();
    stranger["iss"] = json!("http://127.0.0.1:19399");
    let mut slashed = claims.clone();
    slashed["iss"] = json!(format!("{issuer}/"));
    let none_header = json!({"alg": "none", "typ": "JWT", "kid": header["kid"]});
    let n = URL_SAFE_NO_PAD.decode(rsa["n"].as_str().unwrap()).unwrap();

    let cases: Vec<(&str, String)> = vec![
        ("alg none", format!("{}.{}.", b64(none_header.to_string()), b64(claims.to_string()))),
        (
            "alg none with the signature",
            format!("{}.{}.{sig}", b64(none_header.to_string()), b64(claims.to_string())),
        ),
        ("alg None", format!("{}.{}.", b64(json!({"alg": "None"}).to_string()), b64(claims.to_string()))),
        ("HS256 keyed with the public JWK", hs256(&claims, rsa.to_string().as_bytes())),
        ("HS256 keyed with the modulus", hs256(&claims, &n)),
        (
            "tampered payload",
            format!("{}.{}.{sig}", token.split('.').next().unwrap(), b64(elevated.to_string())),
        ),
        ("another issuer", es256(&json!({"alg": "ES256", "kid": "k1"}), &stranger)),
        ("the issuer with a slash", es256(&json!({"alg": "ES256", "kid": "k1"}), &slashed)),
        ("oversize", format!("{}.{}.{sig}", b64(header.to_string()), "A".repeat(40_000))),
        ("garbage", "garbage".into()),
        ("three empty parts", "..".into()),
        ("four parts", format!("{token}.x")),
        ("not base64", "!!!.???.***".into()),
        ("JSON that is not an object", format!("{}.{}.{sig}", b64("[1]"), b64("\"x\""))),
        ("a number for iss", format!("{}.{}.{sig}", b64(header.to_string()), b64(r#"{"iss":5}"#))),
        ("the signature alone", sig.to_owned()),
    ];
    for (what, forged) in &cases {
        with_token(&stack, "/whoami", forged).await.assert_invalid_token(what);
    }
    // Two credentials at once, and a Bearer with nothing after it.
    let client = reqwest::Client::new();
    let two = client
        .get(format!("{}/whoami", stack.base))
        .header("authorization", format!("Bearer {token}"))
        .header("authorization", "Bearer garbage")
        .send()
        .await
        .unwrap();
    assert_eq!(two.status(), 401);
    let (status, _) = raw(stack.addr, "/whoami", &[("Authorization", "Bearer ")]).await;
    assert_eq!(status, 401);
    let (status, _) = raw(stack.addr, "/whoami", &[("Authorization", "Bearer \u{7f}x")]).await;
    assert!(status == 400 || status == 401, "{status}");

    // Each was refused for its own reason: the signature and algorithm checks, the issuer,
    // the size, the form.
    let metrics = stack.gateway.metrics.render(0);
    for (reason, count) in [("refused", 6), ("unknown-issuer", 2), ("too-long", 1), ("malformed", 8)] {
        let line = format!("deskgate_requests_total{{decision=\"bearer\",reason=\"{reason}\"}} {count}");
        assert!(metrics.lines().any(|l| l == line), "{line} in {metrics}");
    }
    // The gateway is still there, and the real token still works.
    assert_eq!(with_token(&stack, "/whoami", &token).await.status, 200);
}

#[tokio::test]
async fn failed_bearer_tokens_are_rate_limited_per_client() {
    let Some(issuer) = peer("DESKGATE_TEST_OIDC_ISSUER") else { return };
    let stack = stack(19845, &issuer, "create_accounts = true", 3).await;
    let token = id_token(&issuer, "deskgate-test", "alice@corp.example.com").await;
    assert_eq!(with_token(&stack, "/whoami", &token).await.status, 200, "successes do not count");
    for _ in 0..3 {
        with_token(&stack, "/whoami", "not.a.token").await.assert_invalid_token("garbage");
    }
    let limited = with_token(&stack, "/whoami", "not.a.token").await;
    assert_eq!(limited.status, 429, "{}", limited.body);
    assert!(limited.headers.get("retry-after").is_some());
    assert_eq!(with_token(&stack, "/whoami", &token).await.status, 429, "the client is over its limit");
    // The limit is per client: a guest's cookie path is not affected.
    assert_eq!(get(&stack, "/whoami", &[("accept", "application/json")]).await.status, 401);
}

#[tokio::test]
async fn a_token_for_nobody_with_an_account_is_refused_when_accounts_may_not_be_made() {
    let Some(issuer) = peer("DESKGATE_TEST_OIDC_ISSUER") else { return };
    let stack = stack(19846, &issuer, "create_accounts = false", 1000).await;
    let token = id_token(&issuer, "deskgate-test", "dave@other.example.com").await;
    with_token(&stack, "/whoami", &token).await.assert_invalid_token("no account, none may be made");
    // An address the provider has not verified is refused by the provider's own rules, as at
    // a sign-in.
    let unverified = id_token(&issuer, "deskgate-test", "carol@corp.example.com").await;
    with_token(&stack, "/whoami", &unverified).await.assert_invalid_token("an unverified address");
}
