//! Security keys and passkeys as a second factor, with Chromium's W3C virtual authenticator:
//! registering a key on `/.deskgate/account/keys`, the key step after a correct password,
//! removing the key; and, at the HTTP level, the answers an attacker can make up — another
//! account's key (signed with its real private key), replays, a counter that went back,
//! malformed JSON.
//!
//! WebAuthn needs a secure context: Chromium talks to the gateway at `http://localhost`.

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use deskgate::accounts::KeyStore;
use deskgate::session::{SessionKey, SessionStore};
use ring::rand::SystemRandom;
use ring::signature::{ECDSA_P256_SHA256_ASN1_SIGNING, EcdsaKeyPair};
use serde_json::{Value, json};
use sha2::{Digest, Sha256};

use crate::browser::Chromium;
use crate::support::*;

const PASSWORD: &str = "correct horse battery";

/// A gateway at `http://localhost:{port}` with `localhost` as the relying party.
async fn stack_at(port: u16, head: &str) -> Stack {
    start(Options {
        port: Some(port),
        server: format!("public_url = \"http://localhost:{port}\""),
        head: format!("[webauthn]\nrp_id = \"localhost\"\n{head}"),
        ..Default::default()
    })
    .await
}

/// Signs in through the login form; the page it lands on is the caller's to wait for.
async fn chrome_password(chrome: &Chromium, site: &str, email: &str) {
    chrome.go(&format!("{site}/.deskgate/login")).await;
    chrome.type_into("#username", email).await;
    chrome.type_into("#password", PASSWORD).await;
    chrome.click("form[action$='/login'] button").await;
}

/// Registers a key named `name` on the keys page (signed in already).
async fn chrome_register(chrome: &Chromium, site: &str, name: &str) {
    chrome.go(&format!("{site}/.deskgate/account/keys")).await;
    chrome.type_into("#name", name).await;
    chrome.click("#add button").await;
    chrome.wait_for_text(&format!("<td class=\"key-name\">{name}</td>")).await;
}

/// Whether the backend was told who is signed in, as Chromium sees `/whoami`.
async fn chrome_identity(chrome: &Chromium, site: &str) -> Value {
    chrome.go(&format!("{site}/whoami")).await;
    let text = chrome
        .call(
            reqwest::Method::POST,
            "/execute/sync",
            json!({
                "script": "return document.body.innerText", "args": []
            }),
        )
        .await;
    serde_json::from_str(text.as_str().unwrap_or_default()).unwrap_or_else(|e| panic!("whoami ({e}): {text}"))
}

