//! A request target `path?query` through the API's parameter parsing
//! (`sdash_api::fuzzing::query`).
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    let _ = sdash_api::fuzzing::query(data);
});
