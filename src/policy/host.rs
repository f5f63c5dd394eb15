//! Host rules: one deskgate guarding several apps, each on its own host with its own rules.
//!
//! A host pattern is a name (`help.example.com`) or a wildcard (`*.example.com`, any name
//! that ends in `.example.com`, at a dot boundary, never the bare `example.com`). Names are
//! compared in lower case without a port or a trailing dot. When rules name hosts, a request
//! is decided under the rules of the most specific pattern that covers its host: a name
//! before any wildcard, a longer wildcard before a shorter one. A host no pattern covers,
//! or a request with no readable host, is denied.

use http::Method;

use super::{Decision, DenyReason, NormalPath, Policy, Verdict, Who, verdict};

/// A host a rule applies to.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum HostPattern {
    /// One name, lower case.
    Exact(String),
    /// `*.` and this suffix (lower case, without the leading dot).
    Wildcard(String),
}

impl HostPattern {
    /// Parses a pattern as written in a rule's `host`.
    pub fn parse(text: &str) -> Result<HostPattern, String> {
        let (wild, name) = match text.strip_prefix("*.") {
            Some(rest) => (true, rest),
            None => (false, text),
        };
        let name = name.to_ascii_lowercase();
        if !valid_name(&name) {
            return Err(format!(
                "`{text}` is not a host name (letters, digits, `-` and `.`, optionally after `*.`; no port, no scheme)"
            ));
        }
        if wild && !name.contains('.') {
            return Err(format!("`{text}` would cover a whole top-level domain"));
        }
        Ok(if wild { HostPattern::Wildcard(name) } else { HostPattern::Exact(name) })
    }

    /// Whether this pattern covers `host` (already in [`request_host`] form).
    pub fn covers(&self, host: &str) -> bool {
        match self {
            HostPattern::Exact(name) => host == name,
            HostPattern::Wildcard(suffix) => host
                .strip_suffix(suffix.as_str())
                .is_some_and(|label| label.len() > 1 && label.ends_with('.')),
        }
    }

    /// Higher is more specific: an exact name beats every wildcard.
    pub fn specificity(&self) -> usize {
        match self {
            HostPattern::Exact(_) => usize::MAX,
            HostPattern::Wildcard(suffix) => suffix.len(),
        }
    }
}

impl std::fmt::Display for HostPattern {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            HostPattern::Exact(name) => f.write_str(name),
            HostPattern::Wildcard(suffix) => write!(f, "*.{suffix}"),
        }
    }
}

fn valid_name(name: &str) -> bool {
    !name.is_empty()
        && name.len() <= 253
        && name.split('.').all(|label| {
            !label.is_empty()
                && label.len() <= 63
                && label.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-')
                && !label.starts_with('-')
                && !label.ends_with('-')
        })
}

/// A request's host as rules compare it: lower case, without the port or a trailing dot;
/// `None` when it is not a plain host name or address (then no host rule covers it).
pub fn request_host(authority: &str) -> Option<String> {
    let authority = authority.trim();
    let host = if let Some(rest) = authority.strip_prefix('[') {
        // An IPv6 literal: `[::1]` or `[::1]:8080`.
        let (inside, after) = rest.split_once(']')?;
        if !(after.is_empty() || after.strip_prefix(':').is_some_and(valid_port)) {
            return None;
        }
        inside.parse::<std::net::Ipv6Addr>().ok()?;
        return Some(format!("[{}]", inside.to_ascii_lowercase()));
    } else {
        match authority.split_once(':') {
            Some((host, port)) if valid_port(port) => host,
            Some(_) => return None,
            None => authority,
        }
    };
    let host = host.strip_suffix('.').unwrap_or(host).to_ascii_lowercase();
    valid_name(&host).then_some(host)
}

fn valid_port(port: &str) -> bool {
    !port.is_empty() && port.len() <= 5 && port.bytes().all(|b| b.is_ascii_digit())
}

