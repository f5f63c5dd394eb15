//! The account page's change of address: a link mailed to the new address, which takes the
//! address, verified, when it is followed. Until then the account keeps its address, and
//! nothing granted by email (organizations by domain, assignments by email) follows the new
//! one: an address counts only once it is proven.
//!
//! The link works as a sign-up's validation link does: 256 random bits, only their SHA-256
//! kept, as a one-time value in the session store naming the account, the address and the
//! deadline. Opening it shows a button; only posting that form uses the link, so that a mail
//! scanner opening links does not. A person may ask for an address another account holds
//! verified: the answer is the same and no mail goes out, so the page tells nobody which
//! addresses have accounts.

use std::net::SocketAddr;
use std::time::Duration;

use axum::Form;
use axum::extract::{ConnectInfo, Query, State};
use axum::response::{IntoResponse, Redirect, Response};
use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use http::{HeaderMap, StatusCode};

use super::password::{Refusal, check_current};
use super::{FORM_EXPIRED, Posted, account_of, done, posted, refuse};
use crate::accounts::{Account, AccountError, AccountStatus, AccountStore};
use crate::config::{Registration, Smtp};
use crate::error::GatewayError;
use crate::forms::{self, Binding};
use crate::html::{self, esc, query_value};
use crate::limits;
use crate::pages::validate::{send, token_key};
use crate::pages::{PREFIX, register};
use crate::session::SessionStore;
use crate::state::AppState;
use crate::visitor::Visitor;

/// The mail's subject.
const SUBJECT: &str = "Confirm your new email address";
/// The mail's body.
const BODY: &str = "Hello {name},\n\nto make this the email address of your account, open this link:\n\n{link}\n\nUntil you do, your account keeps its current address. If you did not ask for this, ignore this message.\n";

/// At most this many change mails per account in [`MAILS_WINDOW`].
const MAILS_PER_ACCOUNT: u64 = 3;
const MAILS_WINDOW: Duration = Duration::from_secs(3600);

fn link_key(token: &str) -> String {
    token_key("email-change", token)
}

/// Where mail goes out: the `[smtp]` of email validation or of password reset. Without one
/// an address cannot be proven, so it cannot be changed here.
fn smtp(state: &AppState) -> Option<&Smtp> {
    match (&state.config.registration, &state.config.password_reset) {
        (Registration::EmailValidation(smtp), _) => Some(smtp),
        (_, Some(reset)) => Some(&reset.smtp),
        _ => None,
    }
}

/// The address section: the address, whether it is verified, and the form to change it.
pub(super) fn section(state: &AppState, binding: &Binding, account: &Account, has_password: bool) -> String {
    let current = match &account.email {
        Some(e) if account.email_verified => format!("<strong>{}</strong> (verified)", esc(e)),
        Some(e) => format!("<strong>{}</strong> (not verified)", esc(e)),
        None => "none".to_owned(),
    };
    let form = if smtp(state).is_some() {
        let password = if has_password {
            "<label for=\"email-current\">Current password</label>\
             <input id=\"email-current\" name=\"current\" type=\"password\" autocomplete=\"current-password\" required>"
        } else {
            ""
        };
        format!(
            "<form method=\"post\" action=\"{PREFIX}/account/email\">{csrf}\
             <label for=\"email\">New email address</label>\
             <input id=\"email\" name=\"email\" type=\"email\" autocomplete=\"email\" required maxlength=\"254\">\
             {password}<button type=\"submit\">Send a confirmation link</button></form>\
             <p class=\"muted\">The new address replaces this one once you open the link we send to it.</p>",
            csrf = binding.field(state),
        )
    } else {
        "<p class=\"muted\">Ask an administrator to change it.</p>".to_owned()
    };
    format!("<section id=\"email\"><h2>Email address</h2><p>{current}</p>{form}</section>")
}

/// The posted new address.
#[derive(serde::Deserialize)]
pub struct EmailForm {
    #[serde(default)]
    email: String,
    #[serde(default)]
    current: String,
    #[serde(default)]
    csrf: String,
}

