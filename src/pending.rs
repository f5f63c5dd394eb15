//! Pending sign-ins kept in the browser: a started OIDC or SAML sign-in (the provider's own
//! state, where to go afterwards, when it expires) sealed into a cookie with AES-256-GCM, so
//! the server keeps nothing until the provider's answer arrives and the answer completes
//! only in the browser that holds the cookie.

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use ring::aead::{AES_256_GCM, Aad, LessSafeKey, NONCE_LEN, Nonce, UnboundKey};
use ring::hkdf;
use sha2::{Digest, Sha256};

/// What a sealed cookie carries.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct Pending {
    /// The provider id (`oidc.google`), so a cookie is only good at its own provider.
    pub provider: String,
    /// The value the callback must carry back (OIDC `state`, SAML `RelayState`).
    pub key: String,
    /// The provider's own state for `complete` (nonce, PKCE verifier, request id).
    pub state: String,
    /// Where to go afterwards (already checked to be local).
    pub next: String,
    /// Unix seconds after which the cookie is refused, whatever the browser kept.
    pub expires: u64,
}

/// Why a presented cookie was not accepted.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum Unsealed {
    /// Not base64, too short or too long, or its tag does not verify (tampered, or sealed
    /// under another key).
    #[error("the pending sign-in cookie is damaged or was sealed under another key")]
    Damaged,
    /// It verifies, but names another provider or another state than the callback's.
    #[error("the pending sign-in cookie belongs to another sign-in")]
    Mismatch,
    /// Past its expiry.
    #[error("the pending sign-in cookie has expired")]
    Expired,
}

/// Sealed values longer than this are refused before any work: real ones are well under
/// 2 KB, and browsers keep at most about 4 KB per cookie anyway.
pub const MAX_COOKIE_LEN: usize = 4096;

/// Additional data bound into every seal, so these cookies cannot stand in for anything
/// else sealed under a key derived from the same secret.
const AAD: &[u8] = b"deskgate pending sign-in v1";

/// The key that seals and opens pending sign-in cookies. Cheap to clone.
#[derive(Clone)]
pub struct PendingKey {
    key: std::sync::Arc<LessSafeKey>,
    /// Seals refresh tokens kept in sessions: a key of its own, so that neither kind of
    /// sealed value can ever be opened as the other.
    tokens: std::sync::Arc<LessSafeKey>,
}

impl std::fmt::Debug for PendingKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("PendingKey(..)")
    }
}

/// HKDF output length marker for a 256-bit AES key.
struct KeyLen;

impl hkdf::KeyType for KeyLen {
    fn len(&self) -> usize {
        32
    }
}

impl PendingKey {
    /// A key derived from `secret` (HKDF-SHA256 with its own label): replicas sharing
    /// `session.secret` open each other's cookies, and a reload that keeps the secret keeps
    /// the key.
    pub fn from_secret(secret: &[u8]) -> PendingKey {
        let derive = |salt: &[u8], info: &[u8]| {
            let prk = hkdf::Salt::new(hkdf::HKDF_SHA256, salt).extract(secret);
            let mut bytes = [0u8; 32];
            // Expanding 32 bytes from SHA-256 is within HKDF's limit (255 blocks): cannot fail.
            prk.expand(&[info], KeyLen).and_then(|okm| okm.fill(&mut bytes)).ok().map(|()| bytes)
        };
        match (derive(b"deskgate-pending-cookie", AAD), derive(b"deskgate-refresh-token", TOKEN_AAD)) {
            (Some(pending), Some(tokens)) => PendingKey { key: aead(&pending), tokens: aead(&tokens) },
            _ => PendingKey::random(),
        }
    }

    /// A key made now, for a gateway without `session.secret`: pending sign-ins (and
    /// refresh tokens kept in sessions) do not survive a restart.
    pub fn random() -> PendingKey {
        PendingKey { key: aead(&rand::random()), tokens: aead(&rand::random()) }
    }

    /// Seals a refresh token for a session, bound to `binding` (who it was issued to):
    /// base64url of a random nonce, the ciphertext and the tag.
    pub fn seal_token(&self, binding: &str, token: &str) -> String {
        let aad = [TOKEN_AAD, binding.as_bytes()].concat();
        let mut data = token.as_bytes().to_vec();
        let nonce_bytes: [u8; NONCE_LEN] = rand::random();
        let nonce = Nonce::assume_unique_for_key(nonce_bytes);
        if self.tokens.seal_in_place_append_tag(nonce, Aad::from(&aad[..]), &mut data).is_err() {
            return String::new();
        }
        URL_SAFE_NO_PAD.encode([&nonce_bytes[..], &data].concat())
    }

