//! API tokens: made on the self page (in a real Chromium) and by administrators for service
//! accounts, used by scripts with `Authorization: Bearer dg_…`, limited to a subset of
//! permissions, revoked across replicas within the window; every other spelling an attacker
//! might try; the rate limit; and the account lookup.

use std::time::{Duration, Instant};

use serde_json::{Value, json};

use crate::admin::{PASSWORD, send};
use crate::browser::Chromium;
use crate::scale::{Database, browser_at, helpdesk, replica};
use crate::support::*;

const PAGE: &str = "/.deskgate/account/tokens";

/// The helpdesk model plus administrators and an integrations usergroup that may look
/// accounts up.
fn model() -> String {
    format!(
        "{HELPDESK}\n[usergroups.admins]\nname = \"Administrators\"\npermissions = [\"deskgate.admin\"]\n\n\
         [usergroups.integrations]\nname = \"Integrations\"\npermissions = [\"deskgate.accounts.read\", \"tickets.read\"]\n"
    )
}

async fn stack_with(server: &str, head: &str) -> Stack {
    start(Options { server: server.into(), head: head.into(), model: model(), ..Default::default() }).await
}

/// Makes a token on the self page as `b`; returns the page that shows it and the secret.
async fn make_token(b: &mut Browser, name: &str, permissions: &[&str]) -> (Page, String) {
    let form = b.get(PAGE).await;
    assert_eq!(form.status, 200, "{}", form.body);
    let csrf = form.field("csrf").expect("csrf field");
    let mut fields = vec![("csrf", csrf.as_str()), ("name", name), ("expires_in", "30d")];
    fields.extend(permissions.iter().map(|p| ("permission", *p)));
    let page = b.post(PAGE, &fields).await;
    let secret = secret_in(&page.body).unwrap_or_else(|| panic!("no token shown: {}", page.body));
    (page, secret)
}

/// The token a page shows, if any.
fn secret_in(html: &str) -> Option<String> {
    let start = html.find("id=\"new-token\">")? + "id=\"new-token\">".len();
    let end = html[start..].find('<')? + start;
    Some(html[start..end].to_owned())
}

/// A GET as a script would send it: JSON wanted, the given headers, no cookie.
async fn script(
    base: &str,
    path: &str,
    headers: &[(&str, &str)],
) -> (u16, reqwest::header::HeaderMap, String) {
    let client = reqwest::Client::builder().redirect(reqwest::redirect::Policy::none()).build().unwrap();
    let mut req = client.get(format!("{base}{path}")).header("accept", "application/json");
    for (k, v) in headers {
        req = req.header(*k, *v);
    }
    let resp = req.send().await.unwrap();
    let (status, headers) = (resp.status().as_u16(), resp.headers().clone());
    (status, headers, resp.text().await.unwrap())
}

async fn bearer(base: &str, path: &str, token: &str) -> (u16, String) {
    let (status, _, body) = script(base, path, &[("authorization", &format!("Bearer {token}"))]).await;
    (status, body)
}

/// Whether the gateway lets `token` through to the backend (`/whoami`, which reports what it
/// received), or refuses it as invalid.
async fn passes(base: &str, token: &str, headers: &[(&str, &str)]) -> bool {
    let value = format!("Bearer {token}");
    let mut all = vec![("authorization", value.as_str())];
    all.extend_from_slice(headers);
    let (status, _, body) = script(base, "/whoami", &all).await;
    match status {
        200 => {
            let seen: Value = serde_json::from_str(&body).unwrap();
            assert_eq!(seen["headers"]["x-deskgate-auth"], "token", "{body}");
            true
        }
        401 if body.contains("invalid_token") => false,
        _ => panic!("{status}: {body}"),
    }
}

fn assert_invalid_token(status: u16, headers: &reqwest::header::HeaderMap, body: &str, what: &str) {
    assert_eq!(status, 401, "{what}: {body}");
    let v: Value = serde_json::from_str(body).unwrap_or_else(|_| panic!("{what}: not JSON: {body}"));
    assert_eq!(v["error"], "invalid_token", "{what}");
    let challenge = headers.get("www-authenticate").and_then(|v| v.to_str().ok()).unwrap_or_default();
    assert!(
        challenge.starts_with("Bearer") && challenge.contains("error=\"invalid_token\""),
        "{what}: {challenge}"
    );
    assert!(headers.get("location").is_none(), "{what}: never a login redirect");
}

