//! Configuration: the file types (`file`), the loader that locates problems (`load`), and
//! the compile step (`compile`) that turns a file into the running [`Config`].

mod compile;
pub mod file;
mod load;
mod net;
mod notes;

use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

pub use load::{Diagnostic, check_file, load_file, load_str};
pub use net::IpRange;
pub use notes::notes;

use crate::policy::Policies;
use crate::usergroups::Model;

/// The running configuration.
#[derive(Debug, Clone)]
pub struct Config {
    /// `[server]`
    pub server: Server,
    /// `[upstream]`
    pub upstream: Upstream,
    /// `[upstreams.<id>]`, by id.
    pub upstreams: std::collections::BTreeMap<String, Upstream>,
    /// `[[routes]]`, most specific first.
    pub routes: crate::routes::Routes,
    /// `[session]`
    pub session: Session,
    /// `[storage]`
    pub storage: Storage,
    /// Whether people may sign up for built-in accounts.
    pub registration: Registration,
    /// Password reset by a mailed link, when enabled.
    pub password_reset: Option<PasswordReset>,
    /// Usergroups, organizations and assignments.
    pub model: Arc<Model>,
    /// Access rules, by host when rules name hosts.
    pub policy: Arc<Policies>,
    /// Whether built-in accounts may sign in.
    pub builtin_enabled: bool,
    /// LDAP and Active Directory directories, in id order.
    #[cfg(feature = "ldap")]
    pub ldap: Vec<LdapProvider>,
    /// OpenID Connect providers, in id order.
    #[cfg(feature = "oidc")]
    pub oidc: Vec<OidcProvider>,
    /// SAML identity providers, in id order.
    #[cfg(feature = "saml")]
    pub saml: Vec<SamlProvider>,
    /// Prefix of injected headers, e.g. `X-Deskgate-`.
    pub header_prefix: String,
    /// `[jwt]`
    pub jwt: Jwt,
    /// `[rate_limit]`
    pub rate_limit: RateLimit,
    /// `[api_tokens]`
    pub api_tokens: ApiTokens,
    /// `[limits]`
    pub limits: Limits,
    /// The metrics listener, when `[metrics]` is present.
    pub metrics: Option<MetricsListener>,
    /// `[log]`
    pub log: crate::logging::Log,
    /// `[webauthn]`: `None` when keys cannot be offered (no `[webauthn]` table and a public
    /// URL that names no domain, e.g. an IP address).
    pub webauthn: Option<Webauthn>,
    /// Names this config's text (a hash of it): sessions resolved under another are
    /// resolved again, and replicas with the same file agree on it.
    pub fingerprint: u64,
}

impl Config {
    /// Every configured provider's id with its account and group rules.
    pub fn account_policies(&self) -> Vec<(&str, &AccountPolicy)> {
        #[allow(unused_mut)]
        let mut out: Vec<(&str, &AccountPolicy)> = Vec::new();
        #[cfg(feature = "ldap")]
        out.extend(self.ldap.iter().map(|p| (p.id.as_str(), &p.policy)));
        #[cfg(feature = "oidc")]
        out.extend(self.oidc.iter().map(|p| (p.id.as_str(), &p.policy)));
        #[cfg(feature = "saml")]
        out.extend(self.saml.iter().map(|p| (p.id.as_str(), &p.policy)));
        out
    }

    /// How sign-in pages name a provider: its label, "a password" for built-in accounts, or
    /// the id of one no longer configured.
    pub fn provider_label(&self, provider: &str) -> String {
        if provider == deskgate_builtin::PROVIDER_ID {
            return "a password".to_owned();
        }
        #[allow(unused_mut)]
        let mut labels: Vec<(&str, &str)> = Vec::new();
        #[cfg(feature = "ldap")]
        labels.extend(self.ldap.iter().map(|p| (p.id.as_str(), p.label.as_str())));
        #[cfg(feature = "oidc")]
        labels.extend(self.oidc.iter().map(|p| (p.id.as_str(), p.label.as_str())));
        #[cfg(feature = "saml")]
        labels.extend(self.saml.iter().map(|p| (p.id.as_str(), p.label.as_str())));
        labels
            .into_iter()
            .find(|(id, _)| *id == provider)
            .map_or_else(|| provider.to_owned(), |(_, l)| l.to_owned())
    }

