//! `/.deskgate/account/security`: a person's own second factor. Enrol an authenticator app
//! (a QR code of its `otpauth://` URI, confirmed by a code), get ten single-use recovery
//! codes shown once, and turn it off again with the current password and a code.

use std::net::SocketAddr;

use axum::Form;
use axum::extract::{ConnectInfo, Query, State};
use axum::response::{IntoResponse, Redirect, Response};
use deskgate_provider::PasswordProvider;
use http::{HeaderMap, StatusCode};

use crate::accounts::{AccountStore, FactorStore, KeyStore};
use crate::error::GatewayError;
use crate::forms;
use crate::html::{self, esc, query_value};
use crate::limits;
use crate::mfa::{self, Checked, totp};
use crate::session::Session;
use crate::state::AppState;
use crate::visitor::Visitor;
use crate::web::PREFIX;

/// This page's path.
const HERE: &str = "/.deskgate/account/security";

/// Where the other kind of second factor is managed.
const KEYS_NOTE: &str = "<p class=\"muted\">A security key or passkey is a second factor too: \
     <a href=\"/.deskgate/account/keys\">Security keys</a>.</p>";

/// Whether the account has a security key this session did not use: adding another factor
/// then needs the key first, so that a session without a second factor cannot plant one.
async fn key_unused(state: &AppState, session: &Session) -> Result<bool, GatewayError> {
    Ok(!mfa::satisfied(&session.amr) && !state.accounts.keys(&session.account_id).await?.is_empty())
}

fn use_key_first() -> Response {
    html::message(
        StatusCode::FORBIDDEN,
        "Two-step sign-in",
        "Your account has a security key, which this session did not use. Use your key first, \
         then add an authenticator app.",
        Some(("/.deskgate/mfa/key?next=/.deskgate/account/security", "Use my key")),
    )
}

/// Query of the page.
#[derive(Debug, serde::Deserialize)]
pub struct SecurityQuery {
    next: Option<String>,
}

/// The enrolment form.
#[derive(serde::Deserialize)]
pub struct EnrolForm {
    #[serde(default)]
    csrf: String,
    /// The secret shown, sealed to the account (see [`seal_binding`]).
    #[serde(default)]
    secret: String,
    #[serde(default)]
    code: String,
    next: Option<String>,
}

/// The form that turns the second factor off.
#[derive(serde::Deserialize)]
pub struct DisableForm {
    #[serde(default)]
    csrf: String,
    #[serde(default)]
    password: String,
    #[serde(default)]
    code: String,
}

/// What a secret on its way through the enrolment form is sealed to: the account, so a
/// form posted by another account's session opens nothing.
fn seal_binding(account_id: &str) -> String {
    format!("totp-enrolment\n{account_id}")
}

fn sign_in_first() -> Response {
    Redirect::to(&format!("{PREFIX}/login?next={}", query_value(HERE))).into_response()
}

fn foreign_form() -> Response {
    html::message(
        StatusCode::FORBIDDEN,
        "Two-step sign-in",
        "This form has expired or did not come from this site. Nothing was changed; please try again.",
        Some((HERE, "Back")),
    )
}

/// The page: the enrolment form, or the factor's state and the way to turn it off.
pub async fn show(
    State(state): State<AppState>,
    visitor: Visitor,
    headers: HeaderMap,
    Query(q): Query<SecurityQuery>,
) -> Result<Response, GatewayError> {
    let Visitor::SignedIn { session, .. } = visitor else { return Ok(sign_in_first()) };
    let next = forms::next_or_root(&state, q.next.as_deref());
    match state.accounts.totp(&session.account_id).await? {
        // Enrolled, but not used in this session: give it first (then come back here).
        Some(_) if !mfa::satisfied(&session.amr) => {
            let back = if q.next.is_some() { next } else { HERE.to_owned() };
            Ok(Redirect::to(&mfa::step_up_url(&back)).into_response())
        }
        Some(_) => {
            let left = state.accounts.recovery_codes_left(&session.account_id).await?;
            Ok(enrolled(&state, &headers, &session, left, None, StatusCode::OK))
        }
        // A key this session did not use: given first (then back here, or on).
        None if key_unused(&state, &session).await? => {
            let back = if q.next.is_some() { next } else { HERE.to_owned() };
            Ok(Redirect::to(&format!("{PREFIX}/mfa/key?next={}", query_value(&back))).into_response())
        }
        None => {
            let secret = totp::new_secret();
            let sealed = state.pending.seal_token(&seal_binding(&session.account_id), &secret);
            Ok(enrolment(&state, &headers, &session, &secret, &sealed, &next, None, StatusCode::OK))
        }
    }
}

