//! The behaviour every second-factor store must show; run by the account store suite
//! against each backend.

use super::FactorStore;
use crate::accounts::{AccountError, AccountStore, Added, KeyStore, NewAccount, NewKey};

fn person(email: &str) -> NewAccount {
    NewAccount {
        email: Some(email.into()),
        name: email.into(),
        password_hash: Some("$argon2id$stub".into()),
        created_at: 1_700_000_000,
        email_verified: true,
        ..Default::default()
    }
}

/// Runs every check; the store's accounts are left in place.
pub async fn run<S: AccountStore + FactorStore + KeyStore>(store: &S) {
    let a = store.create(person("totp-a@example.com")).await.expect("create");
    let b = store.create(person("totp-b@example.com")).await.expect("create");
    assert_eq!(store.totp(&a.id).await.expect("read"), None);
    assert!(store.enrolled(&[a.id.clone(), b.id.clone()]).await.expect("enrolled").is_empty());
    assert!(matches!(store.enrol_totp("nobody", "SECRET", 1, &[], 5).await, Err(AccountError::NotFound)));

    let hashes: Vec<String> = (0..10).map(|i| format!("hash-{i}")).collect();
    store.enrol_totp(&a.id, "JBSWY3DPEHPK3PXP", 100, &hashes, 7).await.expect("enrol");
    let factor = store.totp(&a.id).await.expect("read").expect("enrolled");
    assert_eq!((factor.secret.as_str(), factor.last_step, factor.created_at), ("JBSWY3DPEHPK3PXP", 100, 7));
    assert_eq!(store.enrolled(&[b.id.clone(), a.id.clone()]).await.expect("enrolled"), [a.id.as_str()]);
    assert_eq!(store.recovery_codes_left(&a.id).await.expect("count"), 10);

    // A code is good once: its step, and every earlier one, is refused after it.
    assert!(!store.take_totp_step(&a.id, 100).await.expect("take"), "the confirming code is used");
    assert!(store.take_totp_step(&a.id, 101).await.expect("take"));
    assert!(!store.take_totp_step(&a.id, 101).await.expect("take"), "replayed");
    assert!(!store.take_totp_step(&a.id, 99).await.expect("take"), "an older step");
    assert!(!store.take_totp_step(&b.id, 500).await.expect("take"), "no factor, no code");
    // Two replicas taking the same code at once: one wins.
    let (x, y) = tokio::join!(store.take_totp_step(&a.id, 102), store.take_totp_step(&a.id, 102));
    assert_eq!(u8::from(x.expect("take")) + u8::from(y.expect("take")), 1);

    // Recovery codes work once, and only for their own account.
    assert!(!store.take_recovery_code(&b.id, "hash-3").await.expect("take"));
    assert!(store.take_recovery_code(&a.id, "hash-3").await.expect("take"));
    assert!(!store.take_recovery_code(&a.id, "hash-3").await.expect("take"), "used");
    assert_eq!(store.recovery_codes_left(&a.id).await.expect("count"), 9);

    // Enrolling again replaces the secret and every recovery code.
    store.enrol_totp(&a.id, "NEWSECRET", 5, &["fresh".into()], 8).await.expect("enrol again");
    assert_eq!(store.totp(&a.id).await.expect("read").expect("enrolled").last_step, 5);
    assert!(!store.take_recovery_code(&a.id, "hash-4").await.expect("take"), "old codes are gone");
    assert_eq!(store.recovery_codes_left(&a.id).await.expect("count"), 1);

    assert!(store.remove_factors(&a.id).await.expect("remove"));
    assert!(!store.remove_factors(&a.id).await.expect("remove"), "nothing left");
    assert_eq!(store.totp(&a.id).await.expect("read"), None);
    assert_eq!(store.recovery_codes_left(&a.id).await.expect("count"), 0);

    // A security key is a second factor too: enrolled, and removed by a reset.
    let key = NewKey {
        account_id: a.id.clone(),
        credential_id: "cred-a".into(),
        name: "Laptop".into(),
        credential: "{}".into(),
        created_at: 10,
    };
    assert!(matches!(store.add_key(key, 10).await.expect("add"), Added::Added(_)));
    assert_eq!(store.enrolled(std::slice::from_ref(&a.id)).await.expect("enrolled"), [a.id.as_str()]);
    assert!(store.remove_factors(&a.id).await.expect("remove"), "the key");
    assert!(store.keys(&a.id).await.expect("keys").is_empty());
    assert!(store.enrolled(std::slice::from_ref(&a.id)).await.expect("enrolled").is_empty());

    // Deleting an account deletes its factors.
    store.enrol_totp(&b.id, "BSECRET", 1, &["b".into()], 9).await.expect("enrol");
    store.delete(&b.id).await.expect("delete");
    assert_eq!(store.totp(&b.id).await.expect("read"), None);
    assert_eq!(store.recovery_codes_left(&b.id).await.expect("count"), 0);
}
