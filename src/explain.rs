//! Why a person has the access they have: each usergroup with where it comes from, the
//! permissions, and for a path the rule that governs it and the decision with its reason.
//! Shown by `deskgate explain`, on the person's administration page, and by the API.
//!
//! Worked out from the account, the usergroup model (config and stored organizations) and
//! what each provider said of the account at its last sign-in through it (its groups, mapped
//! by the provider's rules as they are now, and the organizations it named).

use std::fmt::Write as _;

use crate::accounts::{Account, ProviderClaims};
use crate::config::Config;
use http::Method;

use crate::policy::{Decision, DenyReason, Policies, Who, normalize, verdict_for_host};
use crate::usergroups::{Member, Model, Source, Withheld};

/// One usergroup the person is in.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Held {
    /// Usergroup id.
    pub id: String,
    /// Display name.
    pub name: String,
    /// Every reason the person is in it.
    pub sources: Vec<Source>,
}

/// How a path is decided for the person.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PathCheck {
    /// The path as asked.
    pub asked: String,
    /// The host asked about, when given.
    pub host: Option<String>,
    /// The method asked about (`GET` unless given).
    pub method: String,
    /// The path as normalized for matching, or why it cannot be.
    pub normalized: Result<String, String>,
    /// The rule that governs it: pattern with its methods, and the required permission
    /// (none for a public rule).
    pub rule: Option<(String, Option<String>)>,
    /// The decision.
    pub decision: Option<Decision>,
    /// The person's usergroups that grant the rule's permission.
    pub granted_by: Vec<String>,
}

/// The whole explanation.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Explanation {
    /// The account.
    pub account: Account,
    /// How it signs in.
    pub providers: Vec<String>,
    /// Its usergroups, built-ins first.
    pub usergroups: Vec<Held>,
    /// Its permissions, sorted.
    pub permissions: Vec<String>,
    /// The path asked about, if any.
    pub path: Option<PathCheck>,
    /// Grants by email that do not apply because the address is not verified.
    pub withheld: Vec<Withheld>,
    /// What each provider said at the person's last sign-in through it.
    pub said: Vec<Said>,
}

/// One group a provider gave, and what its rules make of it now.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GroupSeen {
    /// The group as the provider named it.
    pub group: String,
    /// The usergroups it maps to; empty when none.
    pub usergroups: Vec<String>,
    /// Why it maps to nothing.
    pub why_not: Option<String>,
}

/// What one provider said of the person at their last sign-in through it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Said {
    /// The provider id.
    pub provider: String,
    /// The attributes used (`name: value`).
    pub attributes: Vec<String>,
    /// Every group, mapped or not.
    pub groups: Vec<GroupSeen>,
    /// Organization names it gave.
    pub organizations: Vec<String>,
}

/// A provider group that a rule maps to a usergroup.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Mapped {
    /// The usergroup id.
    pub usergroup: String,
    /// The provider id.
    pub provider: String,
    /// The group as the provider named it.
    pub group: String,
}

/// What the providers said of an account, as the explanation uses it.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Claimed {
    /// Each group a rule maps, once per usergroup it maps to.
    pub mapped: Vec<Mapped>,
    /// Organization names the providers gave.
    pub organizations: Vec<String>,
    /// Everything each provider said, each group with what became of it.
    pub said: Vec<Said>,
}

impl Claimed {
    /// The claims, mapped by the group rules `config` has now.
    pub fn new(config: &Config, claims: &[ProviderClaims]) -> Claimed {
        let mut out = Claimed::default();
        for c in claims {
            let policy = config.account_policy(&c.provider);
            let configured = policy.is_some();
            let mut groups = Vec::new();
            for group in &c.groups {
                let usergroups =
                    policy.map(|p| p.map_groups(std::slice::from_ref(group))).unwrap_or_default();
                for usergroup in &usergroups {
                    out.mapped.push(Mapped {
                        usergroup: usergroup.clone(),
                        provider: c.provider.clone(),
                        group: group.clone(),
                    });
                }
                let why_not = usergroups.is_empty().then(|| {
                    if configured {
                        format!("no [[providers.{}.groups]] rule names this group", c.provider)
                    } else {
                        "the provider is no longer configured".to_owned()
                    }
                });
                groups.push(GroupSeen { group: group.clone(), usergroups, why_not });
            }
            out.organizations.extend(c.organizations.iter().cloned());
            out.said.push(Said {
                provider: c.provider.clone(),
                attributes: c.attributes.clone(),
                groups,
                organizations: c.organizations.clone(),
            });
        }
        out
    }
}

impl Claimed {
    /// The mapped usergroup ids (sorted, once each) and the ids of the organizations named,
    /// as a [`Member`] takes them.
    pub fn for_member(&self, model: &Model) -> (Vec<String>, Vec<String>) {
        let mut provider: Vec<String> = self.mapped.iter().map(|m| m.usergroup.clone()).collect();
        provider.sort();
        provider.dedup();
        (provider, model.organizations_named(&self.organizations))
    }
}

