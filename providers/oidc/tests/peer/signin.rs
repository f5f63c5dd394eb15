//! Whole sign-ins through `begin` and `complete`.

use deskgate_oidc::{OidcConfig, OidcError};
use deskgate_provider::RedirectProvider;

use crate::*;

const ALICE: (&str, &str) = ("alice@corp.example.com", "Passw0rd-alice");
const BOB: (&str, &str) = ("bob@gmail.example", "Passw0rd-bob");
const CAROL: (&str, &str) = ("carol@corp.example.com", "Passw0rd-carol");
const DAVE: (&str, &str) = ("dave@other.example.com", "Passw0rd-dave");

fn corp_only(issuer: &str) -> OidcConfig {
    OidcConfig { allowed_domains: vec!["corp.example.com".into()], ..config(issuer, "") }
}

#[tokio::test]
async fn alice_signs_in_with_her_groups_and_hosted_domain() {
    let issuer = require_issuer!();
    let _peer = PEER.read().await;
    let oidc = build(&corp_only(&issuer), None);

    let started = oidc.begin(CALLBACK).await.expect("begin");
    let request = url::Url::parse(&started.location).expect("location");
    let query: std::collections::HashMap<_, _> = request.query_pairs().into_owned().collect();
    assert!(started.location.starts_with(&format!("{issuer}/auth?")), "{}", started.location);
    assert_eq!(query["response_type"], "code");
    assert_eq!(query["client_id"], "deskgate-test");
    assert_eq!(query["redirect_uri"], CALLBACK);
    assert_eq!(query["scope"], "openid email profile");
    assert_eq!(query["state"], started.key);
    assert_eq!(query["code_challenge_method"], "S256");
    assert!(query["state"].len() >= 22 && query["nonce"].len() >= 22 && query["code_challenge"].len() == 43);
    assert!(!query.contains_key("hd"), "the hd hint is Google's only");
    assert!(!started.pending.contains(&query["code_challenge"]), "the verifier, not the challenge, is kept");

    let location = Browser::default().sign_in(&started.location, ALICE.0, ALICE.1).await.expect("form");
    let callback = callback_of(&location);
    assert_eq!(callback.get("state"), Some(started.key.as_str()));
    let id = oidc.complete(&started.pending, CALLBACK, &callback).await.expect("alice");
    assert_eq!(id.provider, "oidc.peer");
    assert_eq!(id.subject, "1001");
    assert_eq!(id.email.as_deref(), Some("alice@corp.example.com"));
    assert!(id.email_verified);
    assert_eq!(id.display_name.as_deref(), Some("Alice Example"));
    assert_eq!(id.groups, ["helpdesk-agents", "vips", "hd:corp.example.com"]);
    assert_eq!(id.attributes.get("hd"), Some(&vec!["corp.example.com".to_owned()]));
}

#[tokio::test]
async fn tokens_signed_with_es256_and_eddsa_verify_too() {
    let issuer = require_issuer!();
    let _peer = PEER.read().await;
    for suffix in ["-es256", "-eddsa"] {
        let oidc = build(&config(&issuer, suffix), None);
        let id = sign_in(&oidc, ALICE.0, ALICE.1).await.unwrap_or_else(|e| panic!("{suffix}: {e}"));
        assert_eq!(id.subject, "1001");
    }
}

#[tokio::test]
async fn an_algorithm_outside_the_allow_list_is_refused() {
    let issuer = require_issuer!();
    let _peer = PEER.read().await;
    let rs256_only = OidcConfig { algorithms: Some(vec!["RS256".into()]), ..config(&issuer, "-eddsa") };
    let (code, message) = refusal(sign_in(&build(&rs256_only, None), ALICE.0, ALICE.1).await);
    assert_eq!(code, "protocol");
    assert!(message.contains("algorithm `EdDSA` is not accepted"), "{message}");
}

#[tokio::test]
async fn an_unverified_email_is_refused() {
    let issuer = require_issuer!();
    let _peer = PEER.read().await;
    let (code, message) = refusal(sign_in(&build(&config(&issuer, ""), None), CAROL.0, CAROL.1).await);
    assert_eq!(code, "not-allowed");
    assert!(message.contains("not verified"), "{message}");
}

#[tokio::test]
async fn another_hosted_domain_is_refused_when_domains_are_set() {
    let issuer = require_issuer!();
    let _peer = PEER.read().await;
    let (code, message) = refusal(sign_in(&build(&corp_only(&issuer), None), DAVE.0, DAVE.1).await);
    assert_eq!(code, "not-allowed");
    assert!(message.contains("other.example.com"), "{message}");

    // Without the restriction dave is welcome, and his single-string groups claim counts.
    let id = sign_in(&build(&config(&issuer, ""), None), DAVE.0, DAVE.1).await.expect("dave");
    assert_eq!(id.groups, ["other-staff", "hd:other.example.com"]);
}

