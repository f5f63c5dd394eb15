//! Generic LDAP: OpenLDAP with client-side group expansion.

use super::*;

/// slapd's log, as it stands now.
fn openldap_log() -> Option<String> {
    let path = peer("DESKGATE_TEST_OPENLDAP_LOG")?;
    Some(std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("read {path}: {e}")))
}

/// What slapd logged after `before` bytes, so that earlier runs do not count.
fn logged_since(before: usize) -> String {
    let log = openldap_log().unwrap_or_default();
    log.get(before..).unwrap_or_default().to_owned()
}

fn ldap_group(cn: &str) -> String {
    format!("cn={cn},ou=groups,{LDAP_BASE}")
}

#[tokio::test]
async fn openldap_search_then_bind_expands_nested_groups() {
    let url = require!("DESKGATE_TEST_OPENLDAP");
    let ldap = openldap_config(&url).build("dir").expect("config");
    let alice = ldap.sign_in("alice", "Passw0rd-alice").await.expect("alice");
    let id = &alice.identity;
    assert_eq!(alice.server, url);
    assert_eq!(id.provider, "ldap.dir");
    assert_eq!(id.subject.len(), 36, "entryUUID: {}", id.subject);
    assert_eq!(id.username.as_deref(), Some("alice"));
    assert_eq!(id.email.as_deref(), Some("alice@deskgate.test"));
    assert_eq!(id.display_name.as_deref(), Some("Alice Example"));
    assert_eq!(id.attributes.get("organization"), Some(&vec!["Example Org".to_owned()]));
    assert_eq!(
        sorted_lower(&id.groups),
        sorted_lower(&[ldap_group("helpdesk"), ldap_group("staff"), ldap_group("vips")])
    );
}

#[tokio::test]
async fn openldap_group_cycle_terminates() {
    let url = require!("DESKGATE_TEST_OPENLDAP");
    let ldap = openldap_config(&url).build("dir").expect("config");
    let carol = ldap.sign_in("carol", "Passw0rd-carol").await.expect("carol");
    assert_eq!(
        sorted_lower(&carol.identity.groups),
        sorted_lower(&[ldap_group("cycle-a"), ldap_group("cycle-b")])
    );
}

#[tokio::test]
async fn openldap_depth_limit_stops_the_walk() {
    let url = require!("DESKGATE_TEST_OPENLDAP");
    let all = openldap_config(&url).build("dir").expect("config");
    let dave = all.sign_in("dave", "Passw0rd-dave").await.expect("dave");
    assert_eq!(dave.identity.groups.len(), 4, "{:?}", dave.identity.groups);

    let limited = LdapConfig { max_group_depth: 2, ..openldap_config(&url) }.build("dir").expect("config");
    let dave = limited.sign_in("dave", "Passw0rd-dave").await.expect("dave");
    assert_eq!(
        sorted_lower(&dave.identity.groups),
        sorted_lower(&[ldap_group("chain-1"), ldap_group("chain-2")])
    );

    let flat = LdapConfig { nested_groups: false, ..openldap_config(&url) }.build("dir").expect("config");
    let dave = flat.sign_in("dave", "Passw0rd-dave").await.expect("dave");
    assert_eq!(sorted_lower(&dave.identity.groups), vec![ldap_group("chain-1")]);
}

#[tokio::test]
async fn openldap_group_dns_full_of_filter_syntax_are_escaped() {
    let url = require!("DESKGATE_TEST_OPENLDAP");
    let ldap = openldap_config(&url).build("dir").expect("config");
    let bob = ldap.sign_in("bob", "Passw0rd-bob").await.expect("bob");
    assert_eq!(
        sorted_lower(&bob.identity.groups),
        sorted_lower(&[ldap_group("ops (eu)*"), ldap_group("ops-all")])
    );
}

