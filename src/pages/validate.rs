//! Email validation for sign-ups (registration mode `email-validation`): the mailed link
//! and `/.deskgate/validate?token=…`, which activates the account once.
//!
//! The token is 256 random bits; only its SHA-256 is stored, as a one-time value in the
//! session store (shared by replicas), so a leaked store does not hand out working links.

use std::net::IpAddr;
use std::time::Duration;

use axum::extract::{Query, State};
use axum::response::Response;
use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use http::StatusCode;
use lettre::message::header::ContentType;
use lettre::message::{Mailbox, Message};
use lettre::transport::smtp::authentication::Credentials;
use lettre::{AsyncSmtpTransport, AsyncTransport, Tokio1Executor};
use sha2::{Digest, Sha256};

use crate::accounts::{Account, AccountError, AccountStatus, AccountStore};
use crate::config::Smtp;
use crate::error::GatewayError;
use crate::html::{self, query_value};
use crate::session::SessionStore;
use crate::state::AppState;
use crate::web::PREFIX;

/// Time allowed for the whole SMTP exchange.
const SMTP_TIMEOUT: Duration = Duration::from_secs(30);

/// At most one validation mail per account in this long (the sign-up's own counts).
const RESEND_PAUSE: Duration = Duration::from_secs(600);

fn mailed_counter(account_id: &str) -> String {
    format!("mailed:{account_id}")
}

/// The counter of sign-ups mailed to an address another account holds unverified, so that
/// repeated sign-ups cannot flood its owner with mail (one per ten minutes).
pub fn address_counter(email: &str) -> String {
    let digest = Sha256::digest(email.trim().to_lowercase().as_bytes());
    format!("mailed-to:{}", URL_SAFE_NO_PAD.encode(&digest[..18]))
}

