//! The checks on a response's structure made before any signature is verified: where the
//! assertion is, where signatures are, what they reference and with which algorithms.
//!
//! Signature wrapping works by making the verifier and the reader look at different
//! elements. deskgate allows exactly one shape: one `Assertion`, a direct child of the
//! `Response`; each `Signature` a direct child of the Response or of that Assertion,
//! referencing its own parent's unique `ID`. Anything else is refused before xmlsec runs, and
//! after verification the assertion is taken only from the verified content (see
//! `response.rs`).

use std::collections::HashSet;

use roxmltree::{Document, Node};

use crate::error::ResponseError;
use crate::xml::{self, ASSERTION, DSIG, PROTOCOL};

/// Signature methods accepted: RSA and ECDSA with SHA-256 or stronger, never SHA-1.
pub(crate) const SIGNATURE_METHODS: [&str; 6] = [
    "http://www.w3.org/2001/04/xmldsig-more#rsa-sha256",
    "http://www.w3.org/2001/04/xmldsig-more#rsa-sha384",
    "http://www.w3.org/2001/04/xmldsig-more#rsa-sha512",
    "http://www.w3.org/2001/04/xmldsig-more#ecdsa-sha256",
    "http://www.w3.org/2001/04/xmldsig-more#ecdsa-sha384",
    "http://www.w3.org/2001/04/xmldsig-more#ecdsa-sha512",
];

const DIGEST_METHODS: [&str; 3] = [
    "http://www.w3.org/2001/04/xmlenc#sha256",
    "http://www.w3.org/2001/04/xmldsig-more#sha384",
    "http://www.w3.org/2001/04/xmlenc#sha512",
];

const EXC_C14N: &str = "http://www.w3.org/2001/10/xml-exc-c14n#";
const ENVELOPED: &str = "http://www.w3.org/2000/09/xmldsig#enveloped-signature";

/// Canonicalizations of `SignedInfo`: never the `#WithComments` forms.
const CANONICALIZATIONS: [&str; 3] =
    [EXC_C14N, "http://www.w3.org/TR/2001/REC-xml-c14n-20010315", "http://www.w3.org/2006/12/xml-c14n11"];

/// Reference transforms: what the SAML profile uses, and nothing that runs code (XSLT) or
/// selects other content (XPath).
const TRANSFORMS: [&str; 2] = [ENVELOPED, EXC_C14N];

/// What the structure check found.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Shape {
    /// The Response's `ID`.
    pub(crate) response_id: String,
    /// The Assertion's `ID`.
    pub(crate) assertion_id: String,
    /// Whether the Response carries a signature of itself.
    pub(crate) response_signed: bool,
    /// Whether the Assertion carries a signature of itself.
    pub(crate) assertion_signed: bool,
}

/// Checks the document's structure; see the module documentation.
pub(crate) fn check(document: &Document<'_>) -> Result<Shape, ResponseError> {
    let response = document.root_element();
    if !xml::is(response, PROTOCOL, "Response") {
        return Err(ResponseError::NotAResponse);
    }
    if xml::has_comment_or_instruction(document) {
        return Err(ResponseError::CommentOrInstruction);
    }
    unique_ids(document)?;

    if document.descendants().any(|node| node.is_element() && node.tag_name().name().starts_with("Encrypted"))
    {
        return Err(ResponseError::Encrypted);
    }
    let assertions: Vec<Node<'_, '_>> = document
        .descendants()
        .filter(|node| node.is_element() && node.tag_name().name() == "Assertion")
        .collect();
    let assertion = match assertions.as_slice() {
        [one] if xml::is(*one, ASSERTION, "Assertion") => *one,
        [_] => return Err(ResponseError::AssertionCount(0)),
        many => return Err(ResponseError::AssertionCount(many.len())),
    };
    if assertion.parent_element() != Some(response) {
        return Err(ResponseError::AssertionMisplaced);
    }

    let mut response_signed = false;
    let mut assertion_signed = false;
    for signature in
        document.descendants().filter(|node| node.is_element() && node.tag_name().name() == "Signature")
    {
        if signature.tag_name().namespace() != Some(DSIG) {
            return Err(ResponseError::SignatureMisplaced);
        }
        let parent = signature.parent_element();
        let seen = if parent == Some(response) {
            &mut response_signed
        } else if parent == Some(assertion) {
            &mut assertion_signed
        } else {
            return Err(ResponseError::SignatureMisplaced);
        };
        if *seen {
            return Err(ResponseError::SignatureMisplaced);
        }
        *seen = true;
        let parent_id = parent.and_then(|p| p.attribute("ID")).unwrap_or_default();
        check_signature(signature, parent_id)?;
    }
    if !response_signed && !assertion_signed {
        return Err(ResponseError::Unsigned);
    }

    Ok(Shape {
        response_id: response.attribute("ID").unwrap_or_default().to_owned(),
        assertion_id: assertion.attribute("ID").unwrap_or_default().to_owned(),
        response_signed,
        assertion_signed,
    })
}

