//! The writer's settings, [`WriterConfig`]: its flags (each with an `SDASH_*` environment twin)
//! and their [`defaults`], written once for both the command line and [`WriterConfig::new`].

use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

use sdash_service::bus::{NatsArgs, StreamArgs};
use sdash_service::{Secret, SecretFileError, parse_duration};

use crate::store::{RawSamplePolicy, RetentionPolicy};

/// The default of every writer flag. Durations are text in the flags' own syntax, so that the
/// command line shows them as written; retention defaults are [`RetentionPolicy::default`].
pub mod defaults {
    pub const DATABASE_URL: &str = "sqlite://sdash.db";
    pub const BATCH_MAX: u32 = 1000;
    pub const BATCH_TIMEOUT: &str = "100ms";
    pub const MAX_DELIVER: u64 = crate::store::DEFAULT_MAX_DELIVER;
    pub const ACK_WAIT: &str = "30s";
    pub const CONSUMER: &str = "sdash-writer";
    pub const RETENTION_INTERVAL: &str = "5m";
    pub const ADMIN_LISTEN: &str = "127.0.0.1:9101";
    pub const LOCK_POLL: &str = "500ms";
    pub const CAPACITY_THRESHOLDS: &str = "80,90,95";
    pub const CAPACITY_RAW_MAX_GAP: &str = "6h";
    /// `crate::store::DEFAULT_LATE_SAMPLE_WINDOW_MS` (a test checks).
    pub const LATE_SAMPLE_WINDOW: &str = "1h";
}

/// `--capacity-raw-deadband`: a percentage of total capacity, 0 to 100 (`0.1`, `0.1%`).
fn parse_percent(text: &str) -> Result<f64, String> {
    let t = text.trim();
    let t = t.strip_suffix('%').unwrap_or(t).trim();
    match t.parse::<f64>() {
        Ok(p) if p.is_finite() && (0.0..=100.0).contains(&p) => Ok(p),
        _ => Err(format!(
            "{text:?} is not a percentage from 0 to 100 (e.g. 0.1 or 0.1%)"
        )),
    }
}

/// `--capacity-thresholds`: percentages of total capacity (1 to 100), ascending and without
/// repeats, whose crossing by used capacity is a change on `sdash.v1.change.*`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CapacityThresholds(pub Vec<u8>);

impl CapacityThresholds {
    /// Parses `80,90,95` (any order); `none` (or nothing) for no threshold.
    pub fn parse(text: &str) -> Result<CapacityThresholds, String> {
        let text = text.trim();
        if text.is_empty() || text.eq_ignore_ascii_case("none") {
            return Ok(CapacityThresholds(Vec::new()));
        }
        let mut percents = text
            .split(',')
            .map(|p| match p.trim().parse::<u8>() {
                Ok(n @ 1..=100) => Ok(n),
                _ => Err(format!(
                    "{p:?} is not a percentage from 1 to 100 (expected e.g. 80,90,95, or none)"
                )),
            })
            .collect::<Result<Vec<u8>, String>>()?;
        percents.sort_unstable();
        percents.dedup();
        Ok(CapacityThresholds(percents))
    }
}