    /// Opens what [`seal_token`](Self::seal_token) made for the same `binding`; `None` when
    /// it was tampered with, sealed for someone else, or under another secret.
    pub fn open_token(&self, binding: &str, sealed: &str) -> Option<String> {
        let aad = [TOKEN_AAD, binding.as_bytes()].concat();
        let mut bytes = URL_SAFE_NO_PAD.decode(sealed).ok()?;
        if bytes.len() < NONCE_LEN + AES_256_GCM.tag_len() {
            return None;
        }
        let mut nonce = [0u8; NONCE_LEN];
        nonce.copy_from_slice(&bytes[..NONCE_LEN]);
        let plain = self
            .tokens
            .open_in_place(Nonce::assume_unique_for_key(nonce), Aad::from(&aad[..]), &mut bytes[NONCE_LEN..])
            .ok()?;
        String::from_utf8(plain.to_vec()).ok()
    }

    /// The cookie value for `pending`: base64url of a random 96-bit nonce, the ciphertext
    /// and the tag. A fresh random nonce per cookie: no counter to share between replicas,
    /// and at the rates a gateway starts sign-ins a repeat stays out of reach.
    pub fn seal(&self, pending: &Pending) -> String {
        let mut data = serde_json::to_vec(pending).unwrap_or_default();
        let nonce_bytes: [u8; NONCE_LEN] = rand::random();
        let nonce = Nonce::assume_unique_for_key(nonce_bytes);
        // Sealing in place only fails for inputs larger than GCM's limit (64 GiB).
        if self.key.seal_in_place_append_tag(nonce, Aad::from(AAD), &mut data).is_err() {
            return String::new();
        }
        let mut out = Vec::with_capacity(NONCE_LEN + data.len());
        out.extend_from_slice(&nonce_bytes);
        out.extend_from_slice(&data);
        URL_SAFE_NO_PAD.encode(out)
    }

    /// Opens a cookie value and checks that it is for `provider`'s sign-in named `key` and
    /// not past `now`.
    pub fn open(&self, value: &str, provider: &str, key: &str, now: u64) -> Result<Pending, Unsealed> {
        let pending = self.unseal(value)?;
        // Both compared in constant time: the callback's values come from the client.
        if !constant_time_eq(&pending.provider, provider) || !constant_time_eq(&pending.key, key) {
            return Err(Unsealed::Mismatch);
        }
        if pending.expires <= now {
            return Err(Unsealed::Expired);
        }
        Ok(pending)
    }

    /// Decrypts and verifies a cookie value, whatever sign-in it is for.
    pub fn unseal(&self, value: &str) -> Result<Pending, Unsealed> {
        if value.len() > MAX_COOKIE_LEN {
            return Err(Unsealed::Damaged);
        }
        let mut bytes = URL_SAFE_NO_PAD.decode(value).map_err(|_| Unsealed::Damaged)?;
        if bytes.len() < NONCE_LEN + AES_256_GCM.tag_len() {
            return Err(Unsealed::Damaged);
        }
        let mut nonce = [0u8; NONCE_LEN];
        nonce.copy_from_slice(&bytes[..NONCE_LEN]);
        let plain = self
            .key
            .open_in_place(Nonce::assume_unique_for_key(nonce), Aad::from(AAD), &mut bytes[NONCE_LEN..])
            .map_err(|_| Unsealed::Damaged)?;
        serde_json::from_slice(plain).map_err(|_| Unsealed::Damaged)
    }
}

/// A 256-bit AES-GCM key.
fn aead(bytes: &[u8; 32]) -> std::sync::Arc<LessSafeKey> {
    // AES-256-GCM takes any 32-byte key: this cannot fail.
    let unbound = UnboundKey::new(&AES_256_GCM, bytes).unwrap_or_else(|_| unreachable!("32-byte key"));
    std::sync::Arc::new(LessSafeKey::new(unbound))
}

/// Bound into every sealed refresh token, with the session it belongs to.
const TOKEN_AAD: &[u8] = b"deskgate refresh token v1\n";

/// Equal contents, compared without stopping at the first difference (lengths are public).
fn constant_time_eq(a: &str, b: &str) -> bool {
    a.len() == b.len() && a.bytes().zip(b.bytes()).fold(0u8, |diff, (x, y)| diff | (x ^ y)) == 0
}

/// The prefix of every pending sign-in cookie's name.
pub const COOKIE_PREFIX: &str = "deskgate_pending_";

/// The cookie name for the sign-in whose callback carries `key`: one cookie per started
/// sign-in, so sign-ins started in parallel tabs each finish. The suffix is a short hash of
/// the key (the key itself may hold characters a cookie name may not).
pub fn cookie_name(key: &str) -> String {
    let digest = Sha256::digest(key.as_bytes());
    let hex: String = digest[..6].iter().map(|b| format!("{b:02x}")).collect();
    format!("{COOKIE_PREFIX}{hex}")
}

#[cfg(test)]
#[allow(clippy::unwrap_used, reason = "a test reports failure by panicking")]
mod tests {
    use super::*;

