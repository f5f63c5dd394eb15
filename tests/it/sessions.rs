//! Signing in and out: identity reaching the backend, session rotation, logout, expiry,
//! CSRF and attempt limits.

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use ed25519_dalek::{Signature, Verifier, VerifyingKey};

use crate::support::*;

/// The published key that verifies `token`, if any.
async fn verifying_kid(base: &str, token: &str) -> Option<String> {
    let jwks: serde_json::Value =
        reqwest::get(format!("{base}/.deskgate/jwks.json")).await.unwrap().json().await.unwrap();
    let (signed_part, sig) = token.rsplit_once('.').unwrap();
    let sig = Signature::from_slice(&URL_SAFE_NO_PAD.decode(sig).unwrap()).unwrap();
    jwks["keys"].as_array().unwrap().iter().find_map(|key| {
        let x = URL_SAFE_NO_PAD.decode(key["x"].as_str().unwrap()).unwrap();
        let vk = VerifyingKey::from_bytes(&x.try_into().unwrap()).unwrap();
        vk.verify(signed_part.as_bytes(), &sig).ok().map(|()| key["kid"].as_str().unwrap().to_owned())
    })
}

async fn published_kids(base: &str) -> usize {
    let jwks: serde_json::Value =
        reqwest::get(format!("{base}/.deskgate/jwks.json")).await.unwrap().json().await.unwrap();
    jwks["keys"].as_array().unwrap().len()
}

/// A reload (no key file: the key made at start) and a new `jwt.key_file` must never leave a
/// backend holding a token that no published key verifies: the generated key survives a
/// reload, and a replaced key stays in the JWKS until its last token has expired.
#[tokio::test]
async fn a_reload_or_a_new_key_file_never_strands_tokens_backends_already_hold() {
    let stack = start(Options::default()).await;
    let mut b = Browser::new(&stack);
    assert_eq!(b.sign_up("Kay", "kay@example.org", "a long enough password").await.status, 303);
    let seen = b.whoami().await;
    assert_eq!(seen["verified"], true);
    let first = seen["headers"]["x-deskgate-jwt"].as_str().unwrap().to_owned();
    let first_kid = verifying_kid(&stack.base, &first).await.expect("verifies at start");

    let reload = || async {
        let config = deskgate::config::load_file(&stack.config_path).unwrap_or_else(|d| panic!("{d:?}"));
        stack.reloader.reload(config).await.expect("reloads");
    };
    reload().await;
    assert_eq!(
        verifying_kid(&stack.base, &first).await.as_deref(),
        Some(first_kid.as_str()),
        "after a reload"
    );
    assert_eq!(published_kids(&stack.base).await, 1, "still the one key made at start");
    let seen = b.whoami().await;
    assert_eq!(seen["verified"], true, "the backend still verifies: {seen}");
    assert_eq!(seen["headers"]["x-deskgate-jwt"], first.as_str(), "and the token is reused");

    // A key file appears: new tokens come from it, the old key stays published meanwhile.
    std::fs::write(stack._dir.0.join("jwt.pem"), deskgate::jwt::generate_pem().unwrap()).unwrap();
    let mut text = std::fs::read_to_string(&stack.config_path).unwrap();
    text.push_str("\n[jwt]\nkey_file = \"jwt.pem\"\nttl = \"5m\"\n");
    std::fs::write(&stack.config_path, text).unwrap();
    reload().await;
    assert_eq!(published_kids(&stack.base).await, 2);
    assert_eq!(verifying_kid(&stack.base, &first).await.as_deref(), Some(first_kid.as_str()), "old token");
    // (The example helpdesk refetches the JWKS for an unknown key at most every 10 s, so the
    // new token is checked here against the published keys, as the first was.)
    let seen = b.whoami().await;
    let second = seen["headers"]["x-deskgate-jwt"].as_str().unwrap().to_owned();
    let second_kid = verifying_kid(&stack.base, &second).await.expect("new token verifies");
    assert_ne!(second_kid, first_kid, "signed anew with the key from the file");

    // Once every token the old key signed has expired, it is withdrawn.
    stack.clock.advance(299);
    assert_eq!(published_kids(&stack.base).await, 2);
    stack.clock.advance(1);
    assert_eq!(published_kids(&stack.base).await, 1);
    assert_eq!(verifying_kid(&stack.base, &second).await, Some(second_kid));
    assert_eq!(verifying_kid(&stack.base, &first).await, None);
}

