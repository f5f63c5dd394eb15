//! Responses from the real IdP that must be refused: unsigned, altered, meant for someone
//! else, out of time, for a request never made, oversized, or signed with SHA-1.

use super::*;

#[tokio::test]
async fn an_unsigned_response_and_assertion_are_refused() {
    let idp = require_idp!();
    let saml = build(&config(&idp), "unsigned");
    let (started, posted) = login(&saml, "alice@corp.example.com").await;
    assert!(!posted.xml().contains("<ds:Signature "), "the IdP was asked to sign nothing");
    refused(finish(&saml, &started, &posted).await, "unsigned");
}

#[tokio::test]
async fn a_response_stripped_of_its_signatures_is_refused() {
    let idp = require_idp!();
    let saml = build(&config(&idp), "test");
    let (started, posted) = login(&saml, "alice@corp.example.com").await;
    let stripped = posted.edited(|xml| without_signatures(&xml));
    refused(finish(&saml, &started, &stripped).await, "unsigned");
}

#[tokio::test]
async fn an_altered_assertion_in_a_signed_response_is_refused() {
    let idp = require_idp!();
    for variant in ["test", "response-signed", "assertion-signed"] {
        let saml = build(&config_for(&idp, variant), variant);
        let (started, posted) = login(&saml, "bob@corp.example.com").await;
        let altered = posted.edited(|xml| {
            let name_id = element(&xml, "<saml:NameID", "</saml:NameID>").to_owned();
            xml.replace(&name_id, &name_id.replace("bob@", "alice@"))
        });
        refused(finish(&saml, &started, &altered).await, "signature-invalid");
        let more_groups = posted.edited(|xml| {
            xml.replace(
                ">power-users<",
                ">power-users</saml:AttributeValue><saml:AttributeValue xsi:type=\"xs:string\">admins<",
            )
        });
        assert_ne!(more_groups.xml(), posted.xml());
        refused(finish(&saml, &started, &more_groups).await, "signature-invalid");
    }
}

#[tokio::test]
async fn an_altered_signed_response_envelope_is_refused() {
    let idp = require_idp!();
    let saml = build(&config_for(&idp, "response-signed"), "response-signed");
    let (started, posted) = login(&saml, "alice@corp.example.com").await;
    let altered = posted.edited(|xml| xml.replacen("IssueInstant=\"", "IssueInstant=\"1", 1));
    refused(finish(&saml, &started, &altered).await, "signature-invalid");
}

/// Comments are dropped by exclusive canonicalization, so the signature still verifies
/// after one is slipped into the NameID; a reader that took only the first text node would
/// see `alice@corp.example.com`. deskgate refuses the document instead.
#[tokio::test]
async fn a_comment_in_the_name_id_cannot_make_mallory_alice() {
    let idp = require_idp!();
    let saml = build(&config(&idp), "test");
    let (started, posted) = login(&saml, "mallory@evil.example").await;
    let trick = posted.edited(|xml| {
        let original = ">alice@corp.example.com.evil.example</saml:NameID>";
        assert!(xml.contains(original), "mallory's NameID: {xml}");
        xml.replace(original, ">alice@corp.example.com<!---->.evil.example</saml:NameID>")
    });
    refused(finish(&saml, &started, &trick).await, "comment");

    // Untouched, the same response is mallory, whole.
    let identity = finish(&saml, &started, &posted).await.expect("mallory signs in");
    assert_eq!(identity.subject, "alice@corp.example.com.evil.example");
    assert_eq!(identity.email.as_deref(), Some("alice@corp.example.com.evil.example"));
}

#[tokio::test]
async fn a_response_for_another_audience_is_refused() {
    let idp = require_idp!();
    let saml = build(&config(&idp), "test");
    let (started, posted) = login(&saml, "alice@corp.example.com").await;
    let other = build(
        &SamlConfig {
            entity_id: Some("http://127.0.0.1:9/.deskgate/saml/other/metadata".into()),
            ..config(&idp)
        },
        "test",
    );
    let error = refused(finish(&other, &started, &posted).await, "audience");
    assert!(format!("{error:?}").contains(".deskgate/saml/test/metadata"), "{error:?}");
}

