//! The JWT handed to the backend: EdDSA (Ed25519). A session's token is signed once and
//! reused until near expiry; the session keeps only the signature and the signing time, and
//! the token's text is built again from the session at each request, so that a million busy
//! sessions do not each hold a copy of their token. The public keys are published as a JWKS:
//! the current key, and any key it replaced until the last token that key signed has expired.

use std::path::Path;

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use ed25519_dalek::pkcs8::{DecodePrivateKey, EncodePrivateKey};
use ed25519_dalek::{Signer as _, SigningKey};
use http::HeaderValue;
use sha2::{Digest, Sha256};

use crate::session::{Session, Signed};

/// Why the signing key could not be loaded.
#[derive(Debug, thiserror::Error)]
pub enum KeyError {
    /// The key file could not be read.
    #[error("cannot read JWT key file {path}")]
    Read {
        /// The file.
        path: String,
        /// Why.
        #[source]
        source: std::io::Error,
    },
    /// The key file is not a PKCS#8 PEM Ed25519 private key.
    #[error("JWT key file {0} is not a PKCS#8 PEM Ed25519 private key")]
    Format(String),
}

/// Where the signing key came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum KeySource {
    /// `jwt.key_file`.
    File,
    /// Derived from `session.secret`: replicas sharing the secret share the key.
    Secret,
    /// Made at start, kept for the life of the process.
    Generated,
}

/// A key that signed tokens which may still be in use.
#[derive(Debug, Clone)]
struct Retired {
    jwk: serde_json::Value,
    kid: String,
    /// When the last token it signed expires.
    until: u64,
}

/// Signs identity tokens.
pub struct Signer {
    key: SigningKey,
    source: KeySource,
    kid: String,
    /// The first bytes of `kid`, as kept in [`Signed`].
    fingerprint: u64,
    /// The token's first part, `base64url(header).`
    header: String,
    issuer: String,
    audience: String,
    ttl: u64,
    jwk: serde_json::Value,
    retired: Vec<Retired>,
    /// The JWKS once no retired key is listed any more: the current key alone.
    jwks: bytes::Bytes,
}

impl std::fmt::Debug for Signer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Signer").field("kid", &self.kid).field("source", &self.source).finish_non_exhaustive()
    }
}

#[derive(serde::Serialize)]
struct Claims<'a> {
    iss: &'a str,
    aud: &'a str,
    sub: &'a str,
    iat: u64,
    exp: u64,
    #[serde(skip_serializing_if = "Option::is_none")]
    email: Option<&'a str>,
    /// Present with `email`: whether the address is verified.
    #[serde(skip_serializing_if = "Option::is_none")]
    email_verified: Option<bool>,
    name: &'a str,
    usergroups: &'a [String],
    permissions: &'a [String],
    provider: &'a str,
    /// How the person authenticated in this session (RFC 8176 values); `[]` when unknown.
    amr: &'a [String],
}

/// A new random Ed25519 key as PKCS#8 PEM.
pub fn generate_pem() -> Result<String, KeyError> {
    let key = SigningKey::generate(&mut rand::rngs::OsRng);
    key.to_pkcs8_pem(Default::default())
        .map(|pem| pem.to_string())
        .map_err(|_| KeyError::Format("(generated)".into()))
}

/// Where a signer's key comes from.
pub enum KeyChoice<'a> {
    /// A PKCS#8 PEM file.
    File(&'a Path),
    /// Derived from the session secret.
    Secret(&'a [u8]),
    /// Made now.
    Generate,
}

impl KeyChoice<'_> {
    fn key(&self) -> Result<(SigningKey, KeySource), KeyError> {
        Ok(match self {
            KeyChoice::File(path) => {
                let pem = std::fs::read_to_string(path)
                    .map_err(|source| KeyError::Read { path: path.display().to_string(), source })?;
                let key = SigningKey::from_pkcs8_pem(&pem)
                    .map_err(|_| KeyError::Format(path.display().to_string()))?;
                (key, KeySource::File)
            }
            KeyChoice::Secret(secret) => {
                // HMAC-SHA-256 under a fixed label: one of several keys derived from the one
                // secret, none of which reveals the others.
                let label = ring::hmac::Key::new(ring::hmac::HMAC_SHA256, b"deskgate jwt signing key v1");
                let seed = ring::hmac::sign(&label, secret);
                let mut bytes = [0u8; 32];
                bytes.copy_from_slice(seed.as_ref());
                (SigningKey::from_bytes(&bytes), KeySource::Secret)
            }
            KeyChoice::Generate => (SigningKey::generate(&mut rand::rngs::OsRng), KeySource::Generated),
        })
    }
}

