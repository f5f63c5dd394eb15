//! The HTTP edge as an attacker meets it: upgrade tunnels, slow and idle connections,
//! broken and oversized bodies, headers a backend framework might trust, odd methods and
//! targets. Raw sockets, since a client library would tidy these requests up.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::time::timeout;

use crate::support::*;

/// What a recording upstream saw: every byte of every connection, and each byte that came
/// before the upstream had answered 101.
#[derive(Default)]
pub(crate) struct Seen {
    bytes: Vec<u8>,
    before_switch: Vec<u8>,
}

impl Seen {
    pub(crate) fn text(&self) -> String {
        String::from_utf8_lossy(&self.bytes).into_owned()
    }
}

/// How the recording upstream answers a request head that asks for an upgrade.
#[derive(Clone, Copy)]
pub(crate) enum OnUpgrade {
    /// `101` to whatever was asked (as a backend speaking h2c would).
    SwitchBlindly,
    /// A proper WebSocket `101`, after a pause.
    WebSocketAfter(Duration),
    /// `101 websocket` with a wrong `Sec-WebSocket-Accept`.
    WrongAccept,
}

/// An upstream that records everything and answers every plain request `200 ok`.
pub(crate) async fn recording_upstream(on_upgrade: OnUpgrade) -> (String, Arc<Mutex<Seen>>) {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let seen = Arc::new(Mutex::new(Seen::default()));
    let shared = seen.clone();
    tokio::spawn(async move {
        while let Ok((stream, _)) = listener.accept().await {
            tokio::spawn(serve_recorded(stream, on_upgrade, shared.clone()));
        }
    });
    (format!("http://{addr}"), seen)
}

async fn serve_recorded(mut s: TcpStream, on_upgrade: OnUpgrade, seen: Arc<Mutex<Seen>>) {
    let mut pending = Vec::new();
    let mut buf = [0u8; 65536];
    let mut switched = false;
    loop {
        let n = match s.read(&mut buf).await {
            Ok(0) | Err(_) => return,
            Ok(n) => n,
        };
        {
            let mut seen = seen.lock().unwrap();
            seen.bytes.extend_from_slice(&buf[..n]);
            if !switched {
                seen.before_switch.extend_from_slice(&buf[..n]);
            }
        }
        if switched {
            continue;
        }
        pending.extend_from_slice(&buf[..n]);
        while let Some(end) = find(&pending, b"\r\n\r\n") {
            let head = String::from_utf8_lossy(&pending[..end]).to_ascii_lowercase();
            let length: usize = head
                .lines()
                .find_map(|l| l.strip_prefix("content-length:"))
                .and_then(|v| v.trim().parse().ok())
                .unwrap_or(0);
            if pending.len() < end + 4 + length {
                break;
            }
            pending.drain(..end + 4 + length);
            if head.contains("\nupgrade:") {
                let key = head
                    .lines()
                    .find_map(|l| l.strip_prefix("sec-websocket-key:"))
                    .map(str::trim)
                    .unwrap_or_default()
                    .to_owned();
                let reply = match on_upgrade {
                    OnUpgrade::SwitchBlindly => {
                        "HTTP/1.1 101 Switching Protocols\r\nConnection: Upgrade\r\nUpgrade: h2c\r\n\r\n".to_owned()
                    }
                    OnUpgrade::WebSocketAfter(pause) => {
                        tokio::time::sleep(pause).await;
                        // The key was lower-cased with the head; the client sent it as is,
                        // so answer from the raw bytes.
                        let raw = seen.lock().unwrap().text();
                        let key = raw
                            .lines()
                            .find_map(|l| {
                                l.split_once(':')
                                    .filter(|(k, _)| k.eq_ignore_ascii_case("sec-websocket-key"))
                                    .map(|(_, v)| v.trim().to_owned())
                            })
                            .unwrap_or(key);
                        format!(
                            "HTTP/1.1 101 Switching Protocols\r\nConnection: Upgrade\r\nUpgrade: websocket\r\nSec-WebSocket-Accept: {}\r\n\r\n",
                            deskgate::edge::websocket_accept(key.as_bytes())
                        )
                    }
                    OnUpgrade::WrongAccept => "HTTP/1.1 101 Switching Protocols\r\nConnection: Upgrade\r\nUpgrade: websocket\r\nSec-WebSocket-Accept: bm90IHRoZSByaWdodCBvbmU=\r\n\r\n".to_owned(),
                };
                if s.write_all(reply.as_bytes()).await.is_err() {
                    return;
                }
                switched = true;
                // Whatever is already buffered came before the switch, so it stays counted there.
                break;
            }
            if s.write_all(b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok").await.is_err() {
                return;
            }
        }
    }
}

