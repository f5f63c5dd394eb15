//! The two halves of a sign-in: the authorization request, and the callback with its code
//! exchange.

use base64::Engine;
use base64::engine::general_purpose::{STANDARD, URL_SAFE_NO_PAD};
use deskgate_provider::{AuthError, Callback, Identity, Started};
use ring::rand::{SecureRandom, SystemRandom};
use url::Url;

use crate::discovery::{ClientAuth, Discovered};
use crate::http::MAX_DOCUMENT_BYTES;
use crate::jwt::constant_time_eq;
use crate::{Oidc, OidcError, identity};

/// What `begin` leaves for `complete`, kept by the gateway (sealed in the browser) under the `state`.
#[derive(Debug, serde::Serialize, serde::Deserialize)]
struct Pending {
    /// Format version, so a change of this struct refuses old entries cleanly.
    v: u8,
    state: String,
    nonce: String,
    verifier: String,
    redirect_uri: String,
}

const PENDING_VERSION: u8 = 1;

/// 256 bits from the OS, base64url: fit for `state`, `nonce` and a PKCE verifier (43
/// characters, all unreserved).
fn random_token(rng: &SystemRandom) -> Result<String, OidcError> {
    let mut bytes = [0u8; 32];
    rng.fill(&mut bytes).map_err(|_| OidcError::Random)?;
    Ok(URL_SAFE_NO_PAD.encode(bytes))
}

/// The PKCE S256 challenge for `verifier`.
fn challenge(verifier: &str) -> String {
    URL_SAFE_NO_PAD.encode(ring::digest::digest(&ring::digest::SHA256, verifier.as_bytes()))
}

pub(crate) async fn begin(oidc: &Oidc, callback_url: &str) -> Result<Started, AuthError> {
    check_callback_url(callback_url)?;
    let settings = &oidc.inner.settings;
    let discovered = oidc.discovered().await?;
    let rng = SystemRandom::new();
    let state = random_token(&rng)?;
    let nonce = random_token(&rng)?;
    let verifier = random_token(&rng)?;

    let mut location = discovered.authorization_endpoint.clone();
    {
        let mut query = location.query_pairs_mut();
        query
            .append_pair("response_type", "code")
            .append_pair("client_id", &settings.client_id)
            .append_pair("redirect_uri", callback_url)
            .append_pair("scope", &settings.scope)
            .append_pair("state", &state)
            .append_pair("nonce", &nonce)
            .append_pair("code_challenge", &challenge(&verifier))
            .append_pair("code_challenge_method", "S256");
        if let Some(hd) = &settings.hd_hint {
            query.append_pair("hd", hd);
        }
        if settings.refresh_groups {
            // A refresh token is only issued with consent asked for (OpenID Connect Core
            // 11); Google asks for it with access_type instead of the offline_access scope.
            query.append_pair("prompt", "consent");
            if settings.google {
                query.append_pair("access_type", "offline");
            }
        }
    }
    let pending = Pending {
        v: PENDING_VERSION,
        state: state.clone(),
        nonce,
        verifier,
        redirect_uri: callback_url.to_owned(),
    };
    let pending = serde_json::to_string(&pending)
        .map_err(|e| AuthError::Protocol(format!("cannot encode the pending sign-in: {e}")))?;
    Ok(Started { location: location.into(), key: state, pending })
}

fn check_callback_url(callback_url: &str) -> Result<(), AuthError> {
    match Url::parse(callback_url) {
        Ok(url) if matches!(url.scheme(), "http" | "https") && url.fragment().is_none() => Ok(()),
        _ => Err(AuthError::Protocol(format!(
            "the callback URL `{callback_url}` is not an absolute http(s) URL without a fragment"
        ))),
    }
}

