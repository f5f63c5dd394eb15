//! The provider's signing keys: parsing a JWK Set into keys `ring` can verify with, and a
//! cache that refetches the set once when a token names a key it does not know (providers
//! rotate keys; a restarted test provider has new ones).

use std::sync::{Arc, RwLock};
use std::time::{Duration, SystemTime};

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use ring::signature::{self, RsaPublicKeyComponents, UnparsedPublicKey};
use serde_json::Value;
use url::Url;

use crate::OidcError;
use crate::clock::Clock;
use crate::http::{Http, MAX_DOCUMENT_BYTES};
use crate::jwt::{Algorithm, IdTokenError, Jws};

/// How long after a fetch an unknown `kid` may not cause another: a token naming keys that
/// do not exist must not turn deskgate into a load generator against the provider.
pub(crate) const REFETCH_PAUSE: Duration = Duration::from_secs(10);

/// One public key from the set.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Key {
    kid: Option<String>,
    /// The JWK's own `alg`, which, when present, is the only algorithm the key may be used with.
    alg: Option<String>,
    material: Material,
}

#[derive(Debug, Clone, PartialEq, Eq)]
enum Material {
    Rsa {
        n: Vec<u8>,
        e: Vec<u8>,
    },
    /// An uncompressed SEC1 point.
    P256(Vec<u8>),
    P384(Vec<u8>),
    Ed25519(Vec<u8>),
}

impl Key {
    fn fits(&self, alg: Algorithm) -> bool {
        if self.alg.as_deref().is_some_and(|a| a != alg.name()) {
            return false;
        }
        matches!(
            (&self.material, alg),
            (
                Material::Rsa { .. },
                Algorithm::Rs256
                    | Algorithm::Rs384
                    | Algorithm::Rs512
                    | Algorithm::Ps256
                    | Algorithm::Ps384
                    | Algorithm::Ps512
            ) | (Material::P256(_), Algorithm::Es256)
                | (Material::P384(_), Algorithm::Es384)
                | (Material::Ed25519(_), Algorithm::EdDsa | Algorithm::Ed25519)
        )
    }

    fn verify(&self, alg: Algorithm, message: &[u8], signature: &[u8]) -> bool {
        let rsa = |params: &'static signature::RsaParameters| match &self.material {
            Material::Rsa { n, e } => {
                RsaPublicKeyComponents { n, e }.verify(params, message, signature).is_ok()
            }
            _ => false,
        };
        let other = |params: &'static dyn signature::VerificationAlgorithm, key: &[u8]| {
            UnparsedPublicKey::new(params, key).verify(message, signature).is_ok()
        };
        match (alg, &self.material) {
            (Algorithm::Rs256, _) => rsa(&signature::RSA_PKCS1_2048_8192_SHA256),
            (Algorithm::Rs384, _) => rsa(&signature::RSA_PKCS1_2048_8192_SHA384),
            (Algorithm::Rs512, _) => rsa(&signature::RSA_PKCS1_2048_8192_SHA512),
            (Algorithm::Ps256, _) => rsa(&signature::RSA_PSS_2048_8192_SHA256),
            (Algorithm::Ps384, _) => rsa(&signature::RSA_PSS_2048_8192_SHA384),
            (Algorithm::Ps512, _) => rsa(&signature::RSA_PSS_2048_8192_SHA512),
            (Algorithm::Es256, Material::P256(point)) => other(&signature::ECDSA_P256_SHA256_FIXED, point),
            (Algorithm::Es384, Material::P384(point)) => other(&signature::ECDSA_P384_SHA384_FIXED, point),
            (Algorithm::EdDsa | Algorithm::Ed25519, Material::Ed25519(key)) => {
                other(&signature::ED25519, key)
            }
            _ => false,
        }
    }
}

/// A parsed JWK Set. Keys deskgate cannot use (encryption keys, unknown types or curves,
/// symmetric keys) are left out rather than failing the whole set.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub(crate) struct KeySet {
    keys: Vec<Key>,
}