/// The access rules of every host.
#[derive(Debug, Clone)]
pub enum Policies {
    /// No rule names a host: the same rules for every host.
    AnyHost(Policy),
    /// Every rule names a host; most specific pattern first.
    ByHost(Vec<(HostPattern, Policy)>),
}

impl Default for Policies {
    fn default() -> Self {
        Policies::AnyHost(Policy::default())
    }
}

impl Policies {
    /// Rules grouped by host, ordered so the first pattern covering a host is the most
    /// specific one.
    pub fn by_host(mut hosts: Vec<(HostPattern, Policy)>) -> Policies {
        hosts.sort_by(|(a, _), (b, _)| b.specificity().cmp(&a.specificity()).then_with(|| a.cmp(b)));
        Policies::ByHost(hosts)
    }

    /// The rules for `host` (in [`request_host`] form), with the pattern that chose them;
    /// `None` when rules name hosts and none covers this one.
    pub fn for_host(&self, host: Option<&str>) -> Option<(Option<&HostPattern>, &Policy)> {
        match self {
            Policies::AnyHost(policy) => Some((None, policy)),
            Policies::ByHost(hosts) => {
                let host = host?;
                hosts.iter().find(|(p, _)| p.covers(host)).map(|(p, policy)| (Some(p), policy))
            }
        }
    }

    /// Whether any rule names a host.
    pub fn names_hosts(&self) -> bool {
        matches!(self, Policies::ByHost(_))
    }

    /// Every rule with the host it applies to, if rules name hosts.
    fn all(&self) -> impl Iterator<Item = (Option<&HostPattern>, &super::Rule)> {
        let sets: Vec<(Option<&HostPattern>, &Policy)> = match self {
            Policies::AnyHost(policy) => vec![(None, policy)],
            Policies::ByHost(hosts) => hosts.iter().map(|(h, p)| (Some(h), p)).collect(),
        };
        sets.into_iter().flat_map(|(h, p)| p.rules().iter().map(move |r| (h, r)))
    }

    /// The public rules in words, in the order they are matched: `/hooks/email (POST)`, and
    /// `help.example.com/static` where rules name hosts.
    pub fn public_routes(&self) -> Vec<String> {
        self.all()
            .filter(|(_, r)| r.is_public())
            .map(|(h, r)| h.map_or_else(|| r.describe(), |h| format!("{h}{}", r.describe())))
            .collect()
    }

    /// Whether any rule lists methods.
    pub fn lists_methods(&self) -> bool {
        self.all().any(|(_, r)| !r.methods.is_empty())
    }
}

/// Decides a request for `host` (the request's `Host`, as sent) and `path`: the rules of
/// its host, then [`verdict`]. A host no rule covers is denied, to guests too: signing in
/// would not help.
pub fn verdict_for_host<'p>(
    policies: &'p Policies,
    everyone_enabled: bool,
    who: Who<'_>,
    host: Option<&str>,
    method: &Method,
    path: &NormalPath,
) -> Verdict<'p> {
    let host = host.and_then(request_host);
    match policies.for_host(host.as_deref()) {
        Some((_, policy)) => verdict(policy, everyone_enabled, who, method, path),
        None => Verdict { decision: Decision::Deny(DenyReason::NoHostRule), rule: None, mfa: false },
    }
}

