use std::sync::Mutex;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::UNIX_EPOCH;

use serde_json::{Value, json};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

use super::*;
use crate::jwt::parse;
use crate::test_keys::TestKey;

fn set(keys: &[&Value]) -> KeySet {
    KeySet::parse(json!({ "keys": keys }).to_string().as_bytes()).expect("key set")
}

fn claims() -> Value {
    json!({ "iss": "https://id.example.com", "sub": "1", "aud": "c", "exp": 2, "iat": 1, "nonce": "n" })
}

fn verdict(keys: &KeySet, token: &str) -> Verdict {
    keys.verify(&parse(token, &Algorithm::ALL).expect("parse"))
}

#[test]
fn unusable_keys_are_skipped_not_fatal() {
    let es = TestKey::es256("ec");
    let ed = TestKey::ed25519("ed");
    let mut short = es.jwk.clone();
    short["x"] = json!("AAAA");
    let mut encryption = es.jwk.clone();
    encryption["use"] = json!("enc");
    let mut wrap_only = es.jwk.clone();
    wrap_only["key_ops"] = json!(["wrapKey"]);
    let parsed = set(&[
        &json!({ "kty": "oct", "k": "c2VjcmV0", "kid": "hmac" }),
        &json!({ "kty": "EC", "crv": "P-521", "x": "AA", "y": "AA" }),
        &json!({ "kty": "OKP", "crv": "X25519", "x": ed.jwk["x"] }),
        &json!({ "kty": "RSA", "kid": "no-modulus", "e": "AQAB" }),
        &short,
        &encryption,
        &wrap_only,
        &es.jwk,
        &ed.jwk,
    ]);
    assert_eq!(parsed.len(), 2);
}

