//! Active Directory: Samba as a domain controller.

use deskgate_provider::PasswordProvider;

use super::*;

#[tokio::test]
async fn ad_alice_signs_in_with_each_spelling_and_gets_direct_and_nested_groups() {
    let Some(dc1) = samba_url("DESKGATE_TEST_SAMBA1") else {
        return;
    };
    let _shared = SAMBA.read().await;
    let ldap = ad_config(std::slice::from_ref(&dc1)).build("corp").expect("config");

    let mut subjects = Vec::new();
    for spelling in ["alice", "alice@corp.example.com", "CORP\\alice", "ALICE"] {
        let signed =
            ldap.sign_in(spelling, "Passw0rd-alice").await.unwrap_or_else(|e| panic!("{spelling}: {e:?}"));
        let id = &signed.identity;
        assert_eq!(signed.server, dc1);
        assert_eq!(id.provider, "ldap.corp");
        assert_eq!(id.username.as_deref(), Some("alice"));
        assert_eq!(id.email.as_deref(), Some("alice@corp.example.com"));
        assert!(id.email_verified);
        assert_eq!(id.display_name.as_deref(), Some("Alice Example"));
        assert_eq!(id.attributes.get("organization"), Some(&vec!["Example Corp".to_owned()]));
        assert!(has_group(&signed, HELPDESK), "direct group missing: {:?}", id.groups);
        assert!(has_group(&signed, VIPS), "nested group missing: {:?}", id.groups);
        assert!(!has_group(&signed, POWER_USERS));
        subjects.push(id.subject.clone());
    }
    // objectGUID in its usual text form, the same whatever the spelling.
    let subject = &subjects[0];
    assert_eq!(subject.len(), 36, "{subject}");
    assert_eq!(subject.matches('-').count(), 4, "{subject}");
    assert!(subjects.iter().all(|s| s == subject));

    // The PasswordProvider trait gives the same identity.
    let identity = ldap.verify("alice", "Passw0rd-alice").await.expect("verify");
    assert_eq!(&identity.subject, subject);
}

#[tokio::test]
async fn ad_without_nesting_reports_only_direct_groups() {
    let Some(dc1) = samba_url("DESKGATE_TEST_SAMBA1") else {
        return;
    };
    let _shared = SAMBA.read().await;
    let config = LdapConfig { nested_groups: false, ..ad_config(&[dc1]) };
    let ldap = config.build("corp").expect("config");
    let alice = ldap.sign_in("alice", "Passw0rd-alice").await.expect("alice");
    assert!(has_group(&alice, HELPDESK));
    assert!(!has_group(&alice, VIPS), "{:?}", alice.identity.groups);
    let bob = ldap.sign_in("bob", "Passw0rd-bob").await.expect("bob");
    // Domain Users is his primary group; without nesting, not the Builtin group it is in.
    assert_eq!(
        sorted_lower(&bob.identity.groups),
        vec![DOMAIN_USERS.to_lowercase(), POWER_USERS.to_lowercase()]
    );
}

#[tokio::test]
async fn ad_refusals_are_told_apart() {
    let Some(dc1) = samba_url("DESKGATE_TEST_SAMBA1") else {
        return;
    };
    let _shared = SAMBA.read().await;
    let ldap = ad_config(&[dc1]).build("corp").expect("config");
    let cases = [
        ("alice", "wrong-password", "invalid-credentials"),
        ("nobody", "Passw0rd-nobody", "invalid-credentials"),
        ("carol", "Passw0rd-carol", "account-disabled"),
        ("dave", "Passw0rd-dave", "password-must-change"),
        ("erin", "Passw0rd-erin", "account-expired"),
        ("frank", "Passw0rd-frank", "account-locked"),
        ("henry", "Passw0rd-henry", "password-expired"),
        ("bob", "Passw0rd-bob", "signed-in"),
    ];
    for (user, password, expected) in cases {
        assert_eq!(code(ldap.sign_in(user, password).await), expected, "{user}");
    }
    let bob = ldap.sign_in("CORP\\bob", "Passw0rd-bob").await.expect("bob");
    assert!(has_group(&bob, POWER_USERS));
}

#[tokio::test]
async fn ad_injection_attempts_do_not_sign_in() {
    let Some(dc1) = samba_url("DESKGATE_TEST_SAMBA1") else {
        return;
    };
    let _shared = SAMBA.read().await;
    let ldap = ad_config(&[dc1]).build("corp").expect("config");
    let long = "a".repeat(10 * 1024);
    // With alice's real password: a wildcard that reached the server unescaped would
    // find her and let the bind succeed.
    for name in
        ["alic*", "*", "*)(sAMAccountName=*", "alice)(|(objectClass=*", "alice\0", "CORP\\alic*", &long]
    {
        let outcome = ldap.sign_in(name, "Passw0rd-alice").await;
        assert_eq!(code(outcome), "invalid-credentials", "{:?}", &name[..name.len().min(40)]);
    }
    assert_eq!(code(ldap.sign_in("alice", "").await), "invalid-credentials");
    assert_eq!(code(ldap.sign_in("alice", "Passw0rd-alice\0").await), "invalid-credentials");
}

#[tokio::test]
async fn ad_over_ldaps_and_starttls_checks_the_certificate_against_the_ca_file() {
    let Some(ip1) = peer("DESKGATE_TEST_SAMBA1") else {
        return;
    };
    let Some(ip2) = peer("DESKGATE_TEST_SAMBA2") else {
        return;
    };
    let Some(ca) = peer("DESKGATE_TEST_SAMBA_CA") else {
        return;
    };
    let _shared = SAMBA.read().await;

    let ldaps = LdapConfig {
        allow_plaintext: false,
        ca_file: Some(ca.clone().into()),
        ..ad_config(&[format!("ldaps://{ip1}")])
    };
    let signed =
        ldaps.build("corp").expect("config").sign_in("alice", "Passw0rd-alice").await.expect("ldaps");
    assert_eq!(signed.server, format!("ldaps://{ip1}"));
    assert!(has_group(&signed, VIPS));

    let starttls = LdapConfig {
        allow_plaintext: false,
        starttls: true,
        ca_file: Some(ca.into()),
        ..ad_config(&[format!("ldap://{ip2}")])
    };
    let signed = starttls.build("corp").expect("config").sign_in("CORP\\alice", "Passw0rd-alice").await;
    assert_eq!(signed.expect("starttls").server, format!("ldap://{ip2}"));

    // Without the test CA the certificate is not trusted, so there is no sign-in at all.
    let untrusted = LdapConfig { allow_plaintext: false, ..ad_config(&[format!("ldaps://{ip1}")]) };
    let outcome = untrusted.build("corp").expect("config").sign_in("alice", "Passw0rd-alice").await;
    assert_eq!(code(outcome), "unavailable");
}
