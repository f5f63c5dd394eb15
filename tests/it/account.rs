//! The account page: a person changes their own name, password and address, and sees and
//! ends their own sessions — in the memory store and in Redis.

use std::time::Duration;

use tokio::sync::mpsc;

use crate::browser::Chromium;
use crate::signup::{Mail, link_to, smtp_server};
use crate::support::*;

const OLD: &str = "correct horse battery";
const NEW: &str = "a new and longer passphrase";
const ACCOUNT: &str = "/.deskgate/account";
const CONFIRM: &str = "/.deskgate/account/email/confirm?token=";

/// A gateway on `port` (from this module's range) that can send mail through `smtp`.
async fn stack_on(port: u16, smtp: u16) -> Stack {
    let head = format!(
        "[password_reset]\nenabled = true\n\n[smtp]\nhost = \"127.0.0.1\"\nport = {smtp}\nfrom = \"noreply@example.org\"\n"
    );
    start(Options { head, port: Some(port), ..Default::default() }).await
}

async fn mail(mails: &mut mpsc::UnboundedReceiver<Mail>) -> Mail {
    tokio::time::timeout(Duration::from_secs(10), mails.recv())
        .await
        .expect("a mail in time")
        .expect("a mail")
}

async fn no_mail(mails: &mut mpsc::UnboundedReceiver<Mail>) {
    tokio::time::sleep(Duration::from_millis(400)).await;
    assert!(mails.try_recv().is_err(), "no mail was to be sent");
}

fn header(seen: &serde_json::Value, name: &str) -> String {
    seen["headers"][name].as_str().unwrap_or_default().to_owned()
}

/// Signs in as a client that names itself in `User-Agent`.
async fn sign_in_as(b: &mut Browser, email: &str, password: &str, agent: &str) -> Page {
    let csrf = b.csrf().await;
    b.post_with(
        "/.deskgate/login",
        &[("email", email), ("password", password), ("csrf", &csrf), ("next", "/")],
        &[("user-agent", agent)],
    )
    .await
}

/// Posts one of the account page's forms with the page's own token.
async fn post_form(b: &mut Browser, path: &str, fields: &[(&str, &str)]) -> Page {
    let page = b.get(ACCOUNT).await;
    assert_eq!(page.status, 200, "{}", page.body);
    let csrf = page.field("csrf").expect("csrf field");
    let mut form = fields.to_vec();
    form.push(("csrf", &csrf));
    b.post(path, &form).await
}

/// The handle of the session the page marks as this one.
fn this_handle(page: &Page) -> String {
    let marker = "<strong>This session</strong>";
    let at = page.body.find(marker).expect("this session is marked");
    let row = page.body[..at].rfind("data-session=\"").expect("its row") + "data-session=\"".len();
    page.body[row..].split('"').next().expect("a handle").to_owned()
}

fn rows(page: &Page) -> usize {
    page.body.matches("<tr data-session=").count()
}

