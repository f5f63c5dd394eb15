//! The behaviour every session store must show, run against each backend.

use super::*;

fn session(account: &str, now: u64) -> Session {
    Session {
        account_id: account.into(),
        name: account.into(),
        created_at: now,
        last_seen: now,
        ..Default::default()
    }
}

/// Runs every check against a store whose clock is `clock`.
pub async fn run<S: SessionStore>(store: &S, clock: &Clock) {
    put_get_delete(store, clock).await;
    sessions_come_back_whole(store, clock).await;
    expiry(store, clock).await;
    a_new_put_moves_the_deadline(store, clock).await;
    rotation_leaves_the_old_key_dead(store, clock).await;
    counters(store, clock).await;
    concurrent_hits_are_all_counted(store).await;
    released_hits_are_taken_back(store, clock).await;
    concurrent_reservations_let_exactly_the_limit_through(store).await;
    one_time_values(store, clock).await;
    account_epochs(store, clock).await;
    concurrent_bumps_are_all_counted(store).await;
    sessions_are_listed_by_account(store, clock).await;
    // Last: it moves every account's epoch, which the checks above count from 0.
    shared_epoch_moves_every_account(store, clock).await;
}

/// The shared epoch is added to every account's, so one bump reaches every session; an
/// account's own bumps still count on top of it.
async fn shared_epoch_moves_every_account<S: SessionStore>(store: &S, clock: &Clock) {
    let (one, two) = (format!("sh-{}", new_cookie_value()), format!("sh-{}", new_cookie_value()));
    let (k1, k2) =
        (SessionKey::from_cookie(&new_cookie_value()), SessionKey::from_cookie(&new_cookie_value()));
    store.put(&k1, session(&one, clock.now()), clock.now() + 60).await.expect("put");
    store.put(&k2, session(&two, clock.now()), clock.now() + 60).await.expect("put");
    store.bump_account_epoch(&one).await.expect("bump");
    let shared = store.shared_epoch().await.expect("shared");
    let before =
        [store.account_epoch(&one).await.expect("epoch"), store.account_epoch(&two).await.expect("epoch")];
    assert_eq!(store.bump_shared_epoch().await.expect("bump shared"), shared + 1);
    assert_eq!(store.shared_epoch().await.expect("shared"), shared + 1);
    let after =
        [store.account_epoch(&one).await.expect("epoch"), store.account_epoch(&two).await.expect("epoch")];
    assert_eq!(after, [before[0] + 1, before[1] + 1], "every account's epoch moved on");
    assert_eq!(store.get_with_epoch(&k1).await.expect("get").expect("present").1, after[0], "seen at once");
    assert_eq!(store.get_with_epoch(&k2).await.expect("get").expect("present").1, after[1]);
    store.bump_account_epoch(&two).await.expect("bump");
    assert_eq!(store.get_with_epoch(&k2).await.expect("get").expect("present").1, after[1] + 1);
    assert_eq!(store.get_with_epoch(&k1).await.expect("get").expect("present").1, after[0], "one's unmoved");
}

/// An account's epoch starts at 0, moves on by one with each bump, and comes back with each
/// of the account's sessions at once (through the same store, local cache or not).
async fn account_epochs<S: SessionStore>(store: &S, clock: &Clock) {
    let (account, other) = (format!("ep-{}", new_cookie_value()), format!("ep-{}", new_cookie_value()));
    assert_eq!(store.account_epoch(&account).await.expect("epoch"), 0, "never moved: 0");
    let key = SessionKey::from_cookie(&new_cookie_value());
    let theirs = SessionKey::from_cookie(&new_cookie_value());
    store.put(&key, session(&account, clock.now()), clock.now() + 60).await.expect("put");
    store.put(&theirs, session(&other, clock.now()), clock.now() + 60).await.expect("put");
    let (got, epoch) = store.get_with_epoch(&key).await.expect("get").expect("present");
    assert_eq!((got.account_id.as_str(), epoch), (account.as_str(), 0));
    assert_eq!(store.bump_account_epoch(&account).await.expect("bump"), 1);
    assert_eq!(store.get_with_epoch(&key).await.expect("get").expect("present").1, 1, "seen at once");
    assert_eq!(store.bump_account_epoch(&account).await.expect("bump"), 2);
    assert_eq!(store.account_epoch(&account).await.expect("epoch"), 2);
    assert_eq!(store.get_with_epoch(&key).await.expect("get").expect("present").1, 2);
    assert_eq!(store.account_epoch(&other).await.expect("epoch"), 0, "other accounts keep theirs");
    assert_eq!(store.get_with_epoch(&theirs).await.expect("get").expect("present").1, 0);
    // The epoch a session was resolved under is stored with it.
    let resolved = Session { epoch: 2, ..session(&account, clock.now()) };
    store.put(&key, resolved, clock.now() + 60).await.expect("put");
    let (got, epoch) = store.get_with_epoch(&key).await.expect("get").expect("present");
    assert_eq!((got.epoch, epoch), (2, 2));
    store.delete(&key).await.expect("delete");
    assert!(store.get_with_epoch(&key).await.expect("get").is_none());
    assert_eq!(store.account_epoch(&account).await.expect("epoch"), 2, "epochs outlive sessions");
    clock.advance(86_400 * 30);
    assert_eq!(store.account_epoch(&account).await.expect("epoch"), 2, "and never expire");
}

