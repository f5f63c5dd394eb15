//! Where a person may be sent after signing in or out: local paths only.

use crate::policy::path::percent_decode;

/// `next` if it is a safe local path, else `None`.
///
/// Refused: anything not starting with exactly one `/`; `//host` and `/\host` (browsers
/// treat both as another host); backslashes, whitespace and control characters, raw or
/// percent-encoded (`%5c`, `%09`, …), which browsers strip or fold into `/`; other schemes.
pub fn safe_next(next: &str) -> Option<&str> {
    if next.len() > 2048 || !next.starts_with('/') {
        return None;
    }
    let suspicious =
        |s: &str| s.starts_with("//") || s.chars().any(|c| c == '\\' || c.is_whitespace() || c.is_control());
    if suspicious(next) {
        return None;
    }
    // Check the decoded path too, and the path decoded twice, since some servers decode
    // once more before redirecting. The query and fragment cannot move the host.
    let path = next.split(['?', '#']).next().unwrap_or(next);
    let once = percent_decode(path).ok()?;
    if suspicious(&once) {
        return None;
    }
    let twice = percent_decode(&once).unwrap_or_else(|_| once.clone());
    if suspicious(&twice) {
        return None;
    }
    Some(next)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn local_paths_are_kept() {
        for ok in ["/", "/kb/advanced?x=1", "/chat/sales#top", "/news?q=a%20b%2F%5c", "/caf%C3%A9"] {
            assert_eq!(safe_next(ok), Some(ok), "{ok}");
        }
    }

    #[test]
    fn redirects_that_leave_the_site_are_refused() {
        for bad in [
            "//evil.example",
            "/\\evil.example",
            "/%5cevil.example",
            "/%5Cevil.example",
            "https://evil.example",
            "javascript:alert(1)",
            "/%09/evil.example",
            "/%2f/evil.example",
            "/%252f%252fevil.example",
            "/\t/evil.example",
            " /x",
            "",
            "evil.example",
            "/%0d%0aSet-Cookie:x=1",
            "/a%20b",
        ] {
            assert_eq!(safe_next(bad), None, "{bad:?}");
        }
    }
}