#[tokio::test]
async fn chromium_makes_a_token_shown_once_that_a_script_uses_as_the_account() {
    let Some(driver) = peer("DESKGATE_TEST_CHROMEDRIVER") else { return };
    let stack = stack_with("", "").await;
    let id = account(&stack, "ann@example.org", "Ann Token", PASSWORD, &["vips"]).await;
    let chrome = Chromium::start(&driver).await;
    chrome.go(&format!("{}/.deskgate/login", stack.base)).await;
    chrome.type_into("input[name=username]", "ann@example.org").await;
    chrome.type_into("input[name=password]", PASSWORD).await;
    chrome.click("form[action$='/login'] button").await;
    chrome.wait_for_url("the home page", |u| u == format!("{}/", stack.base)).await;
    // The session page links to the tokens page.
    chrome.go(&format!("{}/.deskgate/", stack.base)).await;
    chrome.click(&format!("a[href$='{PAGE}']")).await;
    chrome.wait_for_url("the tokens page", |u| u.ends_with(PAGE)).await;
    chrome.type_into("input[name=name]", "ticket sync").await;
    chrome.click("form[action$='/account/tokens'] button[type=submit]").await;
    let began = Instant::now();
    let secret = loop {
        if let Some(s) = secret_in(&chrome.source().await) {
            break s;
        }
        assert!(began.elapsed() < Duration::from_secs(20), "no token shown: {}", chrome.source().await);
        tokio::time::sleep(Duration::from_millis(50)).await;
    };
    assert!(secret.starts_with("dg_") && secret.len() == 46, "{secret}");
    // Loaded again, the page lists the token but never shows it.
    chrome.go(&format!("{}{PAGE}", stack.base)).await;
    let again = chrome.source().await;
    assert!(again.contains("ticket sync"), "listed: {again}");
    assert!(!again.contains(&secret) && secret_in(&again).is_none(), "shown once only");
    chrome.quit().await;
    // Only its hash is stored.
    {
        use deskgate::accounts::TokenStore;
        let listed = stack.gateway.accounts.tokens(&id).await.unwrap();
        assert_eq!(listed.len(), 1);
        assert!(stack.gateway.accounts.token_by_hash(&secret).await.unwrap().is_none());
    }

    // A script reaches the tickets API as Ann.
    let (status, body) = bearer(&stack.base, "/api/tickets", &secret).await;
    assert_eq!(status, 200, "{body}");
    let tickets: Value = serde_json::from_str(&body).unwrap();
    assert_eq!(tickets[0]["requester"], "ann@example.org");
    // With her identity headers and a JWT the helpdesk verifies, marked as a token; the
    // Authorization header that carried it never reaches the backend.
    let (status, body) = bearer(&stack.base, "/whoami", &secret).await;
    assert_eq!(status, 200, "{body}");
    let seen: Value = serde_json::from_str(&body).unwrap();
    let h = &seen["headers"];
    assert_eq!(h["x-deskgate-user"], id.as_str());
    assert_eq!(h["x-deskgate-email"], "ann@example.org");
    assert_eq!(h["x-deskgate-auth"], "token");
    assert!(h["x-deskgate-usergroups"].as_str().unwrap().contains("vips"));
    assert!(h.get("authorization").is_none(), "the token is not forwarded: {h}");
    assert_eq!(seen["verified"], true, "the JWT verifies: {seen}");
    assert_eq!(seen["claims"]["amr"], json!(["token"]));
    assert_eq!(seen["claims"]["sub"], id.as_str());

    // The page shows when it was last used.
    let mut b = Browser::new(&stack);
    assert_eq!(b.sign_in("ann@example.org", PASSWORD).await.status, 303);
    let listed = b.get(PAGE).await;
    assert!(!listed.body.contains("<td>never</td>"), "last use recorded: {}", listed.body);
    // A session is told apart from a token.
    assert_eq!(b.whoami().await["headers"]["x-deskgate-auth"], "session");
}

