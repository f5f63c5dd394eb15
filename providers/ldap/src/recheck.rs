//! Reading a signed-in person's entry again during their session: the groups they are in
//! now, and whether the account still exists and is enabled.

use deskgate_provider::{AuthError, Identity};
use ldap3::Scope;

use crate::config::Kind;
use crate::error::DirectoryError;
use crate::{Found, Ldap, ad, escape, groups};

/// `userAccountControl`'s ACCOUNTDISABLE bit.
const ACCOUNT_DISABLE: u64 = 0x2;

/// What the directory says of a person now.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Standing {
    /// The entry is there and enabled: who the person is now, groups included.
    Present(Identity),
    /// The entry is there, but its account is disabled (AD's ACCOUNTDISABLE).
    Disabled,
    /// The entry is there, but its account expired (AD's `accountExpires` has passed).
    Expired,
    /// No entry has this subject any more (deleted, or it no longer matches `user_filter`).
    Gone,
}

impl Ldap {
    /// Reads the person whose identity's subject is `subject` again with the service
    /// connection. A directory that cannot answer is [`AuthError::Unavailable`]: the caller
    /// keeps what it had and asks again later.
    pub async fn recheck(&self, subject: &str) -> Result<Standing, AuthError> {
        let settings = &self.inner.settings;
        let Some((base, scope, own)) = subject_search(settings.kind, &settings.base_dn, subject) else {
            // A subject this provider never makes cannot be found again.
            return Ok(Standing::Gone);
        };
        // The login filter still applies (with any name), so someone an administrator moved
        // out of it is gone like a deleted entry.
        let filter = format!("(&{own}{})", settings.user_filter.replace("{username}", "*"));
        let (service, found) =
            self.find_entry(&base, scope, &filter).await.map_err(|e| self.unavailable(e))?;
        let entry = match found {
            Found::One(entry) => entry,
            Found::Nobody | Found::Several => return Ok(Standing::Gone),
        };
        if settings.kind == Kind::ActiveDirectory && disabled(&entry) {
            return Ok(Standing::Disabled);
        }
        let now = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap_or_default();
        if settings.kind == Kind::ActiveDirectory && expired(&entry, now.as_secs()) {
            return Ok(Standing::Expired);
        }
        let server = self.url(service.server).to_owned();
        let mut ldap = service.ldap.clone();
        let groups =
            groups::of_user(&mut ldap, settings, &server, &entry).await.map_err(|e| self.unavailable(e))?;
        let identity = self.identity(&entry, "", groups, &server).map_err(|e| self.unavailable(e))?;
        // A DN subject may come back spelled in another case; a GUID or UUID in other hex case.
        if !identity.subject.eq_ignore_ascii_case(subject) {
            return Ok(Standing::Gone);
        }
        Ok(Standing::Present(identity))
    }
}

/// Where and how to look for the entry with `subject`: AD's objectGUID (as escaped bytes),
/// an LDAP entryUUID, or the DN itself for a directory without entryUUID.
fn subject_search(kind: Kind, base_dn: &str, subject: &str) -> Option<(String, Scope, String)> {
    match kind {
        Kind::ActiveDirectory => {
            let bytes = ad::guid_bytes(subject)?;
            let value: String = bytes.iter().map(|b| format!("\\{b:02x}")).collect();
            Some((base_dn.to_owned(), Scope::Subtree, format!("(objectGUID={value})")))
        }
        Kind::Ldap if is_uuid(subject) => Some((
            base_dn.to_owned(),
            Scope::Subtree,
            format!("(entryUUID={})", escape::filter_value(subject)),
        )),
        Kind::Ldap if subject.contains('=') => {
            Some((subject.to_owned(), Scope::Base, "(objectClass=*)".to_owned()))
        }
        Kind::Ldap => None,
    }
}

fn is_uuid(text: &str) -> bool {
    text.len() == 36
        && text.bytes().enumerate().all(|(i, b)| match i {
            8 | 13 | 18 | 23 => b == b'-',
            _ => b.is_ascii_hexdigit(),
        })
}

fn disabled(entry: &ldap3::SearchEntry) -> bool {
    groups::attr_values(entry, "userAccountControl")
        .and_then(|v| v.first())
        .and_then(|v| v.trim().parse::<i64>().ok())
        // AD writes the flags as a signed 32-bit number.
        .is_some_and(|flags| (flags as u64) & ACCOUNT_DISABLE != 0)
}

