//! Authorization as plain data and one pure function: [`decide`].
//!
//! Rules map a path pattern, and optionally a set of methods, to the permission it requires
//! or mark it public. The most specific matching rule wins: the longest path, and among
//! rules of that path one listing the request's method before one without methods (`HEAD`
//! is matched as `GET` unless a rule of that path lists `HEAD`). A path that no rule
//! matches is denied. The tower layer that applies decisions
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

use http::Method;

use crate::usergroups::Resolved;
pub use host::{HostPattern, Policies, decide_for_host, request_host, verdict_for_host};
pub use path::{NormalPath, PathError, normalize};

/// What a rule asks of a request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Access {
    /// This permission.
    Permission(String),
    /// Nothing: anyone passes, even when Everyone is disabled, and the backend is told
    /// nobody is signed in unless someone is.
    Public,
}

impl std::fmt::Display for Access {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Access::Permission(p) => write!(f, "requires {p}"),
            Access::Public => f.write_str("is public"),
        }
    }
}

/// One access rule.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Rule {
    /// The pattern as written in the config.
    pub pattern: String,
    /// What it requires.
    pub access: Access,
    /// The methods it governs (upper case); empty for every method.
    pub methods: Vec<Method>,
    /// Whether a signed-in person must have used a second factor in this session to pass
    /// (`mfa = "required"`): one who has not is asked for it first (step-up).
    pub mfa: bool,
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
        Rule::with(pattern, Access::Permission(permission.to_owned()), Vec::new())
    }

    /// A rule with its access and methods (empty for every method).
    pub fn with(pattern: &str, access: Access, methods: Vec<Method>) -> Result<Rule, String> {
        Ok(Rule {
            pattern: pattern.to_owned(),
            access,
            methods,
            mfa: false,
            segments: parse_pattern(pattern)?,
        })
    }

    /// This rule, asking for a second factor when `required` (see [`Rule::mfa`]).
    pub fn requiring_mfa(self, required: bool) -> Rule {
        Rule { mfa: required, ..self }
    }

    /// The permission it requires; `None` for a public rule.
    pub fn permission(&self) -> Option<&str> {
        match &self.access {
            Access::Permission(p) => Some(p),
            Access::Public => None,
        }
    }

    /// Whether anyone may pass.
    pub fn is_public(&self) -> bool {
        self.access == Access::Public
    }

    /// The pattern with its methods, for people: `/hooks/email (POST)`.
    pub fn describe(&self) -> String {
        if self.methods.is_empty() {
            return self.pattern.clone();
        }
        let methods: Vec<&str> = self.methods.iter().map(Method::as_str).collect();
        format!("{} ({})", self.pattern, methods.join(", "))
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
    /// Rules of one path stay together, those listing methods before the one without.
    pub fn new(mut rules: Vec<Rule>) -> Policy {
        rules.sort_by(|a, b| {
            b.segments
                .len()
                .cmp(&a.segments.len())
                .then_with(|| b.segments.cmp(&a.segments))
                .then_with(|| a.methods.is_empty().cmp(&b.methods.is_empty()))
        });
        Policy { rules }
    }

    /// The rule that governs `method` on `path` in its plain lower-case reading, if any.
    /// Decisions read the path every way a backend might: use [`verdict`] for the rule a
    /// decision was made under.
    pub fn rule_for(&self, method: &Method, path: &NormalPath) -> Option<&Rule> {
        self.rule_at(&request_method(method), path.lower()).map(|(_, r)| r)
    }

    /// The rule governing `method` (upper case) on one reading of a path, with its place in
    /// the order: the first path that matches and has a rule for the method.
    fn rule_at(&self, method: &Method, reading: &[String]) -> Option<(usize, &Rule)> {
        let mut i = 0;
        while i < self.rules.len() {
            let first = &self.rules[i];
            let end = i + self.rules[i..].iter().take_while(|r| r.segments == first.segments).count();
            if first.matches(reading) {
                let group = &self.rules[i..end];
                let listing = |m: &Method| group.iter().position(|r| r.methods.contains(m));
                let chosen = listing(method)
                    .or_else(|| if method == Method::HEAD { listing(&Method::GET) } else { None })
                    .or_else(|| group.iter().position(|r| r.methods.is_empty()));
                if let Some(at) = chosen {
                    return Some((i + at, &group[at]));
                }
            }
            i = end;
        }
        None
    }

    /// The rules, most specific first.
    pub fn rules(&self) -> &[Rule] {
        &self.rules
    }
}

