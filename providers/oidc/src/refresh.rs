//! Reading a signed-in person's claims again with the refresh token from their sign-in:
//! the groups they are in now, and whether the provider still honours the sign-in.

use deskgate_provider::{AuthError, Identity};

use crate::OidcError;
use crate::flow::{TokenRefusal, authenticated_post, token_request};
use crate::{Oidc, identity};

/// What a refresh found.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Refreshed {
    /// Who the provider says the person is now.
    pub identity: Identity,
    /// The refresh token to use next time, when the provider issued a new one.
    pub refresh_token: Option<String>,
}

impl Oidc {
    /// Uses `refresh_token` to get a fresh ID token for the person `subject` and reads
    /// their identity from it, under the same rules as at sign-in.
    ///
    /// [`AuthError::Unavailable`] is a failure that may pass (the provider cannot be
    /// reached, answers with an error of its own, or refuses this client): the caller keeps
    /// what it had. Every other error means the sign-in no longer stands: the grant was
    /// revoked or has expired (`invalid_grant`), the token is not acceptable, it names
    /// someone else, or the person's claims no longer pass the provider's rules.
    pub async fn refresh(&self, refresh_token: &str, subject: &str) -> Result<Refreshed, AuthError> {
        let result = self.refresh_inner(refresh_token, subject).await;
        let provider = &self.inner.settings.provider;
        match &result {
            Ok(_) => tracing::debug!(provider = %provider, subject, "OIDC claims refreshed"),
            Err(AuthError::Unavailable(source)) => tracing::warn!(
                provider = %provider,
                subject,
                cause = %crate::chain(source.as_ref()),
                "OIDC refresh failed for now; the session keeps its groups and tries again later"
            ),
            Err(error) => tracing::info!(
                provider = %provider,
                subject,
                reason = error.code(),
                detail = %error,
                "OIDC refresh refused"
            ),
        }
        result
    }

    /// Asks the provider to revoke `refresh_token` (RFC 7009), so that the sign-in's grant
    /// ends with the session. `Ok(false)`: the provider publishes no revocation endpoint.
    /// An error is the provider's or the network's; the caller goes on without it.
    pub async fn revoke(&self, refresh_token: &str) -> Result<bool, AuthError> {
        let discovered = self.discovered().await?;
        let Some(url) = &discovered.revocation_endpoint else { return Ok(false) };
        let form = [("token", refresh_token), ("token_type_hint", "refresh_token")];
        let answer = authenticated_post(self, discovered, url, &form).await?;
        match answer.status {
            // RFC 7009 2.2: 200 whether or not the token was still valid.
            200 => Ok(true),
            status => Err(OidcError::Status { url: url.to_string(), status }.into()),
        }
    }

    async fn refresh_inner(&self, refresh_token: &str, subject: &str) -> Result<Refreshed, AuthError> {
        let settings = &self.inner.settings;
        let discovered = self.discovered().await?;
        let form = [("grant_type", "refresh_token"), ("refresh_token", refresh_token)];
        let tokens = token_request(self, discovered, &form).await.map_err(|e| match e {
            TokenRefusal::InvalidGrant => AuthError::NotAllowed(
                "the provider no longer honours this sign-in (invalid_grant: revoked or expired)".into(),
            ),
            TokenRefusal::Other(e) => e,
        })?;
        let id_token = tokens.id_token.ok_or_else(|| {
            AuthError::Protocol(
                "the refresh answer has no ID token, so the claims cannot be read again".into(),
            )
        })?;
        let token = self.verify_token(&id_token, None).await?;
        let identity = identity::identity(settings, &token.claims)?;
        if identity.subject != subject {
            return Err(AuthError::Protocol("the refreshed ID token names another person".into()));
        }
        let refresh_token =
            tokens.refresh_token.filter(|t| !t.is_empty() && t.len() <= 4096 && t != refresh_token);
        Ok(Refreshed { identity, refresh_token })
    }
}
