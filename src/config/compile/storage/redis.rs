//! The Redis session store's keys beside its URL: TLS files, credentials, Sentinel and the
//! replication acknowledgement of new sessions.

use std::time::Duration;

use deskgate_provider::config::parse_duration;

use super::{Ctx, password_file};
use crate::config::file::StorageFile;
use crate::config::{RedisLink, RedisSentinel, StoreUrl};

#[cfg(test)]
mod tests;

/// The longest `storage.redis_wait_timeout`: every store operation gives up after 1 s.
const WAIT_TIMEOUT_MAX: Duration = Duration::from_millis(500);

/// The keys that apply only to a Redis session store, for the check that they are not set
/// with another one.
pub(super) fn keys_set(f: &StorageFile) -> [(&'static str, bool); 13] {
    [
        ("redis_prefix", f.redis_prefix.is_some()),
        ("redis_local_cache", f.redis_local_cache.is_some()),
        ("redis_ca_file", f.redis_ca_file.is_some()),
        ("redis_client_cert_file", f.redis_client_cert_file.is_some()),
        ("redis_client_key_file", f.redis_client_key_file.is_some()),
        ("redis_username", f.redis_username.is_some()),
        ("redis_password_file", f.redis_password_file.is_some()),
        ("redis_sentinel_master", f.redis_sentinel_master.is_some()),
        ("redis_sentinels", f.redis_sentinels.is_some()),
        ("redis_sentinel_username", f.redis_sentinel_username.is_some()),
        ("redis_sentinel_password_file", f.redis_sentinel_password_file.is_some()),
        ("redis_wait_replicas", f.redis_wait_replicas.is_some()),
        ("redis_wait_timeout", f.redis_wait_timeout.is_some()),
    ]
}

/// Everything but the URL's host that says how to reach Redis at `url`.
pub(super) fn link(cx: &mut Ctx<'_>, url: &StoreUrl, f: &StorageFile) -> RedisLink {
    let tls = url.expose().starts_with("rediss://");
    let sentinel = sentinel(cx, f, url);
    let problem = match &sentinel {
        Some(_) => sentinel_url_problem(url),
        None => url_problem(url),
    };
    if let Some(problem) = problem {
        cx.problem("storage.sessions", problem);
    }
    let ca_file = f.redis_ca_file.as_ref().map(|file| cx.base.join(file));
    if let Some(path) = &ca_file {
        if !tls {
            cx.problem("storage.redis_ca_file", "applies only with a `rediss://` URL in storage.sessions");
        } else if let Err(e) = crate::tls::certificates(path) {
            cx.file_problem("storage.redis_ca_file", &e);
        }
    }
    let client_cert = client_cert(cx, f, tls);
    let (url_user, url_password) = url_credentials(url);
    let username = f.redis_username.clone().filter(|name| {
        if url_user {
            cx.problem("storage.redis_username", "the URL in storage.sessions names a user too: keep one");
        }
        let fine = !name.is_empty() && !name.chars().any(|c| c.is_whitespace() || c.is_control());
        if !fine {
            cx.problem("storage.redis_username", "must be non-empty, without spaces or control characters");
        }
        fine
    });
    let password = f.redis_password_file.as_deref().and_then(|file| {
        if url_password {
            cx.problem(
                "storage.redis_password_file",
                "the URL in storage.sessions holds a password too: keep one",
            );
        }
        password_file(cx, "storage.redis_password_file", file)
    });
    let wait_replicas = f.redis_wait_replicas.unwrap_or(0);
    if wait_replicas > 16 {
        cx.problem("storage.redis_wait_replicas", "at most 16");
    }
    let default_wait = RedisLink::default().wait_timeout;
    let wait_timeout = match f.redis_wait_timeout.as_deref().map(parse_duration) {
        None => default_wait,
        Some(Ok(d)) if !d.is_zero() && d <= WAIT_TIMEOUT_MAX => d,
        Some(Ok(_)) => {
            cx.problem(
                "storage.redis_wait_timeout",
                "between 1ms and 500ms: a sign-in must not wait on a replica for longer",
            );
            default_wait
        }
        Some(Err(e)) => {
            cx.problem("storage.redis_wait_timeout", e);
            default_wait
        }
    };
    if f.redis_wait_timeout.is_some() && wait_replicas == 0 {
        cx.problem("storage.redis_wait_timeout", "applies only when storage.redis_wait_replicas is above 0");
    }
    RedisLink { tls, ca_file, client_cert, username, password, sentinel, wait_replicas, wait_timeout }
}

/// The Sentinel keys: the master's name and the sentinels, both or neither.
fn sentinel(cx: &mut Ctx<'_>, f: &StorageFile, url: &StoreUrl) -> Option<RedisSentinel> {
    const MASTER: &str = "storage.redis_sentinel_master";
    const NODES: &str = "storage.redis_sentinels";
    let (master, nodes) = match (&f.redis_sentinel_master, &f.redis_sentinels) {
        (Some(master), Some(nodes)) => (master, nodes),
        (None, None) => {
            if f.redis_sentinel_password_file.is_some() {
                cx.problem("storage.redis_sentinel_password_file", format!("applies only with {MASTER}"));
            }
            if f.redis_sentinel_username.is_some() {
                cx.problem("storage.redis_sentinel_username", format!("applies only with {MASTER}"));
            }
            return None;
        }
        (Some(_), None) => {
            cx.problem(NODES, format!("set together with {MASTER}: the sentinels that watch it"));
            return None;
        }
        (None, Some(_)) => {
            cx.problem(
                MASTER,
                format!("set together with {NODES}: the name the sentinels know the master by"),
            );
            return None;
        }
    };
    if master.is_empty() || master.chars().any(|c| c.is_whitespace() || c.is_control()) {
        cx.problem(MASTER, "must be non-empty, without spaces or control characters");
    }
    if nodes.is_empty() {
        cx.problem(NODES, "names no sentinel: write `[\"HOST:PORT\", …]`");
    }
    let nodes = nodes
        .iter()
        .enumerate()
        .filter_map(|(i, node)| match host_port(node) {
            Some(address) => Some(address),
            None => {
                cx.problem(format!("{NODES}[{i}]"), format!("`{node}` is not `HOST:PORT`"));
                None
            }
        })
        .collect();
    let username = f.redis_sentinel_username.clone().filter(|name| {
        let fine = !name.is_empty() && !name.chars().any(|c| c.is_whitespace() || c.is_control());
        if !fine {
            cx.problem(
                "storage.redis_sentinel_username",
                "must be non-empty, without spaces or control characters",
            );
        }
        fine
    });
    let password = f
        .redis_sentinel_password_file
        .as_deref()
        .and_then(|file| password_file(cx, "storage.redis_sentinel_password_file", file));
    Some(RedisSentinel { master: master.clone(), nodes, username, password, db: sentinel_db(url.expose()) })
}

/// `HOST:PORT`, or `[IPV6]:PORT`.
fn host_port(text: &str) -> Option<(String, u16)> {
    let (host, port) = text.rsplit_once(':')?;
    let host = match host.strip_prefix('[') {
        Some(inner) => inner.strip_suffix(']')?,
        None if host.contains(':') => return None,
        None => host,
    };
    let port = port.parse::<u16>().ok().filter(|p| *p != 0)?;
    let fine = !host.is_empty() && !host.chars().any(|c| c.is_whitespace() || c.is_control() || c == '/');
    fine.then(|| (host.to_owned(), port))
}

/// Redis's client certificate and key: they go with a `rediss://` URL.
fn client_cert(cx: &mut Ctx<'_>, f: &StorageFile, tls: bool) -> Option<crate::tls::TlsFiles> {
    super::client_cert_pair(
        cx,
        ("storage.redis_client_cert_file", f.redis_client_cert_file.as_deref()),
        ("storage.redis_client_key_file", f.redis_client_key_file.as_deref()),
        (!tls).then(|| "applies only with a `rediss://` URL in storage.sessions".to_owned()),
    )
}

/// Whether the URL names a user, and whether it holds a password.
fn url_credentials(url: &StoreUrl) -> (bool, bool) {
    let rest = url.expose().split_once("://").map_or("", |(_, r)| r);
    let authority = rest.find(['/', '?']).map_or(rest, |i| &rest[..i]);
    match authority.rsplit_once('@') {
        Some((userinfo, _)) => {
            let (user, password) = userinfo.split_once(':').unwrap_or((userinfo, ""));
            (!user.is_empty(), !password.is_empty())
        }
        None => (false, false),
    }
}

/// What is wrong with a Redis URL, if anything; the checks the client would make, with
/// messages that say which part is wrong.
fn url_problem(url: &StoreUrl) -> Option<String> {
    let text = url.expose();
    let rest = text.strip_prefix("redis://").or_else(|| text.strip_prefix("rediss://"))?;
    let scheme = &text[..text.len() - rest.len()];
    let (authority, path) = rest.find(['/', '?']).map_or((rest, ""), |i| rest.split_at(i));
    let hostport = authority.rsplit_once('@').map_or(authority, |(_, h)| h);
    let (host, port) = match hostport.rsplit_once(':') {
        Some((h, p)) if !hostport.ends_with(']') => (h, Some(p)),
        _ => (hostport, None),
    };
    if host.is_empty() {
        return Some(format!("`{url}` names no host: write `{scheme}HOST:PORT[/DB]`"));
    }
    if let Some(p) = port {
        if p.parse::<u16>().map_or(true, |p| p == 0) {
            return Some(format!("`{url}`: `{p}` is not a port"));
        }
    }
    if path.contains('?') || path.contains('#') {
        return Some(format!("`{url}`: a query is not supported: write `{scheme}HOST:PORT[/DB]`"));
    }
    let db = path.trim_start_matches('/');
    if !db.is_empty() && db.parse::<u32>().is_err() {
        return Some(format!("`{url}`: `{db}` is not a database number"));
    }
    redis::Client::open(text).err().map(|e| format!("`{url}` is not a Redis URL: {e}"))
}

/// With Sentinel the sentinels name the master: the URL says only TLS or not, and the
/// database.
fn sentinel_url_problem(url: &StoreUrl) -> Option<String> {
    let text = url.expose();
    let rest = text.strip_prefix("redis://").or_else(|| text.strip_prefix("rediss://"))?;
    let scheme = &text[..text.len() - rest.len()];
    let db = match rest.strip_prefix('/') {
        Some(db) => db,
        None if rest.is_empty() => "",
        None => {
            return Some(format!(
                "`{url}`: with storage.redis_sentinel_master the sentinels name the master: write `{scheme}` \
                 or `{scheme}/DB`, without a host (credentials go in storage.redis_username and \
                 storage.redis_password_file)"
            ));
        }
    };
    (!db.is_empty() && db.parse::<u32>().is_err())
        .then(|| format!("`{url}`: `{db}` is not a database number"))
}

/// The database a Sentinel URL (`redis://`, `rediss:///DB`) names.
fn sentinel_db(url: &str) -> i64 {
    url.split_once("://")
        .and_then(|(_, rest)| rest.strip_prefix('/'))
        .and_then(|db| db.parse().ok())
        .unwrap_or(0)
}
