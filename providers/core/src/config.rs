//! The small configuration vocabulary that provider crates share with the gateway: each
//! provider owns its config struct and validates it into problems with key paths, which the
//! gateway prefixes and reports with line numbers.

use std::fmt;
use std::time::Duration;

/// One thing wrong with a configuration, at a key path relative to the struct that found it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Problem {
    /// Key path such as `url[1]` or `groups[0].usergroups`.
    pub path: String,
    /// What is wrong, in words an admin understands.
    pub message: String,
    /// A secret (a `*_file` that does not exist, a `*_env` that is not set) that is absent
    /// here: where the config is only checked, as on a machine without the deployment's
    /// secrets, this is a warning, and the config is compiled as if the secret were there.
    pub absent: bool,
}

impl Problem {
    /// A problem at `path`.
    pub fn new(path: impl Into<String>, message: impl Into<String>) -> Self {
        Problem { path: path.into(), message: message.into(), absent: false }
    }

    /// An absent secret at `path` (see [`Problem::absent`]).
    pub fn absent(path: impl Into<String>, message: impl Into<String>) -> Self {
        Problem { absent: true, ..Problem::new(path, message) }
    }

    /// The problem of reading a secret file: an absent secret when the file does not exist.
    pub fn reading(path: impl Into<String>, file: &std::path::Path, error: &std::io::Error) -> Self {
        let message = format!("cannot read {}: {error}", file.display());
        if error.kind() == std::io::ErrorKind::NotFound {
            Problem::absent(path, message)
        } else {
            Problem::new(path, message)
        }
    }

    /// The problem of an environment variable holding a secret: an absent secret when the
    /// variable is not set.
    pub fn variable(path: impl Into<String>, var: &str, error: &std::env::VarError) -> Self {
        let message = format!("environment variable `{var}`: {error}");
        match error {
            std::env::VarError::NotPresent => Problem::absent(path, message),
            std::env::VarError::NotUnicode(_) => Problem::new(path, message),
        }
    }

    /// The same problem seen from a parent table: `prefix.path`.
    pub fn under(mut self, prefix: &str) -> Self {
        self.path = join_path(prefix, &self.path);
        self
    }
}

impl fmt::Display for Problem {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {}", self.path, self.message)
    }
}

/// Joins key paths, keeping `[n]` indices attached to their key.
pub fn join_path(prefix: &str, path: &str) -> String {
    match (prefix.is_empty(), path.is_empty()) {
        (true, _) => path.to_owned(),
        (_, true) => prefix.to_owned(),
        _ if path.starts_with('[') => format!("{prefix}{path}"),
        _ => format!("{prefix}.{path}"),
    }
}

/// Parses a duration such as `30s`, `15m`, `8h`, `7d`, `500ms` or `1h30m`.
pub fn parse_duration(text: &str) -> Result<Duration, String> {
    let bad = || format!("`{text}` is not a duration (use e.g. `30s`, `15m`, `8h`, `7d`)");
    let s = text.trim();
    if s.is_empty() {
        return Err(bad());
    }
    let mut total = Duration::ZERO;
    let mut rest = s;
    while !rest.is_empty() {
        let digits = rest.len() - rest.trim_start_matches(|c: char| c.is_ascii_digit()).len();
        if digits == 0 {
            return Err(bad());
        }
        let n: u64 = rest[..digits].parse().map_err(|_| bad())?;
        rest = &rest[digits..];
        let unit_len = rest.len() - rest.trim_start_matches(|c: char| c.is_ascii_alphabetic()).len();
        let unit = &rest[..unit_len];
        rest = &rest[unit_len..];
        let part = match unit {
            "ms" => Duration::from_millis(n),
            "s" => Duration::from_secs(n),
            "m" => Duration::from_secs(n.saturating_mul(60)),
            "h" => Duration::from_secs(n.saturating_mul(3600)),
            "d" => Duration::from_secs(n.saturating_mul(86_400)),
            _ => return Err(bad()),
        };
        total = total.saturating_add(part);
    }
    Ok(total)
}

/// Maps a provider's group names to usergroup ids. Shared by every provider's config so
/// that the rule is written the same way for AD DNs, SAML attribute values and OIDC claims.
#[derive(Debug, Clone, PartialEq, Eq, serde::Deserialize)]
pub struct GroupRule {
    /// The provider's group: an LDAP DN, a SAML attribute value, an OIDC claim value or a
    /// Google hosted domain. Compared case-insensitively; LDAP DNs compare as DNs.
    pub group: String,
    /// The usergroup ids this group grants.
    pub usergroups: Vec<String>,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations_parse_in_every_unit_and_reject_junk() {
        assert_eq!(parse_duration("30s"), Ok(Duration::from_secs(30)));
        assert_eq!(parse_duration("15m"), Ok(Duration::from_secs(900)));
        assert_eq!(parse_duration("1h30m"), Ok(Duration::from_secs(5400)));
        assert_eq!(parse_duration("7d"), Ok(Duration::from_secs(604_800)));
        assert_eq!(parse_duration("250ms"), Ok(Duration::from_millis(250)));
        for bad in ["", "10", "m", "10 parsecs", "ten minutes", "-5s", "5x"] {
            assert!(parse_duration(bad).is_err(), "{bad:?} should be refused");
        }
    }

    #[test]
    fn paths_join_with_dots_and_keep_indices() {
        assert_eq!(join_path("providers.ldap.corp", "url[1]"), "providers.ldap.corp.url[1]");
        assert_eq!(join_path("rules", "[2]"), "rules[2]");
        assert_eq!(join_path("", "x"), "x");
    }
}
