//! The storage side of the writer: one [`Store`] over SQLite or PostgreSQL (chosen by the URL
//! scheme), holding one database connection. Every batch is written in one transaction; writes
//! are idempotent so a redelivered or replayed message never duplicates a row.
//!
//! A batch goes `plan` (decode, validate) → `write` (read the stored state, `derive` history,
//! write), the same for both backends; `pg` and `sqlite` supply only the statements that
//! differ (the `Dialect` trait in `dialect`). Retention (`retention`), migrations (`migrate`)
//! and [`dead_letter`] are written once too, with `sql` running the statements whose text both
//! backends share.

use std::sync::atomic::{AtomicI32, AtomicI64, AtomicU64, Ordering};
use std::time::Duration;

use sdash_service::Secret;

mod commands;
pub mod dead_letter;
mod derive;
mod dialect;
mod history;
mod ledger;
mod migrate;
mod outbox;
pub(crate) mod pg;
mod plan;
mod retention;
mod sql;
pub mod sqlite;
mod tables;
mod write;

pub use commands::CommandTally;
pub use dead_letter::{DeadLetter, DeadLetterReason};
pub use derive::{DEFAULT_CAPACITY_THRESHOLDS, RawSamplePolicy, utc_day};
pub use ledger::DEFAULT_LATE_SAMPLE_WINDOW_MS;
pub use outbox::PendingChange;
pub use plan::PERFORMANCE_METRICS;
pub use retention::RetentionRun;

/// One message as received from JetStream.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Incoming {
    /// The JetStream stream sequence (unique per message; the dead-letter key).
    pub stream_seq: u64,
    pub subject: String,
    pub payload: Vec<u8>,
    /// How many times JetStream delivered it (1 on the first delivery).
    pub deliveries: u64,
}

/// Rows a batch wrote (inserted or updated), per table.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct RowCounts {
    pub events: u64,
    pub systems: u64,
    pub collectors: u64,
    pub system_state: u64,
    pub capacity_samples: u64,
    pub capacity_hourly: u64,
    pub capacity_daily: u64,
    pub pool_hourly: u64,
    pub pool_daily: u64,
    pub performance_samples: u64,
    pub performance_hourly: u64,
    pub performance_daily: u64,
    pub alerts: u64,
    pub status_transitions: u64,
    pub dead_letters: u64,
    /// Derived changes stored in the outbox (to be published on `sdash.v1.change.*`).
    pub change_outbox: u64,
    /// Operator commands recorded (one row each, applied or not).
    pub command_audit: u64,
    /// Comments appended to alert instances.
    pub alert_comments: u64,
    /// Names added to, refreshed in or deleted from the assignee list.
    pub assignees: u64,
    /// The commands recorded, per kind and outcome (not a table).
    pub commands: CommandTally,
    /// Capacity samples older than the ledger's floor (`--late-sample-window`) and not newer
    /// than what the rollups had counted for their system (redelivered, or too late to be
    /// counted): neither counted nor stored (not a table).
    pub capacity_samples_not_newer: u64,
    /// Capacity samples the ledger knows were counted (redelivered), or twice in the batch:
    /// not counted again (not a table).
    pub capacity_samples_repeated: u64,
    /// Capacity samples counted although older than one the rollups had counted: late, within
    /// `--late-sample-window` (not a table).
    pub capacity_samples_late: u64,
    /// Capacity samples counted in the rollups but not stored raw, inside the deadband (not a
    /// table).
    pub capacity_samples_thinned: u64,
}

