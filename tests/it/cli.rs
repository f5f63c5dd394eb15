//! The command line: `check` and the one-command demo.

use std::process::Stdio;

use tokio::io::{AsyncBufReadExt, BufReader};

use crate::support::{HELPDESK, TempDir};

#[test]
fn check_reports_every_problem_with_its_line_and_fails() {
    let dir = TempDir::new();
    let path = dir.0.join("bad.toml");
    std::fs::write(
        &path,
        "[server]\nlisten = \"127.0.0.1:8080\"\ncolour = \"blue\"\n\n[upstream]\nurl = \"http://127.0.0.1:8081\"\n\
         timeout = \"ten seconds\"\n\n[usergroups.vips]\npermissions = [\"chat.support\"]\n\n[[assignments]]\n\
         email = \"ann@example.com\"\nusergroups = [\"vips\", \"power_users\"]\n",
    )
    .unwrap();
    let out =
        std::process::Command::new(env!("CARGO_BIN_EXE_deskgate")).arg("check").arg(&path).output().unwrap();
    assert!(!out.status.success());
    let text = String::from_utf8(out.stdout).unwrap();
    let lines: Vec<&str> = text.lines().collect();
    let p = path.display();
    assert_eq!(lines.len(), 3, "{text}");
    assert_eq!(lines[0], format!("{p}:3:1: server.colour: unknown key"));
    assert!(
        lines[1].starts_with(&format!("{p}:7:1: upstream.timeout: `ten seconds` is not a duration")),
        "{text}"
    );
    assert_eq!(
        lines[2],
        format!("{p}:14:23: assignments[0].usergroups[1]: usergroup `power_users` is not defined")
    );
}

#[test]
fn check_names_the_line_of_a_syntax_or_type_error_and_passes_the_shipped_configs() {
    let dir = TempDir::new();
    let syntax = dir.0.join("syntax.toml");
    std::fs::write(&syntax, "[upstream]\nurl = \"http://x\"\n[server\n").unwrap();
    let typed = dir.0.join("typed.toml");
    std::fs::write(&typed, "[upstream]\nurl = \"http://127.0.0.1:1\"\n\n[everyone]\nenabled = \"yes\"\n")
        .unwrap();
    let run = |p: &std::path::Path| {
        let out =
            std::process::Command::new(env!("CARGO_BIN_EXE_deskgate")).arg("check").arg(p).output().unwrap();
        (out.status.success(), String::from_utf8(out.stdout).unwrap())
    };
    let (ok, text) = run(&syntax);
    assert!(!ok);
    assert!(text.starts_with(&format!("{}:3:", syntax.display())), "{text}");
    let (ok, text) = run(&typed);
    assert!(!ok);
    assert!(
        text.starts_with(&format!("{}:5:", typed.display())) && text.contains("everyone.enabled"),
        "{text}"
    );

    let root = env!("CARGO_MANIFEST_DIR");
    for shipped in
        ["config/deskgate.toml", "config/examples/helpdesk.toml", "config/examples/private-helpdesk.toml"]
    {
        let (ok, text) = run(&std::path::Path::new(root).join(shipped));
        assert!(ok, "{shipped}: {text}");
    }
}

