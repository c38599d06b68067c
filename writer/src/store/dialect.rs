//! What differs between the backends: the [`Dialect`] trait, implemented by
//! [`super::pg::Postgres`] and [`super::sqlite::Sqlite`]. Each method is one kind of write or
//! read, done in the backend's own way (PostgreSQL binds one array per column, SQLite binds
//! multi-row `VALUES`); the order of the steps, what is derived and what is counted live once in
//! [`super::write`], [`super::retention`] and [`super::migrate`].

use std::collections::{HashMap, HashSet};
use std::future::Future;

use sqlx::migrate::{Migrate, MigrateError, Migrator};
use sqlx::{Database, Pool, Transaction};

use super::StoreError;
use super::commands::{AlertStateRow, AuditRow, CommentRow, InstanceRow, KnownSystem};
use super::derive::{CapacityMark, CapacityRows};
use super::plan::{
    AlertEpisode, CollectorRow, DeadRow, EventRow, OpenAlertRow, OutboxRow, StateRow, StoredState,
    SystemContext, SystemRow, TransitionRow,
};
use super::sql::Sql;
use super::tables::Table;

/// The `ON CONFLICT` clause adding a batch's rollup (`excluded`) to a stored daily row, with the
/// backend's two-argument `least` and `greatest` functions. A stored row that was imported
/// (`source = 'imported'`) is replaced by the measured rollup instead.
macro_rules! merge_daily {
    ($least:literal, $greatest:literal) => {
        concat!(
            "ON CONFLICT (system_id, day) DO UPDATE SET ",
            "samples = CASE WHEN capacity_daily.source = 'imported' THEN excluded.samples ELSE capacity_daily.samples + excluded.samples END, ",
            "used_min = CASE WHEN capacity_daily.source = 'imported' THEN excluded.used_min ELSE ", $least, "(capacity_daily.used_min, excluded.used_min) END, ",
            "used_max = CASE WHEN capacity_daily.source = 'imported' THEN excluded.used_max ELSE ", $greatest, "(capacity_daily.used_max, excluded.used_max) END, ",
            "used_sum = CASE WHEN capacity_daily.source = 'imported' THEN excluded.used_sum ELSE capacity_daily.used_sum + excluded.used_sum END, ",
            "last_at = CASE WHEN capacity_daily.source = 'imported' THEN excluded.last_at ELSE ", $greatest, "(capacity_daily.last_at, excluded.last_at) END, ",
            "total_bytes = CASE WHEN capacity_daily.source = 'imported' OR excluded.last_at >= capacity_daily.last_at THEN excluded.total_bytes ELSE capacity_daily.total_bytes END, ",
            "used_bytes = CASE WHEN capacity_daily.source = 'imported' OR excluded.last_at >= capacity_daily.last_at THEN excluded.used_bytes ELSE capacity_daily.used_bytes END, ",
            "free_bytes = CASE WHEN capacity_daily.source = 'imported' OR excluded.last_at >= capacity_daily.last_at THEN excluded.free_bytes ELSE capacity_daily.free_bytes END, ",
            "source = 'measured'"
        )
    };
}
pub(crate) use merge_daily;

/// The `SET` list updating a stored alert episode from the batch's row `u`: its details when
/// the batch saw it, `last_seen` forward, `cleared_at` as derived.
macro_rules! update_alert_set {
    ($greatest:literal) => {
        concat!(
            "severity = CASE WHEN u.seen THEN u.severity ELSE alerts.severity END, ",
            "vendor_severity = CASE WHEN u.seen THEN u.vendor_severity ELSE alerts.vendor_severity END, ",
            "title = CASE WHEN u.seen THEN u.title ELSE alerts.title END, ",
            "component = CASE WHEN u.seen THEN u.component ELSE alerts.component END, ",
            "opened_at = CASE WHEN u.seen THEN COALESCE(u.opened_at, alerts.opened_at) ELSE alerts.opened_at END, ",
            "last_seen = CASE WHEN u.seen THEN ", $greatest, "(alerts.last_seen, u.last_seen) ELSE alerts.last_seen END, ",
            "cleared_at = u.cleared_at"
        )
    };
}
pub(crate) use update_alert_set;

/// The last known capacity of a stored state `s`, as two columns (used, total): its own, else
/// (its last snapshot had none, e.g. while unreachable) the newest capacity sample's, so that
/// an outage does not make the next sample look like a system's first. (Ordered like the key,
/// so that PostgreSQL reads the system's key range rather than scanning `observed_at` backwards.)
macro_rules! last_capacity {
    () => {
        concat!(
            "CASE WHEN s.total_bytes IS NULL THEN (SELECT c.used_bytes FROM capacity_samples c ",
            "WHERE c.system_id = s.system_id ORDER BY c.system_id DESC, c.observed_at DESC LIMIT 1) ELSE s.used_bytes END, ",
            "CASE WHEN s.total_bytes IS NULL THEN (SELECT c.total_bytes FROM capacity_samples c ",
            "WHERE c.system_id = s.system_id ORDER BY c.system_id DESC, c.observed_at DESC LIMIT 1) ELSE s.total_bytes END"
        )
    };
}
pub(crate) use last_capacity;

