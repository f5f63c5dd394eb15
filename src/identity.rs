//! The identity headers deskgate injects: stripping every client spelling of them, and
//! setting them for a guest or a signed-in person.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, Weak};

use http::{HeaderMap, HeaderName, HeaderValue};

use crate::jwt::Signer;
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
    /// Every header deskgate sets for a request: the ones a client may never send, nor
    /// remove with its `Connection` header.
    pub fn all(&self) -> [&HeaderName; 10] {
        [
            &self.user,
            &self.email,
            &self.email_verified,
            &self.name,
            &self.usergroups,
            &self.permissions,
            &self.provider,
            &self.auth,
            &self.jwt,
            &self.amr,
        ]
    }

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

/// How many sessions' answers [`Told`] keeps at most.
const TOLD_MAX: usize = 4096;

/// The identity headers and token last told for a few thousand sessions, so that a session
/// asking again and again (a page and each of its assets, behind a proxy or forward auth)
/// does not have them built again for each request: the joins, the encoding checks, the
/// token's JSON and base64. An entry is for one session object, held weakly: while the entry
/// lives no other session can be at its address, and a session that changes (a re-check,
/// a touch, a re-resolution) is a new object, so it misses. It is also for one signature of
/// the session's token: a token signed anew misses too. Tokens for a host's own audience,
/// signed for each request, and the answers for a provider's bearer token (a session made
/// for one request) are never kept. At most [`TOLD_MAX`] entries (about 1.5 KB each):
/// when full, it starts again empty.
#[derive(Debug, Default)]
pub struct Told(Mutex<HashMap<usize, ToldEntry>>);

#[derive(Debug)]
struct ToldEntry {
    session: Weak<Session>,
    auth: &'static str,
    signed: u64,
    headers: HeaderMap,
}

impl Told {
    /// Sets on `out` every identity header of `session` (the address removed when it has
    /// none) and its token for `audience`, as [`HeaderSet::apply_signed_in`] and
    /// [`Signer::for_session_to`] at `now` make them; `auth` as there.
    #[allow(clippy::too_many_arguments)]
    pub fn apply(
        &self,
        names: &HeaderNames,
        signer: &Signer,
        session: &Arc<Session>,
        auth: &'static str,
        audience: &str,
        now: u64,
        out: &mut HeaderMap,
    ) {
        // A provider's bearer token stands for a session made for its one request: never
        // asked for again, so not kept.
        if !signer.is_default_audience(audience) || auth == "bearer" {
            HeaderSet::apply_signed_in(names, session, auth, out);
            out.insert(names.jwt.clone(), signer.for_session_to(session, now, audience));
            return;
        }
        let at = Arc::as_ptr(session) as usize;
        if let Some(signed) = signer.reused_since(session, now) {
            let kept = self.0.lock().unwrap_or_else(|p| p.into_inner());
            if let Some(e) = kept.get(&at)
                && std::ptr::eq(e.session.as_ptr(), Arc::as_ptr(session))
                && e.signed == signed
                && e.auth == auth
            {
                copy(&e.headers, session, names, out);
                return;
            }
        }
        let mut built = HeaderMap::with_capacity(12);
        HeaderSet::apply_signed_in(names, session, auth, &mut built);
        built.insert(names.jwt.clone(), signer.for_session(session, now));
        copy(&built, session, names, out);
        if let Some(signed) = signer.reused_since(session, now) {
            let mut kept = self.0.lock().unwrap_or_else(|p| p.into_inner());
            if kept.len() >= TOLD_MAX {
                kept.clear();
            }
            kept.insert(at, ToldEntry { session: Arc::downgrade(session), auth, signed, headers: built });
        }
    }
}