#[tokio::test]
async fn chromium_registers_a_passkey_and_signs_in_with_password_and_key_until_it_is_removed() {
    let Some(driver) = peer("DESKGATE_TEST_CHROMEDRIVER") else { return };
    let stack = stack_at(19970, "").await;
    let site = "http://localhost:19970";
    let ann = account(&stack, "ann@example.org", "Ann Key", PASSWORD, &[]).await;
    let mut early = signed_in_as(&stack, "ann@example.org").await;
    let chrome = Chromium::start(&driver).await;
    let authenticator = chrome.add_authenticator().await;

    // No key yet: the password alone signs in.
    chrome_password(&chrome, site, "ann@example.org").await;
    chrome.wait_for_url("the home page", |u| u == format!("{site}/")).await;
    chrome_register(&chrome, site, "Office key").await;
    let keys = stack.gateway.accounts.keys(&ann).await.expect("keys");
    assert_eq!(keys.len(), 1);
    assert_eq!(keys[0].name, "Office key");

    // A session from before the key used no second factor: it may neither add a key of its
    // own nor take this one away.
    let page = early.get("/.deskgate/account/keys").await;
    let (csrf, id) = (page.field("csrf").expect("csrf"), page.field("id").expect("the key's id"));
    let begun = early.post("/.deskgate/account/keys/begin", &[("csrf", &csrf)]).await;
    assert_eq!(begun.status, 403, "{}", begun.body);
    let removed = early.post("/.deskgate/account/keys/remove", &[("csrf", &csrf), ("id", &id)]).await;
    assert_eq!(removed.status, 403, "{}", removed.body);
    assert_eq!(stack.gateway.accounts.keys(&ann).await.expect("keys").len(), 1, "the key stays");

    // Sign out; the password now leads to the key step, and the key signs in.
    chrome.go(&format!("{site}/.deskgate/logout")).await;
    chrome.click("form[action$='/logout'] button").await;
    chrome.wait_for_url("the login page", |u| u.contains("/.deskgate/login")).await;
    chrome_password(&chrome, site, "ann@example.org").await;
    chrome.wait_for_url("the key step", |u| u.ends_with("/.deskgate/login/key")).await;
    assert!(chrome.cookie("deskgate_session").await.is_none(), "no session before the key answered");
    chrome.click("#use-key").await;
    chrome.wait_for_url("the home page", |u| u == format!("{site}/")).await;
    let seen = chrome_identity(&chrome, site).await;
    assert_eq!(seen["headers"]["x-deskgate-user"], ann.as_str(), "{seen}");
    assert_eq!(seen["headers"]["x-deskgate-email"], "ann@example.org", "{seen}");
    let cookie = chrome.cookie("deskgate_session").await.expect("a session cookie");
    let session = stack.gateway.sessions.get(&SessionKey::from_cookie(&cookie)).await.expect("store");
    assert_eq!(session.expect("the session").amr, ["pwd", "hwk", "mfa"]);
    assert!(
        stack.gateway.accounts.keys(&ann).await.expect("keys")[0].last_used_at.is_some(),
        "the use is recorded"
    );

    // This session is kept aside (to remove the key later); Chromium becomes a guest and
    // loses its authenticator.
    let mut keeper = Browser::new(&stack);
    keeper.cookies.insert("deskgate_session".into(), cookie);
    assert!(keeper.is_signed_in().await);
    chrome.delete_cookie("deskgate_session").await;
    chrome.remove_authenticator(&authenticator).await;

    // Without the authenticator the key step lets nobody in.
    chrome_password(&chrome, site, "ann@example.org").await;
    chrome.wait_for_url("the key step", |u| u.ends_with("/.deskgate/login/key")).await;
    chrome.click("#use-key").await;
    tokio::time::sleep(std::time::Duration::from_secs(2)).await;
    assert!(chrome.url().await.ends_with("/.deskgate/login/key"), "still asked for the key");
    assert!(chrome.cookie("deskgate_session").await.is_none());
    let seen = chrome_identity(&chrome, site).await;
    assert!(seen["headers"].get("x-deskgate-user").is_none(), "a guest: {seen}");
    chrome.go(&format!("{site}/api/tickets")).await;
    chrome.wait_for_url("the login page", |u| u.contains("/.deskgate/login?")).await;

    // A password-only client gets the step and nothing past it.
    let mut pending = Browser::new(&stack);
    let page = pending.sign_in("ann@example.org", PASSWORD).await;
    assert_eq!((page.status, page.location()), (303, Some("/.deskgate/login/key")), "{}", page.body);
    assert!(pending.session_cookie().is_none());
    assert!(pending.cookies.contains_key("deskgate_session_keystep"));
    assert!(!pending.is_signed_in().await);
    let api = pending.get("/api/tickets").await;
    assert_eq!(api.status, 302, "{}", api.body);
    assert!(api.location().is_some_and(|l| l.starts_with("/.deskgate/login?")), "sent to sign in");
    assert_eq!(pending.get("/.deskgate/account/keys").await.status, 303, "sent to sign in");
    assert_ne!(pending.get("/.deskgate/admin").await.status, 200);

    // Removing the key (from the kept session) makes the password enough again.
    let page = keeper.get("/.deskgate/account/keys").await;
    assert_eq!(page.status, 200, "{}", page.body);
    assert!(page.body.contains("Office key"));
    let (csrf, id) = (page.field("csrf").expect("csrf"), page.field("id").expect("the key's id"));
    let removed = keeper.post("/.deskgate/account/keys/remove", &[("csrf", &csrf), ("id", &id)]).await;
    assert_eq!(removed.status, 303, "{}", removed.body);
    assert!(stack.gateway.accounts.keys(&ann).await.expect("keys").is_empty());
    chrome_password(&chrome, site, "ann@example.org").await;
    chrome.wait_for_url("the home page", |u| u == format!("{site}/")).await;
    let seen = chrome_identity(&chrome, site).await;
    assert_eq!(seen["headers"]["x-deskgate-user"], ann.as_str(), "{seen}");
    chrome.quit().await;
}

/// A credential held by the virtual authenticator: its id and private key.
struct Held {
    id: String,
    pair: EcdsaKeyPair,
}

fn b64(bytes: &[u8]) -> String {
    URL_SAFE_NO_PAD.encode(bytes)
}

