//! ID token checks: the compact JWS form, the signature algorithm allow-list and the claims
//! that bind a token to this client, this sign-in and this moment. Pure functions over data;
//! fetching the keys is [`crate::jwks`]'s business.

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use serde_json::{Map, Value};

/// The largest ID token accepted. Google's are about 1 KiB; a long groups claim can make
/// them much larger, but not this large.
pub(crate) const MAX_TOKEN_BYTES: usize = 64 * 1024;

/// A signature algorithm deskgate can verify. There is deliberately no `none` and no HMAC:
/// an ID token is only accepted with a signature by one of the provider's public keys.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Algorithm {
    /// RSASSA-PKCS1-v1_5 with SHA-256.
    Rs256,
    /// RSASSA-PKCS1-v1_5 with SHA-384.
    Rs384,
    /// RSASSA-PKCS1-v1_5 with SHA-512.
    Rs512,
    /// RSASSA-PSS with SHA-256.
    Ps256,
    /// RSASSA-PSS with SHA-384.
    Ps384,
    /// RSASSA-PSS with SHA-512.
    Ps512,
    /// ECDSA on P-256 with SHA-256.
    Es256,
    /// ECDSA on P-384 with SHA-384.
    Es384,
    /// EdDSA (only the Ed25519 curve is accepted).
    EdDsa,
    /// Ed25519, the fully specified name for the same (RFC 9864).
    Ed25519,
}

impl Algorithm {
    /// Every algorithm deskgate can verify.
    pub const ALL: [Algorithm; 10] = [
        Algorithm::Rs256,
        Algorithm::Rs384,
        Algorithm::Rs512,
        Algorithm::Ps256,
        Algorithm::Ps384,
        Algorithm::Ps512,
        Algorithm::Es256,
        Algorithm::Es384,
        Algorithm::EdDsa,
        Algorithm::Ed25519,
    ];

    /// The allow-list used when the configuration names none.
    pub const DEFAULT: [Algorithm; 3] = [Algorithm::Rs256, Algorithm::Es256, Algorithm::EdDsa];

    /// The JOSE name, e.g. `RS256`.
    pub fn name(self) -> &'static str {
        match self {
            Algorithm::Rs256 => "RS256",
            Algorithm::Rs384 => "RS384",
            Algorithm::Rs512 => "RS512",
            Algorithm::Ps256 => "PS256",
            Algorithm::Ps384 => "PS384",
            Algorithm::Ps512 => "PS512",
            Algorithm::Es256 => "ES256",
            Algorithm::Es384 => "ES384",
            Algorithm::EdDsa => "EdDSA",
            Algorithm::Ed25519 => "Ed25519",
        }
    }

    /// The algorithm with this exact JOSE name (names are case-sensitive).
    pub fn from_name(name: &str) -> Option<Algorithm> {
        Algorithm::ALL.into_iter().find(|a| a.name() == name)
    }
}

/// Why an ID token was not accepted.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum IdTokenError {
    /// Not a compact JWS with a JSON header and payload.
    #[error("malformed token: {0}")]
    Malformed(&'static str),
    /// The header names an algorithm outside the allow-list (`none` and HMAC always are).
    #[error("signature algorithm `{0}` is not accepted")]
    AlgorithmNotAllowed(String),
    /// The header marks extensions as critical, and deskgate understands none.
    #[error("the header lists critical extensions")]
    CriticalHeader,
    /// No key of the provider fits the token's `kid` and algorithm, even after refetching.
    #[error("no key of the provider matches the token's key id and algorithm")]
    UnknownKey,
    /// A key fits but the signature does not verify.
    #[error("the signature does not verify")]
    BadSignature,
    /// A required claim is missing or has the wrong type.
    #[error("claim `{0}` is missing or malformed")]
    MissingClaim(&'static str),
    /// `iss` is not the configured issuer.
    #[error("issued by another issuer")]
    WrongIssuer,
    /// `aud` does not contain the client id.
    #[error("issued for another audience")]
    WrongAudience,
    /// `azp` names another client, or is missing while there are several audiences.
    #[error("the authorized party is not this client")]
    WrongAuthorizedParty,
    /// `exp` is in the past, beyond the allowed skew.
    #[error("expired")]
    Expired,
    /// `iat` is in the future, beyond the allowed skew.
    #[error("issued in the future")]
    IssuedInFuture,
    /// `nbf` is in the future, beyond the allowed skew.
    #[error("not valid yet")]
    NotYetValid,
    /// `nonce` is not the one this sign-in sent.
    #[error("the nonce does not match this sign-in")]
    NonceMismatch,
}

/// A compact JWS taken apart, its signature not yet checked.
#[derive(Debug)]
pub(crate) struct Jws<'a> {
    pub(crate) alg: Algorithm,
    pub(crate) kid: Option<String>,
    /// `header.payload` as sent: the bytes the signature covers.
    pub(crate) signing_input: &'a [u8],
    pub(crate) signature: Vec<u8>,
    pub(crate) claims: Map<String, Value>,
}

