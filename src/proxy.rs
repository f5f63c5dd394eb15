//! The upstream transport: forwards the requests deskgate has let through to the protected
//! app over pooled HTTP/1.1 or h2c connections, streaming bodies both ways and splicing
//! upgraded (WebSocket) connections.

use std::sync::Arc;
use std::time::Duration;

use axum::body::Body;
use http::header::{self, HeaderMap, HeaderName, HeaderValue};
use http::uri::{Authority, Scheme};
use http::{Request, Response, StatusCode, Uri, Version};
use hyper::body::Incoming;
use hyper::upgrade::OnUpgrade;
use hyper_util::client::legacy::{self, Client, connect::HttpConnector};
use hyper_util::rt::{TokioExecutor, TokioIo, TokioTimer};

use crate::edge::{connection_has_token, connection_tokens};

/// The client type shared by every clone of a [`Proxy`].
type HttpClient = Client<HttpConnector, Body>;

/// Headers that describe one hop and must never be passed on (RFC 9110 section 7.6.1, plus
/// the non-standard `Keep-Alive` and `Proxy-Connection` that old clients still send).
const HOP_BY_HOP: [&str; 9] = [
    "connection",
    "keep-alive",
    "proxy-connection",
    "proxy-authenticate",
    "proxy-authorization",
    "te",
    "trailer",
    "transfer-encoding",
    "upgrade",
];

/// How to reach the upstream.
#[derive(Debug, Clone)]
pub struct UpstreamSettings {
    /// Scheme (`http`), authority and optional base path such as `/helpdesk`.
    pub url: Uri,
    /// Time allowed to establish a TCP connection.
    pub connect_timeout: Duration,
    /// Time allowed until the upstream's response headers arrive.
    pub timeout: Duration,
    /// Speak HTTP/2 with prior knowledge (h2c) instead of HTTP/1.1.
    pub http2: bool,
    /// How long an unused pooled connection is kept open.
    pub pool_idle_timeout: Duration,
    /// Serving threads, each with pools of its own (see [`set_worker`]).
    pub workers: usize,
}

/// Why a request could not be forwarded.
#[derive(Debug, thiserror::Error)]
pub enum ProxyError {
    /// No connection could be made (refused, unresolvable, connect timeout).
    #[error("upstream is unreachable")]
    Unreachable(#[source] legacy::Error),
    /// The upstream's response headers did not arrive in time.
    #[error("upstream did not answer in time")]
    Timeout,
    /// The upstream broke off the exchange or sent something that is not HTTP.
    #[error("upstream broke off the exchange")]
    Upstream(#[source] legacy::Error),
    /// The upstream switched protocols although no upgrade was asked for.
    #[error("upstream switched protocols without being asked to")]
    UnrequestedUpgrade,
    /// The upstream URL and the request's path do not form a valid URI.
    #[error("upstream URL and request path do not form a valid URI")]
    InvalidTarget(#[source] http::Error),
    /// The upstream answered a WebSocket handshake with a 101 that is not WebSocket's.
    #[error("upstream switched to something other than the WebSocket asked for")]
    WrongUpgrade,
    /// The client's request body broke off the exchange: the client's fault, not the
    /// upstream's.
    #[error("the client's request body is {0}")]
    ClientBody(BodyFault),
}

/// What was wrong with a client's request body.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BodyFault {
    /// Not valid HTTP framing (a bad chunk size, a connection closed mid-body).
    Malformed,
    /// Larger than `server.max_body_bytes`.
    TooLarge,
}

impl std::fmt::Display for BodyFault {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            BodyFault::Malformed => "malformed",
            BodyFault::TooLarge => "too large",
        })
    }
}

/// The client's request body on its way upstream; notes why it failed, if it does, so that
/// the failure is answered as the client's (400, 413) and not as the upstream's (502).
struct ClientBody {
    body: Body,
    fault: Arc<std::sync::OnceLock<BodyFault>>,
}

