//! The assertion consumer service: from the posted `SAMLResponse` to a verified
//! [`Assertion`], or the first check that failed.
//!
//! Order: cap the size, decode, parse strictly, check the structure (`shape`), verify the
//! signatures (`signature`), then read the assertion from the *verified* content only and
//! apply the profile's checks to it. Fields of an unsigned Response envelope are read only
//! to refuse (status, destination, InResponseTo), never to accept.

use std::collections::BTreeMap;
use std::time::{Duration, SystemTime};

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use roxmltree::Node;
use samael::crypto::CertificateDer;

use crate::error::ResponseError;
use crate::shape;
use crate::signature;
use crate::xml::{self, ASSERTION, PROTOCOL};

const SUCCESS: &str = "urn:oasis:names:tc:SAML:2.0:status:Success";
const BEARER: &str = "urn:oasis:names:tc:SAML:2.0:cm:bearer";

/// What a response must match.
#[derive(Debug, Clone)]
pub(crate) struct Expected<'a> {
    /// This service provider's entity id: the required audience.
    pub(crate) sp_entity_id: &'a str,
    /// The ACS URL: the Response's Destination and the confirmation's Recipient.
    pub(crate) acs: &'a str,
    /// The IdP's entity id: the issuer.
    pub(crate) idp_entity_id: &'a str,
    /// The AuthnRequest's ID, or `None` for an unsolicited (IdP-initiated) response.
    pub(crate) request_id: Option<&'a str>,
    /// Now.
    pub(crate) now: SystemTime,
    /// How far the IdP's clock may be off.
    pub(crate) skew: Duration,
    /// Whether the Assertion itself must be signed (a signed Response around an unsigned
    /// Assertion is refused), as the SP metadata's `WantAssertionsSigned` says.
    pub(crate) want_assertions_signed: bool,
}

/// A verified assertion: what deskgate read from signed content after every check passed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Assertion {
    /// The assertion's `ID`, for the gateway's replay cache.
    pub id: String,
    /// The IdP that issued it.
    pub issuer: String,
    /// The subject's `NameID`, whole (surrounding whitespace removed).
    pub name_id: String,
    /// The `NameID`'s `Format`, if given.
    pub name_id_format: Option<String>,
    /// The `SessionIndex` of the first `AuthnStatement`, if given.
    pub session_index: Option<String>,
    /// Until when this assertion could be accepted (its earliest `NotOnOrAfter` plus the
    /// clock skew): the gateway keeps its `id` in the replay cache until then.
    pub not_on_or_after: SystemTime,
    /// Attribute name → text values, in document order.
    pub attributes: BTreeMap<String, Vec<String>>,
    /// The `AuthnContextClassRef` of the first `AuthnStatement`: how the IdP authenticated
    /// the person.
    pub authn_context: Option<String>,
}

/// Decodes the form field: size first, then base64 (line breaks allowed), then UTF-8.
pub(crate) fn decode(encoded: &str, limit: usize) -> Result<String, ResponseError> {
    if encoded.len() > limit {
        return Err(ResponseError::TooLarge { size: encoded.len(), limit });
    }
    let compact: Vec<u8> = encoded.bytes().filter(|b| !b.is_ascii_whitespace()).collect();
    let bytes = STANDARD.decode(compact).map_err(|_| ResponseError::NotBase64)?;
    String::from_utf8(bytes).map_err(|_| ResponseError::NotUtf8)
}

/// Checks a posted `SAMLResponse` and returns the assertion it carries.
pub(crate) fn verify(
    encoded: &str,
    limit: usize,
    certificates: &[CertificateDer],
    expected: &Expected<'_>,
) -> Result<Assertion, ResponseError> {
    let text = decode(encoded, limit)?;
    let document = xml::parse(&text).map_err(ResponseError::Malformed)?;
    let shape = shape::check(&document)?;
    if expected.want_assertions_signed && !shape.assertion_signed {
        return Err(ResponseError::AssertionUnsigned);
    }
    let reduced = signature::verified_content(&text, certificates)?;
    let signed = xml::parse(&reduced).map_err(|_| ResponseError::SignedContentMismatch)?;

    // Take the assertion from the verified content, by the ID that was checked above. An
    // unsigned Response is only a shell there: no attributes, no other children.
    let signed_root = signed.root_element();
    let same_id = |node: Node<'_, '_>, id: &str| node.attribute("ID") == Some(id);
    if !xml::is(signed_root, PROTOCOL, "Response")
        || shape.response_signed != same_id(signed_root, &shape.response_id)
    {
        return Err(ResponseError::SignedContentMismatch);
    }
    let mut assertions = xml::children(signed_root, ASSERTION, "Assertion");
    let assertion = match (assertions.next(), assertions.next()) {
        (Some(one), None) => one,
        _ => return Err(ResponseError::SignedContentMismatch),
    };
    let assertion_elements =
        signed.descendants().filter(|n| n.is_element() && n.tag_name().name() == "Assertion");
    if !same_id(assertion, &shape.assertion_id)
        || assertion_elements.count() != 1
        || xml::has_comment_or_instruction(&signed)
    {
        return Err(ResponseError::SignedContentMismatch);
    }

    let response = if shape.response_signed { signed_root } else { document.root_element() };
    check_response(response, expected)?;
    read_assertion(assertion, expected)
}

