//! Several upstreams: `[[routes]]` send a path prefix or a host to a named upstream, and
//! each upstream sees only its own requests, WebSocket upgrades included, however the
//! prefix or the host is spelled.

use std::sync::{Arc, Mutex};

use axum::extract::ws::{Message as AxumMessage, WebSocketUpgrade};
use axum::extract::{FromRequestParts, Request};
use axum::response::{IntoResponse, Response};
use futures_util::StreamExt;
use serde_json::Value;
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::tungstenite::client::IntoClientRequest;

use crate::support::*;

/// An upstream that notes every request target it is sent, answers with its name, and
/// answers a WebSocket handshake with one message naming itself and the path.
struct Recorder {
    port: u16,
    seen: Arc<Mutex<Vec<String>>>,
}

impl Recorder {
    async fn start(name: &'static str, port: u16) -> Recorder {
        let listener = tokio::net::TcpListener::bind(("127.0.0.1", port)).await.expect("bind a recorder");
        let seen = Arc::new(Mutex::new(Vec::new()));
        let log = seen.clone();
        let app = axum::Router::new().fallback(move |req: Request| {
            let log = log.clone();
            async move { answer(name, &log, req).await }
        });
        tokio::spawn(async move { axum::serve(listener, app).await });
        Recorder { port, seen }
    }

    fn url(&self) -> String {
        format!("http://127.0.0.1:{}", self.port)
    }

    fn seen(&self) -> Vec<String> {
        self.seen.lock().unwrap().clone()
    }
}

async fn answer(name: &'static str, log: &Mutex<Vec<String>>, req: Request) -> Response {
    let target = req.uri().path_and_query().map_or("/", |pq| pq.as_str()).to_owned();
    let user = req.headers().get("x-deskgate-usergroups").map(|v| v.to_str().unwrap().to_owned());
    log.lock().unwrap().push(target.clone());
    let (mut parts, _) = req.into_parts();
    if let Ok(upgrade) = WebSocketUpgrade::from_request_parts(&mut parts, &()).await {
        return upgrade
            .on_upgrade(move |mut socket| async move {
                let _ = socket.send(AxumMessage::text(format!("{name}:{target}"))).await;
            })
            .into_response();
    }
    axum::Json(serde_json::json!({"upstream": name, "target": target, "usergroups": user})).into_response()
}

const MODEL: &str = r#"
[everyone]
enabled = true
permissions = ["portal.view"]

[usergroups.api_users]
name = "API users"
permissions = ["api.private"]

[[rules]]
path = "/"
permission = "portal.view"

[[rules]]
path = "/api/private"
permission = "api.private"
"#;

fn routed(api: &Recorder, chat: &Recorder) -> String {
    format!(
        r#"{MODEL}
[upstreams.api]
url = "{api}"
timeout = "2s"

[upstreams.chat]
url = "{chat}"
connect_timeout = "1s"

[[routes]]
prefix = "/api"
upstream = "api"

[[routes]]
host = "chat.example.com"
upstream = "chat"
"#,
        api = api.url(),
        chat = chat.url(),
    )
}

/// A gateway on `port` in front of three recorders on `ports`: the default upstream, `api`
/// (prefix `/api`) and `chat` (host `chat.example.com`).
async fn gateway(port: u16, ports: [u16; 3]) -> (Stack, [Recorder; 3]) {
    let default = Recorder::start("default", ports[0]).await;
    let api = Recorder::start("api", ports[1]).await;
    let chat = Recorder::start("chat", ports[2]).await;
    let stack = start(Options {
        upstream: Some(default.url()),
        model: routed(&api, &chat),
        port: Some(port),
        ..Default::default()
    })
    .await;
    (stack, [default, api, chat])
}

