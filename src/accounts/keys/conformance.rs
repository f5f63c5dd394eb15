//! The behaviour every key store must show, run against each backend.

use super::*;
use crate::accounts::{AccountStore, NewAccount};

fn key(account_id: &str, credential_id: &str, name: &str, at: u64) -> NewKey {
    NewKey {
        account_id: account_id.into(),
        credential_id: credential_id.into(),
        name: name.into(),
        credential: format!("{{\"cred\":\"{credential_id}\"}}"),
        created_at: at,
    }
}

async fn account<S: AccountStore>(store: &S, email: &str) -> String {
    let new =
        NewAccount { email: Some(email.into()), name: email.into(), created_at: 1, ..Default::default() };
    store.create(new).await.expect("create account").id
}

/// Runs every check against an empty store.
pub async fn run<S: AccountStore + KeyStore>(store: &S) {
    let ann = account(store, "ann@example.com").await;
    let bob = account(store, "bob@example.com").await;
    assert!(store.keys(&ann).await.expect("keys").is_empty());

    let Added::Added(first) = store.add_key(key(&ann, "cred-1", "Laptop", 10), 3).await.expect("add") else {
        panic!("the first key is stored")
    };
    assert_eq!((first.name.as_str(), first.last_used_at), ("Laptop", None));
    let Added::Added(second) = store.add_key(key(&ann, "cred-2", "Phone", 20), 3).await.expect("add") else {
        panic!("a second key is stored")
    };
    assert_ne!(first.id, second.id);
    assert_eq!(store.keys(&ann).await.expect("keys"), [first.clone(), second.clone()], "oldest first");

    // One credential serves one account: not twice for Ann, never for Bob.
    assert_eq!(store.add_key(key(&ann, "cred-1", "Again", 30), 3).await.expect("add"), Added::Duplicate);
    assert_eq!(store.add_key(key(&bob, "cred-1", "Stolen", 30), 3).await.expect("add"), Added::Duplicate);
    assert!(store.keys(&bob).await.expect("keys").is_empty());

    // The bound per account.
    assert!(matches!(
        store.add_key(key(&ann, "cred-3", "Token", 40), 3).await.expect("add"),
        Added::Added(_)
    ));
    assert_eq!(store.add_key(key(&ann, "cred-4", "Fourth", 50), 3).await.expect("add"), Added::TooMany);
    assert!(matches!(
        store.add_key(key("no-such-account", "cred-5", "x", 1), 3).await,
        Err(AccountError::NotFound)
    ));

    // A use updates the credential and the time, only for the owner.
    assert!(store.key_used(&ann, &first.id, "{\"cred\":\"moved on\"}", 99).await.expect("used"));
    assert!(!store.key_used(&bob, &first.id, "{}", 100).await.expect("not Bob's"));
    let now = store.keys(&ann).await.expect("keys");
    assert_eq!((now[0].credential.as_str(), now[0].last_used_at), ("{\"cred\":\"moved on\"}", Some(99)));

    // Removing: only the owner's own key.
    assert!(!store.remove_key(&bob, &first.id).await.expect("remove"), "not Bob's to remove");
    assert!(store.remove_key(&ann, &first.id).await.expect("remove"));
    assert!(!store.remove_key(&ann, &first.id).await.expect("remove twice"));
    assert_eq!(store.keys(&ann).await.expect("keys").len(), 2);
    // A removed credential may be registered again, by whoever holds the authenticator.
    assert!(matches!(
        store.add_key(key(&bob, "cred-1", "Bob's", 60), 3).await.expect("add"),
        Added::Added(_)
    ));

    // Deleting the account deletes its keys.
    store.delete(&ann).await.expect("delete account");
    assert!(store.keys(&ann).await.expect("keys").is_empty());
    assert!(matches!(
        store.add_key(key(&bob, "cred-2", "Freed", 70), 3).await.expect("add"),
        Added::Added(_)
    ));
}

#[tokio::test]
async fn sqlite_key_store_passes_the_conformance_suite() {
    let store = SqliteStore::open(std::path::Path::new(":memory:")).await.expect("open");
    run(&store).await;
}

#[tokio::test]
async fn postgres_key_store_passes_the_conformance_suite() {
    use sqlx::Executor;

    let Some((mut admin, admin_options)) = crate::accounts::conformance::postgres_admin().await else {
        return;
    };
    let name = format!("deskgate_keys_{}", new_account_id().replace('-', ""));
    admin.execute(format!("CREATE DATABASE {name}").as_str()).await.expect("create database");
    let store = PostgresStore::open_with(admin_options.clone().database(&name)).await.expect("open");
    run(&store).await;
    store.close().await;
    admin.execute(format!("DROP DATABASE {name} WITH (FORCE)").as_str()).await.expect("drop database");
}