fn check_response(response: Node<'_, '_>, expected: &Expected<'_>) -> Result<(), ResponseError> {
    if response.attribute("Version") != Some("2.0") {
        return Err(ResponseError::Version("Response"));
    }
    let status = xml::child(response, PROTOCOL, "Status")
        .and_then(|status| xml::child(status, PROTOCOL, "StatusCode"))
        .ok_or_else(|| ResponseError::Status("(none)".into()))?;
    if status.attribute("Value") != Some(SUCCESS) {
        let mut codes = vec![status.attribute("Value").unwrap_or("(none)").to_owned()];
        if let Some(second) = xml::child(status, PROTOCOL, "StatusCode") {
            codes.push(second.attribute("Value").unwrap_or("(none)").to_owned());
        }
        return Err(ResponseError::Status(codes.join(" / ")));
    }
    let destination = response.attribute("Destination").map(str::trim);
    if destination != Some(expected.acs) {
        return Err(ResponseError::Destination { found: destination.map(str::to_owned) });
    }
    check_in_response_to(response.attribute("InResponseTo"), expected, true)?;
    if let Some(issuer) = xml::child(response, ASSERTION, "Issuer") {
        let found = xml::text_only(issuer);
        if found.as_deref().map(str::trim) != Some(expected.idp_entity_id) {
            return Err(ResponseError::Issuer { element: "Response", found });
        }
    }
    Ok(())
}

/// `optional`: the Response's InResponseTo may be left out of a solicited response (the
/// signed confirmation carries it); the confirmation's may not.
fn check_in_response_to(
    found: Option<&str>,
    expected: &Expected<'_>,
    optional: bool,
) -> Result<(), ResponseError> {
    let ok = match (found, expected.request_id) {
        (None, None) => true,
        (None, Some(_)) => optional,
        (Some(found), Some(id)) => found == id,
        (Some(_), None) => false,
    };
    if ok {
        Ok(())
    } else {
        Err(ResponseError::InResponseTo {
            found: found.map(str::to_owned),
            expected: expected.request_id.map(str::to_owned),
        })
    }
}

fn read_assertion(assertion: Node<'_, '_>, expected: &Expected<'_>) -> Result<Assertion, ResponseError> {
    if assertion.attribute("Version") != Some("2.0") {
        return Err(ResponseError::Version("Assertion"));
    }
    let issuer = xml::child(assertion, ASSERTION, "Issuer").and_then(xml::text_only);
    if issuer.as_deref().map(str::trim) != Some(expected.idp_entity_id) {
        return Err(ResponseError::Issuer { element: "Assertion", found: issuer });
    }

    let subject = xml::child(assertion, ASSERTION, "Subject").ok_or(ResponseError::NameId)?;
    let name_id_element = xml::child(subject, ASSERTION, "NameID").ok_or(ResponseError::NameId)?;
    let name_id = xml::text_only(name_id_element).ok_or(ResponseError::NameId)?.trim().to_owned();
    if name_id.is_empty() || name_id.chars().any(char::is_control) {
        return Err(ResponseError::NameId);
    }
    let confirmation_expiry = check_confirmations(subject, expected)?;
    let conditions_expiry = check_conditions(assertion, expected)?;

    let mut statements = xml::children(assertion, ASSERTION, "AuthnStatement").peekable();
    let first_statement = *statements.peek().ok_or(ResponseError::NoAuthnStatement)?;
    for statement in statements {
        let end = time(statement, "SessionNotOnOrAfter", "SessionNotOnOrAfter")?;
        if end.is_some_and(|end| !before(expected.now, end, expected.skew)) {
            return Err(ResponseError::Expired("IdP session"));
        }
    }

    let not_on_or_after = conditions_expiry.map_or(confirmation_expiry, |c| c.min(confirmation_expiry));
    Ok(Assertion {
        id: assertion.attribute("ID").unwrap_or_default().to_owned(),
        issuer: expected.idp_entity_id.to_owned(),
        name_id,
        name_id_format: name_id_element.attribute("Format").map(str::to_owned),
        session_index: first_statement.attribute("SessionIndex").map(str::to_owned),
        not_on_or_after: not_on_or_after + expected.skew,
        attributes: attributes(assertion),
        authn_context: xml::child(first_statement, ASSERTION, "AuthnContext")
            .and_then(|c| xml::child(c, ASSERTION, "AuthnContextClassRef"))
            .and_then(xml::text_only)
            .map(|t| t.trim().to_owned())
            .filter(|t| !t.is_empty()),
    })
}

