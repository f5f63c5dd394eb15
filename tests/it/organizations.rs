//! Organizations administrators keep: linking one to a usergroup gives every account of its
//! email domain that usergroup at its next request, on every replica, without signing in
//! again; unlinking and deleting take it away the same way.

use serde_json::{Value, json};

use crate::admin::{PASSWORD, admin, model, person, send, stack, stack_account_id};
use crate::scale::{Database, browser_at, helpdesk, replica};
use crate::support::*;

fn usergroups(seen: &Value) -> String {
    seen["headers"]["x-deskgate-usergroups"].as_str().unwrap_or_default().to_owned()
}

const FORM: &str = "application/x-www-form-urlencoded";

#[tokio::test]
async fn linking_an_organization_to_vips_gives_every_account_of_its_domain_vips_without_signing_in_again() {
    let stack = stack().await;
    let (carol_id, mut carol) = person(&stack, "carol@corp.example.com", &[]).await;
    let (_, mut dana) = person(&stack, "Dana@CORP.Example.com", &[]).await;
    let (_, mut eve) = person(&stack, "eve@notcorp.example.com", &[]).await;
    for b in [&mut carol, &mut dana, &mut eve] {
        assert_eq!(b.get("/chat/support").await.status, 403, "nobody is a VIP yet");
    }
    let mut admin = admin(&stack).await;
    let list = admin.get("/.deskgate/admin/organizations").await;
    assert_eq!(list.status, 200, "{}", list.body);
    assert!(list.body.contains("(acme)") && list.body.contains("config file"), "{}", list.body);
    assert!(list.body.contains("<label for=\"domains\">Email domains</label>"), "labelled fields");
    let csrf = list.field("csrf").unwrap();

    // A forged form changes nothing.
    let forged = [("accept", "text/html"), ("content-type", FORM), ("origin", "http://evil.example")];
    let body = "name=Corp&domains=corp.example.com&usergroup=vips".to_owned();
    let (status, text, _) = send(&admin, "POST", "/.deskgate/admin/organizations", &forged, Some(body)).await;
    assert_eq!(status, 403, "{text}");
    assert_eq!(carol.get("/chat/support").await.status, 403);

    let created = admin
        .post(
            "/.deskgate/admin/organizations",
            &[
                ("name", "Corp Example"),
                ("domains", "corp.example.com"),
                ("usergroup", "vips"),
                ("csrf", &csrf),
            ],
        )
        .await;
    assert_eq!(created.status, 303, "{}", created.body);
    assert_eq!(created.location(), Some("/.deskgate/admin/organizations?done=created"));

    // The same cookies, no new sign-in: the very next request has VIPs.
    for b in [&mut carol, &mut dana] {
        assert_eq!(b.get("/chat/support").await.status, 200, "a member reaches support chat");
        assert_eq!(usergroups(&b.whoami().await), "everyone,registered,vips");
    }
    assert_eq!(eve.get("/chat/support").await.status, 403, "another domain is not a member");

    let list = admin.get("/.deskgate/admin/organizations?done=created").await;
    assert!(list.body.contains("Organization created."), "{}", list.body);
    assert!(list.body.contains("href=\"/.deskgate/admin/organizations/corp-example\""), "{}", list.body);
    let filter = admin.get_with("/.deskgate/api/usergroups", &[("accept", "application/json")]).await.json();
    let vips = filter["usergroups"].as_array().unwrap().iter().find(|g| g["id"] == "vips").unwrap().clone();
    assert_eq!(vips["members"], 2, "the filter counts the organization's members: {vips}");
    let people = admin.get("/.deskgate/admin/people?q=carol").await;
    assert!(
        people.body.contains("<td>Corp Example</td>"),
        "the list names the organization: {}",
        people.body
    );
    let page = admin.get(&format!("/.deskgate/admin/people/{carol_id}")).await;
    assert!(page.body.contains("organization `corp-example`"), "{}", page.body);

    // Refusals: a domain another organization has, a domain of the config's organization.
    for (domains, says) in [
        ("corp.example.com", "already belongs to another organization"),
        ("acme.example", "organization `acme`"),
        ("not a domain", "must look like example.com"),
    ] {
        let page = admin
            .post(
                "/.deskgate/admin/organizations",
                &[("name", "Other"), ("domains", domains), ("csrf", &csrf)],
            )
            .await;
        assert!(page.status == 409 || page.status == 422, "{domains}: {}", page.status);
        assert!(page.body.contains(says), "{domains}: {}", page.body);
        assert!(page.body.contains("value=\"Other\""), "what was entered is kept");
    }

    // Cancel leaves it; Save with Trial Users instead of VIPs moves the members at once.
    let url = "/.deskgate/admin/organizations/corp-example";
    let edit = admin.get(url).await;
    assert_eq!(edit.status, 200, "{}", edit.body);
    assert!(edit.body.contains("corp.example.com</textarea>"), "{}", edit.body);
    let cancel = admin
        .post(
            url,
            &[
                ("action", "cancel"),
                ("name", "X"),
                ("domains", ""),
                ("usergroup", "trial_users"),
                ("csrf", &csrf),
            ],
        )
        .await;
    assert_eq!(cancel.location(), Some("/.deskgate/admin/organizations?done=unchanged"));
    assert_eq!(carol.get("/chat/support").await.status, 200, "cancel changed nothing");
    let saved = admin
        .post(
            url,
            &[
                ("action", "save"),
                ("name", "Corp Example"),
                ("domains", "corp.example.com"),
                ("usergroup", "trial_users"),
                ("csrf", &csrf),
            ],
        )
        .await;
    assert_eq!(saved.location(), Some("/.deskgate/admin/organizations?done=saved"), "{}", saved.body);
    assert_eq!(carol.get("/chat/support").await.status, 403, "VIPs gone at the next request");
    assert_eq!(carol.get("/chat/sales").await.status, 200, "Trial Users instead");

    // The API: the list names who keeps each; deleting takes the usergroups away.
    let token = admin.csrf().await;
    let (status, text, _) =
        send(&admin, "GET", "/.deskgate/api/organizations", &[("accept", "application/json")], None).await;
    assert_eq!(status, 200);
    let orgs: Value = serde_json::from_str(&text).unwrap();
    assert_eq!(
        orgs["organizations"],
        json!([
            {"id": "acme", "name": "acme", "domains": ["acme.example"], "usergroups": ["trial_users"], "kept_by": "config"},
            {"id": "corp-example", "name": "Corp Example", "domains": ["corp.example.com"], "usergroups": ["trial_users"], "kept_by": "administrators"},
        ])
    );
    let api =
        [("accept", "application/json"), ("content-type", "application/json"), ("x-deskgate-csrf", &token)];
    let body = json!({"id": "acme", "name": "Acme", "domains": ["acme.test"]}).to_string();
    let (status, text, _) = send(&admin, "POST", "/.deskgate/api/organizations", &api, Some(body)).await;
    assert_eq!((status, text.contains("organization of the config file")), (409, true), "{text}");
    let (status, text, _) =
        send(&admin, "DELETE", "/.deskgate/api/organizations/corp-example", &api, None).await;
    assert_eq!(status, 200, "{text}");
    assert_eq!(carol.get("/chat/sales").await.status, 403, "deleted: Trial Users gone at the next request");
    assert_eq!(usergroups(&carol.whoami().await), "everyone,registered");
    let (status, _, _) =
        send(&admin, "DELETE", "/.deskgate/api/organizations/corp-example", &api, None).await;
    assert_eq!(status, 404);
}

