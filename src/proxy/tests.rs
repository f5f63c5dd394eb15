#![allow(clippy::unwrap_used, reason = "a test reports failure by panicking")]

use std::convert::Infallible;
use std::future::Future;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::Router;
use axum::extract::Request as AxumRequest;
use axum::extract::ws::{Message as WsMessage, WebSocket, WebSocketUpgrade};
use axum::response::IntoResponse;
use axum::routing::get;
use axum::serve::ListenerExt;
use bytes::Bytes;
use futures_util::{SinkExt, StreamExt, stream};
use http::{HeaderMap, HeaderName, Method, Request, StatusCode, Uri, Version};
use http_body_util::{BodyExt, StreamBody};
use hyper::body::Frame;
use hyper_util::client::legacy::{Client, connect::HttpConnector};
use hyper_util::rt::TokioExecutor;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpListener;
use tokio::sync::{mpsc, oneshot};
use tokio_tungstenite::tungstenite::Message as TungsteniteMessage;

use super::*;

/// What a recording upstream saw of one request.
#[derive(Debug)]
struct Seen {
    method: Method,
    uri: Uri,
    version: Version,
    headers: HeaderMap,
    body: Bytes,
}

fn settings(addr: SocketAddr) -> UpstreamSettings {
    UpstreamSettings {
        url: format!("http://{addr}").parse().unwrap(),
        connect_timeout: Duration::from_secs(5),
        timeout: Duration::from_secs(30),
        http2: false,
        pool_idle_timeout: Duration::from_secs(90),
        workers: 1,
    }
}

/// Fails a test that would otherwise hang forever when streaming is broken; not a timing
/// assertion, the bound is far above any real run.
async fn within<F: Future>(step: F) -> F::Output {
    tokio::time::timeout(Duration::from_secs(30), step).await.expect("test step never completed")
}

/// Serves `router` on loopback and counts the TCP connections it accepts.
async fn serve_upstream(router: Router) -> (SocketAddr, Arc<AtomicUsize>) {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let accepted = Arc::new(AtomicUsize::new(0));
    let counter = Arc::clone(&accepted);
    let listener = listener.tap_io(move |_| {
        counter.fetch_add(1, Ordering::SeqCst);
    });
    tokio::spawn(async move { axum::serve(listener, router).await });
    (addr, accepted)
}

/// An upstream that reports every request it gets and answers 200 "ok".
async fn recording_upstream() -> (SocketAddr, mpsc::UnboundedReceiver<Seen>) {
    let (tx, rx) = mpsc::unbounded_channel();
    let router = Router::new().fallback(move |req: AxumRequest| {
        let tx = tx.clone();
        async move {
            let (parts, body) = req.into_parts();
            let body = body.collect().await.unwrap().to_bytes();
            tx.send(Seen {
                method: parts.method,
                uri: parts.uri,
                version: parts.version,
                headers: parts.headers,
                body,
            })
            .unwrap();
            "ok"
        }
    });
    let (addr, _) = serve_upstream(router).await;
    (addr, rx)
}

/// A gateway front that forwards everything through `proxy`, mapping errors the way
/// deskgate does (502 unreachable or broken, 504 timeout).
async fn serve_front(proxy: Proxy) -> SocketAddr {
    let router = Router::new().fallback(move |req: AxumRequest| {
        let proxy = proxy.clone();
        async move {
            let path = req.uri().path_and_query().map_or("/", |p| p.as_str());
            let path = path.to_owned();
            match proxy.forward(req, &path).await {
                Ok(response) => response,
                Err(ProxyError::Timeout) => StatusCode::GATEWAY_TIMEOUT.into_response(),
                Err(_) => StatusCode::BAD_GATEWAY.into_response(),
            }
        }
    });
    let (addr, _) = serve_upstream(router).await;
    addr
}

fn client() -> Client<HttpConnector, Body> {
    Client::builder(TokioExecutor::new()).build_http()
}

fn get_request(uri: &str) -> Request<Body> {
    Request::get(uri).body(Body::empty()).unwrap()
}

async fn body_text(response: Response<Body>) -> String {
    let bytes = response.into_body().collect().await.unwrap().to_bytes();
    String::from_utf8(bytes.to_vec()).unwrap()
}

/// A request body fed chunk by chunk from the returned sender.
fn channel_body() -> (mpsc::Sender<Bytes>, Body) {
    let (tx, rx) = mpsc::channel::<Bytes>(4);
    let frames = stream::unfold(rx, |mut rx| async move {
        let chunk = rx.recv().await?;
        Some((Ok::<_, Infallible>(Frame::data(chunk)), rx))
    });
    (tx, Body::new(StreamBody::new(frames)))
}