impl Signer {
    /// A signer with the key from `key_file`, or a fresh random key.
    pub fn new(
        key_file: Option<&Path>,
        issuer: &str,
        audience: &str,
        ttl_secs: u64,
    ) -> Result<Signer, KeyError> {
        let choice = key_file.map_or(KeyChoice::Generate, KeyChoice::File);
        Signer::replacing(None, &choice, issuer, audience, ttl_secs, 0)
    }

    /// A signer for a (re)loaded config at `now`. A generated key is kept from `previous`
    /// while nothing else is chosen, so a reload never changes it; a key that changes stays
    /// published until the last token it signed has expired.
    pub fn replacing(
        previous: Option<&Signer>,
        choice: &KeyChoice<'_>,
        issuer: &str,
        audience: &str,
        ttl_secs: u64,
        now: u64,
    ) -> Result<Signer, KeyError> {
        let (key, source) = match (choice, previous) {
            (KeyChoice::Generate, Some(p)) if p.source == KeySource::Generated => {
                (p.key.clone(), KeySource::Generated)
            }
            _ => choice.key()?,
        };
        let public = key.verifying_key().to_bytes();
        let kid = URL_SAFE_NO_PAD.encode(&Sha256::digest(public)[..12]);
        let mut fp = [0u8; 8];
        fp.copy_from_slice(&Sha256::digest(public)[..8]);
        let jwk = serde_json::json!({
            "kty": "OKP", "crv": "Ed25519", "alg": "EdDSA", "use": "sig",
            "kid": kid, "x": URL_SAFE_NO_PAD.encode(public),
        });
        let mut retired = Vec::new();
        if let Some(p) = previous {
            retired.extend(p.retired.iter().filter(|r| r.until > now && r.kid != kid).cloned());
            if p.kid != kid {
                // Tokens are reused until a fifth of their life is left, and never outlive it.
                retired.push(Retired { jwk: p.jwk.clone(), kid: p.kid.clone(), until: now + p.ttl });
            }
        }
        let header = serde_json::json!({"alg": "EdDSA", "typ": "JWT", "kid": kid});
        let mut signer = Signer {
            key,
            source,
            kid,
            fingerprint: u64::from_be_bytes(fp),
            header: format!("{}.", URL_SAFE_NO_PAD.encode(header.to_string())),
            issuer: issuer.to_owned(),
            audience: audience.to_owned(),
            ttl: ttl_secs.max(1),
            jwk,
            retired,
            jwks: bytes::Bytes::new(),
        };
        signer.jwks = signer.document(u64::MAX);
        Ok(signer)
    }

    /// Where the key came from.
    pub fn source(&self) -> KeySource {
        self.source
    }

    /// The current key's id.
    pub fn kid(&self) -> &str {
        &self.kid
    }

    fn document(&self, now: u64) -> bytes::Bytes {
        let keys: Vec<&serde_json::Value> = std::iter::once(&self.jwk)
            .chain(self.retired.iter().filter(|r| r.until > now).map(|r| &r.jwk))
            .collect();
        bytes::Bytes::from(serde_json::json!({ "keys": keys }).to_string())
    }

    /// The JWKS document at `now`.
    pub fn jwks(&self, now: u64) -> bytes::Bytes {
        if self.retired.iter().any(|r| r.until > now) { self.document(now) } else { self.jwks.clone() }
    }

    fn claims(&self, s: &Session, iat: u64) -> String {
        self.claims_for(s, iat, &self.audience)
    }

    fn claims_for(&self, s: &Session, iat: u64, aud: &str) -> String {
        let claims = Claims {
            iss: &self.issuer,
            aud,
            sub: &s.account_id,
            iat,
            exp: iat + self.ttl,
            email: s.email.as_deref(),
            email_verified: s.email.as_ref().map(|_| s.email_verified),
            name: &s.name,
            usergroups: &s.resolved.usergroups,
            permissions: &s.resolved.permissions,
            provider: &s.provider,
            amr: &s.amr,
        };
        let mut text = self.header.clone();
        text.push_str(&URL_SAFE_NO_PAD.encode(serde_json::to_vec(&claims).unwrap_or_default()));
        text
    }

