//! `/.deskgate/register`: self sign-up for built-in accounts. Open sign-ups are signed in at
//! once; the others wait for their email address to be confirmed or for an administrator.

use axum::Form;
use std::net::SocketAddr;

use axum::extract::{ConnectInfo, Query, State};
use axum::response::{IntoResponse, Redirect, Response};
use deskgate_builtin::HashError;
use deskgate_provider::Identity;
use http::{HeaderMap, StatusCode, header};

use super::validate;
use crate::accounts::{AccountError, AccountQuery, AccountStatus, AccountStore, NewAccount};
use crate::config::{Registration, Smtp};
use crate::error::GatewayError;
use crate::forms::{self, Binding};
use crate::html::{self, esc};
use crate::limits::{self, Refused};
use crate::session::{SessionKey, SessionStore};
use crate::signin::{self, AccountPolicy};
use crate::state::AppState;
use crate::web::{self, PREFIX};

/// Query of the page.
#[derive(Debug, serde::Deserialize)]
pub struct RegisterQuery {
    next: Option<String>,
}

/// The posted form.
#[derive(serde::Deserialize)]
pub struct RegisterForm {
    #[serde(default)]
    name: String,
    #[serde(default)]
    email: String,
    #[serde(default)]
    password: String,
    #[serde(default)]
    confirm: String,
    #[serde(default)]
    csrf: String,
    next: Option<String>,
}

fn closed() -> Response {
    html::message(
        StatusCode::FORBIDDEN,
        "Registration is disabled",
        "New accounts cannot be created here. If you need access, please ask an administrator.",
        Some((&format!("{PREFIX}/login"), "Sign in with an existing account")),
    )
}

/// Deletes an unconfirmed sign-up of `email` whose link has expired, so that the address
/// can sign up again instead of being held forever by an account nobody can activate.
/// Its link was made just after it, so none can outlive `created_at + validation_ttl`.
async fn release_lapsed(state: &AppState, smtp: &Smtp, email: &str) -> Result<(), GatewayError> {
    let Some(old) = state.accounts.by_email(email.trim()).await? else {
        return Ok(());
    };
    let lapsed = old.created_at.saturating_add(smtp.validation_ttl.as_secs()) < state.clock.now();
    if old.status == AccountStatus::PendingValidation && lapsed {
        match state.accounts.delete(&old.id).await {
            Ok(()) | Err(AccountError::NotFound) => {}
            Err(e) => return Err(e.into()),
        }
        tracing::info!(target: "deskgate::audit", account = %old.id, "Unconfirmed sign-up lapsed and removed");
    }
    Ok(())
}

/// With email validation, the mail settings when `email` is held by an account whose
/// address is not verified: a sign-up that proves the address by mail takes it over.
async fn held_unverified<'s>(state: &'s AppState, email: &str) -> Result<Option<&'s Smtp>, GatewayError> {
    let Registration::EmailValidation(smtp) = &state.config.registration else {
        return Ok(None);
    };
    let holder = state.accounts.by_email(email.trim()).await?;
    // A sign-up still within its link's lifetime keeps the address until it lapses.
    Ok(holder.filter(|a| !a.email_verified && a.status != AccountStatus::PendingValidation).map(|_| smtp))
}

/// Most lapsed sign-ups without an address of their own removed at a time.
const LAPSED_SWEEP: u64 = 100;

/// Deletes sign-ups for an address held by another account (they keep no address until
/// their link is followed) whose link has lapsed, so that they do not pile up.
async fn release_lapsed_unaddressed(state: &AppState, smtp: &Smtp) -> Result<(), GatewayError> {
    let query = AccountQuery { status: Some(AccountStatus::PendingValidation), ..Default::default() };
    // Accounts without an address are listed last.
    let total = state.accounts.list(&query, 0, 0).await?.total;
    let pending = state.accounts.list(&query, total.saturating_sub(LAPSED_SWEEP), LAPSED_SWEEP).await?;
    let now = state.clock.now();
    for l in pending.accounts {
        let a = l.account;
        if a.email.is_none() && a.created_at.saturating_add(smtp.validation_ttl.as_secs()) < now {
            match state.accounts.delete(&a.id).await {
                Ok(()) | Err(AccountError::NotFound) => {}
                Err(e) => return Err(e.into()),
            }
            tracing::info!(target: "deskgate::audit", account = %a.id, "Unconfirmed sign-up lapsed and removed");
        }
    }
    Ok(())
}

