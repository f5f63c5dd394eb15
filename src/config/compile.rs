//! File → running config. Pure apart from reading secret files and the environment;
//! collects every problem instead of stopping at the first.

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use deskgate_provider::config::{Problem, parse_duration};

use super::file::*;
use super::*;
use crate::policy::{HostPattern, Policies, Policy, Rule};
use crate::usergroups::{EVERYONE, Model, Organization, REGISTERED, Usergroup};

mod limits;
mod storage;

struct Ctx<'a> {
    problems: &'a mut Vec<Problem>,
    base: &'a Path,
}

impl Ctx<'_> {
    fn problem(&mut self, path: impl Into<String>, message: impl Into<String>) {
        self.problems.push(Problem::new(path, message));
    }

    /// A file the config names could not be read: an absent secret when it does not exist.
    fn unreadable(&mut self, path: &str, file: &Path, error: &std::io::Error) {
        self.problems.push(Problem::reading(path, file, error));
    }

    fn duration(&mut self, path: &str, value: Option<&String>, default: Duration) -> Duration {
        match value.map(|v| parse_duration(v)) {
            None => default,
            Some(Ok(d)) if d.is_zero() => {
                self.problem(path, "must be longer than zero");
                default
            }
            Some(Ok(d)) => d,
            Some(Err(e)) => {
                self.problem(path, e);
                default
            }
        }
    }

    fn secret(&mut self, path: &str, file: Option<&String>, env: Option<&String>) -> Option<Secret> {
        let value = match (file, env) {
            (Some(_), Some(_)) => {
                self.problem(format!("{path}_file"), format!("set {path}_file or {path}_env, not both"));
                return None;
            }
            (Some(f), None) => match std::fs::read(self.base.join(f)) {
                Ok(bytes) => bytes.trim_ascii().to_vec(),
                Err(e) => {
                    self.unreadable(&format!("{path}_file"), &self.base.join(f), &e);
                    return None;
                }
            },
            (None, Some(var)) => match std::env::var(var) {
                Ok(v) => v.trim().as_bytes().to_vec(),
                Err(e) => {
                    self.problems.push(Problem::variable(format!("{path}_env"), var, &e));
                    return None;
                }
            },
            (None, None) => return None,
        };
        if value.len() < 32 {
            let key = if file.is_some() { "_file" } else { "_env" };
            self.problem(format!("{path}{key}"), "the secret must be at least 32 bytes");
            return None;
        }
        Some(Secret(value))
    }
}

impl Ctx<'_> {
    /// Reports why a certificate and key could not be loaded, at the key naming the file.
    fn tls_problem(&mut self, files: &crate::tls::TlsFiles, e: &crate::tls::TlsError, cert: &str, key: &str) {
        let at = match e {
            crate::tls::TlsError::Read { path, .. } if *path == files.cert_file => cert,
            crate::tls::TlsError::NoCertificate(_) => cert,
            _ => key,
        };
        self.file_problem(at, e);
    }

    /// A problem with a PEM file the config names; one that does not exist is an absent
    /// secret (keys and certificates are the deployment's own).
    fn file_problem(&mut self, at: &str, e: &crate::tls::TlsError) {
        match e {
            crate::tls::TlsError::Read { path, source } => self.unreadable(at, path, source),
            _ => self.problem(at, deskgate_provider::error_chain(e)),
        }
    }
}

fn valid_id(id: &str) -> bool {
    !id.is_empty()
        && id.len() <= 64
        && id.bytes().all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'_' || b == b'-')
}

fn valid_permission(p: &str) -> bool {
    !p.is_empty()
        && p.len() <= 128
        && p.bytes().all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'_' | b'-' | b':'))
}

fn valid_header_prefix(p: &str) -> bool {
    !p.is_empty() && http::HeaderName::from_bytes(format!("{p}User").as_bytes()).is_ok()
}