fn find(hay: &[u8], needle: &[u8]) -> Option<usize> {
    hay.windows(needle.len()).position(|w| w == needle)
}

/// Sends `bytes` on a new connection and reads until the connection goes quiet or closes.
async fn exchange(addr: std::net::SocketAddr, bytes: &[u8]) -> String {
    let mut s = TcpStream::connect(addr).await.unwrap();
    s.write_all(bytes).await.unwrap();
    read_quiet(&mut s, Duration::from_millis(1500)).await
}

async fn read_quiet(s: &mut TcpStream, quiet: Duration) -> String {
    let mut out = Vec::new();
    let mut buf = [0u8; 16384];
    while let Ok(Ok(n)) = timeout(quiet, s.read(&mut buf)).await {
        if n == 0 {
            break;
        }
        out.extend_from_slice(&buf[..n]);
    }
    String::from_utf8_lossy(&out).into_owned()
}

fn statuses(responses: &str) -> Vec<u16> {
    responses
        .match_indices("HTTP/1.1 ")
        .filter_map(|(i, _)| responses[i + 9..].get(..3)?.parse().ok())
        .collect()
}

#[tokio::test]
async fn h2c_upgrade_never_opens_a_tunnel_past_the_rules() {
    let (upstream, seen) = recording_upstream(OnUpgrade::SwitchBlindly).await;
    let stack = start(Options { upstream: Some(upstream), ..Default::default() }).await;
    let attack = "GET /kb HTTP/1.1\r\nHost: x\r\nUpgrade: h2c\r\nHTTP2-Settings: AAMAAABkAAQAAP__\r\nConnection: Upgrade, HTTP2-Settings\r\n\r\n\
                  GET /chat/sales HTTP/1.1\r\nHost: x\r\nX-Deskgate-User: SPOOF\r\n\r\n";
    let answer = exchange(stack.addr, attack.as_bytes()).await;
    let got = statuses(&answer);
    assert_eq!(got.first(), Some(&200), "the upgrade is dropped and /kb served plainly: {answer}");
    assert!(!got.contains(&101), "no tunnel: {answer}");
    assert_eq!(got.get(1), Some(&401), "the second request is decided as a guest's: {answer}");
    let upstream_saw = seen.lock().unwrap().text();
    assert!(!upstream_saw.to_ascii_lowercase().contains("upgrade"), "{upstream_saw}");
    assert!(!upstream_saw.contains("HTTP2-Settings"), "{upstream_saw}");
    assert!(!upstream_saw.contains("/chat/sales"), "the smuggled request never reached the backend");
    assert!(!upstream_saw.contains("SPOOF"));

    // Any other protocol, in any spelling, is treated the same.
    for protocol in ["TLS/1.2", "websocket, h2c", "H2C"] {
        let attack =
            format!("GET /kb HTTP/1.1\r\nHost: x\r\nUpgrade: {protocol}\r\nConnection: upgrade\r\n\r\n");
        let answer = exchange(stack.addr, attack.as_bytes()).await;
        assert_eq!(statuses(&answer), [200], "{protocol}: {answer}");
    }
    assert!(!seen.lock().unwrap().text().to_ascii_lowercase().contains("upgrade"));
}

