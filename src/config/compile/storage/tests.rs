//! `[storage]` compiled: store URLs, and the PostgreSQL TLS and password keys.

use std::time::Duration;

use crate::config::{AccountsBackend, Password, PgSslMode, Postgres, SessionsBackend, StoreUrl, load_str};

fn storage(lines: &str) -> Result<crate::config::Storage, Vec<String>> {
    let text = format!("[upstream]\nurl = \"http://127.0.0.1:8081\"\n[storage]\n{lines}\n");
    load_str("t.toml", &text, std::path::Path::new("/srv"))
        .map(|c| c.storage)
        .map_err(|ds| ds.into_iter().map(|d| format!("{}: {}", d.path, d.message)).collect())
}

#[test]
fn shared_stores_compile() {
    let s = storage(
        "accounts = \"postgresql://deskgate:pw@db.internal/deskgate\"\nsessions = \"redis://10.0.0.5:6380/2\"",
    )
    .expect("valid");
    assert_eq!(
        s.accounts,
        AccountsBackend::Postgres(Postgres {
            url: StoreUrl::new("postgresql://deskgate:pw@db.internal/deskgate"),
            ssl_mode: PgSslMode::Prefer,
            ssl_mode_in_url: false,
            ca_file: None,
            client_cert: None,
            password: None,
        })
    );
    assert_eq!(
        s.sessions,
        SessionsBackend::Redis {
            url: StoreUrl::new("redis://10.0.0.5:6380/2"),
            prefix: "deskgate:".into(),
            local_cache: Duration::from_secs(1),
            link: Box::default(),
        }
    );
    let s = storage("sessions = \"redis://[::1]\"\nredis_prefix = \"gw2:\"").expect("valid");
    assert!(matches!(s.sessions, SessionsBackend::Redis { prefix, .. } if prefix == "gw2:"));
}

#[test]
fn malformed_store_urls_are_problems_at_their_keys() {
    for (lines, expected) in [
        ("sessions = \"redis://\"", "storage.sessions: `redis://` names no host"),
        ("sessions = \"redis://h:port\"", "storage.sessions: `redis://h:port`: `port` is not a port"),
        ("sessions = \"redis://h/x\"", "storage.sessions: `redis://h/x`: `x` is not a database number"),
        ("sessions = \"rediss://\"", "storage.sessions: `rediss://` names no host: write `rediss://HOST"),
        ("sessions = \"memcached://h\"", "storage.sessions: `memcached://h` is not `memory`, `redis://"),
        (
            "accounts = \"postgres://h:99999999/d\"",
            "storage.accounts: `postgres://h:99999999/d` is not a PostgreSQL URL",
        ),
        ("accounts = \"mysql://h/d\"", "storage.accounts: `mysql://h/d` is not `sqlite://PATH`"),
        (
            "redis_prefix = \"x:\"",
            "storage.redis_prefix: applies only when storage.sessions is a `redis://` URL",
        ),
        ("sessions = \"redis://h\"\nredis_prefix = \"a b\"", "storage.redis_prefix: must be non-empty"),
    ] {
        let problems = storage(lines).expect_err(lines);
        assert!(problems.iter().any(|p| p.starts_with(expected)), "{lines}: {problems:?}");
    }
}

/// A password in a store URL shows neither in problems nor in the compiled config's Debug.
#[test]
fn store_url_passwords_never_print() {
    let problems = storage("sessions = \"redis://:hunter2@h:bad\"").expect_err("bad port");
    assert!(problems.iter().all(|p| !p.contains("hunter2")), "{problems:?}");
    let s =
        storage("accounts = \"postgres://u:hunter2@h/d?sslmode=prefer&password=hunter2\"").expect("valid");
    let printed = format!("{s:?}");
    assert!(!printed.contains("hunter2"), "{printed}");
    assert!(printed.contains("postgres://u:***@h/d?sslmode=prefer&password=***"), "{printed}");
}

/// A scratch folder for files the keys name, removed when dropped.
pub(super) struct Folder(pub(super) std::path::PathBuf);

impl Folder {
    pub(super) fn new() -> Folder {
        let dir = std::env::temp_dir().join(format!("deskgate-storage-{:016x}", rand::random::<u64>()));
        std::fs::create_dir_all(&dir).expect("scratch folder");
        Folder(dir)
    }

    /// Writes a CA certificate, a client certificate with its key, and `pw` as a password
    /// file with the newline an editor leaves.
    pub(super) fn fill(&self) {
        let key = rcgen::KeyPair::generate().expect("key");
        let cert = rcgen::CertificateParams::new(vec!["deskgate".to_owned()])
            .expect("params")
            .self_signed(&key)
            .expect("certificate");
        std::fs::write(self.0.join("ca.pem"), cert.pem()).expect("ca");
        std::fs::write(self.0.join("client.pem"), cert.pem()).expect("client cert");
        std::fs::write(self.0.join("client.key"), key.serialize_pem()).expect("client key");
        std::fs::write(self.0.join("pw"), "s3cret pw \n").expect("password");
        std::fs::write(self.0.join("empty"), "\n").expect("empty password");
    }