/// `POST /account/email`: mails a link to the new address.
pub async fn request(
    State(state): State<AppState>,
    ConnectInfo(peer): ConnectInfo<SocketAddr>,
    visitor: Visitor,
    headers: HeaderMap,
    Form(f): Form<EmailForm>,
) -> Result<Response, GatewayError> {
    let (key, session) = match posted(&state, visitor, &headers, &f.csrf).await? {
        Posted::By(key, session) => (key, session),
        Posted::Answered(resp) => return Ok(resp),
    };
    let me = (&key, &*session);
    let Some(smtp) = smtp(&state).cloned() else {
        let text = "Email addresses cannot be changed here. Please ask an administrator.";
        return refuse(&state, &headers, me, StatusCode::NOT_FOUND, text).await;
    };
    let Some(account) = account_of(&state, &session).await? else {
        return Ok(done("email"));
    };
    let address = f.email.trim();
    if !register::plausible_email(address) {
        let text = "Please give a valid email address.";
        return refuse(&state, &headers, me, StatusCode::UNPROCESSABLE_ENTITY, text).await;
    }
    if account.email.as_deref().is_some_and(|e| e.eq_ignore_ascii_case(address)) && account.email_verified {
        let text = "That is already the address of your account.";
        return refuse(&state, &headers, me, StatusCode::UNPROCESSABLE_ENTITY, text).await;
    }
    let ip = forms::client_ip(&state, peer, &headers);
    // A stolen session must not be enough to take the account: whoever holds the new
    // address could reset its password.
    if super::password::has_password(&state, &account).await?
        && let Err(Refusal(status, text)) = check_current(&state, ip, &account, &f.current).await?
    {
        return refuse(&state, &headers, me, status, &text).await;
    }
    if let Err(refused) = limits::mail(&state, ip).await? {
        let text = "Too many emails were asked for. Please wait a while and try again.";
        return refuse(&state, &headers, me, refused.status(), text).await;
    }
    let counter = format!("email-change-mailed:{}", account.id);
    if state.sessions.incr(&counter, MAILS_WINDOW.as_secs()).await? > MAILS_PER_ACCOUNT {
        state.notices.mail.hit(state.clock.now(), "an account asked for too many address change mails");
        let text = "Too many emails were asked for. Please wait an hour and try again.";
        return refuse(&state, &headers, me, StatusCode::TOO_MANY_REQUESTS, text).await;
    }
    // Another account's proven address: the same answer, and no mail.
    if let Some(holder) = state.accounts.by_email(address).await?
        && holder.id != account.id
        && holder.email_verified
    {
        tracing::info!(target: "deskgate::audit", account = %account.id, "Address change asked for an address another account holds; no mail sent");
        return Ok(done("email"));
    }
    let token = URL_SAFE_NO_PAD.encode(rand::random::<[u8; 32]>());
    let expires_at = state.clock.now().saturating_add(smtp.validation_ttl.as_secs());
    let value = Ticket { account_id: account.id.clone(), address: address.to_string(), expires_at }.value();
    if !state.sessions.put_once(&link_key(&token), value, expires_at).await? {
        return Ok(done("email"));
    }
    let link = format!(
        "{}{PREFIX}/account/email/confirm?token={}",
        state.config.server.public_url,
        query_value(&token)
    );
    // Sent after the answer, which must not take longer for an address that gets a mail.
    let (sessions, address, name, id) =
        (state.sessions.clone(), address.to_owned(), account.name, account.id);
    tokio::spawn(async move {
        match send(&smtp, (SUBJECT, BODY), &name, &address, &link).await {
            Ok(()) => tracing::info!(target: "deskgate::audit", account = %id, "Address change mail sent"),
            Err(e) => {
                tracing::error!(account = %id, error = %deskgate_provider::error_chain(&e), "Address change mail not sent");
                let _ = sessions.take(&link_key(&token)).await;
            }
        }
    });
    Ok(done("email"))
}

/// What a stored link names.
struct Ticket {
    account_id: String,
    address: String,
    expires_at: u64,
}

impl Ticket {
    fn parse(value: &[u8]) -> Option<Ticket> {
        let text = std::str::from_utf8(value).ok()?;
        let mut parts = text.split('\n');
        let account_id = parts.next()?.to_owned();
        let address = parts.next()?.to_owned();
        let expires_at = parts.next()?.parse().ok()?;
        Some(Ticket { account_id, address, expires_at })
    }

    fn value(&self) -> Vec<u8> {
        format!("{}\n{}\n{}", self.account_id, self.address, self.expires_at).into_bytes()
    }
}

/// A link's ticket; `None` when the link is unknown, used, expired or malformed. With `take`
/// it is used up; otherwise only looked at.
async fn ticket(state: &AppState, token: &str, take: bool) -> Result<Option<Ticket>, GatewayError> {
    if token.is_empty() || token.len() > 128 {
        return Ok(None);
    }
    let stored = match take {
        true => state.sessions.take(&link_key(token)).await?,
        false => state.sessions.peek(&link_key(token)).await?,
    };
    let Some(value) = stored else {
        return Ok(None);
    };
    Ok(Ticket::parse(&value).filter(|t| state.clock.now() < t.expires_at))
}

