//! The AuthnRequest over the HTTP-Redirect binding, and the pending state the gateway keeps
//! until the response comes back.

use std::io::Write as _;
use std::time::SystemTime;

use base64::Engine as _;
use base64::engine::general_purpose::{STANDARD, URL_SAFE_NO_PAD};
use openssl::hash::MessageDigest;
use openssl::pkey::{PKey, Private};
use openssl::sign::Signer;
use samael::schema::{AuthnRequest, Issuer, NameIdPolicy};
use samael::traits::ToXml;

use crate::error::SamlError;

const POST_BINDING: &str = "urn:oasis:names:tc:SAML:2.0:bindings:HTTP-POST";
const RSA_SHA256: &str = "http://www.w3.org/2001/04/xmldsig-more#rsa-sha256";

/// What `begin` leaves for `complete`, serialized into `Started::pending`.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct Pending {
    /// The AuthnRequest's ID: the response's required `InResponseTo`.
    pub(crate) id: String,
    /// The ACS URL the request named.
    pub(crate) acs: String,
}

impl Pending {
    pub(crate) fn encode(&self) -> Result<String, SamlError> {
        serde_json::to_string(self).map_err(|error| SamlError::Request(error.to_string()))
    }

    pub(crate) fn decode(text: &str) -> Result<Pending, SamlError> {
        serde_json::from_str(text).map_err(|_| SamlError::PendingUnreadable)
    }
}

/// What goes into one AuthnRequest.
pub(crate) struct Request<'a> {
    pub(crate) id: &'a str,
    pub(crate) sso_url: &'a str,
    pub(crate) sp_entity_id: &'a str,
    pub(crate) acs: &'a str,
    pub(crate) name_id_format: Option<&'a str>,
    pub(crate) relay_state: &'a str,
    pub(crate) now: SystemTime,
}

/// The IdP URL carrying the deflated, base64 AuthnRequest and the RelayState, signed with
/// `key` (RSA-SHA256) when one is configured. The signature covers exactly
/// `SAMLRequest=…&RelayState=…&SigAlg=…` as they appear in the URL (SAML bindings 3.4.4.1),
/// after any query the SSO URL already has.
pub(crate) fn redirect_url(request: &Request<'_>, key: Option<&PKey<Private>>) -> Result<String, SamlError> {
    let failed = |error: &dyn std::fmt::Display| SamlError::Request(error.to_string());
    let authn_request = AuthnRequest {
        id: request.id.to_owned(),
        version: "2.0".to_owned(),
        issue_instant: chrono::DateTime::<chrono::Utc>::from(request.now),
        destination: Some(request.sso_url.to_owned()),
        issuer: Some(Issuer { value: Some(request.sp_entity_id.to_owned()), ..Issuer::default() }),
        name_id_policy: Some(NameIdPolicy {
            format: request.name_id_format.map(str::to_owned),
            sp_name_qualifier: None,
            allow_create: Some(true),
        }),
        assertion_consumer_service_url: Some(request.acs.to_owned()),
        protocol_binding: Some(POST_BINDING.to_owned()),
        ..AuthnRequest::default()
    };
    // samael's errors are not `Send`; they become text right here.
    let xml = authn_request.to_string().map_err(|error| failed(&error))?;
    let mut deflater = flate2::write::DeflateEncoder::new(Vec::new(), flate2::Compression::default());
    deflater.write_all(xml.as_bytes()).map_err(|error| failed(&error))?;
    let deflated = deflater.finish().map_err(|error| failed(&error))?;

    let mut query = url::form_urlencoded::Serializer::new(String::new());
    query.append_pair("SAMLRequest", &STANDARD.encode(deflated));
    query.append_pair("RelayState", request.relay_state);
    if key.is_some() {
        query.append_pair("SigAlg", RSA_SHA256);
    }
    let mut ours = query.finish();
    if let Some(key) = key {
        let mut signer = Signer::new(MessageDigest::sha256(), key).map_err(|error| failed(&error))?;
        let signature = signer.sign_oneshot_to_vec(ours.as_bytes()).map_err(|error| failed(&error))?;
        let signature = STANDARD.encode(signature);
        ours.push_str("&Signature=");
        ours.extend(url::form_urlencoded::byte_serialize(signature.as_bytes()));
    }
    let mut url = url::Url::parse(request.sso_url).map_err(|error| failed(&error))?;
    let query = match url.query() {
        Some(theirs) if !theirs.is_empty() => format!("{theirs}&{ours}"),
        _ => ours,
    };
    url.set_query(Some(&query));
    Ok(url.to_string())
}

/// `bytes` random bytes from the OS, URL-safe base64.
pub(crate) fn random_token(bytes: usize) -> Result<String, SamlError> {
    let mut buffer = vec![0u8; bytes];
    openssl::rand::rand_bytes(&mut buffer).map_err(|error| SamlError::Request(error.to_string()))?;
    Ok(URL_SAFE_NO_PAD.encode(buffer))
}

