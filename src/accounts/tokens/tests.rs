//! The behaviour both backends must show for tokens and service accounts.

use super::*;
use crate::accounts::{AccountStore, NewAccount};

fn token(id: &str, account_id: &str, permissions: Option<&[&str]>) -> ApiToken {
    ApiToken {
        id: id.into(),
        account_id: account_id.into(),
        name: format!("token {id}"),
        permissions: permissions.map(|p| p.iter().map(|s| s.to_string()).collect()),
        created_at: 1_700_000_000,
        expires_at: 1_800_000_000,
        last_used_at: None,
    }
}

/// Runs every check against an empty store.
async fn run<S: TokenStore + AccountStore>(store: &S) {
    let new = |email: &str| NewAccount {
        email: Some(email.into()),
        name: email.into(),
        created_at: 1,
        email_verified: true,
        ..Default::default()
    };
    let ann = store.create(new("ann@example.com")).await.expect("create").id;
    let bob = store.create(new("bob@example.com")).await.expect("create").id;

    let secret = new_secret();
    assert!(well_formed(&secret));
    let t = token("t1", &ann, None);
    store.add_token(&t, &token_hash(&secret)).await.expect("add");
    let limited = token("t2", &ann, Some(&["kb.read", "tickets.read"]));
    store.add_token(&limited, "other-hash").await.expect("add limited");
    assert!(matches!(store.add_token(&token("t3", "nobody", None), "h3").await, Err(AccountError::NotFound)));

    assert_eq!(store.token_by_hash(&token_hash(&secret)).await.expect("lookup"), Some(t.clone()));
    assert_eq!(store.token_by_hash(&secret).await.expect("lookup"), None, "the secret itself is not stored");
    assert_eq!(store.token_by_hash("other-hash").await.expect("lookup"), Some(limited.clone()));
    assert_eq!(store.tokens(&ann).await.expect("list"), [t.clone(), limited.clone()]);
    assert!(store.tokens(&bob).await.expect("list").is_empty());

    store.touch_token("t1", 1_700_000_600).await.expect("touch");
    let used = store.token_by_hash(&token_hash(&secret)).await.expect("lookup").expect("found");
    assert_eq!(used.last_used_at, Some(1_700_000_600));

    // Another account's token is never revoked.
    assert!(matches!(store.revoke_token(&bob, "t1").await, Err(AccountError::NotFound)));
    store.revoke_token(&ann, "t1").await.expect("revoke");
    assert_eq!(store.token_by_hash(&token_hash(&secret)).await.expect("lookup"), None);
    assert!(matches!(store.revoke_token(&ann, "t1").await, Err(AccountError::NotFound)));

    // Service accounts.
    assert!(!store.is_service(&bob).await.expect("read"));
    store.mark_service(&bob).await.expect("mark");
    store.mark_service(&bob).await.expect("marking twice is harmless");
    assert!(store.is_service(&bob).await.expect("read"));
    assert!(!store.is_service(&ann).await.expect("read"));
    assert!(matches!(store.mark_service("nobody").await, Err(AccountError::NotFound)));

    // Deleting the account deletes its tokens and its mark.
    store.delete(&ann).await.expect("delete");
    assert_eq!(store.token_by_hash("other-hash").await.expect("lookup"), None);
    store.delete(&bob).await.expect("delete");
    assert!(!store.is_service(&bob).await.expect("read"));
}

#[test]
fn secrets_are_long_random_and_url_safe() {
    let (a, b) = (new_secret(), new_secret());
    assert_ne!(a, b);
    assert!(a.starts_with("dg_") && a.len() == 46);
    assert!(well_formed(&a));
    for bad in [
        "",
        "dg_",
        "dg_short",
        &format!("{a}x"),
        &a.replacen('_', "+", 2),
        &a.to_uppercase().replace("DG_", "Dg_"),
    ] {
        assert!(!well_formed(bad), "{bad}");
    }
    assert_eq!(token_hash(&a).len(), 43);
}

#[tokio::test]
async fn sqlite_store_keeps_tokens_as_the_conformance_suite_says() {
    let store = SqliteStore::open(std::path::Path::new(":memory:")).await.expect("open");
    run(&store).await;
}

#[tokio::test]
async fn postgres_store_keeps_tokens_as_the_conformance_suite_says() {
    use std::str::FromStr;

    use sqlx::postgres::{PgConnectOptions, PgConnection};
    use sqlx::{Connection, Executor};

    let url = std::env::var("DESKGATE_TEST_POSTGRES")
        .unwrap_or_else(|_| "postgres://postgres@127.0.0.1:5432/postgres".into());
    let admin_options = PgConnectOptions::from_str(&url).expect("a valid PostgreSQL URL");
    let mut admin = match PgConnection::connect_with(&admin_options).await {
        Ok(conn) => conn,
        Err(e) if std::env::var("CI").as_deref() == Ok("true") => panic!("PostgreSQL at {url}: {e}"),
        Err(e) => return eprintln!("SKIP: PostgreSQL at {url} is unreachable ({e})"),
    };
    let name = format!("deskgate_tokens_{}", new_token_id());
    admin.execute(format!("CREATE DATABASE {name}").as_str()).await.expect("create database");
    let store = PostgresStore::open_with(admin_options.clone().database(&name)).await.expect("open");
    run(&store).await;
    store.close().await;
    admin.execute(format!("DROP DATABASE {name} WITH (FORCE)").as_str()).await.expect("drop database");
}