/// Splits and decodes `token`, refusing any algorithm outside `allowed` before anything
/// else is looked at, so that `none` or HMAC never reach key selection.
pub(crate) fn parse<'a>(token: &'a str, allowed: &[Algorithm]) -> Result<Jws<'a>, IdTokenError> {
    if token.len() > MAX_TOKEN_BYTES {
        return Err(IdTokenError::Malformed("too large"));
    }
    let mut parts = token.split('.');
    let (Some(header), Some(payload), Some(signature), None) =
        (parts.next(), parts.next(), parts.next(), parts.next())
    else {
        return Err(IdTokenError::Malformed("not three dot-separated parts"));
    };
    let header: Map<String, Value> =
        decode_json(header, "header is not base64url", "header is not a JSON object")?;
    let alg = match header.get("alg") {
        Some(Value::String(name)) => name,
        _ => return Err(IdTokenError::Malformed("header has no `alg`")),
    };
    let Some(alg) = Algorithm::from_name(alg).filter(|a| allowed.contains(a)) else {
        return Err(IdTokenError::AlgorithmNotAllowed(alg.chars().take(32).collect()));
    };
    if header.contains_key("crit") {
        return Err(IdTokenError::CriticalHeader);
    }
    let kid = match header.get("kid") {
        None => None,
        Some(Value::String(kid)) => Some(kid.clone()),
        Some(_) => return Err(IdTokenError::Malformed("`kid` is not a string")),
    };
    let claims: Map<String, Value> =
        decode_json(payload, "payload is not base64url", "payload is not a JSON object")?;
    let signature = URL_SAFE_NO_PAD
        .decode(signature)
        .map_err(|_| IdTokenError::Malformed("signature is not base64url"))?;
    let signing_input = &token.as_bytes()[..header_len(token)];
    Ok(Jws { alg, kid, signing_input, signature, claims })
}

/// The `iss` a compact JWS claims, read without checking anything: only to choose which
/// provider is to verify it. `None` for anything that is not a JWS with a string `iss`.
pub fn unverified_issuer(token: &str) -> Option<String> {
    if token.len() > MAX_TOKEN_BYTES {
        return None;
    }
    let mut parts = token.split('.');
    let (Some(_), Some(payload), Some(_), None) = (parts.next(), parts.next(), parts.next(), parts.next())
    else {
        return None;
    };
    let claims = decode_json(payload, "", "").ok()?;
    match claims.get("iss") {
        Some(Value::String(iss)) => Some(iss.clone()),
        _ => None,
    }
}

/// Length of `header.payload` in a token already known to have three parts.
fn header_len(token: &str) -> usize {
    token.rfind('.').unwrap_or(token.len())
}

fn decode_json(
    part: &str,
    not_base64: &'static str,
    not_object: &'static str,
) -> Result<Map<String, Value>, IdTokenError> {
    let bytes = URL_SAFE_NO_PAD.decode(part).map_err(|_| IdTokenError::Malformed(not_base64))?;
    serde_json::from_slice(&bytes).map_err(|_| IdTokenError::Malformed(not_object))
}

/// Whom a token must be for.
#[derive(Debug, Clone, Copy)]
pub(crate) enum Audience<'a> {
    /// An ID token for this client: `aud` holds the client id, and `azp` (required when
    /// there are several audiences) names it.
    Client(&'a str),
    /// A bearer token: `aud` holds one of these; when it lists several audiences, `azp`
    /// must be present and one of these too.
    AnyOf(&'a [String]),
}

impl Audience<'_> {
    fn accepts(&self, aud: &str) -> bool {
        match self {
            Audience::Client(id) => *id == aud,
            Audience::AnyOf(list) => list.iter().any(|a| a == aud),
        }
    }
}