/// A config checked away from the machine that holds its secrets: each absent `*_file` or
/// `*_env` secret is one warning line and the check passes (it used to fail, and a provider
/// left out for want of its secret also made "no identity provider is enabled" appear);
/// with `--strict` each is one error. Serving still refuses a config whose secret is absent.
#[test]
fn check_passes_every_example_without_its_secrets_and_strict_names_each_absent_secret_once() {
    let examples = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("config/examples");
    let files: Vec<std::path::PathBuf> = std::fs::read_dir(&examples)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|e| e == "toml"))
        .collect();
    assert!(files.len() >= 6, "{files:?}");
    let check = |strict: bool| {
        let mut cmd = std::process::Command::new(env!("CARGO_BIN_EXE_deskgate"));
        cmd.arg("check");
        if strict {
            cmd.arg("--strict");
        }
        let out = cmd.args(&files).output().unwrap();
        (out.status.success(), String::from_utf8(out.stdout).unwrap())
    };
    let (ok, text) = check(false);
    assert!(ok, "{text}");
    let warnings: Vec<&str> = text.lines().filter(|l| l.contains(": warning: ")).collect();
    for key in [
        "providers.ldap.corp.bind_password_file",
        "providers.oidc.google.client_secret_file",
        "providers.oidc.sso.client_secret_file",
        // Both of a certificate's files, not only the first that cannot be read.
        "server.tls.cert_file",
        "server.tls.key_file",
    ] {
        assert_eq!(warnings.iter().filter(|l| l.contains(key)).count(), 1, "{key} once: {text}");
    }
    assert!(warnings.iter().all(|l| l.ends_with("(an absent secret)")), "{text}");
    assert_eq!(text.lines().filter(|l| l.ends_with(": ok")).count(), files.len(), "{text}");

    let (ok, strict) = check(true);
    assert!(!ok);
    let errors: Vec<&str> =
        strict.lines().filter(|l| !l.ends_with(": ok") && !l.contains(": note: ")).collect();
    assert_eq!(errors.len(), warnings.len(), "each absent secret once, and nothing else: {strict}");

    // Serving needs the secret: refused, naming the key.
    let google = examples.join("google.toml");
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_deskgate"))
        .args(["serve", "--config"])
        .arg(&google)
        .output()
        .unwrap();
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("providers.oidc.google.client_secret_file"));
}

/// Without built-in accounts and without `[registration]`, sign-up is simply off: not the
/// error "sign-up is allowed but built-in accounts are disabled".
#[test]
fn a_config_without_built_in_accounts_or_registration_is_valid_and_offers_no_sign_up() {
    let dir = TempDir::new();
    std::fs::write(dir.0.join("secret"), "deskgate-test-secret\n").unwrap();
    let text = format!(
        "[upstream]\nurl = \"http://127.0.0.1:9\"\n[providers.builtin]\nenabled = false\n\
         [providers.oidc.corp]\nissuer = \"https://sso.example.com\"\nclient_id = \"x\"\nclient_secret_file = \"secret\"\n{HELPDESK}"
    );
    let config = deskgate::config::load_str("c.toml", &text, &dir.0).unwrap_or_else(|d| panic!("{d:?}"));
    assert_eq!(config.registration, deskgate::config::Registration::Disabled);
    let open = text.replace("[providers.builtin]", "[registration]\nmode = \"open\"\n[providers.builtin]");
    let problems = deskgate::config::load_str("c.toml", &open, &dir.0).expect_err("sign-up to nothing");
    assert!(problems.iter().any(|d| d.path == "registration.mode"), "{problems:?}");
}

/// README command 1 is `bash examples/demo.sh` (build libraries, then `cargo run --example
/// demo`); this runs the same example binary (built by `cargo test`) on free ports and
/// follows the URL it prints to the login page.
#[tokio::test]
async fn the_demo_serves_the_login_page_at_the_printed_url() {
    let dir = TempDir::new();
    let free = || std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
    let (gate, up) = (free(), free());
    let shipped =
        std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/config/examples/helpdesk.toml"))
            .unwrap();
    let config = shipped
        .replace("127.0.0.1:8080", &format!("127.0.0.1:{gate}"))
        .replace("127.0.0.1:8081", &format!("127.0.0.1:{up}"));
    let path = dir.0.join("helpdesk.toml");
    std::fs::write(&path, config).unwrap();

    let exe = std::env::current_exe().unwrap();
    let demo = exe.parent().unwrap().parent().unwrap().join("examples").join("demo");
    assert!(demo.exists(), "{} is built by `cargo test`", demo.display());
    let mut child = tokio::process::Command::new(demo)
        .arg(&path)
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .kill_on_drop(true)
        .spawn()
        .unwrap();
    let mut lines = BufReader::new(child.stdout.take().unwrap()).lines();
    let url = loop {
        let line = lines.next_line().await.unwrap().expect("the demo prints its URL");
        if let Some(rest) = line.trim().strip_prefix("sign in or register at ") {
            break rest.split_whitespace().next().unwrap().to_owned();
        }
    };
    assert_eq!(url, format!("http://127.0.0.1:{gate}/.deskgate/login"));
    let page = reqwest::get(&url).await.unwrap();
    assert_eq!(page.status(), 200);
    let body = page.text().await.unwrap();
    assert!(body.contains("Sign in") && body.contains("/.deskgate/register"));
    let portal = reqwest::get(format!("http://127.0.0.1:{gate}/")).await.unwrap().text().await.unwrap();
    assert!(portal.contains("Knowledgebase"), "the example helpdesk answers through deskgate");
    child.kill().await.unwrap();
}

