use std::collections::BTreeMap;
use std::time::Duration;

use super::*;

fn assertion() -> Assertion {
    let mut attributes = BTreeMap::new();
    attributes.insert("User.email".to_owned(), vec!["Alice@Corp.Example.com".to_owned()]);
    attributes
        .insert("memberOf".to_owned(), vec!["helpdesk-agents".to_owned(), " ".to_owned(), "vips".to_owned()]);
    attributes.insert("displayName".to_owned(), vec!["Alice Liddell".to_owned()]);
    attributes.insert(ASSERTION_ID.to_owned(), vec!["spoofed".to_owned()]);
    Assertion {
        id: "_a1".into(),
        issuer: "https://idp.example.com".into(),
        name_id: "alice@corp.example.com".into(),
        name_id_format: Some(EMAIL_FORMAT.into()),
        session_index: Some("_s1".into()),
        not_on_or_after: SystemTime::UNIX_EPOCH + Duration::from_millis(1_767_225_900_500),
        attributes,
        authn_context: Some("urn:oasis:names:tc:SAML:2.0:ac:classes:PasswordProtectedTransport".into()),
    }
}

fn mapping() -> Mapping {
    Mapping {
        provider: "saml.corp".into(),
        email_attribute: Some("User.email".into()),
        name_attribute: Some("displayName".into()),
        groups_attribute: Some("memberOf".into()),
        strong_contexts: vec!["urn:example:two-factor".into()],
    }
}

#[test]
fn only_a_context_configured_as_strong_says_mfa_and_an_amr_attribute_never_does() {
    let mut spoofing = assertion();
    spoofing.attributes.insert("amr".to_owned(), vec!["mfa".to_owned()]);
    let identity = super::identity(&spoofing, &mapping());
    assert_eq!(identity.attributes.get("amr"), None);
    assert_eq!(
        identity.attributes.get(AUTHN_CONTEXT).map(Vec::as_slice),
        Some(&["urn:oasis:names:tc:SAML:2.0:ac:classes:PasswordProtectedTransport".to_owned()][..])
    );
    let strong = Assertion { authn_context: Some("urn:example:two-factor".into()), ..assertion() };
    let identity = super::identity(&strong, &mapping());
    assert_eq!(identity.attributes.get("amr").map(Vec::as_slice), Some(&["mfa".to_owned()][..]));
}

#[test]
fn attributes_map_into_the_identity() {
    let identity = super::identity(&assertion(), &mapping());
    assert_eq!(identity.provider, "saml.corp");
    assert_eq!(identity.subject, "alice@corp.example.com");
    assert_eq!(identity.username.as_deref(), Some("alice@corp.example.com"));
    assert_eq!(identity.email.as_deref(), Some("Alice@Corp.Example.com"));
    assert!(identity.email_verified);
    assert_eq!(identity.display_name.as_deref(), Some("Alice Liddell"));
    assert_eq!(identity.groups, ["helpdesk-agents", "vips"]);
    assert_eq!(identity.attributes[ISSUER], ["https://idp.example.com"]);
    assert_eq!(identity.attributes[SESSION_INDEX], ["_s1"]);
    assert_eq!(identity.attributes[NAME_ID_FORMAT], [EMAIL_FORMAT]);
}

#[test]
fn the_replay_cache_gets_the_real_assertion_id_and_its_expiry() {
    let identity = super::identity(&assertion(), &mapping());
    assert_eq!(identity.attributes[ASSERTION_ID], ["_a1"], "an IdP attribute of the same name does not win");
    assert_eq!(identity.attributes[NOT_ON_OR_AFTER], ["2026-01-01T00:05:00.500Z"]);
    let (id, until) = assertion_id_and_expiry(&identity).expect("present");
    assert_eq!(id, "_a1");
    assert_eq!(until, assertion().not_on_or_after);
    assert_eq!(assertion_id_and_expiry(&Identity::new("saml.corp", "x")), None);
}

#[test]
fn the_email_falls_back_to_an_email_name_id_only() {
    let bare = Mapping { email_attribute: None, name_attribute: None, groups_attribute: None, ..mapping() };
    let identity = super::identity(&assertion(), &bare);
    assert_eq!(identity.email.as_deref(), Some("alice@corp.example.com"));
    assert!(identity.groups.is_empty());
    assert_eq!(identity.display_name, None);

    let persistent = Assertion {
        name_id: "8f3a-opaque".into(),
        name_id_format: Some("urn:oasis:names:tc:SAML:2.0:nameid-format:persistent".into()),
        ..assertion()
    };
    let identity = super::identity(&persistent, &bare);
    assert_eq!(identity.subject, "8f3a-opaque");
    assert_eq!(identity.email, None);
    assert!(!identity.email_verified);
}
