//! From a verified assertion to the [`Identity`] the gateway maps and stores.

use std::time::SystemTime;

use deskgate_provider::Identity;

use crate::response::Assertion;

/// `attributes` key of the assertion's `ID`: the gateway's replay-cache key.
pub const ASSERTION_ID: &str = "saml_assertion_id";
/// `attributes` key of the time (RFC 3339, UTC) until which the replay cache must keep
/// [`ASSERTION_ID`]: the assertion's earliest `NotOnOrAfter` plus the allowed clock skew.
pub const NOT_ON_OR_AFTER: &str = "saml_not_on_or_after";
/// `attributes` key of the issuing IdP's entity id.
pub const ISSUER: &str = "saml_issuer";
/// `attributes` key of the `SessionIndex`, for a later single logout.
pub const SESSION_INDEX: &str = "saml_session_index";
/// `attributes` key of the `AuthnContextClassRef` the IdP said it authenticated with.
pub const AUTHN_CONTEXT: &str = "saml_authn_context";
/// `attributes` key of the `NameID` format.
pub const NAME_ID_FORMAT: &str = "saml_name_id_format";

const EMAIL_FORMAT: &str = "urn:oasis:names:tc:SAML:1.1:nameid-format:emailAddress";

/// Which attributes carry what.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Mapping {
    pub(crate) provider: String,
    pub(crate) email_attribute: Option<String>,
    pub(crate) name_attribute: Option<String>,
    pub(crate) groups_attribute: Option<String>,
    /// `AuthnContextClassRef` values that mean the IdP used a second factor.
    pub(crate) strong_contexts: Vec<String>,
}

/// The identity an assertion describes. The subject is the whole NameID; the email comes
/// from the configured attribute, else from an emailAddress-format NameID, and counts as
/// verified because it comes from the IdP's signed assertion (the IdP's administrators set
/// it, as with a directory). Every attribute is passed on, then the `saml_*` keys above are
/// set over any same-named attribute the IdP sent.
pub(crate) fn identity(assertion: &Assertion, mapping: &Mapping) -> Identity {
    let first = |name: &Option<String>| {
        name.as_ref()
            .and_then(|name| assertion.attributes.get(name))
            .and_then(|values| values.iter().map(|v| v.trim()).find(|v| !v.is_empty()))
            .map(str::to_owned)
    };
    let email = first(&mapping.email_attribute)
        .or_else(|| {
            (assertion.name_id_format.as_deref() == Some(EMAIL_FORMAT)).then(|| assertion.name_id.clone())
        })
        .filter(|email| email.contains('@'));

    let mut identity = Identity::new(mapping.provider.clone(), assertion.name_id.clone());
    identity.username = Some(assertion.name_id.clone());
    identity.email_verified = email.is_some();
    identity.email = email;
    identity.display_name = first(&mapping.name_attribute);
    identity.groups = mapping
        .groups_attribute
        .as_ref()
        .and_then(|name| assertion.attributes.get(name))
        .map(|values| values.iter().map(|v| v.trim()).filter(|v| !v.is_empty()).map(str::to_owned).collect())
        .unwrap_or_default();
    identity.attributes = assertion.attributes.clone();
    let mut set = |key: &str, value: String| {
        identity.attributes.insert(key.to_owned(), vec![value]);
    };
    set(ASSERTION_ID, assertion.id.clone());
    set(NOT_ON_OR_AFTER, rfc3339(assertion.not_on_or_after));
    set(ISSUER, assertion.issuer.clone());
    if let Some(index) = &assertion.session_index {
        set(SESSION_INDEX, index.clone());
    }
    if let Some(format) = &assertion.name_id_format {
        set(NAME_ID_FORMAT, format.clone());
    }
    // How the person authenticated comes from the context alone, never from an attribute.
    identity.attributes.remove(deskgate_provider::AMR);
    if let Some(context) = &assertion.authn_context {
        identity.attributes.insert(AUTHN_CONTEXT.to_owned(), vec![context.clone()]);
        if mapping.strong_contexts.iter().any(|s| s == context) {
            identity.attributes.insert(deskgate_provider::AMR.to_owned(), vec!["mfa".to_owned()]);
        }
    }
    identity
}

/// The assertion ID and the time until which the gateway's replay cache must keep it, read
/// back from an identity this crate returned.
pub fn assertion_id_and_expiry(identity: &Identity) -> Option<(String, SystemTime)> {
    let one = |key: &str| identity.attributes.get(key).and_then(|values| values.first());
    let id = one(ASSERTION_ID)?.clone();
    let until = chrono::DateTime::parse_from_rfc3339(one(NOT_ON_OR_AFTER)?).ok()?;
    Some((id, SystemTime::from(until)))
}

fn rfc3339(time: SystemTime) -> String {
    chrono::DateTime::<chrono::Utc>::from(time).to_rfc3339_opts(chrono::SecondsFormat::AutoSi, true)
}

#[cfg(test)]
mod tests;