#[allow(clippy::too_many_arguments)]
fn enrolment(
    state: &AppState,
    headers: &HeaderMap,
    session: &Session,
    secret: &str,
    sealed: &str,
    next: &str,
    alert: Option<&str>,
    status: StatusCode,
) -> Response {
    let account = session.email.clone().unwrap_or_else(|| session.name.clone());
    let issuer = state.config.server.public_url.split("://").nth(1).unwrap_or("deskgate").to_owned();
    let uri = totp::otpauth_uri(&issuer, &account, secret);
    let qr = totp::qr_svg(&uri).unwrap_or_default();
    let alert =
        alert.map_or(String::new(), |a| format!("<div class=\"alert\" role=\"alert\">{}</div>", esc(a)));
    let required = if state.config.model.requires_mfa(&session.resolved.usergroups) {
        "<div class=\"note\">One of your usergroups requires two-step sign-in: set it up to continue.</div>"
    } else {
        ""
    };
    let binding = forms::binding(state, headers);
    let body = format!(
        "{required}{alert}<p>Scan this QR code with an authenticator app, then type the six-digit code it shows.</p>\
         <div class=\"qr\" data-otpauth=\"{uri}\">{qr}</div>\
         <p class=\"muted\">Or type this key into the app: <code id=\"totp-secret\">{secret}</code></p>\
         <form method=\"post\" action=\"{HERE}/totp\">{csrf}{next}\
         <input type=\"hidden\" name=\"secret\" value=\"{sealed}\">\
         <label for=\"code\">Code from the app</label>\
         <input id=\"code\" name=\"code\" autocomplete=\"one-time-code\" inputmode=\"numeric\" required>\
         <button type=\"submit\">Turn on two-step sign-in</button></form>\
         <p class=\"muted\"><a href=\"{PREFIX}/logout\">Sign out</a></p>",
        uri = esc(&uri),
        secret = esc(secret),
        sealed = esc(sealed),
        csrf = binding.field(state),
        next = forms::next_field(next),
    );
    let body = format!("{body}{KEYS_NOTE}");
    binding.attach(html::page(status, "Two-step sign-in", &body))
}

fn enrolled(
    state: &AppState,
    headers: &HeaderMap,
    session: &Session,
    left: u64,
    alert: Option<&str>,
    status: StatusCode,
) -> Response {
    let alert =
        alert.map_or(String::new(), |a| format!("<div class=\"alert\" role=\"alert\">{}</div>", esc(a)));
    let password = if session.provider == deskgate_builtin::PROVIDER_ID {
        "<label for=\"password\">Current password</label>\
         <input id=\"password\" name=\"password\" type=\"password\" autocomplete=\"current-password\" required>"
    } else {
        ""
    };
    let binding = forms::binding(state, headers);
    let body = format!(
        "{alert}<p>Two-step sign-in is <strong>on</strong>: an authenticator app. \
         Recovery codes left: <strong id=\"recovery-left\">{left}</strong>.</p>\
         <form method=\"post\" action=\"{HERE}/disable\">{csrf}{password}\
         <label for=\"code\">A code from the app, or a recovery code</label>\
         <input id=\"code\" name=\"code\" autocomplete=\"one-time-code\" required>\
         <button type=\"submit\">Turn off two-step sign-in</button></form>\
         <p class=\"muted\"><a href=\"{PREFIX}/\">Your session</a></p>",
        csrf = binding.field(state),
    );
    let body = format!("{body}{KEYS_NOTE}");
    binding.attach(html::page(status, "Two-step sign-in", &body))
}

