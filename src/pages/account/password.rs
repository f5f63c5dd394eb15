//! The account page's password change, for accounts that sign in with a password: the
//! current password first (counted as a sign-in attempt), the sign-up rule for the new one.
//! The change ends every other session of the account and keeps the one that made it.

use std::net::{IpAddr, SocketAddr};

use axum::Form;
use axum::extract::{ConnectInfo, State};
use axum::response::Response;
use deskgate_builtin::HashError;
use deskgate_provider::{AuthError, PasswordProvider};
use http::{HeaderMap, StatusCode};

use super::{Posted, account_of, done, posted, refuse};
use crate::accounts::{Account, AccountError, AccountStore};
use crate::error::GatewayError;
use crate::forms::{self, Binding};
use crate::limits;
use crate::session::SessionStore;
use crate::signin::deadline;
use crate::state::AppState;
use crate::visitor::Visitor;
use crate::web::PREFIX;

/// The password section.
pub(super) fn section(state: &AppState, binding: &Binding) -> String {
    format!(
        "<section id=\"password\"><h2>Password</h2>\
         <form method=\"post\" action=\"{PREFIX}/account/password\">{csrf}\
         <label for=\"current\">Current password</label>\
         <input id=\"current\" name=\"current\" type=\"password\" autocomplete=\"current-password\" required>\
         <label for=\"password\">New password (at least 10 characters)</label>\
         <input id=\"password\" name=\"password\" type=\"password\" autocomplete=\"new-password\" required minlength=\"10\">\
         <label for=\"confirm\">Repeat the new password</label>\
         <input id=\"confirm\" name=\"confirm\" type=\"password\" autocomplete=\"new-password\" required>\
         <button type=\"submit\">Change password</button></form>\
         <p class=\"muted\">Changing it ends every other session of your account.</p></section>",
        csrf = binding.field(state),
    )
}

/// Whether the account signs in with a password here.
pub(super) async fn has_password(state: &AppState, account: &Account) -> Result<bool, GatewayError> {
    Ok(state.config.builtin_enabled
        && account.email.is_some()
        && state.accounts.providers(&account.id).await?.iter().any(|p| p == deskgate_builtin::PROVIDER_ID))
}

/// Why the current password was not accepted, as the person is told it.
pub(super) struct Refusal(pub StatusCode, pub String);

/// Checks `password` as the account's current one, as a sign-in attempt from `ip` to it:
/// the same limits and delays, so that a stolen session cannot guess faster than a stranger.
pub(super) async fn check_current(
    state: &AppState,
    ip: IpAddr,
    account: &Account,
    password: &str,
) -> Result<Result<(), Refusal>, GatewayError> {
    let email = account.email.as_deref().unwrap_or_default();
    let login = format!("{}:{}", deskgate_builtin::PROVIDER_ID, email.trim().to_lowercase());
    let attempt = match limits::sign_in(state, &login, ip).await? {
        Ok(a) => a,
        Err(refused) => {
            let minutes = state.config.rate_limit.window.as_secs().div_ceil(60);
            let text = format!("Too many wrong passwords. Please wait {minutes} minutes and try again.");
            return Ok(Err(Refusal(refused.status(), text)));
        }
    };
    match state.builtin.verify(email, password).await {
        Ok(identity) if identity.subject == account.id => {
            attempt.succeeded(state).await?;
            Ok(Ok(()))
        }
        Err(AuthError::Unavailable(e)) => {
            attempt.abandoned(state).await?;
            if e.is::<deskgate_builtin::Busy>() {
                state.notices.hashing.hit(state.clock.now(), "every password check turn stayed taken");
                let text =
                    "Too many people are signing in at this moment. Please try again in a few seconds.";
                return Ok(Err(Refusal(StatusCode::SERVICE_UNAVAILABLE, text.to_owned())));
            }
            Err(GatewayError::IdentitySource(AuthError::Unavailable(e)))
        }
        _ => {
            attempt.failed(state).await?;
            tracing::info!(target: "deskgate::audit", account = %account.id, client = %ip, "Current password refused on the account page");
            Ok(Err(Refusal(StatusCode::UNAUTHORIZED, "The current password is not correct.".to_owned())))
        }
    }
}

/// The posted password change.
#[derive(serde::Deserialize)]
pub struct PasswordForm {
    #[serde(default)]
    current: String,
    #[serde(default)]
    password: String,
    #[serde(default)]
    confirm: String,
    #[serde(default)]
    csrf: String,
}

/// `POST /account/password`.
pub async fn change(
    State(state): State<AppState>,
    ConnectInfo(peer): ConnectInfo<SocketAddr>,
    visitor: Visitor,
    headers: HeaderMap,
    Form(f): Form<PasswordForm>,
) -> Result<Response, GatewayError> {
    let (key, session) = match posted(&state, visitor, &headers, &f.csrf).await? {
        Posted::By(key, session) => (key, session),
        Posted::Answered(resp) => return Ok(resp),
    };
    let me = (&key, &*session);
    let Some(account) = account_of(&state, &session).await? else {
        return Ok(done("password"));
    };
    if !has_password(&state, &account).await? {
        let text = "This account does not sign in with a password here.";
        return refuse(&state, &headers, me, StatusCode::CONFLICT, text).await;
    }
    // Checked before the current password, so that a typo costs no attempt.
    if let Some(text) = crate::pages::register::password_problem(&f.password, &f.confirm) {
        return refuse(&state, &headers, me, StatusCode::UNPROCESSABLE_ENTITY, text).await;
    }
    let ip = forms::client_ip(&state, peer, &headers);
    if let Err(Refusal(status, text)) = check_current(&state, ip, &account, &f.current).await? {
        return refuse(&state, &headers, me, status, &text).await;
    }
    let hash = match state.builtin.hashing().hash(&f.password).await {
        Ok(h) => h,
        Err(HashError::Busy(_)) => {
            state.notices.hashing.hit(state.clock.now(), "every password check turn stayed taken");
            let text = "Too many people are signing in at this moment. Please try again in a few seconds.";
            return refuse(&state, &headers, me, StatusCode::SERVICE_UNAVAILABLE, text).await;
        }
        Err(_) => {
            let text = "That password cannot be used.";
            return refuse(&state, &headers, me, StatusCode::UNPROCESSABLE_ENTITY, text).await;
        }
    };
    let serial = match state.accounts.set_password(&account.id, &hash).await {
        Ok(serial) => serial,
        Err(AccountError::NotFound) => return Ok(done("password")),
        Err(e) => return Err(e.into()),
    };
    // This session carries the new serial; every other one is behind it and ends at its
    // next request on any replica (the epoch makes each look again), and is deleted now.
    let now = state.clock.now();
    let mut kept = session.touched(now);
    kept.password_serial = serial;
    state.sessions.put(&key, kept, deadline(&state, session.created_at, now)).await?;
    state.sessions.bump_account_epoch(&account.id).await?;
    for (other, _) in state.sessions.account_sessions(&account.id).await? {
        if other != key {
            state.sessions.delete(&other).await?;
        }
    }
    tracing::info!(target: "deskgate::audit", account = %account.id, "Password changed by its owner; every other session ended");
    Ok(done("password"))
}
