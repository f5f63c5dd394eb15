//! Password reset for built-in accounts: the mailed link, the new password, and the end of
//! every session the account had.

use std::time::Duration;

use tokio::sync::mpsc;

use crate::browser::Chromium;
use crate::signup::{Mail, link_to, smtp_server};
use crate::support::*;

const OLD: &str = "correct horse battery";
const NEW: &str = "a new and longer passphrase";

fn reset_head(port: u16) -> String {
    format!(
        "[password_reset]\nenabled = true\n\n[smtp]\nhost = \"127.0.0.1\"\nport = {port}\nfrom = \"noreply@example.org\"\n"
    )
}

async fn mail(mails: &mut mpsc::UnboundedReceiver<Mail>) -> Mail {
    tokio::time::timeout(Duration::from_secs(10), mails.recv())
        .await
        .expect("a mail in time")
        .expect("a mail")
}

/// Asks for a reset link for `email`; returns the page.
async fn forgot(b: &mut Browser, email: &str) -> Page {
    let form = b.get("/.deskgate/forgot").await;
    assert_eq!(form.status, 200, "{}", form.body);
    let csrf = form.field("csrf").expect("csrf field");
    b.post("/.deskgate/forgot", &[("email", email), ("csrf", &csrf)]).await
}

/// Posts a new password with `token`.
async fn set_password(b: &mut Browser, token: &str, password: &str) -> Page {
    let csrf = b.csrf().await;
    b.post(
        "/.deskgate/reset",
        &[("token", token), ("password", password), ("confirm", password), ("csrf", &csrf)],
    )
    .await
}

fn token_of(link: &str) -> String {
    link.split_once("token=").expect("a token").1.to_owned()
}

#[tokio::test]
async fn chromium_resets_a_forgotten_password_and_every_other_session_ends() {
    let Some(driver) = peer("DESKGATE_TEST_CHROMEDRIVER") else { return };
    let (port, mut mails) = smtp_server().await;
    let stack = start(Options { head: reset_head(port), ..Default::default() }).await;
    account(&stack, "rose@example.org", "Rose Reset", OLD, &[]).await;
    // Another client signed in before the reset.
    let mut other = Browser::new(&stack);
    assert_eq!(other.sign_in("rose@example.org", OLD).await.status, 303);
    assert!(other.is_signed_in().await);

    let chrome = Chromium::start(&driver).await;
    chrome.go(&format!("{}/.deskgate/login", stack.base)).await;
    chrome.click("a[href$='/.deskgate/forgot']").await;
    chrome.wait_for_url("the forgot page", |u| u.ends_with("/.deskgate/forgot")).await;
    chrome.type_into("input[name=email]", "rose@example.org").await;
    chrome.click("form[action$='/forgot'] button").await;
    let began = std::time::Instant::now();
    while !chrome.source().await.contains("Check your email") {
        assert!(began.elapsed() < Duration::from_secs(20), "no answer: {}", chrome.source().await);
        tokio::time::sleep(Duration::from_millis(50)).await;
    }

    let mail = mail(&mut mails).await;
    assert_eq!(mail.to, ["<rose@example.org>"]);
    let link = link_to(&mail, &stack.base, "/.deskgate/reset?token=");
    chrome.go(&format!("{}{link}", stack.base)).await;
    chrome.type_into("input[name=password]", NEW).await;
    chrome.type_into("input[name=confirm]", NEW).await;
    chrome.click("form[action$='/reset'] button").await;
    let home = format!("{}/", stack.base);
    chrome.wait_for_url("the home page", |u| u == home).await;
    let page = chrome.source().await;
    assert!(page.contains("rose@example.org"), "signed in with a fresh session: {page}");

    // The link works once.
    chrome.go(&format!("{}{link}", stack.base)).await;
    assert!(chrome.source().await.contains("This link does not work"));
    chrome.quit().await;

    // The session from before is a guest's now; the old password fails, the new one works.
    assert!(!other.is_signed_in().await, "the other session ended");
    let mut fresh = Browser::new(&stack);
    assert_eq!(fresh.sign_in("rose@example.org", OLD).await.status, 401, "the old password fails");
    assert_eq!(fresh.sign_in("rose@example.org", NEW).await.status, 303, "the new password works");
}

#[tokio::test]
async fn an_unknown_address_gets_the_same_page_and_no_mail() {
    let (port, mut mails) = smtp_server().await;
    let stack = start(Options { head: reset_head(port), ..Default::default() }).await;
    account(&stack, "known@example.org", "Known", OLD, &[]).await;
    let mut b = Browser::new(&stack);
    assert!(b.get("/.deskgate/login").await.body.contains("/.deskgate/forgot"), "the login page offers it");

    let unknown = forgot(&mut b, "nobody@example.org").await;
    let known = forgot(&mut b, "KNOWN@example.org").await;
    assert_eq!((unknown.status, known.status), (200, 200));
    assert_eq!(unknown.body, known.body, "the answer does not tell which address has an account");
    let sent = mail(&mut mails).await;
    assert_eq!(sent.to, ["<known@example.org>"]);
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert!(mails.try_recv().is_err(), "no mail for the unknown address");

    // A disabled account gets no mail either.
    let id = account(&stack, "off@example.org", "Off", OLD, &[]).await;
    use deskgate::accounts::AccountStore;
    stack.gateway.accounts.set_disabled(&id, true).await.expect("disable");
    assert_eq!(forgot(&mut b, "off@example.org").await.body, unknown.body);
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert!(mails.try_recv().is_err(), "no mail for a disabled account");

    // Without a form token nothing is looked up.
    let forged = b.post("/.deskgate/forgot", &[("email", "known@example.org"), ("csrf", "x")]).await;
    assert_eq!(forged.status, 403);
}