#[tokio::test]
async fn sign_up_then_sign_in_gives_the_backend_identity_usergroups_and_a_verifiable_jwt() {
    let stack = start(Options::default()).await;
    let mut b = Browser::new(&stack);
    let created = b.sign_up("Zoë Example", "zoe@example.org", "a long enough password").await;
    assert_eq!(created.status, 303, "{}", created.body);
    b.sign_out().await;
    let signed = b.sign_in("ZOE@example.org", "a long enough password").await;
    assert_eq!(signed.status, 303, "{}", signed.body);
    assert_eq!(signed.location(), Some("/"));

    let seen = b.whoami().await;
    let h = &seen["headers"];
    assert_eq!(h["x-deskgate-email"], "zoe@example.org");
    assert_eq!(h["x-deskgate-name"], "Zo%C3%AB Example", "non-ASCII names are percent-encoded");
    assert_eq!(h["x-deskgate-usergroups"], "everyone,registered");
    assert_eq!(h["x-deskgate-permissions"], "kb.read,news.read,portal.view,tickets.read");
    assert_eq!(h["x-deskgate-provider"], "builtin");
    let user = h["x-deskgate-user"].as_str().unwrap();
    assert_eq!(user.len(), 36, "an opaque account id");
    assert_eq!(seen["verified"], true, "the helpdesk verified the JWT: {seen}");
    assert_eq!(seen["name"], "Zoë Example");

    // And the test checks the JWT itself against the published JWKS.
    let jwks: serde_json::Value =
        reqwest::get(format!("{}/.deskgate/jwks.json", stack.base)).await.unwrap().json().await.unwrap();
    let key = &jwks["keys"][0];
    assert_eq!(key["alg"], "EdDSA");
    let x = URL_SAFE_NO_PAD.decode(key["x"].as_str().unwrap()).unwrap();
    let vk = VerifyingKey::from_bytes(&x.try_into().unwrap()).unwrap();
    let token = h["x-deskgate-jwt"].as_str().unwrap();
    let (signed_part, sig) = token.rsplit_once('.').unwrap();
    let sig = Signature::from_slice(&URL_SAFE_NO_PAD.decode(sig).unwrap()).unwrap();
    vk.verify(signed_part.as_bytes(), &sig).expect("the JWT verifies against /.deskgate/jwks.json");
    let header: serde_json::Value =
        serde_json::from_slice(&URL_SAFE_NO_PAD.decode(signed_part.split('.').next().unwrap()).unwrap())
            .unwrap();
    assert_eq!(header["alg"], "EdDSA");
    assert_eq!(header["kid"], key["kid"]);
    let claims: serde_json::Value =
        serde_json::from_slice(&URL_SAFE_NO_PAD.decode(signed_part.split('.').nth(1).unwrap()).unwrap())
            .unwrap();
    assert_eq!(claims["sub"], user);
    assert_eq!(claims["iss"], stack.base);
    assert_eq!(claims["usergroups"], serde_json::json!(["everyone", "registered"]));
    assert!(claims["exp"].as_u64().unwrap() > claims["iat"].as_u64().unwrap());

    // The token is signed once and reused while fresh, not per request.
    let again = b.whoami().await;
    assert_eq!(again["headers"]["x-deskgate-jwt"], h["x-deskgate-jwt"]);
}

