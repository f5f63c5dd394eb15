//! deskgate's own pages under the reserved prefix `/.deskgate/`: sign-in, sign-up,
//! sign-out, the account page, health and the JWKS. Never proxied.

mod account;
mod key_login;
mod keys;
mod login;
mod logout;
#[cfg(feature = "oidc")]
mod oidc;
mod redirect;
mod register;
mod reset;
#[cfg(feature = "saml")]
mod saml;
mod second_factor;
mod security;
pub(crate) mod tokens;
mod validate;

use axum::Router;
use axum::extract::State;
use axum::response::{IntoResponse, Redirect, Response};
use axum::routing::get;
use http::{HeaderValue, StatusCode, header};
use tower_http::limit::RequestBodyLimitLayer;

use crate::html;
use crate::state::AppState;
use crate::visitor::Visitor;
use crate::web::PREFIX;

/// The routes under [`PREFIX`]: these pages and `others` (the stack passes the admin
/// pages and the forward-auth endpoints), all under one body limit and one fallback.
pub fn routes(others: Router<AppState>) -> Router<AppState> {
    let router = Router::new()
        .route("/", get(index))
        .route("/login", get(login::show).post(login::submit))
        .route("/login/key", get(key_login::show).post(key_login::submit))
        .route("/login/key/code", axum::routing::post(key_login::to_code))
        .route("/mfa/key", get(key_login::step_up_show).post(key_login::step_up_submit))
        .route("/account/keys", get(keys::show).post(keys::finish))
        .route("/account/keys/begin", axum::routing::post(keys::begin))
        .route("/account/keys/remove", axum::routing::post(keys::remove))
        .route("/register", get(register::show).post(register::submit))
        .route("/validate", get(validate::confirm))
        .route("/forgot", get(reset::forgot_form).post(reset::forgot))
        .route("/reset", get(reset::reset_form).post(reset::reset))
        .route("/logout", get(logout::show).post(logout::submit))
        .route("/mfa", get(second_factor::show).post(second_factor::submit))
        .route("/account/security", get(security::show))
        .route("/account/security/totp", axum::routing::post(security::enrol))
        .route("/account/security/disable", axum::routing::post(security::disable))
        .route("/healthz", get(|| async { "ok\n" }))
        .route("/readyz", get(readyz))
        .route("/jwks.json", get(jwks))
        .route(tokens::PAGE, get(tokens::show).post(tokens::create))
        .route("/account/tokens/{id}/revoke", axum::routing::post(tokens::revoke))
        .route(crate::bearer::LOOKUP_PATH, get(tokens::lookup))
        .merge(account::routes())
        .merge(others)
        // deskgate's own forms are small.
        .layer(RequestBodyLimitLayer::new(64 * 1024));
    #[cfg(feature = "oidc")]
    let router = router
        .route("/oidc/{key}/start", get(oidc::start))
        .route("/oidc/{key}/callback", get(oidc::callback));
    // A SAML response is larger than a form: up to the provider's `max_response_bytes`,
    // which the crate checks again; the layer refuses anything past 1 MiB unread.
    #[cfg(feature = "saml")]
    let router = router.merge(
        Router::new()
            .route("/saml/{key}/start", get(saml::start))
            .route("/saml/{key}/acs", axum::routing::post(saml::acs))
            .route("/saml/{key}/metadata", get(saml::metadata))
            .layer(RequestBodyLimitLayer::new(1024 * 1024)),
    );
    router.fallback(|| async {
        html::message(StatusCode::NOT_FOUND, "Not found", "There is no such deskgate page.", None)
    })
}

/// Readiness: 200 while every store deskgate needs answers, 503 naming those that do not.
/// (`/healthz` stays a liveness check that needs nothing.)
async fn readyz(State(state): State<AppState>) -> Response {
    let timeout = std::time::Duration::from_secs(2);
    let sessions = tokio::time::timeout(timeout, state.sessions.ping()).await.is_ok_and(|r| r.is_ok());
    let accounts = tokio::time::timeout(timeout, state.accounts.ping()).await.is_ok_and(|r| r.is_ok());
    let mut down = Vec::new();
    if !sessions {
        down.push("session store");
    }
    if !accounts {
        down.push("account store");
    }
    if down.is_empty() {
        (StatusCode::OK, "ready\n").into_response()
    } else {
        tracing::warn!(unreachable = %down.join(", "), "Not ready");
        (StatusCode::SERVICE_UNAVAILABLE, format!("not ready: {} unreachable\n", down.join(", ")))
            .into_response()
    }
}

async fn jwks(State(state): State<AppState>) -> Response {
    let mut resp = state.signer.jwks(state.clock.now()).into_response();
    let h = resp.headers_mut();
    h.insert(header::CONTENT_TYPE, HeaderValue::from_static("application/json"));
    h.insert(header::CACHE_CONTROL, HeaderValue::from_static("public, max-age=300"));
    resp
}

/// `/.deskgate` (and `/.deskgate/`): who is signed in, or the way to sign in.
pub async fn index(visitor: Visitor) -> Response {
    match visitor {
        Visitor::Guest | Visitor::Bearer { .. } => Redirect::to(&format!("{PREFIX}/login")).into_response(),
        Visitor::SignedIn { session, .. } => {
            let body = format!(
                "<p>Signed in as <strong>{}</strong>{}.</p><p class=\"muted\">Usergroups: {}</p>\
                 <p><a href=\"/\">Continue</a> · <a href=\"{PREFIX}/account\">Your account</a> · <a href=\"{PREFIX}/account/security\">Two-step sign-in</a> · <a href=\"{PREFIX}/account/tokens\">API tokens</a> · \
                 <a href=\"{PREFIX}/logout\">Sign out</a></p>",
                html::esc(&session.name),
                session.email.as_deref().map(|e| format!(" ({})", html::esc(e))).unwrap_or_default(),
                html::esc(&session.resolved.usergroups.join(", ")),
            );
            html::page(StatusCode::OK, "Your session", &body)
        }
    }
}