/// The IdP answers the ACS registered for the SP whatever the request asked for; a
/// response to another ACS is refused on its Destination, and (when only the assertion is
/// signed and the envelope's Destination is rewritten) on its Recipient.
#[tokio::test]
async fn a_response_for_another_recipient_is_refused() {
    let idp = require_idp!();
    let elsewhere = "http://127.0.0.2:9/.deskgate/saml/test/acs";

    let saml = build(&config(&idp), "test");
    let (started, posted) = login_with_callback(&saml, elsewhere, "alice@corp.example.com").await;
    assert_eq!(posted.action, saml.acs_url(), "the IdP used its registered ACS");
    let result = saml.finish(&started.pending, elsewhere, &posted.callback()).await;
    refused(result, "destination");
    let result = saml.finish(&started.pending, saml.acs_url(), &posted.callback()).await;
    refused(result, "wrong-callback");

    let saml = build(&config(&idp), "assertion-signed");
    let elsewhere = "http://127.0.0.2:9/.deskgate/saml/assertion-signed/acs";
    let (started, posted) = login_with_callback(&saml, elsewhere, "alice@corp.example.com").await;
    let redirected = posted.edited(|xml| xml.replacen(saml.acs_url(), elsewhere, 1));
    assert!(redirected.xml().contains(&format!("Destination=\"{elsewhere}\"")));
    let error = refused(saml.finish(&started.pending, elsewhere, &redirected.callback()).await, "recipient");
    assert!(format!("{error:?}").contains(saml.acs_url()), "{error:?}");
}

#[tokio::test]
async fn an_expired_or_early_assertion_is_refused_beyond_the_skew() {
    let idp = require_idp!();
    let saml = build(&config(&idp), "test");
    let (started, posted) = login(&saml, "alice@corp.example.com").await;

    // SimpleSAMLphp's assertions are valid for 5 minutes; the default skew is 2 minutes.
    let late = build_with_clock(&config(&idp), "test", shifted(6 * 60));
    finish(&late, &started, &posted).await.expect("within the skew");
    let later = build_with_clock(&config(&idp), "test", shifted(8 * 60));
    refused(finish(&later, &started, &posted).await, "expired");
    let next_day = build_with_clock(&config(&idp), "test", shifted(24 * 3600));
    refused(finish(&next_day, &started, &posted).await, "expired");

    // Its NotBefore is 30 s before issue.
    let early = build_with_clock(&config(&idp), "test", shifted(-10 * 60));
    refused(finish(&early, &started, &posted).await, "not-yet-valid");
    let tight =
        build_with_clock(&SamlConfig { clock_skew: Some("0s".into()), ..config(&idp) }, "test", shifted(-60));
    refused(finish(&tight, &started, &posted).await, "not-yet-valid");
}

#[tokio::test]
async fn a_response_to_a_request_never_issued_is_refused() {
    let idp = require_idp!();
    let saml = build(&config(&idp), "test");
    let (_, posted) = login(&saml, "alice@corp.example.com").await;
    let other = saml.begin(saml.acs_url()).await.expect("another request");
    let error = refused(finish(&saml, &other, &posted).await, "in-response-to");
    assert!(matches!(
        error,
        SamlError::Response(deskgate_saml::ResponseError::InResponseTo { found: Some(_), expected: Some(_) })
    ));

    // Pending state the provider did not write is refused before anything else.
    let forged = Started { pending: "{\"id\":\"x\"}".into(), ..other };
    refused(finish(&saml, &forged, &posted).await, "pending-unreadable");
}

#[tokio::test]
async fn a_five_megabyte_response_is_refused_before_decoding() {
    let idp = require_idp!();
    let saml = build(&config(&idp), "test");
    let started = saml.begin(saml.acs_url()).await.expect("begin");
    let huge =
        Posted { action: String::new(), saml_response: "A".repeat(5 * 1024 * 1024), relay_state: None };
    let error = refused(finish(&saml, &started, &huge).await, "too-large");
    assert!(matches!(
        error,
        SamlError::Response(deskgate_saml::ResponseError::TooLarge { limit: 262_144, .. })
    ));
    let via_trait = saml.complete(&started.pending, saml.acs_url(), &huge.callback()).await;
    assert_eq!(via_trait.map(|_| ()).map_err(|e| e.code()), Err("protocol"));
}

#[tokio::test]
async fn a_response_signed_with_sha1_is_refused() {
    let idp = require_idp!();
    let saml = build(&config(&idp), "sha1");
    let (started, posted) = login(&saml, "alice@corp.example.com").await;
    assert!(posted.xml().contains("xmldsig#rsa-sha1"));
    let error = refused(finish(&saml, &started, &posted).await, "algorithm");
    assert!(format!("{error:?}").contains("rsa-sha1"), "{error:?}");
}

#[tokio::test]
async fn missing_or_repeated_response_fields_are_refused() {
    let idp = require_idp!();
    let saml = build(&config(&idp), "test");
    let (started, posted) = login(&saml, "alice@corp.example.com").await;
    let none = Callback { params: vec![("RelayState".into(), started.key.clone())] };
    let result = saml.finish(&started.pending, saml.acs_url(), &none).await;
    refused(result, "response-field");
    let mut twice = posted.callback();
    twice.params.push(("SAMLResponse".into(), posted.saml_response.clone()));
    refused(saml.finish(&started.pending, saml.acs_url(), &twice).await, "response-field");
}
