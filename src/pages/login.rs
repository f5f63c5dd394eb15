//! `/.deskgate/login`: the sign-in form for built-in accounts.

use std::net::SocketAddr;

use axum::Form;
use axum::extract::{ConnectInfo, Query, State};
use axum::response::{IntoResponse, Redirect, Response};
use deskgate_provider::{AuthError, PasswordProvider};
use http::{HeaderMap, StatusCode, header};

use super::PREFIX;
use super::forms::{self, Binding};
use super::html::{self, esc, query_value};
use crate::app::AppState;
use crate::config::Registration;
use crate::error::GatewayError;
use crate::session::{SessionKey, Visitor};
use crate::signin::{self, AccountPolicy, Refusal};
use crate::web;

/// Query of the login page.
#[derive(Debug, serde::Deserialize)]
pub struct LoginQuery {
    next: Option<String>,
}

/// The posted form.
#[derive(serde::Deserialize)]
pub struct LoginForm {
    #[serde(default)]
    email: String,
    #[serde(default)]
    password: String,
    #[serde(default)]
    csrf: String,
    next: Option<String>,
}

fn form(state: &AppState, binding: &Binding, next: &str, email: &str, alert: Option<&str>) -> String {
    let alert =
        alert.map_or(String::new(), |a| format!("<div class=\"alert\" role=\"alert\">{}</div>", esc(a)));
    let register = match state.config.registration {
        Registration::Open => format!(
            "<p class=\"muted\">No account yet? <a href=\"{PREFIX}/register?next={}\">Register</a></p>",
            esc(&query_value(next))
        ),
        Registration::Disabled => String::new(),
    };
    format!(
        "{alert}<form method=\"post\" action=\"{PREFIX}/login\">{csrf}{next}\
         <label for=\"email\">Email</label>\
         <input id=\"email\" name=\"email\" type=\"email\" autocomplete=\"username\" required value=\"{email}\">\
         <label for=\"password\">Password</label>\
         <input id=\"password\" name=\"password\" type=\"password\" autocomplete=\"current-password\" required>\
         <button type=\"submit\">Sign in</button></form>{register}",
        csrf = binding.field(state),
        next = forms::next_field(next),
        email = esc(email),
    )
}

/// Shows the form; a signed-in person is sent on.
pub async fn show(
    State(state): State<AppState>,
    visitor: Visitor,
    headers: HeaderMap,
    Query(q): Query<LoginQuery>,
) -> Response {
    let next = forms::next_or_root(q.next.as_deref());
    if let Visitor::SignedIn { .. } = visitor {
        return Redirect::to(&next).into_response();
    }
    let binding = forms::binding(&state, &headers);
    let body = form(&state, &binding, &next, "", None);
    binding.attach(html::page(StatusCode::OK, "Sign in", &body))
}

fn refusal(
    state: &AppState,
    headers: &HeaderMap,
    status: StatusCode,
    next: &str,
    email: &str,
    text: &str,
) -> Response {
    let binding = forms::binding(state, headers);
    let body = form(state, &binding, next, email, Some(text));
    binding.attach(html::page(status, "Sign in", &body))
}

/// Checks the form and signs in.
pub async fn submit(
    State(state): State<AppState>,
    ConnectInfo(peer): ConnectInfo<SocketAddr>,
    headers: HeaderMap,
    Form(f): Form<LoginForm>,
) -> Result<Response, GatewayError> {
    let next = forms::next_or_root(f.next.as_deref());
    if !forms::csrf_ok(&state, &headers, &f.csrf) {
        let text = "This form has expired or did not come from this site. Please sign in again.";
        return Ok(refusal(&state, &headers, StatusCode::FORBIDDEN, &next, &f.email, text));
    }
    let ip = forms::client_ip(&state, peer, &headers);
    if signin::throttled(&state, &f.email, ip).await? {
        tracing::warn!(client = %ip, "Sign-in refused: too many failed attempts");
        let minutes = state.config.rate_limit.window.as_secs().div_ceil(60);
        let text = format!("Too many failed sign-in attempts. Please wait {minutes} minutes and try again.");
        return Ok(refusal(&state, &headers, StatusCode::TOO_MANY_REQUESTS, &next, &f.email, &text));
    }
    let identity = match state.builtin.verify(&f.email, &f.password).await {
        Ok(identity) => identity,
        Err(AuthError::Unavailable(e)) => {
            return Err(GatewayError::IdentitySource(AuthError::Unavailable(e)));
        }
        Err(e) => {
            signin::record_failure(&state, &f.email, ip).await?;
            tracing::info!(client = %ip, reason = e.code(), "Sign-in failed");
            let text = match e {
                AuthError::AccountDisabled => "This account is disabled. Please contact an administrator.",
                AuthError::AccountPending(_) => "This account is not active yet.",
                _ => "The email or password is not correct.",
            };
            return Ok(refusal(&state, &headers, StatusCode::UNAUTHORIZED, &next, &f.email, text));
        }
    };
    let policy = AccountPolicy::default();
    let account = match signin::resolve_account(&state, &identity, &policy).await? {
        Ok(a) => a,
        Err(Refusal::Disabled) => {
            let text = "This account is disabled. Please contact an administrator.";
            return Ok(refusal(&state, &headers, StatusCode::FORBIDDEN, &next, &f.email, text));
        }
        Err(Refusal::NoAccount) => {
            let text = "There is no account for you here. Please ask an administrator.";
            return Ok(refusal(&state, &headers, StatusCode::FORBIDDEN, &next, &f.email, text));
        }
    };
    signin::record_success(&state, &f.email).await?;
    let previous = web::cookie(&headers, &state.config.session.cookie_name).map(SessionKey::from_cookie);
    let cookie = signin::start_session(&state, &account, &identity, &policy, previous).await?;
    let mut resp = Redirect::to(&next).into_response();
    resp.headers_mut().append(header::SET_COOKIE, forms::session_cookie(&state, Some(&cookie)));
    Ok(resp)
}
