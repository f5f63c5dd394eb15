//! What guests may do, with Everyone enabled and disabled.

use crate::support::*;

#[tokio::test]
async fn guest_with_everyone_enabled_reads_the_kb_and_is_sent_to_sign_in_for_sales_chat() {
    let stack = start(Options::default()).await;
    let mut guest = Browser::new(&stack);
    let kb = guest.get("/kb").await;
    assert_eq!(kb.status, 200, "{}", kb.body);
    assert!(kb.body.contains("Knowledgebase"));

    let seen = guest.whoami().await;
    assert_eq!(seen["headers"]["x-deskgate-usergroups"], "everyone");
    for user_header in
        ["x-deskgate-user", "x-deskgate-email", "x-deskgate-name", "x-deskgate-provider", "x-deskgate-jwt"]
    {
        assert!(seen["headers"].get(user_header).is_none(), "guests get no {user_header}");
    }
    assert_eq!(seen["guest"], true);

    let sales = guest.get("/chat/sales").await;
    assert_eq!(sales.status, 302);
    assert_eq!(sales.location(), Some("/.deskgate/login?next=/chat/sales"));
}

#[tokio::test]
async fn everyone_disabled_sends_pages_to_login_answers_api_401_and_login_still_loads() {
    let model = HELPDESK.replace("[everyone]\nenabled = true", "[everyone]\nenabled = false").replace(
        "[registered]\npermissions = [\"tickets.read\"]",
        "[registered]\npermissions = [\"portal.view\", \"tickets.read\"]",
    );
    let stack = start(Options { model, ..Default::default() }).await;
    let mut guest = Browser::new(&stack);

    let page = guest.get("/kb").await;
    assert_eq!(page.status, 302);
    assert_eq!(page.location(), Some("/.deskgate/login?next=/kb"));
    let home = guest.get("/").await;
    assert_eq!(home.status, 302, "even the home page needs a sign-in");

    let api = guest.get_with("/api/tickets", &[("accept", "application/json")]).await;
    assert_eq!(api.status, 401);
    assert_eq!(api.json()["error"], "sign-in required");

    let login = guest.get("/.deskgate/login").await;
    assert_eq!(login.status, 200);
    assert!(login.body.contains("Sign in"));
    assert_eq!(guest.get("/.deskgate/healthz").await.status, 200);

    // Signed in, the same person gets Registered's permissions, and Everyone's apply to nobody.
    let mut member = signed_in(&stack, "reg@example.org", &[]).await;
    let seen = member.whoami().await;
    assert_eq!(seen["headers"]["x-deskgate-usergroups"], "registered");
    assert_eq!(member.get("/kb").await.status, 403, "kb.read came only from Everyone");
}
