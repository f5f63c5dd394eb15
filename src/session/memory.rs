//! The embedded session store: two maps behind read-write locks. Reads, the hot path, take
//! only a read lock; expired entries are dropped lazily and by a periodic sweep.
//!
//! Counters and one-time values are what requests from nobody signed in create, so each map
//! has a bound ([`MemoryBounds`]): at the bound, expired entries are dropped, and when none
//! are, the new entry is refused ([`StoreError::Full`]) — the map never grows past it, and
//! what it already holds (an address's count, a pending sign-in) is never evicted to make
//! room. Sessions are not bounded here: only a sign-in, which is itself limited, makes one.
//! Sessions are indexed by account, and leave the index with the session.

use std::collections::{BTreeSet, HashMap};
use std::hash::{Hash, Hasher};
use std::sync::{Arc, RwLock};

use super::{Session, SessionKey, SessionStore, StoreError};
use crate::clock::Clock;

#[derive(Debug, Default)]
struct Maps {
    sessions: HashMap<SessionKey, (Arc<Session>, u64)>,
    /// Every session's key under a tag of its account id (see [`account_tag`]): one small
    /// entry a session, where a set per account would cost several times the session's key.
    by_account: BTreeSet<(u64, SessionKey)>,
    counters: HashMap<String, (u64, u64)>,
    once: HashMap<String, (Vec<u8>, u64)>,
    /// Account epochs; only accounts ever changed have one, and they are never swept.
    epochs: HashMap<String, u64>,
    /// The epoch every account's is added to.
    shared_epoch: u64,
    /// When `counters` and `once` were last scanned for expired entries at their bound.
    counters_pruned: u64,
    once_pruned: u64,
}

/// An account id's tag in the index. Two accounts may share a tag: a lookup keeps only the
/// sessions whose own account id is the one asked for.
fn account_tag(account_id: &str) -> u64 {
    let mut hasher = std::hash::DefaultHasher::new();
    account_id.hash(&mut hasher);
    hasher.finish()
}

impl Maps {
    /// Removes a session and its index entry.
    fn remove_session(&mut self, key: &SessionKey) {
        if let Some((s, _)) = self.sessions.remove(key) {
            self.by_account.remove(&(account_tag(&s.account_id), key.clone()));
        }
    }
}

/// Most counters and one-time values the store keeps at once.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct MemoryBounds {
    /// Counters (sign-in attempts, sign-ups, mails).
    pub counters: usize,
    /// One-time values (pending sign-ins, replay checks, validation links).
    pub once: usize,
}

impl Default for MemoryBounds {
    fn default() -> Self {
        MemoryBounds { counters: 100_000, once: 100_000 }
    }
}

/// Sessions and counters in this process's memory.
#[derive(Debug, Clone)]
pub struct MemoryStore {
    maps: Arc<RwLock<Maps>>,
    clock: Clock,
    bounds: MemoryBounds,
    /// Refusals at the bounds, logged as one line a minute.
    full: Arc<crate::logging::Notice>,
}

impl MemoryStore {
    /// An empty store on `clock`.
    pub fn new(clock: Clock) -> MemoryStore {
        MemoryStore {
            maps: Arc::default(),
            clock,
            bounds: MemoryBounds::default(),
            full: Arc::new(crate::logging::Notice::new("memory store full")),
        }
    }

    /// Keeps at most `bounds` counters and one-time values.
    pub fn with_bounds(mut self, bounds: MemoryBounds) -> MemoryStore {
        self.bounds = bounds;
        self
    }

    /// How many sessions the store holds now, expired ones not yet swept included.
    pub fn sessions(&self) -> usize {
        self.read().sessions.len()
    }

    /// How many entries the index of sessions by account holds now.
    pub fn indexed(&self) -> usize {
        self.read().by_account.len()
    }

    /// How many counters and one-time values the store holds now, expired ones included.
    pub fn held(&self) -> (usize, usize) {
        let maps = self.read();
        (maps.counters.len(), maps.once.len())
    }