#[tokio::test]
async fn session_fixation_is_prevented_by_a_new_id_at_sign_in() {
    let stack = start(Options::default()).await;
    account(&stack, "fix@example.org", "Fix", "correct horse battery", &[]).await;
    let mut b = Browser::new(&stack);
    b.cookies.insert("deskgate_session".into(), "planted-by-an-attacker".into());
    b.sign_in("fix@example.org", "correct horse battery").await;
    let first = b.session_cookie().unwrap();
    assert_ne!(first, "planted-by-an-attacker");

    let mut attacker = Browser::new(&stack);
    attacker.cookies.insert("deskgate_session".into(), "planted-by-an-attacker".into());
    assert!(!attacker.is_signed_in().await, "the planted id is not a session");

    // Signing in again with a live session also rotates it and ends the old one.
    b.sign_in("fix@example.org", "correct horse battery").await;
    let second = b.session_cookie().unwrap();
    assert_ne!(first, second);
    let mut old = Browser::new(&stack);
    old.cookies.insert("deskgate_session".into(), first);
    assert!(!old.is_signed_in().await);
}

#[tokio::test]
async fn logout_ends_the_session_on_the_server_so_the_old_cookie_no_longer_works() {
    let stack = start(Options::default()).await;
    let mut b = signed_in(&stack, "out@example.org", &[]).await;
    let cookie = b.session_cookie().unwrap();
    assert!(b.is_signed_in().await);
    let out = b.sign_out().await;
    assert_eq!(out.status, 303);
    assert!(b.session_cookie().is_none(), "the cookie is cleared");
    let mut replay = Browser::new(&stack);
    replay.cookies.insert("deskgate_session".into(), cookie);
    assert!(!replay.is_signed_in().await, "the old cookie is dead on the server");
}

#[tokio::test]
async fn session_cookie_is_httponly_samesite_lax_and_secure_only_for_https() {
    let stack = start(Options::default()).await;
    account(&stack, "c@example.org", "C", "correct horse battery", &[]).await;
    let mut b = Browser::new(&stack);
    let page = b.sign_in("c@example.org", "correct horse battery").await;
    let set = page
        .headers
        .get_all("set-cookie")
        .iter()
        .map(|v| v.to_str().unwrap())
        .find(|v| v.starts_with("deskgate_session="))
        .unwrap();
    assert!(set.contains("HttpOnly") && set.contains("SameSite=Lax") && !set.contains("Secure"), "{set}");

    let https =
        start(Options { server: "public_url = \"https://help.example.com\"\n".into(), ..Default::default() })
            .await;
    account(&https, "c@example.org", "C", "correct horse battery", &[]).await;
    let mut b = Browser::new(&https);
    let page = b.sign_in("c@example.org", "correct horse battery").await;
    let set = page
        .headers
        .get_all("set-cookie")
        .iter()
        .map(|v| v.to_str().unwrap())
        .find(|v| v.starts_with("deskgate_session="))
        .unwrap();
    assert!(set.contains("; Secure"), "{set}");
}

#[tokio::test]
async fn idle_and_absolute_timeouts_end_sessions_on_the_injected_clock() {
    let head = "[session]\nidle_timeout = \"30m\"\nabsolute_timeout = \"2h\"\n";
    let stack = start(Options { head: head.into(), ..Default::default() }).await;
    let mut b = signed_in(&stack, "idle@example.org", &[]).await;
    stack.clock.advance(29 * 60);
    assert!(b.is_signed_in().await, "used within the idle timeout");
    stack.clock.advance(29 * 60);
    assert!(b.is_signed_in().await, "each use moves the idle deadline");
    stack.clock.advance(31 * 60);
    assert!(!b.is_signed_in().await, "idle for longer than 30m");

    let mut b = signed_in(&stack, "abs@example.org", &[]).await;
    for _ in 0..5 {
        stack.clock.advance(25 * 60);
        b.whoami().await;
    }
    assert!(!b.is_signed_in().await, "2h after sign-in, however busy");
}

