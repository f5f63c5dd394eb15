//! Faults in what deskgate depends on: a database that goes away answers 503 with a clear
//! page, never 500, and a change it cuts short leaves nothing half-done.

use std::sync::{Arc, Mutex};

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::task::AbortHandle;

use crate::scale::{Database, browser_at, helpdesk, replica};
use crate::support::*;

/// A TCP relay in front of a server, that can be cut: the listener closes and every relayed
/// connection is dropped; or that cuts the one connection that sends chosen bytes.
pub(crate) struct Relay {
    pub(crate) addr: std::net::SocketAddr,
    target: String,
    tasks: Arc<Mutex<Vec<AbortHandle>>>,
    accept: AbortHandle,
    trap: Arc<Mutex<Trap>>,
}

/// Bytes that, the first time a client sends them, cut its connection before the server
/// sees them.
#[derive(Default)]
struct Trap {
    armed: Option<Vec<u8>>,
    sprung: usize,
}

impl Trap {
    /// Whether `chunk`, following what the connection sent before (`seen`), springs it.
    fn springs(&mut self, seen: &mut Vec<u8>, chunk: &[u8]) -> bool {
        let Some(needle) = &self.armed else {
            seen.clear();
            return false;
        };
        seen.extend_from_slice(chunk);
        if seen.windows(needle.len()).any(|w| w == needle.as_slice()) {
            self.armed = None;
            self.sprung += 1;
            return true;
        }
        // Kept: enough to find the bytes when they straddle two reads.
        let keep = needle.len() - 1;
        if seen.len() > keep {
            seen.drain(..seen.len() - keep);
        }
        false
    }
}

impl Relay {
    pub(crate) async fn start(target: String) -> Relay {
        Relay::on(TcpListener::bind("127.0.0.1:0").await.unwrap(), target, Arc::default())
    }

    /// A relay in front of `db`'s server, and the URL of `db` through it, ending in `query`.
    async fn in_front_of(db: &Database, query: &str) -> (Relay, String) {
        let (scheme_user, rest) = db.url.split_once('@').unwrap();
        let (server, name) = rest.split_once('/').unwrap();
        let relay = Relay::start(server.to_owned()).await;
        let url = format!("{scheme_user}@{}/{name}{query}", relay.addr);
        (relay, url)
    }

    /// Relays again, on the same address, after a cut.
    pub(crate) async fn resume(&mut self) {
        let listener = TcpListener::bind(self.addr).await.unwrap();
        *self = Relay::on(listener, self.target.clone(), self.trap.clone());
    }

    fn on(listener: TcpListener, target: String, trap: Arc<Mutex<Trap>>) -> Relay {
        let addr = listener.local_addr().unwrap();
        let relayed = target.clone();
        let tasks: Arc<Mutex<Vec<AbortHandle>>> = Arc::default();
        let held = tasks.clone();
        let armed = trap.clone();
        let accept = tokio::spawn(async move {
            while let Ok((client, _)) = listener.accept().await {
                let pipe = tokio::spawn(pipe(client, relayed.clone(), armed.clone()));
                held.lock().unwrap().push(pipe.abort_handle());
            }
        })
        .abort_handle();
        Relay { addr, target, tasks, accept, trap }
    }

    pub(crate) fn cut(&self) {
        self.accept.abort();
        for t in self.tasks.lock().unwrap().drain(..) {
            t.abort();
        }
    }

    /// Cuts the first connection that sends `bytes` to the server, before they reach it;
    /// the relay goes on relaying.
    fn cut_when_sent(&self, bytes: &[u8]) {
        self.trap.lock().unwrap().armed = Some(bytes.to_vec());
    }

    /// How many connections the trap has cut.
    fn sprung(&self) -> usize {
        self.trap.lock().unwrap().sprung
    }
}

/// Relays one connection both ways until either side closes or the trap springs.
async fn pipe(client: TcpStream, target: String, trap: Arc<Mutex<Trap>>) {
    let Ok(server) = TcpStream::connect(&target).await else { return };
    let (mut from_client, mut to_client) = client.into_split();
    let (mut from_server, mut to_server) = server.into_split();
    let upstream = async {
        let (mut buf, mut seen) = (vec![0u8; 16 * 1024], Vec::new());
        loop {
            let n = match from_client.read(&mut buf).await {
                Ok(0) | Err(_) => break,
                Ok(n) => n,
            };
            if trap.lock().unwrap().springs(&mut seen, &buf[..n]) {
                return true;
            }
            if to_server.write_all(&buf[..n]).await.is_err() {
                break;
            }
        }
        let _ = to_server.shutdown().await;
        false
    };
    let downstream = tokio::io::copy(&mut from_server, &mut to_client);
    tokio::pin!(downstream);
    tokio::select! {
        // Sprung: returning drops both sockets, so both sides see the connection end.
        sprung = upstream => if !sprung {
            let _ = downstream.await;
        },
        _ = &mut downstream => {}
    }
}