/// An account as the model resolves it, with what its providers said.
pub fn claimed_member<'a>(account: &'a Account, provider: &'a [String], named: &'a [String]) -> Member<'a> {
    Member {
        email: account.email.as_deref(),
        email_verified: account.email_verified,
        assigned: &account.usergroups,
        provider,
        organizations: named,
    }
}

/// A path to decide for an account.
#[derive(Debug, Clone, Copy)]
pub struct Ask<'a> {
    /// The path, as given.
    pub path: &'a str,
    /// The host it is asked on, where rules name hosts.
    pub host: Option<&'a str>,
    /// The method (`GET` unless given).
    pub method: Option<&'a str>,
}

/// Explains `account`'s access under `model` and `policy` with what its providers said of
/// it, and `path` (on `host`, when rules name hosts) if given.
pub fn explain(
    model: &Model,
    policy: &Policies,
    account: Account,
    providers: Vec<String>,
    claimed: &Claimed,
    ask: Option<Ask<'_>>,
) -> Explanation {
    let (path, host, method) = ask.map_or((None, None, None), |a| (Some(a.path), a.host, a.method));
    let host = host.map(str::trim).filter(|h| !h.is_empty());
    let method = method.map(str::trim).filter(|m| !m.is_empty()).unwrap_or("GET").to_ascii_uppercase();
    let (provider, named) = claimed.for_member(model);
    let member = claimed_member(&account, &provider, &named);
    let resolved = model.resolve(&member);
    let withheld = model.withheld(&member);
    let mut sources = model.explain(&member);
    // The model knows a provider mapped the usergroup; say which group of which provider.
    for (id, set) in sources.iter_mut() {
        if set.remove(&Source::Provider(String::new())) {
            for m in claimed.mapped.iter().filter(|m| &m.usergroup == id) {
                set.insert(Source::Provider(format!("group `{}` of `{}`", m.group, m.provider)));
            }
        }
    }
    let usergroups = resolved
        .usergroups
        .iter()
        .map(|id| Held {
            id: id.clone(),
            name: model.usergroups.get(id).map_or_else(|| id.clone(), |g| g.name.clone()),
            sources: sources.remove(id).map(|s| s.into_iter().collect()).unwrap_or_default(),
        })
        .collect();
    let path = path.map(str::trim).filter(|p| !p.is_empty()).map(|asked| {
        let mut check = PathCheck {
            asked: asked.to_owned(),
            host: host.map(str::to_owned),
            method: method.clone(),
            normalized: Err(String::new()),
            rule: None,
            decision: None,
            granted_by: Vec::new(),
        };
        let with_slash = if asked.starts_with('/') { asked.to_owned() } else { format!("/{asked}") };
        let parsed =
            Method::from_bytes(method.as_bytes()).map_err(|_| format!("`{method}` is not an HTTP method"));
        match (normalize(&with_slash), parsed) {
            (Err(e), _) => check.normalized = Err(e.to_string()),
            (_, Err(e)) => check.normalized = Err(e),
            (Ok(normal), Ok(method)) => {
                check.normalized = Ok(normal.to_string());
                // The gateway's own decision, over every reading of the path.
                let verdict = verdict_for_host(
                    policy,
                    model.everyone_enabled,
                    Who::SignedIn(&resolved),
                    host,
                    &method,
                    &normal,
                );
                if let Some(rule) = verdict.rule {
                    check.rule = Some((rule.describe(), rule.permission().map(str::to_owned)));
                    check.granted_by = resolved
                        .usergroups
                        .iter()
                        .filter(|id| {
                            model
                                .usergroups
                                .get(*id)
                                .is_some_and(|g| rule.permission().is_some_and(|p| g.permissions.contains(p)))
                        })
                        .cloned()
                        .collect();
                }
                check.decision = Some(verdict.decision);
            }
        }
        check
    });
    Explanation {
        account,
        providers,
        usergroups,
        permissions: resolved.permissions,
        path,
        withheld,
        said: claimed.said.clone(),
    }
}

/// A source in words.
pub fn source_text(source: &Source) -> String {
    match source {
        Source::BuiltIn => "built-in".into(),
        Source::Assigned => "assigned to the account".into(),
        Source::ConfigAssignment => "config assignment ([[assignments]])".into(),
        Source::Organization(id) => format!("organization `{id}`"),
        Source::Provider(via) if via.is_empty() => "provider group mapping".into(),
        Source::Provider(via) => format!("provider group mapping: {via}"),
    }
}

/// A source as a short code, for JSON.
pub fn source_code(source: &Source) -> &'static str {
    match source {
        Source::BuiltIn => "built-in",
        Source::Assigned => "assigned",
        Source::ConfigAssignment => "config-assignment",
        Source::Organization(_) => "organization",
        Source::Provider(_) => "provider-mapping",
    }
}