impl http_body::Body for ClientBody {
    type Data = bytes::Bytes;
    type Error = axum::Error;

    fn poll_frame(
        mut self: std::pin::Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
    ) -> std::task::Poll<Option<Result<http_body::Frame<bytes::Bytes>, axum::Error>>> {
        let polled = std::pin::Pin::new(&mut self.body).poll_frame(cx);
        if let std::task::Poll::Ready(Some(Err(e))) = &polled {
            let _ = self.fault.set(if too_large(e) { BodyFault::TooLarge } else { BodyFault::Malformed });
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

/// Whether a body error is the body-size limit's.
fn too_large(error: &(dyn std::error::Error + 'static)) -> bool {
    let mut cause = Some(error);
    while let Some(e) = cause {
        if e.is::<http_body_util::LengthLimitError>() {
            return true;
        }
        cause = e.source();
    }
    false
}

/// A pooled client for one upstream; clones share the pools.
#[derive(Clone, Debug)]
pub struct Proxy {
    inner: Arc<Inner>,
    /// Request headers that a client's `Connection` header may not remove.
    protected: Arc<[HeaderName]>,
}

/// One serving thread's pools.
#[derive(Debug)]
struct Pools {
    client: HttpClient,
    /// HTTP/1.1 only: upgrades do not exist in HTTP/2, so they need their own pool when
    /// `client` speaks h2c.
    upgrade_client: HttpClient,
}

thread_local! {
    /// Which serving thread this is (see [`set_worker`]); 0 outside them.
    static WORKER: std::cell::Cell<usize> = const { std::cell::Cell::new(0) };
}

/// Marks the current thread as serving thread `index`: its requests use pools of their own,
/// whose connections live on this thread's event loop, so forwarding a request wakes no
/// other thread.
pub fn set_worker(index: usize) {
    WORKER.with(|w| w.set(index));
}

#[derive(Debug)]
struct Inner {
    /// One set of pools per serving thread.
    pools: Vec<Pools>,
    scheme: Scheme,
    authority: Option<Authority>,
    host: Option<HeaderValue>,
    base_path: String,
    timeout: Duration,
    http2: bool,
}

impl Proxy {
    /// Builds the connection pool for `settings`; no connection is opened yet.
    pub fn new(settings: &UpstreamSettings) -> Proxy {
        let mut connector = HttpConnector::new();
        connector.set_nodelay(true);
        connector.set_connect_timeout(Some(settings.connect_timeout));

        let build = |http2: bool| {
            Client::builder(TokioExecutor::new())
                .pool_idle_timeout(settings.pool_idle_timeout)
                .pool_timer(TokioTimer::new())
                .http2_only(http2)
                .build(connector.clone())
        };
        let pools = (0..settings.workers.max(1))
            .map(|_| {
                let client = build(settings.http2);
                let upgrade_client = if settings.http2 { build(false) } else { client.clone() };
                Pools { client, upgrade_client }
            })
            .collect();

        let authority = settings.url.authority().cloned();
        // The Host header carries no userinfo, even if the configured URL has some.
        let host = authority.as_ref().and_then(|a| {
            let host = match a.port_u16() {
                Some(port) => format!("{}:{port}", a.host()),
                None => a.host().to_owned(),
            };
            HeaderValue::from_str(&host).ok()
        });

        Proxy {
            inner: Arc::new(Inner {
                pools,
                scheme: settings.url.scheme().cloned().unwrap_or(Scheme::HTTP),
                authority,
                host,
                base_path: settings.url.path().trim_end_matches('/').to_owned(),
                timeout: settings.timeout,
                http2: settings.http2,
            }),
            protected: Arc::new([]),
        }
    }

    /// Also protects `names` (deskgate's identity headers) from removal by a client's
    /// `Connection` header, which could otherwise strip what deskgate set for the upstream;
    /// the `X-Forwarded-*` family is always protected.
    pub fn with_protected_headers(mut self, names: impl IntoIterator<Item = HeaderName>) -> Proxy {
        self.protected = names.into_iter().collect();
        self
    }

    /// Forwards one request. `req` already carries the headers deskgate wants the upstream to see
    /// (identity headers, X-Forwarded-*); its URI is the client's. `path_and_query` is the path and
    /// query to request from the upstream (the proxy prefixes the upstream base path, if any).
    pub async fn forward(
        &self,
        mut req: Request<Body>,
        path_and_query: &str,
    ) -> Result<Response<Body>, ProxyError> {
        let inner = &*self.inner;
        let uri = inner.target(path_and_query)?;
        let client_upgrade = take_upgrade(&mut req);

        let (parts, body) = req.into_parts();
        let mut headers = parts.headers;
        strip_hop_by_hop(&mut headers, |name| is_forwarding_header(name) || self.protected.contains(name));
        headers.remove(header::HOST);

        let pools = &inner.pools[WORKER.with(std::cell::Cell::get) % inner.pools.len()];
        let (client, version) = match &client_upgrade {
            Some((_, protocol, _)) => {
                headers.insert(header::CONNECTION, HeaderValue::from_static("upgrade"));
                headers.insert(header::UPGRADE, protocol.clone());
                (&pools.upgrade_client, Version::HTTP_11)
            }
            None if inner.http2 => (&pools.client, Version::HTTP_2),
            None => (&pools.client, Version::HTTP_11),
        };
        // HTTP/2 names the authority in the URI; a Host header beside it would be redundant.
        if version == Version::HTTP_11 {
            if let Some(host) = &inner.host {
                headers.insert(header::HOST, host.clone());
            }
        }

        let fault = Arc::new(std::sync::OnceLock::new());
        let mut out = Request::new(Body::new(ClientBody { body, fault: fault.clone() }));
        *out.method_mut() = parts.method;
        *out.uri_mut() = uri;
        *out.version_mut() = version;
        *out.headers_mut() = headers;

        let response = match tokio::time::timeout(inner.timeout, client.request(out)).await {
            Ok(Err(_)) if fault.get().is_some() => {
                return Err(ProxyError::ClientBody(*fault.get().unwrap_or(&BodyFault::Malformed)));
            }
            Err(_elapsed) => return Err(ProxyError::Timeout),
            Ok(Err(e)) if e.is_connect() => return Err(ProxyError::Unreachable(e)),
            Ok(Err(e)) => return Err(ProxyError::Upstream(e)),
            Ok(Ok(response)) => response,
        };

        match client_upgrade {
            Some((on_client, protocol, key)) if response.status() == StatusCode::SWITCHING_PROTOCOLS => {
                // Only a real WebSocket answer to this very handshake opens the tunnel.
                let accept = crate::edge::websocket_accept(key.as_bytes());
                let headers = response.headers();
                let upgrade_ok = headers
                    .get(header::UPGRADE)
                    .is_some_and(|v| v.as_bytes().eq_ignore_ascii_case(b"websocket"));
                let accept_ok = headers
                    .get(header::SEC_WEBSOCKET_ACCEPT)
                    .is_some_and(|v| v.as_bytes() == accept.as_bytes());
                if !upgrade_ok || !accept_ok {
                    return Err(ProxyError::WrongUpgrade);
                }
                Ok(splice(on_client, protocol, response))
            }
            None if response.status() == StatusCode::SWITCHING_PROTOCOLS => {
                Err(ProxyError::UnrequestedUpgrade)
            }
            _ => Ok(end_to_end(response)),
        }
    }
}

impl Inner {
    /// The absolute URI to request from the upstream.
    fn target(&self, path_and_query: &str) -> Result<Uri, ProxyError> {
        let mut builder = Uri::builder().scheme(self.scheme.clone());
        if let Some(authority) = &self.authority {
            builder = builder.authority(authority.clone());
        }
        builder
            .path_and_query(join_path(&self.base_path, path_and_query))
            .build()
            .map_err(ProxyError::InvalidTarget)
    }
}

/// Prefixes `path_and_query` with the upstream's base path, with exactly one `/` between.
fn join_path(base_path: &str, path_and_query: &str) -> String {
    let base = base_path.trim_end_matches('/');
    if path_and_query.starts_with('/') {
        format!("{base}{path_and_query}")
    } else {
        format!("{base}/{path_and_query}")
    }
}

/// If `req` is a WebSocket handshake over HTTP/1.1 that the server connection can honour,
/// takes the pending client upgrade, the protocol and the handshake key out of it. Other
/// upgrades are never forwarded (the edge removes them; this refuses them again).
fn take_upgrade(req: &mut Request<Body>) -> Option<(OnUpgrade, HeaderValue, HeaderValue)> {
    if req.version() != Version::HTTP_11 || !connection_has_token(req.headers(), "upgrade") {
        return None;
    }
    let protocol = req.headers().get(header::UPGRADE)?.clone();
    if !protocol.as_bytes().eq_ignore_ascii_case(b"websocket") {
        return None;
    }
    let key = req.headers().get(header::SEC_WEBSOCKET_KEY)?.clone();
    let on_upgrade = req.extensions_mut().remove::<OnUpgrade>()?;
    Some((on_upgrade, protocol, key))
}

/// Removes the hop-by-hop headers and every header the `Connection` header names, except
/// those for which `spare` is true.
fn strip_hop_by_hop(headers: &mut HeaderMap, spare: impl Fn(&HeaderName) -> bool) {
    let named: Vec<HeaderName> = connection_tokens(headers)
        .filter_map(|t| HeaderName::from_bytes(t.as_bytes()).ok())
        .filter(|name| !spare(name))
        .collect();
    for name in named {
        headers.remove(name);
    }
    for name in HOP_BY_HOP {
        headers.remove(name);
    }
}

/// The forwarding headers deskgate sets (or keeps from a trusted proxy) for the upstream; by
/// the time a request gets here, none of them is the client's own.
fn is_forwarding_header(name: &HeaderName) -> bool {
    let name = name.as_str();
    name.starts_with("x-forwarded-") || matches!(name, "forwarded" | "x-real-ip" | "x-client-ip")
}

/// Turns an ordinary upstream response into the client's, body still streaming.
fn end_to_end(response: Response<Incoming>) -> Response<Body> {
    let (mut parts, body) = response.into_parts();
    strip_hop_by_hop(&mut parts.headers, |_| false);
    Response::from_parts(parts, Body::new(body))
}

/// Answers the client's upgrade with the upstream's 101 and joins the two connections once
/// both sides have switched.
fn splice(on_client: OnUpgrade, requested: HeaderValue, mut response: Response<Incoming>) -> Response<Body> {
    let on_upstream = hyper::upgrade::on(&mut response);
    let (mut parts, _empty) = response.into_parts();
    let protocol = parts.headers.get(header::UPGRADE).cloned().unwrap_or(requested);
    strip_hop_by_hop(&mut parts.headers, |_| false);
    parts.headers.insert(header::CONNECTION, HeaderValue::from_static("upgrade"));
    parts.headers.insert(header::UPGRADE, protocol);

    tokio::spawn(async move {
        let (client, upstream) = match tokio::try_join!(on_client, on_upstream) {
            Ok(both) => both,
            Err(error) => {
                tracing::debug!(%error, "Upgrade did not complete");
                return;
            }
        };
        let mut client = TokioIo::new(client);
        let mut upstream = TokioIo::new(upstream);
        match tokio::io::copy_bidirectional(&mut client, &mut upstream).await {
            Ok((sent, received)) => {
                tracing::debug!(sent, received, "Upgraded connection closed");
            }
            Err(error) => tracing::debug!(%error, "Upgraded connection broke off"),
        }
    });

    Response::from_parts(parts, Body::empty())
}

#[cfg(test)]
mod tests;
