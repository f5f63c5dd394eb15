//! Authorization as plain data and one pure function: [`decide`].
//!
//! Rules map a path pattern to the permission it requires. The most specific matching rule
//! wins; a path that no rule matches is denied. The tower layer that applies decisions
//! lives in `gateway.rs` and stays thin.
//!
//! A path is decided under every reading a backend might give it (lower case, Java's and
//! .NET's ignore-case, Unicode case folding, NFKC, the Turkic i: see [`path`]) and the most
//! restrictive decision wins: Allow only when every reading allows, and a Deny beats
//! LoginRequired. An all-ASCII path has one reading. A rule's pattern must read the same
//! under all of them (else the config is refused), so it is matched in its one folded form.

mod fold;
pub mod host;
pub mod path;

use crate::usergroups::Resolved;
pub use host::{HostPattern, Policies, decide_for_host, request_host, verdict_for_host};
pub use path::{NormalPath, PathError, normalize};

/// One access rule.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Rule {
    /// The pattern as written in the config.
    pub pattern: String,
    /// The permission it requires.
    pub permission: String,
    segments: Vec<Segment>,
}

#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
enum Segment {
    /// `*`: any one segment. Sorts before literals so literals win ties.
    Any,
    /// A literal segment, lower-cased (and the same under every folding).
    Literal(String),
}

impl Rule {
    /// A rule; the pattern must be a path starting with `/` (checked by `parse_pattern`).
    pub fn new(pattern: &str, permission: &str) -> Result<Rule, String> {
        Ok(Rule {
            pattern: pattern.to_owned(),
            permission: permission.to_owned(),
            segments: parse_pattern(pattern)?,
        })
    }

    fn matches(&self, reading: &[String]) -> bool {
        self.segments.len() <= reading.len()
            && self.segments.iter().zip(reading).all(|(s, p)| match s {
                Segment::Any => true,
                Segment::Literal(l) => l == p,
            })
    }
}

fn parse_pattern(pattern: &str) -> Result<Vec<Segment>, String> {
    if !pattern.starts_with('/') {
        return Err(format!("`{pattern}` must start with `/`"));
    }
    if pattern.contains(['?', '#', '%', ';', '\\']) {
        return Err(format!("`{pattern}` may hold only path segments and `*`"));
    }
    let normal = normalize(pattern).map_err(|e| format!("`{pattern}`: {e}"))?;
    if normal.segments().len() != pattern.split('/').filter(|s| !s.is_empty()).count() {
        return Err(format!("`{pattern}` has `.` or `..` segments"));
    }
    // A pattern that folds differently under some backend's rule would be matched in one
    // form and meant in another: the admin must write the form they mean.
    if let Some(other) = normal.readings().nth(1) {
        return Err(format!(
            "`{pattern}` reads differently under Unicode case folding or NFKC (also as `/{}`): \
             write the path in the form it folds to",
            other.join("/")
        ));
    }
    Ok(normal
        .lower()
        .iter()
        .map(|s| if s == "*" { Segment::Any } else { Segment::Literal(s.clone()) })
        .collect())
}

/// The access rules, most specific first.
#[derive(Debug, Clone, Default)]
pub struct Policy {
    rules: Vec<Rule>,
}

impl Policy {
    /// Orders rules so that the first match is the most specific: more segments first, then
    /// literal segments before `*`, position by position.
    pub fn new(mut rules: Vec<Rule>) -> Policy {
        rules.sort_by(|a, b| {
            b.segments.len().cmp(&a.segments.len()).then_with(|| b.segments.cmp(&a.segments))
        });
        Policy { rules }
    }

    /// The rule that governs `path` in its plain lower-case reading, if any. Decisions read
    /// the path every way a backend might: use [`verdict`] for the rule a decision was made
    /// under.
    pub fn rule_for(&self, path: &NormalPath) -> Option<&Rule> {
        self.rule_at(path.lower()).map(|(_, r)| r)
    }

