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
        p.rule_for(&Method::GET, &path("/kb/advanced/x")).and_then(|r| r.permission()),
        Some("kb.category.advanced")
    );
    assert_eq!(p.rule_for(&Method::GET, &path("/kb/basics")).and_then(|r| r.permission()), Some("kb.read"));
    assert_eq!(p.rule_for(&Method::GET, &path("/kbx")).and_then(|r| r.permission()), Some("portal.view"));
    assert_eq!(
        p.rule_for(&Method::GET, &path("/api/v1/admin/users")).and_then(|r| r.permission()),
        Some("api.admin")
    );
}

#[test]
fn guests_are_sent_to_sign_in_and_members_are_told_why_not() {
    let p = policy();
    let everyone = grants(&["portal.view", "kb.read"]);
    assert_eq!(decide(&p, true, Who::Guest(&everyone), &Method::GET, &path("/kb")), Decision::Allow);
    assert_eq!(
        decide(&p, true, Who::Guest(&everyone), &Method::GET, &path("/chat/sales")),
        Decision::LoginRequired
    );
    let member = grants(&["portal.view", "kb.read"]);
    assert_eq!(
        decide(&p, true, Who::SignedIn(&member), &Method::GET, &path("/chat/sales")),
        Decision::Deny(DenyReason::MissingPermission {
            rule: "/chat/sales".into(),
            methods: vec![],
            permission: "chat.sales".into()
        })
    );
}

#[test]
fn disabled_everyone_sends_every_guest_to_sign_in() {
    let p = policy();
    let nothing = grants(&[]);
    assert_eq!(decide(&p, false, Who::Guest(&nothing), &Method::GET, &path("/")), Decision::LoginRequired);
    // Even a guest resolved with permissions is refused: Everyone disabled means nothing.
    let stale = grants(&["portal.view"]);
    assert_eq!(decide(&p, false, Who::Guest(&stale), &Method::GET, &path("/")), Decision::LoginRequired);
}

#[test]
fn a_path_no_rule_covers_is_denied_by_default() {
    let p = Policy::new(vec![Rule::new("/kb", "kb.read").expect("valid")]);
    let all = grants(&["kb.read"]);
    assert_eq!(
        decide(&p, true, Who::SignedIn(&all), &Method::GET, &path("/elsewhere")),
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
            decide(&p, true, Who::SignedIn(&member), &Method::GET, &path(trick)),
            decide(&p, true, Who::SignedIn(&member), &Method::GET, &path("/chat/sales")),
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
            decide(&p, true, Who::SignedIn(&member), &Method::GET, &again),
            decide(&p, true, Who::SignedIn(&member), &Method::GET, &norm),
            "{raw}"
        );
    }
}

mod properties;
mod unicode;

fn with_methods() -> Policy {
    let rule = |p: &str, perm: &str, methods: &[&str]| {
        let access = if perm.is_empty() { Access::Public } else { Access::Permission(perm.into()) };
        let methods = methods.iter().map(|m| Method::from_bytes(m.as_bytes()).expect("method")).collect();
        Rule::with(p, access, methods).expect("rule")
    };
    Policy::new(vec![
        rule("/kb/*/comments", "comments.unmoderated", &["POST", "PUT"]),
        rule("/kb", "kb.read", &[]),
        rule("/kb/*/comments", "comments.read", &[]),
        rule("/kb/*/comments/feed", "kb.read", &["HEAD"]),
        rule("/kb/*/comments/feed", "comments.feed", &["GET"]),
        rule("/hooks/email", "", &["POST"]),
        rule("/static", "", &[]),
    ])
}

fn permission_for(p: &Policy, method: &str, at: &str) -> Option<String> {
    let method = Method::from_bytes(method.as_bytes()).expect("method");
    p.rule_for(&method, &path(at)).map(|r| r.permission().unwrap_or("public").to_owned())
}

#[test]
fn a_rule_listing_the_method_beats_one_without_on_the_same_path() {
    let p = with_methods();
    assert_eq!(permission_for(&p, "POST", "/kb/x/comments").as_deref(), Some("comments.unmoderated"));
    assert_eq!(permission_for(&p, "PUT", "/kb/x/comments/1").as_deref(), Some("comments.unmoderated"));
    assert_eq!(permission_for(&p, "GET", "/kb/x/comments").as_deref(), Some("comments.read"));
    assert_eq!(permission_for(&p, "DELETE", "/kb/x/comments").as_deref(), Some("comments.read"));
    assert_eq!(permission_for(&p, "POST", "/kb/x").as_deref(), Some("kb.read"));
}

#[test]
fn a_path_without_a_rule_for_the_method_falls_to_a_shorter_path() {
    let p = with_methods();
    // `/hooks/email` is public for POST only: a GET has no rule at all.
    assert_eq!(permission_for(&p, "POST", "/hooks/email").as_deref(), Some("public"));
    assert_eq!(permission_for(&p, "GET", "/hooks/email"), None);
    // `/kb/*/comments/feed` lists GET and HEAD only: a POST is decided by `/kb/*/comments`.
    assert_eq!(permission_for(&p, "POST", "/kb/x/comments/feed").as_deref(), Some("comments.unmoderated"));
}

