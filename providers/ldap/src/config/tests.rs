use std::io::Write;

use super::*;

/// A password file that lives as long as the test.
struct TempFile(PathBuf);

impl TempFile {
    fn new(name: &str, content: &str) -> Self {
        let path = std::env::temp_dir().join(format!("deskgate-ldap-{}-{name}", std::process::id()));
        let mut file = std::fs::File::create(&path).expect("create temp file");
        file.write_all(content.as_bytes()).expect("write temp file");
        TempFile(path)
    }
}

impl Drop for TempFile {
    fn drop(&mut self) {
        let _ = std::fs::remove_file(&self.0);
    }
}

fn ad_config(password_file: &Path) -> LdapConfig {
    LdapConfig {
        kind: Kind::ActiveDirectory,
        urls: vec!["ldaps://dc1.corp.example.com".into(), "ldaps://dc2.corp.example.com:636".into()],
        starttls: false,
        allow_plaintext: false,
        ca_file: None,
        bind_dn: "CN=svc,CN=Users,DC=corp,DC=example,DC=com".into(),
        bind_password_file: Some(password_file.to_owned()),
        bind_password_env: None,
        base_dn: "DC=corp,DC=example,DC=com".into(),
        user_filter: None,
        email_attribute: None,
        display_name_attribute: None,
        organization_attribute: None,
        group_base_dn: None,
        domains: None,
        nested_groups: true,
        max_group_depth: 8,
        connect_timeout: None,
        timeout: None,
        retry_after: None,
        create_accounts: false,
        link_by_email: false,
        groups: vec![GroupRule {
            group: "CN=VIPs,CN=Users,DC=corp,DC=example,DC=com".into(),
            usergroups: vec!["vip".into()],
        }],
        display_name: None,
    }
}

fn paths(problems: &[Problem]) -> Vec<&str> {
    problems.iter().map(|p| p.path.as_str()).collect()
}

#[test]
fn a_valid_ad_table_builds_with_ad_defaults() {
    let password = TempFile::new("ok", "s3cret\n");
    let ldap = ad_config(&password.0).build("corp").expect("valid config");
    assert_eq!(ldap.provider_id(), "ldap.corp");
    assert_eq!(ldap.kind(), Kind::ActiveDirectory);
    assert_eq!(ldap.urls().len(), 2);
    assert_eq!(ldap.group_rules().len(), 1);
    let s = &ldap.inner.settings;
    assert_eq!(s.bind_password.expose(), "s3cret", "one trailing newline is dropped");
    assert!(s.user_filter.contains("(sAMAccountName={username})"));
    assert!(s.user_filter.contains("(userPrincipalName={username})"));
    assert_eq!(
        (s.email_attribute.as_str(), s.display_name_attribute.as_str(), s.organization_attribute.as_str()),
        ("mail", "displayName", "company")
    );
    assert_eq!(s.group_base_dn, "DC=corp,DC=example,DC=com");
    assert_eq!(s.connect_timeout, Duration::from_secs(5));
    assert_eq!(s.timeout, Duration::from_secs(10));
    assert_eq!(s.retry_after, Duration::from_secs(30));
    assert!(!format!("{ldap:?}").contains("s3cret"), "the password never shows in Debug");
}

#[test]
fn the_generic_kind_has_its_own_defaults() {
    let password = TempFile::new("generic", "pw");
    let mut config = ad_config(&password.0);
    config.kind = Kind::Ldap;
    let ldap = config.build("dir").expect("valid config");
    let s = &ldap.inner.settings;
    assert_eq!(s.user_filter, "(uid={username})");
    assert_eq!(s.organization_attribute, "o");
}

#[test]
fn deserializes_from_toml_with_defaults() {
    let config: LdapConfig = toml_edit::de::from_str(
        r#"
        kind = "active-directory"
        urls = ["ldaps://dc1.corp.example.com", "ldaps://dc2.corp.example.com"]
        bind_dn = "svc-deskgate@corp.example.com"
        bind_password_env = "DESKGATE_LDAP_PASSWORD"
        base_dn = "DC=corp,DC=example,DC=com"
        timeout = "3s"

        [[groups]]
        group = "CN=VIPs,CN=Users,DC=corp,DC=example,DC=com"
        usergroups = ["vip"]
        "#,
    )
    .expect("deserializes");
    assert_eq!(config.kind, Kind::ActiveDirectory);
    assert_eq!(config.urls.len(), 2);
    assert!(config.nested_groups);
    assert_eq!(config.max_group_depth, 8);
    assert!(!config.allow_plaintext && !config.starttls && !config.create_accounts && !config.link_by_email);
    assert_eq!(config.groups[0].usergroups, vec!["vip".to_owned()]);

    let generic: LdapConfig = toml_edit::de::from_str("kind = \"ldap\"").expect("deserializes");
    assert_eq!(generic.kind, Kind::Ldap);
    assert!(toml_edit::de::from_str::<LdapConfig>("kind = \"novell\"").is_err());
}