#[tokio::test]
async fn openldap_refusals() {
    let url = require!("DESKGATE_TEST_OPENLDAP");
    let ldap = openldap_config(&url).build("dir").expect("config");
    assert_eq!(code(ldap.sign_in("alice", "wrong").await), "invalid-credentials");
    assert_eq!(code(ldap.sign_in("nobody", "Passw0rd-nobody").await), "invalid-credentials");
    // Two entries match `twin`: refused rather than guessed, even with the right password.
    assert_eq!(code(ldap.sign_in("twin", "Passw0rd-twin").await), "invalid-credentials");
}

#[tokio::test]
async fn openldap_receives_the_escaped_filter_not_an_altered_search() {
    let url = require!("DESKGATE_TEST_OPENLDAP");
    let Some(before) = openldap_log().map(|l| l.len()) else {
        return;
    };
    let ldap = openldap_config(&url).build("dir").expect("config");
    // slapd logs the filter it parsed: escapes in upper-case hex, and the value of `uid`
    // (a case-ignoring attribute) normalized, so the comparison ignores case.
    let cases = [
        ("*)(uid=*", "filter=\"(uid=\\2A\\29\\28uid=\\2A)\""),
        ("alice)(|(objectClass=*", "filter=\"(uid=alice\\29\\28|\\28objectClass=\\2A)\""),
        ("alic*", "filter=\"(uid=alic\\2A)\""),
        ("back\\slash", "filter=\"(uid=back\\5Cslash)\""),
    ];
    for (name, _) in cases {
        assert_eq!(code(ldap.sign_in(name, "Passw0rd-alice").await), "invalid-credentials", "{name}");
    }
    let long = "a".repeat(10 * 1024);
    assert_eq!(code(ldap.sign_in(&long, "Passw0rd-alice").await), "invalid-credentials");
    assert_eq!(code(ldap.sign_in("alice\0", "Passw0rd-alice").await), "invalid-credentials");

    let log = logged_since(before).to_lowercase();
    for (name, logged) in cases {
        assert!(log.contains(&logged.to_lowercase()), "{name}: slapd did not log {logged}");
    }
    assert!(!log.contains(&long[..300]), "an over-long name reached the server");
    assert!(!log.contains("alice\\00"), "a name with NUL reached the server");
}

/// The connection ids in slapd's log lines that contain `needle`.
fn conns_with(log: &str, needle: &str) -> Vec<String> {
    log.lines()
        .filter(|line| line.contains(needle))
        .filter_map(|line| line.split_whitespace().find(|w| w.starts_with("conn=")))
        .map(str::to_owned)
        .collect()
}

#[tokio::test]
async fn openldap_service_connection_is_reused_and_user_binds_get_their_own() {
    let url = require!("DESKGATE_TEST_OPENLDAP");
    let Some(before) = openldap_log().map(|l| l.len()) else {
        return;
    };
    // A filter of its own, so this test's searches are told apart from parallel tests'.
    let config = LdapConfig {
        user_filter: Some("(&(objectClass=inetOrgPerson)(uid={username}))".into()),
        ..openldap_config(&url)
    };
    let ldap = config.build("dir").expect("config");
    ldap.sign_in("erin", "Passw0rd-erin").await.expect("first");
    ldap.sign_in("erin", "Passw0rd-erin").await.expect("second");

    let log = logged_since(before);
    let searches = conns_with(&log, "filter=\"(&(objectClass=inetOrgPerson)(uid=erin))\"");
    assert_eq!(searches.len(), 2, "{searches:?}");
    assert_eq!(searches[0], searches[1], "both searches on the one service connection");
    let binds = conns_with(&log, &format!("BIND dn=\"uid=erin,ou=people,{LDAP_BASE}\" method=128"));
    assert_eq!(binds.len(), 2, "{binds:?}");
    assert_ne!(binds[0], binds[1], "each user bind on a new connection");
    for bind_conn in &binds {
        assert_ne!(bind_conn, &searches[0]);
        let searched_there =
            log.lines().any(|l| l.contains(&format!("{bind_conn} ")) && l.contains(" SRCH "));
        assert!(!searched_there, "{bind_conn} bound as the user and also searched");
    }
}