#[tokio::test]
async fn a_personal_account_is_refused_when_domains_are_set() {
    let issuer = require_issuer!();
    let _peer = PEER.read().await;
    let (code, message) = refusal(sign_in(&build(&corp_only(&issuer), None), BOB.0, BOB.1).await);
    assert_eq!(code, "not-allowed");
    assert!(message.contains("personal"), "{message}");

    let id = sign_in(&build(&config(&issuer, ""), None), BOB.0, BOB.1).await.expect("bob");
    assert!(id.groups.is_empty());
    assert!(!id.attributes.contains_key("hd"));
}

#[tokio::test]
async fn a_replayed_code_is_refused() {
    let issuer = require_issuer!();
    let _peer = PEER.read().await;
    let oidc = build(&config(&issuer, ""), None);
    let landed = land(&oidc, ALICE.0, ALICE.1).await;
    oidc.complete(&landed.started.pending, CALLBACK, &landed.callback).await.expect("first use");
    let (code, message) = refusal(oidc.complete(&landed.started.pending, CALLBACK, &landed.callback).await);
    assert_eq!(code, "protocol");
    assert!(message.contains("invalid_grant"), "{message}");
}

#[tokio::test]
async fn a_nonce_from_another_sign_in_is_refused() {
    let issuer = require_issuer!();
    let _peer = PEER.read().await;
    let oidc = build(&config(&issuer, ""), None);
    let landed = land(&oidc, ALICE.0, ALICE.1).await;
    let other = oidc.begin(CALLBACK).await.expect("begin");
    // The pending state of this sign-in, with the other sign-in's nonce in it: everything
    // else (state, PKCE verifier) stays right, so only the ID token's nonce can object.
    let mut pending: serde_json::Value = serde_json::from_str(&landed.started.pending).expect("json");
    let theirs: serde_json::Value = serde_json::from_str(&other.pending).expect("json");
    assert_ne!(pending["nonce"], theirs["nonce"]);
    pending["nonce"] = theirs["nonce"].clone();
    let (code, message) = refusal(oidc.complete(&pending.to_string(), CALLBACK, &landed.callback).await);
    assert_eq!(code, "protocol");
    assert!(message.contains("nonce does not match"), "{message}");
}

#[tokio::test]
async fn a_callback_for_another_sign_in_is_refused() {
    let issuer = require_issuer!();
    let _peer = PEER.read().await;
    let oidc = build(&config(&issuer, ""), None);
    let landed = land(&oidc, ALICE.0, ALICE.1).await;
    let other = oidc.begin(CALLBACK).await.expect("begin");
    let (code, message) = refusal(oidc.complete(&other.pending, CALLBACK, &landed.callback).await);
    assert_eq!(code, "protocol");
    assert!(message.contains("state"), "{message}");

    let elsewhere = "http://127.0.0.1:9/other-callback";
    let (_, message) = refusal(oidc.complete(&landed.started.pending, elsewhere, &landed.callback).await);
    assert!(message.contains("another URL"), "{message}");
}

#[tokio::test]
async fn cancelling_at_the_provider_is_reported_as_not_allowed() {
    let issuer = require_issuer!();
    let _peer = PEER.read().await;
    let oidc = build(&config(&issuer, ""), None);
    let started = oidc.begin(CALLBACK).await.expect("begin");
    let location = Browser::default().cancel(&started.location).await.expect("cancel");
    let callback = callback_of(&location);
    assert_eq!(callback.get("error"), Some("access_denied"));
    let (code, message) = refusal(oidc.complete(&started.pending, CALLBACK, &callback).await);
    assert_eq!(code, "not-allowed");
    assert!(message.contains("cancelled"), "{message}");
}

#[tokio::test]
async fn a_wrong_password_stays_at_the_provider() {
    let issuer = require_issuer!();
    let _peer = PEER.read().await;
    let oidc = build(&config(&issuer, ""), None);
    let started = oidc.begin(CALLBACK).await.expect("begin");
    let page = Browser::default()
        .sign_in(&started.location, ALICE.0, "Passw0rd-bob")
        .await
        .expect_err("no redirect to the callback");
    assert!(page.contains("Wrong email or password"), "{page}");
}