#[tokio::test]
async fn websocket_bytes_never_reach_the_upstream_before_its_101() {
    let (upstream, seen) = recording_upstream(OnUpgrade::WebSocketAfter(Duration::from_millis(300))).await;
    let stack = start(Options { upstream: Some(upstream), ..Default::default() }).await;
    let b = signed_in(&stack, "tunnel@example.org", &["vips"]).await;
    let cookie = b.session_cookie().unwrap();
    let handshake = format!(
        "GET /chat/support/ws HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\
         Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\nCookie: deskgate_session={cookie}\r\n\r\n\
         GET /chat/sales HTTP/1.1\r\nHost: x\r\nX-Deskgate-User: SPOOF\r\n\r\n"
    );
    let answer = exchange(stack.addr, handshake.as_bytes()).await;
    assert_eq!(statuses(&answer).first(), Some(&101), "{answer}");
    let seen = seen.lock().unwrap();
    let before = String::from_utf8_lossy(&seen.before_switch).into_owned();
    assert!(before.contains("GET /chat/support/ws"), "{before}");
    assert!(!before.contains("SPOOF"), "nothing after the handshake went up before the 101: {before}");
    assert_eq!(before.matches("GET ").count(), 1, "{before}");
}

#[tokio::test]
async fn an_upstream_101_that_is_not_the_websocket_asked_for_is_refused() {
    let (upstream, _seen) = recording_upstream(OnUpgrade::WrongAccept).await;
    let stack = start(Options { upstream: Some(upstream), ..Default::default() }).await;
    let handshake = "GET /kb HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\
                     Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n";
    let answer = exchange(stack.addr, handshake.as_bytes()).await;
    assert_eq!(statuses(&answer), [502], "{answer}");
}

#[tokio::test]
async fn malformed_websocket_handshakes_are_refused_before_the_rules() {
    let (upstream, seen) = recording_upstream(OnUpgrade::SwitchBlindly).await;
    let stack = start(Options { upstream: Some(upstream), ..Default::default() }).await;
    for head in [
        "POST /kb HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\nContent-Length: 0\r\n\r\n",
        "GET /kb HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Version: 13\r\n\r\n",
        "GET /kb HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\nContent-Length: 36\r\n\r\nGET /chat/sales HTTP/1.1\r\nHost: x\r\n\r\n",
    ] {
        let answer = exchange(stack.addr, head.as_bytes()).await;
        assert_eq!(statuses(&answer).first(), Some(&400), "{head}: {answer}");
    }
    assert!(seen.lock().unwrap().bytes.is_empty(), "nothing was forwarded");
}

#[tokio::test]
async fn slow_silent_and_idle_connections_are_closed_and_the_gateway_keeps_serving() {
    let server = "header_read_timeout = \"1s\"\nidle_timeout = \"2s\"".to_owned();
    let stack = start(Options { server, ..Default::default() }).await;
    // Slowloris: half a request line, and connections that send nothing at all.
    let mut slow = Vec::new();
    for i in 0..40 {
        let mut s = TcpStream::connect(stack.addr).await.unwrap();
        if i % 2 == 0 {
            s.write_all(b"GET /kb HT").await.unwrap();
        }
        slow.push(s);
    }
    // A kept-alive connection that sat idle after one request.
    let mut idle = TcpStream::connect(stack.addr).await.unwrap();
    idle.write_all(b"GET /kb HTTP/1.1\r\nHost: x\r\n\r\n").await.unwrap();
    let mut first = [0u8; 12];
    idle.read_exact(&mut first).await.unwrap();
    assert_eq!(&first, b"HTTP/1.1 200");

    // Meanwhile the gateway serves.
    assert_eq!(Browser::new(&stack).get("/kb").await.status, 200);

    // Every slow connection is closed by the header timeout (with room for scheduling).
    for (i, s) in slow.iter_mut().enumerate() {
        let mut buf = [0u8; 1024];
        let closed = timeout(Duration::from_secs(5), async {
            loop {
                match s.read(&mut buf).await {
                    Ok(0) | Err(_) => break,
                    Ok(_) => {}
                }
            }
        })
        .await;
        assert!(closed.is_ok(), "slow connection {i} was still open");
    }
    // The idle one is closed by the idle timeout.
    let mut rest = Vec::new();
    let closed = timeout(Duration::from_secs(6), idle.read_to_end(&mut rest)).await;
    assert!(closed.is_ok(), "the idle keep-alive connection was still open");
    assert_eq!(Browser::new(&stack).get("/kb").await.status, 200);
}

