//! Property test: every spelling of every forwarding header a client could forge is
//! stripped, with all its values, and nothing else is.

use proptest::prelude::*;
use proptest::sample::select;

use super::*;

const FORGED: &[&str] = &[
    "x-forwarded-for",
    "x-forwarded-host",
    "x-forwarded-proto",
    "x-forwarded-port",
    "x-forwarded-prefix",
    "forwarded",
    "x-real-ip",
    "x-client-ip",
];
const OTHERS: &[&str] = &["accept", "x-forwarded", "forwarded-for", "x-real-ipv6", "host", "x-deskgate-user"];

fn respell(name: &str, flips: &[bool]) -> String {
    name.chars()
        .zip(flips.iter().cycle())
        .map(|(c, flip)| match (c, flip) {
            ('-', true) => '_',
            (c, true) => c.to_ascii_uppercase(),
            (c, false) => c,
        })
        .collect()
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 256, failure_persistence: None, ..ProptestConfig::default() })]

    #[test]
    fn stripping_removes_every_spelling_of_every_forwarding_header(
        forged in prop::collection::vec((select(FORGED), prop::collection::vec(any::<bool>(), 1..20), 1..4usize), 1..8),
        others in prop::collection::vec((select(OTHERS), 1..3usize), 0..4),
    ) {
        let mut h = HeaderMap::new();
        for (name, flips, copies) in &forged {
            let name = HeaderName::from_bytes(respell(name, flips).as_bytes()).expect("name");
            for _ in 0..*copies {
                h.append(name.clone(), HeaderValue::from_static("6.6.6.6"));
            }
        }
        let mut kept = 0;
        for (name, copies) in &others {
            for _ in 0..*copies {
                h.append(*name, HeaderValue::from_static("kept"));
                kept += 1;
            }
        }
        strip(&mut h);
        prop_assert!(h.keys().all(|n| !is_forwarding_header(n)), "{:?}", h);
        prop_assert!(h.keys().all(|n| {
            let spelled = n.as_str().replace('_', "-");
            !FORGED.contains(&spelled.as_str())
        }), "{:?}", h);
        prop_assert_eq!(h.len(), kept);
    }
}