    /// A provider's account policy; `None` for a provider not (or no longer) configured.
    pub fn account_policy(&self, provider: &str) -> Option<&AccountPolicy> {
        self.account_policies().into_iter().find(|(id, _)| *id == provider).map(|(_, p)| p)
    }
}

/// `[metrics]`
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MetricsListener {
    /// Where the metrics listener listens.
    pub listen: SocketAddr,
    /// The path metrics are served at.
    pub path: String,
}

/// `[server]`
#[derive(Debug, Clone)]
pub struct Server {
    /// Listen address.
    pub listen: SocketAddr,
    /// Public URL without a trailing slash.
    pub public_url: String,
    /// Whether the public URL is https (cookies get `Secure`).
    pub secure: bool,
    /// Proxies whose `X-Forwarded-*` are kept.
    pub trusted_proxies: Vec<IpRange>,
    /// Largest proxied request body.
    pub max_body_bytes: u64,
    /// Time allowed for deskgate's own pages.
    pub request_timeout: Duration,
    /// Serving threads, each with its own listening socket, event loop and upstream pool.
    pub workers: usize,
    /// Client connection limits.
    pub connections: crate::connections::ConnectionLimits,
    /// Whether client headers with `_` in their name are passed on.
    pub allow_underscores_in_headers: bool,
    /// Override headers (lower-case) that are passed on.
    pub allowed_override_headers: Vec<http::HeaderName>,
    /// HTTPS on the listener, when configured.
    pub tls: Option<Tls>,
}

/// `[server.tls]`
#[derive(Debug, Clone)]
pub struct Tls {
    /// Where the certificate and key are.
    pub files: crate::tls::TlsFiles,
    /// The certificate and key as read when this config was loaded.
    pub key: Arc<tokio_rustls::rustls::sign::CertifiedKey>,
    /// The plain-HTTP listener that redirects to https.
    pub redirect_listen: Option<SocketAddr>,
    /// The `Strict-Transport-Security` value, when one is sent.
    pub hsts: Option<http::HeaderValue>,
}

/// `[upstream]`
#[derive(Debug, Clone)]
pub struct Upstream {
    /// Base URL.
    pub url: http::Uri,
    /// Connect timeout.
    pub connect_timeout: Duration,
    /// Time allowed until response headers.
    pub timeout: Duration,
    /// HTTP/2 with prior knowledge.
    pub http2: bool,
}

/// `[session]`
#[derive(Debug, Clone)]
pub struct Session {
    /// Cookie name.
    pub cookie_name: String,
    /// Idle timeout.
    pub idle_timeout: Duration,
    /// Absolute timeout.
    pub absolute_timeout: Duration,
    /// How often the provider is asked again which groups a signed-in person is in;
    /// `None` never.
    pub recheck_interval: Option<Duration>,
    /// Secret keying CSRF tokens and pending sign-in cookies; `None` means one is generated
    /// at start.
    pub secret: Option<Secret>,
    /// The session cookie's `Domain`, lower case; `None`: host-only.
    pub cookie_domain: Option<String>,
    /// Domains (lower case) whose https hosts sign-in may return to.
    pub redirect_domains: Vec<String>,
}

/// A secret value that never prints.
#[derive(Clone)]
pub struct Secret(pub Vec<u8>);

impl std::fmt::Debug for Secret {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Secret(..)")
    }
}

/// `[storage]`
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Storage {
    /// Account store.
    pub accounts: AccountsBackend,
    /// Session store.
    pub sessions: SessionsBackend,
}

/// Where accounts live.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum AccountsBackend {
    /// A SQLite file (created when missing), or `:memory:`.
    Sqlite(PathBuf),
    /// A PostgreSQL database, shared by replicas.
    Postgres(Postgres),
}

/// How deskgate reaches a PostgreSQL account store.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Postgres {
    /// `postgres://…`.
    pub url: StoreUrl,
    /// TLS, from `storage.postgres_sslmode` or the URL's `sslmode`.
    pub ssl_mode: PgSslMode,
    /// Whether `ssl_mode` came from the URL, so that a refusal names the setting written.
    pub ssl_mode_in_url: bool,
    /// The CA trusted for the server's certificate, beside the public web CAs.
    pub ca_file: Option<PathBuf>,
    /// The certificate and key deskgate shows the server.
    pub client_cert: Option<crate::tls::TlsFiles>,
    /// The password from `storage.postgres_password_file`.
    pub password: Option<Password>,
}

