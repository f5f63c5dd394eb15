//! Stripping of every spelling of the identity and forwarding headers. Seeds: `fuzz/seeds/headers/`.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    deskgate::fuzzing::headers(data);
});
