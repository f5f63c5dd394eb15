//! Several replicas behind one Redis and one PostgreSQL, and what happens when Redis goes
//! away under load.

use std::net::SocketAddr;
use std::path::Path;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use deskgate::Gateway;
use tokio::net::TcpListener;

use crate::support::*;

/// A fresh PostgreSQL database, dropped at the end of the test.
pub(crate) struct Database {
    admin: String,
    name: String,
    pub url: String,
}

impl Database {
    pub(crate) async fn create() -> Option<Database> {
        let admin = peer("DESKGATE_TEST_POSTGRES")?;
        let name = format!("deskgate_it_{:016x}", rand::random::<u64>());
        let pool = sqlx::PgPool::connect(&admin).await.expect("PostgreSQL answers");
        sqlx::raw_sql(&format!("CREATE DATABASE {name}")).execute(&pool).await.expect("create database");
        pool.close().await;
        let url = match admin.rsplit_once('/') {
            Some((server, _)) => format!("{server}/{name}"),
            None => panic!("DESKGATE_TEST_POSTGRES has no database part"),
        };
        Some(Database { admin, name, url })
    }

    /// Creates a built-in account with a verified address, as an administrator would (open
    /// sign-up verifies nothing, so grants by email would not apply to it).
    pub(crate) async fn verified_account(&self, email: &str, name: &str, password: &str) {
        use deskgate::accounts::{AccountStore, NewAccount, PostgresStore};
        let store = PostgresStore::open(&self.url).await.expect("open the account store");
        store
            .create(NewAccount {
                email: Some(email.into()),
                email_verified: true,
                name: name.into(),
                password_hash: Some(deskgate_builtin::hash_password(password).expect("hash")),
                created_at: 1,
                ..Default::default()
            })
            .await
            .expect("create account");
        store.close().await;
    }

    pub(crate) async fn drop_it(self) {
        if let Ok(pool) = sqlx::PgPool::connect(&self.admin).await {
            let _ = sqlx::raw_sql(&format!("DROP DATABASE IF EXISTS {} WITH (FORCE)", self.name))
                .execute(&pool)
                .await;
        }
    }
}

/// Starts one replica on `config_text` (written into `dir`); returns its address.
pub(crate) async fn replica(dir: &Path, name: &str, config_text: &str) -> SocketAddr {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let path = dir.join(format!("{name}.toml"));
    std::fs::write(&path, config_text.replace("PUBLIC_URL", &format!("http://{addr}"))).unwrap();
    let config = deskgate::config::load_file(&path).unwrap_or_else(|d| panic!("{d:?}"));
    let gateway = Gateway::new(config).await.expect("replica starts");
    tokio::spawn(gateway.serve_until(listener, std::future::pending()));
    addr
}

pub(crate) async fn helpdesk() -> String {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    // The JWT is not what these tests look at; the helpdesk reports headers as received.
    tokio::spawn(deskgate_helpdesk::serve(
        listener,
        deskgate_helpdesk::Settings::new("http://127.0.0.1:9/jwks"),
    ));
    format!("http://{addr}")
}

fn shared_config(upstream: &str, redis: &str, prefix: &str, accounts: &str, dir: &Path) -> String {
    std::fs::write(dir.join("jwt.pem"), deskgate::jwt::generate_pem().unwrap()).unwrap();
    std::fs::write(dir.join("secret"), "a shared secret of at least thirty-two bytes").unwrap();
    format!(
        "[server]\npublic_url = \"PUBLIC_URL\"\n[upstream]\nurl = \"{upstream}\"\n\
         [session]\nsecret_file = \"secret\"\n[jwt]\nkey_file = \"jwt.pem\"\n\
         [storage]\naccounts = \"{accounts}\"\nsessions = \"{redis}\"\nredis_prefix = \"{prefix}\"\n{HELPDESK}"
    )
}

pub(crate) fn browser_at(addr: SocketAddr) -> Browser {
    let client = reqwest::Client::builder().redirect(reqwest::redirect::Policy::none()).build().unwrap();
    Browser { base: format!("http://{addr}"), client, cookies: Default::default() }
}

#[tokio::test]
async fn replicas_share_sessions_and_logout_on_one_ends_the_session_on_the_other() {
    let Some(redis) = peer("DESKGATE_TEST_REDIS") else { return };
    let Some(db) = Database::create().await else { return };
    let dir = TempDir::new();
    let prefix = RedisPrefix::new(&redis);
    let text = shared_config(&helpdesk().await, &redis, &prefix.to_string(), &db.url, &dir.0);
    let a = replica(&dir.0, "a", &text).await;
    let b = replica(&dir.0, "b", &text).await;

    // Sign up on A (the account lands in PostgreSQL), then use the session on B.
    let mut on_a = browser_at(a);
    let page = on_a.sign_up("Rep Lica", "replica@example.org", "long enough password").await;
    assert_eq!(page.status, 303, "{}", page.body);
    let mut on_b = browser_at(b);
    on_b.cookies = on_a.cookies.clone();
    let seen = on_b.whoami().await;
    assert_eq!(seen["headers"]["x-deskgate-email"], "replica@example.org", "B knows A's session");

    // Sign out on B: B refuses the cookie at once, and A within its local cache window
    // (`storage.redis_local_cache`, 1 s by default).
    let out = on_b.sign_out().await;
    assert_eq!(out.status, 303);
    let logged_out = Instant::now();
    let mut replay = browser_at(b);
    replay.cookies = on_a.cookies.clone();
    assert!(!replay.is_signed_in().await, "B itself refuses the cookie at once");
    while on_a.is_signed_in().await {
        assert!(
            logged_out.elapsed() < Duration::from_millis(1500),
            "A still accepts the cookie after the window"
        );
        tokio::time::sleep(Duration::from_millis(25)).await;
    }

    // The account itself is shared: signing in on B works with the password set on A.
    let mut again = browser_at(b);
    assert_eq!(again.sign_in("replica@example.org", "long enough password").await.status, 303);
    db.drop_it().await;
}