impl RowCounts {
    /// `(table, rows)` pairs, for metrics.
    pub fn by_table(&self) -> [(&'static str, u64); 19] {
        [
            ("events", self.events),
            ("systems", self.systems),
            ("collectors", self.collectors),
            ("system_state", self.system_state),
            ("capacity_samples", self.capacity_samples),
            ("capacity_hourly", self.capacity_hourly),
            ("capacity_daily", self.capacity_daily),
            ("pool_hourly", self.pool_hourly),
            ("pool_daily", self.pool_daily),
            ("performance_samples", self.performance_samples),
            ("performance_hourly", self.performance_hourly),
            ("performance_daily", self.performance_daily),
            ("alerts", self.alerts),
            ("status_transitions", self.status_transitions),
            ("dead_letters", self.dead_letters),
            ("change_outbox", self.change_outbox),
            ("command_audit", self.command_audit),
            ("alert_comments", self.alert_comments),
            ("assignees", self.assignees),
        ]
    }

    fn add(&mut self, o: &RowCounts) {
        self.events += o.events;
        self.systems += o.systems;
        self.collectors += o.collectors;
        self.system_state += o.system_state;
        self.capacity_samples += o.capacity_samples;
        self.capacity_hourly += o.capacity_hourly;
        self.capacity_daily += o.capacity_daily;
        self.pool_hourly += o.pool_hourly;
        self.pool_daily += o.pool_daily;
        self.performance_samples += o.performance_samples;
        self.performance_hourly += o.performance_hourly;
        self.performance_daily += o.performance_daily;
        self.capacity_samples_not_newer += o.capacity_samples_not_newer;
        self.capacity_samples_repeated += o.capacity_samples_repeated;
        self.capacity_samples_late += o.capacity_samples_late;
        self.capacity_samples_thinned += o.capacity_samples_thinned;
        self.alerts += o.alerts;
        self.status_transitions += o.status_transitions;
        self.dead_letters += o.dead_letters;
        self.change_outbox += o.change_outbox;
        self.command_audit += o.command_audit;
        self.alert_comments += o.alert_comments;
        self.assignees += o.assignees;
        self.commands.add(&o.commands);
    }
}

/// What a committed batch did.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct BatchOutcome {
    /// Messages in the batch.
    pub messages: usize,
    /// Stream sequences of the messages stored as dead letters (to be terminated, not acked).
    pub dead_lettered: Vec<u64>,
    /// Messages delivered more than once.
    pub redelivered: u64,
    pub rows: RowCounts,
    pub last_stream_seq: Option<u64>,
}

impl BatchOutcome {
    /// Adds another outcome (when a batch had to be written in parts).
    pub fn merge(&mut self, other: BatchOutcome) {
        self.messages += other.messages;
        self.dead_lettered.extend(other.dead_lettered);
        self.redelivered += other.redelivered;
        self.rows.add(&other.rows);
        self.last_stream_seq = match (self.last_stream_seq, other.last_stream_seq) {
            (Some(a), Some(b)) => Some(a.max(b)),
            (a, b) => a.or(b),
        };
    }
}

/// Retention settings; see [`Store::apply_retention`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RetentionPolicy {
    /// Events older than this many days are deleted (0 = kept forever, like the other `_days`).
    pub event_retention_days: u32,
    /// Only the newest this many events are kept per system (0 = no count limit).
    pub events_per_system: u64,
    /// Raw capacity samples older than this many days are deleted (the rollups stay).
    pub capacity_raw_days: u32,
    /// Hourly capacity rollups older than this many days are deleted; so are the hourly pool
    /// and performance rollups.
    pub capacity_hourly_days: u32,
    /// Daily capacity rollups older than this many days are deleted (default 0: kept forever);
    /// so are the daily pool and performance rollups.
    pub capacity_daily_days: u32,
    /// Raw performance samples older than this many days are deleted (the rollups stay).
    pub performance_raw_days: u32,
    /// Dead letters older than this many days are deleted.
    pub dead_letter_days: u32,
    /// Rows deleted per statement (small, so the writer is never blocked for long).
    pub batch_rows: u32,
}

impl Default for RetentionPolicy {
    fn default() -> Self {
        RetentionPolicy {
            event_retention_days: 30,
            events_per_system: 1000,
            capacity_raw_days: 90,
            capacity_hourly_days: 400,
            capacity_daily_days: 0,
            performance_raw_days: 7,
            dead_letter_days: 30,
            batch_rows: 5000,
        }
    }
}

/// Rows deleted by one retention run.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct RetentionOutcome {
    pub events_expired: u64,
    pub events_over_limit: u64,
    pub capacity_samples_expired: u64,
    pub capacity_hourly_expired: u64,
    pub capacity_daily_expired: u64,
    pub performance_samples_expired: u64,
    pub pool_hourly_expired: u64,
    pub pool_daily_expired: u64,
    pub performance_hourly_expired: u64,
    pub performance_daily_expired: u64,
    pub dead_letters_expired: u64,
    /// Systems whose event count was over the limit.
    pub systems_trimmed: u64,
}

