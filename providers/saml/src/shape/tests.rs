use super::*;

const RSA_SHA256: &str = "http://www.w3.org/2001/04/xmldsig-more#rsa-sha256";

/// A signature of the element with `id`, shaped as IdPs write it (values are not real:
/// the shape check never verifies).
fn signature(id: &str) -> String {
    format!(
        r##"<ds:Signature xmlns:ds="http://www.w3.org/2000/09/xmldsig#"><ds:SignedInfo><ds:CanonicalizationMethod Algorithm="http://www.w3.org/2001/10/xml-exc-c14n#"/><ds:SignatureMethod Algorithm="{RSA_SHA256}"/><ds:Reference URI="#{id}"><ds:Transforms><ds:Transform Algorithm="http://www.w3.org/2000/09/xmldsig#enveloped-signature"/><ds:Transform Algorithm="http://www.w3.org/2001/10/xml-exc-c14n#"/></ds:Transforms><ds:DigestMethod Algorithm="http://www.w3.org/2001/04/xmlenc#sha256"/><ds:DigestValue>AAAA</ds:DigestValue></ds:Reference></ds:SignedInfo><ds:SignatureValue>AAAA</ds:SignatureValue><ds:KeyInfo><ds:X509Data><ds:X509Certificate>AAAA</ds:X509Certificate></ds:X509Data></ds:KeyInfo></ds:Signature>"##
    )
}

fn assertion(id: &str, signed: bool) -> String {
    let signature = if signed { signature(id) } else { String::new() };
    format!(
        r#"<saml:Assertion ID="{id}" Version="2.0" IssueInstant="2026-01-01T00:00:00Z"><saml:Issuer>https://idp.example.com</saml:Issuer>{signature}<saml:Subject><saml:NameID>alice@corp.example.com</saml:NameID></saml:Subject></saml:Assertion>"#
    )
}

fn response(response_signed: bool, assertion_signed: bool) -> String {
    response_with(response_signed, &assertion("_a1", assertion_signed))
}

fn response_with(signed: bool, body: &str) -> String {
    let signature = if signed { signature("_r1") } else { String::new() };
    format!(
        r#"<samlp:Response xmlns:samlp="urn:oasis:names:tc:SAML:2.0:protocol" xmlns:saml="urn:oasis:names:tc:SAML:2.0:assertion" ID="_r1" Version="2.0"><saml:Issuer>https://idp.example.com</saml:Issuer>{signature}<samlp:Status><samlp:StatusCode Value="urn:oasis:names:tc:SAML:2.0:status:Success"/></samlp:Status>{body}</samlp:Response>"#
    )
}

fn shape_of(xml: &str) -> Result<Shape, ResponseError> {
    let document = xml::parse(xml).expect("well-formed");
    check(&document)
}

#[test]
fn signed_responses_and_assertions_in_place_pass() {
    for (response_signed, assertion_signed) in [(true, true), (true, false), (false, true)] {
        let shape = shape_of(&response(response_signed, assertion_signed)).expect("accepted");
        assert_eq!(
            shape,
            Shape {
                response_id: "_r1".into(),
                assertion_id: "_a1".into(),
                response_signed,
                assertion_signed
            }
        );
    }
}

#[test]
fn nothing_signed_is_refused() {
    assert_eq!(shape_of(&response(false, false)), Err(ResponseError::Unsigned));
}

#[test]
fn only_a_saml_response_is_read() {
    let bare = assertion("_a1", true).replacen(
        "<saml:Assertion ",
        r#"<saml:Assertion xmlns:saml="urn:oasis:names:tc:SAML:2.0:assertion" "#,
        1,
    );
    assert_eq!(shape_of(&bare), Err(ResponseError::NotAResponse));
    let other_namespace =
        response(true, true).replace("urn:oasis:names:tc:SAML:2.0:protocol", "urn:example:other");
    assert_eq!(shape_of(&other_namespace), Err(ResponseError::NotAResponse));
}

#[test]
fn comments_and_instructions_anywhere_are_refused() {
    let nameid = response(true, true)
        .replace("alice@corp.example.com<", "alice@corp.example.com<!---->.evil.example<");
    assert_eq!(shape_of(&nameid), Err(ResponseError::CommentOrInstruction));
    let prolog = format!("<!-- hello -->{}", response(true, true));
    assert_eq!(shape_of(&prolog), Err(ResponseError::CommentOrInstruction));
    let instruction = response(true, true).replace("<samlp:Status>", "<?x y?><samlp:Status>");
    assert_eq!(shape_of(&instruction), Err(ResponseError::CommentOrInstruction));
}

