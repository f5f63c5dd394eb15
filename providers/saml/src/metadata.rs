//! The identity provider's metadata: where to send people and which certificates sign what
//! it sends back. Read from a file or a URL, and re-read on the configured schedule; a read
//! that fails or yields unusable metadata leaves the last good one in force.

use std::path::PathBuf;
use std::time::{Duration, SystemTime};

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use roxmltree::Node;
use samael::crypto::CertificateDer;

use crate::error::MetadataError;
use crate::xml::{self, DSIG, METADATA};

const REDIRECT_BINDING: &str = "urn:oasis:names:tc:SAML:2.0:bindings:HTTP-Redirect";
const PROTOCOL_SUPPORT: &str = "urn:oasis:names:tc:SAML:2.0:protocol";

/// The largest metadata document read; an IdP's own is a few kilobytes.
pub(crate) const MAX_METADATA_BYTES: usize = 1024 * 1024;

/// What deskgate uses of an IdP's metadata.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct IdpMetadata {
    /// The IdP's entity id: the required issuer of its responses.
    pub entity_id: String,
    /// Its HTTP-Redirect single sign-on endpoint.
    pub sso_url: String,
    /// Its signing certificates; during a key rollover there are two.
    pub(crate) certificates: Vec<CertificateDer>,
    /// Whether it asks for signed AuthnRequests.
    pub want_authn_requests_signed: bool,
}

/// Where the metadata comes from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Source {
    File(PathBuf),
    Url(String),
}

impl Source {
    /// Reads the document, without parsing it.
    pub(crate) async fn read(&self, http: &reqwest::Client) -> Result<String, MetadataError> {
        match self {
            Source::File(path) => {
                let bytes = tokio::fs::read(path)
                    .await
                    .map_err(|source| MetadataError::Read { path: path.display().to_string(), source })?;
                if bytes.len() > MAX_METADATA_BYTES {
                    return Err(MetadataError::TooLarge { limit: MAX_METADATA_BYTES });
                }
                String::from_utf8(bytes).map_err(|_| MetadataError::Malformed("not UTF-8".into()))
            }
            Source::Url(url) => fetch(http, url).await,
        }
    }
}

async fn fetch(http: &reqwest::Client, url: &str) -> Result<String, MetadataError> {
    let fetch_error = |source| MetadataError::Fetch { url: url.to_owned(), source };
    let mut response = http.get(url).send().await.map_err(fetch_error)?;
    if !response.status().is_success() {
        return Err(MetadataError::Status { url: url.to_owned(), status: response.status().as_u16() });
    }
    if response.content_length().is_some_and(|length| length > MAX_METADATA_BYTES as u64) {
        return Err(MetadataError::TooLarge { limit: MAX_METADATA_BYTES });
    }
    let mut body = Vec::new();
    while let Some(chunk) = response.chunk().await.map_err(fetch_error)? {
        if body.len() + chunk.len() > MAX_METADATA_BYTES {
            return Err(MetadataError::TooLarge { limit: MAX_METADATA_BYTES });
        }
        body.extend_from_slice(&chunk);
    }
    String::from_utf8(body).map_err(|_| MetadataError::Malformed("not UTF-8".into()))
}

/// The HTTP client for metadata: bounded time, no redirects (a metadata URL that moves is
/// a configuration change an admin should see).
pub(crate) fn http_client(timeout: Duration) -> Result<reqwest::Client, reqwest::Error> {
    reqwest::Client::builder()
        .timeout(timeout)
        .connect_timeout(timeout)
        .redirect(reqwest::redirect::Policy::none())
        .build()
}