#[tokio::test]
async fn a_token_limited_to_a_subset_is_refused_elsewhere_and_narrows_with_its_account() {
    let stack = stack_with("", "").await;
    let id = account(&stack, "lim@example.org", "Lim", PASSWORD, &["vips"]).await;
    let mut b = Browser::new(&stack);
    assert_eq!(b.sign_in("lim@example.org", PASSWORD).await.status, 303);
    let (_, tickets_only) = make_token(&mut b, "tickets only", &["tickets.read"]).await;
    assert_eq!(bearer(&stack.base, "/api/tickets", &tickets_only).await.0, 200);
    for path in ["/kb", "/chat/support", "/"] {
        let (status, body) = bearer(&stack.base, path, &tickets_only).await;
        assert_eq!(status, 403, "{path}: {body}");
        assert_eq!(serde_json::from_str::<Value>(&body).unwrap()["error"], "forbidden");
    }
    // The session itself still reaches them.
    assert_eq!(b.get("/chat/support").await.status, 200);
    // A permission the account does not hold cannot be asked for.
    let form = b.get(PAGE).await;
    let csrf = form.field("csrf").unwrap();
    let refused = b
        .post(PAGE, &[("csrf", &csrf), ("name", "x"), ("expires_in", "30d"), ("permission", "chat.sales")])
        .await;
    assert_eq!(refused.status, 422, "{}", refused.body);
    assert!(secret_in(&refused.body).is_none());
    // Nor an expiry past the configured maximum, nor without a name.
    for (name, expiry) in [("x", "91d"), ("x", "soon"), ("", "30d")] {
        let page = b.post(PAGE, &[("csrf", &csrf), ("name", name), ("expires_in", expiry)]).await;
        assert_eq!(page.status, 422, "{name} {expiry}: {}", page.body);
    }
    // Without the form token nothing is made.
    assert_eq!(b.post(PAGE, &[("csrf", "forged"), ("name", "x"), ("expires_in", "30d")]).await.status, 403);

    // Removing the usergroup narrows the token within the cache window.
    let (_, support) = make_token(&mut b, "support", &["chat.support"]).await;
    assert_eq!(bearer(&stack.base, "/chat/support", &support).await.0, 200);
    use deskgate::accounts::AccountStore;
    stack.gateway.accounts.set_usergroups(&id, &[]).await.unwrap();
    tokio::time::sleep(Duration::from_millis(1100)).await;
    assert_eq!(bearer(&stack.base, "/chat/support", &support).await.0, 403);

    // An expired token is refused.
    stack.clock.advance(31 * 86_400);
    let (status, headers, body) =
        script(&stack.base, "/api/tickets", &[("authorization", &format!("Bearer {tickets_only}"))]).await;
    assert_invalid_token(status, &headers, &body, "expired");
}

