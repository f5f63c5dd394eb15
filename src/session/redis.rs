//! The shared session store: Redis, so that every replica of the gateway sees the same
//! sessions, counters and one-time values.
//!
//! Deadlines come from the gateway's clock, not Redis's: each value carries its own
//! `expires_at`, checked on read, while a TTL computed from the same clock lets Redis drop
//! it. The two agree under the system clock; the check on read is what makes expiry exact
//! to the second (Redis TTLs round up) and lets a test move time without sleeping.
//!
//! A session is stored as `ACCOUNT_ID \n JSON`, so that one script can read the session and
//! its account's epoch in the same round trip.
//!
//! Each account's sessions are indexed in a sorted set (`account-sessions:<id>`: session
//! keys scored by their deadline). Each put drops what has expired from it and gives the
//! set the TTL of its latest session, so the index never outlives what it names.

use std::collections::HashMap;
use std::fmt;
use std::sync::Arc;
use std::time::{Duration, Instant};

use redis::RedisError;

mod scripts;

use self::scripts::{DELETE, INCR, INDEX, PUT_ONCE, RELEASE, SESSION_AND_EPOCH};
use super::redis_link::{Link, LinkError};
use super::{Session, SessionKey, SessionStore, StoreError};
use crate::clock::Clock;
use crate::config::RedisLink;

/// How long one operation, connecting included, may take before it fails as unavailable.
/// Short, because every proxied request of a signed-in person waits on a session read.
const TIMEOUT: Duration = Duration::from_secs(1);

/// Sessions, counters and one-time values in Redis, every key under one prefix.
#[derive(Clone)]
pub struct RedisStore {
    link: Link,
    /// Replicas that must hold a written session, and how long to wait for them.
    wait: Option<(u32, Duration)>,
    prefix: Arc<str>,
    clock: Clock,
    local: Arc<LocalCache>,
}

/// Sessions read from Redis, with their account's epoch, kept in this process for a moment
/// so that most requests need no round trip. The rule: a replica reuses what it read for at
/// most `ttl`, so a change made on another replica (a sign-out, a re-resolution, an
/// administrator's change to the account) takes effect here within `ttl`; changes made
/// through this replica take effect here at once.
#[derive(Debug, Default)]
struct LocalCache {
    ttl: Duration,
    map: std::sync::RwLock<HashMap<SessionKey, Cached>>,
}

#[derive(Debug, Clone)]
struct Cached {
    session: Arc<Session>,
    epoch: u64,
    expires_at: u64,
    read_at: Instant,
}

/// More entries than this and the cache drops what is stale, or everything.
const LOCAL_CACHE_MAX: usize = 200_000;

impl LocalCache {
    fn get(&self, key: &SessionKey, now: u64) -> Option<(Arc<Session>, u64)> {
        if self.ttl.is_zero() {
            return None;
        }
        let map = self.map.read().unwrap_or_else(|p| p.into_inner());
        let hit = map.get(key)?;
        (hit.read_at.elapsed() < self.ttl && hit.expires_at > now).then(|| (hit.session.clone(), hit.epoch))
    }

    fn put(&self, key: &SessionKey, session: Arc<Session>, epoch: u64, expires_at: u64) {
        if self.ttl.is_zero() {
            return;
        }
        let mut map = self.map.write().unwrap_or_else(|p| p.into_inner());
        if map.len() >= LOCAL_CACHE_MAX {
            let ttl = self.ttl;
            map.retain(|_, c| c.read_at.elapsed() < ttl);
            if map.len() >= LOCAL_CACHE_MAX {
                map.clear();
            }
        }
        map.insert(key.clone(), Cached { session, epoch, expires_at, read_at: Instant::now() });
    }

    fn remove(&self, key: &SessionKey) {
        self.map.write().unwrap_or_else(|p| p.into_inner()).remove(key);
    }

    /// Forgets every session.
    fn clear(&self) {
        self.map.write().unwrap_or_else(|p| p.into_inner()).clear();
    }

    /// Forgets every session of an account. A scan, but it runs only when an administrator
    /// changes an account.
    fn forget_account(&self, account_id: &str) {
        if self.ttl.is_zero() {
            return;
        }
        self.map.write().unwrap_or_else(|p| p.into_inner()).retain(|_, c| c.session.account_id != account_id);
    }
}

impl fmt::Debug for RedisStore {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("RedisStore").field("prefix", &self.prefix).finish_non_exhaustive()
    }
}