/// Confirms the app with its first code: stores the secret and shows the recovery codes,
/// once.
pub async fn enrol(
    State(state): State<AppState>,
    visitor: Visitor,
    headers: HeaderMap,
    Form(f): Form<EnrolForm>,
) -> Result<Response, GatewayError> {
    let Visitor::SignedIn { key, session } = visitor else { return Ok(sign_in_first()) };
    if !forms::csrf_ok(&state, &headers, &f.csrf) {
        return Ok(foreign_form());
    }
    let next = forms::next_or_root(&state, f.next.as_deref());
    let Some(secret) = state.pending.open_token(&seal_binding(&session.account_id), &f.secret) else {
        tracing::info!(account = %session.account_id, "Refused an enrolment form whose secret does not open");
        return Ok(foreign_form());
    };
    if state.accounts.totp(&session.account_id).await?.is_some() {
        return Ok(Redirect::to(HERE).into_response());
    }
    if key_unused(&state, &session).await? {
        return Ok(use_key_first());
    }
    let code: String = f.code.chars().filter(|c| !c.is_whitespace()).collect();
    let Some(step) = totp::matching_step(&secret, &code, state.clock.now()) else {
        let text =
            "That code is not right. Check the time on your phone and type the code the app shows now.";
        return Ok(enrolment(
            &state,
            &headers,
            &session,
            &secret,
            &f.secret,
            &next,
            Some(text),
            StatusCode::BAD_REQUEST,
        ));
    };
    let codes = totp::new_recovery_codes();
    let hashes: Vec<String> = codes.iter().map(|c| totp::recovery_hash(c)).collect();
    state.accounts.enrol_totp(&session.account_id, &secret, step, &hashes, state.clock.now()).await?;
    mfa::upgrade(&state, &key, &session, &["otp"]).await?;
    tracing::info!(target: "deskgate::audit", account = %session.account_id, "Second factor enrolled: authenticator app");
    let list: String = codes.iter().map(|c| format!("<li><code>{}</code></li>", esc(c))).collect();
    let body = format!(
        "<div class=\"note\">Two-step sign-in is on.</div>\
         <p>Keep these recovery codes somewhere safe: each signs you in once if you lose your phone. \
         They are shown only now.</p><ul id=\"recovery-codes\">{list}</ul>\
         <a class=\"button\" href=\"{}\">Continue</a>",
        esc(&next)
    );
    Ok(html::page(StatusCode::OK, "Recovery codes", &body))
}

/// Turns the second factor off: the current password (for built-in accounts) and a code.
pub async fn disable(
    State(state): State<AppState>,
    ConnectInfo(peer): ConnectInfo<SocketAddr>,
    visitor: Visitor,
    headers: HeaderMap,
    Form(f): Form<DisableForm>,
) -> Result<Response, GatewayError> {
    let Visitor::SignedIn { session, .. } = visitor else { return Ok(sign_in_first()) };
    if !forms::csrf_ok(&state, &headers, &f.csrf) {
        return Ok(foreign_form());
    }
    let ip = forms::client_ip(&state, peer, &headers);
    let left = state.accounts.recovery_codes_left(&session.account_id).await?;
    let again = |text: &str, status| enrolled(&state, &headers, &session, left, Some(text), status);
    if session.provider == deskgate_builtin::PROVIDER_ID {
        let email =
            state.accounts.by_id(&session.account_id).await?.and_then(|a| a.email).unwrap_or_default();
        let login = format!("{}:{}", deskgate_builtin::PROVIDER_ID, email.to_lowercase());
        let attempt = match limits::sign_in(&state, &login, ip).await? {
            Ok(a) => a,
            Err(refused) => {
                return Ok(again("Too many attempts. Please wait and try again.", refused.status()));
            }
        };
        match state.builtin.verify(&email, &f.password).await {
            Ok(i) if i.subject == session.account_id => attempt.succeeded(&state).await?,
            Ok(_) | Err(_) => {
                attempt.failed(&state).await?;
                return Ok(again("The password is not correct.", StatusCode::UNAUTHORIZED));
            }
        }
    }
    match mfa::check_code(&state, &session.account_id, &f.code, ip).await? {
        Checked::Totp | Checked::Recovery => {}
        Checked::Limited(limit) => {
            return Ok(again("Too many wrong codes. Please wait and try again.", limit.status()));
        }
        Checked::Wrong => return Ok(again("That code is not right.", StatusCode::UNAUTHORIZED)),
    }
    state.accounts.remove_factors(&session.account_id).await?;
    tracing::info!(target: "deskgate::audit", account = %session.account_id, "Second factor turned off by the person");
    Ok(html::message(
        StatusCode::OK,
        "Two-step sign-in",
        "Two-step sign-in is off. Your recovery codes no longer work.",
        Some((HERE, "Set it up again")),
    ))
}