#[tokio::test]
async fn an_expired_or_future_token_is_refused() {
    let issuer = require_issuer!();
    let _peer = PEER.read().await;
    // The provider's ID tokens live one hour; two hours later they are stale.
    let late = build(&config(&issuer, ""), Some(TestClock::shifted(2 * 3600)));
    let (code, message) = refusal(sign_in(&late, ALICE.0, ALICE.1).await);
    assert_eq!(code, "protocol");
    assert!(message.contains("expired"), "{message}");

    let early = build(&config(&issuer, ""), Some(TestClock::shifted(-600)));
    let (_, message) = refusal(sign_in(&early, ALICE.0, ALICE.1).await);
    assert!(message.contains("issued in the future"), "{message}");

    // Within the skew (default 60 s) a slow clock is tolerated.
    let slightly = build(&config(&issuer, ""), Some(TestClock::shifted(-30)));
    sign_in(&slightly, ALICE.0, ALICE.1).await.expect("within the skew");
}

#[tokio::test]
async fn a_restarted_provider_is_followed_by_one_key_refetch() {
    let issuer = require_issuer!();
    let _peer = PEER.write().await;
    // A stopped clock makes "moments after the last fetch" exact, however long the restart
    // takes; the provider's tokens stay well within the skew of it.
    let clock = TestClock::stopped();
    let oidc = build(&config(&issuer, ""), Some(clock.clone()));
    sign_in(&oidc, ALICE.0, ALICE.1).await.expect("before the restart");

    let script = concat!(env!("CARGO_MANIFEST_DIR"), "/../../tests/peers/oidc.sh");
    let output =
        tokio::process::Command::new("bash").arg(script).arg("restart").output().await.expect("run oidc.sh");
    let said = String::from_utf8_lossy(&output.stdout);
    assert!(
        output.status.success(),
        "oidc.sh restart failed: {said}{}",
        String::from_utf8_lossy(&output.stderr)
    );
    assert!(
        said.contains(&format!("issuer {issuer}")),
        "{issuer} was not started by tests/peers/oidc.sh, which restarted another: {said}"
    );

    // The keys were fetched "now" by this clock: an unknown key does not refetch yet.
    let (code, message) = refusal(sign_in(&oidc, ALICE.0, ALICE.1).await);
    assert_eq!(code, "protocol");
    assert!(message.contains("no key of the provider"), "{message}");

    clock.stop_at_real_plus(30);
    let id = sign_in(&oidc, ALICE.0, ALICE.1).await.expect("after the refetch");
    assert_eq!(id.subject, "1001");
}

#[tokio::test]
async fn logout_goes_to_the_end_session_endpoint_when_enabled() {
    let issuer = require_issuer!();
    let _peer = PEER.read().await;
    let enabled = build(&OidcConfig { end_session: true, ..config(&issuer, "") }, None);
    assert_eq!(enabled.logout_url(Some("t"), "https://desk.example.com/"), None, "not discovered yet");
    enabled.discover().await.expect("discover");
    let url = enabled.logout_url(Some("hint"), "https://desk.example.com/bye").expect("logout URL");
    let parsed = url::Url::parse(&url).expect("url");
    assert_eq!(
        format!("{}{}", parsed.origin().ascii_serialization(), parsed.path()),
        format!("{issuer}/session/end")
    );
    let query: std::collections::HashMap<_, _> = parsed.query_pairs().into_owned().collect();
    assert_eq!(query["id_token_hint"], "hint");
    assert_eq!(query["client_id"], "deskgate-test");
    assert_eq!(query["post_logout_redirect_uri"], "https://desk.example.com/bye");

    let disabled = build(&config(&issuer, ""), None);
    disabled.discover().await.expect("discover");
    assert_eq!(disabled.logout_url(Some("hint"), "https://desk.example.com/bye"), None);
}

#[tokio::test]
async fn a_discovery_document_for_another_issuer_is_refused() {
    let issuer = require_issuer!();
    let _peer = PEER.read().await;
    let slash = build(&config(&format!("{issuer}/"), ""), None);
    match slash.discover().await {
        Err(OidcError::IssuerMismatch { found, .. }) => assert_eq!(found, issuer),
        other => panic!("expected an issuer mismatch, got {other:?}"),
    }
    let error = slash.begin(CALLBACK).await.expect_err("no sign-in without discovery");
    assert_eq!(error.code(), "unavailable");
}

#[tokio::test]
async fn a_wrong_client_secret_is_a_configuration_failure() {
    let issuer = require_issuer!();
    let _peer = PEER.read().await;
    let file = std::path::Path::new(env!("CARGO_TARGET_TMPDIR"))
        .join(format!("deskgate-oidc-it-{}.wrong", std::process::id()));
    std::fs::write(&file, "not-the-secret").expect("write");
    let wrong = OidcConfig { client_secret_file: Some(file.clone()), ..config(&issuer, "") };
    let (code, _) = refusal(sign_in(&build(&wrong, None), ALICE.0, ALICE.1).await);
    let _ = std::fs::remove_file(&file);
    assert_eq!(code, "unavailable");
}
