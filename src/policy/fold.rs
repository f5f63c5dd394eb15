//! The ways a backend might fold a non-ASCII path before it routes it.
//!
//! A backend that lower-cases with a plain `to_lowercase` routes `/chat/ſales` nowhere
//! special, but Java's `equalsIgnoreCase`, .NET's `OrdinalIgnoreCase`, Unicode case folding,
//! NFKC and a Turkic locale all read it as `/chat/sales`. deskgate cannot know which one its
//! backend uses, so a path is decided under each of them (see `decide`) and the most
//! restrictive decision wins. NFKC can create `/`, `\`, `.` and `;` (`／`, `＼`, `．`, `；`,
//! `‥`), so every reading is split into segments again, dot segments and `;params` included.
//!
//! Each reading applies to the path as forwarded (the normalized segments joined by `/`),
//! because that is what the backend receives and folds. Tables come from ICU4X
//! (`icu_casemap`, `icu_normalizer`); none are written here.

use icu_casemap::{CaseMapper, CaseMapperBorrowed};
use icu_normalizer::ComposingNormalizerBorrowed;

use super::path::split_segments;

const CASE: CaseMapperBorrowed<'static> = CaseMapper::new();
const NFC: ComposingNormalizerBorrowed<'static> = ComposingNormalizerBorrowed::new_nfc();
const NFKC: ComposingNormalizerBorrowed<'static> = ComposingNormalizerBorrowed::new_nfkc();

/// Every reading of `segments` (not all ASCII) whose segments differ from `lower` (the
/// plain lower-case reading) and from each other.
pub(super) fn variants(segments: &[String], lower: &[String]) -> Vec<Vec<String>> {
    let joined = segments.join("/");
    let mut out: Vec<Vec<String>> = Vec::new();
    for reading in readings(&joined) {
        let (segs, _) = split_segments(&reading);
        if segs != lower && !out.contains(&segs) {
            out.push(segs);
        }
    }
    out
}

/// The path as each kind of backend would compare it.
fn readings(path: &str) -> [String; 6] {
    [
        // Java's equalsIgnoreCase, .NET's OrdinalIgnoreCase: per character, simple upper
        // then lower case (`ſ`→`S`→`s`, `ı`→`I`→`i`, `İ`→`i`, Kelvin `K`→`k`).
        path.chars().map(|c| CASE.simple_lowercase(CASE.simple_uppercase(c))).collect(),
        // Unicode full case folding (Python's casefold, ICU's fold): `ß`→`ss`.
        CASE.fold_string(path).into_owned(),
        // Canonical composition first (a decomposed `é` meets a composed one), then folding.
        CASE.fold_string(&NFC.normalize(path)).into_owned(),
        // NFKC then lower case: fullwidth letters and `／` become ASCII.
        NFKC.normalize(path).to_lowercase(),
        nfkc_casefold(path),
        // A Turkic reading that merges dotless and dotted i with i.
        nfkc_casefold(&path.replace(['ı', 'İ'], "i")),
    ]
}

/// NFKC, full case folding, NFKC again: Unicode's compatibility caseless form.
fn nfkc_casefold(path: &str) -> String {
    let folded = CASE.fold_string(&NFKC.normalize(path)).into_owned();
    NFKC.normalize(&folded).into_owned()
}