/// `deskgate serve` with several serving threads sharing one listening socket: requests on
/// fresh connections (taken by whichever thread is free) are answered, and a second
/// deskgate on the same address is refused instead of sharing the port.
#[tokio::test]
async fn serve_runs_its_workers_on_one_port_and_a_second_instance_is_refused() {
    let dir = TempDir::new();
    let free = || std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
    let port = free();
    let config = format!(
        "[server]\nlisten = \"127.0.0.1:{port}\"\npublic_url = \"http://127.0.0.1:{port}\"\nworkers = 3\n\
         [upstream]\nurl = \"http://127.0.0.1:9\"\n[storage]\naccounts = \"sqlite://accounts.db\"\n{HELPDESK}"
    );
    let path = dir.0.join("deskgate.toml");
    std::fs::write(&path, config).unwrap();
    let serve = |stderr: Stdio| {
        tokio::process::Command::new(env!("CARGO_BIN_EXE_deskgate"))
            .args(["serve", "--config"])
            .arg(&path)
            .env("RUST_LOG", "info")
            .current_dir(&dir.0)
            .stdout(Stdio::null())
            .stderr(stderr)
            .kill_on_drop(true)
            .spawn()
            .unwrap()
    };
    let mut first = serve(Stdio::null());
    let url = format!("http://127.0.0.1:{port}/.deskgate/login");
    let began = std::time::Instant::now();
    while reqwest::get(&url).await.is_err() {
        assert!(began.elapsed() < std::time::Duration::from_secs(20), "deskgate serve did not come up");
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
    for _ in 0..12 {
        // A client of its own each time: a new connection, to whichever thread gets it.
        let client = reqwest::Client::new();
        assert_eq!(client.get(&url).send().await.unwrap().status(), 200);
    }

    let second = serve(Stdio::piped()).wait_with_output().await.unwrap();
    assert!(!second.status.success(), "a second instance must not share the port");
    let err = String::from_utf8_lossy(&second.stderr);
    assert!(err.contains(&format!("cannot serve on 127.0.0.1:{port}")), "{err}");
    assert_eq!(reqwest::get(&url).await.unwrap().status(), 200, "the first one still serves");
    first.kill().await.unwrap();
}

/// SIGHUP: a valid new file is served from the next request on and the session survives,
/// resolved again under it (an organization added to the file gives its member a usergroup
/// without signing in again); an invalid file is refused, every problem logged with its
/// line, and the running config stays.
#[tokio::test]
async fn sighup_reloads_a_valid_config_keeping_sessions_and_refuses_an_invalid_one() {
    let dir = TempDir::new();
    let port = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
    let upstream = crate::scale::helpdesk().await;
    let config = |extra: &str| {
        format!(
            "[server]\nlisten = \"127.0.0.1:{port}\"\npublic_url = \"http://127.0.0.1:{port}\"\n{extra}\n\
             [upstream]\nurl = \"{upstream}\"\n[storage]\naccounts = \"sqlite://accounts.db\"\n\
             [everyone]\nenabled = false\n[registered]\npermissions = [\"portal.view\"]\n\
             [usergroups.analysts]\nname = \"Analysts\"\npermissions = [\"reports.view\"]\n\
             [[rules]]\npath = \"/\"\npermission = \"portal.view\"\n\
             [[rules]]\npath = \"/reports\"\npermission = \"reports.view\"\n"
        )
    };
    let path = dir.0.join("deskgate.toml");
    std::fs::write(&path, config("")).unwrap();
    crate::support::add_account_cli(&dir.0, &path, "pat@corp.example.com", "Pat", "long enough password");
    let log = dir.0.join("deskgate.log");
    let addr: std::net::SocketAddr = format!("127.0.0.1:{port}").parse().unwrap();
    let mut child = crate::support::serve_cli(&dir.0, &path, Some(&log), addr).await;
    let mut pat = crate::scale::browser_at(addr);
    assert_eq!(pat.sign_in("pat@corp.example.com", "long enough password").await.status, 303);
    let cookie = pat.session_cookie();
    assert_eq!(pat.get("/reports").await.status, 403, "not an analyst yet");

    let hangup = |child: &tokio::process::Child| {
        let pid = child.id().unwrap().to_string();
        assert!(std::process::Command::new("kill").args(["-HUP", &pid]).status().unwrap().success());
    };
    let logged = |text: &str| std::fs::read_to_string(&log).unwrap_or_default().contains(text);
    let wait_for_log = |text: &'static str| {
        let log = log.clone();
        async move {
            let began = std::time::Instant::now();
            while !std::fs::read_to_string(&log).unwrap_or_default().contains(text) {
                assert!(began.elapsed() < std::time::Duration::from_secs(10), "no `{text}` in the log");
                tokio::time::sleep(std::time::Duration::from_millis(50)).await;
            }
        }
    };

    // A valid file: the organization reaches Pat's next request, same session.
    std::fs::write(
        &path,
        config("\n[organizations.corp]\ndomains = [\"corp.example.com\"]\nusergroups = [\"analysts\"]\n"),
    )
    .unwrap();
    hangup(&child);
    wait_for_log("Config reloaded; sessions kept").await;
    assert_ne!(pat.get("/reports").await.status, 403, "an analyst through the new organization");
    assert_eq!(pat.whoami().await["headers"]["x-deskgate-usergroups"], "registered,analysts");
    assert_eq!(pat.session_cookie(), cookie, "the same session, not a new sign-in");

    // An invalid file: refused, each problem logged with its line; the running config stays.
    std::fs::write(&path, config("typo_key = 1\n[organizations.corp]\ndomains = [\"corp.example.com\"]\nusergroups = [\"analyst\"]\n")).unwrap();
    hangup(&child);
    wait_for_log("Config not reloaded: the running config stays").await;
    assert!(logged("server.typo_key") && logged("unknown key"), "the unknown key is named");
    assert!(logged("organizations.corp.usergroups[0]"), "and the undefined usergroup");
    assert_ne!(pat.get("/reports").await.status, 403, "still the last good config");
    assert!(pat.is_signed_in().await);
    child.kill().await.unwrap();
}

