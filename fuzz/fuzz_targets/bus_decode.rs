//! A bus message: the first byte picks the subject, the rest is the MessagePack payload
//! (`sdash_proto::fuzzing::decode_input`).
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    let _ = sdash_proto::fuzzing::decode_input(data);
});