impl Postgres {
    /// The setting that chose the TLS mode, as an administrator would look for it.
    pub fn ssl_mode_setting(&self) -> String {
        if self.ssl_mode_in_url {
            format!("sslmode={} in storage.accounts", self.ssl_mode.as_str())
        } else {
            format!("storage.postgres_sslmode = \"{}\"", self.ssl_mode.as_str())
        }
    }
}

/// TLS to PostgreSQL, named as libpq names it.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum PgSslMode {
    /// Plain TCP.
    Disable,
    /// TLS when the server offers it, its certificate unchecked; plain TCP otherwise.
    #[default]
    Prefer,
    /// TLS or no connection; the certificate is not checked (eavesdroppers only).
    Require,
    /// TLS with a certificate signed by a trusted CA and naming the host connected to.
    VerifyFull,
}

impl PgSslMode {
    /// The modes, as written.
    pub const NAMES: &'static str = "`disable`, `prefer`, `require` or `verify-full`";

    /// Reads a written mode.
    pub fn parse(s: &str) -> Option<PgSslMode> {
        match s {
            "disable" => Some(PgSslMode::Disable),
            "prefer" => Some(PgSslMode::Prefer),
            "require" => Some(PgSslMode::Require),
            "verify-full" => Some(PgSslMode::VerifyFull),
            _ => None,
        }
    }

    /// As written.
    pub fn as_str(self) -> &'static str {
        match self {
            PgSslMode::Disable => "disable",
            PgSslMode::Prefer => "prefer",
            PgSslMode::Require => "require",
            PgSslMode::VerifyFull => "verify-full",
        }
    }
}

/// Where sessions live.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SessionsBackend {
    /// This process's memory.
    Memory,
    /// A Redis server, shared by replicas.
    Redis {
        /// `redis://HOST:PORT[/DB]`.
        url: StoreUrl,
        /// Prefix of every key deskgate writes.
        prefix: String,
        /// How long a session read from Redis is reused locally.
        local_cache: Duration,
        /// TLS, credentials, Sentinel and replication acknowledgement.
        link: Box<RedisLink>,
    },
}

/// How deskgate reaches Redis beyond its URL.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RedisLink {
    /// Whether the URL is `rediss://`: TLS to Redis (and to the sentinels).
    pub tls: bool,
    /// The CA trusted for Redis's certificate instead of the system's CAs.
    pub ca_file: Option<PathBuf>,
    /// The certificate and key deskgate shows Redis.
    pub client_cert: Option<crate::tls::TlsFiles>,
    /// The ACL user from `storage.redis_username`.
    pub username: Option<String>,
    /// The password from `storage.redis_password_file`.
    pub password: Option<Password>,
    /// Where the master is found, when Sentinel watches it.
    pub sentinel: Option<RedisSentinel>,
    /// Replicas that must hold a new session before the sign-in answers (`WAIT`).
    pub wait_replicas: u32,
    /// How long a write waits for those replicas.
    pub wait_timeout: Duration,
}

impl Default for RedisLink {
    /// Plain TCP to the URL's server, no credentials beyond the URL's, no waiting for replicas.
    fn default() -> RedisLink {
        RedisLink {
            tls: false,
            ca_file: None,
            client_cert: None,
            username: None,
            password: None,
            sentinel: None,
            wait_replicas: 0,
            wait_timeout: Duration::from_millis(100),
        }
    }
}

/// A master that Redis Sentinel watches and moves on failover.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RedisSentinel {
    /// The master's name as the sentinels know it.
    pub master: String,
    /// The sentinels' addresses.
    pub nodes: Vec<(String, u16)>,
    /// The ACL user of the sentinels, from `storage.redis_sentinel_username`.
    pub username: Option<String>,
    /// The sentinels' password, from `storage.redis_sentinel_password_file`.
    pub password: Option<Password>,
    /// The database, from the URL (`rediss:///DB`).
    pub db: i64,
}

/// A store's connection URL. It may hold a password, so it prints with the password masked.
#[derive(Clone, PartialEq, Eq)]
pub struct StoreUrl(String);

impl StoreUrl {
    /// Wraps a URL.
    pub fn new(url: impl Into<String>) -> StoreUrl {
        StoreUrl(url.into())
    }

    /// The URL, password included, for connecting.
    pub fn expose(&self) -> &str {
        &self.0
    }

    /// Whether the URL holds a password: printing masks exactly the passwords.
    pub fn has_password(&self) -> bool {
        self.to_string() != self.0
    }
}

