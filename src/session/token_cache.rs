//! The verified API tokens one replica keeps for the session cache window, keyed by the
//! token's hash and bounded in number: what makes a revocation reach every replica within
//! that window (see `crate::bearer`).

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use super::Session;

/// Most verified tokens one replica keeps at once.
const CACHE_MAX: usize = 10_000;

/// A verified token, as one replica keeps it.
pub(crate) struct Entry {
    pub(crate) token_id: String,
    pub(crate) expires_at: u64,
    pub(crate) last_used_at: Option<u64>,
    pub(crate) session: Arc<Session>,
    pub(crate) read_at: Instant,
}

/// Verified tokens by hash, each for at most the window; bounded in number.
pub struct TokenCache {
    ttl: Duration,
    map: Mutex<HashMap<String, Entry>>,
}

impl std::fmt::Debug for TokenCache {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TokenCache").field("ttl", &self.ttl).finish_non_exhaustive()
    }
}

impl TokenCache {
    /// A cache that keeps a verified token for `ttl`.
    pub fn new(ttl: Duration) -> TokenCache {
        TokenCache { ttl, map: Mutex::new(HashMap::new()) }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<String, Entry>> {
        self.map.lock().unwrap_or_else(|p| p.into_inner())
    }

    pub(crate) fn get(&self, hash: &str, now: u64) -> Option<(String, Option<u64>, Arc<Session>)> {
        let map = self.lock();
        let e = map.get(hash)?;
        (e.read_at.elapsed() < self.ttl && now < e.expires_at)
            .then(|| (e.token_id.clone(), e.last_used_at, e.session.clone()))
    }

    pub(crate) fn put(&self, hash: String, entry: Entry) {
        if self.ttl.is_zero() {
            return;
        }
        let mut map = self.lock();
        if map.len() >= CACHE_MAX {
            map.retain(|_, e| e.read_at.elapsed() < self.ttl);
            if map.len() >= CACHE_MAX {
                map.clear();
            }
        }
        map.insert(hash, entry);
    }

    pub(crate) fn used(&self, hash: &str, at: u64) {
        if let Some(e) = self.lock().get_mut(hash) {
            e.last_used_at = Some(at);
        }
    }

    /// Forgets a token at once on this replica (it was revoked here).
    pub fn forget(&self, token_id: &str) {
        self.lock().retain(|_, e| e.token_id != token_id);
    }
}
