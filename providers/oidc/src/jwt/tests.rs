use std::time::{Duration, UNIX_EPOCH};

use serde_json::{Value, json};

use super::*;
use crate::test_keys::{TestKey, compact};

const NOW: u64 = 1_800_000_000;
const ISSUER: &str = "https://id.example.com";

fn now() -> SystemTime {
    UNIX_EPOCH + Duration::from_secs(NOW)
}

fn claims() -> Value {
    json!({
        "iss": ISSUER,
        "sub": "1001",
        "aud": "deskgate",
        "exp": NOW + 3600,
        "iat": NOW - 5,
        "nonce": "n-123",
    })
}

fn check(claims: &Value, at: SystemTime) -> Result<(), IdTokenError> {
    let issuers = [ISSUER.to_owned(), "id.example.com".to_owned()];
    let expected = Expected {
        issuers: &issuers,
        audience: Audience::Client("deskgate"),
        nonce: Some("n-123"),
        skew: Duration::from_secs(60),
    };
    let Value::Object(map) = claims else { panic!("claims must be an object") };
    check_claims(map, &expected, at)
}

fn with(field: &str, value: Value) -> Value {
    let mut c = claims();
    c[field] = value;
    c
}

fn without(field: &str) -> Value {
    let mut c = claims();
    c.as_object_mut().expect("object").remove(field);
    c
}

#[test]
fn algorithm_names_round_trip_and_are_case_sensitive() {
    for alg in Algorithm::ALL {
        assert_eq!(Algorithm::from_name(alg.name()), Some(alg));
    }
    assert_eq!(Algorithm::from_name("rs256"), None);
    assert_eq!(Algorithm::from_name("none"), None);
    assert_eq!(Algorithm::from_name("HS256"), None);
}

#[test]
fn unsigned_tokens_are_refused_before_any_key_is_looked_at() {
    for alg in ["none", "None", "NONE"] {
        let token = compact(&json!({ "alg": alg }), &claims(), b"");
        assert_eq!(
            parse(&token, &Algorithm::ALL).map(|_| ()),
            Err(IdTokenError::AlgorithmNotAllowed(alg.into()))
        );
        // Also without the (empty) signature part at all.
        let bare = token.trim_end_matches('.').to_owned();
        assert!(parse(&bare, &Algorithm::ALL).is_err());
    }
}

#[test]
fn hmac_tokens_are_refused_whatever_the_key() {
    for alg in ["HS256", "HS384", "HS512"] {
        let token = compact(&json!({ "alg": alg, "kid": "k" }), &claims(), &[7; 32]);
        assert_eq!(
            parse(&token, &Algorithm::ALL).map(|_| ()),
            Err(IdTokenError::AlgorithmNotAllowed(alg.into()))
        );
    }
}

#[test]
fn algorithms_outside_the_configured_list_are_refused() {
    let key = TestKey::es256("k1");
    let token = key.sign(&claims());
    assert!(parse(&token, &[Algorithm::Es256]).is_ok());
    assert_eq!(
        parse(&token, &[Algorithm::Rs256]).map(|_| ()),
        Err(IdTokenError::AlgorithmNotAllowed("ES256".into()))
    );
}

#[test]
fn critical_header_extensions_are_refused() {
    let key = TestKey::es256("k1");
    let token = key.sign_with_header(&json!({ "alg": "ES256", "kid": "k1", "crit": ["exp"] }), &claims());
    assert_eq!(parse(&token, &Algorithm::ALL).map(|_| ()), Err(IdTokenError::CriticalHeader));
}

#[test]
fn malformed_tokens_are_refused() {
    let good = TestKey::es256("k1").sign(&claims());
    let parts: Vec<&str> = good.split('.').collect();
    let cases = [
        "".to_owned(),
        "abc".to_owned(),
        format!("{}.{}", parts[0], parts[1]),
        format!("{good}.extra"),
        format!("{}=.{}.{}", parts[0], parts[1], parts[2]),
        format!("{}.{}.{}", parts[0], "!!!", parts[2]),
        compact(&json!(["not", "an", "object"]), &claims(), b"sig"),
        compact(&json!({ "alg": "ES256", "kid": 5 }), &claims(), b"sig"),
        compact(&json!({ "kid": "k1" }), &claims(), b"sig"),
        format!("{}.{}.{}", parts[0], "a".repeat(MAX_TOKEN_BYTES), parts[2]),
    ];
    for token in cases {
        assert!(
            matches!(parse(&token, &Algorithm::ALL), Err(IdTokenError::Malformed(_))),
            "{:?} should be malformed",
            token.chars().take(80).collect::<String>()
        );
    }
}

#[test]
fn signing_input_is_header_and_payload_as_sent() {
    let token = TestKey::ed25519("k9").sign(&claims());
    let jws = parse(&token, &Algorithm::ALL).expect("parse");
    assert_eq!(jws.alg, Algorithm::EdDsa);
    assert_eq!(jws.kid.as_deref(), Some("k9"));
    assert_eq!(jws.signing_input, token.rsplit_once('.').expect("dot").0.as_bytes());
    assert_eq!(jws.claims.get("sub"), Some(&json!("1001")));
}

#[test]
fn good_claims_pass() {
    assert_eq!(check(&claims(), now()), Ok(()));
    assert_eq!(check(&with("iss", json!("id.example.com")), now()), Ok(()));
    assert_eq!(check(&with("exp", json!(NOW as f64 + 10.5)), now()), Ok(()));
}