impl std::fmt::Display for StoreUrl {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let url = self.0.as_str();
        let start = url.find("://").map_or(0, |i| i + 3);
        let authority_end = url[start..].find(['/', '?', '#']).map_or(url.len(), |i| start + i);
        let (head, tail) = url.split_at(authority_end);
        // The password sits between the user's `:` and the last `@` of the authority.
        let head = match head[start..].rfind('@').map(|i| start + i) {
            Some(at) => match head[start..at].find(':').map(|i| start + i) {
                Some(colon) => format!("{}:***{}", &head[..colon], &head[at..]),
                None => head.to_owned(),
            },
            None => head.to_owned(),
        };
        // libpq also takes `?password=…`.
        let tail = match tail.split_once('?') {
            Some((path, query)) => {
                let masked: Vec<String> = query
                    .split('&')
                    .map(|kv| match kv.split_once('=') {
                        Some((k, _)) if k.eq_ignore_ascii_case("password") => format!("{k}=***"),
                        _ => kv.to_owned(),
                    })
                    .collect();
                format!("{path}?{}", masked.join("&"))
            }
            None => tail.to_owned(),
        };
        write!(f, "{head}{tail}")
    }
}

impl std::fmt::Debug for StoreUrl {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "StoreUrl({self})")
    }
}

/// Self sign-up mode for built-in accounts.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Registration {
    /// Anyone may sign up and is signed in at once.
    Open,
    /// A sign-up is active once its email address is confirmed through a mailed link.
    EmailValidation(Smtp),
    /// A sign-up is active once an administrator approves it.
    Approval,
    /// No self sign-up; accounts come from an admin or an identity provider.
    Disabled,
}

impl Registration {
    /// Whether people may sign up at all.
    pub fn allows_sign_up(&self) -> bool {
        !matches!(self, Registration::Disabled)
    }
}

/// `[smtp]`: where validation mail goes out. Plain SMTP (no TLS), meant for a relay on
/// loopback or a private network.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Smtp {
    /// Host name or address.
    pub host: String,
    /// Port.
    pub port: u16,
    /// Sender mailbox.
    pub from: String,
    /// SMTP AUTH user and password.
    pub credentials: Option<(String, Password)>,
    /// How long a validation link works.
    pub validation_ttl: Duration,
    /// Subject template (`{name}`).
    pub subject: String,
    /// Body template (`{name}`, `{link}`).
    pub body: String,
}

/// `[webauthn]`: where security keys and passkeys are valid.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Webauthn {
    /// The relying party id (a host name).
    pub rp_id: String,
    /// The origin the browser signs from (`scheme://host[:port]`).
    pub rp_origin: String,
}

/// `[password_reset]`: built-in accounts may set a new password through a mailed link.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PasswordReset {
    /// Where the mail goes out (`[smtp]`; its subject and body are the validation mail's).
    pub smtp: Smtp,
    /// How long a reset link works.
    pub ttl: Duration,
}

/// The reset mail's subject.
pub const RESET_SUBJECT: &str = "Reset your password";
/// The reset mail's body.
pub const RESET_BODY: &str = "Hello {name},\n\nsomeone asked to reset the password of your account. To choose a new one, open this link:\n\n{link}\n\nIf you did not ask for this, ignore this message: your password stays as it is.\n";

/// A password read from a file (SMTP, PostgreSQL, Redis), that never prints.
#[derive(Clone, PartialEq, Eq)]
pub struct Password(pub String);

impl std::fmt::Debug for Password {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Password(..)")
    }
}

/// The validation mail's subject unless `[smtp] subject` says otherwise.
pub const DEFAULT_SUBJECT: &str = "Confirm your email address";
/// The validation mail's body unless `[smtp] body` says otherwise.
pub const DEFAULT_BODY: &str = "Hello {name},\n\nplease confirm your email address by opening this link:\n\n{link}\n\nIf you did not sign up, ignore this message.\n";

/// `[jwt]`
#[derive(Debug, Clone)]
pub struct Jwt {
    /// Ed25519 key file; `None` means a key generated at start.
    pub key_file: Option<PathBuf>,
    /// Token lifetime.
    pub ttl: Duration,
    /// `aud` claim.
    pub audience: String,
    /// `aud` claim by host, most specific pattern first.
    pub host_audiences: Vec<(crate::policy::HostPattern, String)>,
}

