//! `[everyone]`, `[registered]`, `[usergroups]`, `[organizations]`, `[[assignments]]`,
//! `[[rules]]` and `[jwt.host_audiences]`: the usergroup model and the rules that use it.

use std::collections::{BTreeMap, BTreeSet, HashMap};

use super::{Ctx, valid_id, valid_permission};
use crate::config::file::*;
use http::Method;

use crate::policy::{Access, HostPattern, Policies, Policy, Rule};
use crate::usergroups::{EVERYONE, Model, Organization, REGISTERED, Usergroup};

fn permissions(cx: &mut Ctx<'_>, path: &str, list: Option<Vec<String>>) -> BTreeSet<String> {
    let mut out = BTreeSet::new();
    for (i, p) in list.unwrap_or_default().into_iter().enumerate() {
        if valid_permission(&p) {
            out.insert(p);
        } else {
            cx.problem(
                format!("{path}[{i}]"),
                format!("`{p}` is not a permission (letters, digits, `.`, `_`, `-`, `:`)"),
            );
        }
    }
    out
}

pub(super) fn model(cx: &mut Ctx<'_>, file: &FileConfig) -> Model {
    let everyone = file.everyone.as_ref();
    let mut usergroups = BTreeMap::new();
    let builtin = |id: &str, name: &str, permissions| Usergroup {
        id: id.into(),
        name: name.into(),
        permissions,
        mfa: false,
    };
    let perms = permissions(cx, "everyone.permissions", everyone.and_then(|e| e.permissions.clone()));
    usergroups.insert(EVERYONE.to_owned(), builtin(EVERYONE, "Everyone", perms));
    let perms = permissions(
        cx,
        "registered.permissions",
        file.registered.as_ref().and_then(|r| r.permissions.clone()),
    );
    usergroups.insert(REGISTERED.to_owned(), builtin(REGISTERED, "Registered", perms));
    for (id, g) in file.usergroups.iter().flatten() {
        let path = format!("usergroups.{id}");
        if id == EVERYONE || id == REGISTERED {
            cx.problem(&path, format!("`{id}` is built in: set its permissions under [{id}]"));
            continue;
        }
        if !valid_id(id) {
            cx.problem(&path, "usergroup ids may hold only lower-case letters, digits, `_` and `-`");
        }
        let permissions = permissions(cx, &format!("{path}.permissions"), g.permissions.clone());
        let name = g.name.clone().unwrap_or_else(|| id.clone());
        let mfa = mfa_required(cx, &format!("{path}.mfa"), g.mfa.as_deref());
        usergroups.insert(id.clone(), Usergroup { id: id.clone(), name, permissions, mfa });
    }

    let check_refs =
        |cx: &mut Ctx<'_>, path: &str, ids: &[String]| check_usergroups(cx, path, ids, &usergroups);

    let mut organizations = Vec::new();
    let mut domain_owner: HashMap<String, String> = HashMap::new();
    for (id, o) in file.organizations.iter().flatten() {
        let path = format!("organizations.{id}");
        let ids = o.usergroups.clone().unwrap_or_default();
        check_refs(cx, &format!("{path}.usergroups"), &ids);
        let mut domains = Vec::new();
        for (i, d) in o.domains.clone().unwrap_or_default().into_iter().enumerate() {
            let d = d.trim().to_ascii_lowercase();
            let dpath = format!("{path}.domains[{i}]");
            if d.is_empty() || d.contains(['@', '/', ' ']) || !d.contains('.') {
                cx.problem(dpath, format!("`{d}` is not an email domain"));
            } else if let Some(other) = domain_owner.insert(d.clone(), id.clone()) {
                cx.problem(dpath, format!("`{d}` already belongs to organization `{other}`"));
            } else {
                domains.push(d);
            }
        }
        let name = o.name.clone().unwrap_or_else(|| id.clone());
        organizations.push(Organization { id: id.clone(), name, domains, usergroups: ids });
    }

    let mut assignments: HashMap<String, Vec<String>> = HashMap::new();
    for (i, a) in file.assignments.iter().flatten().enumerate() {
        let path = format!("assignments[{i}]");
        let ids = a.usergroups.clone().unwrap_or_default();
        check_refs(cx, &format!("{path}.usergroups"), &ids);
        match a.email.as_deref().map(str::trim) {
            Some(e) if e.contains('@') => {
                if assignments.insert(e.to_ascii_lowercase(), ids).is_some() {
                    cx.problem(format!("{path}.email"), format!("`{e}` is assigned twice"));
                }
            }
            Some(e) => cx.problem(format!("{path}.email"), format!("`{e}` is not an email address")),
            None => cx.problem(format!("{path}.email"), "is required"),
        }
    }

    let everyone_enabled = everyone.and_then(|e| e.enabled).unwrap_or(true);
    Model { everyone_enabled, usergroups, organizations, assignments }
}

