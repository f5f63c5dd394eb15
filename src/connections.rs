//! Client connections: accepted up to a cap, served as HTTP/1.1 or h2c, and closed when they
//! are slow to send a request head or sit idle between requests.
//!
//! The rules (each a `[server]` key): a connection must deliver a whole request head within
//! `header_read_timeout`, counted from when it opens, or from the first byte of its next
//! request after a response; a connection with no request under way is closed after
//! `idle_timeout`; at most `max_connections` are open at once, and further ones wait in
//! the listening socket's queue until one closes (nothing is logged per connection).

use std::convert::Infallible;
use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::{AtomicU32, AtomicU64, Ordering};
use std::task::{Context, Poll};
use std::time::{Duration, Instant};

use axum::Router;
use axum::body::Body;
use axum::extract::ConnectInfo;
use bytes::Bytes;
use http::{Request, Response};
use http_body::Frame;
use hyper::body::Incoming;
use hyper_util::rt::{TokioExecutor, TokioIo};
use hyper_util::server::conn::auto;
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::TcpListener;
use tokio::sync::{OwnedSemaphorePermit, Semaphore, watch};
use tokio::task::JoinSet;
use tokio_rustls::TlsAcceptor;

/// Limits on client connections (`[server]`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ConnectionLimits {
    /// Time to send a whole request head.
    pub header_read_timeout: Duration,
    /// Time a connection may stay open with no request under way.
    pub idle_timeout: Duration,
    /// Time a request body may stall: no byte for this long while deskgate waits for one.
    pub body_read_timeout: Duration,
    /// Open connections at most (across every serving thread).
    pub max_connections: usize,
    /// How long a stopping server lets open requests finish before it closes them.
    pub shutdown_timeout: Duration,
}

impl ConnectionLimits {
    /// The defaults stated in the reference.
    pub const DEFAULT: ConnectionLimits = ConnectionLimits {
        header_read_timeout: Duration::from_secs(10),
        idle_timeout: Duration::from_secs(30),
        body_read_timeout: Duration::from_secs(30),
        max_connections: 8192,
        shutdown_timeout: Duration::from_secs(10),
    };

    /// How often each connection's deadlines are looked at: a quarter of the shorter one,
    /// between 50 ms and 1 s, so a connection is closed at most that late.
    fn tick(&self) -> Duration {
        (self.header_read_timeout.min(self.idle_timeout).min(self.body_read_timeout) / 4)
            .clamp(Duration::from_millis(50), Duration::from_secs(1))
    }
}

/// The open-connection cap shared by every serving thread of one server.
#[derive(Debug, Clone)]
pub struct ConnectionCap(Arc<Semaphore>);

impl ConnectionCap {
    /// A cap of `limits.max_connections`.
    pub fn new(limits: &ConnectionLimits) -> ConnectionCap {
        ConnectionCap(Arc::new(Semaphore::new(limits.max_connections.max(1))))
    }
}

/// What a connection is doing, as its deadlines need it. Times are milliseconds since the
/// connection opened, plus one, so that 0 means "not set".
#[derive(Debug)]
struct Activity {
    opened: Instant,
    /// Requests whose response has not been written out yet.
    in_flight: AtomicU32,
    /// When the request head now awaited began arriving (0: none is).
    head_since: AtomicU64,
    /// When the last request in flight ended.
    idle_since: AtomicU64,
    /// Since when a request body has been waited for without a byte arriving (0: none is).
    body_waiting_since: AtomicU64,
}

impl Activity {
    fn new() -> Activity {
        // A new connection owes its first request head from the start.
        Activity {
            opened: Instant::now(),
            in_flight: AtomicU32::new(0),
            head_since: AtomicU64::new(1),
            idle_since: AtomicU64::new(1),
            body_waiting_since: AtomicU64::new(0),
        }
    }

    fn now(&self) -> u64 {
        u64::try_from(self.opened.elapsed().as_millis()).unwrap_or(u64::MAX - 1) + 1
    }