impl Jwt {
    /// The `aud` claim for a request to `host` (as sent): the most specific host pattern's,
    /// else `audience`.
    pub fn audience_for(&self, host: Option<&str>) -> &str {
        let host = host.and_then(crate::policy::request_host);
        host.and_then(|h| self.host_audiences.iter().find(|(p, _)| p.covers(&h)))
            .map_or(self.audience.as_str(), |(_, aud)| aud.as_str())
    }
}

/// `[api_tokens]`: what a new API token may be.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ApiTokens {
    /// The longest expiry a new token may have.
    pub max_ttl: Duration,
    /// Most live (unexpired) tokens one account may hold.
    pub max_per_account: u32,
}

/// `[rate_limit]`
#[derive(Debug, Clone, Copy)]
pub struct RateLimit {
    /// Counting window.
    pub window: Duration,
    /// Failures allowed per account per window.
    pub per_account: u32,
    /// Failures allowed per address per window; then that address is refused.
    pub per_address: u32,
    /// Failures allowed per account from one address per window; then that address is
    /// refused for that account.
    pub per_account_and_address: u32,
    /// The longest delay before answering a sign-in to an account with more than
    /// `per_account` failures.
    pub max_delay: Duration,
}

/// `[limits]`: bounds on what requests from nobody signed in may make the gateway keep or do.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Limits {
    /// Most counters the in-memory store keeps at once.
    pub memory_counters: usize,
    /// Most one-time values the in-memory store keeps at once.
    pub memory_one_time_values: usize,
    /// Password checks and hashes at once, and how long a sign-in waits for a turn.
    pub hashing: deskgate_builtin::HashingLimits,
    /// Window over which sign-ups and validation mails are counted.
    pub sign_up_window: Duration,
    /// Sign-ups per client address per window.
    pub sign_ups_per_address: u32,
    /// Sign-ups from all addresses per window.
    pub sign_ups_total: u32,
    /// Accounts waiting for validation or approval at once.
    pub pending_sign_ups: u64,
    /// Validation mails per client address per window.
    pub validation_mails_per_address: u32,
    /// Validation mails in all per window.
    pub validation_mails_total: u32,
}

/// What a provider's config says about accounts and groups.
#[derive(Debug, Clone, Default)]
pub struct AccountPolicy {
    /// Create an account at first sign-in.
    pub create_accounts: bool,
    /// Link to an existing account with the same verified email.
    pub link_by_email: bool,
    /// Provider group → usergroups rules, compared as `group_names` says.
    pub group_rules: Vec<(String, Vec<String>)>,
    /// How the provider's groups compare with the rules: as DNs for LDAP, else as text.
    pub group_names: crate::usergroups::GroupNames,
}

impl AccountPolicy {
    /// The usergroups the rules map `groups` to.
    pub fn map_groups(&self, groups: &[String]) -> Vec<String> {
        crate::usergroups::map_groups(&self.group_rules, groups, self.group_names)
    }
}

/// A configured LDAP or Active Directory directory.
#[cfg(feature = "ldap")]
#[derive(Debug, Clone)]
pub struct LdapProvider {
    /// Provider id as sessions and the backend see it: `ldap.<id>`.
    pub id: String,
    /// How the login page names it.
    pub label: String,
    /// The directory client.
    pub ldap: deskgate_ldap::Ldap,
    /// Account and group rules.
    pub policy: AccountPolicy,
}

/// A configured OpenID Connect provider.
#[cfg(feature = "oidc")]
#[derive(Debug, Clone)]
pub struct OidcProvider {
    /// The id in its table name and URLs (`/.deskgate/oidc/<key>/…`).
    pub key: String,
    /// Provider id as sessions and the backend see it: `oidc.<key>`.
    pub id: String,
    /// The chooser's label, e.g. "Google".
    pub label: String,
    /// The client.
    pub oidc: deskgate_oidc::Oidc,
    /// Account and group rules.
    pub policy: AccountPolicy,
    /// Whether signing out also signs out at the provider.
    pub end_session: bool,
}

/// A configured SAML identity provider.
#[cfg(feature = "saml")]
#[derive(Debug, Clone)]
pub struct SamlProvider {
    /// The id in its table name and URLs (`/.deskgate/saml/<key>/…`).
    pub key: String,
    /// Provider id as sessions and the backend see it: `saml.<key>`.
    pub id: String,
    /// The chooser's label, e.g. "OneLogin".
    pub label: String,
    /// The service provider.
    pub saml: deskgate_saml::Saml,
    /// Account and group rules.
    pub policy: AccountPolicy,
}
