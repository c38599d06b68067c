//! The sdash bus contract, shared by every sdash process and documented for other subscribers.
//!
//! * [`subjects`]: subject names (`sdash.v1.<kind>.<id>`), the stream name and its limits.
//! * [`records`]: the envelope and the record kinds, every field documented with its unit.
//! * [`command`]: operator commands (`sdash.v1.command.<kind>.<system>`), applied by the writer.
//! * [`history`]: imported history (`sdash.v1.history.<system>`): daily capacity and old events.
//! * [`codec`]: MessagePack with named fields (`rmp_serde::to_vec_named`), decoding that never panics.
//!
//! Connecting to NATS and creating the stream live in `sdash-service` (`sdash_service::bus`),
//! which is plumbing, not contract.
//!
//! The human-readable schema for non-Rust subscribers is `proto/SCHEMA.md`.

pub mod codec;
pub mod command;
#[doc(hidden)]
pub mod fuzzing;
pub mod history;
pub mod records;
pub mod subjects;

pub use codec::{DecodeError, decode, encode};
pub use command::{AlertInstance, CommandKind, CommandRecord, FLEET_TARGET};
pub use history::{HistoryDay, HistoryEvent, HistoryRecord};
pub use records::*;

/// Current time as milliseconds since the Unix epoch (UTC), the unit of every timestamp on the bus.
pub fn now_ms() -> i64 {
    let now = time::OffsetDateTime::now_utc();
    (now.unix_timestamp_nanos() / 1_000_000) as i64
}

/// A new unique, time-ordered event id (UUID v7, hyphenated lower case).
pub fn new_event_id() -> String {
    uuid::Uuid::now_v7().to_string()
}

/// Formats milliseconds since the epoch as RFC 3339 (UTC), for logs and JSON.
pub fn format_ms(ms: i64) -> String {
    let nanos = i128::from(ms) * 1_000_000;
    match time::OffsetDateTime::from_unix_timestamp_nanos(nanos) {
        Ok(t) => t
            .format(&time::format_description::well_known::Rfc3339)
            .unwrap_or_else(|_| ms.to_string()),
        Err(_) => ms.to_string(),
    }
}

/// Parses an RFC 3339 timestamp into milliseconds since the epoch.
pub fn parse_rfc3339_ms(text: &str) -> Option<i64> {
    let t =
        time::OffsetDateTime::parse(text, &time::format_description::well_known::Rfc3339).ok()?;
    Some((t.unix_timestamp_nanos() / 1_000_000) as i64)
}

/// Whether a system id is valid: 1 to 64 characters of `[a-z0-9_-]`, so it is safe as a subject token.
pub fn valid_system_id(id: &str) -> bool {
    !id.is_empty()
        && id.len() <= 64
        && id
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-' || b == b'_')
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn time_round_trips_through_rfc3339() {
        let ms = 1_764_000_000_123;
        assert_eq!(parse_rfc3339_ms(&format_ms(ms)), Some(ms));
    }

    #[test]
    fn system_ids_are_subject_safe() {
        assert!(valid_system_id("fa-prod-01"));
        assert!(valid_system_id("a_b"));
        assert!(!valid_system_id(""));
        assert!(!valid_system_id("FA"));
        assert!(!valid_system_id("a.b"));
        assert!(!valid_system_id("a*"));
        assert!(!valid_system_id(&"a".repeat(65)));
    }
}
