//! Sign-ins the provider accepts, and what the identity carries.

use super::*;

#[tokio::test]
async fn alice_signs_in_with_email_display_name_and_groups() {
    let idp = require_idp!();
    let saml = build(&config(&idp), "test");
    let (started, posted) = login(&saml, "alice@corp.example.com").await;

    assert_eq!(posted.relay_state.as_deref(), Some(started.key.as_str()), "RelayState comes back unchanged");
    assert_eq!(posted.action, saml.acs_url());
    assert!(!started.location.contains(&started.pending), "the pending state never travels");

    let identity =
        saml.complete(&started.pending, saml.acs_url(), &posted.callback()).await.expect("signed in");
    assert_eq!(identity.provider, "saml.test");
    assert_eq!(identity.subject, "alice@corp.example.com");
    assert_eq!(identity.email.as_deref(), Some("alice@corp.example.com"));
    assert!(identity.email_verified);
    assert_eq!(identity.display_name.as_deref(), Some("Alice Liddell"));
    assert_eq!(identity.groups, ["helpdesk-agents", "vips"]);
    assert_eq!(identity.attributes["memberOf"], ["helpdesk-agents", "vips"]);
    assert_eq!(identity.attributes[deskgate_saml::ISSUER], [idp.metadata_url.as_str()]);
    assert!(identity.attributes.contains_key(deskgate_saml::SESSION_INDEX));
    assert_eq!(saml.group_rules()[0].usergroups, ["agents"]);
}

#[tokio::test]
async fn bob_gets_his_own_groups() {
    let idp = require_idp!();
    let saml = build(&config(&idp), "test");
    let (started, posted) = login(&saml, "bob@corp.example.com").await;
    let identity = finish(&saml, &started, &posted).await.expect("signed in");
    assert_eq!(identity.subject, "bob@corp.example.com");
    assert_eq!(identity.groups, ["power-users"]);
}

/// The replay cache is the gateway's; the crate's part is to name the assertion and say how
/// long to remember it. The same response twice yields the same id.
#[tokio::test]
async fn the_assertion_id_and_expiry_are_given_for_the_replay_cache() {
    let idp = require_idp!();
    let saml = build(&config(&idp), "test");
    let (started, posted) = login(&saml, "alice@corp.example.com").await;
    let first = finish(&saml, &started, &posted).await.expect("first");
    let second = finish(&saml, &started, &posted).await.expect("second");

    let (id, until) = deskgate_saml::assertion_id_and_expiry(&first).expect("id and expiry");
    assert_eq!(deskgate_saml::assertion_id_and_expiry(&second).map(|(id, _)| id), Some(id.clone()));
    assert!(posted.xml().contains(&format!("ID=\"{id}\"")), "the id is the assertion's own");
    // SimpleSAMLphp's assertions live 5 minutes; the default skew adds 2.
    let remaining = until.duration_since(SystemTime::now()).expect("in the future");
    assert!(
        remaining > Duration::from_secs(5 * 60) && remaining <= Duration::from_secs(7 * 60),
        "{remaining:?}"
    );
}

/// The SP metadata says `WantAssertionsSigned="true"` by default, and that is what is
/// enforced: a Response signed around an unsigned Assertion is refused (it used to be
/// accepted while the metadata said otherwise). With `want_assertions_signed = false` both
/// agree the other way.
#[tokio::test]
async fn a_response_signed_around_an_unsigned_assertion_is_refused_while_the_metadata_wants_assertions_signed()
 {
    let idp = require_idp!();
    let strict = build(&config(&idp), "response-signed");
    assert!(strict.sp_metadata().contains("WantAssertionsSigned=\"true\""), "{}", strict.sp_metadata());
    let (started, posted) = login(&strict, "alice@corp.example.com").await;
    refused(finish(&strict, &started, &posted).await, "assertion-unsigned");
    let lenient = build(&config_for(&idp, "response-signed"), "response-signed");
    assert!(lenient.sp_metadata().contains("WantAssertionsSigned=\"false\""), "{}", lenient.sp_metadata());
}

#[tokio::test]
async fn a_signed_response_with_an_unsigned_assertion_is_accepted() {
    let idp = require_idp!();
    let saml = build(&config_for(&idp, "response-signed"), "response-signed");
    let (started, posted) = login(&saml, "alice@corp.example.com").await;
    assert_eq!(posted.xml().matches("<ds:Signature ").count(), 1);
    let identity = finish(&saml, &started, &posted).await.expect("signed in");
    assert_eq!(identity.subject, "alice@corp.example.com");
}

#[tokio::test]
async fn a_signed_assertion_in_an_unsigned_response_is_accepted() {
    let idp = require_idp!();
    let saml = build(&config(&idp), "assertion-signed");
    let (started, posted) = login(&saml, "bob@corp.example.com").await;
    assert_eq!(posted.xml().matches("<ds:Signature ").count(), 1);
    let identity = finish(&saml, &started, &posted).await.expect("signed in");
    assert_eq!(identity.groups, ["power-users"]);
}

