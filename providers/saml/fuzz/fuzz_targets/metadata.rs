//! IdP metadata parsing on arbitrary input. Seeds: `fuzz/seeds/metadata/`.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    deskgate_saml::fuzzing::metadata(data);
});
