//! deskgate's OpenID Connect sign-in provider; Google is a preset.
//!
//! A sign-in is the authorization code flow with PKCE (S256), a `state` that names the
//! pending login and a `nonce` bound into the ID token. The code is exchanged at the token
//! endpoint over a client that follows no redirects, and the ID token is verified here: a
//! signature by one of the provider's published keys under an explicit algorithm allow-list
//! (never `none`, never HMAC), then issuer, audience, authorized party, time and nonce.
//!
//! Discovery is lazy: the first `begin` (or an explicit [`Oidc::discover`]) reads the
//! provider's metadata, and the result is kept for the life of the provider. The key set is
//! fetched on first need, refetched once when a token names an unknown key, and fetched
//! again on deskgate's schedule ([`KEYS_REFRESH`]).

mod clock;
pub mod config;
mod discovery;
mod error;
mod flow;
mod http;
mod identity;
mod jwks;
mod jwt;
mod refresh;
#[cfg(test)]
mod test_keys;

use std::sync::Arc;
use std::time::Duration;

use deskgate_provider::config::GroupRule;
use deskgate_provider::{AuthError, Callback, Identity, RedirectProvider, Started};
use serde_json::{Map, Value};

pub use clock::{Clock, SystemClock};
pub use config::{GOOGLE_ISSUER, OidcConfig, Preset};
pub use error::{OidcError, VerifyError};
pub use jwt::{Algorithm, IdTokenError, unverified_issuer};
pub use refresh::Refreshed;

use config::Secret;
use discovery::Discovered;
use error::chain;

fn bearer_refused(error: IdTokenError) -> AuthError {
    AuthError::Protocol(format!("bearer token refused: {error}"))
}

/// The compiled configuration.
#[derive(Debug)]
pub(crate) struct Settings {
    pub(crate) provider: String,
    pub(crate) issuer: String,
    pub(crate) accepted_issuers: Vec<String>,
    pub(crate) client_id: String,
    pub(crate) client_secret: Secret,
    pub(crate) scope: String,
    pub(crate) allowed_domains: Vec<String>,
    pub(crate) hd_hint: Option<String>,
    pub(crate) groups_claim: Option<String>,
    pub(crate) algorithms: Vec<Algorithm>,
    pub(crate) clock_skew: Duration,
    pub(crate) display_name: String,
    pub(crate) end_session: bool,
    pub(crate) allow_unverified_email: bool,
    pub(crate) create_accounts: bool,
    pub(crate) link_by_email: bool,
    pub(crate) groups: Vec<GroupRule>,
    /// Ask for a refresh token at sign-in and use it to read the person's claims again.
    pub(crate) refresh_groups: bool,
    /// Google's way of asking for a refresh token (`access_type=offline`) rather than the
    /// `offline_access` scope.
    pub(crate) google: bool,
    /// Audiences whose JWTs from this provider are accepted as `Authorization: Bearer`;
    /// empty: none are.
    pub(crate) bearer_audiences: Vec<String>,
}

/// An ID token whose signature and binding claims have been verified.
#[derive(Debug, Clone, PartialEq)]
pub struct IdToken {
    /// The algorithm it was signed with.
    pub alg: Algorithm,
    /// The key id from its header.
    pub kid: Option<String>,
    /// Its claims.
    pub claims: Map<String, Value>,
}

/// How often deskgate fetches each provider's key set again, beside the refetch for an
/// unknown key id: a key the provider withdraws is trusted for at most this long.
pub const KEYS_REFRESH: std::time::Duration = std::time::Duration::from_secs(3600);

/// An OpenID Connect provider. Cheap to clone; clones share the discovered metadata and
/// the key cache.
#[derive(Debug, Clone)]
pub struct Oidc {
    inner: Arc<Inner>,
}

#[derive(Debug)]
struct Inner {
    settings: Settings,
    http: http::Http,
    clock: Arc<dyn Clock>,
    discovered: tokio::sync::OnceCell<Discovered>,
}

impl Oidc {
    pub(crate) fn from_settings(settings: Settings, http: http::Http, clock: Arc<dyn Clock>) -> Oidc {
        Oidc { inner: Arc::new(Inner { settings, http, clock, discovered: tokio::sync::OnceCell::new() }) }
    }

