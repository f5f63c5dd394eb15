//! Active Directory specifics: reading why a bind was refused, the text form of
//! `objectGUID`, the SID of a person's primary group, and the domain's own names.

use std::fmt::Write;

use deskgate_provider::AuthError;
use ldap3::Scope;

use crate::error::DirectoryError;
use crate::escape::filter_value;

/// LDAP result code `invalidCredentials`.
pub(crate) const INVALID_CREDENTIALS: u32 = 49;

/// The condition behind a refused bind, from the result code and diagnostic text.
///
/// Active Directory (and Samba) answer every refused simple bind with result 49 and put
/// the reason in the diagnostic message as `data XXX`, the hex Win32 error code. Other
/// servers' result 49 has no such code and means wrong credentials.
pub(crate) fn bind_refusal(rc: u32, diagnostic: &str) -> Option<AuthError> {
    if rc != INVALID_CREDENTIALS {
        return None;
    }
    let error = match data_code(diagnostic).as_deref() {
        Some("533") => AuthError::AccountDisabled,
        Some("532") => AuthError::PasswordExpired,
        Some("701") => AuthError::AccountExpired,
        Some("773") => AuthError::PasswordMustChange,
        Some("775") => AuthError::AccountLocked,
        // 52e is the wrong password, 525 an unknown user (deliberately not told apart),
        // 530/531 logon-time and workstation restrictions.
        _ => AuthError::InvalidCredentials,
    };
    Some(error)
}

/// The hex code after `data ` in an AD diagnostic message, lowercased.
pub(crate) fn data_code(diagnostic: &str) -> Option<String> {
    let (_, rest) = diagnostic.split_once("data ")?;
    let code: String = rest.chars().take_while(char::is_ascii_hexdigit).collect();
    (!code.is_empty()).then(|| code.to_ascii_lowercase())
}

/// Formats a 16-byte `objectGUID` the way AD tools print it: the first three fields are
/// stored little-endian, the last two as bytes in order.
pub(crate) fn guid_text(bytes: &[u8]) -> Option<String> {
    let b: &[u8; 16] = bytes.try_into().ok()?;
    let mut out = String::with_capacity(36);
    for i in [3, 2, 1, 0] {
        push_byte(&mut out, b[i]);
    }
    out.push('-');
    for i in [5, 4] {
        push_byte(&mut out, b[i]);
    }
    out.push('-');
    for i in [7, 6] {
        push_byte(&mut out, b[i]);
    }
    out.push('-');
    for byte in &b[8..10] {
        push_byte(&mut out, *byte);
    }
    out.push('-');
    for byte in &b[10..16] {
        push_byte(&mut out, *byte);
    }
    Some(out)
}

/// The stored bytes of a GUID in the text form [`guid_text`] makes; `None` for any other
/// text.
pub(crate) fn guid_bytes(text: &str) -> Option<[u8; 16]> {
    let groups: Vec<&str> = text.split('-').collect();
    let lengths: Vec<usize> = groups.iter().map(|g| g.len()).collect();
    if lengths != [8, 4, 4, 4, 12] || !groups.iter().all(|g| g.bytes().all(|b| b.is_ascii_hexdigit())) {
        return None;
    }
    let hex = groups.concat();
    let mut plain = [0u8; 16];
    for (i, byte) in plain.iter_mut().enumerate() {
        *byte = u8::from_str_radix(hex.get(2 * i..2 * i + 2)?, 16).ok()?;
    }
    let mut out = [0u8; 16];
    let order = [3, 2, 1, 0, 5, 4, 7, 6, 8, 9, 10, 11, 12, 13, 14, 15];
    for (stored, from) in out.iter_mut().zip(order) {
        *stored = plain[from];
    }
    Some(out)
}

fn push_byte(out: &mut String, byte: u8) {
    // Writing to a String cannot fail.
    let _ = write!(out, "{byte:02x}");
}

/// The SID of the primary group of the account whose SID is `user_sid`: the domain's SID
/// (the account's without its last sub-authority, the account's RID) followed by
/// `primaryGroupID`. `None` when `user_sid` is not a binary SID.
pub(crate) fn primary_group_sid(user_sid: &[u8], primary_group_id: u32) -> Option<Vec<u8>> {
    // Revision 1, a sub-authority count, a 6-byte authority, then 4-byte little-endian
    // sub-authorities; an account SID ends in its RID.
    let (&revision, rest) = user_sid.split_first()?;
    let (&count, _) = rest.split_first()?;
    if revision != 1 || count == 0 || user_sid.len() != 8 + 4 * usize::from(count) {
        return None;
    }
    let mut sid = user_sid.to_vec();
    let rid = sid.len() - 4;
    sid[rid..].copy_from_slice(&primary_group_id.to_le_bytes());
    Some(sid)
}

/// A binary value for a filter: every byte as `\xx` (RFC 4515).
pub(crate) fn filter_bytes(bytes: &[u8]) -> String {
    let mut out = String::with_capacity(bytes.len() * 3);
    for b in bytes {
        out.push('\\');
        push_byte(&mut out, *b);
    }
    out
}

