//! The bus decoder as the fuzz target `bus_decode` (`fuzz/`) and its corpus replay test
//! (`proto/tests/fuzz_corpus.rs`) both run it: one function, so the test replays exactly what was
//! fuzzed. Not part of the contract; see `FUZZING.md`.

use crate::codec::{DecodeError, decode_record_at, encode};
use crate::records::Record;
use crate::subjects::Kind;

/// The system id (and collector id) in the subject of every fixed-kind input; seeds use it.
pub const FUZZ_ID: &str = "fuzz-01";

/// The reader's clock during fuzzing (2027-01-15), fixed so that an input decodes the same way
/// every time it is replayed.
pub const FUZZ_NOW_MS: i64 = 1_800_000_000_000;

/// The subject and payload a fuzz input stands for. The first byte chooses the subject: values
/// below the number of record kinds select `sdash.v1.<kind>.fuzz-01` (commands:
/// `sdash.v1.command.acknowledge.fuzz-01`); any other value means the
/// rest is `<subject> NUL <payload>`, so that subject parsing is fuzzed as well.
pub fn split_input(data: &[u8]) -> Option<(String, &[u8])> {
    let (&selector, rest) = data.split_first()?;
    match Kind::ALL.get(usize::from(selector)) {
        Some(Kind::Command) => Some((crate::CommandKind::Acknowledge.subject(FUZZ_ID), rest)),
        Some(kind) => Some((kind.subject(FUZZ_ID), rest)),
        None => {
            let nul = rest.iter().position(|&b| b == 0)?;
            let subject = String::from_utf8_lossy(&rest[..nul]).into_owned();
            Some((subject, &rest[nul + 1..]))
        }
    }
}

/// The fuzz input for a payload on the fixed-id subject of `kind` (how seeds are written).
pub fn input_for(kind: Kind, payload: &[u8]) -> Vec<u8> {
    let selector = Kind::ALL.iter().position(|&k| k == kind).unwrap_or(0);
    let mut input = vec![u8::try_from(selector).unwrap_or(0)];
    input.extend_from_slice(payload);
    input
}

/// Decodes one fuzz input as the writer and the API decode a bus message. Never panics for any
/// input unless a decoder bug is found: a record that decodes must encode again, and that encoding
/// must decode to a record that encodes to the same bytes (what the writer stores is what was
/// published). `None` when the input names no subject.
pub fn decode_input(data: &[u8]) -> Option<Result<Record, DecodeError>> {
    let (subject, payload) = split_input(data)?;
    let decoded = decode_record_at(&subject, payload, FUZZ_NOW_MS);
    if let Ok(record) = &decoded {
        let once = encode_record(record);
        let again = decode_record_at(&subject, &once, FUZZ_NOW_MS).unwrap_or_else(|e| {
            panic!("a decoded record no longer decodes after encoding: {e} ({record:?})")
        });
        assert_eq!(
            once,
            encode_record(&again),
            "a record changed on its way through encode and decode"
        );
    }
    Some(decoded)
}

/// The payload of a record as a producer publishes it: the envelope, MessagePack with names.
fn encode_record(record: &Record) -> Vec<u8> {
    let encoded = match record {
        Record::System(e) => encode(e),
        Record::Snapshot(e) => encode(e),
        Record::Event(e) => encode(e),
        Record::Collector(e) => encode(e),
        Record::Change(e) => encode(e),
        Record::Command(e) => encode(e),
        Record::History(e) => encode(e),
    };
    encoded.unwrap_or_else(|e| panic!("a decoded record does not encode: {e}"))
}
