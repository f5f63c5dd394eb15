//! Sign-up that waits: email validation through a real SMTP server on loopback, and
//! approval by an administrator in the admin pages.

use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader};
use tokio::net::TcpListener;
use tokio::sync::mpsc;

use crate::support::*;

const PASSWORD: &str = "long password 1";

/// A message the SMTP server received.
#[derive(Debug)]
pub(crate) struct Mail {
    pub(crate) from: String,
    pub(crate) to: Vec<String>,
    pub(crate) data: String,
}

/// A small SMTP server on 127.0.0.1: enough of RFC 5321 for one client sending plain mail.
/// Every message it takes comes out of the returned channel.
pub(crate) async fn smtp_server() -> (u16, mpsc::UnboundedReceiver<Mail>) {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = listener.local_addr().unwrap().port();
    let (tx, rx) = mpsc::unbounded_channel();
    tokio::spawn(async move {
        loop {
            let Ok((socket, _)) = listener.accept().await else { return };
            let tx = tx.clone();
            tokio::spawn(async move {
                let (read, mut write) = socket.into_split();
                let mut lines = BufReader::new(read).lines();
                write.write_all(b"220 mail.test ESMTP ready\r\n").await.unwrap();
                let (mut from, mut to) = (String::new(), Vec::new());
                while let Ok(Some(line)) = lines.next_line().await {
                    let verb = line.split([' ', ':']).next().unwrap_or("").to_ascii_uppercase();
                    let reply: &[u8] = match verb.as_str() {
                        "EHLO" => b"250-mail.test\r\n250 8BITMIME\r\n",
                        "HELO" => b"250 mail.test\r\n",
                        "MAIL" => {
                            from = line[10..].to_owned();
                            b"250 OK\r\n"
                        }
                        "RCPT" => {
                            to.push(line[8..].to_owned());
                            b"250 OK\r\n"
                        }
                        "DATA" => {
                            write.write_all(b"354 End data with <CR><LF>.<CR><LF>\r\n").await.unwrap();
                            let mut data = String::new();
                            while let Ok(Some(l)) = lines.next_line().await {
                                if l == "." {
                                    break;
                                }
                                // Dot-stuffing: a leading `..` stands for `.`.
                                data.push_str(l.strip_prefix('.').unwrap_or(&l));
                                data.push_str("\r\n");
                            }
                            let mail =
                                Mail { from: std::mem::take(&mut from), to: std::mem::take(&mut to), data };
                            tx.send(mail).ok();
                            b"250 OK queued\r\n"
                        }
                        "RSET" | "NOOP" => b"250 OK\r\n",
                        "QUIT" => {
                            write.write_all(b"221 Bye\r\n").await.unwrap();
                            return;
                        }
                        _ => b"502 Command not implemented\r\n",
                    };
                    write.write_all(reply).await.unwrap();
                }
            });
        }
    });
    (port, rx)
}

pub(crate) fn validation_head(port: u16) -> String {
    format!(
        "[registration]\nmode = \"email-validation\"\n\n[smtp]\nhost = \"127.0.0.1\"\nport = {port}\n\
         from = \"Helpdesk <noreply@example.org>\"\nvalidation_ttl = \"1h\"\n\
         subject = \"Welcome {{name}}\"\n"
    )
}

/// A quoted-printable body decoded: soft line breaks joined, `=XX` turned into its byte.
fn unquote(text: &str) -> String {
    let joined = text.replace("=\r\n", "");
    let bytes = joined.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'=' && i + 2 < bytes.len() {
            if let Ok(b) = u8::from_str_radix(&joined[i + 1..i + 3], 16) {
                out.push(b);
                i += 3;
                continue;
            }
        }
        out.push(bytes[i]);
        i += 1;
    }
    String::from_utf8(out).unwrap()
}

/// The path and query of the validation link in a mail.
pub(crate) fn link(mail: &Mail, base: &str) -> String {
    link_to(mail, base, "/.deskgate/validate?token=")
}