#[test]
fn base_path_and_request_path_join_with_one_slash() {
    assert_eq!(join_path("/app", "/kb?x=1"), "/app/kb?x=1");
    assert_eq!(join_path("/app/", "/kb?x=1"), "/app/kb?x=1");
    assert_eq!(join_path("", "/kb?x=1"), "/kb?x=1");
    assert_eq!(join_path("/", "/kb?x=1"), "/kb?x=1");
    assert_eq!(join_path("", "/"), "/");
    assert_eq!(join_path("/app", "kb"), "/app/kb");
    assert_eq!(join_path("/app", "?x=1"), "/app/?x=1");
}

#[tokio::test]
async fn sequential_requests_reuse_one_upstream_connection() {
    let (addr, accepted) = serve_upstream(Router::new().fallback(|| async { "hello" })).await;
    let proxy = Proxy::new(&settings(addr));

    for _ in 0..5 {
        let response = proxy.forward(get_request("http://public.example/kb"), "/kb").await.unwrap();
        assert_eq!(body_text(response).await, "hello");
    }

    assert_eq!(accepted.load(Ordering::SeqCst), 1);
}

#[tokio::test]
async fn response_body_streams_before_upstream_finishes() {
    let (release_tx, release_rx) = oneshot::channel::<()>();
    let release_rx = Arc::new(Mutex::new(Some(release_rx)));
    let router = Router::new().fallback(move || {
        let release = release_rx.lock().unwrap().take().unwrap();
        async move {
            let first = stream::once(async { Ok::<_, Infallible>(Bytes::from("first;")) });
            let rest = stream::once(async move {
                release.await.unwrap();
                Ok(Bytes::from("rest"))
            });
            Body::from_stream(first.chain(rest))
        }
    });
    let (upstream, _) = serve_upstream(router).await;
    let front = serve_front(Proxy::new(&settings(upstream))).await;

    let response = within(client().request(get_request(&format!("http://{front}/stream")))).await.unwrap();
    assert_eq!(response.status(), StatusCode::OK);
    let mut body = response.into_body();
    let mut received = Vec::new();
    while received.len() < "first;".len() {
        let frame = within(body.frame()).await.unwrap().unwrap();
        received.extend_from_slice(&frame.into_data().unwrap());
    }
    assert_eq!(received, b"first;");

    release_tx.send(()).unwrap();
    let rest = within(body.collect()).await.unwrap().to_bytes();
    assert_eq!(rest, "rest");
}

#[tokio::test]
async fn request_body_streams_before_client_finishes() {
    let (first_seen_tx, first_seen_rx) = oneshot::channel::<()>();
    let first_seen_tx = Arc::new(Mutex::new(Some(first_seen_tx)));
    let router = Router::new().fallback(move |req: AxumRequest| {
        let first_seen = first_seen_tx.lock().unwrap().take().unwrap();
        async move {
            let mut body = req.into_body();
            let mut received = Vec::new();
            let mut first_seen = Some(first_seen);
            while let Some(frame) = body.frame().await {
                if let Ok(data) = frame.unwrap().into_data() {
                    received.extend_from_slice(&data);
                    if let Some(tx) = first_seen.take() {
                        tx.send(()).unwrap();
                    }
                }
            }
            String::from_utf8(received).unwrap()
        }
    });
    let (upstream, _) = serve_upstream(router).await;
    let front = serve_front(Proxy::new(&settings(upstream))).await;

    let (chunks, body) = channel_body();
    let request = Request::post(format!("http://{front}/upload")).body(body).unwrap();
    let response = tokio::spawn(client().request(request));

    chunks.send(Bytes::from("first;")).await.unwrap();
    within(first_seen_rx).await.unwrap();
    chunks.send(Bytes::from("rest")).await.unwrap();
    drop(chunks);

    let response = within(response).await.unwrap().unwrap();
    assert_eq!(response.status(), StatusCode::OK);
    assert_eq!(body_text(response.map(Body::new)).await, "first;rest");
}

