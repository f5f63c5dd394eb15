//! The load generator and stub peer of `bench/flood.sh`: floods one unauthenticated
//! deskgate endpoint from one loopback address or from addresses spread over 127.0.0.0/8,
//! and serves the fixed upstream and a stub OpenID discovery document. A measurement tool,
//! not a test.
//!
//!   flood stubs ADDR                      serve `/` (200) and the discovery document
//!   flood run BASE ENDPOINT SECONDS CONNECTIONS one|many
#![allow(clippy::unwrap_used, clippy::expect_used, reason = "a benchmark tool fails loudly")]

use std::collections::BTreeMap;
use std::convert::Infallible;
use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use bytes::Bytes;
use http::{Request, Response, header};
use http_body_util::{BodyExt, Full};
use hyper_util::rt::TokioIo;
use tokio::net::{TcpListener, TcpSocket};

const ENDPOINTS: &[&str] = &[
    "login",
    "oidc-start",
    "saml-start",
    "signup",
    "oidc-callback",
    "saml-callback",
    "session-cookie",
    "oidc-roundtrip",
];

/// Requests per connection when addresses are spread: each address sends a few, as many
/// clients behind their own addresses would.
const PER_ADDRESS: u32 = 8;

#[tokio::main(flavor = "current_thread")]
async fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    match args.iter().map(String::as_str).collect::<Vec<_>>().as_slice() {
        ["stubs", addr] => stubs(addr.parse().expect("ADDR")).await,
        ["run", base, endpoint, secs, conns, sources] if ENDPOINTS.contains(endpoint) => {
            let many = match *sources {
                "one" => false,
                "many" => true,
                other => panic!("sources: one or many, not {other}"),
            };
            run(base, endpoint, secs.parse().expect("SECONDS"), conns.parse().expect("CONNECTIONS"), many)
                .await
        }
        _ => {
            eprintln!(
                "usage: flood stubs ADDR | flood run BASE ENDPOINT SECONDS CONNECTIONS one|many\nendpoints: {}",
                ENDPOINTS.join(" ")
            );
            std::process::exit(2);
        }
    }
}

/// The fixed upstream (`/` answers 200) and an issuer whose discovery document is all a
/// sign-in start needs.
async fn stubs(addr: SocketAddr) {
    let listener = TcpListener::bind(addr).await.expect("bind stubs");
    let issuer = format!("http://{addr}");
    let discovery = Bytes::from(
        serde_json::json!({
            "issuer": issuer,
            "authorization_endpoint": format!("{issuer}/authorize"),
            "token_endpoint": format!("{issuer}/token"),
            "jwks_uri": format!("{issuer}/jwks"),
            "response_types_supported": ["code"],
            "subject_types_supported": ["public"],
            "id_token_signing_alg_values_supported": ["RS256"],
            "code_challenge_methods_supported": ["S256"],
            "token_endpoint_auth_methods_supported": ["client_secret_basic", "client_secret_post"],
        })
        .to_string(),
    );
    loop {
        let Ok((stream, _)) = listener.accept().await else { continue };
        let discovery = discovery.clone();
        tokio::spawn(async move {
            let service = hyper::service::service_fn(move |req: Request<hyper::body::Incoming>| {
                let discovery = discovery.clone();
                async move {
                    let (body, kind) = match req.uri().path() {
                        "/.well-known/openid-configuration" => (discovery, "application/json"),
                        "/jwks" => (Bytes::from_static(b"{\"keys\":[]}"), "application/json"),
                        _ => (Bytes::from_static(b"upstream ok\n"), "text/plain"),
                    };
                    let resp = Response::builder().header(header::CONTENT_TYPE, kind).body(Full::new(body));
                    Ok::<_, Infallible>(resp.expect("static response"))
                }
            });
            let _ = hyper::server::conn::http1::Builder::new()
                .serve_connection(TokioIo::new(stream), service)
                .await;
        });
    }
}

/// A form page's CSRF cookie and token, fetched once and reused by every request.
struct Csrf {
    cookie: String,
    token: String,
}