/// What a key set said about a token.
#[derive(Debug, PartialEq, Eq)]
pub(crate) enum Verdict {
    /// A fitting key verified the signature.
    Valid,
    /// Keys fit, none verified.
    BadSignature,
    /// No key fits the token's `kid` and algorithm.
    NoKey,
}

impl KeySet {
    /// Parses a JWK Set document.
    pub(crate) fn parse(document: &[u8]) -> Result<KeySet, String> {
        let value: Value = serde_json::from_slice(document).map_err(|e| format!("not JSON: {e}"))?;
        let Some(list) = value.get("keys").and_then(Value::as_array) else {
            return Err("no `keys` array".into());
        };
        Ok(KeySet { keys: list.iter().filter_map(parse_key).collect() })
    }

    /// How many usable keys the set holds.
    pub(crate) fn len(&self) -> usize {
        self.keys.len()
    }

    /// Checks the token's signature with the keys that fit its `kid` and algorithm. A token
    /// without `kid` is tried against every fitting key.
    pub(crate) fn verify(&self, jws: &Jws<'_>) -> Verdict {
        let mut fitting = self
            .keys
            .iter()
            .filter(|k| k.fits(jws.alg))
            .filter(|k| jws.kid.is_none() || k.kid == jws.kid)
            .peekable();
        if fitting.peek().is_none() {
            return Verdict::NoKey;
        }
        if fitting.any(|k| k.verify(jws.alg, jws.signing_input, &jws.signature)) {
            Verdict::Valid
        } else {
            Verdict::BadSignature
        }
    }
}

fn parse_key(jwk: &Value) -> Option<Key> {
    let field = |name: &str| jwk.get(name).and_then(Value::as_str);
    let bytes = |name: &str| field(name).and_then(|v| URL_SAFE_NO_PAD.decode(v).ok());
    if field("use").is_some_and(|u| u != "sig") {
        return None;
    }
    if let Some(ops) = jwk.get("key_ops").and_then(Value::as_array) {
        if !ops.iter().any(|op| op.as_str() == Some("verify")) {
            return None;
        }
    }
    let material = match (field("kty")?, field("crv")) {
        ("RSA", _) => {
            // ring wants the modulus without leading zero bytes.
            let n = bytes("n")?;
            let first = n.iter().position(|b| *b != 0)?;
            Material::Rsa { n: n[first..].to_vec(), e: bytes("e")? }
        }
        ("EC", Some("P-256")) => Material::P256(point(&bytes("x")?, &bytes("y")?, 32)?),
        ("EC", Some("P-384")) => Material::P384(point(&bytes("x")?, &bytes("y")?, 48)?),
        ("OKP", Some("Ed25519")) => {
            let x = bytes("x")?;
            (x.len() == 32).then_some(Material::Ed25519(x))?
        }
        _ => return None,
    };
    Some(Key { kid: field("kid").map(str::to_owned), alg: field("alg").map(str::to_owned), material })
}

fn point(x: &[u8], y: &[u8], len: usize) -> Option<Vec<u8>> {
    if x.len() != len || y.len() != len {
        return None;
    }
    let mut out = Vec::with_capacity(1 + 2 * len);
    out.push(0x04);
    out.extend_from_slice(x);
    out.extend_from_slice(y);
    Some(out)
}

/// The provider's keys as last fetched, with the refetch rules.
#[derive(Debug)]
pub(crate) struct Jwks {
    uri: Url,
    current: RwLock<Current>,
    /// Held while fetching, so that one fetch is in flight at a time and those who waited
    /// for it use its result.
    fetching: tokio::sync::Mutex<()>,
}

#[derive(Debug, Clone, Default)]
struct Current {
    keys: Option<Arc<KeySet>>,
    /// Counts fetches, so a waiter can tell whether someone fetched while it waited.
    generation: u64,
    last_attempt: Option<SystemTime>,
}

impl Jwks {
    pub(crate) fn new(uri: Url) -> Jwks {
        Jwks { uri, current: RwLock::new(Current::default()), fetching: tokio::sync::Mutex::new(()) }
    }