/// Everything [`crate::run`] needs.
#[derive(Debug, Clone, clap::Args)]
pub struct WriterConfig {
    #[command(flatten)]
    pub nats: NatsArgs,
    #[command(flatten)]
    pub stream: StreamArgs,
    /// Database URL: sqlite://PATH (created if missing) or postgres://USER@HOST:PORT/DB; several
    /// PostgreSQL servers as postgres://USER@H1:P1,H2:P2/DB, of which the writable one is used.
    #[arg(
        long = "database-url",
        env = "SDASH_DATABASE_URL",
        default_value = defaults::DATABASE_URL
    )]
    pub database_url: String,
    /// File holding the PostgreSQL password (trailing newline removed; must not be empty).
    /// Overrides a password in the URL or a pgpass file; ignored, with a warning, for SQLite.
    #[arg(long = "database-password-file", env = "SDASH_DATABASE_PASSWORD_FILE")]
    pub database_password_file: Option<PathBuf>,
    /// Most messages written in one database transaction.
    #[arg(long = "batch-max", env = "SDASH_BATCH_MAX", default_value_t = defaults::BATCH_MAX, value_parser = clap::value_parser!(u32).range(1..=100_000))]
    pub batch_max: u32,
    /// How long a batch may wait for more messages after its first one (e.g. 100ms, 1s; a bare
    /// number is seconds).
    #[arg(long = "batch-timeout", env = "SDASH_BATCH_TIMEOUT", default_value = defaults::BATCH_TIMEOUT, value_parser = parse_duration)]
    pub batch_timeout: Duration,
    /// Messages delivered more than this many times are stored as dead letters and terminated
    /// (a poison message never blocks the stream); 0 disables the limit.
    #[arg(long = "max-deliver", env = "SDASH_MAX_DELIVER", default_value_t = defaults::MAX_DELIVER)]
    pub max_deliver: u64,
    /// How long JetStream waits for an ack before redelivering (in-progress acks extend it while
    /// the database is retried).
    #[arg(long = "ack-wait", env = "SDASH_ACK_WAIT", default_value = defaults::ACK_WAIT, value_parser = parse_duration)]
    pub ack_wait: Duration,
    /// Durable consumer name (change it only to run an independent copy of the writer).
    #[arg(
        long = "consumer",
        env = "SDASH_CONSUMER",
        default_value = defaults::CONSUMER
    )]
    pub consumer: String,
    /// Id recorded in pipeline_status (default: HOSTNAME:PID).
    #[arg(long = "writer-id", env = "SDASH_WRITER_ID")]
    pub writer_id: Option<String>,
    /// How often retention runs (e.g. 5m).
    #[arg(long = "retention-interval", env = "SDASH_RETENTION_INTERVAL", default_value = defaults::RETENTION_INTERVAL, value_parser = parse_duration)]
    pub retention_interval: Duration,
    /// Events older than this many days are deleted (0 = keep forever).
    #[arg(
        long = "event-retention-days",
        env = "SDASH_EVENT_RETENTION_DAYS",
        default_value_t = RetentionPolicy::default().event_retention_days
    )]
    pub event_retention_days: u32,
    /// Only the newest this many events are kept per system (0 = no limit).
    #[arg(
        long = "events-per-system",
        env = "SDASH_EVENTS_PER_SYSTEM",
        default_value_t = RetentionPolicy::default().events_per_system
    )]
    pub events_per_system: u64,
    /// Raw capacity samples older than this many days are deleted (the hourly and daily
    /// rollups are kept; 0 = keep forever).
    #[arg(
        long = "capacity-raw-days",
        env = "SDASH_CAPACITY_RAW_DAYS",
        default_value_t = RetentionPolicy::default().capacity_raw_days
    )]
    pub capacity_raw_days: u32,
    /// Hourly capacity rollups older than this many days are deleted, and so are the hourly
    /// pool and performance rollups (0 = keep forever).
    #[arg(
        long = "capacity-hourly-days",
        env = "SDASH_CAPACITY_HOURLY_DAYS",
        default_value_t = RetentionPolicy::default().capacity_hourly_days
    )]
    pub capacity_hourly_days: u32,
    /// Daily capacity rollups older than this many days are deleted, and so are the daily pool
    /// and performance rollups (0 = keep forever).
    #[arg(
        long = "capacity-daily-days",
        env = "SDASH_CAPACITY_DAILY_DAYS",
        default_value_t = RetentionPolicy::default().capacity_daily_days
    )]
    pub capacity_daily_days: u32,
    /// Raw performance samples (one per poll) older than this many days are deleted (the
    /// hourly and daily rollups are kept; 0 = keep forever).
    #[arg(
        long = "performance-raw-days",
        env = "SDASH_PERFORMANCE_RAW_DAYS",
        default_value_t = RetentionPolicy::default().performance_raw_days
    )]
    pub performance_raw_days: u32,
    /// A capacity sample is stored raw only when used or total capacity moved by more than this
    /// percentage of total capacity since the system's last stored sample (or after
    /// --capacity-raw-max-gap); the hourly and daily rollups count every sample. 0 stores
    /// every change.
    #[arg(long = "capacity-raw-deadband", env = "SDASH_CAPACITY_RAW_DEADBAND", default_value_t = RawSamplePolicy::default().deadband_percent, value_parser = parse_percent)]
    pub capacity_raw_deadband: f64,
    /// The deadband in bytes, when larger than the percentage (0 = only the percentage).
    #[arg(
        long = "capacity-raw-deadband-bytes",
        env = "SDASH_CAPACITY_RAW_DEADBAND_BYTES",
        default_value_t = RawSamplePolicy::default().deadband_bytes
    )]
    pub capacity_raw_deadband_bytes: u64,
    /// A capacity sample is stored raw at least this long after the system's last stored one,
    /// even inside the deadband (e.g. 6h, 15m; 0 stores every sample). The hourly rollups keep
    /// every hour's last value whatever this is.
    #[arg(long = "capacity-raw-max-gap", env = "SDASH_CAPACITY_RAW_MAX_GAP", default_value = defaults::CAPACITY_RAW_MAX_GAP, value_parser = parse_duration)]
    pub capacity_raw_max_gap: Duration,
    /// How late a snapshot may reach the writer (before the commit, by its observed time) and
    /// still be counted in the capacity, pool and performance rollups, when a newer one of its
    /// system was counted first (a redelivery after a lost pull, a slower collector). Older
    /// ones are counted only when newer than what was counted. The writer keeps a ledger of the
    /// snapshots it counted over this window (one small row each).
    #[arg(long = "late-sample-window", env = "SDASH_LATE_SAMPLE_WINDOW", default_value = defaults::LATE_SAMPLE_WINDOW, value_parser = parse_duration)]
    pub late_sample_window: Duration,
    /// Dead letters older than this many days are deleted (0 = keep forever).
    #[arg(
        long = "dead-letter-days",
        env = "SDASH_DEAD_LETTER_DAYS",
        default_value_t = RetentionPolicy::default().dead_letter_days
    )]
    pub dead_letter_days: u32,
    /// Rows deleted per retention statement.
    #[arg(long = "retention-batch", env = "SDASH_RETENTION_BATCH", default_value_t = RetentionPolicy::default().batch_rows, value_parser = clap::value_parser!(u32).range(1..))]
    pub retention_batch: u32,
    /// Address of the admin server (/healthz, /readyz, /metrics); port 0 picks a free port.
    #[arg(
        long = sdash_service::ADMIN_LISTEN_FLAG,
        alias = sdash_service::ADMIN_LISTEN_ALIAS,
        env = "SDASH_ADMIN_LISTEN",
        default_value = defaults::ADMIN_LISTEN
    )]
    pub admin_listen: SocketAddr,
    /// How often a standby writer retries taking the writer lock.
    #[arg(long = "lock-poll", env = "SDASH_LOCK_POLL", default_value = defaults::LOCK_POLL, value_parser = parse_duration)]
    pub lock_poll: Duration,
    /// Used capacity crossing one of these percentages of total capacity (rising to or above
    /// it, or falling back below) is published as a change on sdash.v1.change.* (e.g. 80,90,95;
    /// `none` for no capacity changes).
    #[arg(long = "capacity-thresholds", env = "SDASH_CAPACITY_THRESHOLDS", default_value = defaults::CAPACITY_THRESHOLDS, value_parser = CapacityThresholds::parse)]
    pub capacity_thresholds: CapacityThresholds,
}

