//! Grants by email need a verified address: open sign-up of an organization's domain or of
//! an `[[assignments]]` address grants nothing until the address is proven (validation mail,
//! an administrator), an unproven address never keeps the address from its owner nor links,
//! and the backend is told whether the address it receives is verified.

use deskgate::accounts::{AccountStore, NewAccount};
use deskgate::signin::{AccountPolicy, Refusal, resolve_account};
use deskgate_provider::Identity;
use serde_json::{Value, json};

use crate::admin::{PASSWORD, admin, model, send};
use crate::signup::{link, smtp_server, validation_head};
use crate::support::*;

fn usergroups(seen: &Value) -> &str {
    seen["headers"]["x-deskgate-usergroups"].as_str().unwrap_or_default()
}

/// The person's id, as the admin API finds it by email.
async fn id_of(admin: &mut Browser, email: &str) -> String {
    let found = admin
        .get_with(
            &format!("/.deskgate/api/people?q={}", email.replace('@', "%40")),
            &[("accept", "application/json")],
        )
        .await
        .json();
    found["people"][0]["id"].as_str().expect("found").to_owned()
}

#[tokio::test]
async fn open_registration_of_an_organization_domain_or_an_assigned_address_grants_nothing_until_an_administrator_sets_it()
 {
    let stack = start(Options { model: model(), ..Default::default() }).await;
    let mut mallory = Browser::new(&stack);
    assert_eq!(mallory.sign_up("Mallory", "mallory@ACME.example", PASSWORD).await.status, 303);
    let seen = mallory.whoami().await;
    assert_eq!(usergroups(&seen), "everyone,registered", "no trial_users through organization acme");
    assert_eq!(seen["headers"]["x-deskgate-email"], "mallory@ACME.example", "the address is still forwarded");
    assert_eq!(seen["headers"]["x-deskgate-email-verified"], "false");
    assert_eq!(seen["claims"]["email_verified"], false);
    assert_eq!(mallory.get("/chat/sales").await.status, 403);

    // An address named in [[assignments]] (wile@acme.example → vips), typed by anyone.
    let mut wile = Browser::new(&stack);
    assert_eq!(wile.sign_up("Wile", "WILE@acme.example", PASSWORD).await.status, 303);
    assert_eq!(usergroups(&wile.whoami().await), "everyone,registered", "no vips through [[assignments]]");
    assert_eq!(wile.get("/chat/support").await.status, 403);
    assert_eq!(wile.get("/chat/sales").await.status, 403);

    // The administrator sees why: the grants are withheld, on the page and in the API.
    let mut boss = admin(&stack).await;
    let mallory_id = id_of(&mut boss, "mallory@").await;
    let wile_id = id_of(&mut boss, "wile@").await;
    let page = boss.get(&format!("/.deskgate/admin/people/{mallory_id}?path=/chat/sales")).await;
    assert!(
        page.body.contains("organization `acme` by email domain: withheld, the email is not verified"),
        "{}",
        page.body
    );
    assert!(page.body.contains("Not verified"), "{}", page.body);
    let api =
        boss.get_with(&format!("/.deskgate/api/people/{wile_id}"), &[("accept", "application/json")]).await;
    let detail = api.json();
    assert_eq!(detail["email_verified"], false);
    let kinds: Vec<&str> =
        detail["withheld"].as_array().unwrap().iter().map(|w| w["kind"].as_str().unwrap()).collect();
    assert_eq!(kinds, ["config-assignment", "organization"], "{detail}");
    assert_eq!(detail["withheld"][0]["usergroups"], json!(["vips"]));

    // An administrator sets the address (API for one, page form for the other): it is
    // verified, and the grants reach the next request without signing in again.
    let token = boss.csrf().await;
    let headers =
        [("accept", "application/json"), ("content-type", "application/json"), ("x-deskgate-csrf", &token)];
    let body = json!({"email": "mallory@ACME.example"}).to_string();
    let (status, text, _) =
        send(&boss, "PUT", &format!("/.deskgate/api/people/{mallory_id}/email"), &headers, Some(body)).await;
    assert_eq!(status, 200, "{text}");
    let seen = mallory.whoami().await;
    assert_eq!(usergroups(&seen), "everyone,registered,trial_users");
    assert_eq!(seen["headers"]["x-deskgate-email-verified"], "true");
    assert_eq!(seen["claims"]["email_verified"], true);
    assert_eq!(mallory.get("/chat/sales").await.status, 200);

    let page = boss.get(&format!("/.deskgate/admin/people/{wile_id}")).await;
    let csrf = page.field("csrf").unwrap();
    let set = boss
        .post(
            &format!("/.deskgate/admin/people/{wile_id}/email"),
            &[("csrf", &csrf), ("email", "wile@acme.example")],
        )
        .await;
    assert_eq!(set.status, 303, "{}", set.body);
    assert_eq!(usergroups(&wile.whoami().await), "everyone,registered,trial_users,vips");
    assert_eq!(wile.get("/chat/support").await.status, 200);
    let after = boss.get(&format!("/.deskgate/admin/people/{wile_id}")).await;
    assert!(!after.body.contains("withheld"), "{}", after.body);
}

