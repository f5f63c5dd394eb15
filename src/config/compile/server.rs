//! `[server]` with its TLS, `[upstream]`, `[session]`, `[log]` and `[metrics]`: where
//! deskgate listens, what it protects, and how it keeps sessions.

use std::net::SocketAddr;
use std::time::Duration;

use super::Ctx;
use crate::config::file::*;
use crate::config::*;
use crate::policy::HostPattern;

pub(super) fn log(cx: &mut Ctx<'_>, f: LogFile) -> crate::logging::Log {
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

pub(super) fn metrics(cx: &mut Ctx<'_>, f: MetricsFile, public: SocketAddr) -> MetricsListener {
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

pub(super) fn server(cx: &mut Ctx<'_>, f: ServerFile) -> Server {
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
    // Each file that cannot be read is named, both when both cannot.
    let mut unread = false;
    for (at, path) in [("server.tls.cert_file", &files.cert_file), ("server.tls.key_file", &files.key_file)] {
        if let Err(e) = std::fs::File::open(path) {
            cx.unreadable(at, path, &e);
            unread = true;
        }
    }
    if unread {
        return None;
    }
    match crate::tls::load(&files) {
        Ok(key) => Some(crate::config::Tls { files, key, redirect_listen, hsts }),
        Err(e) => {
            cx.tls_problem(&files, &e, "server.tls.cert_file", "server.tls.key_file");
            None
        }
    }
}

/// `[upstream]`, or one of `[upstreams]`, at the key path `at`.
pub(super) fn upstream(cx: &mut Ctx<'_>, at: &str, f: Option<UpstreamFile>) -> Upstream {
    let key = |name: &str| format!("{at}.{name}");
    let fallback = http::Uri::from_static("http://127.0.0.1:8081");
    let f = f.unwrap_or_default();
    let url = match f.url.as_deref() {
        None => {
            cx.problem(key("url"), "is required: the URL of the application deskgate protects");
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
                    key("url"),
                    "https upstreams are not supported yet; use http on a private network",
                );
                fallback
            }
            _ => {
                cx.problem(key("url"), format!("`{u}` is not an http URL without a query"));
                fallback
            }
        },
    };
    Upstream {
        url,
        connect_timeout: cx.duration(
            &key("connect_timeout"),
            f.connect_timeout.as_ref(),
            Duration::from_secs(5),
        ),
        timeout: cx.duration(&key("timeout"), f.timeout.as_ref(), Duration::from_secs(60)),
        http2: f.http2.unwrap_or(false),
    }
}

pub(super) fn session(cx: &mut Ctx<'_>, f: SessionFile, public_url: &str) -> Session {
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

#[cfg(test)]
mod tests {
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