    /// Bytes arrived: with no request in flight they start the next request head.
    fn read(&self) {
        if self.in_flight.load(Ordering::Acquire) == 0 && self.head_since.load(Ordering::Acquire) == 0 {
            self.head_since.store(self.now(), Ordering::Release);
        }
    }

    /// A request head was read whole; the guard ends the request when dropped.
    fn begin(self: &Arc<Self>) -> InFlight {
        self.in_flight.fetch_add(1, Ordering::AcqRel);
        self.head_since.store(0, Ordering::Release);
        InFlight(self.clone())
    }

    /// A request body is wanted and the client has not sent the next part yet.
    fn body_waiting(&self) {
        if self.body_waiting_since.load(Ordering::Acquire) == 0 {
            self.body_waiting_since.store(self.now(), Ordering::Release);
        }
    }

    /// A part of a request body (or its end) arrived.
    fn body_arrived(&self) {
        self.body_waiting_since.store(0, Ordering::Release);
    }

    /// Whether the connection has missed a deadline.
    fn overdue(&self, limits: &ConnectionLimits) -> bool {
        let now = self.now();
        let millis = |d: Duration| u64::try_from(d.as_millis()).unwrap_or(u64::MAX);
        if self.in_flight.load(Ordering::Acquire) > 0 {
            // Only a body deskgate is waiting for, and the client is not sending, counts:
            // an upstream that is slow to take it is not the client's fault.
            let waiting = self.body_waiting_since.load(Ordering::Acquire);
            return waiting != 0 && now.saturating_sub(waiting) >= millis(limits.body_read_timeout);
        }
        match self.head_since.load(Ordering::Acquire) {
            0 => now.saturating_sub(self.idle_since.load(Ordering::Acquire)) >= millis(limits.idle_timeout),
            since => now.saturating_sub(since) >= millis(limits.header_read_timeout),
        }
    }
}

/// One request in flight; it ends when its response body is written out or dropped.
#[derive(Debug)]
struct InFlight(Arc<Activity>);

impl Drop for InFlight {
    fn drop(&mut self) {
        if self.0.in_flight.fetch_sub(1, Ordering::AcqRel) == 1 {
            self.0.idle_since.store(self.0.now(), Ordering::Release);
        }
    }
}

/// A response body that keeps its request in flight until it is done.
struct Tracked {
    body: Body,
    _request: InFlight,
}

impl http_body::Body for Tracked {
    type Data = Bytes;
    type Error = axum::Error;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, axum::Error>>> {
        Pin::new(&mut self.body).poll_frame(cx)
    }

    fn is_end_stream(&self) -> bool {
        self.body.is_end_stream()
    }

    fn size_hint(&self) -> http_body::SizeHint {
        self.body.size_hint()
    }
}

/// A request body, noting when deskgate waits for the client to send more of it.
struct WatchedBody {
    body: Incoming,
    activity: Arc<Activity>,
}

impl http_body::Body for WatchedBody {
    type Data = Bytes;
    type Error = hyper::Error;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, hyper::Error>>> {
        let polled = Pin::new(&mut self.body).poll_frame(cx);
        if polled.is_pending() {
            self.activity.body_waiting();
        } else {
            self.activity.body_arrived();
        }
        polled
    }

    fn is_end_stream(&self) -> bool {
        self.body.is_end_stream()
    }

    fn size_hint(&self) -> http_body::SizeHint {
        self.body.size_hint()
    }
}

/// The client connection, noting when bytes arrive.
struct Watched<S> {
    stream: S,
    activity: Arc<Activity>,
}

impl<S: AsyncRead + Unpin> AsyncRead for Watched<S> {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<std::io::Result<()>> {
        let before = buf.filled().len();
        let polled = Pin::new(&mut self.stream).poll_read(cx, buf);
        if buf.filled().len() > before {
            self.activity.read();
        }
        polled
    }
}

