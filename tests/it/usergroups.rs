//! The usergroup model as the backend and the person see it.

use crate::support::*;

#[tokio::test]
async fn member_of_power_users_and_vips_gets_the_union_and_reaches_both_areas() {
    let stack = start(Options::default()).await;
    let mut both = signed_in(&stack, "a@example.org", &["power_users", "vips"]).await;
    let seen = both.whoami().await;
    assert_eq!(seen["headers"]["x-deskgate-usergroups"], "everyone,registered,power_users,vips");
    let perms = seen["headers"]["x-deskgate-permissions"].as_str().unwrap();
    for p in ["kb.category.advanced", "comments.unmoderated", "chat.support", "kb.read"] {
        assert!(perms.split(',').any(|x| x == p), "{p} in {perms}");
    }
    let advanced = both.get("/kb/advanced").await;
    assert_eq!(advanced.status, 200, "{}", advanced.body);
    let support = both.get("/chat/support").await;
    assert_eq!(support.status, 200, "{}", support.body);
    assert_eq!(both.get("/chat/sales").await.status, 403, "not a Trial User");
}

#[tokio::test]
async fn member_of_neither_group_gets_a_clear_403_for_both_areas() {
    let stack = start(Options::default()).await;
    let mut plain = signed_in(&stack, "b@example.org", &[]).await;
    for path in ["/kb/advanced", "/chat/support"] {
        let page = plain.get(path).await;
        assert_eq!(page.status, 403, "{path}");
        assert!(page.body.contains("Access denied"));
        assert!(page.body.contains("permission-missing"));
    }
    let api = plain.get_with("/chat/support", &[("accept", "application/json")]).await;
    assert_eq!(api.status, 403);
    assert_eq!(api.json()["reason"], "permission-missing");
}

#[tokio::test]
async fn an_account_in_a_linked_organization_lands_in_its_usergroups() {
    let stack = start(Options::default()).await;
    let mut b = signed_in(&stack, "wile@ACME.example", &[]).await;
    let seen = b.whoami().await;
    assert_eq!(seen["headers"]["x-deskgate-usergroups"], "everyone,registered,trial_users");
    assert_eq!(b.get("/chat/sales").await.status, 200);
}

#[tokio::test]
async fn static_assignments_in_the_config_apply_at_sign_in() {
    let model =
        format!("{HELPDESK}\n[[assignments]]\nemail = \"vip@example.org\"\nusergroups = [\"vips\"]\n");
    let stack = start(Options { model, ..Default::default() }).await;
    let mut b = signed_in(&stack, "VIP@example.org", &[]).await;
    assert_eq!(b.get("/chat/support").await.status, 200);
}

#[tokio::test]
async fn a_path_no_rule_covers_is_denied_by_default() {
    let model = HELPDESK.replace("[[rules]]\npath = \"/\"\npermission = \"portal.view\"\n", "");
    let stack = start(Options { model, ..Default::default() }).await;
    let mut b = signed_in(&stack, "c@example.org", &["power_users", "vips", "trial_users"]).await;
    let page = b.get("/whoami").await;
    assert_eq!(page.status, 403);
    assert!(page.body.contains("no-rule"));
    assert_eq!(b.get("/kb").await.status, 200);
}