#[test]
fn issuer_must_be_one_of_the_accepted() {
    assert_eq!(check(&with("iss", json!("https://evil.example")), now()), Err(IdTokenError::WrongIssuer));
    assert_eq!(check(&with("iss", json!(ISSUER.to_owned() + "/")), now()), Err(IdTokenError::WrongIssuer));
    assert_eq!(check(&without("iss"), now()), Err(IdTokenError::MissingClaim("iss")));
}

#[test]
fn subject_is_required_and_bounded() {
    assert_eq!(check(&without("sub"), now()), Err(IdTokenError::MissingClaim("sub")));
    assert_eq!(check(&with("sub", json!("")), now()), Err(IdTokenError::MissingClaim("sub")));
    assert_eq!(check(&with("sub", json!("x".repeat(256))), now()), Err(IdTokenError::MissingClaim("sub")));
    assert_eq!(check(&with("sub", json!(1001)), now()), Err(IdTokenError::MissingClaim("sub")));
}

#[test]
fn audience_must_contain_the_client() {
    assert_eq!(check(&with("aud", json!("someone-else")), now()), Err(IdTokenError::WrongAudience));
    assert_eq!(check(&with("aud", json!(["someone-else"])), now()), Err(IdTokenError::WrongAudience));
    assert_eq!(check(&with("aud", json!(["deskgate"])), now()), Ok(()));
    assert_eq!(check(&with("aud", json!(["deskgate", 5])), now()), Err(IdTokenError::MissingClaim("aud")));
    assert_eq!(check(&without("aud"), now()), Err(IdTokenError::MissingClaim("aud")));
}

#[test]
fn authorized_party_is_checked_and_required_with_several_audiences() {
    let mut several = with("aud", json!(["deskgate", "other-api"]));
    assert_eq!(check(&several, now()), Err(IdTokenError::WrongAuthorizedParty));
    several["azp"] = json!("other-api");
    assert_eq!(check(&several, now()), Err(IdTokenError::WrongAuthorizedParty));
    several["azp"] = json!("deskgate");
    assert_eq!(check(&several, now()), Ok(()));
    assert_eq!(check(&with("azp", json!("deskgate")), now()), Ok(()));
    assert_eq!(check(&with("azp", json!("other")), now()), Err(IdTokenError::WrongAuthorizedParty));
}

#[test]
fn bearer_audiences_come_from_the_allow_list_and_several_need_an_allowed_azp() {
    let issuers = [ISSUER.to_owned()];
    let allowed = ["helpdesk-api".to_owned(), "deskgate".to_owned()];
    let bearer = |claims: &Value| {
        let expected = Expected {
            issuers: &issuers,
            audience: Audience::AnyOf(&allowed),
            nonce: None,
            skew: Duration::from_secs(60),
        };
        let Value::Object(map) = claims else { panic!("claims must be an object") };
        check_claims(map, &expected, now())
    };
    assert_eq!(bearer(&with("aud", json!("helpdesk-api"))), Ok(()));
    assert_eq!(bearer(&with("aud", json!("someone-else"))), Err(IdTokenError::WrongAudience));
    // One audience: the authorized party is whichever client asked for the token.
    let mut single = with("aud", json!("helpdesk-api"));
    single["azp"] = json!("a-script");
    assert_eq!(bearer(&single), Ok(()));
    let mut several = with("aud", json!(["helpdesk-api", "other-api"]));
    assert_eq!(bearer(&several), Err(IdTokenError::WrongAuthorizedParty));
    several["azp"] = json!("other-api");
    assert_eq!(bearer(&several), Err(IdTokenError::WrongAuthorizedParty));
    several["azp"] = json!("helpdesk-api");
    assert_eq!(bearer(&several), Ok(()));
    assert_eq!(bearer(&with("iss", json!("https://other.example"))), Err(IdTokenError::WrongIssuer));
}

#[test]
fn expiry_allows_the_skew_and_no_more() {
    let exp = NOW + 3600;
    let at = |secs: u64| UNIX_EPOCH + Duration::from_secs(secs);
    assert_eq!(check(&claims(), at(exp + 59)), Ok(()));
    assert_eq!(check(&claims(), at(exp + 60)), Err(IdTokenError::Expired));
    assert_eq!(check(&claims(), at(exp + 86_400)), Err(IdTokenError::Expired));
    assert_eq!(check(&without("exp"), now()), Err(IdTokenError::MissingClaim("exp")));
    assert_eq!(check(&with("exp", json!("tomorrow")), now()), Err(IdTokenError::MissingClaim("exp")));
}

#[test]
fn tokens_from_the_future_are_refused_beyond_the_skew() {
    assert_eq!(check(&with("iat", json!(NOW + 60)), now()), Ok(()));
    assert_eq!(check(&with("iat", json!(NOW + 61)), now()), Err(IdTokenError::IssuedInFuture));
    assert_eq!(check(&without("iat"), now()), Err(IdTokenError::MissingClaim("iat")));
    assert_eq!(check(&with("nbf", json!(NOW + 30)), now()), Ok(()));
    assert_eq!(check(&with("nbf", json!(NOW + 120)), now()), Err(IdTokenError::NotYetValid));
}

#[test]
fn nonce_must_be_this_sign_ins() {
    assert_eq!(check(&with("nonce", json!("n-124")), now()), Err(IdTokenError::NonceMismatch));
    assert_eq!(check(&with("nonce", json!("n-12")), now()), Err(IdTokenError::NonceMismatch));
    assert_eq!(check(&without("nonce"), now()), Err(IdTokenError::MissingClaim("nonce")));
}

#[test]
fn constant_time_comparison_is_equality() {
    assert!(constant_time_eq("abc", "abc"));
    assert!(!constant_time_eq("abc", "abd"));
    assert!(!constant_time_eq("abc", "ab"));
    assert!(constant_time_eq("", ""));
}
