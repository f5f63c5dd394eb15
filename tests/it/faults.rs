//! Faults in what deskgate depends on: a database that goes away answers 503 with a clear
//! page, never 500.

use std::sync::{Arc, Mutex};

use tokio::net::{TcpListener, TcpStream};
use tokio::task::AbortHandle;

use crate::scale::{Database, browser_at, helpdesk, replica};
use crate::support::*;

/// A TCP relay in front of a server, that can be cut: the listener closes and every relayed
/// connection is dropped.
struct Relay {
    addr: std::net::SocketAddr,
    target: String,
    tasks: Arc<Mutex<Vec<AbortHandle>>>,
    accept: AbortHandle,
}

impl Relay {
    async fn start(target: String) -> Relay {
        Relay::on(TcpListener::bind("127.0.0.1:0").await.unwrap(), target)
    }

    /// Relays again, on the same address, after a cut.
    async fn resume(&mut self) {
        let listener = TcpListener::bind(self.addr).await.unwrap();
        *self = Relay::on(listener, self.target.clone());
    }

    fn on(listener: TcpListener, target: String) -> Relay {
        let addr = listener.local_addr().unwrap();
        let relayed = target.clone();
        let tasks: Arc<Mutex<Vec<AbortHandle>>> = Arc::default();
        let held = tasks.clone();
        let accept = tokio::spawn(async move {
            while let Ok((mut client, _)) = listener.accept().await {
                let target = relayed.clone();
                let pipe = tokio::spawn(async move {
                    if let Ok(mut server) = TcpStream::connect(&target).await {
                        let _ = tokio::io::copy_bidirectional(&mut client, &mut server).await;
                    }
                });
                held.lock().unwrap().push(pipe.abort_handle());
            }
        })
        .abort_handle();
        Relay { addr, target, tasks, accept }
    }

    fn cut(&self) {
        self.accept.abort();
        for t in self.tasks.lock().unwrap().drain(..) {
            t.abort();
        }
    }
}

#[tokio::test]
async fn sign_up_and_sign_in_answer_503_while_postgresql_is_unreachable() {
    let Some(db) = Database::create().await else { return };
    let (scheme_user, rest) = db.url.split_once('@').unwrap();
    let (server, name) = rest.split_once('/').unwrap();
    let relay = Relay::start(server.to_owned()).await;
    let url = format!("{scheme_user}@{}/{name}", relay.addr);
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
    let text = format!(
        "[server]\npublic_url = \"PUBLIC_URL\"\n[upstream]\nurl = \"{}\"\n[storage]\naccounts = \"sqlite://accounts.db\"\n\
         sessions = \"redis://{}\"\nredis_prefix = \"deskgate-it-{:x}:\"\n{HELPDESK}",
        helpdesk().await,
        relay.addr,
        rand::random::<u64>()
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
