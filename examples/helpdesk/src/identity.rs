//! Who is asking: the visitor as deskgate describes them, believed only as far as it is proven.
//!
//! A guest is described by plain headers alone (deskgate sends no token for guests). A
//! signed-in person must come with a JWT that verifies and whose claims equal the plain
//! headers; otherwise the request is served as a guest with no permissions, and a warning.

use std::collections::BTreeSet;
use std::convert::Infallible;

use axum::extract::FromRequestParts;
use axum::http::HeaderMap;
use axum::http::request::Parts;
use serde_json::Value;

use crate::AppState;
use crate::error::PageError;
use crate::jwt::{TokenError, Verified};

/// The text every unverified visitor sees; tests and admins search for it.
pub(crate) const UNVERIFIED_WARNING: &str = "identity could not be verified";

/// The lowercased names of the identity headers, built from the configured prefix.
pub(crate) struct HeaderNames {
    user: String,
    email: String,
    email_verified: String,
    name: String,
    provider: String,
    usergroups: String,
    permissions: String,
    jwt: String,
}

impl HeaderNames {
    pub(crate) fn new(prefix: &str) -> Self {
        let name = |suffix: &str| format!("{prefix}{suffix}").to_ascii_lowercase();
        Self {
            user: name("User"),
            email: name("Email"),
            email_verified: name("Email-Verified"),
            name: name("Name"),
            provider: name("Provider"),
            usergroups: name("Usergroups"),
            permissions: name("Permissions"),
            jwt: name("Jwt"),
        }
    }
}

/// Why a claimed signed-in identity was not believed.
#[derive(Debug, thiserror::Error)]
pub(crate) enum Unverified {
    #[error("identity headers came without a token")]
    MissingToken,
    #[error("identity header {0} is repeated or not plain text")]
    MalformedHeader(String),
    #[error("identity header {0} does not match the token")]
    HeaderMismatch(String),
    #[error(transparent)]
    Token(#[from] TokenError),
}

impl Unverified {
    fn code(&self) -> &'static str {
        match self {
            Self::MissingToken => "token-missing",
            Self::MalformedHeader(_) => "header-malformed",
            Self::HeaderMismatch(_) => "header-mismatch",
            Self::Token(error) => error.code(),
        }
    }
}

/// The visitor of one request.
#[derive(Debug, Clone)]
pub(crate) struct Person {
    /// The verified token, for signed-in people only.
    pub(crate) verified: Option<Verified>,
    pub(crate) usergroups: Vec<String>,
    pub(crate) permissions: BTreeSet<String>,
    /// Set when the request claimed a signed-in identity that could not be verified.
    pub(crate) warning: Option<String>,
}

impl Person {
    pub(crate) fn is_guest(&self) -> bool {
        self.verified.is_none()
    }

    pub(crate) fn may(&self, permission: &str) -> bool {
        self.permissions.contains(permission)
    }

    /// Refuses with 403 unless the visitor holds `permission`.
    pub(crate) fn require(&self, permission: &'static str) -> Result<(), PageError> {
        if self.may(permission) { Ok(()) } else { Err(PageError::Forbidden(permission)) }
    }

    pub(crate) fn user(&self) -> Option<&str> {
        self.verified.as_ref().map(|v| v.claims.sub.as_str())
    }

    pub(crate) fn email(&self) -> Option<&str> {
        self.verified.as_ref()?.claims.email.as_deref()
    }

    /// Whether deskgate verified the email address (`None`: the token does not say).
    pub(crate) fn email_verified(&self) -> Option<bool> {
        self.verified.as_ref()?.claims.email_verified
    }

    pub(crate) fn name(&self) -> Option<&str> {
        self.verified.as_ref()?.claims.name.as_deref()
    }

    pub(crate) fn provider(&self) -> Option<&str> {
        self.verified.as_ref()?.claims.provider.as_deref()
    }