#[tokio::test]
async fn chromium_changes_the_email_and_only_the_proven_address_signs_in_and_grants() {
    let Some(driver) = peer("DESKGATE_TEST_CHROMEDRIVER") else { return };
    let (smtp, mut mails) = smtp_server().await;
    let stack = stack_on(19880, smtp).await;
    account(&stack, "kim@example.org", "Kim Change", OLD, &[]).await;
    // A client signed in before the change: what the backend is told about Kim.
    let mut watcher = Browser::new(&stack);
    assert_eq!(watcher.sign_in("kim@example.org", OLD).await.status, 303);
    let before = watcher.whoami().await;
    assert_eq!(header(&before, "x-deskgate-email"), "kim@example.org");
    assert_eq!(header(&before, "x-deskgate-usergroups"), "everyone,registered");

    let chrome = Chromium::start(&driver).await;
    chrome.go(&format!("{}{ACCOUNT}", stack.base)).await;
    chrome.wait_for_url("the login page", |u| u.contains("/.deskgate/login")).await;
    chrome.type_into("input[name=username]", "kim@example.org").await;
    chrome.type_into("input[name=password]", OLD).await;
    chrome.click("form[action$='/login'] button").await;
    chrome.wait_for_url("the account page", |u| u.ends_with(ACCOUNT)).await;
    let page = chrome.source().await;
    assert!(page.contains("kim@example.org</strong> (verified)"), "{page}");
    // acme.example is the domain of the organization Acme, which makes its members Trial Users.
    chrome.type_into("input[name=email]", "kim@acme.example").await;
    chrome.type_into("input#email-current", OLD).await;
    chrome.click("form[action$='/account/email'] button").await;
    chrome.wait_for_url("the page again", |u| u.ends_with("?done=email")).await;
    assert!(chrome.source().await.contains("we have sent it an email with a link"));
    let sent = mail(&mut mails).await;
    assert_eq!(sent.to, ["<kim@acme.example>"], "the link goes to the new address");

    // Until the link is used the old address is the account's: it signs in, the new one
    // does not, and the organization of the new domain grants nothing.
    let seen = watcher.whoami().await;
    assert_eq!(header(&seen, "x-deskgate-email"), "kim@example.org");
    assert_eq!(
        header(&seen, "x-deskgate-usergroups"),
        "everyone,registered",
        "no grant by an unproven domain"
    );
    assert_eq!(Browser::new(&stack).sign_in("kim@acme.example", OLD).await.status, 401);
    assert_eq!(Browser::new(&stack).sign_in("kim@example.org", OLD).await.status, 303);

    let link = link_to(&sent, &stack.base, CONFIRM);
    chrome.go(&format!("{}{link}", stack.base)).await;
    assert!(chrome.source().await.contains("kim@acme.example"), "the page names the address");
    chrome.click("form[action$='/account/email/confirm'] button").await;
    chrome.wait_for_url("the confirmation", |u| u.ends_with("/account/email/changed")).await;
    // The link works once.
    chrome.go(&format!("{}{link}", stack.base)).await;
    assert!(chrome.source().await.contains("This link does not work"));
    chrome.go(&format!("{}{ACCOUNT}", stack.base)).await;
    let page = chrome.source().await;
    assert!(page.contains("kim@acme.example</strong> (verified)"), "{page}");
    chrome.quit().await;

    // Now the new address signs in and the old one does not; sessions from before forward
    // the new address and are granted by its domain.
    assert_eq!(Browser::new(&stack).sign_in("kim@acme.example", OLD).await.status, 303);
    assert_eq!(Browser::new(&stack).sign_in("kim@example.org", OLD).await.status, 401);
    let after = watcher.whoami().await;
    assert_eq!(header(&after, "x-deskgate-email"), "kim@acme.example");
    assert_eq!(header(&after, "x-deskgate-email-verified"), "true");
    assert_eq!(header(&after, "x-deskgate-usergroups"), "everyone,registered,trial_users");
}

