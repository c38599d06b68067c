//! Command line and environment configuration. Every flag has an `SDASH_*` environment twin.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

use sdash_service::bus::{NatsArgs, StreamArgs};
use sdash_service::{LogArgs, Secret, SecretFileError};

use crate::store::RetentionPolicy;

/// sdash-writer: consumes the SDASH JetStream stream and persists it, exactly one active writer
/// per database (a second one waits as a hot standby).
#[derive(Debug, Clone, clap::Parser)]
#[command(name = "sdash-writer", version, about, long_about = None)]
pub struct Cli {
    #[command(flatten)]
    pub log: LogArgs,
    #[command(flatten)]
    pub writer: WriterConfig,
    /// Without a command: run the writer.
    #[command(subcommand)]
    pub command: Option<Command>,
}

/// One-off tasks on the writer's database and stream (their flags come after the command; the
/// database and NATS flags before it, or from the environment).
#[derive(Debug, Clone, clap::Subcommand)]
pub enum Command {
    /// Publish stored dead letters to the stream again (deleting each once JetStream has it), so
    /// the running writer stores them; by default only poison and database refusals.
    ReplayDeadLetters(crate::replay::ReplayArgs),
}

/// Everything [`crate::run`] needs.
#[derive(Debug, Clone, clap::Args)]
pub struct WriterConfig {
    #[command(flatten)]
    pub nats: NatsArgs,
    #[command(flatten)]
    pub stream: StreamArgs,
    /// Database URL: sqlite://PATH (created if missing) or postgres://USER@HOST:PORT/DB.
    #[arg(
        long = "database-url",
        env = "SDASH_DATABASE_URL",
        default_value = "sqlite://sdash.db"
    )]
    pub database_url: String,
    /// File holding the PostgreSQL password (trailing newline removed; must not be empty).
    /// Overrides a password in the URL or a pgpass file; ignored, with a warning, for SQLite.
    #[arg(long = "database-password-file", env = "SDASH_DATABASE_PASSWORD_FILE")]
    pub database_password_file: Option<PathBuf>,
    /// Most messages written in one database transaction.
    #[arg(long = "batch-max", env = "SDASH_BATCH_MAX", default_value_t = 1000, value_parser = clap::value_parser!(u32).range(1..=100_000))]
    pub batch_max: u32,
    /// How long a batch may wait for more messages after its first one (e.g. 100ms, 1s).
    #[arg(long = "batch-timeout", env = "SDASH_BATCH_TIMEOUT", default_value = "100ms", value_parser = parse_duration)]
    pub batch_timeout: Duration,
    /// Messages delivered more than this many times are stored as dead letters and terminated
    /// (a poison message never blocks the stream); 0 disables the limit.
    #[arg(long = "max-deliver", env = "SDASH_MAX_DELIVER", default_value_t = 10)]
    pub max_deliver: u64,
    /// How long JetStream waits for an ack before redelivering (in-progress acks extend it while
    /// the database is retried).
    #[arg(long = "ack-wait", env = "SDASH_ACK_WAIT", default_value = "30s", value_parser = parse_duration)]
    pub ack_wait: Duration,
    /// Durable consumer name (change it only to run an independent copy of the writer).
    #[arg(
        long = "consumer",
        env = "SDASH_CONSUMER",
        default_value = "sdash-writer"
    )]
    pub consumer: String,
    /// Id recorded in pipeline_status (default: HOSTNAME:PID).
    #[arg(long = "writer-id", env = "SDASH_WRITER_ID")]
    pub writer_id: Option<String>,
    /// How often retention runs (e.g. 5m).
    #[arg(long = "retention-interval", env = "SDASH_RETENTION_INTERVAL", default_value = "5m", value_parser = parse_duration)]
    pub retention_interval: Duration,
    /// Events older than this many days are deleted (0 = keep forever).
    #[arg(
        long = "event-retention-days",
        env = "SDASH_EVENT_RETENTION_DAYS",
        default_value_t = 30
    )]
    pub event_retention_days: u32,
    /// Only the newest this many events are kept per system (0 = no limit).
    #[arg(
        long = "events-per-system",
        env = "SDASH_EVENTS_PER_SYSTEM",
        default_value_t = 1000
    )]
    pub events_per_system: u64,
    /// Raw capacity samples older than this many days are deleted (daily rollups are kept; 0 = keep forever).
    #[arg(
        long = "capacity-raw-days",
        env = "SDASH_CAPACITY_RAW_DAYS",
        default_value_t = 90
    )]
    pub capacity_raw_days: u32,
    /// Dead letters older than this many days are deleted (0 = keep forever).
    #[arg(
        long = "dead-letter-days",
        env = "SDASH_DEAD_LETTER_DAYS",
        default_value_t = 30
    )]
    pub dead_letter_days: u32,
    /// Rows deleted per retention statement.
    #[arg(long = "retention-batch", env = "SDASH_RETENTION_BATCH", default_value_t = 5000, value_parser = clap::value_parser!(u32).range(1..))]
    pub retention_batch: u32,
    /// Address of the admin server (/healthz, /readyz, /metrics); port 0 picks a free port.
    #[arg(
        long = "admin-listen",
        env = "SDASH_ADMIN_LISTEN",
        default_value = "127.0.0.1:9101"
    )]
    pub admin_listen: SocketAddr,
    /// How often a standby writer retries taking the writer lock.
    #[arg(long = "lock-poll", env = "SDASH_LOCK_POLL", default_value = "500ms", value_parser = parse_duration)]
    pub lock_poll: Duration,
}