    /// Signs a token for a session at `now`; returns it with its expiry.
    pub fn sign(&self, s: &Session, now: u64) -> (String, u64) {
        let (token, signed) = self.sign_kept(s, now);
        (token, signed.iat + self.ttl)
    }

    fn sign_kept(&self, s: &Session, now: u64) -> (String, Signed) {
        let mut token = self.claims(s, now);
        let signature = self.key.sign(token.as_bytes()).to_bytes();
        token.push('.');
        token.push_str(&URL_SAFE_NO_PAD.encode(signature));
        (token, Signed { key: self.fingerprint, iat: now, signature })
    }

    /// The session's token for `audience`: as [`Signer::for_session`] for the configured
    /// one; another (a host's own) is signed for each request, never kept.
    pub fn for_session_to(&self, s: &Session, now: u64, audience: &str) -> HeaderValue {
        if self.is_default_audience(audience) {
            return self.for_session(s, now);
        }
        let mut token = self.claims_for(s, now, audience);
        let signature = self.key.sign(token.as_bytes()).to_bytes();
        token.push('.');
        token.push_str(&URL_SAFE_NO_PAD.encode(signature));
        HeaderValue::from_str(&token).unwrap_or_else(|_| HeaderValue::from_static(""))
    }

    /// Whether [`Signer::for_session`] at `now` reuses the kept signature `k`: made by this
    /// key, with more than a fifth of the token's lifetime left.
    fn reusable(&self, k: &Signed, now: u64) -> bool {
        k.key == self.fingerprint && (k.iat + self.ttl).saturating_sub(now) > self.ttl / 5
    }

    /// When the session's token was signed, if [`Signer::for_session`] at `now` would give
    /// the token of that signature again (the same text, for the same session).
    pub fn reused_since(&self, s: &Session, now: u64) -> Option<u64> {
        s.cache.lock().jwt.filter(|k| self.reusable(k, now)).map(|k| k.iat)
    }

    /// Whether `audience` is the configured one, whose tokens are kept (see
    /// [`Signer::for_session_to`]).
    pub fn is_default_audience(&self, audience: &str) -> bool {
        audience == self.audience
    }