/// The answer for an address another account holds is the one for a free address, and no
/// mail goes out; a wrong current password changes nothing; a link is the account's own.
#[tokio::test]
async fn an_address_another_account_holds_is_refused_without_saying_so() {
    let (smtp, mut mails) = smtp_server().await;
    let stack = stack_on(19881, smtp).await;
    account(&stack, "owner@example.org", "Owner", OLD, &[]).await;
    let mut b = signed_in(&stack, "asker@example.org", &[]).await;

    let wrong =
        post_form(&mut b, "/.deskgate/account/email", &[("email", "free@example.org"), ("current", "nope")])
            .await;
    assert_eq!(wrong.status, 401, "{}", wrong.body);
    assert!(wrong.body.contains("The current password is not correct."));
    no_mail(&mut mails).await;

    let held =
        post_form(&mut b, "/.deskgate/account/email", &[("email", "OWNER@example.org"), ("current", OLD)])
            .await;
    let free =
        post_form(&mut b, "/.deskgate/account/email", &[("email", "free@example.org"), ("current", OLD)])
            .await;
    assert_eq!((held.status, free.status), (303, 303));
    assert_eq!(held.location(), free.location(), "the same answer");
    let sent = mail(&mut mails).await;
    assert_eq!(sent.to, ["<free@example.org>"]);
    no_mail(&mut mails).await;

    // Another account takes the address in the meantime (an administrator sets it): the
    // link no longer hands it over.
    use deskgate::accounts::AccountStore;
    let owner = stack.gateway.accounts.by_email("owner@example.org").await.unwrap().unwrap();
    stack.gateway.accounts.set_email(&owner.id, Some("free@example.org"), true).await.unwrap();
    let token = link_to(&sent, &stack.base, CONFIRM).split_once("token=").unwrap().1.to_owned();
    let mut stranger = Browser::new(&stack);
    let shown = stranger.get(&format!("{CONFIRM}{token}")).await;
    assert_eq!(shown.status, 200);
    let csrf = shown.field("csrf").expect("csrf");
    let used = stranger.post("/.deskgate/account/email/confirm", &[("token", &token), ("csrf", &csrf)]).await;
    assert_eq!(used.status, 409, "{}", used.body);
    assert!(!used.body.contains("owner@example.org") && !used.body.contains("Owner"), "names nobody");
    assert_eq!(Browser::new(&stack).sign_in("asker@example.org", "correct horse battery").await.status, 303);

    // Without the form's token, or with a forged or spent link, nothing changes.
    let forged = stranger.post("/.deskgate/account/email/confirm", &[("token", &token), ("csrf", "x")]).await;
    assert_eq!(forged.status, 403);
    for bad in ["", "x", &"A".repeat(5000), &token] {
        let posted =
            stranger.post("/.deskgate/account/email/confirm", &[("token", bad), ("csrf", &csrf)]).await;
        assert_eq!(posted.status, 400, "{bad}: {}", posted.body);
    }
}

/// Two clients of one account: the page lists both, marks the one looking, and ending the
/// other from it makes the other's cookie a guest's at once.
async fn two_sessions_one_ended(stack: &Stack, driver: &str) {
    account(stack, "sam@example.org", "Sam Sessions", OLD, &[]).await;
    let mut client = Browser::new(stack);
    assert_eq!(sign_in_as(&mut client, "sam@example.org", OLD, "deskgate-it-client/1.0").await.status, 303);
    assert!(client.is_signed_in().await);

    let chrome = Chromium::start(driver).await;
    chrome.go(&format!("{}/.deskgate/login", stack.base)).await;
    chrome.type_into("input[name=username]", "sam@example.org").await;
    chrome.type_into("input[name=password]", OLD).await;
    chrome.click("form[action$='/login'] button").await;
    chrome.wait_for_url("the home page", |u| u == format!("{}/", stack.base)).await;
    // The session page links to the account page.
    chrome.go(&format!("{}/.deskgate/", stack.base)).await;
    chrome.click("a[href$='/.deskgate/account']").await;
    chrome.wait_for_url("the account page", |u| u.ends_with(ACCOUNT)).await;
    let page = chrome.source().await;
    assert_eq!(page.matches("<tr data-session=").count(), 2, "{page}");
    assert_eq!(page.matches("This session").count(), 1);
    assert!(page.contains("deskgate-it-client/1.0") && page.contains("Chrome"), "both clients: {page}");
    assert!(page.contains("from 127.0.0.1"), "{page}");

    let listed = client.get(ACCOUNT).await;
    assert_eq!(rows(&listed), 2);
    let theirs = this_handle(&listed);
    chrome.click(&format!("tr[data-session='{theirs}'] button")).await;
    chrome.wait_for_url("the page again", |u| u.ends_with("?done=ended")).await;
    let page = chrome.source().await;
    assert_eq!(page.matches("<tr data-session=").count(), 1, "{page}");
    assert!(!page.contains("deskgate-it-client/1.0"));
    chrome.quit().await;

    assert!(!client.is_signed_in().await, "the ended session's cookie is a guest's");
    let again = client.get(ACCOUNT).await;
    assert_eq!(again.status, 303, "a guest is sent to sign in");
    assert_eq!(again.location(), Some("/.deskgate/login?next=/.deskgate/account"));
}