    /// The provider id its identities carry, `oidc.<id>`.
    pub fn provider_id(&self) -> &str {
        &self.inner.settings.provider
    }

    /// The issuer identifier.
    pub fn issuer(&self) -> &str {
        &self.inner.settings.issuer
    }

    /// The label for this provider's button on the sign-in page.
    pub fn display_name(&self) -> &str {
        &self.inner.settings.display_name
    }

    /// Whether the gateway may create accounts just in time for this provider's people.
    pub fn create_accounts(&self) -> bool {
        self.inner.settings.create_accounts
    }

    /// Whether the gateway may link to an existing account by verified email address.
    pub fn link_by_email(&self) -> bool {
        self.inner.settings.link_by_email
    }

    /// The group → usergroups rules for the gateway to apply.
    pub fn group_rules(&self) -> &[GroupRule] {
        &self.inner.settings.groups
    }

    /// Whether sign-ins ask for a refresh token, so that the person's claims can be read
    /// again during the session ([`Oidc::refresh`]).
    pub fn refresh_groups(&self) -> bool {
        self.inner.settings.refresh_groups
    }

    /// Reads the discovery document and the key set now rather than at the first sign-in.
    /// A failure is not kept: the next call or sign-in tries again.
    pub async fn discover(&self) -> Result<(), OidcError> {
        let discovered = self.discovered().await?;
        discovered.jwks.load(&self.inner.http, self.inner.clock.as_ref()).await
    }

    /// Fetches the provider's key set again now (discovering first if need be), so that a
    /// key the provider has withdrawn stops being trusted; deskgate calls it every
    /// [`KEYS_REFRESH`]. A failed fetch keeps the last good keys.
    pub async fn refresh_keys(&self) -> Result<(), OidcError> {
        let discovered = self.discovered().await?;
        discovered.jwks.refresh_now(&self.inner.http, self.inner.clock.as_ref()).await
    }

    async fn discovered(&self) -> Result<&Discovered, OidcError> {
        let settings = &self.inner.settings;
        self.inner
            .discovered
            .get_or_try_init(|| async {
                let found =
                    discovery::discover(&self.inner.http, &settings.issuer, &settings.algorithms).await?;
                tracing::info!(
                    provider = %settings.provider,
                    issuer = %settings.issuer,
                    "Read the identity provider's discovery document"
                );
                Ok(found)
            })
            .await
    }

    /// Verifies an ID token the way [`complete`](RedirectProvider::complete) does: the
    /// signature with the provider's keys (refetched once for an unknown key id), then
    /// issuer, audience, authorized party, `exp`/`iat`/`nbf` with the clock skew, and that
    /// its nonce is `nonce`.
    pub async fn verify_id_token(&self, id_token: &str, nonce: &str) -> Result<IdToken, VerifyError> {
        self.verify_token(id_token, Some(nonce)).await
    }

    /// [`verify_id_token`](Self::verify_id_token), with the nonce checked only when given.
    pub(crate) async fn verify_token(
        &self,
        id_token: &str,
        nonce: Option<&str>,
    ) -> Result<IdToken, VerifyError> {
        let settings = &self.inner.settings;
        let jws = jwt::parse(id_token, &settings.algorithms)?;
        let discovered = self.discovered().await?;
        discovered.jwks.verify(&jws, &self.inner.http, self.inner.clock.as_ref()).await?;
        let expected = jwt::Expected {
            issuers: &settings.accepted_issuers,
            audience: jwt::Audience::Client(&settings.client_id),
            nonce,
            skew: settings.clock_skew,
        };
        jwt::check_claims(&jws.claims, &expected, self.inner.clock.now())?;
        Ok(IdToken { alg: jws.alg, kid: jws.kid, claims: jws.claims })
    }

    /// Whether this provider's JWTs are accepted as `Authorization: Bearer`
    /// (`bearer_audiences` is set).
    pub fn accepts_bearer(&self) -> bool {
        !self.inner.settings.bearer_audiences.is_empty()
    }

    /// Whether `iss` names this provider (its issuer, or Google's other spelling of it).
    pub fn is_issuer(&self, iss: &str) -> bool {
        self.inner.settings.accepted_issuers.iter().any(|i| i == iss)
    }