impl WriterConfig {
    /// The defaults, for a NATS server at `nats_url` and the database at `database_url`, with
    /// the admin server on a free port (tests, tools).
    pub fn new(nats_url: &str, database_url: &str) -> WriterConfig {
        WriterConfig {
            nats: NatsArgs::plain(nats_url),
            stream: StreamArgs::default(),
            database_url: database_url.to_owned(),
            database_password_file: None,
            batch_max: 1000,
            batch_timeout: Duration::from_millis(100),
            max_deliver: 10,
            ack_wait: Duration::from_secs(30),
            consumer: "sdash-writer".into(),
            writer_id: None,
            retention_interval: Duration::from_secs(300),
            event_retention_days: 30,
            events_per_system: 1000,
            capacity_raw_days: 90,
            dead_letter_days: 30,
            retention_batch: 5000,
            admin_listen: SocketAddr::from(([127, 0, 0, 1], 0)),
            lock_poll: Duration::from_millis(500),
        }
    }

    /// The PostgreSQL password of `--database-password-file`: read from the file for a
    /// PostgreSQL URL (an empty or unreadable file is an error), `None` without the flag, and
    /// ignored with a warning (the file is not read) for SQLite.
    pub fn database_password(&self) -> Result<Option<Secret>, SecretFileError> {
        let Some(path) = &self.database_password_file else {
            return Ok(None);
        };
        if self.database_url.starts_with("postgres:")
            || self.database_url.starts_with("postgresql:")
        {
            sdash_service::read_password_file("--database-password-file", path).map(Some)
        } else {
            tracing::warn!(
                file = %path.display(),
                "--database-password-file is ignored: the database is not PostgreSQL"
            );
            Ok(None)
        }
    }

    pub fn retention_policy(&self) -> RetentionPolicy {
        RetentionPolicy {
            event_retention_days: self.event_retention_days,
            events_per_system: self.events_per_system,
            capacity_raw_days: self.capacity_raw_days,
            dead_letter_days: self.dead_letter_days,
            batch_rows: self.retention_batch,
        }
    }
}

/// Parses `250ms`, `5s`, `5m`, `1h`; a bare number is milliseconds.
pub fn parse_duration(text: &str) -> Result<Duration, String> {
    let t = text.trim();
    let split = t.find(|c: char| !c.is_ascii_digit()).unwrap_or(t.len());
    let (num, unit) = t.split_at(split);
    let n: u64 = num
        .parse()
        .map_err(|_| format!("{text:?} is not a duration like 100ms, 5s, 5m or 1h"))?;
    let ms = match unit.trim() {
        "" | "ms" => n,
        "s" => n.saturating_mul(1000),
        "m" => n.saturating_mul(60_000),
        "h" => n.saturating_mul(3_600_000),
        other => {
            return Err(format!(
                "unknown duration unit {other:?} in {text:?} (use ms, s, m or h)"
            ));
        }
    };
    Ok(Duration::from_millis(ms))
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::Parser;

    #[test]
    fn durations() {
        assert_eq!(parse_duration("100ms"), Ok(Duration::from_millis(100)));
        assert_eq!(parse_duration("250"), Ok(Duration::from_millis(250)));
        assert_eq!(parse_duration("5m"), Ok(Duration::from_secs(300)));
        assert!(parse_duration("5 parsecs").is_err());
        assert!(parse_duration("").is_err());
    }

    #[test]
    fn every_flag_has_an_env_twin_and_help() {
        use clap::CommandFactory;
        let broken = sdash_service::flags_breaking_conventions(&Cli::command());
        assert!(broken.is_empty(), "{broken:?}");
    }

    #[test]
    fn database_password_file() {
        let dir = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
        let file = |name: &str, text: &str| {
            let path = dir.path().join(name);
            std::fs::write(&path, text).unwrap_or_else(|e| panic!("{e}"));
            path
        };
        let pg = "postgres://sdash@db.example.net/sdash";
        let cli = Cli::try_parse_from([
            "sdash-writer",
            "--database-url",
            pg,
            "--database-password-file",
            file("pw", "hunter2 x\n").to_str().unwrap_or_default(),
        ])
        .unwrap_or_else(|e| panic!("{e}"));
        let password = cli
            .writer
            .database_password()
            .unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(password.as_ref().map(Secret::expose), Some("hunter2 x"));
        assert!(!format!("{:?}", cli.writer).contains("hunter2"));

        let mut config = WriterConfig::new("nats://127.0.0.1:4222", pg);
        assert!(matches!(config.database_password(), Ok(None)));
        config.database_password_file = Some(file("empty", "\n"));
        let err = config.database_password().err().map(|e| e.to_string());
        let err = err.unwrap_or_else(|| panic!("an empty file is accepted"));
        assert!(
            err.contains("--database-password-file") && err.contains("is empty"),
            "{err}"
        );
        config.database_password_file = Some(dir.path().join("missing"));
        let err = config.database_password().err().map(|e| e.to_string());
        let err = err.unwrap_or_else(|| panic!("a missing file is accepted"));
        assert!(
            err.contains("cannot read") && err.contains("missing"),
            "{err}"
        );

        // SQLite has no password: the flag is ignored (the file is not even read).
        config.database_url = "sqlite://sdash.db".into();
        assert!(matches!(config.database_password(), Ok(None)));
    }

    #[test]
    fn defaults_parse() {
        let cli = Cli::try_parse_from(["sdash-writer"]).unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(cli.writer.batch_max, 1000);
        assert_eq!(cli.writer.batch_timeout, Duration::from_millis(100));
        assert_eq!(cli.writer.max_deliver, 10);
        let cli = Cli::try_parse_from([
            "sdash-writer",
            "--admin-listen",
            "127.0.0.1:0",
            "--batch-timeout",
            "1s",
        ])
        .unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(cli.writer.admin_listen.port(), 0);
        assert_eq!(cli.writer.batch_timeout, Duration::from_secs(1));
    }
}
