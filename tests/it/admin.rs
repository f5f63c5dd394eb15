//! Administering people: who may, cross-site protection, the usergroup filter, changes that
//! reach the person's very next request, disabling, `deskgate explain`, and a real browser.

use serde_json::{Value, json};

use crate::browser::Chromium;
use crate::scale::{Database, browser_at, helpdesk, replica};
use crate::support::*;

pub(crate) const PASSWORD: &str = "correct horse battery";

/// The helpdesk model plus an administrators' usergroup and one config assignment.
pub(crate) fn model() -> String {
    format!(
        "{HELPDESK}\n[usergroups.admins]\nname = \"Administrators\"\npermissions = [\"deskgate.admin\"]\n\n\
         [[assignments]]\nemail = \"cfg@example.org\"\nusergroups = [\"vips\"]\n\n\
         [[assignments]]\nemail = \"wile@acme.example\"\nusergroups = [\"vips\"]\n"
    )
}

pub(crate) async fn stack() -> Stack {
    start(Options { model: model(), ..Default::default() }).await
}

/// A browser signed in as an administrator.
pub(crate) async fn admin(stack: &Stack) -> Browser {
    signed_in(stack, "admin@example.org", &["admins"]).await
}

/// An account and a browser signed in as it; returns both.
pub(crate) async fn person(stack: &Stack, email: &str, usergroups: &[&str]) -> (String, Browser) {
    let id = account(stack, email, "Pat Person", PASSWORD, usergroups).await;
    let mut b = Browser::new(stack);
    let page = b.sign_in(email, PASSWORD).await;
    assert_eq!(page.status, 303, "sign-in failed: {}", page.body);
    (id, b)
}

/// A request with any method, headers and body, as `b` (its cookies), read whole.
pub(crate) async fn send(
    b: &Browser,
    method: &str,
    path: &str,
    headers: &[(&str, &str)],
    body: Option<String>,
) -> (u16, String, Option<String>) {
    let cookies = b.cookies.iter().map(|(k, v)| format!("{k}={v}")).collect::<Vec<_>>().join("; ");
    let method = reqwest::Method::from_bytes(method.as_bytes()).unwrap();
    let mut req = b.client.request(method, format!("{}{path}", b.base)).header("cookie", cookies);
    for (k, v) in headers {
        req = req.header(*k, *v);
    }
    if let Some(body) = body {
        req = req.body(body);
    }
    let resp = req.send().await.unwrap();
    let status = resp.status().as_u16();
    let location = resp.headers().get("location").map(|v| v.to_str().unwrap().to_owned());
    (status, resp.text().await.unwrap(), location)
}

/// The account's assigned usergroups and whether it is disabled, from the store.
async fn stored(stack: &Stack, id: &str) -> (Vec<String>, bool) {
    use deskgate::accounts::AccountStore;
    let a = stack.gateway.accounts.by_id(id).await.unwrap().unwrap();
    (a.usergroups, a.disabled)
}

