//! The whole tower stack, top to bottom. Read this file to know what happens to a request.

use std::net::{IpAddr, SocketAddr};
use std::panic::AssertUnwindSafe;

use axum::Router;
use axum::extract::{ConnectInfo, Request, State};
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use futures_util::FutureExt as _;
use http::{HeaderValue, header};
use tower::ServiceBuilder;
use tower_http::catch_panic::CatchPanicLayer;
use tower_http::limit::RequestBodyLimitLayer;
use tower_http::request_id::{MakeRequestId, PropagateRequestIdLayer, RequestId, SetRequestIdLayer};
use tower_http::sensitive_headers::SetSensitiveRequestHeadersLayer;
use tower_http::timeout::TimeoutLayer;
use tower_http::trace::TraceLayer;
use tracing::Instrument as _;

use crate::state::AppState;
use crate::{admin, authz, edge, error, forwarded, gateway, mfa, pages, visitor, web};

/// The request id's header.
const REQUEST_ID: &str = "x-request-id";

/// Request ids: 64 random bits, hex.
#[derive(Clone, Copy, Default)]
struct RandomId;

impl MakeRequestId for RandomId {
    fn make_request_id<B>(&mut self, _: &http::Request<B>) -> Option<RequestId> {
        let id = format!("{:016x}", rand::random::<u64>());
        http::HeaderValue::from_str(&id).ok().map(RequestId::new)
    }
}

/// Builds the service.
pub fn build(state: AppState) -> Router {
    let cfg = &state.config;
    // deskgate's own pages, with the admin pages and the forward-auth endpoints: a deadline
    // of their own (body limits are set per route there).
    let own = pages::routes(admin::routes().merge(authz::routes()));
    let own = own.layer(TimeoutLayer::with_status_code(
        http::StatusCode::SERVICE_UNAVAILABLE,
        cfg.server.request_timeout,
    ));
    let max_body = usize::try_from(cfg.server.max_body_bytes).unwrap_or(usize::MAX);
    let hsts = cfg.server.tls.as_ref().and_then(|t| t.hsts.clone());
    let router = Router::new()
        .nest(web::PREFIX, own)
        // The session page answers with a trailing slash too (nesting matches only without).
        .route(&format!("{}/", web::PREFIX), axum::routing::get(pages::index))
        .fallback(gateway::forward)
        .with_state(state.clone())
        .layer(
            ServiceBuilder::new()
                // 1. trace, with secrets marked first; request id
                .layer(SetSensitiveRequestHeadersLayer::new([
                    header::COOKIE,
                    header::AUTHORIZATION,
                    header::PROXY_AUTHORIZATION,
                ]))
                .layer(SetRequestIdLayer::x_request_id(RandomId))
                .layer(TraceLayer::new_for_http().make_span_with(|req: &Request| {
                    let id = req.headers().get("x-request-id").and_then(|v| v.to_str().ok()).unwrap_or("-");
                    tracing::info_span!("request", id = %id, method = %req.method(), path = %req.uri().path())
                }))
                .layer(PropagateRequestIdLayer::x_request_id())
                // 2. error rescue (the one place errors become pages), panics
                .layer(middleware::from_fn_with_state(state.metrics.clone(), error::rescue))
                .layer(CatchPanicLayer::custom(error::panic_response))
                // 3. methods, targets and upgrades never forwarded; every client spelling of our
                //    headers, untrusted X-Forwarded-*, `_` names and override headers stripped
                .layer(middleware::from_fn(settle))
                .layer(middleware::from_fn_with_state(state.clone(), strip_client_headers))
                // 4–5. session lookup → Visitor (Guest or SignedIn)
                .layer(middleware::from_fn_with_state(state.clone(), visitor::lookup))
                // a member of a usergroup that requires a second factor, without one in this
                //    session, reaches only the pages to enrol or give it
                .layer(middleware::from_fn_with_state(state, mfa::require_for_usergroups))
                // body limit innermost: it changes the body type the layers above expect
                .layer(RequestBodyLimitLayer::new(max_body)),
        );
    // 6–8. decide, inject and proxy: `gateway::forward`.
    // Outermost: every answer over https, error pages included, carries HSTS when set.
    match hsts {
        Some(value) => router.layer(middleware::map_response(move |mut resp: Response| {
            let value = value.clone();
            async move {
                resp.headers_mut().insert(header::STRICT_TRANSPORT_SECURITY, value);
                resp
            }
        })),
        None => router,
    }
}

