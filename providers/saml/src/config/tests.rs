use std::path::PathBuf;
use std::sync::atomic::{AtomicUsize, Ordering};

use super::*;
use crate::error::MetadataError;
use crate::metadata::tests::{certificate_b64, metadata_xml};

const PUBLIC: &str = "https://gate.example.com";

fn from_toml(text: &str) -> SamlConfig {
    toml_edit::de::from_str(text).expect("deserializes")
}

/// A file under the temp dir, unique to this test process and call.
fn temp_file(name: &str, contents: &[u8]) -> PathBuf {
    static COUNTER: AtomicUsize = AtomicUsize::new(0);
    let n = COUNTER.fetch_add(1, Ordering::Relaxed);
    let path = std::env::temp_dir().join(format!("deskgate-saml-{}-{n}-{name}", std::process::id()));
    std::fs::write(&path, contents).expect("write temp file");
    remove_when_the_test_ends(&path);
    path
}

/// Removes `path` when the test's thread ends (each test runs on a thread of its own).
fn remove_when_the_test_ends(path: &std::path::Path) {
    struct Doomed(Vec<PathBuf>);
    impl Drop for Doomed {
        fn drop(&mut self) {
            for p in &self.0 {
                let _ = std::fs::remove_file(p);
            }
        }
    }
    thread_local! {
        static DOOMED: std::cell::RefCell<Doomed> = const { std::cell::RefCell::new(Doomed(Vec::new())) };
    }
    DOOMED.with(|d| d.borrow_mut().0.push(path.to_owned()));
}

fn problems(config: &SamlConfig) -> Vec<Problem> {
    match config.build("corp", PUBLIC) {
        Ok(_) => Vec::new(),
        Err(problems) => problems,
    }
}

fn paths(problems: &[Problem]) -> Vec<&str> {
    problems.iter().map(|p| p.path.as_str()).collect()
}

/// An RSA key and its self-signed certificate, both PEM.
fn key_and_cert() -> (Vec<u8>, Vec<u8>) {
    use openssl::asn1::Asn1Time;
    use openssl::hash::MessageDigest;
    use openssl::rsa::Rsa;
    use openssl::x509::{X509, X509NameBuilder};

    let key = PKey::from_rsa(Rsa::generate(2048).expect("rsa")).expect("key");
    let mut name = X509NameBuilder::new().expect("name");
    name.append_entry_by_text("CN", "gate.example.com").expect("cn");
    let name = name.build();
    let mut builder = X509::builder().expect("builder");
    builder.set_subject_name(&name).expect("subject");
    builder.set_issuer_name(&name).expect("issuer");
    builder.set_pubkey(&key).expect("pubkey");
    builder.set_not_before(&Asn1Time::days_from_now(0).expect("time")).expect("not before");
    builder.set_not_after(&Asn1Time::days_from_now(30).expect("time")).expect("not after");
    builder.sign(&key, MessageDigest::sha256()).expect("sign");
    (key.private_key_to_pem_pkcs8().expect("key pem"), builder.build().to_pem().expect("cert pem"))
}

