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

/// Checks typed credentials and returns the name to search for.
///
/// An empty password is refused because a simple bind with a DN and no password is an
/// *unauthenticated* bind, which many servers answer with success. For Active Directory
/// the down-level spelling `DOMAIN\name` is reduced to `name`; `name@suffix` is kept whole
/// because it is matched against `userPrincipalName`.
pub(crate) fn login_name(kind: Kind, username: &str, password: &str) -> Result<String, Refusal> {
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
    let name = match kind {
        Kind::ActiveDirectory => match trimmed.split_once('\\') {
            Some((domain, name)) if !domain.is_empty() && !name.contains('\\') => name,
            _ => trimmed,
        },
        Kind::Ldap => trimmed,
    };
    if name.is_empty() {
        return Err(Refusal::EmptyUsername);
    }
    Ok(name.to_owned())
}

#[cfg(test)]
mod tests {
    use super::*;

    const AD: Kind = Kind::ActiveDirectory;

    #[test]
    fn ad_accepts_the_three_spellings() {
        assert_eq!(login_name(AD, "alice", "pw"), Ok("alice".into()));
        assert_eq!(login_name(AD, "alice@corp.example.com", "pw"), Ok("alice@corp.example.com".into()));
        assert_eq!(login_name(AD, "CORP\\alice", "pw"), Ok("alice".into()));
        assert_eq!(login_name(AD, "corp.example.com\\alice", "pw"), Ok("alice".into()));
        assert_eq!(login_name(AD, "  alice ", "pw"), Ok("alice".into()));
    }

    #[test]
    fn odd_backslashes_are_kept_for_escaping_not_split() {
        assert_eq!(login_name(AD, "\\alice", "pw"), Ok("\\alice".into()));
        assert_eq!(login_name(AD, "A\\B\\alice", "pw"), Ok("A\\B\\alice".into()));
        assert_eq!(login_name(Kind::Ldap, "CORP\\alice", "pw"), Ok("CORP\\alice".into()));
        assert_eq!(login_name(AD, "CORP\\", "pw"), Err(Refusal::EmptyUsername));
    }

    #[test]
    fn refusals_happen_before_any_lookup() {
        assert_eq!(login_name(AD, "alice", ""), Err(Refusal::EmptyPassword));
        assert_eq!(login_name(AD, "alice", "a\0b"), Err(Refusal::NulInPassword));
        assert_eq!(login_name(AD, "", "pw"), Err(Refusal::EmptyUsername));
        assert_eq!(login_name(AD, "   ", "pw"), Err(Refusal::EmptyUsername));
        assert_eq!(login_name(AD, "ali\0ce", "pw"), Err(Refusal::ControlCharacter));
        assert_eq!(login_name(AD, "alice\n", "pw"), Err(Refusal::ControlCharacter));
        let long = "a".repeat(MAX_USERNAME_BYTES + 1);
        assert_eq!(login_name(AD, &long, "pw"), Err(Refusal::UsernameTooLong));
        let just_fits = "a".repeat(MAX_USERNAME_BYTES);
        assert_eq!(login_name(AD, &just_fits, "pw"), Ok(just_fits.clone()));
        // Multi-byte characters count by bytes, not characters.
        let wide = "ü".repeat(MAX_USERNAME_BYTES / 2 + 1);
        assert_eq!(login_name(AD, &wide, "pw"), Err(Refusal::UsernameTooLong));
    }

    #[test]
    fn the_empty_password_wins_over_other_reasons() {
        assert_eq!(login_name(AD, "", ""), Err(Refusal::EmptyPassword));
    }
}
