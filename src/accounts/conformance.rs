//! The behaviour every account store must show, run against each backend.

use super::*;

fn new(email: &str, groups: &[&str]) -> NewAccount {
    NewAccount {
        email: Some(email.into()),
        name: format!("Name of {email}"),
        password_hash: Some("$argon2id$stub".into()),
        usergroups: groups.iter().map(|g| g.to_string()).collect(),
        created_at: 1_700_000_000,
    }
}

/// Runs every check against an empty store.
pub async fn run<S: AccountStore>(store: &S) {
    let a = store.create(new("Ann@Example.com", &["vips", "power_users"])).await.expect("create");
    assert_eq!(a.usergroups, ["power_users", "vips"]);
    let by_email = store.by_email("ann@example.COM").await.expect("lookup").expect("found");
    assert_eq!(by_email, a, "email lookup is case-insensitive and returns the same record");
    assert_eq!(by_email.email.as_deref(), Some("Ann@Example.com"), "the email keeps its spelling");
    assert!(matches!(store.create(new("ann@example.com", &[])).await, Err(AccountError::EmailTaken)));

    let cred = store.credential("ANN@example.com").await.expect("credential").expect("found");
    assert_eq!(cred.account_id, a.id);

    store.set_usergroups(&a.id, &["trial_users".into()]).await.expect("set");
    assert_eq!(store.by_id(&a.id).await.expect("by id").expect("found").usergroups, ["trial_users"]);
    assert!(matches!(store.set_usergroups("nobody", &[]).await, Err(AccountError::NotFound)));

    assert!(store.by_link("ldap.corp", "guid-1").await.expect("link lookup").is_none());
    store.link("ldap.corp", "guid-1", &a.id).await.expect("link");
    assert_eq!(
        store.by_link("ldap.corp", "guid-1").await.expect("link lookup").map(|x| x.id),
        Some(a.id.clone())
    );

    let no_email = store
        .create(NewAccount { name: "No Mail".into(), created_at: 1, ..Default::default() })
        .await
        .expect("accounts without email are allowed");
    let other = store
        .create(NewAccount { name: "No Mail 2".into(), created_at: 1, ..Default::default() })
        .await
        .expect("several accounts may lack an email");
    assert_ne!(no_email.id, other.id);
    assert!(store.credential("").await.expect("credential").is_none());

    // Concurrent creation of the same email: exactly one wins.
    let (x, y) =
        tokio::join!(store.create(new("race@example.com", &[])), store.create(new("race@example.com", &[])));
    assert_eq!(u8::from(x.is_ok()) + u8::from(y.is_ok()), 1, "one of two racing sign-ups wins");
}

#[tokio::test]
async fn sqlite_store_passes_the_conformance_suite() {
    let dir = std::env::temp_dir().join(format!("deskgate-acc-{}", new_account_id()));
    std::fs::create_dir_all(&dir).expect("temp dir");
    let store = SqliteStore::open(&dir.join("a.db")).await.expect("open");
    run(&store).await;
    // Reopening runs no migration twice and keeps the data.
    let again = SqliteStore::open(&dir.join("a.db")).await.expect("reopen");
    assert!(again.by_email("ann@example.com").await.expect("lookup").is_some());
    let _ = std::fs::remove_dir_all(dir);
}