#[tokio::test]
async fn an_unverified_holder_does_not_keep_the_address_from_its_owner_who_validates_it_by_mail() {
    let (port, mut mails) = smtp_server().await;
    let stack = start(Options { head: validation_head(port), ..Default::default() }).await;
    // Held unverified by another account (an open sign-up from before, or a provider that
    // does not vouch for it).
    let squatter = stack
        .gateway
        .accounts
        .create(NewAccount {
            email: Some("Owner@acme.example".into()),
            name: "Squatter".into(),
            password_hash: Some(deskgate_builtin::hash_password("squatter password").unwrap()),
            created_at: stack.clock.now(),
            ..Default::default()
        })
        .await
        .unwrap();
    let mut squatting = Browser::new(&stack);
    assert_eq!(squatting.sign_in("owner@acme.example", "squatter password").await.status, 303);
    assert_eq!(usergroups(&squatting.whoami().await), "everyone,registered");

    let mut owner = Browser::new(&stack);
    let page = owner.sign_up("Owner", "owner@acme.example", PASSWORD).await;
    assert_eq!(page.status, 200, "not refused as taken: {}", page.body);
    assert!(page.body.contains("Check your email"), "{}", page.body);
    let mail = mails.recv().await.expect("a mail");
    assert_eq!(mail.to, ["<owner@acme.example>"]);
    // A second sign-up for the same address within ten minutes mails nothing more.
    let mut again = Browser::new(&stack);
    assert_eq!(again.sign_up("Again", "owner@acme.example", PASSWORD).await.status, 409);

    let confirmed = owner.get(&link(&mail, &stack.base)).await;
    assert_eq!(confirmed.status, 200, "{}", confirmed.body);
    let lost = stack.gateway.accounts.by_id(&squatter.id).await.unwrap().unwrap();
    assert_eq!(lost.email, None, "the unverified holder lost the address");
    assert_eq!(owner.sign_in("owner@acme.example", PASSWORD).await.status, 303);
    let seen = owner.whoami().await;
    assert_eq!(usergroups(&seen), "everyone,registered,trial_users", "organization acme by a proven address");
    assert_eq!(seen["headers"]["x-deskgate-email-verified"], "true");
    assert_eq!(owner.get("/chat/sales").await.status, 200);
    let seen = squatting.whoami().await;
    assert!(
        seen["headers"].get("x-deskgate-email").is_none(),
        "the holder's session stops forwarding it: {seen}"
    );
    assert_eq!(seen["headers"]["x-deskgate-email-verified"], "false");
    assert_eq!(squatting.sign_in("owner@acme.example", "squatter password").await.status, 401);
}