#[tokio::test]
async fn login_form_without_a_valid_csrf_token_is_refused() {
    let stack = start(Options::default()).await;
    account(&stack, "csrf@example.org", "C", "correct horse battery", &[]).await;
    let mut b = Browser::new(&stack);
    b.get("/.deskgate/login").await;
    for token in ["", "forged", "AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA"] {
        let page = b
            .post(
                "/.deskgate/login",
                &[("email", "csrf@example.org"), ("password", "correct horse battery"), ("csrf", token)],
            )
            .await;
        assert_eq!(page.status, 403, "token {token:?}");
        assert!(page.body.contains("did not come from this site"));
        assert!(b.session_cookie().is_none());
    }
    // A token taken from another browser does not fit this browser's cookie.
    let mut other = Browser::new(&stack);
    let token = other.get("/.deskgate/login").await.field("csrf").unwrap();
    let page = b
        .post(
            "/.deskgate/login",
            &[("email", "csrf@example.org"), ("password", "correct horse battery"), ("csrf", &token)],
        )
        .await;
    assert_eq!(page.status, 403);
    // A cross-site post carries no cookie of ours at all.
    let mut cross = Browser::new(&stack);
    let page = cross
        .post(
            "/.deskgate/login",
            &[("email", "csrf@example.org"), ("password", "correct horse battery"), ("csrf", &token)],
        )
        .await;
    assert_eq!(page.status, 403);
}

#[tokio::test]
async fn failed_sign_ins_are_limited_per_account_and_per_address_with_a_clear_message() {
    let head = "[rate_limit]\nper_account_and_address = 3\nper_address = 6\nwindow = \"10m\"\n";
    let stack = start(Options { head: head.into(), ..Default::default() }).await;
    account(&stack, "target@example.org", "T", "correct horse battery", &[]).await;
    let mut b = Browser::new(&stack);
    for _ in 0..3 {
        let page = b.sign_in("target@example.org", "wrong guess").await;
        assert_eq!(page.status, 401);
        assert!(page.body.contains("The email or password is not correct."));
    }
    let page = b.sign_in("target@example.org", "correct horse battery").await;
    assert_eq!(
        page.status, 429,
        "even the right password waits once the account is over its limit from this address"
    );
    assert!(page.body.contains("Too many failed sign-in attempts. Please wait 10 minutes"), "{}", page.body);
    assert!(b.session_cookie().is_none());

    // The address limit: three more failures on other accounts reach six from this address.
    for n in 0..3 {
        b.sign_in(&format!("someone{n}@example.org"), "guess").await;
    }
    account(&stack, "fresh@example.org", "F", "correct horse battery", &[]).await;
    let page = b.sign_in("fresh@example.org", "correct horse battery").await;
    assert_eq!(page.status, 429, "this address is over its limit");

    // When the window has passed, sign-in works again.
    stack.clock.advance(11 * 60);
    let page = b.sign_in("target@example.org", "correct horse battery").await;
    assert_eq!(page.status, 303, "{}", page.body);
}

#[tokio::test]
async fn a_wrong_password_and_an_unknown_email_get_the_same_clear_page() {
    let stack = start(Options::default()).await;
    account(&stack, "known@example.org", "K", "correct horse battery", &[]).await;
    let mut b = Browser::new(&stack);
    let wrong = b.sign_in("known@example.org", "nope nope nope").await;
    let unknown = b.sign_in("unknown@example.org", "nope nope nope").await;
    assert_eq!(wrong.status, 401);
    assert_eq!(unknown.status, 401);
    let alert = |p: &Page| {
        p.body.split("role=\"alert\">").nth(1).map(|s| s.split('<').next().unwrap_or("").to_owned())
    };
    assert_eq!(alert(&wrong), alert(&unknown));
}