/// A raw `GET target` with `Host: host` (and nothing else that a client library would
/// tidy up); the status and body.
async fn get(stack: &Stack, host: &str, target: &str, extra: &str) -> (u16, String) {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let mut s = tokio::net::TcpStream::connect(stack.addr).await.expect("connect");
    let req = format!("GET {target} HTTP/1.1\r\nHost: {host}\r\n{extra}Connection: close\r\n\r\n");
    s.write_all(req.as_bytes()).await.expect("write");
    let mut buf = Vec::new();
    s.read_to_end(&mut buf).await.expect("read");
    let text = String::from_utf8_lossy(&buf).into_owned();
    let status = text.split(' ').nth(1).and_then(|s| s.parse().ok()).unwrap_or(0);
    // The JSON object itself, whether the body came chunked or not.
    let body = match (text.find("\r\n\r\n{"), text.rfind('}')) {
        (Some(start), Some(end)) if end > start => text[start + 4..=end].to_owned(),
        _ => String::new(),
    };
    (status, body)
}

/// `GET target` with `host`, and the name of the upstream that answered.
async fn who_answers(stack: &Stack, host: &str, target: &str) -> (u16, String) {
    let (status, body) = get(stack, host, target, "").await;
    let name = serde_json::from_str::<Value>(&body)
        .ok()
        .and_then(|v| v["upstream"].as_str().map(str::to_owned))
        .unwrap_or_default();
    (status, name)
}

#[tokio::test]
async fn requests_go_to_the_upstream_of_their_prefix_or_host_and_nowhere_else() {
    let (stack, [default, api, chat]) = gateway(19821, [19830, 19831, 19832]).await;
    let here = stack.addr.to_string();
    for (host, target, expected) in [
        (here.as_str(), "/", "default"),
        (here.as_str(), "/kb/1", "default"),
        (here.as_str(), "/api", "api"),
        (here.as_str(), "/api/", "api"),
        (here.as_str(), "/api/tickets?x=1", "api"),
        (here.as_str(), "/apix", "default"),
        (here.as_str(), "/ap", "default"),
        (here.as_str(), "/x/api", "default"),
        ("chat.example.com", "/", "chat"),
        ("chat.example.com", "/api/tickets", "chat"),
        ("CHAT.Example.COM:8443", "/room", "chat"),
        ("chat.example.com.", "/room", "chat"),
        ("chat.example.com.evil.test", "/room", "default"),
        ("evilchat.example.com", "/room", "default"),
    ] {
        let (status, name) = who_answers(&stack, host, target).await;
        assert_eq!((status, name.as_str()), (200, expected), "{host} {target}");
    }
    let api_seen = api.seen();
    let chat_seen = chat.seen();
    let default_seen = default.seen();
    assert_eq!(api_seen, ["/api", "/api/", "/api/tickets?x=1"]);
    assert_eq!(chat_seen, ["/", "/api/tickets", "/room", "/room"]);
    assert_eq!(default_seen, ["/", "/kb/1", "/apix", "/ap", "/x/api", "/room", "/room"]);
}

#[tokio::test]
async fn other_spellings_of_a_prefix_are_routed_as_their_normalized_path() {
    let (stack, [default, api, chat]) = gateway(19822, [19833, 19834, 19835]).await;
    let here = stack.addr.to_string();
    for trick in [
        "//api/x",
        "/./api/x",
        "/%2Fapi/x",
        "/kb/..%2Fapi/x",
        "/kb/../api/x",
        "/%61pi/x",
        "/api;v=1/x",
        "/API/x",
        "/Api%2fx",
        "/%5capi/x",
    ] {
        let (status, name) = who_answers(&stack, &here, trick).await;
        assert_eq!((status, name.as_str()), (200, "api"), "{trick}");
    }
    for not_api in ["/apix/y", "/api%2Ex", "/ap%69x", "/api../x", "/a/pi"] {
        let (status, name) = who_answers(&stack, &here, not_api).await;
        assert_eq!((status, name.as_str()), (200, "default"), "{not_api}");
    }
    // The API is sent the normalized path (case kept), never the spelling that was routed.
    for seen in api.seen() {
        assert!(seen.to_ascii_lowercase().starts_with("/api/") && !seen.contains(".."), "{seen}");
    }
    for seen in default.seen() {
        let first = seen.trim_start_matches('/').split(['/', '?']).next().unwrap().to_ascii_lowercase();
        assert_ne!(first, "api", "the default upstream saw an API path: {seen}");
    }
    assert!(chat.seen().is_empty());
}

