//! Rules by method and public rules, through the full proxy, forward auth and `deskgate check`.

use crate::edge::{OnUpgrade, recording_upstream};
use crate::support::*;

/// The helpdesk model with Everyone disabled, comments that need `comments.unmoderated` to
/// post, and a public mail webhook and static folder.
fn model() -> String {
    HELPDESK.replace("[everyone]\nenabled = true", "[everyone]\nenabled = false")
        + r#"
[usergroups.kb_readers]
permissions = ["portal.view", "kb.read"]

[usergroups.admins]
permissions = ["deskgate.admin"]

[[rules]]
path = "/kb/*/comments"
methods = ["post", "PUT"]
permission = "comments.unmoderated"

[[rules]]
path = "/hooks/email"
methods = ["POST"]
public = true

[[rules]]
path = "/static"
public = true
"#
}

/// Sends `method path` with the session `cookie` (if any) and extra headers; the status.
async fn send(
    stack: &Stack,
    method: &str,
    path: &str,
    cookie: Option<&str>,
    headers: &[(&str, &str)],
) -> u16 {
    let client = reqwest::Client::builder().redirect(reqwest::redirect::Policy::none()).build().unwrap();
    let method = reqwest::Method::from_bytes(method.as_bytes()).unwrap();
    let mut req =
        client.request(method, format!("{}{path}", stack.base)).header("accept", "application/json");
    if let Some(c) = cookie {
        req = req.header("cookie", format!("deskgate_session={c}"));
    }
    for (k, v) in headers {
        req = req.header(*k, *v);
    }
    req.body("x=1").send().await.unwrap().status().as_u16()
}

/// The last request the upstream received that starts with `line`.
fn last_request(seen: &str, line: &str) -> String {
    let at = seen.rfind(line).unwrap_or_else(|| panic!("the upstream never saw `{line}`: {seen}"));
    let rest = &seen[at..];
    rest.split("\r\n\r\n").next().unwrap_or_default().to_ascii_lowercase()
}

fn header_value(head: &str, name: &str) -> Option<String> {
    head.lines().find_map(|l| l.strip_prefix(&format!("{name}:")).map(|v| v.trim().to_owned()))
}

#[tokio::test]
async fn posting_a_comment_needs_its_own_permission_while_reading_needs_kb_read() {
    let (upstream, seen) = recording_upstream(OnUpgrade::SwitchBlindly).await;
    let stack = start(Options { model: model(), upstream: Some(upstream), ..Default::default() }).await;
    // Everyone is disabled and Registered holds tickets.read only: kb.read comes from a usergroup.
    let kb = signed_in(&stack, "kb@example.org", &["kb_readers"]).await.session_cookie().unwrap();
    let power = signed_in(&stack, "power@example.org", &["kb_readers", "power_users"])
        .await
        .session_cookie()
        .unwrap();

    assert_eq!(send(&stack, "GET", "/kb/x/comments", Some(&kb), &[]).await, 200);
    assert_eq!(send(&stack, "HEAD", "/kb/x/comments", Some(&kb), &[]).await, 200);
    assert_eq!(send(&stack, "POST", "/kb/x/comments", Some(&kb), &[]).await, 403);
    assert_eq!(send(&stack, "PUT", "/kb/x/comments/7", Some(&kb), &[]).await, 403);
    assert_eq!(send(&stack, "POST", "/kb/x/comments", Some(&power), &[]).await, 200);
    // A guest is sent to sign in for either.
    assert_eq!(send(&stack, "GET", "/kb/x/comments", None, &[]).await, 401);
    assert_eq!(send(&stack, "POST", "/kb/x/comments", None, &[]).await, 401);

    // Other spellings of the method: lower case is decided as POST, an unknown method by the
    // rules without methods, and an override header neither changes the decision nor
    // reaches the backend.
    assert_eq!(send(&stack, "post", "/kb/x/comments", Some(&kb), &[]).await, 403);
    assert_eq!(send(&stack, "FOO", "/kb/x/comments", Some(&kb), &[]).await, 200);
    for name in ["X-HTTP-Method-Override", "X-Method-Override", "X-HTTP-Method", "x_http_method_override"] {
        assert_eq!(send(&stack, "GET", "/kb/y/comments", Some(&kb), &[(name, "POST")]).await, 200, "{name}");
        let head = last_request(&seen.lock().unwrap().text(), "GET /kb/y/comments");
        assert!(
            !head.contains("override") && !head.contains("x-http-method"),
            "{name} reached the backend: {head}"
        );
    }
}