#[derive(serde::Serialize)]
struct StoredRef<'a> {
    expires_at: u64,
    session: &'a Session,
}

#[derive(serde::Deserialize)]
struct Stored {
    expires_at: u64,
    session: Session,
}

/// A stored session value (`ACCOUNT_ID \n JSON`, or the JSON alone as earlier versions
/// wrote it), when it can be read.
fn decode(value: &[u8]) -> Result<Stored, serde_json::Error> {
    let json = match value.iter().position(|&b| b == b'\n') {
        Some(nl) => &value[nl + 1..],
        None => value,
    };
    serde_json::from_slice::<Stored>(json)
}

/// An epoch as Redis holds it (a decimal integer); anything else reads as 0.
fn parse_epoch(value: &[u8]) -> u64 {
    std::str::from_utf8(value).ok().and_then(|s| s.parse().ok()).unwrap_or(0)
}

fn unavailable(e: impl std::error::Error + Send + Sync + 'static) -> StoreError {
    StoreError::Unavailable(Box::new(e))
}

impl RedisStore {
    /// A stored one-time value (`EXPIRES_AT:VALUE`) when it has not expired.
    fn live_once(&self, stored: &[u8]) -> Option<Vec<u8>> {
        let colon = stored.iter().position(|&b| b == b':')?;
        let expires_at = std::str::from_utf8(&stored[..colon]).ok()?.parse::<u64>().ok()?;
        (expires_at > self.clock.now()).then(|| stored[colon + 1..].to_vec())
    }

    /// A store for the server at `url` (`redis://HOST:PORT[/DB]`), its keys starting with
    /// `prefix`, its deadlines read from `clock`. Connects on first use and reconnects after
    /// a failure, so a Redis that is down now does not stop the gateway from starting.
    /// Must be called within a Tokio runtime.
    pub fn open(url: &str, prefix: &str, clock: Clock) -> Result<RedisStore, StoreError> {
        RedisStore::connect(url, &RedisLink::default(), prefix, clock)
    }

    /// As [`RedisStore::open`], reaching Redis as `link` says: TLS, credentials, the master
    /// through Sentinel, and the replicas a written session waits for.
    pub fn connect(
        url: &str,
        link: &RedisLink,
        prefix: &str,
        clock: Clock,
    ) -> Result<RedisStore, StoreError> {
        let wait = (link.wait_replicas > 0).then_some((link.wait_replicas, link.wait_timeout));
        let link = Link::open(url, link, TIMEOUT).map_err(unavailable)?;
        Ok(RedisStore { link, wait, prefix: prefix.into(), clock, local: Arc::default() })
    }

    /// Checks that Redis answers; a certificate that Redis (or a sentinel) showed and
    /// deskgate refused comes back explained, naming the setting to look at.
    pub async fn check(&self, url: &str, ca_file: Option<&std::path::Path>) -> Result<(), StoreError> {
        let Err(e) = self.ping().await else { return Ok(()) };
        let explained = match &e {
            StoreError::Unavailable(cause) => {
                super::redis_link::refusal(cause.as_ref(), self.link.describe(url), ca_file)
            }
            StoreError::Full(_) => None,
        };
        Err(explained.map_or(e, |refusal: LinkError| unavailable(refusal)))
    }

    /// Reuses sessions read from Redis for up to `ttl` (zero: never).
    pub fn with_local_cache(mut self, ttl: Duration) -> RedisStore {
        self.local = Arc::new(LocalCache { ttl, map: Default::default() });
        self
    }

    /// Checks that Redis answers.
    pub async fn ping(&self) -> Result<(), StoreError> {
        self.query(redis::cmd("PING")).await.map(|_: String| ())
    }

    fn key(&self, kind: &str, name: &str) -> String {
        format!("{}{kind}:{name}", self.prefix)
    }

    /// The shared epoch's key: apart from the accounts' (`epoch:<id>`).
    fn shared_epoch_key(&self) -> String {
        self.key("shared-epoch", "")
    }

    /// Seconds from now until `expires_at` by the gateway's clock; Redis refuses a TTL of 0.
    fn ttl(&self, expires_at: u64) -> u64 {
        expires_at.saturating_sub(self.clock.now()).max(1)
    }

