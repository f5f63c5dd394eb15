//! The account store in PostgreSQL over TLS: a real PostgreSQL 15 cluster of the test's own,
//! serving a certificate the test made and refusing plain connections.

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use sqlx::postgres::{PgConnectOptions, PgSslMode};
use sqlx::{ConnectOptions, Connection};

use crate::scale::{browser_at, helpdesk, replica};
use crate::support::{HELPDESK, TempDir};
use crate::tls::{Ca, free_port};

/// Where Debian puts PostgreSQL 15's programs.
const BIN: &str = "/usr/lib/postgresql/15/bin";

/// The role that signs in with a password, and the one that signs in with a certificate;
/// each owns a database of its name.
const PASSWORD_ROLE: &str = "deskgate";
const CERT_ROLE: &str = "deskgate_cert";
const PASSWORD: &str = "a password only this cluster knows";

/// A PostgreSQL cluster in a scratch folder, on 127.0.0.1, stopped and removed on drop.
struct Cluster {
    server: std::process::Child,
    port: u16,
    dir: TempDir,
}

impl Cluster {
    /// Starts a cluster whose certificate `ca` issues for `hosts`. Connections must be TLS
    /// (`hostssl`): the password role authenticates with SCRAM, the certificate role with a
    /// client certificate from `ca`. `None` (a loud SKIP) where PostgreSQL 15 is not installed,
    /// except under `CI=true`, where that fails the test.
    async fn start(ca: &Ca, hosts: &[&str]) -> Option<Cluster> {
        if !Path::new(BIN).join("initdb").exists() {
            if std::env::var("CI").as_deref() == Ok("true") {
                panic!("{BIN}/initdb is missing: CI needs PostgreSQL 15 (apt-get install postgresql)");
            }
            eprintln!("\n*** SKIP: {BIN}/initdb is missing; apt-get install postgresql ***\n");
            return None;
        }
        let dir = TempDir::new();
        let file = |name: &str| dir.0.join(name);
        ca.issue_for("postgres test server", hosts, &file("server.crt"), &file("server.key"));
        std::fs::write(file("client-ca.pem"), &ca.pem).unwrap();
        // No `host` line: a connection without TLS finds no entry and is refused.
        std::fs::write(
            file("pg_hba.conf"),
            format!(
                "local all postgres trust\nhostssl all {PASSWORD_ROLE} 127.0.0.1/32 scram-sha-256\n\
                 hostssl all {CERT_ROLE} 127.0.0.1/32 cert\n"
            ),
        )
        .unwrap();
        use std::os::unix::fs::{MetadataExt, PermissionsExt};
        std::fs::set_permissions(file("server.key"), std::fs::Permissions::from_mode(0o600)).unwrap();
        // initdb and postgres refuse to run as root: they run as the `postgres` user, which
        // must own the folder.
        let root = std::fs::metadata("/proc/self").unwrap().uid() == 0;
        if root {
            run(std::process::Command::new("chown").args(["-R", "postgres:postgres"]).arg(&dir.0));
        }
        let data = file("data");
        run(as_postgres(root, "initdb").arg("-D").arg(&data).args([
            "--username=postgres",
            "--auth=trust",
            "--no-sync",
            "--locale=C",
            "--encoding=UTF8",
        ]));
        let port = free_port();
        let settings = format!(
            "\nlisten_addresses = '127.0.0.1'\nport = {port}\nunix_socket_directories = '{dir}'\n\
             ssl = on\nssl_cert_file = '{dir}/server.crt'\nssl_key_file = '{dir}/server.key'\n\
             ssl_ca_file = '{dir}/client-ca.pem'\nhba_file = '{dir}/pg_hba.conf'\nfsync = off\n",
            dir = dir.0.display()
        );
        let conf = data.join("postgresql.conf");
        let mut text = std::fs::read_to_string(&conf).unwrap();
        text.push_str(&settings);
        std::fs::write(&conf, text).unwrap();
        let log = std::fs::File::create(file("postgres.log")).unwrap();
        // setpriv executes postgres in its own process: the child is the postmaster itself.
        let server = as_postgres(root, "postgres")
            .arg("-D")
            .arg(&data)
            .stdout(log.try_clone().unwrap())
            .stderr(log)
            .spawn()
            .expect("postgres starts");
        let mut cluster = Cluster { server, port, dir };
        let mut admin = cluster.admin("postgres").await;
        for sql in [
            format!("CREATE ROLE {PASSWORD_ROLE} LOGIN PASSWORD '{PASSWORD}'"),
            format!("CREATE DATABASE {PASSWORD_ROLE} OWNER {PASSWORD_ROLE}"),
            format!("CREATE ROLE {CERT_ROLE} LOGIN"),
            format!("CREATE DATABASE {CERT_ROLE} OWNER {CERT_ROLE}"),
        ] {
            sqlx::raw_sql(&sql).execute(&mut admin).await.unwrap();
        }
        admin.close().await.unwrap();
        Some(cluster)
    }

