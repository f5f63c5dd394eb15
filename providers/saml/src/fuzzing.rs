//! Entry points for the fuzz targets in `fuzz/` (feature `fuzzing`; not a stable API), and
//! a bounded, deterministic run of them over the seed corpus that `cargo test` does on the
//! stable toolchain.
//!
//! The seeds in `fuzz/seeds/acs/` are real SimpleSAMLphp responses, signed by the
//! certificate in `fuzz/seeds/idp.crt`, for the test IdP's `test`, `assertion-signed` and
//! `response-signed` service providers (see `tests/peers/saml.sh`); the checks run at the
//! seeds' issue time, so an untouched seed passes every check and mutations reach every
//! stage. The property: whatever the input, nothing panics, and an accepted response names
//! one of the seeds' subjects (a signature cannot be made to cover someone else).

use std::sync::OnceLock;
use std::time::{Duration, SystemTime};

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use samael::crypto::CertificateDer;

use crate::response::{self, Expected};

/// The seeds' IdP, certificate and subjects.
const IDP: &str = "http://127.0.0.1:19480/saml2/idp/metadata.php";
const IDP_CERTIFICATE: &str = include_str!("../fuzz/seeds/idp.crt");
/// The seeds' IssueInstant, 2026-11-23T05:08:24Z.
const SEED_TIME: u64 = 1_795_410_504;
/// Everyone the seeds name; no other subject may ever be accepted.
pub const SEED_SUBJECTS: [&str; 3] =
    ["alice@corp.example.com", "bob@corp.example.com", "alice@corp.example.com.evil.example"];
const SERVICE_PROVIDERS: [&str; 3] = ["test", "assertion-signed", "response-signed"];
const LIMIT: usize = 256 * 1024;

fn certificates() -> &'static [CertificateDer] {
    static CERTIFICATES: OnceLock<Vec<CertificateDer>> = OnceLock::new();
    CERTIFICATES.get_or_init(|| {
        openssl::x509::X509::from_pem(IDP_CERTIFICATE.as_bytes())
            .and_then(|cert| cert.to_der())
            .map(|der| vec![CertificateDer::from(der)])
            .unwrap_or_default()
    })
}

/// Runs the ACS checks on `data` taken both as the posted form field and as the XML the
/// field decodes to, for the service provider whose ACS it mentions (else `test`). Returns
/// the subjects of the responses accepted.
pub fn acs(data: &[u8]) -> Vec<String> {
    let text = String::from_utf8_lossy(data);
    let sp = SERVICE_PROVIDERS
        .iter()
        .find(|sp| text.contains(&format!("/.deskgate/saml/{sp}/acs")))
        .unwrap_or(&SERVICE_PROVIDERS[0]);
    let acs = format!("http://127.0.0.1:9/.deskgate/saml/{sp}/acs");
    let entity_id = format!("http://127.0.0.1:9/.deskgate/saml/{sp}/metadata");
    let expected = Expected {
        sp_entity_id: &entity_id,
        acs: &acs,
        idp_entity_id: IDP,
        request_id: None,
        now: SystemTime::UNIX_EPOCH + Duration::from_secs(SEED_TIME),
        skew: Duration::from_secs(120),
        // Both ways of signing stay open to the fuzzer.
        want_assertions_signed: false,
    };
    let mut accepted = Vec::new();
    for field in
        [std::str::from_utf8(data).ok().map(str::to_owned), Some(STANDARD.encode(data))].into_iter().flatten()
    {
        if let Ok(assertion) = response::verify(&field, LIMIT, certificates(), &expected) {
            accepted.push(assertion.name_id);
        }
    }
    accepted
}

/// Parses `data` as IdP metadata.
pub fn metadata(data: &[u8]) {
    if let Ok(text) = std::str::from_utf8(data) {
        let _ = crate::metadata::parse(text, SystemTime::UNIX_EPOCH + Duration::from_secs(SEED_TIME));
    }
}

#[cfg(test)]
mod tests;