/// An assertion as a browser would post it, made with `key`'s real private key for
/// `challenge`, from `origin`, with the signature counter at `count`.
fn assertion(key: &Held, challenge: &str, origin: &str, count: u32) -> String {
    let client =
        json!({"type": "webauthn.get", "challenge": challenge, "origin": origin, "crossOrigin": false})
            .to_string();
    let mut data = Sha256::digest(b"localhost").to_vec();
    data.push(0x05); // user present and verified
    data.extend(count.to_be_bytes());
    let signed = [data.clone(), Sha256::digest(client.as_bytes()).to_vec()].concat();
    let signature = key.pair.sign(&SystemRandom::new(), &signed).expect("sign");
    json!({
        "id": key.id, "rawId": key.id, "type": "public-key", "extensions": {},
        "response": {
            "authenticatorData": b64(&data), "clientDataJSON": b64(client.as_bytes()),
            "signature": b64(signature.as_ref()), "userHandle": null,
        },
    })
    .to_string()
}

/// The password step for `email`; returns the challenge of the key step that follows.
async fn key_step(b: &mut Browser, email: &str) -> String {
    let page = b.sign_in(email, PASSWORD).await;
    assert_eq!((page.status, page.location()), (303, Some("/.deskgate/login/key")), "{}", page.body);
    assert!(b.session_cookie().is_none(), "no session yet");
    key_step_options(b).await
}

/// The challenge the key step page offers.
async fn key_step_options(b: &mut Browser) -> String {
    let step = b.get("/.deskgate/login/key").await;
    challenge_of(&step)
}

/// The challenge a page that asks for a key offers.
fn challenge_of(step: &Page) -> String {
    assert_eq!(step.status, 200, "{}", step.body);
    let options =
        step.body.split("<script type=\"application/json\" id=\"options\">").nth(1).expect("options");
    let options: Value = serde_json::from_str(options.split("</script>").next().expect("end")).expect("json");
    options["publicKey"]["challenge"].as_str().expect("a challenge").to_owned()
}

async fn answer(b: &mut Browser, credential: &str) -> Page {
    let csrf = b.csrf().await;
    b.post("/.deskgate/login/key", &[("csrf", &csrf), ("credential", credential)]).await
}