#[tokio::test]
async fn a_guest_reaches_a_public_webhook_as_nobody_whatever_it_claims() {
    let (upstream, seen) = recording_upstream(OnUpgrade::SwitchBlindly).await;
    let stack = start(Options { model: model(), upstream: Some(upstream), ..Default::default() }).await;
    let spoof = [
        ("X-Deskgate-User", "admin"),
        ("X-Deskgate-Usergroups", "admins"),
        ("x-deskgate-permissions", "everything"),
        ("X_Deskgate_User", "admin"),
        ("X-Deskgate-Jwt", "forged"),
    ];
    assert_eq!(send(&stack, "POST", "/hooks/email", None, &spoof).await, 200);
    let head = last_request(&seen.lock().unwrap().text(), "POST /hooks/email");
    assert_eq!(header_value(&head, "x-deskgate-usergroups").as_deref(), Some(""), "{head}");
    assert_eq!(header_value(&head, "x-deskgate-permissions").as_deref(), Some(""), "{head}");
    for gone in ["x-deskgate-user:", "x-deskgate-jwt:", "x_deskgate_user", "admin", "forged", "everything"] {
        assert!(!head.contains(gone), "`{gone}` reached the backend: {head}");
    }
    assert_eq!(send(&stack, "post", "/hooks/email", None, &[]).await, 200);
    assert_eq!(send(&stack, "GET", "/static/app.css", None, &[]).await, 200);

    // The webhook is public for POST only, and only at its own path.
    assert_eq!(send(&stack, "GET", "/hooks/email", None, &[]).await, 401);
    assert_eq!(send(&stack, "FOO", "/hooks/email", None, &[]).await, 401);
    for trick in [
        "/hooks/email/../../api/tickets",
        "/hooks/email/%2e%2e/%2e%2e/api/tickets",
        "/hooks/email%2f..%2f..%2fapi/tickets",
    ] {
        let (status, body) = raw_method(&stack, "POST", trick).await;
        assert_eq!(status, 401, "{trick}: {body}");
    }
    // Other spellings of the public path are decided on the normalized path.
    for spelling in
        ["/hooks/%65mail", "/HOOKS/Email", "/hooks//email", "/x/../hooks/email", "/hooks;a=b/email"]
    {
        let (status, body) = raw_method(&stack, "POST", spelling).await;
        assert_eq!(status, 200, "{spelling}: {body}");
    }

    // A signed-in person on a public route is forwarded as themselves.
    let member = signed_in(&stack, "hooks@example.org", &[]).await.session_cookie().unwrap();
    assert_eq!(send(&stack, "POST", "/hooks/email", Some(&member), &[]).await, 200);
    let head = last_request(&seen.lock().unwrap().text(), "POST /hooks/email");
    assert_eq!(header_value(&head, "x-deskgate-usergroups").as_deref(), Some("registered"), "{head}");
    assert!(head.contains("x-deskgate-user:"), "{head}");
}

/// A raw POST with an empty body, for targets a client library would tidy up.
async fn raw_method(stack: &Stack, method: &str, target: &str) -> (u16, String) {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let mut s = tokio::net::TcpStream::connect(stack.addr).await.unwrap();
    let req = format!(
        "{method} {target} HTTP/1.1\r\nHost: {}\r\nAccept: application/json\r\nContent-Length: 0\r\nConnection: close\r\n\r\n",
        stack.addr
    );
    s.write_all(req.as_bytes()).await.unwrap();
    let mut buf = Vec::new();
    s.read_to_end(&mut buf).await.unwrap();
    let text = String::from_utf8_lossy(&buf).into_owned();
    (text.split(' ').nth(1).and_then(|s| s.parse().ok()).unwrap_or(0), text)
}

#[tokio::test]
async fn forward_auth_decides_by_the_forwarded_method() {
    let stack = start(Options {
        server: "trusted_proxies = [\"127.0.0.1\"]\n".into(),
        model: model(),
        ..Default::default()
    })
    .await;
    let kb = signed_in(&stack, "fa@example.org", &["kb_readers"]).await.session_cookie().unwrap();
    let ask = |method: &'static str, uri: &'static str, cookie: Option<String>| {
        let stack = &stack;
        async move {
            let mut headers = vec![
                ("x-forwarded-method", method),
                ("x-forwarded-proto", "https"),
                ("x-forwarded-host", "help.test"),
                ("x-forwarded-uri", uri),
            ];
            let cookie = cookie.map(|c| format!("deskgate_session={c}"));
            if let Some(c) = &cookie {
                headers.push(("cookie", c));
            }
            let client =
                reqwest::Client::builder().redirect(reqwest::redirect::Policy::none()).build().unwrap();
            let mut req = client.get(format!("{}/.deskgate/authz/forward-auth", stack.base));
            for (k, v) in &headers {
                req = req.header(*k, *v);
            }
            let resp = req.send().await.unwrap();
            let groups = resp.headers().get("x-deskgate-usergroups").map(|v| v.to_str().unwrap().to_owned());
            (resp.status().as_u16(), groups)
        }
    };
    assert_eq!(ask("GET", "/kb/x/comments", Some(kb.clone())).await.0, 200);
    assert_eq!(ask("POST", "/kb/x/comments", Some(kb.clone())).await.0, 403);
    assert_eq!(ask("GET", "/kb/x/comments", None).await.0, 401);
    let (status, groups) = ask("POST", "/hooks/email", None).await;
    assert_eq!((status, groups.as_deref()), (200, Some("")));
    assert_eq!(ask("GET", "/hooks/email", None).await.0, 401);
}

