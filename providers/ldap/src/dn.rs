//! Distinguished names read as names (RFC 4514), so that two spellings of one DN compare
//! equal: `CN=Leads\, Ost` and `cn=leads\2C ost`, `cn=a+ou=b` and `ou=b + cn=a`.
//!
//! A directory answers with its own spelling (Samba writes `\3B` where an administrator
//! writes `\;`), so a group mapping is never compared as text. Both sides are parsed into
//! RDNs of (attribute type, value) pairs: escapes undone, unescaped spaces around `,` `+` `=`
//! dropped, attribute types lower-cased (the common numeric OIDs read as their names),
//! multi-valued RDNs sorted, and values compared without regard to case or Unicode form
//! (NFKC and full case folding, as LDAP's caseIgnoreMatch prepares strings). A value
//! written in the `#hex` form (BER) is compared as those bytes.
//!
//! `ldapdn` was looked at and not used: it trims escaped trailing spaces and accepts
//! malformed escapes silently, and a config check must be able to say what is wrong.

use std::fmt::{self, Write};

use icu_casemap::{CaseMapper, CaseMapperBorrowed};
use icu_normalizer::ComposingNormalizerBorrowed;

const CASE: CaseMapperBorrowed<'static> = CaseMapper::new();
const NFKC: ComposingNormalizerBorrowed<'static> = ComposingNormalizerBorrowed::new_nfkc();

/// The longest DN parsed at all; AD's own limit is far below it.
const MAX_DN_BYTES: usize = 64 * 1024;

/// Numeric OIDs of the attribute types that appear in directory DNs, and their names.
const KNOWN_OIDS: &[(&str, &str)] = &[
    ("2.5.4.3", "cn"),
    ("2.5.4.6", "c"),
    ("2.5.4.7", "l"),
    ("2.5.4.8", "st"),
    ("2.5.4.9", "street"),
    ("2.5.4.10", "o"),
    ("2.5.4.11", "ou"),
    ("0.9.2342.19200300.100.1.1", "uid"),
    ("0.9.2342.19200300.100.1.25", "dc"),
];

/// Why a text is not a DN, with the byte offset where reading stopped.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DnError {
    /// Byte offset into the text.
    pub at: usize,
    /// What was wrong there.
    pub reason: &'static str,
}

impl fmt::Display for DnError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} (at byte {})", self.reason, self.at)
    }
}

impl std::error::Error for DnError {}

/// A parsed DN in its compared form.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Dn {
    rdns: Vec<Vec<(String, Value)>>,
}

/// An attribute value: text (folded), or the bytes of a `#hex` value.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
enum Value {
    Text(String),
    Ber(Vec<u8>),
}

impl Dn {
    /// Parses `text` as an RFC 4514 DN. The empty text is the empty DN (the root).
    pub fn parse(text: &str) -> Result<Dn, DnError> {
        if text.len() > MAX_DN_BYTES {
            return Err(DnError { at: MAX_DN_BYTES, reason: "the DN is too long" });
        }
        Parser { s: text.as_bytes(), i: 0 }.dn()
    }

    /// How many RDNs the DN has.
    pub fn len(&self) -> usize {
        self.rdns.len()
    }

    /// Whether this is the empty DN.
    pub fn is_empty(&self) -> bool {
        self.rdns.is_empty()
    }

    /// A text that is equal for two DNs exactly when the DNs are equal.
    pub fn key(&self) -> String {
        let mut out = String::new();
        for (i, rdn) in self.rdns.iter().enumerate() {
            if i > 0 {
                out.push(',');
            }
            for (j, (ty, value)) in rdn.iter().enumerate() {
                if j > 0 {
                    out.push('+');
                }
                out.push_str(ty);
                out.push('=');
                match value {
                    Value::Text(text) => out.push_str(&crate::escape::dn_value(text)),
                    Value::Ber(bytes) => {
                        out.push('#');
                        for b in bytes {
                            let _ = write!(out, "{b:02x}");
                        }
                    }
                }
            }
        }
        out
    }
}

/// The form a group is compared in: [`Dn::key`] for a DN, else the text in ASCII lower
/// case (how group names of other providers compare).
pub fn group_key(text: &str) -> String {
    match Dn::parse(text) {
        Ok(dn) if !dn.is_empty() => dn.key(),
        _ => text.to_ascii_lowercase(),
    }
}

/// NFKC, full case folding, NFKC again: Unicode's compatibility caseless form.
fn fold(text: &str) -> String {
    let folded = CASE.fold_string(&NFKC.normalize(text)).into_owned();
    NFKC.normalize(&folded).into_owned()
}

struct Parser<'a> {
    s: &'a [u8],
    i: usize,
}

