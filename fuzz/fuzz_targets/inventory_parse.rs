//! Inventory TOML text (`sdash_collector::fuzzing::inventory`); no secret is read.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    let _ = sdash_collector::fuzzing::inventory(data);
});