fn unusable() -> Response {
    html::message(
        StatusCode::BAD_REQUEST,
        "This link does not work",
        "This link has already been used, has expired, or is incomplete. You can ask for a new one on your account page.",
        Some((&format!("{PREFIX}/account"), "Your account")),
    )
}

/// Query of the link.
#[derive(Debug, serde::Deserialize)]
pub struct ConfirmQuery {
    token: Option<String>,
}

/// `GET /account/email/confirm?token=…`: the button that uses the link, when it still works.
pub async fn confirm_form(
    State(state): State<AppState>,
    headers: HeaderMap,
    Query(q): Query<ConfirmQuery>,
) -> Result<Response, GatewayError> {
    let token = q.token.unwrap_or_default();
    let Some(shown) = ticket(&state, &token, false).await? else {
        tracing::info!(target: "deskgate::audit", "Address change link refused: used, expired or forged");
        return Ok(unusable());
    };
    let binding = forms::binding(&state, &headers);
    let body = format!(
        "<p>Make <strong>{address}</strong> the email address of your account?</p>\
         <form method=\"post\" action=\"{PREFIX}/account/email/confirm\">{csrf}\
         <input type=\"hidden\" name=\"token\" value=\"{token}\">\
         <button type=\"submit\">Use this address</button></form>",
        address = esc(&shown.address),
        csrf = binding.field(&state),
        token = esc(&token),
    );
    Ok(binding.attach(html::page(StatusCode::OK, "Confirm your new address", &body)))
}

/// The posted confirmation.
#[derive(serde::Deserialize)]
pub struct ConfirmForm {
    #[serde(default)]
    token: String,
    #[serde(default)]
    csrf: String,
}

/// `POST /account/email/confirm`: uses the link; the account takes the address, verified.
pub async fn confirm(
    State(state): State<AppState>,
    headers: HeaderMap,
    Form(f): Form<ConfirmForm>,
) -> Result<Response, GatewayError> {
    if !forms::csrf_ok(&state, &headers, &f.csrf) {
        return Ok(html::message(
            StatusCode::FORBIDDEN,
            "Please try again",
            FORM_EXPIRED,
            Some((&format!("{PREFIX}/account/email/confirm?token={}", query_value(&f.token)), "Back")),
        ));
    }
    let Some(ticket) = ticket(&state, &f.token, true).await? else {
        tracing::info!(target: "deskgate::audit", "Address change refused: link used, expired or forged");
        return Ok(unusable());
    };
    let account = state.accounts.by_id(&ticket.account_id).await?;
    let Some(account) = account.filter(|a| a.status == AccountStatus::Active && !a.disabled) else {
        return Ok(unusable());
    };
    // An account that holds the address unverified loses it (as to a sign-up's link); one
    // that holds it verified keeps it.
    let holder =
        state.accounts.by_email(&ticket.address).await?.filter(|h| h.id != account.id && !h.email_verified);
    match state.accounts.set_email(&account.id, Some(&ticket.address), true).await {
        Ok(()) => {}
        Err(AccountError::EmailTaken) => {
            tracing::info!(target: "deskgate::audit", account = %account.id, "Address change refused: another account holds the address");
            return Ok(html::message(
                StatusCode::CONFLICT,
                "This address cannot be used",
                "This address cannot become the address of your account. Your account keeps its address.",
                Some((&format!("{PREFIX}/account"), "Your account")),
            ));
        }
        Err(AccountError::NotFound) => return Ok(unusable()),
        Err(e) => return Err(e.into()),
    }
    // Every session of the account forwards the new address, and is granted by it, from its
    // next request; the holder's stop forwarding it.
    state.sessions.bump_account_epoch(&account.id).await?;
    if let Some(holder) = holder {
        state.sessions.bump_account_epoch(&holder.id).await?;
    }
    tracing::info!(target: "deskgate::audit", account = %account.id, "Email address changed by its owner");
    Ok(Redirect::to(&format!("{PREFIX}/account/email/changed")).into_response())
}

/// `GET /account/email/changed`: where a used link lands.
pub async fn changed() -> Response {
    html::message(
        StatusCode::OK,
        "Email address changed",
        "Your account has its new email address. Sign in with it from now on.",
        Some((&format!("{PREFIX}/account"), "Your account")),
    )
}