/// A duration default of [`defaults`]; the tests check that each one parses.
fn default_duration(text: &str) -> Duration {
    parse_duration(text).unwrap_or_default()
}

impl WriterConfig {
    /// The defaults, for a NATS server at `nats_url` and the database at `database_url`, with
    /// the admin server on a free port (tests, tools).
    pub fn new(nats_url: &str, database_url: &str) -> WriterConfig {
        let retention = RetentionPolicy::default();
        WriterConfig {
            nats: NatsArgs::plain(nats_url),
            stream: StreamArgs::default(),
            database_url: database_url.to_owned(),
            database_password_file: None,
            batch_max: defaults::BATCH_MAX,
            batch_timeout: default_duration(defaults::BATCH_TIMEOUT),
            max_deliver: defaults::MAX_DELIVER,
            ack_wait: default_duration(defaults::ACK_WAIT),
            consumer: defaults::CONSUMER.into(),
            writer_id: None,
            retention_interval: default_duration(defaults::RETENTION_INTERVAL),
            event_retention_days: retention.event_retention_days,
            events_per_system: retention.events_per_system,
            capacity_raw_days: retention.capacity_raw_days,
            capacity_hourly_days: retention.capacity_hourly_days,
            capacity_daily_days: retention.capacity_daily_days,
            performance_raw_days: retention.performance_raw_days,
            capacity_raw_deadband: RawSamplePolicy::default().deadband_percent,
            capacity_raw_deadband_bytes: RawSamplePolicy::default().deadband_bytes,
            capacity_raw_max_gap: default_duration(defaults::CAPACITY_RAW_MAX_GAP),
            late_sample_window: default_duration(defaults::LATE_SAMPLE_WINDOW),
            dead_letter_days: retention.dead_letter_days,
            retention_batch: retention.batch_rows,
            admin_listen: SocketAddr::from(([127, 0, 0, 1], 0)),
            lock_poll: default_duration(defaults::LOCK_POLL),
            capacity_thresholds: CapacityThresholds::parse(defaults::CAPACITY_THRESHOLDS)
                .unwrap_or(CapacityThresholds(Vec::new())),
        }
    }

