//! Password reset for built-in accounts (`[password_reset]`): `/.deskgate/forgot` mails a
//! link, `/.deskgate/reset?token=…` sets a new password with it.
//!
//! The token is 256 random bits; only its SHA-256 is stored, as a one-time value in the
//! session store, naming the account and its password serial. Setting the password moves
//! the serial on, which ends every session of the account and every other link mailed
//! before. The forgot page answers the same whether the address has an account or not, and
//! the mail goes out after the answer, so that neither the page nor its timing tells.

use std::net::SocketAddr;
use std::time::Duration;

use axum::Form;
use axum::extract::{ConnectInfo, Query, State};
use axum::response::{IntoResponse, Redirect, Response};
use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use deskgate_provider::Identity;
use http::{HeaderMap, StatusCode, header};

use super::validate::{send, token_key};
use crate::accounts::{AccountError, AccountStatus, AccountStore};
use crate::config::{PasswordReset, RESET_BODY, RESET_SUBJECT};
use crate::error::GatewayError;
use crate::forms::{self, Binding};
use crate::html::{self, esc, query_value};
use crate::limits;
use crate::session::{SessionKey, SessionStore};
use crate::signin::{self, AccountPolicy};
use crate::state::AppState;
use crate::web::{self, PREFIX};
use deskgate_builtin::HashError;

/// At most this many reset mails per account in [`MAILS_WINDOW`].
const MAILS_PER_ACCOUNT: u64 = 3;
const MAILS_WINDOW: Duration = Duration::from_secs(3600);

/// Longest email address looked up.
const EMAIL_MAX: usize = 254;

fn key(token: &str) -> String {
    token_key("reset", token)
}

fn enabled(state: &AppState) -> Option<&PasswordReset> {
    state.config.password_reset.as_ref().filter(|_| state.config.builtin_enabled)
}

fn not_found() -> Response {
    html::message(StatusCode::NOT_FOUND, "Not found", "Password reset is not available here.", None)
}

/// The posted forgot form.
#[derive(serde::Deserialize)]
pub struct ForgotForm {
    #[serde(default)]
    email: String,
    #[serde(default)]
    csrf: String,
}

fn forgot_page(state: &AppState, binding: &Binding, status: StatusCode, alert: Option<&str>) -> Response {
    let alert =
        alert.map_or(String::new(), |a| format!("<div class=\"alert\" role=\"alert\">{}</div>", esc(a)));
    let body = format!(
        "{alert}<p>Enter the email address of your account. We will send you a link to choose a new password.</p>\
         <form method=\"post\" action=\"{PREFIX}/forgot\">{csrf}\
         <label for=\"email\">Email</label>\
         <input id=\"email\" name=\"email\" type=\"email\" autocomplete=\"username\" required>\
         <button type=\"submit\">Send the link</button></form>\
         <p class=\"muted\"><a href=\"{PREFIX}/login\">Back to sign-in</a></p>",
        csrf = binding.field(state),
    );
    html::page(status, "Forgot your password?", &body)
}

/// `GET /forgot`: the form.
pub async fn forgot_form(State(state): State<AppState>, headers: HeaderMap) -> Response {
    if enabled(&state).is_none() {
        return not_found();
    }
    let binding = forms::binding(&state, &headers);
    let page = forgot_page(&state, &binding, StatusCode::OK, None);
    binding.attach(page)
}

/// The answer to every accepted forgot form, whether the address has an account or not.
fn sent() -> Response {
    html::message(
        StatusCode::OK,
        "Check your email",
        "If an account uses this address, we have sent it an email with a link to choose a new \
         password. The link works once, for a limited time.",
        Some((&format!("{PREFIX}/login"), "Back to sign-in")),
    )
}

