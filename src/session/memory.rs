//! The embedded session store: two maps behind read-write locks. Reads, the hot path, take
//! only a read lock; expired entries are dropped lazily and by a periodic sweep.

use std::collections::HashMap;
use std::sync::{Arc, RwLock};

use super::{Session, SessionKey, SessionStore, StoreError};
use crate::clock::Clock;

#[derive(Debug, Default)]
struct Maps {
    sessions: HashMap<SessionKey, (Arc<Session>, u64)>,
    counters: HashMap<String, (u64, u64)>,
    once: HashMap<String, (Vec<u8>, u64)>,
    /// Account epochs; only accounts ever changed have one, and they are never swept.
    epochs: HashMap<String, u64>,
    /// The epoch every account's is added to.
    shared_epoch: u64,
}

/// Sessions and counters in this process's memory.
#[derive(Debug, Clone)]
pub struct MemoryStore {
    maps: Arc<RwLock<Maps>>,
    clock: Clock,
    /// Sessions unused for longer than this lose their cached headers and token.
    cache_idle_secs: u64,
}

impl MemoryStore {
    /// An empty store on `clock`.
    pub fn new(clock: Clock) -> MemoryStore {
        MemoryStore { maps: Arc::default(), clock, cache_idle_secs: 0 }
    }

    /// Lets [`MemoryStore::sweep`] drop the cached headers and token of sessions unused for
    /// longer than `secs` (0: never).
    pub fn with_cache_idle(mut self, secs: u64) -> MemoryStore {
        self.cache_idle_secs = secs;
        self
    }

    /// Drops every expired entry and the caches of idle sessions; returns how many sessions
    /// remain.
    pub fn sweep(&self) -> usize {
        let now = self.clock.now();
        if self.cache_idle_secs > 0 {
            // Caches are behind their own locks: a read lock on the map is enough here.
            for (session, _) in self.read().sessions.values() {
                if session.last_seen + self.cache_idle_secs < now {
                    session.cache.clear();
                }
            }
        }
        let mut maps = self.maps.write().unwrap_or_else(|p| p.into_inner());
        maps.sessions.retain(|_, (_, exp)| *exp > now);
        maps.counters.retain(|_, (_, exp)| *exp > now);
        maps.once.retain(|_, (_, exp)| *exp > now);
        maps.sessions.len()
    }

    /// How many entries the store holds (sessions, counters, one-time values, epochs),
    /// expired or not: what the benchmarks and flood tests watch.
    pub fn entries(&self) -> usize {
        let maps = self.read();
        maps.sessions.len() + maps.counters.len() + maps.once.len() + maps.epochs.len()
    }

    fn read(&self) -> std::sync::RwLockReadGuard<'_, Maps> {
        // A panic elsewhere while holding the lock leaves consistent maps (every update is a
        // single insert or remove), so poisoning is safe to ignore.
        self.maps.read().unwrap_or_else(|p| p.into_inner())
    }

    fn write(&self) -> std::sync::RwLockWriteGuard<'_, Maps> {
        self.maps.write().unwrap_or_else(|p| p.into_inner())
    }
}

impl SessionStore for MemoryStore {
    async fn get(&self, key: &SessionKey) -> Result<Option<Arc<Session>>, StoreError> {
        Ok(self.get_with_epoch(key).await?.map(|(s, _)| s))
    }

    async fn get_with_epoch(&self, key: &SessionKey) -> Result<Option<(Arc<Session>, u64)>, StoreError> {
        let now = self.clock.now();
        let found = {
            let maps = self.read();
            maps.sessions.get(key).map(|(s, exp)| {
                let epoch = maps.epochs.get(&s.account_id).copied().unwrap_or(0) + maps.shared_epoch;
                (s.clone(), *exp, epoch)
            })
        };
        match found {
            Some((s, exp, epoch)) if exp > now => Ok(Some((s, epoch))),
            Some(_) => {
                self.write().sessions.remove(key);
                Ok(None)
            }
            None => Ok(None),
        }
    }

    async fn account_epoch(&self, account_id: &str) -> Result<u64, StoreError> {
        let maps = self.read();
        Ok(maps.epochs.get(account_id).copied().unwrap_or(0) + maps.shared_epoch)
    }

    async fn shared_epoch(&self) -> Result<u64, StoreError> {
        Ok(self.read().shared_epoch)
    }

    async fn bump_shared_epoch(&self) -> Result<u64, StoreError> {
        let mut maps = self.write();
        maps.shared_epoch += 1;
        Ok(maps.shared_epoch)
    }

    async fn bump_account_epoch(&self, account_id: &str) -> Result<u64, StoreError> {
        let mut maps = self.write();
        let epoch = maps.epochs.entry(account_id.to_owned()).or_insert(0);
        *epoch += 1;
        Ok(*epoch)
    }

    async fn put(
        &self,
        key: &SessionKey,
        session: Session,
        expires_at: u64,
    ) -> Result<Arc<Session>, StoreError> {
        let session = Arc::new(session);
        self.write().sessions.insert(key.clone(), (session.clone(), expires_at));
        Ok(session)
    }

    async fn delete(&self, key: &SessionKey) -> Result<(), StoreError> {
        self.write().sessions.remove(key);
        Ok(())
    }

    async fn incr(&self, counter: &str, window_secs: u64) -> Result<u64, StoreError> {
        let now = self.clock.now();
        let mut maps = self.write();
        let entry = maps.counters.entry(counter.to_owned()).or_insert((0, now + window_secs));
        if entry.1 <= now {
            *entry = (0, now + window_secs);
        }
        entry.0 += 1;
        Ok(entry.0)
    }

    async fn count(&self, counter: &str) -> Result<u64, StoreError> {
        let now = self.clock.now();
        Ok(self.read().counters.get(counter).filter(|(_, exp)| *exp > now).map_or(0, |(n, _)| *n))
    }

    async fn reset(&self, counter: &str) -> Result<(), StoreError> {
        self.write().counters.remove(counter);
        Ok(())
    }

    async fn put_once(&self, key: &str, value: Vec<u8>, expires_at: u64) -> Result<bool, StoreError> {
        let now = self.clock.now();
        let mut maps = self.write();
        if maps.once.get(key).is_some_and(|(_, exp)| *exp > now) {
            return Ok(false);
        }
        maps.once.insert(key.to_owned(), (value, expires_at));
        Ok(true)
    }

    async fn take(&self, key: &str) -> Result<Option<Vec<u8>>, StoreError> {
        let now = self.clock.now();
        Ok(self.write().once.remove(key).filter(|(_, exp)| *exp > now).map(|(v, _)| v))
    }
}