/// Every administration route: method, path, body, and whether it is a page (else the API).
fn routes(id: &str) -> Vec<(&'static str, String, Option<String>, bool)> {
    let form = |s: &str| Some(s.to_owned());
    let json = |v: Value| Some(v.to_string());
    vec![
        ("GET", "/.deskgate/admin".into(), None, true),
        ("GET", "/.deskgate/admin/people".into(), None, true),
        ("GET", "/.deskgate/admin/people?q=a&usergroup=vips&page=2".into(), None, true),
        ("GET", "/.deskgate/admin/people/new".into(), None, true),
        ("POST", "/.deskgate/admin/people".into(), form("name=X&email=x%40example.org&usergroup=vips"), true),
        ("GET", format!("/.deskgate/admin/people/{id}"), None, true),
        ("GET", format!("/.deskgate/admin/people/{id}?path=/chat/sales"), None, true),
        (
            "POST",
            format!("/.deskgate/admin/people/{id}/usergroups"),
            form("action=save&usergroup=admins"),
            true,
        ),
        ("POST", format!("/.deskgate/admin/people/{id}/disable"), form(""), true),
        ("POST", format!("/.deskgate/admin/people/{id}/enable"), form(""), true),
        ("POST", format!("/.deskgate/admin/people/{id}/email"), form("email=taken%40example.org"), true),
        (
            "POST",
            format!("/.deskgate/admin/people/{id}/link"),
            form("provider=oidc.corp&subject=alice"),
            true,
        ),
        (
            "POST",
            format!("/.deskgate/admin/people/{id}/unlink"),
            form("provider=oidc.corp&subject=alice"),
            true,
        ),
        ("GET", "/.deskgate/api/csrf".into(), None, false),
        ("GET", "/.deskgate/api/usergroups".into(), None, false),
        ("GET", "/.deskgate/api/people".into(), None, false),
        ("GET", "/.deskgate/api/people?q=a&usergroup=vips&offset=1&limit=5".into(), None, false),
        ("POST", "/.deskgate/api/people".into(), json(json!({"email": "y@example.org", "name": "Y"})), false),
        ("GET", format!("/.deskgate/api/people/{id}"), None, false),
        ("GET", format!("/.deskgate/api/people/{id}?path=/kb"), None, false),
        (
            "PUT",
            format!("/.deskgate/api/people/{id}/usergroups"),
            json(json!({"usergroups": ["admins"]})),
            false,
        ),
        ("POST", format!("/.deskgate/api/people/{id}/disable"), None, false),
        ("POST", format!("/.deskgate/api/people/{id}/enable"), None, false),
        (
            "PUT",
            format!("/.deskgate/api/people/{id}/email"),
            json(json!({"email": "taken@example.org"})),
            false,
        ),
        ("GET", "/.deskgate/admin/organizations".into(), None, true),
        (
            "POST",
            "/.deskgate/admin/organizations".into(),
            form("name=Evil&domains=example.org&usergroup=admins"),
            true,
        ),
        (
            "POST",
            "/.deskgate/admin/organizations/acme".into(),
            form("action=save&name=Acme&usergroup=admins"),
            true,
        ),
        ("POST", "/.deskgate/admin/organizations/acme/delete".into(), form(""), true),
        ("GET", "/.deskgate/api/organizations".into(), None, false),
        (
            "POST",
            "/.deskgate/api/organizations".into(),
            json(json!({"name": "Evil", "domains": ["example.org"], "usergroups": ["admins"]})),
            false,
        ),
        ("PUT", "/.deskgate/api/organizations/acme".into(), json(json!({"name": "Acme"})), false),
        ("DELETE", "/.deskgate/api/organizations/acme".into(), None, false),
    ]
}

fn content_type(page: bool, body: &Option<String>) -> &'static str {
    match (page, body) {
        (true, _) => "application/x-www-form-urlencoded",
        (false, Some(_)) => "application/json",
        (false, None) => "text/plain",
    }
}