#[tokio::test]
async fn large_request_body_arrives_intact() {
    let router = Router::new().fallback(|req: AxumRequest| async move {
        // Echoed as it arrives, so the bytes cross the proxy in both directions.
        Body::new(req.into_body())
    });
    let (upstream, _) = serve_upstream(router).await;
    let front = serve_front(Proxy::new(&settings(upstream))).await;

    let payload: Vec<u8> =
        (0..8 * 1024 * 1024u32).map(|i| (i.wrapping_mul(2_654_435_761) >> 24) as u8).collect();
    let chunks: Vec<Result<Bytes, Infallible>> =
        payload.chunks(64 * 1024).map(|c| Ok(Bytes::copy_from_slice(c))).collect();
    let body = Body::from_stream(stream::iter(chunks));
    let request = Request::put(format!("http://{front}/attachments")).body(body).unwrap();

    let response = within(client().request(request)).await.unwrap();
    assert_eq!(response.status(), StatusCode::OK);
    let echoed = within(response.into_body().collect()).await.unwrap().to_bytes();
    assert_eq!(echoed.len(), payload.len());
    assert!(echoed == payload, "body changed on the way");
}

#[tokio::test]
async fn hop_by_hop_request_headers_are_removed() {
    let (addr, mut seen) = recording_upstream().await;
    let proxy = Proxy::new(&settings(addr));

    let request = Request::get("http://public.example/kb")
        .header("connection", "keep-alive, X-Hop-Secret")
        .header("keep-alive", "timeout=5")
        .header("proxy-connection", "keep-alive")
        .header("proxy-authorization", "Basic Zm9vOmJhcg==")
        .header("te", "trailers")
        .header("trailer", "x-checksum")
        .header("transfer-encoding", "chunked")
        .header("upgrade", "h2c")
        .header("x-hop-secret", "1")
        .header("x-end-to-end", "kept")
        .body(Body::empty())
        .unwrap();
    let response = proxy.forward(request, "/kb").await.unwrap();
    assert_eq!(response.status(), StatusCode::OK);

    let seen = seen.recv().await.unwrap();
    for name in HOP_BY_HOP.iter().chain(&["x-hop-secret"]) {
        assert!(!seen.headers.contains_key(*name), "{name} reached upstream");
    }
    assert_eq!(seen.headers["x-end-to-end"], "kept");
}

#[tokio::test]
async fn connection_header_cannot_remove_gateway_headers() {
    let (addr, mut seen) = recording_upstream().await;
    let proxy =
        Proxy::new(&settings(addr)).with_protected_headers([HeaderName::from_static("x-deskgate-user")]);

    let request = Request::get("http://public.example/kb")
        .header("connection", "X-Deskgate-User, x-forwarded-for, Forwarded, x-deskgate-other, x-client-only")
        .header("x-deskgate-user", "alice")
        .header("x-deskgate-other", "not protected")
        .header("x-forwarded-for", "192.0.2.7")
        .header("forwarded", "for=192.0.2.7")
        .header("x-client-only", "1")
        .body(Body::empty())
        .unwrap();
    proxy.forward(request, "/kb").await.unwrap();

    let seen = seen.recv().await.unwrap();
    assert_eq!(seen.headers["x-deskgate-user"], "alice");
    assert_eq!(seen.headers["x-forwarded-for"], "192.0.2.7");
    assert_eq!(seen.headers["forwarded"], "for=192.0.2.7");
    assert!(!seen.headers.contains_key("x-deskgate-other"));
    assert!(!seen.headers.contains_key("x-client-only"));
}

#[tokio::test]
async fn hop_by_hop_response_headers_are_removed() {
    let router = Router::new().fallback(|| async {
        (
            [
                ("connection", "X-Hop-Private"),
                ("x-hop-private", "1"),
                ("keep-alive", "timeout=5"),
                ("proxy-connection", "keep-alive"),
                ("proxy-authenticate", "Basic realm=\"upstream\""),
                ("te", "trailers"),
                ("trailer", "x-checksum"),
                ("upgrade", "h2c"),
                ("x-end-to-end", "kept"),
            ],
            // No length known, so the upstream sends `Transfer-Encoding: chunked`.
            Body::from_stream(stream::once(async { Ok::<_, Infallible>(Bytes::from("body")) })),
        )
    });
    let (addr, _) = serve_upstream(router).await;
    let proxy = Proxy::new(&settings(addr));

    let response = proxy.forward(get_request("http://public.example/kb"), "/kb").await.unwrap();

    for name in HOP_BY_HOP.iter().chain(&["x-hop-private"]) {
        assert!(!response.headers().contains_key(*name), "{name} reached the client");
    }
    assert_eq!(response.headers()["x-end-to-end"], "kept");
    assert_eq!(body_text(response).await, "body");
}