/// The IdP's `signed-requests` entry refuses AuthnRequests without a valid signature by
/// the SP certificate it was given, so a login there proves the redirect signature.
#[tokio::test]
async fn authn_requests_signed_with_the_sp_key_are_accepted_by_the_idp() {
    let idp = require_idp!();
    let (Some(key), Some(cert)) =
        (peer_file("DESKGATE_TEST_SAML_SP_KEY", "sp.key"), peer_file("DESKGATE_TEST_SAML_SP_CERT", "sp.crt"))
    else {
        return;
    };
    let signing = build(
        &SamlConfig { sp_key_file: Some(key), sp_cert_file: Some(cert), ..config(&idp) },
        "signed-requests",
    );
    let (started, posted) = login(&signing, "alice@corp.example.com").await;
    assert!(started.location.contains("Signature="));
    finish(&signing, &started, &posted).await.expect("signed in");

    let unsigned = build(&config(&idp), "signed-requests");
    let started = unsigned.begin(unsigned.acs_url()).await.expect("begin");
    let page = login_at(&started.location, "alice@corp.example.com").await;
    assert!(page.is_err(), "the IdP must refuse an unsigned request to this SP");
}

#[tokio::test]
async fn idp_initiated_sign_in_needs_allow_idp_initiated() {
    let idp = require_idp!();
    let saml = build(&config(&idp), "test");
    let location = format!("{}/saml2/idp/SSOService.php?spentityid={}", idp.base, saml.entity_id());
    let posted = login_at(&location, "alice@corp.example.com").await.expect("login");

    let error = saml.complete_unsolicited(saml.acs_url(), &posted.callback()).await.expect_err("refused");
    assert!(matches!(error, SamlError::UnsolicitedRefused));

    let allowing = build(&SamlConfig { allow_idp_initiated: true, ..config(&idp) }, "test");
    let identity =
        allowing.complete_unsolicited(allowing.acs_url(), &posted.callback()).await.expect("signed in");
    assert_eq!(identity.subject, "alice@corp.example.com");
    let elsewhere = allowing.complete_unsolicited("http://127.0.0.2:9/acs", &posted.callback()).await;
    assert_eq!(elsewhere.map(|_| ()).map_err(|e| e.code()), Err("wrong-callback"));

    // A solicited response is not an unsolicited one: it names a request.
    let (_, solicited) = login(&allowing, "alice@corp.example.com").await;
    let error =
        allowing.complete_unsolicited(allowing.acs_url(), &solicited.callback()).await.expect_err("refused");
    assert_eq!(error.code(), "in-response-to");
}

/// The SP metadata is read by SimpleSAMLphp's own parser and validated against the SAML
/// metadata schema it ships.
#[tokio::test]
async fn sp_metadata_is_valid_saml_metadata() {
    let idp = require_idp!();
    let (Some(key), Some(cert)) =
        (peer_file("DESKGATE_TEST_SAML_SP_KEY", "sp.key"), peer_file("DESKGATE_TEST_SAML_SP_CERT", "sp.crt"))
    else {
        return;
    };
    let saml = build(
        &SamlConfig { sp_key_file: Some(key), sp_cert_file: Some(cert.clone()), ..config(&idp) },
        "test",
    );
    let xml = saml.sp_metadata();

    let script = r#"
        require '/usr/share/simplesamlphp/lib/_autoload.php';
        $xml = stream_get_contents(STDIN);
        $document = \SAML2\DOMDocumentFactory::fromString($xml);
        $valid = $document->schemaValidate('/usr/share/simplesamlphp/schemas/saml-schema-metadata-2.0.xsd');
        $entity = \SimpleSAML\Metadata\SAMLParser::parseDescriptorsString($xml);
        $sp = reset($entity)->getMetadata20SP();
        echo json_encode(['valid' => $valid, 'entityid' => $sp['entityid'],
            'acs' => $sp['AssertionConsumerService'], 'keys' => $sp['keys'] ?? [],
            'nameid' => $sp['NameIDFormat'] ?? null]);
    "#;
    let mut php = tokio::process::Command::new("php")
        .args(["-d", "error_reporting=E_ALL & ~E_DEPRECATED", "-r", script])
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .spawn()
        .expect("php (installed with the IdP)");
    {
        use tokio::io::AsyncWriteExt;
        let mut stdin = php.stdin.take().expect("stdin");
        stdin.write_all(xml.as_bytes()).await.expect("write");
    }
    let output = php.wait_with_output().await.expect("php output");
    let text = String::from_utf8_lossy(&output.stdout);
    let parsed: serde_json::Value =
        serde_json::from_str(&text).unwrap_or_else(|_| panic!("php said: {text}"));

    assert_eq!(parsed["valid"], true, "schema validation of {xml}");
    assert_eq!(parsed["entityid"], saml.entity_id());
    assert_eq!(parsed["entityid"], "http://127.0.0.1:9/.deskgate/saml/test/metadata");
    assert_eq!(parsed["acs"][0]["Location"], saml.acs_url());
    assert_eq!(parsed["acs"][0]["Binding"], "urn:oasis:names:tc:SAML:2.0:bindings:HTTP-POST");
    assert_eq!(parsed["nameid"], "urn:oasis:names:tc:SAML:1.1:nameid-format:emailAddress");
    let pem = std::fs::read_to_string(cert).expect("cert");
    let body: String = pem.lines().filter(|l| !l.starts_with("-----")).collect();
    assert_eq!(parsed["keys"][0]["X509Certificate"], body);
    assert_eq!(parsed["keys"][0]["signing"], true);
}
