//! Which groups a person is in, including through other groups.
//!
//! Active Directory resolves nesting itself with the in-chain matching rule, which does not
//! cover the primary group (Domain Users by default): `member` never lists it, the user's
//! `primaryGroupID` names it by RID, so it is looked up by SID and added. Other
//! directories (OpenLDAP has no in-chain rule) are walked level by level here: each level
//! is one search for groups that list any group of the level before as a member, with a
//! seen-set so that a cycle ends, and a depth limit so that a pathological tree does.

use std::collections::HashSet;

use ldap3::{Scope, SearchEntry};

use crate::ad;
use crate::config::Kind;
use crate::error::DirectoryError;
use crate::escape::filter_value;
use crate::{Settings, entries};

/// The in-chain (transitive) matching rule of Active Directory.
pub(crate) const IN_CHAIN: &str = "1.2.840.113556.1.4.1941";

/// How many member DNs go into one OR filter when walking the tree.
const DNS_PER_SEARCH: usize = 50;

/// Result code `sizeLimitExceeded`: the server returned only part of the groups.
const SIZE_LIMIT_EXCEEDED: u32 = 4;

/// Every group DN `user` is in, in the order found, without duplicates (DNs compared
/// case-insensitively).
pub(crate) async fn of_user(
    ldap: &mut ldap3::Ldap,
    settings: &Settings,
    server: &str,
    user: &SearchEntry,
) -> Result<Vec<String>, DirectoryError> {
    let at = At { settings, server };
    match (settings.kind, settings.nested_groups) {
        (Kind::ActiveDirectory, nested) => {
            let mut found = if nested {
                search_dns(ldap, &at, &in_chain(&user.dn)).await?
            } else {
                attr_values(user, "memberOf").cloned().unwrap_or_default()
            };
            found.extend(primary_group(ldap, &at, user).await?);
            Ok(dedup(found))
        }
        (Kind::Ldap, nested) => {
            let depth = if nested { settings.max_group_depth } else { 1 };
            expand(ldap, &at, &user.dn, depth).await
        }
    }
}

/// Groups that hold `dn` as a member, directly or through other groups (AD only).
fn in_chain(dn: &str) -> String {
    format!("(&(objectClass=group)(member:{IN_CHAIN}:={}))", filter_value(dn))
}

/// The user's primary group, found by SID under the group base (so nothing when it lies
/// outside it), and with nesting on the groups it is in.
async fn primary_group(
    ldap: &mut ldap3::Ldap,
    at: &At<'_>,
    user: &SearchEntry,
) -> Result<Vec<String>, DirectoryError> {
    let rid = attr_values(user, "primaryGroupID").and_then(|v| v.first()).and_then(|v| v.parse::<u32>().ok());
    let sid = crate::binary_value(user, "objectSid");
    let Some(sid) = rid.zip(sid).and_then(|(rid, sid)| ad::primary_group_sid(&sid, rid)) else {
        return Ok(Vec::new());
    };
    let filter = format!("(&(objectClass=group)(objectSid={}))", ad::filter_bytes(&sid));
    let mut found = search_dns(ldap, at, &filter).await?;
    if at.settings.nested_groups {
        for dn in found.clone() {
            found.extend(search_dns(ldap, at, &in_chain(&dn)).await?);
        }
    }
    Ok(found)
}