pub(super) fn check_usergroups(
    cx: &mut Ctx<'_>,
    path: &str,
    ids: &[String],
    defined: &BTreeMap<String, Usergroup>,
) {
    for (i, id) in ids.iter().enumerate() {
        if !defined.contains_key(id) {
            cx.problem(format!("{path}[{i}]"), format!("usergroup `{id}` is not defined"));
        }
    }
}

pub(super) fn host_audiences(
    cx: &mut Ctx<'_>,
    table: BTreeMap<String, String>,
) -> Vec<(HostPattern, String)> {
    let mut out = Vec::new();
    for (host, audience) in table {
        let key = format!("jwt.host_audiences.{host:?}");
        match HostPattern::parse(&host) {
            Ok(_) if audience.is_empty() => cx.problem(key, "the audience is empty"),
            Ok(pattern) => out.push((pattern, audience)),
            Err(e) => cx.problem(key, e),
        }
    }
    // The most specific first: a name before any wildcard, a longer wildcard first.
    out.sort_by_key(|(p, _)| match p {
        HostPattern::Exact(_) => (0, 0),
        HostPattern::Wildcard(s) => (1, usize::MAX - s.len()),
    });
    out
}

pub(super) fn policy(cx: &mut Ctx<'_>, rules: Vec<RuleFile>, model: &Model) -> Policies {
    let granted: BTreeSet<&String> = model.usergroups.values().flat_map(|g| g.permissions.iter()).collect();
    // A rule without a host beside rules with one would be read as "every host" by some
    // admins and "the other hosts" by others: each rule says which it means.
    let hosted = rules.iter().position(|r| r.host.is_some());
    let mut compiled: BTreeMap<Option<HostPattern>, Vec<Rule>> = BTreeMap::new();
    // Per host and path: the method sets seen so far (empty: the rule without methods).
    type Seen = Vec<(Vec<Method>, usize)>;
    let mut seen: HashMap<(Option<HostPattern>, String), Seen> = HashMap::new();
    for (i, r) in rules.into_iter().enumerate() {
        let path = format!("rules[{i}]");
        let Some(pattern) = r.path else {
            cx.problem(&path, "every rule needs `path`, and `permission` or `public = true`");
            continue;
        };
        let access = match (r.permission, r.public) {
            (Some(_), Some(true)) => {
                cx.problem(
                    format!("{path}.public"),
                    "a public rule lets anyone through, so it takes no `permission`: remove one of the two",
                );
                continue;
            }
            (Some(permission), _) => Access::Permission(permission),
            (None, Some(true)) => Access::Public,
            (None, _) => {
                cx.problem(&path, "every rule needs `permission`, or `public = true` to let anyone through");
                continue;
            }
        };
        let Some(methods) = methods(cx, &path, r.methods) else { continue };
        let mfa = mfa_required(cx, &format!("{path}.mfa"), r.mfa.as_deref());
        if mfa && access == Access::Public {
            cx.problem(
                format!("{path}.mfa"),
                "a public rule lets anyone through, so it cannot ask for a second factor: remove one of the two",
            );
            continue;
        }
        let host = match (&r.host, hosted) {
            (Some(h), _) => match HostPattern::parse(h) {
                Ok(h) => Some(h),
                Err(e) => {
                    cx.problem(format!("{path}.host"), e);
                    continue;
                }
            },
            (None, Some(first)) => {
                cx.problem(
                    &path,
                    format!(
                        "rules[{first}] names a host, so every rule must: add `host = \"...\"` (`*.example.com` covers every name under it)"
                    ),
                );
                continue;
            }
            (None, None) => None,
        };
        if let Access::Permission(permission) = &access {
            if !valid_permission(permission) {
                cx.problem(format!("{path}.permission"), format!("`{permission}` is not a permission"));
                continue;
            }
            if !granted.contains(permission) {
                cx.problem(
                    format!("{path}.permission"),
                    format!("no usergroup grants `{permission}`: nobody could pass this rule (a typo?)"),
                );
            }
        }
        match Rule::with(&pattern, access, methods.clone()).map(|r| r.requiring_mfa(mfa)) {
            Ok(rule) => {
                let key = rule.pattern.to_lowercase().trim_end_matches('/').to_owned();
                let earlier = seen.entry((host.clone(), key)).or_default();
                // The same path once without methods and once per disjoint method set.
                let clash = earlier.iter().find(|(m, _)| {
                    (m.is_empty() && methods.is_empty()) || m.iter().any(|x| methods.contains(x))
                });
                if let Some((_, first)) = clash {
                    let on = host.as_ref().map(|h| format!(" on `{h}`")).unwrap_or_default();
                    let what = if methods.is_empty() { "path" } else { "path and a method" };
                    cx.problem(
                        format!("{path}.path"),
                        format!("`{pattern}` is already the {what} of rules[{first}]{on}"),
                    );
                } else {
                    earlier.push((methods, i));
                    compiled.entry(host).or_default().push(rule);
                }
            }
            Err(e) => cx.problem(format!("{path}.path"), e),
        }
    }
    if hosted.is_none() {
        return Policies::AnyHost(Policy::new(compiled.remove(&None).unwrap_or_default()));
    }
    Policies::by_host(
        compiled.into_iter().filter_map(|(host, rules)| Some((host?, Policy::new(rules)))).collect(),
    )
}

