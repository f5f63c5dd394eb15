//! `[storage]`: where accounts and sessions live, and how deskgate reaches PostgreSQL
//! and Redis (TLS, client certificate, password file; Redis also through Sentinel).

use std::time::Duration;

use deskgate_provider::config::parse_duration;

use super::Ctx;
use crate::config::file::StorageFile;
use crate::config::{AccountsBackend, Password, PgSslMode, Postgres, SessionsBackend, Storage, StoreUrl};

mod redis;
#[cfg(test)]
mod tests;

pub(super) fn storage(cx: &mut Ctx<'_>, f: StorageFile) -> Storage {
    let accounts = match f.accounts.as_deref().unwrap_or("sqlite://deskgate.db") {
        "sqlite::memory:" => AccountsBackend::Sqlite(":memory:".into()),
        url if url.starts_with("postgres://") || url.starts_with("postgresql://") => {
            AccountsBackend::Postgres(postgres(cx, StoreUrl::new(url), &f))
        }
        url => match url.strip_prefix("sqlite://") {
            Some(p) if !p.is_empty() => AccountsBackend::Sqlite(cx.base.join(p)),
            _ => {
                let url = StoreUrl::new(url);
                cx.problem(
                    "storage.accounts",
                    format!("`{url}` is not `sqlite://PATH`, `sqlite::memory:` or `postgres://…`"),
                );
                AccountsBackend::Sqlite(":memory:".into())
            }
        },
    };
    let prefix = f.redis_prefix.clone().unwrap_or_else(|| "deskgate:".into());
    if prefix.is_empty() || prefix.chars().any(|c| c.is_whitespace() || c.is_control()) {
        cx.problem("storage.redis_prefix", "must be non-empty, without spaces or control characters");
    }
    let sessions = match f.sessions.as_deref().unwrap_or("memory") {
        "memory" => SessionsBackend::Memory,
        url if url.starts_with("redis://") || url.starts_with("rediss://") => {
            let url = StoreUrl::new(url);
            let link = redis::link(cx, &url, &f);
            let local_cache = match f.redis_local_cache.as_deref().map(parse_duration) {
                None => Duration::from_secs(1),
                Some(Ok(d)) if d <= Duration::from_secs(60) => d,
                Some(Ok(_)) => {
                    cx.problem(
                        "storage.redis_local_cache",
                        "at most 60s: sign-outs must reach every replica soon",
                    );
                    Duration::from_secs(1)
                }
                Some(Err(e)) => {
                    cx.problem("storage.redis_local_cache", e);
                    Duration::from_secs(1)
                }
            };
            SessionsBackend::Redis { url, prefix, local_cache, link: Box::new(link) }
        }
        other => {
            let other = StoreUrl::new(other);
            cx.problem(
                "storage.sessions",
                format!("`{other}` is not `memory`, `redis://HOST:PORT[/DB]` or `rediss://HOST:PORT[/DB]`"),
            );
            SessionsBackend::Memory
        }
    };
    if !matches!(sessions, SessionsBackend::Redis { .. }) {
        for (key, set) in redis::keys_set(&f) {
            if set {
                cx.problem(
                    format!("storage.{key}"),
                    "applies only when storage.sessions is a `redis://` URL",
                );
            }
        }
    }
    if !matches!(accounts, AccountsBackend::Postgres(_)) {
        for (key, set) in [
            ("postgres_sslmode", f.postgres_sslmode.is_some()),
            ("postgres_ca_file", f.postgres_ca_file.is_some()),
            ("postgres_client_cert_file", f.postgres_client_cert_file.is_some()),
            ("postgres_client_key_file", f.postgres_client_key_file.is_some()),
            ("postgres_password_file", f.postgres_password_file.is_some()),
        ] {
            if set {
                cx.problem(
                    format!("storage.{key}"),
                    "applies only when storage.accounts is a `postgres://` URL",
                );
            }
        }
    }
    Storage { accounts, sessions }
}