/// Compiles a parsed file; problems are appended to `problems`.
pub(super) fn compile(mut file: FileConfig, base: &Path, problems: &mut Vec<Problem>) -> Config {
    let mut cx = Ctx { problems, base };
    let server = server(&mut cx, file.server.take().unwrap_or_default());
    let upstream = upstream(&mut cx, file.upstream.take());
    let session = session(&mut cx, file.session.take().unwrap_or_default(), &server.public_url);
    let storage = storage::storage(&mut cx, file.storage.take().unwrap_or_default());
    let builtin_enabled =
        file.providers.as_ref().and_then(|p| p.builtin.as_ref()).and_then(|b| b.enabled).unwrap_or(true);
    let registration = registration(&mut cx, file.registration.take(), file.smtp.take(), builtin_enabled);
    let model = model(&mut cx, &file);
    let policy = policy(&mut cx, file.rules.take().unwrap_or_default(), &model);
    let providers = file.providers.take().unwrap_or_default();
    #[cfg(feature = "ldap")]
    let ldap = ldap(&mut cx, providers.ldap.unwrap_or_default(), &model);
    #[cfg(feature = "oidc")]
    let oidc = oidc(&mut cx, providers.oidc.unwrap_or_default(), &model);
    #[cfg(feature = "saml")]
    let saml = saml(&mut cx, providers.saml.unwrap_or_default(), &model, &server.public_url);
    let mut others = false;
    #[cfg(feature = "ldap")]
    {
        others |= !ldap.is_empty();
    }
    #[cfg(feature = "oidc")]
    {
        others |= !oidc.is_empty();
    }
    #[cfg(feature = "saml")]
    {
        others |= !saml.is_empty();
    }
    if !builtin_enabled && !others {
        cx.problem("providers.builtin.enabled", "no identity provider is enabled: nobody could sign in");
    }
    if !builtin_enabled && registration.allows_sign_up() {
        cx.problem("registration.mode", "sign-up is allowed but built-in accounts are disabled");
    }
    let headers = file.headers.take().unwrap_or_default();
    let header_prefix = headers.prefix.unwrap_or_else(|| "X-Deskgate-".into());
    if !valid_header_prefix(&header_prefix) {
        cx.problem("headers.prefix", format!("`{header_prefix}` cannot start a header name"));
    }
    let jwt_file = file.jwt.take().unwrap_or_default();
    let jwt = Jwt {
        key_file: jwt_file.key_file.map(|f| base.join(f)),
        ttl: cx.duration("jwt.ttl", jwt_file.ttl.as_ref(), Duration::from_secs(300)),
        audience: jwt_file.audience.unwrap_or_else(|| "deskgate".into()),
        host_audiences: host_audiences(&mut cx, jwt_file.host_audiences.unwrap_or_default()),
    };
    let rate_limit = limits::rate_limit(&mut cx, file.rate_limit.take().unwrap_or_default());
    let limits = limits::limits(&mut cx, file.limits.take().unwrap_or_default());
    let metrics = file.metrics.take().map(|m| metrics(&mut cx, m, server.listen));
    let log = log(&mut cx, file.log.take().unwrap_or_default());
    Config {
        metrics,
        log,
        server,
        upstream,
        session,
        storage,
        registration,
        model: Arc::new(model),
        policy: Arc::new(policy),
        builtin_enabled,
        #[cfg(feature = "ldap")]
        ldap,
        #[cfg(feature = "oidc")]
        oidc,
        #[cfg(feature = "saml")]
        saml,
        header_prefix,
        jwt,
        rate_limit,
        limits,
        fingerprint: 0,
    }
}

fn log(cx: &mut Ctx<'_>, f: LogFile) -> crate::logging::Log {
    let format = match f.format.as_deref() {
        None | Some("text") => crate::logging::Format::Text,
        Some("json") => crate::logging::Format::Json,
        Some(other) => {
            cx.problem("log.format", format!("`{other}` is not `text` or `json`"));
            crate::logging::Format::Text
        }
    };
    crate::logging::Log { format, audit_file: f.audit_file.map(|p| cx.base.join(p)) }
}

fn metrics(cx: &mut Ctx<'_>, f: MetricsFile, public: SocketAddr) -> MetricsListener {
    let default = SocketAddr::from(([127, 0, 0, 1], 9464));
    let listen = match f.listen.as_deref().map(str::parse::<SocketAddr>) {
        None => default,
        Some(Ok(a)) => a,
        Some(Err(_)) => {
            cx.problem("metrics.listen", "must be an address and port such as `127.0.0.1:9464`");
            default
        }
    };
    if listen == public {
        cx.problem("metrics.listen", "must not be server.listen: metrics are not for the public listener");
    }
    let path = f.path.unwrap_or_else(|| "/metrics".into());
    if !path.starts_with('/') || path.contains(['?', '#']) {
        cx.problem("metrics.path", format!("`{path}` must be a path starting with `/`"));
    }
    MetricsListener { listen, path }
}

/// `[registration]`; without a mode, sign-up is open, or off when there are no built-in
/// accounts to sign up for.
fn registration(
    cx: &mut Ctx<'_>,
    f: Option<RegistrationFile>,
    smtp: Option<SmtpFile>,
    builtin_enabled: bool,
) -> Registration {
    let mode = f.and_then(|r| r.mode);
    let registration = match mode.as_deref() {
        None if !builtin_enabled => Registration::Disabled,
        None | Some("open") => Registration::Open,
        Some("approval") => Registration::Approval,
        Some("disabled") => Registration::Disabled,
        Some("email-validation") => match &smtp {
            Some(s) => Registration::EmailValidation(self::smtp(cx, s)),
            None => {
                cx.problem("registration.mode", "`email-validation` needs an [smtp] table to send the links");
                Registration::Open
            }
        },
        Some(other) => {
            cx.problem(
                "registration.mode",
                format!("`{other}` is not one of `open`, `email-validation`, `approval`, `disabled`"),
            );
            Registration::Open
        }
    };
    if smtp.is_some() && mode.as_deref() != Some("email-validation") {
        cx.problem("smtp", "[smtp] is only used when registration.mode is `email-validation`");
    }
    registration
}

