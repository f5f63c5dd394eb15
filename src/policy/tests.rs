use super::*;
use rand::Rng;

fn policy() -> Policy {
    let rules = [
        ("/", "portal.view"),
        ("/kb", "kb.read"),
        ("/kb/advanced", "kb.category.advanced"),
        ("/news", "news.read"),
        ("/chat/sales", "chat.sales"),
        ("/chat/support", "chat.support"),
        ("/api/*/admin", "api.admin"),
    ];
    Policy::new(rules.iter().map(|(p, perm)| Rule::new(p, perm).expect("valid")).collect())
}

fn grants(perms: &[&str]) -> Resolved {
    let mut permissions: Vec<String> = perms.iter().map(|p| p.to_string()).collect();
    permissions.sort();
    Resolved { usergroups: vec![], permissions }
}

fn path(p: &str) -> NormalPath {
    normalize(p).expect("valid path")
}

#[test]
fn the_most_specific_rule_wins() {
    let p = policy();
    assert_eq!(
        p.rule_for(&path("/kb/advanced/x")).map(|r| r.permission.as_str()),
        Some("kb.category.advanced")
    );
    assert_eq!(p.rule_for(&path("/kb/basics")).map(|r| r.permission.as_str()), Some("kb.read"));
    assert_eq!(p.rule_for(&path("/kbx")).map(|r| r.permission.as_str()), Some("portal.view"));
    assert_eq!(p.rule_for(&path("/api/v1/admin/users")).map(|r| r.permission.as_str()), Some("api.admin"));
}

#[test]
fn guests_are_sent_to_sign_in_and_members_are_told_why_not() {
    let p = policy();
    let everyone = grants(&["portal.view", "kb.read"]);
    assert_eq!(decide(&p, true, Who::Guest(&everyone), &path("/kb")), Decision::Allow);
    assert_eq!(decide(&p, true, Who::Guest(&everyone), &path("/chat/sales")), Decision::LoginRequired);
    let member = grants(&["portal.view", "kb.read"]);
    assert_eq!(
        decide(&p, true, Who::SignedIn(&member), &path("/chat/sales")),
        Decision::Deny(DenyReason::MissingPermission {
            rule: "/chat/sales".into(),
            permission: "chat.sales".into()
        })
    );
}

#[test]
fn disabled_everyone_sends_every_guest_to_sign_in() {
    let p = policy();
    let nothing = grants(&[]);
    assert_eq!(decide(&p, false, Who::Guest(&nothing), &path("/")), Decision::LoginRequired);
    // Even a guest resolved with permissions is refused: Everyone disabled means nothing.
    let stale = grants(&["portal.view"]);
    assert_eq!(decide(&p, false, Who::Guest(&stale), &path("/")), Decision::LoginRequired);
}

#[test]
fn a_path_no_rule_covers_is_denied_by_default() {
    let p = Policy::new(vec![Rule::new("/kb", "kb.read").expect("valid")]);
    let all = grants(&["kb.read"]);
    assert_eq!(
        decide(&p, true, Who::SignedIn(&all), &path("/elsewhere")),
        Decision::Deny(DenyReason::NoRule)
    );
}

#[test]
fn path_tricks_are_decided_as_the_path_they_mean() {
    let p = policy();
    let member = grants(&["portal.view", "kb.read"]);
    for trick in
        ["/chat/%73ales", "/chat//sales", "/kb/../chat/sales", "/CHAT/sales", "/chat/sales;x", "/Chat/Sales/"]
    {
        assert_eq!(
            decide(&p, true, Who::SignedIn(&member), &path(trick)),
            decide(&p, true, Who::SignedIn(&member), &path("/chat/sales")),
            "{trick}"
        );
    }
}

#[test]
fn patterns_that_could_never_match_plainly_are_refused() {
    for bad in ["chat", "/chat/%73ales", "/chat/../kb", "/chat?x", "/a;b", "/a\\b"] {
        assert!(Rule::new(bad, "x").is_err(), "{bad}");
    }
    assert!(Rule::new("/chat/*/room", "x").is_ok());
}

/// Random paths built from the characters that path tricks use: normalization never
/// panics, never leaves a dot segment, and the forwarded path decides the same.
#[test]
fn normalization_properties_hold_for_random_tricky_paths() {
    const PIECES: &[&str] = &[
        "/", "//", "\\", ".", "..", "%2e", "%2E%2e", "%2f", "%5c", ";", ";x=1", "a", "B", "chat", "sales",
        "%73", "%", "%0", "%00", "%c3%a9", "é", "%ff", "*", "?", " ", "%20", "~",
    ];
    let p = policy();
    let member = grants(&["portal.view", "kb.read", "chat.sales"]);
    let mut rng = rand::thread_rng();
    for _ in 0..5000 {
        let n = rng.gen_range(0..10);
        let raw: String = (0..n).map(|_| PIECES[rng.gen_range(0..PIECES.len())]).collect();
        let raw = format!("/{raw}");
        let Ok(norm) = normalize(&raw) else { continue };
        assert!(norm.segments().iter().all(|s| s != "." && s != ".." && !s.is_empty()), "{raw}");
        let again = normalize(&norm.encoded()).expect("the encoded form is valid");
        assert_eq!(again.lower(), norm.lower(), "{raw}");
        assert_eq!(
            decide(&p, true, Who::SignedIn(&member), &again),
            decide(&p, true, Who::SignedIn(&member), &norm),
            "{raw}"
        );
    }
}

mod properties;
mod unicode;
