//! Property test: stripping removes every spelling of every injected header, every value
//! of it, and nothing else.

use proptest::prelude::*;
use proptest::sample::select;

use super::*;

const SUFFIXES: &[&str] =
    &["User", "Email", "Name", "Usergroups", "Permissions", "Provider", "Jwt", "Anything"];
const OTHERS: &[&str] =
    &["accept", "cookie", "x-deskgate", "x-deskgatex-user", "x-forwarded-for", "user-agent"];

/// `name` with each letter's case and each `-`'s spelling chosen by `flips`.
fn respell(name: &str, flips: &[bool]) -> String {
    name.chars()
        .zip(flips.iter().cycle())
        .map(|(c, flip)| match (c, flip) {
            ('-', true) => '_',
            (c, true) if c.is_ascii_lowercase() => c.to_ascii_uppercase(),
            (c, true) => c.to_ascii_lowercase(),
            (c, false) => c,
        })
        .collect()
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 256, failure_persistence: None, ..ProptestConfig::default() })]

    #[test]
    fn stripping_removes_every_spelling_of_every_identity_header(
        injected in prop::collection::vec((select(SUFFIXES), prop::collection::vec(any::<bool>(), 1..24), 1..4usize), 1..8),
        others in prop::collection::vec((select(OTHERS), 1..3usize), 0..4),
    ) {
        let names = HeaderNames::new("X-Deskgate-").expect("valid");
        let mut h = HeaderMap::new();
        let mut values = 0;
        for (suffix, flips, copies) in &injected {
            let name = HeaderName::from_bytes(respell(&format!("X-Deskgate-{suffix}"), flips).as_bytes()).expect("name");
            for i in 0..*copies {
                h.append(name.clone(), HeaderValue::from_str(&format!("spoof-{i}")).expect("value"));
                values += 1;
            }
        }
        let mut kept = 0;
        for (name, copies) in &others {
            for _ in 0..*copies {
                h.append(*name, HeaderValue::from_static("kept"));
                kept += 1;
            }
        }
        prop_assert_eq!(names.strip(&mut h), values);
        prop_assert!(h.keys().all(|n| !normalize_name(n.as_str()).starts_with("x-deskgate-")), "{:?}", h);
        prop_assert_eq!(h.len(), kept);
    }
}
