//! The HTTP client deskgate talks to the identity provider with: no redirects (an endpoint
//! that redirects is misconfigured, and following it could leak the client secret to
//! another host), timeouts on everything, and a size limit on every answer.

use std::time::Duration;

use url::Url;

use crate::OidcError;

/// The largest discovery document, key set or token response accepted.
pub(crate) const MAX_DOCUMENT_BYTES: usize = 512 * 1024;

/// A client for the provider's endpoints.
#[derive(Debug, Clone)]
pub(crate) struct Http {
    client: reqwest::Client,
}

/// An answer whose body was read within the limit.
#[derive(Debug)]
pub(crate) struct Answer {
    pub(crate) status: u16,
    pub(crate) body: Vec<u8>,
}

impl Http {
    pub(crate) fn new(timeout: Duration) -> Result<Http, reqwest::Error> {
        let client = reqwest::Client::builder()
            .redirect(reqwest::redirect::Policy::none())
            .connect_timeout(timeout.min(Duration::from_secs(5)))
            .timeout(timeout)
            .user_agent(concat!("deskgate-oidc/", env!("CARGO_PKG_VERSION")))
            .build()?;
        Ok(Http { client })
    }

    /// GETs `url` and returns the body of a 200 answer.
    pub(crate) async fn get(&self, url: &Url, limit: usize) -> Result<Vec<u8>, OidcError> {
        let request = self.client.get(url.clone()).header("accept", "application/json");
        let answer = self.send(url, request, limit).await?;
        if answer.status != 200 {
            return Err(OidcError::Status { url: url.to_string(), status: answer.status });
        }
        Ok(answer.body)
    }

    /// Sends a prepared request to `url` and reads the body whatever the status.
    pub(crate) async fn send(
        &self,
        url: &Url,
        request: reqwest::RequestBuilder,
        limit: usize,
    ) -> Result<Answer, OidcError> {
        let failed = |source| OidcError::Request { url: url.to_string(), source };
        let mut response = request.send().await.map_err(failed)?;
        let status = response.status().as_u16();
        if response.content_length().is_some_and(|len| len > limit as u64) {
            return Err(OidcError::TooLarge { url: url.to_string(), limit });
        }
        let mut body = Vec::new();
        while let Some(chunk) = response.chunk().await.map_err(failed)? {
            if body.len() + chunk.len() > limit {
                return Err(OidcError::TooLarge { url: url.to_string(), limit });
            }
            body.extend_from_slice(&chunk);
        }
        Ok(Answer { status, body })
    }

    /// A POST request to `url`, to be completed by the caller.
    pub(crate) fn post(&self, url: &Url) -> reqwest::RequestBuilder {
        self.client.post(url.clone())
    }
}
