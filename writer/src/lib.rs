//! sdash-writer: the single writer that consumes the `SDASH` JetStream stream and persists it to
//! PostgreSQL or SQLite.
//!
//! * [`Store`]: the database side. One connection, one transaction per batch, idempotent writes
//!   (unique event ids, natural keys, newest-wins upserts), dead letters in the same transaction,
//!   derived history (alerts, status transitions, capacity rollups), retention in small batches.
//! * [`run`]: the service. Admin server, the writer lock (one active writer, hot standby), a
//!   durable pull consumer, batches of up to `--batch-max` messages or `--batch-timeout`, database
//!   retries with backoff while the messages stay unacknowledged, ack only after commit.

pub mod config;
mod db_password;
mod lock;
pub mod metrics;
mod pipeline;
pub mod replay;
pub mod store;

pub use config::{Cli, Command, WriterConfig};
pub use db_password::set_database_password;
pub use lock::PG_WRITER_LOCK;
pub use metrics::WriterMetrics;
pub use pipeline::backoff;
pub use replay::{ReplayArgs, ReplayOutcome, replay_dead_letters};
pub use store::{
    BatchOutcome, DEFAULT_MAX_DELIVER, DeadLetter, Incoming, PreparedBatch, RetentionOutcome,
    RetentionPolicy, RowCounts, Store, StoreError,
};

/// Runs the writer until `shutdown` resolves: admin server, writer lock (standby until it is
/// free), database, consumer, batches. With `--database-password-file` (PostgreSQL), the password
/// is read first (an empty or unreadable file is an error) and used by every connection.
pub async fn run(
    config: WriterConfig,
    shutdown: impl std::future::Future<Output = ()> + Send + 'static,
) -> anyhow::Result<()> {
    if let Some(password) = config.database_password()? {
        set_database_password(&config.database_url, password);
    }
    pipeline::run(config, shutdown).await
}
