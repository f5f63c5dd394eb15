use std::collections::BTreeSet;

use super::*;
use crate::policy::{HostPattern, Policy, Rule};
use crate::usergroups::{EVERYONE, Organization, REGISTERED, Usergroup};

fn model() -> Model {
    let group = |id: &str, perms: &[&str]| {
        let permissions: BTreeSet<String> = perms.iter().map(|p| p.to_string()).collect();
        (id.to_owned(), Usergroup { id: id.into(), name: format!("Name of {id}"), permissions, mfa: false })
    };
    Model {
        everyone_enabled: true,
        usergroups: [
            group(EVERYONE, &["kb.read"]),
            group(REGISTERED, &["tickets.read"]),
            group("trial_users", &["chat.sales"]),
            group("vips", &["chat.support", "chat.sales"]),
        ]
        .into_iter()
        .collect(),
        organizations: vec![Organization {
            id: "acme".into(),
            name: "Acme".into(),
            domains: vec!["acme.example".into()],
            usergroups: vec!["trial_users".into()],
        }],
        assignments: [("wile@acme.example".to_owned(), vec!["vips".to_owned()])].into_iter().collect(),
    }
}

fn policy() -> Policies {
    let rule = |p: &str, perm: &str| Rule::new(p, perm).expect("rule");
    Policies::AnyHost(Policy::new(vec![
        rule("/kb", "kb.read"),
        rule("/chat/sales", "chat.sales"),
        rule("/chat/support", "chat.support"),
    ]))
}

/// Explains a path asked with no host.
fn explain(
    model: &Model,
    policy: &Policies,
    account: Account,
    providers: Vec<String>,
    claimed: &Claimed,
    path: Option<&str>,
) -> Explanation {
    let ask = path.map(|path| super::Ask { path, host: None, method: None });
    super::explain(model, policy, account, providers, claimed, ask)
}

#[test]
fn a_host_decides_which_rules_apply_and_an_uncovered_host_is_named() {
    let rule = |p: &str, perm: &str| Rule::new(p, perm).expect("rule");
    let policies = Policies::by_host(vec![
        (HostPattern::parse("help.test").expect("host"), Policy::new(vec![rule("/", "kb.read")])),
        (HostPattern::parse("admin.test").expect("host"), Policy::new(vec![rule("/", "chat.sales")])),
    ]);
    let ask = |host: Option<&str>| {
        super::explain(
            &model(),
            &policies,
            wile(&[]),
            vec![],
            &Claimed::default(),
            Some(super::Ask { path: "/x", host, method: None }),
        )
    };
    let help = ask(Some("HELP.test:443"));
    let check = help.path.as_ref().expect("checked");
    assert_eq!(check.rule, Some(("/".into(), Some("kb.read".into()))));
    assert!(text(&help).contains("Path /x on HELP.test:443"));
    let nowhere = ask(Some("other.test"));
    let check = nowhere.path.as_ref().expect("checked");
    assert_eq!(check.decision, Some(Decision::Deny(DenyReason::NoHostRule)));
    assert!(decision_text(check).1.contains("no rule covers this host"));
    let unasked = ask(None);
    assert!(decision_text(unasked.path.as_ref().expect("checked")).1.contains("give the host"));
}

fn wile(assigned: &[&str]) -> Account {
    Account {
        id: "a-1".into(),
        email: Some("Wile@Acme.example".into()),
        email_verified: true,
        name: "Wile".into(),
        disabled: false,
        status: Default::default(),
        created_at: 1,
        usergroups: assigned.iter().map(|g| g.to_string()).collect(),
    }
}

#[test]
fn every_usergroup_comes_with_every_reason_for_it() {
    let e = explain(&model(), &policy(), wile(&["vips"]), vec!["builtin".into()], &Claimed::default(), None);
    let got: Vec<(&str, &[Source])> =
        e.usergroups.iter().map(|g| (g.id.as_str(), g.sources.as_slice())).collect();
    assert_eq!(
        got,
        [
            (EVERYONE, &[Source::BuiltIn][..]),
            (REGISTERED, &[Source::BuiltIn][..]),
            ("trial_users", &[Source::Organization("acme".into())][..]),
            ("vips", &[Source::ConfigAssignment, Source::Assigned][..]),
        ]
    );
    assert_eq!(e.permissions, ["chat.sales", "chat.support", "kb.read", "tickets.read"]);
    assert!(e.path.is_none());
    assert!(text(&e).contains(PROVIDER_NOTE));
}

