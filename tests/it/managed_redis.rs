//! The Redis session store as a managed Redis is run: TLS only with a password, and a master
//! watched by Sentinel that fails over under load. Every server here is the test's own
//! redis-server child, stopped when the test ends.

use std::path::Path;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use tokio::sync::Mutex;

use crate::postgres_tls::refused_start;
use crate::scale::{browser_at, helpdesk, replica};
use crate::support::{HELPDESK, TempDir};
use crate::tls::Ca;

/// Ports of this module's servers (the range 19620-19649 is this module's).
const TLS_PORT: u16 = 19620;
/// A Sentinel set-up's ports: master, replica, three sentinels.
#[derive(Clone, Copy)]
struct Ports {
    master: u16,
    replica: u16,
    sentinels: [u16; 3],
}

/// The set whose master is killed, and the one whose master freezes.
const KILLED: Ports = Ports { master: 19621, replica: 19622, sentinels: [19623, 19624, 19625] };
const FROZEN: Ports = Ports { master: 19630, replica: 19631, sentinels: [19632, 19633, 19634] };

const PASSWORD: &str = "a password only this Redis knows";

/// A redis-server of the test's own (a server or a sentinel), killed on drop.
struct Server {
    child: tokio::process::Child,
}

impl Server {
    /// Starts `redis-server` with `args` and waits until `port` accepts connections. `None`
    /// (a loud SKIP) where redis-server is not installed, except under `CI=true`, where
    /// that fails the test.
    async fn start(args: &[&str], port: u16, log: &Path) -> Option<Server> {
        let log_file = std::fs::File::create(log).unwrap();
        let spawned = tokio::process::Command::new("redis-server")
            .args(args)
            .stdout(log_file.try_clone().unwrap())
            .stderr(log_file)
            .kill_on_drop(true)
            .spawn();
        let child = match spawned {
            Ok(child) => child,
            Err(e) if std::env::var("CI").as_deref() == Ok("true") => {
                panic!("redis-server cannot start ({e}): CI needs it (apt-get install redis-server)")
            }
            Err(e) => {
                eprintln!("\n*** SKIP: redis-server cannot start ({e}); apt-get install redis-server ***\n");
                return None;
            }
        };
        let mut server = Server { child };
        let began = Instant::now();
        while tokio::net::TcpStream::connect(("127.0.0.1", port)).await.is_err() {
            let exited = server.child.try_wait().unwrap().is_some();
            assert!(
                !exited && began.elapsed() < Duration::from_secs(10),
                "redis-server on {port} did not come up:\n{}",
                std::fs::read_to_string(log).unwrap_or_default()
            );
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        Some(server)
    }

    /// Stops it at once, as a crash would (SIGKILL): nothing is handed over on the way out.
    async fn kill(&mut self) {
        self.child.kill().await.unwrap();
    }

    /// Freezes it (SIGSTOP), as a host cut off from the network looks: connections stay
    /// open and nothing answers. Killed on drop all the same.
    fn freeze(&self) {
        let pid = self.child.id().unwrap().to_string();
        assert!(std::process::Command::new("kill").args(["-STOP", &pid]).status().unwrap().success());
    }
}

/// A gateway config with the session store as `storage` says; `PUBLIC_URL` is left for
/// [`replica`].
async fn config(dir: &Path, storage: &str) -> String {
    std::fs::write(dir.join("secret"), "a shared secret of at least thirty-two bytes").unwrap();
    format!(
        "[server]\npublic_url = \"PUBLIC_URL\"\n[upstream]\nurl = \"{}\"\n[session]\nsecret_file = \"secret\"\n\
         [storage]\naccounts = \"sqlite://accounts.db\"\n{storage}\n{HELPDESK}",
        helpdesk().await
    )
}

#[tokio::test]
async fn redis_over_tls_with_a_password_file_keeps_sessions_and_plain_or_untrusted_connections_fail() {
    let ca = Ca::new();
    let scratch = TempDir::new();
    let file = |name: &str| scratch.0.join(name);
    ca.issue_for("redis test server", &["127.0.0.1"], &file("server.crt"), &file("server.key"));
    std::fs::write(file("ca.pem"), &ca.pem).unwrap();
    let (port, cert, key, ca_file) =
        (TLS_PORT.to_string(), file("server.crt"), file("server.key"), file("ca.pem"));
    let args = [
        "--port",
        "0",
        "--tls-port",
        &port,
        "--bind",
        "127.0.0.1",
        "--save",
        "",
        "--appendonly",
        "no",
        "--tls-cert-file",
        cert.to_str().unwrap(),
        "--tls-key-file",
        key.to_str().unwrap(),
        "--tls-ca-cert-file",
        ca_file.to_str().unwrap(),
        "--tls-auth-clients",
        "no",
        "--requirepass",
        PASSWORD,
        "--dir",
        scratch.0.to_str().unwrap(),
    ];
    let Some(_redis) = Server::start(&args, TLS_PORT, &file("redis.log")).await else { return };

    // Signed up on one browser, signed in on another: the session lives in the TLS Redis.
    let dir = TempDir::new();
    std::fs::write(dir.0.join("ca.pem"), &ca.pem).unwrap();
    std::fs::write(dir.0.join("redis-password"), format!("{PASSWORD}\n")).unwrap();
    let prefix = format!("tls-{:x}:", rand::random::<u32>());
    let storage = format!(
        "sessions = \"rediss://127.0.0.1:{TLS_PORT}\"\nredis_prefix = \"{prefix}\"\nredis_ca_file = \"ca.pem\"\n\
         redis_password_file = \"redis-password\"\nredis_local_cache = \"0s\""
    );
    let text = config(&dir.0, &storage).await;
    let gate = replica(&dir.0, "gate", &text).await;
    let page = browser_at(gate).sign_up("Tee Ellis", "tls@example.org", "long enough password").await;
    assert_eq!(page.status, 303, "{}", page.body);
    let mut again = browser_at(gate);
    let page = again.sign_in("tls@example.org", "long enough password").await;
    assert_eq!(page.status, 303, "{}", page.body);
    assert_eq!(again.whoami().await["headers"]["x-deskgate-email"], "tls@example.org");

    let client = redis::Client::build_with_tls(
        format!("rediss://:{PASSWORD}@127.0.0.1:{TLS_PORT}"),
        redis::TlsCertificates { client_tls: None, root_cert: Some(ca.pem.clone().into_bytes()) },
    )
    .unwrap();
    let mut conn = client.get_multiplexed_async_connection().await.unwrap();
    let sessions: Vec<String> =
        redis::cmd("KEYS").arg(format!("{prefix}session:*")).query_async(&mut conn).await.unwrap();
    assert_eq!(sessions.len(), 2, "both sign-ins' sessions are in the TLS Redis: {sessions:?}");

    // Plain TCP to the TLS port: no session can be read or written, and nobody is signed in.
    let plain = storage.replace("rediss://", "redis://").replace("redis_ca_file = \"ca.pem\"\n", "");
    let plain = config(&dir.0, &plain).await;
    let gate = replica(&dir.0, "plain", &plain).await;
    let mut browser = browser_at(gate);
    let page = browser.sign_in("tls@example.org", "long enough password").await;
    assert_eq!(page.status, 503, "a sign-in over plain TCP to a TLS-only Redis: {}", page.body);
    let mut replay = browser_at(gate);
    replay.cookies = again.cookies.clone();
    let page = replay.get_with("/whoami", &[("accept", "application/json")]).await;
    assert_eq!(page.status, 503, "a session read over plain TCP: {}", page.body);

    // A CA that did not sign the server's certificate stops the start, naming the setting.
    std::fs::write(dir.0.join("ca.pem"), Ca::new().pem).unwrap();
    let stderr = refused_start(&dir.0, &text).await;
    assert!(
        stderr.contains(&format!("the TLS certificate of Redis at rediss://127.0.0.1:{TLS_PORT}")),
        "{stderr}"
    );
    assert!(stderr.contains("is not trusted"), "{stderr}");
    let named = format!("storage.redis_ca_file (`{}`)", dir.0.join("ca.pem").display());
    assert!(stderr.contains(&named), "{stderr}");
    assert!(!stderr.contains(PASSWORD), "{stderr}");
}

/// What one load worker saw.
#[derive(Default)]
struct Tally {
    ok: AtomicUsize,
    unavailable: AtomicUsize,
    /// A guest page, another person's identity, or any other answer.
    wrong: AtomicUsize,
    /// Sign-ins answered with a session.
    signed_in: AtomicUsize,
}

/// The master, replica and sentinels of one Sentinel set-up, each its own process.
struct Sentinels {
    master: Server,
    _replica: Server,
    _sentinels: Vec<Server>,
    _scratch: TempDir,
}

impl Sentinels {
    /// A master, a replica of it, and three sentinels (quorum 2) that call the master down
    /// after `down_after`; returns once every sentinel knows the replica and the others.
    async fn start(ports: Ports, down_after: Duration) -> Option<Sentinels> {
        let scratch = TempDir::new();
        let log = |name: &str| scratch.0.join(format!("{name}.log"));
        // A replica's full sync writes the data to `dir`: the scratch folder, not the
        // working folder.
        let dir = scratch.0.to_str().unwrap().to_owned();
        // No delay before the first full sync (5 s by default): until it is done the replica
        // holds nothing, and a failover would lose every session.
        let base = [
            "--bind",
            "127.0.0.1",
            "--save",
            "",
            "--appendonly",
            "no",
            "--dir",
            &dir,
            "--repl-diskless-sync-delay",
            "0",
        ];
        let master_port = ports.master.to_string();
        let mut args: Vec<&str> = vec!["--port", &master_port];
        args.extend(base);
        let master = Server::start(&args, ports.master, &log("master")).await?;
        let replica_port = ports.replica.to_string();
        let mut args: Vec<&str> = vec!["--port", &replica_port, "--replicaof", "127.0.0.1", &master_port];
        args.extend(base);
        let replica = Server::start(&args, ports.replica, &log("replica")).await?;
        let mut sentinels = Vec::new();
        for port in ports.sentinels {
            // A sentinel rewrites its config file: each has its own.
            let conf = scratch.0.join(format!("sentinel-{port}.conf"));
            std::fs::write(
                &conf,
                format!(
                    "port {port}\nbind 127.0.0.1\ndir {dir}\nsentinel monitor sessions 127.0.0.1 {} 2\n\
                     sentinel down-after-milliseconds sessions {}\nsentinel failover-timeout sessions 10000\n\
                     sentinel parallel-syncs sessions 1\n",
                    ports.master,
                    down_after.as_millis(),
                    dir = scratch.0.display()
                ),
            )
            .unwrap();
            let args = [conf.to_str().unwrap(), "--sentinel"];
            sentinels.push(Server::start(&args, port, &log(&format!("sentinel-{port}"))).await?);
        }
        // The replica must hold the master's data, and the sentinels must know the replica and
        // each other (they meet through the master, with hello messages every 2 s).
        let began = Instant::now();
        loop {
            let client = redis::Client::open(format!("redis://127.0.0.1:{}", ports.replica)).unwrap();
            let mut conn = client.get_multiplexed_async_connection().await.unwrap();
            let info: String = redis::cmd("INFO").arg("replication").query_async(&mut conn).await.unwrap();
            let mut ready = info.contains("master_link_status:up");
            for port in ports.sentinels {
                let info = sentinel_master(port).await;
                ready &= info.get("num-slaves").map(String::as_str) == Some("1")
                    && info.get("num-other-sentinels").map(String::as_str) == Some("2");
            }
            if ready {
                break;
            }
            assert!(began.elapsed() < Duration::from_secs(30), "the sentinels did not find each other");
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        Some(Sentinels { master, _replica: replica, _sentinels: sentinels, _scratch: scratch })
    }
}

/// `SENTINEL MASTER sessions` as a sentinel sees it.
async fn sentinel_master(port: u16) -> std::collections::HashMap<String, String> {
    let client = redis::Client::open(format!("redis://127.0.0.1:{port}")).unwrap();
    let mut conn = client.get_multiplexed_async_connection().await.unwrap();
    redis::cmd("SENTINEL").arg("MASTER").arg("sessions").query_async(&mut conn).await.unwrap()
}

/// The port of the master that the sentinel at `port` names.
async fn master_port(port: u16) -> u16 {
    let client = redis::Client::open(format!("redis://127.0.0.1:{port}")).unwrap();
    let mut conn = client.get_multiplexed_async_connection().await.unwrap();
    let (_, port): (String, u16) = redis::cmd("SENTINEL")
        .arg("GET-MASTER-ADDR-BY-NAME")
        .arg("sessions")
        .query_async(&mut conn)
        .await
        .unwrap();
    port
}

#[tokio::test]
async fn sentinel_failover_under_load_never_shows_a_guest_or_another_identity_and_serves_within_5s() {
    failover_under_load(KILLED, "killed").await;
}

/// A master that stops answering without closing its connections: operations on it time
/// out, and deskgate must ask the sentinels again rather than wait on it for ever.
#[tokio::test]
async fn sentinel_failover_from_a_frozen_master_never_shows_a_guest_and_serves_within_5s() {
    failover_under_load(FROZEN, "frozen").await;
}

/// Signed-in people keep requesting and signing in while the master is `how` ("killed" or
/// "frozen"); no answer may show a guest or another identity, and both kinds of request
/// must be served again within 5 s of the promotion.
async fn failover_under_load(ports: Ports, how: &str) {
    let Some(mut set) = Sentinels::start(ports, Duration::from_millis(1000)).await else { return };
    let dir = TempDir::new();
    let sentinels: Vec<String> = ports.sentinels.iter().map(|p| format!("\"127.0.0.1:{p}\"")).collect();
    let storage = format!(
        "sessions = \"redis://\"\nredis_sentinel_master = \"sessions\"\nredis_sentinels = [{}]\n\
         redis_wait_replicas = 1\nredis_prefix = \"failover:\"\nredis_local_cache = \"0s\"\n\
         [rate_limit]\nper_account_and_address = 1000\nper_address = 1000",
        sentinels.join(", ")
    );
    let gate = replica(&dir.0, "gate", &config(&dir.0, &storage).await).await;

    // People signed in before the failover, each with a session cookie and an identity.
    let mut people = Vec::new();
    for n in 0..4 {
        let email = format!("fail{n}@example.org");
        let mut b = browser_at(gate);
        let page = b.sign_up("Fail Over", &email, "long enough password").await;
        assert_eq!(page.status, 303, "{}", page.body);
        let id = b.whoami().await["headers"]["x-deskgate-user"].as_str().unwrap().to_owned();
        people.push((email, b.session_cookie().unwrap(), id));
    }
    let people = Arc::new(people);
    let tally = Arc::new(Tally::default());
    let stop = Arc::new(AtomicBool::new(false));
    // Sessions made by sign-ins during the run: (cookie, identity), checked again at the end.
    let made = Arc::new(Mutex::new(Vec::new()));
    // When each kind of request last failed and last succeeded.
    let last_ok = Arc::new(std::sync::Mutex::new([None::<Instant>; 2]));

    let client = reqwest::Client::new();
    let mut workers = Vec::new();
    // Six workers reuse the existing sessions; two sign in again and again.
    for w in 0..8 {
        let (people, tally, stop, made, last_ok, client) =
            (people.clone(), tally.clone(), stop.clone(), made.clone(), last_ok.clone(), client.clone());
        workers.push(tokio::spawn(async move {
            let (email, cookie, id) = people[w % people.len()].clone();
            for _ in 0..50_000 {
                if stop.load(Ordering::Relaxed) {
                    break;
                }
                let (kind, cookie, id) = if w < 6 {
                    (0, cookie.clone(), id.clone())
                } else {
                    let mut b = browser_at(gate);
                    let page = b.sign_in(&email, "long enough password").await;
                    match page.status {
                        303 => {}
                        503 => {
                            tally.unavailable.fetch_add(1, Ordering::Relaxed);
                            tokio::time::sleep(Duration::from_millis(10)).await;
                            continue;
                        }
                        other => {
                            tally.wrong.fetch_add(1, Ordering::Relaxed);
                            eprintln!("sign-in answered {other}: {}", page.body);
                            continue;
                        }
                    }
                    tally.signed_in.fetch_add(1, Ordering::Relaxed);
                    let cookie = b.session_cookie().unwrap();
                    made.lock().await.push((cookie.clone(), id.clone()));
                    (1, cookie, id.clone())
                };
                let resp = client
                    .get(format!("http://{gate}/whoami"))
                    .header("cookie", format!("deskgate_session={cookie}"))
                    .header("accept", "application/json")
                    .send()
                    .await
                    .unwrap();
                match resp.status().as_u16() {
                    200 => {
                        let seen: serde_json::Value = resp.json().await.unwrap();
                        if seen["headers"]["x-deskgate-user"].as_str() == Some(id.as_str()) {
                            tally.ok.fetch_add(1, Ordering::Relaxed);
                            last_ok.lock().unwrap()[kind] = Some(Instant::now());
                        } else {
                            tally.wrong.fetch_add(1, Ordering::Relaxed);
                            eprintln!("another identity or a guest: {seen}");
                        }
                    }
                    503 => {
                        tally.unavailable.fetch_add(1, Ordering::Relaxed);
                        tokio::time::sleep(Duration::from_millis(10)).await;
                    }
                    other => {
                        tally.wrong.fetch_add(1, Ordering::Relaxed);
                        eprintln!("answer {other}: {:?}", resp.text().await);
                    }
                }
            }
        }));
    }

    // Load before the failover, then the master dies.
    tokio::time::sleep(Duration::from_secs(2)).await;
    let before = (tally.ok.load(Ordering::Relaxed), tally.signed_in.load(Ordering::Relaxed));
    assert!(before.0 > 50 && before.1 > 2, "load runs: {before:?}");
    match how {
        "killed" => set.master.kill().await,
        _ => set.master.freeze(),
    }
    let killed = Instant::now();

    // The sentinels promote the replica; then both kinds of request must work again.
    let mut promoted = None;
    let mut back = None;
    while back.is_none() && killed.elapsed() < Duration::from_secs(30) {
        tokio::time::sleep(Duration::from_millis(20)).await;
        if promoted.is_none() && master_port(ports.sentinels[0]).await == ports.replica {
            promoted = Some(killed.elapsed());
        }
        if let Some(p) = promoted {
            let seen = *last_ok.lock().unwrap();
            if seen.iter().all(|t| t.is_some_and(|t| t > killed + p)) {
                back = Some(killed.elapsed());
            }
        }
    }
    // A little more load on the new master, then stop.
    tokio::time::sleep(Duration::from_millis(500)).await;
    stop.store(true, Ordering::Relaxed);
    for w in workers {
        w.await.unwrap();
    }

    // Every session a sign-in handed out, before or during the failover, still works.
    let made = made.lock().await.clone();
    let mut lost = 0;
    for (cookie, id) in &made {
        let resp = client
            .get(format!("http://{gate}/whoami"))
            .header("cookie", format!("deskgate_session={cookie}"))
            .header("accept", "application/json")
            .send()
            .await
            .unwrap();
        let seen: serde_json::Value = resp.json().await.unwrap();
        if seen["headers"]["x-deskgate-user"].as_str() != Some(id.as_str()) {
            lost += 1;
        }
    }

    let (ok, unavailable, wrong, signed_in) = (
        tally.ok.load(Ordering::Relaxed),
        tally.unavailable.load(Ordering::Relaxed),
        tally.wrong.load(Ordering::Relaxed),
        tally.signed_in.load(Ordering::Relaxed),
    );
    eprintln!(
        "failover, master {how}: replica promoted {promoted:?} after that, both kinds of request served {back:?} after it; \
         {ok} ok, {unavailable} unavailable (503), {wrong} wrong; {signed_in} sign-ins, {lost} of their sessions lost"
    );
    assert_eq!(wrong, 0, "a response carried a guest or another person's identity");
    let (Some(promoted), Some(back)) = (promoted, back) else {
        panic!("service did not come back: promoted {promoted:?}, back {back:?}")
    };
    assert!(
        back - promoted < Duration::from_secs(5),
        "service came back {:?} after the failover",
        back - promoted
    );
    assert_eq!(lost, 0, "sessions handed out were lost in the failover");
}

/// Ports of the TLS Sentinel set-up.
const TLS_MASTER_PORT: u16 = 19626;
const TLS_REPLICA_PORT: u16 = 19627;
const TLS_SENTINEL_PORT: u16 = 19628;
const SENTINEL_PASSWORD: &str = "the sentinel's own password";
/// An ACL user of the sentinel, which deskgate signs in as (its password differs from
/// `requirepass`, so only the user and its password together are let in).
const SENTINEL_USER: (&str, &str) = ("watcher", "the-watchers-password-7");

/// A client of the test's TLS servers, as `redis-cli --tls` would be.
async fn tls_conn(ca: &Ca, port: u16, password: &str) -> redis::aio::MultiplexedConnection {
    let client = redis::Client::build_with_tls(
        format!("rediss://:{password}@127.0.0.1:{port}"),
        redis::TlsCertificates { client_tls: None, root_cert: Some(ca.pem.clone().into_bytes()) },
    )
    .unwrap();
    client.get_multiplexed_async_connection().await.unwrap()
}

#[tokio::test]
async fn sentinel_over_tls_with_passwords_and_an_acl_user_finds_the_master_and_follows_a_switch_without_a_guest_page()
 {
    let ca = Ca::new();
    let scratch = TempDir::new();
    let file = |name: &str| scratch.0.join(name);
    ca.issue_for("redis test server", &["127.0.0.1"], &file("server.crt"), &file("server.key"));
    std::fs::write(file("ca.pem"), &ca.pem).unwrap();
    let path = |name: &str| file(name).to_str().unwrap().to_owned();
    let (cert, key, ca_file, dir) = (path("server.crt"), path("server.key"), path("ca.pem"), path(""));
    let tls: Vec<String> = [
        "--port",
        "0",
        "--bind",
        "127.0.0.1",
        "--save",
        "",
        "--appendonly",
        "no",
        "--dir",
        &dir,
        "--repl-diskless-sync-delay",
        "0",
        "--tls-cert-file",
        &cert,
        "--tls-key-file",
        &key,
        "--tls-ca-cert-file",
        &ca_file,
        "--tls-auth-clients",
        "no",
        "--tls-replication",
        "yes",
        "--requirepass",
        PASSWORD,
        "--masterauth",
        PASSWORD,
    ]
    .map(String::from)
    .to_vec();
    let start = |port: u16, extra: Vec<String>| {
        let mut args = tls.clone();
        args.extend(["--tls-port".to_owned(), port.to_string()]);
        args.extend(extra);
        let log = file(&format!("{port}.log"));
        async move {
            let args: Vec<&str> = args.iter().map(String::as_str).collect();
            Server::start(&args, port, &log).await
        }
    };
    let Some(_master) = start(TLS_MASTER_PORT, vec![]).await else { return };
    let replica_of = vec!["--replicaof".to_owned(), "127.0.0.1".to_owned(), TLS_MASTER_PORT.to_string()];
    let Some(_replica) = start(TLS_REPLICA_PORT, replica_of).await else { return };
    let conf = file("sentinel.conf");
    std::fs::write(
        &conf,
        format!(
            "port 0\ntls-port {TLS_SENTINEL_PORT}\nbind 127.0.0.1\ndir {dir}\ntls-cert-file {cert}\n\
             tls-key-file {key}\ntls-ca-cert-file {ca_file}\ntls-auth-clients no\ntls-replication yes\n\
             requirepass \"{SENTINEL_PASSWORD}\"\nuser {} on >{} ~* &* +@all\n\
             sentinel monitor sessions 127.0.0.1 {TLS_MASTER_PORT} 1\n\
             sentinel auth-pass sessions \"{PASSWORD}\"\nsentinel down-after-milliseconds sessions 1000\n",
            SENTINEL_USER.0, SENTINEL_USER.1
        ),
    )
    .unwrap();
    let Some(_sentinel) =
        Server::start(&[conf.to_str().unwrap(), "--sentinel"], TLS_SENTINEL_PORT, &file("sentinel.log"))
            .await
    else {
        return;
    };
    let mut sentinel = tls_conn(&ca, TLS_SENTINEL_PORT, SENTINEL_PASSWORD).await;
    let began = Instant::now();
    loop {
        let info: std::collections::HashMap<String, String> =
            redis::cmd("SENTINEL").arg("MASTER").arg("sessions").query_async(&mut sentinel).await.unwrap();
        let mut replica = tls_conn(&ca, TLS_REPLICA_PORT, PASSWORD).await;
        let repl: String = redis::cmd("INFO").arg("replication").query_async(&mut replica).await.unwrap();
        if info.get("num-slaves").map(String::as_str) == Some("1") && repl.contains("master_link_status:up") {
            break;
        }
        assert!(began.elapsed() < Duration::from_secs(30), "the sentinel did not find the replica");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }

    let dir = TempDir::new();
    std::fs::write(dir.0.join("ca.pem"), &ca.pem).unwrap();
    std::fs::write(dir.0.join("redis-password"), PASSWORD).unwrap();
    std::fs::write(dir.0.join("sentinel-password"), format!("{}\n", SENTINEL_USER.1)).unwrap();
    let storage = format!(
        "sessions = \"rediss://\"\nredis_sentinel_master = \"sessions\"\n\
         redis_sentinels = [\"127.0.0.1:{TLS_SENTINEL_PORT}\"]\nredis_ca_file = \"ca.pem\"\n\
         redis_password_file = \"redis-password\"\nredis_sentinel_password_file = \"sentinel-password\"\n\
         redis_sentinel_username = \"{}\"\n\
         redis_wait_replicas = 1\nredis_local_cache = \"0s\"\nredis_prefix = \"tls-sentinel:\"",
        SENTINEL_USER.0
    );
    let gate = replica(&dir.0, "gate", &config(&dir.0, &storage).await).await;
    let mut person = browser_at(gate);
    let page = person.sign_up("Sen Tinel", "sentinel@example.org", "long enough password").await;
    assert_eq!(page.status, 303, "{}", page.body);
    let id = person.whoami().await["headers"]["x-deskgate-user"].as_str().unwrap().to_owned();
    let mut master = tls_conn(&ca, TLS_MASTER_PORT, PASSWORD).await;
    let keys: Vec<String> =
        redis::cmd("KEYS").arg("tls-sentinel:session:*").query_async(&mut master).await.unwrap();
    assert_eq!(keys.len(), 1, "the session is on the master the sentinel named");

    // A switch ordered at the sentinel: the old master becomes a replica (it answers
    // READONLY to writes); deskgate must follow to the new one.
    let _: () =
        redis::cmd("SENTINEL").arg("FAILOVER").arg("sessions").query_async(&mut sentinel).await.unwrap();
    let switched = Instant::now();
    let mut served = None;
    while switched.elapsed() < Duration::from_secs(15) {
        let page = person.get_with("/whoami", &[("accept", "application/json")]).await;
        match page.status {
            200 => {
                let seen = page.json()["headers"]["x-deskgate-user"].clone();
                assert_eq!(
                    seen.as_str(),
                    Some(id.as_str()),
                    "a guest page or another identity: {}",
                    page.body
                );
            }
            503 => {}
            other => panic!("answer {other}: {}", page.body),
        }
        let (_, port): (String, u16) = redis::cmd("SENTINEL")
            .arg("GET-MASTER-ADDR-BY-NAME")
            .arg("sessions")
            .query_async(&mut sentinel)
            .await
            .unwrap();
        if port == TLS_REPLICA_PORT {
            // A sign-in writes: it must reach the new master, not the demoted one.
            let page = browser_at(gate).sign_in("sentinel@example.org", "long enough password").await;
            if page.status == 303 && person.is_signed_in().await {
                served = Some(switched.elapsed());
                break;
            }
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    eprintln!("switch over TLS: sign-ins and the existing session served {served:?} after it was ordered");
    assert!(served.is_some_and(|t| t < Duration::from_secs(10)), "not served after the switch: {served:?}");
}
