//! What a person typed, checked and reduced to the name the directory is searched for.
//! Everything here runs before any network I/O, so refused input never reaches a server.

use crate::config::Kind;

/// The longest username, in bytes, that is looked up at all.
pub const MAX_USERNAME_BYTES: usize = 256;

/// Why typed credentials were refused without asking the directory.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Refusal {
    EmptyUsername,
    EmptyPassword,
    UsernameTooLong,
    ControlCharacter,
    NulInPassword,
}

impl Refusal {
    /// A short reason for the log.
    pub(crate) fn reason(self) -> &'static str {
        match self {
            Refusal::EmptyUsername => "empty username",
            Refusal::EmptyPassword => "empty password",
            Refusal::UsernameTooLong => "username too long",
            Refusal::ControlCharacter => "control character in username",
            Refusal::NulInPassword => "NUL byte in password",
        }
    }
}

/// The name to search for, and the domain the person named with it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Login {
    /// What `{username}` in the user filter becomes.
    pub(crate) name: String,
    /// Active Directory: the domain in `DOMAIN\name` or the suffix in `name@suffix`, in
    /// lower case, which must be one of the provider's domains.
    pub(crate) domain: Option<String>,
}

/// Checks typed credentials and returns the name to search for.
///
/// An empty password is refused because a simple bind with a DN and no password is an
/// *unauthenticated* bind, which many servers answer with success. For Active Directory
/// the down-level spelling `DOMAIN\name` is reduced to `name`; `name@suffix` is kept whole
/// because it is matched against `userPrincipalName`. Either way the domain is returned,
/// for the caller to check against the domains the provider serves.
pub(crate) fn login_name(kind: Kind, username: &str, password: &str) -> Result<Login, Refusal> {
    if password.is_empty() {
        return Err(Refusal::EmptyPassword);
    }
    if password.contains('\0') {
        return Err(Refusal::NulInPassword);
    }
    if username.len() > MAX_USERNAME_BYTES {
        return Err(Refusal::UsernameTooLong);
    }
    if username.chars().any(char::is_control) {
        return Err(Refusal::ControlCharacter);
    }
    let trimmed = username.trim();
    let (name, domain) = match kind {
        Kind::ActiveDirectory => match trimmed.split_once('\\') {
            Some((domain, name)) if !domain.is_empty() && !name.contains('\\') => (name, Some(domain)),
            // The suffix is what follows the last `@`, as AD reads a UPN.
            _ => (trimmed, trimmed.rsplit_once('@').map(|(_, suffix)| suffix)),
        },
        Kind::Ldap => (trimmed, None),
    };
    if name.is_empty() {
        return Err(Refusal::EmptyUsername);
    }
    Ok(Login { name: name.to_owned(), domain: domain.map(str::to_lowercase) })
}

/// Whether the domain a person named is one of `allowed` (lower case). A login without a
/// domain is the provider's own.
pub(crate) fn domain_allowed(login: &Login, allowed: &[String]) -> bool {
    match &login.domain {
        None => true,
        Some(domain) => allowed.iter().any(|a| a == domain),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const AD: Kind = Kind::ActiveDirectory;

    fn name(kind: Kind, username: &str) -> Result<String, Refusal> {
        login_name(kind, username, "pw").map(|l| l.name)
    }

    #[test]
    fn ad_accepts_the_three_spellings() {
        assert_eq!(name(AD, "alice"), Ok("alice".into()));
        assert_eq!(name(AD, "alice@corp.example.com"), Ok("alice@corp.example.com".into()));
        assert_eq!(name(AD, "CORP\\alice"), Ok("alice".into()));
        assert_eq!(name(AD, "corp.example.com\\alice"), Ok("alice".into()));
        assert_eq!(name(AD, "  alice "), Ok("alice".into()));
    }

    #[test]
    fn odd_backslashes_are_kept_for_escaping_not_split() {
        assert_eq!(name(AD, "\\alice"), Ok("\\alice".into()));
        assert_eq!(name(AD, "A\\B\\alice"), Ok("A\\B\\alice".into()));
        assert_eq!(name(Kind::Ldap, "CORP\\alice"), Ok("CORP\\alice".into()));
        assert_eq!(name(AD, "CORP\\"), Err(Refusal::EmptyUsername));
    }

    #[test]
    fn refusals_happen_before_any_lookup() {
        assert_eq!(login_name(AD, "alice", ""), Err(Refusal::EmptyPassword));
        assert_eq!(login_name(AD, "alice", "a\0b"), Err(Refusal::NulInPassword));
        assert_eq!(name(AD, ""), Err(Refusal::EmptyUsername));
        assert_eq!(name(AD, "   "), Err(Refusal::EmptyUsername));
        assert_eq!(name(AD, "ali\0ce"), Err(Refusal::ControlCharacter));
        assert_eq!(name(AD, "alice\n"), Err(Refusal::ControlCharacter));
        let long = "a".repeat(MAX_USERNAME_BYTES + 1);
        assert_eq!(name(AD, &long), Err(Refusal::UsernameTooLong));
        let just_fits = "a".repeat(MAX_USERNAME_BYTES);
        assert_eq!(name(AD, &just_fits), Ok(just_fits.clone()));
        // Multi-byte characters count by bytes, not characters.
        let wide = "ü".repeat(MAX_USERNAME_BYTES / 2 + 1);
        assert_eq!(name(AD, &wide), Err(Refusal::UsernameTooLong));
    }

    #[test]
    fn the_domain_a_person_names_is_kept_for_the_check() {
        let domain = |username: &str| login_name(AD, username, "pw").map(|l| l.domain);
        assert_eq!(domain("alice"), Ok(None));
        assert_eq!(domain("CORP\\alice"), Ok(Some("corp".into())));
        assert_eq!(domain("OTHERDOMAIN\\alice"), Ok(Some("otherdomain".into())));
        assert_eq!(domain("alice@Corp.Example.com"), Ok(Some("corp.example.com".into())));
        assert_eq!(domain("a@b@other.example"), Ok(Some("other.example".into())));
        assert_eq!(domain("alice@"), Ok(Some(String::new())));
        assert_eq!(login_name(Kind::Ldap, "alice@x", "pw").map(|l| l.domain), Ok(None));
    }

    #[test]
    fn a_domain_that_is_not_ours_is_refused_and_no_domain_is_ours() {
        let ours = vec!["corp".to_owned(), "corp.example.com".to_owned()];
        let allowed = |username: &str| domain_allowed(&login_name(AD, username, "pw").expect("valid"), &ours);
        assert!(allowed("alice"));
        assert!(allowed("CORP\\alice"));
        assert!(allowed("corp\\alice"));
        assert!(allowed("alice@CORP.EXAMPLE.COM"));
        assert!(allowed("corp.example.com\\alice"));
        assert!(!allowed("OTHERDOMAIN\\alice"));
        assert!(!allowed("alice@other.example.com"));
        assert!(!allowed("alice@corp.example.com.evil"));
        assert!(!allowed("alice@"));
    }

    #[test]
    fn the_empty_password_wins_over_other_reasons() {
        assert_eq!(login_name(AD, "", ""), Err(Refusal::EmptyPassword));
    }
}
