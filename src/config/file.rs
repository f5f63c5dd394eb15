//! The configuration file as written: plain serde types, one per TOML table.
//!
//! Every value is optional here so that a missing key becomes a problem reported by
//! `compile` together with all the others, instead of stopping deserialization at the
//! first one. Unknown keys are collected by the loader (see `load.rs`) and are errors.

use std::collections::BTreeMap;

use serde::Deserialize;

/// The whole file.
#[derive(Debug, Default, Deserialize)]
pub struct FileConfig {
    /// Where deskgate listens and how it is reached.
    pub server: Option<ServerFile>,
    /// The application deskgate protects: where requests no route names go.
    pub upstream: Option<UpstreamFile>,
    /// Further applications, keyed by id, that `[[routes]]` send requests to.
    pub upstreams: Option<BTreeMap<String, UpstreamFile>>,
    /// Which requests go to which of `[upstreams]`: by path prefix and/or host.
    pub routes: Option<Vec<RouteFile>>,
    /// Session cookie and lifetimes.
    pub session: Option<SessionFile>,
    /// Where sessions and accounts are kept.
    pub storage: Option<StorageFile>,
    /// Self sign-up for built-in accounts.
    pub registration: Option<RegistrationFile>,
    /// The mail server that sends sign-up validation links and password-reset links.
    pub smtp: Option<SmtpFile>,
    /// Password reset for built-in accounts by a mailed link.
    pub password_reset: Option<PasswordResetFile>,
    /// The built-in usergroup of guests (and of everyone signed in).
    pub everyone: Option<EveryoneFile>,
    /// The built-in usergroup of every signed-in account.
    pub registered: Option<RegisteredFile>,
    /// Custom usergroups, keyed by id.
    pub usergroups: Option<BTreeMap<String, UsergroupFile>>,
    /// Organizations, keyed by id.
    pub organizations: Option<BTreeMap<String, OrganizationFile>>,
    /// Static usergroup assignments by account email.
    pub assignments: Option<Vec<AssignmentFile>>,
    /// Access rules: path → required permission.
    pub rules: Option<Vec<RuleFile>>,
    /// Identity providers, keyed by kind, then id.
    pub providers: Option<ProvidersFile>,
    /// Names of the headers deskgate injects.
    pub headers: Option<HeadersFile>,
    /// The JWT handed to the backend.
    pub jwt: Option<JwtFile>,
    /// Sign-in attempt limits.
    pub rate_limit: Option<RateLimitFile>,
    /// API tokens (`Authorization: Bearer dg_…`).
    pub api_tokens: Option<ApiTokensFile>,
    /// Bounds on what requests from nobody signed in may make the gateway keep or do.
    pub limits: Option<LimitsFile>,
    /// The Prometheus metrics listener.
    pub metrics: Option<MetricsFile>,
    /// How `deskgate serve` logs.
    pub log: Option<LogFile>,
    /// Security keys and passkeys as a second factor.
    pub webauthn: Option<WebauthnFile>,
}

/// `[webauthn]`
#[derive(Debug, Default, Deserialize)]
pub struct WebauthnFile {
    /// The relying party id keys are bound to: the public URL's host, or a parent domain of it.
    pub rp_id: Option<String>,
    /// The origin browsers sign in from (default: the public URL's origin).
    pub rp_origin: Option<String>,
}

/// `[log]`
#[derive(Debug, Default, Deserialize)]
pub struct LogFile {
    /// `text` (default) or `json` (one object per line).
    pub format: Option<String>,
    /// A file the audit events go to instead of standard output.
    pub audit_file: Option<String>,
}

/// `[metrics]`
#[derive(Debug, Default, Deserialize)]
pub struct MetricsFile {
    /// Address of the metrics listener (default `127.0.0.1:9464`); never the public one.
    pub listen: Option<String>,
    /// Path the metrics are served at (default `/metrics`).
    pub path: Option<String>,
}