#[tokio::test]
async fn an_organization_linked_on_one_replica_reaches_its_members_sessions_on_another() {
    let Some(redis) = peer("DESKGATE_TEST_REDIS") else { return };
    let Some(db) = Database::create().await else { return };
    let dir = TempDir::new();
    let prefix = RedisPrefix::new(&redis);
    std::fs::write(dir.0.join("secret"), "a shared secret of at least thirty-two bytes").unwrap();
    // The default local cache: a replica may reuse a session it read for up to a second.
    let text = format!(
        "[server]\npublic_url = \"PUBLIC_URL\"\n[upstream]\nurl = \"{}\"\n[session]\nsecret_file = \"secret\"\n\
         [storage]\naccounts = \"{}\"\nsessions = \"{redis}\"\nredis_prefix = \"{prefix}\"\n\
         {}\n[[assignments]]\nemail = \"boss@example.org\"\nusergroups = [\"admins\"]\n",
        helpdesk().await,
        db.url,
        model()
    );
    let (a, b) = (replica(&dir.0, "a", &text).await, replica(&dir.0, "b", &text).await);
    // The [[assignments]] address must be verified to make Boss an administrator.
    db.verified_account("boss@example.org", "Boss", PASSWORD).await;
    let mut boss = browser_at(a);
    assert_eq!(boss.sign_in("boss@example.org", PASSWORD).await.status, 303);
    // Membership by domain needs a verified address: Pat's account is made as an administrator would.
    db.verified_account("pat@corp.example.com", "Pat", PASSWORD).await;
    let mut pat = browser_at(b);
    assert_eq!(pat.sign_in("pat@corp.example.com", PASSWORD).await.status, 303);
    assert_eq!(usergroups(&pat.whoami().await), "everyone,registered");

    let token = boss.csrf().await;
    let api =
        [("accept", "application/json"), ("content-type", "application/json"), ("x-deskgate-csrf", &token)];
    let body = json!({"name": "Corp", "domains": ["corp.example.com"], "usergroups": ["vips"]}).to_string();
    let (status, text, _) = send(&boss, "POST", "/.deskgate/api/organizations", &api, Some(body)).await;
    assert_eq!(status, 201, "{text}");
    let linked = std::time::Instant::now();
    // On B within the local cache's window (1 s), with the same cookie. (This helpdesk
    // cannot verify the replicas' tokens, so what deskgate forwarded is the thing to look at.)
    while usergroups(&pat.whoami().await) != "everyone,registered,vips" {
        assert!(
            linked.elapsed() < std::time::Duration::from_secs(2),
            "not a VIP on B after {:?}",
            linked.elapsed()
        );
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
    assert_eq!(usergroups(&pat.whoami().await), "everyone,registered,vips");
    db.drop_it().await;
}

/// `deskgate explain` names a stored organization as a source.
#[tokio::test]
async fn explain_names_a_stored_organization() {
    let stack = stack().await;
    account(&stack, "zoe@corp.example.com", "Zoe", PASSWORD, &[]).await;
    let mut admin = admin(&stack).await;
    let token = admin.csrf().await;
    let api =
        [("accept", "application/json"), ("content-type", "application/json"), ("x-deskgate-csrf", &token)];
    let body = json!({"id": "corp", "name": "Corp", "domains": ["corp.example.com"], "usergroups": ["vips"]});
    let (status, text, _) =
        send(&admin, "POST", "/.deskgate/api/organizations", &api, Some(body.to_string())).await;
    assert_eq!(status, 201, "{text}");
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_deskgate"))
        .args(["explain", "--config"])
        .arg(&stack.config_path)
        .args(["--account", "zoe@corp.example.com", "--path", "/chat/support"])
        .output()
        .unwrap();
    let text = String::from_utf8(out.stdout).unwrap();
    assert!(out.status.success(), "{text}");
    assert!(
        text.lines().any(|l| l.trim_start().starts_with("vips ") && l.ends_with("organization `corp`")),
        "{text}"
    );
    assert!(text.contains("Decision:   allow — `chat.support` is granted by vips"), "{text}");
    let id = stack_account_id(&stack, "zoe@corp.example.com").await;
    let person = admin
        .get_with(&format!("/.deskgate/api/people/{id}"), &[("accept", "application/json")])
        .await
        .json();
    let vips = person["usergroups"].as_array().unwrap().iter().find(|g| g["id"] == "vips").unwrap().clone();
    assert_eq!(vips["sources"], json!([{"kind": "organization", "organization": "corp"}]));
}
