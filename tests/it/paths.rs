//! Path tricks are decided as the path they mean, and the backend is sent that path.

use crate::support::*;

const TRICKS: &[&str] = &[
    "/chat/%73ales",
    "/chat//sales",
    "/kb/../chat/sales",
    "/CHAT/sales",
    "/chat/sales;x",
    "/chat/sales?x=/kb",
    "/chat%2fsales",
    "/chat\\sales",
    "/./chat/./sales/",
    "/kb/%2e%2e/chat/sales",
];

#[tokio::test]
async fn path_tricks_do_not_bypass_a_rule() {
    let stack = start(Options::default()).await;
    let b = signed_in(&stack, "nosales@example.org", &[]).await;
    let cookie = format!("deskgate_session={}", b.session_cookie().unwrap());
    let (plain, _) = raw(stack.addr, "/chat/sales", &[("Cookie", &cookie)]).await;
    assert_eq!(plain, 403);
    for trick in TRICKS {
        let (status, body) = raw(stack.addr, trick, &[("Cookie", &cookie)]).await;
        assert_eq!(status, 403, "{trick}: {body}");
    }
    // And a guest is sent to sign in for each, as for the plain path.
    for trick in TRICKS {
        let (status, _) = raw(stack.addr, trick, &[("Accept", "text/html")]).await;
        assert_eq!(status, 302, "{trick}");
    }
}

#[tokio::test]
async fn the_backend_receives_the_normalized_path_it_was_decided_on() {
    let stack = start(Options::default()).await;
    let b = signed_in(&stack, "sales@example.org", &["trial_users"]).await;
    let cookie = format!("deskgate_session={}", b.session_cookie().unwrap());
    for trick in ["/chat/%73ales", "/kb/../chat/sales", "/chat//sales;jsessionid=1"] {
        let (status, body) = raw(stack.addr, trick, &[("Cookie", &cookie)]).await;
        assert_eq!(status, 200, "{trick}: {body}");
        assert!(body.contains("Chat with sales"), "{trick}: the helpdesk served /chat/sales");
    }
}

#[tokio::test]
async fn malformed_paths_and_the_reserved_prefix_in_disguise_are_refused() {
    let stack = start(Options::default()).await;
    for bad in ["/kb/%zz", "/kb/%00", "/kb/%c3"] {
        let (status, _) = raw(stack.addr, bad, &[]).await;
        assert_eq!(status, 400, "{bad}");
    }
    for disguised in ["/%2edeskgate/login", "/.DESKGATE/login", "/kb/../.deskgate/jwks.json"] {
        let (status, body) = raw(stack.addr, disguised, &[]).await;
        assert!(status == 404 || status == 200 && body.contains("\"keys\""), "{disguised}: {status}");
        assert!(!body.contains("Helpdesk"), "{disguised} must never reach the backend");
    }
}

/// A model with a `/billing` rule too, for the dotless and dotted i.
fn with_billing() -> Options {
    let model = format!(
        "{HELPDESK}\n[usergroups.billing]\nname = \"Billing\"\npermissions = [\"billing.view\"]\n\n[[rules]]\npath = \"/billing\"\npermission = \"billing.view\"\n"
    );
    Options { model, ..Options::default() }
}

/// An upstream that answers every request and records its request line.
async fn recording_upstream() -> (String, std::sync::Arc<std::sync::Mutex<Vec<String>>>) {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.expect("bind upstream");
    let url = format!("http://{}", listener.local_addr().expect("addr"));
    let seen = std::sync::Arc::new(std::sync::Mutex::new(Vec::new()));
    let record = seen.clone();
    tokio::spawn(async move {
        while let Ok((mut s, _)) = listener.accept().await {
            let record = record.clone();
            tokio::spawn(async move {
                let mut buf = Vec::new();
                let mut chunk = [0u8; 4096];
                while !buf.windows(4).any(|w| w == b"\r\n\r\n") {
                    match s.read(&mut chunk).await {
                        Ok(0) | Err(_) => return,
                        Ok(n) => buf.extend_from_slice(&chunk[..n]),
                    }
                }
                let line = String::from_utf8_lossy(&buf).lines().next().unwrap_or_default().to_owned();
                record.lock().unwrap().push(line);
                let reply = "HTTP/1.1 200 OK\r\nContent-Length: 4\r\nConnection: close\r\n\r\nseen";
                let _ = s.write_all(reply.as_bytes()).await;
            });
        }
    });
    (url, seen)
}