/// What a token must say to be for this client and this sign-in.
#[derive(Debug)]
pub(crate) struct Expected<'a> {
    /// Accepted `iss` values: the configured issuer, plus Google's scheme-less spelling.
    pub(crate) issuers: &'a [String],
    pub(crate) audience: Audience<'a>,
    /// The sign-in's nonce; `None` for a token from a refresh, which came straight from the
    /// token endpoint to this client and is not tied to a browser's sign-in.
    pub(crate) nonce: Option<&'a str>,
    pub(crate) skew: Duration,
}

/// Checks the claims that bind a verified token to the issuer, this client, this sign-in
/// and `now`.
pub(crate) fn check_claims(
    claims: &Map<String, Value>,
    expected: &Expected<'_>,
    now: SystemTime,
) -> Result<(), IdTokenError> {
    match claims.get("iss") {
        Some(Value::String(iss)) if expected.issuers.iter().any(|i| i == iss) => {}
        Some(Value::String(_)) => return Err(IdTokenError::WrongIssuer),
        _ => return Err(IdTokenError::MissingClaim("iss")),
    }
    match claims.get("sub") {
        Some(Value::String(sub)) if !sub.is_empty() && sub.len() <= 255 => {}
        _ => return Err(IdTokenError::MissingClaim("sub")),
    }

    let audiences: Vec<&str> = match claims.get("aud") {
        Some(Value::String(aud)) => vec![aud.as_str()],
        Some(Value::Array(list)) => {
            let strings: Option<Vec<&str>> = list.iter().map(Value::as_str).collect();
            strings.ok_or(IdTokenError::MissingClaim("aud"))?
        }
        _ => return Err(IdTokenError::MissingClaim("aud")),
    };
    if !audiences.iter().any(|a| expected.audience.accepts(a)) {
        return Err(IdTokenError::WrongAudience);
    }
    // A bearer token for one audience may name any client as its authorized party: the
    // audience is what it was issued for.
    let check_azp = matches!(expected.audience, Audience::Client(_)) || audiences.len() > 1;
    match claims.get("azp") {
        _ if !check_azp => {}
        Some(Value::String(azp)) if expected.audience.accepts(azp) => {}
        Some(Value::String(_)) => return Err(IdTokenError::WrongAuthorizedParty),
        Some(_) => return Err(IdTokenError::MissingClaim("azp")),
        None if audiences.len() > 1 => return Err(IdTokenError::WrongAuthorizedParty),
        None => {}
    }

    let now = seconds(now);
    let skew = expected.skew.as_secs_f64();
    let exp = time_claim(claims, "exp")?.ok_or(IdTokenError::MissingClaim("exp"))?;
    if now >= exp + skew {
        return Err(IdTokenError::Expired);
    }
    let iat = time_claim(claims, "iat")?.ok_or(IdTokenError::MissingClaim("iat"))?;
    if iat > now + skew {
        return Err(IdTokenError::IssuedInFuture);
    }
    if let Some(nbf) = time_claim(claims, "nbf")? {
        if nbf > now + skew {
            return Err(IdTokenError::NotYetValid);
        }
    }

    let Some(expected_nonce) = expected.nonce else { return Ok(()) };
    match claims.get("nonce") {
        Some(Value::String(nonce)) if constant_time_eq(nonce, expected_nonce) => Ok(()),
        Some(Value::String(_)) => Err(IdTokenError::NonceMismatch),
        _ => Err(IdTokenError::MissingClaim("nonce")),
    }
}

/// A NumericDate claim: seconds since the epoch, possibly fractional.
fn time_claim(claims: &Map<String, Value>, name: &'static str) -> Result<Option<f64>, IdTokenError> {
    match claims.get(name) {
        None => Ok(None),
        Some(value) => {
            value.as_f64().filter(|v| v.is_finite()).map(Some).ok_or(IdTokenError::MissingClaim(name))
        }
    }
}

fn seconds(time: SystemTime) -> f64 {
    match time.duration_since(UNIX_EPOCH) {
        Ok(d) => d.as_secs_f64(),
        Err(before) => -before.duration().as_secs_f64(),
    }
}

/// Compares without an early exit, so that timing says nothing about where values differ.
pub(crate) fn constant_time_eq(a: &str, b: &str) -> bool {
    let (a, b) = (a.as_bytes(), b.as_bytes());
    if a.len() != b.len() {
        return false;
    }
    a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

#[cfg(test)]
mod tests;
