//! MessagePack encoding with named fields, and decoding that validates and never panics.

use serde::Serialize;
use serde::de::DeserializeOwned;

use crate::records::{Envelope, Record, SCHEMA_VERSION};
use crate::subjects::{self, Kind};

/// Largest payload the contract allows; anything larger is rejected by decoders.
pub const MAX_PAYLOAD_BYTES: usize = 1024 * 1024;

/// Why a message could not be accepted.
#[derive(Debug, thiserror::Error)]
pub enum DecodeError {
    #[error("subject {0:?} is not an sdash v1 subject")]
    Subject(String),
    #[error("payload of {0} bytes is larger than the {MAX_PAYLOAD_BYTES}-byte limit")]
    TooLarge(usize),
    #[error("invalid MessagePack: {0}")]
    Format(#[from] rmp_serde::decode::Error),
    #[error("unsupported schema version {0} (this reader understands {SCHEMA_VERSION})")]
    Version(u16),
    #[error("invalid record: {0}")]
    Invalid(String),
}

/// Encodes a record as a MessagePack map with named fields.
pub fn encode<T: Serialize>(value: &T) -> Result<Vec<u8>, rmp_serde::encode::Error> {
    rmp_serde::to_vec_named(value)
}

/// Decodes any MessagePack value; see [`decode_record`] for validated bus records.
pub fn decode<T: DeserializeOwned>(bytes: &[u8]) -> Result<T, DecodeError> {
    if bytes.len() > MAX_PAYLOAD_BYTES {
        return Err(DecodeError::TooLarge(bytes.len()));
    }
    Ok(rmp_serde::from_slice(bytes)?)
}

/// Decodes and validates a message received on `subject`: the kind comes from the subject, the
/// schema version must be ours, and the envelope's system id must match the subject's id.
pub fn decode_record(subject: &str, bytes: &[u8]) -> Result<Record, DecodeError> {
    let (kind, id) =
        subjects::parse(subject).ok_or_else(|| DecodeError::Subject(subject.to_owned()))?;
    // Check the version before the body so a v2 record is reported as such, not as a shape error.
    let version: VersionProbe = decode(bytes)?;
    if version.schema != SCHEMA_VERSION {
        return Err(DecodeError::Version(version.schema));
    }
    let record = match kind {
        Kind::System => Record::System(decode(bytes)?),
        Kind::Snapshot => Record::Snapshot(decode(bytes)?),
        Kind::Event => Record::Event(decode(bytes)?),
        Kind::Collector => Record::Collector(decode(bytes)?),
    };
    validate(&record, kind, id)?;
    Ok(record)
}

#[derive(serde::Deserialize)]
struct VersionProbe {
    schema: u16,
}

fn validate(record: &Record, kind: Kind, subject_id: &str) -> Result<(), DecodeError> {
    fn envelope<T>(e: &Envelope<T>, kind: Kind, subject_id: &str) -> Result<(), DecodeError> {
        if e.event_id.is_empty() || e.event_id.len() > 128 {
            return Err(DecodeError::Invalid(
                "event_id must have 1 to 128 characters".into(),
            ));
        }
        if e.observed_at <= 0 {
            return Err(DecodeError::Invalid(format!(
                "observed_at {} is not a time",
                e.observed_at
            )));
        }
        let id = if kind == Kind::Collector {
            &e.collector_id
        } else {
            &e.system_id
        };
        if id != subject_id {
            return Err(DecodeError::Invalid(format!(
                "id {id:?} in the record does not match subject id {subject_id:?}"
            )));
        }
        if kind != Kind::Collector && !crate::valid_system_id(id) {
            return Err(DecodeError::Invalid(format!(
                "system id {id:?} is not [a-z0-9_-]{{1,64}}"
            )));
        }
        Ok(())
    }
    match record {
        Record::System(e) => envelope(e, kind, subject_id),
        Record::Snapshot(e) => {
            envelope(e, kind, subject_id)?;
            if let Some(c) = &e.body.capacity
                && c.used_bytes > c.total_bytes.saturating_mul(4).max(c.total_bytes)
            {
                return Err(DecodeError::Invalid(
                    "used_bytes is implausibly larger than total_bytes".into(),
                ));
            }
            Ok(())
        }
        Record::Event(e) => envelope(e, kind, subject_id),
        Record::Collector(e) => envelope(e, kind, subject_id),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::records::*;

    fn snapshot() -> Envelope<Snapshot> {
        let mut body = Snapshot::failed(Vendor::Pure, Status::Online, String::new(), 12);
        body.error = None;
        body.capacity = Some(Capacity {
            total_bytes: 100,
            used_bytes: 40,
            free_bytes: 60,
            data_reduction: Some(4.2),
        });
        Envelope::new("c1", "fa-01", body)
    }

    #[test]
    fn snapshot_round_trips_with_named_fields() {
        let env = snapshot();
        let bytes = encode(&env).expect("encode");
        // Named fields: a subscriber in another language sees keys, not positions.
        let generic: serde_json::Value = rmp_serde::from_slice(&bytes).expect("generic decode");
        assert_eq!(generic["body"]["capacity"]["total_bytes"], 100);
        assert_eq!(generic["body"]["status"], "online");
        let back = decode_record("sdash.v1.snapshot.fa-01", &bytes).expect("decode");
        assert_eq!(back, Record::Snapshot(env));
    }

    #[test]
    fn unknown_fields_are_ignored_and_missing_optional_fields_default() {
        let value = serde_json::json!({
            "schema": 1, "event_id": "e1", "collector_id": "c", "system_id": "s1", "observed_at": 5,
            "future_field": [1, 2, 3],
            "body": {"level": "info", "category": "connection", "message": "hi", "new_thing": true}
        });
        let bytes = encode(&value).expect("encode");
        let Record::Event(e) = decode_record("sdash.v1.event.s1", &bytes).expect("decode") else {
            panic!("not an event")
        };
        assert_eq!(e.body.details, None);
        assert_eq!(e.body.message, "hi");
    }

    #[test]
    fn garbage_truncated_oversized_and_wrong_version_are_errors() {
        let bytes = encode(&snapshot()).expect("encode");
        let subject = "sdash.v1.snapshot.fa-01";
        assert!(decode_record(subject, b"\xc1\xff garbage").is_err());
        assert!(decode_record(subject, &bytes[..bytes.len() / 2]).is_err());
        assert!(decode_record(subject, &[]).is_err());
        assert!(matches!(
            decode_record(subject, &vec![0x90; MAX_PAYLOAD_BYTES + 1]),
            Err(DecodeError::TooLarge(_))
        ));
        let mut v2 = snapshot();
        v2.schema = 2;
        let v2 = encode(&v2).expect("encode");
        assert!(matches!(
            decode_record(subject, &v2),
            Err(DecodeError::Version(2))
        ));
        // The record must be about the subject's system.
        assert!(matches!(
            decode_record("sdash.v1.snapshot.other", &bytes),
            Err(DecodeError::Invalid(_))
        ));
        // An event body on a snapshot subject is a shape error.
        let ev = Envelope::new(
            "c",
            "fa-01",
            EventRecord {
                level: Level::Info,
                category: Category::Connection,
                message: "m".into(),
                details: None,
                http_status: None,
                endpoint: None,
            },
        );
        assert!(decode_record(subject, &encode(&ev).expect("encode")).is_err());
        assert!(decode_record("garbage", &bytes).is_err());
    }

    #[test]
    fn every_prefix_of_a_message_decodes_without_panicking() {
        let bytes = encode(&snapshot()).expect("encode");
        for end in 0..bytes.len() {
            let _ = decode_record("sdash.v1.snapshot.fa-01", &bytes[..end]);
        }
    }
}
