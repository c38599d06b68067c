//! The predecessor's system logs as events inside history records: levels and categories
//! mapped, long texts cut, what sdash has already left out, chunked by count and size; and how
//! many of them the configured event retention would delete.

use std::collections::BTreeMap;

use sdash_proto::codec::MAX_FUTURE_SKEW_MS;
use sdash_proto::subjects::Kind;
use sdash_proto::{Category, EventRecord, HistoryEvent, HistoryRecord, Level};

use super::sdash::SdashState;
use super::{
    DAY_MS, EVENT_BYTES_PER_RECORD, EVENTS_PER_RECORD, MAX_DETAILS_CHARS, MAX_MESSAGE_CHARS,
    Mapped, Run, SOURCE_DB, map, predecessor, unreadable,
};

impl Run<'_> {
    pub(super) async fn events(
        &mut self,
        m: &Mapped,
        rows: Vec<predecessor::LogRow>,
    ) -> anyhow::Result<()> {
        const WHAT: &str = "events";
        let stored =
            SdashState::imported_event_ids(&self.sdash_db, &m.id, &self.args.import_id).await?;
        let max_at = self.now + MAX_FUTURE_SKEW_MS;
        let mut new: Vec<HistoryEvent> = Vec::new();
        let mut notes: BTreeMap<String, u64> = BTreeMap::new();
        for r in rows {
            self.out.count(WHAT).read += 1;
            let Some(at) = r.timestamp.as_deref().and_then(map::naive_utc_ms) else {
                self.out.skip(
                    WHAT,
                    "system_logs",
                    r.id,
                    unreadable("timestamp", r.timestamp.as_deref(), "a time"),
                );
                continue;
            };
            if at <= 0 || at > max_at {
                self.out.skip(
                    WHAT,
                    "system_logs",
                    r.id,
                    format!(
                        "timestamp {:?} is before 1970 or in the future",
                        r.timestamp
                    ),
                );
                continue;
            }
            let level = match r.level.as_deref().map(str::to_lowercase).as_deref() {
                Some("debug" | "trace") => Level::Debug,
                Some("info" | "information" | "notice") => Level::Info,
                Some("warning" | "warn") => Level::Warning,
                Some("error" | "err") => Level::Error,
                Some("critical" | "crit" | "fatal" | "alert" | "emergency") => Level::Critical,
                other => {
                    *notes
                        .entry(format!("level {:?} stored as info", other.unwrap_or("")))
                        .or_default() += 1;
                    Level::Info
                }
            };
            let mut details = r.details.clone();
            let category = match r.category.as_deref().map(str::to_lowercase).as_deref() {
                Some("connection" | "network") => Category::Connection,
                Some("authentication" | "auth") => Category::Authentication,
                Some("api_call" | "api") => Category::ApiCall,
                Some("data_query" | "data" | "query") => Category::DataQuery,
                Some("health" | "hardware") => Category::Health,
                other => {
                    let other = other.unwrap_or("");
                    *notes
                        .entry(format!(
                            "category {other:?} stored as data_query (the original in details)"
                        ))
                        .or_default() += 1;
                    let tag = format!("[predecessor category: {other}]");
                    details = Some(match details {
                        Some(d) => format!("{d}\n{tag}"),
                        None => tag,
                    });
                    Category::DataQuery
                }
            };
            let mut message = r.message.clone().unwrap_or_default();
            if message.trim().is_empty() {
                message = "(no message)".into();
            }
            if message.chars().count() > MAX_MESSAGE_CHARS {
                message = message.chars().take(MAX_MESSAGE_CHARS).collect();
                *notes
                    .entry("message cut to 8192 characters".into())
                    .or_default() += 1;
            }
            if let Some(d) = &details
                && d.chars().count() > MAX_DETAILS_CHARS
            {
                details = Some(d.chars().take(MAX_DETAILS_CHARS).collect());
                *notes
                    .entry("details cut to 32768 characters".into())
                    .or_default() += 1;
            }
            let http_status = r
                .status_code
                .and_then(|c| u16::try_from(c).ok())
                .filter(|c| (100..=999).contains(c));
            let event_id = map::uuid5(&[
                "log",
                &m.id,
                &r.id.to_string(),
                &at.to_string(),
                r.message.as_deref().unwrap_or_default(),
            ]);
            if stored.contains(&event_id) {
                self.out.count(WHAT).already += 1;
                continue;
            }
            self.out.count(WHAT).imported += 1;
            new.push(HistoryEvent {
                event_id,
                observed_at: at,
                event: EventRecord {
                    level,
                    category,
                    message,
                    details,
                    http_status,
                    endpoint: r.api_endpoint.clone(),
                },
            });
        }
        for (what, n) in notes {
            self.out.note(format!("{}: {n} log row(s): {what}", m.id));
        }
        self.count_retention(&m.id, &new).await?;
        // Records of at most EVENTS_PER_RECORD events or about EVENT_BYTES_PER_RECORD.
        let mut chunk: Vec<HistoryEvent> = Vec::new();
        let mut bytes = 0;
        let mut all = new.into_iter().peekable();
        while let Some(e) = all.next() {
            bytes += 200
                + e.event.message.len()
                + e.event.details.as_ref().map_or(0, String::len)
                + e.event.endpoint.as_ref().map_or(0, String::len);
            chunk.push(e);
            if chunk.len() >= EVENTS_PER_RECORD
                || bytes >= EVENT_BYTES_PER_RECORD
                || all.peek().is_none()
            {
                let ids: Vec<&str> = chunk.iter().map(|e| e.event_id.as_str()).collect();
                let id = map::uuid5(&[&["history-events", &m.id], ids.as_slice()].concat());
                let body = HistoryRecord {
                    source: SOURCE_DB.into(),
                    vendor: m.vendor,
                    days: Vec::new(),
                    events: std::mem::take(&mut chunk),
                    keep_events: self.args.keep_events,
                };
                let env = self.envelope(&m.id, id, self.now, body);
                self.publish(Kind::History.subject(&m.id), &env).await?;
                bytes = 0;
            }
        }
        Ok(())
    }

    /// Adds how many of `new` (events of `system`) retention as configured would delete.
    async fn count_retention(&mut self, system: &str, new: &[HistoryEvent]) -> anyhow::Result<()> {
        if new.is_empty() || self.args.keep_events {
            return Ok(());
        }
        let policy = self.config.retention_policy();
        let cutoff = match policy.event_retention_days {
            0 => i64::MIN,
            d => self.now - i64::from(d) * DAY_MS,
        };
        let by_age = new.iter().filter(|e| e.observed_at < cutoff).count() as u64;
        let left = new.len() as u64 - by_age;
        let by_count = if policy.events_per_system > 0 && left > 0 {
            let live = SdashState::live_events_since(&self.sdash_db, system, cutoff.max(0)).await?;
            (live + left)
                .saturating_sub(policy.events_per_system)
                .min(left)
        } else {
            0
        };
        self.retention.0 += by_age;
        self.retention.1 += by_count;
        Ok(())
    }
}