fn awaiting_approval() -> Response {
    html::message(
        StatusCode::OK,
        "Thank you for signing up",
        "An administrator will review your request. You can sign in once it is approved.",
        Some((&format!("{PREFIX}/login"), "Back to sign-in")),
    )
}

fn form(
    state: &AppState,
    binding: &Binding,
    next: &str,
    name: &str,
    email: &str,
    alert: Option<&str>,
) -> String {
    let alert =
        alert.map_or(String::new(), |a| format!("<div class=\"alert\" role=\"alert\">{}</div>", esc(a)));
    format!(
        "{alert}<form method=\"post\" action=\"{PREFIX}/register\">{csrf}{next_field}\
         <label for=\"name\">Name</label>\
         <input id=\"name\" name=\"name\" autocomplete=\"name\" required maxlength=\"100\" value=\"{name}\">\
         <label for=\"email\">Email</label>\
         <input id=\"email\" name=\"email\" type=\"email\" autocomplete=\"email\" required value=\"{email}\">\
         <label for=\"password\">Password (at least 10 characters)</label>\
         <input id=\"password\" name=\"password\" type=\"password\" autocomplete=\"new-password\" required minlength=\"10\">\
         <label for=\"confirm\">Repeat password</label>\
         <input id=\"confirm\" name=\"confirm\" type=\"password\" autocomplete=\"new-password\" required>\
         <button type=\"submit\">Create account</button></form>\
         <p class=\"muted\">Already registered? <a href=\"{PREFIX}/login\">Sign in</a></p>",
        csrf = binding.field(state),
        next_field = forms::next_field(next),
        name = esc(name),
        email = esc(email),
    )
}

/// Shows the form, or the registration-disabled page.
pub async fn show(
    State(state): State<AppState>,
    headers: HeaderMap,
    Query(q): Query<RegisterQuery>,
) -> Response {
    if !state.config.registration.allows_sign_up() {
        return closed();
    }
    let next = forms::next_or_root(&state, q.next.as_deref());
    let binding = forms::binding(&state, &headers);
    let body = form(&state, &binding, &next, "", "", None);
    binding.attach(html::page(StatusCode::OK, "Create an account", &body))
}

/// Whether a typed address (already trimmed) looks like one a mail can go to: the one rule
/// of sign-up and of a change of address.
pub(super) fn plausible_email(email: &str) -> bool {
    email.len() <= 254
        && email.split_once('@').is_some_and(|(l, d)| !l.is_empty() && d.contains('.') && !d.starts_with('.'))
        && !email.chars().any(|c| c.is_whitespace() || c.is_control() || c == ',')
}

/// What is wrong with a sign-up, if anything.
fn invalid(f: &RegisterForm) -> Option<&'static str> {
    if f.name.trim().is_empty() || f.name.chars().count() > 100 || f.name.chars().any(char::is_control) {
        Some("Please give a name of up to 100 characters.")
    } else if !plausible_email(f.email.trim()) {
        Some("Please give a valid email address.")
    } else {
        password_problem(&f.password, &f.confirm)
    }
}

/// What is wrong with a new password and its repetition, if anything: the one password rule
/// of sign-up and password reset.
pub(super) fn password_problem(password: &str, confirm: &str) -> Option<&'static str> {
    if password.chars().count() < 10 || password.len() > 1024 {
        Some("The password must have at least 10 characters.")
    } else if password != confirm {
        Some("The two passwords differ.")
    } else {
        None
    }
}

