//! Escaping of untrusted text for the two places it meets LDAP syntax: filter assertion
//! values (RFC 4515) and attribute values inside a distinguished name (RFC 4514).
//!
//! Both return text that the server reads back as exactly the input, so that a username
//! such as `*)(uid=*` is looked up literally instead of changing the search.

use std::fmt::Write;

/// Escapes a value for use inside an LDAP search filter (RFC 4515, `valueencoding`).
///
/// `*`, `(`, `)`, `\` and NUL become `\2a`, `\28`, `\29`, `\5c` and `\00`; every other
/// character, including non-ASCII UTF-8, is kept as it is, which RFC 4515 allows.
pub fn filter_value(value: &str) -> String {
    let mut out = String::with_capacity(value.len());
    for c in value.chars() {
        match c {
            '*' | '(' | ')' | '\\' | '\0' => push_hex(&mut out, c as u8),
            _ => out.push(c),
        }
    }
    out
}

/// Escapes a value for use as an attribute value in a DN's RDN (RFC 4514, section 2.4).
///
/// The special characters `"` `+` `,` `;` `<` `>` `\` and `=` are backslash-escaped
/// everywhere, a leading space or `#` and a trailing space are escaped, and NUL becomes
/// `\00`.
pub fn dn_value(value: &str) -> String {
    let mut out = String::with_capacity(value.len());
    let last = value.chars().count().saturating_sub(1);
    for (i, c) in value.chars().enumerate() {
        match c {
            '"' | '+' | ',' | ';' | '<' | '>' | '\\' | '=' => {
                out.push('\\');
                out.push(c);
            }
            '\0' => push_hex(&mut out, 0),
            ' ' if i == 0 || i == last => out.push_str("\\ "),
            '#' if i == 0 => out.push_str("\\#"),
            _ => out.push(c),
        }
    }
    out
}

fn push_hex(out: &mut String, byte: u8) {
    // Writing to a String cannot fail.
    let _ = write!(out, "\\{byte:02x}");
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn filter_specials_are_hex_escaped() {
        assert_eq!(filter_value("alice"), "alice");
        assert_eq!(filter_value("*"), "\\2a");
        assert_eq!(filter_value("*)(uid=*"), "\\2a\\29\\28uid=\\2a");
        assert_eq!(filter_value("alice)(|(objectClass=*"), "alice\\29\\28|\\28objectClass=\\2a");
        assert_eq!(filter_value("CORP\\alice"), "CORP\\5calice");
        assert_eq!(filter_value("a\0b"), "a\\00b");
        assert_eq!(filter_value(""), "");
    }

    #[test]
    fn filter_keeps_utf8_and_other_punctuation() {
        assert_eq!(filter_value("jürgen.müller@corp.example.com"), "jürgen.müller@corp.example.com");
        assert_eq!(filter_value("a=b&c|d!e~f<g>h"), "a=b&c|d!e~f<g>h");
    }

    #[test]
    fn escaped_filter_value_has_no_unescaped_syntax() {
        let nasty = "*()\\\0*)(&(|(!(cn=*";
        let escaped = filter_value(nasty);
        assert!(!escaped.contains(['*', '(', ')', '\0']));
        // Every backslash starts a two-digit hex escape.
        let bytes = escaped.as_bytes();
        for (i, b) in bytes.iter().enumerate() {
            if *b == b'\\' {
                assert!(bytes.get(i + 1).is_some_and(u8::is_ascii_hexdigit));
                assert!(bytes.get(i + 2).is_some_and(u8::is_ascii_hexdigit));
            }
        }
    }

    #[test]
    fn dn_specials_are_escaped() {
        assert_eq!(dn_value("Alice Test"), "Alice Test");
        assert_eq!(dn_value("Smith, John"), "Smith\\, John");
        assert_eq!(dn_value("a+b=c;d"), "a\\+b\\=c\\;d");
        assert_eq!(dn_value("\"quoted\" <x>"), "\\\"quoted\\\" \\<x\\>");
        assert_eq!(dn_value("back\\slash"), "back\\\\slash");
        assert_eq!(dn_value("nul\0"), "nul\\00");
    }

    #[test]
    fn dn_leading_and_trailing_positions_are_escaped() {
        assert_eq!(dn_value(" lead"), "\\ lead");
        assert_eq!(dn_value("trail "), "trail\\ ");
        assert_eq!(dn_value(" "), "\\ ");
        assert_eq!(dn_value("#hash"), "\\#hash");
        assert_eq!(dn_value("mid#dle mid"), "mid#dle mid");
        assert_eq!(dn_value("ü "), "ü\\ ");
        assert_eq!(dn_value(""), "");
    }
}
