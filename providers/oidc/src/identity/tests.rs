use std::time::Duration;

use serde_json::json;

use super::*;
use crate::config::Secret;
use crate::jwt::Algorithm;

fn settings() -> Settings {
    Settings {
        provider: "oidc.corp".into(),
        issuer: "https://id.example.com".into(),
        accepted_issuers: vec!["https://id.example.com".into()],
        client_id: "deskgate".into(),
        client_secret: Secret::new("s"),
        scope: "openid email profile".into(),
        allowed_domains: Vec::new(),
        hd_hint: None,
        groups_claim: Some("groups".into()),
        algorithms: Algorithm::DEFAULT.to_vec(),
        clock_skew: Duration::from_secs(60),
        display_name: "Corp".into(),
        end_session: false,
        allow_unverified_email: false,
        create_accounts: false,
        link_by_email: false,
        groups: Vec::new(),
        refresh_groups: false,
        google: false,
        bearer_audiences: Vec::new(),
    }
}

fn claims(value: serde_json::Value) -> Map<String, Value> {
    match value {
        Value::Object(map) => map,
        _ => panic!("claims must be an object"),
    }
}

fn alice() -> Map<String, Value> {
    claims(json!({
        "sub": "1001",
        "email": "alice@corp.example.com",
        "email_verified": true,
        "name": "Alice Example",
        "given_name": "Alice",
        "family_name": "Example",
        "hd": "Corp.Example.com",
        "groups": ["helpdesk-agents", "vips", 7, ""],
        "picture": "https://example.com/a.png",
    }))
}

#[test]
fn claims_become_an_identity_with_the_hosted_domain_as_a_group() {
    let id = identity(&settings(), &alice()).expect("identity");
    assert_eq!(id.provider, "oidc.corp");
    assert_eq!(id.subject, "1001");
    assert_eq!(id.email.as_deref(), Some("alice@corp.example.com"));
    assert!(id.email_verified);
    assert_eq!(id.username.as_deref(), Some("alice@corp.example.com"));
    assert_eq!(id.display_name.as_deref(), Some("Alice Example"));
    assert_eq!(id.groups, ["helpdesk-agents", "vips", "hd:corp.example.com"]);
    assert_eq!(id.attributes.get("hd"), Some(&vec!["corp.example.com".to_owned()]));
    assert_eq!(id.attributes.get("given_name"), Some(&vec!["Alice".to_owned()]));
    assert!(!id.attributes.contains_key("picture"));
}

#[test]
fn a_single_string_groups_claim_is_one_group() {
    let mut c = alice();
    c.insert("groups".into(), json!("other-staff"));
    let id = identity(&settings(), &c).expect("identity");
    assert_eq!(id.groups, ["other-staff", "hd:corp.example.com"]);
}

#[test]
fn without_a_groups_claim_only_the_domain_is_a_group() {
    let mut s = settings();
    s.groups_claim = None;
    let id = identity(&s, &alice()).expect("identity");
    assert_eq!(id.groups, ["hd:corp.example.com"]);
}

#[test]
fn names_fall_back_to_given_and_family_and_username_to_preferred() {
    let c = claims(json!({
        "sub": "9", "given_name": "Ann", "family_name": "Lee", "preferred_username": "alee",
    }));
    let id = identity(&settings(), &c).expect("identity");
    assert_eq!(id.display_name.as_deref(), Some("Ann Lee"));
    assert_eq!(id.username.as_deref(), Some("alee"));
    assert_eq!(id.email, None);
    assert!(!id.email_verified);
    assert!(id.groups.is_empty());
}

#[test]
fn unverified_email_is_refused_unless_allowed() {
    let mut c = alice();
    c.insert("email_verified".into(), json!(false));
    let refused = identity(&settings(), &c).expect_err("refused");
    assert_eq!(refused.code(), "not-allowed");
    assert!(refused.to_string().contains("not verified"), "{refused}");
    c.remove("email_verified");
    assert_eq!(identity(&settings(), &c).map(|_| ()).map_err(|e| e.code()), Err("not-allowed"));

    let mut s = settings();
    s.allow_unverified_email = true;
    let id = identity(&s, &c).expect("allowed");
    assert!(!id.email_verified);
    assert_eq!(id.email.as_deref(), Some("alice@corp.example.com"));
}

#[test]
fn email_verified_as_a_string_counts() {
    let mut c = alice();
    c.insert("email_verified".into(), json!("true"));
    assert!(identity(&settings(), &c).expect("identity").email_verified);
    c.insert("email_verified".into(), json!("false"));
    assert!(identity(&settings(), &c).is_err());
}

#[test]
fn allowed_domains_check_the_hosted_domain_claim() {
    let mut s = settings();
    s.allowed_domains = vec!["corp.example.com".into()];
    assert!(identity(&s, &alice()).is_ok(), "domains compare case-insensitively");

    let mut other = alice();
    other.insert("hd".into(), json!("other.example.com"));
    let refused = identity(&s, &other).expect_err("other domain");
    assert_eq!(refused.code(), "not-allowed");
    assert!(refused.to_string().contains("other.example.com"), "{refused}");

    // A personal account has no hd, whatever its email address says.
    let mut personal = alice();
    personal.remove("hd");
    let refused = identity(&s, &personal).expect_err("personal");
    assert!(refused.to_string().contains("personal"), "{refused}");
}

#[test]
fn the_amr_claim_is_passed_on_as_strings_only() {
    let mut with = alice();
    with.insert("amr".into(), json!(["pwd", "mfa", 7]));
    assert_eq!(identity_of(&with).attributes.get("amr"), Some(&vec!["pwd".to_owned(), "mfa".to_owned()]));
    let mut text = alice();
    text.insert("amr".into(), json!("mfa"));
    assert_eq!(identity_of(&text).attributes.get("amr"), None, "not an array: ignored");
    assert_eq!(identity_of(&alice()).attributes.get("amr"), None);
}

fn identity_of(claims: &Map<String, Value>) -> Identity {
    identity(&settings(), claims).expect("identity")
}
