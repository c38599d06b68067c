//! Imported history (`sdash.v1.history.<system_id>`): daily capacity and old log events of one
//! system that sdash did not measure itself, brought in by an import (`sdash-writer import`
//! from the predecessor dashboard's database or history CSV). The writer stores the days as
//! daily rollups marked `imported` that never replace a day sdash measured, and the events in
//! the system's event log; both are keyed naturally (system and day, event id), so publishing
//! the same history again stores nothing twice.
//!
//! History travels on its own subject, not on `sdash.v1.event.*`, so that live subscribers (the
//! dashboard's live stream, notifications) never take years-old log rows for new events.
//!
//! The envelope's `event_id` is the chunk's id: importers derive it from the content (a UUID v5
//! of the source, system and the chunk's days or event ids), so a re-run publishes the same ids
//! and JetStream drops repeats within its duplicate window. `collector_id` names the importing
//! process, `observed_at` when it published. A record holds at most [`MAX_HISTORY_DAYS`] days
//! and [`MAX_HISTORY_EVENTS`] events and, like every message, at most 1 MiB: importers send a
//! long history as several records.

use serde::{Deserialize, Serialize};

use crate::records::{EventRecord, Vendor};

/// The most days one history record may carry (about 11 years).
pub const MAX_HISTORY_DAYS: usize = 4096;
/// The most events one history record may carry.
pub const MAX_HISTORY_EVENTS: usize = 4096;
/// The longest `source` (characters).
pub const MAX_SOURCE_CHARS: usize = 64;

/// One record of imported history about the envelope's system.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct HistoryRecord {
    /// Where the history comes from, e.g. `predecessor` (the old dashboard's database) or
    /// `predecessor-csv` (its history CSV): 1 to 64 characters.
    pub source: String,
    /// The system's vendor, so that the writer can register a system it has not seen yet (as it
    /// does for a first snapshot); the inventory record names it properly later.
    pub vendor: Vendor,
    /// Daily capacity, one entry per UTC day, each day at most once.
    #[serde(default)]
    pub days: Vec<HistoryDay>,
    /// Old log events of the system, each with its own unique id.
    #[serde(default)]
    pub events: Vec<HistoryEvent>,
    /// Whether event retention (by age and by count per system) leaves these events alone:
    /// the import's `--keep-imported-events`. Recorded with each stored event.
    #[serde(default)]
    pub keep_events: bool,
}

/// The capacity of one day, as the last value of that day (bytes).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct HistoryDay {
    /// The day, `YYYY-MM-DD` (UTC; an importer whose source had local days says so).
    pub day: String,
    /// Usable capacity, bytes.
    pub total_bytes: u64,
    /// Used capacity, bytes.
    pub used_bytes: u64,
    /// Free capacity, bytes (`total - used` where the source had no reliable figure).
    pub free_bytes: u64,
}

/// One imported log event: what a live [`EventRecord`] says, with the id and time a live one
/// has in its envelope.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct HistoryEvent {
    /// Unique id of the event (1 to 128 characters); derived from the source row, so importing
    /// the same row again names the same event.
    pub event_id: String,
    /// When it happened, ms since the epoch (UTC).
    pub observed_at: i64,
    pub event: EventRecord,
}

/// Whether `day` is a real calendar day written `YYYY-MM-DD`.
pub fn valid_day(day: &str) -> bool {
    let b = day.as_bytes();
    if b.len() != 10 || b[4] != b'-' || b[7] != b'-' {
        return false;
    }
    let digits = |r: std::ops::Range<usize>| {
        b[r.clone()]
            .iter()
            .all(u8::is_ascii_digit)
            .then(|| b[r].iter().fold(0_u32, |n, d| n * 10 + u32::from(d - b'0')))
    };
    let (Some(y), Some(m), Some(d)) = (digits(0..4), digits(5..7), digits(8..10)) else {
        return false;
    };
    let Ok(month) = time::Month::try_from(u8::try_from(m).unwrap_or(0)) else {
        return false;
    };
    let Ok(year) = i32::try_from(y) else {
        return false;
    };
    year >= 1970
        && u8::try_from(d).is_ok_and(|d| d >= 1 && d <= time::util::days_in_month(month, year))
}