/// `text` with every byte that is not visible ASCII percent-encoded, as a request target.
fn target(text: &str) -> String {
    text.bytes()
        .map(|b| if b.is_ascii_graphic() { char::from(b).to_string() } else { format!("%{b:02X}") })
        .collect()
}

/// Spellings that Unicode case folding, Java's and .NET's ignore-case or NFKC read as a
/// protected path, each with the rule it falls under.
const UNICODE_SPELLINGS: &[&str] = &[
    "/chat/\u{17f}ales",             // ſ, long s
    "/b\u{131}ll\u{131}ng",          // ı, dotless i
    "/B\u{130}LL\u{130}NG/invoices", // İ, dotted capital I
    "/\u{212a}b/advanced",           // K, Kelvin sign
    "/／ｃｈａｔ／ｓａｌｅｓ",       // fullwidth letters and solidus
    "/ＣＨＡＴ/ｓａｌｅｓ",
    "/chat/ｓａｌｅｓ",
    "/ｃhat/saｌes",
    "/chat／sales",        // fullwidth solidus alone
    "/kb/．．/chat/sales", // fullwidth dot segment
];

#[tokio::test]
async fn unicode_case_and_width_spellings_do_not_bypass_a_rule() {
    let (upstream, seen) = recording_upstream().await;
    let stack = start(Options { upstream: Some(upstream), ..with_billing() }).await;
    let b = signed_in(&stack, "nosales@example.org", &[]).await;
    let cookie = format!("deskgate_session={}", b.session_cookie().unwrap());
    for spelling in UNICODE_SPELLINGS {
        let t = target(spelling);
        let (status, body) = raw(stack.addr, &t, &[("Accept", "text/html")]).await;
        assert_eq!(status, 302, "guest at {spelling} ({t}): {body}");
        let (status, body) = raw(stack.addr, &t, &[("Cookie", &cookie)]).await;
        assert_eq!(status, 403, "signed in without the permission at {spelling} ({t}): {body}");
        assert!(body.contains("permission-missing"), "{spelling}: {body}");
    }
    assert_eq!(seen.lock().unwrap().len(), 0, "the backend saw {:?}", seen.lock().unwrap());
    // The same person reaches what they may see, so the recorder does record.
    let (status, _) = raw(stack.addr, "/kb/caf%C3%A9", &[("Cookie", &cookie)]).await;
    assert_eq!(status, 200);
    assert_eq!(*seen.lock().unwrap(), ["GET /kb/caf%C3%A9 HTTP/1.1"]);
}

#[tokio::test]
async fn a_unicode_spelling_reaches_the_backend_as_sent_when_allowed() {
    let (upstream, seen) = recording_upstream().await;
    let stack = start(Options { upstream: Some(upstream), ..with_billing() }).await;
    let b = signed_in(&stack, "billing@example.org", &["billing"]).await;
    let cookie = format!("deskgate_session={}", b.session_cookie().unwrap());
    let (status, body) = raw(stack.addr, "/b%C4%B1ll%C4%B1ng", &[("Cookie", &cookie)]).await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(*seen.lock().unwrap(), ["GET /b%C4%B1ll%C4%B1ng HTTP/1.1"]);
}

#[tokio::test]
async fn the_reserved_prefix_is_never_proxied_in_any_unicode_spelling() {
    let stack = start(Options::default()).await;
    let mut guest = Browser::new(&stack);
    for spelling in
        ["/%EF%BC%8Edeskgate/admin", "/.DESKGATE/admin", "/%2Edeskgate/admin", "/.%EF%BD%84eskgate/admin"]
    {
        let page = guest.get(spelling).await;
        assert_eq!(page.status, 404, "{spelling}: {}", page.body);
        assert!(page.body.contains("There is no such deskgate page"), "{spelling}: {}", page.body);
    }
}
