//! How a session's person authenticated: RFC 8176 `amr` values as sessions keep them, and
//! whether they include a second factor. Below the sign-in, which records them, and the
//! second-factor pages and layers, which read them.

use deskgate_provider::Identity;

/// The `attributes` key under which a provider passes the methods it authenticated the
/// person with (OIDC's `amr` claim; a SAML context configured as strong becomes `mfa`).
pub const AMR: &str = deskgate_provider::AMR;

/// Methods that count as a second factor: RFC 8176's `mfa` (multiple factors), `otp` (a
/// one-time code) and `hwk` (a hardware key).
pub const STRONG: [&str; 3] = ["mfa", "otp", "hwk"];

/// Whether these methods include a second factor.
pub fn satisfied(amr: &[String]) -> bool {
    amr.iter().any(|m| STRONG.contains(&m.as_str()))
}

/// The methods a sign-in used, as sessions keep them: what the provider said (short
/// tokens only, at most eight), else `pwd` for a password provider.
pub fn amr_of(identity: &Identity, password: bool) -> Vec<String> {
    let said: Vec<String> = identity
        .attributes
        .get(AMR)
        .into_iter()
        .flatten()
        .filter(|m| {
            !m.is_empty()
                && m.len() <= 32
                && m.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-')
        })
        .take(8)
        .cloned()
        .collect();
    if said.is_empty() && password { vec!["pwd".to_owned()] } else { said }
}

/// Adds `methods` to `amr`, once each.
pub fn with_methods(amr: &[String], methods: &[&str]) -> Vec<String> {
    let mut out = amr.to_vec();
    for m in methods {
        if !out.iter().any(|x| x == m) {
            out.push((*m).to_owned());
        }
    }
    out
}
