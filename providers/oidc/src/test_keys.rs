//! Signing keys and token builders for the unit tests.

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use ring::rand::SystemRandom;
use ring::signature::{self, EcdsaKeyPair, Ed25519KeyPair, KeyPair};
use serde_json::{Value, json};

pub(crate) fn b64(bytes: impl AsRef<[u8]>) -> String {
    URL_SAFE_NO_PAD.encode(bytes)
}

/// `header.payload.signature` from JSON parts and raw signature bytes.
pub(crate) fn compact(header: &Value, claims: &Value, signature: &[u8]) -> String {
    format!("{}.{}.{}", b64(header.to_string()), b64(claims.to_string()), b64(signature))
}

enum Signer {
    Es256(EcdsaKeyPair),
    Ed25519(Ed25519KeyPair),
}

/// A freshly generated key with its public JWK.
pub(crate) struct TestKey {
    pub(crate) kid: String,
    pub(crate) alg: &'static str,
    pub(crate) jwk: Value,
    signer: Signer,
}

impl TestKey {
    pub(crate) fn es256(kid: &str) -> TestKey {
        let rng = SystemRandom::new();
        let alg = &signature::ECDSA_P256_SHA256_FIXED_SIGNING;
        let pkcs8 = EcdsaKeyPair::generate_pkcs8(alg, &rng).expect("generate P-256");
        let pair = EcdsaKeyPair::from_pkcs8(alg, pkcs8.as_ref(), &rng).expect("load P-256");
        let point = pair.public_key().as_ref();
        let jwk = json!({
            "kty": "EC", "crv": "P-256", "kid": kid, "use": "sig",
            "x": b64(&point[1..33]), "y": b64(&point[33..65]),
        });
        TestKey { kid: kid.into(), alg: "ES256", jwk, signer: Signer::Es256(pair) }
    }

    pub(crate) fn ed25519(kid: &str) -> TestKey {
        let rng = SystemRandom::new();
        let pkcs8 = Ed25519KeyPair::generate_pkcs8(&rng).expect("generate Ed25519");
        let pair = Ed25519KeyPair::from_pkcs8(pkcs8.as_ref()).expect("load Ed25519");
        let jwk = json!({
            "kty": "OKP", "crv": "Ed25519", "kid": kid,
            "x": b64(pair.public_key().as_ref()),
        });
        TestKey { kid: kid.into(), alg: "EdDSA", jwk, signer: Signer::Ed25519(pair) }
    }

    /// Signs `claims` under `header` as given.
    pub(crate) fn sign_with_header(&self, header: &Value, claims: &Value) -> String {
        let input = format!("{}.{}", b64(header.to_string()), b64(claims.to_string()));
        let signature = match &self.signer {
            Signer::Es256(pair) => {
                pair.sign(&SystemRandom::new(), input.as_bytes()).expect("sign").as_ref().to_vec()
            }
            Signer::Ed25519(pair) => pair.sign(input.as_bytes()).as_ref().to_vec(),
        };
        format!("{input}.{}", b64(signature))
    }

    /// Signs `claims` with this key's algorithm and kid.
    pub(crate) fn sign(&self, claims: &Value) -> String {
        self.sign_with_header(&json!({ "alg": self.alg, "kid": self.kid }), claims)
    }
}
