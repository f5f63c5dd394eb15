//! The connection under the Redis store: one server, plain or TLS, or the master that
//! Sentinel names, found again when it moves.
//!
//! With Sentinel, a failed connection or a `READONLY` answer (the server was demoted to a
//! replica) makes the next operation ask the sentinels for the master again; one
//! operation asks at a time, and the others then use what it found.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use redis::aio::{ConnectionLike, ConnectionManager, ConnectionManagerConfig, MultiplexedConnection};
use redis::sentinel::{SentinelClient, SentinelClientBuilder, SentinelServerType};
use redis::{
    AsyncConnectionConfig, Client, ClientTlsConfig, Cmd, ConnectionAddr, ErrorKind, IntoConnectionInfo,
    Pipeline, RedisError, RedisFuture, RedisResult, ServerErrorKind, TlsCertificates, TlsMode, Value,
};
use tokio_rustls::rustls;

use crate::config::RedisLink;

/// Why the connection could not be set up, or why Redis's certificate was refused.
#[derive(Debug, thiserror::Error)]
pub enum LinkError {
    /// A file the config names could not be read.
    #[error("cannot read {key} (`{}`)", path.display())]
    Read {
        key: &'static str,
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    /// The client refused the settings.
    #[error("cannot set up the Redis client")]
    Client(#[source] RedisError),
    /// The server's certificate is signed by no trusted CA.
    #[error("the TLS certificate of {at} is not trusted: {advice}")]
    Untrusted {
        at: String,
        advice: String,
        #[source]
        source: rustls::Error,
    },
    /// The server's certificate does not name the host connected to.
    #[error(
        "the TLS certificate of {at} is not valid for the name deskgate connected to: connect by a name \
         the certificate holds, or give the server a certificate for that name"
    )]
    NameMismatch {
        at: String,
        #[source]
        source: rustls::Error,
    },
    /// Another certificate problem.
    #[error("the TLS certificate of {at} is refused")]
    Certificate {
        at: String,
        #[source]
        source: rustls::Error,
    },
}

/// One connection, whichever kind: the store's commands run on either.
pub(super) enum Conn {
    Direct(ConnectionManager),
    Master(MultiplexedConnection),
}

impl ConnectionLike for Conn {
    fn req_packed_command<'a>(&'a mut self, cmd: &'a Cmd) -> RedisFuture<'a, Value> {
        match self {
            Conn::Direct(c) => c.req_packed_command(cmd),
            Conn::Master(c) => c.req_packed_command(cmd),
        }
    }

    fn req_packed_commands<'a>(
        &'a mut self,
        cmd: &'a Pipeline,
        offset: usize,
        count: usize,
    ) -> RedisFuture<'a, Vec<Value>> {
        match self {
            Conn::Direct(c) => c.req_packed_commands(cmd, offset, count),
            Conn::Master(c) => c.req_packed_commands(cmd, offset, count),
        }
    }

    fn get_db(&self) -> i64 {
        match self {
            Conn::Direct(c) => c.get_db(),
            Conn::Master(c) => c.get_db(),
        }
    }
}

/// How the store reaches Redis.
#[derive(Clone)]
pub(super) enum Link {
    /// One server; the manager reconnects to it after a failure.
    Direct(ConnectionManager),
    /// The master that the sentinels name.
    Sentinel(Arc<SentinelLink>),
}

/// The master found through Sentinel, and the means to find it again.
pub(super) struct SentinelLink {
    /// Asks the sentinels; locked while one operation does.
    sentinels: tokio::sync::Mutex<SentinelClient>,
    /// The master's connection, numbered so that an operation that saw it fail can tell
    /// whether another has replaced it since.
    current: std::sync::RwLock<Option<(u64, MultiplexedConnection)>>,
    found: AtomicU64,
    config: AsyncConnectionConfig,
    /// The master's name, for messages.
    master: String,
}

