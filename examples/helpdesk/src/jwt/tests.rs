//! Token checks against a real JWKS server on loopback, with time under the test's control.

#![allow(clippy::unwrap_used, reason = "a test reports failure by panicking")]

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use axum::Json;
use axum::routing::get;
use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use ed25519_dalek::{Signer as _, SigningKey};
use serde_json::{Value, json};
use tokio::net::TcpListener;

use super::jwks::REFETCH_INTERVAL;
use super::{TokenError, Verifier};
use crate::Settings;
use crate::clock::Clock;

const NOW: i64 = 1_750_000_000;

struct ManualClock {
    start: Instant,
    elapsed: Mutex<Duration>,
}

impl ManualClock {
    fn new() -> Arc<Self> {
        Arc::new(Self { start: Instant::now(), elapsed: Mutex::new(Duration::ZERO) })
    }

    fn advance(&self, by: Duration) {
        *self.elapsed.lock().unwrap() += by;
    }

    fn elapsed(&self) -> Duration {
        *self.elapsed.lock().unwrap()
    }
}

impl Clock for ManualClock {
    fn now(&self) -> Instant {
        self.start + self.elapsed()
    }

    fn unix_seconds(&self) -> i64 {
        NOW + i64::try_from(self.elapsed().as_secs()).unwrap()
    }
}

/// A JWKS endpoint whose document the test can change, counting how often it is fetched.
struct JwksServer {
    url: String,
    document: Arc<Mutex<Value>>,
    fetches: Arc<AtomicUsize>,
}

impl JwksServer {
    async fn start(document: Value) -> Self {
        let document = Arc::new(Mutex::new(document));
        let fetches = Arc::new(AtomicUsize::new(0));
        let app = axum::Router::new().route(
            "/.deskgate/jwks.json",
            get({
                let document = Arc::clone(&document);
                let fetches = Arc::clone(&fetches);
                move || async move {
                    fetches.fetch_add(1, Ordering::SeqCst);
                    Json(document.lock().unwrap().clone())
                }
            }),
        );
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let url = format!("http://{}/.deskgate/jwks.json", listener.local_addr().unwrap());
        tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
        Self { url, document, fetches }
    }

    fn publish(&self, document: Value) {
        *self.document.lock().unwrap() = document;
    }

    fn fetches(&self) -> usize {
        self.fetches.load(Ordering::SeqCst)
    }
}

fn jwk(kid: &str, key: &SigningKey) -> Value {
    json!({
        "kty": "OKP", "crv": "Ed25519", "alg": "EdDSA", "use": "sig", "kid": kid,
        "x": URL_SAFE_NO_PAD.encode(key.verifying_key().as_bytes()),
    })
}

fn key(seed: u8) -> SigningKey {
    SigningKey::from_bytes(&[seed; 32])
}

fn claims() -> Value {
    json!({
        "iss": "https://desk.example.com", "aud": "deskgate", "sub": "acc-7",
        "iat": NOW, "exp": NOW + 300, "email": "zoe@example.com", "name": "Zoë",
        "usergroups": ["everyone", "registered"], "permissions": ["kb.read"],
        "provider": "builtin",
    })
}

fn encode(value: &Value) -> String {
    URL_SAFE_NO_PAD.encode(serde_json::to_vec(value).unwrap())
}

fn sign(key: &SigningKey, header: &Value, claims: &Value) -> String {
    let input = format!("{}.{}", encode(header), encode(claims));
    let signature = key.sign(input.as_bytes());
    format!("{input}.{}", URL_SAFE_NO_PAD.encode(signature.to_bytes()))
}

fn token(key: &SigningKey, kid: &str, claims: &Value) -> String {
    sign(key, &json!({"alg": "EdDSA", "typ": "JWT", "kid": kid}), claims)
}

async fn setup(document: Value) -> (JwksServer, Arc<ManualClock>, Verifier) {
    let server = JwksServer::start(document).await;
    let clock = ManualClock::new();
    let mut settings = Settings::new(server.url.clone());
    settings.issuer = Some("https://desk.example.com/".to_owned());
    let verifier = Verifier::new(settings, clock.clone());
    (server, clock, verifier)
}

