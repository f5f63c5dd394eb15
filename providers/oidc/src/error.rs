//! Why the identity provider could not be used. People are told "unavailable"; these go to
//! the log as the source of [`deskgate_provider::AuthError::Unavailable`].

use deskgate_provider::AuthError;

use crate::jwt::IdTokenError;

/// A failure talking to the identity provider, as opposed to an answer about the person.
#[derive(Debug, thiserror::Error)]
pub enum OidcError {
    /// The request did not get an answer (connection, TLS or timeout).
    #[error("request to {url} failed")]
    Request {
        /// The URL asked.
        url: String,
        /// What went wrong.
        #[source]
        source: reqwest::Error,
    },
    /// The provider answered with an unexpected HTTP status.
    #[error("{url} answered with HTTP status {status}")]
    Status {
        /// The URL asked.
        url: String,
        /// The status code.
        status: u16,
    },
    /// The answer was larger than any sane document of its kind.
    #[error("{url} sent more than {limit} bytes")]
    TooLarge {
        /// The URL asked.
        url: String,
        /// The limit in bytes.
        limit: usize,
    },
    /// The answer could not be understood.
    #[error("{url} sent a document that cannot be used: {detail}")]
    Malformed {
        /// The URL asked.
        url: String,
        /// What was wrong with it.
        detail: String,
    },
    /// The discovery document speaks for another issuer than the configured one.
    #[error("the discovery document names issuer `{found}`, but `{expected}` is configured")]
    IssuerMismatch {
        /// The configured issuer.
        expected: String,
        /// The issuer the document names.
        found: String,
    },
    /// The token endpoint refused the client itself (wrong id or secret): a configuration
    /// problem, not the person's.
    #[error("the token endpoint refused the client: {error}")]
    ClientRefused {
        /// The OAuth error code.
        error: String,
    },
    /// The provider reported a failure of its own in the callback.
    #[error("the identity provider reported `{error}` in the callback")]
    ProviderFailed {
        /// The OAuth error code.
        error: String,
    },
    /// The operating system's random number generator failed.
    #[error("the system random number generator failed")]
    Random,
}

impl From<OidcError> for AuthError {
    fn from(error: OidcError) -> Self {
        AuthError::Unavailable(Box::new(error))
    }
}

/// Why [`Oidc::verify_id_token`](crate::Oidc::verify_id_token) did not accept a token.
#[derive(Debug, thiserror::Error)]
pub enum VerifyError {
    /// The token failed a check.
    #[error(transparent)]
    Refused(#[from] IdTokenError),
    /// The provider's metadata or keys could not be fetched.
    #[error(transparent)]
    Unavailable(#[from] OidcError),
}

impl From<VerifyError> for AuthError {
    fn from(error: VerifyError) -> Self {
        match error {
            VerifyError::Refused(e) => AuthError::Protocol(format!("ID token refused: {e}")),
            VerifyError::Unavailable(e) => e.into(),
        }
    }
}

pub(crate) use deskgate_provider::error_chain as chain;