/// An account's live sessions come back with their keys, oldest first; deleted and expired
/// ones do not, a session put again is listed once, and other accounts' never.
async fn sessions_are_listed_by_account<S: SessionStore>(store: &S, clock: &Clock) {
    let (mine, theirs) = (format!("ix-{}", new_cookie_value()), format!("ix-{}", new_cookie_value()));
    assert!(store.account_sessions(&mine).await.expect("list").is_empty(), "none yet");
    let keys: Vec<SessionKey> = (0..3).map(|_| SessionKey::from_cookie(&new_cookie_value())).collect();
    let now = clock.now();
    for (n, key) in keys.iter().enumerate() {
        let s = Session { created_at: now - 10 + n as u64, ..session(&mine, now) };
        store.put(key, s, now + 60).await.expect("put");
    }
    let other = SessionKey::from_cookie(&new_cookie_value());
    store.put(&other, session(&theirs, now), now + 60).await.expect("put");
    let listed = store.account_sessions(&mine).await.expect("list");
    assert_eq!(listed.iter().map(|(k, _)| k.clone()).collect::<Vec<_>>(), keys, "oldest first");
    assert!(listed.iter().all(|(_, s)| s.account_id == mine));
    // Touched (put again): still one entry, with what was put last.
    let touched = Session { created_at: now - 10, last_seen: now + 1, ..session(&mine, now) };
    store.put(&keys[0], touched, now + 60).await.expect("put again");
    let listed = store.account_sessions(&mine).await.expect("list");
    assert_eq!(listed.len(), 3);
    assert_eq!(listed[0].1.last_seen, now + 1);
    store.delete(&keys[1]).await.expect("delete");
    let listed = store.account_sessions(&mine).await.expect("list");
    assert_eq!(listed.iter().map(|(k, _)| k.clone()).collect::<Vec<_>>(), [keys[0].clone(), keys[2].clone()]);
    // One that expires drops out at its deadline.
    let brief = SessionKey::from_cookie(&new_cookie_value());
    store.put(&brief, session(&mine, now), now + 5).await.expect("put");
    assert_eq!(store.account_sessions(&mine).await.expect("list").len(), 3);
    clock.advance(5);
    assert_eq!(store.account_sessions(&mine).await.expect("list").len(), 2, "expired: gone");
    assert_eq!(store.account_sessions(&theirs).await.expect("list").len(), 1);
    for key in keys.iter().chain([&other]) {
        store.delete(key).await.expect("delete");
    }
    assert!(store.account_sessions(&mine).await.expect("list").is_empty());
    assert!(store.account_sessions(&theirs).await.expect("list").is_empty());
}

/// Two administrators changing one account at once: each bump gets its own epoch.
async fn concurrent_bumps_are_all_counted<S: SessionStore>(store: &S) {
    let account = format!("ep-{}", new_cookie_value());
    let bumps = || async {
        let mut seen = Vec::new();
        for _ in 0..20 {
            seen.push(store.bump_account_epoch(&account).await.expect("bump"));
        }
        seen
    };
    let (a, b) = tokio::join!(bumps(), bumps());
    let mut all: Vec<u64> = a.into_iter().chain(b).collect();
    all.sort_unstable();
    assert_eq!(all, (1..=40).collect::<Vec<u64>>());
}