/// Seconds from 1601-01-01 (where AD's FILETIME counts from) to the Unix epoch.
const FILETIME_UNIX_OFFSET: u64 = 11_644_473_600;

/// Whether AD's `accountExpires` (100-ns intervals since 1601; 0 and the largest value mean
/// never) lies before `now` (Unix seconds).
fn expired(entry: &ldap3::SearchEntry, now: u64) -> bool {
    let Some(value) = groups::attr_values(entry, "accountExpires")
        .and_then(|v| v.first())
        .and_then(|v| v.trim().parse::<i64>().ok())
    else {
        return false;
    };
    if value <= 0 || value == i64::MAX {
        return false;
    }
    // Both in seconds since 1601.
    (value as u64) / 10_000_000 <= now + FILETIME_UNIX_OFFSET
}

impl Ldap {
    /// As the user search, under `base` with `scope`; a DN that does not exist is nobody.
    async fn find_entry(
        &self,
        base: &str,
        scope: Scope,
        filter: &str,
    ) -> Result<(crate::Service, Found), DirectoryError> {
        match self.search_user(base, scope, filter).await {
            Err(DirectoryError::Operation { source, .. }) if no_such_object(&source) => {
                let service = self.service().await?;
                Ok((service, Found::Nobody))
            }
            other => other,
        }
    }
}

/// Result code `noSuchObject`: the base DN is not there.
fn no_such_object(error: &ldap3::LdapError) -> bool {
    matches!(error, ldap3::LdapError::LdapResult { result } if result.rc == 32)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_subject_is_looked_up_only_in_a_form_the_directory_cannot_misread() {
        let (_, _, f) = subject_search(Kind::ActiveDirectory, "DC=x", "3f2504e0-4f89-11d3-9a0c-0305e82c3301")
            .expect("a GUID");
        assert_eq!(f, "(objectGUID=\\e0\\04\\25\\3f\\89\\4f\\d3\\11\\9a\\0c\\03\\05\\e8\\2c\\33\\01)");
        assert!(subject_search(Kind::ActiveDirectory, "DC=x", "*)(objectClass=*").is_none());
        let (_, _, f) =
            subject_search(Kind::Ldap, "dc=x", "0d6a4c0e-8f2a-103c-9f0e-5b7a3c1d2e4f").expect("uuid");
        assert_eq!(f, "(entryUUID=0d6a4c0e-8f2a-103c-9f0e-5b7a3c1d2e4f)");
        let (base, scope, _) = subject_search(Kind::Ldap, "dc=x", "uid=a,dc=x").expect("a DN");
        assert_eq!((base.as_str(), scope), ("uid=a,dc=x", Scope::Base));
        assert!(subject_search(Kind::Ldap, "dc=x", "*").is_none());
    }

    #[test]
    fn account_disable_is_read_from_user_account_control() {
        let entry = |uac: &str| ldap3::SearchEntry {
            dn: "CN=a".into(),
            attrs: [("userAccountControl".to_owned(), vec![uac.to_owned()])].into(),
            bin_attrs: Default::default(),
        };
        assert!(disabled(&entry("514")));
        assert!(!disabled(&entry("512")));
        assert!(disabled(&entry("-2147483646")), "a signed value with the bit");
        assert!(!disabled(&entry("junk")));
    }

    #[test]
    fn account_expires_is_read_as_ad_writes_it() {
        let entry = |value: &str| ldap3::SearchEntry {
            dn: "CN=a".into(),
            attrs: [("accountExpires".to_owned(), vec![value.to_owned()])].into(),
            bin_attrs: Default::default(),
        };
        let now = 1_796_515_200;
        let at = |unix: u64| ((unix + FILETIME_UNIX_OFFSET) * 10_000_000).to_string();
        assert!(!expired(&entry("0"), now), "0: never");
        assert!(!expired(&entry("9223372036854775807"), now), "the largest value: never");
        assert!(!expired(&entry(&at(now + 86_400)), now), "tomorrow");
        assert!(expired(&entry(&at(now - 1)), now), "a second ago");
        assert!(expired(&entry(&at(now)), now), "now");
        assert!(expired(&entry("1"), now), "just after 1601");
        assert!(!expired(&entry("junk"), now));
        assert!(!expired(&entry("-5"), now));
    }
}