    /// The superuser's connection to `database`, over the Unix socket; waits for the
    /// cluster to accept connections.
    async fn admin(&mut self, database: &str) -> sqlx::PgConnection {
        let options = PgConnectOptions::new_without_pgpass()
            .socket(&self.dir.0)
            .port(self.port)
            .username("postgres")
            .database(database)
            .ssl_mode(PgSslMode::Disable);
        let began = Instant::now();
        loop {
            match options.connect().await {
                Ok(conn) => return conn,
                Err(e) => {
                    let log = std::fs::read_to_string(self.dir.0.join("postgres.log")).unwrap_or_default();
                    let exited = self.server.try_wait().unwrap().is_some();
                    assert!(
                        !exited && began.elapsed() < Duration::from_secs(30),
                        "PostgreSQL did not come up ({e}):\n{log}"
                    );
                    tokio::time::sleep(Duration::from_millis(100)).await;
                }
            }
        }
    }
}

impl Drop for Cluster {
    fn drop(&mut self) {
        // SIGQUIT: immediate shutdown, the postmaster takes its backends with it.
        let _ = std::process::Command::new("kill").arg("-QUIT").arg(self.server.id().to_string()).status();
        let began = Instant::now();
        while matches!(self.server.try_wait(), Ok(None)) {
            if began.elapsed() > Duration::from_secs(10) {
                let _ = self.server.kill();
                let _ = self.server.wait();
                break;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
    }
}

/// A PostgreSQL program, run as the `postgres` user when the test runs as root.
fn as_postgres(root: bool, program: &str) -> std::process::Command {
    let program = PathBuf::from(BIN).join(program);
    if !root {
        return std::process::Command::new(program);
    }
    let mut cmd = std::process::Command::new("setpriv");
    cmd.args(["--reuid=postgres", "--regid=postgres", "--init-groups", "--"]).arg(program);
    cmd
}

fn run(cmd: &mut std::process::Command) {
    let out = cmd.output().unwrap_or_else(|e| panic!("{cmd:?}: {e}"));
    assert!(
        out.status.success(),
        "{cmd:?}: {}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
}

/// A gateway config with its account store in the cluster's database of `role`, over TLS
/// as `storage` says; `PUBLIC_URL` is left for [`replica`].
async fn config(cluster: &Cluster, role: &str, storage: &str) -> String {
    format!(
        "[server]\npublic_url = \"PUBLIC_URL\"\n[upstream]\nurl = \"{}\"\n[storage]\n\
         accounts = \"postgres://{role}@127.0.0.1:{}/{role}\"\n{storage}\n{HELPDESK}",
        helpdesk().await,
        cluster.port
    )
}

/// A gateway on `text` (in `dir`): `email` signs up, then signs in from another browser.
async fn signs_up_and_in(dir: &Path, text: &str, email: &str) {
    let gate = replica(dir, "gate", text).await;
    let page = browser_at(gate).sign_up("Tee Ellis", email, "long enough password").await;
    assert_eq!(page.status, 303, "{}", page.body);
    let mut again = browser_at(gate);
    let page = again.sign_in(email, "long enough password").await;
    assert_eq!(page.status, 303, "{}", page.body);
    assert!(again.is_signed_in().await);
}

#[tokio::test]
async fn postgres_over_verify_full_with_a_password_file_signs_up_and_in_and_plain_connections_are_refused() {
    let ca = Ca::new();
    let Some(mut cluster) = Cluster::start(&ca, &["127.0.0.1"]).await else { return };
    let plain = PgConnectOptions::new_without_pgpass()
        .host("127.0.0.1")
        .port(cluster.port)
        .username(PASSWORD_ROLE)
        .password(PASSWORD)
        .database(PASSWORD_ROLE)
        .ssl_mode(PgSslMode::Disable)
        .connect()
        .await;
    let refused = plain.expect_err("the cluster refuses connections without TLS").to_string();
    assert!(refused.contains("no pg_hba.conf entry"), "{refused}");

    let dir = TempDir::new();
    std::fs::write(dir.0.join("ca.pem"), &ca.pem).unwrap();
    std::fs::write(dir.0.join("pg-password"), format!("{PASSWORD}\n")).unwrap();
    let storage = "postgres_sslmode = \"verify-full\"\npostgres_ca_file = \"ca.pem\"\n\
                   postgres_password_file = \"pg-password\"";
    signs_up_and_in(&dir.0, &config(&cluster, PASSWORD_ROLE, storage).await, "tls@example.org").await;

    let mut admin = cluster.admin(PASSWORD_ROLE).await;
    let stored: i64 = sqlx::query_scalar("SELECT count(*) FROM accounts WHERE email = 'tls@example.org'")
        .fetch_one(&mut admin)
        .await
        .unwrap();
    assert_eq!(stored, 1, "the account is in the cluster");
    let (tls, plain): (i64, i64) = sqlx::query_as(
        "SELECT count(*) FILTER (WHERE s.ssl), count(*) FILTER (WHERE NOT s.ssl) \
         FROM pg_stat_activity a JOIN pg_stat_ssl s USING (pid) WHERE a.usename = $1",
    )
    .bind(PASSWORD_ROLE)
    .fetch_one(&mut admin)
    .await
    .unwrap();
    assert!(tls >= 1 && plain == 0, "deskgate's connections: {tls} over TLS, {plain} plain");
}

/// `deskgate serve` on `config`, which must stop by itself, failing; its standard error.
pub(crate) async fn refused_start(dir: &Path, text: &str) -> String {
    let listen = free_port();
    let path = dir.join("deskgate.toml");
    let text = text.replace("PUBLIC_URL", &format!("http://127.0.0.1:{listen}"));
    std::fs::write(
        &path,
        text.replace("[server]\n", &format!("[server]\nlisten = \"127.0.0.1:{listen}\"\n")),
    )
    .unwrap();
    let serve = tokio::process::Command::new(env!("CARGO_BIN_EXE_deskgate"))
        .args(["serve", "--config"])
        .arg(&path)
        .current_dir(dir)
        .kill_on_drop(true)
        .output();
    let out = tokio::time::timeout(Duration::from_secs(30), serve)
        .await
        .expect("deskgate serve stops by itself")
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr).into_owned();
    assert!(!out.status.success(), "deskgate started: {stderr}");
    stderr
}

#[tokio::test]
async fn postgres_certificate_not_trusted_or_not_naming_the_host_stops_the_start_naming_the_setting() {
    let ca = Ca::new();
    let Some(cluster) = Cluster::start(&ca, &["db.internal"]).await else { return };
    let dir = TempDir::new();
    std::fs::write(dir.0.join("pg-password"), PASSWORD).unwrap();
    let storage = "postgres_sslmode = \"verify-full\"\npostgres_ca_file = \"ca.pem\"\n\
                   postgres_password_file = \"pg-password\"";
    let text = config(&cluster, PASSWORD_ROLE, storage).await;

    // A CA that did not sign the server's certificate.
    std::fs::write(dir.0.join("ca.pem"), Ca::new().pem).unwrap();
    let stderr = refused_start(&dir.0, &text).await;
    let ca_file = dir.0.join("ca.pem");
    assert!(stderr.contains("TLS certificate of PostgreSQL at 127.0.0.1:"), "{stderr}");
    assert!(stderr.contains("is not trusted"), "{stderr}");
    assert!(stderr.contains(&format!("storage.postgres_ca_file (`{}`)", ca_file.display())), "{stderr}");
    assert!(!stderr.contains("timed out"), "{stderr}");

    // The right CA, but the certificate names db.internal, not the address connected to.
    std::fs::write(&ca_file, &ca.pem).unwrap();
    let stderr = refused_start(&dir.0, &text).await;
    assert!(stderr.contains("is not valid for the name `127.0.0.1`"), "{stderr}");
    assert!(stderr.contains("storage.postgres_sslmode = \"verify-full\" checks"), "{stderr}");
    assert!(!stderr.contains(PASSWORD), "{stderr}");
}

#[tokio::test]
async fn postgres_client_certificate_signs_deskgate_in_without_a_password() {
    let ca = Ca::new();
    let Some(cluster) = Cluster::start(&ca, &["127.0.0.1"]).await else { return };
    let dir = TempDir::new();
    std::fs::write(dir.0.join("ca.pem"), &ca.pem).unwrap();
    // `cert` authentication: the certificate's common name is the role.
    ca.issue_for(CERT_ROLE, &[], &dir.0.join("client.pem"), &dir.0.join("client.key"));
    let storage = "postgres_sslmode = \"verify-full\"\npostgres_ca_file = \"ca.pem\"\n\
                   postgres_client_cert_file = \"client.pem\"\npostgres_client_key_file = \"client.key\"";
    signs_up_and_in(&dir.0, &config(&cluster, CERT_ROLE, storage).await, "cert@example.org").await;
}