#[tokio::test]
async fn wrong_altered_and_oddly_sent_tokens_are_refused_and_never_reach_the_backend() {
    let stack = stack_with("", "").await;
    account(&stack, "odd@example.org", "Odd", PASSWORD, &[]).await;
    let mut b = Browser::new(&stack);
    assert_eq!(b.sign_in("odd@example.org", PASSWORD).await.status, 303);
    let (_, token) = make_token(&mut b, "odd", &[]).await;
    let base = stack.base.as_str();

    // A wrong token, and the right one altered, get 401 JSON — even from a browser.
    let mut altered = token.clone().into_bytes();
    let last = altered.len() - 1;
    altered[last] = if altered[last] == b'A' { b'B' } else { b'A' };
    let altered = String::from_utf8(altered).unwrap();
    let wrong = format!("dg_{}", "x".repeat(43));
    for (what, value) in [
        ("wrong", format!("Bearer {wrong}")),
        ("altered", format!("Bearer {altered}")),
        ("truncated", format!("Bearer {}", &token[..token.len() - 1])),
        ("text after it", format!("Bearer {token} extra")),
        ("prefix only", "Bearer dg_".to_owned()),
        ("oversize", format!("Bearer dg_{}", "A".repeat(16 * 1024))),
    ] {
        let (status, headers, body) =
            script(base, "/api/tickets", &[("authorization", &value), ("accept", "text/html")]).await;
        assert_invalid_token(status, &headers, &body, what);
    }
    // A bad token beside a valid session cookie is still refused: the token speaks.
    let (status, _, _) =
        send(&b, "GET", "/whoami", &[("authorization", &format!("Bearer {wrong}"))], None).await;
    assert_eq!(status, 401);

    // The scheme in any case, and several spaces, are read as RFC 7235 allows; the header
    // is removed before the backend in every spelling.
    for value in [format!("bearer {token}"), format!("BEARER   {token}"), format!("Bearer \t{token}")] {
        let (status, _, body) = script(base, "/whoami", &[("authorization", &value)]).await;
        assert_eq!(status, 200, "{value}: {body}");
        let h = &serde_json::from_str::<Value>(&body).unwrap()["headers"];
        assert_eq!(h["x-deskgate-auth"], "token", "{value}");
        assert!(h.get("authorization").is_none(), "{value}: {h}");
    }

    // Two Authorization headers carrying a token are refused, never forwarded.
    for second in [format!("Bearer {token}"), "Basic dXNlcjpwYXNz".to_owned()] {
        let (status, body) = raw(
            stack.addr,
            "/whoami",
            &[
                ("Authorization", &format!("Bearer {token}")),
                ("Authorization", &second),
                ("Accept", "application/json"),
            ],
        )
        .await;
        assert_eq!(status, 400, "{second}: {body}");
        assert!(body.contains("invalid_request"), "{body}");
    }

    // A token in the query string is not a credential: the request is a guest's.
    let (status, _, body) = script(base, &format!("/api/tickets?access_token={token}"), &[]).await;
    assert_eq!(status, 401, "{body}");
    assert!(body.contains("sign-in required"), "{body}");

    // Bearer values that are not deskgate tokens are the backend's business: left alone.
    let other = "Bearer eyJhbGciOiJub25lIn0.e30.";
    let (status, _, body) = script(base, "/whoami", &[("authorization", other)]).await;
    assert_eq!(status, 200, "{body}");
    let seen: Value = serde_json::from_str(&body).unwrap();
    assert_eq!(seen["headers"]["authorization"], other);
    assert_eq!(seen["headers"]["x-deskgate-auth"], "", "a guest: set, empty");

    // deskgate's own pages do not take a token: the tokens page wants a session.
    let (status, headers, _) = script(base, PAGE, &[("authorization", &format!("Bearer {token}"))]).await;
    assert_eq!(status, 303, "sent to sign in");
    assert!(headers.get("location").unwrap().to_str().unwrap().contains("/.deskgate/login"));
}

#[tokio::test]
async fn failed_tokens_are_rate_limited_per_client_address() {
    let stack = stack_with(
        "trusted_proxies = [\"127.0.0.1\"]",
        "[rate_limit]\nper_address = 3\nper_account_and_address = 3\n",
    )
    .await;
    account(&stack, "rl@example.org", "Rl", PASSWORD, &[]).await;
    let mut b = Browser::new(&stack);
    assert_eq!(b.sign_in("rl@example.org", PASSWORD).await.status, 303);
    let (_, token) = make_token(&mut b, "rl", &[]).await;
    let wrong = format!("Bearer dg_{}", "y".repeat(43));
    let from = |addr: &'static str| [("x-forwarded-for", addr)];
    for _ in 0..3 {
        let (status, _, body) =
            script(&stack.base, "/api/tickets", &[("authorization", &wrong), from("203.0.113.7")[0]]).await;
        assert_eq!(status, 401, "{body}");
    }
    let (status, _, body) =
        script(&stack.base, "/api/tickets", &[("authorization", &wrong), from("203.0.113.7")[0]]).await;
    assert_eq!(status, 429, "{body}");
    // That address is refused even with a good token; another address is not.
    let good = format!("Bearer {token}");
    let (status, _, _) =
        script(&stack.base, "/api/tickets", &[("authorization", &good), from("203.0.113.7")[0]]).await;
    assert_eq!(status, 429);
    assert!(passes(&stack.base, &token, &from("198.51.100.2")).await);
    // The window passes (the helpdesk keeps the real time, so a page that needs no JWT).
    stack.clock.advance(901);
    assert!(passes(&stack.base, &token, &from("203.0.113.7")).await);
}