#[test]
fn assertions_must_be_exactly_one_and_a_child_of_the_response() {
    let two = response_with(true, &format!("{}{}", assertion("_a0", false), assertion("_a1", true)));
    assert_eq!(shape_of(&two), Err(ResponseError::AssertionCount(2)));
    assert_eq!(shape_of(&response_with(true, "")), Err(ResponseError::AssertionCount(0)));
    let foreign = response_with(true, r#"<x:Assertion xmlns:x="urn:example" ID="_x"/>"#);
    assert_eq!(shape_of(&foreign), Err(ResponseError::AssertionCount(0)));
    let nested_in_foreign =
        response_with(true, &format!(r#"<x:Wrap xmlns:x="urn:example">{}</x:Wrap>"#, assertion("_a1", true)));
    assert_eq!(shape_of(&nested_in_foreign), Err(ResponseError::AssertionMisplaced));
    let under_extensions =
        response_with(false, &format!("<samlp:Extensions>{}</samlp:Extensions>", assertion("_a1", true)));
    assert_eq!(shape_of(&under_extensions), Err(ResponseError::AssertionMisplaced));
}

#[test]
fn duplicate_ids_are_refused() {
    let twin = response(true, true)
        .replace("<samlp:Status>", r#"<samlp:Extensions><x ID="_a1"/></samlp:Extensions><samlp:Status>"#);
    assert_eq!(shape_of(&twin), Err(ResponseError::DuplicateId("_a1".into())));
}

#[test]
fn encrypted_content_is_refused() {
    let encrypted = response_with(true, r#"<saml:EncryptedAssertion><x/></saml:EncryptedAssertion>"#);
    assert_eq!(shape_of(&encrypted), Err(ResponseError::Encrypted));
}

#[test]
fn signatures_belong_only_to_the_response_and_the_assertion() {
    let in_subject =
        response(true, false).replace("<saml:Subject>", &format!("<saml:Subject>{}", signature("_a1")));
    assert_eq!(shape_of(&in_subject), Err(ResponseError::SignatureMisplaced));
    let twice =
        response(true, true).replace("<samlp:Status>", &format!("{}<samlp:Status>", signature("_r1")));
    assert_eq!(shape_of(&twice), Err(ResponseError::SignatureMisplaced));
    let foreign = response(true, false)
        .replace("<samlp:Status>", r#"<x:Signature xmlns:x="urn:example"/><samlp:Status>"#);
    assert_eq!(shape_of(&foreign), Err(ResponseError::SignatureMisplaced));
}

#[test]
fn a_signature_must_reference_its_own_element_once() {
    let elsewhere = response(false, true).replace("URI=\"#_a1\"", "URI=\"#_r1\"");
    assert_eq!(shape_of(&elsewhere).map_err(|e| e.code()), Err("signature-reference"));
    let whole_document = response(false, true).replace("URI=\"#_a1\"", "URI=\"\"");
    assert_eq!(shape_of(&whole_document).map_err(|e| e.code()), Err("signature-reference"));
    let no_id = response(false, true).replace("<saml:Assertion ID=\"_a1\"", "<saml:Assertion");
    assert_eq!(shape_of(&no_id).map_err(|e| e.code()), Err("signature-reference"));
    let reference = r##"<ds:Reference URI="#_a1"><ds:DigestMethod Algorithm="http://www.w3.org/2001/04/xmlenc#sha256"/><ds:DigestValue>AAAA</ds:DigestValue></ds:Reference>"##;
    let two_references =
        response(false, true).replace("</ds:SignedInfo>", &format!("{reference}</ds:SignedInfo>"));
    assert_eq!(shape_of(&two_references).map_err(|e| e.code()), Err("signature-reference"));
    let object = response(false, true).replace("</ds:Signature>", "<ds:Object>x</ds:Object></ds:Signature>");
    assert_eq!(shape_of(&object).map_err(|e| e.code()), Err("signature-reference"));
}

#[test]
fn weak_or_dangerous_algorithms_are_refused() {
    let refused = |from: &str, to: &str| {
        let xml = response(true, true).replacen(
            &format!("Algorithm=\"{from}\""),
            &format!("Algorithm=\"{to}\""),
            1,
        );
        assert_ne!(xml, response(true, true), "{from} not found");
        assert_eq!(shape_of(&xml), Err(ResponseError::AlgorithmRefused(to.into())), "{to}");
    };
    refused(RSA_SHA256, "http://www.w3.org/2000/09/xmldsig#rsa-sha1");
    refused("http://www.w3.org/2001/04/xmlenc#sha256", "http://www.w3.org/2000/09/xmldsig#sha1");
    // The first exclusive canonicalization is SignedInfo's.
    refused("http://www.w3.org/2001/10/xml-exc-c14n#", "http://www.w3.org/2001/10/xml-exc-c14n#WithComments");
    refused(
        "http://www.w3.org/2000/09/xmldsig#enveloped-signature",
        "http://www.w3.org/TR/1999/REC-xslt-19991116",
    );
    refused(
        "http://www.w3.org/2000/09/xmldsig#enveloped-signature",
        "http://www.w3.org/TR/1999/REC-xpath-19991116",
    );
    for strong in ["rsa-sha384", "rsa-sha512", "ecdsa-sha256"] {
        let xml = response(true, false)
            .replace(RSA_SHA256, &format!("http://www.w3.org/2001/04/xmldsig-more#{strong}"));
        assert!(shape_of(&xml).is_ok(), "{strong}");
    }
}
