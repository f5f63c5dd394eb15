//! Several servers: failover between DCs, refused and silent servers.

use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use deskgate_ldap::Clock;

use super::*;

/// A clock the failover test moves by hand.
#[derive(Debug)]
struct ManualClock {
    start: Instant,
    offset: Mutex<Duration>,
}

impl ManualClock {
    fn advance(&self, by: Duration) {
        *self.offset.lock().expect("clock") += by;
    }
}

impl Clock for ManualClock {
    fn now(&self) -> Instant {
        self.start + *self.offset.lock().expect("clock")
    }
}

async fn samba_script(args: &[&str]) {
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../tests/peers/samba.sh");
    let status =
        tokio::process::Command::new("bash").arg(&script).args(args).status().await.expect("run samba.sh");
    assert!(status.success(), "samba.sh {args:?} failed");
}

/// Starts DC1 again if the failover test stops half-way, so later tests find it.
struct RestartOnDrop {
    name: String,
    ip: String,
    armed: bool,
}

impl Drop for RestartOnDrop {
    fn drop(&mut self) {
        if self.armed {
            let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../tests/peers/samba.sh");
            let _ =
                std::process::Command::new("bash").arg(script).args(["start", &self.name, &self.ip]).status();
        }
    }
}

#[tokio::test]
async fn ad_fails_over_to_the_second_dc_and_returns_to_the_first() {
    let Some(ip1) = peer("DESKGATE_TEST_SAMBA1") else {
        return;
    };
    let Some(ip2) = peer("DESKGATE_TEST_SAMBA2") else {
        return;
    };
    let name1 = std::env::var("DESKGATE_TEST_SAMBA1_NAME").unwrap_or_else(|_| "dc1".into());
    let _exclusive = SAMBA.write().await;
    let (dc1, dc2) = (format!("ldap://{ip1}"), format!("ldap://{ip2}"));
    let clock = Arc::new(ManualClock { start: Instant::now(), offset: Mutex::new(Duration::ZERO) });
    let ldap =
        ad_config(&[dc1.clone(), dc2.clone()]).build_with_clock("corp", clock.clone()).expect("config");

    let first = ldap.sign_in("alice", "Passw0rd-alice").await.expect("both up");
    assert_eq!(first.server, dc1);

    let mut guard = RestartOnDrop { name: name1.clone(), ip: ip1.clone(), armed: true };
    samba_script(&["stop", &name1]).await;
    let failed_over = ldap.sign_in("CORP\\alice", "Passw0rd-alice").await.expect("DC1 down");
    assert_eq!(failed_over.server, dc2);
    assert_eq!(failed_over.identity.subject, first.identity.subject, "same domain, same objectGUID");
    assert!(has_group(&failed_over, VIPS));
    assert_eq!(code(ldap.sign_in("carol", "Passw0rd-carol").await), "account-disabled");

    samba_script(&["start", &name1, &ip1]).await;
    guard.armed = false;
    // DC1 answers again, but it is skipped until retry_after has passed.
    let skipped = ldap.sign_in("alice", "Passw0rd-alice").await.expect("still on DC2");
    assert_eq!(skipped.server, dc2);

    clock.advance(Duration::from_secs(31));
    let back = ldap.sign_in("alice@corp.example.com", "Passw0rd-alice").await.expect("DC1 back");
    assert_eq!(back.server, dc1);
    let again = ldap.sign_in("bob", "Passw0rd-bob").await.expect("stays on DC1");
    assert_eq!(again.server, dc1);
}

#[tokio::test]
async fn refused_and_hanging_servers_are_skipped() {
    let Some(dc1) = samba_url("DESKGATE_TEST_SAMBA1") else {
        return;
    };
    let _shared = SAMBA.read().await;
    // A port nobody listens on refuses at once.
    let closed = {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
        format!("ldap://127.0.0.1:{}", listener.local_addr().expect("addr").port())
    };
    // A server that accepts connections and never answers times out.
    let silent = tokio::net::TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let hang = format!("ldap://127.0.0.1:{}", silent.local_addr().expect("addr").port());
    let held = tokio::spawn(async move {
        let mut open = Vec::new();
        while let Ok((socket, _)) = silent.accept().await {
            open.push(socket);
        }
    });

    let config = LdapConfig { timeout: Some("1s".into()), ..ad_config(&[closed, hang, dc1.clone()]) };
    let ldap = config.build("corp").expect("config");
    let signed = ldap.sign_in("alice", "Passw0rd-alice").await.expect("third server answers");
    assert_eq!(signed.server, dc1);
    // The two bad servers are now skipped: the next sign-in goes straight to DC1.
    let signed = ldap.sign_in("bob", "Passw0rd-bob").await.expect("again");
    assert_eq!(signed.server, dc1);
    held.abort();
}

#[tokio::test]
async fn no_reachable_server_means_unavailable() {
    let closed = {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
        format!("ldap://127.0.0.1:{}", listener.local_addr().expect("addr").port())
    };
    let ldap = ad_config(&[closed]).build("corp").expect("config");
    assert_eq!(code(ldap.sign_in("alice", "Passw0rd-alice").await), "unavailable");
    // Refused input is refused before any network I/O, even with no server reachable.
    assert_eq!(code(ldap.sign_in("alice", "").await), "invalid-credentials");
}