#[tokio::test]
async fn email_validation_by_mail_brings_the_organization_of_the_domain() {
    let (port, mut mails) = smtp_server().await;
    let stack = start(Options { head: validation_head(port), ..Default::default() }).await;
    let mut b = Browser::new(&stack);
    assert_eq!(b.sign_up("Val", "val@ACME.example", PASSWORD).await.status, 200);
    let mail = mails.recv().await.expect("a mail");
    assert_eq!(b.get(&link(&mail, &stack.base)).await.status, 200);
    assert_eq!(b.sign_in("val@acme.example", PASSWORD).await.status, 303);
    assert_eq!(usergroups(&b.whoami().await), "everyone,registered,trial_users");
    assert_eq!(b.get("/chat/sales").await.status, 200);
}

#[tokio::test]
async fn an_unverified_email_never_links_to_an_account_nor_takes_its_address() {
    let stack = start(Options { model: model(), ..Default::default() }).await;
    let existing = account(&stack, "carol@acme.example", "Carol", PASSWORD, &[]).await;
    let policy = AccountPolicy { create_accounts: true, link_by_email: true, ..Default::default() };
    let mut unverified = Identity::new("oidc.entra", "entra-sub-1");
    unverified.email = Some("CAROL@acme.example".into());
    unverified.email_verified = false;
    let got = resolve_account(&stack.gateway, &unverified, &policy).await.unwrap().unwrap();
    assert_ne!(got.id, existing, "an unverified address links to nobody");
    assert_eq!(got.email, None, "and does not take a verified holder's address");
    let kept = stack.gateway.accounts.by_id(&existing).await.unwrap().unwrap();
    assert_eq!(kept.email.as_deref(), Some("carol@acme.example"));

    // Nor does a vouched address link to an account that holds it unverified: that one
    // loses it to the vouched identity's new account instead.
    let squatter = stack
        .gateway
        .accounts
        .create(NewAccount {
            email: Some("dora@acme.example".into()),
            name: "Squat".into(),
            ..Default::default()
        })
        .await
        .unwrap();
    let mut vouched = Identity::new("oidc.google", "google-sub-1");
    vouched.email = Some("dora@acme.example".into());
    vouched.email_verified = true;
    let got = resolve_account(&stack.gateway, &vouched, &policy).await.unwrap().unwrap();
    assert_ne!(got.id, squatter.id);
    assert!(got.email_verified);
    assert_eq!(stack.gateway.accounts.by_id(&squatter.id).await.unwrap().unwrap().email, None);
    // Without creation, the unverified holder is still no account to link to.
    let mut third = Identity::new("oidc.other", "other-sub-1");
    third.email = Some("erin@acme.example".into());
    third.email_verified = true;
    stack
        .gateway
        .accounts
        .create(NewAccount {
            email: Some("erin@acme.example".into()),
            name: "Erin?".into(),
            ..Default::default()
        })
        .await
        .unwrap();
    let no_create = AccountPolicy { create_accounts: false, ..policy };
    assert_eq!(resolve_account(&stack.gateway, &third, &no_create).await.unwrap(), Err(Refusal::NoAccount));
}

#[tokio::test]
async fn a_client_cannot_send_the_email_verified_header_in_any_spelling() {
    let stack = start(Options { model: model(), ..Default::default() }).await;
    let mut b = Browser::new(&stack);
    assert_eq!(b.sign_up("Spoof", "spoof@acme.example", PASSWORD).await.status, 303);
    let spellings = [
        "X-Deskgate-Email-Verified",
        "x-deskgate-email-verified",
        "X_Deskgate_Email_Verified",
        "x-deskgate_email-verified",
        "X-DESKGATE-EMAIL-VERIFIED",
    ];
    let headers: Vec<(&str, &str)> =
        spellings.iter().map(|s| (*s, "true")).chain([("accept", "application/json")]).collect();
    let page = b.get_with("/whoami", &headers).await;
    let seen = page.json();
    let received = seen["headers"].as_object().unwrap();
    let ours: Vec<(&String, &Value)> = received
        .iter()
        .filter(|(k, _)| k.replace('_', "-").starts_with("x-deskgate-email-verified"))
        .collect();
    assert_eq!(ours.len(), 1, "only deskgate's own: {ours:?}");
    assert_eq!(seen["headers"]["x-deskgate-email-verified"], "false", "overwritten, not appended");
    assert_eq!(usergroups(&seen), "everyone,registered");
    // A guest gets none at all.
    let mut guest = Browser::new(&stack);
    let seen = guest.get_with("/whoami", &headers).await.json();
    let any =
        seen["headers"].as_object().unwrap().keys().any(|k| k.replace('_', "-").contains("email-verified"));
    assert!(!any, "{seen}");
}