#[tokio::test]
async fn upstream_sees_its_own_authority_as_host() {
    let (addr, mut seen) = recording_upstream().await;
    let proxy = Proxy::new(&settings(addr));

    let request = Request::get("http://public.example/kb")
        .header("host", "public.example")
        .header("x-forwarded-host", "public.example")
        .header("x-forwarded-proto", "https")
        .body(Body::empty())
        .unwrap();
    proxy.forward(request, "/kb").await.unwrap();

    let seen = seen.recv().await.unwrap();
    assert_eq!(seen.version, Version::HTTP_11);
    assert_eq!(seen.headers["host"], addr.to_string().as_str());
    assert_eq!(seen.headers.get_all("host").iter().count(), 1);
    assert_eq!(seen.headers["x-forwarded-host"], "public.example");
    assert_eq!(seen.headers["x-forwarded-proto"], "https");
    assert!(!seen.headers.contains_key("x-forwarded-for"));
    assert!(!seen.headers.contains_key("forwarded"));
}

async fn echo(mut socket: WebSocket) {
    while let Some(Ok(message)) = socket.recv().await {
        if matches!(message, WsMessage::Text(_) | WsMessage::Binary(_)) && socket.send(message).await.is_err()
        {
            return;
        }
    }
}

async fn websocket_round_trip(http2: bool) {
    let router = Router::new().route("/ws", get(|ws: WebSocketUpgrade| async move { ws.on_upgrade(echo) }));
    let (upstream, _) = serve_upstream(router).await;
    let front = serve_front(Proxy::new(&UpstreamSettings { http2, ..settings(upstream) })).await;

    let (mut socket, response) =
        within(tokio_tungstenite::connect_async(format!("ws://{front}/ws"))).await.unwrap();
    assert_eq!(response.status(), StatusCode::SWITCHING_PROTOCOLS);

    for text in ["hello through deskgate", "and once more"] {
        socket.send(TungsteniteMessage::text(text)).await.unwrap();
        let echoed = within(socket.next()).await.unwrap().unwrap();
        assert_eq!(echoed, TungsteniteMessage::text(text));
    }
    socket.close(None).await.unwrap();
}

#[tokio::test]
async fn websocket_is_spliced_to_the_upstream() {
    websocket_round_trip(false).await;
}

#[tokio::test]
async fn websocket_uses_http1_even_when_upstream_speaks_h2c() {
    websocket_round_trip(true).await;
}

#[tokio::test]
async fn upgrade_refused_by_upstream_returns_its_response() {
    let router = Router::new()
        .fallback(|| async { (StatusCode::BAD_REQUEST, [("x-end-to-end", "kept")], "no upgrades here") });
    let (upstream, _) = serve_upstream(router).await;
    let front = serve_front(Proxy::new(&settings(upstream))).await;

    let request = Request::get(format!("http://{front}/ws"))
        .header("connection", "upgrade")
        .header("upgrade", "websocket")
        .body(Body::empty())
        .unwrap();
    let response = within(client().request(request)).await.unwrap();

    assert_eq!(response.status(), StatusCode::BAD_REQUEST);
    assert_eq!(response.headers()["x-end-to-end"], "kept");
    assert!(!response.headers().contains_key("upgrade"));
    assert_eq!(body_text(response.map(Body::new)).await, "no upgrades here");
}

#[tokio::test]
async fn unrequested_protocol_switch_is_refused() {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move {
        let (mut stream, _) = listener.accept().await.unwrap();
        let mut buf = [0u8; 4096];
        let _ = stream.read(&mut buf).await.unwrap();
        stream
            .write_all(b"HTTP/1.1 101 Switching Protocols\r\nconnection: upgrade\r\nupgrade: other\r\n\r\n")
            .await
            .unwrap();
        // Held open so the proxy sees the switch rather than a closed connection.
        let _ = stream.read(&mut buf).await;
    });
    let proxy = Proxy::new(&settings(addr));

    let error = proxy.forward(get_request("http://public.example/kb"), "/kb").await.unwrap_err();
    assert!(matches!(error, ProxyError::UnrequestedUpgrade), "{error:?}");
}

