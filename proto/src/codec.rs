//! MessagePack encoding with named fields, and decoding that validates and never panics.

use serde::Serialize;
use serde::de::DeserializeOwned;

use crate::records::{Envelope, Record, SCHEMA_VERSION};
use crate::subjects::{self, Kind};

/// Largest payload the contract allows; anything larger is rejected by decoders.
pub const MAX_PAYLOAD_BYTES: usize = 1024 * 1024;

/// How far in the future (ms, against the reader's clock) an envelope's `observed_at` may be.
/// A producer with a clock further ahead would otherwise win every "newer wins" comparison until
/// real time caught up, so such records are rejected (the writer stores them as dead letters).
pub const MAX_FUTURE_SKEW_MS: i64 = 10 * 60 * 1000;

/// How deep containers may nest in a message. Records nest a few levels (envelope, body, list,
/// item, map); the limit leaves room for fields added later. rmp-serde's own limit (1024 levels)
/// lets a hostile message recurse deep enough to overflow a thread's stack (found by fuzzing:
/// FUZZING.md), which aborts the process instead of failing the message.
pub const MAX_NESTING: usize = 32;

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
    let mut deserializer = rmp_serde::Deserializer::from_read_ref(bytes);
    deserializer.set_max_depth(MAX_NESTING);
    Ok(T::deserialize(&mut deserializer)?)
}

/// Decodes and validates a message received on `subject`: the kind comes from the subject, the
/// schema version must be ours, the envelope's system id must match the subject's id, and its
/// `observed_at` may be at most [`MAX_FUTURE_SKEW_MS`] ahead of this machine's clock.
pub fn decode_record(subject: &str, bytes: &[u8]) -> Result<Record, DecodeError> {
    decode_record_at(subject, bytes, crate::now_ms())
}

/// [`decode_record`] with the reader's clock given (`now_ms`, ms since the epoch).
pub fn decode_record_at(subject: &str, bytes: &[u8], now_ms: i64) -> Result<Record, DecodeError> {
    let (kind, id) =
        subjects::parse(subject).ok_or_else(|| DecodeError::Subject(subject.to_owned()))?;
    // One pass in the normal case: the body is decoded first. A record of another schema version
    // is still reported as such, not as a shape error: when the body does not decode, a probe
    // that reads only `schema` decides which error it is.
    let decoded = match kind {
        Kind::System => decode(bytes).map(Record::System),
        Kind::Snapshot => decode(bytes).map(Record::Snapshot),
        Kind::Event => decode(bytes).map(Record::Event),
        Kind::Collector => decode(bytes).map(Record::Collector),
        Kind::Change => decode(bytes).map(Record::Change),
        Kind::Command => decode(bytes).map(Record::Command),
        Kind::History => decode(bytes).map(Record::History),
    };
    let record = match decoded {
        Ok(record) => record,
        Err(e) => {
            return Err(match decode::<VersionProbe>(bytes) {
                Ok(v) if v.schema != SCHEMA_VERSION => DecodeError::Version(v.schema),
                _ => e,
            });
        }
    };
    let schema = match &record {
        Record::System(e) => e.schema,
        Record::Snapshot(e) => e.schema,
        Record::Event(e) => e.schema,
        Record::Collector(e) => e.schema,
        Record::Change(e) => e.schema,
        Record::Command(e) => e.schema,
        Record::History(e) => e.schema,
    };
    if schema != SCHEMA_VERSION {
        return Err(DecodeError::Version(schema));
    }
    validate(&record, kind, id, now_ms)?;
    if let Record::Command(e) = &record
        && e.body.kind.subject(id) != subject
    {
        return Err(DecodeError::Invalid(format!(
            "a {} command on subject {subject}",
            e.body.kind.as_str()
        )));
    }
    Ok(record)
}

#[derive(serde::Deserialize)]
struct VersionProbe {
    schema: u16,
}