/// Revoked on replica A, refused on replica B within the session cache window
/// (`storage.redis_local_cache`, 1 s here), with accounts in PostgreSQL and sessions in Redis.
#[tokio::test]
async fn a_token_revoked_on_one_replica_is_refused_on_another_within_the_window() {
    let Some(redis) = peer("DESKGATE_TEST_REDIS") else { return };
    let Some(db) = Database::create().await else { return };
    let dir = TempDir::new();
    let prefix = RedisPrefix::new(&redis);
    std::fs::write(dir.0.join("secret"), "a shared secret of at least thirty-two bytes").unwrap();
    let text = format!(
        "[server]\npublic_url = \"PUBLIC_URL\"\n[upstream]\nurl = \"{}\"\n[session]\nsecret_file = \"secret\"\n\
         [storage]\naccounts = \"{}\"\nsessions = \"{redis}\"\nredis_prefix = \"{prefix}\"\nredis_local_cache = \"1s\"\n\
         {HELPDESK}",
        helpdesk().await,
        db.url,
    );
    let (a, b) = (replica(&dir.0, "a", &text).await, replica(&dir.0, "b", &text).await);
    db.verified_account("rev@example.org", "Rev", PASSWORD).await;
    let mut on_a = browser_at(a);
    assert_eq!(on_a.sign_in("rev@example.org", PASSWORD).await.status, 303);
    let (page, token) = make_token(&mut on_a, "revoke me", &[]).await;
    let (base_a, base_b) = (format!("http://{a}"), format!("http://{b}"));
    assert!(passes(&base_b, &token, &[]).await, "B knows it (and caches it)");
    assert!(passes(&base_a, &token, &[]).await);

    // Revoke on A.
    let form = page.body.split("action=\"").find(|s| s.contains("/revoke\"")).expect("a revoke form");
    let action = form.split('"').next().unwrap().to_owned();
    let csrf = page.field("csrf").unwrap();
    let revoked = on_a.post(&action, &[("csrf", &csrf)]).await;
    assert_eq!(revoked.status, 303, "{}", revoked.body);
    let revoked_at = Instant::now();
    assert!(!passes(&base_a, &token, &[]).await, "at once on A");
    loop {
        if !passes(&base_b, &token, &[]).await {
            break;
        }
        assert!(revoked_at.elapsed() < Duration::from_millis(1500), "B still takes it after the window");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert!(on_a.get(PAGE).await.body.contains("No API tokens"));
    db.drop_it().await;
}

#[tokio::test]
async fn service_accounts_never_sign_in_and_administrators_make_and_revoke_their_tokens() {
    let stack = stack_with("", "").await;
    let mut admin = signed_in(&stack, "boss@example.org", &["admins"]).await;
    let csrf: Value =
        serde_json::from_str(&send(&admin, "GET", "/.deskgate/api/csrf", &[], None).await.1).unwrap();
    let csrf = csrf["token"].as_str().unwrap().to_owned();
    let api = [
        ("accept", "application/json"),
        ("content-type", "application/json"),
        ("x-deskgate-csrf", csrf.as_str()),
    ];
    let made = send(
        &admin,
        "POST",
        "/.deskgate/api/service-accounts",
        &api,
        Some(json!({"name": "Mail intake", "usergroups": ["integrations"]}).to_string()),
    )
    .await;
    assert_eq!(made.0, 201, "{}", made.1);
    let id = serde_json::from_str::<Value>(&made.1).unwrap()["id"].as_str().unwrap().to_owned();

    // A token for it through the API, limited to the lookup.
    let body =
        json!({"name": "intake", "expires_in": "7d", "permissions": ["deskgate.accounts.read"]}).to_string();
    let created = send(&admin, "POST", &format!("/.deskgate/api/people/{id}/tokens"), &api, Some(body)).await;
    assert_eq!(created.0, 201, "{}", created.1);
    let created: Value = serde_json::from_str(&created.1).unwrap();
    let token = created["token"].as_str().unwrap().to_owned();
    assert_eq!(created["permissions"], json!(["deskgate.accounts.read"]));
    let listed = send(&admin, "GET", &format!("/.deskgate/api/people/{id}/tokens"), &[], None).await;
    assert!(!listed.1.contains(&token), "the secret is given once");
    assert_eq!(serde_json::from_str::<Value>(&listed.1).unwrap()["service"], true);
    let (status, body) =
        bearer(&stack.base, "/.deskgate/api/accounts/lookup?email=boss@example.org", &token).await;
    assert_eq!(status, 200, "{body}");
    // Without the CSRF header nothing is made; nor for a person (they make their own).
    let forged =
        send(&admin, "POST", &format!("/.deskgate/api/people/{id}/tokens"), &api[..2], Some("{}".into()))
            .await;
    assert_eq!(forged.0, 403);
    let person = account(&stack, "pat@example.org", "Pat", PASSWORD, &[]).await;
    let body = json!({"name": "x", "expires_in": "7d"}).to_string();
    assert_eq!(
        send(&admin, "POST", &format!("/.deskgate/api/people/{person}/tokens"), &api, Some(body)).await.0,
        422
    );

    // The admin page marks it and makes tokens too, shown once.
    let page = admin.get(&format!("/.deskgate/admin/people/{id}")).await;
    assert!(page.body.contains("id=\"service\""), "{}", page.body);
    let form_csrf = page.field("csrf").unwrap();
    let shown = admin
        .post(
            &format!("/.deskgate/admin/people/{id}/tokens"),
            &[("csrf", &form_csrf), ("name", "page"), ("expires_in", "1d")],
        )
        .await;
    assert_eq!(shown.status, 200, "{}", shown.body);
    let second = secret_in(&shown.body).expect("shown");
    assert_eq!(bearer(&stack.base, "/api/tickets", &second).await.0, 200);

    // Revoked through the API: refused at once.
    let tokens: Value = serde_json::from_str(
        &send(&admin, "GET", &format!("/.deskgate/api/people/{id}/tokens"), &[], None).await.1,
    )
    .unwrap();
    let listed = tokens["tokens"].as_array().unwrap();
    let first_id = listed.iter().find(|t| t["name"] == "intake").unwrap()["id"].as_str().unwrap().to_owned();
    let gone =
        send(&admin, "DELETE", &format!("/.deskgate/api/people/{id}/tokens/{first_id}"), &api, None).await;
    assert_eq!(gone.0, 204, "{}", gone.1);
    assert_eq!(bearer(&stack.base, "/.deskgate/api/accounts/lookup?email=a@b.c", &token).await.0, 401);

    // An account marked as a service account is refused at sign-in, password or not.
    use deskgate::accounts::TokenStore;
    let svc = account(&stack, "svc@example.org", "Svc", PASSWORD, &[]).await;
    stack.gateway.accounts.mark_service(&svc).await.unwrap();
    let mut b = Browser::new(&stack);
    let page = b.sign_in("svc@example.org", PASSWORD).await;
    assert_ne!(page.status, 303, "{}", page.body);
    assert!(!b.is_signed_in().await);
    // Not an administrator: no service accounts.
    let (_, mut other) = crate::admin::person(&stack, "nobody@example.org", &[]).await;
    let other_csrf = other.csrf().await;
    let refused = send(
        &other,
        "POST",
        "/.deskgate/api/service-accounts",
        &[api[0], api[1], ("x-deskgate-csrf", &other_csrf)],
        Some(json!({"name": "x"}).to_string()),
    )
    .await;
    assert_eq!(refused.0, 403);
    let _ = &mut admin;
}

#[tokio::test]
async fn the_lookup_tells_registered_unknown_and_disabled_addresses_apart_for_tokens_that_may_ask() {
    use deskgate::accounts::AccountStore;
    let stack = stack_with("", "").await;
    let ann = account(&stack, "Ann.Lookup@Example.org", "Ann", PASSWORD, &["vips"]).await;
    let off = account(&stack, "off@example.org", "Off", PASSWORD, &["vips"]).await;
    stack.gateway.accounts.set_disabled(&off, true).await.unwrap();
    // An integration's token, and a person's without the permission.
    account(&stack, "intake@example.org", "Intake", PASSWORD, &["integrations"]).await;
    let mut intake = Browser::new(&stack);
    assert_eq!(intake.sign_in("intake@example.org", PASSWORD).await.status, 303);
    let (_, may) = make_token(&mut intake, "lookup", &["deskgate.accounts.read"]).await;
    let mut pat = signed_in(&stack, "pat@example.org", &[]).await;
    let (_, may_not) = make_token(&mut pat, "no lookup", &[]).await;
    let lookup = |email: &str| format!("/.deskgate/api/accounts/lookup?email={email}");

    // A registered address, compared as the store compares it (without regard to case).
    let (status, body) = bearer(&stack.base, &lookup("ann.lookup%40example.ORG"), &may).await;
    assert_eq!(status, 200, "{body}");
    let v: Value = serde_json::from_str(&body).unwrap();
    assert_eq!(
        (v["registered"].clone(), v["active"].clone(), v["status"].clone()),
        (json!(true), json!(true), json!("active"))
    );
    assert_eq!(v["id"], ann.as_str());
    let groups: Vec<&str> = v["usergroups"].as_array().unwrap().iter().map(|g| g.as_str().unwrap()).collect();
    assert!(groups.contains(&"vips") && groups.contains(&"registered"), "{groups:?}");

    // An unknown address and a disabled account answer differently, and say nothing more.
    let (status, body) = bearer(&stack.base, &lookup("nobody%40example.org"), &may).await;
    assert_eq!(status, 200);
    assert_eq!(serde_json::from_str::<Value>(&body).unwrap(), json!({"registered": false, "active": false}));
    let (status, body) = bearer(&stack.base, &lookup("off%40example.org"), &may).await;
    assert_eq!(status, 200);
    assert_eq!(
        serde_json::from_str::<Value>(&body).unwrap(),
        json!({"registered": true, "active": false, "status": "disabled"})
    );

    // Without the permission: 403; without a token (a session included) or with a bad one: 401.
    let (status, body) = bearer(&stack.base, &lookup("off%40example.org"), &may_not).await;
    assert_eq!(status, 403, "{body}");
    assert_eq!(serde_json::from_str::<Value>(&body).unwrap()["permission"], "deskgate.accounts.read");
    let (status, headers, body) = script(&stack.base, &lookup("off%40example.org"), &[]).await;
    assert_eq!(status, 401, "{body}");
    assert!(headers.get("www-authenticate").unwrap().to_str().unwrap().starts_with("Bearer"));
    assert_eq!(send(&pat, "GET", &lookup("off%40example.org"), &[], None).await.0, 401);
    let (status, headers, body) = script(
        &stack.base,
        &lookup("off%40example.org"),
        &[("authorization", &format!("Bearer dg_{}", "z".repeat(43)))],
    )
    .await;
    assert_invalid_token(status, &headers, &body, "bad token on the lookup");
    // No address, or not one: 400.
    assert_eq!(bearer(&stack.base, "/.deskgate/api/accounts/lookup", &may).await.0, 400);
    assert_eq!(bearer(&stack.base, &lookup("not-an-address"), &may).await.0, 400);
    let _ = &mut pat;
}

#[tokio::test]
async fn forward_auth_answers_for_a_token_as_for_a_session_and_refuses_a_bad_one() {
    let stack = stack_with("trusted_proxies = [\"127.0.0.1\"]", "").await;
    let id = account(&stack, "fa@example.org", "Fa", PASSWORD, &["vips"]).await;
    let mut b = Browser::new(&stack);
    assert_eq!(b.sign_in("fa@example.org", PASSWORD).await.status, 303);
    let (_, token) = make_token(&mut b, "proxy", &["tickets.read"]).await;
    let ask = |uri: &'static str, auth: String| {
        let base = stack.base.clone();
        async move {
            let value = auth;
            let headers = [
                ("x-forwarded-method", "GET"),
                ("x-forwarded-proto", "https"),
                ("x-forwarded-host", "help.example.com"),
                ("x-forwarded-uri", uri),
                ("authorization", value.as_str()),
            ];
            script(&base, "/.deskgate/authz/forward-auth", &headers).await
        }
    };
    let (status, headers, body) = ask("/api/tickets", format!("Bearer {token}")).await;
    assert_eq!(status, 200, "{body}");
    let h = |name: &str| headers.get(name).and_then(|v| v.to_str().ok()).unwrap_or("<absent>").to_owned();
    assert_eq!(h("x-deskgate-user"), id);
    assert_eq!(h("x-deskgate-auth"), "token");
    assert_eq!(h("x-deskgate-permissions"), "tickets.read");
    assert_eq!(h("x-deskgate-jwt").split('.').count(), 3, "a JWT");
    // The subset holds here too, and a bad token is refused, never sent to sign in.
    assert_eq!(ask("/chat/support", format!("Bearer {token}")).await.0, 403);
    let (status, headers, body) = ask("/api/tickets", format!("Bearer dg_{}", "q".repeat(43))).await;
    assert_invalid_token(status, &headers, &body, "forward auth");
    // A guest's answer sets the header, empty.
    let (status, headers, _) = ask("/kb", "Basic eDp5".into()).await;
    assert_eq!(status, 200);
    assert_eq!(headers.get("x-deskgate-auth").map(|v| v.to_str().unwrap()), Some(""));
}
