//! Regression tests for Unicode spellings that once bypassed rules: a path is decided the
//! same however a backend might fold its case or Unicode form (`ſ`, `ı`, `İ`, Kelvin `K`,
//! fullwidth letters, `／`).

use super::*;

fn unicode_policy() -> Policy {
    let rules = [
        ("/", "portal.view"),
        ("/kb", "kb.read"),
        ("/kb/advanced", "kb.category.advanced"),
        ("/chat/sales", "chat.sales"),
        ("/billing", "billing.view"),
    ];
    Policy::new(rules.iter().map(|(p, perm)| Rule::new(p, perm).expect("valid")).collect())
}

/// A guest (Everyone grants `/` and `/kb`) and a signed-in person with the same grants.
fn outcomes(raw: &str) -> (Decision, Decision) {
    let p = unicode_policy();
    let everyone = grants(&["portal.view", "kb.read"]);
    let n = path(raw);
    (
        decide(&p, true, Who::Guest(&everyone), &Method::GET, &n),
        decide(&p, true, Who::SignedIn(&everyone), &Method::GET, &n),
    )
}

fn refused_as(raw: &str, rule: &str, permission: &str) {
    let (guest, member) = outcomes(raw);
    assert_eq!(guest, Decision::LoginRequired, "guest at {raw}");
    assert_eq!(
        member,
        Decision::Deny(DenyReason::MissingPermission {
            rule: rule.into(),
            methods: vec![],
            permission: permission.into()
        }),
        "member at {raw}"
    );
}

#[test]
fn long_s_does_not_bypass_a_rule() {
    refused_as("/chat/%C5%BFales", "/chat/sales", "chat.sales");
    refused_as("/chat/\u{17f}ales", "/chat/sales", "chat.sales");
    refused_as("/CHAT/%C5%BFALES/today", "/chat/sales", "chat.sales");
}

#[test]
fn dotless_i_does_not_bypass_a_rule() {
    refused_as("/b%C4%B1ll%C4%B1ng", "/billing", "billing.view");
    refused_as("/B\u{131}LL\u{131}NG/invoices", "/billing", "billing.view");
}

#[test]
fn dotted_capital_i_does_not_bypass_a_rule() {
    refused_as("/B%C4%B0LL%C4%B0NG", "/billing", "billing.view");
    refused_as("/b\u{130}lling", "/billing", "billing.view");
}

#[test]
fn kelvin_sign_does_not_bypass_a_rule() {
    refused_as("/%E2%84%AAb/advanced", "/kb/advanced", "kb.category.advanced");
    refused_as("/\u{212a}B/ADVANCED/x", "/kb/advanced", "kb.category.advanced");
}

#[test]
fn fullwidth_letters_do_not_bypass_a_rule() {
    for raw in [
        "／ｃｈａｔ／ｓａｌｅｓ",
        "/ｃｈａｔ/ｓａｌｅｓ",
        "/ＣＨＡＴ/ＳＡＬＥＳ",
        "/chat/ｓａｌｅｓ",
        "/ｃhat/saｌes",
        "/%EF%BD%83hat/sales",
        "/chat/\u{17f}ａles",
    ] {
        refused_as(raw, "/chat/sales", "chat.sales");
    }
    refused_as("/ｂｉｌｌｉｎｇ", "/billing", "billing.view");
}

#[test]
fn fullwidth_solidus_does_not_bypass_a_rule() {
    for raw in ["/chat／sales", "/chat%EF%BC%8Fsales", "/ｃｈａｔ／sales", "/chat＼sales", "/chat/sales；x"]
    {
        refused_as(raw, "/chat/sales", "chat.sales");
    }
}

#[test]
fn fullwidth_dot_segments_do_not_climb_past_a_rule() {
    // Read plainly these are under `/kb`, which the person may see; after NFKC they climb
    // to `/chat/sales`.
    for raw in ["/kb/．．/chat/sales", "/kb/%EF%BC%8E%EF%BC%8E/chat/sales", "/kb/\u{2025}/chat/sales"] {
        refused_as(raw, "/chat/sales", "chat.sales");
    }
}

#[test]
fn a_spelling_refused_under_one_reading_is_refused_even_if_another_allows() {
    // The plain reading of `/chat/ſales` falls to `/`, which allows: the folded one wins.
    let p = unicode_policy();
    let sales = grants(&["portal.view", "chat.sales"]);
    let n = path("/chat/%C5%BFales");
    assert!(n.readings().count() > 1);
    assert_eq!(decide(&p, true, Who::SignedIn(&sales), &Method::GET, &n), Decision::Allow);
    let verdict = verdict(&p, true, Who::SignedIn(&grants(&["portal.view"])), &Method::GET, &n);
    assert_eq!(verdict.rule.map(|r| r.pattern.as_str()), Some("/chat/sales"));
}

#[test]
fn non_ascii_paths_that_fold_to_no_protected_rule_are_still_served() {
    let p = unicode_policy();
    let member = grants(&["portal.view", "kb.read"]);
    for raw in ["/kb/caf%C3%A9", "/kb/Stra%C3%9Fe", "/kb/%E2%84%AA", "/%E6%97%A5%E6%9C%AC", "/kb/ｓａｌｅｓ"]
    {
        assert_eq!(
            decide(&p, true, Who::SignedIn(&member), &Method::GET, &path(raw)),
            Decision::Allow,
            "{raw}"
        );
    }
}

#[test]
fn ascii_paths_have_a_single_reading() {
    let n = path("/CHAT/Sales;x/../Sales/");
    assert_eq!(n.readings().collect::<Vec<_>>(), [&["chat".to_owned(), "sales".to_owned()][..]]);
}

#[test]
fn the_upstream_receives_the_path_as_sent_not_as_folded() {
    assert_eq!(path("/chat/%C5%BFales").encoded(), "/chat/%C5%BFales");
    assert_eq!(path("/ｃｈａｔ/x").encoded(), "/%EF%BD%83%EF%BD%88%EF%BD%81%EF%BD%94/x");
    assert_eq!(path("/B%C4%B0LL%C4%B0NG").encoded(), "/B%C4%B0LL%C4%B0NG");
}

#[test]
fn patterns_that_fold_ambiguously_are_refused() {
    for bad in [
        "/chat/\u{17f}ales",
        "/ｋｂ",
        "/stra\u{df}e",
        "/chat／sales",
        "/chat/＊",
        "/b\u{131}lling",
        "/cafe\u{301}",
    ] {
        let err = Rule::new(bad, "x").expect_err(bad);
        assert!(err.contains("reads differently"), "{bad}: {err}");
    }
    // Forms every reading agrees on are accepted, in their folded form.
    for (good, plain) in [
        ("/café", "/caf%C3%A9/x"),
        ("/CAFÉ", "/café"),
        ("/\u{212a}b", "/kb/x"),
        ("/Chat/*/room", "/chat/a/room"),
    ] {
        let rule = Rule::new(good, "x").unwrap_or_else(|e| panic!("{good}: {e}"));
        let p = Policy::new(vec![rule]);
        assert!(p.rule_for(&Method::GET, &path(plain)).is_some(), "{good} covers {plain}");
    }
}