pub(crate) async fn complete(
    oidc: &Oidc,
    pending: &str,
    callback_url: &str,
    callback: &Callback,
) -> Result<(Identity, Option<String>), AuthError> {
    let settings = &oidc.inner.settings;
    let pending: Pending = serde_json::from_str(pending)
        .ok()
        .filter(|p: &Pending| p.v == PENDING_VERSION)
        .ok_or_else(|| AuthError::Protocol("the stored sign-in state is damaged".into()))?;
    if pending.redirect_uri != callback_url {
        return Err(AuthError::Protocol(
            "the callback arrived at another URL than the sign-in began with".into(),
        ));
    }
    if let Some(state) = callback.get("state") {
        if !constant_time_eq(state, &pending.state) {
            return Err(AuthError::Protocol("the callback's state belongs to another sign-in".into()));
        }
    }
    let discovered = oidc.discovered().await?;
    // RFC 9207: the issuer in the response defends against a provider mix-up.
    match callback.get("iss") {
        Some(iss) if settings.accepted_issuers.iter().any(|i| i == iss) => {}
        Some(_) => {
            return Err(AuthError::Protocol("the callback names another issuer".into()));
        }
        None if discovered.iss_parameter => {
            return Err(AuthError::Protocol(
                "the callback lacks the issuer parameter the provider promises".into(),
            ));
        }
        None => {}
    }
    if let Some(error) = callback.get("error") {
        return Err(callback_error(error, callback.get("error_description"), &settings.provider));
    }
    let code = match callback.get("code") {
        Some(code) if !code.is_empty() && code.len() <= 4096 => code,
        _ => return Err(AuthError::Protocol("the callback carries no authorization code".into())),
    };

    let form = [
        ("grant_type", "authorization_code"),
        ("code", code),
        ("redirect_uri", pending.redirect_uri.as_str()),
        ("code_verifier", pending.verifier.as_str()),
    ];
    let tokens = token_request(oidc, discovered, &form).await.map_err(|e| match e {
        TokenRefusal::InvalidGrant => AuthError::Protocol(
            "the provider refused the authorization code (invalid_grant): it was used \
             already, has expired, or belongs to another sign-in"
                .into(),
        ),
        TokenRefusal::Other(e) => e,
    })?;
    let id_token = tokens.id_token.ok_or_else(|| {
        AuthError::Protocol("the token response has no ID token (is `openid` requested?)".into())
    })?;
    let token = oidc.verify_id_token(&id_token, &pending.nonce).await?;
    let refresh =
        tokens.refresh_token.filter(|t| settings.refresh_groups && !t.is_empty() && t.len() <= 4096);
    Ok((identity::identity(settings, &token.claims)?, refresh))
}

/// The error codes a provider may send back, kept only when they look like one, so that a
/// forged callback cannot put arbitrary text into a message.
fn error_code(error: &str) -> &str {
    let plausible = !error.is_empty()
        && error.len() <= 64
        && error.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'.' || b == b'-');
    if plausible { error } else { "unrecognized" }
}

fn callback_error(error: &str, description: Option<&str>, provider: &str) -> AuthError {
    let code = error_code(error);
    let description: String = description.unwrap_or("").chars().take(200).collect();
    tracing::info!(provider, error = code, description = %description.escape_debug(), "The identity provider returned an error");
    match code {
        "access_denied" => {
            AuthError::NotAllowed("the sign-in was cancelled or refused at the provider".into())
        }
        "login_required" | "consent_required" | "interaction_required" | "account_selection_required" => {
            AuthError::NotAllowed(format!("the provider did not complete the sign-in ({code})"))
        }
        "server_error" | "temporarily_unavailable" => {
            OidcError::ProviderFailed { error: code.to_owned() }.into()
        }
        _ => AuthError::Protocol(format!("the identity provider answered with error `{code}`")),
    }
}

/// What a token endpoint answered with 200.
#[derive(serde::Deserialize)]
pub(crate) struct TokenAnswer {
    #[serde(default)]
    pub(crate) id_token: Option<String>,
    #[serde(default)]
    pub(crate) refresh_token: Option<String>,
}

#[derive(serde::Deserialize)]
struct ErrorAnswer {
    error: String,
}

/// Why the token endpoint gave no tokens.
pub(crate) enum TokenRefusal {
    /// `invalid_grant`: the code or refresh token is used, expired or revoked.
    InvalidGrant,
    /// Anything else, as the person would be told.
    Other(AuthError),
}