fn smtp(cx: &mut Ctx<'_>, f: &SmtpFile) -> Smtp {
    let host = f.host.clone().unwrap_or_default();
    if host.trim().is_empty() {
        cx.problem("smtp.host", "the mail server's host is required");
    }
    let port = f.port.unwrap_or(25);
    if port == 0 {
        cx.problem("smtp.port", "must be between 1 and 65535");
    }
    let from = f.from.clone().unwrap_or_default();
    if from.trim().is_empty() {
        cx.problem("smtp.from", "the sender address is required");
    } else if from.parse::<lettre::message::Mailbox>().is_err() {
        cx.problem("smtp.from", format!("`{from}` is not a mail address"));
    }
    if f.starttls == Some(true) {
        cx.problem(
            "smtp.starttls",
            "STARTTLS is not supported: use plain SMTP to a relay on loopback or a private network",
        );
    }
    let credentials = match (&f.username, &f.password_file) {
        (Some(user), Some(file)) => match std::fs::read_to_string(cx.base.join(file)) {
            Ok(p) => Some((user.clone(), Password(p.trim().to_owned()))),
            Err(e) => {
                cx.unreadable("smtp.password_file", &cx.base.join(file), &e);
                None
            }
        },
        (None, None) => None,
        (Some(_), None) => {
            cx.problem("smtp.password_file", "set together with smtp.username");
            None
        }
        (None, Some(_)) => {
            cx.problem("smtp.username", "set together with smtp.password_file");
            None
        }
    };
    let validation_ttl =
        cx.duration("smtp.validation_ttl", f.validation_ttl.as_ref(), Duration::from_secs(24 * 3600));
    let body = f.body.clone().unwrap_or_else(|| DEFAULT_BODY.to_owned());
    if !body.contains("{link}") {
        cx.problem("smtp.body", "the body must contain `{link}`");
    }
    Smtp {
        host,
        port,
        from,
        credentials,
        validation_ttl,
        subject: f.subject.clone().unwrap_or_else(|| DEFAULT_SUBJECT.to_owned()),
        body,
    }
}

fn server(cx: &mut Ctx<'_>, f: ServerFile) -> Server {
    let default_listen: SocketAddr = SocketAddr::from(([127, 0, 0, 1], 8080));
    let listen = match f.listen.as_deref().map(str::parse::<SocketAddr>) {
        None => default_listen,
        Some(Ok(a)) => a,
        Some(Err(_)) => {
            cx.problem("server.listen", "must be an address and port such as `127.0.0.1:8080`");
            default_listen
        }
    };
    let tls = f.tls.map(|t| tls(cx, t));
    let scheme = if tls.is_some() { "https" } else { "http" };
    let public_url = f.public_url.unwrap_or_else(|| format!("{scheme}://{listen}"));
    let public_url = public_url.trim_end_matches('/').to_owned();
    let secure = public_url.starts_with("https://");
    if !secure && !public_url.starts_with("http://") || public_url.parse::<http::Uri>().is_err() {
        cx.problem("server.public_url", format!("`{public_url}` is not an http(s) URL"));
    }
    let mut trusted_proxies = Vec::new();
    for (i, p) in f.trusted_proxies.unwrap_or_default().iter().enumerate() {
        match p.parse() {
            Ok(r) => trusted_proxies.push(r),
            Err(e) => cx.problem(format!("server.trusted_proxies[{i}]"), e),
        }
    }
    let request_timeout =
        cx.duration("server.request_timeout", f.request_timeout.as_ref(), Duration::from_secs(30));
    let workers = match f.workers.unwrap_or(0) {
        0 => std::thread::available_parallelism().map_or(1, usize::from),
        n if n <= 256 => usize::try_from(n).unwrap_or(1),
        n => {
            cx.problem("server.workers", format!("{n} serving threads is more than 256"));
            1
        }
    };
    let defaults = crate::connections::ConnectionLimits::DEFAULT;
    let mut timeout = |key: &str, value: Option<&String>, default: Duration| {
        cx.duration(&format!("server.{key}"), value, default)
    };
    let connections = crate::connections::ConnectionLimits {
        header_read_timeout: timeout(
            "header_read_timeout",
            f.header_read_timeout.as_ref(),
            defaults.header_read_timeout,
        ),
        idle_timeout: timeout("idle_timeout", f.idle_timeout.as_ref(), defaults.idle_timeout),
        body_read_timeout: timeout(
            "body_read_timeout",
            f.body_read_timeout.as_ref(),
            defaults.body_read_timeout,
        ),
        shutdown_timeout: timeout("shutdown_timeout", f.shutdown_timeout.as_ref(), defaults.shutdown_timeout),
        max_connections: match f.max_connections {
            None => defaults.max_connections,
            Some(n @ 1..=1_000_000) => usize::try_from(n).unwrap_or(1),
            Some(n) => {
                cx.problem("server.max_connections", format!("{n} must be between 1 and 1000000"));
                1
            }
        },
    };
    let mut allowed_override_headers = Vec::new();
    for (i, name) in f.allowed_override_headers.unwrap_or_default().iter().enumerate() {
        match http::HeaderName::from_bytes(name.as_bytes()) {
            Ok(h) if crate::edge::is_override_header(&h) => allowed_override_headers.push(h),
            Ok(_) => cx.problem(
                format!("server.allowed_override_headers[{i}]"),
                format!("`{name}` is not an override header; other headers need no allowing"),
            ),
            Err(_) => cx.problem(
                format!("server.allowed_override_headers[{i}]"),
                format!("`{name}` is not a header name"),
            ),
        }
    }
    if tls.is_some() && !secure {
        cx.problem("server.public_url", "must be an https URL when server.tls is set");
    }
    Server {
        tls: tls.flatten(),
        connections,
        allow_underscores_in_headers: f.allow_underscores_in_headers.unwrap_or(false),
        allowed_override_headers,
        workers,
        listen,
        public_url,
        secure,
        trusted_proxies,
        max_body_bytes: f.max_body_bytes.unwrap_or(100 * 1024 * 1024),
        request_timeout,
    }
}

