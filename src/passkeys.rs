//! Security keys and passkeys as a second factor: the WebAuthn ceremonies (registering a key,
//! and the key step of a sign-in), over `webauthn-rs`.
//!
//! A ceremony's state lives in the session store as a one-time value for a few minutes,
//! bound to the person it was started for: registration under a random id that only the
//! signed-in account may finish, the sign-in step under the hash of a random cookie that the
//! password step set. Both are only made for someone who is signed in or has just given a
//! correct password, and the store bounds one-time values in number (`[limits]`), so an
//! anonymous client cannot make the gateway keep anything here. A sign-in step is taken
//! once: a wrong or replayed answer ends it, and the person starts again from the password.

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use deskgate_provider::Identity;
use sha2::{Digest, Sha256};
use webauthn_rs::prelude::{
    CreationChallengeResponse, Passkey, PasskeyAuthentication, PasskeyRegistration, PublicKeyCredential,
    RegisterPublicKeyCredential, RequestChallengeResponse, Url, Uuid,
};
use webauthn_rs::{Webauthn, WebauthnBuilder};

use crate::accounts::{Added, KeyStore, NewKey, StoredKey};
use crate::error::GatewayError;
use crate::session::SessionStore;
use crate::state::AppState;

/// How long a started ceremony may take (the person touches their key meanwhile).
pub const CEREMONY_TTL: u64 = 300;

/// Most keys one account may register.
pub const MAX_KEYS: u64 = 10;

/// Longest key name kept, in characters.
pub const NAME_MAX: usize = 64;

/// Largest browser answer read (a real one is a few kilobytes).
pub const ANSWER_MAX: usize = 16 * 1024;

/// Why a ceremony's answer was not accepted.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum KeyRefusal {
    /// No such ceremony: never started, already answered, expired, or another person's.
    #[error("the ceremony is unknown, used, expired or another person's")]
    Unknown,
    /// The answer is not the JSON a browser sends.
    #[error("the answer is malformed")]
    Malformed,
    /// The answer does not verify (signature, challenge, origin, counter, a foreign key).
    #[error("the answer does not verify")]
    Invalid,
    /// The key is already registered.
    #[error("the key is already registered")]
    Duplicate,
    /// The account has as many keys as it may.
    #[error("the account has too many keys")]
    TooMany,
}

/// The relying party of this config, when keys are offered.
pub fn relying_party(state: &AppState) -> Option<Webauthn> {
    let c = state.config.webauthn.as_ref()?;
    let origin = Url::parse(&c.rp_origin).ok()?;
    // Checked when the config was compiled: failing here means keys are not offered.
    WebauthnBuilder::new(&c.rp_id, &origin).and_then(|b| b.rp_name("deskgate").build()).ok()
}

/// The WebAuthn user handle of an account: a hash of its id, so the authenticator learns
/// nothing of it, stable so one authenticator keeps one passkey per account.
fn user_handle(account_id: &str) -> Uuid {
    let digest = Sha256::digest(format!("deskgate user handle\n{account_id}").as_bytes());
    let mut bytes = [0u8; 16];
    bytes.copy_from_slice(&digest[..16]);
    Uuid::from_bytes(bytes)
}

/// The stored id of a credential.
fn credential_id(passkey: &Passkey) -> String {
    URL_SAFE_NO_PAD.encode(passkey.cred_id())
}

/// An account's keys with their parsed credentials; one that no longer parses is skipped.
async fn passkeys(state: &AppState, account_id: &str) -> Result<Vec<(StoredKey, Passkey)>, GatewayError> {
    let keys = state.accounts.keys(account_id).await?;
    Ok(keys
        .into_iter()
        .filter_map(|k| match serde_json::from_str::<Passkey>(&k.credential) {
            Ok(p) => Some((k, p)),
            Err(e) => {
                tracing::warn!(account = %account_id, key = %k.id, error = %e, "A stored security key cannot be read");
                None
            }
        })
        .collect())
}

fn hashed(prefix: &str, token: &str) -> String {
    let digest = Sha256::digest(token.as_bytes());
    format!("{prefix}:{}", URL_SAFE_NO_PAD.encode(digest))
}

fn random_token() -> String {
    URL_SAFE_NO_PAD.encode(rand::random::<[u8; 32]>())
}

/// Ids and tokens the client sends back are at most this long.
fn plausible(token: &str) -> bool {
    !token.is_empty() && token.len() <= 64
}

/// A registration in progress.
#[derive(serde::Serialize, serde::Deserialize)]
struct Registering {
    account_id: String,
    expires: u64,
    state: PasskeyRegistration,
}

/// Registrations one account may start in [`CEREMONY_TTL`]: each is kept until it expires.
pub const REGISTRATIONS_PER_ACCOUNT: u64 = 20;

