//! Config loading (syntax, types, unknown keys, compile) on arbitrary text. Seeds: `fuzz/seeds/config/`.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    deskgate::fuzzing::config(data);
});
