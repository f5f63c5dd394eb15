//! ID tokens crafted by the test, checked with `verify_id_token` against the real provider's
//! published keys: the attacks a verifier must not fall for, next to a real token.

use std::time::{SystemTime, UNIX_EPOCH};

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use deskgate_oidc::{Algorithm, IdTokenError, OidcConfig, VerifyError};
use ring::rand::SystemRandom;
use ring::signature::{self, EcdsaKeyPair};
use serde_json::{Value, json};

use crate::*;

const NONCE: &str = "test-nonce-0123456789";

fn b64(bytes: impl AsRef<[u8]>) -> String {
    URL_SAFE_NO_PAD.encode(bytes)
}

fn compact(header: &Value, claims: &Value, signature: &[u8]) -> String {
    format!("{}.{}.{}", b64(header.to_string()), b64(claims.to_string()), b64(signature))
}

fn claims(issuer: &str) -> Value {
    let now = SystemTime::now().duration_since(UNIX_EPOCH).expect("time").as_secs();
    json!({
        "iss": issuer, "sub": "1001", "aud": client_id(""), "iat": now, "exp": now + 600,
        "nonce": NONCE, "email": "alice@corp.example.com", "email_verified": true,
    })
}

async fn json_of(response: reqwest::Response) -> Value {
    serde_json::from_slice(&response.bytes().await.expect("body")).expect("JSON")
}

async fn document(url: &str) -> Value {
    json_of(reqwest::get(url).await.expect("GET")).await
}

/// The provider's published keys, by key type.
async fn published_key(issuer: &str, kty: &str) -> Value {
    let discovery = document(&format!("{issuer}/.well-known/openid-configuration")).await;
    let jwks = document(discovery["jwks_uri"].as_str().expect("jwks_uri")).await;
    jwks["keys"]
        .as_array()
        .expect("keys")
        .iter()
        .find(|k| k["kty"] == kty)
        .cloned()
        .unwrap_or_else(|| panic!("no {kty} key published"))
}

fn refused(result: Result<deskgate_oidc::IdToken, VerifyError>) -> IdTokenError {
    match result {
        Err(VerifyError::Refused(reason)) => reason,
        other => panic!("expected a refusal, got {other:?}"),
    }
}

/// Signs with a P-256 key the provider has never seen.
fn foreign_es256(kid: &str, claims: &Value) -> String {
    let rng = SystemRandom::new();
    let alg = &signature::ECDSA_P256_SHA256_FIXED_SIGNING;
    let pkcs8 = EcdsaKeyPair::generate_pkcs8(alg, &rng).expect("generate");
    let pair = EcdsaKeyPair::from_pkcs8(alg, pkcs8.as_ref(), &rng).expect("load");
    let input =
        format!("{}.{}", b64(json!({ "alg": "ES256", "kid": kid }).to_string()), b64(claims.to_string()));
    let signature = pair.sign(&rng, input.as_bytes()).expect("sign");
    format!("{input}.{}", b64(signature))
}

#[tokio::test]
async fn an_unsigned_token_is_refused() {
    let issuer = require_issuer!();
    let _peer = PEER.read().await;
    let oidc = build(&config(&issuer, ""), None);
    let rsa = published_key(&issuer, "RSA").await;
    for alg in ["none", "None", "NONE"] {
        let token = compact(&json!({ "alg": alg, "kid": rsa["kid"] }), &claims(&issuer), b"");
        assert_eq!(
            refused(oidc.verify_id_token(&token, NONCE).await),
            IdTokenError::AlgorithmNotAllowed(alg.into())
        );
    }
}

#[tokio::test]
async fn hs256_keyed_with_the_public_key_is_refused() {
    let issuer = require_issuer!();
    let _peer = PEER.read().await;
    let oidc = build(&config(&issuer, ""), None);
    let rsa = published_key(&issuer, "RSA").await;
    let modulus = URL_SAFE_NO_PAD.decode(rsa["n"].as_str().expect("n")).expect("n");
    // The classic confusion: the verifier's "key" for RS256 used as an HMAC secret.
    for secret in [rsa.to_string().into_bytes(), modulus] {
        let key = ring::hmac::Key::new(ring::hmac::HMAC_SHA256, &secret);
        let header = json!({ "alg": "HS256", "kid": rsa["kid"] });
        let input = format!("{}.{}", b64(header.to_string()), b64(claims(&issuer).to_string()));
        let tag = ring::hmac::sign(&key, input.as_bytes());
        let token = format!("{input}.{}", b64(tag));
        assert_eq!(
            refused(oidc.verify_id_token(&token, NONCE).await),
            IdTokenError::AlgorithmNotAllowed("HS256".into())
        );
    }
}

