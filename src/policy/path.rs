//! Path normalization, settled once before any rule is matched.
//!
//! The rules: percent-escapes are decoded once (an encoded `/` or `\` becomes a
//! separator); `\` is a separator; `;params` are dropped from every segment; empty and `.`
//! segments go; `..` removes the segment before it and never climbs above the root;
//! control characters and malformed escapes are refused. Rules match case-insensitively,
//! so `/CHAT/sales` is decided as `/chat/sales` whatever the backend's own case rule is.
//! The upstream is sent the normalized path (case kept), so it serves what was decided.

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
    trailing_slash: bool,
}

impl NormalPath {
    /// Decoded segments, case kept.
    pub fn segments(&self) -> &[String] {
        &self.segments
    }

    /// Lower-cased segments, for matching.
    pub fn lower(&self) -> &[String] {
        &self.lower
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
    let lower = segments.iter().map(|s| s.to_lowercase()).collect();
    Ok(NormalPath { segments, lower, trailing_slash: last_was_dir })
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