#[test]
fn check_lists_public_routes_and_refuses_public_with_a_permission() {
    let dir = TempDir::new();
    let head = "[upstream]\nurl = \"http://127.0.0.1:19760\"\n";
    let good = dir.0.join("good.toml");
    std::fs::write(&good, format!("{head}{}", model())).unwrap();
    let out =
        std::process::Command::new(env!("CARGO_BIN_EXE_deskgate")).arg("check").arg(&good).output().unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "{stdout}");
    assert!(stdout.contains("public routes: /hooks/email (POST), /static\n"), "{stdout}");

    let bad = dir.0.join("bad.toml");
    std::fs::write(
        &bad,
        format!(
            "{head}{}[[rules]]\npath = \"/hooks/sms\"\npermission = \"kb.read\"\npublic = true\n",
            model()
        ),
    )
    .unwrap();
    let line = format!("{head}{}", model()).lines().count() + 4;
    let out =
        std::process::Command::new(env!("CARGO_BIN_EXE_deskgate")).arg("check").arg(&bad).output().unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(!out.status.success(), "{stdout}");
    assert!(stdout.contains(&format!(":{line}:")), "line {line}: {stdout}");
    assert!(stdout.contains("rules[10].public") && stdout.contains("takes no `permission`"), "{stdout}");
}

#[tokio::test]
async fn explain_decides_for_the_method_it_is_given_and_get_otherwise() {
    let stack = start(Options { model: model(), ..Default::default() }).await;
    account(&stack, "ask@example.org", "Ask", "correct horse battery", &["kb_readers"]).await;
    let explain = |extra: &[&str]| {
        let out = std::process::Command::new(env!("CARGO_BIN_EXE_deskgate"))
            .args(["explain", "--config"])
            .arg(&stack.config_path)
            .args(["--account", "ask@example.org", "--path", "/kb/x/comments"])
            .args(extra)
            .output()
            .unwrap();
        (out.status.success(), String::from_utf8_lossy(&out.stdout).into_owned())
    };
    let (ok, text) = explain(&[]);
    assert!(ok, "{text}");
    assert!(text.contains("  Method:     GET\n"), "{text}");
    assert!(text.contains("  Rule:       /kb requires kb.read\n"), "{text}");
    assert!(text.contains("Decision:   allow"), "{text}");
    let (_, text) = explain(&["--method", "post"]);
    assert!(text.contains("  Method:     POST\n"), "{text}");
    assert!(
        text.contains("  Rule:       /kb/*/comments (POST, PUT) requires comments.unmoderated\n"),
        "{text}"
    );
    assert!(text.contains("Decision:   deny — permission-missing"), "{text}");
    let (_, text) = explain(&["--method", "P(ST"]);
    assert!(text.contains("Decision:   invalid") && text.contains("not an HTTP method"), "{text}");
}

#[tokio::test]
async fn the_admin_path_check_takes_a_method() {
    let stack = start(Options { model: model(), ..Default::default() }).await;
    let id = account(&stack, "asked@example.org", "Asked", "correct horse battery", &["kb_readers"]).await;
    let mut admin = signed_in(&stack, "admin@example.org", &["admins"]).await;
    let check = |method: &str| format!("/.deskgate/api/people/{id}?path=/kb/x/comments{method}");
    let json = [("accept", "application/json")];
    let get = admin.get_with(&check(""), &json).await.json();
    assert_eq!(get["path"]["method"], "GET", "{get}");
    assert_eq!(get["path"]["decision"], "allow", "{get}");
    let post = admin.get_with(&check("&method=post"), &json).await.json();
    assert_eq!(post["path"]["method"], "POST", "{post}");
    assert_eq!(post["path"]["decision"], "deny", "{post}");
    assert_eq!(
        post["path"]["rule"],
        serde_json::json!({"path": "/kb/*/comments (POST, PUT)", "permission": "comments.unmoderated", "public": false})
    );
    let page =
        admin.get_with(&format!("/.deskgate/admin/people/{id}?path=/hooks/email&method=POST"), &[]).await;
    assert_eq!(page.status, 200, "{}", page.body);
    assert!(page.body.contains("<code>/hooks/email (POST)</code> is public"), "{}", page.body);
}
