//! The portal's pages: permission checks, comment moderation and the tickets API.

use serde_json::Value;

use crate::support::{Account, Helpdesk, JwksServer, Key, guest, settings};

async fn setup() -> (Key, JwksServer, Helpdesk) {
    let key = Key::generate("deskgate-1");
    let jwks = JwksServer::start(&[&key]).await;
    let helpdesk = Helpdesk::start(settings(&jwks)).await;
    (key, jwks, helpdesk)
}

#[tokio::test]
async fn pages_refuse_without_their_permission() {
    let (key, _jwks, helpdesk) = setup().await;
    let registered = Account::registered().headers(&key);
    for path in ["/kb/advanced", "/kb/articles/single-sign-on", "/chat/sales", "/chat/support"] {
        let response = helpdesk.get(path, &registered).await;
        assert_eq!(response.status(), 403, "{path}");
        let body = response.text().await.unwrap();
        assert!(body.contains("You do not have permission"), "{body}");
    }
    for path in ["/kb", "/kb/articles/reset-password", "/news"] {
        assert_eq!(helpdesk.get(path, &registered).await.status(), 200, "{path}");
    }

    let nothing = guest("");
    for path in ["/kb", "/news", "/kb/articles/reset-password"] {
        assert_eq!(helpdesk.get(path, &nothing).await.status(), 403, "{path}");
    }
    let home = helpdesk.page("/", &nothing).await;
    assert!(home.contains("There is nothing here you may open yet."), "{home}");
    assert_eq!(helpdesk.get("/kb/articles/no-such-article", &registered).await.status(), 404);
    assert_eq!(helpdesk.get("/no-such-page", &registered).await.status(), 404);
}

#[tokio::test]
async fn sections_follow_the_permissions() {
    let (key, _jwks, helpdesk) = setup().await;
    let vip = Account::vip().headers(&key);
    let home = helpdesk.page("/", &vip).await;
    assert!(home.contains("<a href=\"/chat/support\">Chat with support</a>"), "{home}");
    assert!(!home.contains("/chat/sales"), "{home}");

    let trial = guest("kb.read,chat.sales");
    let home = helpdesk.page("/", &trial).await;
    assert!(home.contains("<a href=\"/chat/sales\">Chat with sales</a>"), "{home}");
    assert!(!home.contains("/chat/support"), "{home}");

    let news = helpdesk.page("/news", &vip).await;
    assert!(news.contains("Support chat now open on Saturdays"), "{news}");
    let chat = helpdesk.page("/chat/support", &vip).await;
    assert!(chat.contains("new WebSocket("), "{chat}");
    assert!(chat.contains("'/ws'"), "{chat}");
}

async fn post_comment(helpdesk: &Helpdesk, headers: &[(String, String)], text: &str) -> reqwest::Response {
    let mut request =
        helpdesk.client.post(format!("{}/kb/articles/reset-password", helpdesk.base)).form(&[("text", text)]);
    for (name, value) in headers {
        request = request.header(name, value);
    }
    request.send().await.unwrap()
}

fn location(response: &reqwest::Response) -> &str {
    response.headers()["location"].to_str().unwrap()
}

#[tokio::test]
async fn comments_wait_for_moderation_unless_unmoderated_is_permitted() {
    let (key, _jwks, helpdesk) = setup().await;
    let registered = Account::registered().headers(&key);
    let power_user = Account::power_user().headers(&key);

    let response = post_comment(&helpdesk, &registered, "Does this work with LDAP?").await;
    assert_eq!(response.status(), 303);
    assert_eq!(location(&response), "/kb/articles/reset-password?posted=pending");
    let page = helpdesk.page(location(&response), &registered).await;
    assert!(page.contains("your comment is awaiting moderation"), "{page}");
    assert!(page.contains("1 comment(s) awaiting moderation"), "{page}");
    assert!(!page.contains("Does this work with LDAP?"), "{page}");

    let response = post_comment(&helpdesk, &power_user, "Yes: <b>ask</b> your admin.").await;
    assert_eq!(response.status(), 303);
    assert_eq!(location(&response), "/kb/articles/reset-password?posted=published");
    let page = helpdesk.page("/kb/articles/reset-password", &registered).await;
    assert!(page.contains("<strong>Zoë Müller</strong>: Yes: &lt;b&gt;ask&lt;/b&gt; your admin."), "{page}");
    assert!(!page.contains("Does this work with LDAP?"), "{page}");
    assert!(page.contains("<form method=\"post\""), "{page}");
}

#[tokio::test]
async fn guests_and_empty_comments_are_refused() {
    let (key, _jwks, helpdesk) = setup().await;
    let visitor = guest("kb.read");
    let page = helpdesk.page("/kb/articles/reset-password", &visitor).await;
    assert!(page.contains("Sign in to comment."), "{page}");
    assert!(!page.contains("<form"), "{page}");
    assert_eq!(post_comment(&helpdesk, &visitor, "hello").await.status(), 401);

    let registered = Account::registered().headers(&key);
    assert_eq!(post_comment(&helpdesk, &registered, "   ").await.status(), 400);
    let too_long = "x".repeat(2001);
    assert_eq!(post_comment(&helpdesk, &registered, &too_long).await.status(), 400);
    let page = helpdesk.page("/kb/articles/reset-password", &registered).await;
    assert!(page.contains("No comments yet."), "{page}");
}

#[tokio::test]
async fn the_tickets_api_needs_a_verified_identity() {
    let (key, _jwks, helpdesk) = setup().await;

    for headers in [guest("kb.read"), Account::vip().plain_headers()] {
        let response = helpdesk.get("/api/tickets", &headers).await;
        assert_eq!(response.status(), 401);
        assert_eq!(response.headers()["content-type"], "application/json");
        let body: Value = response.json().await.unwrap();
        assert_eq!(body["error"], "sign-in required");
    }

    let response = helpdesk.get("/api/tickets", &Account::vip().headers(&key)).await;
    assert_eq!(response.status(), 200);
    let tickets: Value = response.json().await.unwrap();
    let tickets = tickets.as_array().unwrap();
    assert!(!tickets.is_empty());
    assert!(tickets.iter().all(|t| t["requester"] == "vera@example.com"));
}