fn tls(cx: &mut Ctx<'_>, f: TlsFile) -> Option<crate::config::Tls> {
    let (Some(cert), Some(key)) = (f.cert_file, f.key_file) else {
        cx.problem("server.tls", "needs both cert_file and key_file");
        return None;
    };
    let files = crate::tls::TlsFiles { cert_file: cx.base.join(cert), key_file: cx.base.join(key) };
    let redirect_listen = match f.redirect_listen.as_deref().map(str::parse::<SocketAddr>) {
        None => None,
        Some(Ok(a)) => Some(a),
        Some(Err(_)) => {
            cx.problem("server.tls.redirect_listen", "must be an address and port such as `0.0.0.0:80`");
            None
        }
    };
    let hsts = f.hsts_max_age.as_ref().map(|age| {
        let age = cx.duration("server.tls.hsts_max_age", Some(age), Duration::from_secs(365 * 86_400));
        let sub = if f.hsts_include_subdomains.unwrap_or(false) { "; includeSubDomains" } else { "" };
        http::HeaderValue::from_str(&format!("max-age={}{sub}", age.as_secs()))
            .unwrap_or_else(|_| http::HeaderValue::from_static("max-age=31536000"))
    });
    if f.hsts_include_subdomains.is_some() && hsts.is_none() {
        cx.problem("server.tls.hsts_include_subdomains", "needs hsts_max_age");
    }
    match crate::tls::load(&files) {
        Ok(key) => Some(crate::config::Tls { files, key, redirect_listen, hsts }),
        Err(e) => {
            cx.tls_problem(&files, &e, "server.tls.cert_file", "server.tls.key_file");
            None
        }
    }
}

fn upstream(cx: &mut Ctx<'_>, f: Option<UpstreamFile>) -> Upstream {
    let fallback = http::Uri::from_static("http://127.0.0.1:8081");
    let f = f.unwrap_or_default();
    let url = match f.url.as_deref() {
        None => {
            cx.problem("upstream.url", "is required: the URL of the application deskgate protects");
            fallback
        }
        Some(u) => match u.parse::<http::Uri>() {
            Ok(uri)
                if uri.scheme_str() == Some("http") && uri.authority().is_some() && uri.query().is_none() =>
            {
                uri
            }
            Ok(uri) if uri.scheme_str() == Some("https") => {
                cx.problem(
                    "upstream.url",
                    "https upstreams are not supported yet; use http on a private network",
                );
                fallback
            }
            _ => {
                cx.problem("upstream.url", format!("`{u}` is not an http URL without a query"));
                fallback
            }
        },
    };
    Upstream {
        url,
        connect_timeout: cx.duration(
            "upstream.connect_timeout",
            f.connect_timeout.as_ref(),
            Duration::from_secs(5),
        ),
        timeout: cx.duration("upstream.timeout", f.timeout.as_ref(), Duration::from_secs(60)),
        http2: f.http2.unwrap_or(false),
    }
}

fn session(cx: &mut Ctx<'_>, f: SessionFile, public_url: &str) -> Session {
    let cookie_name = f.cookie_name.unwrap_or_else(|| "deskgate_session".into());
    if cookie_name.is_empty()
        || !cookie_name.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-')
    {
        cx.problem("session.cookie_name", "may hold only letters, digits, `_` and `-`");
    }
    let idle_timeout =
        cx.duration("session.idle_timeout", f.idle_timeout.as_ref(), Duration::from_secs(8 * 3600));
    let absolute_timeout =
        cx.duration("session.absolute_timeout", f.absolute_timeout.as_ref(), Duration::from_secs(7 * 86_400));
    if idle_timeout > absolute_timeout {
        cx.problem("session.idle_timeout", "is longer than session.absolute_timeout");
    }
    let recheck_interval = match f.recheck_interval.as_deref().map(str::trim) {
        Some("off" | "0") => None,
        value => Some(cx.duration(
            "session.recheck_interval",
            value.map(str::to_owned).as_ref(),
            Duration::from_secs(15 * 60),
        )),
    };
    let secret = cx.secret("session.secret", f.secret_file.as_ref(), f.secret_env.as_ref());
    let domain = |cx: &mut Ctx<'_>, key: &str, text: &str| {
        let name = text.strip_prefix('.').unwrap_or(text).to_ascii_lowercase();
        match HostPattern::parse(&name) {
            Ok(HostPattern::Exact(name)) if name.contains('.') => Some(name),
            _ => {
                cx.problem(key, format!("`{text}` is not a domain name such as example.com"));
                None
            }
        }
    };
    let cookie_domain = f.cookie_domain.as_deref().and_then(|d| domain(cx, "session.cookie_domain", d));
    if let Some(d) = &cookie_domain {
        let host = public_url.parse::<http::Uri>().ok().and_then(|u| u.host().map(str::to_ascii_lowercase));
        if !host.is_some_and(|h| crate::redirect::under_domain(&h, d)) {
            cx.problem(
                "session.cookie_domain",
                format!("the public URL's host is not under `{d}`: browsers would refuse the cookie"),
            );
        }
    }
    let redirect_domains = f
        .redirect_domains
        .unwrap_or_default()
        .iter()
        .enumerate()
        .filter_map(|(i, d)| domain(cx, &format!("session.redirect_domains[{i}]"), d))
        .collect();
    Session {
        cookie_name,
        idle_timeout,
        absolute_timeout,
        recheck_interval,
        secret,
        cookie_domain,
        redirect_domains,
    }
}