#[tokio::test]
async fn a_non_admin_gets_403_on_every_admin_page_and_api_route_and_a_guest_is_sent_to_sign_in() {
    let stack = stack().await;
    let (target, _) = person(&stack, "target@example.org", &["trial_users"]).await;
    let mut plain = signed_in(&stack, "plain@example.org", &["power_users", "vips", "trial_users"]).await;
    // A valid token for this browser: a refusal must come from the permission, not CSRF.
    let csrf = plain.csrf().await;
    let guest = Browser::new(&stack);
    let admin = admin(&stack).await;
    for (method, path, body, page) in routes(&target) {
        let accept = if page { "text/html" } else { "application/json" };
        let body_with_token = match (&body, page) {
            (Some(b), true) => Some(format!("{b}&csrf={csrf}")),
            (None, true) if method == "POST" => Some(format!("csrf={csrf}")),
            _ => body.clone(),
        };
        let headers =
            [("accept", accept), ("content-type", content_type(page, &body)), ("x-deskgate-csrf", &csrf)];
        let (status, text, _) = send(&plain, method, &path, &headers, body_with_token).await;
        assert_eq!(status, 403, "{method} {path} for a non-admin: {text}");
        if page {
            assert!(
                text.contains("Access denied") && text.contains("deskgate.admin"),
                "{method} {path}: {text}"
            );
        } else {
            let v: Value = serde_json::from_str(&text).unwrap();
            assert_eq!(v["reason"], "permission-missing", "{method} {path}");
        }

        let (status, _, location) = send(&guest, method, &path, &headers, body.clone()).await;
        if page {
            assert_eq!(status, 303, "{method} {path} for a guest");
            let to = location.unwrap();
            assert!(to.starts_with("/.deskgate/login?next="), "{method} {path} for a guest: {to}");
        } else {
            assert_eq!(status, 401, "{method} {path} for a guest");
        }

        // The same reads reach an administrator: the list above is of real routes.
        if method == "GET" {
            let (status, text, _) = send(&admin, method, &path, &[("accept", accept)], None).await;
            assert!(status == 200 || status == 303, "{method} {path} for an admin: {status} {text}");
        }
    }
    assert_eq!(stored(&stack, &target).await, (vec!["trial_users".to_owned()], false), "nothing changed");
    use deskgate::accounts::AccountStore;
    for email in ["x@example.org", "y@example.org"] {
        assert!(stack.gateway.accounts.by_email(email).await.unwrap().is_none(), "{email} was not created");
    }
    assert!(stack.gateway.accounts.organizations().await.unwrap().is_empty(), "no organization was stored");
    // A guest who signs in is brought back to the page they asked for.
    let mut later = Browser::new(&stack);
    let (_, _, location) =
        send(&later, "GET", "/.deskgate/admin/people?q=pat", &[("accept", "text/html")], None).await;
    let next = location
        .unwrap()
        .split_once("next=")
        .unwrap()
        .1
        .replace("%2F", "/")
        .replace("%3F", "?")
        .replace("%3D", "=");
    assert_eq!(next, "/.deskgate/admin/people?q=pat");
    let signed = later.sign_in_next("admin@example.org", PASSWORD, &next).await;
    assert_eq!(signed.location(), Some("/.deskgate/admin/people?q=pat"));
    assert_eq!(later.get(&next).await.status, 200);
}

