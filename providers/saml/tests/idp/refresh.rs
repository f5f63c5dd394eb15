//! Metadata refresh against a tiny local HTTP server that serves the real IdP's metadata,
//! then broken documents, then a rotated certificate: the last good metadata stays in force
//! through failures, and a new certificate takes effect without a restart.

use std::sync::Mutex;

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpListener;

use super::*;

/// What the server answers: a status and a body.
type Answer = Arc<Mutex<(u16, String)>>;

/// Serves `answer` at any path on 127.0.0.1; returns the base URL. The task ends with the
/// test's runtime.
async fn metadata_server(answer: Answer) -> String {
    let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let url = format!("http://{}/metadata", listener.local_addr().expect("address"));
    tokio::spawn(async move {
        while let Ok((mut stream, _)) = listener.accept().await {
            let answer = Arc::clone(&answer);
            tokio::spawn(async move {
                let mut request = Vec::new();
                let mut buffer = [0u8; 1024];
                while !request.windows(4).any(|w| w == b"\r\n\r\n") {
                    match stream.read(&mut buffer).await {
                        Ok(0) | Err(_) => return,
                        Ok(n) => request.extend_from_slice(&buffer[..n]),
                    }
                }
                let (status, body) = answer.lock().expect("answer").clone();
                let head = format!(
                    "HTTP/1.1 {status} X\r\nContent-Type: application/samlmetadata+xml\r\n\
                     Content-Length: {}\r\nConnection: close\r\n\r\n",
                    body.len()
                );
                let _ = stream.write_all(head.as_bytes()).await;
                let _ = stream.write_all(body.as_bytes()).await;
                let _ = stream.shutdown().await;
            });
        }
    });
    url
}

/// A self-signed certificate the IdP never signs with, base64 DER as metadata carries it.
fn unrelated_certificate() -> String {
    use openssl::asn1::Asn1Time;
    use openssl::hash::MessageDigest;
    use openssl::pkey::PKey;
    use openssl::rsa::Rsa;
    use openssl::x509::{X509, X509NameBuilder};

    let key = PKey::from_rsa(Rsa::generate(2048).expect("rsa")).expect("key");
    let mut name = X509NameBuilder::new().expect("name");
    name.append_entry_by_text("CN", "rotated deskgate test idp").expect("cn");
    let name = name.build();
    let mut builder = X509::builder().expect("builder");
    builder.set_version(2).expect("version");
    builder.set_subject_name(&name).expect("subject");
    builder.set_issuer_name(&name).expect("issuer");
    builder.set_pubkey(&key).expect("pubkey");
    builder.set_not_before(&Asn1Time::days_from_now(0).expect("time")).expect("not before");
    builder.set_not_after(&Asn1Time::days_from_now(365).expect("time")).expect("not after");
    builder.sign(&key, MessageDigest::sha256()).expect("sign");
    STANDARD.encode(builder.build().to_der().expect("der"))
}

/// The body of every `<ds:X509Certificate>` in `xml`.
fn certificates_in(xml: &str) -> Vec<String> {
    xml.split("<ds:X509Certificate>")
        .skip(1)
        .filter_map(|rest| rest.split("</ds:X509Certificate>").next())
        .map(str::to_owned)
        .collect()
}

async fn signs_in(saml: &Saml) -> Result<Identity, SamlError> {
    let (started, posted) = login(saml, "alice@corp.example.com").await;
    finish(saml, &started, &posted).await
}

#[tokio::test]
async fn a_failed_refresh_keeps_the_last_good_metadata_and_a_rotated_certificate_is_picked_up() {
    let idp = require_idp!();
    let real = client().get(&idp.metadata_url).send().await.expect("metadata").text().await.expect("body");
    let real_certificate = certificates_in(&real).first().cloned().expect("a certificate");
    let answer: Answer = Arc::new(Mutex::new((200, real.clone())));
    let url = metadata_server(Arc::clone(&answer)).await;
    let saml = build(&SamlConfig { idp_metadata_url: Some(url), ..config(&idp) }, "test");
    let set = |status: u16, body: &str| *answer.lock().expect("answer") = (status, body.to_owned());

    // Nothing is read before the first refresh (or the first sign-in).
    assert!(saml.idp_metadata().is_none());
    let first = saml.refresh().await.expect("good metadata");
    assert_eq!(first.entity_id, idp.metadata_url);
    signs_in(&saml).await.expect("signed in with the served metadata");

    // Broken in several ways: each refresh fails, the last good metadata stays.
    let no_signing_key = real.replace("use=\"signing\"", "use=\"encryption\"");
    for (status, body) in [
        (200, "<html>maintenance</html>"),
        (500, "oops"),
        (200, "<md:EntityDescriptor"),
        (200, no_signing_key.as_str()),
    ] {
        set(status, body);
        let error = saml.refresh().await.expect_err("a broken document");
        assert!(!error.to_string().is_empty());
        assert_eq!(saml.idp_metadata().as_deref(), Some(first.as_ref()), "kept after {status} {body:.30}");
        signs_in(&saml).await.expect("still signs in with the last good metadata");
    }

    // Rotated: the IdP's metadata now names a certificate it does not (yet) sign with.
    let rotated_certificate = unrelated_certificate();
    set(200, &real.replace(&real_certificate, &rotated_certificate));
    let rotated = saml.refresh().await.expect("rotated metadata");
    assert_ne!(rotated.certificates_der(), first.certificates_der());
    refused(signs_in(&saml).await, "signature-invalid");

    // A rollover publishes both: responses signed with either verify.
    let both = real.replacen(
        "</md:KeyDescriptor>",
        &format!(
            "</md:KeyDescriptor><md:KeyDescriptor use=\"signing\"><ds:KeyInfo><ds:X509Data>\
             <ds:X509Certificate>{rotated_certificate}</ds:X509Certificate></ds:X509Data></ds:KeyInfo></md:KeyDescriptor>"
        ),
        1,
    );
    set(200, &both);
    assert_eq!(saml.refresh().await.expect("rollover metadata").certificates_der().len(), 2);
    signs_in(&saml).await.expect("signed in during the rollover");
}

#[tokio::test]
async fn the_first_sign_in_loads_metadata_that_was_unreachable_at_start() {
    let idp = require_idp!();
    let real = client().get(&idp.metadata_url).send().await.expect("metadata").text().await.expect("body");
    let answer: Answer = Arc::new(Mutex::new((503, String::new())));
    let url = metadata_server(Arc::clone(&answer)).await;
    let saml = build(&SamlConfig { idp_metadata_url: Some(url), ..config(&idp) }, "test");

    saml.refresh().await.expect_err("unavailable");
    let error = saml.begin(saml.acs_url()).await.expect_err("no metadata yet");
    assert_eq!(error.code(), "unavailable");

    *answer.lock().expect("answer") = (200, real);
    signs_in(&saml).await.expect("loaded on demand");
}