/// SIGTERM while a client is stalled in every way a client can be (a request the upstream
/// never answers, a half-sent request head): deskgate lets them run for
/// `server.shutdown_timeout`, then closes them and exits, instead of living for ever.
#[tokio::test]
async fn sigterm_with_stalled_clients_exits_within_the_shutdown_deadline() {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let dir = TempDir::new();
    let stalled = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let upstream = stalled.local_addr().unwrap();
    tokio::spawn(async move {
        let mut held = Vec::new();
        while let Ok((s, _)) = stalled.accept().await {
            held.push(s);
        }
    });
    let port = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
    let config = format!(
        "[server]\nlisten = \"127.0.0.1:{port}\"\nshutdown_timeout = \"1s\"\nheader_read_timeout = \"60s\"\n\
         [upstream]\nurl = \"http://{upstream}\"\ntimeout = \"120s\"\n[storage]\naccounts = \"sqlite://accounts.db\"\n{HELPDESK}"
    );
    let path = dir.0.join("deskgate.toml");
    std::fs::write(&path, config).unwrap();
    let mut child = tokio::process::Command::new(env!("CARGO_BIN_EXE_deskgate"))
        .args(["serve", "--config"])
        .arg(&path)
        .current_dir(&dir.0)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .kill_on_drop(true)
        .spawn()
        .unwrap();
    let addr = format!("127.0.0.1:{port}");
    let began = std::time::Instant::now();
    let mut waiting = loop {
        if let Ok(s) = tokio::net::TcpStream::connect(&addr).await {
            break s;
        }
        assert!(began.elapsed() < std::time::Duration::from_secs(20), "deskgate serve did not come up");
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    };
    waiting.write_all(b"GET /kb HTTP/1.1\r\nHost: x\r\n\r\n").await.unwrap();
    let mut half = tokio::net::TcpStream::connect(&addr).await.unwrap();
    half.write_all(b"GET /kb HT").await.unwrap();
    tokio::time::sleep(std::time::Duration::from_millis(300)).await;

    let pid = child.id().unwrap().to_string();
    assert!(std::process::Command::new("kill").args(["-TERM", &pid]).status().unwrap().success());
    let exited = tokio::time::timeout(std::time::Duration::from_secs(8), child.wait()).await;
    let status = exited.expect("deskgate exits within the deadline").unwrap();
    assert!(status.success(), "{status}");
    // The stalled request was closed, not left hanging.
    let mut rest = Vec::new();
    let _ = tokio::time::timeout(std::time::Duration::from_secs(2), waiting.read_to_end(&mut rest)).await;
}

