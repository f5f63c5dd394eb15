//! The identity headers deskgate injects: stripping every client spelling of them, and
//! setting them for a guest or a signed-in person.

use http::{HeaderMap, HeaderName, HeaderValue};

use crate::session::Session;
use crate::usergroups::Resolved;

/// The names of the injected headers, derived from the configured prefix.
#[derive(Debug, Clone)]
pub struct HeaderNames {
    /// Lower-case prefix with `_` spelled `-`, for matching client headers.
    normalized_prefix: String,
    /// `{prefix}User`
    pub user: HeaderName,
    /// `{prefix}Email`
    pub email: HeaderName,
    /// `{prefix}Email-Verified`: `true` or `false`, on every signed-in request.
    pub email_verified: HeaderName,
    /// `{prefix}Name`
    pub name: HeaderName,
    /// `{prefix}Usergroups`
    pub usergroups: HeaderName,
    /// `{prefix}Permissions`
    pub permissions: HeaderName,
    /// `{prefix}Provider`
    pub provider: HeaderName,
    /// `{prefix}Auth`: `session` or `token` for a signed-in request, empty for a guest.
    pub auth: HeaderName,
    /// `{prefix}Jwt`
    pub jwt: HeaderName,
    /// `{prefix}Amr`: how the person authenticated in this session (`pwd,otp,mfa`), on every
    /// request, empty for guests.
    pub amr: HeaderName,
}

/// Why a header prefix is unusable.
#[derive(Debug, thiserror::Error)]
#[error("`{0}` cannot start a header name")]
pub struct BadPrefix(String);

impl HeaderNames {
    /// Names under `prefix`, e.g. `X-Deskgate-`.
    pub fn new(prefix: &str) -> Result<HeaderNames, BadPrefix> {
        let name = |suffix: &str| {
            HeaderName::from_bytes(format!("{prefix}{suffix}").as_bytes())
                .map_err(|_| BadPrefix(prefix.to_owned()))
        };
        Ok(HeaderNames {
            normalized_prefix: normalize_name(prefix),
            user: name("User")?,
            email: name("Email")?,
            email_verified: name("Email-Verified")?,
            name: name("Name")?,
            usergroups: name("Usergroups")?,
            permissions: name("Permissions")?,
            provider: name("Provider")?,
            auth: name("Auth")?,
            jwt: name("Jwt")?,
            amr: name("Amr")?,
        })
    }

    /// Whether a client header is one of ours in any spelling.
    pub fn is_ours(&self, name: &HeaderName) -> bool {
        // HeaderName is already lower-case; only `_` versus `-` remains to settle.
        let n = name.as_str().as_bytes();
        let p = self.normalized_prefix.as_bytes();
        n.len() >= p.len() && n.iter().zip(p).all(|(a, b)| *a == *b || (*a == b'_' && *b == b'-'))
    }

    /// Removes every header that is ours in any spelling; returns how many were removed.
    pub fn strip(&self, headers: &mut HeaderMap) -> usize {
        let doomed: Vec<HeaderName> = headers.keys().filter(|n| self.is_ours(n)).cloned().collect();
        let mut removed = 0;
        for name in doomed {
            removed += headers.get_all(&name).iter().count();
            headers.remove(&name);
        }
        removed
    }
}

/// Lower-cases and spells `_` as `-`, as some servers and CGI gateways treat them alike.
pub fn normalize_name(name: &str) -> String {
    name.bytes().map(|b| if b == b'_' { '-' } else { char::from(b.to_ascii_lowercase()) }).collect()
}

/// A header value; text that is not visible ASCII is percent-encoded as UTF-8.
pub fn header_value(text: &str) -> HeaderValue {
    let plain = text.bytes().all(|b| (0x20..0x7f).contains(&b) && b != b'%');
    let encoded;
    let text = if plain {
        text
    } else {
        encoded = text
            .bytes()
            .map(|b| {
                if (0x20..0x7f).contains(&b) && b != b'%' {
                    char::from(b).to_string()
                } else {
                    format!("%{b:02X}")
                }
            })
            .collect::<String>();
        &encoded
    };
    HeaderValue::from_str(text).unwrap_or_else(|_| HeaderValue::from_static(""))
}

