//! The usergroup model: which usergroups a person is in and what they may do.
//!
//! Pure data and pure functions. Usergroups = {Everyone, Registered} ∪ assigned ∪ the
//! usergroups of the person's organizations ∪ provider group mappings; permissions are the
//! union of theirs.

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::sync::{Arc, Mutex};

/// Id of the built-in usergroup of guests and of everyone signed in.
pub const EVERYONE: &str = "everyone";
/// Id of the built-in usergroup of every signed-in account.
pub const REGISTERED: &str = "registered";

/// A usergroup and what it permits.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Usergroup {
    /// Id used in config, headers and the JWT.
    pub id: String,
    /// Display name.
    pub name: String,
    /// Permissions granted.
    pub permissions: BTreeSet<String>,
    /// Whether every member must use a second factor (`mfa = "required"`): a member without
    /// one is taken to enrol before anything else.
    pub mfa: bool,
}

/// An organization: members by email domain, linked to usergroups.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Organization {
    /// Id.
    pub id: String,
    /// Display name.
    pub name: String,
    /// Lower-case email domains.
    pub domains: Vec<String>,
    /// Usergroups every member is in.
    pub usergroups: Vec<String>,
}

/// Why a person is in a usergroup.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub enum Source {
    /// Everyone and Registered.
    BuiltIn,
    /// A static assignment in the config.
    ConfigAssignment,
    /// An assignment stored with the account.
    Assigned,
    /// Membership of an organization.
    Organization(String),
    /// A provider group mapped by a rule.
    Provider(String),
}

/// A grant by email that does not apply because the address is not verified.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Withheld {
    /// Membership of this organization by the email's domain.
    Organization(String),
    /// `[[assignments]]` of these usergroups to the address.
    Assignment(Vec<String>),
}

impl Withheld {
    /// The grant in words, as the person page and `deskgate explain` show it.
    pub fn text(&self) -> String {
        match self {
            Withheld::Organization(id) => {
                format!("organization `{id}` by email domain: withheld, the email is not verified")
            }
            Withheld::Assignment(ids) => format!(
                "config assignment ([[assignments]]) of {} by email: withheld, the email is not verified",
                ids.join(", ")
            ),
        }
    }
}

/// The resolved usergroups and permissions of a guest or an account.
#[derive(Debug, Clone, PartialEq, Eq, Default, serde::Serialize, serde::Deserialize)]
pub struct Resolved {
    /// Usergroup ids: built-ins first, then the others in id order.
    pub usergroups: Vec<String>,
    /// Permissions, sorted.
    pub permissions: Vec<String>,
}

impl Resolved {
    /// Whether `permission` is granted.
    pub fn permits(&self, permission: &str) -> bool {
        self.permissions.binary_search_by(|p| p.as_str().cmp(permission)).is_ok()
    }
}

/// What is known about an account when its usergroups are worked out.
#[derive(Debug, Clone, Default)]
pub struct Member<'a> {
    /// The account's email, if any.
    pub email: Option<&'a str>,
    /// Whether `email` is verified; an unverified one grants nothing.
    pub email_verified: bool,
    /// Usergroups assigned to the account in the account store.
    pub assigned: &'a [String],
    /// Usergroups mapped from the provider's groups at sign-in.
    pub provider: &'a [String],
    /// Organization ids the account belongs to by its record (not by domain).
    pub organizations: &'a [String],
}

/// All usergroups, organizations and static assignments of a config.
#[derive(Debug, Clone)]
pub struct Model {
    /// Whether the Everyone usergroup is enabled.
    pub everyone_enabled: bool,
    /// Every usergroup by id, built-ins included.
    pub usergroups: BTreeMap<String, Usergroup>,
    /// Organizations.
    pub organizations: Vec<Organization>,
    /// Static assignments: lower-case email → usergroup ids.
    pub assignments: HashMap<String, Vec<String>>,
}