#[tokio::test]
async fn the_account_page_lists_two_sessions_and_ends_one_in_memory() {
    let Some(driver) = peer("DESKGATE_TEST_CHROMEDRIVER") else { return };
    let stack = start(Options { port: Some(19882), ..Default::default() }).await;
    two_sessions_one_ended(&stack, &driver).await;
}

#[tokio::test]
async fn the_account_page_lists_two_sessions_and_ends_one_in_redis() {
    let Some(driver) = peer("DESKGATE_TEST_CHROMEDRIVER") else { return };
    let Some(redis) = peer("DESKGATE_TEST_REDIS") else { return };
    let prefix = RedisPrefix::new(&redis);
    // Goes into [storage], which the harness opens just before the model.
    let model = format!("sessions = \"{redis}\"\nredis_prefix = \"{prefix}\"\n{HELPDESK}");
    let stack = start(Options { model, port: Some(19883), ..Default::default() }).await;
    two_sessions_one_ended(&stack, &driver).await;
}

#[tokio::test]
async fn changing_the_password_needs_the_current_one_ends_the_other_session_and_keeps_this_one() {
    let stack = start(Options { port: Some(19884), ..Default::default() }).await;
    account(&stack, "pia@example.org", "Pia", OLD, &[]).await;
    let (mut here, mut there) = (Browser::new(&stack), Browser::new(&stack));
    assert_eq!(here.sign_in("pia@example.org", OLD).await.status, 303);
    assert_eq!(there.sign_in("pia@example.org", OLD).await.status, 303);
    let change = |current: &'static str, new: &'static str, confirm: &'static str| {
        [("current", current), ("password", new), ("confirm", confirm)]
    };

    let wrong = post_form(&mut here, "/.deskgate/account/password", &change("not it at all", NEW, NEW)).await;
    assert_eq!(wrong.status, 401, "{}", wrong.body);
    let short = post_form(&mut here, "/.deskgate/account/password", &change(OLD, "short", "short")).await;
    assert_eq!(short.status, 422, "the sign-up rule");
    let differ =
        post_form(&mut here, "/.deskgate/account/password", &change(OLD, NEW, "something else")).await;
    assert_eq!(differ.status, 422);
    assert!(there.is_signed_in().await, "nothing changed yet");

    let done = post_form(&mut here, "/.deskgate/account/password", &change(OLD, NEW, NEW)).await;
    assert_eq!(done.status, 303, "{}", done.body);
    assert_eq!(done.location(), Some("/.deskgate/account?done=password"));
    assert!(here.is_signed_in().await, "this session stays");
    assert!(!there.is_signed_in().await, "the other session ended");
    let page = here.get("/.deskgate/account?done=password").await;
    assert_eq!(rows(&page), 1, "only this session is listed");
    assert!(page.body.contains("Every other session of your account has ended."));
    assert_eq!(Browser::new(&stack).sign_in("pia@example.org", OLD).await.status, 401);
    assert_eq!(Browser::new(&stack).sign_in("pia@example.org", NEW).await.status, 303);
}

/// Guessing the current password from a session counts like guessing at the sign-in form:
/// past `rate_limit.per_account_and_address` the form is refused, the right password too.
#[tokio::test]
async fn guessing_the_current_password_is_rate_limited_like_sign_in() {
    let stack = start(Options { port: Some(19889), ..Default::default() }).await;
    let mut b = signed_in(&stack, "gus@example.org", &[]).await;
    let change = |current: &'static str| [("current", current), ("password", NEW), ("confirm", NEW)];
    for n in 0..5 {
        let page = post_form(&mut b, "/.deskgate/account/password", &change("a wrong guess")).await;
        assert_eq!(page.status, 401, "guess {n}");
    }
    let limited = post_form(&mut b, "/.deskgate/account/password", &change("correct horse battery")).await;
    assert_eq!(limited.status, 429, "{}", limited.body);
    let mut fresh = Browser::new(&stack);
    assert_eq!(fresh.sign_in("gus@example.org", OLD).await.status, 429, "the sign-in form counts them too");
    stack.clock.advance(15 * 60);
    assert_eq!(fresh.sign_in("gus@example.org", OLD).await.status, 303, "the password is unchanged");
}

