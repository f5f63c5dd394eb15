//! Authorization as plain data and one pure function: [`decide`].
//!
//! Rules map a path pattern to the permission it requires. The most specific matching rule
//! wins; a path that no rule matches is denied. The tower layer that applies decisions
//! lives in `gateway.rs` and stays thin.

pub mod path;

use crate::usergroups::Resolved;
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
    /// A literal segment, lower-cased.
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

    fn matches(&self, path: &NormalPath) -> bool {
        let lower = path.lower();
        self.segments.len() <= lower.len()
            && self.segments.iter().zip(lower).all(|(s, p)| match s {
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

    /// The rule that governs `path`, if any.
    pub fn rule_for(&self, path: &NormalPath) -> Option<&Rule> {
        self.rules.iter().find(|r| r.matches(path))
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

/// Decides a request. Guests are sent to sign in whenever signing in might help; signed-in
/// people are denied with the reason.
pub fn decide(policy: &Policy, everyone_enabled: bool, who: Who<'_>, path: &NormalPath) -> Decision {
    let (grants, guest) = match who {
        Who::Guest(_) if !everyone_enabled => return Decision::LoginRequired,
        Who::Guest(g) => (g, true),
        Who::SignedIn(g) => (g, false),
    };
    let Some(rule) = policy.rule_for(path) else {
        return Decision::Deny(DenyReason::NoRule);
    };
    if grants.permits(&rule.permission) {
        Decision::Allow
    } else if guest {
        Decision::LoginRequired
    } else {
        Decision::Deny(DenyReason::MissingPermission {
            rule: rule.pattern.clone(),
            permission: rule.permission.clone(),
        })
    }
}

#[cfg(test)]
mod tests;