/// Walks up from `member_dn`: level 1 is the groups that list it, level 2 the groups that
/// list those, and so on, up to `depth` levels.
async fn expand(
    ldap: &mut ldap3::Ldap,
    at: &At<'_>,
    member_dn: &str,
    depth: u32,
) -> Result<Vec<String>, DirectoryError> {
    let mut seen: HashSet<String> = HashSet::from([member_dn.to_lowercase()]);
    let mut groups = Vec::new();
    let mut frontier = vec![member_dn.to_owned()];
    for _level in 0..depth {
        let mut next = Vec::new();
        for chunk in frontier.chunks(DNS_PER_SEARCH) {
            for dn in search_dns(ldap, at, &member_filter(chunk)).await? {
                if seen.insert(dn.to_lowercase()) {
                    groups.push(dn.clone());
                    next.push(dn);
                }
            }
        }
        if next.is_empty() {
            return Ok(groups);
        }
        frontier = next;
    }
    // Whether the limit cut anything off costs one more search to know; it is worth it
    // because an admin needs to hear that memberships were dropped.
    let mut deeper = 0;
    for chunk in frontier.chunks(DNS_PER_SEARCH) {
        deeper += search_dns(ldap, at, &member_filter(chunk))
            .await?
            .iter()
            .filter(|dn| !seen.contains(&dn.to_lowercase()))
            .count();
    }
    if deeper > 0 {
        tracing::warn!(
            provider = %at.settings.provider,
            user = %member_dn,
            max_group_depth = depth,
            "Group nesting goes deeper than max_group_depth; deeper groups are ignored"
        );
    }
    Ok(groups)
}

/// Groups that list any of `dns` as `member` or `uniqueMember`.
pub(crate) fn member_filter(dns: &[String]) -> String {
    let mut filter = String::from("(|");
    for dn in dns {
        let value = filter_value(dn);
        filter.push_str(&format!("(member={value})(uniqueMember={value})"));
    }
    filter.push(')');
    filter
}

/// The provider's settings and the server being asked, for searches and their errors.
struct At<'a> {
    settings: &'a Settings,
    server: &'a str,
}

/// The DNs of the entries under the group base that match `filter`.
async fn search_dns(
    ldap: &mut ldap3::Ldap,
    at: &At<'_>,
    filter: &str,
) -> Result<Vec<String>, DirectoryError> {
    let failed = |source: ldap3::LdapError| DirectoryError::Operation {
        operation: "group search",
        server: at.server.to_owned(),
        source: Box::new(source),
    };
    let ldap3::SearchResult(raw, result) = ldap
        .with_timeout(at.settings.timeout)
        .search(&at.settings.group_base_dn, Scope::Subtree, filter, vec!["1.1"])
        .await
        .map_err(failed)?;
    match result.rc {
        0 => {}
        SIZE_LIMIT_EXCEEDED => tracing::warn!(
            provider = %at.settings.provider,
            server = %at.server,
            "The directory returned only part of a user's groups (size limit)"
        ),
        _ => return Err(failed(ldap3::LdapError::LdapResult { result })),
    }
    let found = entries(raw, at.server)?;
    Ok(found.into_iter().map(|e| e.dn).collect())
}

/// The values of an attribute, whatever case the server spelled its name in.
pub(crate) fn attr_values<'a>(entry: &'a SearchEntry, name: &str) -> Option<&'a Vec<String>> {
    entry.attrs.iter().find(|(k, _)| k.eq_ignore_ascii_case(name)).map(|(_, v)| v)
}

fn dedup(dns: Vec<String>) -> Vec<String> {
    let mut seen = HashSet::new();
    dns.into_iter().filter(|dn| seen.insert(dn.to_lowercase())).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn member_filter_escapes_each_dn() {
        let dns = vec!["cn=a,dc=x".to_owned(), "cn=Smith\\, J (x)*,dc=x".to_owned()];
        assert_eq!(
            member_filter(&dns),
            "(|(member=cn=a,dc=x)(uniqueMember=cn=a,dc=x)\
             (member=cn=Smith\\5c, J \\28x\\29\\2a,dc=x)(uniqueMember=cn=Smith\\5c, J \\28x\\29\\2a,dc=x))"
        );
    }

    #[test]
    fn duplicates_differing_in_case_are_dropped() {
        let dns = vec!["CN=A,DC=x".to_owned(), "cn=a,dc=X".to_owned(), "cn=b,dc=x".to_owned()];
        assert_eq!(dedup(dns), vec!["CN=A,DC=x".to_owned(), "cn=b,dc=x".to_owned()]);
    }
}