/// Posts `form` to the token endpoint with the client's credentials.
/// Posts `form` to one of the provider's endpoints for this client, authenticated as the
/// token endpoint wants (HTTP Basic, or the id and secret in the form).
pub(crate) async fn authenticated_post(
    oidc: &Oidc,
    discovered: &Discovered,
    url: &url::Url,
    form: &[(&str, &str)],
) -> Result<crate::http::Answer, OidcError> {
    let settings = &oidc.inner.settings;
    let mut form = form.to_vec();
    let mut request = oidc.inner.http.post(url).header("accept", "application/json");
    match discovered.client_auth {
        ClientAuth::Basic => {
            // RFC 6749 2.3.1: id and secret are form-encoded before they are joined.
            let encode = |s: &str| url::form_urlencoded::byte_serialize(s.as_bytes()).collect::<String>();
            let pair = format!("{}:{}", encode(&settings.client_id), encode(settings.client_secret.expose()));
            request = request.header("authorization", format!("Basic {}", STANDARD.encode(pair)));
        }
        ClientAuth::Post => {
            form.push(("client_id", settings.client_id.as_str()));
            form.push(("client_secret", settings.client_secret.expose()));
        }
    }
    oidc.inner.http.send(url, request.form(&form), MAX_DOCUMENT_BYTES).await
}

pub(crate) async fn token_request(
    oidc: &Oidc,
    discovered: &Discovered,
    form: &[(&str, &str)],
) -> Result<TokenAnswer, TokenRefusal> {
    let url = &discovered.token_endpoint;
    let answer =
        authenticated_post(oidc, discovered, url, form).await.map_err(|e| TokenRefusal::Other(e.into()))?;
    match answer.status {
        200 => serde_json::from_slice(&answer.body).map_err(|e| {
            TokenRefusal::Other(OidcError::Malformed { url: url.to_string(), detail: e.to_string() }.into())
        }),
        400 | 401 => {
            let error = serde_json::from_slice::<ErrorAnswer>(&answer.body)
                .map(|e| error_code(&e.error).to_owned())
                .unwrap_or_else(|_| "unrecognized".to_owned());
            Err(match error.as_str() {
                "invalid_grant" => TokenRefusal::InvalidGrant,
                "invalid_client" | "unauthorized_client" => {
                    TokenRefusal::Other(OidcError::ClientRefused { error }.into())
                }
                _ => TokenRefusal::Other(AuthError::Protocol(format!(
                    "the token endpoint refused the request ({error})"
                ))),
            })
        }
        status => Err(TokenRefusal::Other(OidcError::Status { url: url.to_string(), status }.into())),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pkce_challenge_matches_the_rfc_7636_example() {
        assert_eq!(
            challenge("dBjftJeZ4CVP-mB92K27uhbUJU1p1r_wW1gFWFOEjXk"),
            "E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM"
        );
    }

    #[test]
    fn random_tokens_are_long_unreserved_and_distinct() {
        let rng = SystemRandom::new();
        let a = random_token(&rng).expect("rng");
        let b = random_token(&rng).expect("rng");
        assert_eq!(a.len(), 43);
        assert_ne!(a, b);
        assert!(a.bytes().all(|c| c.is_ascii_alphanumeric() || c == b'-' || c == b'_'));
    }

    #[test]
    fn forged_error_codes_do_not_reach_messages() {
        assert_eq!(error_code("access_denied"), "access_denied");
        assert_eq!(error_code("<script>alert(1)</script>"), "unrecognized");
        assert_eq!(error_code(""), "unrecognized");
        let error = callback_error("you have been hacked, call 555", None, "oidc.t");
        assert!(!error.to_string().contains("hacked"), "{error}");
        assert_eq!(callback_error("access_denied", Some("x"), "oidc.t").code(), "not-allowed");
        assert_eq!(callback_error("temporarily_unavailable", None, "oidc.t").code(), "unavailable");
    }

    #[test]
    fn callback_urls_must_be_absolute_http() {
        assert!(check_callback_url("https://desk.example.com/auth/oidc/google/callback").is_ok());
        assert!(check_callback_url("http://127.0.0.1:9/callback").is_ok());
        for bad in ["/callback", "javascript:alert(1)", "https://x.example/cb#frag", ""] {
            assert!(check_callback_url(bad).is_err(), "{bad:?}");
        }
    }
}