#[tokio::test]
async fn deskgate_check_notes_open_registration_with_grants_by_email_and_explain_shows_them_withheld() {
    let stack = start(Options { model: model(), ..Default::default() }).await;
    let deskgate = || std::process::Command::new(env!("CARGO_BIN_EXE_deskgate"));
    let out = deskgate().arg("check").arg(&stack.config_path).output().unwrap();
    let text = String::from_utf8(out.stdout).unwrap();
    assert!(out.status.success(), "a note, not an error: {text}");
    assert!(
        text.contains(
            "note: registration.mode = \"open\" with organizations.acme.domains, assignments[].email: \
             a self-registered address is not verified"
        ),
        "{text}"
    );

    // Signed up openly: typed, not proven.
    let mut b = Browser::new(&stack);
    assert_eq!(b.sign_up("Wile", "wile@acme.example", PASSWORD).await.status, 303);
    let out = deskgate()
        .args(["explain", "--config"])
        .arg(&stack.config_path)
        .args(["--account", "wile@acme.example", "--path", "/chat/support"])
        .output()
        .unwrap();
    let text = String::from_utf8(out.stdout).unwrap();
    assert!(out.status.success(), "{text}{}", String::from_utf8_lossy(&out.stderr));
    assert!(text.contains("Wile <wile@acme.example> (not verified)"), "{text}");
    assert!(
        text.contains("withheld: organization `acme` by email domain: withheld, the email is not verified"),
        "{text}"
    );
    assert!(
        text.contains("withheld: config assignment ([[assignments]]) of vips by email: withheld, the email is not verified"),
        "{text}"
    );
    assert!(text.contains("Decision:   deny"), "{text}");
}

#[tokio::test]
async fn lapsed_sign_ups_for_a_held_address_do_not_pile_up() {
    let (port, mut mails) = smtp_server().await;
    let stack = start(Options { head: validation_head(port), ..Default::default() }).await;
    for held in ["one@acme.example", "two@acme.example"] {
        let new = NewAccount { email: Some(held.into()), name: "Holder".into(), ..Default::default() };
        stack.gateway.accounts.create(new).await.unwrap();
    }
    let pending = || async {
        let query = deskgate::accounts::AccountQuery {
            status: Some(deskgate::accounts::AccountStatus::PendingValidation),
            ..Default::default()
        };
        stack.gateway.accounts.list(&query, 0, 10).await.unwrap().total
    };
    let mut b = Browser::new(&stack);
    assert_eq!(b.sign_up("One", "one@acme.example", PASSWORD).await.status, 200);
    let first = link(&mails.recv().await.expect("a mail"), &stack.base);
    assert_eq!(pending().await, 1);
    stack.clock.advance(3601);
    assert_eq!(b.sign_up("Two", "two@acme.example", PASSWORD).await.status, 200);
    mails.recv().await.expect("a mail");
    assert_eq!(pending().await, 1, "the lapsed one was removed, the new one waits");
    assert_eq!(b.get(&first).await.status, 400, "its link lapsed with it");
    let one = stack.gateway.accounts.by_email("one@acme.example").await.unwrap().unwrap();
    assert_eq!(one.name, "Holder", "the holder kept the address it was never proven to lack");
}