#[test]
fn a_path_shows_the_rule_the_decision_and_who_grants_it() {
    let e = explain(
        &model(),
        &policy(),
        wile(&[]),
        vec![],
        &Claimed::default(),
        Some("/CHAT/sales/../sales/today"),
    );
    let check = e.path.as_ref().expect("checked");
    assert_eq!(check.rule, Some(("/chat/sales".into(), Some("chat.sales".into()))));
    assert_eq!(check.decision, Some(Decision::Allow));
    assert_eq!(check.granted_by, ["trial_users", "vips"]);
    assert_eq!(decision_text(check).0, "allow");

    let mut other = wile(&[]);
    other.email = Some("road@runner.example".into());
    let e = explain(&model(), &policy(), other, vec![], &Claimed::default(), Some("chat/support"));
    let check = e.path.as_ref().expect("checked");
    assert_eq!(check.asked, "chat/support");
    assert!(check.granted_by.is_empty());
    let (code, why) = decision_text(check);
    assert_eq!(code, "deny");
    assert!(why.starts_with("permission-missing") && why.contains("`chat.support`"), "{why}");
    let out = text(&e);
    assert!(out.contains("  Rule:       /chat/support requires chat.support\n"), "{out}");
    assert!(out.contains("Signs in:   no way yet"), "{out}");

    let e = explain(&model(), &policy(), wile(&[]), vec![], &Claimed::default(), Some("/news"));
    let out = text(&e);
    assert!(out.contains("Rule:       none covers this path"), "{out}");
    assert!(out.contains("Decision:   deny — no-rule"), "{out}");

    let e = explain(&model(), &policy(), wile(&[]), vec![], &Claimed::default(), Some("/kb/%00"));
    let check = e.path.as_ref().expect("checked");
    assert!(check.normalized.is_err() && check.decision.is_none());
    assert_eq!(decision_text(check).0, "invalid");
    assert!(explain(&model(), &policy(), wile(&[]), vec![], &Claimed::default(), Some("  ")).path.is_none());
}

#[test]
fn an_unverified_email_shows_its_organization_and_assignment_as_withheld() {
    let account = Account { email_verified: false, ..wile(&[]) };
    let e = explain(
        &model(),
        &policy(),
        account,
        vec!["builtin".into()],
        &Claimed::default(),
        Some("/chat/sales"),
    );
    let ids: Vec<&str> = e.usergroups.iter().map(|g| g.id.as_str()).collect();
    assert_eq!(ids, [EVERYONE, REGISTERED], "neither the domain nor the assignment counts");
    assert_eq!(
        e.withheld,
        [Withheld::Assignment(vec!["vips".into()]), Withheld::Organization("acme".into())]
    );
    let out = text(&e);
    assert!(out.contains("<Wile@Acme.example> (not verified)"), "{out}");
    assert!(
        out.contains("organization `acme` by email domain: withheld, the email is not verified"),
        "{out}"
    );
    assert!(out.contains("[[assignments]]) of vips by email: withheld"), "{out}");
    assert!(out.contains("Decision:   deny"), "{out}");
    let verified = explain(&model(), &policy(), wile(&[]), vec![], &Claimed::default(), None);
    assert!(verified.withheld.is_empty());
    assert!(!text(&verified).contains("withheld"));
}

#[test]
fn explain_decides_a_unicode_spelling_as_the_gateway_does() {
    // `ſ` (long s) read plainly falls under no rule; folded it is `/chat/support`.
    let mut other = wile(&[]);
    other.email = Some("road@runner.example".into());
    let e = explain(&model(), &policy(), other, vec![], &Claimed::default(), Some("/chat/%C5%BFupport"));
    let check = e.path.as_ref().expect("checked");
    assert_eq!(check.rule, Some(("/chat/support".into(), Some("chat.support".into()))));
    assert!(
        matches!(check.decision, Some(Decision::Deny(DenyReason::MissingPermission { .. }))),
        "{check:?}"
    );
}