impl RetentionOutcome {
    /// Adds another step's deletions.
    pub fn add(&mut self, o: &RetentionOutcome) {
        self.events_expired += o.events_expired;
        self.events_over_limit += o.events_over_limit;
        self.capacity_samples_expired += o.capacity_samples_expired;
        self.capacity_hourly_expired += o.capacity_hourly_expired;
        self.capacity_daily_expired += o.capacity_daily_expired;
        self.performance_samples_expired += o.performance_samples_expired;
        self.pool_hourly_expired += o.pool_hourly_expired;
        self.pool_daily_expired += o.pool_daily_expired;
        self.performance_hourly_expired += o.performance_hourly_expired;
        self.performance_daily_expired += o.performance_daily_expired;
        self.dead_letters_expired += o.dead_letters_expired;
        self.systems_trimmed += o.systems_trimmed;
    }

    pub fn total(&self) -> u64 {
        self.events_expired
            + self.events_over_limit
            + self.capacity_samples_expired
            + self.capacity_hourly_expired
            + self.capacity_daily_expired
            + self.performance_samples_expired
            + self.pool_hourly_expired
            + self.pool_daily_expired
            + self.performance_hourly_expired
            + self.performance_daily_expired
            + self.dead_letters_expired
    }
}

#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("unsupported database URL {0:?}: expected sqlite://PATH or postgres://USER@HOST/DB")]
    Url(String),
    #[error("database error: {0}")]
    Db(#[from] sqlx::Error),
    #[error("migration failed: {0}")]
    Migrate(#[from] sqlx::migrate::MigrateError),
    #[error("the database holds schema version {found}, newer than this writer's {known}")]
    SchemaTooNew { found: i64, known: i64 },
    #[error("the writer lock is no longer held (its connection dropped); not writing")]
    LockLost,
    #[error("database operation timed out after {0:?}")]
    Timeout(Duration),
    /// None of the servers of a multi-host URL is writable (yet): retried like an outage.
    #[error(transparent)]
    NoServer(#[from] sdash_service::postgres::NoServerError),
}

impl From<sdash_service::postgres::ConnectError> for StoreError {
    fn from(e: sdash_service::postgres::ConnectError) -> StoreError {
        match e {
            sdash_service::postgres::ConnectError::Db(e) => StoreError::Db(e),
            sdash_service::postgres::ConnectError::NoServer(e) => StoreError::NoServer(e),
        }
    }
}

impl StoreError {
    /// Whether the error is about the data of the batch (a constraint, a value the database
    /// refuses) rather than about the database being unreachable, busy or read-only. Such a
    /// batch will never succeed as a whole; it is written in parts to isolate the bad message.
    pub fn is_data_error(&self) -> bool {
        let StoreError::Db(sqlx::Error::Database(db)) = self else {
            return matches!(self, StoreError::Db(sqlx::Error::Encode(_)));
        };
        let Some(code) = db.code() else { return false };
        let code = code.as_ref();
        if db
            .try_downcast_ref::<sqlx::postgres::PgDatabaseError>()
            .is_some()
        {
            // SQLSTATE classes: 22 data exception, 23 integrity constraint, 54 program limit.
            code.starts_with("22") || code.starts_with("23") || code.starts_with("54")
        } else {
            // SQLite primary result codes: 18 TOOBIG, 19 CONSTRAINT, 20 MISMATCH, 25 RANGE.
            let primary = code.parse::<i64>().map(|c| c & 0xff).unwrap_or(0);
            matches!(primary, 18 | 19 | 20 | 25)
        }
    }
}

/// A batch decoded and validated by [`Store::prepare`], ready for [`Store::write_prepared`].
#[derive(Debug)]
pub struct PreparedBatch {
    plan: plan::Plan,
    messages: usize,
}

/// Runs `body` with `pool` bound to the store's pool and `D` to its [`dialect::Dialect`].
macro_rules! on_backend {
    ($store:expr, $pool:ident, $dialect:ident => $body:expr) => {
        match &$store.backend {
            Backend::Sqlite($pool) => {
                #[allow(dead_code)]
                type $dialect = sqlite::Sqlite;
                $body
            }
            Backend::Postgres($pool) => {
                #[allow(dead_code)]
                type $dialect = pg::Postgres;
                $body
            }
        }
    };
}

pub(crate) enum Backend {
    Sqlite(sqlx::SqlitePool),
    Postgres(sqlx::PgPool),
}

/// The writer's database: SQLite (`sqlite://path`, created if missing, WAL) or PostgreSQL
/// (`postgres://`, one server or several of which the writable one is used). One connection;
/// migrations run on open.
pub struct Store {
    pub(crate) backend: Backend,
    writer_id: String,
    max_deliver: AtomicU64,
    /// PostgreSQL backend pid of the session holding the writer lock: each batch checks, inside
    /// its transaction, that this session still holds it (0 = no check, -1 = lock lost).
    fence_pid: AtomicI32,
    consumer_pending: AtomicI64,
    /// Percentages of total capacity whose crossing is a change, ascending.
    capacity_thresholds: Vec<u8>,
    /// Which capacity samples are stored raw.
    raw_samples: RawSamplePolicy,
    /// How late (ms before the commit) a snapshot may arrive and still be counted in the tiers.
    late_window_ms: i64,
}

/// Default for `--max-deliver`.
pub const DEFAULT_MAX_DELIVER: u64 = 10;

/// How long one database operation (a whole batch transaction) may take before it is abandoned.
pub const OPERATION_TIMEOUT: Duration = Duration::from_secs(120);

impl Store {
    /// Opens (and for SQLite creates) the database and brings its schema up to date, logging
    /// in without a password of its own (the URL's, or a pgpass file's, if any).
    pub async fn open(url: &str) -> Result<Store, StoreError> {
        Store::connect(url, None).await
    }

    /// [`Store::open`], logging in to PostgreSQL with `password` when given (it overrides one
    /// in the URL or a pgpass file; SQLite has none).
    pub async fn connect(url: &str, password: Option<&Secret>) -> Result<Store, StoreError> {
        let backend = if url.starts_with("sqlite:") {
            let pool = sqlite::open(url).await?;
            migrate::run::<sqlite::Sqlite>(&pool).await?;
            Backend::Sqlite(pool)
        } else if sdash_service::is_postgres_url(url) {
            let pool = pg::open(url, password).await?;
            migrate::run::<pg::Postgres>(&pool).await?;
            Backend::Postgres(pool)
        } else {
            return Err(StoreError::Url(url.to_owned()));
        };
        Ok(Store {
            backend,
            writer_id: default_writer_id(),
            max_deliver: AtomicU64::new(DEFAULT_MAX_DELIVER),
            fence_pid: AtomicI32::new(0),
            consumer_pending: AtomicI64::new(0),
            capacity_thresholds: DEFAULT_CAPACITY_THRESHOLDS.to_vec(),
            raw_samples: RawSamplePolicy::default(),
            late_window_ms: DEFAULT_LATE_SAMPLE_WINDOW_MS,
        })
    }

    /// Sets the id written to `pipeline_status.writer_id`.
    pub fn with_writer_id(mut self, id: impl Into<String>) -> Store {
        self.writer_id = id.into();
        self
    }

    pub fn writer_id(&self) -> &str {
        &self.writer_id
    }

    /// Sets the capacity thresholds (percent of total) whose crossings are changes
    /// (default [`DEFAULT_CAPACITY_THRESHOLDS`]; empty: none).
    pub fn with_capacity_thresholds(mut self, percents: &[u8]) -> Store {
        let mut t = percents.to_vec();
        t.sort_unstable();
        t.dedup();
        self.capacity_thresholds = t;
        self
    }

    /// Sets which capacity samples are stored raw (default [`RawSamplePolicy::default`]).
    pub fn with_raw_samples(mut self, policy: RawSamplePolicy) -> Store {
        self.raw_samples = policy;
        self
    }

    /// Sets how late a snapshot may arrive (before the commit) and still be counted in the
    /// tiers (default [`DEFAULT_LATE_SAMPLE_WINDOW_MS`], `--late-sample-window`).
    pub fn with_late_sample_window(mut self, window: Duration) -> Store {
        self.late_window_ms = i64::try_from(window.as_millis()).unwrap_or(i64::MAX);
        self
    }

    /// The oldest `limit` changes waiting in the outbox, in publication order.
    pub async fn pending_changes(&self, limit: i64) -> Result<Vec<PendingChange>, StoreError> {
        on_backend!(self, pool, _D => outbox::oldest(pool, limit).await)
    }

    /// Deletes the outbox's changes up to and including `seq` (JetStream acknowledged them).
    pub async fn forget_changes_through(&self, seq: i64) -> Result<u64, StoreError> {
        on_backend!(self, pool, _D => outbox::forget_through(pool, seq).await)
    }

    /// How many changes wait in the outbox.
    pub async fn change_outbox_depth(&self) -> Result<i64, StoreError> {
        on_backend!(self, pool, _D => outbox::depth(pool).await)
    }

    /// Messages delivered more than this many times are dead-lettered (0 = never).
    pub fn set_max_deliver(&self, n: u64) {
        self.max_deliver.store(n, Ordering::Relaxed);
    }

    /// The consumer's pending count, recorded in `pipeline_status` on the next commit.
    pub fn set_consumer_pending(&self, n: u64) {
        self.consumer_pending
            .store(plan::to_i64(n), Ordering::Relaxed);
    }

    /// PostgreSQL: require every batch to see the advisory lock held by backend `pid`
    /// (`None` = lock lost: refuse to write).
    pub(crate) fn set_fence(&self, pid: Option<i32>) {
        self.fence_pid.store(pid.unwrap_or(-1), Ordering::SeqCst);
    }

    pub fn backend_name(&self) -> &'static str {
        match self.backend {
            Backend::Sqlite(_) => "sqlite",
            Backend::Postgres(_) => "postgres",
        }
    }

    /// Whether the database answers.
    pub async fn ping(&self) -> Result<(), StoreError> {
        on_backend!(self, pool, _D => sqlx::query("SELECT 1").execute(pool).await.map(drop))?;
        Ok(())
    }

    /// Writes a batch in ONE transaction: decodes and validates every message, dead-letters the
    /// bad ones (oversized, undecodable, invalid, delivered too often) in the same transaction,
    /// applies the good ones idempotently, and updates `pipeline_status`.
    pub async fn write_batch(&self, batch: &[Incoming]) -> Result<BatchOutcome, StoreError> {
        self.write_prepared(&self.prepare(batch)).await
    }

    /// The CPU half of [`Store::write_batch`]: decodes and validates a batch without touching
    /// the database, so that the writer can do it while the previous batch is being written.
    pub fn prepare(&self, batch: &[Incoming]) -> PreparedBatch {
        PreparedBatch {
            plan: plan::plan(
                batch,
                self.max_deliver.load(Ordering::Relaxed),
                sdash_proto::now_ms(),
            ),
            messages: batch.len(),
        }
    }

    /// The database half of [`Store::write_batch`]: writes a prepared batch in one transaction.
    /// A batch can be written again after a failed attempt.
    pub async fn write_prepared(&self, batch: &PreparedBatch) -> Result<BatchOutcome, StoreError> {
        if batch.messages == 0 {
            return Ok(BatchOutcome::default());
        }
        let plan = &batch.plan;
        let rows = tokio::time::timeout(OPERATION_TIMEOUT, self.write_plan(plan))
            .await
            .map_err(|_| StoreError::Timeout(OPERATION_TIMEOUT))??;
        Ok(BatchOutcome {
            messages: batch.messages,
            dead_lettered: plan.dead.iter().map(|d| d.stream_seq as u64).collect(),
            redelivered: plan.redelivered,
            rows,
            last_stream_seq: plan.last_stream_seq.map(|s| s as u64),
        })
    }

    /// Writes a plan in one transaction, recording the commit in `pipeline_status`.
    async fn write_plan(&self, plan: &plan::Plan) -> Result<RowCounts, StoreError> {
        let meta = CommitMeta {
            writer_id: &self.writer_id,
            fence_pid: self.fence_pid.load(Ordering::SeqCst),
            consumer_pending: self.consumer_pending.load(Ordering::Relaxed),
            now: sdash_proto::now_ms(),
            capacity_thresholds: &self.capacity_thresholds,
            raw_samples: &self.raw_samples,
            late_window_ms: self.late_window_ms,
        };
        on_backend!(self, pool, D => write::write::<D>(pool, plan, &meta).await)
    }

    /// Stores one message as a dead letter with `reason` (used when the database itself refuses
    /// a message that decoded fine, so that it cannot block the stream).
    pub async fn dead_letter(
        &self,
        message: &Incoming,
        reason: &DeadLetterReason,
    ) -> Result<BatchOutcome, StoreError> {
        let mut plan = plan::Plan {
            last_stream_seq: Some(plan::to_i64(message.stream_seq)),
            ..Default::default()
        };
        plan.dead.push(plan::DeadRow {
            stream_seq: plan::to_i64(message.stream_seq),
            subject: plan::clean(&message.subject),
            payload: message.payload.clone(),
            reason: plan::clean(&reason.to_string()),
            deliveries: plan::to_i64(message.deliveries),
            received_at: sdash_proto::now_ms(),
        });
        let rows = self.write_plan(&plan).await?;
        Ok(BatchOutcome {
            messages: 1,
            dead_lettered: vec![message.stream_seq],
            redelivered: u64::from(message.deliveries > 1),
            rows,
            last_stream_seq: Some(message.stream_seq),
        })
    }

    /// Up to `limit` stored dead letters, oldest stream sequence first, after `after`.
    pub async fn dead_letters(
        &self,
        after: i64,
        limit: i64,
    ) -> Result<Vec<DeadLetter>, StoreError> {
        on_backend!(self, pool, _D => dead_letter::page(pool, after, limit).await)
    }

    /// Deletes one dead letter (after it was published again).
    pub async fn forget_dead_letter(&self, stream_seq: i64) -> Result<(), StoreError> {
        on_backend!(self, pool, _D => dead_letter::forget(pool, stream_seq).await)
    }

    /// Deletes, in statements of `policy.batch_rows` rows: events older than the retention
    /// window, events beyond the per-system limit (for every system; the newest are kept), raw
    /// capacity and performance samples, hourly and daily rollups (capacity, pools,
    /// performance) older than their windows, and old dead letters. The whole pass at once; the writer runs it in steps ([`Store::retention_step`]).
    pub async fn apply_retention(
        &self,
        policy: &RetentionPolicy,
    ) -> Result<RetentionOutcome, StoreError> {
        let mut run = self.start_retention(policy);
        while !run.is_done() {
            // Steps of a second: each commits, so no transaction grows with the pass.
            self.retention_step(&mut run, Duration::from_secs(1))
                .await?;
        }
        Ok(run.deleted)
    }

    /// A retention pass with `policy`'s windows as of now, to be run in steps.
    pub fn start_retention(&self, policy: &RetentionPolicy) -> RetentionRun {
        let now = sdash_proto::now_ms();
        // 0 days = keep forever.
        let before = |days: u32| match days {
            0 => i64::MIN,
            d => now - i64::from(d) * 86_400_000,
        };
        RetentionRun::new(retention::Cutoffs {
            events_before: before(policy.event_retention_days),
            samples_before: before(policy.capacity_raw_days),
            performance_samples_before: before(policy.performance_raw_days),
            hourly_before: before(policy.capacity_hourly_days),
            daily_before: match policy.capacity_daily_days {
                0 => None,
                d => Some(utc_day(now - i64::from(d) * 86_400_000)),
            },
            dead_letters_before: before(policy.dead_letter_days),
            keep_per_system: plan::to_i64(policy.events_per_system),
            batch: i64::from(policy.batch_rows.max(1)),
        })
    }

    /// Runs a retention pass on for about `budget` (at least one bounded statement), then
    /// returns what this step deleted; `run.is_done()` once the pass is over.
    pub async fn retention_step(
        &self,
        run: &mut RetentionRun,
        budget: Duration,
    ) -> Result<RetentionOutcome, StoreError> {
        on_backend!(self, pool, D => retention::step::<D>(pool, run, budget).await)
    }

    /// Closes the connection.
    pub async fn close(&self) {
        on_backend!(self, pool, _D => pool.close().await)
    }
}

pub(crate) struct CommitMeta<'a> {
    pub writer_id: &'a str,
    pub fence_pid: i32,
    pub consumer_pending: i64,
    pub now: i64,
    pub capacity_thresholds: &'a [u8],
    pub raw_samples: &'a RawSamplePolicy,
    pub late_window_ms: i64,
}

fn default_writer_id() -> String {
    let host = std::fs::read_to_string("/proc/sys/kernel/hostname")
        .map(|h| h.trim().to_owned())
        .ok()
        .filter(|h| !h.is_empty())
        .unwrap_or_else(|| "localhost".into());
    format!("{host}:{}", std::process::id())
}