fn full_session(now: u64) -> Session {
    Session {
        account_id: "a-full".into(),
        email: Some("Full@Example.com".into()),
        name: "Full Name — ünïcode".into(),
        provider: "ldap.corp".into(),
        provider_usergroups: vec!["power_users".into()],
        assigned_usergroups: vec!["vips".into(), "trial_users".into()],
        resolved: Arc::new(crate::usergroups::Resolved {
            usergroups: vec!["everyone".into(), "registered".into(), "vips".into()],
            permissions: vec!["kb.read".into(), "tickets.read".into()],
        }),
        generation: 7,
        epoch: 3,
        subject: "3f2504e0-4f89-11d3-9a0c-0305e82c3301".into(),
        checked_at: now - 50,
        refresh_token: Some("sealed-refresh-token".into()),
        amr: vec!["pwd".into(), "hwk".into(), "mfa".into()],
        created_at: now - 100,
        last_seen: now,
        client_addr: Some("2001:db8::7".into()),
        user_agent: Some("Mozilla/5.0 (X11; Linux x86_64) Chromium/120".into()),
        ..Default::default()
    }
}

/// Every stored field survives the trip through the store (a serializing store could drop one).
async fn sessions_come_back_whole<S: SessionStore>(store: &S, clock: &Clock) {
    let key = SessionKey::from_cookie(&new_cookie_value());
    let now = clock.now();
    store.put(&key, full_session(now), now + 60).await.expect("put");
    let got = store.get(&key).await.expect("get").expect("present");
    let json = |s: &Session| serde_json::to_value(s).expect("serialize");
    assert_eq!(json(&got), json(&full_session(now)));
    store.delete(&key).await.expect("delete");
}

/// Touching a session stores it again with a later deadline: the old one no longer applies.
async fn a_new_put_moves_the_deadline<S: SessionStore>(store: &S, clock: &Clock) {
    let key = SessionKey::from_cookie(&new_cookie_value());
    store.put(&key, session("a4", clock.now()), clock.now() + 10).await.expect("put");
    clock.advance(5);
    store.put(&key, session("a4-touched", clock.now()), clock.now() + 10).await.expect("put again");
    clock.advance(5);
    let got = store.get(&key).await.expect("get").expect("alive past the first deadline");
    assert_eq!(got.account_id, "a4-touched", "the second put replaced the first");
    clock.advance(5);
    assert!(store.get(&key).await.expect("get").is_none(), "expired at the second deadline");
}

/// Two tasks hitting one counter at once: no hit is lost and no count is handed out twice.
async fn concurrent_hits_are_all_counted<S: SessionStore>(store: &S) {
    let c = format!("test:{}", new_cookie_value());
    let hits = || async {
        let mut seen = Vec::new();
        for _ in 0..25 {
            seen.push(store.incr(&c, 60).await.expect("incr"));
        }
        seen
    };
    let (a, b) = tokio::join!(hits(), hits());
    let mut all: Vec<u64> = a.into_iter().chain(b).collect();
    all.sort_unstable();
    assert_eq!(all, (1..=50).collect::<Vec<u64>>());
    assert_eq!(store.count(&c).await.expect("count"), 50);
}

/// `release` takes one back from a live counter, never below zero, and never makes one.
async fn released_hits_are_taken_back<S: SessionStore>(store: &S, clock: &Clock) {
    let c = format!("test:{}", new_cookie_value());
    store.release(&c).await.expect("release of a missing counter");
    assert_eq!(store.count(&c).await.expect("count"), 0);
    assert_eq!(store.incr(&c, 30).await.expect("incr"), 1, "release made no counter");
    assert_eq!(store.incr(&c, 30).await.expect("incr"), 2);
    store.release(&c).await.expect("release");
    assert_eq!(store.count(&c).await.expect("count"), 1);
    store.release(&c).await.expect("release");
    store.release(&c).await.expect("release");
    assert_eq!(store.count(&c).await.expect("count"), 0, "never below zero");
    assert_eq!(store.incr(&c, 30).await.expect("incr"), 1);
    clock.advance(30);
    store.release(&c).await.expect("release of an expired counter");
    assert_eq!(store.incr(&c, 30).await.expect("incr"), 1, "a new window starts at one");
}

