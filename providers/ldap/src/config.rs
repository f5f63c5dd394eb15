//! The `[providers.ldap.<id>]` table and its compile step: every problem is reported at
//! once, each at its key path relative to the table.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use deskgate_provider::config::{GroupRule, Problem, parse_duration};

use crate::servers::{Clock, SystemClock};
use crate::{Ldap, Settings};

/// Which kind of directory the provider talks to; it picks the defaults.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Kind {
    /// Active Directory (or Samba as a domain controller): `sAMAccountName` /
    /// `userPrincipalName` logins, `objectGUID` subjects, in-chain nested groups.
    ActiveDirectory,
    /// Any other LDAP directory: `uid` logins, `entryUUID` subjects, nested groups
    /// expanded by deskgate.
    Ldap,
}

/// One LDAP or Active Directory provider, as written in the configuration file.
#[derive(Debug, Clone, serde::Deserialize)]
pub struct LdapConfig {
    /// `active-directory` or `ldap`; decides the defaults of the keys below.
    pub kind: Kind,
    /// Directory servers, tried in this order: `ldaps://host[:port]` or `ldap://host[:port]`.
    #[serde(default)]
    pub urls: Vec<String>,
    /// Upgrade `ldap://` connections with StartTLS before anything else is sent.
    #[serde(default)]
    pub starttls: bool,
    /// Allow `ldap://` without StartTLS, which sends passwords in clear text (tests only).
    #[serde(default)]
    pub allow_plaintext: bool,
    /// PEM file of the CA certificates that server certificates must chain to; the
    /// system's trusted roots when unset.
    #[serde(default)]
    pub ca_file: Option<PathBuf>,
    /// The service account that searches for users: a DN, or for AD also `svc@domain`.
    #[serde(default)]
    pub bind_dn: String,
    /// File holding the service account's password (one trailing newline is ignored).
    #[serde(default)]
    pub bind_password_file: Option<PathBuf>,
    /// Environment variable holding the service account's password.
    #[serde(default)]
    pub bind_password_env: Option<String>,
    /// Where users are searched for, with subtree scope.
    #[serde(default)]
    pub base_dn: String,
    /// Filter that finds the user; `{username}` is replaced by the escaped login name.
    /// AD default: `sAMAccountName` or `userPrincipalName`; LDAP default: `(uid={username})`.
    #[serde(default)]
    pub user_filter: Option<String>,
    /// Attribute holding the email address (default `mail`).
    #[serde(default)]
    pub email_attribute: Option<String>,
    /// Attribute holding the display name (default `displayName`).
    #[serde(default)]
    pub display_name_attribute: Option<String>,
    /// Attribute holding the organization (AD default `company`, LDAP default `o`).
    #[serde(default)]
    pub organization_attribute: Option<String>,
    /// Active Directory: the domains a person may name when signing in, as the NetBIOS
    /// name in `DOMAIN\name` or the suffix in `name@suffix` (compared without regard to
    /// case). Default: the domain's own NetBIOS and DNS names, read from the directory.
    #[serde(default)]
    pub domains: Option<Vec<String>>,
    /// Where groups are searched for; `base_dn` when unset.
    #[serde(default)]
    pub group_base_dn: Option<String>,
    /// Include groups the user is in through other groups.
    #[serde(default = "default_nested_groups")]
    pub nested_groups: bool,
    /// How many levels of nesting deskgate expands itself (LDAP kind only).
    #[serde(default = "default_max_group_depth")]
    pub max_group_depth: u32,
    /// How long to wait for a connection, including TLS (default `5s`).
    #[serde(default)]
    pub connect_timeout: Option<String>,
    /// How long to wait for any one LDAP operation (default `10s`).
    #[serde(default)]
    pub timeout: Option<String>,
    /// How long a server that refused or timed out is skipped (default `30s`).
    #[serde(default)]
    pub retry_after: Option<String>,
    /// Create an account just in time for someone the directory knows but deskgate does not.
    #[serde(default)]
    pub create_accounts: bool,
    /// Link to an existing account with the same email address.
    #[serde(default)]
    pub link_by_email: bool,
    /// Group DN → usergroups rules, applied by the gateway (compared as RFC 4514 DNs).
    #[serde(default)]
    pub groups: Vec<GroupRule>,
    /// How the login page names this directory, e.g. "Corporate account".
    #[serde(default)]
    pub display_name: Option<String>,
}

fn default_nested_groups() -> bool {
    true
}

fn default_max_group_depth() -> u32 {
    8
}

/// The deepest nesting that may be configured; deeper trees are almost surely cycles or
/// mistakes, and each level costs a search.
const DEPTH_LIMIT: u32 = 64;