#[test]
fn documents_without_keys_are_refused() {
    assert!(KeySet::parse(b"not json").is_err());
    assert!(KeySet::parse(b"{}").is_err());
    assert!(KeySet::parse(br#"{"keys": {}}"#).is_err());
    assert_eq!(KeySet::parse(br#"{"keys": []}"#).map(|k| k.len()), Ok(0));
}

#[test]
fn rsa_moduli_lose_leading_zero_bytes() {
    let jwk = json!({ "kty": "RSA", "kid": "r", "n": b64(&[0, 0, 0xc1, 0x02]), "e": "AQAB" });
    let parsed = set(&[&jwk]);
    assert_eq!(parsed.keys[0].material, Material::Rsa { n: vec![0xc1, 0x02], e: vec![1, 0, 1] });
}

fn b64(bytes: &[u8]) -> String {
    crate::test_keys::b64(bytes)
}

#[test]
fn signatures_verify_with_the_key_named_by_kid() {
    let ec = TestKey::es256("ec");
    let ed = TestKey::ed25519("ed");
    let keys = set(&[&ec.jwk, &ed.jwk]);
    assert_eq!(verdict(&keys, &ec.sign(&claims())), Verdict::Valid);
    assert_eq!(verdict(&keys, &ed.sign(&claims())), Verdict::Valid);
    let fully_specified = ed.sign_with_header(&json!({ "alg": "Ed25519", "kid": "ed" }), &claims());
    assert_eq!(verdict(&keys, &fully_specified), Verdict::Valid);
    let unknown = TestKey::es256("elsewhere");
    assert_eq!(verdict(&keys, &unknown.sign(&claims())), Verdict::NoKey);
}

#[test]
fn a_known_kid_with_another_key_is_a_bad_signature() {
    let published = TestKey::es256("shared-kid");
    let impostor = TestKey::es256("shared-kid");
    let keys = set(&[&published.jwk]);
    assert_eq!(verdict(&keys, &impostor.sign(&claims())), Verdict::BadSignature);
    let token = published.sign(&claims());
    let (input, signature) = token.rsplit_once('.').expect("dot");
    let mut flipped = signature.as_bytes().to_vec();
    flipped[10] = if flipped[10] == b'A' { b'B' } else { b'A' };
    let tampered = format!("{input}.{}", String::from_utf8(flipped).expect("ascii"));
    assert_eq!(verdict(&keys, &tampered), Verdict::BadSignature);
}

#[test]
fn keys_only_fit_their_own_algorithm() {
    let ec = TestKey::es256("k");
    let mut pinned = ec.jwk.clone();
    pinned["alg"] = json!("ES384");
    assert_eq!(verdict(&set(&[&pinned]), &ec.sign(&claims())), Verdict::NoKey);
    // An EdDSA header cannot borrow a P-256 key with the same kid.
    let ed = TestKey::ed25519("k");
    assert_eq!(verdict(&set(&[&ec.jwk]), &ed.sign(&claims())), Verdict::NoKey);
}

#[test]
fn tokens_without_kid_try_every_fitting_key() {
    let first = TestKey::es256("a");
    let second = TestKey::es256("b");
    let keys = set(&[&first.jwk, &second.jwk]);
    let token = second.sign_with_header(&json!({ "alg": "ES256" }), &claims());
    assert_eq!(verdict(&keys, &token), Verdict::Valid);
}

/// A clock the test moves by hand.
#[derive(Debug)]
struct ManualClock(Mutex<SystemTime>);

impl ManualClock {
    fn new() -> ManualClock {
        ManualClock(Mutex::new(UNIX_EPOCH + Duration::from_secs(1_800_000_000)))
    }

    fn advance(&self, by: Duration) {
        let mut now = self.0.lock().expect("clock");
        *now += by;
    }
}

impl Clock for ManualClock {
    fn now(&self) -> SystemTime {
        *self.0.lock().expect("clock")
    }
}

/// A loopback HTTP server that answers every request with the current key set and counts
/// the requests, so the tests can see when deskgate fetches.
struct KeyServer {
    url: Url,
    body: Arc<Mutex<String>>,
    hits: Arc<AtomicUsize>,
}

impl KeyServer {
    async fn start(keys: &[&Value]) -> KeyServer {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.expect("bind");
        let url = Url::parse(&format!("http://{}/jwks", listener.local_addr().expect("addr"))).expect("url");
        let body = Arc::new(Mutex::new(json!({ "keys": keys }).to_string()));
        let hits = Arc::new(AtomicUsize::new(0));
        let (served, counter) = (body.clone(), hits.clone());
        tokio::spawn(async move {
            while let Ok((mut stream, _)) = listener.accept().await {
                let mut request = Vec::new();
                let mut buf = [0u8; 1024];
                while !request.windows(4).any(|w| w == b"\r\n\r\n") {
                    match stream.read(&mut buf).await {
                        Ok(0) | Err(_) => break,
                        Ok(n) => request.extend_from_slice(&buf[..n]),
                    }
                }
                counter.fetch_add(1, Ordering::SeqCst);
                let body = served.lock().expect("body").clone();
                let answer = format!(
                    "HTTP/1.1 200 OK\r\ncontent-type: application/json\r\ncontent-length: {}\r\n\
                     connection: close\r\n\r\n{body}",
                    body.len()
                );
                let _ = stream.write_all(answer.as_bytes()).await;
            }
        });
        KeyServer { url, body, hits }
    }

    fn serve(&self, keys: &[&Value]) {
        *self.body.lock().expect("body") = json!({ "keys": keys }).to_string();
    }

    /// Answers with something that is not a key set (a maintenance page).
    fn serve_broken(&self) {
        *self.body.lock().expect("body") = "<html>down for maintenance</html>".into();
    }

    fn hits(&self) -> usize {
        self.hits.load(Ordering::SeqCst)
    }
}

fn http() -> Http {
    Http::new(Duration::from_secs(5)).expect("client")
}

async fn check(jwks: &Jwks, token: &str, clock: &ManualClock) -> Result<(), crate::VerifyError> {
    let jws = parse(token, &Algorithm::ALL).expect("parse");
    jwks.verify(&jws, &http(), clock).await
}

fn unknown_key(result: Result<(), crate::VerifyError>) -> bool {
    matches!(result, Err(crate::VerifyError::Refused(IdTokenError::UnknownKey)))
}

#[tokio::test]
async fn an_unknown_kid_refetches_at_most_once_per_pause() {
    let old = TestKey::es256("old");
    let new = TestKey::ed25519("new");
    let server = KeyServer::start(&[&old.jwk]).await;
    let clock = ManualClock::new();
    let jwks = Jwks::new(server.url.clone());

    jwks.load(&http(), &clock).await.expect("first fetch");
    assert_eq!(server.hits(), 1);
    check(&jwks, &old.sign(&claims()), &clock).await.expect("old key");
    assert_eq!(server.hits(), 1, "a known key needs no fetch");

    // The provider rotates; moments after the last fetch deskgate does not ask again.
    server.serve(&[&old.jwk, &new.jwk]);
    assert!(unknown_key(check(&jwks, &new.sign(&claims()), &clock).await));
    assert_eq!(server.hits(), 1);

    clock.advance(REFETCH_PAUSE);
    check(&jwks, &new.sign(&claims()), &clock).await.expect("refetched key");
    assert_eq!(server.hits(), 2);

    // A kid that exists nowhere costs at most one fetch per pause.
    let stranger = TestKey::es256("stranger");
    assert!(unknown_key(check(&jwks, &stranger.sign(&claims()), &clock).await));
    assert_eq!(server.hits(), 2);
    clock.advance(REFETCH_PAUSE + Duration::from_secs(1));
    assert!(unknown_key(check(&jwks, &stranger.sign(&claims()), &clock).await));
    assert!(unknown_key(check(&jwks, &stranger.sign(&claims()), &clock).await));
    assert_eq!(server.hits(), 3);
}

#[tokio::test]
async fn a_bad_signature_under_a_known_kid_fetches_nothing() {
    let published = TestKey::es256("k");
    let impostor = TestKey::es256("k");
    let server = KeyServer::start(&[&published.jwk]).await;
    let clock = ManualClock::new();
    let jwks = Jwks::new(server.url.clone());
    jwks.load(&http(), &clock).await.expect("fetch");
    clock.advance(REFETCH_PAUSE * 10);
    let result = check(&jwks, &impostor.sign(&claims()), &clock).await;
    assert!(matches!(result, Err(crate::VerifyError::Refused(IdTokenError::BadSignature))));
    assert_eq!(server.hits(), 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concurrent_sign_ins_share_one_fetch() {
    let key = TestKey::es256("k");
    let server = KeyServer::start(&[&key.jwk]).await;
    let clock = Arc::new(ManualClock::new());
    let jwks = Arc::new(Jwks::new(server.url.clone()));
    let token = key.sign(&claims());
    let mut tasks = Vec::new();
    for _ in 0..8 {
        let (jwks, clock, token) = (jwks.clone(), clock.clone(), token.clone());
        tasks.push(tokio::spawn(async move { check(&jwks, &token, &clock).await.is_ok() }));
    }
    for task in tasks {
        assert!(task.await.expect("task"), "every sign-in verifies");
    }
    assert_eq!(server.hits(), 1);
}

#[tokio::test]
async fn a_key_the_provider_withdrew_is_refused_after_the_scheduled_refresh() {
    let old = TestKey::es256("old");
    let new = TestKey::es256("new");
    let server = KeyServer::start(&[&old.jwk]).await;
    let clock = ManualClock::new();
    let jwks = Jwks::new(server.url.clone());
    jwks.load(&http(), &clock).await.expect("first fetch");
    let stolen = old.sign(&claims());
    check(&jwks, &stolen, &clock).await.expect("the old key is published");

    // The provider withdraws the old key; until a refresh, the cached set still has it.
    server.serve(&[&new.jwk]);
    check(&jwks, &stolen, &clock).await.expect("cached");
    jwks.refresh_now(&http(), &clock).await.expect("scheduled refresh");
    assert_eq!(server.hits(), 2, "fetched again at once, whatever the pause");
    assert!(unknown_key(check(&jwks, &stolen, &clock).await), "a withdrawn key is no longer trusted");
    check(&jwks, &new.sign(&claims()), &clock).await.expect("the new key");

    // A provider that cannot be read keeps the keys there are.
    server.serve_broken();
    assert!(jwks.refresh_now(&http(), &clock).await.is_err());
    check(&jwks, &new.sign(&claims()), &clock).await.expect("still the last good set");
}