    /// Bounds every operation, so that a Redis that accepts connections but never answers
    /// fails requests quickly instead of holding them.
    async fn bounded<T>(&self, op: impl Future<Output = Result<T, RedisError>>) -> Result<T, StoreError> {
        match tokio::time::timeout(TIMEOUT, op).await {
            Ok(result) => result.map_err(unavailable),
            Err(elapsed) => Err(unavailable(elapsed)),
        }
    }

    async fn query<T: redis::FromRedisValue>(&self, cmd: redis::Cmd) -> Result<T, StoreError> {
        let cmd = &cmd;
        self.bounded(self.link.run(|mut conn| async move { cmd.query_async(&mut conn).await })).await
    }

    async fn script<T: redis::FromRedisValue>(
        &self,
        invocation: redis::ScriptInvocation<'_>,
    ) -> Result<T, StoreError> {
        let invocation = &invocation;
        self.bounded(self.link.run(|mut conn| async move { invocation.invoke_async(&mut conn).await })).await
    }

    /// Stores a session value as an earlier version wrote it: the JSON alone.
    #[cfg(test)]
    pub(crate) async fn put_unprefixed(
        &self,
        key: &SessionKey,
        session: &Session,
        expires_at: u64,
    ) -> Result<(), StoreError> {
        let value = serde_json::to_vec(&StoredRef { expires_at, session }).map_err(unavailable)?;
        let mut cmd = redis::cmd("SET");
        cmd.arg(self.key("session", &key.text())).arg(value);
        self.query(cmd).await
    }

    /// Removes every key under this store's prefix.
    #[cfg(test)]
    pub(crate) async fn remove_all(&self) -> Result<(), StoreError> {
        let pattern = format!("{}*", self.prefix);
        let mut cursor = 0u64;
        loop {
            let mut scan = redis::cmd("SCAN");
            scan.arg(cursor).arg("MATCH").arg(&pattern).arg("COUNT").arg(1000);
            let (next, keys): (u64, Vec<String>) = self.query(scan).await?;
            if !keys.is_empty() {
                let mut del = redis::cmd("DEL");
                del.arg(keys);
                self.query::<()>(del).await?;
            }
            if next == 0 {
                return Ok(());
            }
            cursor = next;
        }
    }
}

impl SessionStore for RedisStore {
    async fn get(&self, key: &SessionKey) -> Result<Option<Arc<Session>>, StoreError> {
        Ok(self.get_with_epoch(key).await?.map(|(s, _)| s))
    }

    async fn get_with_epoch(&self, key: &SessionKey) -> Result<Option<(Arc<Session>, u64)>, StoreError> {
        let now = self.clock.now();
        if let Some(hit) = self.local.get(key, now) {
            return Ok(Some(hit));
        }
        let mut invocation = SESSION_AND_EPOCH.key(self.key("session", &key.text()));
        invocation.arg(self.key("epoch", "")).arg(self.shared_epoch_key());
        let Some(parts): Option<Vec<Vec<u8>>> = self.script(invocation).await? else {
            return Ok(None);
        };
        let mut parts = parts.into_iter();
        let Some(value) = parts.next() else {
            return Ok(None);
        };
        let stored = match decode(&value) {
            Ok(stored) if stored.expires_at > now => stored,
            Ok(_) => return Ok(None),
            Err(e) => {
                // A session written in a shape this build cannot read (another version, a
                // damaged value) is unusable: the person signs in again.
                tracing::warn!(error = %e, "Unreadable session in Redis; treating it as absent");
                return Ok(None);
            }
        };
        let epoch = match parts.next() {
            Some(e) => parse_epoch(&e),
            // Written before sessions carried their account id in front: one more read.
            None => self.account_epoch(&stored.session.account_id).await?,
        };
        let session = Arc::new(stored.session);
        self.local.put(key, session.clone(), epoch, stored.expires_at);
        Ok(Some((session, epoch)))
    }

    async fn account_epoch(&self, account_id: &str) -> Result<u64, StoreError> {
        let mut cmd = redis::cmd("MGET");
        cmd.arg(self.key("epoch", account_id)).arg(self.shared_epoch_key());
        let values: Vec<Option<Vec<u8>>> = self.query(cmd).await?;
        Ok(values.iter().map(|v| v.as_deref().map_or(0, parse_epoch)).sum())
    }

    async fn shared_epoch(&self) -> Result<u64, StoreError> {
        let mut cmd = redis::cmd("GET");
        cmd.arg(self.shared_epoch_key());
        let value: Option<Vec<u8>> = self.query(cmd).await?;
        Ok(value.as_deref().map_or(0, parse_epoch))
    }