/// Reserving first: of 64 hits arriving at once, exactly `limit` see a count within it, so
/// at most that many requests get past a check made on the returned count.
async fn concurrent_reservations_let_exactly_the_limit_through<S: SessionStore>(store: &S) {
    let c = format!("test:{}", new_cookie_value());
    let limit = 20;
    let hits = (0..64).map(|_| store.incr(&c, 60));
    let counts = futures_util::future::join_all(hits).await;
    let through = counts.into_iter().map(|n| n.expect("incr")).filter(|n| *n <= limit).count();
    assert_eq!(through, 20);
}

async fn one_time_values<S: SessionStore>(store: &S, clock: &Clock) {
    let k = format!("once:{}", new_cookie_value());
    assert!(store.put_once(&k, b"state".to_vec(), clock.now() + 60).await.expect("put"));
    assert!(
        !store.put_once(&k, b"other".to_vec(), clock.now() + 60).await.expect("put"),
        "taken keys stay taken"
    );
    assert_eq!(store.peek(&k).await.expect("peek").as_deref(), Some(&b"state"[..]));
    assert_eq!(store.peek(&k).await.expect("peek").as_deref(), Some(&b"state"[..]), "a look takes nothing");
    assert_eq!(store.take(&k).await.expect("take").as_deref(), Some(&b"state"[..]));
    assert_eq!(store.take(&k).await.expect("take"), None, "a value is taken once");
    assert_eq!(store.peek(&k).await.expect("peek"), None, "nor is it seen after");
    let late = format!("once:{}", new_cookie_value());
    store.put_once(&late, b"x".to_vec(), clock.now() + 5).await.expect("put");
    clock.advance(5);
    assert_eq!(store.peek(&late).await.expect("peek"), None, "expired values are not seen");
    assert_eq!(store.take(&late).await.expect("take"), None, "expired values are gone");
    assert!(
        store.put_once(&late, b"y".to_vec(), clock.now() + 5).await.expect("put"),
        "an expired key is free again"
    );
    // Two racing takes: exactly one gets the value.
    let race = format!("once:{}", new_cookie_value());
    store.put_once(&race, b"z".to_vec(), clock.now() + 60).await.expect("put");
    let (a, b) = tokio::join!(store.take(&race), store.take(&race));
    assert_eq!(u8::from(a.expect("take").is_some()) + u8::from(b.expect("take").is_some()), 1);
}

async fn put_get_delete<S: SessionStore>(store: &S, clock: &Clock) {
    let key = SessionKey::from_cookie(&new_cookie_value());
    assert!(store.get(&key).await.expect("get").is_none());
    store.put(&key, session("a1", clock.now()), clock.now() + 60).await.expect("put");
    let got = store.get(&key).await.expect("get").expect("present");
    assert_eq!(got.account_id, "a1");
    store.delete(&key).await.expect("delete");
    assert!(store.get(&key).await.expect("get").is_none());
    store.delete(&key).await.expect("deleting twice is fine");
}

async fn expiry<S: SessionStore>(store: &S, clock: &Clock) {
    let key = SessionKey::from_cookie(&new_cookie_value());
    store.put(&key, session("a2", clock.now()), clock.now() + 10).await.expect("put");
    clock.advance(9);
    assert!(store.get(&key).await.expect("get").is_some());
    clock.advance(1);
    assert!(store.get(&key).await.expect("get").is_none(), "expired at its deadline");
}

async fn rotation_leaves_the_old_key_dead<S: SessionStore>(store: &S, clock: &Clock) {
    let old = SessionKey::from_cookie(&new_cookie_value());
    let new = SessionKey::from_cookie(&new_cookie_value());
    assert_ne!(old, new);
    store.put(&old, session("a3", clock.now()), clock.now() + 60).await.expect("put");
    store.put(&new, session("a3", clock.now()), clock.now() + 60).await.expect("put");
    store.delete(&old).await.expect("delete");
    assert!(store.get(&old).await.expect("get").is_none());
    assert!(store.get(&new).await.expect("get").is_some());
}

