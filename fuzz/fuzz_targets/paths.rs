//! Path normalization, every Unicode reading, and the decision under a fixed rule set. Seeds: `fuzz/seeds/paths/`.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    deskgate::fuzzing::paths(data);
});