    async fn bump_shared_epoch(&self) -> Result<u64, StoreError> {
        let mut cmd = redis::cmd("INCR");
        cmd.arg(self.shared_epoch_key());
        let epoch = self.query(cmd).await?;
        self.local.clear();
        Ok(epoch)
    }

    async fn bump_account_epoch(&self, account_id: &str) -> Result<u64, StoreError> {
        let mut cmd = redis::cmd("INCR");
        cmd.arg(self.key("epoch", account_id));
        let epoch = self.query(cmd).await?;
        self.local.forget_account(account_id);
        Ok(epoch)
    }

    async fn put(
        &self,
        key: &SessionKey,
        session: Session,
        expires_at: u64,
    ) -> Result<Arc<Session>, StoreError> {
        let mut value = format!("{}\n", session.account_id).into_bytes();
        serde_json::to_writer(&mut value, &StoredRef { expires_at, session: &session })
            .map_err(unavailable)?;
        let mut set = redis::cmd("SET");
        set.arg(self.key("session", &key.text())).arg(value).arg("EX").arg(self.ttl(expires_at));
        let mut index = redis::cmd("EVAL");
        index
            .arg(INDEX)
            .arg(1)
            .arg(self.key("account-sessions", &session.account_id))
            .arg(key.text())
            .arg(expires_at)
            .arg(self.clock.now());
        let mut pipe = redis::pipe();
        pipe.add_command(set).ignore().add_command(index).ignore();
        match self.wait {
            None => {
                let pipe = &pipe;
                self.bounded(
                    self.link.run(|mut conn| async move { pipe.query_async::<()>(&mut conn).await }),
                )
                .await?;
            }
            Some((replicas, timeout)) => {
                // The session waits for replicas, so that a failover right after the sign-in
                // still finds it; a replica that is late only makes this slower.
                let mut wait = redis::cmd("WAIT");
                wait.arg(replicas).arg(timeout.as_millis().max(1) as u64);
                pipe.add_command(wait);
                let pipe = &pipe;
                let (acked,): (u32,) = self
                    .bounded(self.link.run(|mut conn| async move { pipe.query_async(&mut conn).await }))
                    .await?;
                if acked < replicas {
                    tracing::debug!(acked, replicas, "A session was written before enough replicas had it");
                }
            }
        }
        let session = Arc::new(session);
        self.local.put(key, session.clone(), session.epoch, expires_at);
        Ok(session)
    }

    async fn delete(&self, key: &SessionKey) -> Result<(), StoreError> {
        self.local.remove(key);
        let mut invocation = DELETE.key(self.key("session", &key.text()));
        invocation.arg(self.key("account-sessions", "")).arg(key.text());
        let _: u8 = self.script(invocation).await?;
        Ok(())
    }

    async fn account_sessions(
        &self,
        account_id: &str,
    ) -> Result<Vec<(SessionKey, Arc<Session>)>, StoreError> {
        let now = self.clock.now();
        let index = self.key("account-sessions", account_id);
        let mut range = redis::cmd("ZRANGEBYSCORE");
        range.arg(&index).arg(format!("({now}")).arg("+inf");
        let members: Vec<String> = self.query(range).await?;
        if members.is_empty() {
            return Ok(Vec::new());
        }
        let mut get = redis::cmd("MGET");
        for m in &members {
            get.arg(self.key("session", m));
        }
        let values: Vec<Option<Vec<u8>>> = self.query(get).await?;
        let mut live = Vec::new();
        let mut stale = Vec::new();
        for (member, value) in members.into_iter().zip(values) {
            let found = value
                .as_deref()
                .and_then(|v| decode(v).ok())
                .filter(|s| s.expires_at > now && s.session.account_id == account_id);
            match (SessionKey::from_text(&member), found) {
                (Some(key), Some(stored)) => live.push((key, Arc::new(stored.session))),
                _ => stale.push(member),
            }
        }
        if !stale.is_empty() {
            // Deleted elsewhere, or damaged: out of the index.
            let mut rem = redis::cmd("ZREM");
            rem.arg(&index).arg(stale);
            self.query::<()>(rem).await?;
        }
        super::oldest_first(&mut live);
        Ok(live)
    }

