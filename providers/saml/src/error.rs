//! Why a SAML sign-in or a metadata load failed. People only ever see the generic
//! [`deskgate_provider::AuthError`]; these conditions go to the log and to tests.

/// Why an IdP metadata document could not be used. The last good metadata stays in force.
#[derive(Debug, thiserror::Error)]
pub enum MetadataError {
    /// The metadata file could not be read.
    #[error("cannot read {path}")]
    Read {
        /// The file.
        path: String,
        /// What went wrong.
        #[source]
        source: std::io::Error,
    },
    /// The metadata URL could not be fetched.
    #[error("cannot fetch {url}")]
    Fetch {
        /// The URL.
        url: String,
        /// What went wrong.
        #[source]
        source: reqwest::Error,
    },
    /// The metadata URL answered with an error status.
    #[error("{url} answered with HTTP status {status}")]
    Status {
        /// The URL.
        url: String,
        /// The status code.
        status: u16,
    },
    /// The document is larger than deskgate reads.
    #[error("the metadata is larger than {limit} bytes")]
    TooLarge {
        /// The limit in bytes.
        limit: usize,
    },
    /// The document is not well-formed XML (or uses a DTD, which is refused).
    #[error("the metadata is not usable XML: {0}")]
    Malformed(String),
    /// No `EntityDescriptor` with an `IDPSSODescriptor` for SAML 2.0.
    #[error("the metadata describes no SAML 2.0 identity provider")]
    NoIdentityProvider,
    /// The IdP publishes no signing certificate, so nothing it sends could be verified.
    #[error("the metadata has no signing certificate")]
    NoSigningCertificate,
    /// A published certificate is not an X.509 certificate.
    #[error("certificate {index} in the metadata is not a usable X.509 certificate: {detail}")]
    BadCertificate {
        /// Its position among the signing certificates.
        index: usize,
        /// What is wrong with it.
        detail: String,
    },
    /// No `SingleSignOnService` with the HTTP-Redirect binding and an http(s) location.
    #[error("the metadata has no HTTP-Redirect SingleSignOnService")]
    NoRedirectEndpoint,
    /// The document's `validUntil` has passed.
    #[error("the metadata expired at {0}")]
    Expired(String),
    /// The IdP's `entityID` is missing or empty.
    #[error("the metadata has no entityID")]
    NoEntityId,
}