    /// The PostgreSQL password of `--database-password-file`: read from the file for a
    /// PostgreSQL URL (an empty or unreadable file is an error), `None` without the flag, and
    /// ignored with a warning (the file is not read) for SQLite.
    pub fn database_password(&self) -> Result<Option<Secret>, SecretFileError> {
        let Some(path) = &self.database_password_file else {
            return Ok(None);
        };
        if sdash_service::is_postgres_url(&self.database_url) {
            sdash_service::read_password_file("--database-password-file", path).map(Some)
        } else {
            tracing::warn!(
                file = %path.display(),
                "--database-password-file is ignored: the database is not PostgreSQL"
            );
            Ok(None)
        }
    }

    /// Which capacity samples are stored raw.
    pub fn raw_sample_policy(&self) -> RawSamplePolicy {
        RawSamplePolicy {
            deadband_percent: self.capacity_raw_deadband,
            deadband_bytes: self.capacity_raw_deadband_bytes,
            max_gap_ms: i64::try_from(self.capacity_raw_max_gap.as_millis()).unwrap_or(i64::MAX),
        }
    }

    pub fn retention_policy(&self) -> RetentionPolicy {
        RetentionPolicy {
            event_retention_days: self.event_retention_days,
            events_per_system: self.events_per_system,
            capacity_raw_days: self.capacity_raw_days,
            capacity_hourly_days: self.capacity_hourly_days,
            capacity_daily_days: self.capacity_daily_days,
            performance_raw_days: self.performance_raw_days,
            dead_letter_days: self.dead_letter_days,
            batch_rows: self.retention_batch,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn duration_defaults_parse() {
        for text in [
            defaults::BATCH_TIMEOUT,
            defaults::ACK_WAIT,
            defaults::RETENTION_INTERVAL,
            defaults::LOCK_POLL,
            defaults::CAPACITY_RAW_MAX_GAP,
            defaults::LATE_SAMPLE_WINDOW,
        ] {
            assert!(parse_duration(text).is_ok(), "{text}");
        }
        assert_eq!(
            parse_duration(defaults::LATE_SAMPLE_WINDOW)
                .ok()
                .map(|d| d.as_millis()),
            Some(crate::store::DEFAULT_LATE_SAMPLE_WINDOW_MS as u128)
        );
        assert!(defaults::ADMIN_LISTEN.parse::<SocketAddr>().is_ok());
    }

    #[test]
    fn capacity_raw_deadband() {
        assert_eq!(parse_percent("0.1"), Ok(0.1));
        assert_eq!(parse_percent(" 2.5% "), Ok(2.5));
        assert_eq!(parse_percent("0"), Ok(0.0));
        for bad in ["-1", "101", "NaN", "inf", "a", ""] {
            assert!(parse_percent(bad).is_err(), "{bad:?}");
        }
        let config = WriterConfig::new("nats://x", "sqlite://x");
        assert_eq!(config.raw_sample_policy(), RawSamplePolicy::default());
    }

    #[test]
    fn capacity_thresholds() {
        let parse = |t: &str| CapacityThresholds::parse(t).map(|c| c.0);
        assert_eq!(
            parse(defaults::CAPACITY_THRESHOLDS),
            Ok(crate::store::DEFAULT_CAPACITY_THRESHOLDS.to_vec())
        );
        assert_eq!(parse(" 95, 80 ,90,80"), Ok(vec![80, 90, 95]));
        assert_eq!(parse("none"), Ok(vec![]));
        assert_eq!(parse(""), Ok(vec![]));
        for bad in ["0", "101", "80,,90", "80%", "ninety"] {
            assert!(parse(bad).is_err(), "{bad:?}");
        }
    }
}