/// The domain's own names, in lower case: its NetBIOS name and its DNS name, from the
/// `crossRef` object that names the domain in the configuration partition.
pub(crate) async fn own_domains(
    ldap: &mut ldap3::Ldap,
    timeout: std::time::Duration,
    server: &str,
) -> Result<Vec<String>, DirectoryError> {
    let failed = |source: ldap3::LdapError| DirectoryError::Operation {
        operation: "domain name lookup",
        server: server.to_owned(),
        source: Box::new(source),
    };
    let root = ldap
        .with_timeout(timeout)
        .search(
            "",
            Scope::Base,
            "(objectClass=*)",
            vec!["defaultNamingContext", "configurationNamingContext"],
        )
        .await
        .and_then(|r| r.success())
        .map_err(failed)?;
    let root = crate::entries(root.0, server)?;
    let context =
        |name: &str| root.first().and_then(|e| crate::groups::attr_values(e, name)?.first().cloned());
    let (Some(domain), Some(configuration)) =
        (context("defaultNamingContext"), context("configurationNamingContext"))
    else {
        return Err(malformed(server, "the root DSE names no default or configuration naming context"));
    };
    let filter = format!("(&(objectClass=crossRef)(nCName={})(nETBIOSName=*))", filter_value(&domain));
    let found = ldap
        .with_timeout(timeout)
        .search(
            &format!("CN=Partitions,{configuration}"),
            Scope::OneLevel,
            &filter,
            vec!["nETBIOSName", "dnsRoot"],
        )
        .await
        .and_then(|r| r.success())
        .map_err(failed)?;
    let found = crate::entries(found.0, server)?;
    let names: Vec<String> = found
        .iter()
        .flat_map(|e| {
            ["nETBIOSName", "dnsRoot"].map(|a| crate::groups::attr_values(e, a).and_then(|v| v.first()))
        })
        .flatten()
        .map(|name| name.to_lowercase())
        .collect();
    if names.is_empty() {
        return Err(malformed(server, "no crossRef names the domain's NetBIOS name; set `domains`"));
    }
    Ok(names)
}

fn malformed(server: &str, detail: &str) -> DirectoryError {
    DirectoryError::MalformedEntry { server: server.to_owned(), detail: detail.to_owned() }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn samba(code: &str) -> String {
        format!("80090308: LdapErr: DSID-0C0903A9, comment: AcceptSecurityContext error, data {code}, v1db1")
    }

    #[test]
    fn every_documented_ad_reason_is_told_apart() {
        let cases = [
            ("52e", "invalid-credentials"),
            ("533", "account-disabled"),
            ("532", "password-expired"),
            ("701", "account-expired"),
            ("773", "password-must-change"),
            ("775", "account-locked"),
            ("525", "invalid-credentials"),
            ("52E", "invalid-credentials"),
        ];
        for (code, expected) in cases {
            let error = bind_refusal(49, &samba(code)).map(|e| e.code());
            assert_eq!(error, Some(expected), "data {code}");
        }
    }

    #[test]
    fn other_servers_and_results_are_handled() {
        assert_eq!(bind_refusal(49, "").map(|e| e.code()), Some("invalid-credentials"));
        assert_eq!(bind_refusal(49, "data").map(|e| e.code()), Some("invalid-credentials"));
        assert!(bind_refusal(0, "").is_none());
        assert!(bind_refusal(53, &samba("533")).is_none());
    }

    #[test]
    fn data_code_is_read_up_to_the_first_non_hex_character() {
        assert_eq!(data_code(&samba("775")).as_deref(), Some("775"));
        assert_eq!(data_code("x data 52e").as_deref(), Some("52e"));
        assert_eq!(data_code("data ,"), None);
        assert_eq!(data_code("nothing here"), None);
    }

    #[test]
    fn the_primary_group_sid_is_the_domain_sid_and_the_primary_group_id() {
        // S-1-5-21-1-2-3-1104 (an account) with primaryGroupID 513 (Domain Users).
        let mut user = vec![1, 5, 0, 0, 0, 0, 0, 5];
        for sub in [21u32, 1, 2, 3, 1104] {
            user.extend(sub.to_le_bytes());
        }
        let mut users = user.clone();
        users.truncate(user.len() - 4);
        users.extend(513u32.to_le_bytes());
        assert_eq!(primary_group_sid(&user, 513), Some(users));
        assert_eq!(primary_group_sid(&user[..user.len() - 1], 513), None, "cut short");
        assert_eq!(primary_group_sid(&[1, 0, 0, 0, 0, 0, 0, 5], 513), None, "no RID to replace");
        assert_eq!(primary_group_sid(&[], 513), None);
        assert_eq!(filter_bytes(&[0x01, 0x2a, 0xff]), "\\01\\2a\\ff");
    }

    #[test]
    fn guid_uses_microsoft_byte_order() {
        // The GUID 3f2504e0-4f89-11d3-9a0c-0305e82c3301 as AD stores it.
        let stored =
            [0xe0, 0x04, 0x25, 0x3f, 0x89, 0x4f, 0xd3, 0x11, 0x9a, 0x0c, 0x03, 0x05, 0xe8, 0x2c, 0x33, 0x01];
        assert_eq!(guid_text(&stored).as_deref(), Some("3f2504e0-4f89-11d3-9a0c-0305e82c3301"));
        assert_eq!(guid_text(&stored[..15]), None);
        assert_eq!(guid_bytes("3f2504e0-4f89-11d3-9a0c-0305e82c3301"), Some(stored));
        assert_eq!(guid_bytes("3f2504e0-4f89-11d3-9a0c-0305e82c330"), None);
        assert_eq!(guid_bytes("3f2504e0-4f89-11d3-9a0c-0305e82c33zz"), None);
    }
}