const AD_USER_FILTER: &str = "(&(objectClass=user)(!(objectClass=computer))\
     (|(sAMAccountName={username})(userPrincipalName={username})))";
const LDAP_USER_FILTER: &str = "(uid={username})";

impl LdapConfig {
    /// Compiles the table into a provider with the id `id` (its identities say `ldap.<id>`),
    /// reading the password and CA files. Returns every problem found.
    pub fn build(&self, id: &str) -> Result<Ldap, Vec<Problem>> {
        self.build_with_clock(id, Arc::new(SystemClock))
    }

    /// [`build`](Self::build) with a chosen clock for skipping down servers.
    pub fn build_with_clock(&self, id: &str, clock: Arc<dyn Clock>) -> Result<Ldap, Vec<Problem>> {
        self.assemble(id, clock, false).map(|(built, _)| built)
    }

    /// As [`build`](Self::build), but a secret absent here (see [`Problem::absent`]) does not
    /// stop it: the provider is built as if the secret were there, and the absent secrets are
    /// returned with it, for a config check away from the machine that holds them.
    pub fn build_allowing_absent_secrets(&self, id: &str) -> Result<(Ldap, Vec<Problem>), Vec<Problem>> {
        self.assemble(id, Arc::new(SystemClock), true)
    }

    fn assemble(
        &self,
        id: &str,
        clock: Arc<dyn Clock>,
        absent_ok: bool,
    ) -> Result<(Ldap, Vec<Problem>), Vec<Problem>> {
        let mut problems = Vec::new();
        let ad = self.kind == Kind::ActiveDirectory;

        if self.urls.is_empty() {
            problems.push(Problem::new("urls", "at least one server URL is required"));
        }
        let mut any_tls_url = false;
        for (i, url) in self.urls.iter().enumerate() {
            let path = format!("urls[{i}]");
            match parse_url(url) {
                Err(message) => problems.push(Problem::new(path, message)),
                Ok(Scheme::Ldaps) => {
                    any_tls_url = true;
                    if self.starttls {
                        problems.push(Problem::new(
                            path,
                            "is ldaps:// (TLS from the start) while starttls = true; \
                             use ldap:// with StartTLS, or drop starttls",
                        ));
                    }
                }
                Ok(Scheme::Ldap) if !self.starttls && !self.allow_plaintext => {
                    problems.push(Problem::new(
                        path,
                        "ldap:// without StartTLS sends passwords in clear text; use ldaps://, \
                         set starttls = true, or set allow_plaintext = true for a test directory",
                    ));
                }
                Ok(Scheme::Ldap) => {}
            }
        }

        let tls = match &self.ca_file {
            Some(file) if any_tls_url || self.starttls => match load_ca(file) {
                Ok(config) => Some(Arc::new(config)),
                Err(message) => {
                    problems.push(Problem::new("ca_file", message));
                    None
                }
            },
            _ => None,
        };

        if self.bind_dn.trim().is_empty() {
            problems.push(Problem::new("bind_dn", "the service account is required"));
        }
        let bind_password = match self.bind_password() {
            Ok(password) => Some(password),
            // Compiled as if it were there: a check elsewhere reports it once, and nothing else.
            Err(problem) if problem.absent => {
                problems.push(problem);
                Some(Secret("(absent)".into()))
            }
            Err(problem) => {
                problems.push(problem);
                None
            }
        };

        check_dn(&mut problems, "base_dn", &self.base_dn);
        if let Some(dn) = &self.group_base_dn {
            check_dn(&mut problems, "group_base_dn", dn);
        }

        let user_filter = self
            .user_filter
            .clone()
            .unwrap_or_else(|| if ad { AD_USER_FILTER } else { LDAP_USER_FILTER }.to_owned());
        if let Err(message) = check_filter_template(&user_filter) {
            problems.push(Problem::new("user_filter", message));
        }

        let attribute = |problems: &mut Vec<Problem>, key: &str, value: &Option<String>, default: &str| {
            let name = value.clone().unwrap_or_else(|| default.to_owned());
            if !is_attribute_name(&name) {
                problems.push(Problem::new(key, format!("`{name}` is not an attribute name")));
            }
            name
        };
        let email_attribute = attribute(&mut problems, "email_attribute", &self.email_attribute, "mail");
        let display_name_attribute =
            attribute(&mut problems, "display_name_attribute", &self.display_name_attribute, "displayName");
        let organization_attribute = attribute(
            &mut problems,
            "organization_attribute",
            &self.organization_attribute,
            if ad { "company" } else { "o" },
        );

        let domains = match (&self.domains, ad) {
            (Some(_), false) => {
                problems.push(Problem::new(
                    "domains",
                    "applies to kind = \"active-directory\" only (an LDAP login name has no domain part)",
                ));
                None
            }
            (Some(list), true) => Some(check_domains(&mut problems, list)),
            (None, _) => None,
        };

        if self.max_group_depth == 0 || self.max_group_depth > DEPTH_LIMIT {
            problems.push(Problem::new("max_group_depth", format!("must be between 1 and {DEPTH_LIMIT}")));
        }

        let mut duration = |key: &str, value: &Option<String>, default: Duration| match value {
            None => default,
            Some(text) => match parse_duration(text) {
                Ok(d) if d.is_zero() => {
                    problems.push(Problem::new(key, "must be longer than zero"));
                    default
                }
                Ok(d) => d,
                Err(message) => {
                    problems.push(Problem::new(key, message));
                    default
                }
            },
        };
        let connect_timeout = duration("connect_timeout", &self.connect_timeout, Duration::from_secs(5));
        let timeout = duration("timeout", &self.timeout, Duration::from_secs(10));
        let retry_after = duration("retry_after", &self.retry_after, Duration::from_secs(30));

        for (i, rule) in self.groups.iter().enumerate() {
            check_dn(&mut problems, &format!("groups[{i}].group"), &rule.group);
            if rule.usergroups.is_empty() {
                problems.push(Problem::new(format!("groups[{i}].usergroups"), "name at least one usergroup"));
            }
        }

        let Some(bind_password) = bind_password.filter(|_| problems.iter().all(|p| absent_ok && p.absent))
        else {
            return Err(problems);
        };
        let settings = Settings {
            provider: format!("ldap.{id}"),
            kind: self.kind,
            urls: self.urls.clone(),
            starttls: self.starttls,
            tls,
            bind_dn: self.bind_dn.clone(),
            bind_password,
            base_dn: self.base_dn.clone(),
            group_base_dn: self.group_base_dn.clone().unwrap_or_else(|| self.base_dn.clone()),
            user_filter,
            email_attribute,
            display_name_attribute,
            organization_attribute,
            domains,
            nested_groups: self.nested_groups,
            max_group_depth: self.max_group_depth,
            connect_timeout,
            timeout,
            retry_after,
            create_accounts: self.create_accounts,
            link_by_email: self.link_by_email,
            groups: self.groups.clone(),
        };
        Ok((Ldap::from_settings(settings, clock), problems))
    }

