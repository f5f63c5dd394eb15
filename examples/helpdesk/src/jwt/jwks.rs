//! deskgate's public keys, fetched from its JWKS and cached.
//!
//! An unknown key id usually means deskgate rotated its key, so it triggers a refetch; but a
//! key id is chosen by whoever sends the token, so fetches are limited to one per
//! [`REFETCH_INTERVAL`] to keep made-up key ids from turning into a flood of requests.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::time::{Duration, Instant};

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use ed25519_dalek::VerifyingKey;
use serde::Deserialize;

use super::TokenError;
use crate::clock::Clock;

/// The shortest time between two JWKS fetches.
pub(crate) const REFETCH_INTERVAL: Duration = Duration::from_secs(10);

/// How long one JWKS fetch may take before it counts as failed.
const FETCH_TIMEOUT: Duration = Duration::from_secs(5);

/// Why the JWKS could not be loaded.
#[derive(Debug, thiserror::Error)]
enum JwksError {
    #[error("the JWKS request failed")]
    Unreachable(#[source] reqwest::Error),
}

/// The keys last fetched, by key id.
pub(crate) struct JwksCache {
    url: String,
    client: reqwest::Client,
    clock: Arc<dyn Clock>,
    cached: Mutex<Cached>,
    // Held across a fetch so that concurrent requests with a new key id wait for one fetch
    // instead of each starting their own.
    fetching: tokio::sync::Mutex<()>,
}

#[derive(Default)]
struct Cached {
    keys: HashMap<String, VerifyingKey>,
    last_fetch: Option<Instant>,
}

#[derive(Deserialize)]
struct JwkSet {
    keys: Vec<Jwk>,
}

#[derive(Deserialize)]
struct Jwk {
    kty: String,
    crv: Option<String>,
    alg: Option<String>,
    #[serde(rename = "use")]
    usage: Option<String>,
    kid: Option<String>,
    x: Option<String>,
}

impl JwksCache {
    pub(crate) fn new(url: String, clock: Arc<dyn Clock>) -> Self {
        Self {
            url,
            client: reqwest::Client::new(),
            clock,
            cached: Mutex::new(Cached::default()),
            fetching: tokio::sync::Mutex::new(()),
        }
    }

    /// The key with id `kid`, fetching the JWKS again if it is not known yet.
    pub(crate) async fn key(&self, kid: &str) -> Result<VerifyingKey, TokenError> {
        if let Some(key) = self.cached().keys.get(kid) {
            return Ok(*key);
        }
        let _fetching = self.fetching.lock().await;
        // Whoever held the lock before may have fetched the key already.
        let allowed = {
            let cached = self.cached();
            if let Some(key) = cached.keys.get(kid) {
                return Ok(*key);
            }
            cached.last_fetch.is_none_or(|last| self.clock.now().duration_since(last) >= REFETCH_INTERVAL)
        };
        if !allowed {
            return Err(TokenError::UnknownKey);
        }

        // A failed fetch counts too: an unreachable JWKS is not retried on every request.
        self.cached().last_fetch = Some(self.clock.now());
        match self.fetch().await {
            Ok(keys) => {
                tracing::info!(url = %self.url, keys = keys.len(), "Fetched the JWKS");
                let mut cached = self.cached();
                cached.keys = keys;
                cached.keys.get(kid).copied().ok_or(TokenError::UnknownKey)
            }
            Err(error) => {
                // The keys fetched before stay in use: deskgate may only be restarting.
                tracing::warn!(url = %self.url, error = ?error, "Could not fetch the JWKS");
                Err(TokenError::KeysUnavailable)
            }
        }
    }

    fn cached(&self) -> MutexGuard<'_, Cached> {
        // The map is replaced whole, so a panic elsewhere cannot leave it half-written.
        self.cached.lock().unwrap_or_else(PoisonError::into_inner)
    }

    async fn fetch(&self) -> Result<HashMap<String, VerifyingKey>, JwksError> {
        let set: JwkSet = self
            .client
            .get(&self.url)
            .timeout(FETCH_TIMEOUT)
            .send()
            .await
            .and_then(reqwest::Response::error_for_status)
            .map_err(JwksError::Unreachable)?
            .json()
            .await
            .map_err(JwksError::Unreachable)?;
        Ok(set.keys.iter().filter_map(signing_key).collect())
    }
}

/// An Ed25519 signing key of the set, or `None` for any other kind of key, which is skipped
/// rather than failing the whole set (a JWKS may also list keys for other purposes).
fn signing_key(jwk: &Jwk) -> Option<(String, VerifyingKey)> {
    let usable = jwk.kty == "OKP"
        && jwk.crv.as_deref() == Some("Ed25519")
        && jwk.alg.as_deref().is_none_or(|alg| alg == "EdDSA")
        && jwk.usage.as_deref().is_none_or(|usage| usage == "sig");
    if !usable {
        return None;
    }
    let kid = jwk.kid.clone()?;
    let x = URL_SAFE_NO_PAD.decode(jwk.x.as_deref()?).ok()?;
    let key = VerifyingKey::from_bytes(&x.try_into().ok()?).ok()?;
    Some((kid, key))
}