/// Reads an `EntityDescriptor` (or an `EntitiesDescriptor` holding exactly one identity
/// provider) into what deskgate uses. Metadata without a signing certificate is refused:
/// without one, nothing the IdP sends could be verified.
pub fn parse(text: &str, now: SystemTime) -> Result<IdpMetadata, MetadataError> {
    let document = xml::parse(text).map_err(MetadataError::Malformed)?;
    let root = document.root_element();
    let entity = if xml::is(root, METADATA, "EntityDescriptor") {
        root
    } else if xml::is(root, METADATA, "EntitiesDescriptor") {
        let mut idps = root
            .descendants()
            .filter(|n| xml::is(*n, METADATA, "EntityDescriptor") && idp_descriptor(*n).is_some());
        match (idps.next(), idps.next()) {
            (Some(one), None) => one,
            _ => return Err(MetadataError::NoIdentityProvider),
        }
    } else {
        return Err(MetadataError::NoIdentityProvider);
    };
    for node in [root, entity] {
        if let Some(valid_until) = node.attribute("validUntil") {
            let until = chrono::DateTime::parse_from_rfc3339(valid_until.trim())
                .map_err(|_| MetadataError::Malformed(format!("validUntil {valid_until:?} is not a time")))?;
            if SystemTime::from(until) <= now {
                return Err(MetadataError::Expired(valid_until.to_owned()));
            }
        }
    }
    let entity_id = entity.attribute("entityID").map(str::trim).unwrap_or_default();
    if entity_id.is_empty() {
        return Err(MetadataError::NoEntityId);
    }
    let idp = idp_descriptor(entity).ok_or(MetadataError::NoIdentityProvider)?;

    let mut certificates = Vec::new();
    for key in xml::children(idp, METADATA, "KeyDescriptor") {
        if !matches!(key.attribute("use"), None | Some("signing")) {
            continue;
        }
        let texts = key
            .descendants()
            .filter(|n| xml::is(*n, DSIG, "X509Certificate"))
            .map(|n| xml::text_only(n).unwrap_or_default());
        for text in texts {
            let index = certificates.len();
            certificates
                .push(certificate(&text).map_err(|detail| MetadataError::BadCertificate { index, detail })?);
        }
    }
    if certificates.is_empty() {
        return Err(MetadataError::NoSigningCertificate);
    }

    let sso_url = xml::children(idp, METADATA, "SingleSignOnService")
        .filter(|endpoint| endpoint.attribute("Binding") == Some(REDIRECT_BINDING))
        .filter_map(|endpoint| endpoint.attribute("Location"))
        .map(str::trim)
        .find(|location| is_http_url(location))
        .ok_or(MetadataError::NoRedirectEndpoint)?
        .to_owned();

    Ok(IdpMetadata {
        entity_id: entity_id.to_owned(),
        sso_url,
        certificates,
        want_authn_requests_signed: matches!(idp.attribute("WantAuthnRequestsSigned"), Some("true" | "1")),
    })
}

impl IdpMetadata {
    /// The signing certificates, DER-encoded.
    pub fn certificates_der(&self) -> Vec<&[u8]> {
        self.certificates.iter().map(CertificateDer::der_data).collect()
    }
}

fn idp_descriptor<'a, 'i>(entity: Node<'a, 'i>) -> Option<Node<'a, 'i>> {
    xml::children(entity, METADATA, "IDPSSODescriptor").find(|idp| {
        idp.attribute("protocolSupportEnumeration")
            .is_some_and(|protocols| protocols.split_ascii_whitespace().any(|p| p == PROTOCOL_SUPPORT))
    })
}

/// A base64 DER certificate, as metadata carries it, checked to be X.509.
fn certificate(text: &str) -> Result<CertificateDer, String> {
    let compact: Vec<u8> = text.bytes().filter(|b| !b.is_ascii_whitespace()).collect();
    let der = STANDARD.decode(compact).map_err(|_| "not base64".to_owned())?;
    openssl::x509::X509::from_der(&der).map_err(|error| error.to_string())?;
    Ok(CertificateDer::from(der))
}

fn is_http_url(text: &str) -> bool {
    url::Url::parse(text).is_ok_and(|url| matches!(url.scheme(), "https" | "http") && url.host().is_some())
}

#[cfg(test)]
pub(crate) mod tests;