/// `POST /forgot`: mails a link when the address names an active built-in account.
pub async fn forgot(
    State(state): State<AppState>,
    ConnectInfo(peer): ConnectInfo<SocketAddr>,
    headers: HeaderMap,
    Form(f): Form<ForgotForm>,
) -> Result<Response, GatewayError> {
    let Some(reset) = enabled(&state).cloned() else {
        return Ok(not_found());
    };
    if !forms::csrf_ok(&state, &headers, &f.csrf) {
        let binding = forms::binding(&state, &headers);
        let text = "This form has expired or did not come from this site. Please try again.";
        let page = forgot_page(&state, &binding, StatusCode::FORBIDDEN, Some(text));
        return Ok(binding.attach(page));
    }
    let email = f.email.trim();
    if email.is_empty() || email.len() > EMAIL_MAX || email.chars().any(char::is_control) {
        let binding = forms::binding(&state, &headers);
        let page = forgot_page(
            &state,
            &binding,
            StatusCode::UNPROCESSABLE_ENTITY,
            Some("Please enter an email address."),
        );
        return Ok(binding.attach(page));
    }
    // Counted per client before the lookup, so that the refusal says nothing of the address.
    let ip = forms::client_ip(&state, peer, &headers);
    if let Err(refused) = limits::mail(&state, ip).await? {
        return Ok(html::message(
            refused.status(),
            "Too many requests",
            "Too many emails were asked for. Please wait a while and try again.",
            Some((&format!("{PREFIX}/login"), "Back to sign-in")),
        ));
    }
    let account = state.accounts.by_email(email).await?;
    let Some(account) = account.filter(|a| a.status == AccountStatus::Active && !a.disabled) else {
        tracing::info!(target: "deskgate::audit", client = %ip, "Password reset asked for an address without an active account");
        return Ok(sent());
    };
    if !state.accounts.providers(&account.id).await?.iter().any(|p| p == deskgate_builtin::PROVIDER_ID) {
        tracing::info!(target: "deskgate::audit", account = %account.id, "Password reset asked for an account without a password");
        return Ok(sent());
    }
    // Per account (only existing accounts get a counter, so strangers add no state here).
    let counter = format!("reset-mailed:{}", account.id);
    if state.sessions.incr(&counter, MAILS_WINDOW.as_secs()).await? > MAILS_PER_ACCOUNT {
        state.notices.mail.hit(state.clock.now(), "an account asked for too many password reset mails");
        return Ok(sent());
    }
    let serial = state.accounts.password_serial(&account.id).await?;
    let token = URL_SAFE_NO_PAD.encode(rand::random::<[u8; 32]>());
    let expires_at = state.clock.now().saturating_add(reset.ttl.as_secs());
    let value = format!("{}\n{serial}\n{expires_at}", account.id);
    if !state.sessions.put_once(&key(&token), value.into_bytes(), expires_at).await? {
        return Ok(sent());
    }
    let link = format!("{}{PREFIX}/reset?token={}", state.config.server.public_url, query_value(&token));
    let address = account.email.clone().unwrap_or_default();
    // Sent after the answer: how long the mail server takes must not tell who has an account.
    let sessions = state.sessions.clone();
    tokio::spawn(async move {
        match send(&reset.smtp, (RESET_SUBJECT, RESET_BODY), &account.name, &address, &link).await {
            Ok(()) => {
                tracing::info!(target: "deskgate::audit", account = %account.id, "Password reset mail sent")
            }
            Err(e) => {
                tracing::error!(account = %account.id, error = %deskgate_provider::error_chain(&e), "Password reset mail not sent");
                let _ = sessions.take(&key(&token)).await;
            }
        }
    });
    Ok(sent())
}

/// Query of the link.
#[derive(Debug, serde::Deserialize)]
pub struct ResetQuery {
    token: Option<String>,
}

/// The posted new password.
#[derive(serde::Deserialize)]
pub struct ResetForm {
    #[serde(default)]
    token: String,
    #[serde(default)]
    password: String,
    #[serde(default)]
    confirm: String,
    #[serde(default)]
    csrf: String,
}

fn unusable() -> Response {
    html::message(
        StatusCode::BAD_REQUEST,
        "This link does not work",
        "This password reset link has already been used, has expired, or is incomplete. \
         You can ask for a new one.",
        Some((&format!("{PREFIX}/forgot"), "Ask for a new link")),
    )
}

/// What a stored token names: the account, its password serial when mailed, and when the
/// token expires.
struct Ticket {
    account_id: String,
    serial: u64,
    expires_at: u64,
}

fn parse(value: &[u8]) -> Option<Ticket> {
    let text = std::str::from_utf8(value).ok()?;
    let mut parts = text.split('\n');
    let account_id = parts.next()?.to_owned();
    let serial = parts.next()?.parse().ok()?;
    let expires_at = parts.next()?.parse().ok()?;
    Some(Ticket { account_id, serial, expires_at })
}

fn plausible(token: &str) -> bool {
    !token.is_empty() && token.len() <= 128
}

/// The token's ticket; `None` when it is unknown, used, expired, or outdated by a newer
/// password. With `take` it is used up; otherwise only looked at.
async fn ticket(state: &AppState, token: &str, take: bool) -> Result<Option<Ticket>, GatewayError> {
    if !plausible(token) {
        return Ok(None);
    }
    let stored = match take {
        true => state.sessions.take(&key(token)).await?,
        false => state.sessions.peek(&key(token)).await?,
    };
    let Some(value) = stored else {
        return Ok(None);
    };
    let Some(ticket) = parse(&value) else { return Ok(None) };
    if state.clock.now() >= ticket.expires_at
        || state.accounts.password_serial(&ticket.account_id).await? != ticket.serial
    {
        return Ok(None);
    }
    Ok(Some(ticket))
}

/// Puts a taken token back until it expires (the new password could not be set).
async fn put_back(state: &AppState, token: &str, ticket: &Ticket) -> Result<(), GatewayError> {
    let value = format!("{}\n{}\n{}", ticket.account_id, ticket.serial, ticket.expires_at);
    state.sessions.put_once(&key(token), value.into_bytes(), ticket.expires_at).await?;
    Ok(())
}