#[test]
fn every_problem_is_reported_at_once_with_its_key_path() {
    let mut config = ad_config(Path::new("/nonexistent/deskgate/password"));
    config.urls = vec![
        "ldaps://good.example.com".into(),
        "ldap://plain.example.com".into(),
        "http://web.example.com".into(),
        "ldaps://dc/DC=corp?sub".into(),
        "ldaps://dc:99999".into(),
    ];
    config.ca_file = Some("/nonexistent/deskgate/ca.pem".into());
    config.bind_dn = " ".into();
    config.base_dn = "corp.example.com".into();
    config.group_base_dn = Some("".into());
    config.user_filter = Some("(uid=alice)".into());
    config.email_attribute = Some("e mail".into());
    config.max_group_depth = 0;
    config.connect_timeout = Some("soon".into());
    config.timeout = Some("0s".into());
    config.retry_after = Some("5x".into());
    config.groups.push(GroupRule { group: "VIPs".into(), usergroups: vec![] });

    let problems = config.build("corp").expect_err("broken config");
    assert_eq!(
        paths(&problems),
        vec![
            "urls[1]",
            "urls[2]",
            "urls[3]",
            "urls[4]",
            "ca_file",
            "bind_dn",
            "bind_password_file",
            "base_dn",
            "group_base_dn",
            "user_filter",
            "email_attribute",
            "max_group_depth",
            "connect_timeout",
            "timeout",
            "retry_after",
            "groups[1].group",
            "groups[1].usergroups",
        ],
        "{problems:#?}"
    );
    assert!(problems[0].message.contains("allow_plaintext"));
}

#[test]
fn plain_ldap_needs_starttls_or_an_explicit_opt_in() {
    let password = TempFile::new("plain", "pw");
    let mut config = ad_config(&password.0);
    config.urls = vec!["ldap://127.0.0.2".into()];
    assert_eq!(paths(&config.build("x").expect_err("plaintext")), vec!["urls[0]"]);

    config.starttls = true;
    assert!(config.build("x").is_ok(), "StartTLS protects ldap://");

    config.starttls = false;
    config.allow_plaintext = true;
    assert!(config.build("x").is_ok(), "explicitly allowed");
}

#[test]
fn starttls_on_an_ldaps_url_is_contradictory() {
    let password = TempFile::new("contra", "pw");
    let mut config = ad_config(&password.0);
    config.starttls = true;
    assert_eq!(paths(&config.build("x").expect_err("contradictory")), vec!["urls[0]", "urls[1]"]);
}

#[test]
fn exactly_one_password_source_is_required() {
    let password = TempFile::new("both", "pw");
    let mut config = ad_config(&password.0);
    config.bind_password_env = Some("DESKGATE_LDAP_TEST_UNUSED".into());
    assert_eq!(paths(&config.build("x").expect_err("both")), vec!["bind_password_env"]);

    config.bind_password_file = None;
    config.bind_password_env = None;
    assert_eq!(paths(&config.build("x").expect_err("neither")), vec!["bind_password_file"]);

    config.bind_password_env = Some("DESKGATE_LDAP_TEST_SURELY_UNSET_VARIABLE".into());
    assert_eq!(paths(&config.build("x").expect_err("unset")), vec!["bind_password_env"]);

    config.bind_password_env = Some("PATH".into());
    assert!(config.build("x").is_ok(), "any set variable serves");
}

#[test]
fn an_empty_password_file_is_a_problem_and_its_content_is_never_shown() {
    let empty = TempFile::new("empty", "\n");
    let config = ad_config(&empty.0);
    let problems = config.build("x").expect_err("empty");
    assert_eq!(paths(&problems), vec!["bind_password_file"]);

    let secret = TempFile::new("nul", "top\0secret");
    let problems = ad_config(&secret.0).build("x").expect_err("nul");
    assert!(problems.iter().all(|p| !p.message.contains("secret")));
}

