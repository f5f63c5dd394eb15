//! Path normalization, settled once before any rule is matched.
//!
//! The rules: percent-escapes are decoded once (an encoded `/` or `\` becomes a
//! separator); `\` is a separator; `;params` are dropped from every segment; empty and `.`
//! segments go; `..` removes the segment before it and never climbs above the root;
//! control characters and malformed escapes are refused. The upstream is sent the
//! normalized path (case and Unicode form kept), so it serves what was decided.
//!
//! Rules match without regard to case, and a path is decided the same however a backend
//! might fold its case or Unicode form: an all-ASCII path has one reading, its ASCII lower
//! case (`/CHAT/sales` is `/chat/sales`); a path with other characters is also read as
//! Java's `equalsIgnoreCase` and .NET's `OrdinalIgnoreCase` would (per character, upper then
//! lower case), under full Unicode case folding (after NFC too), under NFKC with lower case
//! or folding, and with the Turkic `ı` and `İ` taken as `i` (see `fold.rs`). Each reading
//! is split into segments again, since NFKC turns `／` into `/` and `．．` into `..`. The
//! decision is made under every reading and the most restrictive one wins, so
//! `/chat/%C5%BFales` (`ſ`), `/b%C4%B1ll%C4%B1ng` (`ı`), Kelvin `K` and `／ｃｈａｔ／ｓａｌｅｓ`
//! are decided as `/chat/sales` and `/billing` are.

/// Why a path was refused outright.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum PathError {
    /// A `%` not followed by two hex digits, or escapes that are not UTF-8.
    #[error("malformed percent-encoding")]
    BadEncoding,
    /// A NUL or other control character.
    #[error("control character in path")]
    ControlCharacter,
}

/// A decoded, normalized request path.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NormalPath {
    segments: Vec<String>,
    lower: Vec<String>,
    /// The other readings of the path (see the module doc) whose segments differ from
    /// `lower`; empty, and never allocated, for an all-ASCII path.
    folded: Vec<Vec<String>>,
    trailing_slash: bool,
}

impl NormalPath {
    /// Decoded segments, case kept.
    pub fn segments(&self) -> &[String] {
        &self.segments
    }

    /// Lower-cased segments: the plain reading. Decisions use every reading, through
    /// [`NormalPath::readings`].
    pub fn lower(&self) -> &[String] {
        &self.lower
    }

    /// The segments of every distinct reading of the path, the lower-cased one first.
    pub fn readings(&self) -> impl Iterator<Item = &[String]> {
        std::iter::once(self.lower.as_slice()).chain(self.folded.iter().map(Vec::as_slice))
    }

    /// The normalized path, re-encoded for the upstream.
    pub fn encoded(&self) -> String {
        let mut out = String::with_capacity(16 * self.segments.len().max(1));
        for seg in &self.segments {
            out.push('/');
            encode_segment(seg, &mut out);
        }
        if out.is_empty() || self.trailing_slash {
            out.push('/');
        }
        out
    }
}

impl std::fmt::Display for NormalPath {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.encoded())
    }
}

fn hex(b: u8) -> Option<u8> {
    match b {
        b'0'..=b'9' => Some(b - b'0'),
        b'a'..=b'f' => Some(b - b'a' + 10),
        b'A'..=b'F' => Some(b - b'A' + 10),
        _ => None,
    }
}

/// Decodes `%XX` escapes once.
pub fn percent_decode(raw: &str) -> Result<String, PathError> {
    let bytes = raw.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'%' {
            let hi = bytes.get(i + 1).copied().and_then(hex).ok_or(PathError::BadEncoding)?;
            let lo = bytes.get(i + 2).copied().and_then(hex).ok_or(PathError::BadEncoding)?;
            out.push(hi << 4 | lo);
            i += 3;
        } else {
            out.push(bytes[i]);
            i += 1;
        }
    }
    String::from_utf8(out).map_err(|_| PathError::BadEncoding)
}

