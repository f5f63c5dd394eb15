//! From a verified token's claims to an [`Identity`], applying the provider's own rules:
//! a verified email address and an allowed Google Workspace domain.

use deskgate_provider::{AuthError, Identity};
use serde_json::{Map, Value};

use crate::Settings;

/// The prefix of the group that stands for a Google Workspace hosted domain, so that the
/// gateway's ordinary group rules can map a whole domain to usergroups.
pub(crate) const HD_GROUP_PREFIX: &str = "hd:";

/// Claims copied into [`Identity::attributes`] when they are strings.
const ATTRIBUTES: [&str; 5] = ["hd", "given_name", "family_name", "preferred_username", "locale"];

pub(crate) fn identity(settings: &Settings, claims: &Map<String, Value>) -> Result<Identity, AuthError> {
    let text = |name: &str| claims.get(name).and_then(Value::as_str).filter(|s| !s.is_empty());
    let subject = text("sub").ok_or_else(|| AuthError::Protocol("the ID token has no subject".into()))?;

    let email = text("email");
    // Some providers (and old Google tokens) send the flag as a string.
    let email_verified = match claims.get("email_verified") {
        Some(Value::Bool(verified)) => *verified,
        Some(Value::String(s)) => s == "true",
        _ => false,
    };
    if email.is_some() && !email_verified && !settings.allow_unverified_email {
        return Err(AuthError::NotAllowed(
            "the provider has not verified this account's email address".into(),
        ));
    }

    let hd = text("hd").map(str::to_ascii_lowercase);
    if !settings.allowed_domains.is_empty() {
        match &hd {
            None => {
                return Err(AuthError::NotAllowed(
                    "this is a personal account, and only accounts of an allowed domain may sign in here"
                        .into(),
                ));
            }
            Some(domain) if !settings.allowed_domains.contains(domain) => {
                return Err(AuthError::NotAllowed(format!(
                    "this account is in the domain {domain}, which is not an allowed domain here"
                )));
            }
            Some(_) => {}
        }
    }

    let mut identity = Identity::new(&settings.provider, subject);
    identity.email = email.map(str::to_owned);
    identity.email_verified = email.is_some() && email_verified;
    identity.username = text("preferred_username").or(email).map(str::to_owned);
    identity.display_name = text("name").map(str::to_owned).or_else(|| {
        let parts: Vec<&str> = [text("given_name"), text("family_name")].into_iter().flatten().collect();
        (!parts.is_empty()).then(|| parts.join(" "))
    });
    if let Some(claim) = &settings.groups_claim {
        identity.groups = groups(claims.get(claim));
    }
    if let Some(domain) = &hd {
        identity.groups.push(format!("{HD_GROUP_PREFIX}{domain}"));
    }
    // How the provider authenticated the person (`["pwd", "mfa"]`): strings only.
    if let Some(Value::Array(methods)) = claims.get("amr") {
        let methods: Vec<String> = methods.iter().filter_map(Value::as_str).map(str::to_owned).collect();
        if !methods.is_empty() {
            identity.attributes.insert(deskgate_provider::AMR.to_owned(), methods);
        }
    }
    for name in ATTRIBUTES {
        if let Some(value) = text(name) {
            let value = if name == "hd" { value.to_ascii_lowercase() } else { value.to_owned() };
            identity.attributes.insert(name.to_owned(), vec![value]);
        }
    }
    Ok(identity)
}

/// A groups claim: an array of strings (other members are skipped) or a single string.
fn groups(claim: Option<&Value>) -> Vec<String> {
    match claim {
        Some(Value::String(one)) if !one.is_empty() => vec![one.clone()],
        Some(Value::Array(list)) => {
            list.iter().filter_map(Value::as_str).filter(|g| !g.is_empty()).map(str::to_owned).collect()
        }
        _ => Vec::new(),
    }
}

#[cfg(test)]
mod tests;
