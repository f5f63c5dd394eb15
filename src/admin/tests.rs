use super::*;
use crate::usergroups::Organization;

#[test]
fn the_origin_of_the_public_url_drops_its_path() {
    assert_eq!(origin_of("https://desk.example.com"), "https://desk.example.com");
    assert_eq!(origin_of("https://desk.example.com:8443/help/"), "https://desk.example.com:8443");
    assert_eq!(origin_of("http://127.0.0.1:8080/"), "http://127.0.0.1:8080");
}

#[test]
fn posted_fields_keep_repeated_names_and_decode() {
    let f = Fields::parse(b"csrf=a%2Bb&usergroup=vips&name=Ann+O%27Neil&usergroup=power_users&flag");
    assert_eq!(f.one("csrf"), "a+b");
    assert_eq!(f.one("name"), "Ann O'Neil");
    assert_eq!(f.all("usergroup"), ["vips", "power_users"]);
    assert_eq!(f.one("flag"), "");
    assert_eq!(f.one("missing"), "");
    assert!(f.all("missing").is_empty());
}

#[test]
fn membership_gathers_config_assignments_and_organization_domains() {
    let group = |id: &str| {
        (
            id.to_owned(),
            Usergroup { id: id.into(), name: id.into(), permissions: Default::default(), mfa: false },
        )
    };
    let org = |id: &str, domains: &[&str], groups: &[&str]| Organization {
        id: id.into(),
        name: id.into(),
        domains: domains.iter().map(|d| d.to_string()).collect(),
        usergroups: groups.iter().map(|g| g.to_string()).collect(),
    };
    let model = Model {
        everyone_enabled: true,
        usergroups: [group(EVERYONE), group(REGISTERED), group("vips"), group("trial_users")]
            .into_iter()
            .collect(),
        organizations: vec![
            org("acme", &["acme.example", "acme.test"], &["trial_users", "vips"]),
            org("corp", &["corp.example"], &["vips"]),
        ],
        assignments: [
            ("zed@example.org".to_owned(), vec!["vips".to_owned()]),
            ("ann@example.org".to_owned(), vec!["trial_users".to_owned(), "vips".to_owned()]),
            ("bob@example.org".to_owned(), vec!["trial_users".to_owned()]),
        ]
        .into_iter()
        .collect(),
    };
    let policy = AccountPolicy {
        create_accounts: false,
        link_by_email: false,
        group_rules: vec![
            ("CN=VIPs,DC=corp".into(), vec!["vips".into()]),
            ("Sales".into(), vec!["trial_users".into()]),
        ],
        ..Default::default()
    };
    let vips = membership(&model, &[("ldap.corp", &policy)], "vips");
    assert_eq!(vips.provider_groups, [("ldap.corp".to_owned(), "cn=vips,dc=corp".to_owned())]);
    assert_eq!(vips.organization_names, ["acme", "corp"]);
    assert_eq!(vips.emails, ["ann@example.org", "zed@example.org"]);
    assert_eq!(vips.domains, ["acme.example", "acme.test", "corp.example"]);
    let trial = membership(&model, &[], "trial_users");
    assert!(trial.provider_groups.is_empty());
    assert_eq!(trial.emails, ["ann@example.org", "bob@example.org"]);
    assert_eq!(trial.domains, ["acme.example", "acme.test"]);
    assert_eq!(assignable(&model).map(|g| g.id.as_str()).collect::<Vec<_>>(), ["trial_users", "vips"]);
}