/// The path and query of the link in a mail that starts with `prefix` (a path and query).
pub(crate) fn link_to(mail: &Mail, base: &str, prefix: &str) -> String {
    let (head, body) = mail.data.split_once("\r\n\r\n").expect("headers, then a body");
    let text = if head.contains("quoted-printable") { unquote(body) } else { body.to_owned() };
    let start = text.find(&format!("{base}{prefix}")).expect("the link");
    let url: String = text[start..].chars().take_while(|c| !c.is_whitespace()).collect();
    url.trim_start_matches(base).to_owned()
}

#[tokio::test]
async fn email_validation_mails_a_link_that_activates_the_account_once() {
    let (port, mut mails) = smtp_server().await;
    let stack = start(Options { head: validation_head(port), ..Default::default() }).await;
    let mut b = Browser::new(&stack);
    assert!(b.get("/.deskgate/login").await.body.contains("/.deskgate/register"), "sign-up is offered");

    let page = b.sign_up("Val Idate", "val@example.org", PASSWORD).await;
    assert_eq!(page.status, 200, "{}", page.body);
    assert!(page.body.contains("Check your email"), "{}", page.body);
    assert!(b.session_cookie().is_none(), "not signed in before validating");

    let mail = mails.recv().await.expect("a mail");
    assert_eq!(mail.from, "<noreply@example.org>");
    assert_eq!(mail.to, ["<val@example.org>"]);
    assert!(mail.data.contains("Subject: Welcome Val Idate"), "{}", mail.data);
    let path = link(&mail, &stack.base);

    let refused = b.sign_in("val@example.org", PASSWORD).await;
    assert_eq!(refused.status, 401);
    assert!(refused.body.contains("confirm your email address first"), "{}", refused.body);
    // Within the link's lifetime the address stays taken.
    let mut other = Browser::new(&stack);
    assert_eq!(other.sign_up("Someone Else", "VAL@example.org", PASSWORD).await.status, 409);

    let confirmed = b.get(&path).await;
    assert_eq!(confirmed.status, 200, "{}", confirmed.body);
    assert!(confirmed.body.contains("Your email address is confirmed — sign in"), "{}", confirmed.body);
    let again = b.get(&path).await;
    assert_eq!(again.status, 400, "the link works once");
    assert!(again.body.contains("already been used, has expired"), "{}", again.body);

    assert_eq!(b.sign_in("val@example.org", PASSWORD).await.status, 303);
    assert!(b.is_signed_in().await);

    // A forged token and a missing one get the same page.
    let forged = b.get("/.deskgate/validate?token=AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA").await;
    assert_eq!(forged.status, 400);
    assert_eq!(b.get("/.deskgate/validate").await.status, 400);
}

/// Lost the mail? Signing in with the right password sends a new link, at most one every
/// ten minutes (the sign-up's own mail counts); a wrong password sends nothing.
#[tokio::test]
async fn signing_in_before_validating_sends_a_new_link_at_most_every_ten_minutes() {
    let (port, mut mails) = smtp_server().await;
    let stack = start(Options { head: validation_head(port), ..Default::default() }).await;
    let mut b = Browser::new(&stack);
    assert_eq!(b.sign_up("Lost Mail", "lost@example.org", PASSWORD).await.status, 200);
    let first = link(&mails.recv().await.expect("the sign-up's mail"), &stack.base);

    let soon = b.sign_in("lost@example.org", PASSWORD).await;
    assert_eq!(soon.status, 401);
    assert!(soon.body.contains("open the link in the email we sent you"), "{}", soon.body);
    stack.clock.advance(11 * 60);
    let wrong = b.sign_in("lost@example.org", "not the password").await;
    assert!(wrong.body.contains("The email or password is not correct."), "{}", wrong.body);
    let later = b.sign_in("lost@example.org", PASSWORD).await;
    assert_eq!(later.status, 401);
    assert!(later.body.contains("we have just sent you a new link"), "{}", later.body);
    let again = b.sign_in("lost@example.org", PASSWORD).await;
    assert!(again.body.contains("open the link in the email we sent you"), "no third mail: {}", again.body);

    let mail = mails.recv().await.expect("the new link");
    assert_eq!(mail.to, ["<lost@example.org>"]);
    let second = link(&mail, &stack.base);
    assert_ne!(first, second, "a new token");
    assert!(mails.try_recv().is_err(), "one new mail only");
    assert_eq!(b.get(&second).await.status, 200);
    assert_eq!(b.sign_in("lost@example.org", PASSWORD).await.status, 303);
}

