//! The transport alone: deskgate's upstream client behind a bare HTTP server, with the same
//! thread-per-core serving as `deskgate serve` and none of the gate (no session, rule,
//! headers or JWT). `bench/proxy.sh` measures it beside the gateway, to tell what the gate
//! costs from what the transport does.
//!
//!     cargo run --release --example proxy-floor -- LISTEN UPSTREAM_URL WORKERS

use std::net::SocketAddr;
use std::time::Duration;

use axum::Router;
use axum::extract::Request;
use axum::response::IntoResponse;
use deskgate::proxy::{Proxy, UpstreamSettings, set_worker};

fn main() {
    let args: Vec<String> = std::env::args().collect();
    let (listen, upstream, workers): (SocketAddr, http::Uri, usize) = match &args[..] {
        [_, l, u, w] => {
            (l.parse().expect("LISTEN"), u.parse().expect("UPSTREAM_URL"), w.parse().expect("WORKERS"))
        }
        _ => panic!("usage: proxy-floor LISTEN UPSTREAM_URL WORKERS"),
    };
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
    let threads: Vec<_> = (0..workers)
        .map(|index| {
            let app = app.clone();
            std::thread::spawn(move || {
                set_worker(index);
                let rt = tokio::runtime::Builder::new_current_thread().enable_all().build().expect("runtime");
                rt.block_on(async move {
                    let socket = tokio::net::TcpSocket::new_v4().expect("socket");
                    socket.set_reuseaddr(true).expect("reuseaddr");
                    socket.set_reuseport(true).expect("reuseport");
                    socket.bind(listen).expect("bind");
                    axum::serve(socket.listen(1024).expect("listen"), app).await.expect("serve");
                });
            })
        })
        .collect();
    for t in threads {
        let _ = t.join();
    }
}
