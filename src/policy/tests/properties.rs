//! Property tests: normalization is a fixpoint, and every spelling a backend treats as the
//! same path is decided as that path.

use proptest::prelude::*;
use proptest::sample::{select, subsequence};

use super::*;

const WORDS: &[&str] =
    &["chat", "sales", "support", "kb", "advanced", "billing", "api", "v1", "admin", "news", "x"];
const PERMISSIONS: &[&str] = &[
    "portal.view",
    "kb.read",
    "kb.category.advanced",
    "news.read",
    "chat.sales",
    "chat.support",
    "api.admin",
    "billing.view",
];
/// Ways to write the `/` between two segments that every backend reads as one `/`.
const ASCII_SEPARATORS: &[&str] =
    &["/", "//", "\\", "%2f", "%2F", "%5c", "/./", "/%2e/", "/x/../", "/%2E/x/%2e%2E/"];
/// And the ones a backend that applies NFKC reads as `/`.
const UNICODE_SEPARATORS: &[&str] = &["／", "%EF%BC%8F", "＼", "/．/", "/x/．．/"];
const PARAMS: &[&str] = &[";", ";jsessionid=1", ";a=b;c", ";/"];

fn full_policy() -> Policy {
    let rules = [
        ("/", "portal.view"),
        ("/kb", "kb.read"),
        ("/kb/advanced", "kb.category.advanced"),
        ("/news", "news.read"),
        ("/chat/sales", "chat.sales"),
        ("/chat/support", "chat.support"),
        ("/api/*/admin", "api.admin"),
        ("/billing", "billing.view"),
    ];
    Policy::new(rules.iter().map(|(p, perm)| Rule::new(p, perm).expect("valid")).collect())
}

/// How one letter is written.
#[derive(Debug, Clone, Copy)]
struct Letter {
    flip_case: bool,
    percent: Option<bool>,
    /// 0: as is; otherwise a Unicode spelling that folds to it (`ſ`, `K`, `ı`, `İ`,
    /// fullwidth), where the letter has one.
    unicode: u8,
}

fn letter() -> impl Strategy<Value = Letter> {
    (any::<bool>(), prop::option::of(any::<bool>()), 0u8..4)
        .prop_map(|(flip_case, percent, unicode)| Letter { flip_case, percent, unicode })
}

#[derive(Debug, Clone)]
struct Segment {
    word: &'static str,
    letters: Vec<Letter>,
    separator: usize,
    params: Option<&'static str>,
}

fn segment() -> impl Strategy<Value = Segment> {
    (
        select(WORDS),
        prop::collection::vec(letter(), 8),
        0..ASCII_SEPARATORS.len() + UNICODE_SEPARATORS.len(),
        prop::option::of(select(PARAMS)),
    )
        .prop_map(|(word, letters, separator, params)| Segment { word, letters, separator, params })
}

fn percent_encode(c: char, upper_hex: bool, out: &mut String) {
    let mut buf = [0u8; 4];
    for b in c.encode_utf8(&mut buf).bytes() {
        out.push_str(&if upper_hex { format!("%{b:02X}") } else { format!("%{b:02x}") });
    }
}

fn unicode_spelling(c: char, choice: u8) -> Option<char> {
    let lower = c.to_ascii_lowercase();
    match (lower, choice) {
        (_, 0) => None,
        ('s', 1) => Some('\u{17f}'),
        ('k', 1) => Some('\u{212a}'),
        ('i', 1) => Some('\u{131}'),
        ('i', 2) => Some('\u{130}'),
        (l, _) if l.is_ascii_lowercase() => {
            let base = if choice % 2 == 0 { 0xff41 } else { 0xff21 };
            char::from_u32(base + u32::from(l as u8 - b'a'))
        }
        _ => None,
    }
}

/// The base path and one spelling of it; `unicode` allows the Unicode spellings.
fn spell(segments: &[Segment], unicode: bool) -> (String, String) {
    let mut base = String::new();
    let mut spelled = String::new();
    let separator = |s: &Segment| {
        if unicode && s.separator >= ASCII_SEPARATORS.len() {
            UNICODE_SEPARATORS[s.separator - ASCII_SEPARATORS.len()]
        } else {
            ASCII_SEPARATORS[s.separator % ASCII_SEPARATORS.len()]
        }
    };
    for (i, s) in segments.iter().enumerate() {
        let sep = separator(s);
        base.push('/');
        base.push_str(s.word);
        spelled.push_str(if spelled.is_empty() && !sep.starts_with('/') { "/" } else { "" });
        spelled.push_str(sep);
        for (c, l) in s.word.chars().zip(s.letters.iter().cycle()) {
            let c = if l.flip_case { c.to_ascii_uppercase() } else { c };
            let c = if unicode { unicode_spelling(c, l.unicode).unwrap_or(c) } else { c };
            match l.percent {
                Some(upper_hex) => percent_encode(c, upper_hex, &mut spelled),
                None => spelled.push(c),
            }
        }
        // `;params` end at the next `/`; before a `／` they would swallow the rest of the
        // path, which is then another path (the one deskgate forwards).
        if segments.get(i + 1).is_none_or(|next| !matches!(separator(next), "／" | "%EF%BC%8F" | "＼")) {
            spelled.extend(s.params);
        }
    }
    (base, spelled)
}

