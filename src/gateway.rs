//! The proxied request path after the stack has stripped client headers and looked up the
//! session: normalize, decide, inject, forward. Thin on purpose: the decision is
//! `policy::decide`, the transport is `proxy`.

use std::net::SocketAddr;

use axum::extract::{ConnectInfo, Request, State};
use axum::response::{IntoResponse, Response};
use http::{HeaderValue, StatusCode, header};

use crate::error::GatewayError;
use crate::forwarded;
use crate::html;
use crate::mfa;
use crate::policy::{Decision, DenyReason, Who, normalize, verdict_for_host};
use crate::state::AppState;
use crate::visitor::Visitor;
use crate::web::{self, PREFIX, wants_html};

/// Decides and forwards one request.
pub async fn forward(
    State(state): State<AppState>,
    ConnectInfo(peer): ConnectInfo<SocketAddr>,
    visitor: Visitor,
    req: Request,
) -> Result<Response, GatewayError> {
    let path = match normalize(req.uri().path()) {
        Ok(p) => p,
        Err(e) => {
            tracing::info!(reason = %e, "Refused a malformed path");
            return Ok(html::message(
                StatusCode::BAD_REQUEST,
                "Bad request",
                "The address is malformed.",
                None,
            ));
        }
    };
    // The reserved prefix is never proxied, however it is spelled.
    // Under every reading: `/．deskgate/…` is reserved too, whatever the backend folds.
    if path.readings().any(|r| r.first().is_some_and(|s| s == ".deskgate")) {
        return Ok(html::message(
            StatusCode::NOT_FOUND,
            "Not found",
            "There is no such deskgate page.",
            None,
        ));
    }
    let who = match visitor.session() {
        None => Who::Guest(&state.guest),
        Some(session) => Who::SignedIn(&session.resolved),
    };
    let host = request_authority(&req);
    let routed = state.config.routes.pick(host, &path);
    let everyone = state.config.model.everyone_enabled;
    let verdict = verdict_for_host(&state.config.policy, everyone, who, host, req.method(), &path);
    // A guest passed a public rule (the only way past while Everyone is disabled): the
    // backend is told nobody is signed in, not what Everyone holds.
    let anonymous =
        matches!(visitor, Visitor::Guest) && (!everyone || verdict.rule.is_some_and(|r| r.is_public()));
    match verdict.decision {
        // A rule that asks for a second factor used in this session: a guest signs in
        // first, a signed-in person who has not used one is asked for it (step-up).
        Decision::Allow if verdict.mfa => match &visitor {
            Visitor::Guest => {
                state.metrics.decision("login", "");
                return Ok(login_required(&req));
            }
            Visitor::SignedIn { session, .. } if !mfa::satisfied(&session.amr) => {
                state.metrics.decision("second-factor", "");
                let back = req.uri().path_and_query().map_or("/", |pq| pq.as_str());
                tracing::info!(account = %session.account_id, path = %path, "The rule asks for a second factor: step-up");
                return Ok(mfa::send_to(req.headers(), &mfa::step_up_url(back), "mfa-required"));
            }
            Visitor::Bearer { session } if !mfa::satisfied(&session.amr) => {
                // A program cannot be asked for a second factor: refused.
                state.metrics.decision("second-factor", "");
                tracing::info!(account = %session.account_id, path = %path, "The rule asks for a second factor a bearer token cannot give");
                return Ok(mfa::refused("mfa-required"));
            }
            Visitor::SignedIn { .. } | Visitor::Bearer { .. } => state.metrics.decision("allow", ""),
        },
        Decision::Allow => state.metrics.decision("allow", ""),
        Decision::LoginRequired => {
            state.metrics.decision("login", "");
            return Ok(login_required(&req));
        }
        Decision::Deny(reason) => {
            state.metrics.decision("deny", reason.code());
            return Ok(denied(&visitor, &path.to_string(), &reason, &req));
        }
    }

    let (mut parts, body) = req.into_parts();
    let mut target = path.encoded();
    if let Some(q) = parts.uri.query() {
        target.push('?');
        target.push_str(q);
    }
    let headers = &mut parts.headers;
    web::remove_cookie(headers, &state.config.session.cookie_name);
    match &visitor {
        Visitor::Guest if anonymous => {
            // The stack stripped every identity header the client sent; these say "nobody".
            headers.insert(state.names.usergroups.clone(), HeaderValue::from_static(""));
            headers.insert(state.names.permissions.clone(), HeaderValue::from_static(""));
            headers.insert(state.names.auth.clone(), HeaderValue::from_static(""));
            headers.insert(state.names.amr.clone(), HeaderValue::from_static(""));
        }
        Visitor::Guest => state.guest_headers.apply(headers),
        Visitor::SignedIn { session, .. } | Visitor::Bearer { session } => {
            let audience =
                state.config.jwt.audience_for(headers.get(header::HOST).and_then(|h| h.to_str().ok()));
            let (names, now) = (&state.names, state.clock.now());
            state.told.apply(names, &state.signer, session, visitor.auth(), audience, now, headers);
        }
    }
    let proto = if state.config.server.secure { "https" } else { "http" };
    let host = headers
        .get(header::HOST)
        .cloned()
        .or_else(|| parts.uri.authority().and_then(|a| HeaderValue::from_str(a.as_str()).ok()));
    forwarded::set(headers, peer.ip(), proto, host);
    let proxy = routed.and_then(|id| state.upstreams.get(id)).unwrap_or(&state.proxy);
    let began = std::time::Instant::now();
    let answer = proxy.forward(Request::from_parts(parts, body), &target).await;
    state.metrics.upstream(answer.as_ref().ok().map(|r| r.status()), began.elapsed());
    Ok(answer?)
}