#[tokio::test]
async fn rules_apply_to_every_upstream_alike() {
    let (stack, [_default, api, _chat]) = gateway(19823, [19836, 19837, 19838]).await;
    let here = stack.addr.to_string();
    for target in ["/api/private", "/API/Private/x", "//api/./private"] {
        let (status, _) = who_answers(&stack, &here, target).await;
        assert_eq!(status, 401, "{target}: a guest may not reach the API's private part");
    }
    assert!(api.seen().is_empty(), "{:?}", api.seen());
    // The identity headers are set for a routed request as for any other.
    let (_, body) = get(&stack, &here, "/api/x", "X-Deskgate-Usergroups: admins\r\n").await;
    let answer: Value = serde_json::from_str(&body).unwrap();
    assert_eq!(answer["upstream"], "api");
    assert_eq!(answer["usergroups"], "everyone");
}

async fn websocket(stack: &Stack, host: &str, path: &str) -> String {
    let mut req = format!("ws://{}{path}", stack.addr).into_client_request().unwrap();
    req.headers_mut().insert("host", host.parse().unwrap());
    let (mut ws, resp) = tokio_tungstenite::connect_async(req).await.expect("upgrade through deskgate");
    assert_eq!(resp.status(), 101);
    let first = ws.next().await.expect("a message").expect("a frame");
    let _ = ws.close(None).await;
    match first {
        Message::Text(text) => text.as_str().to_owned(),
        other => panic!("not text: {other:?}"),
    }
}

#[tokio::test]
async fn websocket_upgrades_reach_the_upstream_of_their_route() {
    let (stack, [default, api, chat]) = gateway(19824, [19839, 19840, 19841]).await;
    let here = stack.addr.to_string();
    assert_eq!(websocket(&stack, &here, "/api/stream").await, "api:/api/stream");
    assert_eq!(websocket(&stack, &here, "//API/./stream").await, "api:/API/stream");
    assert_eq!(websocket(&stack, "chat.example.com", "/ws").await, "chat:/ws");
    assert_eq!(websocket(&stack, &here, "/ws").await, "default:/ws");
    assert_eq!(api.seen(), ["/api/stream", "/API/stream"]);
    assert_eq!(chat.seen(), ["/ws"]);
    assert_eq!(default.seen(), ["/ws"]);
}

#[test]
fn check_refuses_a_route_to_an_unknown_upstream_at_its_line() {
    let text = "[upstream]\nurl = \"http://127.0.0.1:19830\"\n\n[upstreams.api]\nurl = \"http://127.0.0.1:19831\"\n\n[[routes]]\nprefix = \"/api\"\nupstream = \"api\"\n\n[[routes]]\nprefix = \"/chat\"\nupstream = \"chta\"\n\n[[routes]]\nupstream = \"api\"\n\n[[routes]]\nprefix = \"/api/../x\"\nupstream = \"api\"\n\n[[routes]]\nprefix = \"/API/\"\nupstream = \"api\"\n";
    let dir = TempDir::new();
    let problems = deskgate::config::load_str("routes.toml", text, &dir.0).expect_err("refused");
    let found: Vec<(usize, String)> = problems.iter().map(|d| (d.line, d.path.clone())).collect();
    assert!(found.contains(&(13, "routes[1].upstream".to_owned())), "{problems:?}");
    assert!(found.iter().any(|(_, p)| p == "routes[2].prefix"), "{problems:?}");
    assert!(found.iter().any(|(_, p)| p == "routes[3].prefix"), "{problems:?}");
    assert!(found.iter().any(|(_, p)| p == "routes[4].prefix"), "a second route for /api: {problems:?}");
    let unknown = problems.iter().find(|d| d.path == "routes[1].upstream").unwrap();
    assert!(unknown.message.contains("upstreams.chta"), "{}", unknown.message);
}