/// An `mfa` value: `required` or `optional` (the default when absent).
fn mfa_required(cx: &mut Ctx<'_>, key: &str, value: Option<&str>) -> bool {
    match value {
        None | Some("optional") => false,
        Some("required") => true,
        Some(other) => {
            cx.problem(key, format!("`{other}` is not an mfa setting: `required` or `optional`"));
            false
        }
    }
}

/// A rule's `methods`, upper case: `None` (after a problem at the key) when one is not a
/// method or the list is empty; an absent list is every method.
fn methods(cx: &mut Ctx<'_>, path: &str, list: Option<Vec<String>>) -> Option<Vec<Method>> {
    let Some(list) = list else { return Some(Vec::new()) };
    if list.is_empty() {
        cx.problem(format!("{path}.methods"), "is empty: leave `methods` out to cover every method");
        return None;
    }
    let mut out = Vec::new();
    let mut ok = true;
    for (i, m) in list.iter().enumerate() {
        let upper = m.trim().to_ascii_uppercase();
        match Method::from_bytes(upper.as_bytes()) {
            Ok(method) if !upper.is_empty() && upper.len() <= 32 => {
                if out.contains(&method) {
                    cx.problem(format!("{path}.methods[{i}]"), format!("`{m}` is listed twice"));
                    ok = false;
                }
                out.push(method);
            }
            _ => {
                cx.problem(format!("{path}.methods[{i}]"), format!("`{m}` is not an HTTP method"));
                ok = false;
            }
        }
    }
    ok.then_some(out)
}

#[cfg(test)]
mod tests {
    use crate::config::load_str;
    use crate::policy::Policies;

    const HEAD: &str =
        "[upstream]\nurl = \"http://127.0.0.1:8081\"\n[everyone]\npermissions = [\"kb.read\"]\n";