#[tokio::test]
async fn sign_up_and_sign_in_answer_503_while_postgresql_is_unreachable() {
    let Some(db) = Database::create().await else { return };
    let (relay, url) = Relay::in_front_of(&db, "").await;
    let dir = TempDir::new();
    let text = format!(
        "[server]\npublic_url = \"PUBLIC_URL\"\n[upstream]\nurl = \"{}\"\n[storage]\naccounts = \"{url}\"\n{HELPDESK}",
        helpdesk().await
    );
    let gate = replica(&dir.0, "gate", &text).await;
    let mut early = browser_at(gate);
    let page = early.sign_up("Early Bird", "early@example.org", "long enough password").await;
    assert_eq!(page.status, 303, "{}", page.body);

    relay.cut();
    let mut late = browser_at(gate);
    let page = late.sign_up("Late Comer", "late@example.org", "long enough password").await;
    assert_eq!(page.status, 503, "{}", page.body);
    assert!(page.body.contains("unavailable"), "{}", page.body);
    let mut again = browser_at(gate);
    let page = again.sign_in("early@example.org", "long enough password").await;
    assert_eq!(page.status, 503, "{}", page.body);
    assert!(page.body.contains("unavailable"), "{}", page.body);
    db.drop_it().await;
}

#[tokio::test]
async fn readyz_answers_503_while_redis_is_out_of_reach_and_200_when_it_is_back() {
    let Some(redis) = peer("DESKGATE_TEST_REDIS") else { return };
    let server = redis.trim_start_matches("redis://").trim_end_matches('/').to_owned();
    let mut relay = Relay::start(server).await;
    let dir = TempDir::new();
    let prefix = RedisPrefix::new(&redis);
    let text = format!(
        "[server]\npublic_url = \"PUBLIC_URL\"\n[upstream]\nurl = \"{}\"\n[storage]\naccounts = \"sqlite://accounts.db\"\n\
         sessions = \"redis://{}\"\nredis_prefix = \"{prefix}\"\n{HELPDESK}",
        helpdesk().await,
        relay.addr,
    );
    let gate = replica(&dir.0, "gate", &text).await;
    let mut probe = browser_at(gate);
    assert_eq!(probe.get("/.deskgate/readyz").await.status, 200);
    assert_eq!(probe.get("/.deskgate/healthz").await.status, 200);

    relay.cut();
    let page = probe.get("/.deskgate/readyz").await;
    assert_eq!(page.status, 503, "{}", page.body);
    assert!(page.body.contains("session store"), "{}", page.body);
    assert_eq!(probe.get("/.deskgate/healthz").await.status, 200, "liveness does not depend on Redis");

    relay.resume().await;
    let began = std::time::Instant::now();
    while probe.get("/.deskgate/readyz").await.status != 200 {
        assert!(
            began.elapsed() < std::time::Duration::from_secs(10),
            "not ready again after Redis came back"
        );
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
}

/// A first sign-in through a provider creates the account together with its link to the
/// provider's identity. PostgreSQL cut off at the link's INSERT must leave no account
/// behind (one without its link could never be signed in to, and would hold the address);
/// the next attempt creates both.
#[tokio::test]
async fn a_first_sign_in_cut_off_at_its_link_leaves_no_account_and_the_next_attempt_succeeds() {
    use deskgate::accounts::{AccountStore, PostgresStore};
    use deskgate::signin::{AccountPolicy, resolve_account};

    let Some(db) = Database::create().await else { return };
    // Plain TCP, so that the relay sees the statements.
    let (relay, url) = Relay::in_front_of(&db, "?sslmode=disable").await;
    let dir = TempDir::new();
    let path = dir.0.join("deskgate.toml");
    let text = format!(
        "[server]\npublic_url = \"http://127.0.0.1:9\"\n[upstream]\nurl = \"http://127.0.0.1:9\"\n\
         [storage]\naccounts = \"{url}\"\n{HELPDESK}"
    );
    std::fs::write(&path, text).unwrap();
    let config = deskgate::config::load_file(&path).unwrap_or_else(|d| panic!("{d:?}"));
    let state = deskgate::Gateway::new(config).await.expect("gateway starts").state();

    let mut identity = deskgate_provider::Identity::new("oidc.corp", "first-subject");
    identity.email = Some("first@example.org".into());
    identity.email_verified = true;
    identity.display_name = Some("First Sign-In".into());
    let policy = AccountPolicy { create_accounts: true, ..Default::default() };

    relay.cut_when_sent(b"INSERT INTO account_links");
    let cut = resolve_account(&state, &identity, &policy).await;
    assert!(cut.is_err(), "the sign-in fails when its connection is cut: {cut:?}");
    assert_eq!(relay.sprung(), 1, "the connection was cut at the link's INSERT");

    // Looked at directly, not through the relay.
    let direct = PostgresStore::open(&db.url).await.expect("open directly");
    assert!(direct.by_email("first@example.org").await.unwrap().is_none(), "no account without its link");
    assert!(direct.by_link("oidc.corp", "first-subject").await.unwrap().is_none());
    let page = direct.list(&Default::default(), 0, 10).await.unwrap();
    assert_eq!(page.total, 0, "nothing was left behind: {:?}", page.accounts);

    let account = resolve_account(&state, &identity, &policy)
        .await
        .expect("the next attempt reaches the database")
        .expect("and creates the account");
    let linked = direct.by_link("oidc.corp", "first-subject").await.unwrap().expect("linked");
    assert_eq!((linked.id, linked.email.as_deref()), (account.id, Some("first@example.org")));
    assert_eq!(direct.list(&Default::default(), 0, 10).await.unwrap().total, 1);
    direct.close().await;
    db.drop_it().await;
}
