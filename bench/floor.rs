//! The transport alone: deskgate's upstream client behind a bare HTTP server, with the same
//! thread-per-core serving as `deskgate serve` and none of the gate (no session, rule,
//! headers or JWT). `bench/proxy.sh` measures it beside the gateway, to tell what the gate
//! costs from what the transport does.
//!
//!     cargo run --release --example proxy-floor -- LISTEN UPSTREAM_URL WORKERS [conn]
//!
//! With `conn`, the upstream client is not deskgate's (hyper-util's pooled client) but a
//! minimal one: per thread, a list of `hyper::client::conn::http1` connections, taking the
//! first that is ready; it shows what the pooled client itself costs.
//!
//! With `answer` (and `-` for the upstream), nothing is forwarded: every request is answered
//! 200 with what a forward-auth answer carries (ten identity headers, one a 600-byte token,
//! and `no-store`), decided by nothing. `bench/forwardauth.sh` asks it beside deskgate: the
//! floor of an HTTP server on this serving, over which the gate's own work is counted.

use std::net::SocketAddr;
use std::time::Duration;

use axum::Router;
use axum::extract::Request;
use axum::response::IntoResponse;
use deskgate::identity::HeaderNames;
use deskgate::proxy::{Proxy, UpstreamSettings, set_worker};

fn main() {
    let args: Vec<String> = std::env::args().collect();
    let usage = "usage: proxy-floor LISTEN UPSTREAM_URL WORKERS [conn] | proxy-floor LISTEN - WORKERS answer";
    if let [_, l, _, w, mode] = &args[..]
        && mode == "answer"
    {
        return serve(l.parse().expect("LISTEN"), w.parse().expect("WORKERS"), answer());
    }
    let (listen, upstream, workers): (SocketAddr, http::Uri, usize) = match &args[..] {
        [_, l, u, w] | [_, l, u, w, _] => {
            (l.parse().expect("LISTEN"), u.parse().expect("UPSTREAM_URL"), w.parse().expect("WORKERS"))
        }
        _ => panic!("{usage}"),
    };
    if args.get(4).map(String::as_str) == Some("conn") {
        let authority = upstream.authority().expect("an upstream with host and port").to_string();
        let target: SocketAddr = authority.parse().expect("UPSTREAM_URL with an IP address and port");
        let host = http::HeaderValue::from_str(&authority).expect("host");
        let app = Router::new().fallback(move |req: Request| {
            let host = host.clone();
            async move {
                match conn::send(target, host, req).await {
                    Ok(resp) => resp.map(axum::body::Body::new),
                    Err(_) => http::StatusCode::BAD_GATEWAY.into_response(),
                }
            }
        });
        return serve(listen, workers, app);
    }
    let proxy = Proxy::new(&UpstreamSettings {
        url: upstream,
        connect_timeout: Duration::from_secs(5),
        timeout: Duration::from_secs(30),
        http2: false,
        pool_idle_timeout: Duration::from_secs(90),
        workers,
    });
    let app = Router::new().fallback(move |req: Request| {
        let proxy = proxy.clone();
        async move {
            let target = req.uri().path_and_query().map_or("/", |pq| pq.as_str()).to_owned();
            match proxy.forward(req, &target).await {
                Ok(resp) => resp,
                Err(_) => http::StatusCode::BAD_GATEWAY.into_response(),
            }
        }
    });
    serve(listen, workers, app);
}

/// Answers every request as an allowed forward-auth question is answered, deciding nothing.
fn answer() -> Router {
    let token = http::HeaderValue::from_str(&"t".repeat(600)).expect("token");
    let names = std::sync::Arc::new(HeaderNames::new("X-Deskgate-").expect("prefix"));
    Router::new().fallback(move || {
        let (token, names) = (token.clone(), names.clone());
        async move {
            let mut resp = http::StatusCode::OK.into_response();
            let h = resp.headers_mut();
            for name in names.all() {
                h.insert(name.clone(), http::HeaderValue::from_static("a-value-of-some-length"));
            }
            h.insert(names.jwt.clone(), token);
            h.insert(http::header::CACHE_CONTROL, http::HeaderValue::from_static("no-store"));
            resp
        }
    })
}

fn serve(listen: SocketAddr, workers: usize, app: Router) {
    // As `deskgate serve`: one listening socket, accepted from by every thread.
    let listener = std::net::TcpListener::bind(listen).expect("bind");
    listener.set_nonblocking(true).expect("nonblocking");
    let threads: Vec<_> = (0..workers)
        .map(|index| {
            let (app, listener) = (app.clone(), listener.try_clone().expect("clone"));
            std::thread::spawn(move || {
                set_worker(index);
                let rt = tokio::runtime::Builder::new_current_thread().enable_all().build().expect("runtime");
                rt.block_on(async move {
                    let listener = tokio::net::TcpListener::from_std(listener).expect("listener");
                    axum::serve(listener, app).await.expect("serve");
                });
            })
        })
        .collect();
    for t in threads {
        let _ = t.join();
    }
}
/// A minimal HTTP/1 client: per thread, the open connections to one upstream.
mod conn {
    use std::cell::RefCell;
    use std::net::SocketAddr;

    use axum::body::Body;
    use http::header::HOST;
    use http::{HeaderValue, Request, Response};
    use hyper::body::Incoming;
    use hyper::client::conn::http1::{self, SendRequest};
    use hyper_util::rt::TokioIo;

    type Error = Box<dyn std::error::Error + Send + Sync>;

    thread_local! {
        static POOL: RefCell<Vec<SendRequest<Body>>> = const { RefCell::new(Vec::new()) };
    }

    /// Sends `req` on a ready connection of this thread, opening one when none is ready; the
    /// connection goes back at once (it is ready again when its response body is read).
    pub async fn send(
        target: SocketAddr,
        host: HeaderValue,
        req: Request<Body>,
    ) -> Result<Response<Incoming>, Error> {
        let ready = POOL.with(|p| {
            let mut p = p.borrow_mut();
            p.retain(|s| !s.is_closed());
            p.iter().position(SendRequest::is_ready).map(|i| p.swap_remove(i))
        });
        let mut sender = match ready {
            Some(s) => s,
            None => {
                let stream = tokio::net::TcpStream::connect(target).await?;
                stream.set_nodelay(true)?;
                let (sender, connection) = http1::handshake(TokioIo::new(stream)).await?;
                tokio::spawn(connection);
                sender
            }
        };
        let (mut parts, body) = req.into_parts();
        parts.uri = parts.uri.path_and_query().map_or("/", |pq| pq.as_str()).parse()?;
        parts.headers.insert(HOST, host);
        let resp = sender.send_request(Request::from_parts(parts, body)).await?;
        POOL.with(|p| p.borrow_mut().push(sender));
        Ok(resp)
    }
}