    fn load(rules: &str) -> Result<Policies, Vec<(usize, String, String)>> {
        load_str("t.toml", &format!("{HEAD}{rules}"), std::path::Path::new("/srv"))
            .map(|c| (*c.policy).clone())
            .map_err(|ds| ds.into_iter().map(|d| (d.line, d.path, d.message)).collect())
    }

    #[test]
    fn mfa_is_required_or_optional_and_a_bad_value_names_its_key_and_line() {
        let p =
            load("[[rules]]\npath = \"/\"\npermission = \"kb.read\"\nmfa = \"required\"\n").expect("valid");
        let Policies::AnyHost(policy) = p else { panic!("one rule set") };
        assert!(policy.rules()[0].mfa);
        let errors = load("[[rules]]\npath = \"/\"\npermission = \"kb.read\"\nmfa = \"always\"\n")
            .expect_err("refused");
        assert_eq!((errors[0].0, errors[0].1.as_str()), (8, "rules[0].mfa"), "{errors:?}");
        assert!(errors[0].2.contains("`required` or `optional`"), "{errors:?}");
        let errors =
            load("[[rules]]\npath = \"/hooks\"\npublic = true\nmfa = \"required\"\n").expect_err("refused");
        assert_eq!(errors[0].1, "rules[0].mfa", "{errors:?}");
        let errors = load_str(
            "t.toml",
            &format!("{HEAD}[usergroups.agents]\npermissions = [\"kb.read\"]\nmfa = \"yes\"\n"),
            std::path::Path::new("/srv"),
        )
        .map(drop)
        .expect_err("refused");
        assert_eq!((errors[0].line, errors[0].path.as_str()), (7, "usergroups.agents.mfa"), "{errors:?}");
        let config = load_str(
            "t.toml",
            &format!("{HEAD}[usergroups.agents]\npermissions = [\"kb.read\"]\nmfa = \"required\"\n"),
            std::path::Path::new("/srv"),
        )
        .expect("valid");
        assert!(config.model.requires_mfa(&["registered".into(), "agents".into()]));
        assert!(!config.model.requires_mfa(&["registered".into()]));
    }

    #[test]
    fn rules_without_hosts_keep_one_rule_set_for_every_host() {
        let p = load("[[rules]]\npath = \"/\"\npermission = \"kb.read\"\n").expect("valid");
        assert!(!p.names_hosts());
    }

    #[test]
    fn a_rule_without_host_beside_hosted_rules_is_an_error_naming_it() {
        let errors = load(
            "[[rules]]\npath = \"/\"\npermission = \"kb.read\"\nhost = \"help.test\"\n\
             [[rules]]\npath = \"/kb\"\npermission = \"kb.read\"\n",
        )
        .expect_err("refused");
        assert_eq!(errors.len(), 1, "{errors:?}");
        assert_eq!(errors[0].1, "rules[1]");
        assert_eq!(errors[0].0, 9);
        assert!(errors[0].2.contains("rules[0] names a host"), "{errors:?}");
    }

    #[test]
    fn a_bad_host_pattern_is_an_error_naming_its_key_and_line() {
        let errors =
            load("[[rules]]\npath = \"/\"\npermission = \"kb.read\"\nhost = \"https://help.test\"\n")
                .expect_err("refused");
        assert_eq!(errors[0].1, "rules[0].host");
        assert_eq!(errors[0].0, 8);
    }

    #[test]
    fn the_same_path_may_have_a_rule_on_each_host_but_not_two_on_one() {
        let two_hosts = "[[rules]]\npath = \"/\"\npermission = \"kb.read\"\nhost = \"help.test\"\n\
                         [[rules]]\npath = \"/\"\npermission = \"kb.read\"\nhost = \"*.admin.test\"\n";
        let p = load(two_hosts).expect("valid");
        assert!(p.names_hosts());
        let errors = load(&format!(
            "{two_hosts}[[rules]]\npath = \"/\"\npermission = \"kb.read\"\nhost = \"HELP.test\"\n"
        ))
        .expect_err("refused");
        assert!(errors[0].2.contains("already the path of rules[0] on `help.test`"), "{errors:?}");
    }