#[tokio::test]
async fn another_accounts_key_a_replayed_or_forged_assertion_and_a_counter_gone_back_are_refused() {
    let Some(driver) = peer("DESKGATE_TEST_CHROMEDRIVER") else { return };
    let (smtp, mut mails) = crate::signup::smtp_server().await;
    let reset = format!(
        "[password_reset]\nenabled = true\n[smtp]\nhost = \"127.0.0.1\"\nport = {smtp}\nfrom = \"noreply@example.org\"\n"
    );
    let stack = stack_at(19971, &reset).await;
    let site = "http://localhost:19971";
    let ann = account(&stack, "ann@example.org", "Ann", PASSWORD, &[]).await;
    let bob = account(&stack, "bob@example.org", "Bob", PASSWORD, &[]).await;

    // Each registers a passkey on the same authenticator, through the page.
    let chrome = Chromium::start(&driver).await;
    let authenticator = chrome.add_authenticator().await;
    for email in ["ann@example.org", "bob@example.org"] {
        chrome_password(&chrome, site, email).await;
        chrome.wait_for_url("the home page", |u| u == format!("{site}/")).await;
        chrome_register(&chrome, site, "Passkey").await;
        chrome.delete_cookie("deskgate_session").await;
    }
    let held = chrome.authenticator_credentials(&authenticator).await;
    chrome.remove_authenticator(&authenticator).await;
    chrome.quit().await;
    let key_of = |account: String| {
        let held = held.clone();
        let stack = &stack;
        async move {
            let stored = stack.gateway.accounts.keys(&account).await.expect("keys");
            let c = held
                .iter()
                .find(|c| c["credentialId"].as_str() == Some(stored[0].credential_id.as_str()))
                .unwrap_or_else(|| panic!("the authenticator holds the key: {held:?}"));
            let pkcs8 = URL_SAFE_NO_PAD.decode(c["privateKey"].as_str().expect("private key")).expect("b64");
            let pair =
                EcdsaKeyPair::from_pkcs8(&ECDSA_P256_SHA256_ASN1_SIGNING, &pkcs8, &SystemRandom::new())
                    .expect("a P-256 key");
            (Held { id: stored[0].credential_id.clone(), pair }, c["signCount"].as_u64().unwrap_or(0) as u32)
        }
    };
    let (ann_key, _) = key_of(ann.clone()).await;
    let (bob_key, mut count) = key_of(bob.clone()).await;

    // Bob's password, then Ann's key, correctly signed for Bob's challenge: refused.
    let mut b = Browser::new(&stack);
    let challenge = key_step(&mut b, "bob@example.org").await;
    let refused = answer(&mut b, &assertion(&ann_key, &challenge, site, 1000)).await;
    assert_eq!(refused.status, 401, "{}", refused.body);
    assert!(!b.is_signed_in().await);
    // The step is used up: not even Bob's own key finishes it now.
    count += 1;
    let used = answer(&mut b, &assertion(&bob_key, &challenge, site, count)).await;
    assert_eq!(used.status, 400, "{}", used.body);
    assert!(!b.is_signed_in().await);

    // Bob's own key for a fresh step signs him in (what is refused above is refused for its
    // key, not for the way it was made).
    let challenge = key_step(&mut b, "bob@example.org").await;
    count += 1;
    let good = assertion(&bob_key, &challenge, site, count);
    let signed = answer(&mut b, &good).await;
    assert_eq!((signed.status, signed.location()), (303, Some("/")), "{}", signed.body);
    assert_eq!(b.whoami().await["headers"]["x-deskgate-user"], bob.as_str());
    b.sign_out().await;

    // Replayed: the same answer for a new step (another challenge) is refused.
    key_step(&mut b, "bob@example.org").await;
    assert_eq!(answer(&mut b, &good).await.status, 401);
    // A counter that did not move on (a cloned key) is refused.
    let challenge = key_step(&mut b, "bob@example.org").await;
    assert_eq!(answer(&mut b, &assertion(&bob_key, &challenge, site, count)).await.status, 401);
    // Another origin is refused.
    let challenge = key_step(&mut b, "bob@example.org").await;
    let elsewhere = assertion(&bob_key, &challenge, "http://localhost.evil.example", count + 5);
    assert_eq!(answer(&mut b, &elsewhere).await.status, 401);
    assert!(!b.is_signed_in().await);

    // Malformed answers: a clear 4xx each, nothing signed in, the gateway still answers.
    for bad in [
        "",
        "null",
        "{}",
        "not json",
        "{\"id\":\"x\",\"rawId\":\"!!!\",\"type\":\"public-key\",\"response\":{}}",
        &"[".repeat(10_000),
        &format!("{{\"id\":\"{}\"}}", "A".repeat(20_000)),
    ] {
        key_step(&mut b, "bob@example.org").await;
        let page = answer(&mut b, bad).await;
        assert_eq!(page.status, 400, "{bad:.40}: {}", page.body);
        assert!(!b.is_signed_in().await);
    }
    // No step at all, a made-up step cookie, and no CSRF token.
    let mut stranger = Browser::new(&stack);
    assert_eq!(answer(&mut stranger, &good).await.status, 400);
    stranger.cookies.insert("deskgate_session_keystep".into(), "A".repeat(43));
    assert_eq!(answer(&mut stranger, &good).await.status, 400);
    let challenge = key_step(&mut b, "bob@example.org").await;
    let no_csrf = b
        .post("/.deskgate/login/key", &[("credential", &assertion(&bob_key, &challenge, site, count + 9))])
        .await;
    assert_eq!(no_csrf.status, 403);
    assert!(!b.is_signed_in().await);

    // A password reset by mail does not skip the key: the new password leads to the key step.
    let mut r = Browser::new(&stack);
    let form = r.get("/.deskgate/forgot").await;
    let csrf = form.field("csrf").expect("csrf");
    assert_eq!(
        r.post("/.deskgate/forgot", &[("email", "ann@example.org"), ("csrf", &csrf)]).await.status,
        200
    );
    let mail = tokio::time::timeout(std::time::Duration::from_secs(10), mails.recv()).await.expect("in time");
    let link = crate::signup::link_to(&mail.expect("a mail"), site, "/.deskgate/reset?token=");
    let token = link.split_once("token=").expect("a token").1;
    let new = "another long passphrase";
    let done = r
        .post("/.deskgate/reset", &[("token", token), ("password", new), ("confirm", new), ("csrf", &csrf)])
        .await;
    assert_eq!((done.status, done.location()), (303, Some("/.deskgate/login/key")), "{}", done.body);
    assert!(r.session_cookie().is_none());
    assert!(!r.is_signed_in().await);
    let step = r.get("/.deskgate/login/key").await;
    let options = step.body.split("id=\"options\">").nth(1).expect("options").split("</script>").next();
    let options: Value = serde_json::from_str(options.expect("end")).expect("json");
    let challenge = options["publicKey"]["challenge"].as_str().expect("challenge");
    let signed = answer(&mut r, &assertion(&ann_key, challenge, site, 500)).await;
    assert_eq!((signed.status, signed.location()), (303, Some("/")), "{}", signed.body);
    assert_eq!(r.whoami().await["headers"]["x-deskgate-user"], ann.as_str());
}