#[tokio::test]
async fn at_the_connection_cap_new_connections_wait_until_one_closes() {
    let server = "max_connections = 3\nheader_read_timeout = \"30s\"\nworkers = 1".to_owned();
    let stack = start(Options { server, ..Default::default() }).await;
    let mut held = Vec::new();
    for _ in 0..3 {
        let mut s = TcpStream::connect(stack.addr).await.unwrap();
        s.write_all(b"GET /kb HT").await.unwrap();
        held.push(s);
    }
    tokio::time::sleep(Duration::from_millis(200)).await;
    let mut waiting = TcpStream::connect(stack.addr).await.unwrap();
    waiting.write_all(b"GET /kb HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n").await.unwrap();
    let mut buf = [0u8; 12];
    assert!(
        timeout(Duration::from_millis(700), waiting.read_exact(&mut buf)).await.is_err(),
        "a fourth connection is not served while three are open"
    );
    drop(held.pop());
    timeout(Duration::from_secs(5), waiting.read_exact(&mut buf))
        .await
        .expect("served once one closed")
        .unwrap();
    assert_eq!(&buf, b"HTTP/1.1 200");
}

#[tokio::test]
async fn a_malformed_chunked_body_is_a_400_not_an_upstream_failure() {
    let stack = start(Options::default()).await;
    for size in ["FFFFFFFFFFFFFFFFF1", "-1", "zz"] {
        let req = format!(
            "POST /kb/articles/1 HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\nContent-Type: application/x-www-form-urlencoded\r\n\r\n{size}\r\nbody=hello\r\n0\r\n\r\n"
        );
        let answer = exchange(stack.addr, req.as_bytes()).await;
        assert_eq!(statuses(&answer).first(), Some(&400), "{size}: {answer}");
    }
}

#[tokio::test]
async fn an_oversized_body_is_a_413_and_a_declared_one_forwards_nothing() {
    let (upstream, seen) = recording_upstream(OnUpgrade::SwitchBlindly).await;
    let server = "max_body_bytes = 1048576".to_owned();
    let stack = start(Options { server, upstream: Some(upstream), ..Default::default() }).await;

    // Declared too large: refused at once, nothing forwarded.
    let declared = "POST /kb HTTP/1.1\r\nHost: x\r\nContent-Length: 2097152\r\n\r\n";
    let answer = exchange(stack.addr, declared.as_bytes()).await;
    assert_eq!(statuses(&answer).first(), Some(&413), "{answer}");
    assert!(seen.lock().unwrap().bytes.is_empty(), "nothing was forwarded");

    // Chunked past the limit, to a backend that reads what it is sent: 413 as well, however
    // much was streamed by then.
    let server = "max_body_bytes = 1048576".to_owned();
    let stack = start(Options { server, ..Default::default() }).await;
    let mut s = TcpStream::connect(stack.addr).await.unwrap();
    s.write_all(b"POST /kb/articles/1 HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\nContent-Type: application/x-www-form-urlencoded\r\n\r\n").await.unwrap();
    let (mut reader, mut writer) = s.into_split();
    let sender = tokio::spawn(async move {
        let chunk = vec![b'a'; 65536];
        for _ in 0..32 {
            let framed = [format!("{:X}\r\n", chunk.len()).as_bytes(), &chunk, b"\r\n"].concat();
            if writer.write_all(&framed).await.is_err() {
                return;
            }
        }
        let _ = writer.write_all(b"0\r\n\r\n").await;
    });
    let mut out = Vec::new();
    let mut buf = [0u8; 4096];
    while let Ok(Ok(n)) = timeout(Duration::from_secs(3), reader.read(&mut buf)).await {
        if n == 0 {
            break;
        }
        out.extend_from_slice(&buf[..n]);
        if find(&out, b"\r\n\r\n").is_some() {
            break;
        }
    }
    sender.abort();
    let answer = String::from_utf8_lossy(&out);
    assert_eq!(statuses(&answer).first(), Some(&413), "{answer}");
}

