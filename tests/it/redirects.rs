//! Redirects after sign-in go to local paths only.

use crate::support::*;

/// Return targets that leave the site, in the spellings browsers and servers read as another
/// host: every one must fall back to `/`.
pub const OPEN_REDIRECTS: [&str; 7] = [
    "//evil.example",
    "/\\evil.example",
    "/%5cevil.example",
    "https://evil.example",
    "/%09/evil.example",
    "javascript:alert(1)",
    "/%2F%2Fevil.example",
];

#[tokio::test]
async fn open_redirects_after_login_are_refused() {
    let stack = start(Options::default()).await;
    account(&stack, "r@example.org", "R", "correct horse battery", &[]).await;
    for evil in OPEN_REDIRECTS {
        let mut b = Browser::new(&stack);
        let page = b.sign_in_next("r@example.org", "correct horse battery", evil).await;
        assert_eq!(page.status, 303, "{evil}");
        assert_eq!(page.location(), Some("/"), "{evil} was refused");
        let form = b.get(&format!("/.deskgate/login?next={}", urlencode(evil))).await;
        assert_eq!(form.status, 303, "signed in: sent on");
        assert_eq!(form.location(), Some("/"), "{evil}");
    }
    let mut b = Browser::new(&stack);
    let page = b.sign_in_next("r@example.org", "correct horse battery", "/kb/advanced?tab=1").await;
    assert_eq!(page.location(), Some("/kb/advanced?tab=1"), "a local path is kept");
}

fn urlencode(s: &str) -> String {
    s.bytes()
        .map(|b| if b.is_ascii_alphanumeric() { char::from(b).to_string() } else { format!("%{b:02X}") })
        .collect()
}