#[tokio::test]
async fn the_keys_page_needs_a_session_and_refuses_forged_registrations() {
    let stack = stack_at(19972, "").await;
    let id = account(&stack, "cy@example.org", "Cy", PASSWORD, &[]).await;
    let mut guest = Browser::new(&stack);
    let page = guest.get("/.deskgate/account/keys").await;
    assert_eq!(page.status, 303);
    assert!(page.location().expect("to sign in").starts_with("/.deskgate/login?next="));
    let csrf = guest.csrf().await;
    assert_eq!(guest.post("/.deskgate/account/keys/begin", &[("csrf", &csrf)]).await.status, 401);

    let mut b = signed_in_as(&stack, "cy@example.org").await;
    let page = b.get("/.deskgate/account/keys").await;
    let csrf = page.field("csrf").expect("csrf");
    assert_eq!(b.post("/.deskgate/account/keys/begin", &[("csrf", "forged")]).await.status, 403);
    let begun = b.post("/.deskgate/account/keys/begin", &[("csrf", &csrf)]).await;
    assert_eq!(begun.status, 200, "{}", begun.body);
    let begun = begun.json();
    assert!(begun["options"]["publicKey"]["challenge"].is_string(), "{begun}");
    assert_eq!(begun["options"]["publicKey"]["rp"]["id"], "localhost");
    // Another signed-in person cannot finish Cy's registration.
    let ceremony = begun["ceremony"].as_str().expect("ceremony");
    let dee = account(&stack, "dee@example.org", "Dee", PASSWORD, &[]).await;
    let mut other = signed_in_as(&stack, "dee@example.org").await;
    let other_csrf = other.get("/.deskgate/account/keys").await.field("csrf").expect("csrf");
    let taken = other
        .post(
            "/.deskgate/account/keys",
            &[("csrf", &other_csrf), ("ceremony", ceremony), ("credential", "{}"), ("name", "Mine")],
        )
        .await;
    assert_eq!(taken.status, 400, "{}", taken.body);
    assert!(stack.gateway.accounts.keys(&dee).await.expect("keys").is_empty());
    // Made-up answers are refused with a 4xx.
    for (c, credential, name) in [
        (ceremony, "{}", "Key"), // used up by the other person's try
        ("made-up", "{}", "Key"),
        (ceremony, "{}", ""),
        (ceremony, "{}", "line\nbreak"),
    ] {
        let page = b
            .post(
                "/.deskgate/account/keys",
                &[("csrf", &csrf), ("ceremony", c), ("credential", credential), ("name", name)],
            )
            .await;
        assert!(matches!(page.status, 400 | 422), "{c} {name:?}: {} {}", page.status, page.body);
    }
    assert!(stack.gateway.accounts.keys(&id).await.expect("keys").is_empty());
    // A live registration with an answer that is no attestation: refused, nothing stored.
    let live = b.post("/.deskgate/account/keys/begin", &[("csrf", &csrf)]).await.json();
    let live = live["ceremony"].as_str().expect("ceremony").to_owned();
    for bad in [
        "{}",
        "{\"id\":\"AAAA\",\"rawId\":\"AAAA\",\"type\":\"public-key\",\"response\":{\"attestationObject\":\"AAAA\",\"clientDataJSON\":\"AAAA\"},\"extensions\":{}}",
    ] {
        let page = b
            .post(
                "/.deskgate/account/keys",
                &[("csrf", &csrf), ("ceremony", &live), ("credential", bad), ("name", "Key")],
            )
            .await;
        assert_eq!(page.status, 400, "{}", page.body);
        assert!(
            page.body.contains("could not be verified") || page.body.contains("expired"),
            "{}",
            page.body
        );
    }
    assert!(stack.gateway.accounts.keys(&id).await.expect("keys").is_empty());
    // Started registrations are bounded per account (each is kept until it expires).
    let mut statuses = Vec::new();
    for _ in 0..20 {
        statuses.push(b.post("/.deskgate/account/keys/begin", &[("csrf", &csrf)]).await.status);
    }
    assert_eq!(statuses[..18], [200; 18]);
    assert_eq!(statuses[18..], [429; 2], "the 21st within the window is refused");
    // Removing someone else's key (or none) is a 404.
    let gone = b.post("/.deskgate/account/keys/remove", &[("csrf", &csrf), ("id", "not-a-key")]).await;
    assert_eq!(gone.status, 404);
}

/// Signs in with the password alone (the account has no key).
async fn signed_in_as(stack: &Stack, email: &str) -> Browser {
    let mut b = Browser::new(stack);
    let page = b.sign_in(email, PASSWORD).await;
    assert_eq!((page.status, page.location()), (303, Some("/")), "{}", page.body);
    b
}

