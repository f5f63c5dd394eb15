//! The chat WebSockets, through a real WebSocket client.

use futures_util::{SinkExt as _, StreamExt as _};
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::tungstenite::client::IntoClientRequest as _;
use tokio_tungstenite::tungstenite::http::{HeaderName, HeaderValue, StatusCode};

use crate::support::{Account, Helpdesk, JwksServer, Key, guest, settings};

async fn connect(
    helpdesk: &Helpdesk,
    path: &str,
    headers: &[(String, String)],
) -> Result<
    tokio_tungstenite::WebSocketStream<tokio_tungstenite::MaybeTlsStream<tokio::net::TcpStream>>,
    tokio_tungstenite::tungstenite::Error,
> {
    let mut request = format!("ws://{}{path}", helpdesk.address).into_client_request().unwrap();
    for (name, value) in headers {
        request
            .headers_mut()
            .append(HeaderName::from_bytes(name.as_bytes()).unwrap(), HeaderValue::from_str(value).unwrap());
    }
    tokio_tungstenite::connect_async(request).await.map(|(socket, _)| socket)
}

#[tokio::test]
async fn the_support_agent_answers_a_vip() {
    let key = Key::generate("deskgate-1");
    let jwks = JwksServer::start(&[&key]).await;
    let helpdesk = Helpdesk::start(settings(&jwks)).await;

    let mut socket = connect(&helpdesk, "/chat/support/ws", &Account::vip().headers(&key)).await.unwrap();
    for text in ["hello", "my printer is on fire"] {
        socket.send(Message::text(text)).await.unwrap();
        let answer = socket.next().await.unwrap().unwrap();
        assert_eq!(answer.to_text().unwrap(), format!("support agent: you said: {text}"));
    }
    socket.close(None).await.unwrap();
}

#[tokio::test]
async fn the_sales_agent_answers_a_trial_user() {
    let key = Key::generate("deskgate-1");
    let jwks = JwksServer::start(&[&key]).await;
    let helpdesk = Helpdesk::start(settings(&jwks)).await;

    let mut socket = connect(&helpdesk, "/chat/sales/ws", &guest("kb.read,chat.sales")).await.unwrap();
    socket.send(Message::text("how much?")).await.unwrap();
    let answer = socket.next().await.unwrap().unwrap();
    assert_eq!(answer.to_text().unwrap(), "sales agent: you said: how much?");
}

#[tokio::test]
async fn the_upgrade_is_refused_without_the_permission() {
    let key = Key::generate("deskgate-1");
    let jwks = JwksServer::start(&[&key]).await;
    let helpdesk = Helpdesk::start(settings(&jwks)).await;

    let attempts = [
        ("/chat/sales/ws", Account::vip().headers(&key)),
        ("/chat/support/ws", Account::registered().headers(&key)),
        // Claiming to be a VIP without a token gets nothing.
        ("/chat/support/ws", Account::vip().plain_headers()),
    ];
    for (path, headers) in attempts {
        match connect(&helpdesk, path, &headers).await {
            Err(tokio_tungstenite::tungstenite::Error::Http(response)) => {
                assert_eq!(response.status(), StatusCode::FORBIDDEN, "{path}");
            }
            other => panic!("{path}: expected a refused upgrade, got {other:?}"),
        }
    }
}