#[tokio::test]
async fn a_cross_site_post_without_the_csrf_token_changes_nothing() {
    let stack = stack().await;
    let (id, _) = person(&stack, "victim@example.org", &[]).await;
    let mut admin = admin(&stack).await;
    let token = admin.csrf().await;
    let forms = [
        (format!("/.deskgate/admin/people/{id}/usergroups"), "action=save&usergroup=vips".to_owned()),
        (format!("/.deskgate/admin/people/{id}/disable"), String::new()),
        ("/.deskgate/admin/people".to_owned(), "name=Evil&email=evil%40example.org".to_owned()),
    ];
    let html = [("accept", "text/html"), ("content-type", "application/x-www-form-urlencoded")];
    for (path, body) in &forms {
        // A forged form: the browser sends the admin's cookies, but the attacker cannot know the token.
        let forged = [html[0], html[1], ("origin", "http://evil.example")];
        let (status, text, _) = send(&admin, "POST", path, &forged, Some(body.clone())).await;
        assert_eq!(status, 403, "{path}: {text}");
        assert!(text.contains("did not come from this site"), "{path}: {text}");
        // A wrong token, from this site.
        let wrong = format!("{body}&csrf=AAAA{}", &token[4..]);
        assert_eq!(send(&admin, "POST", path, &html, Some(wrong)).await.0, 403, "{path}");
        // The right token from another origin is refused too.
        let right = format!("{body}&csrf={token}");
        assert_eq!(send(&admin, "POST", path, &forged, Some(right)).await.0, 403, "{path}");
    }
    let api = [
        (
            "PUT",
            format!("/.deskgate/api/people/{id}/usergroups"),
            Some(json!({"usergroups": ["vips"]}).to_string()),
        ),
        ("POST", format!("/.deskgate/api/people/{id}/disable"), None),
        (
            "POST",
            "/.deskgate/api/people".to_owned(),
            Some(json!({"email": "evil@example.org", "name": "E"}).to_string()),
        ),
    ];
    for (method, path, body) in &api {
        let plain = [("accept", "application/json"), ("content-type", "application/json")];
        let (status, text, _) = send(&admin, method, path, &plain, body.clone()).await;
        assert_eq!(
            (status, text.as_str()),
            (403, r#"{"error":"csrf"}"#),
            "{method} {path} without the header"
        );
        let foreign = [plain[0], plain[1], ("x-deskgate-csrf", &token), ("origin", "http://evil.example")];
        assert_eq!(send(&admin, method, path, &foreign, body.clone()).await.0, 403, "{method} {path}");
    }
    assert_eq!(stored(&stack, &id).await, (vec![], false), "nothing changed");
    use deskgate::accounts::AccountStore;
    assert!(stack.gateway.accounts.by_email("evil@example.org").await.unwrap().is_none());

    // With the token, from this site, the same change goes through.
    let own = [html[0], html[1], ("origin", stack.base.as_str())];
    let body = format!("action=save&usergroup=vips&csrf={token}");
    let (status, _, location) = send(&admin, "POST", &forms[0].0, &own, Some(body)).await;
    assert_eq!(status, 303);
    assert!(location.unwrap().ends_with("?done=saved"));
    assert_eq!(stored(&stack, &id).await, (vec!["vips".to_owned()], false));
}

/// The API's CSRF header shares the identity prefix: it passes to the API only, and is
/// stripped like any other `X-Deskgate-*` header from what is proxied.
#[tokio::test]
async fn a_client_sent_csrf_header_never_reaches_the_backend() {
    let stack = stack().await;
    let mut admin = admin(&stack).await;
    let token = admin.csrf().await;
    for spelling in ["X-Deskgate-Csrf", "x_deskgate_csrf"] {
        let seen =
            admin.get_with("/whoami", &[("accept", "application/json"), (spelling, &token)]).await.json();
        let names: Vec<&String> = seen["headers"].as_object().unwrap().keys().collect();
        assert!(!names.iter().any(|n| n.contains("csrf")), "{spelling} reached the backend: {names:?}");
    }
}

#[tokio::test]
async fn the_usergroup_filter_shows_counts_and_hides_empty_usergroups() {
    let stack = stack().await;
    let mut admin = admin(&stack).await;
    account(&stack, "assigned@example.org", "Assigned Vip", PASSWORD, &["vips"]).await;
    account(&stack, "cfg@example.org", "Config Vip", PASSWORD, &[]).await;
    account(&stack, "road@acme.example", "Road Runner", PASSWORD, &[]).await;
    account(&stack, "both@acme.example", "Both Ways", PASSWORD, &["trial_users"]).await;
    account(&stack, "nobody@example.org", "No Groups", PASSWORD, &[]).await;

    let page = admin.get("/.deskgate/admin/people").await;
    assert_eq!(page.status, 200, "{}", page.body);
    let b = &page.body;
    assert!(b.contains("All people (6)</a>"), "{b}");
    assert!(b.contains("data-usergroup=\"vips\">VIPs (2)</a>"), "assigned and config: {b}");
    assert!(b.contains("data-usergroup=\"trial_users\">Trial Users (2)</a>"), "organization, once each: {b}");
    assert!(b.contains("data-usergroup=\"admins\">Administrators (1)</a>"), "{b}");
    assert!(!b.contains("data-usergroup=\"power_users\""), "nobody is a Power User: hidden: {b}");

    let vips = admin.get("/.deskgate/admin/people?usergroup=vips").await;
    assert!(vips.body.contains("aria-current=\"true\">VIPs (2)"), "{}", vips.body);
    assert!(vips.body.contains("assigned@example.org") && vips.body.contains("cfg@example.org"));
    assert!(!vips.body.contains("road@acme.example") && !vips.body.contains("nobody@example.org"));
    assert!(vips.body.contains("Showing 1–2 of 2"), "{}", vips.body);
    let search = admin.get("/.deskgate/admin/people?q=RUNNER").await;
    assert!(search.body.contains("road@acme.example") && search.body.contains("Showing 1–1 of 1"));

    let api = admin.get_with("/.deskgate/api/usergroups", &[("accept", "application/json")]).await.json();
    let count = |id: &str| {
        api["usergroups"].as_array().unwrap().iter().find(|g| g["id"] == id).unwrap()["members"].clone()
    };
    assert_eq!((count("vips"), count("trial_users"), count("power_users")), (json!(2), json!(2), json!(0)));
    let listed = admin
        .get_with("/.deskgate/api/people?usergroup=trial_users", &[("accept", "application/json")])
        .await
        .json();
    assert_eq!(listed["total"], 2);
    let road =
        listed["people"].as_array().unwrap().iter().find(|p| p["email"] == "road@acme.example").unwrap();
    assert_eq!(road["usergroups"], json!(["trial_users"]));
    assert_eq!(road["assigned"], json!([]));
    assert_eq!(road["providers"], json!(["builtin"]));
    assert_eq!(road["organizations"], json!(["acme"]));
}

/// Saves or cancels the person's usergroups through the page's form, as a browser would.
async fn submit_usergroups(admin: &mut Browser, id: &str, action: &str, usergroups: &[&str]) -> Page {
    let page = admin.get(&format!("/.deskgate/admin/people/{id}")).await;
    assert_eq!(page.status, 200, "{}", page.body);
    let csrf = page.field("csrf").unwrap();
    let mut form = vec![("csrf", csrf.as_str()), ("action", action)];
    form.extend(usergroups.iter().map(|g| ("usergroup", *g)));
    admin.post(&format!("/.deskgate/admin/people/{id}/usergroups"), &form).await
}

#[tokio::test]
async fn save_reaches_the_persons_very_next_request_and_cancel_leaves_usergroups_unchanged() {
    let stack = stack().await;
    let (id, mut pat) = person(&stack, "pat@example.org", &[]).await;
    let cookie = pat.session_cookie();
    let mut admin = admin(&stack).await;
    assert_eq!(pat.get("/kb/advanced").await.status, 403);
    assert_eq!(pat.get("/chat/support").await.status, 403);

    let cancelled = submit_usergroups(&mut admin, &id, "cancel", &["power_users", "vips"]).await;
    assert_eq!(cancelled.status, 303);
    let back = admin.get(cancelled.location().unwrap()).await;
    assert!(back.body.contains("the usergroups are unchanged"), "{}", back.body);
    assert_eq!(stored(&stack, &id).await.0, Vec::<String>::new());
    assert_eq!(pat.get("/kb/advanced").await.status, 403, "Cancel stored nothing");

    let saved = submit_usergroups(&mut admin, &id, "save", &["power_users", "vips"]).await;
    assert_eq!(saved.status, 303, "{}", saved.body);
    assert_eq!(stored(&stack, &id).await.0, ["power_users", "vips"]);
    let advanced = pat.get("/kb/advanced").await;
    assert_eq!(advanced.status, 200, "the very next request: {}", advanced.body);
    assert_eq!(pat.get("/chat/support").await.status, 200);
    assert_eq!(pat.session_cookie(), cookie, "no new sign-in");
    assert_eq!(
        pat.whoami().await["headers"]["x-deskgate-usergroups"],
        "everyone,registered,power_users,vips"
    );

    let page = admin.get(&format!("/.deskgate/admin/people/{id}")).await;
    assert!(page.body.contains("name=\"usergroup\" value=\"vips\" checked"), "{}", page.body);
    assert!(page.body.contains("name=\"usergroup\" value=\"power_users\" checked"));
    assert!(!page.body.contains("name=\"usergroup\" value=\"trial_users\" checked"));

    // Taking one away reaches the next request as well.
    submit_usergroups(&mut admin, &id, "save", &["vips"]).await;
    assert_eq!(pat.get("/kb/advanced").await.status, 403);
    assert_eq!(pat.get("/chat/support").await.status, 200);

    // Built-in and unknown usergroups cannot be assigned.
    for bad in ["registered", "no_such_group"] {
        let refused = submit_usergroups(&mut admin, &id, "save", &[bad]).await;
        assert_eq!(refused.status, 422, "{bad}");
    }
    assert_eq!(stored(&stack, &id).await.0, ["vips"]);
}

#[tokio::test]
async fn disabling_ends_the_session_at_once_and_sign_in_is_refused_until_enabled() {
    let stack = stack().await;
    let (id, mut pat) = person(&stack, "pat@example.org", &["vips"]).await;
    let mut admin = admin(&stack).await;
    assert!(pat.is_signed_in().await);

    let page = admin.get(&format!("/.deskgate/admin/people/{id}")).await;
    let csrf = page.field("csrf").unwrap();
    let done = admin.post(&format!("/.deskgate/admin/people/{id}/disable"), &[("csrf", &csrf)]).await;
    assert_eq!(done.status, 303, "{}", done.body);
    assert!(!pat.is_signed_in().await, "the very next request is a guest's");
    assert_eq!(pat.get("/chat/support").await.status, 302, "sent to sign in");
    let refused = pat.sign_in("pat@example.org", PASSWORD).await;
    assert_eq!(refused.status, 401);
    assert!(refused.body.contains("This account is disabled"), "{}", refused.body);
    let shown = admin.get(&format!("/.deskgate/admin/people/{id}")).await;
    assert!(
        shown.body.contains("Disabled</span>") && shown.body.contains("Enable account"),
        "{}",
        shown.body
    );

    // An administrator cannot lock themselves out this way.
    let me = stack_account_id(&stack, "admin@example.org").await;
    let own = admin.post(&format!("/.deskgate/admin/people/{me}/disable"), &[("csrf", &csrf)]).await;
    assert_eq!(own.status, 422);
    assert!(admin.is_signed_in().await);

    let enabled = admin.post(&format!("/.deskgate/admin/people/{id}/enable"), &[("csrf", &csrf)]).await;
    assert_eq!(enabled.status, 303);
    let signed = pat.sign_in("pat@example.org", PASSWORD).await;
    assert_eq!(signed.status, 303, "{}", signed.body);
    assert_eq!(pat.get("/chat/support").await.status, 200);
}

pub(crate) async fn stack_account_id(stack: &Stack, email: &str) -> String {
    use deskgate::accounts::AccountStore;
    stack.gateway.accounts.by_email(email).await.unwrap().unwrap().id
}

#[tokio::test]
async fn the_api_creates_a_person_assigns_usergroups_and_explains_a_path() {
    let stack = stack().await;
    let mut admin = admin(&stack).await;
    let token = admin.csrf().await;
    let headers =
        [("accept", "application/json"), ("content-type", "application/json"), ("x-deskgate-csrf", &token)];
    let new = json!({"email": "new@acme.example", "name": "New Person", "password": PASSWORD, "usergroups": ["vips"]});
    let (status, text, _) =
        send(&admin, "POST", "/.deskgate/api/people", &headers, Some(new.to_string())).await;
    assert_eq!(status, 201, "{text}");
    let created: Value = serde_json::from_str(&text).unwrap();
    let id = created["id"].as_str().unwrap().to_owned();
    assert_eq!(created["assigned"], json!(["vips"]));
    let again = send(&admin, "POST", "/.deskgate/api/people", &headers, Some(new.to_string())).await;
    assert_eq!(again.0, 409, "the email is taken");

    let body = json!({"usergroups": ["power_users", "vips"]}).to_string();
    let path = format!("/.deskgate/api/people/{id}/usergroups");
    let (status, text, _) = send(&admin, "PUT", &path, &headers, Some(body)).await;
    assert_eq!(status, 200, "{text}");
    let detail = admin
        .get_with(
            &format!("/.deskgate/api/people/{id}?path=/chat/support"),
            &[("accept", "application/json")],
        )
        .await
        .json();
    let sources = |g: &str| {
        detail["usergroups"].as_array().unwrap().iter().find(|u| u["id"] == g).unwrap()["sources"].clone()
    };
    assert_eq!(sources("trial_users"), json!([{"kind": "organization", "organization": "acme"}]));
    assert_eq!(sources("vips"), json!([{"kind": "assigned"}]));
    assert_eq!(sources("registered"), json!([{"kind": "built-in"}]));
    assert_eq!(detail["path"]["decision"], "allow");
    assert_eq!(
        detail["path"]["rule"],
        json!({"path": "/chat/support", "permission": "chat.support", "public": false})
    );
    assert_eq!(detail["path"]["granted_by"], json!(["vips"]));

    // The new person signs in with the password the administrator set.
    let mut b = Browser::new(&stack);
    assert_eq!(b.sign_in("new@acme.example", PASSWORD).await.status, 303);
    assert_eq!(b.get("/kb/advanced").await.status, 200);
}

#[tokio::test]
async fn deskgate_explain_prints_each_usergroups_source_and_the_rule_and_reason_for_a_denied_path() {
    let stack = stack().await;
    account(&stack, "wile@acme.example", "Wile E. Coyote", PASSWORD, &["vips"]).await;
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_deskgate"))
        .args(["explain", "--config"])
        .arg(&stack.config_path)
        .args(["--account", "WILE@acme.example", "--path", "/KB/advanced/rockets"])
        .output()
        .unwrap();
    let text = String::from_utf8(out.stdout).unwrap();
    assert!(out.status.success(), "{text}{}", String::from_utf8_lossy(&out.stderr));
    let line = |start: &str| {
        text.lines()
            .find(|l| l.trim_start().starts_with(start))
            .unwrap_or_else(|| panic!("no {start}: {text}"))
            .to_owned()
    };
    assert!(line("Account:").contains("Wile E. Coyote <wile@acme.example>"), "{text}");
    assert!(line("everyone ").ends_with("built-in"), "{text}");
    assert!(line("registered ").ends_with("built-in"), "{text}");
    assert!(line("trial_users ").ends_with("organization `acme`"), "{text}");
    assert!(
        line("vips ").ends_with("config assignment ([[assignments]]); assigned to the account"),
        "{text}"
    );
    assert!(
        text.contains("at the person's last sign-in through it"),
        "says where mappings come from: {text}"
    );
    assert!(line("Permissions:").contains("chat.sales"), "{text}");
    assert!(line("Rule:").ends_with("/kb/advanced requires kb.category.advanced"), "{text}");
    assert_eq!(
        line("Decision:").trim(),
        "Decision:   deny — permission-missing: none of this account's usergroups grants `kb.category.advanced`"
    );

    let unknown = std::process::Command::new(env!("CARGO_BIN_EXE_deskgate"))
        .args(["explain", "--config"])
        .arg(&stack.config_path)
        .args(["--account", "nobody@example.org"])
        .output()
        .unwrap();
    assert!(!unknown.status.success());
    assert!(
        String::from_utf8_lossy(&unknown.stderr)
            .contains("no account has the email, id, provider subject or username nobody@example.org")
    );

    // The same explanation on the person's page.
    let mut admin = admin(&stack).await;
    let id = stack_account_id(&stack, "wile@acme.example").await;
    let page = admin.get(&format!("/.deskgate/admin/people/{id}?path=/chat/support/../../kb/advanced")).await;
    assert_eq!(page.status, 200);
    assert!(
        page.body.contains("<code>/kb/advanced</code> requires <code>kb.category.advanced</code>"),
        "{}",
        page.body
    );
    assert!(page.body.contains("<strong>deny</strong> permission-missing"), "{}", page.body);
    assert!(page.body.contains("organization `acme`"));
}

#[tokio::test]
async fn chromium_admin_ticks_power_users_and_vips_saves_and_the_person_reaches_both() {
    let Some(driver) = peer("DESKGATE_TEST_CHROMEDRIVER") else { return };
    let stack = stack().await;
    account(&stack, "admin@example.org", "Ada Admin", PASSWORD, &["admins"]).await;
    let (id, mut pat) = person(&stack, "pat@example.org", &[]).await;
    let chrome = Chromium::start(&driver).await;

    // The administrator asks for the people list, signs in, and lands on it.
    chrome.go(&format!("{}/.deskgate/admin/people", stack.base)).await;
    chrome.wait_for_url("the login page", |u| u.contains("/.deskgate/login")).await;
    chrome.type_into("input[name=username]", "admin@example.org").await;
    chrome.type_into("input[name=password]", PASSWORD).await;
    chrome.click("form[action$='/login'] button").await;
    let people = format!("{}/.deskgate/admin/people", stack.base);
    chrome.wait_for_url("the people list", |u| u == people).await;
    chrome.click(&format!("a[href='/.deskgate/admin/people/{id}']")).await;
    chrome.wait_for_url("the person's page", |u| u.ends_with(&id)).await;

    // Ticks both, then thinks better of it.
    chrome.click("input[name=usergroup][value=power_users]").await;
    chrome.click("input[name=usergroup][value=vips]").await;
    chrome.click("button[value=cancel]").await;
    chrome.wait_for_url("the page after Cancel", |u| u.ends_with("?done=unchanged")).await;
    assert!(chrome.source().await.contains("the usergroups are unchanged"));
    assert_eq!(pat.get("/kb/advanced").await.status, 403, "Cancel changed nothing");
    assert_eq!(pat.get("/chat/support").await.status, 403);

    // Ticks both again and saves.
    chrome.click("input[name=usergroup][value=power_users]").await;
    chrome.click("input[name=usergroup][value=vips]").await;
    chrome.click("button[value=save]").await;
    chrome.wait_for_url("the page after Save", |u| u.ends_with("?done=saved")).await;
    let page = chrome.source().await;
    assert!(page.contains("Usergroups saved"), "{page}");
    let advanced = pat.get("/kb/advanced").await;
    assert_eq!(advanced.status, 200, "the person's next request: {}", advanced.body);
    assert_eq!(pat.get("/chat/support").await.status, 200);
    chrome.quit().await;
}

/// On replicas sharing Redis and PostgreSQL, a change made on one reaches the person's next
/// request on another. With `redis_local_cache = "0s"` that is exact; with a window, it is
/// within the window (the session store's conformance tests show that rule).
#[tokio::test]
async fn a_change_on_one_replica_reaches_the_persons_next_request_on_another() {
    let Some(redis) = peer("DESKGATE_TEST_REDIS") else { return };
    let Some(db) = Database::create().await else { return };
    let dir = TempDir::new();
    let prefix = RedisPrefix::new(&redis);
    std::fs::write(dir.0.join("secret"), "a shared secret of at least thirty-two bytes").unwrap();
    let text = format!(
        "[server]\npublic_url = \"PUBLIC_URL\"\n[upstream]\nurl = \"{}\"\n[session]\nsecret_file = \"secret\"\n\
         [storage]\naccounts = \"{}\"\nsessions = \"{redis}\"\nredis_prefix = \"{prefix}\"\nredis_local_cache = \"0s\"\n\
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
    let mut pat = browser_at(b);
    assert_eq!(pat.sign_up("Pat", "pat@example.org", PASSWORD).await.status, 303);
    assert_eq!(pat.whoami().await["headers"]["x-deskgate-usergroups"], "everyone,registered");

    let found =
        boss.get_with("/.deskgate/api/people?q=pat%40", &[("accept", "application/json")]).await.json();
    let id = found["people"][0]["id"].as_str().unwrap().to_owned();
    let saved = submit_usergroups(&mut boss, &id, "save", &["power_users", "vips"]).await;
    assert_eq!(saved.status, 303, "{}", saved.body);
    // (This helpdesk cannot verify the replicas' tokens, so what deskgate forwarded is the
    // thing to look at.)
    let seen = pat.whoami().await;
    assert_eq!(
        seen["headers"]["x-deskgate-usergroups"], "everyone,registered,power_users,vips",
        "the next request on B"
    );
    let permissions = seen["headers"]["x-deskgate-permissions"].as_str().unwrap();
    assert!(
        permissions.contains("kb.category.advanced") && permissions.contains("chat.support"),
        "{permissions}"
    );

    let page = boss.get(&format!("/.deskgate/admin/people/{id}")).await;
    let csrf = page.field("csrf").unwrap();
    assert_eq!(
        boss.post(&format!("/.deskgate/admin/people/{id}/disable"), &[("csrf", &csrf)]).await.status,
        303
    );
    assert!(!pat.is_signed_in().await, "disabled on A: a guest on B at once");
    db.drop_it().await;
}
