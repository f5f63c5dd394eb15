//! The profile checks on already-verified content; signatures themselves are exercised
//! against the real IdP in `tests/idp`.

use super::*;

const ACS: &str = "https://gate.example.com/.deskgate/saml/corp/acs";
const SP: &str = "https://gate.example.com/.deskgate/saml/corp/metadata";
const IDP: &str = "https://idp.example.com/metadata";
const REQUEST: &str = "_req1";

/// 2026-01-01T00:00:00Z.
fn now() -> SystemTime {
    SystemTime::UNIX_EPOCH + Duration::from_secs(1_767_225_600)
}

fn expected() -> Expected<'static> {
    Expected {
        sp_entity_id: SP,
        acs: ACS,
        idp_entity_id: IDP,
        request_id: Some(REQUEST),
        now: now(),
        skew: Duration::from_secs(120),
        want_assertions_signed: true,
    }
}

fn assertion_xml() -> String {
    format!(
        r#"<saml:Assertion xmlns:saml="urn:oasis:names:tc:SAML:2.0:assertion" xmlns:xsi="http://www.w3.org/2001/XMLSchema-instance" ID="_a1" Version="2.0" IssueInstant="2026-01-01T00:00:00Z">
  <saml:Issuer>{IDP}</saml:Issuer>
  <saml:Subject>
    <saml:NameID Format="urn:oasis:names:tc:SAML:1.1:nameid-format:emailAddress"> alice@corp.example.com </saml:NameID>
    <saml:SubjectConfirmation Method="urn:oasis:names:tc:SAML:2.0:cm:bearer">
      <saml:SubjectConfirmationData NotOnOrAfter="2026-01-01T00:05:00Z" Recipient="{ACS}" InResponseTo="{REQUEST}"/>
    </saml:SubjectConfirmation>
  </saml:Subject>
  <saml:Conditions NotBefore="2025-12-31T23:59:30Z" NotOnOrAfter="2026-01-01T00:04:00Z">
    <saml:AudienceRestriction><saml:Audience>{SP}</saml:Audience></saml:AudienceRestriction>
  </saml:Conditions>
  <saml:AuthnStatement AuthnInstant="2026-01-01T00:00:00Z" SessionIndex="_s1" SessionNotOnOrAfter="2026-01-01T08:00:00Z"/>
  <saml:AttributeStatement>
    <saml:Attribute Name="memberOf"><saml:AttributeValue>helpdesk-agents</saml:AttributeValue><saml:AttributeValue>vips</saml:AttributeValue></saml:Attribute>
    <saml:Attribute Name="memberOf"><saml:AttributeValue>late-joiners</saml:AttributeValue></saml:Attribute>
    <saml:Attribute Name="email"><saml:AttributeValue>alice@corp.example.com</saml:AttributeValue></saml:Attribute>
    <saml:Attribute Name="complex"><saml:AttributeValue><saml:NameID>x</saml:NameID></saml:AttributeValue><saml:AttributeValue xsi:nil="true"/></saml:Attribute>
  </saml:AttributeStatement>
</saml:Assertion>"#
    )
}

fn read(xml: &str, expected: &Expected<'_>) -> Result<Assertion, ResponseError> {
    let document = xml::parse(xml).expect("well-formed");
    read_assertion(document.root_element(), expected)
}

fn read_edited(from: &str, to: &str) -> Result<Assertion, ResponseError> {
    let xml = assertion_xml();
    assert!(xml.contains(from), "{from} not in the template");
    read(&xml.replace(from, to), &expected())
}

#[test]
fn a_good_assertion_reads_whole() {
    let assertion = read(&assertion_xml(), &expected()).expect("accepted");
    assert_eq!(assertion.id, "_a1");
    assert_eq!(assertion.issuer, IDP);
    assert_eq!(assertion.name_id, "alice@corp.example.com");
    assert_eq!(assertion.session_index.as_deref(), Some("_s1"));
    assert_eq!(assertion.attributes["memberOf"], ["helpdesk-agents", "vips", "late-joiners"]);
    assert_eq!(assertion.attributes["complex"], Vec::<String>::new());
    // The earlier of the two NotOnOrAfter (conditions, 00:04) plus the skew.
    assert_eq!(assertion.not_on_or_after, now() + Duration::from_secs(6 * 60));
}