impl<S: AsyncWrite + Unpin> AsyncWrite for Watched<S> {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<std::io::Result<usize>> {
        Pin::new(&mut self.stream).poll_write(cx, buf)
    }

    fn poll_write_vectored(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[std::io::IoSlice<'_>],
    ) -> Poll<std::io::Result<usize>> {
        Pin::new(&mut self.stream).poll_write_vectored(cx, bufs)
    }

    fn is_write_vectored(&self) -> bool {
        self.stream.is_write_vectored()
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        Pin::new(&mut self.stream).poll_flush(cx)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        Pin::new(&mut self.stream).poll_shutdown(cx)
    }
}

/// Accepts and serves connections on `listener` with `app` until `stop` turns true, then
/// lets open requests finish for up to `limits.shutdown_timeout` and closes what is left.
pub async fn serve(
    listener: TcpListener,
    app: Router,
    limits: ConnectionLimits,
    cap: ConnectionCap,
    tls: Option<TlsAcceptor>,
    mut stop: watch::Receiver<bool>,
) -> std::io::Result<()> {
    let mut open = JoinSet::new();
    let mut accept_errors = Quiet::default();
    loop {
        // At the cap, wait here: new connections queue in the listening socket.
        let permit = tokio::select! {
            permit = cap.0.clone().acquire_owned() => permit.map_err(std::io::Error::other)?,
            _ = stop.wait_for(|s| *s) => break,
        };
        let accepted = tokio::select! {
            accepted = listener.accept() => accepted,
            _ = stop.wait_for(|s| *s) => break,
        };
        match accepted {
            Ok((stream, peer)) => {
                let (app, stop) = (app.clone(), stop.clone());
                match tls.clone() {
                    None => {
                        let _ = stream.set_nodelay(true);
                        open.spawn(connection(stream, peer, app, limits, permit, stop))
                    }
                    Some(acceptor) => open.spawn(async move {
                        let _ = stream.set_nodelay(true);
                        // The handshake is part of the first request head's time.
                        let shaken =
                            tokio::time::timeout(limits.header_read_timeout, acceptor.accept(stream)).await;
                        match shaken {
                            Ok(Ok(stream)) => connection(stream, peer, app, limits, permit, stop).await,
                            Ok(Err(error)) => {
                                tracing::debug!(client = %peer.ip(), %error, "TLS handshake failed")
                            }
                            Err(_) => tracing::debug!(client = %peer.ip(), "TLS handshake timed out"),
                        }
                    }),
                };
            }
            Err(error) => {
                // Out of file descriptors, mostly: wait a little rather than spin, and say so
                // once a minute at most.
                accept_errors.warn(&error);
                tokio::time::sleep(Duration::from_millis(50)).await;
            }
        }
        while open.try_join_next().is_some() {}
    }
    let drained =
        tokio::time::timeout(limits.shutdown_timeout, async { while open.join_next().await.is_some() {} })
            .await;
    if drained.is_err() {
        tracing::warn!(open = open.len(), "Shutdown deadline reached; closing the connections still open");
        open.abort_all();
    }
    Ok(())
}

/// Logs accept failures at most once a minute, with how many there were.
#[derive(Default)]
struct Quiet {
    last: Option<Instant>,
    since: u64,
}

impl Quiet {
    fn warn(&mut self, error: &std::io::Error) {
        self.since += 1;
        if self.last.is_none_or(|t| t.elapsed() >= Duration::from_secs(60)) {
            tracing::warn!(%error, failures = self.since, "Cannot accept connections");
            self.last = Some(Instant::now());
            self.since = 0;
        }
    }
}

/// Serves one connection until it ends, misses a deadline, or the server stops.
async fn connection<S>(
    stream: S,
    peer: SocketAddr,
    app: Router,
    limits: ConnectionLimits,
    _permit: OwnedSemaphorePermit,
    mut stop: watch::Receiver<bool>,
) where
    S: AsyncRead + AsyncWrite + Unpin + Send + 'static,
{
    let activity = Arc::new(Activity::new());
    let io = TokioIo::new(Watched { stream, activity: activity.clone() });
    let requests = activity.clone();
    let service = hyper::service::service_fn(move |mut req: Request<Incoming>| {
        let request = requests.begin();
        req.extensions_mut().insert(ConnectInfo(peer));
        let watched = requests.clone();
        let call = tower::ServiceExt::oneshot(
            app.clone(),
            req.map(|body| Body::new(WatchedBody { body, activity: watched })),
        );
        async move {
            let response: Response<Body> = match call.await {
                Ok(response) => response,
                Err(never) => match never {},
            };
            Ok::<_, Infallible>(response.map(|body| Body::new(Tracked { body, _request: request })))
        }
    });
    let builder = auto::Builder::new(TokioExecutor::new());
    let conn = builder.serve_connection_with_upgrades(io, service);
    tokio::pin!(conn);
    let mut tick = tokio::time::interval(limits.tick());
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Skip);
    loop {
        tokio::select! {
            ended = conn.as_mut() => {
                if let Err(error) = ended {
                    tracing::debug!(client = %peer.ip(), %error, "Connection ended with an error");
                }
                return;
            }
            _ = tick.tick() => {
                if activity.overdue(&limits) {
                    // Nothing is in flight: dropping the connection loses no request.
                    tracing::debug!(client = %peer.ip(), "Closed a slow or idle connection");
                    return;
                }
            }
            _ = stop.wait_for(|s| *s) => break,
        }
    }
    conn.as_mut().graceful_shutdown();
    let _ = tokio::time::timeout(limits.shutdown_timeout, conn).await;
}

