//! The JWT handed to the backend: EdDSA (Ed25519), signed once per session and reused until
//! near expiry. The public key is published as a JWKS.

use std::path::Path;

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use ed25519_dalek::pkcs8::{DecodePrivateKey, EncodePrivateKey};
use ed25519_dalek::{Signer as _, SigningKey};
use http::HeaderValue;
use sha2::{Digest, Sha256};

use crate::session::Session;

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

/// Signs identity tokens.
pub struct Signer {
    key: SigningKey,
    kid: String,
    issuer: String,
    audience: String,
    ttl: u64,
    jwks: bytes::Bytes,
}

impl std::fmt::Debug for Signer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Signer").field("kid", &self.kid).finish_non_exhaustive()
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
}

/// A new random Ed25519 key as PKCS#8 PEM.
pub fn generate_pem() -> Result<String, KeyError> {
    let key = SigningKey::generate(&mut rand::rngs::OsRng);
    key.to_pkcs8_pem(Default::default())
        .map(|pem| pem.to_string())
        .map_err(|_| KeyError::Format("(generated)".into()))
}

impl Signer {
    /// A signer with the key from `key_file`, or a fresh random key.
    pub fn new(
        key_file: Option<&Path>,
        issuer: &str,
        audience: &str,
        ttl_secs: u64,
    ) -> Result<Signer, KeyError> {
        let key = match key_file {
            Some(path) => {
                let pem = std::fs::read_to_string(path)
                    .map_err(|source| KeyError::Read { path: path.display().to_string(), source })?;
                SigningKey::from_pkcs8_pem(&pem).map_err(|_| KeyError::Format(path.display().to_string()))?
            }
            None => SigningKey::generate(&mut rand::rngs::OsRng),
        };
        let public = key.verifying_key().to_bytes();
        let kid = URL_SAFE_NO_PAD.encode(&Sha256::digest(public)[..12]);
        let jwks = serde_json::json!({"keys": [{
            "kty": "OKP", "crv": "Ed25519", "alg": "EdDSA", "use": "sig",
            "kid": kid, "x": URL_SAFE_NO_PAD.encode(public),
        }]});
        Ok(Signer {
            key,
            kid,
            issuer: issuer.to_owned(),
            audience: audience.to_owned(),
            ttl: ttl_secs.max(1),
            jwks: bytes::Bytes::from(jwks.to_string()),
        })
    }

    /// The JWKS document.
    pub fn jwks(&self) -> bytes::Bytes {
        self.jwks.clone()
    }

    /// Signs a token for a session at `now`; returns it with its expiry.
    pub fn sign(&self, s: &Session, now: u64) -> (String, u64) {
        let exp = now + self.ttl;
        let claims = Claims {
            iss: &self.issuer,
            aud: &self.audience,
            sub: &s.account_id,
            iat: now,
            exp,
            email: s.email.as_deref(),
            email_verified: s.email.as_ref().map(|_| s.email_verified),
            name: &s.name,
            usergroups: &s.resolved.usergroups,
            permissions: &s.resolved.permissions,
            provider: &s.provider,
        };
        let header = serde_json::json!({"alg": "EdDSA", "typ": "JWT", "kid": self.kid});
        let mut token = URL_SAFE_NO_PAD.encode(header.to_string());
        token.push('.');
        token.push_str(&URL_SAFE_NO_PAD.encode(serde_json::to_vec(&claims).unwrap_or_default()));
        let signature = self.key.sign(token.as_bytes());
        token.push('.');
        token.push_str(&URL_SAFE_NO_PAD.encode(signature.to_bytes()));
        (token, exp)
    }

    /// The session's token, reused until less than a fifth of its lifetime remains.
    pub fn for_session(&self, s: &Session, now: u64) -> HeaderValue {
        let mut cached = s.cache.lock();
        if let Some((value, exp)) = cached.jwt.as_ref()
            && exp.saturating_sub(now) > self.ttl / 5
        {
            return value.clone();
        }
        let (token, exp) = self.sign(s, now);
        let value = HeaderValue::from_str(&token).unwrap_or_else(|_| HeaderValue::from_static(""));
        cached.jwt = Some((value.clone(), exp));
        value
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

        let jwks: serde_json::Value = serde_json::from_slice(&signer.jwks()).expect("json");
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
