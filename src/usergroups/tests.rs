use super::*;

fn group(id: &str, perms: &[&str]) -> (String, Usergroup) {
    let g = Usergroup {
        id: id.into(),
        name: id.into(),
        permissions: perms.iter().map(|p| p.to_string()).collect(),
        mfa: false,
    };
    (id.into(), g)
}

fn helpdesk(everyone_enabled: bool) -> Model {
    Model {
        everyone_enabled,
        usergroups: [
            group(EVERYONE, &["kb.read", "news.read"]),
            group(REGISTERED, &["tickets.read"]),
            group("power_users", &["kb.category.advanced", "comments.unmoderated"]),
            group("trial_users", &["chat.sales"]),
            group("vips", &["chat.support"]),
        ]
        .into_iter()
        .collect(),
        organizations: vec![Organization {
            id: "corp".into(),
            name: "Corp".into(),
            domains: vec!["corp.example.com".into()],
            usergroups: vec!["vips".into()],
        }],
        assignments: [("ann@example.com".to_owned(), vec!["trial_users".to_owned()])].into_iter().collect(),
    }
}

#[test]
fn a_member_of_two_usergroups_gets_the_union_of_their_permissions() {
    let model = helpdesk(true);
    let assigned = vec!["power_users".to_owned(), "vips".to_owned()];
    let r = model.resolve(&Member { email: Some("a@x.org"), assigned: &assigned, ..Default::default() });
    assert_eq!(r.usergroups, ["everyone", "registered", "power_users", "vips"]);
    for p in ["kb.read", "tickets.read", "kb.category.advanced", "comments.unmoderated", "chat.support"] {
        assert!(r.permits(p), "{p}");
    }
    assert!(!r.permits("chat.sales"));
}

#[test]
fn email_domain_of_an_organization_brings_its_usergroups() {
    let model = helpdesk(true);
    let r = model.resolve(&Member {
        email: Some("Bob@CORP.example.com"),
        email_verified: true,
        ..Default::default()
    });
    assert!(r.usergroups.contains(&"vips".to_owned()));
    let sources = model.explain(&Member {
        email: Some("bob@corp.example.com"),
        email_verified: true,
        ..Default::default()
    });
    assert_eq!(sources["vips"], [Source::Organization("corp".into())].into_iter().collect());
}

#[test]
fn static_assignments_match_email_case_insensitively() {
    let model = helpdesk(true);
    let r =
        model.resolve(&Member { email: Some("ANN@example.com"), email_verified: true, ..Default::default() });
    assert!(r.permits("chat.sales"));
}

#[test]
fn guests_get_everyone_only_and_nothing_when_everyone_is_disabled() {
    assert_eq!(helpdesk(true).guest().usergroups, ["everyone"]);
    assert!(helpdesk(true).guest().permits("kb.read"));
    let off = helpdesk(false);
    assert!(off.guest().usergroups.is_empty() && off.guest().permissions.is_empty());
    let r = off.resolve(&Member::default());
    assert_eq!(r.usergroups, ["registered"]);
    assert!(!r.permits("kb.read"), "a disabled Everyone grants nobody anything");
}

#[test]
fn unknown_usergroup_ids_grant_nothing() {
    let model = helpdesk(true);
    let assigned = vec!["deleted_group".to_owned()];
    let r = model.resolve(&Member { assigned: &assigned, ..Default::default() });
    assert_eq!(r.usergroups, ["everyone", "registered"]);
}

#[test]
fn provider_groups_map_case_insensitively() {
    let rules = vec![("CN=VIPs,OU=Groups,DC=corp".to_owned(), vec!["vips".to_owned()])];
    let got = map_groups(
        &rules,
        &["cn=vips,ou=groups,dc=CORP".to_owned(), "cn=other".to_owned()],
        GroupNames::Text,
    );
    assert_eq!(got, ["vips"]);
}

#[cfg(feature = "ldap")]
#[test]
fn directory_groups_map_as_dns_whatever_their_spelling() {
    let rules = vec![
        (r#"CN=Leads\, Ost \+ Süd\; \"Nacht\",CN=Users,DC=corp"#.to_owned(), vec!["vips".to_owned()]),
        ("Plain Name".to_owned(), vec!["trial_users".to_owned()]),
    ];
    let samba = r"CN=LEADS\2C OST \2B SÜD\3B \22NACHT\22, CN=Users, DC=corp".to_owned();
    assert_eq!(map_groups(&rules, std::slice::from_ref(&samba), GroupNames::Dn), ["vips"]);
    assert!(map_groups(&rules, &[samba], GroupNames::Text).is_empty(), "as text, the spellings differ");
    assert_eq!(map_groups(&rules, &["plain name".to_owned()], GroupNames::Dn), ["trial_users"]);
    let other = r"CN=Leads\2C Ost,CN=Users,DC=corp".to_owned();
    assert!(map_groups(&rules, &[other], GroupNames::Dn).is_empty());
}

#[test]
fn a_provider_attribute_names_organizations_by_id_or_name() {
    let model = helpdesk(true);
    assert_eq!(model.organizations_named(&["CORP".into()]), ["corp"]);
    assert_eq!(model.organizations_named(&["Corp".into(), "Other Inc".into()]), ["corp"]);
    assert!(model.organizations_named(&["Corporation".into()]).is_empty());
    let orgs = model.organizations_named(&["corp".into()]);
    let r =
        model.resolve(&Member { email: Some("x@elsewhere.org"), organizations: &orgs, ..Default::default() });
    assert!(r.usergroups.contains(&"vips".to_owned()), "membership by attribute, not by domain");
}

#[test]
fn an_unverified_email_gets_no_organization_or_assignment_and_says_what_is_withheld() {
    let model = helpdesk(true);
    for email in ["bob@corp.example.com", "Bob@CORP.example.com", "ann@example.com", "ANN@EXAMPLE.COM"] {
        let member = Member { email: Some(email), ..Default::default() };
        assert_eq!(model.resolve(&member).usergroups, ["everyone", "registered"], "{email}");
        assert_eq!(model.explain(&member).len(), 2, "{email}");
    }
    let corp = Member { email: Some("Bob@CORP.example.com"), ..Default::default() };
    assert_eq!(model.withheld(&corp), [Withheld::Organization("corp".into())]);
    assert_eq!(
        model.withheld(&corp)[0].text(),
        "organization `corp` by email domain: withheld, the email is not verified"
    );
    let ann = Member { email: Some("ann@example.com"), ..Default::default() };
    assert_eq!(model.withheld(&ann), [Withheld::Assignment(vec!["trial_users".into()])]);
    // Verified, or held another way: nothing is withheld.
    assert!(model.withheld(&Member { email_verified: true, ..corp.clone() }).is_empty());
    let named = vec!["corp".to_owned()];
    let by_attribute = Member { organizations: &named, ..corp };
    assert!(model.withheld(&by_attribute).is_empty());
    assert!(model.resolve(&by_attribute).usergroups.contains(&"vips".to_owned()));
}