#[tokio::test]
async fn posts_without_the_form_token_change_nothing() {
    let stack = start(Options { port: Some(19885), ..Default::default() }).await;
    account(&stack, "cy@example.org", "Cy", OLD, &[]).await;
    let (mut b, mut other) = (Browser::new(&stack), Browser::new(&stack));
    assert_eq!(b.sign_in("cy@example.org", OLD).await.status, 303);
    assert_eq!(other.sign_in("cy@example.org", OLD).await.status, 303);
    let theirs = this_handle(&other.get(ACCOUNT).await);
    for (path, fields) in [
        ("/.deskgate/account/name", vec![("name", "Forged")]),
        ("/.deskgate/account/password", vec![("current", OLD), ("password", NEW), ("confirm", NEW)]),
        ("/.deskgate/account/sessions/end", vec![("session", theirs.as_str())]),
        ("/.deskgate/account/sessions/end", vec![("session", "others")]),
    ] {
        let none = b.post(path, &fields).await;
        let mut with_bad = fields.clone();
        with_bad.push(("csrf", "a-token-from-somewhere-else"));
        let bad = b.post(path, &with_bad).await;
        assert_eq!((none.status, bad.status), (403, 403), "{path}");
    }
    assert!(other.is_signed_in().await, "no session ended");
    assert_eq!(header(&b.whoami().await, "x-deskgate-name"), "Cy", "no name changed");
    assert_eq!(Browser::new(&stack).sign_in("cy@example.org", OLD).await.status, 303, "no password changed");
}

/// A person can end only their own sessions: another's handle (seen, say, over a shoulder),
/// its store key or its cookie value names nothing on their page.
#[tokio::test]
async fn another_persons_session_cannot_be_ended_from_the_account_page() {
    let stack = start(Options { port: Some(19886), ..Default::default() }).await;
    let mut alice = signed_in(&stack, "alice@example.org", &[]).await;
    let mut mallory = signed_in(&stack, "mallory@example.org", &[]).await;
    let handle = this_handle(&alice.get(ACCOUNT).await);
    let cookie = alice.session_cookie().expect("a session cookie");
    let key = deskgate::session::SessionKey::from_cookie(&cookie).text();
    for target in [handle.as_str(), &cookie, &key] {
        let page = post_form(&mut mallory, "/.deskgate/account/sessions/end", &[("session", target)]).await;
        assert_eq!(page.status, 404, "{target}: {}", page.body);
    }
    let all = post_form(&mut mallory, "/.deskgate/account/sessions/end", &[("session", "others")]).await;
    assert_eq!(all.status, 303, "Mallory ends her own other sessions: none");
    assert!(alice.is_signed_in().await, "Alice's session lives");
    assert!(mallory.is_signed_in().await);
    assert!(!mallory.get(ACCOUNT).await.body.contains(&handle), "Alice's session is not on Mallory's page");
}