/// Why a `SAMLResponse` was refused. Each variant is one check of the SAML 2.0 Web Browser
/// SSO profile or one defense of deskgate's own.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ResponseError {
    /// The form field is longer than `max_response_bytes`; nothing of it was decoded.
    #[error("the SAMLResponse is {size} bytes, more than the {limit} accepted")]
    TooLarge {
        /// Its length.
        size: usize,
        /// The limit.
        limit: usize,
    },
    /// The form field is not base64.
    #[error("the SAMLResponse is not base64")]
    NotBase64,
    /// The decoded response is not UTF-8 (or declares another encoding).
    #[error("the SAMLResponse is not UTF-8 XML")]
    NotUtf8,
    /// The decoded response is not well-formed XML, or carries a DTD.
    #[error("the SAMLResponse is not well-formed XML: {0}")]
    Malformed(String),
    /// The root element is not a SAML 2.0 protocol `Response`.
    #[error("the document is not a SAML 2.0 Response")]
    NotAResponse,
    /// Comments or processing instructions, which change what a reader sees without
    /// changing a signature (the NameID comment trick).
    #[error("the response contains XML comments or processing instructions")]
    CommentOrInstruction,
    /// Two elements carry the same `ID`, so a signature reference could name either.
    #[error("the ID {0} appears more than once")]
    DuplicateId(String),
    /// Not exactly one `Assertion` element anywhere in the document.
    #[error("the response holds {0} assertions; exactly one is accepted")]
    AssertionCount(usize),
    /// The assertion is not a direct child of the `Response` (e.g. moved under Extensions).
    #[error("the assertion is not a direct child of the Response")]
    AssertionMisplaced,
    /// Encrypted assertions or identifiers, which deskgate does not decrypt.
    #[error("encrypted assertions and identifiers are not supported")]
    Encrypted,
    /// Neither the Response nor the Assertion carries a signature.
    #[error("neither the Response nor the Assertion is signed")]
    Unsigned,
    /// Only the Response is signed, and the Assertion must be signed itself
    /// (`want_assertions_signed`, what the SP metadata declares).
    #[error("the Assertion is not signed itself (only the Response is), and want_assertions_signed is on")]
    AssertionUnsigned,
    /// A `Signature` element sits anywhere but directly in the Response or the Assertion,
    /// or one of them has two.
    #[error("a signature is where no signature belongs")]
    SignatureMisplaced,
    /// A signature's `Reference` does not name the element it sits in, or the signature
    /// has other than exactly one `Reference`, or carries `Object` content.
    #[error("a signature does not reference exactly its own element: {0}")]
    SignatureReference(String),
    /// A signature, digest, canonicalization or transform algorithm outside the allow-list.
    #[error("algorithm {0} is not accepted")]
    AlgorithmRefused(String),
    /// The signature does not verify with any of the IdP's certificates.
    #[error("the signature does not verify with the identity provider's certificate")]
    SignatureInvalid,
    /// The verified content is not the element that was checked before verification.
    #[error("the signed content is not the expected element")]
    SignedContentMismatch,
    /// The response's `Status` is not `Success`.
    #[error("the identity provider answered with status {0}")]
    Status(String),
    /// The `Version` attribute is not 2.0.
    #[error("the {0} is not SAML version 2.0")]
    Version(&'static str),
    /// The Response's `Destination` is missing or not this ACS.
    #[error("the response's Destination is {found:?}, not this ACS")]
    Destination {
        /// What the response said.
        found: Option<String>,
    },
    /// The `Issuer` is not the IdP's entity id.
    #[error("the {element} issuer is {found:?}, not the identity provider")]
    Issuer {
        /// `Response` or `Assertion`.
        element: &'static str,
        /// What the document said.
        found: Option<String>,
    },
    /// No bearer `SubjectConfirmation`.
    #[error("the assertion has no bearer subject confirmation")]
    NoBearerConfirmation,
    /// The bearer confirmation's `Recipient` is missing or not this ACS.
    #[error("the subject confirmation's Recipient is {found:?}, not this ACS")]
    Recipient {
        /// What the assertion said.
        found: Option<String>,
    },
    /// `InResponseTo` does not name the request this sign-in sent (or, for an unsolicited
    /// response, is present at all).
    #[error("InResponseTo is {found:?}, expected {expected:?}")]
    InResponseTo {
        /// What the response said.
        found: Option<String>,
        /// The request id deskgate issued, if any.
        expected: Option<String>,
    },
    /// A `NotBefore` lies in the future beyond the allowed skew.
    #[error("the {0} is not valid yet")]
    NotYetValid(&'static str),
    /// A `NotOnOrAfter` has passed beyond the allowed skew, or is missing where required.
    #[error("the {0} has expired")]
    Expired(&'static str),
    /// A time attribute is not an `xs:dateTime` with a time zone.
    #[error("{0} is not a valid time")]
    BadTime(&'static str),
    /// No `Conditions`, or no `AudienceRestriction` in them.
    #[error("the assertion has no audience restriction")]
    NoAudience,
    /// An `AudienceRestriction` does not include this service provider's entity id.
    #[error("the assertion is meant for {found:?}, not this service provider")]
    Audience {
        /// The audiences of the first restriction that failed.
        found: Vec<String>,
    },
    /// A condition deskgate does not understand, which the SAML core spec says makes the
    /// assertion invalid.
    #[error("the assertion carries an unknown condition {0}")]
    UnknownCondition(String),
    /// No `AuthnStatement`: the assertion does not say the person signed in.
    #[error("the assertion has no authentication statement")]
    NoAuthnStatement,
    /// The `NameID` is missing, empty, or not plain text.
    #[error("the assertion's NameID is missing or not plain text")]
    NameId,
}

impl ResponseError {
    /// A short stable code for logs and tests.
    pub fn code(&self) -> &'static str {
        match self {
            ResponseError::TooLarge { .. } => "too-large",
            ResponseError::NotBase64 => "not-base64",
            ResponseError::NotUtf8 => "not-utf8",
            ResponseError::Malformed(_) => "malformed",
            ResponseError::NotAResponse => "not-a-response",
            ResponseError::CommentOrInstruction => "comment",
            ResponseError::DuplicateId(_) => "duplicate-id",
            ResponseError::AssertionCount(_) => "assertion-count",
            ResponseError::AssertionMisplaced => "assertion-misplaced",
            ResponseError::Encrypted => "encrypted",
            ResponseError::Unsigned => "unsigned",
            ResponseError::AssertionUnsigned => "assertion-unsigned",
            ResponseError::SignatureMisplaced => "signature-misplaced",
            ResponseError::SignatureReference(_) => "signature-reference",
            ResponseError::AlgorithmRefused(_) => "algorithm",
            ResponseError::SignatureInvalid => "signature-invalid",
            ResponseError::SignedContentMismatch => "signed-content-mismatch",
            ResponseError::Status(_) => "status",
            ResponseError::Version(_) => "version",
            ResponseError::Destination { .. } => "destination",
            ResponseError::Issuer { .. } => "issuer",
            ResponseError::NoBearerConfirmation => "no-bearer",
            ResponseError::Recipient { .. } => "recipient",
            ResponseError::InResponseTo { .. } => "in-response-to",
            ResponseError::NotYetValid(_) => "not-yet-valid",
            ResponseError::Expired(_) => "expired",
            ResponseError::BadTime(_) => "bad-time",
            ResponseError::NoAudience => "no-audience",
            ResponseError::Audience { .. } => "audience",
            ResponseError::UnknownCondition(_) => "unknown-condition",
            ResponseError::NoAuthnStatement => "no-authn-statement",
            ResponseError::NameId => "name-id",
        }
    }
}

/// Everything that can stop a SAML sign-in.
#[derive(Debug, thiserror::Error)]
pub enum SamlError {
    /// No usable IdP metadata: never loaded, and the load just tried failed.
    #[error("the identity provider's metadata is unavailable")]
    MetadataUnavailable(#[source] MetadataError),
    /// The response failed a check.
    #[error("the SAML response was refused")]
    Response(#[from] ResponseError),
    /// The stored pending state is not one this provider wrote.
    #[error("the pending sign-in state is unreadable")]
    PendingUnreadable,
    /// The callback arrived at another ACS URL than the request named.
    #[error("the response arrived at {arrived}, but the request named {requested}")]
    WrongCallback {
        /// Where the response was posted.
        arrived: String,
        /// The ACS URL in the AuthnRequest.
        requested: String,
    },
    /// The callback carried no `SAMLResponse`, or more than one.
    #[error("the callback carries {0} SAMLResponse fields; exactly one is expected")]
    ResponseField(usize),
    /// An unsolicited response arrived while `allow_idp_initiated` is off.
    #[error("IdP-initiated sign-in is not enabled for this provider")]
    UnsolicitedRefused,
    /// The AuthnRequest could not be built or signed.
    #[error("cannot build the AuthnRequest: {0}")]
    Request(String),
    /// The verification task did not finish (it panicked or the runtime is shutting down).
    #[error("the response could not be verified")]
    VerifierFailed,
}

impl SamlError {
    /// A short stable code for logs and tests.
    pub fn code(&self) -> &'static str {
        match self {
            SamlError::MetadataUnavailable(_) => "metadata-unavailable",
            SamlError::Response(error) => error.code(),
            SamlError::PendingUnreadable => "pending-unreadable",
            SamlError::WrongCallback { .. } => "wrong-callback",
            SamlError::ResponseField(_) => "response-field",
            SamlError::UnsolicitedRefused => "unsolicited",
            SamlError::Request(_) => "request",
            SamlError::VerifierFailed => "verifier-failed",
        }
    }
}

pub(crate) use deskgate_provider::error_chain as chain;