fn permissions(cx: &mut Ctx<'_>, path: &str, list: Option<Vec<String>>) -> BTreeSet<String> {
    let mut out = BTreeSet::new();
    for (i, p) in list.unwrap_or_default().into_iter().enumerate() {
        if valid_permission(&p) {
            out.insert(p);
        } else {
            cx.problem(
                format!("{path}[{i}]"),
                format!("`{p}` is not a permission (letters, digits, `.`, `_`, `-`, `:`)"),
            );
        }
    }
    out
}

fn model(cx: &mut Ctx<'_>, file: &FileConfig) -> Model {
    let everyone = file.everyone.as_ref();
    let mut usergroups = BTreeMap::new();
    let builtin =
        |id: &str, name: &str, permissions| Usergroup { id: id.into(), name: name.into(), permissions };
    let perms = permissions(cx, "everyone.permissions", everyone.and_then(|e| e.permissions.clone()));
    usergroups.insert(EVERYONE.to_owned(), builtin(EVERYONE, "Everyone", perms));
    let perms = permissions(
        cx,
        "registered.permissions",
        file.registered.as_ref().and_then(|r| r.permissions.clone()),
    );
    usergroups.insert(REGISTERED.to_owned(), builtin(REGISTERED, "Registered", perms));
    for (id, g) in file.usergroups.iter().flatten() {
        let path = format!("usergroups.{id}");
        if id == EVERYONE || id == REGISTERED {
            cx.problem(&path, format!("`{id}` is built in: set its permissions under [{id}]"));
            continue;
        }
        if !valid_id(id) {
            cx.problem(&path, "usergroup ids may hold only lower-case letters, digits, `_` and `-`");
        }
        let permissions = permissions(cx, &format!("{path}.permissions"), g.permissions.clone());
        let name = g.name.clone().unwrap_or_else(|| id.clone());
        usergroups.insert(id.clone(), Usergroup { id: id.clone(), name, permissions });
    }

    let check_refs =
        |cx: &mut Ctx<'_>, path: &str, ids: &[String]| check_usergroups(cx, path, ids, &usergroups);

    let mut organizations = Vec::new();
    let mut domain_owner: HashMap<String, String> = HashMap::new();
    for (id, o) in file.organizations.iter().flatten() {
        let path = format!("organizations.{id}");
        let ids = o.usergroups.clone().unwrap_or_default();
        check_refs(cx, &format!("{path}.usergroups"), &ids);
        let mut domains = Vec::new();
        for (i, d) in o.domains.clone().unwrap_or_default().into_iter().enumerate() {
            let d = d.trim().to_ascii_lowercase();
            let dpath = format!("{path}.domains[{i}]");
            if d.is_empty() || d.contains(['@', '/', ' ']) || !d.contains('.') {
                cx.problem(dpath, format!("`{d}` is not an email domain"));
            } else if let Some(other) = domain_owner.insert(d.clone(), id.clone()) {
                cx.problem(dpath, format!("`{d}` already belongs to organization `{other}`"));
            } else {
                domains.push(d);
            }
        }
        let name = o.name.clone().unwrap_or_else(|| id.clone());
        organizations.push(Organization { id: id.clone(), name, domains, usergroups: ids });
    }

    let mut assignments: HashMap<String, Vec<String>> = HashMap::new();
    for (i, a) in file.assignments.iter().flatten().enumerate() {
        let path = format!("assignments[{i}]");
        let ids = a.usergroups.clone().unwrap_or_default();
        check_refs(cx, &format!("{path}.usergroups"), &ids);
        match a.email.as_deref().map(str::trim) {
            Some(e) if e.contains('@') => {
                if assignments.insert(e.to_ascii_lowercase(), ids).is_some() {
                    cx.problem(format!("{path}.email"), format!("`{e}` is assigned twice"));
                }
            }
            Some(e) => cx.problem(format!("{path}.email"), format!("`{e}` is not an email address")),
            None => cx.problem(format!("{path}.email"), "is required"),
        }
    }

    let everyone_enabled = everyone.and_then(|e| e.enabled).unwrap_or(true);
    Model { everyone_enabled, usergroups, organizations, assignments }
}

fn check_usergroups(cx: &mut Ctx<'_>, path: &str, ids: &[String], defined: &BTreeMap<String, Usergroup>) {
    for (i, id) in ids.iter().enumerate() {
        if !defined.contains_key(id) {
            cx.problem(format!("{path}[{i}]"), format!("usergroup `{id}` is not defined"));
        }
    }
}