/// A request's method as rules compare it: upper case, so that `post` is decided as the
/// `POST` a lenient backend would take it for.
pub fn request_method(method: &Method) -> Method {
    let text = method.as_str();
    if text.bytes().any(|b| b.is_ascii_lowercase()) {
        Method::from_bytes(text.to_ascii_uppercase().as_bytes()).unwrap_or_else(|_| method.clone())
    } else {
        method.clone()
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
        /// The methods it lists (empty for every method).
        methods: Vec<Method>,
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
    /// Whether the rule of any reading asks for a second factor used in this session.
    pub mfa: bool,
}

/// Decides a request. Guests are sent to sign in whenever signing in might help; signed-in
/// people are denied with the reason.
pub fn decide(
    policy: &Policy,
    everyone_enabled: bool,
    who: Who<'_>,
    method: &Method,
    path: &NormalPath,
) -> Decision {
    verdict(policy, everyone_enabled, who, method, path).decision
}

/// Decides a request under every reading of its path (see the module doc) and keeps the
/// most restrictive outcome; among equally restrictive ones, the most specific rule's.
pub fn verdict<'p>(
    policy: &'p Policy,
    everyone_enabled: bool,
    who: Who<'_>,
    method: &Method,
    path: &NormalPath,
) -> Verdict<'p> {
    static NOTHING: Resolved = Resolved { usergroups: Vec::new(), permissions: Vec::new() };
    // A guest while Everyone is disabled holds nothing and passes public rules only.
    let (grants, guest) = match who {
        Who::Guest(_) if !everyone_enabled => (&NOTHING, true),
        Who::Guest(g) => (g, true),
        Who::SignedIn(g) => (g, false),
    };
    let method = request_method(method);
    // (severity, place of the rule) of the outcome kept so far; an ASCII path has one
    // reading, so this loop runs once and allocates nothing.
    let mut kept: Option<(u8, usize, Option<&Rule>)> = None;
    let mut mfa = false;
    for reading in path.readings() {
        let found = policy.rule_at(&method, reading);
        mfa |= found.is_some_and(|(_, r)| r.mfa);
        let severity = match found {
            None => 2,
            Some((_, rule)) if rule.permission().is_none_or(|p| grants.permits(p)) => 0,
            Some(_) if guest => 1,
            Some(_) => 2,
        };
        let place = found.map_or(usize::MAX, |(i, _)| i);
        if kept.is_none_or(|(s, p, _)| severity > s || (severity == s && place < p)) {
            kept = Some((severity, place, found.map(|(_, r)| r)));
        }
    }
    let (severity, _, rule) = kept.unwrap_or((2, usize::MAX, None));
    if severity > 0 && guest && !everyone_enabled {
        // Signing in is the way past anything but a public rule.
        return Verdict { decision: Decision::LoginRequired, rule: None, mfa };
    }
    let decision = match (severity, rule) {
        (0, _) => Decision::Allow,
        (1, _) => Decision::LoginRequired,
        (_, None) => Decision::Deny(DenyReason::NoRule),
        (_, Some(rule)) => Decision::Deny(DenyReason::MissingPermission {
            rule: rule.pattern.clone(),
            methods: rule.methods.clone(),
            permission: rule.permission().unwrap_or_default().to_owned(),
        }),
    };
    Verdict { decision, rule, mfa }
}

#[cfg(test)]
mod tests;