/// A replica on a fixed port, behind the shared public URL `http://localhost:19973`.
async fn replica_at(port: u16, dir: &std::path::Path, text: &str) -> deskgate::state::AppState {
    let listener = tokio::net::TcpListener::bind(("127.0.0.1", port)).await.expect("bind replica");
    let path = dir.join(format!("r{port}.toml"));
    std::fs::write(&path, text).expect("write config");
    let config = deskgate::config::load_file(&path).unwrap_or_else(|d| panic!("{d:?}"));
    let gateway = deskgate::Gateway::new(config).await.expect("replica starts");
    let state = gateway.state().clone();
    tokio::spawn(gateway.serve_until(listener, std::future::pending()));
    state
}

#[tokio::test]
async fn a_key_step_begun_on_one_replica_finishes_on_another() {
    let Some(redis) = peer("DESKGATE_TEST_REDIS") else { return };
    let Some(driver) = peer("DESKGATE_TEST_CHROMEDRIVER") else { return };
    let Some(db) = crate::scale::Database::create().await else { return };
    let dir = TempDir::new();
    std::fs::write(dir.0.join("jwt.pem"), deskgate::jwt::generate_pem().expect("key")).expect("write");
    std::fs::write(dir.0.join("secret"), "a shared secret of at least thirty-two bytes").expect("write");
    let site = "http://localhost:19973";
    let prefix = RedisPrefix::new(&redis);
    let text = format!(
        "[server]\npublic_url = \"{site}\"\n[upstream]\nurl = \"{}\"\n[session]\nsecret_file = \"secret\"\n\
         [jwt]\nkey_file = \"jwt.pem\"\n[webauthn]\nrp_id = \"localhost\"\n\
         [storage]\naccounts = \"{}\"\nsessions = \"{redis}\"\nredis_prefix = \"{prefix}\"\n{HELPDESK}",
        crate::scale::helpdesk().await,
        db.url
    );
    let a = replica_at(19973, &dir.0, &text).await;
    replica_at(19974, &dir.0, &text).await;
    db.verified_account("eve@example.org", "Eve", PASSWORD).await;
    use deskgate::accounts::AccountStore;
    let eve = a.accounts.by_email("eve@example.org").await.expect("lookup").expect("Eve").id;

    // Eve registers a passkey on replica A.
    let chrome = Chromium::start(&driver).await;
    let authenticator = chrome.add_authenticator().await;
    chrome_password(&chrome, site, "eve@example.org").await;
    chrome.wait_for_url("the home page", |u| u == format!("{site}/")).await;
    chrome_register(&chrome, site, "Laptop").await;
    let held = chrome.authenticator_credentials(&authenticator).await;
    chrome.remove_authenticator(&authenticator).await;
    chrome.quit().await;
    let stored = a.accounts.keys(&eve).await.expect("keys");
    let pkcs8 = URL_SAFE_NO_PAD.decode(held[0]["privateKey"].as_str().expect("private key")).expect("b64");
    let key = Held {
        id: stored[0].credential_id.clone(),
        pair: EcdsaKeyPair::from_pkcs8(&ECDSA_P256_SHA256_ASN1_SIGNING, &pkcs8, &SystemRandom::new())
            .expect("key"),
    };

    // The password on A, the key on B (the step lives in Redis), the session on both.
    let mut on_a = crate::scale::browser_at("127.0.0.1:19973".parse().expect("addr"));
    let page = on_a.sign_in("eve@example.org", PASSWORD).await;
    assert_eq!(page.location(), Some("/.deskgate/login/key"), "{}", page.body);
    let mut on_b = crate::scale::browser_at("127.0.0.1:19974".parse().expect("addr"));
    on_b.cookies = on_a.cookies.clone();
    let challenge = key_step_options(&mut on_b).await;
    let signed = answer(&mut on_b, &assertion(&key, &challenge, site, 100)).await;
    assert_eq!((signed.status, signed.location()), (303, Some("/")), "{}", signed.body);
    on_a.cookies = on_b.cookies.clone();
    assert_eq!(on_a.whoami().await["headers"]["x-deskgate-user"], eve.as_str());
    let cookie = on_a.session_cookie().expect("a session");
    let session = a.sessions.get(&SessionKey::from_cookie(&cookie)).await.expect("Redis").expect("session");
    assert_eq!(session.amr, ["pwd", "hwk", "mfa"], "amr is kept in Redis too");
    on_a.sign_out().await;
    db.drop_it().await;
}