impl Link {
    /// A link to `url` as `link` says. Connects on first use.
    pub(super) fn open(url: &str, link: &RedisLink, timeout: Duration) -> Result<Link, LinkError> {
        let certificates = certificates(link)?;
        match &link.sentinel {
            None => {
                let mut info = url.into_connection_info().map_err(LinkError::Client)?;
                let mut settings = info.redis_settings().clone();
                if let Some(user) = &link.username {
                    settings = settings.set_username(user);
                }
                if let Some(password) = &link.password {
                    settings = settings.set_password(&password.0);
                }
                info = info.set_redis_settings(settings);
                let client = match certificates {
                    Some(certificates) => Client::build_with_tls(info, certificates),
                    None => Client::open(info),
                }
                .map_err(LinkError::Client)?;
                let config = ConnectionManagerConfig::new()
                    .set_connection_timeout(Some(timeout))
                    .set_response_timeout(Some(timeout))
                    .set_number_of_retries(1)
                    .set_max_delay(Duration::from_millis(200));
                let manager =
                    ConnectionManager::new_lazy_with_config(client, config).map_err(LinkError::Client)?;
                Ok(Link::Direct(manager))
            }
            Some(sentinel) => {
                let nodes = sentinel.nodes.iter().map(|(host, port)| match link.tls {
                    true => ConnectionAddr::TcpTls {
                        host: host.clone(),
                        port: *port,
                        insecure: false,
                        tls_params: None,
                    },
                    false => ConnectionAddr::Tcp(host.clone(), *port),
                });
                let mut builder =
                    SentinelClientBuilder::new(nodes, &sentinel.master, SentinelServerType::Master)
                        .map_err(LinkError::Client)?
                        .set_client_to_redis_db(sentinel.db);
                if link.tls {
                    builder = builder
                        .set_client_to_redis_tls_mode(TlsMode::Secure)
                        .set_client_to_sentinel_tls_mode(TlsMode::Secure);
                    if let Some(certificates) = certificates {
                        builder = builder
                            .set_client_to_redis_certificates(certificates.clone())
                            .set_client_to_sentinel_certificates(certificates);
                    }
                }
                if let Some(user) = &link.username {
                    builder = builder.set_client_to_redis_username(user);
                }
                if let Some(password) = &link.password {
                    builder = builder.set_client_to_redis_password(&password.0);
                }
                if let Some(user) = &sentinel.username {
                    builder = builder.set_client_to_sentinel_username(user);
                }
                if let Some(password) = &sentinel.password {
                    builder = builder.set_client_to_sentinel_password(&password.0);
                }
                let client = builder.build().map_err(LinkError::Client)?;
                // Half the operation's time: a master that stops answering without closing
                // the connection fails here in time to ask the sentinels and try once more.
                let config = AsyncConnectionConfig::new()
                    .set_connection_timeout(Some(timeout / 2))
                    .set_response_timeout(Some(timeout / 2));
                Ok(Link::Sentinel(Arc::new(SentinelLink {
                    sentinels: tokio::sync::Mutex::new(client),
                    current: std::sync::RwLock::new(None),
                    found: AtomicU64::new(0),
                    config,
                    master: sentinel.master.clone(),
                })))
            }
        }
    }

    /// Runs `op` on the connection; through Sentinel, once more on the master found again
    /// when the first try says the master is gone or demoted.
    pub(super) async fn run<T, F, Fut>(&self, op: F) -> RedisResult<T>
    where
        F: Fn(Conn) -> Fut,
        Fut: Future<Output = RedisResult<T>>,
    {
        match self {
            Link::Direct(manager) => op(Conn::Direct(manager.clone())).await,
            Link::Sentinel(link) => {
                let (seen, conn) = link.master(None).await?;
                match op(Conn::Master(conn)).await {
                    Err(e) if master_lost(&e) => {
                        tracing::debug!(master = %link.master, error = %e, "Asking the sentinels for the master again");
                        let (_, conn) = link.master(Some(seen)).await?;
                        op(Conn::Master(conn)).await
                    }
                    result => result,
                }
            }
        }
    }