#[tokio::test]
async fn unknown_and_garbage_session_names_get_a_4xx() {
    let stack = start(Options { port: Some(19887), ..Default::default() }).await;
    let mut b = signed_in(&stack, "gia@example.org", &[]).await;
    let long = "A".repeat(20_000);
    for bad in [
        "",
        "x",
        "OTHERS",
        "others ",
        "../../etc",
        "%00",
        "\u{0}",
        "ünïcödé",
        "AAAAAAAAAAAAAAAAAAAAAA",
        &long,
    ] {
        let page = post_form(&mut b, "/.deskgate/account/sessions/end", &[("session", bad)]).await;
        assert!((400..500).contains(&page.status), "{bad:?}: {}", page.status);
    }
    // A field twice, a body that is no form, and one over the size limit.
    let csrf = b.get(ACCOUNT).await.field("csrf").unwrap();
    let twice = b
        .post("/.deskgate/account/sessions/end", &[("session", "a"), ("session", "b"), ("csrf", &csrf)])
        .await;
    assert!((400..500).contains(&twice.status), "{}", twice.status);
    let huge = "B".repeat(100 * 1024);
    let over =
        b.post("/.deskgate/account/sessions/end", &[("session", huge.as_str()), ("csrf", &csrf)]).await;
    assert!((400..500).contains(&over.status), "{}", over.status);
    let raw = b
        .client
        .post(format!("{}/.deskgate/account/sessions/end", stack.base))
        .header("cookie", format!("deskgate_session={}", b.session_cookie().unwrap()))
        .header("content-type", "application/x-www-form-urlencoded")
        .body(vec![0xff, 0xfe, b'=', 0x80])
        .send()
        .await
        .unwrap();
    assert!(raw.status().is_client_error(), "{}", raw.status());
    assert!(b.is_signed_in().await, "still answering, still signed in");
}

#[tokio::test]
async fn guests_are_sent_to_sign_in_and_names_are_escaped() {
    let stack = start(Options { port: Some(19888), ..Default::default() }).await;
    let mut guest = Browser::new(&stack);
    for path in [ACCOUNT] {
        let page = guest.get(path).await;
        assert_eq!(page.status, 303);
        assert_eq!(page.location(), Some("/.deskgate/login?next=/.deskgate/account"));
    }
    let csrf = guest.csrf().await;
    for path in [
        "/.deskgate/account/name",
        "/.deskgate/account/password",
        "/.deskgate/account/email",
        "/.deskgate/account/sessions/end",
    ] {
        let page = guest.post(path, &[("name", "x"), ("session", "others"), ("csrf", &csrf)]).await;
        assert_eq!(page.status, 303, "{path}");
        assert!(page.location().unwrap_or_default().starts_with("/.deskgate/login"), "{path}");
    }

    let mut b = signed_in(&stack, "eve@example.org", &[]).await;
    let renamed =
        post_form(&mut b, "/.deskgate/account/name", &[("name", "  <script>alert(1)</script> & \"Eve\"  ")])
            .await;
    assert_eq!(renamed.status, 303);
    assert_eq!(renamed.location(), Some("/.deskgate/account?done=name"));
    let page = b.get(renamed.location().unwrap()).await;
    assert!(page.body.contains("Your name is changed."));
    assert!(
        page.body.contains("&lt;script&gt;alert(1)&lt;/script&gt; &amp; &quot;Eve&quot;"),
        "{}",
        page.body
    );
    assert!(!page.body.contains("<script>"), "escaped");
    assert_eq!(header(&b.whoami().await, "x-deskgate-name"), "<script>alert(1)</script> & \"Eve\"");
    // A `done` the page does not know says nothing, and is not echoed.
    let odd = b.get("/.deskgate/account?done=%3Cb%3Eowned").await;
    assert_eq!(odd.status, 200);
    assert!(!odd.body.contains("owned"));
    for bad in ["", "   ", &"n".repeat(101), "line\nbreak"] {
        let page = post_form(&mut b, "/.deskgate/account/name", &[("name", bad)]).await;
        assert_eq!(page.status, 422, "{bad:?}");
    }
    // Without [smtp] the address cannot be changed here, and the page says whom to ask.
    let page = b.get(ACCOUNT).await;
    assert!(page.body.contains("Ask an administrator to change it."));
    let refused =
        post_form(&mut b, "/.deskgate/account/email", &[("email", "new@example.org"), ("current", OLD)])
            .await;
    assert_eq!(refused.status, 404);
}