#[tokio::test]
async fn http2_setting_speaks_h2c_over_one_connection() {
    let (tx, mut seen) = mpsc::unbounded_channel();
    let router = Router::new().fallback(move |req: AxumRequest| {
        let tx = tx.clone();
        async move {
            tx.send((req.version(), req.uri().clone(), req.headers().clone())).unwrap();
            "ok"
        }
    });
    let (addr, accepted) = serve_upstream(router).await;
    let proxy = Proxy::new(&UpstreamSettings { http2: true, ..settings(addr) });

    for _ in 0..3 {
        let response = proxy.forward(get_request("http://public.example/kb"), "/kb?x=1").await.unwrap();
        assert_eq!(body_text(response).await, "ok");
    }

    for _ in 0..3 {
        let (version, uri, headers) = seen.recv().await.unwrap();
        assert_eq!(version, Version::HTTP_2);
        assert_eq!(uri.authority().unwrap().as_str(), addr.to_string());
        assert_eq!(uri.path_and_query().unwrap(), "/kb?x=1");
        assert!(!headers.contains_key("connection"));
    }
    assert_eq!(accepted.load(Ordering::SeqCst), 1);
}

#[tokio::test]
async fn refused_connection_is_unreachable() {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    drop(listener);
    let proxy = Proxy::new(&settings(addr));

    let error = proxy.forward(get_request("http://public.example/kb"), "/kb").await.unwrap_err();
    assert!(matches!(error, ProxyError::Unreachable(_)), "{error:?}");
}

#[tokio::test]
async fn silent_upstream_times_out() {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let (done_tx, done_rx) = oneshot::channel::<()>();
    tokio::spawn(async move {
        // Accepts and then says nothing until the test is over.
        let (_stream, _) = listener.accept().await.unwrap();
        let _ = done_rx.await;
    });
    let proxy = Proxy::new(&UpstreamSettings { timeout: Duration::from_millis(300), ..settings(addr) });

    let error = proxy.forward(get_request("http://public.example/kb"), "/kb").await.unwrap_err();
    assert!(matches!(error, ProxyError::Timeout), "{error:?}");
    drop(done_tx);
}

#[tokio::test]
async fn upstream_closing_without_an_answer_is_an_upstream_error() {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move {
        let (mut stream, _) = listener.accept().await.unwrap();
        let mut buf = [0u8; 4096];
        let _ = stream.read(&mut buf).await.unwrap();
    });
    let proxy = Proxy::new(&settings(addr));

    let error = proxy.forward(get_request("http://public.example/kb"), "/kb").await.unwrap_err();
    assert!(matches!(error, ProxyError::Upstream(_)), "{error:?}");
}

#[tokio::test]
async fn status_headers_method_query_and_body_pass_unchanged() {
    let (tx, mut seen) = mpsc::unbounded_channel();
    let router = Router::new().fallback(move |req: AxumRequest| {
        let tx = tx.clone();
        async move {
            let (parts, body) = req.into_parts();
            let body = body.collect().await.unwrap().to_bytes();
            tx.send(Seen {
                method: parts.method,
                uri: parts.uri,
                version: parts.version,
                headers: parts.headers,
                body,
            })
            .unwrap();
            let mut response = (StatusCode::CREATED, "created article 42").into_response();
            let headers = response.headers_mut();
            headers.insert("x-end-to-end", "kept".parse().unwrap());
            headers.append("set-cookie", "a=1; Path=/".parse().unwrap());
            headers.append("set-cookie", "b=2; Path=/".parse().unwrap());
            response
        }
    });
    let (upstream, _) = serve_upstream(router).await;
    let front = serve_front(Proxy::new(&UpstreamSettings {
        url: format!("http://{upstream}/app").parse().unwrap(),
        ..settings(upstream)
    }))
    .await;

    let request = Request::patch(format!("http://{front}/kb/article?x=1&y=a%20b"))
        .header("content-type", "application/json")
        .header("x-client-header", "passes")
        .body(Body::from(r#"{"title":"new"}"#))
        .unwrap();
    let response = within(client().request(request)).await.unwrap();

    assert_eq!(response.status(), StatusCode::CREATED);
    assert_eq!(response.headers()["content-length"], "18");
    assert_eq!(response.headers()["x-end-to-end"], "kept");
    let cookies: Vec<_> = response.headers().get_all("set-cookie").iter().collect();
    assert_eq!(cookies, ["a=1; Path=/", "b=2; Path=/"]);
    assert_eq!(body_text(response.map(Body::new)).await, "created article 42");

    let seen = seen.recv().await.unwrap();
    assert_eq!(seen.method, Method::PATCH);
    assert_eq!(seen.uri.path_and_query().unwrap(), "/app/kb/article?x=1&y=a%20b");
    assert_eq!(seen.headers["content-type"], "application/json");
    assert_eq!(seen.headers["x-client-header"], "passes");
    assert_eq!(seen.body, r#"{"title":"new"}"#);
}
