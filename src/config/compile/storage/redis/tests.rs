//! `[storage]` compiled for Redis: TLS files, credentials, Sentinel and the wait for replicas.

use std::time::Duration;

use super::super::tests::Folder;
use crate::config::{Password, RedisLink, RedisSentinel, SessionsBackend};

fn link(dir: &Folder, lines: &str) -> RedisLink {
    match dir.storage(lines).unwrap_or_else(|p| panic!("{lines}: {p:?}")).sessions {
        SessionsBackend::Redis { link, .. } => *link,
        other => panic!("{other:?}"),
    }
}

#[test]
fn redis_tls_password_and_sentinel_compile_relative_to_the_config_and_passwords_never_print() {
    let dir = Folder::new();
    dir.fill();
    let l = link(
        &dir,
        "sessions = \"rediss://redis.internal:6380/2\"\nredis_ca_file = \"ca.pem\"\n\
         redis_client_cert_file = \"client.pem\"\nredis_client_key_file = \"client.key\"\n\
         redis_username = \"gate\"\nredis_password_file = \"pw\"",
    );
    assert!(l.tls);
    assert_eq!(l.ca_file.as_deref(), Some(dir.0.join("ca.pem").as_path()));
    assert_eq!(l.client_cert.as_ref().map(|c| c.cert_file.clone()), Some(dir.0.join("client.pem")));
    assert_eq!(l.username.as_deref(), Some("gate"));
    assert_eq!(l.password, Some(Password("s3cret pw ".into())), "only the final newline is dropped");
    assert_eq!((l.sentinel.as_ref(), l.wait_replicas, l.wait_timeout), (None, 0, Duration::from_millis(100)));
    assert!(!format!("{l:?}").contains("s3cret"));

    let l = link(
        &dir,
        "sessions = \"redis:///3\"\nredis_sentinel_master = \"sessions\"\n\
         redis_sentinels = [\"10.0.0.1:26379\", \"[::1]:26380\"]\nredis_sentinel_password_file = \"pw\"\n\
         redis_sentinel_username = \"watcher\"\n\
         redis_wait_replicas = 1\nredis_wait_timeout = \"50ms\"",
    );
    assert_eq!(
        l.sentinel,
        Some(RedisSentinel {
            master: "sessions".into(),
            nodes: vec![("10.0.0.1".into(), 26379), ("::1".into(), 26380)],
            username: Some("watcher".into()),
            password: Some(Password("s3cret pw ".into())),
            db: 3,
        })
    );
    assert!(!l.tls);
    assert_eq!((l.wait_replicas, l.wait_timeout), (1, Duration::from_millis(50)));
    assert!(
        link(&dir, "sessions = \"rediss://\"\nredis_sentinel_master = \"m\"\nredis_sentinels = [\"h:1\"]")
            .tls
    );
}

#[test]
fn redis_tls_and_sentinel_mistakes_are_problems_at_their_keys() {
    let dir = Folder::new();
    dir.fill();
    let tls = "sessions = \"rediss://h\"\n";
    let sentinel = "redis_sentinel_master = \"m\"\nredis_sentinels = [\"h:26379\"]\n";
    for (lines, expected) in [
        (
            "sessions = \"redis://h\"\nredis_ca_file = \"ca.pem\"".to_owned(),
            "storage.redis_ca_file: applies only with a `rediss://` URL",
        ),
        (format!("{tls}redis_ca_file = \"missing.pem\""), "storage.redis_ca_file: cannot read"),
        (format!("{tls}redis_ca_file = \"pw\""), "storage.redis_ca_file: "),
        (
            format!("{tls}redis_client_cert_file = \"client.pem\""),
            "storage.redis_client_key_file: set together with storage.redis_client_cert_file",
        ),
        (
            "sessions = \"redis://h\"\nredis_client_cert_file = \"client.pem\"\nredis_client_key_file = \"client.key\"".into(),
            "storage.redis_client_cert_file: applies only with a `rediss://` URL",
        ),
        (
            format!("{tls}redis_client_cert_file = \"client.pem\"\nredis_client_key_file = \"ca.pem\""),
            "storage.redis_client_key_file: ",
        ),
        (
            "sessions = \"redis://:pw@h\"\nredis_password_file = \"pw\"".into(),
            "storage.redis_password_file: the URL in storage.sessions holds a password too",
        ),
        ("sessions = \"redis://h\"\nredis_password_file = \"empty\"".into(), "storage.redis_password_file: `empty` is empty"),
        ("sessions = \"redis://u@h\"\nredis_username = \"v\"".into(), "storage.redis_username: the URL in storage.sessions names a user too"),
        ("sessions = \"redis://h\"\nredis_username = \"a b\"".into(), "storage.redis_username: must be non-empty"),
        (
            "redis_password_file = \"pw\"".into(),
            "storage.redis_password_file: applies only when storage.sessions is a `redis://` URL",
        ),
        (format!("sessions = \"redis://h:6379\"\n{sentinel}"), "storage.sessions: `redis://h:6379`: with storage.redis_sentinel_master the sentinels name the master"),
        (format!("sessions = \"redis:///x\"\n{sentinel}"), "storage.sessions: `redis:///x`: `x` is not a database number"),
        ("sessions = \"redis://\"\nredis_sentinel_master = \"m\"".into(), "storage.redis_sentinels: set together with storage.redis_sentinel_master"),
        ("sessions = \"redis://h\"\nredis_sentinels = [\"h:1\"]".into(), "storage.redis_sentinel_master: set together with storage.redis_sentinels"),
        ("sessions = \"redis://\"\nredis_sentinel_master = \"m\"\nredis_sentinels = []".into(), "storage.redis_sentinels: names no sentinel"),
        (
            "sessions = \"redis://\"\nredis_sentinel_master = \"m\"\nredis_sentinels = [\"h:1\", \"h\"]".into(),
            "storage.redis_sentinels[1]: `h` is not `HOST:PORT`",
        ),
        (
            "sessions = \"redis://\"\nredis_sentinel_master = \"m\"\nredis_sentinels = [\"::1:26379\"]".into(),
            "storage.redis_sentinels[0]: `::1:26379` is not `HOST:PORT`",
        ),
        ("sessions = \"redis://h\"\nredis_sentinel_password_file = \"pw\"".into(), "storage.redis_sentinel_password_file: applies only with storage.redis_sentinel_master"),
        ("sessions = \"redis://h\"\nredis_sentinel_username = \"w\"".into(), "storage.redis_sentinel_username: applies only with storage.redis_sentinel_master"),
        (format!("sessions = \"redis://\"\n{sentinel}redis_sentinel_username = \"\""), "storage.redis_sentinel_username: must be non-empty"),
        ("sessions = \"redis://h\"\nredis_wait_replicas = 17".into(), "storage.redis_wait_replicas: at most 16"),
        ("sessions = \"redis://h\"\nredis_wait_replicas = 1\nredis_wait_timeout = \"2s\"".into(), "storage.redis_wait_timeout: between 1ms and 500ms"),
        ("sessions = \"redis://h\"\nredis_wait_timeout = \"50ms\"".into(), "storage.redis_wait_timeout: applies only when storage.redis_wait_replicas is above 0"),
    ] {
        let problems = dir.storage(&lines).expect_err(&lines);
        assert!(problems.iter().any(|p| p.starts_with(expected)), "{lines}: {problems:?}");
        assert!(problems.iter().all(|p| !p.contains("s3cret")), "{problems:?}");
    }
}