/// The plain-HTTP listener's whole service: every request is sent to the same path on the
/// https public URL (308, so a form post stays a post). The host is the configured one,
/// never the request's `Host`, so it cannot be turned into an open redirect.
pub fn https_redirect(state: &AppState) -> Router {
    let public = state.config.server.public_url.clone();
    Router::new().fallback(move |req: Request| {
        let public = public.clone();
        async move {
            let target = req.uri().path_and_query().map_or("/", |pq| pq.as_str());
            let target = if target.starts_with('/') { target } else { "/" };
            match http::HeaderValue::from_str(&format!("{public}{target}")) {
                Ok(location) => {
                    (http::StatusCode::PERMANENT_REDIRECT, [(header::LOCATION, location)]).into_response()
                }
                Err(_) => http::StatusCode::BAD_REQUEST.into_response(),
            }
        }
    })
}

async fn strip_client_headers(
    State(state): State<AppState>,
    ConnectInfo(peer): ConnectInfo<SocketAddr>,
    mut req: Request,
    next: Next,
) -> Response {
    strip(&state, peer.ip(), &mut req);
    next.run(req).await
}

/// Removes from `req`, sent by `peer`, every client spelling of the identity headers, the
/// `X-Forwarded-*` of a peer that is not a trusted proxy, `_` names and override headers
/// (a trusted proxy's forward-auth question keeps the ones naming its original URL).
fn strip(state: &AppState, peer: IpAddr, req: &mut Request) {
    // The administration API's CSRF header may share the identity prefix; it is kept only
    // for the API, whose requests are never proxied.
    let own = req.uri().path().strip_prefix(web::PREFIX);
    let api = own.is_some_and(|rest| rest.starts_with("/api/"));
    let trusted = forwarded::trusted(peer, &state.config.server.trusted_proxies);
    // A trusted proxy's forward-auth question names the original URL in override headers;
    // they are read there (and only there), never forwarded.
    let question =
        trusted && own.is_some_and(|rest| rest.strip_prefix(web::AUTHZ).is_some_and(|r| r.starts_with('/')));
    let headers = req.headers_mut();
    let csrf = if api { headers.remove(admin::CSRF_HEADER) } else { None };
    let identity = state.names.strip(headers);
    if let Some(token) = csrf {
        headers.insert(admin::CSRF_HEADER, token);
    }
    let forwarding = if trusted { 0 } else { forwarded::strip(headers) };
    let server = &state.config.server;
    let untrusted = if question {
        edge::strip_untrusted(headers, server.allow_underscores_in_headers, &authz::override_headers())
    } else {
        edge::strip_untrusted(headers, server.allow_underscores_in_headers, &server.allowed_override_headers)
    };
    if identity + forwarding + untrusted > 0 {
        tracing::debug!(identity, forwarding, untrusted, client = %peer, "Removed client-sent identity, forwarding or override headers");
    }
}

/// Serves `req` with `router` (the stack [`build`] made for `state`), except a forward-auth
/// question, which takes [`question`]: proxies ask one for every request they pass, and the
/// router and its layers would cost more than the answer.
pub async fn serve(state: AppState, router: Router, req: Request) -> Response {
    match plain_question(&req) {
        Some(dialect) => question(state, req, dialect).await,
        None => match tower::ServiceExt::oneshot(router, req).await {
            Ok(resp) => resp,
            Err(never) => match never {},
        },
    }
}