async fn counters<S: SessionStore>(store: &S, clock: &Clock) {
    let c = format!("test:{}", new_cookie_value());
    assert_eq!(store.count(&c).await.expect("count"), 0);
    for n in 1..=3 {
        assert_eq!(store.incr(&c, 30).await.expect("incr"), n);
    }
    assert_eq!(store.count(&c).await.expect("count"), 3);
    clock.advance(30);
    assert_eq!(store.count(&c).await.expect("count"), 0, "the window ended");
    assert_eq!(store.incr(&c, 30).await.expect("incr"), 1, "a new window starts at one");
    store.reset(&c).await.expect("reset");
    assert_eq!(store.count(&c).await.expect("count"), 0);
}

#[tokio::test]
async fn memory_store_passes_the_conformance_suite() {
    let clock = Clock::manual(1_000_000);
    run(&MemoryStore::new(clock.clone()), &clock).await;
}

/// The memory store's index by account holds nothing its sessions do not: a sweep drops
/// the entries of expired sessions with them.
#[tokio::test]
async fn memory_store_index_by_account_is_swept_with_its_sessions() {
    let clock = Clock::manual(1_000_000);
    let store = MemoryStore::new(clock.clone());
    for n in 0..50 {
        let key = SessionKey::from_cookie(&new_cookie_value());
        store
            .put(&key, session(&format!("acct-{}", n % 5), clock.now()), clock.now() + 10)
            .await
            .expect("put");
    }
    assert_eq!(store.indexed(), 50);
    clock.advance(10);
    assert_eq!(store.sweep(), 0);
    assert_eq!(store.indexed(), 0, "expired sessions leave the index");
}

/// A flood of new counters and one-time values fills the memory store to its bound and no
/// further; what it holds keeps counting, and room comes back as entries expire.
#[tokio::test]
async fn memory_store_counters_and_one_time_values_never_grow_past_their_bound() {
    let clock = Clock::manual(1_000_000);
    let store = MemoryStore::new(clock.clone()).with_bounds(MemoryBounds { counters: 300, once: 200 });
    let mut refused = 0;
    for n in 0..1_000 {
        match store.incr(&format!("flood:{n}"), 60).await {
            Ok(1) => {}
            Ok(other) => panic!("a new counter counted {other}"),
            Err(StoreError::Full(_)) => refused += 1,
            Err(e) => panic!("{e}"),
        }
        assert!(store.held().0 <= 300);
    }
    assert_eq!(refused, 700);
    assert_eq!(store.incr("flood:0", 60).await.expect("a held counter still counts"), 2);
    for n in 0..500 {
        let put = store.put_once(&format!("once:{n}"), vec![0; 16], clock.now() + 60).await;
        assert_eq!(put.is_ok(), n < 200, "one-time value {n}");
        assert!(store.held().1 <= 200);
    }
    assert_eq!(store.take("once:7").await.expect("take"), Some(vec![0; 16]), "held values are kept");
    clock.advance(61);
    assert_eq!(store.incr("after", 60).await.expect("room once the window ended"), 1);
    assert!(store.put_once("after", vec![1], clock.now() + 60).await.expect("room"));
    assert_eq!(store.held().0, 1, "the expired counters were dropped to make room");
    assert!(store.held().1 <= 200);
}

/// Where a test finds Redis: `DESKGATE_TEST_REDIS`, else the local default.
fn redis_url() -> String {
    std::env::var("DESKGATE_TEST_REDIS").unwrap_or_else(|_| "redis://127.0.0.1:6379".into())
}

/// A fresh key prefix, so that tests running at once do not see each other's keys.
fn test_prefix() -> String {
    format!("deskgate-test:{}:", new_cookie_value())
}

/// A Redis store on `prefix`, or `None` when Redis cannot be reached: under `CI=true` that
/// fails the test, elsewhere the test is skipped, loudly.
async fn redis_store(prefix: &str, clock: &Clock) -> Option<RedisStore> {
    let url = redis_url();
    let store = RedisStore::open(&url, prefix, clock.clone()).expect("a valid Redis URL");
    match store.ping().await {
        Ok(()) => Some(store),
        Err(e) => {
            let cause = std::error::Error::source(&e).map(ToString::to_string).unwrap_or_default();
            if std::env::var("CI").as_deref() == Ok("true") {
                panic!("Redis at {url} is unreachable ({cause}); CI needs it (apt-get install redis-server)");
            }
            eprintln!(
                "SKIP: Redis at {url} is unreachable ({cause}): the Redis session store was NOT tested. \
                 Start one (apt-get install redis-server) or set DESKGATE_TEST_REDIS."
            );
            None
        }
    }
}

