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
    expiry(store, clock).await;
    rotation_leaves_the_old_key_dead(store, clock).await;
    counters(store, clock).await;
    one_time_values(store, clock).await;
}

async fn one_time_values<S: SessionStore>(store: &S, clock: &Clock) {
    let k = format!("once:{}", new_cookie_value());
    assert!(store.put_once(&k, b"state".to_vec(), clock.now() + 60).await.expect("put"));
    assert!(
        !store.put_once(&k, b"other".to_vec(), clock.now() + 60).await.expect("put"),
        "taken keys stay taken"
    );
    assert_eq!(store.take(&k).await.expect("take").as_deref(), Some(&b"state"[..]));
    assert_eq!(store.take(&k).await.expect("take"), None, "a value is taken once");
    let late = format!("once:{}", new_cookie_value());
    store.put_once(&late, b"x".to_vec(), clock.now() + 5).await.expect("put");
    clock.advance(5);
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