    /// The rule governing one reading of a path, with its place in the order.
    fn rule_at(&self, reading: &[String]) -> Option<(usize, &Rule)> {
        self.rules.iter().enumerate().find(|(_, r)| r.matches(reading))
    }

    /// The rules, most specific first.
    pub fn rules(&self) -> &[Rule] {
        &self.rules
    }
}

/// Who is asking, as far as authorization cares.
#[derive(Debug, Clone, Copy)]
pub enum Who<'a> {
    /// Not signed in; holds what Everyone grants (nothing when Everyone is disabled).
    Guest(&'a Resolved),
    /// Signed in.
    SignedIn(&'a Resolved),
}

/// Why a request was refused.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum DenyReason {
    /// No rule covers the path: denied by default.
    NoRule,
    /// Rules name hosts and none covers the request's host.
    NoHostRule,
    /// The person lacks the permission the rule requires.
    MissingPermission {
        /// The rule's pattern.
        rule: String,
        /// The permission it requires.
        permission: String,
    },
}

impl DenyReason {
    /// A short stable code for logs and pages.
    pub fn code(&self) -> &'static str {
        match self {
            DenyReason::NoRule => "no-rule",
            DenyReason::NoHostRule => "no-host-rule",
            DenyReason::MissingPermission { .. } => "permission-missing",
        }
    }
}

/// The outcome of authorization.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Decision {
    /// Forward the request.
    Allow,
    /// A guest must sign in first.
    LoginRequired,
    /// Refuse, with the reason.
    Deny(DenyReason),
}

/// A decision with the rule it was made under (none when no rule covers the path, or
/// when a guest is refused because Everyone is disabled).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Verdict<'p> {
    /// The decision.
    pub decision: Decision,
    /// The rule of the reading that decided.
    pub rule: Option<&'p Rule>,
}

/// Decides a request. Guests are sent to sign in whenever signing in might help; signed-in
/// people are denied with the reason.
pub fn decide(policy: &Policy, everyone_enabled: bool, who: Who<'_>, path: &NormalPath) -> Decision {
    verdict(policy, everyone_enabled, who, path).decision
}

/// Decides a request under every reading of its path (see the module doc) and keeps the
/// most restrictive outcome; among equally restrictive ones, the most specific rule's.
pub fn verdict<'p>(
    policy: &'p Policy,
    everyone_enabled: bool,
    who: Who<'_>,
    path: &NormalPath,
) -> Verdict<'p> {
    let (grants, guest) = match who {
        Who::Guest(_) if !everyone_enabled => {
            return Verdict { decision: Decision::LoginRequired, rule: None };
        }
        Who::Guest(g) => (g, true),
        Who::SignedIn(g) => (g, false),
    };
    // (severity, place of the rule) of the outcome kept so far; an ASCII path has one
    // reading, so this loop runs once and allocates nothing.
    let mut kept: Option<(u8, usize, Option<&Rule>)> = None;
    for reading in path.readings() {
        let found = policy.rule_at(reading);
        let severity = match found {
            None => 2,
            Some((_, rule)) if grants.permits(&rule.permission) => 0,
            Some(_) if guest => 1,
            Some(_) => 2,
        };
        let place = found.map_or(usize::MAX, |(i, _)| i);
        if kept.is_none_or(|(s, p, _)| severity > s || (severity == s && place < p)) {
            kept = Some((severity, place, found.map(|(_, r)| r)));
        }
    }
    let (severity, _, rule) = kept.unwrap_or((2, usize::MAX, None));
    let decision = match (severity, rule) {
        (0, _) => Decision::Allow,
        (1, _) => Decision::LoginRequired,
        (_, None) => Decision::Deny(DenyReason::NoRule),
        (_, Some(rule)) => Decision::Deny(DenyReason::MissingPermission {
            rule: rule.pattern.clone(),
            permission: rule.permission.clone(),
        }),
    };
    Verdict { decision, rule }
}

#[cfg(test)]
mod tests;
