//! File → running config. Pure apart from reading secret files and the environment;
//! collects every problem instead of stopping at the first.

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use deskgate_provider::config::{Problem, parse_duration};

use super::file::*;
use super::*;
use crate::policy::{Policy, Rule};
use crate::usergroups::{EVERYONE, Model, Organization, REGISTERED, Usergroup};

struct Ctx<'a> {
    problems: &'a mut Vec<Problem>,
    base: &'a Path,
}

impl Ctx<'_> {
    fn problem(&mut self, path: impl Into<String>, message: impl Into<String>) {
        self.problems.push(Problem::new(path, message));
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
                    self.problem(format!("{path}_file"), format!("cannot read `{f}`: {e}"));
                    return None;
                }
            },
            (None, Some(var)) => match std::env::var(var) {
                Ok(v) => v.trim().as_bytes().to_vec(),
                Err(_) => {
                    self.problem(format!("{path}_env"), format!("environment variable `{var}` is not set"));
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
    let session = session(&mut cx, file.session.take().unwrap_or_default());
    let storage = storage(&mut cx, file.storage.take().unwrap_or_default());
    let registration = match file.registration.as_ref().and_then(|r| r.mode.as_deref()) {
        None | Some("open") => Registration::Open,
        Some("disabled") => Registration::Disabled,
        Some(other) => {
            cx.problem("registration.mode", format!("`{other}` is not one of `open`, `disabled`"));
            Registration::Open
        }
    };
    let model = model(&mut cx, &file);
    let policy = policy(&mut cx, file.rules.take().unwrap_or_default(), &model);
    let builtin_enabled =
        file.providers.take().and_then(|p| p.builtin).and_then(|b| b.enabled).unwrap_or(true);
    if !builtin_enabled {
        cx.problem("providers.builtin.enabled", "no identity provider is enabled: nobody could sign in");
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
    };
    let rl = file.rate_limit.take().unwrap_or_default();
    let rate_limit = RateLimit {
        window: cx.duration("rate_limit.window", rl.window.as_ref(), Duration::from_secs(900)),
        per_account: rl.per_account.unwrap_or(5),
        per_address: rl.per_address.unwrap_or(20),
    };
    if rate_limit.per_account == 0 || rate_limit.per_address == 0 {
        cx.problem("rate_limit", "limits must be at least 1");
    }
    Config {
        server,
        upstream,
        session,
        storage,
        registration,
        model: Arc::new(model),
        policy: Arc::new(policy),
        builtin_enabled,
        header_prefix,
        jwt,
        rate_limit,
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
    let public_url = f.public_url.unwrap_or_else(|| format!("http://{listen}"));
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
    Server {
        listen,
        public_url,
        secure,
        trusted_proxies,
        max_body_bytes: f.max_body_bytes.unwrap_or(100 * 1024 * 1024),
        request_timeout,
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

fn session(cx: &mut Ctx<'_>, f: SessionFile) -> Session {
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
    let secret = cx.secret("session.secret", f.secret_file.as_ref(), f.secret_env.as_ref());
    Session { cookie_name, idle_timeout, absolute_timeout, secret }
}

fn storage(cx: &mut Ctx<'_>, f: StorageFile) -> Storage {
    let accounts = match f.accounts.as_deref().unwrap_or("sqlite://deskgate.db") {
        "sqlite::memory:" => AccountsBackend::Sqlite(":memory:".into()),
        url => match url.strip_prefix("sqlite://") {
            Some(p) if !p.is_empty() => AccountsBackend::Sqlite(cx.base.join(p)),
            _ => {
                cx.problem("storage.accounts", format!("`{url}` is not `sqlite://PATH`"));
                AccountsBackend::Sqlite(":memory:".into())
            }
        },
    };
    let sessions = match f.sessions.as_deref().unwrap_or("memory") {
        "memory" => SessionsBackend::Memory,
        other => {
            cx.problem("storage.sessions", format!("`{other}` is not `memory`"));
            SessionsBackend::Memory
        }
    };
    Storage { accounts, sessions }
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

    let check_refs = |cx: &mut Ctx<'_>, path: &str, ids: &[String]| {
        for (i, id) in ids.iter().enumerate() {
            if !usergroups.contains_key(id) {
                cx.problem(format!("{path}[{i}]"), format!("usergroup `{id}` is not defined"));
            }
        }
    };

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

fn policy(cx: &mut Ctx<'_>, rules: Vec<RuleFile>, model: &Model) -> Policy {
    let granted: BTreeSet<&String> = model.usergroups.values().flat_map(|g| g.permissions.iter()).collect();
    let mut compiled = Vec::new();
    let mut seen: HashMap<String, usize> = HashMap::new();
    for (i, r) in rules.into_iter().enumerate() {
        let path = format!("rules[{i}]");
        let (Some(pattern), Some(permission)) = (r.path, r.permission) else {
            cx.problem(&path, "every rule needs `path` and `permission`");
            continue;
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
                if let Some(first) = seen.insert(key, i) {
                    cx.problem(
                        format!("{path}.path"),
                        format!("`{pattern}` is already the path of rules[{first}]"),
                    );
                } else {
                    compiled.push(rule);
                }
            }
            Err(e) => cx.problem(format!("{path}.path"), e),
        }
    }
    Policy::new(compiled)
}
