//! Built-in accounts: email and password, stored as argon2id hashes by the gateway's
//! account store. This crate verifies and hashes; it does not know where accounts live.

use std::future::Future;

use argon2::password_hash::{PasswordHash, PasswordHasher, PasswordVerifier, SaltString};
use argon2::{Algorithm, Argon2, Params, Version};
use deskgate_provider::{AuthError, Identity, PasswordProvider};

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
}

impl<S: CredentialSource> Builtin<S> {
    /// A provider over the given credential source.
    pub fn new(source: S) -> Self {
        let decoy_hash = hash_password("deskgate decoy password").unwrap_or_default();
        Builtin { source, decoy_hash }
    }
}

fn hasher() -> Argon2<'static> {
    // OWASP's argon2id baseline: 19 MiB, 2 iterations, 1 lane.
    let params = Params::new(19 * 1024, 2, 1, None).unwrap_or_default();
    Argon2::new(Algorithm::Argon2id, Version::V0x13, params)
}

/// Why a password could not be hashed.
#[derive(Debug, thiserror::Error)]
#[error("password hashing failed: {0}")]
pub struct HashError(String);

/// Hashes a password with argon2id and a random salt, in PHC string format.
pub fn hash_password(password: &str) -> Result<String, HashError> {
    let salt = SaltString::generate(&mut rand::rngs::OsRng);
    hasher()
        .hash_password(password.as_bytes(), &salt)
        .map(|h| h.to_string())
        .map_err(|e| HashError(e.to_string()))
}

/// Checks a password against a PHC hash; a malformed hash never verifies.
pub fn verify_password(password: &str, hash: &str) -> bool {
    match PasswordHash::new(hash) {
        Ok(parsed) => hasher().verify_password(password.as_bytes(), &parsed).is_ok(),
        Err(_) => false,
    }
}

async fn verify_blocking(password: &str, hash: &str) -> bool {
    let (password, hash) = (password.to_owned(), hash.to_owned());
    // argon2 is deliberately slow: keep it off the async worker threads.
    tokio::task::spawn_blocking(move || verify_password(&password, &hash)).await.unwrap_or(false)
}

impl<S: CredentialSource> PasswordProvider for Builtin<S> {
    async fn verify(&self, username: &str, password: &str) -> Result<Identity, AuthError> {
        if password.is_empty() || username.trim().is_empty() {
            return Err(AuthError::InvalidCredentials);
        }
        let Some(cred) = self.source.credential(username.trim()).await? else {
            verify_blocking(password, &self.decoy_hash).await;
            return Err(AuthError::InvalidCredentials);
        };
        if !verify_blocking(password, &cred.password_hash).await {
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
}
