//! XML-DSig verification through xmlsec1 (samael's binding), reduced to the signed content.

use std::panic::{AssertUnwindSafe, catch_unwind};

use samael::crypto::{AllowedSignatureAlgorithm, CertificateDer, CryptoProvider, ReduceMode, XmlSec};

use crate::error::ResponseError;

/// The same allow-list as `shape::SIGNATURE_METHODS`, in samael's terms, so that xmlsec
/// enforces it too (with the matching digests).
const ALGORITHMS: [AllowedSignatureAlgorithm; 6] = [
    AllowedSignatureAlgorithm::RsaSha256,
    AllowedSignatureAlgorithm::RsaSha384,
    AllowedSignatureAlgorithm::RsaSha512,
    AllowedSignatureAlgorithm::EcdsaSha256,
    AllowedSignatureAlgorithm::EcdsaSha384,
    AllowedSignatureAlgorithm::EcdsaSha512,
];

/// Verifies every signature in `xml` with one of `certificates` (the key comes from the
/// configured certificate only, never from the document's `KeyInfo`) and returns the
/// document reduced to the content the signatures cover. The root stays the Response: whole
/// when it is signed, else an empty shell (no attributes, no other children) around the
/// signed Assertion.
///
/// `ValidateAndMark` rather than samael's default: its default moves a signed Assertion up
/// to the document root, and that path leaks the detached Response and a namespace list
/// (found by the `acs` fuzz target under LeakSanitizer), on every sign-in.
///
/// The input has passed `shape::check`, which xmlsec is not relied on for. The call is kept
/// from unwinding into the caller: the binding's code is not deskgate's, and a panic on a
/// hostile document must be a refusal, not a crashed worker.
pub(crate) fn verified_content(xml: &str, certificates: &[CertificateDer]) -> Result<String, ResponseError> {
    if certificates.is_empty() {
        return Err(ResponseError::SignatureInvalid);
    }
    let outcome = catch_unwind(AssertUnwindSafe(|| {
        XmlSec::reduce_xml_to_signed_with_allowed_algorithms(
            xml,
            certificates,
            ReduceMode::ValidateAndMark,
            Some(&ALGORITHMS),
        )
    }));
    match outcome {
        Ok(Ok(reduced)) => Ok(reduced),
        Ok(Err(error)) => {
            tracing::debug!(error = %crate::error::chain(&error), "Signature verification failed");
            Err(ResponseError::SignatureInvalid)
        }
        Err(_) => {
            tracing::warn!("Signature verification panicked; the response is refused");
            Err(ResponseError::SignatureInvalid)
        }
    }
}