/// A Redis of the test's own that keeps its data on disk, so it can be stopped and started.
struct OwnRedis {
    port: u16,
    dir: TempDir,
    child: Option<tokio::process::Child>,
}

impl OwnRedis {
    async fn start(port: u16, dir: TempDir) -> OwnRedis {
        let child = tokio::process::Command::new("redis-server")
            .args(["--port", &port.to_string(), "--bind", "127.0.0.1", "--appendonly", "yes", "--save", ""])
            .arg("--dir")
            .arg(&dir.0)
            .stdout(std::process::Stdio::null())
            .kill_on_drop(true)
            .spawn()
            .expect("redis-server runs");
        for _ in 0..100 {
            if tokio::net::TcpStream::connect(("127.0.0.1", port)).await.is_ok() {
                break;
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        OwnRedis { port, dir, child: Some(child) }
    }

    /// Stops it after writing its data to disk.
    async fn stop(mut self) -> (u16, TempDir) {
        let _ = tokio::process::Command::new("redis-cli")
            .args(["-p", &self.port.to_string(), "shutdown"])
            .output()
            .await;
        if let Some(mut c) = self.child.take() {
            let _ = c.wait().await;
        }
        (self.port, self.dir)
    }
}

#[tokio::test]
async fn redis_outage_under_load_never_shows_a_guest_or_another_identity_and_heals_without_restart() {
    if peer("DESKGATE_TEST_REDIS").is_none() {
        return;
    }
    let port = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
    let redis = OwnRedis::start(port, TempDir::new()).await;
    let dir = TempDir::new();
    let text = shared_config(
        &helpdesk().await,
        &format!("redis://127.0.0.1:{port}"),
        "outage:",
        "sqlite://accounts.db",
        &dir.0,
    );
    let gate = replica(&dir.0, "gate", &text).await;

    let mut people = Vec::new();
    for n in 0..2 {
        let mut b = browser_at(gate);
        assert_eq!(
            b.sign_up("Load", &format!("load{n}@example.org"), "long enough password").await.status,
            303
        );
        let id = b.whoami().await["headers"]["x-deskgate-user"].as_str().unwrap().to_owned();
        people.push((b.session_cookie().unwrap(), id));
    }
    let people = Arc::new(people);

    // Load: 8 workers, each with one person's cookie, until told to stop (bounded below).
    let stop = Arc::new(AtomicBool::new(false));
    let (ok, unavailable, wrong) =
        (Arc::new(AtomicUsize::new(0)), Arc::new(AtomicUsize::new(0)), Arc::new(AtomicUsize::new(0)));
    let client = reqwest::Client::new();
    let mut workers = Vec::new();
    for w in 0..8 {
        let (people, stop, ok, unavailable, wrong, client) =
            (people.clone(), stop.clone(), ok.clone(), unavailable.clone(), wrong.clone(), client.clone());
        workers.push(tokio::spawn(async move {
            let (cookie, id) = &people[w % 2];
            for _ in 0..20_000 {
                if stop.load(Ordering::Relaxed) {
                    break;
                }
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
                        if seen["headers"]["x-deskgate-user"].as_str() == Some(id) {
                            ok.fetch_add(1, Ordering::Relaxed);
                        } else {
                            wrong.fetch_add(1, Ordering::Relaxed);
                        }
                    }
                    503 => {
                        unavailable.fetch_add(1, Ordering::Relaxed);
                    }
                    _ => {
                        wrong.fetch_add(1, Ordering::Relaxed);
                    }
                }
            }
        }));
    }
    let wait_for = |counter: Arc<AtomicUsize>, more: usize| async move {
        let target = counter.load(Ordering::Relaxed) + more;
        let deadline = Instant::now() + Duration::from_secs(30);
        while counter.load(Ordering::Relaxed) < target && Instant::now() < deadline {
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        counter.load(Ordering::Relaxed) >= target
    };
    assert!(wait_for(ok.clone(), 200).await, "load runs");
    let (port, data) = redis.stop().await;
    assert!(wait_for(unavailable.clone(), 50).await, "protected requests answer 503 while Redis is down");

    let restarted = OwnRedis::start(port, data).await;
    let back = Instant::now();
    let healed = wait_for(ok.clone(), 50).await;
    let took = back.elapsed();
    stop.store(true, Ordering::Relaxed);
    for w in workers {
        w.await.unwrap();
    }
    assert_eq!(wrong.load(Ordering::Relaxed), 0, "a response carried a guest or another person's identity");
    assert!(healed, "the same cookies work again after Redis returns");
    assert!(took < Duration::from_secs(2), "sessions came back {took:?} after Redis did, without a restart");
    drop(restarted);
}
