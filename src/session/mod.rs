//! Sessions: what the store keeps for a signed-in person, and the store trait with its
//! backends. The cookie holds an opaque random id; the store is keyed by a hash of it, so a
//! copy of the store's keys cannot be replayed as cookies.

mod memory;
mod redis;
mod redis_link;
mod token_cache;

use std::future::Future;
use std::sync::{Arc, Mutex};

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use sha2::{Digest, Sha256};

pub use self::redis::RedisStore;
pub use self::redis_link::LinkError as RedisLinkError;
pub use memory::{MemoryBounds, MemoryStore};
pub(crate) use token_cache::Entry as TokenEntry;
pub use token_cache::TokenCache;

use crate::clock::Clock;
use crate::usergroups::Resolved;

/// The binding a session's sealed refresh token is sealed under.
pub fn token_binding(account_id: &str, provider: &str, subject: &str) -> String {
    format!("{account_id}\n{provider}\n{subject}")
}

/// A signature kept with a session: what its token's text is built from again.
#[derive(Debug, Clone, Copy)]
pub struct Signed {
    /// Which key signed it (the first bytes of the key's id).
    pub(crate) key: u64,
    /// When it was signed (the token's `iat`).
    pub(crate) iat: u64,
    pub(crate) signature: [u8; 64],
}

/// A signed-in person's session.
#[derive(Debug, Default, serde::Serialize, serde::Deserialize)]
pub struct Session {
    /// Account id.
    pub account_id: String,
    /// Email, if the account has one (or, when it has none, the one its provider gave).
    pub email: Option<String>,
    /// Whether `email` is verified (see [`crate::accounts::Account::email_verified`]); sent
    /// to the backend, which must not trust an unverified address as proof of anything.
    #[serde(default)]
    pub email_verified: bool,
    /// The address the provider gave at sign-in when the account had none of its own: what
    /// `email` falls back to, unverified, when the session is resolved again.
    #[serde(default)]
    pub provider_email: Option<String>,
    /// Display name.
    pub name: String,
    /// Provider id the person signed in with.
    pub provider: String,
    /// Usergroups mapped from the provider's groups at sign-in.
    pub provider_usergroups: Vec<String>,
    /// Usergroups assigned to the account when the session was resolved.
    pub assigned_usergroups: Vec<String>,
    /// Organizations the provider said the person belongs to (e.g. AD's `company`), as it
    /// named them; matched to organizations' ids or names at each resolution, so that one
    /// created later is found too.
    #[serde(default)]
    pub provider_organizations: Vec<String>,
    /// Resolved usergroups and permissions, shared by every session that has the same.
    pub resolved: Arc<Resolved>,
    /// Config generation the resolution was made under.
    pub generation: u64,
    /// The account's epoch (see [`SessionStore::account_epoch`]) the resolution was made
    /// under; when the account's epoch has moved on, the session is resolved again.
    #[serde(default)]
    pub epoch: u64,
    /// The provider's stable identifier for the person (objectGUID, entryUUID, `sub`), so
    /// that the provider can be asked about them again during the session.
    #[serde(default)]
    pub subject: Box<str>,
    /// When the provider last said which groups the person is in (Unix seconds): at sign-in,
    /// then at each re-check (see `session.recheck_interval`).
    #[serde(default)]
    pub checked_at: u64,
    /// An OIDC refresh token, sealed (see [`crate::pending::PendingKey::seal_token`]); only
    /// for providers with `refresh_groups`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub refresh_token: Option<Box<str>>,
    /// The account's password serial (see `AccountStore::password_serial`) at sign-in: a
    /// password reset moves it on, which ends the session.
    #[serde(default)]
    pub password_serial: u64,
    /// How the person authenticated in this session (RFC 8176 `amr` values: `pwd`, `otp`,
    /// `hwk`, `mfa`, or what an OIDC provider said): told to the backend, and what rules and
    /// usergroups that require a second factor look at.
    #[serde(default)]
    pub amr: Vec<String>,
    /// When the session was created (Unix seconds).
    pub created_at: u64,
    /// When the session was last used, to a granularity of a minute.
    pub last_seen: u64,
    /// The client's address at sign-in (behind trusted proxies, the forwarded one), shown
    /// to the person in their list of sessions.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub client_addr: Option<String>,
    /// The browser's `User-Agent` at sign-in, cut to [`USER_AGENT_MAX`] characters.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub user_agent: Option<String>,
    /// The JWT's signature, made once per session and process.
    #[serde(skip)]
    pub cache: SessionCache,
}