    fn bind_password(&self) -> Result<Secret, Problem> {
        let password = match (&self.bind_password_file, &self.bind_password_env) {
            (Some(_), Some(_)) => {
                return Err(Problem::new(
                    "bind_password_env",
                    "set only one of bind_password_file and bind_password_env",
                ));
            }
            (None, None) => {
                return Err(Problem::new(
                    "bind_password_file",
                    "the service account's password is required: set bind_password_file or \
                     bind_password_env",
                ));
            }
            (Some(file), None) => {
                let text = std::fs::read_to_string(file)
                    .map_err(|e| Problem::reading("bind_password_file", file, &e))?;
                let text = text.strip_suffix('\n').unwrap_or(&text);
                let text = text.strip_suffix('\r').unwrap_or(text);
                (text.to_owned(), "bind_password_file")
            }
            (None, Some(var)) => {
                let text = std::env::var(var).map_err(|e| Problem::variable("bind_password_env", var, &e))?;
                (text, "bind_password_env")
            }
        };
        match password {
            (text, key) if text.is_empty() => Err(Problem::new(key, "the password is empty")),
            (text, key) if text.contains('\0') => Err(Problem::new(key, "the password contains a NUL byte")),
            (text, _) => Ok(Secret(text)),
        }
    }
}

/// A password that never appears in `Debug` output or logs.
#[derive(Clone)]
pub(crate) struct Secret(String);

impl Secret {
    pub(crate) fn expose(&self) -> &str {
        &self.0
    }
}