/// `[server]`
#[derive(Debug, Default, Deserialize)]
pub struct ServerFile {
    /// Socket address to listen on.
    pub listen: Option<String>,
    /// The URL people use to reach deskgate.
    pub public_url: Option<String>,
    /// Addresses or CIDR ranges of proxies whose `X-Forwarded-*` headers are believed.
    pub trusted_proxies: Option<Vec<String>>,
    /// Largest request body forwarded to the upstream, in bytes.
    pub max_body_bytes: Option<u64>,
    /// Time allowed for deskgate's own pages to answer.
    pub request_timeout: Option<String>,
    /// Serving threads; 0 or absent: one per CPU core.
    pub workers: Option<u64>,
    /// Time a connection has to send a whole request head, from when it opens or its
    /// previous response ends and its next request's first byte arrives.
    pub header_read_timeout: Option<String>,
    /// An open connection with no request under way is closed after this long.
    pub idle_timeout: Option<String>,
    /// A request body that sends nothing for this long while deskgate waits for it is cut off.
    pub body_read_timeout: Option<String>,
    /// Open client connections at most; further ones wait to be accepted.
    pub max_connections: Option<u64>,
    /// How long a stopping deskgate lets requests under way finish.
    pub shutdown_timeout: Option<String>,
    /// Pass client headers whose name contains `_` (dropped by default).
    pub allow_underscores_in_headers: Option<bool>,
    /// Override headers a backend framework may route by (`X-Original-URL`, ...) that are
    /// passed on; all others of that family are removed.
    pub allowed_override_headers: Option<Vec<String>>,
    /// HTTPS on the listener.
    pub tls: Option<TlsFile>,
}

/// `[server.tls]`
#[derive(Debug, Default, Deserialize)]
pub struct TlsFile {
    /// PEM certificate chain, leaf first; read again at each reload.
    pub cert_file: Option<String>,
    /// PEM private key of the certificate; read again at each reload.
    pub key_file: Option<String>,
    /// A plain-HTTP listener that only redirects to the https public URL.
    pub redirect_listen: Option<String>,
    /// `Strict-Transport-Security` max-age (absent: the header is not sent).
    pub hsts_max_age: Option<String>,
    /// Add `includeSubDomains` to `Strict-Transport-Security`.
    pub hsts_include_subdomains: Option<bool>,
}

/// `[upstream]`
#[derive(Debug, Default, Deserialize)]
pub struct UpstreamFile {
    /// The upstream's base URL.
    pub url: Option<String>,
    /// Time allowed to open a connection.
    pub connect_timeout: Option<String>,
    /// Time allowed until the upstream's response headers arrive.
    pub timeout: Option<String>,
    /// Speak HTTP/2 (prior knowledge) to the upstream.
    pub http2: Option<bool>,
}

/// `[[routes]]`
#[derive(Debug, Default, Deserialize)]
pub struct RouteFile {
    /// Path prefix, matched at a segment boundary on the normalized path (`/api`).
    pub prefix: Option<String>,
    /// Host, without port (`chat.example.com`, `*.example.com`).
    pub host: Option<String>,
    /// The id of the `[upstreams.<id>]` table the requests go to.
    pub upstream: Option<String>,
}

/// `[session]`
#[derive(Debug, Default, Deserialize)]
pub struct SessionFile {
    /// Session cookie name.
    pub cookie_name: Option<String>,
    /// A session unused for this long ends.
    pub idle_timeout: Option<String>,
    /// A session ends this long after sign-in, used or not.
    pub absolute_timeout: Option<String>,
    /// How often a session's directory groups (and OIDC claims, with `refresh_groups`) are
    /// read again; `"off"` (or `"0"`) never.
    pub recheck_interval: Option<String>,
    /// File holding the secret that keys CSRF tokens and pending sign-in cookies.
    pub secret_file: Option<String>,
    /// Environment variable holding that secret.
    pub secret_env: Option<String>,
    /// The parent domain the session cookie is set for, so one sign-in serves every app
    /// under it (absent: the public URL's host only).
    pub cookie_domain: Option<String>,
    /// Domains whose https hosts a sign-in or sign-out may return to (absent: local paths only).
    pub redirect_domains: Option<Vec<String>>,
}