    fn snapshot(&self) -> Current {
        match self.current.read() {
            Ok(current) => current.clone(),
            Err(poisoned) => poisoned.into_inner().clone(),
        }
    }

    fn store(&self, update: impl FnOnce(&mut Current)) {
        match self.current.write() {
            Ok(mut current) => update(&mut current),
            Err(poisoned) => update(&mut poisoned.into_inner()),
        }
    }

    /// Fetches the set unless it was fetched already (used to warm the cache).
    pub(crate) async fn load(&self, http: &Http, clock: &dyn Clock) -> Result<(), OidcError> {
        let seen = self.snapshot();
        if seen.keys.is_some() {
            return Ok(());
        }
        self.refresh(seen.generation, http, clock).await.map(|_| ())
    }

    /// Verifies the token's signature, refetching the set once if no key fits.
    pub(crate) async fn verify(
        &self,
        jws: &Jws<'_>,
        http: &Http,
        clock: &dyn Clock,
    ) -> Result<(), crate::VerifyError> {
        let seen = self.snapshot();
        if let Some(keys) = &seen.keys {
            match keys.verify(jws) {
                Verdict::Valid => return Ok(()),
                Verdict::BadSignature => return Err(IdTokenError::BadSignature.into()),
                Verdict::NoKey => {}
            }
        }
        let Some(keys) = self.refresh(seen.generation, http, clock).await? else {
            return Err(IdTokenError::UnknownKey.into());
        };
        match keys.verify(jws) {
            Verdict::Valid => Ok(()),
            Verdict::BadSignature => Err(IdTokenError::BadSignature.into()),
            Verdict::NoKey => Err(IdTokenError::UnknownKey.into()),
        }
    }

    /// Fetches a new set unless another fetch happened since `seen_generation` (its result is
    /// used) or the last attempt was less than [`REFETCH_PAUSE`] ago (`None`).
    async fn refresh(
        &self,
        seen_generation: u64,
        http: &Http,
        clock: &dyn Clock,
    ) -> Result<Option<Arc<KeySet>>, OidcError> {
        let _one_at_a_time = self.fetching.lock().await;
        let current = self.snapshot();
        if current.generation != seen_generation {
            return Ok(current.keys);
        }
        let now = clock.now();
        let paused = current
            .last_attempt
            .is_some_and(|at| now.duration_since(at).is_ok_and(|elapsed| elapsed < REFETCH_PAUSE));
        if paused && current.keys.is_some() {
            tracing::debug!(jwks = %self.uri, "Unknown signing key; the key set was fetched moments ago");
            return Ok(None);
        }
        self.fetch(now, http).await.map(Some)
    }

    /// Fetches the set again now, however recently it was fetched, so that a key the provider
    /// has withdrawn stops being trusted (the scheduled refresh). A failed fetch keeps the
    /// keys there are.
    pub(crate) async fn refresh_now(&self, http: &Http, clock: &dyn Clock) -> Result<(), OidcError> {
        let seen = self.snapshot();
        let _one_at_a_time = self.fetching.lock().await;
        if self.snapshot().generation != seen.generation {
            // Fetched while this waited: that is as fresh.
            return Ok(());
        }
        self.fetch(clock.now(), http).await.map(|_| ())
    }

    async fn fetch(&self, now: SystemTime, http: &Http) -> Result<Arc<KeySet>, OidcError> {
        self.store(|c| c.last_attempt = Some(now));
        let document = http.get(&self.uri, MAX_DOCUMENT_BYTES).await?;
        let keys = KeySet::parse(&document)
            .map_err(|detail| OidcError::Malformed { url: self.uri.to_string(), detail })?;
        tracing::info!(jwks = %self.uri, keys = keys.len(), "Fetched the identity provider's signing keys");
        let keys = Arc::new(keys);
        self.store(|c| {
            c.keys = Some(keys.clone());
            c.generation += 1;
        });
        Ok(keys)
    }
}

#[cfg(test)]
mod tests;
