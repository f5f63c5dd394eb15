//! Verifying the JWT deskgate attaches to every signed-in request.
//!
//! Only what deskgate issues is accepted: a compact JWS signed with EdDSA (Ed25519) by a key
//! in deskgate's JWKS, not expired, and for the configured issuer and audience.

mod jwks;
#[cfg(test)]
mod tests;

use std::sync::Arc;

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use ed25519_dalek::Signature;
use serde::Deserialize;
use serde::de::DeserializeOwned;
use serde_json::Value;

use crate::Settings;
use crate::clock::Clock;
use jwks::JwksCache;

/// How far `exp`, `nbf` and `iat` may be off, to absorb clock skew between the two machines.
const LEEWAY_SECONDS: i64 = 30;

/// Why a token was not accepted. Displayed text never contains the token itself.
#[derive(Debug, thiserror::Error)]
pub(crate) enum TokenError {
    #[error("the token is not a well-formed compact JWS")]
    Malformed,
    #[error("the token's algorithm is not EdDSA")]
    UnsupportedAlgorithm,
    #[error("the token names critical header parameters this portal does not understand")]
    CriticalHeader,
    #[error("the token header has no key id")]
    MissingKeyId,
    #[error("no key in the JWKS has the token's key id")]
    UnknownKey,
    #[error("the JWKS could not be fetched")]
    KeysUnavailable,
    #[error("the token's signature does not verify")]
    BadSignature,
    #[error("the token has expired")]
    Expired,
    #[error("the token is not valid yet")]
    NotYetValid,
    #[error("the token was issued in the future")]
    IssuedInFuture,
    #[error("the token's issuer is not the configured one")]
    WrongIssuer,
    #[error("the token's audience does not include the configured one")]
    WrongAudience,
}

impl TokenError {
    /// A short stable code, shown to the visitor and used by tests.
    pub(crate) fn code(&self) -> &'static str {
        match self {
            Self::Malformed => "token-malformed",
            Self::UnsupportedAlgorithm => "token-algorithm-unsupported",
            Self::CriticalHeader => "token-critical-header",
            Self::MissingKeyId => "token-key-id-missing",
            Self::UnknownKey => "token-key-unknown",
            Self::KeysUnavailable => "jwks-unavailable",
            Self::BadSignature => "token-signature-invalid",
            Self::Expired => "token-expired",
            Self::NotYetValid => "token-not-yet-valid",
            Self::IssuedInFuture => "token-issued-in-future",
            Self::WrongIssuer => "token-issuer-mismatch",
            Self::WrongAudience => "token-audience-mismatch",
        }
    }
}

/// The claims deskgate puts in its token.
#[derive(Debug, Clone, Deserialize)]
pub(crate) struct Claims {
    pub(crate) sub: String,
    pub(crate) exp: i64,
    pub(crate) iss: Option<String>,
    pub(crate) aud: Option<Audience>,
    pub(crate) iat: Option<i64>,
    pub(crate) nbf: Option<i64>,
    pub(crate) email: Option<String>,
    /// Whether deskgate verified `email`; an unverified address proves nothing.
    pub(crate) email_verified: Option<bool>,
    pub(crate) name: Option<String>,
    pub(crate) provider: Option<String>,
    #[serde(default)]
    pub(crate) usergroups: Vec<String>,
    #[serde(default)]
    pub(crate) permissions: Vec<String>,
}

/// `aud` is either one string or a list of them (RFC 7519, section 4.1.3).
#[derive(Debug, Clone, Deserialize)]
#[serde(untagged)]
pub(crate) enum Audience {
    One(String),
    Many(Vec<String>),
}

impl Audience {
    fn contains(&self, wanted: &str) -> bool {
        match self {
            Self::One(one) => one == wanted,
            Self::Many(many) => many.iter().any(|aud| aud == wanted),
        }
    }
}

/// A token that passed every check: its typed claims, and the claims object as sent.
#[derive(Debug, Clone)]
pub(crate) struct Verified {
    pub(crate) claims: Claims,
    pub(crate) raw: Value,
}

