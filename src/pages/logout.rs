//! `/.deskgate/logout`: a confirmation form (a bare GET must not sign anyone out) and the
//! sign-out itself, which deletes the session from the store.

use axum::Form;
use axum::extract::State;
use axum::response::{IntoResponse, Redirect, Response};
use http::{HeaderMap, StatusCode, header};

use crate::error::GatewayError;
use crate::forms;
use crate::html;
use crate::session::SessionStore;
use crate::state::AppState;
use crate::visitor::Visitor;
use crate::web::PREFIX;

/// The posted form.
#[derive(serde::Deserialize)]
pub struct LogoutForm {
    #[serde(default)]
    csrf: String,
}

/// Asks for confirmation.
pub async fn show(State(state): State<AppState>, visitor: Visitor, headers: HeaderMap) -> Response {
    if let Visitor::Guest = visitor {
        return Redirect::to(&format!("{PREFIX}/login")).into_response();
    }
    let binding = forms::binding(&state, &headers);
    let body = format!(
        "<form method=\"post\" action=\"{PREFIX}/logout\">{}<button type=\"submit\">Sign out</button></form>",
        binding.field(&state)
    );
    binding.attach(html::page(StatusCode::OK, "Sign out", &body))
}

/// Ends the session.
pub async fn submit(
    State(state): State<AppState>,
    visitor: Visitor,
    headers: HeaderMap,
    Form(f): Form<LogoutForm>,
) -> Result<Response, GatewayError> {
    if !forms::csrf_ok(&state, &headers, &f.csrf) {
        return Ok(html::message(
            StatusCode::FORBIDDEN,
            "Sign out",
            "This form has expired or did not come from this site.",
            Some((&format!("{PREFIX}/logout"), "Try again")),
        ));
    }
    let login = format!("{PREFIX}/login");
    let mut to = login.clone();
    if let Visitor::SignedIn { key, session } = visitor {
        state.sessions.delete(&key).await?;
        tracing::info!(target: "deskgate::audit", account = %session.account_id, "Signed out");
        crate::signin::revoke_grant(&state, &session).await;
        // RP-initiated logout: end the provider's session too, when asked to.
        #[cfg(feature = "oidc")]
        if let Some(p) = state.config.oidc.iter().find(|p| p.id == session.provider && p.end_session)
            && let Some(url) = p.oidc.logout_url(None, &format!("{}{login}", state.config.server.public_url))
        {
            to = url;
        }
    }
    let mut resp = Redirect::to(&to).into_response();
    resp.headers_mut().append(header::SET_COOKIE, forms::session_cookie(&state, None));
    Ok(resp)
}