impl HistoryRecord {
    /// Checks what the bus contract requires: a source, at most [`MAX_HISTORY_DAYS`] days and
    /// [`MAX_HISTORY_EVENTS`] events, real days without repeats, plausible capacities, event ids
    /// of 1 to 128 characters without repeats, and event times that are times and not further
    /// than `max_at` (ms) in the future.
    pub fn validate(&self, max_at: i64) -> Result<(), String> {
        let source = self.source.trim();
        if source.is_empty() || self.source.chars().count() > MAX_SOURCE_CHARS {
            return Err(format!(
                "source must have 1 to {MAX_SOURCE_CHARS} characters"
            ));
        }
        if self.days.len() > MAX_HISTORY_DAYS {
            return Err(format!(
                "{} days in one record; at most {MAX_HISTORY_DAYS}",
                self.days.len()
            ));
        }
        if self.events.len() > MAX_HISTORY_EVENTS {
            return Err(format!(
                "{} events in one record; at most {MAX_HISTORY_EVENTS}",
                self.events.len()
            ));
        }
        let mut days = std::collections::HashSet::with_capacity(self.days.len());
        for d in &self.days {
            if !valid_day(&d.day) {
                return Err(format!("day {:?} is not a YYYY-MM-DD date", d.day));
            }
            if !days.insert(d.day.as_str()) {
                return Err(format!("day {} appears twice", d.day));
            }
            // As `Capacity::is_plausible`: used at most four times total.
            if d.used_bytes > d.total_bytes.saturating_mul(4).max(d.total_bytes) {
                return Err(format!(
                    "day {}: used_bytes is implausibly larger than total_bytes",
                    d.day
                ));
            }
        }
        let mut ids = std::collections::HashSet::with_capacity(self.events.len());
        for e in &self.events {
            if e.event_id.is_empty() || e.event_id.len() > 128 {
                return Err("an event_id must have 1 to 128 characters".into());
            }
            if !ids.insert(e.event_id.as_str()) {
                return Err(format!("event {} appears twice", e.event_id));
            }
            if e.observed_at <= 0 || e.observed_at > max_at {
                return Err(format!(
                    "event {}: observed_at {} is not a time up to now",
                    e.event_id, e.observed_at
                ));
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::codec::decode_record;
    use crate::records::{Category, Level};
    use crate::subjects::{self, Kind};
    use crate::{Envelope, Record, encode};

    fn record() -> HistoryRecord {
        HistoryRecord {
            source: "predecessor".into(),
            vendor: Vendor::Pure,
            days: vec![HistoryDay {
                day: "2025-01-31".into(),
                total_bytes: 109_951_162_777_600,
                used_bytes: 67_642_019_000_000,
                free_bytes: 42_309_143_777_600,
            }],
            events: vec![HistoryEvent {
                event_id: "e-1".into(),
                observed_at: 1_738_300_000_000,
                event: EventRecord {
                    level: Level::Warning,
                    category: Category::ApiCall,
                    message: "GET /api/2.x/arrays failed".into(),
                    details: None,
                    http_status: Some(503),
                    endpoint: Some("/api/2.x/arrays".into()),
                },
            }],
            keep_events: true,
        }
    }

    #[test]
    fn history_round_trips_on_its_subject() {
        let env = Envelope::new("sdash-import", "fa-01", record());
        let bytes = encode(&env).expect("encode");
        let subject = Kind::History.subject("fa-01");
        assert_eq!(subject, "sdash.v1.history.fa-01");
        assert_eq!(subjects::parse(&subject), Some((Kind::History, "fa-01")));
        let generic: serde_json::Value = rmp_serde::from_slice(&bytes).expect("generic decode");
        assert_eq!(generic["body"]["days"][0]["day"], "2025-01-31");
        assert_eq!(generic["body"]["events"][0]["event"]["level"], "warning");
        assert_eq!(
            decode_record(&subject, &bytes).expect("decode"),
            Record::History(env)
        );
        assert!(decode_record(&Kind::History.subject("fa-02"), &bytes).is_err());
    }

    #[test]
    fn invalid_history_is_refused() {
        let now = 1_800_000_000_000;
        assert!(record().validate(now).is_ok());
        let with = |f: &dyn Fn(&mut HistoryRecord)| {
            let mut r = record();
            f(&mut r);
            r.validate(now)
        };
        assert!(with(&|r| r.source = " ".into()).is_err());
        assert!(with(&|r| r.days[0].day = "2025-02-30".into()).is_err());
        assert!(with(&|r| r.days[0].day = "2025-1-31".into()).is_err());
        assert!(with(&|r| r.days.push(r.days[0].clone())).is_err());
        assert!(with(&|r| r.days[0].used_bytes = u64::MAX).is_err());
        assert!(with(&|r| r.events.push(r.events[0].clone())).is_err());
        assert!(with(&|r| r.events[0].observed_at = now + 1).is_err());
        assert!(with(&|r| r.events[0].event_id = String::new()).is_err());
        assert!(with(&|r| r.days = vec![r.days[0].clone(); MAX_HISTORY_DAYS + 1]).is_err());
        assert!(valid_day("2024-02-29") && !valid_day("2023-02-29") && !valid_day("1969-12-31"));
    }
}