/// `[storage]`
#[derive(Debug, Default, Deserialize)]
pub struct StorageFile {
    /// Account store: `sqlite://PATH` (relative to the config file), `sqlite::memory:`, or
    /// `postgres://USER[:PASSWORD]@HOST[:PORT]/DATABASE` (also `postgresql://`) for several
    /// replicas sharing one database.
    pub accounts: Option<String>,
    /// Session store: `memory` (this process only), or `redis://HOST:PORT[/DB]` for several
    /// replicas sharing sessions, sign-in counters and pending logins.
    pub sessions: Option<String>,
    /// Prefix of every Redis key deskgate writes (default `deskgate:`), so that several
    /// gateways or applications can share one Redis.
    pub redis_prefix: Option<String>,
    /// How long a replica reuses a session it read from Redis before reading it again
    /// (default `1s`; `0s` reads Redis on every request). A sign-out on another replica
    /// takes effect here within this time.
    pub redis_local_cache: Option<String>,
    /// TLS to PostgreSQL: `disable`, `prefer` (the default), `require` or `verify-full`
    /// (also accepted as `sslmode` in the URL, but not in both places).
    pub postgres_sslmode: Option<String>,
    /// PEM file of the CA that signed the PostgreSQL server's certificate (`verify-full`).
    pub postgres_ca_file: Option<String>,
    /// PEM certificate deskgate shows PostgreSQL, for `cert` authentication.
    pub postgres_client_cert_file: Option<String>,
    /// PEM private key of `postgres_client_cert_file`.
    pub postgres_client_key_file: Option<String>,
    /// File holding the PostgreSQL password (one final newline is dropped).
    pub postgres_password_file: Option<String>,
    /// PEM file of the CA that signed Redis's certificate (`rediss://`); the system's CAs
    /// otherwise.
    pub redis_ca_file: Option<String>,
    /// PEM certificate deskgate shows Redis (`tls-auth-clients`).
    pub redis_client_cert_file: Option<String>,
    /// PEM private key of `redis_client_cert_file`.
    pub redis_client_key_file: Option<String>,
    /// ACL user deskgate signs in to Redis as (`default` when absent).
    pub redis_username: Option<String>,
    /// File holding the Redis password (one final newline is dropped).
    pub redis_password_file: Option<String>,
    /// Name of the master the sentinels watch; with it, the master's address comes from
    /// `redis_sentinels`.
    pub redis_sentinel_master: Option<String>,
    /// Sentinel addresses, `HOST:PORT` each.
    pub redis_sentinels: Option<Vec<String>>,
    /// ACL user deskgate signs in to the sentinels as (`default` when absent).
    pub redis_sentinel_username: Option<String>,
    /// File holding the sentinels' password (`requirepass` in sentinel.conf).
    pub redis_sentinel_password_file: Option<String>,
    /// Replicas that must acknowledge a new session before the sign-in answers (default 0).
    pub redis_wait_replicas: Option<u32>,
    /// How long a sign-in waits for that acknowledgement (default `100ms`).
    pub redis_wait_timeout: Option<String>,
}

/// `[registration]`
#[derive(Debug, Default, Deserialize)]
pub struct RegistrationFile {
    /// `open`, `email-validation`, `approval` or `disabled`.
    pub mode: Option<String>,
}

/// `[api_tokens]`
#[derive(Debug, Default, Deserialize)]
pub struct ApiTokensFile {
    /// The longest expiry a new token may have (default `90d`).
    pub max_ttl: Option<String>,
    /// Most live tokens per account (default 20).
    pub max_per_account: Option<u32>,
}

/// `[password_reset]`
#[derive(Debug, Default, Deserialize)]
pub struct PasswordResetFile {
    /// Whether built-in accounts may reset a forgotten password by mail (needs `[smtp]`).
    pub enabled: Option<bool>,
    /// How long a reset link works (default `1h`).
    pub ttl: Option<String>,
}

/// `[smtp]`
#[derive(Debug, Default, Deserialize)]
pub struct SmtpFile {
    /// Mail server host name or address.
    pub host: Option<String>,
    /// Mail server port (default 25).
    pub port: Option<u16>,
    /// The sender address, e.g. `Helpdesk <noreply@example.com>`.
    pub from: Option<String>,
    /// Upgrade the connection with STARTTLS (not built in: plain SMTP only).
    pub starttls: Option<bool>,
    /// User name for SMTP AUTH.
    pub username: Option<String>,
    /// File holding the SMTP AUTH password.
    pub password_file: Option<String>,
    /// How long a validation link works (default `24h`).
    pub validation_ttl: Option<String>,
    /// Subject of the validation mail; `{name}` is replaced.
    pub subject: Option<String>,
    /// Body of the validation mail; `{name}` and `{link}` are replaced.
    pub body: Option<String>,
}

/// `[everyone]`
#[derive(Debug, Default, Deserialize)]
pub struct EveryoneFile {
    /// Whether guests may do anything at all.
    pub enabled: Option<bool>,
    /// What guests (and everyone else) may do.
    pub permissions: Option<Vec<String>>,
}

/// `[registered]`
#[derive(Debug, Default, Deserialize)]
pub struct RegisteredFile {
    /// What every signed-in account may do.
    pub permissions: Option<Vec<String>>,
}

/// `[usergroups.ID]`
#[derive(Debug, Default, Deserialize)]
pub struct UsergroupFile {
    /// Display name.
    pub name: Option<String>,
    /// Permissions the usergroup grants.
    pub permissions: Option<Vec<String>>,
    /// `required`: every member must use a second factor, and one without is taken to enrol
    /// at their next request; `optional` (the default): members choose.
    pub mfa: Option<String>,
}

/// `[organizations.ID]`
#[derive(Debug, Default, Deserialize)]
pub struct OrganizationFile {
    /// Display name.
    pub name: Option<String>,
    /// Email domains whose accounts belong to the organization.
    pub domains: Option<Vec<String>>,
    /// Usergroups every member is in.
    pub usergroups: Option<Vec<String>>,
}