fn group_rules(
    cx: &mut Ctx<'_>,
    path: &str,
    rules: &[deskgate_provider::config::GroupRule],
    model: &Model,
) -> Vec<(String, Vec<String>)> {
    for (i, r) in rules.iter().enumerate() {
        check_usergroups(cx, &format!("{path}[{i}].usergroups"), &r.usergroups, &model.usergroups);
        if r.group.trim().is_empty() {
            cx.problem(format!("{path}[{i}].group"), "is empty");
        }
    }
    rules.iter().map(|r| (r.group.clone(), r.usergroups.clone())).collect()
}

#[cfg(feature = "ldap")]
fn ldap(
    cx: &mut Ctx<'_>,
    directories: BTreeMap<String, deskgate_ldap::LdapConfig>,
    model: &Model,
) -> Vec<LdapProvider> {
    let mut out = Vec::new();
    for (id, mut file) in directories {
        let path = format!("providers.ldap.{id}");
        if !valid_id(&id) {
            cx.problem(&path, "provider ids may hold only lower-case letters, digits, `_` and `-`");
        }
        // Paths in the file are relative to the file, like every other path.
        file.ca_file = file.ca_file.map(|f| cx.base.join(f));
        file.bind_password_file = file.bind_password_file.map(|f| cx.base.join(f));
        let policy = AccountPolicy {
            create_accounts: file.create_accounts,
            link_by_email: file.link_by_email,
            group_rules: group_rules(cx, &format!("{path}.groups"), &file.groups, model),
            group_names: crate::usergroups::GroupNames::Dn,
        };
        match file.build_allowing_absent_secrets(&id) {
            Ok((ldap, absent)) => {
                cx.problems.extend(absent.into_iter().map(|p| p.under(&path)));
                out.push(LdapProvider {
                    id: format!("ldap.{id}"),
                    label: file.display_name.clone().unwrap_or_else(|| format!("Directory account ({id})")),
                    ldap,
                    policy,
                });
            }
            Err(problems) => cx.problems.extend(problems.into_iter().map(|p| p.under(&path))),
        }
    }
    out
}

#[cfg(feature = "oidc")]
fn oidc(
    cx: &mut Ctx<'_>,
    clients: BTreeMap<String, deskgate_oidc::OidcConfig>,
    model: &Model,
) -> Vec<OidcProvider> {
    let mut out = Vec::new();
    for (key, mut file) in clients {
        let path = format!("providers.oidc.{key}");
        if !valid_id(&key) {
            cx.problem(&path, "provider ids may hold only lower-case letters, digits, `_` and `-`");
        }
        file.client_secret_file = file.client_secret_file.map(|f| cx.base.join(f));
        let policy = AccountPolicy {
            create_accounts: file.create_accounts,
            link_by_email: file.link_by_email,
            group_rules: group_rules(cx, &format!("{path}.groups"), &file.groups, model),
            group_names: crate::usergroups::GroupNames::Text,
        };
        match file.build_allowing_absent_secrets(&key) {
            Ok((oidc, absent)) => {
                cx.problems.extend(absent.into_iter().map(|p| p.under(&path)));
                out.push(OidcProvider {
                    id: oidc.provider_id().to_owned(),
                    label: oidc.display_name().to_owned(),
                    key,
                    oidc,
                    policy,
                    end_session: file.end_session,
                });
            }
            Err(problems) => cx.problems.extend(problems.into_iter().map(|p| p.under(&path))),
        }
    }
    out
}

#[cfg(feature = "saml")]
fn saml(
    cx: &mut Ctx<'_>,
    idps: BTreeMap<String, deskgate_saml::SamlConfig>,
    model: &Model,
    public_url: &str,
) -> Vec<SamlProvider> {
    let mut out = Vec::new();
    for (key, mut file) in idps {
        let path = format!("providers.saml.{key}");
        if !valid_id(&key) {
            cx.problem(&path, "provider ids may hold only lower-case letters, digits, `_` and `-`");
        }
        file.idp_metadata_file = file.idp_metadata_file.map(|f| cx.base.join(f));
        file.sp_key_file = file.sp_key_file.map(|f| cx.base.join(f));
        file.sp_cert_file = file.sp_cert_file.map(|f| cx.base.join(f));
        let policy = AccountPolicy {
            create_accounts: file.create_accounts,
            link_by_email: file.link_by_email,
            group_rules: group_rules(cx, &format!("{path}.groups"), &file.groups, model),
            group_names: crate::usergroups::GroupNames::Text,
        };
        match file.build_allowing_absent_secrets(&key, public_url) {
            Ok((saml, absent)) => {
                cx.problems.extend(absent.into_iter().map(|p| p.under(&path)));
                out.push(SamlProvider {
                    id: saml.provider_id().to_owned(),
                    label: saml.display_name().to_owned(),
                    key,
                    saml,
                    policy,
                });
            }
            Err(problems) => cx.problems.extend(problems.into_iter().map(|p| p.under(&path))),
        }
    }
    out
}

