//! `[providers.ldap.*]`, `[providers.oidc.*]` and `[providers.saml.*]`: each provider built
//! from its own crate's config, with its group mappings checked against the usergroups.

#[cfg(any(feature = "ldap", feature = "oidc", feature = "saml"))]
use std::collections::BTreeMap;

#[cfg(any(feature = "ldap", feature = "oidc", feature = "saml"))]
use super::{Ctx, model::check_usergroups, valid_id};
#[cfg(any(feature = "ldap", feature = "oidc", feature = "saml"))]
use crate::{config::*, usergroups::Model};

#[cfg(any(feature = "ldap", feature = "oidc", feature = "saml"))]
fn group_rules(
    cx: &mut Ctx<'_>,
    path: &str,
    rules: &[deskgate_provider::config::GroupRule],
    model: &Model,
) -> Vec<(String, Vec<String>)> {
    for (i, r) in rules.iter().enumerate() {
        check_usergroups(cx, &format!("{path}[{i}].usergroups"), &r.usergroups, &model.usergroups);
        if r.group.trim().is_empty() {
            cx.problem(format!("{path}[{i}].group"), "is empty");
        }
    }
    rules.iter().map(|r| (r.group.clone(), r.usergroups.clone())).collect()
}

#[cfg(feature = "ldap")]
pub(super) fn ldap(
    cx: &mut Ctx<'_>,
    directories: BTreeMap<String, deskgate_ldap::LdapConfig>,
    model: &Model,
) -> Vec<LdapProvider> {
    let mut out = Vec::new();
    for (id, mut file) in directories {
        let path = format!("providers.ldap.{id}");
        if !valid_id(&id) {
            cx.problem(&path, "provider ids may hold only lower-case letters, digits, `_` and `-`");
        }
        // Paths in the file are relative to the file, like every other path.
        file.ca_file = file.ca_file.map(|f| cx.base.join(f));
        file.bind_password_file = file.bind_password_file.map(|f| cx.base.join(f));
        let policy = AccountPolicy {
            create_accounts: file.create_accounts,
            link_by_email: file.link_by_email,
            group_rules: group_rules(cx, &format!("{path}.groups"), &file.groups, model),
            group_names: crate::usergroups::GroupNames::Dn,
        };
        match file.build_allowing_absent_secrets(&id) {
            Ok((ldap, absent)) => {
                cx.problems.extend(absent.into_iter().map(|p| p.under(&path)));
                out.push(LdapProvider {
                    id: format!("ldap.{id}"),
                    label: file.display_name.clone().unwrap_or_else(|| format!("Directory account ({id})")),
                    ldap,
                    policy,
                });
            }
            Err(problems) => cx.problems.extend(problems.into_iter().map(|p| p.under(&path))),
        }
    }
    out
}

#[cfg(feature = "oidc")]
pub(super) fn oidc(
    cx: &mut Ctx<'_>,
    clients: BTreeMap<String, deskgate_oidc::OidcConfig>,
    model: &Model,
) -> Vec<OidcProvider> {
    let mut out = Vec::new();
    for (key, mut file) in clients {
        let path = format!("providers.oidc.{key}");
        if !valid_id(&key) {
            cx.problem(&path, "provider ids may hold only lower-case letters, digits, `_` and `-`");
        }
        file.client_secret_file = file.client_secret_file.map(|f| cx.base.join(f));
        let policy = AccountPolicy {
            create_accounts: file.create_accounts,
            link_by_email: file.link_by_email,
            group_rules: group_rules(cx, &format!("{path}.groups"), &file.groups, model),
            group_names: crate::usergroups::GroupNames::Text,
        };
        match file.build_allowing_absent_secrets(&key) {
            Ok((oidc, absent)) => {
                cx.problems.extend(absent.into_iter().map(|p| p.under(&path)));
                out.push(OidcProvider {
                    id: oidc.provider_id().to_owned(),
                    label: oidc.display_name().to_owned(),
                    key,
                    oidc,
                    policy,
                    end_session: file.end_session,
                });
            }
            Err(problems) => cx.problems.extend(problems.into_iter().map(|p| p.under(&path))),
        }
    }
    out
}

#[cfg(feature = "saml")]
pub(super) fn saml(
    cx: &mut Ctx<'_>,
    idps: BTreeMap<String, deskgate_saml::SamlConfig>,
    model: &Model,
    public_url: &str,
) -> Vec<SamlProvider> {
    let mut out = Vec::new();
    for (key, mut file) in idps {
        let path = format!("providers.saml.{key}");
        if !valid_id(&key) {
            cx.problem(&path, "provider ids may hold only lower-case letters, digits, `_` and `-`");
        }
        file.idp_metadata_file = file.idp_metadata_file.map(|f| cx.base.join(f));
        file.sp_key_file = file.sp_key_file.map(|f| cx.base.join(f));
        file.sp_cert_file = file.sp_cert_file.map(|f| cx.base.join(f));
        let policy = AccountPolicy {
            create_accounts: file.create_accounts,
            link_by_email: file.link_by_email,
            group_rules: group_rules(cx, &format!("{path}.groups"), &file.groups, model),
            group_names: crate::usergroups::GroupNames::Text,
        };
        match file.build_allowing_absent_secrets(&key, public_url) {
            Ok((saml, absent)) => {
                cx.problems.extend(absent.into_iter().map(|p| p.under(&path)));
                out.push(SamlProvider {
                    id: saml.provider_id().to_owned(),
                    label: saml.display_name().to_owned(),
                    key,
                    saml,
                    policy,
                });
            }
            Err(problems) => cx.problems.extend(problems.into_iter().map(|p| p.under(&path))),
        }
    }
    out
}