/// [`verdict_for_host`]'s decision.
pub fn decide_for_host(
    policies: &Policies,
    everyone_enabled: bool,
    who: Who<'_>,
    host: Option<&str>,
    method: &Method,
    path: &NormalPath,
) -> Decision {
    verdict_for_host(policies, everyone_enabled, who, host, method, path).decision
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::policy::{Rule, normalize};
    use crate::usergroups::Resolved;

    fn grants(perms: &[&str]) -> Resolved {
        let mut permissions: Vec<String> = perms.iter().map(|p| p.to_string()).collect();
        permissions.sort();
        Resolved { usergroups: vec![], permissions }
    }

    fn one(pattern: &str, permission: &str) -> Policy {
        Policy::new(vec![Rule::new(pattern, permission).expect("rule")])
    }

    fn policies() -> Policies {
        Policies::by_host(vec![
            (HostPattern::parse("*.example.com").expect("wild"), one("/", "portal.view")),
            (HostPattern::parse("Help.Example.com").expect("exact"), one("/", "kb.read")),
            (HostPattern::parse("*.admin.example.com").expect("wild"), one("/", "admin.view")),
        ])
    }

    fn permission_for(p: &Policies, host: &str) -> Option<String> {
        let host = request_host(host)?;
        p.for_host(Some(&host)).and_then(|(_, policy)| policy.rules()[0].permission().map(str::to_owned))
    }

    #[test]
    fn the_most_specific_host_pattern_chooses_the_rules() {
        let p = policies();
        assert_eq!(permission_for(&p, "help.example.com").as_deref(), Some("kb.read"));
        assert_eq!(permission_for(&p, "HELP.example.COM:8443").as_deref(), Some("kb.read"));
        assert_eq!(permission_for(&p, "help.example.com.").as_deref(), Some("kb.read"));
        assert_eq!(permission_for(&p, "chat.example.com").as_deref(), Some("portal.view"));
        assert_eq!(permission_for(&p, "x.admin.example.com").as_deref(), Some("admin.view"));
    }

    #[test]
    fn wildcard_host_matches_only_at_a_dot_boundary() {
        let p = policies();
        for host in ["example.com", "evilexample.com", "example.com.evil.test", "help.example.co"] {
            assert_eq!(permission_for(&p, host), None, "{host}");
        }
    }

    #[test]
    fn a_host_no_rule_covers_is_denied_even_to_a_guest() {
        let p = policies();
        let all = grants(&["portal.view", "kb.read", "admin.view"]);
        let root = normalize("/").expect("path");
        for host in [Some("other.test"), None, Some("help.example.com@evil"), Some("a b"), Some("")] {
            for who in [Who::Guest(&all), Who::SignedIn(&all)] {
                assert_eq!(
                    decide_for_host(&p, true, who, host, &Method::GET, &root),
                    Decision::Deny(DenyReason::NoHostRule),
                    "{host:?}"
                );
            }
        }
        assert_eq!(
            decide_for_host(&p, true, Who::SignedIn(&all), Some("help.example.com"), &Method::GET, &root),
            Decision::Allow
        );
    }

    #[test]
    fn rules_without_hosts_apply_to_every_host_and_to_none() {
        let p = Policies::AnyHost(one("/", "kb.read"));
        let reader = grants(&["kb.read"]);
        let root = normalize("/").expect("path");
        for host in [None, Some("anything.test"), Some("not a host")] {
            assert_eq!(
                decide_for_host(&p, true, Who::SignedIn(&reader), host, &Method::GET, &root),
                Decision::Allow
            );
        }
    }

    #[test]
    fn malformed_host_patterns_are_refused() {
        for bad in [
            "",
            "*",
            "*.com",
            "help.test:80",
            "https://help.test",
            "-a.test",
            "a..test",
            "a_b.test",
            "*.*.test",
        ] {
            assert!(HostPattern::parse(bad).is_err(), "{bad}");
        }
        assert_eq!(HostPattern::parse("*.Example.com").expect("ok").to_string(), "*.example.com");
    }

    #[test]
    fn request_hosts_are_read_strictly() {
        assert_eq!(request_host("[::1]:19700").as_deref(), Some("[::1]"));
        assert_eq!(request_host("127.0.0.1:80").as_deref(), Some("127.0.0.1"));
        for bad in
            ["help.test:", "help.test:x", "help.test:80:80", "[::1", "[zz]", "help.test/x", "user@help.test"]
        {
            assert_eq!(request_host(bad), None, "{bad}");
        }
    }
}