#[test]
fn audience_is_required_and_must_be_this_sp() {
    let other = read_edited(
        &format!("<saml:Audience>{SP}</saml:Audience>"),
        "<saml:Audience>https://other.example</saml:Audience>",
    );
    assert_eq!(other, Err(ResponseError::Audience { found: vec!["https://other.example".into()] }));
    let none = read_edited(
        &format!("<saml:AudienceRestriction><saml:Audience>{SP}</saml:Audience></saml:AudienceRestriction>"),
        "",
    );
    assert_eq!(none, Err(ResponseError::NoAudience));
    let second_restriction_fails = read_edited(
        "</saml:AudienceRestriction>",
        "</saml:AudienceRestriction><saml:AudienceRestriction><saml:Audience>x</saml:Audience></saml:AudienceRestriction>",
    );
    assert_eq!(second_restriction_fails.map_err(|e| e.code()), Err("audience"));
    let unknown = read_edited("</saml:Conditions>", "<saml:Custom/></saml:Conditions>");
    assert_eq!(unknown, Err(ResponseError::UnknownCondition("Custom".into())));
    assert!(read_edited("</saml:Conditions>", "<saml:OneTimeUse/></saml:Conditions>").is_ok());
}

#[test]
fn recipient_and_in_response_to_must_match() {
    let recipient = read_edited(&format!("Recipient=\"{ACS}\""), "Recipient=\"https://evil.example/acs\"");
    assert_eq!(recipient.map_err(|e| e.code()), Err("recipient"));
    let missing = read_edited(&format!("Recipient=\"{ACS}\""), "");
    assert_eq!(missing, Err(ResponseError::Recipient { found: None }));
    let other_request = read_edited(&format!("InResponseTo=\"{REQUEST}\""), "InResponseTo=\"_other\"");
    assert_eq!(other_request.map_err(|e| e.code()), Err("in-response-to"));
    let unsolicited_for_a_request = read_edited(&format!("InResponseTo=\"{REQUEST}\""), "");
    assert_eq!(unsolicited_for_a_request.map_err(|e| e.code()), Err("in-response-to"));
    let solicited_when_none_was = read(&assertion_xml(), &Expected { request_id: None, ..expected() });
    assert_eq!(solicited_when_none_was.map_err(|e| e.code()), Err("in-response-to"));
    let not_bearer = read_edited("cm:bearer", "cm:holder-of-key");
    assert_eq!(not_bearer, Err(ResponseError::NoBearerConfirmation));
}

#[test]
fn time_windows_allow_the_skew_and_no_more() {
    let at = |seconds: i64| {
        let shifted = if seconds >= 0 {
            now() + Duration::from_secs(seconds.unsigned_abs())
        } else {
            now() - Duration::from_secs(seconds.unsigned_abs())
        };
        read(&assertion_xml(), &Expected { now: shifted, ..expected() }).map_err(|e| e.code())
    };
    // Conditions end at 00:04, plus 2 minutes of skew.
    assert!(at(5 * 60 + 59).is_ok());
    assert_eq!(at(6 * 60), Err("expired"));
    // Conditions start at 23:59:30, minus 2 minutes of skew.
    assert!(at(-150).is_ok());
    assert_eq!(at(-151), Err("not-yet-valid"));
    let confirmation_without_end = read_edited("NotOnOrAfter=\"2026-01-01T00:05:00Z\" ", "");
    assert_eq!(confirmation_without_end, Err(ResponseError::Expired("subject confirmation")));
    let session_over = read_edited(
        "SessionNotOnOrAfter=\"2026-01-01T08:00:00Z\"",
        "SessionNotOnOrAfter=\"2025-12-31T00:00:00Z\"",
    );
    assert_eq!(session_over, Err(ResponseError::Expired("IdP session")));
    let junk = read_edited("NotBefore=\"2025-12-31T23:59:30Z\"", "NotBefore=\"yesterday\"");
    assert_eq!(junk, Err(ResponseError::BadTime("Conditions NotBefore")));
    let no_zone = read_edited("NotBefore=\"2025-12-31T23:59:30Z\"", "NotBefore=\"2025-12-31T23:59:30\"");
    assert_eq!(no_zone.map_err(|e| e.code()), Err("bad-time"));
}