    /// The session's token: its kept signature is reused, by this key, until less than a
    /// fifth of the token's lifetime remains; then it is signed anew.
    pub fn for_session(&self, s: &Session, now: u64) -> HeaderValue {
        let kept = s.cache.lock().jwt;
        let token = match kept {
            Some(k) if self.reusable(&k, now) => {
                let mut token = self.claims(s, k.iat);
                token.push('.');
                token.push_str(&URL_SAFE_NO_PAD.encode(k.signature));
                token
            }
            _ => {
                let (token, signed) = self.sign_kept(s, now);
                s.cache.lock().jwt = Some(signed);
                token
            }
        };
        HeaderValue::from_str(&token).unwrap_or_else(|_| HeaderValue::from_static(""))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use ed25519_dalek::{Signature, Verifier, VerifyingKey};

    #[test]
    fn tokens_verify_with_the_published_key_and_are_reused() {
        let signer = Signer::new(None, "https://gate.example", "deskgate", 300).expect("signer");
        let s = Session { account_id: "acc-1".into(), name: "Ann".into(), ..Default::default() };
        let a = signer.for_session(&s, 1000);
        assert_eq!(signer.for_session(&s, 1100), a, "reused while fresh");
        assert_ne!(signer.for_session(&s, 1250), a, "re-signed near expiry");

        let jwks: serde_json::Value = serde_json::from_slice(&signer.jwks(1000)).expect("json");
        let x = URL_SAFE_NO_PAD.decode(jwks["keys"][0]["x"].as_str().expect("x")).expect("b64");
        let key = VerifyingKey::from_bytes(&x.try_into().expect("32 bytes")).expect("key");
        let token = a.to_str().expect("ascii");
        let (signed, sig) = token.rsplit_once('.').expect("three parts");
        let sig = Signature::from_slice(&URL_SAFE_NO_PAD.decode(sig).expect("b64")).expect("sig");
        key.verify(signed.as_bytes(), &sig).expect("signature verifies");
        let claims: serde_json::Value = serde_json::from_slice(
            &URL_SAFE_NO_PAD.decode(signed.split('.').nth(1).expect("claims")).expect("b64"),
        )
        .expect("json");
        assert_eq!(claims["sub"], "acc-1");
        assert_eq!(claims["exp"], 1300);
    }

    fn kids(signer: &Signer, now: u64) -> Vec<String> {
        let jwks: serde_json::Value = serde_json::from_slice(&signer.jwks(now)).expect("json");
        jwks["keys"]
            .as_array()
            .expect("keys")
            .iter()
            .map(|k| k["kid"].as_str().expect("kid").to_owned())
            .collect()
    }

    fn kid_of(token: &HeaderValue) -> String {
        let header = token.to_str().expect("ascii").split('.').next().expect("header").to_owned();
        let header: serde_json::Value =
            serde_json::from_slice(&URL_SAFE_NO_PAD.decode(header).expect("b64")).expect("json");
        header["kid"].as_str().expect("kid").to_owned()
    }

    #[test]
    fn a_reload_keeps_a_generated_key_and_a_secret_gives_replicas_one_key() {
        let first = Signer::replacing(None, &KeyChoice::Generate, "i", "a", 300, 0).expect("signer");
        let reloaded =
            Signer::replacing(Some(&first), &KeyChoice::Generate, "i", "a", 300, 10).expect("signer");
        assert_eq!(reloaded.kid(), first.kid(), "a reload keeps the key made at start");
        assert_eq!(kids(&reloaded, 10), vec![first.kid().to_owned()], "and publishes only it");

        let secret = b"a session secret of at least thirty-two bytes";
        let one = Signer::replacing(None, &KeyChoice::Secret(secret), "i", "a", 300, 0).expect("signer");
        let two = Signer::replacing(None, &KeyChoice::Secret(secret), "i", "a", 300, 0).expect("signer");
        assert_eq!(one.kid(), two.kid(), "replicas sharing the secret share the key");
        let other =
            Signer::replacing(None, &KeyChoice::Secret(b"another secret"), "i", "a", 300, 0).expect("signer");
        assert_ne!(one.kid(), other.kid());
    }

    #[test]
    fn a_replaced_key_stays_published_until_its_last_token_expires() {
        let s = Session { account_id: "acc-1".into(), name: "Ann".into(), ..Default::default() };
        let old = Signer::replacing(None, &KeyChoice::Generate, "i", "a", 300, 1000).expect("signer");
        let token = old.for_session(&s, 1000);
        let new = Signer::replacing(Some(&old), &KeyChoice::Secret(b"a secret"), "i", "a", 300, 1100)
            .expect("signer");
        assert_eq!(kids(&new, 1100), vec![new.kid().to_owned(), old.kid().to_owned()]);
        assert_eq!(
            kid_of(&new.for_session(&s, 1100)),
            new.kid(),
            "the session is signed anew by the new key"
        );
        assert_eq!(kid_of(&token), old.kid());
        // The old key's last token was signed at 1100 at the latest, so it lives until 1400.
        assert_eq!(kids(&new, 1399).len(), 2);
        assert_eq!(kids(&new, 1400), vec![new.kid().to_owned()], "gone once its tokens have expired");
        let again = Signer::replacing(Some(&new), &KeyChoice::Generate, "i", "a", 300, 1200).expect("signer");
        assert_eq!(kids(&again, 1200).len(), 3, "a second change keeps both earlier keys while they matter");
        assert_eq!(kids(&again, 1400).len(), 2);
    }

    #[test]
    fn a_generated_pem_loads_back() {
        let dir = std::env::temp_dir().join(format!("deskgate-jwt-{}", rand::random::<u64>()));
        std::fs::create_dir_all(&dir).expect("dir");
        let path = dir.join("k.pem");
        std::fs::write(&path, generate_pem().expect("pem")).expect("write");
        assert!(Signer::new(Some(&path), "i", "a", 60).is_ok());
        std::fs::write(&path, "not a key").expect("write");
        assert!(matches!(Signer::new(Some(&path), "i", "a", 60), Err(KeyError::Format(_))));
        let _ = std::fs::remove_dir_all(dir);
    }
}