#[tokio::test]
async fn altered_foreign_and_expired_tokens_are_refused() {
    let (port, mut mails) = smtp_server().await;
    let stack = start(Options { head: reset_head(port), ..Default::default() }).await;
    account(&stack, "ann@example.org", "Ann", OLD, &[]).await;
    account(&stack, "bob@example.org", "Bob", OLD, &[]).await;
    let mut b = Browser::new(&stack);
    forgot(&mut b, "ann@example.org").await;
    let ann = token_of(&link_to(&mail(&mut mails).await, &stack.base, "/.deskgate/reset?token="));
    forgot(&mut b, "bob@example.org").await;
    let bob = token_of(&link_to(&mail(&mut mails).await, &stack.base, "/.deskgate/reset?token="));

    let truncated = &ann[..ann.len() - 1];
    let mut altered = ann.clone().into_bytes();
    altered[5] = if altered[5] == b'A' { b'B' } else { b'A' };
    let altered = String::from_utf8(altered).unwrap();
    let swapped = if ann.to_uppercase() != ann { ann.to_uppercase() } else { ann.to_lowercase() };
    for bad in [truncated, altered.as_str(), swapped.as_str(), "", &"A".repeat(5000)] {
        let shown = b.get(&format!("/.deskgate/reset?token={bad}")).await;
        assert_eq!(shown.status, 400, "{bad}: {}", shown.body);
        assert!(shown.body.contains("This link does not work"));
        let posted = set_password(&mut b, bad, NEW).await;
        assert_eq!(posted.status, 400, "{bad}");
    }
    // Passwords follow the sign-up rules, and a refused one does not use the link.
    assert_eq!(set_password(&mut b, &ann, "short").await.status, 422);
    // Bob's token sets Bob's password, not Ann's.
    assert_eq!(set_password(&mut b, &bob, NEW).await.status, 303);
    let mut check = Browser::new(&stack);
    assert_eq!(check.sign_in("ann@example.org", NEW).await.status, 401);
    assert_eq!(check.sign_in("bob@example.org", NEW).await.status, 303);
    assert_eq!(set_password(&mut b, &bob, "yet another passphrase").await.status, 400, "used once");

    // Ann's link still works until it expires, then not.
    assert_eq!(b.get(&format!("/.deskgate/reset?token={ann}")).await.status, 200);
    stack.clock.advance(3601);
    assert_eq!(b.get(&format!("/.deskgate/reset?token={ann}")).await.status, 400);
    assert_eq!(set_password(&mut b, &ann, NEW).await.status, 400);
}

#[tokio::test]
async fn reset_mails_are_limited_per_account_and_per_client() {
    let (port, mut mails) = smtp_server().await;
    let stack = start(Options { head: reset_head(port), ..Default::default() }).await;
    account(&stack, "many@example.org", "Many", OLD, &[]).await;
    let mut b = Browser::new(&stack);
    let first = forgot(&mut b, "many@example.org").await;
    for _ in 0..3 {
        assert_eq!(forgot(&mut b, "many@example.org").await.body, first.body, "the same answer");
    }
    for _ in 0..3 {
        mail(&mut mails).await;
    }
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert!(mails.try_recv().is_err(), "at most three reset mails an hour per account");
    // The fifth request from one client is its last in the window (limits.validation_mails_per_address).
    assert_eq!(forgot(&mut b, "other@example.org").await.status, 200);
    assert_eq!(forgot(&mut b, "other@example.org").await.status, 429);
}

/// On replicas sharing Redis and PostgreSQL, a reset on one ends the account's session on
/// the other at its next request.
#[tokio::test]
async fn a_reset_on_one_replica_ends_the_session_on_another() {
    use crate::scale::{Database, browser_at, helpdesk, replica};
    let Some(redis) = peer("DESKGATE_TEST_REDIS") else { return };
    let Some(db) = Database::create().await else { return };
    let (port, mut mails) = smtp_server().await;
    let dir = TempDir::new();
    let prefix = RedisPrefix::new(&redis);
    std::fs::write(dir.0.join("secret"), "a shared secret of at least thirty-two bytes").unwrap();
    let text = format!(
        "[server]\npublic_url = \"PUBLIC_URL\"\n[upstream]\nurl = \"{}\"\n[session]\nsecret_file = \"secret\"\n\
         [storage]\naccounts = \"{}\"\nsessions = \"{redis}\"\nredis_prefix = \"{prefix}\"\nredis_local_cache = \"0s\"\n\
         {}\n{HELPDESK}",
        helpdesk().await,
        db.url,
        reset_head(port),
    );
    let (a, b) = (replica(&dir.0, "a", &text).await, replica(&dir.0, "b", &text).await);
    db.verified_account("pat@example.org", "Pat", OLD).await;
    let mut on_b = browser_at(b);
    assert_eq!(on_b.sign_in("pat@example.org", OLD).await.status, 303);
    assert!(on_b.is_signed_in().await);

    let mut on_a = browser_at(a);
    forgot(&mut on_a, "pat@example.org").await;
    let link = link_to(&mail(&mut mails).await, &format!("http://{a}"), "/.deskgate/reset?token=");
    // The link is the shared store's: it works on either replica, once.
    let done = set_password(&mut browser_at(b), &token_of(&link), NEW).await;
    assert_eq!(done.status, 303, "{}", done.body);
    assert!(!on_b.is_signed_in().await, "the session from before ended");
    assert_eq!(set_password(&mut on_a, &token_of(&link), NEW).await.status, 400);
    assert_eq!(browser_at(a).sign_in("pat@example.org", NEW).await.status, 303);
    db.drop_it().await;
}