fn reset_page(
    state: &AppState,
    binding: &Binding,
    token: &str,
    status: StatusCode,
    alert: Option<&str>,
) -> Response {
    let alert =
        alert.map_or(String::new(), |a| format!("<div class=\"alert\" role=\"alert\">{}</div>", esc(a)));
    let body = format!(
        "{alert}<form method=\"post\" action=\"{PREFIX}/reset\">{csrf}\
         <input type=\"hidden\" name=\"token\" value=\"{token}\">\
         <label for=\"password\">New password (at least 10 characters)</label>\
         <input id=\"password\" name=\"password\" type=\"password\" autocomplete=\"new-password\" required minlength=\"10\">\
         <label for=\"confirm\">Repeat password</label>\
         <input id=\"confirm\" name=\"confirm\" type=\"password\" autocomplete=\"new-password\" required>\
         <button type=\"submit\">Set the new password</button></form>",
        csrf = binding.field(state),
        token = esc(token),
    );
    html::page(status, "Choose a new password", &body)
}

/// `GET /reset?token=…`: the new password form, when the link still works. Looking does
/// not use the link (mail scanners open links too).
pub async fn reset_form(
    State(state): State<AppState>,
    headers: HeaderMap,
    Query(q): Query<ResetQuery>,
) -> Result<Response, GatewayError> {
    if enabled(&state).is_none() {
        return Ok(not_found());
    }
    let token = q.token.unwrap_or_default();
    if ticket(&state, &token, false).await?.is_none() {
        tracing::info!(target: "deskgate::audit", "Password reset link refused: used, expired or forged");
        return Ok(unusable());
    }
    let binding = forms::binding(&state, &headers);
    let page = reset_page(&state, &binding, &token, StatusCode::OK, None);
    Ok(binding.attach(page))
}

/// `POST /reset`: sets the new password, ends every session of the account and signs the
/// person in with a fresh one.
pub async fn reset(
    State(state): State<AppState>,
    client: signin::Client,
    headers: HeaderMap,
    Form(f): Form<ResetForm>,
) -> Result<Response, GatewayError> {
    if enabled(&state).is_none() {
        return Ok(not_found());
    }
    if !plausible(&f.token) {
        return Ok(unusable());
    }
    let again = |status, text| {
        let binding = forms::binding(&state, &headers);
        let page = reset_page(&state, &binding, &f.token, status, Some(text));
        binding.attach(page)
    };
    if !forms::csrf_ok(&state, &headers, &f.csrf) {
        return Ok(again(
            StatusCode::FORBIDDEN,
            "This form has expired or did not come from this site. Please try again.",
        ));
    }
    // Checked before the link is used, so that a typo does not cost it.
    if let Some(text) = super::register::password_problem(&f.password, &f.confirm) {
        return Ok(again(StatusCode::UNPROCESSABLE_ENTITY, text));
    }
    let Some(ticket) = ticket(&state, &f.token, true).await? else {
        tracing::info!(target: "deskgate::audit", "Password reset refused: link used, expired or forged");
        return Ok(unusable());
    };
    let account = state.accounts.by_id(&ticket.account_id).await?;
    let Some(account) = account.filter(|a| a.status == AccountStatus::Active && !a.disabled) else {
        return Ok(unusable());
    };
    let hash = match state.builtin.hashing().hash(&f.password).await {
        Ok(h) => h,
        Err(HashError::Busy(_)) => {
            put_back(&state, &f.token, &ticket).await?;
            state.notices.hashing.hit(state.clock.now(), "every password check turn stayed taken");
            let text = "Too many people are signing in at this moment. Please try again in a few seconds.";
            return Ok(again(StatusCode::SERVICE_UNAVAILABLE, text));
        }
        Err(_) => {
            put_back(&state, &f.token, &ticket).await?;
            return Ok(again(StatusCode::UNPROCESSABLE_ENTITY, "That password cannot be used."));
        }
    };
    match state.accounts.set_password(&account.id, &hash).await {
        Ok(_) => {}
        Err(AccountError::NotFound) => return Ok(unusable()),
        Err(e) => return Err(e.into()),
    }
    // Every session of the account is resolved again at its next request, and ends there
    // (its password serial is behind).
    state.sessions.bump_account_epoch(&account.id).await?;
    tracing::info!(target: "deskgate::audit", account = %account.id, "Password reset; every session of the account ended");
    let mut identity = Identity::new(deskgate_builtin::PROVIDER_ID, account.id.clone());
    identity.username = account.email.clone();
    identity.email = account.email.clone();
    identity.email_verified = account.email_verified;
    identity.display_name = Some(account.name.clone());
    // A mailbox is not a second factor: an account with one still answers it.
    if let Some(step) = super::second_factor::after_password(&state, &account, identity.clone(), "/").await? {
        return Ok(step);
    }
    let previous = web::cookie(&headers, &state.config.session.cookie_name).map(SessionKey::from_cookie);
    let policy = AccountPolicy::default();
    let cookie = signin::start_session(&state, &account, &identity, &policy, previous, None, &client).await?;
    let mut resp = Redirect::to("/").into_response();
    resp.headers_mut().append(header::SET_COOKIE, forms::session_cookie(&state, Some(&cookie)));
    Ok(resp)
}
