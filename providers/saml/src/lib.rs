//! deskgate's SAML 2.0 service provider (Web Browser SSO: AuthnRequest over HTTP-Redirect,
//! Response over HTTP-POST); OneLogin is a preset.
//!
//! A response is accepted only when a signature by the IdP's configured certificate covers
//! the Response or the one Assertion it carries, and the assertion is read from that signed
//! content alone (see `shape` and `response` for the signature-wrapping defenses). Audience,
//! destination, recipient, issuer, time window and `InResponseTo` are all required.
//!
//! Replays: the gateway keeps each assertion ID until it expires. The identity from
//! [`RedirectProvider::complete`] carries both in `attributes` ([`ASSERTION_ID`],
//! [`NOT_ON_OR_AFTER`]), and
//! [`assertion_id_and_expiry`] reads them back.
//!
//! The IdP metadata comes from a file or URL. The gateway calls [`Saml::refresh`] once at
//! start-up and every [`Saml::metadata_refresh`]; a failed refresh keeps the last good
//! metadata, and a new signing certificate takes effect at the next response.

mod clock;
pub mod config;
mod error;
#[cfg(any(test, feature = "fuzzing"))]
#[doc(hidden)]
pub mod fuzzing;
mod identity;
mod metadata;
mod request;
mod response;
mod shape;
mod signature;
mod sp;
mod xml;

use std::sync::{Arc, PoisonError, RwLock};
use std::time::Duration;

use deskgate_provider::config::GroupRule;
use deskgate_provider::{AuthError, Callback, Identity, RedirectProvider, Started};
use openssl::pkey::{PKey, Private};

pub use clock::{Clock, SystemClock};
pub use config::{Preset, SamlConfig};
pub use error::{MetadataError, ResponseError, SamlError};
pub use identity::{
    ASSERTION_ID, ISSUER, NAME_ID_FORMAT, NOT_ON_OR_AFTER, SESSION_INDEX, assertion_id_and_expiry,
};
pub use metadata::{IdpMetadata, parse as parse_idp_metadata};

use error::chain;
use identity::Mapping;
use metadata::Source;
use request::{Pending, Request};
use response::Expected;

/// The compiled configuration.
pub(crate) struct Settings {
    pub(crate) provider: String,
    pub(crate) entity_id: String,
    pub(crate) acs: String,
    pub(crate) source: Source,
    pub(crate) refresh: Duration,
    pub(crate) skew: Duration,
    pub(crate) sp_key: Option<PKey<Private>>,
    pub(crate) sp_metadata: String,
    pub(crate) name_id_format: Option<String>,
    pub(crate) allow_idp_initiated: bool,
    pub(crate) want_assertions_signed: bool,
    pub(crate) max_response_bytes: usize,
    pub(crate) mapping: Mapping,
    pub(crate) display_name: String,
    pub(crate) create_accounts: bool,
    pub(crate) link_by_email: bool,
    pub(crate) groups: Vec<GroupRule>,
}

/// A SAML identity provider. Cheap to clone; clones share the metadata.
#[derive(Clone)]
pub struct Saml {
    inner: Arc<Inner>,
}

struct Inner {
    settings: Settings,
    http: reqwest::Client,
    clock: Arc<dyn Clock>,
    /// The metadata in force; replaced whole by a successful refresh.
    metadata: RwLock<Option<Arc<IdpMetadata>>>,
    /// Serializes loads so that a burst of first sign-ins fetches once.
    loading: tokio::sync::Mutex<()>,
}

impl std::fmt::Debug for Saml {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Saml")
            .field("provider", &self.inner.settings.provider)
            .field("entity_id", &self.inner.settings.entity_id)
            .field("source", &self.inner.settings.source)
            .finish_non_exhaustive()
    }
}

impl Saml {
    pub(crate) fn from_parts(
        settings: Settings,
        http: reqwest::Client,
        clock: Arc<dyn Clock>,
        initial: Option<IdpMetadata>,
    ) -> Saml {
        Saml {
            inner: Arc::new(Inner {
                settings,
                http,
                clock,
                metadata: RwLock::new(initial.map(Arc::new)),
                loading: tokio::sync::Mutex::new(()),
            }),
        }
    }

    /// The provider id its identities carry, `saml.<id>`.
    pub fn provider_id(&self) -> &str {
        &self.inner.settings.provider
    }

    /// This service provider's entity id (the audience responses must name).
    pub fn entity_id(&self) -> &str {
        &self.inner.settings.entity_id
    }

    /// The assertion consumer service URL, `<public URL>/.deskgate/saml/<id>/acs`.
    pub fn acs_url(&self) -> &str {
        &self.inner.settings.acs
    }

    /// The label for this provider's button on the sign-in page.
    pub fn display_name(&self) -> &str {
        &self.inner.settings.display_name
    }

