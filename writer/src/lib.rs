//! sdash-writer: the single writer that consumes the `SDASH` JetStream stream and persists it to
//! PostgreSQL or SQLite.
//!
//! * [`Store`]: the database side. One connection, one transaction per batch, idempotent writes
//!   (unique event ids, natural keys, newest-wins upserts), dead letters in the same transaction,
//!   derived history (alerts, status transitions, capacity rollups), retention in small batches.
//! * [`run`]: the service. Admin server, the writer lock (one active writer, hot standby), a
//!   durable pull consumer, batches of up to `--batch-max` messages or `--batch-timeout`, database
//!   retries with backoff while the messages stay unacknowledged, ack only after commit.
//! * [`replay_dead_letters`]: the `replay-dead-letters` command.
//!
//! [`Cli`] and [`WriterConfig`] are the command line and the settings.

mod cli;
pub mod config;
pub mod import;
mod lock;
pub mod metrics;
mod pipeline;
pub mod replay;
pub mod store;
#[doc(hidden)]
pub mod testing;

pub use cli::{Cli, Command, ReplayArgs};
pub use config::WriterConfig;
pub use lock::PG_WRITER_LOCK;
pub use metrics::WriterMetrics;
pub use pipeline::{backoff, run};
pub use replay::{ReplayOutcome, replay_dead_letters};
pub use store::{
    BatchOutcome, CommandTally, DEFAULT_MAX_DELIVER, DeadLetter, DeadLetterReason, Incoming,
    PreparedBatch, RawSamplePolicy, RetentionOutcome, RetentionPolicy, RetentionRun, RowCounts,
    Store, StoreError,
};