#[tokio::test]
async fn a_key_enrols_a_member_of_a_usergroup_requiring_one_and_a_session_that_skipped_it_gives_it_before_changing_factors()
 {
    use deskgate::accounts::FactorStore;
    let Some(driver) = peer("DESKGATE_TEST_CHROMEDRIVER") else { return };
    let site = "http://localhost:19975";
    let model =
        format!("{HELPDESK}\n[usergroups.agents]\nname = \"Agents\"\npermissions = []\nmfa = \"required\"\n");
    let stack = start(Options {
        port: Some(19975),
        server: format!("public_url = \"{site}\""),
        head: "[webauthn]\nrp_id = \"localhost\"\n".into(),
        model,
        ..Default::default()
    })
    .await;
    let ann = account(&stack, "ann@example.org", "Ann Agent", PASSWORD, &["agents"]).await;

    // Sessions of the password alone, kept aside: the usergroup sends them to enrol.
    let mut early = Browser::new(&stack);
    let page = early.sign_in("ann@example.org", PASSWORD).await;
    assert_eq!(page.status, 303, "{}", page.body);
    let mut later = Browser::new(&stack);
    assert_eq!(later.sign_in("ann@example.org", PASSWORD).await.status, 303);
    let sent = early.get_with("/whoami", &[("accept", "text/html")]).await;
    assert_eq!(sent.status, 302, "{}", sent.body);
    assert!(sent.location().is_some_and(|l| l.contains("/.deskgate/account/security")), "{sent:?}");

    // Chromium signs in with the password, is taken to enrol, registers a key there, and
    // is let on: registering the account's first factor counts as using it.
    let chrome = Chromium::start(&driver).await;
    let authenticator = chrome.add_authenticator().await;
    chrome_password(&chrome, site, "ann@example.org").await;
    chrome.wait_for_url("the enrolment page", |u| u.contains("/.deskgate/account/security")).await;
    chrome_register(&chrome, site, "Laptop").await;
    let seen = chrome_identity(&chrome, site).await;
    assert_eq!(seen["headers"]["x-deskgate-user"], ann.as_str(), "{seen}");
    let amr = seen["headers"]["x-deskgate-amr"].as_str().unwrap_or_default().to_owned();
    assert!(amr.split(',').any(|m| m == "hwk") && amr.split(',').any(|m| m == "mfa"), "{seen}");
    let held = chrome.authenticator_credentials(&authenticator).await;
    chrome.quit().await;
    let stored = stack.gateway.accounts.keys(&ann).await.expect("keys");
    let pkcs8 = URL_SAFE_NO_PAD.decode(held[0]["privateKey"].as_str().expect("private key")).expect("b64");
    let laptop = Held {
        id: stored[0].credential_id.clone(),
        pair: EcdsaKeyPair::from_pkcs8(&ECDSA_P256_SHA256_ASN1_SIGNING, &pkcs8, &SystemRandom::new())
            .expect("key"),
    };
    let count = held[0]["signCount"].as_u64().unwrap_or(0) as u32;

    // The early session used no second factor: still sent to enrol, and it may neither
    // plant a key of its own, nor remove Ann's, nor add an authenticator app.
    let sent = early.get_with("/whoami", &[("accept", "text/html")]).await;
    assert_eq!(sent.status, 302, "{}", sent.body);
    let keys_page = early.get("/.deskgate/account/keys").await;
    assert_eq!(keys_page.status, 200, "{}", keys_page.body);
    let csrf = keys_page.field("csrf").expect("csrf");
    let id = keys_page.field("id").expect("the key's id");
    let begun = early.post("/.deskgate/account/keys/begin", &[("csrf", &csrf)]).await;
    assert_eq!(begun.status, 403, "{}", begun.body);
    // (Removing is not among the pages open while enrolling: the usergroup's layer answers.)
    let removed = early.post("/.deskgate/account/keys/remove", &[("csrf", &csrf), ("id", &id)]).await;
    assert_eq!(removed.status, 302, "{}", removed.body);
    assert!(removed.location().is_some_and(|l| l.contains("/.deskgate/account/security")), "{removed:?}");
    assert_eq!(stack.gateway.accounts.keys(&ann).await.expect("keys").len(), 1, "the key stays");
    let app = early.get("/.deskgate/account/security").await;
    assert_eq!(app.status, 303, "{}", app.body);
    assert_eq!(app.location(), Some("/.deskgate/mfa/key?next=/.deskgate/account/security"));

    // An answer to another challenge, or garbage, steps nothing up (and uses the step up).
    for bad in [assertion(&laptop, "bm90LXRoZS1jaGFsbGVuZ2U", site, count + 1), "{\"id\":[]}".to_owned()] {
        let step = early.get("/.deskgate/mfa/key?next=/whoami").await;
        let csrf = step.field("csrf").expect("csrf");
        let refused = early.post("/.deskgate/mfa/key", &[("csrf", &csrf), ("credential", &bad)]).await;
        assert!(matches!(refused.status, 400 | 401), "{}: {}", refused.status, refused.body);
        assert_eq!(
            early.get_with("/whoami", &[("accept", "text/html")]).await.status,
            302,
            "still not stepped up"
        );
    }
    let mut guest = Browser::new(&stack);
    let posted = guest.post("/.deskgate/mfa/key", &[("csrf", "x"), ("credential", "{}")]).await;
    assert!(posted.location().is_some_and(|l| l.starts_with("/.deskgate/login")), "{posted:?}");

    // The early session gives the key now (step-up) and is let on.
    let step = early.get("/.deskgate/mfa/key?next=/whoami").await;
    let challenge = challenge_of(&step);
    let csrf = step.field("csrf").expect("csrf");
    let stepped = early
        .post(
            "/.deskgate/mfa/key",
            &[("csrf", &csrf), ("credential", &assertion(&laptop, &challenge, site, count + 1))],
        )
        .await;
    assert_eq!((stepped.status, stepped.location()), (303, Some("/whoami")), "{}", stepped.body);
    let amr = early.whoami().await["headers"]["x-deskgate-amr"].as_str().unwrap_or_default().to_owned();
    assert_eq!(amr, "pwd,hwk,mfa");

    // With an authenticator app as well, the password asks for the key first.
    let secret = deskgate::mfa::totp::new_secret();
    let now = stack.clock.now();
    stack.gateway.accounts.enrol_totp(&ann, &secret, 0, &[], now).await.expect("enrol");
    let mut b = Browser::new(&stack);
    let page = b.sign_in("ann@example.org", PASSWORD).await;
    assert_eq!((page.status, page.location()), (303, Some("/.deskgate/login/key")), "{}", page.body);
    // A session to step up is asked for a code and offered the key instead.
    let asked = later.get("/.deskgate/mfa?next=/kb").await;
    assert_eq!(asked.status, 200, "{}", asked.body);
    assert!(asked.body.contains("href=\"/.deskgate/mfa/key?next=/kb\" id=\"key-instead\""), "{}", asked.body);

    // A person without their key may give the app's code instead: still a second factor
    // before any session.
    let step = b.get("/.deskgate/login/key").await;
    assert!(step.body.contains("id=\"code-instead\""), "{}", step.body);
    let csrf = step.field("csrf").expect("csrf");
    let switched = b.post("/.deskgate/login/key/code", &[("csrf", &csrf)]).await;
    assert_eq!((switched.status, switched.location()), (303, Some("/.deskgate/mfa")), "{}", switched.body);
    assert!(b.session_cookie().is_none(), "no session before the code");
    assert!(!b.is_signed_in().await);
    let again = b.post("/.deskgate/login/key/code", &[("csrf", &csrf)]).await;
    assert_eq!(again.status, 400, "the key step was used up: {}", again.body);
    let form = b.get("/.deskgate/mfa").await;
    assert_eq!(form.status, 200, "{}", form.body);
    let csrf = form.field("csrf").expect("csrf");
    let code =
        deskgate::mfa::totp::code_at(&secret, stack.clock.now() / deskgate::mfa::totp::STEP).expect("code");
    let done = b.post("/.deskgate/mfa", &[("code", &code), ("csrf", &csrf), ("next", "/")]).await;
    assert_eq!((done.status, done.location()), (303, Some("/")), "{}", done.body);
    let amr = b.whoami().await["headers"]["x-deskgate-amr"].as_str().unwrap_or_default().to_owned();
    assert_eq!(amr, "pwd,otp,mfa");

    // An administrator's reset removes the keys with the app: the password is enough again
    // (and the usergroup asks Ann to enrol anew).
    assert_eq!(
        stack.gateway.accounts.enrolled(std::slice::from_ref(&ann)).await.expect("enrolled"),
        [ann.as_str()]
    );
    assert!(stack.gateway.accounts.remove_factors(&ann).await.expect("reset"));
    assert!(stack.gateway.accounts.keys(&ann).await.expect("keys").is_empty());
    assert!(stack.gateway.accounts.enrolled(std::slice::from_ref(&ann)).await.expect("enrolled").is_empty());
    let mut c = Browser::new(&stack);
    let page = c.sign_in("ann@example.org", PASSWORD).await;
    assert_eq!((page.status, page.location()), (303, Some("/")), "{}", page.body);
}