/// Per-process derived values of a session: never stored, made on first use.
#[derive(Debug, Default)]
pub struct SessionCache(Mutex<Cached>);

/// What [`SessionCache`] holds.
#[derive(Debug, Default)]
pub struct Cached {
    /// The signature of the session's current JWT (its text is built again from the
    /// session at each request).
    pub jwt: Option<Signed>,
}

impl SessionCache {
    /// Locks the cache; a poisoned lock still holds consistent values.
    pub fn lock(&self) -> std::sync::MutexGuard<'_, Cached> {
        self.0.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Drops what is cached.
    pub fn clear(&self) {
        *self.lock() = Cached::default();
    }
}

/// The provider a request made with an API token is said to come through
/// (`X-Deskgate-Provider`, the JWT's `provider`): every sign-in provider's id but the
/// built-in one has a dot.
pub const TOKEN_PROVIDER: &str = "token";

impl Session {
    /// Whether this is the stand-in session of a request made with an API token.
    pub fn by_token(&self) -> bool {
        self.provider == TOKEN_PROVIDER
    }

    /// A copy with fresh `last_seen`, sharing nothing cached.
    pub fn touched(&self, now: u64) -> Session {
        Session {
            account_id: self.account_id.clone(),
            email: self.email.clone(),
            email_verified: self.email_verified,
            provider_email: self.provider_email.clone(),
            name: self.name.clone(),
            provider: self.provider.clone(),
            provider_usergroups: self.provider_usergroups.clone(),
            assigned_usergroups: self.assigned_usergroups.clone(),
            provider_organizations: self.provider_organizations.clone(),
            resolved: self.resolved.clone(),
            generation: self.generation,
            epoch: self.epoch,
            subject: self.subject.clone(),
            checked_at: self.checked_at,
            refresh_token: self.refresh_token.clone(),
            password_serial: self.password_serial,
            amr: self.amr.clone(),
            created_at: self.created_at,
            last_seen: now,
            client_addr: self.client_addr.clone(),
            user_agent: self.user_agent.clone(),
            cache: SessionCache::default(),
        }
    }
}

/// Most characters of a `User-Agent` kept with a session.
pub const USER_AGENT_MAX: usize = 200;

/// The store key of a session: the SHA-256 of the cookie value.
#[derive(Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct SessionKey([u8; 32]);

impl SessionKey {
    /// The key for a cookie value.
    pub fn from_cookie(value: &str) -> SessionKey {
        SessionKey(Sha256::digest(value.as_bytes()).into())
    }

    /// The key as text, for stores that key by strings.
    pub fn text(&self) -> String {
        URL_SAFE_NO_PAD.encode(self.0)
    }

    /// The key again from [`SessionKey::text`]; `None` for anything else.
    pub fn from_text(text: &str) -> Option<SessionKey> {
        let bytes = URL_SAFE_NO_PAD.decode(text).ok()?;
        Some(SessionKey(bytes.try_into().ok()?))
    }

    /// A name for the session that its owner's pages may show and post back: derived from
    /// the key one way, so that neither a page nor a form field ever holds the store key.
    pub fn handle(&self) -> String {
        let digest = Sha256::new().chain_update(b"deskgate session handle\n").chain_update(self.0).finalize();
        URL_SAFE_NO_PAD.encode(&digest[..16])
    }
}

impl std::fmt::Debug for SessionKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // A prefix is enough to tell sessions apart in logs.
        write!(f, "SessionKey({}…)", &self.text()[..8])
    }
}

/// A new random cookie value (256 bits).
pub fn new_cookie_value() -> String {
    let bytes: [u8; 32] = rand::random();
    URL_SAFE_NO_PAD.encode(bytes)
}

/// Puts an account's sessions in the order [`SessionStore::account_sessions`] lists them:
/// oldest first, then by key, so that the order is the same on every read.
fn oldest_first(sessions: &mut [(SessionKey, Arc<Session>)]) {
    sessions.sort_by(|a, b| a.1.created_at.cmp(&b.1.created_at).then_with(|| a.0.0.cmp(&b.0.0)));
}

