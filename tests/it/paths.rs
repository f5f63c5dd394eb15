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
