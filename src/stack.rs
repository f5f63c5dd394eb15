//! The whole tower stack, top to bottom. Read this file to know what happens to a request.

use axum::Router;
use axum::extract::{ConnectInfo, Request, State};
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use http::header;
use tower::ServiceBuilder;
use tower_http::catch_panic::CatchPanicLayer;
use tower_http::limit::RequestBodyLimitLayer;
use tower_http::request_id::{MakeRequestId, PropagateRequestIdLayer, RequestId, SetRequestIdLayer};
use tower_http::sensitive_headers::SetSensitiveRequestHeadersLayer;
use tower_http::timeout::TimeoutLayer;
use tower_http::trace::TraceLayer;

use crate::state::AppState;
use crate::{admin, authz, edge, error, forwarded, gateway, mfa, pages, visitor, web};

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
    ConnectInfo(peer): ConnectInfo<std::net::SocketAddr>,
    mut req: Request,
    next: Next,
) -> Response {
    // The administration API's CSRF header may share the identity prefix; it is kept only
    // for the API, whose requests are never proxied.
    let own = req.uri().path().strip_prefix(web::PREFIX);
    let api = own.is_some_and(|rest| rest.starts_with("/api/"));
    let trusted = forwarded::trusted(peer.ip(), &state.config.server.trusted_proxies);
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
        tracing::debug!(identity, forwarding, untrusted, client = %peer.ip(), "Removed client-sent identity, forwarding or override headers");
    }
    next.run(req).await
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