/// `[[assignments]]`
#[derive(Debug, Default, Deserialize)]
pub struct AssignmentFile {
    /// Account email.
    pub email: Option<String>,
    /// Usergroups assigned to it.
    pub usergroups: Option<Vec<String>>,
}

/// `[[rules]]`
#[derive(Debug, Default, Deserialize)]
pub struct RuleFile {
    /// Path pattern: the path and everything below it; `*` matches one segment.
    pub path: Option<String>,
    /// Permission required; a rule has this or `public = true`, never both.
    pub permission: Option<String>,
    /// Anyone passes, even when Everyone is disabled; the backend gets a guest as nobody.
    pub public: Option<bool>,
    /// The methods the rule governs (`["POST", "PUT"]`, any case); every method when absent.
    pub methods: Option<Vec<String>>,
    /// The host the rule applies to (`help.example.com`, `*.example.com`); when one rule
    /// names a host, every rule must.
    pub host: Option<String>,
    /// `required`: only a person who used a second factor in this session passes (others
    /// are asked for it first); `optional` (the default): the rule asks nothing more.
    pub mfa: Option<String>,
}

/// `[providers]`
#[derive(Debug, Default, Deserialize)]
pub struct ProvidersFile {
    /// Built-in accounts.
    pub builtin: Option<BuiltinFile>,
    /// LDAP and Active Directory directories, keyed by id.
    #[cfg(feature = "ldap")]
    pub ldap: Option<BTreeMap<String, deskgate_ldap::LdapConfig>>,
    /// OpenID Connect providers (Google is a preset), keyed by id.
    #[cfg(feature = "oidc")]
    pub oidc: Option<BTreeMap<String, deskgate_oidc::OidcConfig>>,
    /// SAML 2.0 identity providers (OneLogin is a preset), keyed by id.
    #[cfg(feature = "saml")]
    pub saml: Option<BTreeMap<String, deskgate_saml::SamlConfig>>,
}

/// `[providers.builtin]`
#[derive(Debug, Default, Deserialize)]
pub struct BuiltinFile {
    /// Whether built-in accounts may sign in.
    pub enabled: Option<bool>,
}

/// `[headers]`
#[derive(Debug, Default, Deserialize)]
pub struct HeadersFile {
    /// Prefix of every injected header.
    pub prefix: Option<String>,
}

/// `[jwt]`
#[derive(Debug, Default, Deserialize)]
pub struct JwtFile {
    /// PKCS#8 PEM file with the Ed25519 signing key.
    pub key_file: Option<String>,
    /// Lifetime of each token.
    pub ttl: Option<String>,
    /// `aud` claim.
    pub audience: Option<String>,
    /// `aud` claim by host (`help.example.com`, `*.example.com`), where it differs.
    pub host_audiences: Option<BTreeMap<String, String>>,
}

/// `[rate_limit]`
#[derive(Debug, Default, Deserialize)]
pub struct RateLimitFile {
    /// Window over which failures are counted.
    pub window: Option<String>,
    /// Failed sign-ins allowed per account in a window.
    pub per_account: Option<u32>,
    /// Failed sign-ins allowed per client address in a window.
    pub per_address: Option<u32>,
    /// Failed sign-ins allowed per account from one client address in a window.
    pub per_account_and_address: Option<u32>,
    /// The longest delay before answering a sign-in to an account under attack.
    pub max_delay: Option<String>,
}

/// `[limits]`
#[derive(Debug, Default, Deserialize)]
pub struct LimitsFile {
    /// Most counters the in-memory store keeps at once.
    pub memory_counters: Option<u64>,
    /// Most one-time values the in-memory store keeps at once.
    pub memory_one_time_values: Option<u64>,
    /// Password checks and hashes run at once (0: one per CPU).
    pub hashing_concurrency: Option<u32>,
    /// Memory the password hashing may use at once, in MiB.
    pub hashing_memory_mib: Option<u32>,
    /// How long a sign-in waits for a free password check before it is answered 503.
    pub hashing_wait: Option<String>,
    /// Window over which sign-ups and validation mails are counted.
    pub sign_up_window: Option<String>,
    /// Sign-ups allowed per client address in a window.
    pub sign_ups_per_address: Option<u32>,
    /// Sign-ups allowed from all addresses together in a window.
    pub sign_ups_total: Option<u32>,
    /// Most accounts waiting for validation or approval at once.
    pub pending_sign_ups: Option<u64>,
    /// Validation mails (first and resent) allowed per client address in a window.
    pub validation_mails_per_address: Option<u32>,
    /// Validation mails allowed in all in a window.
    pub validation_mails_total: Option<u32>,
}
