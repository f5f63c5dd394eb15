use super::*;

fn same(a: &str, b: &str) -> bool {
    Dn::parse(a).unwrap_or_else(|e| panic!("{a}: {e}")) == Dn::parse(b).unwrap_or_else(|e| panic!("{b}: {e}"))
}

const WRITTEN: &str = r#"CN=Leads\, Ost \+ Süd\; \"Nacht\",CN=Users,DC=corp,DC=example,DC=com"#;

#[test]
fn samba_hex_escapes_match_the_administrators_backslash_escapes() {
    let samba = r"CN=Leads\2C Ost \2B Süd\3B \22Nacht\22,CN=Users,DC=corp,DC=example,DC=com";
    assert!(same(WRITTEN, samba));
    // The same with the UTF-8 of `ü` hex-escaped, as some servers send it.
    let bytes = r"CN=Leads\2c Ost \2b S\c3\bcd\3b \22Nacht\22,CN=Users,DC=corp,DC=example,DC=com";
    assert!(same(WRITTEN, bytes));
}

#[test]
fn attribute_type_case_oids_and_spaces_around_separators_do_not_matter() {
    assert!(same(WRITTEN, r#"cn=Leads\, Ost \+ Süd\; \"Nacht\", cn=Users, dc=corp , dc = example,dc=com"#));
    assert!(same("CN=VIPs,DC=corp", "2.5.4.3=VIPs,0.9.2342.19200300.100.1.25=corp"));
    assert!(same("CN=VIPs,DC=corp", "oid.2.5.4.3=VIPs,dc=corp"));
}

#[test]
fn values_compare_without_regard_to_case_and_unicode_form() {
    assert!(same("CN=ZÜRICH,DC=x", "cn=Zürich,dc=X"));
    assert!(same("CN=ΩMEGA,DC=x", "cn=ωmega,dc=x"));
    assert!(same("CN=Straße,DC=x", "CN=STRASSE,DC=x"));
    // A decomposed ü (u + combining diaeresis) is the same letter.
    assert!(same("CN=Zu\\cc\\88rich,DC=x", "CN=Zürich,DC=x"));
    assert!(!same("CN=Zurich,DC=x", "CN=Zürich,DC=x"));
}

#[test]
fn multi_valued_rdns_compare_in_any_order() {
    assert!(same("CN=a+OU=b,DC=x", "ou=B + cn=A,dc=x"));
    assert!(!same("CN=a+OU=b,DC=x", "CN=a,OU=b,DC=x"));
}

#[test]
fn a_leading_hash_or_space_and_a_trailing_space_are_values_when_escaped() {
    assert!(same(r"CN=\#1 Team,DC=x", r"cn=\231 team,dc=x"));
    assert!(same(r"CN=\ lead,DC=x", r"CN=\20lead,DC=x"));
    assert!(same(r"CN=trail\ ,DC=x", r"CN=trail\20,DC=x"));
    assert!(!same(r"CN=trail\ ,DC=x", "CN=trail,DC=x"));
    assert!(same("CN=trail   ,DC=x", "CN=trail,DC=x"));
    assert!(same("CN=a  b,DC=x", r"CN=a\20\20b,DC=x"));
    assert!(!same("CN=a  b,DC=x", "CN=a b,DC=x"));
}

#[test]
fn hex_ber_values_compare_as_bytes() {
    assert!(same("CN=#04024869,DC=x", "cn=#04024869,dc=x"));
    assert!(!same("CN=#04024869,DC=x", "CN=Hi,DC=x"));
}

#[test]
fn different_names_and_lengths_differ() {
    assert!(!same("CN=VIPs,CN=Users,DC=x", "CN=VIPs,DC=x"));
    assert!(!same("CN=VIPs,DC=x", "OU=VIPs,DC=x"));
    assert!(!same(r"CN=a\,b,DC=x", "CN=a,CN=b,DC=x"));
}

#[test]
fn malformed_dns_are_refused_with_where_and_why() {
    for (bad, at) in [
        ("VIPs", 4),
        ("CN=VIPs,", 8),
        ("CN=a,,DC=x", 5),
        ("=a", 0),
        ("1CN=a", 0),
        (r"CN=a\zb", 5),
        (r"CN=a\4", 5),
        ("CN=a;b", 4),
        ("CN=a\"b", 4),
        ("CN=a<b", 4),
        ("CN=", 3),
        ("CN=#zz", 4),
        ("CN=#0", 5),
        (r"CN=\ff\fe", 9),
        ("CN=a+CN=b", 9),
        ("CN=a\0", 4),
    ] {
        let error = Dn::parse(bad).expect_err(bad);
        assert_eq!(error.at, at, "{bad}: {error}");
    }
    assert!(Dn::parse(&"CN=a,".repeat(20_000)).is_err());
}

#[test]
fn keys_are_equal_exactly_when_the_dns_are() {
    assert_eq!(
        group_key(WRITTEN),
        group_key(r"cn=LEADS\2C OST \2B SÜD\3B \22NACHT\22,cn=users,dc=corp,dc=example,dc=com")
    );
    assert_ne!(group_key(r"CN=a\,b,DC=x"), group_key("CN=a,CN=b,DC=x"));
    assert_ne!(group_key("CN=a+OU=b,DC=x"), group_key(r"CN=a\+OU\=b,DC=x"));
    // Not a DN: compared as text, without regard to ASCII case.
    assert_eq!(group_key("Helpdesk Agents"), "helpdesk agents");
}

#[test]
fn arbitrary_text_never_panics() {
    for text in
        ["\\", "CN=\\", "CN=a\\", "#", "CN=#", "+", ",", "  ", "CN=ü\\", "CN=\\c3", "a=b+", "a=b,+c=d"]
    {
        let _ = Dn::parse(text);
        let _ = group_key(text);
    }
}