fn copy(built: &HeaderMap, session: &Session, names: &HeaderNames, out: &mut HeaderMap) {
    out.reserve(built.len());
    for (name, value) in built {
        out.insert(name.clone(), value.clone());
    }
    if session.email.is_none() {
        out.remove(&names.email);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn person(name: &str, email: Option<&str>) -> Arc<Session> {
        Arc::new(Session {
            account_id: "acc-1".into(),
            name: name.into(),
            email: email.map(str::to_owned),
            email_verified: true,
            provider: "builtin".into(),
            amr: vec!["pwd".into()],
            ..Default::default()
        })
    }

    /// What is told when nothing is kept: built from the session.
    fn built(names: &HeaderNames, signer: &Signer, s: &Session, auth: &'static str, now: u64) -> HeaderMap {
        let mut out = HeaderMap::new();
        HeaderSet::apply_signed_in(names, s, auth, &mut out);
        out.insert(names.jwt.clone(), signer.for_session(s, now));
        out
    }

    fn told(
        told: &Told,
        names: &HeaderNames,
        signer: &Signer,
        s: &Arc<Session>,
        auth: &'static str,
        aud: &str,
        now: u64,
    ) -> HeaderMap {
        let mut out = HeaderMap::new();
        told.apply(names, signer, s, auth, aud, now, &mut out);
        out
    }

    #[test]
    fn kept_answers_are_what_building_gives_and_a_changed_session_or_token_never_gets_a_stale_one() {
        let names = HeaderNames::new("X-Deskgate-").expect("valid");
        let signer = Signer::new(None, "https://gate.example", "deskgate", 300).expect("signer");
        let t = Told::default();
        let ann = person("Ann", Some("ann@example.org"));
        let first = told(&t, &names, &signer, &ann, "session", "deskgate", 1000);
        assert_eq!(first, built(&names, &signer, &ann, "session", 1000));
        assert_eq!(t.0.lock().expect("lock").len(), 1, "kept");
        // Asked again: the kept answer, the same as building it.
        let again = told(&t, &names, &signer, &ann, "session", "deskgate", 1100);
        assert_eq!(again, first);
        assert_eq!(again, built(&names, &signer, &ann, "session", 1100));
        // The same person as another session object (a re-check renamed her): never the old answer.
        let renamed = person("Anna", Some("ann@example.org"));
        let answer = told(&t, &names, &signer, &renamed, "session", "deskgate", 1100);
        assert_eq!(answer.get(&names.name).expect("name"), "Anna");
        assert_eq!(answer, built(&names, &signer, &renamed, "session", 1100));
        // Another way in for the same session: its own X-Deskgate-Auth.
        let token = told(&t, &names, &signer, &ann, "token", "deskgate", 1100);
        assert_eq!(token.get(&names.auth).expect("auth"), "token");
        // Near the token's expiry it is signed anew, and the kept answer is not used.
        let late = told(&t, &names, &signer, &ann, "session", "deskgate", 1250);
        assert_ne!(late.get(&names.jwt), first.get(&names.jwt), "a new token");
        assert_eq!(late, built(&names, &signer, &ann, "session", 1250));
        // A host's own audience: signed for the request, never kept.
        let kept = t.0.lock().expect("lock").len();
        let other = told(&t, &names, &signer, &ann, "session", "other-app", 1250);
        assert_ne!(other.get(&names.jwt), late.get(&names.jwt));
        assert_eq!(t.0.lock().expect("lock").len(), kept);
        // A provider's bearer token: built for its one request, never kept.
        let bearer = told(&t, &names, &signer, &person("Bo", None), "bearer", "deskgate", 1250);
        assert_eq!(bearer.get(&names.auth).expect("auth"), "bearer");
        assert_eq!(t.0.lock().expect("lock").len(), kept);
        // No address: none told, even when an earlier value sat in the map.
        let nobody = person("Ned", None);
        let mut out = HeaderMap::new();
        out.insert(names.email.clone(), HeaderValue::from_static("client@evil.example"));
        t.apply(&names, &signer, &nobody, "session", "deskgate", 1000, &mut out);
        t.apply(&names, &signer, &nobody, "session", "deskgate", 1000, &mut out);
        assert!(out.get(&names.email).is_none());
        assert_eq!(out.get(&names.email_verified).expect("verified"), "false");
    }

    #[test]
    fn kept_answers_are_bounded() {
        let names = HeaderNames::new("X-Deskgate-").expect("valid");
        let signer = Signer::new(None, "https://gate.example", "deskgate", 300).expect("signer");
        let t = Told::default();
        let sessions: Vec<_> = (0..TOLD_MAX + 10).map(|i| person(&format!("P{i}"), None)).collect();
        for s in &sessions {
            told(&t, &names, &signer, s, "session", "deskgate", 1000);
            assert!(t.0.lock().expect("lock").len() <= TOLD_MAX);
        }
    }

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