    fn guest(usergroups: Vec<String>, permissions: Vec<String>) -> Self {
        Self { verified: None, usergroups, permissions: permissions.into_iter().collect(), warning: None }
    }

    fn signed_in(verified: Verified) -> Self {
        Self {
            usergroups: dedup(verified.claims.usergroups.clone()),
            permissions: verified.claims.permissions.iter().cloned().collect(),
            verified: Some(verified),
            warning: None,
        }
    }

    // The permissions header of an unverifiable request belongs to whoever it claims to be,
    // so none of it is granted.
    fn unverified(reason: &Unverified) -> Self {
        Self {
            verified: None,
            usergroups: Vec::new(),
            permissions: BTreeSet::new(),
            warning: Some(format!("{UNVERIFIED_WARNING} ({})", reason.code())),
        }
    }
}

impl FromRequestParts<AppState> for Person {
    type Rejection = Infallible;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, Infallible> {
        Ok(resolve(state, &parts.headers).await)
    }
}

/// Works out who sent `headers`.
pub(crate) async fn resolve(state: &AppState, headers: &HeaderMap) -> Person {
    let names = state.headers();
    let user_headers = [&names.user, &names.email, &names.name, &names.provider];
    // An empty header claims nothing: a gateway beside a proxy sends every identity header,
    // empty for a guest, so that the proxy never keeps a client's own value.
    let claims = |name: &str| headers.get_all(name).iter().any(|v| !v.is_empty());
    let claims_identity = claims(names.jwt.as_str()) || user_headers.iter().any(|name| claims(name.as_str()));
    if !claims_identity {
        let usergroups = list(headers, &names.usergroups).unwrap_or_else(|error| {
            tracing::warn!(%error, "Ignoring a malformed usergroups header");
            Vec::new()
        });
        let permissions = list(headers, &names.permissions).unwrap_or_else(|error| {
            tracing::warn!(%error, "Ignoring a malformed permissions header");
            Vec::new()
        });
        return Person::guest(usergroups, permissions);
    }
    match verify(state, headers).await {
        Ok(verified) => Person::signed_in(verified),
        Err(reason) => {
            tracing::warn!(%reason, code = reason.code(), "Serving a claimed identity as a guest");
            Person::unverified(&reason)
        }
    }
}

async fn verify(state: &AppState, headers: &HeaderMap) -> Result<Verified, Unverified> {
    let names = state.headers();
    let token = single(headers, &names.jwt)?.ok_or(Unverified::MissingToken)?;
    let verified = state.verifier().verify(token).await?;
    let claims = &verified.claims;

    let mismatch = |name: &String| Unverified::HeaderMismatch(name.clone());
    if single(headers, &names.user)? != Some(claims.sub.as_str()) {
        return Err(mismatch(&names.user));
    }
    if single(headers, &names.email)?.filter(|v| !v.is_empty()) != non_empty(&claims.email) {
        return Err(mismatch(&names.email));
    }
    // The header is always set for a signed-in person and says what the claim says.
    let said = if claims.email_verified == Some(true) { "true" } else { "false" };
    if single(headers, &names.email_verified)?.is_some_and(|v| v != said) {
        return Err(mismatch(&names.email_verified));
    }
    if single(headers, &names.provider)?.filter(|v| !v.is_empty()) != non_empty(&claims.provider) {
        return Err(mismatch(&names.provider));
    }
    let name = single(headers, &names.name)?.filter(|v| !v.is_empty());
    if !same_name(name, non_empty(&claims.name)) {
        return Err(mismatch(&names.name));
    }
    if !same_set(&list(headers, &names.usergroups)?, &claims.usergroups) {
        return Err(mismatch(&names.usergroups));
    }
    if !same_set(&list(headers, &names.permissions)?, &claims.permissions) {
        return Err(mismatch(&names.permissions));
    }
    Ok(verified)
}

fn non_empty(claim: &Option<String>) -> Option<&str> {
    claim.as_deref().filter(|v| !v.is_empty())
}

