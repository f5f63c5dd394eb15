//! Cookie parsing, session lookup and removal of the session cookie on arbitrary Cookie headers. Seeds: `fuzz/seeds/cookies/`.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    deskgate::fuzzing::cookies(data);
});