/// Normalizes the path part of a request target (no query).
pub fn normalize(raw: &str) -> Result<NormalPath, PathError> {
    let decoded = percent_decode(raw)?;
    if decoded.chars().any(char::is_control) {
        return Err(PathError::ControlCharacter);
    }
    let (segments, trailing_slash) = split_segments(&decoded);
    // The hot path: ASCII has one reading and costs nothing more than lower-casing.
    let (lower, folded) = if segments.iter().all(|s| s.is_ascii()) {
        (segments.iter().map(|s| s.to_ascii_lowercase()).collect(), Vec::new())
    } else {
        let lower: Vec<String> = segments.iter().map(|s| s.to_lowercase()).collect();
        let folded = super::fold::variants(&segments, &lower);
        (lower, folded)
    };
    Ok(NormalPath { segments, lower, folded, trailing_slash })
}

/// Splits a decoded path into segments: `/` and `\` separate, `;params` go, empty and `.`
/// segments go, `..` removes the one before. Also tells whether it ends as a directory.
pub(super) fn split_segments(decoded: &str) -> (Vec<String>, bool) {
    let mut segments: Vec<String> = Vec::new();
    let mut last_was_dir = true;
    for piece in decoded.split(['/', '\\']) {
        let seg = piece.split(';').next().unwrap_or("");
        match seg {
            "" | "." => last_was_dir = true,
            ".." => {
                segments.pop();
                last_was_dir = true;
            }
            _ => {
                segments.push(seg.to_owned());
                last_was_dir = false;
            }
        }
    }
    (segments, last_was_dir)
}

fn encode_segment(seg: &str, out: &mut String) {
    for b in seg.bytes() {
        let keep = b.is_ascii_alphanumeric()
            || matches!(b, b'-' | b'.' | b'_' | b'~' | b'!' | b'$' | b'&' | b'\'' | b'(' | b')')
            || matches!(b, b'*' | b'+' | b',' | b'=' | b':' | b'@');
        if keep {
            out.push(b as char);
        } else {
            out.push('%');
            out.push(char::from(b"0123456789ABCDEF"[usize::from(b >> 4)]));
            out.push(char::from(b"0123456789ABCDEF"[usize::from(b & 15)]));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn norm(p: &str) -> String {
        normalize(p).map(|n| n.encoded()).unwrap_or_else(|e| format!("error: {e}"))
    }

    #[test]
    fn tricks_normalize_to_the_plain_path() {
        for trick in [
            "/chat/%73ales",
            "/chat//sales",
            "/kb/../chat/sales",
            "/chat/./sales",
            "/chat/sales;x",
            "/chat;jsessionid=1/sales",
            "/chat%2fsales",
            "/chat\\sales",
            "/chat%5csales",
            "/../../chat/sales",
            "/kb/%2e%2e/chat/sales",
        ] {
            assert_eq!(norm(trick), "/chat/sales", "{trick}");
        }
    }

    #[test]
    fn matching_is_case_insensitive_but_the_upstream_keeps_case() {
        let n = normalize("/CHAT/Sales").expect("valid");
        assert_eq!(n.lower(), ["chat", "sales"]);
        assert_eq!(n.encoded(), "/CHAT/Sales");
    }

    #[test]
    fn bad_escapes_and_control_characters_are_refused() {
        assert_eq!(normalize("/a%zz"), Err(PathError::BadEncoding));
        assert_eq!(normalize("/a%"), Err(PathError::BadEncoding));
        assert_eq!(normalize("/a%ff"), Err(PathError::BadEncoding));
        assert_eq!(normalize("/a%00b"), Err(PathError::ControlCharacter));
        assert_eq!(normalize("/a%0d%0aSet-Cookie"), Err(PathError::ControlCharacter));
    }

    #[test]
    fn re_encoding_escapes_what_is_not_a_path_character() {
        assert_eq!(norm("/a%20b/%3F/%25"), "/a%20b/%3F/%25");
        assert_eq!(norm("/"), "/");
        assert_eq!(norm(""), "/");
        assert_eq!(norm("/kb/"), "/kb/");
        assert_eq!(norm("/caf%C3%A9"), "/caf%C3%A9");
    }

    #[test]
    fn normalizing_twice_changes_nothing_more() {
        // The forwarded path is normalized again by nobody; it must already be a fixpoint
        // except for escapes that were literal `%` in the first place.
        for p in ["/a/b/../c", "/x;y/z", "/A//B/", "/%41b"] {
            let once = norm(p);
            assert_eq!(norm(&once), once, "{p}");
        }
    }
}