impl Parser<'_> {
    fn fail<T>(&self, reason: &'static str) -> Result<T, DnError> {
        Err(DnError { at: self.i, reason })
    }

    fn peek(&self) -> Option<u8> {
        self.s.get(self.i).copied()
    }

    fn skip_spaces(&mut self) {
        while self.peek() == Some(b' ') {
            self.i += 1;
        }
    }

    fn dn(mut self) -> Result<Dn, DnError> {
        let mut rdns = Vec::new();
        self.skip_spaces();
        if self.peek().is_none() {
            return Ok(Dn { rdns });
        }
        loop {
            let mut rdn = vec![self.atav()?];
            loop {
                match self.peek() {
                    Some(b'+') => {
                        self.i += 1;
                        rdn.push(self.atav()?);
                    }
                    Some(b',') | None => break,
                    Some(_) => return self.fail("expected `,` or `+`"),
                }
            }
            rdn.sort();
            if rdn.windows(2).any(|w| w[0].0 == w[1].0) {
                return self.fail("an RDN names the same attribute type twice");
            }
            rdns.push(rdn);
            match self.peek() {
                None => return Ok(Dn { rdns }),
                _ => self.i += 1,
            }
        }
    }

    /// `type = value`, with the spaces around it.
    fn atav(&mut self) -> Result<(String, Value), DnError> {
        self.skip_spaces();
        let ty = self.attribute_type()?;
        self.skip_spaces();
        if self.peek() != Some(b'=') {
            return self.fail("expected `=` after the attribute type");
        }
        self.i += 1;
        self.skip_spaces();
        let value = if self.peek() == Some(b'#') {
            self.i += 1;
            Value::Ber(self.hex_value()?)
        } else {
            Value::Text(fold(&self.string_value()?))
        };
        self.skip_spaces();
        Ok((ty, value))
    }

    fn attribute_type(&mut self) -> Result<String, DnError> {
        let start = self.i;
        while self.peek().is_some_and(|c| c.is_ascii_alphanumeric() || c == b'-' || c == b'.') {
            self.i += 1;
        }
        let ty = std::str::from_utf8(&self.s[start..self.i]).unwrap_or_default().to_ascii_lowercase();
        let ty = ty.strip_prefix("oid.").map(str::to_owned).unwrap_or(ty);
        let descr = ty.starts_with(|c: char| c.is_ascii_alphabetic())
            && ty.chars().all(|c| c.is_ascii_alphanumeric() || c == '-');
        let oid = !ty.is_empty()
            && ty.split('.').all(|p| !p.is_empty() && p.chars().all(|c| c.is_ascii_digit()))
            && ty.contains('.');
        if !descr && !oid {
            self.i = start;
            return self.fail("expected an attribute type such as `CN` or `2.5.4.3`");
        }
        Ok(KNOWN_OIDS.iter().find(|(o, _)| *o == ty).map_or(ty, |(_, name)| (*name).to_owned()))
    }

    /// The hex pairs of a `#hex` value, up to the next separator.
    fn hex_value(&mut self) -> Result<Vec<u8>, DnError> {
        let mut bytes = Vec::new();
        while let Some(hi) = self.peek().filter(u8::is_ascii_hexdigit) {
            let Some(lo) = self.s.get(self.i + 1).copied().filter(u8::is_ascii_hexdigit) else {
                self.i += 1;
                return self.fail("a `#` value needs pairs of hex digits");
            };
            bytes.push(hex(hi) << 4 | hex(lo));
            self.i += 2;
        }
        if bytes.is_empty() {
            return self.fail("a `#` value needs pairs of hex digits");
        }
        Ok(bytes)
    }

    /// A string value, unescaped; unescaped spaces at its end are not part of it.
    fn string_value(&mut self) -> Result<String, DnError> {
        let mut bytes = Vec::new();
        // Length of `bytes` up to the last character that counts (not a trailing space).
        let mut kept = 0;
        loop {
            match self.peek() {
                None | Some(b',' | b'+') => break,
                Some(b'\\') => {
                    self.i += 1;
                    match self.peek() {
                        Some(hi) if hi.is_ascii_hexdigit() => {
                            let Some(lo) = self.s.get(self.i + 1).copied().filter(u8::is_ascii_hexdigit)
                            else {
                                return self
                                    .fail("`\\` must be followed by two hex digits or a special character");
                            };
                            bytes.push(hex(hi) << 4 | hex(lo));
                            self.i += 2;
                        }
                        Some(c @ (b' ' | b'"' | b'#' | b'+' | b',' | b';' | b'<' | b'=' | b'>' | b'\\')) => {
                            bytes.push(c);
                            self.i += 1;
                        }
                        _ => {
                            return self
                                .fail("`\\` must be followed by two hex digits or a special character");
                        }
                    }
                    kept = bytes.len();
                }
                Some(b'"' | b';' | b'<' | b'>') => {
                    return self.fail("this character must be escaped with `\\`");
                }
                Some(0) => return self.fail("a NUL byte must be written `\\00`"),
                Some(c) => {
                    bytes.push(c);
                    self.i += 1;
                    if c != b' ' {
                        kept = bytes.len();
                    }
                }
            }
        }
        bytes.truncate(kept);
        if bytes.is_empty() {
            return self.fail("an attribute value is empty");
        }
        String::from_utf8(bytes).or_else(|_| self.fail("the value is not UTF-8 once unescaped"))
    }
}

fn hex(c: u8) -> u8 {
    match c {
        b'0'..=b'9' => c - b'0',
        b'a'..=b'f' => c - b'a' + 10,
        _ => c.wrapping_sub(b'A').wrapping_add(10),
    }
}

#[cfg(test)]
mod tests;