/// A read-only account database is named, with what is wrong, instead of SQLite's bare
/// "unable to open database file (code 14)".
#[test]
fn a_read_only_account_database_is_named_at_start() {
    use std::os::unix::fs::PermissionsExt;
    let dir = TempDir::new();
    let db = dir.0.join("accounts.db");
    std::fs::write(&db, b"").unwrap();
    std::fs::set_permissions(&db, std::fs::Permissions::from_mode(0o444)).unwrap();
    let config = format!(
        "[server]\nlisten = \"127.0.0.1:0\"\n[upstream]\nurl = \"http://127.0.0.1:9\"\n[storage]\naccounts = \"sqlite://accounts.db\"\n{HELPDESK}"
    );
    let path = dir.0.join("deskgate.toml");
    std::fs::write(&path, config).unwrap();
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_deskgate"))
        .args(["serve", "--config"])
        .arg(&path)
        .current_dir(&dir.0)
        .output()
        .unwrap();
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains(&format!("{} is read-only", db.display())), "{err}");
}

/// `[log] format = "json"`: every line on standard output is one JSON object; with
/// `audit_file`, the audit events (a failed sign-in here) go to that file and not to the
/// standard output.
#[tokio::test]
async fn json_logs_one_object_a_line_and_the_audit_events_in_their_own_file() {
    let dir = TempDir::new();
    let port = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
    let config = format!(
        "[server]\nlisten = \"127.0.0.1:{port}\"\n[log]\nformat = \"json\"\naudit_file = \"audit.log\"\n\
         [upstream]\nurl = \"http://127.0.0.1:9\"\n[storage]\naccounts = \"sqlite://accounts.db\"\n{HELPDESK}"
    );
    let path = dir.0.join("deskgate.toml");
    std::fs::write(&path, config).unwrap();
    let out = dir.0.join("stdout.log");
    let addr: std::net::SocketAddr = format!("127.0.0.1:{port}").parse().unwrap();
    let mut child = crate::support::serve_cli(&dir.0, &path, Some(&out), addr).await;
    let mut b = crate::scale::browser_at(addr);
    assert_eq!(b.sign_in("nobody@example.org", "wrong password").await.status, 401);
    let audit = dir.0.join("audit.log");
    let began = std::time::Instant::now();
    while !std::fs::read_to_string(&audit).unwrap_or_default().contains("Sign-in failed") {
        assert!(began.elapsed() < std::time::Duration::from_secs(10), "no audit line");
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
    child.kill().await.unwrap();
    let audit = std::fs::read_to_string(&audit).unwrap();
    for line in audit.lines() {
        let v: serde_json::Value = serde_json::from_str(line).unwrap_or_else(|e| panic!("{e}: {line}"));
        assert_eq!(v["target"], "deskgate::audit", "{line}");
    }
    let stdout = std::fs::read_to_string(&out).unwrap();
    assert!(stdout.contains("deskgate is listening"), "{stdout}");
    for line in stdout.lines() {
        let v: serde_json::Value = serde_json::from_str(line).unwrap_or_else(|e| panic!("{e}: {line}"));
        assert_ne!(v["target"], "deskgate::audit", "audit events are only in their file: {line}");
    }
}
