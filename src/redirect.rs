//! Where a person may be sent after signing in or out: local paths, and https URLs on hosts
//! under the configured redirect domains.

use crate::policy::path::percent_decode;
use crate::policy::request_host;

/// Whether `host` is `domain` or a name under it, at a dot boundary (both lower case).
pub fn under_domain(host: &str, domain: &str) -> bool {
    host == domain || host.strip_suffix(domain).is_some_and(|label| label.len() > 1 && label.ends_with('.'))
}

/// `next` if it is a safe local path, or an https URL whose host is under one of `domains`
/// (lower case), else `None`. The URL may carry a port but no user information; its path
/// is held to the same rules as a local path.
pub fn safe_target<'a>(next: &'a str, domains: &[String]) -> Option<&'a str> {
    let Some(rest) = next.strip_prefix("https://") else {
        return safe_next(next);
    };
    if domains.is_empty() || next.len() > 2048 {
        return None;
    }
    let split = rest.find(['/', '?', '#']).unwrap_or(rest.len());
    let (authority, path) = rest.split_at(split);
    // `request_host` refuses `@`, `\`, `%`, whitespace and anything else a browser might
    // read as another host.
    let host = request_host(authority).filter(|h| !h.starts_with('['))?;
    if authority.trim() != authority || !domains.iter().any(|d| under_domain(&host, d)) {
        return None;
    }
    let path = if path.is_empty() || !path.starts_with('/') { format!("/{path}") } else { path.to_owned() };
    safe_next(&path)?;
    Some(next)
}

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

    fn domains() -> Vec<String> {
        vec!["help.test".into(), "example.com".into()]
    }

    #[test]
    fn https_urls_under_a_redirect_domain_are_kept() {
        for ok in [
            "https://help.test/",
            "https://help.test",
            "https://help.test:8443/kb?x=1",
            "https://app.example.com/a",
            "https://a.b.example.com?x",
            "/local",
        ] {
            assert_eq!(safe_target(ok, &domains()), Some(ok), "{ok}");
        }
    }

    #[test]
    fn urls_outside_the_redirect_domains_are_refused() {
        for bad in [
            "https://help.test.evil.example/",
            "https://evilhelp.test/",
            "https://evilexample.com/",
            "http://help.test/",
            "HTTPS://evil.example/",
            "https://help.test@evil.example/",
            "https://evil.example\\@help.test/",
            "https://evil.example%2fhelp.test/",
            "https://help.test%2eevil.example/",
            "https://help.test /",
            "https://help.test\t/",
            "https://[::1]/",
            "https://help.test//evil.example",
            "https://help.test/%2f%2fevil.example",
            "https://help.test/\\evil.example",
            "//help.test/",
            "https:/help.test/",
        ] {
            assert_eq!(safe_target(bad, &domains()), None, "{bad:?}");
        }
        assert_eq!(safe_target("https://help.test/", &[]), None, "no domains: local paths only");
    }

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