/// Every `ID` attribute is unique, and the Response and Assertion have one.
fn unique_ids(document: &Document<'_>) -> Result<(), ResponseError> {
    let mut seen = HashSet::new();
    for node in document.descendants().filter(Node::is_element) {
        for attribute in node.attributes().filter(|a| a.namespace().is_none() && a.name() == "ID") {
            if !seen.insert(attribute.value()) {
                return Err(ResponseError::DuplicateId(attribute.value().to_owned()));
            }
        }
    }
    Ok(())
}

/// One `Signature`: `SignedInfo`, `SignatureValue` and an optional `KeyInfo`, nothing else;
/// one `Reference` to `#<parent ID>`; every algorithm on the allow-lists.
fn check_signature(signature: Node<'_, '_>, parent_id: &str) -> Result<(), ResponseError> {
    let reference_error = |why: &str| ResponseError::SignatureReference(why.to_owned());
    if parent_id.is_empty() {
        return Err(reference_error("the signed element has no ID"));
    }
    let mut signed_info = None;
    for (index, child) in xml::elements(signature).enumerate() {
        match (index, child.tag_name().namespace(), child.tag_name().name()) {
            (0, Some(DSIG), "SignedInfo") => signed_info = Some(child),
            (1, Some(DSIG), "SignatureValue") | (2, Some(DSIG), "KeyInfo") => {}
            _ => {
                return Err(reference_error(
                    "the signature holds more than SignedInfo, SignatureValue and KeyInfo",
                ));
            }
        }
    }
    let signed_info = signed_info.ok_or_else(|| reference_error("no SignedInfo"))?;

    let mut references = 0;
    for (index, child) in xml::elements(signed_info).enumerate() {
        match (index, child.tag_name().namespace(), child.tag_name().name()) {
            (0, Some(DSIG), "CanonicalizationMethod") => allowed(child, &CANONICALIZATIONS)?,
            (1, Some(DSIG), "SignatureMethod") => allowed(child, &SIGNATURE_METHODS)?,
            (_, Some(DSIG), "Reference") if index >= 2 => {
                references += 1;
                check_reference(child, parent_id)?;
            }
            _ => return Err(reference_error("unexpected content in SignedInfo")),
        }
    }
    if references != 1 {
        return Err(reference_error("not exactly one Reference"));
    }
    Ok(())
}

fn check_reference(reference: Node<'_, '_>, parent_id: &str) -> Result<(), ResponseError> {
    let reference_error = |why: &str| ResponseError::SignatureReference(why.to_owned());
    match reference.attribute("URI").and_then(|uri| uri.strip_prefix('#')) {
        Some(id) if id == parent_id => {}
        _ => return Err(reference_error("the Reference URI is not #<ID of the signed element>")),
    }
    let mut digest = false;
    for child in xml::elements(reference) {
        match (child.tag_name().namespace(), child.tag_name().name()) {
            (Some(DSIG), "Transforms") => {
                for transform in xml::elements(child) {
                    if !xml::is(transform, DSIG, "Transform") {
                        return Err(reference_error("unexpected content in Transforms"));
                    }
                    allowed(transform, &TRANSFORMS)?;
                }
            }
            (Some(DSIG), "DigestMethod") => {
                allowed(child, &DIGEST_METHODS)?;
                digest = true;
            }
            (Some(DSIG), "DigestValue") => {}
            _ => return Err(reference_error("unexpected content in Reference")),
        }
    }
    if !digest {
        return Err(reference_error("no DigestMethod"));
    }
    Ok(())
}

fn allowed(node: Node<'_, '_>, list: &[&str]) -> Result<(), ResponseError> {
    let algorithm = node.attribute("Algorithm").unwrap_or_default();
    if list.contains(&algorithm) {
        Ok(())
    } else {
        Err(ResponseError::AlgorithmRefused(algorithm.to_owned()))
    }
}

#[cfg(test)]
mod tests;
