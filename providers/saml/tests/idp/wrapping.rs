//! Signature wrapping: a genuinely signed response from the IdP, rearranged so that a
//! verifier and a reader could look at different assertions. Each must be refused.
//!
//! Most use the `assertion-signed` entry, whose Response envelope is not signed, so that
//! moving things around it leaves the one signature valid: the attack as it is really made.

use super::*;

/// The signed assertion of `xml`.
fn signed_assertion(xml: &str) -> String {
    element(xml, "<saml:Assertion ", "</saml:Assertion>").to_owned()
}

/// An unsigned copy of `assertion` for `bob@corp.example.com` with the ID `id`.
fn forged_from(assertion: &str, victim: &str, id: &str) -> String {
    let original_id = element(assertion, "ID=\"", "\" ").to_owned();
    without_signatures(assertion)
        .replace(&original_id, &format!("ID=\"{id}\" "))
        .replace(&format!(">{victim}<"), ">bob@corp.example.com<")
}

async fn alice_assertion_signed(idp: &Idp) -> (Saml, Started, Posted, String) {
    let saml = build(&config(idp), "assertion-signed");
    let (started, posted) = login(&saml, "alice@corp.example.com").await;
    let assertion = signed_assertion(&posted.xml());
    // The untouched response is accepted: the refusals below are the rearrangement's.
    finish(&saml, &started, &posted).await.expect("the genuine response");
    (saml, started, posted, assertion)
}

#[tokio::test]
async fn a_second_unsigned_assertion_before_the_signed_one_is_refused() {
    let idp = require_idp!();
    let (saml, started, posted, assertion) = alice_assertion_signed(&idp).await;
    let forged = forged_from(&assertion, "alice@corp.example.com", "_forged");
    let wrapped = posted.edited(|xml| xml.replace(&assertion, &format!("{forged}{assertion}")));
    refused(finish(&saml, &started, &wrapped).await, "assertion-count");
    let after = posted.edited(|xml| xml.replace(&assertion, &format!("{assertion}{forged}")));
    refused(finish(&saml, &started, &after).await, "assertion-count");
}

#[tokio::test]
async fn an_unsigned_assertion_inside_the_signed_one_is_refused() {
    let idp = require_idp!();
    let (saml, started, posted, assertion) = alice_assertion_signed(&idp).await;
    let forged = forged_from(&assertion, "alice@corp.example.com", "_forged");
    // Inside the Signature element, which the enveloped-signature transform leaves out of
    // the digest: the signature over the assertion still verifies.
    let inside = posted.edited(|xml| {
        xml.replacen(
            "</ds:KeyInfo></ds:Signature>",
            &format!("</ds:KeyInfo><ds:Object>{forged}</ds:Object></ds:Signature>"),
            1,
        )
    });
    assert!(inside.xml().contains("<ds:Object>"));
    refused(finish(&saml, &started, &inside).await, "assertion-count");
    // Inside the signed assertion's own content.
    let nested = posted.edited(|xml| xml.replacen("</saml:Subject>", &format!("</saml:Subject>{forged}"), 1));
    refused(finish(&saml, &started, &nested).await, "assertion-count");
}

#[tokio::test]
async fn the_signed_assertion_moved_under_extensions_is_refused() {
    let idp = require_idp!();
    let (saml, started, posted, assertion) = alice_assertion_signed(&idp).await;
    let forged = forged_from(&assertion, "alice@corp.example.com", "_forged");
    let moved = |with_forged: bool| {
        posted.edited(|xml| {
            let extensions = format!("<samlp:Extensions>{assertion}</samlp:Extensions>");
            let xml = xml.replace(&assertion, if with_forged { &forged } else { "" });
            let issuer = element(&xml, "<saml:Issuer>", "</saml:Issuer>").to_owned();
            xml.replacen(&issuer, &format!("{issuer}{extensions}"), 1)
        })
    };
    refused(finish(&saml, &started, &moved(true)).await, "assertion-count");
    refused(finish(&saml, &started, &moved(false)).await, "assertion-misplaced");
}

#[tokio::test]
async fn a_forged_assertion_sharing_the_signed_id_is_refused() {
    let idp = require_idp!();
    let (saml, started, posted, assertion) = alice_assertion_signed(&idp).await;
    let id =
        element(&assertion, "ID=\"", "\" ").trim_start_matches("ID=\"").trim_end_matches("\" ").to_owned();
    let forged = forged_from(&assertion, "alice@corp.example.com", &id);
    // The genuine one tucked into the forged one's place for a signature reference.
    let wrapped = posted.edited(|xml| {
        let forged_with_original =
            forged.replacen("</saml:Issuer>", &format!("</saml:Issuer>{assertion}"), 1);
        xml.replace(&assertion, &forged_with_original)
    });
    refused(finish(&saml, &started, &wrapped).await, "duplicate-id");
}

/// With the Response signed, a forged Response around the genuine one (in its Extensions)
/// carries a forged assertion at the expected place; refused.
#[tokio::test]
async fn a_signed_response_wrapped_in_a_forged_one_is_refused() {
    let idp = require_idp!();
    let saml = build(&config_for(&idp, "response-signed"), "response-signed");
    let (started, posted) = login(&saml, "alice@corp.example.com").await;
    let xml = posted.xml();
    let genuine = element(&xml, "<samlp:Response ", "</samlp:Response>").to_owned();
    let assertion = signed_assertion(&genuine);
    let forged_assertion = forged_from(&assertion, "alice@corp.example.com", "_forged");
    let envelope = without_signatures(&genuine)
        .replacen("ID=\"_", "ID=\"_outer", 1)
        .replace(&assertion, &forged_assertion);
    let issuer = element(&envelope, "<saml:Issuer>", "</saml:Issuer>").to_owned();
    let forged_response =
        envelope.replacen(&issuer, &format!("{issuer}<samlp:Extensions>{genuine}</samlp:Extensions>"), 1);
    let wrapped = posted.edited(|_| forged_response);
    refused(finish(&saml, &started, &wrapped).await, "assertion-count");
}

#[tokio::test]
async fn a_signature_referencing_another_element_is_refused() {
    let idp = require_idp!();
    let (saml, started, posted, assertion) = alice_assertion_signed(&idp).await;
    let id =
        element(&assertion, "ID=\"", "\" ").trim_start_matches("ID=\"").trim_end_matches("\" ").to_owned();
    let elsewhere = posted.edited(|xml| xml.replace(&format!("URI=\"#{id}\""), "URI=\"\""));
    refused(finish(&saml, &started, &elsewhere).await, "signature-reference");
}