/// The host the client asked for: `Host`, or the authority of an HTTP/2 request.
fn request_authority(req: &Request) -> Option<&str> {
    match req.headers().get(header::HOST) {
        Some(h) => h.to_str().ok(),
        None => req.uri().authority().map(|a| a.as_str()),
    }
}

fn login_required(req: &Request) -> Response {
    if wants_html(req.headers()) {
        let next = req.uri().path_and_query().map_or("/", |pq| pq.as_str());
        let to = format!("{PREFIX}/login?next={}", html::query_value(next));
        // 302, as browsers and the oauth2-proxy family of gateways expect for "go sign in".
        let location =
            HeaderValue::from_str(&to).unwrap_or_else(|_| HeaderValue::from_static("/.deskgate/login"));
        return (StatusCode::FOUND, [(header::LOCATION, location)]).into_response();
    }
    let mut resp = (StatusCode::UNAUTHORIZED, r#"{"error":"sign-in required"}"#).into_response();
    let h = resp.headers_mut();
    h.insert(header::CONTENT_TYPE, HeaderValue::from_static("application/json"));
    h.insert(header::WWW_AUTHENTICATE, HeaderValue::from_static(r#"Cookie realm="deskgate""#));
    resp
}

fn denied(visitor: &Visitor, path: &str, reason: &DenyReason, req: &Request) -> Response {
    let account = visitor.session().map_or("-", |s| s.account_id.as_str());
    match reason {
        DenyReason::MissingPermission { rule, permission, .. } => {
            tracing::info!(%account, %path, reason = reason.code(), %rule, %permission, "Refused");
        }
        DenyReason::NoRule | DenyReason::NoHostRule => {
            tracing::info!(%account, %path, reason = reason.code(), "Refused");
        }
    }
    if !wants_html(req.headers()) {
        let body = serde_json::json!({"error": "forbidden", "reason": reason.code()}).to_string();
        let mut resp = (StatusCode::FORBIDDEN, body).into_response();
        resp.headers_mut().insert(header::CONTENT_TYPE, HeaderValue::from_static("application/json"));
        return resp;
    }
    let body = format!(
        "<p>Your usergroups do not give you access to this page.</p>\
         <p class=\"muted\">Reason: <code>{}</code>. If you think you should have access, ask an administrator.</p>\
         <p><a href=\"/\">Home</a> · <a href=\"{PREFIX}\">Your session</a></p>",
        html::esc(reason.code())
    );
    html::page(StatusCode::FORBIDDEN, "Access denied", &body)
}