fn host_audiences(cx: &mut Ctx<'_>, table: BTreeMap<String, String>) -> Vec<(HostPattern, String)> {
    let mut out = Vec::new();
    for (host, audience) in table {
        let key = format!("jwt.host_audiences.{host:?}");
        match HostPattern::parse(&host) {
            Ok(_) if audience.is_empty() => cx.problem(key, "the audience is empty"),
            Ok(pattern) => out.push((pattern, audience)),
            Err(e) => cx.problem(key, e),
        }
    }
    // The most specific first: a name before any wildcard, a longer wildcard first.
    out.sort_by_key(|(p, _)| match p {
        HostPattern::Exact(_) => (0, 0),
        HostPattern::Wildcard(s) => (1, usize::MAX - s.len()),
    });
    out
}

fn policy(cx: &mut Ctx<'_>, rules: Vec<RuleFile>, model: &Model) -> Policies {
    let granted: BTreeSet<&String> = model.usergroups.values().flat_map(|g| g.permissions.iter()).collect();
    // A rule without a host beside rules with one would be read as "every host" by some
    // admins and "the other hosts" by others: each rule says which it means.
    let hosted = rules.iter().position(|r| r.host.is_some());
    let mut compiled: BTreeMap<Option<HostPattern>, Vec<Rule>> = BTreeMap::new();
    let mut seen: HashMap<(Option<HostPattern>, String), usize> = HashMap::new();
    for (i, r) in rules.into_iter().enumerate() {
        let path = format!("rules[{i}]");
        let (Some(pattern), Some(permission)) = (r.path, r.permission) else {
            cx.problem(&path, "every rule needs `path` and `permission`");
            continue;
        };
        let host = match (&r.host, hosted) {
            (Some(h), _) => match HostPattern::parse(h) {
                Ok(h) => Some(h),
                Err(e) => {
                    cx.problem(format!("{path}.host"), e);
                    continue;
                }
            },
            (None, Some(first)) => {
                cx.problem(
                    &path,
                    format!(
                        "rules[{first}] names a host, so every rule must: add `host = \"...\"` (`*.example.com` covers every name under it)"
                    ),
                );
                continue;
            }
            (None, None) => None,
        };
        if !valid_permission(&permission) {
            cx.problem(format!("{path}.permission"), format!("`{permission}` is not a permission"));
            continue;
        }
        if !granted.contains(&permission) {
            cx.problem(
                format!("{path}.permission"),
                format!("no usergroup grants `{permission}`: nobody could pass this rule (a typo?)"),
            );
        }
        match Rule::new(&pattern, &permission) {
            Ok(rule) => {
                let key = rule.pattern.to_lowercase().trim_end_matches('/').to_owned();
                if let Some(first) = seen.insert((host.clone(), key), i) {
                    let on = host.as_ref().map(|h| format!(" on `{h}`")).unwrap_or_default();
                    cx.problem(
                        format!("{path}.path"),
                        format!("`{pattern}` is already the path of rules[{first}]{on}"),
                    );
                } else {
                    compiled.entry(host).or_default().push(rule);
                }
            }
            Err(e) => cx.problem(format!("{path}.path"), e),
        }
    }
    if hosted.is_none() {
        return Policies::AnyHost(Policy::new(compiled.remove(&None).unwrap_or_default()));
    }
    Policies::by_host(
        compiled.into_iter().filter_map(|(host, rules)| Some((host?, Policy::new(rules)))).collect(),
    )
}

#[cfg(test)]
mod registration_tests {
    use std::time::Duration;

    use crate::config::{Registration, load_str};

    fn registration(tables: &str) -> Result<Registration, Vec<String>> {
        let text = format!("[upstream]\nurl = \"http://127.0.0.1:8081\"\n{tables}\n");
        load_str("t.toml", &text, std::path::Path::new("/srv"))
            .map(|c| c.registration)
            .map_err(|ds| ds.into_iter().map(|d| format!("{}: {}", d.path, d.message)).collect())
    }

    #[test]
    fn every_mode_compiles_with_its_defaults() {
        assert_eq!(registration("").expect("open"), Registration::Open);
        assert_eq!(registration("[registration]\nmode = \"approval\"").expect("ok"), Registration::Approval);
        let r = registration(
            "[registration]\nmode = \"email-validation\"\n[smtp]\nhost = \"127.0.0.1\"\nfrom = \"noreply@example.com\"",
        )
        .expect("ok");
        let Registration::EmailValidation(smtp) = r else { panic!("{r:?}") };
        assert_eq!((smtp.port, smtp.validation_ttl), (25, Duration::from_secs(86_400)));
        assert!(smtp.body.contains("{link}") && smtp.credentials.is_none());
    }