/// Whether `relay_state` has the shape [`random_token`] gives a sign-in started here (32
/// bytes, URL-safe base64 without padding). Only chooses which page explains a refusal.
pub(crate) fn looks_like_our_relay_state(relay_state: &str) -> bool {
    relay_state.len() == 43
        && relay_state.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
}

/// A fresh request ID: an NCName (SAML IDs must not start with a digit) of 160 random bits.
pub(crate) fn request_id() -> Result<String, SamlError> {
    let mut buffer = [0u8; 20];
    openssl::rand::rand_bytes(&mut buffer).map_err(|error| SamlError::Request(error.to_string()))?;
    let hex: String = buffer.iter().map(|b| format!("{b:02x}")).collect();
    Ok(format!("_{hex}"))
}

#[cfg(test)]
mod tests {
    use std::io::Read;

    use super::*;

    fn inflate_request(url: &str) -> (String, Vec<(String, String)>) {
        let url = url::Url::parse(url).expect("url");
        let pairs: Vec<(String, String)> = url.query_pairs().into_owned().collect();
        let encoded = &pairs.iter().find(|(k, _)| k == "SAMLRequest").expect("SAMLRequest").1;
        let deflated = base64::engine::general_purpose::STANDARD.decode(encoded).expect("base64");
        let mut xml = String::new();
        flate2::read::DeflateDecoder::new(deflated.as_slice()).read_to_string(&mut xml).expect("inflate");
        (xml, pairs)
    }

    #[test]
    fn the_request_names_the_acs_issuer_and_id_and_carries_the_relay_state() {
        let request = Request {
            id: "_abc",
            sso_url: "https://idp.example.com/sso?tenant=1",
            sp_entity_id: "https://gate.example.com/.deskgate/saml/corp/metadata",
            acs: "https://gate.example.com/.deskgate/saml/corp/acs",
            name_id_format: Some("urn:oasis:names:tc:SAML:1.1:nameid-format:emailAddress"),
            relay_state: "relay-123",
            now: SystemTime::UNIX_EPOCH + std::time::Duration::from_secs(1_700_000_000),
        };
        let url = redirect_url(&request, None).expect("url");
        assert!(url.starts_with("https://idp.example.com/sso?tenant=1&SAMLRequest="), "{url}");
        let (xml, pairs) = inflate_request(&url);
        assert!(pairs.contains(&("RelayState".into(), "relay-123".into())));
        assert!(!pairs.iter().any(|(k, _)| k == "Signature"));
        let doc = roxmltree::Document::parse(&xml).expect("request XML");
        let root = doc.root_element();
        assert_eq!(root.tag_name().name(), "AuthnRequest");
        assert_eq!(root.attribute("ID"), Some("_abc"));
        assert_eq!(root.attribute("AssertionConsumerServiceURL"), Some(request.acs));
        assert_eq!(root.attribute("Destination"), Some(request.sso_url));
        assert_eq!(root.attribute("IssueInstant"), Some("2023-11-14T22:13:20.000Z"));
        let issuer = root.descendants().find(|n| n.has_tag_name("Issuer")).expect("issuer");
        assert_eq!(issuer.text(), Some(request.sp_entity_id));
        let policy = root.descendants().find(|n| n.has_tag_name("NameIDPolicy")).expect("policy");
        assert_eq!(policy.attribute("Format"), request.name_id_format);
    }

    #[test]
    fn a_configured_key_signs_exactly_the_request_relay_state_and_algorithm() {
        let rsa = openssl::rsa::Rsa::generate(2048).expect("rsa");
        let key = PKey::from_rsa(rsa).expect("pkey");
        let request = Request {
            id: "_abc",
            sso_url: "https://idp.example.com/sso?tenant=a%20b",
            sp_entity_id: "sp",
            acs: "https://gate.example.com/acs",
            name_id_format: None,
            relay_state: "r",
            now: SystemTime::now(),
        };
        let url = redirect_url(&request, Some(&key)).expect("url");
        let (_, pairs) = inflate_request(&url);
        assert!(
            pairs.contains(&("SigAlg".into(), "http://www.w3.org/2001/04/xmldsig-more#rsa-sha256".into()))
        );
        assert!(pairs.iter().any(|(k, v)| k == "Signature" && !v.is_empty()));
    }

    #[test]
    fn ids_and_tokens_are_fresh_and_well_formed() {
        let (a, b) = (request_id().expect("id"), request_id().expect("id"));
        assert_ne!(a, b);
        assert!(a.starts_with('_') && a.len() == 41);
        let token = random_token(32).expect("token");
        assert_eq!(token.len(), 43);
        assert!(token.bytes().all(|c| c.is_ascii_alphanumeric() || c == b'-' || c == b'_'));
    }

    #[test]
    fn pending_state_round_trips_and_junk_is_refused() {
        let pending = Pending { id: "_x".into(), acs: "https://gate/acs".into() };
        assert_eq!(Pending::decode(&pending.encode().expect("encode")).expect("decode"), pending);
        assert!(matches!(Pending::decode("{}"), Err(SamlError::PendingUnreadable)));
        assert!(matches!(Pending::decode("nonsense"), Err(SamlError::PendingUnreadable)));
    }
}