/// What starting a registration came to.
#[derive(Debug)]
pub enum Begun {
    /// The ceremony id to send back, and the options for `navigator.credentials.create`.
    Started(String, Box<CreationChallengeResponse>),
    /// Keys are not offered by this config.
    NotOffered,
    /// The account started [`REGISTRATIONS_PER_ACCOUNT`] registrations lately.
    TooMany,
}

/// Starts registering a key for a signed-in account.
pub async fn begin_registration(
    state: &AppState,
    account_id: &str,
    name: &str,
    display_name: &str,
) -> Result<Begun, GatewayError> {
    let Some(rp) = relying_party(state) else { return Ok(Begun::NotOffered) };
    let counter = format!("key-registrations:{account_id}");
    if state.sessions.incr(&counter, CEREMONY_TTL).await? > REGISTRATIONS_PER_ACCOUNT {
        return Ok(Begun::TooMany);
    }
    let existing: Vec<_> =
        passkeys(state, account_id).await?.iter().map(|(_, p)| p.cred_id().clone()).collect();
    let (options, reg) = match rp.start_passkey_registration(
        user_handle(account_id),
        name,
        display_name,
        Some(existing),
    ) {
        Ok(started) => started,
        Err(e) => {
            tracing::warn!(account = %account_id, error = %e, "Could not start a security key registration");
            return Ok(Begun::NotOffered);
        }
    };
    let expires = state.clock.now() + CEREMONY_TTL;
    let value = Registering { account_id: account_id.to_owned(), expires, state: reg };
    let ceremony = random_token();
    let bytes = serde_json::to_vec(&value).unwrap_or_default();
    state.sessions.put_once(&hashed("key-registration", &ceremony), bytes, expires).await?;
    Ok(Begun::Started(ceremony, Box::new(options)))
}

/// Finishes a registration that `account_id` started, storing the key under `name`.
pub async fn finish_registration(
    state: &AppState,
    account_id: &str,
    ceremony: &str,
    answer: &str,
    name: &str,
) -> Result<Result<StoredKey, KeyRefusal>, GatewayError> {
    let Some(rp) = relying_party(state) else { return Ok(Err(KeyRefusal::Unknown)) };
    if !plausible(ceremony) {
        return Ok(Err(KeyRefusal::Unknown));
    }
    let Some(bytes) = state.sessions.take(&hashed("key-registration", ceremony)).await? else {
        return Ok(Err(KeyRefusal::Unknown));
    };
    let Ok(reg) = serde_json::from_slice::<Registering>(&bytes) else { return Ok(Err(KeyRefusal::Unknown)) };
    if reg.account_id != account_id || reg.expires <= state.clock.now() {
        return Ok(Err(KeyRefusal::Unknown));
    }
    if answer.len() > ANSWER_MAX {
        return Ok(Err(KeyRefusal::Malformed));
    }
    let Ok(credential) = serde_json::from_str::<RegisterPublicKeyCredential>(answer) else {
        return Ok(Err(KeyRefusal::Malformed));
    };
    let passkey = match rp.finish_passkey_registration(&credential, &reg.state) {
        Ok(p) => p,
        Err(e) => {
            tracing::info!(target: "deskgate::audit", account = %account_id, error = %e, "Security key registration refused");
            return Ok(Err(KeyRefusal::Invalid));
        }
    };
    let stored = serde_json::to_string(&passkey).unwrap_or_default();
    let new = NewKey {
        account_id: account_id.to_owned(),
        credential_id: credential_id(&passkey),
        name: name.to_owned(),
        credential: stored,
        created_at: state.clock.now(),
    };
    Ok(match state.accounts.add_key(new, MAX_KEYS).await? {
        Added::Added(k) => {
            tracing::info!(target: "deskgate::audit", account = %account_id, key = %k.id, "Security key registered");
            Ok(k)
        }
        Added::Duplicate => Err(KeyRefusal::Duplicate),
        Added::TooMany => Err(KeyRefusal::TooMany),
    })
}

/// A sign-in waiting for its key step.
#[derive(serde::Serialize, serde::Deserialize)]
pub struct PendingSignIn {
    /// The account whose password was right.
    pub account_id: String,
    /// What the password's provider said (the session is made from it).
    pub identity: Identity,
    /// Where to go afterwards (checked to be safe when the password was posted).
    pub next: String,
    /// Unix seconds.
    pub expires: u64,
    /// The options for `navigator.credentials.get`.
    pub options: RequestChallengeResponse,
    state: PasskeyAuthentication,
}

fn sign_in_key(token: &str) -> String {
    hashed("key-sign-in", token)
}

/// What a correct password leads to.
#[derive(Debug)]
pub enum Step {
    /// The account has no key: the password alone signs in.
    PasswordOnly,
    /// The key step, under this token for the browser's cookie.
    Key(String),
    /// The account has keys, but none can be asked for now (keys are no longer offered by
    /// this config, or no stored key can be read): no sign-in, rather than a password alone.
    Unavailable,
}

