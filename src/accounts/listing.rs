//! Listing and counting accounts for administrators: the query types, and the one `WHERE`
//! clause both backends build from them, so that SQLite and PostgreSQL select the same rows.

use sqlx::{Database, Encode, QueryBuilder, Type};

use super::{Account, AccountStatus};

/// Which accounts a listing shows.
#[derive(Debug, Clone, Default)]
pub struct AccountQuery {
    /// Text found, without regard to ASCII case, in the email or the name, or equal to the id.
    pub text: Option<String>,
    /// Only the members of this usergroup.
    pub usergroup: Option<Membership>,
    /// Only the accounts in this sign-up status (pending sign-ups for the admin area).
    pub status: Option<AccountStatus>,
}

/// Who is a member of one usergroup, as far as the account store can tell: accounts that
/// have it assigned, accounts whose email the config assigns it to, accounts whose email
/// domain belongs to an organization linked to it, and accounts that a provider, at their
/// last sign-in through it, put in a group mapped to it or named such an organization.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Membership {
    /// The usergroup id.
    pub usergroup: String,
    /// Lower-case emails the config assigns the usergroup to.
    pub emails: Vec<String>,
    /// Lower-case email domains of organizations linked to the usergroup.
    pub domains: Vec<String>,
    /// Provider groups mapped to the usergroup: provider id and lower-case group name.
    pub provider_groups: Vec<(String, String)>,
    /// Lower-case ids and names of organizations linked to the usergroup, as a provider may
    /// name them.
    pub organization_names: Vec<String>,
}

/// One account in a listing.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Listed {
    /// The account.
    pub account: Account,
    /// How it signs in: `builtin` when it has a password, then each linked provider.
    pub providers: Vec<String>,
    /// What its providers said of it at its last sign-in through each.
    pub claims: Vec<super::ProviderClaims>,
}

/// A page of a listing.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct AccountPage {
    /// How many accounts match the query in all.
    pub total: u64,
    /// The accounts of this page: by email (accounts without one last), then id.
    pub accounts: Vec<Listed>,
}

/// The `LIKE` pattern for `text` anywhere, with `%`, `_` and `\` taken literally.
fn contains_pattern(text: &str) -> String {
    format!("%{}%", escape_like(&text.to_lowercase()))
}

fn escape_like(text: &str) -> String {
    let mut out = String::with_capacity(text.len() + 2);
    for c in text.chars() {
        if matches!(c, '%' | '_' | '\\') {
            out.push('\\');
        }
        out.push(c);
    }
    out
}

/// Appends ` WHERE …` selecting the accounts (`accounts a`) that `query` asks for.
///
/// Case folding is the database's `lower()`: ASCII in SQLite, Unicode in PostgreSQL.
pub(super) fn push_where<'a, DB>(qb: &mut QueryBuilder<'a, DB>, query: &AccountQuery)
where
    DB: Database,
    String: Encode<'a, DB> + Type<DB>,
{
    qb.push(" WHERE 1 = 1");
    if let Some(text) = query.text.as_deref().map(str::trim).filter(|t| !t.is_empty()) {
        let pattern = contains_pattern(text);
        qb.push(" AND (lower(a.name) LIKE ")
            .push_bind(pattern.clone())
            .push(" ESCAPE '\\' OR a.email_lower LIKE ")
            .push_bind(pattern)
            .push(" ESCAPE '\\' OR a.id = ")
            .push_bind(text.to_owned())
            .push(")");
    }
    if let Some(status) = query.status {
        qb.push(" AND a.status = ").push_bind(status.as_str().to_owned());
    }
    if let Some(m) = &query.usergroup {
        qb.push(
            " AND (EXISTS (SELECT 1 FROM account_usergroups g WHERE g.account_id = a.id AND g.usergroup = ",
        )
        .push_bind(m.usergroup.clone())
        .push(")");
        // Email-derived membership counts only verified addresses, as the model has it.
        if !m.emails.is_empty() || !m.domains.is_empty() {
            qb.push(" OR (a.email_verified AND (1 = 0");
            if !m.emails.is_empty() {
                qb.push(" OR a.email_lower IN (");
                let mut list = qb.separated(", ");
                for e in &m.emails {
                    list.push_bind(e.to_lowercase());
                }
                qb.push(")");
            }
            // Ends with `@domain`: the part after the last `@` is the domain, as the model has it.
            for d in &m.domains {
                qb.push(" OR a.email_lower LIKE ")
                    .push_bind(format!("%@{}", escape_like(&d.to_lowercase())))
                    .push(" ESCAPE '\\'");
            }
            qb.push("))");
        }
        // Claims compare as the model does: without regard to ASCII case.
        for (provider, group) in &m.provider_groups {
            qb.push(
                " OR EXISTS (SELECT 1 FROM account_provider_claims c WHERE c.account_id = a.id \
                 AND c.kind = 'group' AND c.provider = ",
            )
            .push_bind(provider.clone())
            .push(" AND lower(c.value) = ")
            .push_bind(group.to_ascii_lowercase())
            .push(")");
        }
        if !m.organization_names.is_empty() {
            qb.push(
                " OR EXISTS (SELECT 1 FROM account_provider_claims c WHERE c.account_id = a.id \
                 AND c.kind = 'organization' AND lower(c.value) IN (",
            );
            let mut list = qb.separated(", ");
            for n in &m.organization_names {
                list.push_bind(n.to_ascii_lowercase());
            }
            qb.push("))");
        }
        qb.push(")");
    }
}

/// `builtin` first when the account has a password, then the linked providers in order.
pub(super) fn providers(has_password: bool, mut linked: Vec<String>) -> Vec<String> {
    linked.sort();
    linked.dedup();
    let mut out = Vec::with_capacity(linked.len() + 1);
    if has_password {
        out.push(deskgate_builtin::PROVIDER_ID.to_owned());
    }
    out.extend(linked.into_iter().filter(|p| p != deskgate_builtin::PROVIDER_ID));
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn like_patterns_take_wildcards_literally() {
        assert_eq!(contains_pattern("A_b%c\\"), "%a\\_b\\%c\\\\%");
    }
}
