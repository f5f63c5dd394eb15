//! The `[providers.oidc.<id>]` table and its compile step: every problem is reported at
//! once, each at its key path relative to the table.

use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use deskgate_provider::config::{GroupRule, Problem, parse_duration};
use url::Url;

use crate::clock::{Clock, SystemClock};
use crate::discovery::is_trusted_endpoint;
use crate::http::Http;
use crate::jwt::Algorithm;
use crate::{Oidc, Settings};

/// Providers whose well-known settings deskgate fills in.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Preset {
    /// Google accounts and Google Workspace: issuer `https://accounts.google.com`, button
    /// label "Google", and `allowed_domains` sent as the `hd` hint.
    Google,
}

/// Google's issuer.
pub const GOOGLE_ISSUER: &str = "https://accounts.google.com";

/// One OpenID Connect provider, as written in the configuration file.
#[derive(Debug, Clone, Default, serde::Deserialize)]
pub struct OidcConfig {
    /// `google` for Google's well-known settings; absent for any other provider.
    #[serde(default)]
    pub preset: Option<Preset>,
    /// The issuer identifier, exactly as the provider spells it; its discovery document is
    /// read from `{issuer}/.well-known/openid-configuration`. Filled in by the preset.
    #[serde(default)]
    pub issuer: Option<String>,
    /// The client id registered at the provider.
    #[serde(default)]
    pub client_id: String,
    /// File holding the client secret (one trailing newline is ignored).
    #[serde(default)]
    pub client_secret_file: Option<PathBuf>,
    /// Environment variable holding the client secret.
    #[serde(default)]
    pub client_secret_env: Option<String>,
    /// Scopes to request (default `openid email profile`); must include `openid`.
    #[serde(default)]
    pub scopes: Option<Vec<String>>,
    /// Only people whose verified token carries one of these domains in its `hd` claim
    /// (Google Workspace's hosted domain) may sign in; empty allows every account.
    #[serde(default)]
    pub allowed_domains: Vec<String>,
    /// The claim holding the person's groups, e.g. `groups` (a string array or one string).
    #[serde(default)]
    pub groups_claim: Option<String>,
    /// Accepted ID token signature algorithms (default `RS256`, `ES256`, `EdDSA`); `none`
    /// and HMAC algorithms are always refused.
    #[serde(default)]
    pub algorithms: Option<Vec<String>>,
    /// How far the provider's clock may be off when checking `exp`, `iat` and `nbf`
    /// (default `60s`, at most `5m`).
    #[serde(default)]
    pub clock_skew: Option<String>,
    /// The label of this provider's button on the sign-in page (default: "Google" for the
    /// preset, else the provider id).
    #[serde(default)]
    pub display_name: Option<String>,
    /// Also sign out at the provider (RP-initiated logout) when it has an
    /// `end_session_endpoint`.
    #[serde(default)]
    pub end_session: bool,
    /// Accept tokens whose `email_verified` is not true (the identity then says the email is
    /// unverified). Needed for providers that never send `email_verified`.
    #[serde(default)]
    pub allow_unverified_email: bool,
    /// Create an account just in time for someone the provider vouches for.
    #[serde(default)]
    pub create_accounts: bool,
    /// Link to an existing account with the same (verified) email address.
    #[serde(default)]
    pub link_by_email: bool,
    /// Provider group → usergroups rules, applied by the gateway. Groups come from
    /// `groups_claim`, plus `hd:<domain>` for a Google Workspace domain.
    #[serde(default)]
    pub groups: Vec<GroupRule>,
    /// Timeout for each request to the provider (default `10s`, at most `2m`).
    #[serde(default)]
    pub http_timeout: Option<String>,
    /// Ask for a refresh token at sign-in (`offline_access` with `prompt=consent`; Google:
    /// `access_type=offline`) and use it every `session.recheck_interval` to read the
    /// person's claims, and so their groups, again.
    #[serde(default)]
    pub refresh_groups: bool,
    /// Accept this provider's JWTs (ID tokens, or access tokens in JWT form) sent as
    /// `Authorization: Bearer` on proxied requests and forward-auth questions, when their
    /// `aud` holds one of these; absent: no bearer token of this provider is accepted.
    #[serde(default)]
    pub bearer_audiences: Option<Vec<String>>,
}