/// Creates the account and signs it in, or leaves it waiting for validation or approval.
pub async fn submit(
    State(state): State<AppState>,
    ConnectInfo(peer): ConnectInfo<SocketAddr>,
    client: signin::Client,
    headers: HeaderMap,
    Form(f): Form<RegisterForm>,
) -> Result<Response, GatewayError> {
    if !state.config.registration.allows_sign_up() {
        return Ok(closed());
    }
    let next = forms::next_or_root(&state, f.next.as_deref());
    let again = |status, text: &str| {
        let binding = forms::binding(&state, &headers);
        let body = form(&state, &binding, &next, &f.name, &f.email, Some(text));
        binding.attach(html::page(status, "Create an account", &body))
    };
    if !forms::csrf_ok(&state, &headers, &f.csrf) {
        return Ok(again(
            StatusCode::FORBIDDEN,
            "This form has expired or did not come from this site. Please try again.",
        ));
    }
    if let Some(problem) = invalid(&f) {
        return Ok(again(StatusCode::UNPROCESSABLE_ENTITY, problem));
    }
    // Counted before the password is hashed: a refused sign-up costs a counter lookup.
    if let Err(refused) = limits::sign_up(&state, forms::client_ip(&state, peer, &headers)).await? {
        let text = match refused {
            Refused::Client => "Too many sign-ups from your network. Please try again later.",
            Refused::Everyone => "Sign-up is very busy right now. Please try again later.",
        };
        return Ok(again(refused.status(), text));
    }
    let hash = match state.builtin.hashing().hash(&f.password).await {
        Ok(hash) => hash,
        Err(HashError::Busy(_)) => {
            state.notices.hashing.hit(state.clock.now(), "every password check turn stayed taken");
            let text = "Too many people are signing up at this moment. Please try again in a few seconds.";
            return Ok(again(StatusCode::SERVICE_UNAVAILABLE, text));
        }
        Err(_) => return Ok(again(StatusCode::UNPROCESSABLE_ENTITY, "That password cannot be used.")),
    };
    let new = NewAccount {
        email: Some(f.email.trim().to_owned()),
        name: f.name.trim().to_owned(),
        password_hash: Some(hash),
        usergroups: Vec::new(),
        status: match &state.config.registration {
            Registration::EmailValidation(_) => AccountStatus::PendingValidation,
            Registration::Approval => AccountStatus::PendingApproval,
            Registration::Open | Registration::Disabled => AccountStatus::Active,
        },
        created_at: state.clock.now(),
        // Nothing is proven by typing an address: it is verified by the mailed link, or not at all.
        email_verified: false,
        link: None,
    };
    if let Registration::EmailValidation(smtp) = &state.config.registration {
        release_lapsed(&state, smtp, &f.email).await?;
    }
    let account = match state.accounts.create(new.clone()).await {
        Ok(a) => a,
        Err(AccountError::EmailTaken) => match held_unverified(&state, &f.email).await? {
            // The address is only claimed, not proven, by another account: mail its link
            // all the same, to a sign-up that takes the address once the link is followed.
            Some(smtp) if state.sessions.incr(&validate::address_counter(&f.email), 600).await? <= 1 => {
                release_lapsed_unaddressed(&state, smtp).await?;
                let account = state.accounts.create(NewAccount { email: None, ..new }).await?;
                tracing::info!(
                    target: "deskgate::audit",
                    account = %account.id,
                    "Account registered for an address another account holds unverified"
                );
                return Ok(validate::start(&state, smtp, &account, f.email.trim()).await);
            }
            _ => {
                return Ok(again(
                    StatusCode::CONFLICT,
                    "An account with this email already exists. Please sign in.",
                ));
            }
        },
        Err(e) => return Err(e.into()),
    };
    tracing::info!(
        target: "deskgate::audit",
        account = %account.id,
        status = account.status.as_str(),
        "Account registered"
    );
    match &state.config.registration {
        Registration::EmailValidation(smtp) => {
            return Ok(validate::start(&state, smtp, &account, f.email.trim()).await);
        }
        Registration::Approval => return Ok(awaiting_approval()),
        Registration::Open | Registration::Disabled => {}
    }
    let mut identity = Identity::new(deskgate_builtin::PROVIDER_ID, account.id.clone());
    identity.email = account.email.clone();
    identity.email_verified = false;
    let previous = web::cookie(&headers, &state.config.session.cookie_name).map(SessionKey::from_cookie);
    let policy = AccountPolicy::default();
    let cookie = signin::start_session(&state, &account, &identity, &policy, previous, None, &client).await?;
    let mut resp = Redirect::to(&next).into_response();
    resp.headers_mut().append(header::SET_COOKIE, forms::session_cookie(&state, Some(&cookie)));
    Ok(resp)
}