    fn pending(expires: u64) -> Pending {
        Pending {
            provider: "oidc.google".into(),
            key: "state-123".into(),
            state: r#"{"nonce":"n","verifier":"v"}"#.into(),
            next: "/kb".into(),
            expires,
        }
    }

    #[test]
    fn a_sealed_pending_sign_in_opens_for_its_provider_and_state_until_it_expires() {
        let key = PendingKey::from_secret(b"a secret of at least thirty-two bytes!!");
        let sealed = key.seal(&pending(1_000));
        assert!(!sealed.contains("state-123") && !sealed.contains("/kb"), "encrypted, not just signed");
        assert_eq!(key.open(&sealed, "oidc.google", "state-123", 999), Ok(pending(1_000)));
        assert_eq!(key.open(&sealed, "oidc.google", "state-123", 1_000), Err(Unsealed::Expired));
        assert_eq!(key.open(&sealed, "oidc.corp", "state-123", 999), Err(Unsealed::Mismatch));
        assert_eq!(key.open(&sealed, "oidc.google", "state-124", 999), Err(Unsealed::Mismatch));
        assert_eq!(key.open(&sealed, "oidc.google", "", 999), Err(Unsealed::Mismatch));
    }

    #[test]
    fn two_seals_of_the_same_sign_in_differ() {
        let key = PendingKey::random();
        assert_ne!(key.seal(&pending(1)), key.seal(&pending(1)), "a fresh nonce per cookie");
    }

    #[test]
    fn a_tampered_truncated_or_foreign_cookie_is_refused() {
        let key = PendingKey::from_secret(b"secret one, thirty-two bytes long!!");
        let sealed = key.seal(&pending(1_000));
        let bytes = URL_SAFE_NO_PAD.decode(&sealed).unwrap();
        for i in 0..bytes.len() {
            let mut flipped = bytes.clone();
            flipped[i] ^= 0x01;
            let value = URL_SAFE_NO_PAD.encode(&flipped);
            assert_eq!(key.open(&value, "oidc.google", "state-123", 0), Err(Unsealed::Damaged), "byte {i}");
        }
        for value in [
            "",
            "not base64!",
            &sealed[..sealed.len() - 1],
            &sealed[..20],
            &format!("{sealed}AAAA"),
            &"A".repeat(MAX_COOKIE_LEN + 4),
        ] {
            assert_eq!(key.open(value, "oidc.google", "state-123", 0), Err(Unsealed::Damaged), "{value:.40}");
        }
        let other = PendingKey::from_secret(b"secret two, thirty-two bytes long!!");
        assert_eq!(other.open(&sealed, "oidc.google", "state-123", 0), Err(Unsealed::Damaged));
        assert_eq!(PendingKey::random().open(&sealed, "oidc.google", "state-123", 0), Err(Unsealed::Damaged));
    }

    #[test]
    fn a_sealed_refresh_token_opens_only_for_its_session_and_secret() {
        let key = PendingKey::from_secret(b"a secret of at least thirty-two bytes!!");
        let sealed = key.seal_token("acct-1\noidc.corp\n1001", "the-refresh-token");
        assert!(!sealed.contains("refresh"), "encrypted");
        assert_eq!(key.open_token("acct-1\noidc.corp\n1001", &sealed).as_deref(), Some("the-refresh-token"));
        assert_eq!(key.open_token("acct-2\noidc.corp\n1001", &sealed), None, "another session's");
        assert_eq!(
            PendingKey::from_secret(b"another secret, thirty-two bytes long")
                .open_token("acct-1\noidc.corp\n1001", &sealed),
            None
        );
        assert_eq!(key.open_token("acct-1\noidc.corp\n1001", &sealed[..sealed.len() - 2]), None);
        assert_eq!(key.open_token("acct-1\noidc.corp\n1001", "garbage!"), None);
        // A pending sign-in cookie is not a token, nor the other way round.
        assert!(key.unseal(&sealed).is_err());
        assert_eq!(key.open_token("", &key.seal(&pending(10))), None);
    }

    #[test]
    fn replicas_sharing_the_secret_open_each_others_cookies() {
        let secret = b"shared by every replica, 32 bytes+";
        let sealed = PendingKey::from_secret(secret).seal(&pending(10));
        assert!(PendingKey::from_secret(secret).open(&sealed, "oidc.google", "state-123", 5).is_ok());
    }

    #[test]
    fn each_state_gets_its_own_cookie_name_of_cookie_safe_characters() {
        let a = cookie_name("state-a");
        assert_eq!(a, cookie_name("state-a"));
        assert_ne!(a, cookie_name("state-b"));
        assert_eq!(cookie_name("; =\u{e9}").len(), "deskgate_pending_".len() + 12);
        assert!(a.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_'));
    }
}
