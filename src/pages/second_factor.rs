//! `/.deskgate/mfa`: the code form. It finishes a sign-in whose password checked out (the
//! session is made only here, after the code), and it steps a session up when a rule or a
//! usergroup asks for a second factor that the session has not used.

use std::net::SocketAddr;

use axum::Form;
use axum::extract::{ConnectInfo, Query, State};
use axum::response::{IntoResponse, Redirect, Response};
use deskgate_provider::Identity;
use http::{HeaderMap, StatusCode, header};

use crate::accounts::{Account, AccountStatus, AccountStore, KeyStore};
use crate::error::GatewayError;
use crate::forms::{self, Binding};
use crate::html::{self, esc};
use crate::metrics::SignIn;
use crate::mfa::{self, Checked, SecondStep};
use crate::session::SessionKey;
use crate::signin;
use crate::state::AppState;
use crate::visitor::Visitor;
use crate::web;
use crate::web::PREFIX;

/// Query of the page.
#[derive(Debug, serde::Deserialize)]
pub struct StepQuery {
    next: Option<String>,
}

/// The posted form.
#[derive(serde::Deserialize)]
pub struct CodeForm {
    #[serde(default)]
    code: String,
    #[serde(default)]
    csrf: String,
    next: Option<String>,
}

/// The code form; with `key`, a link to give a security key instead (`/mfa/key`).
fn form(state: &AppState, binding: &Binding, next: &str, alert: Option<&str>, key: bool) -> String {
    let alert =
        alert.map_or(String::new(), |a| format!("<div class=\"alert\" role=\"alert\">{}</div>", esc(a)));
    let key = match key {
        true => format!(
            "<p><a href=\"{PREFIX}/mfa/key?next={}\" id=\"key-instead\">Use a security key instead</a></p>",
            esc(&html::query_value(next))
        ),
        false => String::new(),
    };
    format!(
        "{alert}<p>Enter the six-digit code from your authenticator app, or one of your recovery codes.</p>\
         <form method=\"post\" action=\"{PREFIX}/mfa\">{csrf}{next}\
         <label for=\"code\">Code</label>\
         <input id=\"code\" name=\"code\" autocomplete=\"one-time-code\" inputmode=\"numeric\" required autofocus>\
         <button type=\"submit\">Continue</button></form>{key}\
         <p class=\"muted\"><a href=\"{PREFIX}/logout\">Cancel and sign out</a></p>",
        csrf = binding.field(state),
        next = forms::next_field(next),
    )
}

fn page(
    state: &AppState,
    headers: &HeaderMap,
    status: StatusCode,
    next: &str,
    alert: Option<&str>,
) -> Response {
    page_with(state, headers, status, next, alert, false)
}

fn page_with(
    state: &AppState,
    headers: &HeaderMap,
    status: StatusCode,
    next: &str,
    alert: Option<&str>,
    key: bool,
) -> Response {
    let binding = forms::binding(state, headers);
    let body = form(state, &binding, next, alert, key);
    binding.attach(html::page(status, "Second factor", &body))
}

/// Shows the form: for a sign-in waiting for its code, or a session to step up.
pub async fn show(
    State(state): State<AppState>,
    visitor: Visitor,
    headers: HeaderMap,
    Query(q): Query<StepQuery>,
) -> Result<Response, GatewayError> {
    if let Some(step) = mfa::second_step(&state, &headers) {
        return Ok(page(&state, &headers, StatusCode::OK, &step.next, None));
    }
    let next = forms::next_or_root(&state, q.next.as_deref());
    match visitor {
        Visitor::Guest | Visitor::Bearer { .. } => {
            Ok(Redirect::to(&format!("{PREFIX}/login?next={}", html::query_value(&next))).into_response())
        }
        Visitor::SignedIn { session, .. } => {
            if mfa::satisfied(&session.amr) {
                return Ok(Redirect::to(&next).into_response());
            }
            // No app: a key, if the account has one; else enrolling is the way.
            if !mfa::has_factor(&state, &session.account_id).await? {
                let to = match state.accounts.keys(&session.account_id).await?.is_empty() {
                    true => mfa::enrolment_url(&next),
                    false => format!("{PREFIX}/mfa/key?next={}", html::query_value(&next)),
                };
                return Ok(Redirect::to(&to).into_response());
            }
            // An account with a key as well may step up with it instead.
            let key = !state.accounts.keys(&session.account_id).await?.is_empty();
            Ok(page_with(&state, &headers, StatusCode::OK, &next, None, key))
        }
    }
}