/// The injected headers of one person, apart from the JWT.
#[derive(Debug, Default)]
pub struct HeaderSet(pub Vec<(HeaderName, HeaderValue)>);

impl HeaderSet {
    /// A guest's headers: usergroups and permissions only.
    pub fn guest(names: &HeaderNames, resolved: &Resolved) -> HeaderSet {
        HeaderSet(vec![
            (names.usergroups.clone(), header_value(&resolved.usergroups.join(","))),
            (names.permissions.clone(), header_value(&resolved.permissions.join(","))),
            (names.auth.clone(), HeaderValue::from_static("")),
            (names.amr.clone(), HeaderValue::from_static("")),
        ])
    }

    /// Sets a signed-in person's headers, overwriting whatever is there. Built at each
    /// request from the session rather than kept with it: a few short values cost less to
    /// build than a million sessions would take to keep them.
    /// `auth` is how the request came (`X-Deskgate-Auth`): `session`, `token` or `bearer`.
    pub fn apply_signed_in(names: &HeaderNames, s: &Session, auth: &'static str, headers: &mut HeaderMap) {
        headers.insert(names.user.clone(), header_value(&s.account_id));
        headers.insert(names.name.clone(), header_value(&s.name));
        headers.insert(names.provider.clone(), header_value(&s.provider));
        headers.insert(names.auth.clone(), HeaderValue::from_static(auth));
        headers.insert(names.usergroups.clone(), header_value(&s.resolved.usergroups.join(",")));
        headers.insert(names.permissions.clone(), header_value(&s.resolved.permissions.join(",")));
        headers.insert(names.amr.clone(), header_value(&s.amr.join(",")));
        match &s.email {
            Some(email) => headers.insert(names.email.clone(), header_value(email)),
            None => headers.remove(&names.email),
        };
        // Always set, so that a backend never mistakes a missing header for a verified address.
        let verified = if s.email.is_some() && s.email_verified { "true" } else { "false" };
        headers.insert(names.email_verified.clone(), HeaderValue::from_static(verified));
    }

    /// Sets every header, overwriting whatever is there.
    pub fn apply(&self, headers: &mut HeaderMap) {
        for (name, value) in &self.0 {
            headers.insert(name.clone(), value.clone());
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_spelling_of_an_identity_header_is_ours() {
        let names = HeaderNames::new("X-Deskgate-").expect("valid");
        for spelling in [
            "x-deskgate-user",
            "X_Deskgate_User",
            "x_deskgate-jwt",
            "X-DESKGATE-ANYTHING",
            "x-deskgate-email-verified",
            "X_DESKGATE_EMAIL_VERIFIED",
            "x-deskgate_email-verified",
        ] {
            let name = HeaderName::from_bytes(spelling.as_bytes()).expect("valid name");
            assert!(names.is_ours(&name), "{spelling}");
        }
        for other in ["x-deskgate", "x-forwarded-for", "x-deskgatex-user"] {
            let name = HeaderName::from_bytes(other.as_bytes()).expect("valid name");
            assert!(!names.is_ours(&name), "{other}");
        }
    }

    #[test]
    fn strip_removes_every_value_of_every_spelling() {
        let names = HeaderNames::new("X-Deskgate-").expect("valid");
        let mut h = HeaderMap::new();
        h.append("x-deskgate-user", HeaderValue::from_static("a"));
        h.append("x-deskgate-user", HeaderValue::from_static("b"));
        h.append("x_deskgate_usergroups", HeaderValue::from_static("admins"));
        h.append("accept", HeaderValue::from_static("*/*"));
        assert_eq!(names.strip(&mut h), 3);
        assert_eq!(h.len(), 1);
    }

    #[test]
    fn non_ascii_values_are_percent_encoded() {
        assert_eq!(header_value("José Müller"), "Jos%C3%A9 M%C3%BCller");
        assert_eq!(header_value("100%"), "100%25");
        assert_eq!(header_value("a\r\nb"), "a%0D%0Ab");
        assert_eq!(header_value("Ann Lee"), "Ann Lee");
    }
}

#[cfg(test)]
mod properties;