/// The connection a dialect's statements run on (inside the batch transaction).
pub(crate) type Conn<D> = <<D as Dialect>::Db as Database>::Connection;

/// What a batch's systems have stored: what history is derived against.
#[derive(Debug, Default)]
pub(crate) struct Stored {
    pub states: HashMap<String, StoredState>,
    pub open_alerts: Vec<OpenAlertRow>,
}

/// Rows a batch wrote in the tiers of one kind (capacity, pools, performance).
#[derive(Debug, Default, Clone, Copy)]
pub(crate) struct TiersWritten {
    pub raw: u64,
    pub hourly: u64,
    pub daily: u64,
}

/// The statements that differ between PostgreSQL and SQLite. Every write method gets a non-empty
/// slice and returns the rows it inserted or updated.
pub(crate) trait Dialect {
    type Db: Sql<Connection: Migrate>;

    /// Starts a batch transaction (SQLite takes the write lock at once).
    fn begin(
        pool: &Pool<Self::Db>,
    ) -> impl Future<Output = Result<Transaction<'static, Self::Db>, sqlx::Error>> + Send;
    /// Starts a transaction that no other writer process runs at the same time (migration
    /// bookkeeping).
    fn begin_exclusive(
        pool: &Pool<Self::Db>,
    ) -> impl Future<Output = Result<Transaction<'static, Self::Db>, sqlx::Error>> + Send;
    /// Whether backend `pid` still holds the writer's advisory lock (PostgreSQL only).
    fn writer_lock_held(
        c: &mut Conn<Self>,
        pid: i32,
    ) -> impl Future<Output = Result<bool, StoreError>> + Send;

    fn insert_dead_letters(
        c: &mut Conn<Self>,
        rows: &[DeadRow],
    ) -> impl Future<Output = Result<u64, StoreError>> + Send;
    fn insert_events(
        c: &mut Conn<Self>,
        rows: &[EventRow],
    ) -> impl Future<Output = Result<u64, StoreError>> + Send;
    /// Newest wins, by `updated_at`.
    fn upsert_systems(
        c: &mut Conn<Self>,
        rows: &[SystemRow],
    ) -> impl Future<Output = Result<u64, StoreError>> + Send;
    /// Newest wins, by `last_seen`.
    fn upsert_collectors(
        c: &mut Conn<Self>,
        rows: &[CollectorRow],
    ) -> impl Future<Output = Result<u64, StoreError>> + Send;