    /// Whether the gateway may create accounts just in time for this provider's people.
    pub fn create_accounts(&self) -> bool {
        self.inner.settings.create_accounts
    }

    /// Whether the gateway may link to an existing account by email address.
    pub fn link_by_email(&self) -> bool {
        self.inner.settings.link_by_email
    }

    /// The group → usergroups rules for the gateway to apply.
    pub fn group_rules(&self) -> &[GroupRule] {
        &self.inner.settings.groups
    }

    /// Whether unsolicited responses may sign people in ([`Saml::complete_unsolicited`]).
    pub fn allows_idp_initiated(&self) -> bool {
        self.inner.settings.allow_idp_initiated
    }

    /// How often the gateway should call [`Saml::refresh`].
    pub fn metadata_refresh(&self) -> Duration {
        self.inner.settings.refresh
    }

    /// This service provider's metadata XML, served at `/.deskgate/saml/<id>/metadata`.
    pub fn sp_metadata(&self) -> String {
        self.inner.settings.sp_metadata.clone()
    }

    /// The IdP metadata in force, if any has been loaded.
    pub fn idp_metadata(&self) -> Option<Arc<IdpMetadata>> {
        self.inner.metadata.read().unwrap_or_else(PoisonError::into_inner).clone()
    }

    /// Reads the IdP metadata again. On success it replaces the metadata in force (a rotated
    /// certificate is used from the next response on); on failure the last good metadata
    /// stays and the error is returned (and logged).
    pub async fn refresh(&self) -> Result<Arc<IdpMetadata>, MetadataError> {
        let _loading = self.inner.loading.lock().await;
        self.load().await
    }

    async fn load(&self) -> Result<Arc<IdpMetadata>, MetadataError> {
        let settings = &self.inner.settings;
        let loaded = match settings.source.read(&self.inner.http).await {
            Ok(text) => metadata::parse(&text, self.inner.clock.now()),
            Err(error) => Err(error),
        };
        match loaded {
            Ok(fresh) => {
                let fresh = Arc::new(fresh);
                let previous = self
                    .inner
                    .metadata
                    .write()
                    .unwrap_or_else(PoisonError::into_inner)
                    .replace(Arc::clone(&fresh));
                if fresh.want_authn_requests_signed && settings.sp_key.is_none() {
                    tracing::warn!(
                        provider = %settings.provider,
                        "The identity provider wants signed AuthnRequests; set sp_key_file and sp_cert_file"
                    );
                }
                if previous.as_deref() != Some(fresh.as_ref()) {
                    tracing::info!(
                        provider = %settings.provider,
                        idp = %fresh.entity_id,
                        certificates = fresh.certificates.len(),
                        "Loaded the identity provider's metadata"
                    );
                }
                Ok(fresh)
            }
            Err(error) => {
                tracing::warn!(
                    provider = %settings.provider,
                    error = %chain(&error),
                    kept_previous = self.idp_metadata().is_some(),
                    "Could not refresh the identity provider's metadata"
                );
                Err(error)
            }
        }
    }

    /// The metadata in force, loading it first if none has been (a URL source before the
    /// gateway's first refresh).
    async fn current_metadata(&self) -> Result<Arc<IdpMetadata>, SamlError> {
        if let Some(metadata) = self.idp_metadata() {
            return Ok(metadata);
        }
        let _loading = self.inner.loading.lock().await;
        if let Some(metadata) = self.idp_metadata() {
            return Ok(metadata);
        }
        self.load().await.map_err(SamlError::MetadataUnavailable)
    }

    /// [`RedirectProvider::begin`] with this crate's error.
    pub async fn start(&self, callback_url: &str) -> Result<Started, SamlError> {
        let metadata = self.current_metadata().await?;
        let settings = &self.inner.settings;
        let id = request::request_id()?;
        let relay_state = request::random_token(32)?;
        let location = request::redirect_url(
            &Request {
                id: &id,
                sso_url: &metadata.sso_url,
                sp_entity_id: &settings.entity_id,
                acs: callback_url,
                name_id_format: settings.name_id_format.as_deref(),
                relay_state: &relay_state,
                now: self.inner.clock.now(),
            },
            settings.sp_key.as_ref(),
        )?;
        let pending = Pending { id, acs: callback_url.to_owned() }.encode()?;
        Ok(Started { location, key: relay_state, pending })
    }

    /// Whether a posted `RelayState` has the shape of one this provider gives the sign-ins it
    /// starts: a response carrying one was started here, most likely in another browser,
    /// rather than at the IdP's portal. It proves nothing; it only picks the page that
    /// explains a refusal.
    pub fn started_here(relay_state: Option<&str>) -> bool {
        relay_state.is_some_and(request::looks_like_our_relay_state)
    }

