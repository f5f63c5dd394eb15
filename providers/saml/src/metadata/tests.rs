use super::*;

/// A self-signed certificate, base64 DER.
pub(crate) fn certificate_b64() -> String {
    use openssl::asn1::Asn1Time;
    use openssl::hash::MessageDigest;
    use openssl::pkey::PKey;
    use openssl::rsa::Rsa;
    use openssl::x509::{X509, X509NameBuilder};

    let key = PKey::from_rsa(Rsa::generate(2048).expect("rsa")).expect("key");
    let mut name = X509NameBuilder::new().expect("name");
    name.append_entry_by_text("CN", "idp.example.com").expect("cn");
    let name = name.build();
    let mut builder = X509::builder().expect("builder");
    builder.set_subject_name(&name).expect("subject");
    builder.set_issuer_name(&name).expect("issuer");
    builder.set_pubkey(&key).expect("pubkey");
    builder.set_not_before(&Asn1Time::days_from_now(0).expect("time")).expect("not before");
    builder.set_not_after(&Asn1Time::days_from_now(30).expect("time")).expect("not after");
    builder.sign(&key, MessageDigest::sha256()).expect("sign");
    STANDARD.encode(builder.build().to_der().expect("der"))
}

/// IdP metadata as OneLogin writes it (one signing certificate without `use`, line-wrapped).
pub(crate) fn metadata_xml(certificate: &str) -> String {
    let wrapped: Vec<String> =
        certificate.as_bytes().chunks(64).map(|c| String::from_utf8_lossy(c).into_owned()).collect();
    format!(
        r#"<?xml version="1.0" encoding="UTF-8"?>
<EntityDescriptor xmlns="urn:oasis:names:tc:SAML:2.0:metadata" entityID="https://app.onelogin.com/saml/metadata/123">
  <IDPSSODescriptor xmlns:ds="http://www.w3.org/2000/09/xmldsig#" protocolSupportEnumeration="urn:oasis:names:tc:SAML:2.0:protocol" WantAuthnRequestsSigned="false">
    <KeyDescriptor>
      <ds:KeyInfo><ds:X509Data><ds:X509Certificate>
{}
      </ds:X509Certificate></ds:X509Data></ds:KeyInfo>
    </KeyDescriptor>
    <SingleSignOnService Binding="urn:oasis:names:tc:SAML:2.0:bindings:HTTP-POST" Location="https://corp.onelogin.com/trust/saml2/http-post/sso/123"/>
    <SingleSignOnService Binding="urn:oasis:names:tc:SAML:2.0:bindings:HTTP-Redirect" Location="https://corp.onelogin.com/trust/saml2/http-redirect/sso/123"/>
    <NameIDFormat>urn:oasis:names:tc:SAML:1.1:nameid-format:emailAddress</NameIDFormat>
  </IDPSSODescriptor>
</EntityDescriptor>"#,
        wrapped.join("\n")
    )
}

#[test]
fn onelogin_style_metadata_reads() {
    let certificate = certificate_b64();
    let metadata = parse(&metadata_xml(&certificate), SystemTime::now()).expect("usable");
    assert_eq!(metadata.entity_id, "https://app.onelogin.com/saml/metadata/123");
    assert_eq!(metadata.sso_url, "https://corp.onelogin.com/trust/saml2/http-redirect/sso/123");
    assert_eq!(metadata.certificates.len(), 1);
    assert_eq!(STANDARD.encode(metadata.certificates[0].der_data()), certificate);
    assert!(!metadata.want_authn_requests_signed);
}

#[test]
fn metadata_without_a_signing_certificate_is_refused() {
    let certificate = certificate_b64();
    let encryption_only =
        metadata_xml(&certificate).replace("<KeyDescriptor>", "<KeyDescriptor use=\"encryption\">");
    assert!(matches!(parse(&encryption_only, SystemTime::now()), Err(MetadataError::NoSigningCertificate)));
    let xml = metadata_xml(&certificate);
    let (start, end) =
        (xml.find("<KeyDescriptor>").expect("start"), xml.find("</KeyDescriptor>").expect("end"));
    let none = format!("{}{}", &xml[..start], &xml[end + "</KeyDescriptor>".len()..]);
    assert!(matches!(parse(&none, SystemTime::now()), Err(MetadataError::NoSigningCertificate)));
    let junk = metadata_xml(&certificate).replace(&certificate[..64], "bm90IGEgY2VydGlmaWNhdGU=");
    assert!(matches!(parse(&junk, SystemTime::now()), Err(MetadataError::BadCertificate { index: 0, .. })));
}

#[test]
fn unusable_metadata_is_refused_with_its_reason() {
    let certificate = certificate_b64();
    let xml = metadata_xml(&certificate);
    let now = SystemTime::now();
    assert!(matches!(parse("<html/>", now), Err(MetadataError::NoIdentityProvider)));
    assert!(matches!(parse("<EntityDescriptor", now), Err(MetadataError::Malformed(_))));
    let no_redirect = xml.replace("bindings:HTTP-Redirect", "bindings:SOAP");
    assert!(matches!(parse(&no_redirect, now), Err(MetadataError::NoRedirectEndpoint)));
    let not_saml2 = xml.replace(
        "protocolSupportEnumeration=\"urn:oasis:names:tc:SAML:2.0:protocol\"",
        "protocolSupportEnumeration=\"urn:oasis:names:tc:SAML:1.1:protocol\"",
    );
    assert!(matches!(parse(&not_saml2, now), Err(MetadataError::NoIdentityProvider)));
    let expired = xml.replace("entityID=", "validUntil=\"2020-01-01T00:00:00Z\" entityID=");
    assert!(matches!(parse(&expired, now), Err(MetadataError::Expired(_))));
    let no_entity = xml.replace("entityID=\"https://app.onelogin.com/saml/metadata/123\"", "");
    assert!(matches!(parse(&no_entity, now), Err(MetadataError::NoEntityId)));
    let dtd = format!(
        "<!DOCTYPE x [<!ENTITY e 'x'>]>{}",
        xml.trim_start_matches("<?xml version=\"1.0\" encoding=\"UTF-8\"?>")
    );
    assert!(matches!(parse(&dtd, now), Err(MetadataError::Malformed(_))));
}

#[test]
fn an_aggregate_with_one_identity_provider_reads_and_rollovers_keep_both_keys() {
    let (first, second) = (certificate_b64(), certificate_b64());
    let both = metadata_xml(&first).replace(
        "</KeyDescriptor>",
        &format!("</KeyDescriptor><KeyDescriptor use=\"signing\"><ds:KeyInfo><ds:X509Data><ds:X509Certificate>{second}</ds:X509Certificate></ds:X509Data></ds:KeyInfo></KeyDescriptor>"),
    );
    let body = both.trim_start_matches("<?xml version=\"1.0\" encoding=\"UTF-8\"?>");
    let aggregate = format!(
        r#"<EntitiesDescriptor xmlns="urn:oasis:names:tc:SAML:2.0:metadata"><EntityDescriptor entityID="https://sp.example"/>{body}</EntitiesDescriptor>"#
    );
    let metadata = parse(&aggregate, SystemTime::now()).expect("usable");
    assert_eq!(metadata.certificates.len(), 2);
    let twice = format!(
        r#"<EntitiesDescriptor xmlns="urn:oasis:names:tc:SAML:2.0:metadata">{body}{body}</EntitiesDescriptor>"#
    );
    assert!(matches!(parse(&twice, SystemTime::now()), Err(MetadataError::NoIdentityProvider)));
}