#[tokio::test]
async fn underscore_and_override_headers_never_reach_the_backend() {
    let stack = start(Options::default()).await;
    let mut guest = Browser::new(&stack);
    let seen = guest
        .get_with(
            "/whoami",
            &[
                ("x_custom_role", "admin"),
                ("X-Original-URL", "/chat/sales"),
                ("X-Rewrite-URL", "/chat/sales"),
                ("X-HTTP-Method-Override", "DELETE"),
                ("X-Original-Method", "DELETE"),
                ("x-method-override", "PUT"),
                ("x-custom", "kept"),
            ],
        )
        .await
        .json();
    let headers = seen["headers"].as_object().unwrap();
    for name in [
        "x_custom_role",
        "x-original-url",
        "x-rewrite-url",
        "x-http-method-override",
        "x-original-method",
        "x-method-override",
    ] {
        assert!(!headers.contains_key(name), "{name} reached the backend: {headers:?}");
    }
    assert_eq!(headers["x-custom"], "kept");

    // An admin who needs one names it; `_` names can be allowed too.
    let server =
        "allow_underscores_in_headers = true\nallowed_override_headers = [\"X-HTTP-Method-Override\"]"
            .to_owned();
    let stack = start(Options { server, ..Default::default() }).await;
    let seen = Browser::new(&stack)
        .get_with(
            "/whoami",
            &[("x_custom_role", "admin"), ("X-HTTP-Method-Override", "DELETE"), ("X-Original-URL", "/x")],
        )
        .await
        .json();
    let headers = seen["headers"].as_object().unwrap();
    assert_eq!(headers["x_custom_role"], "admin");
    assert_eq!(headers["x-http-method-override"], "DELETE");
    assert!(!headers.contains_key("x-original-url"));
}

#[tokio::test]
async fn connect_and_star_targets_are_never_forwarded() {
    let (upstream, seen) = recording_upstream(OnUpgrade::SwitchBlindly).await;
    let stack = start(Options { upstream: Some(upstream), ..Default::default() }).await;
    let connect =
        exchange(stack.addr, b"CONNECT internal.example:22 HTTP/1.1\r\nHost: internal.example:22\r\n\r\n")
            .await;
    assert_eq!(statuses(&connect).first(), Some(&405), "{connect}");
    let options = exchange(stack.addr, b"OPTIONS * HTTP/1.1\r\nHost: x\r\n\r\n").await;
    assert_eq!(statuses(&options).first(), Some(&200), "{options}");
    assert!(options.to_ascii_lowercase().contains("allow: get"), "{options}");
    let star = exchange(stack.addr, b"GET * HTTP/1.1\r\nHost: x\r\n\r\n").await;
    assert_eq!(statuses(&star).first(), Some(&400), "{star}");
    assert!(seen.lock().unwrap().bytes.is_empty(), "nothing was forwarded: {}", seen.lock().unwrap().text());
}