#[tokio::test]
async fn a_token_signed_by_a_published_key_verifies() {
    let (_server, _clock, verifier) = setup(json!({"keys": [jwk("k1", &key(1))]})).await;
    let verified = verifier.verify(&token(&key(1), "k1", &claims())).await.unwrap();
    assert_eq!(verified.claims.sub, "acc-7");
    assert_eq!(verified.claims.name.as_deref(), Some("Zoë"));
    assert_eq!(verified.raw, claims());
}

#[tokio::test]
async fn a_token_signed_by_another_key_is_refused() {
    let (_server, _clock, verifier) = setup(json!({"keys": [jwk("k1", &key(1))]})).await;
    let error = verifier.verify(&token(&key(2), "k1", &claims())).await;
    assert!(matches!(error, Err(TokenError::BadSignature)), "{error:?}");
}

#[tokio::test]
async fn a_token_with_altered_claims_is_refused() {
    let (_server, _clock, verifier) = setup(json!({"keys": [jwk("k1", &key(1))]})).await;
    let genuine = token(&key(1), "k1", &claims());
    let mut parts: Vec<&str> = genuine.split('.').collect();
    let mut forged = claims();
    forged["permissions"] = json!(["kb.read", "chat.support"]);
    let forged = encode(&forged);
    parts[1] = &forged;
    let error = verifier.verify(&parts.join(".")).await;
    assert!(matches!(error, Err(TokenError::BadSignature)), "{error:?}");
}

#[tokio::test]
async fn other_algorithms_are_refused_without_fetching_keys() {
    let (server, _clock, verifier) = setup(json!({"keys": [jwk("k1", &key(1))]})).await;
    let unsigned = format!("{}.{}.", encode(&json!({"alg": "none", "kid": "k1"})), encode(&claims()));
    let error = verifier.verify(&unsigned).await;
    assert!(matches!(error, Err(TokenError::UnsupportedAlgorithm)), "{error:?}");

    let hmac = sign(&key(1), &json!({"alg": "HS256", "kid": "k1"}), &claims());
    let error = verifier.verify(&hmac).await;
    assert!(matches!(error, Err(TokenError::UnsupportedAlgorithm)), "{error:?}");
    assert_eq!(server.fetches(), 0);
}

#[tokio::test]
async fn malformed_tokens_and_headers_are_refused() {
    let (_server, _clock, verifier) = setup(json!({"keys": [jwk("k1", &key(1))]})).await;
    for garbage in ["", "abc", "a.b", "a.b.c.d", "!!.??.**"] {
        let error = verifier.verify(garbage).await;
        assert!(matches!(error, Err(TokenError::Malformed)), "{garbage}: {error:?}");
    }
    let no_kid = sign(&key(1), &json!({"alg": "EdDSA"}), &claims());
    let error = verifier.verify(&no_kid).await;
    assert!(matches!(error, Err(TokenError::MissingKeyId)), "{error:?}");
    let crit = sign(&key(1), &json!({"alg": "EdDSA", "kid": "k1", "crit": ["b64"], "b64": false}), &claims());
    let error = verifier.verify(&crit).await;
    assert!(matches!(error, Err(TokenError::CriticalHeader)), "{error:?}");
}

#[tokio::test]
async fn expiry_is_checked_with_a_small_leeway() {
    let (_server, clock, verifier) = setup(json!({"keys": [jwk("k1", &key(1))]})).await;
    let mut claims = claims();
    claims["exp"] = json!(NOW - 10);
    assert!(verifier.verify(&token(&key(1), "k1", &claims)).await.is_ok());

    clock.advance(Duration::from_secs(60));
    let error = verifier.verify(&token(&key(1), "k1", &claims)).await;
    assert!(matches!(error, Err(TokenError::Expired)), "{error:?}");

    claims["exp"] = json!(NOW + 3600);
    claims["nbf"] = json!(NOW + 600);
    let error = verifier.verify(&token(&key(1), "k1", &claims)).await;
    assert!(matches!(error, Err(TokenError::NotYetValid)), "{error:?}");
}

