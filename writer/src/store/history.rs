//! Imported history (`sdash.v1.history.*`, [`sdash_proto::HistoryRecord`]): the rows it
//! becomes, and the step of a batch that writes them. Imported days go into `capacity_daily`
//! marked `source = 'imported'` and never replace a stored day (a day sdash measured stays as
//! measured; a day imported before is not imported again); imported events go into `events`
//! with their own ids (a stored id is skipped) and the record's `keep` flag, which event
//! retention respects.

use sdash_proto::{Envelope, HistoryRecord};

use sqlx::SqlSafeStr;

use super::dialect::{Conn, Dialect};
use super::plan::{EventRow, clean, clean_opt};
use super::sql::{Bind, Sql};
use super::{RowCounts, StoreError};

/// One imported day, as its `capacity_daily` row: one sample (`samples = 1`, min = max =
/// sum = used), timed at the end of the day (`last_at`), so a measured sample of the same day
/// would be the later one.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct ImportedDayRow {
    pub system_id: String,
    pub day: String,
    pub last_at: i64,
    pub total_bytes: i64,
    pub used_bytes: i64,
    pub free_bytes: i64,
}

/// One imported event: its `events` row and whether retention keeps it.
#[derive(Debug, Clone)]
pub(crate) struct ImportedEventRow {
    pub row: EventRow,
    pub keep: bool,
}

/// The imported history of a batch.
#[derive(Debug, Default)]
pub(crate) struct HistoryRows {
    /// `(system_id, vendor)` of every system the batch has history for (registered like a
    /// system first seen in a snapshot; an existing row is kept).
    pub systems: Vec<(String, &'static str)>,
    pub days: Vec<ImportedDayRow>,
    pub events: Vec<ImportedEventRow>,
}

impl HistoryRows {
    pub fn is_empty(&self) -> bool {
        self.systems.is_empty() && self.days.is_empty() && self.events.is_empty()
    }

    /// Adds a decoded (and so validated) history record.
    pub fn add(&mut self, e: &Envelope<HistoryRecord>) {
        let system = (e.system_id.clone(), e.body.vendor.as_str());
        if !self.systems.contains(&system) {
            self.systems.push(system);
        }
        for d in &e.body.days {
            let Some(start) = day_start_ms(&d.day) else {
                continue;
            };
            self.days.push(ImportedDayRow {
                system_id: e.system_id.clone(),
                day: d.day.clone(),
                last_at: start + 86_399_999,
                total_bytes: super::plan::to_i64(d.total_bytes),
                used_bytes: super::plan::to_i64(d.used_bytes),
                free_bytes: super::plan::to_i64(d.free_bytes),
            });
        }
        for ev in &e.body.events {
            let body = &ev.event;
            self.events.push(ImportedEventRow {
                row: EventRow {
                    event_id: clean(&ev.event_id),
                    system_id: e.system_id.clone(),
                    collector_id: clean(&e.collector_id),
                    observed_at: ev.observed_at,
                    level: body.level.as_str(),
                    level_rank: body.level.rank(),
                    category: body.category.as_str(),
                    message: clean(&body.message),
                    details: clean_opt(&body.details),
                    http_status: body.http_status.map(i32::from),
                    endpoint: clean_opt(&body.endpoint),
                },
                keep: e.body.keep_events,
            });
        }
    }
}

/// Milliseconds since the epoch at 00:00 UTC of a `YYYY-MM-DD` day.
pub(crate) fn day_start_ms(day: &str) -> Option<i64> {
    let format = time::macros::format_description!("[year]-[month]-[day]");
    let date = time::Date::parse(day, &format).ok()?;
    Some(i64::from(date.to_julian_day() - 2_440_588) * 86_400_000)
}

/// Rows per statement (PostgreSQL binds one array per column; SQLite chunks itself too).
const CHUNK: usize = 5000;

/// Writes a batch's imported history: the systems it names (when new), then the days and
/// events that are not stored yet.
pub(crate) async fn write<D: Dialect>(
    c: &mut Conn<D>,
    h: &HistoryRows,
    now: i64,
    rows: &mut RowCounts,
) -> Result<(), StoreError> {
    if !h.systems.is_empty() {
        rows.systems += D::insert_minimal_systems(c, &h.systems).await?;
    }
    let mut days = 0;
    for chunk in h.days.chunks(CHUNK) {
        days += D::insert_imported_days(c, chunk).await?;
    }
    if days > 0 {
        // Past days changed: readers that cache them (the API's fleet history) reload.
        D::Db::execute(
            c,
            "UPDATE pipeline_status SET capacity_past_version = $1 WHERE id = 1".into_sql_str(),
            &[Bind::Int(now)],
        )
        .await?;
    }
    rows.capacity_daily += days;
    for chunk in h.events.chunks(CHUNK) {
        rows.events += D::insert_imported_events(c, chunk).await?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn days_start_at_utc_midnight() {
        assert_eq!(day_start_ms("1970-01-01"), Some(0));
        assert_eq!(day_start_ms("2025-01-31"), Some(1_738_281_600_000));
        assert_eq!(
            day_start_ms("2024-02-29").map(super::super::utc_day),
            Some("2024-02-29".to_owned())
        );
        assert_eq!(day_start_ms("2025-02-30"), None);
    }
}
