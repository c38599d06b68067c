//! One poll's response bodies, NUL-separated in call order, through the storagegrid adapter's parsing
//! and normalization (`sdash_collector::fuzzing::storagegrid`).
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    let _ = sdash_collector::fuzzing::storagegrid(data);
});