#[test]
fn issuer_version_name_id_and_statement_are_required() {
    assert_eq!(
        read_edited(&format!("<saml:Issuer>{IDP}</saml:Issuer>"), "<saml:Issuer>https://evil</saml:Issuer>")
            .map_err(|e| e.code()),
        Err("issuer")
    );
    assert_eq!(read_edited("Version=\"2.0\"", "Version=\"1.1\""), Err(ResponseError::Version("Assertion")));
    let comment = read_edited(" alice@corp.example.com ", "alice@corp.example.com<!---->.evil.example");
    assert_eq!(comment, Err(ResponseError::NameId), "a NameID with a comment is never read in part");
    assert_eq!(read_edited(" alice@corp.example.com ", "  "), Err(ResponseError::NameId));
    assert_eq!(read_edited(" alice@corp.example.com ", "<x/>"), Err(ResponseError::NameId));
    let no_statement = read_edited(
        "<saml:AuthnStatement AuthnInstant=\"2026-01-01T00:00:00Z\" SessionIndex=\"_s1\" SessionNotOnOrAfter=\"2026-01-01T08:00:00Z\"/>",
        "",
    );
    assert_eq!(no_statement, Err(ResponseError::NoAuthnStatement));
}

fn response_xml(status: &str, destination: &str) -> String {
    format!(
        r#"<samlp:Response xmlns:samlp="urn:oasis:names:tc:SAML:2.0:protocol" xmlns:saml="urn:oasis:names:tc:SAML:2.0:assertion" ID="_r1" Version="2.0" Destination="{destination}" InResponseTo="{REQUEST}"><saml:Issuer>{IDP}</saml:Issuer><samlp:Status><samlp:StatusCode Value="urn:oasis:names:tc:SAML:2.0:status:{status}"><samlp:StatusCode Value="urn:oasis:names:tc:SAML:2.0:status:AuthnFailed"/></samlp:StatusCode></samlp:Status></samlp:Response>"#
    )
}

fn check(xml: &str) -> Result<(), ResponseError> {
    let document = xml::parse(xml).expect("well-formed");
    check_response(document.root_element(), &expected())
}

#[test]
fn the_response_envelope_is_checked() {
    assert_eq!(check(&response_xml("Success", ACS)), Ok(()));
    assert_eq!(
        check(&response_xml("Responder", ACS)),
        Err(ResponseError::Status(
            "urn:oasis:names:tc:SAML:2.0:status:Responder / urn:oasis:names:tc:SAML:2.0:status:AuthnFailed"
                .into()
        ))
    );
    assert_eq!(check(&response_xml("Success", "https://evil/acs")).map_err(|e| e.code()), Err("destination"));
    let no_destination = response_xml("Success", ACS).replace(&format!(" Destination=\"{ACS}\""), "");
    assert_eq!(check(&no_destination), Err(ResponseError::Destination { found: None }));
    let other_request = response_xml("Success", ACS).replace(REQUEST, "_other");
    assert_eq!(check(&other_request).map_err(|e| e.code()), Err("in-response-to"));
    let no_in_response_to = response_xml("Success", ACS).replace(&format!(" InResponseTo=\"{REQUEST}\""), "");
    assert_eq!(check(&no_in_response_to), Ok(()), "the signed confirmation carries it");
    let other_issuer = response_xml("Success", ACS).replace(&format!(">{IDP}<"), ">https://evil<");
    assert_eq!(check(&other_issuer).map_err(|e| e.code()), Err("issuer"));
}

#[test]
fn the_form_field_is_bounded_before_it_is_decoded() {
    assert_eq!(
        decode(&"A".repeat(5_000_000), 262_144),
        Err(ResponseError::TooLarge { size: 5_000_000, limit: 262_144 })
    );
    assert_eq!(decode("PHI+PC9yPg==", 16).as_deref(), Ok("<r></r>"));
    assert_eq!(decode("PHI+\r\nPC9yPg==", 64).as_deref(), Ok("<r></r>"), "line breaks are allowed");
    assert_eq!(decode("not base64!", 64), Err(ResponseError::NotBase64));
    assert_eq!(decode("/w==", 64), Err(ResponseError::NotUtf8));
}

#[test]
fn junk_of_every_kind_is_refused_without_panicking() {
    let certificates = [CertificateDer::from(vec![1, 2, 3])];
    for junk in [
        String::new(),
        "PA==".into(),
        STANDARD.encode("<samlp:Response"),
        STANDARD.encode(r#"<!DOCTYPE r [<!ENTITY x SYSTEM "file:///etc/passwd">]><r>&x;</r>"#),
        STANDARD.encode(response_xml("Success", ACS)),
        STANDARD.encode(assertion_xml()),
    ] {
        assert!(verify(&junk, 262_144, &certificates, &expected()).is_err(), "{junk}");
    }
}
