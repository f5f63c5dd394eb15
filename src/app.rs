//! The running gateway: its shared state and how it starts and serves.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use axum::Router;
use deskgate_builtin::Builtin;
use futures_util::FutureExt as _;
use tokio::net::TcpListener;

use crate::accounts::{AccountError, Accounts, PostgresStore, SqliteStore};
use crate::clock::Clock;
use crate::config::{AccountsBackend, Config, SessionsBackend};
use crate::identity::{BadPrefix, HeaderNames, HeaderSet};
use crate::jwt::{KeyChoice, KeyError, Signer};
use crate::pending::PendingKey;
use crate::proxy::{Proxy, UpstreamSettings};
use crate::session::{MemoryBounds, RedisStore, Sessions, StoreError};
use crate::state::{AppState, Inner};
use crate::web::Csrf;

/// Why the gateway could not start.
#[derive(Debug, thiserror::Error)]
pub enum StartError {
    /// The account store could not be opened.
    #[error("cannot open the account store")]
    Accounts(#[from] AccountError),
    /// The session store could not be set up.
    #[error("cannot set up the session store")]
    Sessions(#[from] StoreError),
    /// The JWT key could not be loaded.
    #[error(transparent)]
    Key(#[from] KeyError),
    /// The header prefix is unusable.
    #[error(transparent)]
    Headers(#[from] BadPrefix),
}

/// Opens the configured account store.
pub async fn open_accounts(config: &Config) -> Result<Accounts, AccountError> {
    match &config.storage.accounts {
        AccountsBackend::Sqlite(path) => Ok(Accounts::Sqlite(SqliteStore::open(path).await?)),
        AccountsBackend::Postgres(pg) => Ok(Accounts::Postgres(PostgresStore::connect(pg).await?)),
    }
}

/// A gateway ready to serve.
pub struct Gateway {
    slot: Arc<Slot>,
}

/// What is being served: the current state and its router; a reload swaps both.
struct Slot {
    current: std::sync::RwLock<(AppState, Router)>,
    /// The listener's certificate, when it speaks TLS; a reload swaps the certificate.
    certs: Option<Arc<crate::tls::CertStore>>,
    /// Metrics, kept across reloads.
    metrics: Arc<crate::metrics::Metrics>,
    /// Stores and clock, kept across reloads.
    sessions: Sessions,
    accounts: Accounts,
    clock: Clock,
}

/// Why a new config was not taken; the running one stays.
#[derive(Debug, thiserror::Error)]
pub enum ReloadError {
    /// `[storage]` changed: the stores are opened once, at start.
    #[error("[storage] changed; changing the stores needs a restart")]
    Storage,
    /// The new config's keys or headers are unusable.
    #[error(transparent)]
    Start(#[from] StartError),
}

/// Reloads the config of a serving [`Gateway`].
#[derive(Clone)]
pub struct Reloader {
    slot: Arc<Slot>,
}

impl Reloader {
    /// Serves `config` from the next request on. Sessions are kept; each is resolved again
    /// under the new config at its next request (the config's generation changed), so new
    /// usergroups, permissions and organizations reach people without signing in again.
    /// Requests already running finish under the old config. Returns the new generation.
    pub async fn reload(&self, config: Config) -> Result<u64, ReloadError> {
        let result = self.swap(config).await;
        self.slot.metrics.reload(result.is_ok());
        result
    }

    /// Counts a reload refused before it got here (the file did not load).
    pub fn refused(&self) {
        self.slot.metrics.reload(false);
    }

    async fn swap(&self, config: Config) -> Result<u64, ReloadError> {
        let slot = &self.slot;
        let old = slot.current.read().unwrap_or_else(|p| p.into_inner()).0.clone();
        if old.config.storage != config.storage {
            return Err(ReloadError::Storage);
        }
        if old.config.server.listen != config.server.listen
            || old.config.server.workers != config.server.workers
            || old.config.server.connections != config.server.connections
            || old.config.log != config.log
            || old.config.metrics != config.metrics
        {
            tracing::warn!(
                "server.listen, server.workers, the connection limits, [log] and [metrics] take effect at the next restart, not at a reload"
            );
        }
        // The CSRF and pending sign-in keys stay unless the secret changed: forms open in
        // browsers still post, and sign-ins under way at a provider still finish.
        let keys = (config.session.secret.as_ref().map(|s| &s.0)
            == old.config.session.secret.as_ref().map(|s| &s.0))
        .then(|| (old.csrf.clone(), old.pending.clone()));
        match (&slot.certs, &config.server.tls) {
            // Read again by the config load: a renewed certificate is served from the next
            // handshake on.
            (Some(certs), Some(tls)) => certs.replace(tls.key.clone()),
            (None, None) => {}
            _ => tracing::warn!(
                "Turning server.tls on or off takes effect at the next restart, not at a reload"
            ),
        }
        // The hashing turns stay shared unless their limits changed, so that requests still
        // running under the old config count against the same bound.
        let hashing =
            (config.limits.hashing == old.config.limits.hashing).then(|| old.builtin.hashing().clone());
        let kept = Kept { keys, hashing, previous: Some(old.clone()) };
        let stores = (slot.sessions.clone(), slot.accounts.clone(), slot.clock.clone(), slot.metrics.clone());
        let state = build(config, stores, kept)?;
        let generation = state.generation;
        let router = crate::stack::build(state.clone());
        *slot.current.write().unwrap_or_else(|p| p.into_inner()) = (state, router);
        Ok(generation)
    }
}

impl Gateway {
    /// Opens the stores and loads keys for `config`, on the system clock.
    pub async fn new(config: Config) -> Result<Gateway, StartError> {
        Gateway::with_clock(config, Clock::system()).await
    }

    /// As [`Gateway::new`], on the given clock.
    pub async fn with_clock(config: Config, clock: Clock) -> Result<Gateway, StartError> {
        let accounts = open_accounts(&config).await?;
        let sessions = match &config.storage.sessions {
            SessionsBackend::Memory => Sessions::memory(
                clock.clone(),
                MemoryBounds {
                    counters: config.limits.memory_counters,
                    once: config.limits.memory_one_time_values,
                },
            ),
            SessionsBackend::Redis { url, prefix, local_cache, link } => {
                let store = RedisStore::connect(url.expose(), link, prefix, clock.clone())?
                    .with_local_cache(*local_cache);
                let (probe, url, ca_file) = (store.clone(), url.to_string(), link.ca_file.clone());
                let check = async move {
                    let e = match probe.check(&url, ca_file.as_deref()).await {
                        Ok(()) => return Ok(()),
                        Err(e) => e,
                    };
                    match &e {
                        // A certificate refused is a mistake in the config, not an outage.
                        StoreError::Unavailable(cause) if cause.is::<crate::session::RedisLinkError>() => {
                            Err(e)
                        }
                        _ => {
                            let cause =
                                std::error::Error::source(&e).map(ToString::to_string).unwrap_or_default();
                            tracing::warn!(%url, %cause, "Redis is not answering; requests that need a session fail until it does");
                            Ok(())
                        }
                    }
                };
                if link.tls {
                    // Bounded (one operation's time): a Redis that is down only delays the start.
                    check.await?;
                } else {
                    // Not awaited: a Redis that is down must not hold up the start.
                    tokio::spawn(check);
                }
                Sessions::Redis(store)
            }
        };
        if let Sessions::Memory(m) = &sessions {
            let m = m.clone();
            tokio::spawn(async move {
                let mut tick = tokio::time::interval(Duration::from_secs(60));
                loop {
                    tick.tick().await;
                    m.sweep();
                }
            });
        }
        let certs = config.server.tls.as_ref().map(|tls| crate::tls::CertStore::new(tls.key.clone()));
        let metrics = Arc::new(crate::metrics::Metrics::new());
        let stores = (sessions.clone(), accounts.clone(), clock.clone(), metrics.clone());
        let state = build(config, stores, Kept::default())?;
        let router = crate::stack::build(state.clone());
        let slot = Slot {
            current: std::sync::RwLock::new((state, router)),
            certs,
            metrics,
            sessions,
            accounts,
            clock,
        };
        Ok(Gateway { slot: Arc::new(slot) })
    }

    /// The shared state now being served.
    pub fn state(&self) -> AppState {
        self.slot.current.read().unwrap_or_else(|p| p.into_inner()).0.clone()
    }

    /// A handle that reloads the config while the gateway serves.
    pub fn reloader(&self) -> Reloader {
        Reloader { slot: self.slot.clone() }
    }

    /// The whole service: deskgate's pages and the proxy behind the tower stack, as the
    /// current config has them at each request.
    pub fn router(&self) -> Router {
        let slot = self.slot.clone();
        Router::new().fallback_service(tower::service_fn(move |req: axum::extract::Request| {
            let (state, router) = slot.current.read().unwrap_or_else(|p| p.into_inner()).clone();
            crate::stack::serve(state, router, req).map(Ok::<_, std::convert::Infallible>)
        }))
    }
}

/// What a reload keeps from the state it replaces.
#[derive(Default)]
struct Kept {
    /// The CSRF and pending sign-in keys (kept while the secret is the same).
    keys: Option<(Csrf, PendingKey)>,
    /// The password hashing turns and their memory.
    hashing: Option<deskgate_builtin::Hashing>,
    /// The state replaced: its signing key is kept when nothing else is chosen, and stays
    /// published when another replaces it.
    previous: Option<AppState>,
}

/// The state for `config` on stores already open, keeping what `kept` holds.
fn build(
    config: Config,
    (sessions, accounts, clock, metrics): (Sessions, Accounts, Clock, Arc<crate::metrics::Metrics>),
    kept: Kept,
) -> Result<AppState, StartError> {
    let Kept { keys, hashing, previous } = kept;
    let (tasks, stopped) = tokio::sync::watch::channel(());
    let choice = match (&config.jwt.key_file, &config.session.secret) {
        (Some(path), _) => KeyChoice::File(path),
        (None, Some(secret)) => KeyChoice::Secret(&secret.0),
        (None, None) => KeyChoice::Generate,
    };
    let signer = Signer::replacing(
        previous.as_ref().map(|p| &p.signer),
        &choice,
        &config.server.public_url,
        &config.jwt.audience,
        config.jwt.ttl.as_secs(),
        clock.now(),
    )?;
    if previous.is_none() && matches!(choice, KeyChoice::Generate) {
        tracing::warn!(
            "Neither jwt.key_file nor session.secret: signing with a key made at start, kept until the process ends; backends must refetch the JWKS after a restart, and replicas each sign with their own"
        );
    }
    let (csrf, pending) = keys.unwrap_or_else(|| {
        let secret = match &config.session.secret {
            Some(s) => s.0.clone(),
            None => rand::random::<[u8; 32]>().to_vec(),
        };
        // Both derive from the one secret, so replicas sharing it agree on both.
        let pending = PendingKey::from_secret(&secret);
        (Csrf::new(secret), pending)
    });
    let names = HeaderNames::new(&config.header_prefix)?;
    let guest = config.model.guest();
    let guest_headers = HeaderSet::guest(&names, &guest);
    // A client's `Connection: X-Deskgate-User` must not make the proxy drop what we set.
    let protected: Vec<http::HeaderName> = names.all().into_iter().cloned().collect();
    // Each upstream has pools and timeouts of its own.
    let build_proxy = |upstream: &crate::config::Upstream| {
        Proxy::new(&UpstreamSettings {
            url: upstream.url.clone(),
            connect_timeout: upstream.connect_timeout,
            timeout: upstream.timeout,
            http2: upstream.http2,
            pool_idle_timeout: Duration::from_secs(90),
            workers: config.server.workers,
        })
        .with_protected_headers(protected.clone())
    };
    let proxy = build_proxy(&config.upstream);
    let upstreams = config.upstreams.iter().map(|(id, u)| (id.clone(), build_proxy(u))).collect();
    // OIDC key sets: fetched again every hour besides the refetch for an unknown key, so
    // that a key a provider withdraws stops being trusted; a failed fetch keeps the last
    // good keys, so this only logs. The first fetch is at the first sign-in, as before.
    #[cfg(feature = "oidc")]
    for p in &config.oidc {
        let (oidc, id, mut stopped) = (p.oidc.clone(), p.id.clone(), stopped.clone());
        tokio::spawn(async move {
            let mut tick = tokio::time::interval(deskgate_oidc::KEYS_REFRESH);
            tick.tick().await;
            loop {
                tokio::select! {
                    _ = tick.tick() => {}
                    _ = stopped.changed() => return,
                }
                if let Err(e) = oidc.refresh_keys().await {
                    tracing::warn!(provider = %id, cause = %deskgate_provider::error_chain(&e), "Key set refresh failed; keeping the last good keys");
                }
            }
        });
    }
    // SAML IdP metadata: read now and on each provider's schedule; a failed read keeps
    // the last good metadata (the provider crate's rule), so this only logs.
    #[cfg(feature = "saml")]
    for p in &config.saml {
        let (saml, id, mut stopped) = (p.saml.clone(), p.id.clone(), stopped.clone());
        tokio::spawn(async move {
            let mut tick = tokio::time::interval(saml.metadata_refresh());
            loop {
                // Ends when this state is replaced by a reload (the sender is dropped).
                tokio::select! {
                    _ = tick.tick() => {}
                    _ = stopped.changed() => return,
                }
                if let Err(e) = saml.refresh().await {
                    tracing::warn!(provider = %id, cause = %deskgate_provider::error_chain(&e), "IdP metadata refresh failed; keeping the last good metadata");
                }
            }
        });
    }
    drop(stopped);
    let inner = Inner {
        generation: config.fingerprint,
        builtin: match hashing {
            Some(gate) => Builtin::with_gate(accounts.clone(), gate),
            None => Builtin::with_limits(accounts.clone(), config.limits.hashing),
        },
        sessions,
        accounts,
        signer,
        names,
        guest,
        interner: Default::default(),
        guest_headers,
        told: Default::default(),
        csrf,
        clock,
        proxy,
        upstreams,
        metrics,
        pending,
        tokens: crate::session::TokenCache::new(match &config.storage.sessions {
            SessionsBackend::Redis { local_cache, .. } => *local_cache,
            SessionsBackend::Memory => Duration::from_secs(1),
        }),
        config,
        model: Default::default(),
        notices: Default::default(),
        _tasks: tasks,
    };
    Ok(AppState(Arc::new(inner)))
}

/// The listening socket of [`Gateway::serve_workers`], bound and listening, with a handle
/// of it for each serving thread; and the plain-HTTP redirect listener, when configured.
#[derive(Debug)]
pub struct Listeners {
    workers: Vec<std::net::TcpListener>,
    redirect: Option<TcpListener>,
    metrics: Option<TcpListener>,
}

/// Binds a listening socket with `SO_REUSEADDR` (a restart need not wait for old
/// connections' TIME_WAIT) but not `SO_REUSEPORT`.
fn bind(listen: SocketAddr) -> std::io::Result<std::net::TcpListener> {
    let socket =
        if listen.is_ipv4() { tokio::net::TcpSocket::new_v4()? } else { tokio::net::TcpSocket::new_v6()? };
    socket.set_reuseaddr(true)?;
    socket.bind(listen)?;
    socket.listen(1024)?.into_std()
}

impl Gateway {
    /// Binds the listening socket on `listen`, with a handle of it for each of
    /// `server.workers`. Once this returns, connections are queued: the address can be
    /// announced. One socket shared by the threads (each accepts from it on its own event
    /// loop), not one per thread with `SO_REUSEPORT`: with that, a second process binding the
    /// same address would join the group and silently take a share of the connections.
    pub async fn bind_workers(&self, listen: SocketAddr) -> std::io::Result<Listeners> {
        let state = self.state();
        let workers = state.config.server.workers.max(1);
        // Handed to each thread's own event loop as a std socket.
        let listener = bind(listen)?;
        let mut listeners = Vec::with_capacity(workers);
        for _ in 1..workers {
            listeners.push(listener.try_clone()?);
        }
        listeners.push(listener);
        let redirect = match state.config.server.tls.as_ref().and_then(|t| t.redirect_listen) {
            Some(at) => Some(TcpListener::from_std(bind(at)?)?),
            None => None,
        };
        let metrics = match &state.config.metrics {
            Some(m) => Some(TcpListener::from_std(bind(m.listen)?)?),
            None => None,
        };
        Ok(Listeners { workers: listeners, redirect, metrics })
    }

    /// Serves on `listeners` (see [`Gateway::bind_workers`]), a thread each, until `shutdown`
    /// completes, then lets each finish its open requests. Each thread runs its own event
    /// loop, accepts connections from the shared socket (whichever thread is free first
    /// takes a new one) and forwards over upstream connections of its own, so a request is handled start to end
    /// on one thread, as in nginx's one worker per core. Background work (stores'
    /// connections, the session sweep, metadata refreshes) stays on the runtime that calls
    /// this.
    pub async fn serve_workers(
        self,
        Listeners { workers: listeners, redirect, metrics }: Listeners,
        shutdown: impl std::future::Future<Output = ()> + Send + 'static,
    ) -> std::io::Result<()> {
        let workers = listeners.len();
        let router = self.router();
        let state = self.state();
        let limits = state.config.server.connections;
        let cap = crate::connections::ConnectionCap::new(&limits);
        let tls = self.slot.certs.as_ref().map(|c| c.acceptor());
        let (stop, stopped) = tokio::sync::watch::channel(false);
        if let (Some(listener), Some(at)) = (metrics, &state.config.metrics) {
            let app = self.metrics_router(&at.path);
            let (cap, stopped) = (cap.clone(), stopped.clone());
            tokio::spawn(crate::connections::serve(listener, app, limits, cap, None, stopped));
        }
        if let Some(listener) = redirect {
            let (app, cap, stopped) = (crate::stack::https_redirect(&state), cap.clone(), stopped.clone());
            tokio::spawn(crate::connections::serve(listener, app, limits, cap, None, stopped));
        }
        let (ended, mut first_end) = tokio::sync::mpsc::unbounded_channel();
        let mut threads = Vec::with_capacity(workers);
        for (index, listener) in listeners.into_iter().enumerate() {
            let (router, stopped, ended, cap, tls) =
                (router.clone(), stopped.clone(), ended.clone(), cap.clone(), tls.clone());
            let thread =
                std::thread::Builder::new().name(format!("deskgate-worker-{index}")).spawn(move || {
                    crate::proxy::set_worker(index);
                    let served =
                        tokio::runtime::Builder::new_current_thread().enable_all().build().and_then(|rt| {
                            rt.block_on(async move {
                                let listener = TcpListener::from_std(listener)?;
                                crate::connections::serve(listener, router, limits, cap, tls, stopped).await
                            })
                        });
                    let _ = ended.send(served);
                })?;
            threads.push(thread);
        }
        drop(ended);
        // A thread that ends before the signal (it failed) ends the whole server.
        let early = tokio::select! {
            () = shutdown => None,
            result = first_end.recv() => Some(result.unwrap_or(Ok(()))),
        };
        let _ = stop.send(true);
        tokio::task::spawn_blocking(move || {
            for t in threads {
                let _ = t.join();
            }
        })
        .await
        .map_err(std::io::Error::other)?;
        match early {
            Some(result) => result.and(Err(std::io::Error::other("a serving thread stopped"))),
            None => {
                while let Ok(result) = first_end.try_recv() {
                    result?;
                }
                Ok(())
            }
        }
    }

    /// The metrics listener's whole service: the metrics at `path`, 404 elsewhere.
    fn metrics_router(&self, path: &str) -> Router {
        let slot = self.slot.clone();
        Router::new().route(
            path,
            axum::routing::get(move || {
                let slot = slot.clone();
                async move {
                    let state = slot.current.read().unwrap_or_else(|p| p.into_inner()).0.clone();
                    let sessions = match &state.sessions {
                        Sessions::Memory(m) => m.sessions(),
                        Sessions::Redis(_) => 0,
                    };
                    let text = slot.metrics.render(sessions);
                    ([(http::header::CONTENT_TYPE, crate::metrics::CONTENT_TYPE)], text)
                }
            }),
        )
    }

    /// Serves on `listener` until the future `shutdown` completes.
    pub async fn serve_until(
        self,
        listener: TcpListener,
        shutdown: impl std::future::Future<Output = ()> + Send + 'static,
    ) -> std::io::Result<()> {
        let limits = self.state().config.server.connections;
        let (stop, stopped) = tokio::sync::watch::channel(false);
        tokio::spawn(async move {
            shutdown.await;
            let _ = stop.send(true);
        });
        let cap = crate::connections::ConnectionCap::new(&limits);
        let tls = self.slot.certs.as_ref().map(|c| c.acceptor());
        crate::connections::serve(listener, self.router(), limits, cap, tls, stopped).await
    }
}
