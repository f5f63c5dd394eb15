//! This service provider's own metadata, for the IdP's administrators.

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use samael::key_info::{KeyInfo, X509Data};
use samael::metadata::{EntityDescriptor, IndexedEndpoint, KeyDescriptor, SpSsoDescriptor};
use samael::traits::ToXml;

const POST_BINDING: &str = "urn:oasis:names:tc:SAML:2.0:bindings:HTTP-POST";
const PROTOCOL_SUPPORT: &str = "urn:oasis:names:tc:SAML:2.0:protocol";

/// The SP metadata document: entity id, one HTTP-POST assertion consumer service, the
/// NameID format asked for, and the signing certificate when AuthnRequests are signed.
/// `WantAssertionsSigned` says what deskgate enforces (`want_assertions_signed`).
pub(crate) fn metadata(
    entity_id: &str,
    acs: &str,
    name_id_format: Option<&str>,
    signing_cert_der: Option<&[u8]>,
    want_assertions_signed: bool,
) -> Result<String, String> {
    let key_descriptors = signing_cert_der.map(|der| {
        vec![KeyDescriptor {
            key_use: Some("signing".to_owned()),
            key_info: KeyInfo {
                id: None,
                x509_data: Some(X509Data { certificates: vec![STANDARD.encode(der)] }),
            },
            encryption_methods: None,
        }]
    });
    let descriptor = SpSsoDescriptor {
        protocol_support_enumeration: Some(PROTOCOL_SUPPORT.to_owned()),
        key_descriptors,
        name_id_formats: name_id_format.map(|format| vec![format.to_owned()]),
        authn_requests_signed: Some(signing_cert_der.is_some()),
        want_assertions_signed: Some(want_assertions_signed),
        assertion_consumer_services: vec![IndexedEndpoint {
            binding: POST_BINDING.to_owned(),
            location: acs.to_owned(),
            response_location: None,
            index: 0,
            is_default: Some(true),
        }],
        ..SpSsoDescriptor::default()
    };
    let entity = EntityDescriptor {
        entity_id: Some(entity_id.to_owned()),
        sp_sso_descriptors: Some(vec![descriptor]),
        ..EntityDescriptor::default()
    };
    entity.to_string().map_err(|error| error.to_string())
}