    #[test]
    fn methods_are_validated_at_their_key() {
        let errors =
            load("[[rules]]\npath = \"/\"\npermission = \"kb.read\"\nmethods = []\n").expect_err("refused");
        assert_eq!((errors[0].0, errors[0].1.as_str()), (8, "rules[0].methods"), "{errors:?}");
        let errors =
            load("[[rules]]\npath = \"/\"\npermission = \"kb.read\"\nmethods = [\"GET\", \"PO ST\"]\n")
                .expect_err("refused");
        assert_eq!(errors[0].1, "rules[0].methods[1]", "{errors:?}");
        assert!(errors[0].2.contains("not an HTTP method"), "{errors:?}");
        let p = load("[[rules]]\npath = \"/\"\npermission = \"kb.read\"\nmethods = [\"post\", \"Put\"]\n")
            .expect("valid");
        assert_eq!(p.public_routes(), Vec::<String>::new());
        assert!(p.lists_methods());
    }

    #[test]
    fn the_same_path_may_have_disjoint_method_sets_but_not_overlapping_ones() {
        let base = "[[rules]]\npath = \"/kb\"\npermission = \"kb.read\"\n\
                    [[rules]]\npath = \"/kb\"\npermission = \"kb.read\"\nmethods = [\"POST\", \"PUT\"]\n\
                    [[rules]]\npath = \"/kb/\"\npermission = \"kb.read\"\nmethods = [\"DELETE\"]\n";
        load(base).expect("valid");
        let errors = load(&format!(
            "{base}[[rules]]\npath = \"/KB\"\npermission = \"kb.read\"\nmethods = [\"put\"]\n"
        ))
        .expect_err("refused");
        assert_eq!(errors.len(), 1, "{errors:?}");
        assert_eq!(errors[0].1, "rules[3].path");
        assert!(errors[0].2.contains("rules[1]"), "{errors:?}");
        let errors = load(&format!("{base}[[rules]]\npath = \"/kb\"\npermission = \"kb.read\"\n"))
            .expect_err("refused");
        assert!(errors[0].2.contains("rules[0]"), "{errors:?}");
    }

    #[test]
    fn public_with_a_permission_is_refused_at_its_key() {
        let errors = load("[[rules]]\npath = \"/hooks\"\npermission = \"kb.read\"\npublic = true\n")
            .expect_err("refused");
        assert_eq!((errors[0].0, errors[0].1.as_str()), (8, "rules[0].public"), "{errors:?}");
        assert!(errors[0].2.contains("takes no `permission`"), "{errors:?}");
        let errors = load("[[rules]]\npath = \"/hooks\"\npublic = false\n").expect_err("refused");
        assert_eq!(errors[0].1, "rules[0]");
        let p = load(
            "[[rules]]\npath = \"/hooks/email\"\npublic = true\nmethods = [\"POST\"]\n\
             [[rules]]\npath = \"/static/*\"\npublic = true\n",
        )
        .expect("valid");
        assert_eq!(p.public_routes(), ["/static/*", "/hooks/email (POST)"]);
    }

    #[test]
    fn method_rules_refuse_a_method_override_header_let_through() {
        let errors = load(
            "[server]\nallowed_override_headers = [\"X-HTTP-Method-Override\"]\n\
             [[rules]]\npath = \"/\"\npermission = \"kb.read\"\nmethods = [\"GET\"]\n",
        )
        .expect_err("refused");
        assert_eq!(errors[0].1, "server.allowed_override_headers[0]", "{errors:?}");
    }

    #[test]
    fn an_ambiguous_pattern_is_a_config_error_at_its_key_path() {
        let text = "[upstream]\nurl = \"http://127.0.0.1:8081\"\n\n[everyone]\nenabled = true\npermissions = [\"chat.sales\"]\n\n[[rules]]\npath = \"/chat/\u{17f}ales\"\npermission = \"chat.sales\"\n";
        let problems = load_str("t.toml", text, std::path::Path::new(".")).expect_err("refused");
        assert!(
            problems.iter().any(|p| p.path == "rules[0].path" && p.message.contains("reads differently")),
            "{problems:?}"
        );
    }
}