#[cfg(test)]
mod tests {
    use super::*;

    fn limits(head_ms: u64, idle_ms: u64) -> ConnectionLimits {
        ConnectionLimits {
            header_read_timeout: Duration::from_millis(head_ms),
            idle_timeout: Duration::from_millis(idle_ms),
            body_read_timeout: Duration::from_millis(idle_ms),
            max_connections: 1,
            shutdown_timeout: Duration::from_secs(1),
        }
    }

    #[test]
    fn a_request_in_flight_is_never_overdue() {
        let a = Arc::new(Activity::new());
        let _request = a.begin();
        std::thread::sleep(Duration::from_millis(5));
        assert!(!a.overdue(&limits(1, 1)));
    }

    #[test]
    fn a_request_body_the_client_stops_sending_is_overdue_but_not_one_the_upstream_is_slow_to_take() {
        let a = Arc::new(Activity::new());
        let _request = a.begin();
        std::thread::sleep(Duration::from_millis(5));
        assert!(!a.overdue(&limits(60_000, 1)), "nobody waits for the body: not the client's fault");
        a.body_waiting();
        std::thread::sleep(Duration::from_millis(5));
        assert!(a.overdue(&limits(60_000, 1)));
        a.body_arrived();
        assert!(!a.overdue(&limits(60_000, 1)));
    }

    #[test]
    fn a_silent_new_connection_owes_its_head_within_the_header_timeout() {
        let a = Arc::new(Activity::new());
        std::thread::sleep(Duration::from_millis(5));
        assert!(a.overdue(&limits(1, 60_000)), "the head timeout applies from the start");
        assert!(!a.overdue(&limits(60_000, 1)), "not the idle one");
    }

    #[test]
    fn after_a_response_the_idle_timeout_applies_until_bytes_arrive() {
        let a = Arc::new(Activity::new());
        drop(a.begin());
        std::thread::sleep(Duration::from_millis(5));
        assert!(a.overdue(&limits(60_000, 1)));
        assert!(!a.overdue(&limits(1, 60_000)));
        a.read();
        assert!(!a.overdue(&limits(60_000, 1)), "a head has begun: the idle clock no longer counts");
    }
}