/// The account store in PostgreSQL: the URL, checked by the parser that will connect with
/// it, and the TLS and password keys beside it.
fn postgres(cx: &mut Ctx<'_>, url: StoreUrl, f: &StorageFile) -> Postgres {
    use std::str::FromStr;

    if let Err(e) = sqlx::postgres::PgConnectOptions::from_str(url.expose()) {
        cx.problem("storage.accounts", format!("`{url}` is not a PostgreSQL URL: {e}"));
    }
    let mut url_mode = None;
    for (name, value) in query_pairs(url.expose()) {
        let key = match name {
            "sslmode" | "ssl-mode" => {
                url_mode = ssl_mode(cx, "storage.accounts", value);
                continue;
            }
            "sslrootcert" | "ssl-root-cert" | "ssl-ca" => "postgres_ca_file",
            "sslcert" | "ssl-cert" => "postgres_client_cert_file",
            "sslkey" | "ssl-key" => "postgres_client_key_file",
            _ => continue,
        };
        // A path in the URL would be read from the working folder, not this file's.
        cx.problem(
            "storage.accounts",
            format!(
                "`{url}`: name the file with storage.{key} (relative to this file), not `{name}` in the URL"
            ),
        );
    }
    let key_mode = f.postgres_sslmode.as_deref().and_then(|v| ssl_mode(cx, "storage.postgres_sslmode", v));
    if f.postgres_sslmode.is_some() && url_mode.is_some() {
        cx.problem("storage.postgres_sslmode", "the URL in storage.accounts sets sslmode too: keep one");
    }
    let ssl_mode = key_mode.or(url_mode).unwrap_or_default();
    let ca_file = f.postgres_ca_file.as_ref().map(|file| cx.base.join(file));
    if let Some(path) = &ca_file {
        if ssl_mode != PgSslMode::VerifyFull {
            cx.problem(
                "storage.postgres_ca_file",
                format!(
                    "applies only with sslmode `verify-full`: under `{}` the server's certificate is not checked",
                    ssl_mode.as_str()
                ),
            );
        } else if let Err(e) = crate::tls::certificates(path) {
            cx.file_problem("storage.postgres_ca_file", &e);
        }
    }
    let client_cert = client_cert(cx, f, ssl_mode);
    let password = f.postgres_password_file.as_deref().and_then(|file| {
        if url.has_password() {
            cx.problem(
                "storage.postgres_password_file",
                "the URL in storage.accounts holds a password too: keep one",
            );
        }
        password_file(cx, "storage.postgres_password_file", file)
    });
    Postgres {
        url,
        ssl_mode,
        ssl_mode_in_url: key_mode.is_none() && url_mode.is_some(),
        ca_file,
        client_cert,
        password,
    }
}

/// The password in `file` (relative to the config file), written at `key`.
fn password_file(cx: &mut Ctx<'_>, key: &str, file: &str) -> Option<Password> {
    match std::fs::read_to_string(cx.base.join(file)) {
        // Written by `echo` or an editor, the file ends with a newline that is not part of it.
        Ok(text) => {
            let line = text.strip_suffix('\n').map_or(text.as_str(), |t| t.strip_suffix('\r').unwrap_or(t));
            if line.is_empty() {
                cx.problem(key, format!("`{file}` is empty"));
            }
            Some(Password(line.to_owned()))
        }
        Err(e) => {
            cx.unreadable(key, &cx.base.join(file), &e);
            None
        }
    }
}

/// Reads an sslmode written at `key`.
fn ssl_mode(cx: &mut Ctx<'_>, key: &str, value: &str) -> Option<PgSslMode> {
    let parsed = PgSslMode::parse(value);
    match value {
        _ if parsed.is_some() => {}
        // The TLS library trusts the public web CAs beside the CA file: without the name
        // check, anyone holding any publicly trusted certificate could stand in the middle.
        "verify-ca" => cx.problem(
            key,
            "`verify-ca` is not supported: the public web CAs are trusted beside storage.postgres_ca_file, \
             so without the name check any publicly trusted certificate would pass; use `verify-full` \
             with a certificate that names the host",
        ),
        _ => cx.problem(key, format!("`{value}` is not {}", PgSslMode::NAMES)),
    }
    parsed
}

/// PostgreSQL's client certificate and key: they go with a TLS mode.
fn client_cert(cx: &mut Ctx<'_>, f: &StorageFile, ssl_mode: PgSslMode) -> Option<crate::tls::TlsFiles> {
    let misplaced = (!matches!(ssl_mode, PgSslMode::Require | PgSslMode::VerifyFull)).then(|| {
        format!("applies only with sslmode `require` or `verify-full`, not `{}`", ssl_mode.as_str())
    });
    client_cert_pair(
        cx,
        ("storage.postgres_client_cert_file", f.postgres_client_cert_file.as_deref()),
        ("storage.postgres_client_key_file", f.postgres_client_key_file.as_deref()),
        misplaced,
    )
}

/// A client certificate and its key, both or neither, checked as the handshake will use
/// them. `misplaced`: why they do not apply with the rest of the settings, if they do not.
pub(super) fn client_cert_pair(
    cx: &mut Ctx<'_>,
    (cert_key, cert): (&'static str, Option<&str>),
    (key_key, key): (&'static str, Option<&str>),
    misplaced: Option<String>,
) -> Option<crate::tls::TlsFiles> {
    let (cert, key) = match (cert, key) {
        (Some(cert), Some(key)) => (cert, key),
        (None, None) => return None,
        (Some(_), None) => {
            cx.problem(key_key, format!("set together with {cert_key}"));
            return None;
        }
        (None, Some(_)) => {
            cx.problem(cert_key, format!("set together with {key_key}"));
            return None;
        }
    };
    if let Some(why) = misplaced {
        cx.problem(cert_key, why);
    }
    let files = crate::tls::TlsFiles { cert_file: cx.base.join(cert), key_file: cx.base.join(key) };
    match crate::tls::load(&files) {
        Ok(_) => Some(files),
        Err(e) => {
            cx.tls_problem(&files, &e, cert_key, key_key);
            None
        }
    }
}

/// The `key=value` pairs of a URL's query, as written.
fn query_pairs(url: &str) -> impl Iterator<Item = (&str, &str)> {
    let query = url.split_once('?').map_or("", |(_, q)| q);
    let query = query.split_once('#').map_or(query, |(q, _)| q);
    query.split('&').filter(|kv| !kv.is_empty()).map(|kv| kv.split_once('=').unwrap_or((kv, "")))
}