/// Why a validation mail was not sent.
#[derive(Debug, thiserror::Error)]
pub enum MailError {
    /// The sender or the recipient is not a mailbox.
    #[error("`{0}` is not a mail address")]
    Address(String),
    /// The message could not be put together.
    #[error("cannot build the message")]
    Build(#[source] lettre::error::Error),
    /// The mail server refused or could not be reached.
    #[error("the mail server did not take the message")]
    Send(#[source] lettre::transport::smtp::Error),
    /// The token could not be stored.
    #[error("cannot store the validation token")]
    Store(#[source] crate::session::StoreError),
    /// A token with the same hash is already stored (256 random bits: never in practice).
    #[error("the validation token is already taken")]
    TokenTaken,
}

fn key(token: &str) -> String {
    token_key("validate", token)
}

/// The store key of a mailed token: its SHA-256 under `kind`, so that the store never
/// holds a working link.
pub(super) fn token_key(kind: &str, token: &str) -> String {
    let digest = Sha256::digest(token.as_bytes());
    let hex: String = digest.iter().map(|b| format!("{b:02x}")).collect();
    format!("{kind}:{hex}")
}

/// Fills `{name}` and `{link}` into a template.
fn fill(template: &str, name: &str, link: &str) -> String {
    template.replace("{name}", name).replace("{link}", link)
}

/// Sends one mail over plain SMTP: `subject` and `body` are templates (`{name}`, `{link}`).
pub(super) async fn send(
    smtp: &Smtp,
    (subject, body): (&str, &str),
    to_name: &str,
    to_email: &str,
    link: &str,
) -> Result<(), MailError> {
    let from: Mailbox = smtp.from.parse().map_err(|_| MailError::Address(smtp.from.clone()))?;
    let to_address = to_email.parse().map_err(|_| MailError::Address(to_email.to_owned()))?;
    // A name with line breaks cannot get here (sign-up refuses control characters); the
    // subject gets the name through lettre's header encoding either way.
    let message = Message::builder()
        .from(from)
        .to(Mailbox::new(Some(to_name.to_owned()), to_address))
        .subject(fill(subject, to_name, link))
        .header(ContentType::TEXT_PLAIN)
        .body(fill(body, to_name, link))
        .map_err(MailError::Build)?;
    let mut transport = AsyncSmtpTransport::<Tokio1Executor>::builder_dangerous(smtp.host.as_str())
        .port(smtp.port)
        .timeout(Some(SMTP_TIMEOUT));
    if let Some((user, password)) = &smtp.credentials {
        transport = transport.credentials(Credentials::new(user.clone(), password.0.clone()));
    }
    transport.build().send(message).await.map_err(MailError::Send)?;
    Ok(())
}

/// Stores a fresh token for `account` and mails its link to `address`. The token names the
/// account and the address, which the account takes, verified, when the link is followed.
async fn mail_link(state: &AppState, smtp: &Smtp, account: &Account, address: &str) -> Result<(), MailError> {
    let bytes: [u8; 32] = rand::random();
    let token = URL_SAFE_NO_PAD.encode(bytes);
    let expires_at = state.clock.now().saturating_add(smtp.validation_ttl.as_secs());
    let stored = state
        .sessions
        .put_once(&key(&token), format!("{}\n{address}", account.id).into_bytes(), expires_at)
        .await
        .map_err(MailError::Store)?;
    if !stored {
        return Err(MailError::TokenTaken);
    }
    let link = format!("{}{PREFIX}/validate?token={}", state.config.server.public_url, query_value(&token));
    if let Err(e) = send(smtp, (&smtp.subject, &smtp.body), &account.name, address, &link).await {
        // The link must not outlive the account it names.
        let _ = state.sessions.take(&key(&token)).await;
        return Err(e);
    }
    Ok(())
}

/// After a sign-up: mails the link and says so. When the mail cannot be sent the account
/// is deleted again, so that the person can simply sign up once more later.
pub async fn start(state: &AppState, smtp: &Smtp, account: &Account, address: &str) -> Response {
    match mail_link(state, smtp, account, address).await {
        Ok(()) => {
            tracing::info!(target: "deskgate::audit", account = %account.id, "Validation mail sent");
            // Counts toward the pause between mails; a store error only lets a resend come sooner.
            let _ = state.sessions.incr(&mailed_counter(&account.id), RESEND_PAUSE.as_secs()).await;
            html::message(
                StatusCode::OK,
                "Check your email",
                "We sent you an email with a link. Open it to confirm your email address, then sign in.",
                Some((&format!("{PREFIX}/login"), "Go to sign-in")),
            )
        }
        Err(e) => {
            tracing::error!(
                account = %account.id,
                error = %deskgate_provider::error_chain(&e),
                "Validation mail not sent; the sign-up is undone"
            );
            if let Err(e) = state.accounts.delete(&account.id).await {
                tracing::error!(account = %account.id, error = %e, "Cannot undo the sign-up");
            }
            html::message(
                StatusCode::SERVICE_UNAVAILABLE,
                "Email could not be sent",
                "We could not send the confirmation email, so no account was created. Please try again later.",
                Some((&format!("{PREFIX}/register"), "Back to sign-up")),
            )
        }
    }
}

/// After a correct password on an account whose address is not confirmed yet: mails a
/// new link, unless one went out less than [`RESEND_PAUSE`] ago. Returns whether one was
/// sent. Called only once the password checked out, so it reveals nothing about which
/// addresses have accounts, and only the account's owner can make it send.
pub async fn resend(
    state: &AppState,
    smtp: &Smtp,
    email: &str,
    client: IpAddr,
) -> Result<bool, GatewayError> {
    let Some(account) = state.accounts.by_email(email.trim()).await? else {
        return Ok(false);
    };
    if account.status != AccountStatus::PendingValidation {
        return Ok(false);
    }
    if state.sessions.incr(&mailed_counter(&account.id), RESEND_PAUSE.as_secs()).await? > 1 {
        return Ok(false);
    }
    // Over the mail limits the person is told what they would be without a new link: to
    // confirm their address first (the notice logs the refusals).
    if crate::limits::mail(state, client).await?.is_err() {
        // Not sent: a sign-in from elsewhere may still send it.
        state.sessions.release(&mailed_counter(&account.id)).await?;
        return Ok(false);
    }
    let address = account.email.clone().unwrap_or_default();
    match mail_link(state, smtp, &account, &address).await {
        Ok(()) => {
            tracing::info!(target: "deskgate::audit", account = %account.id, "Validation mail sent again");
            Ok(true)
        }
        Err(e) => {
            tracing::error!(account = %account.id, error = %deskgate_provider::error_chain(&e), "Validation mail not sent again");
            Ok(false)
        }
    }
}

/// Query of the link.
#[derive(Debug, serde::Deserialize)]
pub struct ValidateQuery {
    token: Option<String>,
}

fn unusable() -> Response {
    html::message(
        StatusCode::BAD_REQUEST,
        "This link does not work",
        "This confirmation link has already been used, has expired, or is incomplete. If you have \
         confirmed your address already, sign in.",
        Some((&format!("{PREFIX}/login"), "Go to sign-in")),
    )
}

/// Takes the token once and activates its account.
pub async fn confirm(
    State(state): State<AppState>,
    Query(q): Query<ValidateQuery>,
) -> Result<Response, GatewayError> {
    let Some(token) = q.token.filter(|t| !t.is_empty() && t.len() <= 128) else {
        return Ok(unusable());
    };
    let Some(id) = state.sessions.take(&key(&token)).await? else {
        tracing::info!(target: "deskgate::audit", "Validation link refused: used, expired or forged");
        return Ok(unusable());
    };
    // `id` alone (links mailed before addresses were kept with them) or `id\naddress`.
    let value = String::from_utf8_lossy(&id).into_owned();
    let (id, address) = match value.split_once('\n') {
        Some((id, address)) => (id.to_owned(), Some(address.to_owned())),
        None => (value, None),
    };
    let Some(a) = state.accounts.by_id(&id).await?.filter(|a| a.status == AccountStatus::PendingValidation)
    else {
        return Ok(unusable());
    };
    let Some(address) = address.or(a.email) else {
        return Ok(unusable());
    };
    // The link proves the address: it becomes verified, and an account that held it
    // unverified loses it.
    let holder = state.accounts.by_email(&address).await?.filter(|h| h.id != id && !h.email_verified);
    // The address and the activation in one transaction: a failure between them would leave
    // a used link and an account still waiting.
    match state.accounts.confirm_email(&id, &address).await {
        Ok(()) => {
            // The holder's sessions stop forwarding the address at their next request.
            if let Some(holder) = holder {
                state.sessions.bump_account_epoch(&holder.id).await?;
            }
        }
        Err(AccountError::EmailTaken) => {
            tracing::info!(target: "deskgate::audit", account = %id, "Validation refused: another account verified the address first");
            return Ok(html::message(
                StatusCode::CONFLICT,
                "This address belongs to another account",
                "Another account has confirmed this email address in the meantime. Sign in with it, or ask an administrator.",
                Some((&format!("{PREFIX}/login"), "Go to sign-in")),
            ));
        }
        // An administrator decided on the sign-up in the meantime.
        Err(AccountError::NotFound) => return Ok(unusable()),
        Err(e) => return Err(e.into()),
    }
    tracing::info!(target: "deskgate::audit", account = %id, "Email address confirmed");
    Ok(html::message(
        StatusCode::OK,
        "Email address confirmed",
        "Your email address is confirmed — sign in to continue.",
        Some((&format!("{PREFIX}/login"), "Sign in")),
    ))
}