#[tokio::test]
async fn an_expired_validation_link_is_refused_and_the_address_may_sign_up_again() {
    let (port, mut mails) = smtp_server().await;
    let stack = start(Options { head: validation_head(port), ..Default::default() }).await;
    let mut b = Browser::new(&stack);
    assert_eq!(b.sign_up("Late Comer", "late@example.org", PASSWORD).await.status, 200);
    let path = link(&mails.recv().await.expect("a mail"), &stack.base);

    stack.clock.advance(3601);
    let expired = b.get(&path).await;
    assert_eq!(expired.status, 400);
    assert!(expired.body.contains("has expired"), "{}", expired.body);
    let refused = b.sign_in("late@example.org", PASSWORD).await;
    assert_eq!(refused.status, 401);
    assert!(refused.body.contains("confirm your email address first"), "{}", refused.body);
    assert!(refused.body.contains("we have just sent you a new link"), "{}", refused.body);
    let resent = link(&mails.recv().await.expect("the new link"), &stack.base);

    // The lapsed sign-up does not hold the address: signing up again replaces it (the
    // link sent for the old one stops working) and mails a fresh link.
    let again = b.sign_up("Late Comer", "late@example.org", PASSWORD).await;
    assert_eq!(again.status, 200, "{}", again.body);
    let fresh = link(&mails.recv().await.expect("a third mail"), &stack.base);
    assert_ne!(fresh, path);
    assert_eq!(b.get(&resent).await.status, 400, "the replaced sign-up's link");
    assert_eq!(b.get(&fresh).await.status, 200);
    assert_eq!(b.sign_in("late@example.org", PASSWORD).await.status, 303);
}

#[tokio::test]
async fn a_mail_server_that_cannot_be_reached_leaves_no_account() {
    // A port that was just free: nothing listens there.
    let port = TcpListener::bind("127.0.0.1:0").await.unwrap().local_addr().unwrap().port();
    let stack = start(Options { head: validation_head(port), ..Default::default() }).await;
    let mut b = Browser::new(&stack);
    let page = b.sign_up("No Mail", "nomail@example.org", PASSWORD).await;
    assert_eq!(page.status, 503, "{}", page.body);
    assert!(page.body.contains("no account was created"), "{}", page.body);
    let refused = b.sign_in("nomail@example.org", PASSWORD).await;
    assert!(refused.body.contains("email or password is not correct"), "{}", refused.body);

    // The same address can sign up again once mail works; here it fails the same clean way.
    let page = b.sign_up("No Mail", "nomail@example.org", PASSWORD).await;
    assert_eq!(page.status, 503, "not `already exists`: {}", page.body);
}

fn approval_stack_model() -> String {
    format!(
        "{HELPDESK}\n[usergroups.admins]\nname = \"Administrators\"\npermissions = [\"deskgate.admin\"]\n"
    )
}

/// The account id in the approve form of the pending sign-up shown with `email`.
fn pending_id(page: &Page, email: &str) -> String {
    let row = page.body.find(email).unwrap_or_else(|| panic!("{email} is listed: {}", page.body));
    let rest = &page.body[row..];
    let start =
        rest.find("/.deskgate/admin/signups/").expect("an approve form") + "/.deskgate/admin/signups/".len();
    rest[start..].split('/').next().unwrap().to_owned()
}