    /// What to call the server in a message.
    pub(super) fn describe(&self, url: &str) -> String {
        match self {
            Link::Direct(_) => format!("Redis at {url}"),
            Link::Sentinel(link) => format!("Redis (master `{}` or its sentinels)", link.master),
        }
    }
}

impl SentinelLink {
    /// The master's connection: the one in use unless it is `stale`, else one to the
    /// master the sentinels name now.
    async fn master(&self, stale: Option<u64>) -> RedisResult<(u64, MultiplexedConnection)> {
        let usable = || {
            let current = self.current.read().unwrap_or_else(|p| p.into_inner());
            current.as_ref().filter(|(n, _)| Some(*n) != stale).cloned()
        };
        if let Some(found) = usable() {
            return Ok(found);
        }
        let mut sentinels = self.sentinels.lock().await;
        // Another operation may have found it while this one waited.
        if let Some(found) = usable() {
            return Ok(found);
        }
        let client = sentinels.async_get_client().await?;
        let conn = client.get_multiplexed_async_connection_with_config(&self.config).await?;
        let n = self.found.fetch_add(1, Ordering::Relaxed) + 1;
        let previous =
            self.current.write().unwrap_or_else(|p| p.into_inner()).replace((n, conn.clone())).is_some();
        if previous {
            tracing::info!(master = %self.master, "Redis master found again through Sentinel");
        }
        Ok((n, conn))
    }
}

/// Whether an error says the master is unreachable or no longer the master.
fn master_lost(e: &RedisError) -> bool {
    e.is_io_error()
        || e.is_connection_dropped()
        || e.is_connection_refusal()
        || e.is_timeout()
        || matches!(
            e.kind(),
            ErrorKind::Server(ServerErrorKind::ReadOnly) | ErrorKind::Server(ServerErrorKind::MasterDown)
        )
        // A script's error carries the command's code in its text.
        || e.to_string().contains("READONLY")
}

/// The CA and client certificate, read for the client; `None` where the system's CAs and
/// no client certificate will do.
fn certificates(link: &RedisLink) -> Result<Option<TlsCertificates>, LinkError> {
    if !link.tls || (link.ca_file.is_none() && link.client_cert.is_none()) {
        return Ok(None);
    }
    let read = |key: &'static str, path: &Path| {
        std::fs::read(path).map_err(|source| LinkError::Read { key, path: path.to_owned(), source })
    };
    let root_cert = link.ca_file.as_deref().map(|p| read("storage.redis_ca_file", p)).transpose()?;
    let client_tls = match &link.client_cert {
        Some(files) => Some(ClientTlsConfig {
            client_cert: read("storage.redis_client_cert_file", &files.cert_file)?,
            client_key: read("storage.redis_client_key_file", &files.key_file)?,
        }),
        None => None,
    };
    Ok(Some(TlsCertificates { client_tls, root_cert }))
}

/// The certificate refusal under a failed operation, explained with the setting to look at.
pub(super) fn refusal(
    error: &(dyn std::error::Error + 'static),
    at: String,
    ca_file: Option<&Path>,
) -> Option<LinkError> {
    use crate::tls::CertificateRefusal as R;
    Some(match crate::tls::certificate_refusal(error)? {
        R::Untrusted(source) => {
            let advice = match ca_file {
                Some(path) => format!("no CA in storage.redis_ca_file (`{}`) signed it", path.display()),
                None => {
                    "none of the system's CAs signed it: set storage.redis_ca_file to the CA that did".into()
                }
            };
            LinkError::Untrusted { at, advice, source }
        }
        R::NameMismatch(source) => LinkError::NameMismatch { at, source },
        R::Other(source) => LinkError::Certificate { at, source },
    })
}
