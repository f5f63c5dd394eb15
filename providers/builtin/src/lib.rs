//! Built-in accounts: email and password, stored as argon2id hashes by the gateway's
//! account store. This crate verifies and hashes; it does not know where accounts live.

use std::future::Future;

mod hashing;

use deskgate_provider::{AuthError, Identity, PasswordProvider};

pub use hashing::{Busy, HashError, Hashing, HashingLimits};

/// The provider id under which built-in accounts sign in.
pub const PROVIDER_ID: &str = "builtin";

/// A stored built-in credential, as the account store hands it over.
#[derive(Debug, Clone)]
pub struct StoredCredential {
    /// Account id.
    pub account_id: String,
    /// Account email (the login name).
    pub email: String,
    /// Display name.
    pub name: String,
    /// PHC-format argon2id hash.
    pub password_hash: String,
    /// Whether the account is disabled.
    pub disabled: bool,
    /// Why the account cannot sign in yet, if it is pending.
    pub pending: Option<&'static str>,
}

/// Where the built-in provider finds credentials.
pub trait CredentialSource: Send + Sync {
    /// Looks up the credential for an email, case-insensitively.
    fn credential(
        &self,
        email: &str,
    ) -> impl Future<Output = Result<Option<StoredCredential>, AuthError>> + Send;
}

/// The built-in password provider.
#[derive(Debug, Clone)]
pub struct Builtin<S> {
    source: S,
    /// Verified against when the account does not exist, so that unknown and known
    /// emails take the same time.
    decoy_hash: String,
    /// Where every check and hash runs: bounded turns, pooled memory.
    hashing: Hashing,
}

impl<S: CredentialSource> Builtin<S> {
    /// A provider over the given credential source, hashing within the default limits.
    pub fn new(source: S) -> Self {
        Builtin::with_limits(source, HashingLimits::default())
    }

    /// A provider over the given credential source, hashing within `limits`.
    pub fn with_limits(source: S, limits: HashingLimits) -> Self {
        Builtin::with_gate(source, Hashing::new(limits))
    }

    /// A provider over the given credential source, hashing through an existing gate (kept
    /// across a config reload, so that the bound holds for old and new requests together).
    pub fn with_gate(source: S, hashing: Hashing) -> Self {
        let decoy_hash = hash_password("deskgate decoy password").unwrap_or_default();
        Builtin { source, decoy_hash, hashing }
    }

    /// The hashing gate, shared with whoever else hashes passwords (sign-up, administrators).
    pub fn hashing(&self) -> &Hashing {
        &self.hashing
    }
}

/// Hashes a password with argon2id and a random salt, in PHC string format. Takes its own
/// memory, outside the shared gate: for the command line and tests, not for requests.
pub fn hash_password(password: &str) -> Result<String, HashError> {
    hashing::hash_with(password.as_bytes(), &mut Vec::new())
}

/// Checks a password against a PHC hash; a malformed hash never verifies. Takes its own
/// memory, outside the shared gate.
pub fn verify_password(password: &str, hash: &str) -> bool {
    hashing::verify_with(password.as_bytes(), hash, &mut Vec::new())
}

/// A sign-in refused because every password check turn stayed taken: the caller should
/// answer "busy, try again", not "wrong password".
fn busy(b: Busy) -> AuthError {
    AuthError::Unavailable(Box::new(b))
}

impl<S: CredentialSource> PasswordProvider for Builtin<S> {
    async fn verify(&self, username: &str, password: &str) -> Result<Identity, AuthError> {
        if password.is_empty() || username.trim().is_empty() {
            return Err(AuthError::InvalidCredentials);
        }
        let Some(cred) = self.source.credential(username.trim()).await? else {
            self.hashing.verify(password, &self.decoy_hash).await.map_err(busy)?;
            return Err(AuthError::InvalidCredentials);
        };
        if !self.hashing.verify(password, &cred.password_hash).await.map_err(busy)? {
            return Err(AuthError::InvalidCredentials);
        }
        // Told only after the password checked out, so these do not reveal which
        // emails have accounts.
        if cred.disabled {
            return Err(AuthError::AccountDisabled);
        }
        if let Some(why) = cred.pending {
            return Err(AuthError::AccountPending(why));
        }
        let mut identity = Identity::new(PROVIDER_ID, cred.account_id);
        identity.username = Some(cred.email.clone());
        identity.email = Some(cred.email);
        identity.email_verified = true;
        identity.display_name = Some(cred.name);
        Ok(identity)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hash_then_verify_round_trips_and_rejects_other_passwords() {
        let hash = hash_password("correct horse").expect("hash");
        assert!(hash.starts_with("$argon2id$"));
        assert!(verify_password("correct horse", &hash));
        assert!(!verify_password("Correct horse", &hash));
        assert!(!verify_password("correct horse", "not a hash"));
    }

    #[test]
    fn hashes_made_by_argon2s_own_api_still_verify_and_ours_verify_there() {
        use argon2::password_hash::{PasswordHash, PasswordHasher, PasswordVerifier, SaltString};
        let params = argon2::Params::new(19 * 1024, 2, 1, None).expect("params");
        let argon = argon2::Argon2::new(argon2::Algorithm::Argon2id, argon2::Version::V0x13, params);
        let salt = SaltString::generate(&mut rand::rngs::OsRng);
        let theirs = argon.hash_password(b"correct horse", &salt).expect("hash").to_string();
        assert!(verify_password("correct horse", &theirs));
        assert!(!verify_password("correct horsf", &theirs));
        let ours = hash_password("correct horse").expect("hash");
        let parsed = PasswordHash::new(&ours).expect("PHC string");
        assert!(argon.verify_password(b"correct horse", &parsed).is_ok());
        // A stored hash asking for unbounded memory never verifies (and takes none).
        let greedy = ours.replace("m=19456", "m=4194304");
        assert!(!verify_password("correct horse", &greedy));
    }

    #[tokio::test]
    async fn checks_beyond_the_turns_wait_then_get_busy_and_the_pool_stays_bounded() {
        let hashing =
            Hashing::new(HashingLimits { concurrency: 1, wait: std::time::Duration::from_millis(20) });
        let hash = hash_password("correct horse").expect("hash");
        let runs: Vec<_> = (0..4)
            .map(|_| {
                let (h, hash) = (hashing.clone(), hash.clone());
                tokio::spawn(async move { h.verify("correct horse", &hash).await })
            })
            .collect();
        let mut ok = 0;
        let mut busy = 0;
        for r in runs {
            match r.await.expect("task") {
                Ok(true) => ok += 1,
                Ok(false) => panic!("the right password was refused"),
                Err(Busy) => busy += 1,
            }
        }
        assert!(ok >= 1, "one turn always runs");
        assert!(busy >= 1, "the others cannot all fit in 20 ms behind a 19 MiB check");
        assert_eq!(hashing.checks(), 4);
        assert!(hashing.pooled() <= 1);
        let made = hashing.hash("another password").await.expect("hash");
        assert!(hashing.verify("another password", &made).await.expect("a turn"));
    }
}
