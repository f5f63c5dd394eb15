//! The metrics listener: counts after known traffic, in a format Prometheus's own checker
//! accepts.

use std::io::Write as _;
use std::process::Stdio;
use std::time::{Duration, Instant};

use crate::scale::browser_at;
use crate::support::{HELPDESK, TempDir};

#[tokio::test]
async fn a_scrape_after_known_traffic_counts_decisions_sign_ins_and_reloads() {
    let dir = TempDir::new();
    let free = || std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
    let (port, metrics) = (free(), free());
    let upstream = crate::scale::helpdesk().await;
    let config = format!(
        "[server]\nlisten = \"127.0.0.1:{port}\"\n[metrics]\nlisten = \"127.0.0.1:{metrics}\"\n\
         [upstream]\nurl = \"{upstream}\"\n[storage]\naccounts = \"sqlite://accounts.db\"\n{HELPDESK}"
    );
    let path = dir.0.join("deskgate.toml");
    std::fs::write(&path, &config).unwrap();
    crate::support::add_account_cli(&dir.0, &path, "mo@example.org", "Mo", "long enough password");
    let addr: std::net::SocketAddr = format!("127.0.0.1:{port}").parse().unwrap();
    let child = crate::support::serve_cli(&dir.0, &path, None, addr).await;

    let mut guest = browser_at(addr);
    for _ in 0..2 {
        assert_eq!(guest.get("/kb").await.status, 200);
    }
    assert_eq!(guest.get("/chat/sales").await.status, 302);
    let mut mo = browser_at(addr);
    assert_eq!(mo.sign_in("mo@example.org", "wrong password").await.status, 401);
    assert_eq!(mo.sign_in("mo@example.org", "long enough password").await.status, 303);
    assert_eq!(mo.get("/chat/support").await.status, 403);
    // A provider name that is not configured never becomes a label.
    let csrf = mo.csrf().await;
    mo.post(
        "/.deskgate/login",
        &[("provider", "made-up"), ("username", "x"), ("password", "y"), ("csrf", &csrf)],
    )
    .await;
    let pid = child.id().unwrap().to_string();
    assert!(std::process::Command::new("kill").args(["-HUP", &pid]).status().unwrap().success());

    let url = format!("http://127.0.0.1:{metrics}/metrics");
    let began = Instant::now();
    let text = loop {
        let text = reqwest::get(&url).await.unwrap().text().await.unwrap();
        if text.contains("deskgate_config_reloads_total{result=\"success\"} 1") {
            break text;
        }
        assert!(began.elapsed() < Duration::from_secs(10), "no reload counted:\n{text}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    };
    for line in [
        "deskgate_requests_total{decision=\"allow\",reason=\"\"} 2",
        "deskgate_requests_total{decision=\"login\",reason=\"\"} 1",
        "deskgate_requests_total{decision=\"deny\",reason=\"permission-missing\"} 1",
        "deskgate_upstream_responses_total{class=\"2xx\"} 2",
        "deskgate_request_duration_seconds_count 2",
        "deskgate_sign_ins_total{provider=\"builtin\",result=\"failure\"} 1",
        "deskgate_sign_ins_total{provider=\"builtin\",result=\"success\"} 1",
        "deskgate_sessions 1",
        "deskgate_build_info{version=\"",
    ] {
        assert!(text.contains(line), "no `{line}` in\n{text}");
    }
    assert!(!text.contains("made-up"), "{text}");
    // Not on the public listener.
    let public = reqwest::get(format!("http://{addr}/metrics")).await.unwrap().text().await.unwrap();
    assert!(!public.contains("deskgate_requests_total"), "{public}");

    match which("promtool") {
        Some(promtool) => {
            let mut check = std::process::Command::new(promtool)
                .args(["check", "metrics"])
                .stdin(Stdio::piped())
                .stdout(Stdio::piped())
                .stderr(Stdio::piped())
                .spawn()
                .unwrap();
            check.stdin.take().unwrap().write_all(text.as_bytes()).unwrap();
            let out = check.wait_with_output().unwrap();
            assert!(
                out.status.success(),
                "promtool check metrics: {}{}",
                String::from_utf8_lossy(&out.stdout),
                String::from_utf8_lossy(&out.stderr)
            );
        }
        None if std::env::var("CI").as_deref() == Ok("true") => {
            panic!("promtool is missing: bash tests/run installs Debian's prometheus package")
        }
        None => eprintln!("\n*** SKIP promtool check: promtool is not installed ***\n"),
    }
    drop(child);
}

fn which(tool: &str) -> Option<std::path::PathBuf> {
    std::env::var_os("PATH")?
        .to_str()?
        .split(':')
        .map(|d| std::path::Path::new(d).join(tool))
        .find(|p| p.is_file())
}