fn validate(record: &Record, kind: Kind, subject_id: &str, now_ms: i64) -> Result<(), DecodeError> {
    fn envelope<T>(
        e: &Envelope<T>,
        kind: Kind,
        subject_id: &str,
        now_ms: i64,
    ) -> Result<(), DecodeError> {
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
        if e.observed_at > now_ms.saturating_add(MAX_FUTURE_SKEW_MS) {
            return Err(DecodeError::Invalid(format!(
                "observed_at {} ({}) is {} s ahead of this reader's clock ({}); at most {} s of \
                 clock skew is accepted: check the producer's clock",
                e.observed_at,
                crate::format_ms(e.observed_at),
                e.observed_at.saturating_sub(now_ms) / 1000,
                crate::format_ms(now_ms),
                MAX_FUTURE_SKEW_MS / 1000,
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
        Record::System(e) => envelope(e, kind, subject_id, now_ms),
        Record::Snapshot(e) => {
            envelope(e, kind, subject_id, now_ms)?;
            if let Some(c) = &e.body.capacity
                && !c.is_plausible()
            {
                return Err(DecodeError::Invalid(
                    "used_bytes is implausibly larger than total_bytes".into(),
                ));
            }
            Ok(())
        }
        Record::Event(e) => envelope(e, kind, subject_id, now_ms),
        Record::Collector(e) => envelope(e, kind, subject_id, now_ms),
        Record::Change(e) => envelope(e, kind, subject_id, now_ms),
        Record::Command(e) => {
            envelope(e, kind, subject_id, now_ms)?;
            e.body.validate(&e.system_id).map_err(DecodeError::Invalid)
        }
        Record::History(e) => {
            envelope(e, kind, subject_id, now_ms)?;
            e.body
                .validate(now_ms.saturating_add(MAX_FUTURE_SKEW_MS))
                .map_err(DecodeError::Invalid)
        }
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
            provisioned_bytes: None,
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
    fn change_round_trips_and_names_its_system_on_the_subject() {
        let env = Envelope::new(
            "writer-1",
            "fa-01",
            ChangeRecord {
                kind: ChangeKind::StatusChanged,
                cause_event_id: "e1".into(),
                vendor: Vendor::Pure,
                system_name: Some("FA 01".into()),
                tags: [("environment".to_owned(), "prod".to_owned())].into(),
                alert: None,
                alert_opened_at: None,
                from: Some("online".into()),
                to: Some("unreachable".into()),
                threshold_percent: None,
                rising: None,
                capacity: None,
                command: None,
                command_id: None,
            },
        );
        let bytes = encode(&env).expect("encode");
        let generic: serde_json::Value = rmp_serde::from_slice(&bytes).expect("generic decode");
        assert_eq!(generic["body"]["kind"], "status_changed");
        assert_eq!(generic["body"]["to"], "unreachable");
        let back = decode_record(&Kind::Change.subject("fa-01"), &bytes).expect("decode");
        assert_eq!(back, Record::Change(env));
        assert!(decode_record(&Kind::Change.subject("fa-02"), &bytes).is_err());
        for kind in ChangeKind::ALL {
            assert_eq!(ChangeKind::parse(kind.as_str()), Some(kind));
        }
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
        // A v2 record whose body v1 cannot read is still a version error, not a shape error.
        #[derive(serde::Serialize)]
        struct V2 {
            schema: u16,
            reshaped: Vec<u8>,
        }
        let v2 = encode(&V2 {
            schema: 2,
            reshaped: vec![1, 2],
        })
        .expect("encode");
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
    fn observed_at_far_in_the_future_is_rejected() {
        let subject = "sdash.v1.snapshot.fa-01";
        let now = crate::now_ms();
        let at = |observed_at: i64| {
            let mut env = snapshot();
            env.observed_at = observed_at;
            encode(&env).expect("encode")
        };
        // The producer's own "now", and a clock a little ahead, are fine.
        assert!(decode_record(subject, &at(now)).is_ok());
        assert!(decode_record(subject, &at(now + 60_000)).is_ok());
        assert!(decode_record_at(subject, &at(now + MAX_FUTURE_SKEW_MS), now).is_ok());
        // Past the allowed skew: rejected with a reason that names the problem.
        let err = decode_record_at(subject, &at(now + MAX_FUTURE_SKEW_MS + 1), now)
            .expect_err("beyond the skew");
        assert!(
            matches!(&err, DecodeError::Invalid(m) if m.contains("ahead of this reader's clock")),
            "{err}"
        );
        for far in [now + 86_400_000, i64::MAX] {
            assert!(matches!(
                decode_record(subject, &at(far)),
                Err(DecodeError::Invalid(_))
            ));
        }
        // Every record kind is checked, not only snapshots.
        let mut hb = Envelope::new(
            "c1",
            "",
            CollectorRecord {
                version: "0".into(),
                systems: vec![],
                polls: 0,
                failures: 0,
                outbox_depth: 0,
                started_at: now,
            },
        );
        hb.observed_at = now + 3_600_000;
        assert!(decode_record("sdash.v1.collector.c1", &encode(&hb).expect("encode")).is_err());
        // Old records (replays, backfills) are not limited.
        assert!(decode_record(subject, &at(1)).is_ok());
    }

    #[test]
    fn every_prefix_of_a_message_decodes_without_panicking() {
        let bytes = encode(&snapshot()).expect("encode");
        for end in 0..bytes.len() {
            let _ = decode_record("sdash.v1.snapshot.fa-01", &bytes[..end]);
        }
    }
}
