//! The assertion consumer service on arbitrary input: base64 → XML → structure → signature
//! → profile checks. Seeds: `fuzz/seeds/acs/` (real responses, accepted untouched).
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    for subject in deskgate_saml::fuzzing::acs(data) {
        // A signature cannot be stretched over anyone the seeds do not name.
        assert!(deskgate_saml::fuzzing::SEED_SUBJECTS.contains(&subject.as_str()), "accepted {subject:?}");
    }
});