    async fn incr(&self, counter: &str, window_secs: u64) -> Result<u64, StoreError> {
        // EXPIRE 0 would delete the key before the count, leaving a counter without a window.
        let window = window_secs.max(1);
        let key = self.key("counter", counter);
        let mut invocation = INCR.key(key);
        invocation.arg(self.clock.now()).arg(window);
        self.script(invocation).await
    }

    async fn count(&self, counter: &str) -> Result<u64, StoreError> {
        let mut cmd = redis::cmd("HMGET");
        cmd.arg(self.key("counter", counter)).arg("n").arg("end");
        let (n, ends): (Option<u64>, Option<u64>) = self.query(cmd).await?;
        match (n, ends) {
            (Some(n), Some(ends)) if ends > self.clock.now() => Ok(n),
            _ => Ok(0),
        }
    }

    async fn reset(&self, counter: &str) -> Result<(), StoreError> {
        let mut cmd = redis::cmd("DEL");
        cmd.arg(self.key("counter", counter));
        self.query::<()>(cmd).await
    }

    async fn release(&self, counter: &str) -> Result<(), StoreError> {
        let mut invocation = RELEASE.key(self.key("counter", counter));
        invocation.arg(self.clock.now());
        let _: u8 = self.script(invocation).await?;
        Ok(())
    }

    async fn put_once(&self, key: &str, value: Vec<u8>, expires_at: u64) -> Result<bool, StoreError> {
        let mut stored = format!("{expires_at}:").into_bytes();
        stored.extend_from_slice(&value);
        let mut invocation = PUT_ONCE.key(self.key("once", key));
        invocation.arg(self.clock.now()).arg(stored).arg(self.ttl(expires_at));
        let put: u8 = self.script(invocation).await?;
        Ok(put == 1)
    }

    async fn take(&self, key: &str) -> Result<Option<Vec<u8>>, StoreError> {
        // GETDEL: of two racing takes, Redis hands the value to exactly one.
        let mut cmd = redis::cmd("GETDEL");
        cmd.arg(self.key("once", key));
        let stored: Option<Vec<u8>> = self.query(cmd).await?;
        Ok(stored.and_then(|s| self.live_once(&s)))
    }

    async fn peek(&self, key: &str) -> Result<Option<Vec<u8>>, StoreError> {
        let mut cmd = redis::cmd("GET");
        cmd.arg(self.key("once", key));
        let stored: Option<Vec<u8>> = self.query(cmd).await?;
        Ok(stored.and_then(|s| self.live_once(&s)))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Redis being unreachable must never read as "no session": that would quietly turn a
    /// signed-in person into a guest instead of failing the request.
    #[tokio::test]
    async fn unreachable_redis_is_unavailable_never_absent() {
        let port = {
            let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
            listener.local_addr().expect("addr").port()
        };
        let clock = Clock::manual(1_000_000);
        let store = RedisStore::open(&format!("redis://127.0.0.1:{port}"), "deskgate:", clock.clone())
            .expect("opening does not connect");
        let key = SessionKey::from_cookie("cookie");
        assert!(matches!(store.get(&key).await, Err(StoreError::Unavailable(_))));
        // Again, now that the manager has seen one failure and is reconnecting.
        assert!(matches!(store.get(&key).await, Err(StoreError::Unavailable(_))));
        assert!(matches!(store.incr("c", 60).await, Err(StoreError::Unavailable(_))));
        assert!(matches!(store.count("c").await, Err(StoreError::Unavailable(_))));
        assert!(matches!(store.take("once").await, Err(StoreError::Unavailable(_))));
        assert!(matches!(
            store.put_once("once", b"x".to_vec(), 1_000_060).await,
            Err(StoreError::Unavailable(_))
        ));
        assert!(matches!(store.ping().await, Err(StoreError::Unavailable(_))));
    }

    /// A server that accepts connections and never answers: the read fails, and does not
    /// wait for ever.
    #[tokio::test]
    async fn silent_redis_is_unavailable() {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.expect("bind");
        let port = listener.local_addr().expect("addr").port();
        let held = tokio::spawn(async move {
            let mut open = Vec::new();
            while let Ok((socket, _)) = listener.accept().await {
                open.push(socket);
            }
        });
        let store = RedisStore::open(&format!("redis://127.0.0.1:{port}"), "deskgate:", Clock::manual(1))
            .expect("open");
        assert!(matches!(store.get(&SessionKey::from_cookie("c")).await, Err(StoreError::Unavailable(_))));
        held.abort();
    }
}