impl Model {
    /// What a guest may do: Everyone's permissions, or nothing when Everyone is disabled.
    pub fn guest(&self) -> Resolved {
        if !self.everyone_enabled {
            return Resolved::default();
        }
        self.collect([EVERYONE.to_owned()].into_iter().collect())
    }

    /// A signed-in account's usergroups and permissions.
    pub fn resolve(&self, member: &Member<'_>) -> Resolved {
        let ids = self.explain(member).into_keys().collect();
        self.collect(ids)
    }

    /// Whether any of `usergroups` requires a second factor.
    pub fn requires_mfa(&self, usergroups: &[String]) -> bool {
        usergroups.iter().any(|id| self.usergroups.get(id).is_some_and(|g| g.mfa))
    }

    /// The usergroups that require a second factor, by id.
    pub fn mfa_usergroups(&self) -> Vec<&Usergroup> {
        self.usergroups.values().filter(|g| g.mfa).collect()
    }

    /// Each usergroup of an account with every reason it has it.
    pub fn explain(&self, member: &Member<'_>) -> BTreeMap<String, BTreeSet<Source>> {
        let mut out: BTreeMap<String, BTreeSet<Source>> = BTreeMap::new();
        let mut add = |id: &str, source: Source| {
            if self.usergroups.contains_key(id) {
                out.entry(id.to_owned()).or_default().insert(source);
            }
        };
        if self.everyone_enabled {
            add(EVERYONE, Source::BuiltIn);
        }
        add(REGISTERED, Source::BuiltIn);
        for id in member.assigned {
            add(id, Source::Assigned);
        }
        for id in member.provider {
            add(id, Source::Provider(String::new()));
        }
        // Grants by email need a verified address: anyone can type an address at sign-up.
        let email = member.email.filter(|_| member.email_verified).map(str::to_ascii_lowercase);
        if let Some(ids) = email.as_ref().and_then(|e| self.assignments.get(e)) {
            for id in ids {
                add(id, Source::ConfigAssignment);
            }
        }
        for org in self.member_of(email.as_deref(), member.organizations) {
            for id in &org.usergroups {
                add(id, Source::Organization(org.id.clone()));
            }
        }
        out
    }

    /// The grants an account's email would bring if it were verified, and does not because
    /// it is not: empty for a verified address or none. Organizations already held by
    /// another way (e.g. named by a provider) are left out.
    pub fn withheld(&self, member: &Member<'_>) -> Vec<Withheld> {
        let Some(email) = member.email.filter(|_| !member.email_verified).map(str::to_ascii_lowercase) else {
            return Vec::new();
        };
        let mut out = Vec::new();
        if let Some(ids) = self.assignments.get(&email) {
            out.push(Withheld::Assignment(ids.clone()));
        }
        for org in self.member_of(Some(&email), &[]) {
            if !member.organizations.contains(&org.id) {
                out.push(Withheld::Organization(org.id.clone()));
            }
        }
        out
    }