#[tokio::test]
async fn a_key_not_in_the_jwks_is_refused() {
    let issuer = require_issuer!();
    let _peer = PEER.read().await;
    let oidc = build(&config(&issuer, ""), None);
    let unknown = foreign_es256("not-published", &claims(&issuer));
    assert_eq!(refused(oidc.verify_id_token(&unknown, NONCE).await), IdTokenError::UnknownKey);

    // The same forgery under the kid of the provider's real P-256 key.
    let ec = published_key(&issuer, "EC").await;
    let impostor = foreign_es256(ec["kid"].as_str().expect("kid"), &claims(&issuer));
    assert_eq!(refused(oidc.verify_id_token(&impostor, NONCE).await), IdTokenError::BadSignature);
}

/// An ID token straight from the provider, obtained with the test's own authorization
/// request, so the crafted variants below start from the real thing.
async fn real_id_token(issuer: &str) -> String {
    let verifier = "a-test-pkce-verifier-that-is-long-enough-0123456789";
    let challenge = b64(ring::digest::digest(&ring::digest::SHA256, verifier.as_bytes()));
    let discovery = document(&format!("{issuer}/.well-known/openid-configuration")).await;
    let mut authorize =
        url::Url::parse(discovery["authorization_endpoint"].as_str().expect("auth")).expect("url");
    authorize
        .query_pairs_mut()
        .append_pair("response_type", "code")
        .append_pair("client_id", &client_id(""))
        .append_pair("redirect_uri", CALLBACK)
        .append_pair("scope", "openid email profile")
        .append_pair("state", "test-state-0123456789")
        .append_pair("nonce", NONCE)
        .append_pair("code_challenge", &challenge)
        .append_pair("code_challenge_method", "S256");
    let location = Browser::default()
        .sign_in(authorize.as_str(), "alice@corp.example.com", "Passw0rd-alice")
        .await
        .expect("sign in");
    let code = callback_of(&location).get("code").expect("code").to_owned();
    let response = reqwest::Client::new()
        .post(discovery["token_endpoint"].as_str().expect("token"))
        .basic_auth(client_id(""), Some(client_secret()))
        .form(&[
            ("grant_type", "authorization_code"),
            ("code", &code),
            ("redirect_uri", CALLBACK),
            ("code_verifier", verifier),
        ])
        .send()
        .await
        .expect("token request");
    let answer = json_of(response).await;
    answer["id_token"].as_str().unwrap_or_else(|| panic!("no id_token in {answer}")).to_owned()
}

#[tokio::test]
async fn a_real_token_verifies_and_altered_copies_do_not() {
    let issuer = require_issuer!();
    let _peer = PEER.read().await;
    let oidc = build(&config(&issuer, ""), None);
    let token = real_id_token(&issuer).await;

    let verified = oidc.verify_id_token(&token, NONCE).await.expect("the real token");
    assert_eq!(verified.alg, Algorithm::Rs256);
    assert_eq!(verified.claims["sub"], "1001");
    assert_eq!(verified.claims["hd"], "corp.example.com");

    assert_eq!(refused(oidc.verify_id_token(&token, "another-nonce").await), IdTokenError::NonceMismatch);

    // Another subject in the payload, the provider's signature kept.
    let mut parts = token.split('.');
    let (header, payload, signature) =
        (parts.next().expect("header"), parts.next().expect("payload"), parts.next().expect("signature"));
    let mut claims: Value =
        serde_json::from_slice(&URL_SAFE_NO_PAD.decode(payload).expect("b64")).expect("json");
    claims["sub"] = json!("1002");
    let altered = format!("{header}.{}.{signature}", b64(claims.to_string()));
    assert_eq!(refused(oidc.verify_id_token(&altered, NONCE).await), IdTokenError::BadSignature);

    // The same real token for a client that accepts only ES256.
    let es256_only = OidcConfig { algorithms: Some(vec!["ES256".into()]), ..config(&issuer, "") };
    assert_eq!(
        refused(build(&es256_only, None).verify_id_token(&token, NONCE).await),
        IdTokenError::AlgorithmNotAllowed("RS256".into())
    );
    // And for another client.
    let other_client = config(&issuer, "-es256");
    assert_eq!(
        refused(build(&other_client, None).verify_id_token(&token, NONCE).await),
        IdTokenError::WrongAudience
    );
}

#[tokio::test]
async fn an_expired_real_token_is_refused() {
    let issuer = require_issuer!();
    let _peer = PEER.read().await;
    let token = real_id_token(&issuer).await;
    let later = build(&config(&issuer, ""), Some(TestClock::shifted(3600 + 61)));
    assert_eq!(refused(later.verify_id_token(&token, NONCE).await), IdTokenError::Expired);
    let within_skew = build(&config(&issuer, ""), Some(TestClock::shifted(3600 - 120)));
    within_skew.verify_id_token(&token, NONCE).await.expect("still valid");
}