#[test]
fn a_ca_file_must_hold_certificates() {
    let password = TempFile::new("ca-pw", "pw");
    let not_pem = TempFile::new("ca", "just text\n");
    let mut config = ad_config(&password.0);
    config.ca_file = Some(not_pem.0.clone());
    assert_eq!(paths(&config.build("x").expect_err("no certs")), vec!["ca_file"]);
}

#[test]
fn urls_are_checked_strictly() {
    for good in [
        "ldap://h",
        "ldaps://h:636",
        "LDAPS://DC1.corp.example.com/",
        "ldap://127.0.0.2:389",
        "ldaps://[::1]:636",
    ] {
        assert!(parse_url(good).is_ok(), "{good}");
    }
    for bad in [
        "ldapi:///run/slapd",
        "ldap://",
        "ldap:///",
        "ldap://:389",
        "ldap://h:0",
        "ldap://h:x",
        "ldap://user@h",
        "ldap://h/DC=x",
        "ldap://h?x",
        "ldap://[::1",
        "ldaps://h h",
        "dc1.corp.example.com",
    ] {
        assert!(parse_url(bad).is_err(), "{bad}");
    }
}

#[test]
fn filter_templates_must_be_balanced_and_use_the_placeholder() {
    assert!(check_filter_template("(uid={username})").is_ok());
    assert!(check_filter_template("(&(objectClass=person)(|(uid={username})(mail={username})))").is_ok());
    assert!(check_filter_template("uid={username}").is_err());
    assert!(check_filter_template("(uid={username}))(").is_err());
    assert!(check_filter_template("(uid={username})(cn=x)").is_err());
    assert!(check_filter_template("((uid={username})").is_err());
    assert!(check_filter_template("(uid=alice)").is_err());
}

#[test]
fn dns_are_read_as_rfc_4514_and_attribute_names_checked() {
    let dn_problem = |dn: &str| {
        let mut problems = Vec::new();
        check_dn(&mut problems, "groups[0].group", dn);
        problems.into_iter().next().map(|p| p.message)
    };
    assert_eq!(dn_problem("DC=corp,DC=example,DC=com"), None);
    assert_eq!(dn_problem("CN=Smith\\, John,OU=People,DC=x"), None);
    assert_eq!(dn_problem("cn=x"), None);
    assert!(dn_problem("corp.example.com").is_some());
    assert!(dn_problem("CN=x,,DC=y").is_some());
    assert!(dn_problem("=x").is_some());
    let unescaped = dn_problem("CN=Leads; Ost,DC=x").expect("an unescaped `;` is refused");
    assert!(unescaped.contains("must be escaped") && unescaped.contains("at byte 8"), "{unescaped}");
    assert!(is_attribute_name("mail"));
    assert!(is_attribute_name("msDS-PrincipalName"));
    assert!(is_attribute_name("2.5.4.3"));
    assert!(!is_attribute_name(""));
    assert!(!is_attribute_name("e mail"));
    assert!(!is_attribute_name("2..5"));
    assert!(!is_attribute_name("-x"));
}

#[test]
fn domains_must_be_domain_names_and_apply_to_active_directory_only() {
    let password = TempFile::new("domains", "s3cret\n");
    let mut config = ad_config(&password.0);
    config.domains = Some(vec!["CORP".into(), " Corp.Example.com ".into()]);
    let ldap = config.build("corp").expect("valid domains");
    assert_eq!(
        ldap.inner.settings.domains,
        Some(vec!["corp".to_owned(), "corp.example.com".to_owned()]),
        "kept in lower case"
    );

    config.domains = Some(vec!["CORP".into(), "corp\\x".into(), "a..b".into(), "x@y".into()]);
    let problems = config.build("corp").expect_err("bad domains");
    assert_eq!(paths(&problems), vec!["domains[1]", "domains[2]", "domains[3]"]);

    config.domains = Some(Vec::new());
    assert_eq!(paths(&config.build("corp").expect_err("empty list")), vec!["domains"]);

    let generic =
        LdapConfig { kind: Kind::Ldap, domains: Some(vec!["CORP".into()]), ..ad_config(&password.0) };
    assert_eq!(paths(&generic.build("dir").expect_err("ldap kind")), vec!["domains"]);
}