#[tokio::test]
async fn redis_store_passes_the_conformance_suite() {
    let clock = Clock::manual(1_000_000);
    let Some(store) = redis_store(&test_prefix(), &clock).await else { return };
    run(&store, &clock).await;
    store.remove_all().await.expect("clean up");
}

/// What requests from nobody signed in make in Redis (counters, one-time values) always
/// carries a TTL, so Redis drops it even if deskgate never comes back for it; so does a
/// session's entry in its account's index.
#[tokio::test]
async fn redis_counters_and_one_time_values_always_carry_a_ttl() {
    let clock = Clock::manual(Clock::system().now());
    let prefix = test_prefix();
    let Some(store) = redis_store(&prefix, &clock).await else { return };
    store.incr("addr", 900).await.expect("incr");
    store.incr("addr", 900).await.expect("incr");
    store.release("addr").await.expect("release");
    store.release("never-made").await.expect("release");
    store.put_once("state", b"x".to_vec(), clock.now() + 600).await.expect("put");
    // A session's index entry lives as long as the latest session it names.
    let key = SessionKey::from_cookie(&new_cookie_value());
    store.put(&key, session("ttl", clock.now()), clock.now() + 300).await.expect("put");
    store.delete(&key).await.expect("delete");
    let key = SessionKey::from_cookie(&new_cookie_value());
    store.put(&key, session("ttl", clock.now()), clock.now() + 800).await.expect("put");
    let mut conn = ::redis::Client::open(redis_url())
        .expect("url")
        .get_multiplexed_async_connection()
        .await
        .expect("connect");
    let keys: Vec<String> =
        ::redis::cmd("KEYS").arg(format!("{prefix}*")).query_async(&mut conn).await.expect("keys");
    assert_eq!(keys.len(), 4, "release made no key: {keys:?}");
    for key in keys {
        let ttl: i64 = ::redis::cmd("TTL").arg(&key).query_async(&mut conn).await.expect("ttl");
        assert!(ttl > 0 && ttl <= 900, "{key} has TTL {ttl}");
    }
    store.remove_all().await.expect("clean up");
}

#[tokio::test]
async fn redis_store_with_a_local_cache_passes_the_conformance_suite() {
    let clock = Clock::manual(1_000_000);
    let Some(store) = redis_store(&test_prefix(), &clock).await else { return };
    let store = store.with_local_cache(std::time::Duration::from_secs(1));
    run(&store, &clock).await;
    store.remove_all().await.expect("clean up");
}

/// A replica's local cache shows a sign-out made elsewhere only after its window; a
/// sign-out made through it, at once.
#[tokio::test]
async fn a_local_cache_sees_a_sign_out_elsewhere_within_its_window() {
    let clock = Clock::manual(1_000_000);
    let prefix = test_prefix();
    let Some(a) = redis_store(&prefix, &clock).await else { return };
    let window = std::time::Duration::from_millis(300);
    let a = a.with_local_cache(window);
    let b = RedisStore::open(&redis_url(), &prefix, clock.clone()).expect("open");
    let key = SessionKey::from_cookie(&new_cookie_value());
    b.put(&key, session("cached", clock.now()), clock.now() + 60).await.expect("put");
    assert!(a.get(&key).await.expect("get").is_some(), "read into a's cache");
    b.delete(&key).await.expect("sign-out on b");
    let began = std::time::Instant::now();
    while a.get(&key).await.expect("get").is_some() {
        assert!(
            began.elapsed() < window * 3,
            "a still serves the session {:?} after b's sign-out",
            began.elapsed()
        );
        tokio::task::yield_now().await;
    }
    let own = SessionKey::from_cookie(&new_cookie_value());
    a.put(&own, session("own", clock.now()), clock.now() + 60).await.expect("put");
    assert!(a.get(&own).await.expect("get").is_some());
    a.delete(&own).await.expect("sign-out on a");
    assert!(a.get(&own).await.expect("get").is_none(), "a's own sign-out takes effect at once");
    a.remove_all().await.expect("clean up");
}