#[tokio::test]
async fn issuer_and_audience_must_match_when_configured() {
    let (_server, _clock, verifier) = setup(json!({"keys": [jwk("k1", &key(1))]})).await;
    let mut claims = claims();
    claims["aud"] = json!(["billing", "deskgate"]);
    assert!(verifier.verify(&token(&key(1), "k1", &claims)).await.is_ok());

    claims["aud"] = json!("billing");
    let error = verifier.verify(&token(&key(1), "k1", &claims)).await;
    assert!(matches!(error, Err(TokenError::WrongAudience)), "{error:?}");

    claims["aud"] = json!("deskgate");
    claims["iss"] = json!("https://evil.example.com");
    let error = verifier.verify(&token(&key(1), "k1", &claims)).await;
    assert!(matches!(error, Err(TokenError::WrongIssuer)), "{error:?}");

    claims.as_object_mut().unwrap().remove("iss");
    let error = verifier.verify(&token(&key(1), "k1", &claims)).await;
    assert!(matches!(error, Err(TokenError::WrongIssuer)), "{error:?}");
}

#[tokio::test]
async fn an_unknown_key_id_refetches_the_jwks_at_most_once_per_interval() {
    let (server, clock, verifier) = setup(json!({"keys": [jwk("k1", &key(1))]})).await;
    assert!(verifier.verify(&token(&key(1), "k1", &claims())).await.is_ok());
    assert!(verifier.verify(&token(&key(1), "k1", &claims())).await.is_ok());
    assert_eq!(server.fetches(), 1, "a known key is served from the cache");

    // deskgate rotates its key right after the first fetch: too soon to fetch again.
    server.publish(json!({"keys": [jwk("k2", &key(2))]}));
    let error = verifier.verify(&token(&key(2), "k2", &claims())).await;
    assert!(matches!(error, Err(TokenError::UnknownKey)), "{error:?}");
    assert_eq!(server.fetches(), 1);

    clock.advance(REFETCH_INTERVAL);
    assert!(verifier.verify(&token(&key(2), "k2", &claims())).await.is_ok());
    assert_eq!(server.fetches(), 2, "the unknown key id triggered a refetch");

    // Made-up key ids do not turn into a fetch each.
    for kid in ["k3", "k4", "k1"] {
        let error = verifier.verify(&token(&key(1), kid, &claims())).await;
        assert!(matches!(error, Err(TokenError::UnknownKey)), "{error:?}");
    }
    assert_eq!(server.fetches(), 2);
}

#[tokio::test]
async fn unusable_keys_in_the_set_are_skipped() {
    let document = json!({"keys": [
        {"kty": "RSA", "kid": "rsa", "n": "AQAB", "e": "AQAB"},
        {"kty": "OKP", "crv": "X25519", "kid": "x", "x": URL_SAFE_NO_PAD.encode([9u8; 32])},
        {"kty": "OKP", "crv": "Ed25519", "kid": "short", "x": "AAAA"},
        {"kty": "OKP", "crv": "Ed25519", "kid": "enc", "use": "enc",
         "x": URL_SAFE_NO_PAD.encode(key(3).verifying_key().as_bytes())},
        jwk("k1", &key(1)),
    ]});
    let (_server, _clock, verifier) = setup(document).await;
    assert!(verifier.verify(&token(&key(1), "k1", &claims())).await.is_ok());
    let error = verifier.verify(&token(&key(3), "enc", &claims())).await;
    assert!(matches!(error, Err(TokenError::UnknownKey)), "{error:?}");
}

#[tokio::test]
async fn an_unreachable_jwks_fails_closed() {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}/.deskgate/jwks.json", listener.local_addr().unwrap());
    drop(listener);
    let verifier = Verifier::new(Settings::new(url), ManualClock::new());
    let error = verifier.verify(&token(&key(1), "k1", &claims())).await;
    assert!(matches!(error, Err(TokenError::KeysUnavailable)), "{error:?}");
}