#[test]
fn head_is_matched_as_get_unless_a_rule_of_the_path_lists_head() {
    let p = with_methods();
    assert_eq!(permission_for(&p, "HEAD", "/kb/x/comments/feed").as_deref(), Some("kb.read"));
    assert_eq!(permission_for(&p, "GET", "/kb/x/comments/feed").as_deref(), Some("comments.feed"));
    let only_get = Policy::new(vec![
        Rule::with("/a", Access::Permission("a.get".into()), vec![Method::GET]).expect("rule"),
        Rule::new("/a", "a.any").expect("rule"),
    ]);
    assert_eq!(permission_for(&only_get, "HEAD", "/a").as_deref(), Some("a.get"));
}

#[test]
fn methods_are_compared_in_upper_case_and_unknown_ones_match_only_rules_without_methods() {
    let p = with_methods();
    assert_eq!(permission_for(&p, "post", "/kb/x/comments").as_deref(), Some("comments.unmoderated"));
    assert_eq!(permission_for(&p, "Post", "/kb/x/comments").as_deref(), Some("comments.unmoderated"));
    assert_eq!(permission_for(&p, "FOO", "/kb/x/comments").as_deref(), Some("comments.read"));
    assert_eq!(permission_for(&p, "post", "/hooks/email").as_deref(), Some("public"));
    assert_eq!(permission_for(&p, "FOO", "/hooks/email"), None);
}

#[test]
fn public_rules_let_guests_through_even_when_everyone_is_disabled() {
    let p = with_methods();
    let nothing = grants(&[]);
    let post = Method::POST;
    for at in ["/hooks/email", "/HOOKS/%65mail", "/x/../hooks/email", "/hooks//email/"] {
        let v = verdict(&p, false, Who::Guest(&nothing), &post, &path(at));
        assert_eq!(v.decision, Decision::Allow, "{at}");
        assert!(v.rule.is_some_and(Rule::is_public), "{at}");
    }
    for (method, at) in
        [(Method::GET, "/hooks/email"), (post.clone(), "/hooks/email/../../kb"), (post, "/kb")]
    {
        let v = verdict(&p, false, Who::Guest(&nothing), &method, &path(at));
        assert_eq!(v, Verdict { decision: Decision::LoginRequired, rule: None, mfa: false }, "{method} {at}");
    }
    // Signed in without any permission, a public route still lets them through.
    assert_eq!(
        decide(&p, true, Who::SignedIn(&nothing), &Method::GET, &path("/static/app.css")),
        Decision::Allow
    );
}

#[test]
fn a_denial_names_the_methods_of_the_rule() {
    let p = with_methods();
    let reader = grants(&["kb.read", "comments.read"]);
    assert_eq!(
        decide(&p, true, Who::SignedIn(&reader), &Method::POST, &path("/kb/x/comments")),
        Decision::Deny(DenyReason::MissingPermission {
            rule: "/kb/*/comments".into(),
            methods: vec![Method::POST, Method::PUT],
            permission: "comments.unmoderated".into()
        })
    );
    assert_eq!(
        decide(&p, true, Who::SignedIn(&reader), &Method::GET, &path("/kb/x/comments")),
        Decision::Allow
    );
}

#[test]
fn a_rule_listing_methods_changes_decisions_for_those_methods_only() {
    let base = policy();
    let mut rules = base.rules().to_vec();
    rules.push(Rule::with("/kb", Access::Permission("kb.write".into()), vec![Method::POST]).expect("rule"));
    rules.push(Rule::with("/chat/sales", Access::Public, vec![Method::PUT]).expect("rule"));
    let more = Policy::new(rules);
    let reader = grants(&["portal.view", "kb.read"]);
    let methods = ["GET", "HEAD", "POST", "PUT", "DELETE", "PATCH", "OPTIONS", "FOO", "post", "put"];
    for at in ["/", "/kb", "/kb/x", "/kb/advanced/y", "/chat/sales", "/chat/sales/z", "/news", "/none"] {
        for m in methods {
            let method = Method::from_bytes(m.as_bytes()).expect("method");
            let upper = m.to_ascii_uppercase();
            for who in [Who::SignedIn(&reader), Who::Guest(&reader)] {
                let before = decide(&base, true, who, &method, &path(at));
                let after = decide(&more, true, who, &method, &path(at));
                let listed = (upper == "POST" && at.starts_with("/kb"))
                    || (upper == "PUT" && at.starts_with("/chat/sales"));
                if !listed {
                    assert_eq!(before, after, "{m} {at}");
                }
            }
        }
    }
    let post = decide(&more, true, Who::SignedIn(&reader), &Method::POST, &path("/kb/advanced/y"));
    assert_eq!(
        post,
        Decision::Deny(DenyReason::MissingPermission {
            rule: "/kb/advanced".into(),
            methods: vec![],
            permission: "kb.category.advanced".into()
        }),
        "the longer path still wins over a shorter rule that lists the method"
    );
}