/// The endpoint `req` asks, when it is a question the layers' own answers (the edge's
/// refusals and upgrade handling, the body limit) have nothing to say about: not `CONNECT`,
/// no upgrade, no body. Anything else takes the whole stack, which answers it the same way.
fn plain_question(req: &Request) -> Option<authz::Dialect> {
    let dialect = authz::dialect_of(req.uri().path())?;
    let headers = req.headers();
    let bodiless = !headers.contains_key(header::TRANSFER_ENCODING)
        && headers.get_all(header::CONTENT_LENGTH).iter().all(|v| v.as_bytes() == b"0");
    let plain = req.method() != http::Method::CONNECT
        && !headers.contains_key(header::UPGRADE)
        && !headers.contains_key("http2-settings");
    (bodiless && plain).then_some(dialect)
}

/// A forward-auth question's way through the stack: what the layers of [`build`] do to it,
/// in their order, without the router. The request id (the client's or a new one), the trace
/// span, headers stripped as by `strip_client_headers`, the session lookup as by
/// `visitor::lookup`, the answer within `server.request_timeout`, a panic answered as any
/// other, failures rendered by `error::render`; `no-store` and HSTS on every answer. (A
/// usergroup's second factor is the endpoint's to ask for, as the enrolment layer leaves it.)
async fn question(state: AppState, mut req: Request, dialect: authz::Dialect) -> Response {
    let id = match req.headers().get(REQUEST_ID) {
        Some(id) => id.clone(),
        None => {
            let id = RandomId
                .make_request_id(&req)
                .map_or(HeaderValue::from_static("-"), |r| r.into_header_value());
            req.headers_mut().insert(REQUEST_ID, id.clone());
            id
        }
    };
    let span = tracing::info_span!("request", id = %id.to_str().unwrap_or("-"), method = %req.method(), path = %req.uri().path());
    let html = web::wants_html(req.headers());
    let peer = req
        .extensions()
        .get::<ConnectInfo<SocketAddr>>()
        .map_or(SocketAddr::from(([0, 0, 0, 0], 0)), |ConnectInfo(peer)| *peer);
    let timeout = state.config.server.request_timeout;
    let work = async {
        strip(&state, peer.ip(), &mut req);
        match visitor::visit(&state, &mut req).await {
            Ok(Ok(visitor)) => {
                authz::ask(&state, peer, visitor, (req.method(), req.uri(), req.headers()), dialect).await
            }
            Ok(Err(refused)) => refused,
            Err(error) => error.into_response(),
        }
    };
    let answered =
        tokio::time::timeout(timeout, AssertUnwindSafe(work).catch_unwind()).instrument(span).await;
    let resp = match answered {
        Ok(Ok(resp)) => resp,
        Ok(Err(panic)) => error::panic_response(panic),
        Err(_) => http::StatusCode::SERVICE_UNAVAILABLE.into_response(),
    };
    let mut resp = error::render(&state.metrics, id.to_str().unwrap_or("-"), html, resp);
    let headers = resp.headers_mut();
    headers.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    if !headers.contains_key(REQUEST_ID) {
        headers.insert(REQUEST_ID, id);
    }
    if let Some(hsts) = state.config.server.tls.as_ref().and_then(|t| t.hsts.clone()) {
        headers.insert(header::STRICT_TRANSPORT_SECURITY, hsts);
    }
    resp
}

/// Answers what is never forwarded (`CONNECT`, a `*` target, a malformed WebSocket
/// handshake) and removes upgrades other than WebSocket; see `edge`.
async fn settle(mut req: Request, next: Next) -> Response {
    match edge::check(&mut req) {
        Ok(()) => next.run(req).await,
        Err(refusal) => {
            tracing::info!(method = %req.method(), reason = ?refusal, "Refused at the edge");
            let mut resp = match &refusal {
                edge::Refusal::OptionsStar => http::StatusCode::OK.into_response(),
                edge::Refusal::Connect => (refusal.status(), "CONNECT is not served here\n").into_response(),
                edge::Refusal::StarTarget => {
                    (refusal.status(), "A `*` target is only for OPTIONS\n").into_response()
                }
                edge::Refusal::BadWebSocket(why) => (refusal.status(), format!("{why}\n")).into_response(),
            };
            resp.headers_mut().insert(header::ALLOW, http::HeaderValue::from_static(edge::ALLOW));
            resp
        }
    }
}
