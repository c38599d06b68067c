//! One poll's response bodies, NUL-separated in call order, through the datadomain adapter's parsing
//! and normalization (`sdash_collector::fuzzing::datadomain`).
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    let _ = sdash_collector::fuzzing::datadomain(data);
});