#[tokio::test]
async fn approval_waits_for_an_administrator_who_approves_or_rejects() {
    let stack = start(Options {
        head: "[registration]\nmode = \"approval\"\n".into(),
        model: approval_stack_model(),
        ..Default::default()
    })
    .await;
    let mut ann = Browser::new(&stack);
    let page = ann.sign_up("Ann Applicant", "ann@example.org", PASSWORD).await;
    assert_eq!(page.status, 200, "{}", page.body);
    assert!(page.body.contains("An administrator will review your request"), "{}", page.body);
    let refused = ann.sign_in("ann@example.org", PASSWORD).await;
    assert_eq!(refused.status, 401);
    assert!(refused.body.contains("An administrator has not approved this account yet"), "{}", refused.body);
    let mut rex = Browser::new(&stack);
    assert_eq!(rex.sign_up("Rex Rejected", "rex@example.org", PASSWORD).await.status, 200);

    // Someone without the permission cannot see or decide.
    let mut nobody = signed_in(&stack, "nobody@example.org", &[]).await;
    assert_eq!(nobody.get("/.deskgate/admin/signups").await.status, 403);

    let mut admin = signed_in(&stack, "admin@example.org", &["admins"]).await;
    let list = admin.get("/.deskgate/admin/signups").await;
    assert_eq!(list.status, 200, "{}", list.body);
    assert!(list.body.contains("2 waiting for approval"), "{}", list.body);
    let people = admin.get("/.deskgate/admin/people?q=ann%40example.org").await;
    assert!(people.body.contains("<td>Waits for approval</td>"), "the people list tells: {}", people.body);
    let (ann_id, rex_id) = (pending_id(&list, "ann@example.org"), pending_id(&list, "rex@example.org"));
    let csrf = list.field("csrf").expect("csrf");

    // A form without the token changes nothing.
    let foreign =
        admin.post(&format!("/.deskgate/admin/signups/{ann_id}/approve"), &[("csrf", "forged")]).await;
    assert_eq!(foreign.status, 403);
    assert_eq!(ann.sign_in("ann@example.org", PASSWORD).await.status, 401);

    let approved =
        admin.post(&format!("/.deskgate/admin/signups/{ann_id}/approve"), &[("csrf", &csrf)]).await;
    assert_eq!(approved.status, 303, "{}", approved.body);
    let rejected = admin.post(&format!("/.deskgate/admin/signups/{rex_id}/reject"), &[("csrf", &csrf)]).await;
    assert_eq!(rejected.status, 303, "{}", rejected.body);
    let after = admin.get(rejected.location().unwrap()).await;
    assert!(after.body.contains("No sign-up is waiting for approval"), "{}", after.body);
    // A decided sign-up cannot be decided again.
    let twice = admin.post(&format!("/.deskgate/admin/signups/{rex_id}/approve"), &[("csrf", &csrf)]).await;
    assert_eq!(twice.status, 409);

    assert_eq!(ann.sign_in("ann@example.org", PASSWORD).await.status, 303);
    assert!(ann.is_signed_in().await);
    let never = rex.sign_in("rex@example.org", PASSWORD).await;
    assert_eq!(never.status, 401);
    assert!(never.body.contains("was not approved"), "{}", never.body);
    assert!(!rex.is_signed_in().await);
}

#[tokio::test]
async fn the_api_lists_and_decides_pending_sign_ups() {
    let stack = start(Options {
        head: "[registration]\nmode = \"approval\"\n".into(),
        model: approval_stack_model(),
        ..Default::default()
    })
    .await;
    let mut cat = Browser::new(&stack);
    assert_eq!(cat.sign_up("Cat Api", "cat@example.org", PASSWORD).await.status, 200);
    let mut admin = signed_in(&stack, "admin@example.org", &["admins"]).await;
    let list = admin.get("/.deskgate/api/signups").await.json();
    assert_eq!(list["total"], 1);
    assert_eq!(list["signups"][0]["email"], "cat@example.org");
    assert_eq!(list["signups"][0]["status"], "pending-approval");
    let id = list["signups"][0]["id"].as_str().unwrap().to_owned();

    let token = admin.get("/.deskgate/api/csrf").await.json()["token"].as_str().unwrap().to_owned();
    let url = format!("{}/.deskgate/api/signups/{id}/approve", stack.base);
    let cookies = admin.cookies.iter().map(|(k, v)| format!("{k}={v}")).collect::<Vec<_>>().join("; ");
    let without = admin.client.post(&url).header("cookie", &cookies).send().await.unwrap();
    assert_eq!(without.status(), 403, "no CSRF header, no change");
    let resp = admin
        .client
        .post(&url)
        .header("cookie", &cookies)
        .header("x-deskgate-csrf", token)
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 200);
    let body: serde_json::Value = resp.json().await.unwrap();
    assert_eq!(body["status"], "active");
    assert_eq!(cat.sign_in("cat@example.org", PASSWORD).await.status, 303);
}