    pub(super) fn storage(&self, lines: &str) -> Result<crate::config::Storage, Vec<String>> {
        let text = format!("[upstream]\nurl = \"http://127.0.0.1:8081\"\n[storage]\n{lines}\n");
        load_str("t.toml", &text, &self.0)
            .map(|c| c.storage)
            .map_err(|ds| ds.into_iter().map(|d| format!("{}: {}", d.path, d.message)).collect())
    }
}

impl Drop for Folder {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

#[test]
fn postgres_tls_and_password_file_compile_relative_to_the_config_and_the_password_never_prints() {
    let dir = Folder::new();
    dir.fill();
    let s = dir
        .storage(
            "accounts = \"postgres://deskgate@db.internal/deskgate\"\npostgres_sslmode = \"verify-full\"\n\
             postgres_ca_file = \"ca.pem\"\npostgres_client_cert_file = \"client.pem\"\n\
             postgres_client_key_file = \"client.key\"\npostgres_password_file = \"pw\"",
        )
        .expect("valid");
    let AccountsBackend::Postgres(pg) = &s.accounts else { panic!("{s:?}") };
    assert_eq!(pg.ssl_mode, PgSslMode::VerifyFull);
    assert_eq!(pg.ca_file.as_deref(), Some(dir.0.join("ca.pem").as_path()));
    assert_eq!(pg.client_cert.as_ref().map(|c| c.key_file.clone()), Some(dir.0.join("client.key")));
    assert_eq!(pg.password, Some(Password("s3cret pw ".into())), "only the final newline is dropped");
    assert_eq!(pg.ssl_mode_setting(), "storage.postgres_sslmode = \"verify-full\"");
    assert!(!format!("{s:?}").contains("s3cret"));

    let s = dir.storage("accounts = \"postgres://h/d?sslmode=require\"").expect("sslmode in the URL");
    let AccountsBackend::Postgres(pg) = &s.accounts else { panic!("{s:?}") };
    assert_eq!(
        (pg.ssl_mode, pg.ssl_mode_setting().as_str()),
        (PgSslMode::Require, "sslmode=require in storage.accounts")
    );
}

#[test]
fn postgres_tls_mistakes_are_problems_at_their_keys() {
    let dir = Folder::new();
    dir.fill();
    let pg = "accounts = \"postgres://u@h/d\"\n";
    for (lines, expected) in [
        (
            format!("{pg}postgres_sslmode = \"verify-ca\""),
            "storage.postgres_sslmode: `verify-ca` is not supported",
        ),
        (
            format!("{pg}postgres_sslmode = \"on\""),
            "storage.postgres_sslmode: `on` is not `disable`, `prefer`",
        ),
        (
            "accounts = \"postgres://u@h/d?sslmode=verify-ca\"".into(),
            "storage.accounts: `verify-ca` is not supported",
        ),
        (
            "accounts = \"postgres://u@h/d?sslmode=require\"\npostgres_sslmode = \"require\"".into(),
            "storage.postgres_sslmode: the URL in storage.accounts sets sslmode too",
        ),
        (
            "accounts = \"postgres://u@h/d?sslmode=verify-full&sslrootcert=ca.pem\"".into(),
            "storage.accounts: `postgres://u@h/d?sslmode=verify-full&sslrootcert=ca.pem`: name the file with storage.postgres_ca_file",
        ),
        (
            format!("{pg}postgres_sslmode = \"require\"\npostgres_ca_file = \"ca.pem\""),
            "storage.postgres_ca_file: applies only with sslmode `verify-full`: under `require`",
        ),
        (
            format!("{pg}postgres_sslmode = \"verify-full\"\npostgres_ca_file = \"missing.pem\""),
            "storage.postgres_ca_file: cannot read",
        ),
        (
            format!("{pg}postgres_sslmode = \"verify-full\"\npostgres_ca_file = \"pw\""),
            "storage.postgres_ca_file: ",
        ),
        (
            format!("{pg}postgres_sslmode = \"require\"\npostgres_client_cert_file = \"client.pem\""),
            "storage.postgres_client_key_file: set together with storage.postgres_client_cert_file",
        ),
        (
            format!(
                "{pg}postgres_client_cert_file = \"client.pem\"\npostgres_client_key_file = \"client.key\""
            ),
            "storage.postgres_client_cert_file: applies only with sslmode `require` or `verify-full`, not `prefer`",
        ),
        (
            format!(
                "{pg}postgres_sslmode = \"require\"\npostgres_client_cert_file = \"client.pem\"\npostgres_client_key_file = \"ca.pem\""
            ),
            "storage.postgres_client_key_file: ",
        ),
        (
            "accounts = \"postgres://u:pw@h/d\"\npostgres_password_file = \"pw\"".into(),
            "storage.postgres_password_file: the URL in storage.accounts holds a password too",
        ),
        (format!("{pg}postgres_password_file = \"missing\""), "storage.postgres_password_file: cannot read "),
        (
            format!("{pg}postgres_password_file = \"empty\""),
            "storage.postgres_password_file: `empty` is empty",
        ),
        (
            "accounts = \"sqlite://a.db\"\npostgres_sslmode = \"require\"".into(),
            "storage.postgres_sslmode: applies only when storage.accounts is a `postgres://` URL",
        ),
    ] {
        let problems = dir.storage(&lines).expect_err(&lines);
        assert!(problems.iter().any(|p| p.starts_with(expected)), "{lines}: {problems:?}");
    }
}