fn severity(d: &Decision) -> u8 {
    match d {
        Decision::Allow => 0,
        Decision::LoginRequired => 1,
        Decision::Deny(_) => 2,
    }
}

/// Characters and pieces that path tricks are made of, ASCII and Unicode.
const PIECES: &[&str] = &[
    "/",
    "//",
    "\\",
    ".",
    "..",
    "%2e",
    "%2f",
    "%5c",
    ";",
    ";x=1",
    "a",
    "B",
    "chat",
    "sales",
    "%73",
    "é",
    "e\u{301}",
    "%c3%a9",
    "ß",
    "ſ",
    "ı",
    "İ",
    "K",
    "／",
    "．",
    "．．",
    "‥",
    "；",
    "＼",
    "ｓ",
    "Ａ",
    "%EF%BC%8F",
    "Σ",
    "ς",
    "ﬁ",
    "*",
    "%20",
    "~",
    "\u{2126}",
    "ǅ",
];

proptest! {
    #![proptest_config(ProptestConfig { cases: 256, failure_persistence: None, ..ProptestConfig::default() })]

    #[test]
    fn normalization_is_idempotent(pieces in prop::collection::vec(select(PIECES), 0..12)) {
        let raw = format!("/{}", pieces.concat());
        if let Ok(once) = normalize(&raw) {
            let twice = normalize(&once.encoded());
            prop_assert_eq!(twice.as_ref(), Ok(&once), "{}", raw);
        }
    }

    #[test]
    fn every_ascii_spelling_of_a_path_is_decided_as_the_path(
        segments in prop::collection::vec(segment(), 1..4),
        granted in subsequence(PERMISSIONS, 0..=PERMISSIONS.len()),
    ) {
        let (base, spelled) = spell(&segments, false);
        let p = full_policy();
        let g = grants(&granted);
        let (base, spelled_path) = (path(&base), path(&spelled));
        prop_assert_eq!(spelled_path.lower(), base.lower(), "{}", spelled);
        for who in [Who::Guest(&g), Who::SignedIn(&g)] {
            prop_assert_eq!(decide(&p, true, who, &Method::GET, &spelled_path), decide(&p, true, who, &Method::GET, &base), "{}", spelled);
        }
    }

    #[test]
    fn every_unicode_spelling_of_a_path_is_decided_at_least_as_strictly(
        segments in prop::collection::vec(segment(), 1..4),
        granted in subsequence(PERMISSIONS, 0..=PERMISSIONS.len()),
    ) {
        let (base, spelled) = spell(&segments, true);
        let p = full_policy();
        let (base, spelled_path) = (path(&base), path(&spelled));
        // One reading of the spelling is always the path it folds to.
        prop_assert!(spelled_path.readings().any(|r| r == base.lower()), "{}", spelled);
        let g = grants(&granted);
        for who in [Who::Guest(&g), Who::SignedIn(&g)] {
            let (b, s) = (decide(&p, true, who, &Method::GET, &base), decide(&p, true, who, &Method::GET, &spelled_path));
            prop_assert!(severity(&s) >= severity(&b), "{}: {:?} is laxer than {:?}", spelled, s, b);
        }
        // Someone granted everything the other readings could reach is decided exactly as
        // for the plain path: with everything, or everything but the plain path's rule.
        let all = grants(PERMISSIONS);
        prop_assert_eq!(decide(&p, true, Who::SignedIn(&all), &Method::GET, &spelled_path), Decision::Allow);
        if let Some(rule) = p.rule_for(&Method::GET, &base) {
            let but: Vec<&str> = PERMISSIONS.iter().copied().filter(|q| Some(*q) != rule.permission()).collect();
            let g = grants(&but);
            prop_assert_eq!(
                decide(&p, true, Who::SignedIn(&g), &Method::GET, &spelled_path),
                decide(&p, true, Who::SignedIn(&g), &Method::GET, &base),
                "{}", spelled
            );
        }
    }
}