/// Where provider group mappings come from, in words.
pub const PROVIDER_NOTE: &str = "Provider group mappings use the groups (and organizations) each identity \
     provider gave at the person's last sign-in through it, mapped by the rules in the config now.";

/// The decision as a short code and a sentence.
pub fn decision_text(check: &PathCheck) -> (&'static str, String) {
    match (&check.decision, &check.rule) {
        (Some(Decision::Allow), Some((_, None))) => ("allow", "the rule is public: anyone passes".into()),
        (Some(Decision::Allow), Some((_, Some(permission)))) => {
            ("allow", format!("`{permission}` is granted by {}", check.granted_by.join(", ")))
        }
        (Some(Decision::Allow), None) => ("allow", String::new()),
        (Some(Decision::LoginRequired), _) => ("login-required", "a guest must sign in first".into()),
        (Some(Decision::Deny(DenyReason::NoRule)), _) => {
            ("deny", "no-rule: no rule covers this path, and what no rule covers is denied".into())
        }
        (Some(Decision::Deny(DenyReason::NoHostRule)), _) if check.host.is_none() => {
            ("deny", "no-host-rule: the rules name hosts; give the host to decide for".into())
        }
        (Some(Decision::Deny(DenyReason::NoHostRule)), _) => {
            ("deny", "no-host-rule: no rule covers this host, and a host no rule covers is denied".into())
        }
        (Some(Decision::Deny(DenyReason::MissingPermission { permission, .. })), _) => {
            ("deny", format!("permission-missing: none of this account's usergroups grants `{permission}`"))
        }
        (None, _) => ("invalid", check.normalized.clone().err().unwrap_or_default()),
    }
}

/// The explanation as plain text, for the terminal.
pub fn text(e: &Explanation) -> String {
    let a = &e.account;
    let mut out = String::new();
    let email = match (a.email.as_deref(), a.email_verified) {
        (Some(m), true) => format!(" <{m}> (verified)"),
        (Some(m), false) => format!(" <{m}> (not verified)"),
        (None, _) => String::new(),
    };
    let _ = writeln!(out, "Account:    {}{email}", a.name);
    let _ = writeln!(out, "Id:         {}", a.id);
    let status = if a.disabled { "disabled: sign-in refused, sessions end" } else { "enabled" };
    let _ = writeln!(out, "Status:     {status}");
    let signs_in = if e.providers.is_empty() { "no way yet".to_owned() } else { e.providers.join(", ") };
    let _ = writeln!(out, "Signs in:   {signs_in}");
    let _ = writeln!(out, "\nUsergroups, and where each comes from:");
    let width = e.usergroups.iter().map(|g| g.id.len()).max().unwrap_or(0);
    for g in &e.usergroups {
        let from: Vec<String> = g.sources.iter().map(source_text).collect();
        let _ = writeln!(out, "  {:width$}  {}", g.id, from.join("; "));
    }
    for w in &e.withheld {
        let _ = writeln!(out, "  withheld: {}", w.text());
    }
    let _ = writeln!(out, "{PROVIDER_NOTE}");
    let _ = writeln!(out, "\nPermissions: {}", e.permissions.join(", "));
    if !e.said.is_empty() {
        let _ = writeln!(out, "\nWhat each provider said at the last sign-in through it:");
    }
    for said in &e.said {
        let _ = writeln!(out, "  {}", said.provider);
        for a in &said.attributes {
            let _ = writeln!(out, "    {a}");
        }
        for o in &said.organizations {
            let _ = writeln!(out, "    organization: {o}");
        }
        for g in &said.groups {
            match &g.why_not {
                None => {
                    let _ = writeln!(out, "    group {} → {}", g.group, g.usergroups.join(", "));
                }
                Some(why) => {
                    let _ = writeln!(out, "    group {} → not mapped: {why}", g.group);
                }
            }
        }
        if said.groups.is_empty() {
            let _ = writeln!(out, "    no groups");
        }
    }
    if let Some(check) = &e.path {
        match &check.host {
            Some(host) => {
                let _ = writeln!(out, "\nPath {} on {host}", check.asked);
            }
            None => {
                let _ = writeln!(out, "\nPath {}", check.asked);
            }
        }
        let _ = writeln!(out, "  Method:     {}", check.method);
        if let Ok(n) = &check.normalized
            && *n != check.asked
        {
            let _ = writeln!(out, "  Normalized: {n}");
        }
        if check.decision.is_some() {
            match &check.rule {
                Some((pattern, Some(permission))) => {
                    let _ = writeln!(out, "  Rule:       {pattern} requires {permission}");
                }
                Some((pattern, None)) => {
                    let _ = writeln!(out, "  Rule:       {pattern} is public");
                }
                None => {
                    let _ = writeln!(out, "  Rule:       none covers this path");
                }
            }
        }
        let (code, why) = decision_text(check);
        let why = if why.is_empty() { String::new() } else { format!(" — {why}") };
        let _ = writeln!(out, "  Decision:   {code}{why}");
    }
    out
}

#[cfg(test)]
mod tests;
