//! OpenID Provider discovery: `{issuer}/.well-known/openid-configuration`, checked to speak
//! for the configured issuer and to name endpoints deskgate may send secrets to.

use url::Url;

use crate::OidcError;
use crate::http::{Http, MAX_DOCUMENT_BYTES};
use crate::jwks::Jwks;
use crate::jwt::Algorithm;

/// The discovery document, as far as deskgate uses it.
#[derive(Debug, serde::Deserialize)]
struct Document {
    issuer: String,
    authorization_endpoint: String,
    token_endpoint: String,
    jwks_uri: String,
    #[serde(default)]
    end_session_endpoint: Option<String>,
    #[serde(default)]
    revocation_endpoint: Option<String>,
    #[serde(default)]
    token_endpoint_auth_methods_supported: Option<Vec<String>>,
    #[serde(default)]
    code_challenge_methods_supported: Option<Vec<String>>,
    #[serde(default)]
    id_token_signing_alg_values_supported: Option<Vec<String>>,
    #[serde(default)]
    authorization_response_iss_parameter_supported: bool,
}

/// How the client authenticates at the token endpoint.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum ClientAuth {
    /// HTTP Basic with the form-encoded id and secret (the protocol's default).
    Basic,
    /// `client_id` and `client_secret` in the form body.
    Post,
}

/// What discovery found, with the key cache for its `jwks_uri`.
#[derive(Debug)]
pub(crate) struct Discovered {
    pub(crate) authorization_endpoint: Url,
    pub(crate) token_endpoint: Url,
    pub(crate) end_session_endpoint: Option<Url>,
    /// Where refresh tokens are revoked (RFC 7009), when the provider says.
    pub(crate) revocation_endpoint: Option<Url>,
    pub(crate) client_auth: ClientAuth,
    /// The provider promised an `iss` parameter in every authorization response (RFC 9207).
    pub(crate) iss_parameter: bool,
    pub(crate) jwks: Jwks,
}

/// The discovery URL for `issuer`.
pub(crate) fn discovery_url(issuer: &str) -> Result<Url, url::ParseError> {
    let base = issuer.strip_suffix('/').unwrap_or(issuer);
    Url::parse(&format!("{base}/.well-known/openid-configuration"))
}

/// Whether deskgate may send a secret or a person to `url`: https, or plain http to a
/// loopback address (a provider on the same machine, as in tests).
pub(crate) fn is_trusted_endpoint(url: &Url) -> bool {
    match url.scheme() {
        "https" => url.host().is_some(),
        "http" => match url.host() {
            Some(url::Host::Domain(name)) => name.eq_ignore_ascii_case("localhost"),
            Some(url::Host::Ipv4(ip)) => ip.is_loopback(),
            Some(url::Host::Ipv6(ip)) => ip.is_loopback(),
            None => false,
        },
        _ => false,
    }
}

/// Fetches and checks the discovery document of `issuer`.
pub(crate) async fn discover(
    http: &Http,
    issuer: &str,
    allowed: &[Algorithm],
) -> Result<Discovered, OidcError> {
    let url = discovery_url(issuer).map_err(|e| OidcError::Malformed {
        url: issuer.to_owned(),
        detail: format!("the issuer does not make a discovery URL: {e}"),
    })?;
    let body = http.get(&url, MAX_DOCUMENT_BYTES).await?;
    let malformed = |detail: String| OidcError::Malformed { url: url.to_string(), detail };
    let document: Document = serde_json::from_slice(&body).map_err(|e| malformed(e.to_string()))?;
    if document.issuer != issuer {
        return Err(OidcError::IssuerMismatch { expected: issuer.to_owned(), found: document.issuer });
    }
    let endpoint = |name: &str, value: &str| -> Result<Url, OidcError> {
        let parsed = Url::parse(value).map_err(|e| malformed(format!("{name}: {e}")))?;
        if !is_trusted_endpoint(&parsed) || parsed.fragment().is_some() {
            return Err(malformed(format!(
                "{name} `{value}` must be an https URL without a fragment (or http on loopback)"
            )));
        }
        Ok(parsed)
    };
    let authorization_endpoint = endpoint("authorization_endpoint", &document.authorization_endpoint)?;
    let token_endpoint = endpoint("token_endpoint", &document.token_endpoint)?;
    let jwks_uri = endpoint("jwks_uri", &document.jwks_uri)?;
    let end_session_endpoint = document
        .end_session_endpoint
        .as_deref()
        .map(|value| endpoint("end_session_endpoint", value))
        .transpose()?;
    let revocation_endpoint = document
        .revocation_endpoint
        .as_deref()
        .map(|value| endpoint("revocation_endpoint", value))
        .transpose()?;

    let client_auth = match &document.token_endpoint_auth_methods_supported {
        None => ClientAuth::Basic,
        Some(methods) if methods.iter().any(|m| m == "client_secret_basic") => ClientAuth::Basic,
        Some(methods) if methods.iter().any(|m| m == "client_secret_post") => ClientAuth::Post,
        Some(methods) => {
            return Err(malformed(format!(
                "the token endpoint accepts neither client_secret_basic nor client_secret_post \
                 (it lists {methods:?})"
            )));
        }
    };
    if let Some(methods) = &document.code_challenge_methods_supported {
        if !methods.iter().any(|m| m == "S256") {
            tracing::warn!(issuer, "The identity provider does not list PKCE S256; sending it anyway");
        }
    }
    if let Some(algs) = &document.id_token_signing_alg_values_supported {
        if !algs.iter().any(|a| Algorithm::from_name(a).is_some_and(|a| allowed.contains(&a))) {
            tracing::warn!(
                issuer,
                offered = ?algs,
                "The identity provider signs ID tokens with no algorithm in the allow-list"
            );
        }
    }
    Ok(Discovered {
        authorization_endpoint,
        token_endpoint,
        end_session_endpoint,
        revocation_endpoint,
        client_auth,
        iss_parameter: document.authorization_response_iss_parameter_supported,
        jwks: Jwks::new(jwks_uri),
    })
}