    /// [`RedirectProvider::complete`] with this crate's error: checks the posted response
    /// against the request `pending` names.
    pub async fn finish(
        &self,
        pending: &str,
        callback_url: &str,
        callback: &Callback,
    ) -> Result<Identity, SamlError> {
        let pending = Pending::decode(pending)?;
        if pending.acs != callback_url {
            return Err(SamlError::WrongCallback {
                arrived: callback_url.to_owned(),
                requested: pending.acs,
            });
        }
        self.verify(callback_url, Some(&pending.id), callback).await
    }

    /// Checks a response the IdP sent without a request from deskgate (IdP-initiated
    /// sign-in): refused unless `allow_idp_initiated`, and then it must carry no
    /// `InResponseTo` and be posted to [`Saml::acs_url`]. The gateway calls this for an ACS
    /// post whose `RelayState` names no pending sign-in.
    pub async fn complete_unsolicited(
        &self,
        callback_url: &str,
        callback: &Callback,
    ) -> Result<Identity, SamlError> {
        let settings = &self.inner.settings;
        if !settings.allow_idp_initiated {
            return Err(SamlError::UnsolicitedRefused);
        }
        if callback_url != settings.acs {
            return Err(SamlError::WrongCallback {
                arrived: callback_url.to_owned(),
                requested: settings.acs.clone(),
            });
        }
        self.verify(callback_url, None, callback).await
    }

    /// [`Saml::complete_unsolicited`] as a provider result: refusals logged and mapped to
    /// [`AuthError`] as [`RedirectProvider::complete`] maps them.
    pub async fn complete_idp_initiated(
        &self,
        callback_url: &str,
        callback: &Callback,
    ) -> Result<Identity, AuthError> {
        self.complete_unsolicited(callback_url, callback).await.map_err(|error| {
            self.log_refusal(&error);
            auth_error(error)
        })
    }

    async fn verify(
        &self,
        acs: &str,
        request_id: Option<&str>,
        callback: &Callback,
    ) -> Result<Identity, SamlError> {
        let fields: Vec<&str> = callback
            .params
            .iter()
            .filter(|(name, _)| name == "SAMLResponse")
            .map(|(_, value)| value.as_str())
            .collect();
        let [encoded] = fields.as_slice() else {
            return Err(SamlError::ResponseField(fields.len()));
        };
        let metadata = self.current_metadata().await?;
        let settings = &self.inner.settings;
        // Parsing and xmlsec take milliseconds for a large response: off the async threads.
        let (encoded, limit) = ((*encoded).to_owned(), settings.max_response_bytes);
        let (sp_entity_id, acs, request_id) =
            (settings.entity_id.clone(), acs.to_owned(), request_id.map(str::to_owned));
        let (now, skew, want_assertions_signed) =
            (self.inner.clock.now(), settings.skew, settings.want_assertions_signed);
        let assertion = tokio::task::spawn_blocking(move || {
            let expected = Expected {
                sp_entity_id: &sp_entity_id,
                acs: &acs,
                idp_entity_id: &metadata.entity_id,
                request_id: request_id.as_deref(),
                now,
                skew,
                want_assertions_signed,
            };
            response::verify(&encoded, limit, &metadata.certificates, &expected)
        })
        .await
        .map_err(|_| SamlError::VerifierFailed)??;
        Ok(identity::identity(&assertion, &settings.mapping))
    }

    fn log_refusal(&self, error: &SamlError) {
        tracing::warn!(
            provider = %self.inner.settings.provider,
            reason = error.code(),
            error = %chain(error),
            "SAML sign-in failed"
        );
    }
}

fn auth_error(error: SamlError) -> AuthError {
    match error {
        SamlError::MetadataUnavailable(source) => AuthError::Unavailable(Box::new(source)),
        SamlError::Request(detail) => AuthError::Unavailable(detail.into()),
        SamlError::VerifierFailed => AuthError::Unavailable(Box::new(SamlError::VerifierFailed)),
        other => AuthError::Protocol(chain(&other)),
    }
}

impl RedirectProvider for Saml {
    async fn begin(&self, callback_url: &str) -> Result<Started, AuthError> {
        self.start(callback_url).await.map_err(|error| {
            self.log_refusal(&error);
            auth_error(error)
        })
    }

    async fn complete(
        &self,
        pending: &str,
        callback_url: &str,
        callback: &Callback,
    ) -> Result<Identity, AuthError> {
        match self.finish(pending, callback_url, callback).await {
            Ok(identity) => {
                tracing::info!(
                    provider = %self.inner.settings.provider,
                    subject = %identity.subject,
                    "SAML sign-in"
                );
                Ok(identity)
            }
            Err(error) => {
                self.log_refusal(&error);
                Err(auth_error(error))
            }
        }
    }
}