/// The one value of header `name`. A repeated identity header is refused rather than
/// guessed at: two values mean someone other than deskgate added one.
fn single<'h>(headers: &'h HeaderMap, name: &str) -> Result<Option<&'h str>, Unverified> {
    let mut values = headers.get_all(name).iter();
    let Some(value) = values.next() else {
        return Ok(None);
    };
    if values.next().is_some() {
        return Err(Unverified::MalformedHeader(name.to_owned()));
    }
    let text = value.to_str().map_err(|_| Unverified::MalformedHeader(name.to_owned()))?;
    Ok(Some(text))
}

/// A comma-separated list header, without empty items or repeats.
fn list(headers: &HeaderMap, name: &str) -> Result<Vec<String>, Unverified> {
    let items = single(headers, name)?
        .unwrap_or_default()
        .split(',')
        .map(str::trim)
        .filter(|item| !item.is_empty())
        .map(str::to_owned)
        .collect();
    Ok(dedup(items))
}

fn dedup(items: Vec<String>) -> Vec<String> {
    let mut seen = BTreeSet::new();
    items.into_iter().filter(|item| seen.insert(item.clone())).collect()
}

fn same_set(left: &[String], right: &[String]) -> bool {
    left.iter().collect::<BTreeSet<_>>() == right.iter().collect::<BTreeSet<_>>()
}

/// deskgate percent-encodes a name that is not plain visible ASCII, and sends a plain one
/// as it is; a plain name may itself contain `%`, so both readings are tried.
fn same_name(header: Option<&str>, claim: Option<&str>) -> bool {
    match (header, claim) {
        (None, None) => true,
        (Some(header), Some(claim)) => header == claim || percent_decode(header).as_deref() == Some(claim),
        _ => false,
    }
}

/// Decodes `%XX` escapes as UTF-8; `None` when an escape is broken or the bytes are not UTF-8.
pub(crate) fn percent_decode(encoded: &str) -> Option<String> {
    let bytes = encoded.as_bytes();
    let mut decoded = Vec::with_capacity(bytes.len());
    let mut index = 0;
    while let Some(&byte) = bytes.get(index) {
        if byte == b'%' {
            let high = hex_digit(*bytes.get(index + 1)?)?;
            let low = hex_digit(*bytes.get(index + 2)?)?;
            decoded.push(high << 4 | low);
            index += 3;
        } else {
            decoded.push(byte);
            index += 1;
        }
    }
    String::from_utf8(decoded).ok()
}

fn hex_digit(byte: u8) -> Option<u8> {
    match byte {
        b'0'..=b'9' => Some(byte - b'0'),
        b'a'..=b'f' => Some(byte - b'a' + 10),
        b'A'..=b'F' => Some(byte - b'A' + 10),
        _ => None,
    }
}

/// The claims object of a verified visitor, for `/whoami`.
pub(crate) fn raw_claims(person: &Person) -> Value {
    person.verified.as_ref().map_or(Value::Null, |verified| verified.raw.clone())
}

#[cfg(test)]
mod tests {
    use super::{percent_decode, same_name};

    #[test]
    fn percent_decoding_reads_utf8_names() {
        assert_eq!(percent_decode("Zo%C3%AB%20M%C3%BCller").as_deref(), Some("Zoë Müller"));
        assert_eq!(percent_decode("plain").as_deref(), Some("plain"));
        assert_eq!(percent_decode("broken%2"), None);
        assert_eq!(percent_decode("bad%zz"), None);
        assert_eq!(percent_decode("%FF"), None);
    }

    #[test]
    fn a_name_matches_encoded_or_plain() {
        assert!(same_name(Some("Zo%C3%AB"), Some("Zoë")));
        assert!(same_name(Some("100% sure"), Some("100% sure")));
        assert!(same_name(None, None));
        assert!(!same_name(Some("Mallory"), Some("Zoë")));
        assert!(!same_name(None, Some("Zoë")));
    }
}