impl std::fmt::Debug for Secret {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Secret(..)")
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Scheme {
    Ldap,
    Ldaps,
}

/// Accepts `ldap://host[:port][/]` and `ldaps://…`; nothing else, so that a DN,
/// credentials or extensions written into a URL are not silently ignored.
fn parse_url(url: &str) -> Result<Scheme, String> {
    let lower = url.to_ascii_lowercase();
    let (scheme, rest) = if let Some(rest) = lower.strip_prefix("ldaps://") {
        (Scheme::Ldaps, rest)
    } else if let Some(rest) = lower.strip_prefix("ldap://") {
        (Scheme::Ldap, rest)
    } else {
        return Err(format!("`{url}` is not an ldap:// or ldaps:// URL"));
    };
    let rest = rest.strip_suffix('/').unwrap_or(rest);
    if rest.contains(['/', '?', '#', '@']) {
        return Err(format!("`{url}` must be scheme://host[:port], without a DN, query or user"));
    }
    let (host, port) = if let Some(v6) = rest.strip_prefix('[') {
        let (host, after) = v6.split_once(']').ok_or_else(|| format!("`{url}` has an unclosed `[`"))?;
        let port = match after {
            "" => None,
            p => Some(p.strip_prefix(':').ok_or_else(|| format!("`{url}` has junk after `]`"))?),
        };
        if host.is_empty() || !host.chars().all(|c| c.is_ascii_hexdigit() || c == ':' || c == '.') {
            return Err(format!("`{url}` has an invalid IPv6 address"));
        }
        (host, port)
    } else {
        match rest.split_once(':') {
            Some((host, port)) => (host, Some(port)),
            None => (rest, None),
        }
    };
    if host.is_empty() || !host.chars().all(|c| c.is_ascii_alphanumeric() || "-._:".contains(c)) {
        return Err(format!("`{url}` needs a host name or address"));
    }
    if let Some(port) = port {
        match port.parse::<u16>() {
            Ok(p) if p > 0 => {}
            _ => return Err(format!("`{url}` has an invalid port")),
        }
    }
    Ok(scheme)
}

fn load_ca(file: &Path) -> Result<rustls::ClientConfig, String> {
    let pem = std::fs::read(file).map_err(|e| format!("cannot read {}: {e}", file.display()))?;
    let certs = rustls_pemfile::certs(&mut pem.as_slice())
        .map_err(|e| format!("{} is not PEM: {e}", file.display()))?;
    if certs.is_empty() {
        return Err(format!("{} holds no CERTIFICATE block", file.display()));
    }
    let mut roots = rustls::RootCertStore::empty();
    for der in certs {
        roots
            .add(&rustls::Certificate(der))
            .map_err(|e| format!("{} holds a certificate that cannot be used: {e}", file.display()))?;
    }
    Ok(rustls::ClientConfig::builder()
        .with_safe_defaults()
        .with_root_certificates(roots)
        .with_no_client_auth())
}

/// Refuses a missing DN, or one that RFC 4514 does not read, saying where it stops.
fn check_dn(problems: &mut Vec<Problem>, key: &str, dn: &str) {
    if dn.trim().is_empty() {
        problems.push(Problem::new(key, "a DN is required"));
    } else if let Err(error) = crate::dn::Dn::parse(dn) {
        problems.push(Problem::new(
            key,
            format!("`{dn}` is not a DN such as `CN=VIPs,CN=Users,DC=corp,DC=example,DC=com`: {error}"),
        ));
    }
}

/// The configured domains in lower case; each must be a NetBIOS or DNS domain name.
fn check_domains(problems: &mut Vec<Problem>, list: &[String]) -> Vec<String> {
    if list.is_empty() {
        problems.push(Problem::new(
            "domains",
            "name at least one domain, or leave the key out for the directory's own",
        ));
    }
    let mut out = Vec::new();
    for (i, domain) in list.iter().enumerate() {
        let name = domain.trim().to_lowercase();
        let valid = !name.is_empty()
            && name.len() <= 255
            && name.split('.').all(|label| {
                !label.is_empty() && label.chars().all(|c| c.is_alphanumeric() || c == '-' || c == '_')
            });
        if valid {
            out.push(name);
        } else {
            problems.push(Problem::new(
                format!("domains[{i}]"),
                format!("`{domain}` is not a domain name such as `CORP` or `corp.example.com`"),
            ));
        }
    }
    out
}

fn check_filter_template(filter: &str) -> Result<(), String> {
    if !filter.contains("{username}") {
        return Err("must contain `{username}`".into());
    }
    if !filter.starts_with('(') || !filter.ends_with(')') {
        return Err("must be enclosed in parentheses".into());
    }
    let mut depth: i32 = 0;
    for (i, c) in filter.char_indices() {
        match c {
            '(' => depth += 1,
            ')' => depth -= 1,
            _ => {}
        }
        if depth < 0 || (depth == 0 && i + 1 < filter.len()) {
            return Err("has unbalanced parentheses".into());
        }
    }
    if depth != 0 {
        return Err("has unbalanced parentheses".into());
    }
    Ok(())
}

/// An attribute description: a name (`mail`, `msDS-x`) or a numeric OID.
fn is_attribute_name(name: &str) -> bool {
    let mut chars = name.chars();
    match chars.next() {
        Some(c) if c.is_ascii_alphabetic() => chars.all(|c| c.is_ascii_alphanumeric() || c == '-'),
        Some(c) if c.is_ascii_digit() => {
            name.split('.').all(|part| !part.is_empty() && part.chars().all(|c| c.is_ascii_digit()))
        }
        _ => false,
    }
}

#[cfg(test)]
mod tests;
