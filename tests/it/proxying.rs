//! The proxy end to end: WebSocket for a signed-in person, a dead upstream.

use futures_util::{SinkExt, StreamExt};
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::tungstenite::client::IntoClientRequest;

use crate::support::*;

#[tokio::test]
async fn websocket_through_deskgate_works_for_a_signed_in_user() {
    let stack = start(Options::default()).await;
    let b = signed_in(&stack, "ws@example.org", &["vips"]).await;
    let mut req = format!("ws://{}/chat/support/ws", stack.addr).into_client_request().unwrap();
    let cookie = format!("deskgate_session={}", b.session_cookie().unwrap());
    req.headers_mut().insert("cookie", cookie.parse().unwrap());
    let (mut ws, resp) = tokio_tungstenite::connect_async(req).await.expect("upgrade through deskgate");
    assert_eq!(resp.status(), 101);
    ws.send(Message::text("hello")).await.unwrap();
    let reply = ws.next().await.unwrap().unwrap();
    assert_eq!(reply.into_text().unwrap().as_str(), "support agent: you said: hello");

    // Without the permission the upgrade is refused by deskgate.
    let guest = format!("ws://{}/chat/support/ws", stack.addr).into_client_request().unwrap();
    assert!(tokio_tungstenite::connect_async(guest).await.is_err());
}

#[tokio::test]
async fn an_upstream_that_is_down_gives_a_clear_502() {
    let port = {
        let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        l.local_addr().unwrap().port()
    };
    let stack =
        start(Options { upstream: Some(format!("http://127.0.0.1:{port}")), ..Default::default() }).await;
    let mut b = Browser::new(&stack);
    let page = b.get("/kb").await;
    assert_eq!(page.status, 502);
    assert!(page.body.contains("The application is unavailable"));
    assert!(page.body.contains("Request id:"), "{}", page.body);
    assert!(!page.body.contains("onnection refused"), "no internal error text reaches the client");
    let api = b.get_with("/kb", &[("accept", "application/json")]).await;
    assert_eq!(api.status, 502);
    assert!(api.json()["request_id"].is_string());
}

#[tokio::test]
async fn an_upstream_that_never_answers_gives_504() {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move {
        let mut held = Vec::new();
        while let Ok((s, _)) = listener.accept().await {
            held.push(s);
        }
    });
    let stack = start(Options { upstream: Some(format!("http://{addr}")), ..Default::default() }).await;
    let page = Browser::new(&stack).get("/kb").await;
    assert_eq!(page.status, 504);
}