    /// Verifies a JWT this provider issued (an ID token, or an access token in JWT form)
    /// that a client sent as `Authorization: Bearer`, and reads the person from it as a
    /// sign-in would: the signature with the provider's keys (refetched at most once, and
    /// not more often than the refetch pause, for an unknown key id) under the algorithm
    /// allow-list, `iss`, an `aud` from `bearer_audiences` (and `azp` from it when there are
    /// several), `exp`, `iat` and `nbf` against `now` with the clock skew. No nonce: nobody
    /// signed in here. A provider without `bearer_audiences` refuses every token.
    pub async fn verify_bearer(
        &self,
        token: &str,
        now: std::time::SystemTime,
    ) -> Result<Identity, AuthError> {
        let settings = &self.inner.settings;
        if settings.bearer_audiences.is_empty() {
            return Err(AuthError::NotAllowed(
                "this provider's tokens are not accepted as bearer tokens".into(),
            ));
        }
        let jws = jwt::parse(token, &settings.algorithms).map_err(bearer_refused)?;
        let discovered = self.discovered().await?;
        discovered.jwks.verify(&jws, &self.inner.http, self.inner.clock.as_ref()).await.map_err(
            |e| match e {
                VerifyError::Refused(e) => bearer_refused(e),
                VerifyError::Unavailable(e) => e.into(),
            },
        )?;
        let expected = jwt::Expected {
            issuers: &settings.accepted_issuers,
            audience: jwt::Audience::AnyOf(&settings.bearer_audiences),
            nonce: None,
            skew: settings.clock_skew,
        };
        jwt::check_claims(&jws.claims, &expected, now).map_err(bearer_refused)?;
        identity::identity(settings, &jws.claims)
    }

    /// Where to send the browser to sign out at the provider too, when `end_session` is set
    /// and discovery has found an `end_session_endpoint`; `None` otherwise (also before
    /// discovery has run).
    pub fn logout_url(&self, id_token_hint: Option<&str>, post_logout_redirect: &str) -> Option<String> {
        let settings = &self.inner.settings;
        if !settings.end_session {
            return None;
        }
        let mut url = self.inner.discovered.get()?.end_session_endpoint.clone()?;
        {
            let mut query = url.query_pairs_mut();
            if let Some(hint) = id_token_hint {
                query.append_pair("id_token_hint", hint);
            }
            query.append_pair("client_id", &settings.client_id);
            query.append_pair("post_logout_redirect_uri", post_logout_redirect);
        }
        Some(url.into())
    }

    /// As [`RedirectProvider::complete`], also returning the refresh token the provider
    /// issued, if any (only asked for with `refresh_groups`).
    pub async fn complete_with_refresh(
        &self,
        pending: &str,
        callback_url: &str,
        callback: &Callback,
    ) -> Result<(Identity, Option<String>), AuthError> {
        let result = flow::complete(self, pending, callback_url, callback).await;
        match &result {
            Ok((identity, refresh)) => tracing::debug!(
                provider = %identity.provider,
                subject = %identity.subject,
                refresh_token = refresh.is_some(),
                "OIDC sign-in verified"
            ),
            Err(error) => self.log_refusal(error),
        }
        result
    }

    fn log_refusal(&self, error: &AuthError) {
        let provider = &self.inner.settings.provider;
        match error {
            AuthError::Unavailable(source) => tracing::warn!(
                provider = %provider,
                reason = error.code(),
                cause = %chain(source.as_ref()),
                "OIDC sign-in failed: the identity provider is unavailable"
            ),
            _ => tracing::info!(
                provider = %provider,
                reason = error.code(),
                detail = %error,
                "OIDC sign-in refused"
            ),
        }
    }
}

impl RedirectProvider for Oidc {
    async fn begin(&self, callback_url: &str) -> Result<Started, AuthError> {
        let result = flow::begin(self, callback_url).await;
        if let Err(error) = &result {
            self.log_refusal(error);
        }
        result
    }

    async fn complete(
        &self,
        pending: &str,
        callback_url: &str,
        callback: &Callback,
    ) -> Result<Identity, AuthError> {
        self.complete_with_refresh(pending, callback_url, callback).await.map(|(identity, _)| identity)
    }
}