/// Called once a password checked out (at sign-in, or a password reset: a mailbox is not a
/// second factor): the answer that takes the person to their second factor, or `None` when
/// the account has none and the caller signs them in. A security key is asked for first; an
/// account with an authenticator app and no key is asked for a code. No session exists yet.
pub async fn after_password(
    state: &AppState,
    account: &Account,
    identity: Identity,
    next: &str,
) -> Result<Option<Response>, GatewayError> {
    if let Some(step) = super::key_login::after_password(state, account, &identity, next).await? {
        return Ok(Some(step));
    }
    if !mfa::has_factor(state, &account.id).await? {
        return Ok(None);
    }
    // The password's result waits, sealed in the browser, for the code.
    tracing::info!(target: "deskgate::audit", account = %account.id, provider = %identity.provider, "Password accepted; waiting for the second factor");
    let step = SecondStep { account_id: account.id.clone(), identity, next: next.to_owned() };
    let mut resp = Redirect::to(&format!("{PREFIX}/mfa")).into_response();
    resp.headers_mut().append(header::SET_COOKIE, mfa::second_step_set_cookie(state, Some(&step)));
    Ok(Some(resp))
}

/// What a wrong or refused code is told.
fn refused(state: &AppState, headers: &HeaderMap, checked: Checked, next: &str) -> Response {
    match checked {
        Checked::Limited(limit) => {
            let minutes = state.config.rate_limit.window.as_secs().div_ceil(60);
            let text = format!("Too many wrong codes. Please wait {minutes} minutes and try again.");
            page(state, headers, limit.status(), next, Some(&text))
        }
        _ => page(
            state,
            headers,
            StatusCode::UNAUTHORIZED,
            next,
            Some("That code is not right. Please try again."),
        ),
    }
}

/// Checks the code: finishes the waiting sign-in, or steps the session up.
pub async fn submit(
    State(state): State<AppState>,
    ConnectInfo(peer): ConnectInfo<SocketAddr>,
    visitor: Visitor,
    client: signin::Client,
    headers: HeaderMap,
    Form(f): Form<CodeForm>,
) -> Result<Response, GatewayError> {
    let next = forms::next_or_root(&state, f.next.as_deref());
    if !forms::csrf_ok(&state, &headers, &f.csrf) {
        let text = "This form has expired or did not come from this site. Please try again.";
        return Ok(page(&state, &headers, StatusCode::FORBIDDEN, &next, Some(text)));
    }
    let ip = forms::client_ip(&state, peer, &headers);
    if let Some(step) = mfa::second_step(&state, &headers) {
        return finish_sign_in(&state, &headers, step, &f.code, ip, &client).await;
    }
    let Visitor::SignedIn { key, session } = visitor else {
        return Ok(Redirect::to(&format!("{PREFIX}/login?next={}", html::query_value(&next))).into_response());
    };
    let checked = mfa::check_code(&state, &session.account_id, &f.code, ip).await?;
    let method = match checked {
        Checked::Totp => "authenticator app",
        Checked::Recovery => "recovery code",
        _ => {
            tracing::info!(target: "deskgate::audit", account = %session.account_id, client = %ip, "Second factor refused");
            return Ok(refused(&state, &headers, checked, &next));
        }
    };
    mfa::upgrade(&state, &key, &session, &["otp"]).await?;
    tracing::info!(target: "deskgate::audit", account = %session.account_id, factor = %method, "Second factor given in the session");
    Ok(Redirect::to(&next).into_response())
}

/// The code of a sign-in whose password checked out: the session starts only now.
async fn finish_sign_in(
    state: &AppState,
    headers: &HeaderMap,
    step: SecondStep,
    code: &str,
    ip: std::net::IpAddr,
    client: &signin::Client,
) -> Result<Response, GatewayError> {
    let checked = mfa::check_code(state, &step.account_id, code, ip).await?;
    let method = match checked {
        Checked::Totp => "authenticator app",
        Checked::Recovery => "recovery code",
        _ => {
            tracing::info!(target: "deskgate::audit", account = %step.account_id, client = %ip, "Sign-in: second factor refused");
            state.metrics.sign_in(&step.identity.provider, SignIn::Failure);
            return Ok(refused(state, headers, checked, &step.next));
        }
    };
    // Read again: the account may have been disabled since the password.
    let account = state.accounts.by_id(&step.account_id).await?;
    let policy = super::login::password_policy(state, &step.identity.provider);
    let (Some(account), Some(policy)) =
        (account.filter(|a| !a.disabled && a.status == AccountStatus::Active), policy)
    else {
        let mut resp = super::login::no_account();
        resp.headers_mut().append(header::SET_COOKIE, mfa::second_step_set_cookie(state, None));
        return Ok(resp);
    };
    let mut identity = step.identity;
    // A recovery code is a one-time code too.
    let amr = mfa::with_methods(&mfa::amr_of(&identity, true), &["otp", "mfa"]);
    identity.attributes.insert(mfa::AMR.to_owned(), amr);
    state.metrics.sign_in(&identity.provider, SignIn::Success);
    let previous = web::cookie(headers, &state.config.session.cookie_name).map(SessionKey::from_cookie);
    let cookie = signin::start_session(state, &account, &identity, &policy, previous, None, client).await?;
    tracing::info!(target: "deskgate::audit", account = %account.id, factor = %method, "Second factor given at sign-in");
    let mut resp = Redirect::to(&step.next).into_response();
    let h = resp.headers_mut();
    h.append(header::SET_COOKIE, forms::session_cookie(state, Some(&cookie)));
    h.append(header::SET_COOKIE, mfa::second_step_set_cookie(state, None));
    Ok(resp)
}