#[derive(Deserialize)]
struct Header {
    alg: String,
    kid: Option<String>,
    crit: Option<Value>,
}

/// Checks tokens against deskgate's keys and the configured issuer and audience.
pub(crate) struct Verifier {
    keys: JwksCache,
    issuer: Option<String>,
    audience: Option<String>,
    clock: Arc<dyn Clock>,
}

impl Verifier {
    pub(crate) fn new(settings: Settings, clock: Arc<dyn Clock>) -> Self {
        Self {
            keys: JwksCache::new(settings.jwks_url, Arc::clone(&clock)),
            issuer: settings.issuer,
            audience: settings.audience,
            clock,
        }
    }

    /// Verifies a compact JWS and returns its claims.
    pub(crate) async fn verify(&self, token: &str) -> Result<Verified, TokenError> {
        let (signing_input, signature) = token.rsplit_once('.').ok_or(TokenError::Malformed)?;
        let (header, payload) = signing_input.split_once('.').ok_or(TokenError::Malformed)?;
        if payload.contains('.') {
            return Err(TokenError::Malformed);
        }

        // The algorithm is decided here, never by the token: anything but EdDSA (`none`
        // above all) is refused before a key is even looked up.
        let header: Header = decode_json(header)?;
        if header.alg != "EdDSA" {
            return Err(TokenError::UnsupportedAlgorithm);
        }
        if header.crit.is_some() {
            return Err(TokenError::CriticalHeader);
        }
        let kid = header.kid.ok_or(TokenError::MissingKeyId)?;

        let signature = URL_SAFE_NO_PAD.decode(signature).map_err(|_| TokenError::Malformed)?;
        let signature = Signature::from_slice(&signature).map_err(|_| TokenError::Malformed)?;
        let key = self.keys.key(&kid).await?;
        key.verify_strict(signing_input.as_bytes(), &signature).map_err(|_| TokenError::BadSignature)?;

        let raw: Value = decode_json(payload)?;
        let claims: Claims = serde_json::from_value(raw.clone()).map_err(|_| TokenError::Malformed)?;
        self.check_claims(&claims)?;
        Ok(Verified { claims, raw })
    }

    fn check_claims(&self, claims: &Claims) -> Result<(), TokenError> {
        let now = self.clock.unix_seconds();
        if now > claims.exp.saturating_add(LEEWAY_SECONDS) {
            return Err(TokenError::Expired);
        }
        if claims.nbf.is_some_and(|nbf| nbf > now.saturating_add(LEEWAY_SECONDS)) {
            return Err(TokenError::NotYetValid);
        }
        if claims.iat.is_some_and(|iat| iat > now.saturating_add(LEEWAY_SECONDS)) {
            return Err(TokenError::IssuedInFuture);
        }
        let issuer_ok = match &self.issuer {
            None => true,
            Some(wanted) => claims.iss.as_deref().is_some_and(|iss| same_url(iss, wanted)),
        };
        if !issuer_ok {
            return Err(TokenError::WrongIssuer);
        }
        let audience_ok = match &self.audience {
            None => true,
            Some(wanted) => claims.aud.as_ref().is_some_and(|aud| aud.contains(wanted)),
        };
        if !audience_ok {
            return Err(TokenError::WrongAudience);
        }
        Ok(())
    }
}

/// Compares issuer URLs ignoring one trailing slash, the usual way a public URL is written two ways.
fn same_url(left: &str, right: &str) -> bool {
    left.strip_suffix('/').unwrap_or(left) == right.strip_suffix('/').unwrap_or(right)
}

fn decode_json<T: DeserializeOwned>(part: &str) -> Result<T, TokenError> {
    let bytes = URL_SAFE_NO_PAD.decode(part).map_err(|_| TokenError::Malformed)?;
    serde_json::from_slice(&bytes).map_err(|_| TokenError::Malformed)
}