#[tokio::test]
async fn the_access_denied_pages_session_link_leads_to_a_page() {
    let stack = start(Options::default()).await;
    let mut b = signed_in(&stack, "denied@example.org", &[]).await;
    let denied = b.get("/chat/support").await;
    assert_eq!(denied.status, 403);
    let link = denied
        .body
        .split("href=\"")
        .filter_map(|s| s.split('"').next())
        .find(|h| h.starts_with("/.deskgate"))
        .unwrap();
    let page = b.get(link).await;
    assert_eq!(page.status, 200, "{link}: {}", page.body);
    assert!(page.body.contains("denied@example.org"));
    for spelling in ["/.deskgate", "/.deskgate/"] {
        let page = b.get(spelling).await;
        assert_eq!(page.status, 200, "{spelling}");
        assert!(page.body.contains("Your session"));
    }
}

#[tokio::test]
async fn content_length_beside_chunked_never_desyncs_the_upstream() {
    let (upstream, seen) = recording_upstream(OnUpgrade::SwitchBlindly).await;
    let stack = start(Options { upstream: Some(upstream), ..Default::default() }).await;
    // Content-Length before and after Transfer-Encoding: the chunked framing wins and the
    // smuggled request inside the body stays body.
    for head in [
        "POST /kb HTTP/1.1\r\nHost: x\r\nContent-Length: 4\r\nTransfer-Encoding: chunked\r\n\r\n",
        "POST /kb HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\nContent-Length: 4\r\n\r\n",
    ] {
        let smuggled = "GET /chat/sales HTTP/1.1\r\nHost: x\r\nX-Deskgate-User: SPOOF\r\n\r\n";
        let body = format!("{:X}\r\n{smuggled}\r\n0\r\n\r\n", smuggled.len());
        let answer = exchange(stack.addr, format!("{head}{body}").as_bytes()).await;
        assert_eq!(statuses(&answer), [200], "{answer}");
    }
    let text = seen.lock().unwrap().text();
    assert_eq!(text.matches("POST /kb").count(), 2, "{text}");
    assert!(!text.to_ascii_lowercase().contains("content-length: 4"), "{text}");
    // Transfer-Encoding that does not end in chunked, and obsolete line folding, are refused.
    for head in [
        "POST /kb HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked, identity\r\n\r\n0\r\n\r\n",
        "POST /kb HTTP/1.1\r\nHost: x\r\nTransfer-Encoding:\r\n chunked\r\n\r\n0\r\n\r\n",
        "POST /kb HTTP/1.1\r\nHost: x\r\nContent-Length: 4\r\nContent-Length: 5\r\n\r\nabcde",
    ] {
        let answer = exchange(stack.addr, head.as_bytes()).await;
        assert_eq!(statuses(&answer).first(), Some(&400), "{head:?}: {answer}");
    }
}

#[tokio::test]
async fn a_request_body_that_stalls_is_cut_off_and_the_gateway_keeps_serving() {
    // deskgate's own form reads the body itself (no upstream timeout to end it), and its
    // page deadline is longer than the test waits: only the body timeout can close these.
    let server = "body_read_timeout = \"1s\"\nrequest_timeout = \"60s\"".to_owned();
    let stack = start(Options { server, ..Default::default() }).await;
    let mut slow = Vec::new();
    for _ in 0..20 {
        let mut s = TcpStream::connect(stack.addr).await.unwrap();
        s.write_all(
            b"POST /.deskgate/login HTTP/1.1\r\nHost: x\r\nContent-Type: application/x-www-form-urlencoded\r\nContent-Length: 100\r\n\r\nusername=slo",
        )
        .await
        .unwrap();
        slow.push(s);
    }
    assert_eq!(Browser::new(&stack).get("/kb").await.status, 200);
    for (i, s) in slow.iter_mut().enumerate() {
        let mut rest = Vec::new();
        let closed = timeout(Duration::from_secs(6), s.read_to_end(&mut rest)).await;
        assert!(closed.is_ok(), "stalled body {i} still held its connection");
    }
    assert_eq!(Browser::new(&stack).get("/kb").await.status, 200);
}