    #[test]
    fn contradictions_are_problems_at_their_keys() {
        for (tables, expected) in [
            (
                "[registration]\nmode = \"email-validation\"",
                "registration.mode: `email-validation` needs an [smtp]",
            ),
            ("[smtp]\nhost = \"h\"\nfrom = \"a@b.c\"", "smtp: [smtp] is only used when"),
            (
                "[registration]\nmode = \"approval\"\n[smtp]\nhost = \"h\"\nfrom = \"a@b.c\"",
                "smtp: [smtp] is only used when",
            ),
            ("[registration]\nmode = \"email-validation\"\n[smtp]\nhost = \"h\"", "smtp.from: the sender"),
            ("[registration]\nmode = \"email-validation\"\n[smtp]\nfrom = \"a@b.c\"", "smtp.host:"),
            (
                "[registration]\nmode = \"email-validation\"\n[smtp]\nhost = \"h\"\nfrom = \"a@b.c\"\nstarttls = true",
                "smtp.starttls: STARTTLS is not supported",
            ),
            (
                "[registration]\nmode = \"email-validation\"\n[smtp]\nhost = \"h\"\nfrom = \"a@b.c\"\nusername = \"u\"",
                "smtp.password_file:",
            ),
            (
                "[registration]\nmode = \"email-validation\"\n[smtp]\nhost = \"h\"\nfrom = \"a@b.c\"\nbody = \"no link\"",
                "smtp.body: the body must contain",
            ),
            ("[registration]\nmode = \"invite\"", "registration.mode: `invite` is not one of"),
        ] {
            let problems = registration(tables).expect_err(tables);
            assert!(problems.iter().any(|p| p.starts_with(expected)), "{tables}: {problems:?}");
        }
    }
}

#[cfg(test)]
mod session_tests {
    use std::time::Duration;

    use crate::config::load_str;

    fn recheck(line: &str) -> Result<Option<Duration>, Vec<String>> {
        let text = format!("[upstream]\nurl = \"http://127.0.0.1:8081\"\n[session]\n{line}\n");
        load_str("t.toml", &text, std::path::Path::new("/srv"))
            .map(|c| c.session.recheck_interval)
            .map_err(|ds| ds.into_iter().map(|d| format!("{}:{}: {}", d.line, d.path, d.message)).collect())
    }

    #[test]
    fn a_recheck_interval_that_is_not_a_duration_is_an_error_at_its_key_and_line() {
        assert_eq!(recheck(""), Ok(Some(Duration::from_secs(900))), "15 minutes unless set");
        assert_eq!(recheck("recheck_interval = \"5m\""), Ok(Some(Duration::from_secs(300))));
        assert_eq!(recheck("recheck_interval = \"off\""), Ok(None));
        assert_eq!(recheck("recheck_interval = \"0\""), Ok(None));
        for bad in ["\"soon\"", "\"-5m\"", "\"0s\""] {
            let problems = recheck(&format!("recheck_interval = {bad}")).expect_err(bad);
            assert!(
                problems.iter().any(|p| p.starts_with("4:session.recheck_interval")),
                "{bad}: {problems:?}"
            );
        }
    }
}

#[cfg(test)]
mod host_rule_tests {
    use crate::config::load_str;
    use crate::policy::Policies;

    const HEAD: &str =
        "[upstream]\nurl = \"http://127.0.0.1:8081\"\n[everyone]\npermissions = [\"kb.read\"]\n";

    fn load(rules: &str) -> Result<Policies, Vec<(usize, String, String)>> {
        load_str("t.toml", &format!("{HEAD}{rules}"), std::path::Path::new("/srv"))
            .map(|c| (*c.policy).clone())
            .map_err(|ds| ds.into_iter().map(|d| (d.line, d.path, d.message)).collect())
    }

    #[test]
    fn rules_without_hosts_keep_one_rule_set_for_every_host() {
        let p = load("[[rules]]\npath = \"/\"\npermission = \"kb.read\"\n").expect("valid");
        assert!(!p.names_hosts());
    }

    #[test]
    fn a_rule_without_host_beside_hosted_rules_is_an_error_naming_it() {
        let errors = load(
            "[[rules]]\npath = \"/\"\npermission = \"kb.read\"\nhost = \"help.test\"\n\
             [[rules]]\npath = \"/kb\"\npermission = \"kb.read\"\n",
        )
        .expect_err("refused");
        assert_eq!(errors.len(), 1, "{errors:?}");
        assert_eq!(errors[0].1, "rules[1]");
        assert_eq!(errors[0].0, 9);
        assert!(errors[0].2.contains("rules[0] names a host"), "{errors:?}");
    }

    #[test]
    fn a_bad_host_pattern_is_an_error_naming_its_key_and_line() {
        let errors =
            load("[[rules]]\npath = \"/\"\npermission = \"kb.read\"\nhost = \"https://help.test\"\n")
                .expect_err("refused");
        assert_eq!(errors[0].1, "rules[0].host");
        assert_eq!(errors[0].0, 8);
    }

    #[test]
    fn the_same_path_may_have_a_rule_on_each_host_but_not_two_on_one() {
        let two_hosts = "[[rules]]\npath = \"/\"\npermission = \"kb.read\"\nhost = \"help.test\"\n\
                         [[rules]]\npath = \"/\"\npermission = \"kb.read\"\nhost = \"*.admin.test\"\n";
        let p = load(two_hosts).expect("valid");
        assert!(p.names_hosts());
        let errors = load(&format!(
            "{two_hosts}[[rules]]\npath = \"/\"\npermission = \"kb.read\"\nhost = \"HELP.test\"\n"
        ))
        .expect_err("refused");
        assert!(errors[0].2.contains("already the path of rules[0] on `help.test`"), "{errors:?}");
    }
}
