//! The one way deskgate reads XML: strict UTF-8, no DTD (so no entities, internal or
//! external), a bound on the node count, and element helpers that compare namespace URIs,
//! never prefixes.

use roxmltree::{Document, Node, ParsingOptions};

pub(crate) const PROTOCOL: &str = "urn:oasis:names:tc:SAML:2.0:protocol";
pub(crate) const ASSERTION: &str = "urn:oasis:names:tc:SAML:2.0:assertion";
pub(crate) const METADATA: &str = "urn:oasis:names:tc:SAML:2.0:metadata";
pub(crate) const DSIG: &str = "http://www.w3.org/2000/09/xmldsig#";

/// A SAML response of the accepted size has far fewer nodes; the bound keeps a hostile
/// document of many tiny elements from costing much memory.
const NODES_LIMIT: u32 = 200_000;

/// Parses `text`, refusing DTDs and declarations of encodings other than UTF-8 (the bytes
/// were already checked to be UTF-8; a declaration saying otherwise would make another
/// parser read different characters from the same bytes).
pub(crate) fn parse(text: &str) -> Result<Document<'_>, String> {
    check_declared_encoding(text)?;
    let options = ParsingOptions { allow_dtd: false, nodes_limit: NODES_LIMIT, ..ParsingOptions::default() };
    Document::parse_with_options(text, options).map_err(|error| error.to_string())
}

fn check_declared_encoding(text: &str) -> Result<(), String> {
    let text = text.strip_prefix('\u{feff}').unwrap_or(text);
    let Some(rest) = text.strip_prefix("<?xml") else {
        return Ok(());
    };
    let Some(end) = rest.find("?>") else {
        return Err("unterminated XML declaration".into());
    };
    let declaration = &rest[..end];
    let Some(at) = declaration.find("encoding") else {
        return Ok(());
    };
    let value = declaration[at + "encoding".len()..]
        .trim_start()
        .strip_prefix('=')
        .map(str::trim_start)
        .and_then(|v| {
            let quote = v.chars().next().filter(|c| *c == '"' || *c == '\'')?;
            let inner = &v[1..];
            inner.find(quote).map(|close| &inner[..close])
        })
        .ok_or_else(|| "malformed encoding declaration".to_owned())?;
    if value.eq_ignore_ascii_case("utf-8") || value.eq_ignore_ascii_case("utf8") {
        Ok(())
    } else {
        Err(format!("declared encoding {value} is not UTF-8"))
    }
}

/// Whether `node` is the element `{namespace}name`.
pub(crate) fn is(node: Node<'_, '_>, namespace: &str, name: &str) -> bool {
    node.is_element() && node.tag_name().name() == name && node.tag_name().namespace() == Some(namespace)
}

/// The element children of `node`.
pub(crate) fn elements<'a, 'i>(node: Node<'a, 'i>) -> impl Iterator<Item = Node<'a, 'i>> {
    node.children().filter(Node::is_element)
}

/// The element children `{namespace}name` of `node`.
pub(crate) fn children<'a, 'i>(
    node: Node<'a, 'i>,
    namespace: &'static str,
    name: &'static str,
) -> impl Iterator<Item = Node<'a, 'i>> {
    elements(node).filter(move |child| is(*child, namespace, name))
}

/// The first element child `{namespace}name` of `node`.
pub(crate) fn child<'a, 'i>(
    node: Node<'a, 'i>,
    namespace: &'static str,
    name: &'static str,
) -> Option<Node<'a, 'i>> {
    children(node, namespace, name).next()
}

/// The whole text of an element that holds nothing but text; `None` when it has child
/// elements, comments or processing instructions. Taking the whole text (not the first text
/// node) is what makes `a<!---->b` read as `ab`, never as `a`.
pub(crate) fn text_only(node: Node<'_, '_>) -> Option<String> {
    let mut text = String::new();
    for child in node.children() {
        if !child.is_text() {
            return None;
        }
        text.push_str(child.text().unwrap_or_default());
    }
    Some(text)
}

/// Whether the document holds a comment or processing instruction anywhere, the prolog
/// included.
pub(crate) fn has_comment_or_instruction(document: &Document<'_>) -> bool {
    document.descendants().any(|node| node.is_comment() || node.is_pi())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dtds_and_entities_are_refused() {
        let billion_laughs =
            r#"<?xml version="1.0"?><!DOCTYPE r [<!ENTITY a "aaaa"><!ENTITY b "&a;&a;">]><r>&b;</r>"#;
        assert!(parse(billion_laughs).is_err());
        let external = r#"<!DOCTYPE r [<!ENTITY x SYSTEM "file:///etc/passwd">]><r>&x;</r>"#;
        assert!(parse(external).is_err());
    }

    #[test]
    fn only_utf8_may_be_declared() {
        assert!(parse(r#"<?xml version="1.0" encoding="UTF-8"?><r/>"#).is_ok());
        assert!(parse(r#"<?xml version='1.0' encoding='utf-8'?><r/>"#).is_ok());
        assert!(parse(r#"<?xml version="1.0"?><r/>"#).is_ok());
        assert!(parse(r#"<?xml version="1.0" encoding="ISO-8859-1"?><r/>"#).is_err());
        assert!(parse(r#"<?xml version="1.0" encoding="UTF-16"?><r/>"#).is_err());
    }

    #[test]
    fn text_only_joins_text_and_refuses_anything_else() {
        let doc = parse(
            "<r><a>alice@corp.example.com<!---->.evil.example</a><b>x<![CDATA[y]]>z</b><c>x<d/></c><e/></r>",
        )
        .expect("parse");
        let find = |name: &str| doc.descendants().find(|n| n.has_tag_name(name)).expect("element");
        assert_eq!(text_only(find("a")), None);
        assert_eq!(text_only(find("b")).as_deref(), Some("xyz"));
        assert_eq!(text_only(find("c")), None);
        assert_eq!(text_only(find("e")).as_deref(), Some(""));
        assert!(has_comment_or_instruction(&doc));
        assert!(has_comment_or_instruction(&parse("<?pi x?><r/>").expect("parse")));
        assert!(!has_comment_or_instruction(&parse("<r>x</r>").expect("parse")));
    }
}