/// An account change made through one replica reaches a replica that cached the session
/// within its window; through the replica itself, at once.
#[tokio::test]
async fn a_local_cache_sees_an_account_change_elsewhere_within_its_window() {
    let clock = Clock::manual(1_000_000);
    let prefix = test_prefix();
    let Some(a) = redis_store(&prefix, &clock).await else { return };
    let window = std::time::Duration::from_millis(300);
    let a = a.with_local_cache(window);
    let b = RedisStore::open(&redis_url(), &prefix, clock.clone()).expect("open");
    let key = SessionKey::from_cookie(&new_cookie_value());
    b.put(&key, session("changed", clock.now()), clock.now() + 60).await.expect("put");
    assert_eq!(a.get_with_epoch(&key).await.expect("get").expect("present").1, 0, "read into a's cache");
    b.bump_account_epoch("changed").await.expect("a change on b");
    let began = std::time::Instant::now();
    while a.get_with_epoch(&key).await.expect("get").expect("present").1 != 1 {
        assert!(began.elapsed() < window * 3, "a still has epoch 0 {:?} after b's change", began.elapsed());
        tokio::task::yield_now().await;
    }
    a.bump_account_epoch("changed").await.expect("a change on a");
    assert_eq!(a.get_with_epoch(&key).await.expect("get").expect("present").1, 2, "at once on a");
    // A change for every account (an organization) travels the same way.
    b.bump_shared_epoch().await.expect("a shared change on b");
    let began = std::time::Instant::now();
    while a.get_with_epoch(&key).await.expect("get").expect("present").1 != 3 {
        assert!(began.elapsed() < window * 3, "a has not seen b's shared change {:?}", began.elapsed());
        tokio::task::yield_now().await;
    }
    a.bump_shared_epoch().await.expect("a shared change on a");
    assert_eq!(a.get_with_epoch(&key).await.expect("get").expect("present").1, 4, "at once on a");
    a.remove_all().await.expect("clean up");
}

/// A session an earlier version stored (the JSON alone) is still read, with its epoch.
#[tokio::test]
async fn a_session_stored_by_an_earlier_version_is_read_with_its_epoch() {
    let clock = Clock::manual(1_000_000);
    let Some(store) = redis_store(&test_prefix(), &clock).await else { return };
    let key = SessionKey::from_cookie(&new_cookie_value());
    store.put_unprefixed(&key, &session("earlier", clock.now()), clock.now() + 60).await.expect("put");
    store.bump_account_epoch("earlier").await.expect("bump");
    let (got, epoch) = store.get_with_epoch(&key).await.expect("get").expect("readable");
    assert_eq!((got.account_id.as_str(), epoch), ("earlier", 1));
    store.remove_all().await.expect("clean up");
}

/// Two gateways on one Redis and prefix see one set of sessions, counters and one-time values.
#[tokio::test]
async fn replicas_share_one_redis() {
    let clock = Clock::manual(1_000_000);
    let prefix = test_prefix();
    let Some(a) = redis_store(&prefix, &clock).await else { return };
    let b = RedisStore::open(&redis_url(), &prefix, clock.clone()).expect("open");
    let key = SessionKey::from_cookie(&new_cookie_value());
    a.put(&key, session("shared", clock.now()), clock.now() + 60).await.expect("put");
    assert_eq!(b.get(&key).await.expect("get").expect("seen by the other").account_id, "shared");
    b.delete(&key).await.expect("delete");
    assert!(a.get(&key).await.expect("get").is_none(), "a sign-out on one ends it on both");
    assert_eq!(a.incr("shared-counter", 60).await.expect("incr"), 1);
    assert_eq!(b.incr("shared-counter", 60).await.expect("incr"), 2);
    assert!(a.put_once("state", b"s".to_vec(), clock.now() + 60).await.expect("put"));
    assert!(!b.put_once("state", b"t".to_vec(), clock.now() + 60).await.expect("put"));
    let (x, y) = tokio::join!(a.take("state"), b.take("state"));
    assert_eq!(u8::from(x.expect("take").is_some()) + u8::from(y.expect("take").is_some()), 1);
    a.remove_all().await.expect("clean up");
}