const MAX_SKEW: Duration = Duration::from_secs(300);
const MAX_HTTP_TIMEOUT: Duration = Duration::from_secs(120);

impl OidcConfig {
    /// Compiles the table into a provider with the id `id` (its identities say `oidc.<id>`),
    /// reading the client secret. Returns every problem found. Discovery happens later.
    pub fn build(&self, id: &str) -> Result<Oidc, Vec<Problem>> {
        self.build_with_clock(id, Arc::new(SystemClock))
    }

    /// [`build`](Self::build) with a chosen clock for token expiry and key refetching.
    pub fn build_with_clock(&self, id: &str, clock: Arc<dyn Clock>) -> Result<Oidc, Vec<Problem>> {
        self.assemble(id, clock, false).map(|(built, _)| built)
    }

    /// As [`build`](Self::build), but a secret absent here (see [`Problem::absent`]) does not
    /// stop it: the provider is built as if the secret were there, and the absent secrets are
    /// returned with it, for a config check away from the machine that holds them.
    pub fn build_allowing_absent_secrets(&self, id: &str) -> Result<(Oidc, Vec<Problem>), Vec<Problem>> {
        self.assemble(id, Arc::new(SystemClock), true)
    }

    fn assemble(
        &self,
        id: &str,
        clock: Arc<dyn Clock>,
        absent_ok: bool,
    ) -> Result<(Oidc, Vec<Problem>), Vec<Problem>> {
        let mut problems = Vec::new();
        let google = self.preset == Some(Preset::Google);

        let issuer = match (&self.issuer, google) {
            (Some(issuer), true) if issuer != GOOGLE_ISSUER => {
                problems.push(Problem::new(
                    "issuer",
                    format!("the google preset's issuer is `{GOOGLE_ISSUER}`; leave issuer out"),
                ));
                None
            }
            (_, true) => Some(GOOGLE_ISSUER.to_owned()),
            (None, false) => {
                problems
                    .push(Problem::new("issuer", "the issuer URL is required (or set preset = \"google\")"));
                None
            }
            (Some(issuer), false) => match check_issuer(issuer) {
                Ok(()) => Some(issuer.clone()),
                Err(message) => {
                    problems.push(Problem::new("issuer", message));
                    None
                }
            },
        };

        let client_id = self.client_id.trim();
        if client_id.is_empty() {
            problems.push(Problem::new("client_id", "the client id is required"));
        } else if client_id != self.client_id {
            problems.push(Problem::new("client_id", "has leading or trailing spaces"));
        }
        let client_secret = match self.client_secret() {
            Ok(secret) => Some(secret),
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

        let mut scopes =
            self.scopes.clone().unwrap_or_else(|| ["openid", "email", "profile"].map(String::from).to_vec());
        // Google refuses the offline_access scope; it is asked with access_type=offline.
        if self.refresh_groups && !google && !scopes.iter().any(|s| s == "offline_access") {
            scopes.push("offline_access".to_owned());
        }
        if !scopes.iter().any(|s| s == "openid") {
            problems.push(Problem::new("scopes", "must include `openid`"));
        }
        for (i, scope) in scopes.iter().enumerate() {
            if scope.is_empty() || !scope.bytes().all(is_scope_byte) {
                problems.push(Problem::new(
                    format!("scopes[{i}]"),
                    format!("`{scope}` is not a scope (no spaces, quotes or backslashes)"),
                ));
            }
        }

        let mut allowed_domains = Vec::new();
        for (i, domain) in self.allowed_domains.iter().enumerate() {
            let lower = domain.to_ascii_lowercase();
            if is_domain(&lower) {
                allowed_domains.push(lower);
            } else {
                problems.push(Problem::new(
                    format!("allowed_domains[{i}]"),
                    format!("`{domain}` is not a domain name such as `example.com`"),
                ));
            }
        }

        if let Some(claim) = &self.groups_claim {
            if claim.trim().is_empty() {
                problems.push(Problem::new("groups_claim", "name a claim, or leave it out"));
            }
        }

        let algorithms = self.algorithms(&mut problems);

        let mut duration = |key: &str, value: &Option<String>, default: Duration, max: Duration| match value
            .as_deref()
            .map(parse_duration)
        {
            None => default,
            Some(Ok(d)) if d > max => {
                problems.push(Problem::new(key, format!("must be at most {}s", max.as_secs())));
                default
            }
            Some(Ok(d)) => d,
            Some(Err(message)) => {
                problems.push(Problem::new(key, message));
                default
            }
        };
        let clock_skew = duration("clock_skew", &self.clock_skew, Duration::from_secs(60), MAX_SKEW);
        let http_timeout =
            duration("http_timeout", &self.http_timeout, Duration::from_secs(10), MAX_HTTP_TIMEOUT);
        if http_timeout.is_zero() {
            problems.push(Problem::new("http_timeout", "must be longer than zero"));
        }

        let display_name = match &self.display_name {
            Some(name) if name.trim().is_empty() => {
                problems.push(Problem::new("display_name", "must not be empty"));
                String::new()
            }
            Some(name) => name.clone(),
            None if google => "Google".to_owned(),
            None => id.to_owned(),
        };

        if self.link_by_email && self.allow_unverified_email {
            problems.push(Problem::new(
                "link_by_email",
                "linking by an email address the provider has not verified would let anyone who \
                 can type that address at the provider take over the account; drop \
                 allow_unverified_email or link_by_email",
            ));
        }

        for (i, rule) in self.groups.iter().enumerate() {
            if rule.group.trim().is_empty() {
                problems.push(Problem::new(format!("groups[{i}].group"), "name a group"));
            }
            if rule.usergroups.is_empty() {
                problems.push(Problem::new(format!("groups[{i}].usergroups"), "name at least one usergroup"));
            }
        }

        let bearer_audiences = self.bearer_audiences(&mut problems);

        let http = match Http::new(http_timeout) {
            Ok(http) => Some(http),
            Err(e) => {
                problems.push(Problem::new("http_timeout", format!("cannot create the HTTP client: {e}")));
                None
            }
        };

        let (Some(issuer), Some(client_secret), Some(http), true) =
            (issuer, client_secret, http, problems.iter().all(|p| absent_ok && p.absent))
        else {
            return Err(problems);
        };
        let mut accepted_issuers = vec![issuer.clone()];
        if google {
            // Google documents both spellings of `iss` in its ID tokens.
            accepted_issuers.push("accounts.google.com".to_owned());
        }
        let hd_hint = match allowed_domains.as_slice() {
            _ if !google => None,
            [] => None,
            [one] => Some(one.clone()),
            // Google's hint for "any Workspace account"; the domain itself is checked later.
            _ => Some("*".to_owned()),
        };
        let settings = Settings {
            provider: format!("oidc.{id}"),
            issuer,
            accepted_issuers,
            client_id: self.client_id.clone(),
            client_secret,
            scope: scopes.join(" "),
            allowed_domains,
            hd_hint,
            groups_claim: self.groups_claim.clone(),
            algorithms,
            clock_skew,
            display_name,
            end_session: self.end_session,
            allow_unverified_email: self.allow_unverified_email,
            create_accounts: self.create_accounts,
            link_by_email: self.link_by_email,
            groups: self.groups.clone(),
            refresh_groups: self.refresh_groups,
            google,
            bearer_audiences,
        };
        Ok((Oidc::from_settings(settings, http, clock), problems))
    }

    fn bearer_audiences(&self, problems: &mut Vec<Problem>) -> Vec<String> {
        let Some(list) = &self.bearer_audiences else { return Vec::new() };
        if list.is_empty() {
            problems.push(Problem::new(
                "bearer_audiences",
                "name at least one audience, or leave it out to accept no bearer tokens",
            ));
        }
        let mut out: Vec<String> = Vec::new();
        for (i, audience) in list.iter().enumerate() {
            let path = format!("bearer_audiences[{i}]");
            if audience.is_empty() || audience.len() > 255 || audience.trim() != audience {
                problems
                    .push(Problem::new(path, "an audience is a non-empty value without surrounding spaces"));
            } else if audience.chars().any(char::is_control) {
                problems.push(Problem::new(path, "contains a control character"));
            } else if out.contains(audience) {
                problems.push(Problem::new(path, format!("`{audience}` is listed twice")));
            } else {
                out.push(audience.clone());
            }
        }
        out
    }

    fn algorithms(&self, problems: &mut Vec<Problem>) -> Vec<Algorithm> {
        let Some(names) = &self.algorithms else {
            return Algorithm::DEFAULT.to_vec();
        };
        if names.is_empty() {
            problems.push(Problem::new("algorithms", "name at least one algorithm, or leave it out"));
        }
        let mut out = Vec::new();
        for (i, name) in names.iter().enumerate() {
            let path = format!("algorithms[{i}]");
            if name.eq_ignore_ascii_case("none") {
                problems.push(Problem::new(path, "unsigned tokens are never accepted"));
            } else if name.to_ascii_uppercase().starts_with("HS") {
                problems.push(Problem::new(
                    path,
                    format!(
                        "`{name}` is an HMAC algorithm: the client secret would become a signing \
                         key; only public-key signatures are accepted"
                    ),
                ));
            } else if let Some(alg) = Algorithm::from_name(name) {
                if !out.contains(&alg) {
                    out.push(alg);
                }
            } else {
                let known: Vec<&str> = Algorithm::ALL.iter().map(|a| a.name()).collect();
                problems.push(Problem::new(
                    path,
                    format!("`{name}` is not supported; use one of {}", known.join(", ")),
                ));
            }
        }
        out
    }

    fn client_secret(&self) -> Result<Secret, Problem> {
        let (text, key) = match (&self.client_secret_file, &self.client_secret_env) {
            (Some(_), Some(_)) => {
                return Err(Problem::new(
                    "client_secret_env",
                    "set only one of client_secret_file and client_secret_env",
                ));
            }
            (None, None) => {
                return Err(Problem::new(
                    "client_secret_file",
                    "the client secret is required: set client_secret_file or client_secret_env",
                ));
            }
            (Some(file), None) => {
                let text = std::fs::read_to_string(file)
                    .map_err(|e| Problem::reading("client_secret_file", file, &e))?;
                let text = text.strip_suffix('\n').unwrap_or(&text);
                let text = text.strip_suffix('\r').unwrap_or(text);
                (text.to_owned(), "client_secret_file")
            }
            (None, Some(var)) => {
                let text = std::env::var(var).map_err(|e| Problem::variable("client_secret_env", var, &e))?;
                (text, "client_secret_env")
            }
        };
        if text.is_empty() {
            return Err(Problem::new(key, "the secret is empty"));
        }
        if text.chars().any(char::is_control) {
            return Err(Problem::new(key, "the secret contains a control character"));
        }
        Ok(Secret(text))
    }
}

/// The client secret, which never appears in `Debug` output or logs.
#[derive(Clone)]
pub(crate) struct Secret(String);

impl Secret {
    #[cfg(test)]
    pub(crate) fn new(text: &str) -> Secret {
        Secret(text.to_owned())
    }

    pub(crate) fn expose(&self) -> &str {
        &self.0
    }
}

impl std::fmt::Debug for Secret {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Secret(..)")
    }
}

fn check_issuer(issuer: &str) -> Result<(), String> {
    let url = Url::parse(issuer).map_err(|e| format!("`{issuer}` is not a URL: {e}"))?;
    if !is_trusted_endpoint(&url) {
        return Err(format!("`{issuer}` must be an https URL (plain http only to a loopback address)"));
    }
    if url.query().is_some() || url.fragment().is_some() {
        return Err(format!("`{issuer}` must not have a query or fragment"));
    }
    Ok(())
}

/// RFC 6749's scope-token characters.
fn is_scope_byte(b: u8) -> bool {
    matches!(b, 0x21 | 0x23..=0x5b | 0x5d..=0x7e)
}

fn is_domain(name: &str) -> bool {
    name.len() <= 253
        && name.contains('.')
        && name.split('.').all(|label| {
            !label.is_empty()
                && label.len() <= 63
                && !label.starts_with('-')
                && !label.ends_with('-')
                && label.bytes().all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
        })
}

#[cfg(test)]
mod tests;