#[test]
fn the_onelogin_preset_fills_in_its_defaults() {
    let config = from_toml(
        r#"
        preset = "onelogin"
        idp_metadata_url = "https://corp.onelogin.com/saml/metadata/4f7c2a"
        some_future_key = true

        [[groups]]
        group = "Helpdesk"
        usergroups = ["agents"]
        "#,
    );
    let saml = config.build("corp", "https://gate.example.com/").expect("builds");
    assert_eq!(saml.provider_id(), "saml.corp");
    assert_eq!(saml.entity_id(), "https://gate.example.com/.deskgate/saml/corp/metadata");
    assert_eq!(saml.acs_url(), "https://gate.example.com/.deskgate/saml/corp/acs");
    assert_eq!(saml.display_name(), "OneLogin");
    assert_eq!(saml.metadata_refresh(), Duration::from_secs(3600));
    assert_eq!(saml.group_rules()[0].group, "Helpdesk");
    assert!(!saml.allows_idp_initiated());
    let mapping = &saml.inner.settings.mapping;
    assert_eq!(mapping.email_attribute.as_deref(), Some("User.email"));
    assert_eq!(mapping.groups_attribute.as_deref(), Some("memberOf"));
    assert_eq!(saml.inner.settings.name_id_format.as_deref(), Some(EMAIL_FORMAT));
    assert_eq!(saml.inner.settings.skew, Duration::from_secs(120));
    assert_eq!(saml.inner.settings.max_response_bytes, 256 * 1024);
    assert!(saml.idp_metadata().is_none(), "a URL is read at the first refresh, not while building");

    let generic = from_toml(r#"idp_metadata_url = "https://idp.example.com/metadata""#)
        .build("x", PUBLIC)
        .expect("builds");
    assert_eq!(generic.display_name(), "SAML");
    assert_eq!(generic.inner.settings.mapping.email_attribute, None);
    assert_eq!(generic.inner.settings.name_id_format, None);
}

#[test]
fn onelogin_metadata_urls_must_have_onelogins_shape() {
    for bad in [
        "http://corp.onelogin.com/saml/metadata/1",
        "https://onelogin.com/saml/metadata/1",
        "https://corp.onelogin.com.evil.example/saml/metadata/1",
        "https://corp.onelogin.com/saml/metadata/",
        "https://corp.onelogin.com/other/1",
        "https://a.b.onelogin.com/saml/metadata/1",
    ] {
        let config = SamlConfig {
            preset: Some(Preset::Onelogin),
            idp_metadata_url: Some(bad.into()),
            ..SamlConfig::default()
        };
        assert_eq!(paths(&problems(&config)), ["idp_metadata_url"], "{bad}");
    }
}

#[test]
fn plain_http_metadata_is_only_for_loopback() {
    let with_url = |url: &str| SamlConfig { idp_metadata_url: Some(url.into()), ..SamlConfig::default() };
    assert!(problems(&with_url("http://127.0.0.1:19480/saml2/idp/metadata.php")).is_empty());
    assert!(problems(&with_url("http://localhost/metadata")).is_empty());
    assert_eq!(paths(&problems(&with_url("http://idp.example.com/metadata"))), ["idp_metadata_url"]);
    assert_eq!(paths(&problems(&with_url("ftp://idp.example.com/metadata"))), ["idp_metadata_url"]);
    assert_eq!(paths(&problems(&with_url("not a url"))), ["idp_metadata_url"]);
}

#[test]
fn every_problem_is_reported_at_once_with_its_key() {
    let (key, _) = key_and_cert();
    let config = SamlConfig {
        idp_metadata_file: Some("/nonexistent/idp.xml".into()),
        idp_metadata_url: Some("https://idp.example.com/metadata".into()),
        metadata_refresh: Some("soon".into()),
        clock_skew: Some("10m".into()),
        sp_key_file: Some(temp_file("key.pem", &key)),
        email_attribute: Some(" ".into()),
        groups: vec![GroupRule { group: String::new(), usergroups: Vec::new() }],
        max_response_bytes: Some(1),
        ..SamlConfig::default()
    };
    let found = problems(&config);
    assert_eq!(
        paths(&found),
        [
            "idp_metadata_file",
            "metadata_refresh",
            "clock_skew",
            "sp_cert_file",
            "email_attribute",
            "max_response_bytes",
            "groups[0].group",
            "groups[0].usergroups"
        ],
        "{found:?}"
    );
    let neither = problems(&SamlConfig::default());
    assert_eq!(paths(&neither), ["idp_metadata_url"]);
    let short_refresh = SamlConfig { metadata_refresh: Some("10s".into()), ..SamlConfig::default() };
    assert!(paths(&problems(&short_refresh)).contains(&"metadata_refresh"));
    let bad_public =
        SamlConfig { idp_metadata_url: Some("https://idp.example.com/m".into()), ..SamlConfig::default() };
    assert_eq!(paths(&bad_public.build("corp", "gate.example.com").err().unwrap_or_default()), ["entity_id"]);
    let spaced = SamlConfig { entity_id: Some("urn:has space".into()), ..bad_public };
    assert_eq!(paths(&problems(&spaced)), ["entity_id"]);
}

#[test]
fn a_metadata_file_without_a_signing_certificate_is_refused() {
    let xml =
        metadata_xml(&certificate_b64()).replace("<KeyDescriptor>", "<KeyDescriptor use=\"encryption\">");
    let config =
        SamlConfig { idp_metadata_file: Some(temp_file("idp.xml", xml.as_bytes())), ..SamlConfig::default() };
    let found = problems(&config);
    assert_eq!(paths(&found), ["idp_metadata_file"]);
    assert!(found[0].message.contains("no signing certificate"), "{found:?}");
}

#[tokio::test]
async fn a_metadata_file_is_read_at_build_and_again_on_refresh() {
    let first = certificate_b64();
    let path = temp_file("idp.xml", metadata_xml(&first).as_bytes());
    let saml = SamlConfig { idp_metadata_file: Some(path.clone()), ..SamlConfig::default() }
        .build("corp", PUBLIC)
        .expect("builds");
    let loaded = saml.idp_metadata().expect("read while building");
    assert_eq!(loaded.entity_id, "https://app.onelogin.com/saml/metadata/123");

    std::fs::write(&path, "<EntityDescriptor").expect("break it");
    assert!(matches!(saml.refresh().await, Err(MetadataError::Malformed(_))));
    assert_eq!(saml.idp_metadata(), Some(Arc::clone(&loaded)), "the last good metadata stays");
    std::fs::remove_file(&path).expect("remove it");
    assert!(matches!(saml.refresh().await, Err(MetadataError::Read { .. })));
    assert_eq!(saml.idp_metadata(), Some(Arc::clone(&loaded)));

    let rotated = certificate_b64();
    std::fs::write(&path, metadata_xml(&rotated)).expect("rotate");
    let fresh = saml.refresh().await.expect("rotated");
    assert_ne!(fresh.certificates, loaded.certificates);
    assert_eq!(saml.idp_metadata(), Some(fresh));
    std::fs::remove_file(&path).expect("clean up");
}

#[test]
fn the_sp_key_must_match_its_certificate_and_is_published() {
    let (key, cert) = key_and_cert();
    let (_, other_cert) = key_and_cert();
    let metadata_file = Some(temp_file("idp.xml", metadata_xml(&certificate_b64()).as_bytes()));
    let with = |key: &[u8], cert: &[u8]| SamlConfig {
        idp_metadata_file: metadata_file.clone(),
        sp_key_file: Some(temp_file("key.pem", key)),
        sp_cert_file: Some(temp_file("cert.pem", cert)),
        ..SamlConfig::default()
    };
    assert_eq!(paths(&problems(&with(&key, &other_cert))), ["sp_cert_file"]);
    assert_eq!(paths(&problems(&with(b"junk", &cert))), ["sp_key_file"]);
    assert_eq!(paths(&problems(&with(&key, b"junk"))), ["sp_cert_file"]);
    let group = openssl::ec::EcGroup::from_curve_name(openssl::nid::Nid::X9_62_PRIME256V1).expect("curve");
    let ec = PKey::from_ec_key(openssl::ec::EcKey::generate(&group).expect("ec")).expect("key");
    let ec_pem = ec.private_key_to_pem_pkcs8().expect("pem");
    assert_eq!(paths(&problems(&with(&ec_pem, &cert))), ["sp_key_file"]);

    let saml = with(&key, &cert).build("corp", PUBLIC).expect("builds");
    let metadata = saml.sp_metadata();
    let document = roxmltree::Document::parse(&metadata).expect("SP metadata is XML");
    let root = document.root_element();
    assert_eq!(root.attribute("entityID"), Some("https://gate.example.com/.deskgate/saml/corp/metadata"));
    let descriptor = root.children().find(|n| n.has_tag_name("SPSSODescriptor")).expect("SPSSODescriptor");
    assert_eq!(descriptor.attribute("AuthnRequestsSigned"), Some("true"));
    let acs = descriptor.children().find(|n| n.has_tag_name("AssertionConsumerService")).expect("ACS");
    assert_eq!(acs.attribute("Location"), Some("https://gate.example.com/.deskgate/saml/corp/acs"));
    assert_eq!(acs.attribute("Binding"), Some("urn:oasis:names:tc:SAML:2.0:bindings:HTTP-POST"));
    let published = document.descendants().find(|n| n.has_tag_name("X509Certificate")).and_then(|n| n.text());
    let pem = String::from_utf8(cert).expect("pem");
    let body: String = pem.lines().filter(|l| !l.starts_with("-----")).collect();
    assert_eq!(published, Some(body.as_str()));
}