/// After a correct password: starts the key step when the account has keys.
pub async fn begin_sign_in(
    state: &AppState,
    account_id: &str,
    identity: &Identity,
    next: &str,
) -> Result<Step, GatewayError> {
    if state.accounts.keys(account_id).await?.is_empty() {
        return Ok(Step::PasswordOnly);
    }
    let keys: Vec<Passkey> = passkeys(state, account_id).await?.into_iter().map(|(_, p)| p).collect();
    let started = relying_party(state).and_then(|rp| rp.start_passkey_authentication(&keys).ok());
    let Some((options, auth)) = started else {
        tracing::warn!(account = %account_id, "The account has security keys, but none can be asked for");
        return Ok(Step::Unavailable);
    };
    let expires = state.clock.now() + CEREMONY_TTL;
    let pending = PendingSignIn {
        account_id: account_id.to_owned(),
        identity: identity.clone(),
        next: next.to_owned(),
        expires,
        options,
        state: auth,
    };
    let token = random_token();
    let bytes = serde_json::to_vec(&pending).unwrap_or_default();
    state.sessions.put_once(&sign_in_key(&token), bytes, expires).await?;
    Ok(Step::Key(token))
}

/// Takes the pending sign-in of a cookie token, if it is live: used up, whatever comes next.
pub async fn take_sign_in(state: &AppState, token: &str) -> Result<Option<PendingSignIn>, GatewayError> {
    if !plausible(token) {
        return Ok(None);
    }
    let Some(bytes) = state.sessions.take(&sign_in_key(token)).await? else { return Ok(None) };
    let pending = serde_json::from_slice::<PendingSignIn>(&bytes).ok();
    Ok(pending.filter(|p| p.expires > state.clock.now()))
}

/// The pending sign-in of a cookie token, left in place (the key step page shows it).
pub async fn peek_sign_in(state: &AppState, token: &str) -> Result<Option<PendingSignIn>, GatewayError> {
    if !plausible(token) {
        return Ok(None);
    }
    let Some(bytes) = state.sessions.peek(&sign_in_key(token)).await? else { return Ok(None) };
    let pending = serde_json::from_slice::<PendingSignIn>(&bytes).ok();
    Ok(pending.filter(|p| p.expires > state.clock.now()))
}

/// Checks the browser's answer to the key step. The pending sign-in is used up whatever the
/// outcome. On success, the key's counter is stored and the pending sign-in returned.
pub async fn finish_sign_in(
    state: &AppState,
    token: &str,
    answer: &str,
) -> Result<Result<PendingSignIn, KeyRefusal>, GatewayError> {
    let Some(rp) = relying_party(state) else { return Ok(Err(KeyRefusal::Unknown)) };
    let Some(pending) = take_sign_in(state, token).await? else { return Ok(Err(KeyRefusal::Unknown)) };
    if answer.len() > ANSWER_MAX {
        return Ok(Err(KeyRefusal::Malformed));
    }
    let Ok(credential) = serde_json::from_str::<PublicKeyCredential>(answer) else {
        return Ok(Err(KeyRefusal::Malformed));
    };
    let account = pending.account_id.as_str();
    let result = match rp.finish_passkey_authentication(&credential, &pending.state) {
        Ok(r) => r,
        Err(e) => {
            tracing::info!(target: "deskgate::audit", account = %account, error = %e, "Security key sign-in refused");
            return Ok(Err(KeyRefusal::Invalid));
        }
    };
    // The key must still be the account's (it may have been removed since the step began).
    let keys = passkeys(state, account).await?;
    let Some((key, mut passkey)) = keys.into_iter().find(|(_, p)| p.cred_id() == result.cred_id()) else {
        tracing::info!(target: "deskgate::audit", account = %account, "Security key sign-in refused: the key is not the account's");
        return Ok(Err(KeyRefusal::Invalid));
    };
    passkey.update_credential(&result);
    let stored = serde_json::to_string(&passkey).unwrap_or_default();
    if !state.accounts.key_used(account, &key.id, &stored, state.clock.now()).await? {
        return Ok(Err(KeyRefusal::Invalid));
    }
    tracing::info!(target: "deskgate::audit", account = %account, key = %key.id, "Security key used to sign in");
    Ok(Ok(pending))
}

#[cfg(test)]
#[allow(clippy::unwrap_used, reason = "a test reports failure by panicking")]
mod tests {
    use super::*;

    #[test]
    fn ceremony_state_survives_the_store() {
        let rp = WebauthnBuilder::new("localhost", &Url::parse("http://localhost:8080").unwrap())
            .unwrap()
            .build()
            .unwrap();
        let (_, reg) = rp.start_passkey_registration(user_handle("a"), "a", "A", None).unwrap();
        let bytes =
            serde_json::to_vec(&Registering { account_id: "a".into(), expires: 5, state: reg }).unwrap();
        let back = serde_json::from_slice::<Registering>(&bytes);
        assert!(back.is_ok(), "{:?} {}", back.err(), String::from_utf8_lossy(&bytes));
    }
}