    /// Whether a map at its bound may take one more entry: only after dropping expired ones.
    /// The map is scanned for them at most once a second (`pruned_at`), so that a flood at
    /// the bound costs a lookup per request, not a scan.
    fn room<V>(
        &self,
        map: &mut HashMap<String, (V, u64)>,
        pruned_at: &mut u64,
        bound: usize,
        what: &'static str,
        now: u64,
    ) -> Result<(), StoreError> {
        if map.len() < bound {
            return Ok(());
        }
        if *pruned_at != now {
            *pruned_at = now;
            map.retain(|_, (_, exp)| *exp > now);
            if map.len() < bound {
                return Ok(());
            }
        }
        self.full.hit(now, what);
        Err(StoreError::Full(what))
    }

    /// Drops every expired entry; returns how many sessions remain.
    pub fn sweep(&self) -> usize {
        let now = self.clock.now();
        let mut maps = self.maps.write().unwrap_or_else(|p| p.into_inner());
        maps.sessions.retain(|_, (_, exp)| *exp > now);
        let Maps { sessions, by_account, .. } = &mut *maps;
        by_account.retain(|(_, k)| sessions.contains_key(k));
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
                self.write().remove_session(key);
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
        let mut maps = self.write();
        let tag = account_tag(&session.account_id);
        if let Some((old, _)) = maps.sessions.insert(key.clone(), (session.clone(), expires_at))
            && old.account_id != session.account_id
        {
            maps.by_account.remove(&(account_tag(&old.account_id), key.clone()));
        }
        maps.by_account.insert((tag, key.clone()));
        Ok(session)
    }

    async fn delete(&self, key: &SessionKey) -> Result<(), StoreError> {
        self.write().remove_session(key);
        Ok(())
    }

    async fn account_sessions(
        &self,
        account_id: &str,
    ) -> Result<Vec<(SessionKey, Arc<Session>)>, StoreError> {
        let now = self.clock.now();
        let mut live: Vec<(SessionKey, Arc<Session>)> = {
            let maps = self.read();
            let tag = account_tag(account_id);
            let keys = maps.by_account.range((tag, SessionKey([0; 32]))..=(tag, SessionKey([u8::MAX; 32])));
            keys.filter_map(|(_, k)| match maps.sessions.get(k) {
                Some((s, exp)) if *exp > now && s.account_id == account_id => Some((k.clone(), s.clone())),
                _ => None,
            })
            .collect()
        };
        super::oldest_first(&mut live);
        Ok(live)
    }

    async fn incr(&self, counter: &str, window_secs: u64) -> Result<u64, StoreError> {
        let now = self.clock.now();
        let mut guard = self.write();
        let maps = &mut *guard;
        if !maps.counters.contains_key(counter) {
            self.room(&mut maps.counters, &mut maps.counters_pruned, self.bounds.counters, "counters", now)?;
        }
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

    async fn release(&self, counter: &str) -> Result<(), StoreError> {
        let now = self.clock.now();
        if let Some((n, exp)) = self.write().counters.get_mut(counter)
            && *exp > now
        {
            *n = n.saturating_sub(1);
        }
        Ok(())
    }

    async fn put_once(&self, key: &str, value: Vec<u8>, expires_at: u64) -> Result<bool, StoreError> {
        let now = self.clock.now();
        let mut guard = self.write();
        let maps = &mut *guard;
        if maps.once.get(key).is_some_and(|(_, exp)| *exp > now) {
            return Ok(false);
        }
        if !maps.once.contains_key(key) {
            self.room(&mut maps.once, &mut maps.once_pruned, self.bounds.once, "one-time values", now)?;
        }
        maps.once.insert(key.to_owned(), (value, expires_at));
        Ok(true)
    }

    async fn take(&self, key: &str) -> Result<Option<Vec<u8>>, StoreError> {
        let now = self.clock.now();
        Ok(self.write().once.remove(key).filter(|(_, exp)| *exp > now).map(|(v, _)| v))
    }

    async fn peek(&self, key: &str) -> Result<Option<Vec<u8>>, StoreError> {
        let now = self.clock.now();
        Ok(self.read().once.get(key).filter(|(_, exp)| *exp > now).map(|(v, _)| v.clone()))
    }
}