async fn csrf(target: SocketAddr) -> Csrf {
    let mut send = connect(IpAddr::V4(Ipv4Addr::LOCALHOST), target).await.expect("connect for the form");
    let req = Request::get("/.deskgate/login")
        .header(header::HOST, target.to_string())
        .header(header::ACCEPT, "text/html")
        .body(Full::new(Bytes::new()))
        .unwrap();
    let resp = send.send_request(req).await.expect("login page");
    let cookie = resp
        .headers()
        .get_all(header::SET_COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .find(|v| v.contains("_csrf="))
        .and_then(|v| v.split(';').next())
        .expect("a CSRF cookie")
        .to_owned();
    let body = String::from_utf8_lossy(&resp.into_body().collect().await.unwrap().to_bytes()).into_owned();
    let marker = "name=\"csrf\" value=\"";
    let at = body.find(marker).expect("a csrf field") + marker.len();
    let token = body[at..at + body[at..].find('"').unwrap()].to_owned();
    Csrf { cookie, token }
}

type Sender = hyper::client::conn::http1::SendRequest<Full<Bytes>>;

async fn connect(source: IpAddr, target: SocketAddr) -> std::io::Result<Sender> {
    let socket = TcpSocket::new_v4()?;
    socket.bind(SocketAddr::new(source, 0))?;
    let stream = socket.connect(target).await?;
    let (send, conn) =
        hyper::client::conn::http1::handshake(TokioIo::new(stream)).await.map_err(std::io::Error::other)?;
    tokio::spawn(conn);
    Ok(send)
}

/// The `n`th address of 127.0.0.0/8 after 127.0.0.1 (127.1.0.1, 127.1.0.2, …), skipping
/// network-like `.0` and broadcast-like `.255` last octets.
fn spread(n: u64) -> IpAddr {
    let n = n % (254 * 256 * 254);
    let (a, rest) = ((n / (256 * 254)) as u8 + 1, n % (256 * 254));
    IpAddr::V4(Ipv4Addr::new(127, a, (rest / 254) as u8, (rest % 254) as u8 + 1))
}

fn random() -> String {
    format!("{:032x}", rand::random::<u128>())
}

fn request(endpoint: &str, host: &str, csrf: &Csrf) -> Request<Full<Bytes>> {
    let form = |path: &str, body: String, cookie: &str| {
        Request::post(path)
            .header(header::HOST, host)
            .header(header::ACCEPT, "text/html")
            .header(header::CONTENT_TYPE, "application/x-www-form-urlencoded")
            .header(header::COOKIE, cookie)
            .body(Full::new(Bytes::from(body)))
            .unwrap()
    };
    let get = |path: String, cookie: Option<String>| {
        let mut req = Request::get(path).header(header::HOST, host).header(header::ACCEPT, "text/html");
        if let Some(c) = cookie {
            req = req.header(header::COOKIE, c);
        }
        req.body(Full::new(Bytes::new())).unwrap()
    };
    match endpoint {
        "login" => form(
            "/.deskgate/login",
            format!(
                "email=flood-{}%40example.invalid&password=wrong-password-1&csrf={}",
                random(),
                csrf.token
            ),
            &csrf.cookie,
        ),
        "signup" => form(
            "/.deskgate/register",
            format!(
                "name=Flood&email=flood-{}%40example.invalid&password=Flood-passw0rd&confirm=Flood-passw0rd&csrf={}",
                random(),
                csrf.token
            ),
            &csrf.cookie,
        ),
        "oidc-start" => get("/.deskgate/oidc/flood/start?next=/".into(), None),
        "saml-start" => get("/.deskgate/saml/flood/start?next=/".into(), None),
        "oidc-callback" => {
            get(format!("/.deskgate/oidc/flood/callback?code={}&state={}", random(), random()), None)
        }
        "saml-callback" => {
            // About the size of a real signed response, and not one.
            let response = "PHNhbWxwOlJlc3BvbnNlIC8+".repeat(200);
            form("/.deskgate/saml/flood/acs", format!("SAMLResponse={response}&RelayState={}", random()), "")
        }
        "session-cookie" => {
            get("/".into(), Some(format!("deskgate_session={}{}", random(), &random()[..11])))
        }
        // Two requests each, made in `roundtrip`.
        _ => unreachable!("checked in main"),
    }
}

/// One request and its whole answer: the status and headers.
async fn exchange(send: &mut Sender, req: Request<Full<Bytes>>) -> Option<(u16, http::HeaderMap)> {
    send.ready().await.ok()?;
    let resp = send.send_request(req).await.ok()?;
    let (parts, body) = resp.into_parts();
    body.collect().await.ok()?;
    Some((parts.status.as_u16(), parts.headers))
}

/// A start, then its callback with the start's cookie and state and a made-up code: what
/// a client that keeps its cookies can make the server write (the used state). Counts the
/// callback's status.
async fn roundtrip(send: &mut Sender, host: &str) -> Option<(u16, http::HeaderMap)> {
    let get = |path: String, cookie: &str| {
        Request::get(path)
            .header(header::HOST, host)
            .header(header::ACCEPT, "text/html")
            .header(header::COOKIE, cookie)
            .body(Full::new(Bytes::new()))
            .unwrap()
    };
    let (_, headers) = exchange(send, get("/.deskgate/oidc/flood/start".into(), "")).await?;
    let cookie = headers.get(header::SET_COOKIE)?.to_str().ok()?.split(';').next()?.to_owned();
    let location = headers.get(header::LOCATION)?.to_str().ok()?;
    let state = location.split(['?', '&']).find_map(|p| p.strip_prefix("state="))?.to_owned();
    exchange(send, get(format!("/.deskgate/oidc/flood/callback?code={}&state={state}", random()), &cookie))
        .await
}

async fn run(base: &str, endpoint: &str, secs: u64, conns: usize, many: bool) {
    let target: SocketAddr = base.trim_start_matches("http://").trim_end_matches('/').parse().expect("BASE");
    let host = target.to_string();
    let csrf = Arc::new(csrf(target).await);
    let next_address = Arc::new(AtomicU64::new(0));
    let deadline = Instant::now() + Duration::from_secs(secs);
    let started = Instant::now();
    let mut tasks = Vec::new();
    for _ in 0..conns {
        let (csrf, next_address, host) = (csrf.clone(), next_address.clone(), host.clone());
        let endpoint = endpoint.to_owned();
        tasks.push(tokio::spawn(async move {
            let mut statuses: BTreeMap<u16, u64> = BTreeMap::new();
            let mut errors = 0u64;
            while Instant::now() < deadline {
                let source = if many {
                    spread(next_address.fetch_add(1, Ordering::Relaxed))
                } else {
                    IpAddr::V4(Ipv4Addr::LOCALHOST)
                };
                let Ok(mut send) = connect(source, target).await else {
                    errors += 1;
                    tokio::time::sleep(Duration::from_millis(10)).await;
                    continue;
                };
                let mut sent = 0;
                while Instant::now() < deadline && (!many || sent < PER_ADDRESS) {
                    let answer = if endpoint == "oidc-roundtrip" {
                        roundtrip(&mut send, &host).await
                    } else {
                        exchange(&mut send, request(&endpoint, &host, &csrf)).await
                    };
                    let Some((status, _)) = answer else {
                        errors += 1;
                        break;
                    };
                    *statuses.entry(status).or_default() += 1;
                    sent += 1;
                }
            }
            (statuses, errors)
        }));
    }
    let mut statuses: BTreeMap<u16, u64> = BTreeMap::new();
    let mut errors = 0;
    for t in tasks {
        let (s, e) = t.await.expect("worker");
        for (k, v) in s {
            *statuses.entry(k).or_default() += v;
        }
        errors += e;
    }
    let total: u64 = statuses.values().sum();
    let elapsed = started.elapsed().as_secs_f64();
    let addresses = if many { next_address.load(Ordering::Relaxed).to_string() } else { "1".into() };
    let statuses: Vec<String> = statuses.iter().map(|(k, v)| format!("{k}:{v}")).collect();
    println!(
        "{endpoint} from {addresses} address(es): {total} requests in {elapsed:.1}s ({:.0}/s), statuses {}, errors {errors}",
        total as f64 / elapsed,
        statuses.join(" ")
    );
}