/// At least one bearer confirmation must hold; returns its `NotOnOrAfter`.
fn check_confirmations(subject: Node<'_, '_>, expected: &Expected<'_>) -> Result<SystemTime, ResponseError> {
    let mut first_error = None;
    for confirmation in xml::children(subject, ASSERTION, "SubjectConfirmation") {
        if confirmation.attribute("Method") != Some(BEARER) {
            continue;
        }
        match check_bearer(confirmation, expected) {
            Ok(end) => return Ok(end),
            Err(error) => {
                first_error.get_or_insert(error);
            }
        }
    }
    Err(first_error.unwrap_or(ResponseError::NoBearerConfirmation))
}

fn check_bearer(confirmation: Node<'_, '_>, expected: &Expected<'_>) -> Result<SystemTime, ResponseError> {
    let data = xml::child(confirmation, ASSERTION, "SubjectConfirmationData")
        .ok_or(ResponseError::Expired("subject confirmation"))?;
    let recipient = data.attribute("Recipient").map(str::trim);
    if recipient != Some(expected.acs) {
        return Err(ResponseError::Recipient { found: recipient.map(str::to_owned) });
    }
    check_in_response_to(data.attribute("InResponseTo"), expected, false)?;
    let start = time(data, "NotBefore", "SubjectConfirmationData NotBefore")?;
    if start.is_some_and(|start| !reached(expected.now, start, expected.skew)) {
        return Err(ResponseError::NotYetValid("subject confirmation"));
    }
    let end = time(data, "NotOnOrAfter", "SubjectConfirmationData NotOnOrAfter")?
        .ok_or(ResponseError::Expired("subject confirmation"))?;
    if !before(expected.now, end, expected.skew) {
        return Err(ResponseError::Expired("subject confirmation"));
    }
    Ok(end)
}

/// Time window, audiences and unknown conditions; returns the `NotOnOrAfter`, if any.
fn check_conditions(
    assertion: Node<'_, '_>,
    expected: &Expected<'_>,
) -> Result<Option<SystemTime>, ResponseError> {
    let conditions = xml::child(assertion, ASSERTION, "Conditions").ok_or(ResponseError::NoAudience)?;
    let start = time(conditions, "NotBefore", "Conditions NotBefore")?;
    if start.is_some_and(|start| !reached(expected.now, start, expected.skew)) {
        return Err(ResponseError::NotYetValid("assertion"));
    }
    let end = time(conditions, "NotOnOrAfter", "Conditions NotOnOrAfter")?;
    if end.is_some_and(|end| !before(expected.now, end, expected.skew)) {
        return Err(ResponseError::Expired("assertion"));
    }
    let mut restrictions = 0;
    for condition in xml::elements(conditions) {
        let name = condition.tag_name().name();
        if condition.tag_name().namespace() != Some(ASSERTION) {
            return Err(ResponseError::UnknownCondition(name.to_owned()));
        }
        match name {
            "AudienceRestriction" => {
                restrictions += 1;
                let audiences: Vec<String> = xml::children(condition, ASSERTION, "Audience")
                    .map(|a| xml::text_only(a).unwrap_or_default().trim().to_owned())
                    .collect();
                if !audiences.iter().any(|a| a == expected.sp_entity_id) {
                    return Err(ResponseError::Audience { found: audiences });
                }
            }
            // One-time use is what the gateway's replay cache does for every assertion.
            "OneTimeUse" | "ProxyRestriction" => {}
            other => return Err(ResponseError::UnknownCondition(other.to_owned())),
        }
    }
    if restrictions == 0 {
        return Err(ResponseError::NoAudience);
    }
    Ok(end)
}

fn attributes(assertion: Node<'_, '_>) -> BTreeMap<String, Vec<String>> {
    let mut out: BTreeMap<String, Vec<String>> = BTreeMap::new();
    for statement in xml::children(assertion, ASSERTION, "AttributeStatement") {
        for attribute in xml::children(statement, ASSERTION, "Attribute") {
            let Some(name) = attribute.attribute("Name").filter(|n| !n.is_empty()) else {
                continue;
            };
            let values = out.entry(name.to_owned()).or_default();
            for value in xml::children(attribute, ASSERTION, "AttributeValue") {
                let nil = value.attributes().any(|a| a.name() == "nil" && matches!(a.value(), "true" | "1"));
                // Values with element content (e.g. a nested NameID) are not text; skip them.
                if let Some(text) = xml::text_only(value).filter(|_| !nil) {
                    values.push(text);
                }
            }
        }
    }
    out
}

/// An `xs:dateTime` attribute with an explicit zone, as SAML requires (UTC).
fn time(node: Node<'_, '_>, name: &str, what: &'static str) -> Result<Option<SystemTime>, ResponseError> {
    node.attribute(name)
        .map(|text| {
            chrono::DateTime::parse_from_rfc3339(text.trim())
                .map(SystemTime::from)
                .map_err(|_| ResponseError::BadTime(what))
        })
        .transpose()
}

/// `now` is before `end`, allowing `skew`.
fn before(now: SystemTime, end: SystemTime, skew: Duration) -> bool {
    now < end + skew
}

/// `now` has reached `start`, allowing `skew`.
fn reached(now: SystemTime, start: SystemTime, skew: Duration) -> bool {
    now + skew >= start
}

#[cfg(test)]
mod tests;
