//! File → running config. Pure apart from reading secret files and the environment;
//! collects every problem instead of stopping at the first.

use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use deskgate_provider::config::{Problem, parse_duration};

use super::file::*;
use super::*;

mod limits;
mod model;
mod providers;
mod registration;
mod routes;
mod server;
mod storage;
mod tokens;
mod webauthn;

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
    let server = server::server(&mut cx, file.server.take().unwrap_or_default());
    let upstream = server::upstream(&mut cx, "upstream", file.upstream.take());
    let (upstreams, routes) = routes::routes(
        &mut cx,
        file.upstreams.take().unwrap_or_default(),
        file.routes.take().unwrap_or_default(),
    );
    let session = server::session(&mut cx, file.session.take().unwrap_or_default(), &server.public_url);
    let storage = storage::storage(&mut cx, file.storage.take().unwrap_or_default());
    let builtin_enabled =
        file.providers.as_ref().and_then(|p| p.builtin.as_ref()).and_then(|b| b.enabled).unwrap_or(true);
    let (registration, password_reset) = registration::registration(
        &mut cx,
        file.registration.take(),
        file.smtp.take(),
        file.password_reset.take(),
        builtin_enabled,
    );
    let model = model::model(&mut cx, &file);
    let policy = model::policy(&mut cx, file.rules.take().unwrap_or_default(), &model);
    if policy.lists_methods() {
        // A backend that honours a method override would run a POST that was decided as a GET.
        for (i, h) in server.allowed_override_headers.iter().enumerate() {
            if h.as_str().contains("method") {
                cx.problem(
                    format!("server.allowed_override_headers[{i}]"),
                    format!("rules decide by method, so `{h}` would let a request be decided as one method and run as another"),
                );
            }
        }
    }
    let providers = file.providers.take().unwrap_or_default();
    #[cfg(feature = "ldap")]
    let ldap = providers::ldap(&mut cx, providers.ldap.unwrap_or_default(), &model);
    #[cfg(feature = "oidc")]
    let oidc = providers::oidc(&mut cx, providers.oidc.unwrap_or_default(), &model);
    #[cfg(feature = "saml")]
    let saml = providers::saml(&mut cx, providers.saml.unwrap_or_default(), &model, &server.public_url);
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
        host_audiences: model::host_audiences(&mut cx, jwt_file.host_audiences.unwrap_or_default()),
    };
    let rate_limit = limits::rate_limit(&mut cx, file.rate_limit.take().unwrap_or_default());
    let limits = limits::limits(&mut cx, file.limits.take().unwrap_or_default());
    let api_tokens = tokens::api_tokens(&mut cx, file.api_tokens.take().unwrap_or_default());
    let metrics = file.metrics.take().map(|m| server::metrics(&mut cx, m, server.listen));
    let log = server::log(&mut cx, file.log.take().unwrap_or_default());
    let webauthn = webauthn::webauthn(&mut cx, file.webauthn.take(), &server.public_url);
    Config {
        metrics,
        log,
        webauthn,
        server,
        upstream,
        upstreams,
        routes,
        session,
        storage,
        registration,
        password_reset,
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
        api_tokens,
        limits,
        fingerprint: 0,
    }
}