/// Why a store operation failed.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// The store could not be reached.
    #[error("session store unavailable")]
    Unavailable(#[source] Box<dyn std::error::Error + Send + Sync>),
    /// The store holds as many entries of this kind as it may (`[limits]`): nothing new is
    /// kept until some expire.
    #[error("session store full: {0}")]
    Full(&'static str),
}

/// Where sessions, one-time login state and rate-limit counters live.
pub trait SessionStore: Send + Sync {
    /// The session under `key`, if it exists and has not expired.
    fn get(&self, key: &SessionKey) -> impl Future<Output = Result<Option<Arc<Session>>, StoreError>> + Send;
    /// Stores a session until `expires_at` (Unix seconds).
    fn put(
        &self,
        key: &SessionKey,
        session: Session,
        expires_at: u64,
    ) -> impl Future<Output = Result<Arc<Session>, StoreError>> + Send;
    /// Deletes a session; deleting a missing one is not an error.
    fn delete(&self, key: &SessionKey) -> impl Future<Output = Result<(), StoreError>> + Send;
    /// Adds one to a counter that lives for `window_secs` from its first hit; returns the count.
    fn incr(&self, counter: &str, window_secs: u64) -> impl Future<Output = Result<u64, StoreError>> + Send;
    /// The current value of a counter (0 when missing or expired).
    fn count(&self, counter: &str) -> impl Future<Output = Result<u64, StoreError>> + Send;
    /// Removes a counter.
    fn reset(&self, counter: &str) -> impl Future<Output = Result<(), StoreError>> + Send;
    /// Takes one back from a live counter (a hit reserved by [`SessionStore::incr`] that
    /// turned out not to count); never below zero, and a missing or expired counter stays
    /// missing.
    fn release(&self, counter: &str) -> impl Future<Output = Result<(), StoreError>> + Send;
    /// Stores a one-time value (a pending login's state, a replay-cache entry) until
    /// `expires_at`; returns false, storing nothing, when the key is already taken.
    fn put_once(
        &self,
        key: &str,
        value: Vec<u8>,
        expires_at: u64,
    ) -> impl Future<Output = Result<bool, StoreError>> + Send;
    /// Removes and returns a one-time value: a second take of the same key finds nothing.
    fn take(&self, key: &str) -> impl Future<Output = Result<Option<Vec<u8>>, StoreError>> + Send;
    /// Reads a live one-time value and leaves it in place (a page that shows what a later
    /// post will take).
    fn peek(&self, key: &str) -> impl Future<Output = Result<Option<Vec<u8>>, StoreError>> + Send;
    /// The session under `key` together with its account's current epoch, read at once: the
    /// session lookup of every request, so one step (one map, one Redis round trip).
    fn get_with_epoch(
        &self,
        key: &SessionKey,
    ) -> impl Future<Output = Result<Option<(Arc<Session>, u64)>, StoreError>> + Send;
    /// The epoch an account's sessions are resolved under: the account's own plus the shared
    /// one, 0 until either is first moved on. It changes whenever something a session was
    /// resolved from changes: the account (assigned usergroups, disabled) or something every
    /// account is resolved with (organizations). A sum of counters that only grow changes
    /// whenever either does.
    fn account_epoch(&self, account_id: &str) -> impl Future<Output = Result<u64, StoreError>> + Send;
    /// Moves an account's own epoch on, so that each of its sessions is resolved again on its
    /// next request; returns the account's own new epoch. Epochs never expire: a reset could
    /// repeat a value a session already saw.
    fn bump_account_epoch(&self, account_id: &str) -> impl Future<Output = Result<u64, StoreError>> + Send;
    /// The shared epoch alone: it names the version of what every account is resolved with.
    fn shared_epoch(&self) -> impl Future<Output = Result<u64, StoreError>> + Send;
    /// Moves the shared epoch on, so that every session is resolved again on its next request;
    /// returns the new shared epoch.
    fn bump_shared_epoch(&self) -> impl Future<Output = Result<u64, StoreError>> + Send;
    /// The live sessions of an account with their keys, oldest first: what its owner sees
    /// and may end. Stores index sessions by account as they are put (only a sign-in makes
    /// one); expired and deleted sessions leave the index.
    fn account_sessions(
        &self,
        account_id: &str,
    ) -> impl Future<Output = Result<Vec<(SessionKey, Arc<Session>)>, StoreError>> + Send;
}

/// The configured session store.
#[derive(Debug, Clone)]
pub enum Sessions {
    /// In this process's memory.
    Memory(MemoryStore),
    /// In Redis, shared by every replica.
    Redis(RedisStore),
}

impl Sessions {
    /// Whether the store answers, for readiness checks (the memory store always does).
    pub async fn ping(&self) -> Result<(), StoreError> {
        match self {
            Sessions::Memory(_) => Ok(()),
            Sessions::Redis(r) => r.ping().await,
        }
    }

    /// An in-memory store on `clock` that keeps at most `bounds` counters and one-time
    /// values.
    pub fn memory(clock: Clock, bounds: MemoryBounds) -> Sessions {
        Sessions::Memory(MemoryStore::new(clock).with_bounds(bounds))
    }
}

impl SessionStore for Sessions {
    async fn get(&self, key: &SessionKey) -> Result<Option<Arc<Session>>, StoreError> {
        match self {
            Sessions::Memory(m) => m.get(key).await,
            Sessions::Redis(r) => r.get(key).await,
        }
    }
    async fn put(
        &self,
        key: &SessionKey,
        session: Session,
        expires_at: u64,
    ) -> Result<Arc<Session>, StoreError> {
        match self {
            Sessions::Memory(m) => m.put(key, session, expires_at).await,
            Sessions::Redis(r) => r.put(key, session, expires_at).await,
        }
    }
    async fn delete(&self, key: &SessionKey) -> Result<(), StoreError> {
        match self {
            Sessions::Memory(m) => m.delete(key).await,
            Sessions::Redis(r) => r.delete(key).await,
        }
    }
    async fn incr(&self, counter: &str, window_secs: u64) -> Result<u64, StoreError> {
        match self {
            Sessions::Memory(m) => m.incr(counter, window_secs).await,
            Sessions::Redis(r) => r.incr(counter, window_secs).await,
        }
    }
    async fn count(&self, counter: &str) -> Result<u64, StoreError> {
        match self {
            Sessions::Memory(m) => m.count(counter).await,
            Sessions::Redis(r) => r.count(counter).await,
        }
    }
    async fn reset(&self, counter: &str) -> Result<(), StoreError> {
        match self {
            Sessions::Memory(m) => m.reset(counter).await,
            Sessions::Redis(r) => r.reset(counter).await,
        }
    }
    async fn release(&self, counter: &str) -> Result<(), StoreError> {
        match self {
            Sessions::Memory(m) => m.release(counter).await,
            Sessions::Redis(r) => r.release(counter).await,
        }
    }
    async fn put_once(&self, key: &str, value: Vec<u8>, expires_at: u64) -> Result<bool, StoreError> {
        match self {
            Sessions::Memory(m) => m.put_once(key, value, expires_at).await,
            Sessions::Redis(r) => r.put_once(key, value, expires_at).await,
        }
    }
    async fn take(&self, key: &str) -> Result<Option<Vec<u8>>, StoreError> {
        match self {
            Sessions::Memory(m) => m.take(key).await,
            Sessions::Redis(r) => r.take(key).await,
        }
    }

    async fn peek(&self, key: &str) -> Result<Option<Vec<u8>>, StoreError> {
        match self {
            Sessions::Memory(m) => m.peek(key).await,
            Sessions::Redis(r) => r.peek(key).await,
        }
    }
    async fn get_with_epoch(&self, key: &SessionKey) -> Result<Option<(Arc<Session>, u64)>, StoreError> {
        match self {
            Sessions::Memory(m) => m.get_with_epoch(key).await,
            Sessions::Redis(r) => r.get_with_epoch(key).await,
        }
    }
    async fn account_epoch(&self, account_id: &str) -> Result<u64, StoreError> {
        match self {
            Sessions::Memory(m) => m.account_epoch(account_id).await,
            Sessions::Redis(r) => r.account_epoch(account_id).await,
        }
    }
    async fn bump_account_epoch(&self, account_id: &str) -> Result<u64, StoreError> {
        match self {
            Sessions::Memory(m) => m.bump_account_epoch(account_id).await,
            Sessions::Redis(r) => r.bump_account_epoch(account_id).await,
        }
    }
    async fn shared_epoch(&self) -> Result<u64, StoreError> {
        match self {
            Sessions::Memory(m) => m.shared_epoch().await,
            Sessions::Redis(r) => r.shared_epoch().await,
        }
    }
    async fn bump_shared_epoch(&self) -> Result<u64, StoreError> {
        match self {
            Sessions::Memory(m) => m.bump_shared_epoch().await,
            Sessions::Redis(r) => r.bump_shared_epoch().await,
        }
    }
    async fn account_sessions(
        &self,
        account_id: &str,
    ) -> Result<Vec<(SessionKey, Arc<Session>)>, StoreError> {
        match self {
            Sessions::Memory(m) => m.account_sessions(account_id).await,
            Sessions::Redis(r) => r.account_sessions(account_id).await,
        }
    }
}

#[cfg(test)]
pub(crate) mod conformance;
