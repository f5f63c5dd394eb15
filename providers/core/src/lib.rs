//! What every deskgate identity source implements: the [`Identity`] a provider returns,
//! the provider traits, and the one error type providers speak.
//!
//! Providers never see HTTP requests or responses; the gateway turns their results into
//! sessions and pages. This crate has no I/O dependencies so that it stays cheap to build.

use std::collections::BTreeMap;
use std::future::Future;

/// The [`Identity::attributes`] key under which a provider passes how the person
/// authenticated (RFC 8176 `amr` values, e.g. `pwd`, `otp`, `mfa`, `hwk`).
pub const AMR: &str = "amr";

/// Who a provider says signed in.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct Identity {
    /// The provider's configured id, e.g. `builtin` or `ldap.corp`.
    pub provider: String,
    /// The provider's stable identifier for the person (account id, objectGUID, `sub`, NameID).
    pub subject: String,
    /// The name the person typed or the provider's login name.
    pub username: Option<String>,
    /// Email address, if the provider knows one.
    pub email: Option<String>,
    /// Whether the provider vouches for the email address.
    pub email_verified: bool,
    /// Display name.
    pub display_name: Option<String>,
    /// The provider's own group names or DNs, before mapping to usergroups.
    pub groups: Vec<String>,
    /// Any further attributes the provider returned (e.g. `company`, `hd`).
    pub attributes: BTreeMap<String, Vec<String>>,
}

impl Identity {
    /// A minimal identity with only the provider and subject set.
    pub fn new(provider: impl Into<String>, subject: impl Into<String>) -> Self {
        Identity {
            provider: provider.into(),
            subject: subject.into(),
            username: None,
            email: None,
            email_verified: false,
            display_name: None,
            groups: Vec::new(),
            attributes: BTreeMap::new(),
        }
    }
}

/// Why a sign-in did not produce an identity.
///
/// Each variant is a condition a person can be told about in plain words; the detail of
/// unavailable or protocol failures goes to the log only.
#[derive(Debug, thiserror::Error)]
pub enum AuthError {
    /// Unknown user or wrong password; deliberately not told apart.
    #[error("invalid username or password")]
    InvalidCredentials,
    /// The account exists but is disabled.
    #[error("account is disabled")]
    AccountDisabled,
    /// The account's password has expired.
    #[error("password has expired")]
    PasswordExpired,
    /// The account itself has expired.
    #[error("account has expired")]
    AccountExpired,
    /// The person must change their password before signing in.
    #[error("password must be changed")]
    PasswordMustChange,
    /// Too many failed attempts at the identity source.
    #[error("account is locked out")]
    AccountLocked,
    /// The account has not finished sign-up (validation or approval pending).
    #[error("account is not active yet: {0}")]
    AccountPending(&'static str),
    /// The provider's own rules refuse this identity (e.g. a domain that is not allowed).
    #[error("not allowed: {0}")]
    NotAllowed(String),
    /// The identity source could not be reached or answered with an error.
    #[error("identity source unavailable")]
    Unavailable(#[source] Box<dyn std::error::Error + Send + Sync>),
    /// The identity source answered with something that failed a protocol check.
    #[error("protocol check failed: {0}")]
    Protocol(String),
}

impl AuthError {
    /// A short stable code for logs and tests.
    pub fn code(&self) -> &'static str {
        match self {
            AuthError::InvalidCredentials => "invalid-credentials",
            AuthError::AccountDisabled => "account-disabled",
            AuthError::PasswordExpired => "password-expired",
            AuthError::AccountExpired => "account-expired",
            AuthError::PasswordMustChange => "password-must-change",
            AuthError::AccountLocked => "account-locked",
            AuthError::AccountPending(_) => "account-pending",
            AuthError::NotAllowed(_) => "not-allowed",
            AuthError::Unavailable(_) => "unavailable",
            AuthError::Protocol(_) => "protocol",
        }
    }
}

/// An error and its sources on one line, for the log (never for a person: it may name
/// internals).
pub fn error_chain(error: &dyn std::error::Error) -> String {
    let mut text = error.to_string();
    let mut source = error.source();
    while let Some(cause) = source {
        text.push_str(": ");
        text.push_str(&cause.to_string());
        source = cause.source();
    }
    text
}

/// A provider that checks a username and password itself (built-in accounts, LDAP).
pub trait PasswordProvider: Send + Sync {
    /// Checks the credentials and returns who they belong to.
    fn verify(
        &self,
        username: &str,
        password: &str,
    ) -> impl Future<Output = Result<Identity, AuthError>> + Send;
}

/// A redirect sign-in that has begun: where to send the browser, and what the gateway keeps
/// until the provider calls back.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Started {
    /// The URL to send the browser to.
    pub location: String,
    /// The value the callback will carry that names this login (OIDC `state`, SAML
    /// `RelayState`): the gateway seals `pending` into a cookie of the browser named after it,
    /// and accepts it back once, from that browser only.
    pub key: String,
    /// The provider's own state for `complete` (nonce, PKCE verifier, request id), opaque to
    /// the gateway.
    pub pending: String,
}

/// What the provider sent back to the callback: query parameters (OIDC) or form fields (SAML).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Callback {
    /// Parameters in the order received.
    pub params: Vec<(String, String)>,
}

impl Callback {
    /// The first value of `name`.
    pub fn get(&self, name: &str) -> Option<&str> {
        self.params.iter().find(|(k, _)| k == name).map(|(_, v)| v.as_str())
    }
}

/// A provider that signs people in by sending the browser elsewhere and back (OIDC, SAML).
pub trait RedirectProvider: Send + Sync {
    /// Starts a sign-in whose callback will arrive at `callback_url`.
    fn begin(&self, callback_url: &str) -> impl Future<Output = Result<Started, AuthError>> + Send;
    /// Finishes a sign-in from the stored `pending` state and what the callback carried.
    fn complete(
        &self,
        pending: &str,
        callback_url: &str,
        callback: &Callback,
    ) -> impl Future<Output = Result<Identity, AuthError>> + Send;
}

pub mod config;