    /// The stored states (with the last known capacity) and open alerts (with their details and
    /// `first_seen`) of these systems.
    fn read_stored(
        c: &mut Conn<Self>,
        system_ids: &[&str],
    ) -> impl Future<Output = Result<Stored, StoreError>> + Send;
    /// `(id, vendor)` rows for systems first seen in a snapshot (an existing row is kept).
    fn insert_minimal_systems(
        c: &mut Conn<Self>,
        rows: &[(String, &'static str)],
    ) -> impl Future<Output = Result<u64, StoreError>> + Send;
    /// Newest wins, by `observed_at`; `last_online_at` only moves forward.
    fn upsert_states(
        c: &mut Conn<Self>,
        rows: &[StateRow],
    ) -> impl Future<Output = Result<u64, StoreError>> + Send;
    /// Moves `last_online_at` forward for `(system_id, at)`.
    fn raise_last_online(
        c: &mut Conn<Self>,
        rows: &[(String, i64)],
    ) -> impl Future<Output = Result<u64, StoreError>> + Send;
    fn insert_transitions(
        c: &mut Conn<Self>,
        rows: &[TransitionRow],
    ) -> impl Future<Output = Result<u64, StoreError>> + Send;
    /// Stored episodes seen again unchanged: only `last_seen` moves forward.
    fn touch_alerts(
        c: &mut Conn<Self>,
        rows: &[&AlertEpisode],
    ) -> impl Future<Output = Result<u64, StoreError>> + Send;
    /// Stored episodes seen again with new details, or cleared.
    fn update_alerts(
        c: &mut Conn<Self>,
        rows: &[&AlertEpisode],
    ) -> impl Future<Output = Result<u64, StoreError>> + Send;
    /// New episodes (an open one of the same alert is kept).
    fn insert_alerts(
        c: &mut Conn<Self>,
        rows: &[AlertEpisode],
    ) -> impl Future<Output = Result<u64, StoreError>> + Send;
    /// What the capacity tiers hold for each of these systems (those with neither a rollup nor
    /// a raw sample are left out).
    fn read_capacity_marks(
        c: &mut Conn<Self>,
        system_ids: &[&str],
    ) -> impl Future<Output = Result<HashMap<String, CapacityMark>, StoreError>> + Send;
    /// Writes a batch's capacity tiers: inserts the raw samples (a stored one is skipped) and
    /// adds the rollups to the hourly and daily rows (an imported daily row is replaced).
    fn write_capacity(
        c: &mut Conn<Self>,
        rows: &CapacityRows,
    ) -> impl Future<Output = Result<TiersWritten, StoreError>> + Send;
    /// Inserts rows of a rollup tier table, each merged into a stored row of the same key by
    /// the table's rules ([`Table::on_conflict`]).
    fn upsert_rows<R: Sync + 'static>(
        c: &mut Conn<Self>,
        table: &'static Table<R>,
        rows: &[R],
    ) -> impl Future<Output = Result<u64, StoreError>> + Send;
    /// The newest `last_at` of each of these systems in an hourly rollup table keyed
    /// `(system_id, hour, …)` (`tables::newest_last_at`); systems without a row are left out.
    fn read_counted_through(
        c: &mut Conn<Self>,
        hourly_table: &'static str,
        system_ids: &[&str],
    ) -> impl Future<Output = Result<HashMap<String, i64>, StoreError>> + Send;
    /// Imported days (`source = 'imported'`); a stored day, measured or imported, is kept.
    fn insert_imported_days(
        c: &mut Conn<Self>,
        rows: &[super::history::ImportedDayRow],
    ) -> impl Future<Output = Result<u64, StoreError>> + Send;
    /// Imported events with their `keep` flag; a stored event id is skipped.
    fn insert_imported_events(
        c: &mut Conn<Self>,
        rows: &[super::history::ImportedEventRow],
    ) -> impl Future<Output = Result<u64, StoreError>> + Send;
    /// The routing context (inventory name, tags) of those of these systems that have a
    /// `systems` row.
    fn read_system_context(
        c: &mut Conn<Self>,
        system_ids: &[&str],
    ) -> impl Future<Output = Result<HashMap<String, SystemContext>, StoreError>> + Send;
    /// Appends derived changes to `change_outbox`, in the order given (their `seq` order).
    fn insert_changes(
        c: &mut Conn<Self>,
        rows: &[OutboxRow],
    ) -> impl Future<Output = Result<u64, StoreError>> + Send;

    /// Operator commands (`super::commands`): which of these command ids `command_audit` has.
    fn audited_commands(
        c: &mut Conn<Self>,
        ids: &[&str],
    ) -> impl Future<Output = Result<HashSet<String>, StoreError>> + Send;
    /// Those of these systems that have a `systems` or `system_state` row, with their vendor
    /// and reported name (rows decoded by `commands::known_systems`).
    fn command_systems(
        c: &mut Conn<Self>,
        system_ids: &[&str],
    ) -> impl Future<Output = Result<HashMap<String, KnownSystem>, StoreError>> + Send;
    /// The `alerts` rows of these instances `(system_id, alert_id, first_seen)`, open or not.
    fn alert_instances(
        c: &mut Conn<Self>,
        keys: &[(&str, &str, i64)],
    ) -> impl Future<Output = Result<Vec<InstanceRow>, StoreError>> + Send;
    /// Sets the operator state of `alerts` rows (by id).
    fn set_alert_states(
        c: &mut Conn<Self>,
        rows: &[AlertStateRow],
    ) -> impl Future<Output = Result<u64, StoreError>> + Send;
    /// Appends comments, in the order given (a stored command id is skipped).
    fn insert_alert_comments(
        c: &mut Conn<Self>,
        rows: &[CommentRow],
    ) -> impl Future<Output = Result<u64, StoreError>> + Send;
    /// Adds names to `assignees` (unique in `rows`), or moves their `last_used_at` forward.
    fn upsert_assignees(
        c: &mut Conn<Self>,
        rows: &[(String, i64)],
    ) -> impl Future<Output = Result<u64, StoreError>> + Send;
    /// Records commands in `command_audit` (a stored command id is skipped).
    fn insert_command_audit(
        c: &mut Conn<Self>,
        rows: &[AuditRow],
    ) -> impl Future<Output = Result<u64, StoreError>> + Send;

    /// A `DELETE` of the `$1` rows of `table` with the lowest `column` that match `condition`
    /// (which binds `$2 …`), found through the index on `column` and then by their physical row
    /// id; it returns their `column`.
    fn delete_oldest(table: &str, condition: &str, column: &str) -> String;
    /// A `DELETE` of at most `$4` rows of the hourly table `table` (keyed `key`: the system,
    /// the hour, then the rest) older than `$3` (`hour`) of the systems after `$1` up to `$2`
    /// (by id). Each system's old hours are a range of the key, sought system by system: no
    /// index on `hour` needed.
    fn delete_hours(table: &str, key: &[&str]) -> String;

    /// The schema migrations of this backend.
    fn migrator() -> Migrator;
    /// Selects a row when `schema_migrations` has the layout of writers before sqlx's migrator
    /// (`version, name, applied_at`).
    const OLD_BOOKKEEPING: &'static str;
    /// Runs after the migrations.
    fn after_migrations(
        pool: &Pool<Self::Db>,
    ) -> impl Future<Output = Result<(), MigrateError>> + Send;
}