    /// The organizations of an account with this (lower-case) email, by its domain, and of
    /// the organization ids given.
    fn member_of<'m, 'i>(
        &'m self,
        email: Option<&str>,
        ids: &'i [String],
    ) -> impl Iterator<Item = &'m Organization> + use<'m, 'i> {
        let domain = email.and_then(|e| e.rsplit_once('@')).map(|(_, d)| d.to_owned());
        self.organizations
            .iter()
            .filter(move |o| domain.as_ref().is_some_and(|d| o.domains.contains(d)) || ids.contains(&o.id))
    }

    /// The organizations an account belongs to: by its email's domain, or named by a provider.
    pub fn organizations_of(&self, email: Option<&str>, named: &[String]) -> Vec<&Organization> {
        let email = email.map(str::to_ascii_lowercase);
        let ids = self.organizations_named(named);
        self.member_of(email.as_deref(), &ids).collect()
    }

    /// This model with `stored` organizations (the ones administrators keep in the account
    /// store) after the config's own.
    pub fn with_organizations(&self, stored: Vec<Organization>) -> Model {
        let mut model = self.clone();
        model.organizations.extend(stored);
        model
    }

    /// Whether an organization comes from the config file (and so cannot be edited).
    pub fn is_config_organization(&self, id: &str) -> bool {
        self.organizations.iter().any(|o| o.id == id)
    }

    /// Organization ids named by a provider attribute, matched to organization ids or
    /// names without regard to case.
    pub fn organizations_named(&self, names: &[String]) -> Vec<String> {
        self.organizations
            .iter()
            .filter(|o| {
                names.iter().any(|n| n.eq_ignore_ascii_case(&o.id) || n.eq_ignore_ascii_case(&o.name))
            })
            .map(|o| o.id.clone())
            .collect()
    }

    fn collect(&self, ids: BTreeSet<String>) -> Resolved {
        let mut usergroups: Vec<String> = Vec::with_capacity(ids.len());
        for builtin in [EVERYONE, REGISTERED] {
            if ids.contains(builtin) {
                usergroups.push(builtin.to_owned());
            }
        }
        usergroups.extend(ids.iter().filter(|id| *id != EVERYONE && *id != REGISTERED).cloned());
        let permissions: BTreeSet<&String> = usergroups
            .iter()
            .filter_map(|id| self.usergroups.get(id))
            .flat_map(|g| g.permissions.iter())
            .collect();
        Resolved { usergroups, permissions: permissions.into_iter().cloned().collect() }
    }
}

/// Shares one [`Resolved`] between every session that has the same usergroups, so that a
/// million sessions do not keep a million copies of the same lists.
#[derive(Debug, Default)]
pub struct Interner(Mutex<HashMap<Vec<String>, Arc<Resolved>>>);

/// Distinct resolutions kept at most; past it the interner starts afresh (sharing is an
/// economy, never a correctness matter).
const INTERNED_MAX: usize = 4096;

impl Interner {
    /// The shared copy of `resolved`.
    pub fn intern(&self, resolved: Resolved) -> Arc<Resolved> {
        let mut map = self.0.lock().unwrap_or_else(|p| p.into_inner());
        if let Some(shared) = map.get(&resolved.usergroups)
            && shared.permissions == resolved.permissions
        {
            return shared.clone();
        }
        if map.len() >= INTERNED_MAX {
            map.clear();
        }
        let shared = Arc::new(resolved);
        map.insert(shared.usergroups.clone(), shared.clone());
        shared
    }
}

/// How a provider's group names compare with the groups its rules name.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum GroupNames {
    /// As text, without regard to ASCII case: SAML attribute values, OIDC claim values.
    #[default]
    Text,
    /// As LDAP distinguished names (RFC 4514): escapes, spaces around separators, attribute
    /// type case and the order within multi-valued RDNs do not matter, nor does the case of
    /// values. A rule that is not a DN compares as text.
    #[cfg(feature = "ldap")]
    Dn,
}

impl GroupNames {
    /// The form in which `group` is compared.
    pub fn key(self, group: &str) -> String {
        match self {
            GroupNames::Text => group.to_ascii_lowercase(),
            #[cfg(feature = "ldap")]
            GroupNames::Dn => deskgate_ldap::dn::group_key(group),
        }
    }
}

/// Maps a provider's groups to usergroup ids, comparing groups as `names` says.
pub fn map_groups(rules: &[(String, Vec<String>)], groups: &[String], names: GroupNames) -> Vec<String> {
    let rules: Vec<(String, &Vec<String>)> = rules.iter().map(|(from, to)| (names.key(from), to)).collect();
    let mut out = BTreeSet::new();
    for group in groups {
        let group = names.key(group);
        for (from, to) in &rules {
            if *from == group {
                out.extend(to.iter().cloned());
            }
        }
    }
    out.into_iter().collect()
}

#[cfg(test)]
mod tests;
