//! SQLite dialect: one connection, WAL, `BEGIN IMMEDIATE` transactions, multi-row inserts and
//! `UPDATE … FROM (VALUES …)` chunked under the bind-parameter limit for the high-volume tables
//! (snapshots take about ten statements per batch), prepared statements for the rest.

use std::collections::{HashMap, HashSet};
use std::path::PathBuf;
use std::str::FromStr;
use std::time::Duration;

use sqlx::migrate::{MigrateError, Migrator};
use sqlx::sqlite::{
    SqliteArguments, SqliteConnectOptions, SqliteJournalMode, SqlitePoolOptions, SqliteSynchronous,
};
use sqlx::{AssertSqlSafe, Row, SqliteConnection, SqlitePool, Transaction};

use super::StoreError;
use super::commands::{
    AlertStateRow, AuditRow, CommentRow, InstanceRow, KnownSystem, instance_columns,
};
use super::derive::{CapacityMark, CapacityRows};
use super::dialect::{Dialect, Stored, TiersWritten, last_capacity, merge_daily, update_alert_set};
use super::plan::{
    AlertDetails, AlertEpisode, CollectorRow, DeadRow, EventRow, OpenAlertRow, OutboxRow, Rollup,
    StateRow, StoredState, SystemContext, SystemRow, TransitionRow,
};
use super::tables::{CAPACITY_HOURLY, Get, Table, newest_last_at};

type Query<'q> = sqlx::query::Query<'q, sqlx::Sqlite, SqliteArguments>;

/// Bind parameters per statement (SQLite's default limit is 32766).
const MAX_PARAMS: usize = 30_000;
/// Rows per multi-row statement.
const MAX_ROWS: usize = 1000;

/// The database file of a `sqlite:` URL (`None` for in-memory databases).
pub fn database_path(url: &str) -> Option<PathBuf> {
    let rest = url
        .strip_prefix("sqlite://")
        .or_else(|| url.strip_prefix("sqlite:"))?;
    let path = rest.split('?').next().unwrap_or(rest);
    if path.is_empty() || path == ":memory:" {
        return None;
    }
    Some(PathBuf::from(path))
}

pub(crate) async fn open(url: &str) -> Result<SqlitePool, StoreError> {
    let options = SqliteConnectOptions::from_str(url)?
        .create_if_missing(true)
        .journal_mode(SqliteJournalMode::Wal)
        .synchronous(SqliteSynchronous::Full)
        .busy_timeout(Duration::from_secs(5))
        .pragma("temp_store", "memory");
    let pool = SqlitePoolOptions::new()
        .max_connections(1)
        .min_connections(0)
        .acquire_timeout(Duration::from_secs(30))
        .connect_with(options)
        .await?;
    Ok(pool)
}

/// A statement over many rows of values (a multi-row `INSERT`, or an `UPDATE … FROM` a `VALUES`
/// CTE): `head` ends with `VALUES`, `tail` follows the value lists.
fn multi_row_sql(head: &str, cols: usize, rows: usize, tail: &str) -> String {
    let one = format!("({})", vec!["?"; cols].join(","));
    let mut sql = String::with_capacity(head.len() + tail.len() + rows * (one.len() + 1));
    sql.push_str(head);
    sql.push(' ');
    for i in 0..rows {
        if i > 0 {
            sql.push(',');
        }
        sql.push_str(&one);
    }
    sql.push(' ');
    sql.push_str(tail);
    sql
}

fn chunk_rows(cols: usize) -> usize {
    (MAX_PARAMS / cols).clamp(1, MAX_ROWS)
}

async fn insert_many<'r, R>(
    c: &mut SqliteConnection,
    head: &str,
    cols: usize,
    tail: &str,
    rows: &'r [R],
    bind: impl for<'q> Fn(Query<'q>, &'r R) -> Query<'q>,
) -> Result<u64, StoreError> {
    let mut total = 0;
    for chunk in rows.chunks(chunk_rows(cols)) {
        let mut q = sqlx::query(AssertSqlSafe(multi_row_sql(head, cols, chunk.len(), tail)));
        for r in chunk {
            q = bind(q, r);
        }
        total += q.execute(&mut *c).await?.rows_affected();
    }
    Ok(total)
}

fn encode_json<T: serde::Serialize + ?Sized>(value: &T) -> Result<String, StoreError> {
    serde_json::to_string(value).map_err(|e| StoreError::Db(sqlx::Error::Encode(Box::new(e))))
}

/// Binds the 8 rollup columns after the key (`samples` … `free_bytes`) of a daily row.
fn bind_rollup<'q>(q: Query<'q>, r: &Rollup) -> Query<'q> {
    q.bind(r.samples)
        .bind(r.used_min)
        .bind(r.used_max)
        .bind(r.used_sum)
        .bind(r.last_at)
        .bind(r.total_bytes)
        .bind(r.used_bytes)
        .bind(r.free_bytes)
}

/// Binds the columns of one row as `table` lists them.
fn bind_row<'q, R>(q: Query<'q>, table: &Table<R>, r: &R) -> Query<'q> {
    table.cols.iter().fold(q, |q, c| match c.get {
        Get::Int(f) => q.bind(f(r)),
        Get::Real(f) => q.bind(f(r)),
        Get::OptReal(f) => q.bind(f(r)),
        Get::Text(f) => q.bind(f(r)),
    })
}

/// Binds the 11 `events` columns of one row (`insert_events`, `insert_imported_events`).
fn bind_event<'q>(q: Query<'q>, r: &EventRow) -> Query<'q> {
    q.bind(r.event_id.as_str())
        .bind(r.system_id.as_str())
        .bind(r.collector_id.as_str())
        .bind(r.observed_at)
        .bind(r.level)
        .bind(r.level_rank)
        .bind(r.category)
        .bind(r.message.as_str())
        .bind(r.details.as_deref())
        .bind(r.http_status)
        .bind(r.endpoint.as_deref())
}

fn decode_error(e: serde_json::Error) -> StoreError {
    StoreError::Db(sqlx::Error::Decode(Box::new(e)))
}

/// The SQLite [`Dialect`].
pub(crate) struct Sqlite;

impl Dialect for Sqlite {
    type Db = sqlx::Sqlite;

    async fn begin(pool: &SqlitePool) -> Result<Transaction<'static, sqlx::Sqlite>, sqlx::Error> {
        pool.begin_with("BEGIN IMMEDIATE").await
    }

    async fn begin_exclusive(
        pool: &SqlitePool,
    ) -> Result<Transaction<'static, sqlx::Sqlite>, sqlx::Error> {
        pool.begin_with("BEGIN IMMEDIATE").await
    }

    /// A SQLite writer's lock is a file lock, not checked per batch.
    async fn writer_lock_held(_c: &mut SqliteConnection, _pid: i32) -> Result<bool, StoreError> {
        Ok(true)
    }

    async fn insert_dead_letters(
        c: &mut SqliteConnection,
        rows: &[DeadRow],
    ) -> Result<u64, StoreError> {
        insert_many(
            c,
            "INSERT INTO dead_letters (stream_seq, subject, payload, reason, deliveries, received_at) VALUES",
            6,
            "ON CONFLICT (stream_seq) DO NOTHING",
            rows,
            |q, r| {
                q.bind(r.stream_seq)
                    .bind(r.subject.as_str())
                    .bind(r.payload.as_slice())
                    .bind(r.reason.as_str())
                    .bind(r.deliveries)
                    .bind(r.received_at)
            },
        )
        .await
    }

    async fn insert_events(c: &mut SqliteConnection, rows: &[EventRow]) -> Result<u64, StoreError> {
        insert_many(
            c,
            "INSERT INTO events (event_id, system_id, collector_id, observed_at, level, level_rank, category, message, details, http_status, endpoint) VALUES",
            11,
            "ON CONFLICT (event_id) DO NOTHING",
            rows,
            bind_event,
        )
        .await
    }

    async fn upsert_systems(
        c: &mut SqliteConnection,
        rows: &[SystemRow],
    ) -> Result<u64, StoreError> {
        let mut n = 0;
        for r in rows {
            n += sqlx::query(
                "INSERT INTO systems (id, name, vendor, address, tags, interval_s, enabled, removed, updated_at) VALUES (?,?,?,?,?,?,?,?,?) \
                 ON CONFLICT (id) DO UPDATE SET name = excluded.name, vendor = excluded.vendor, address = excluded.address, \
                 tags = excluded.tags, interval_s = excluded.interval_s, enabled = excluded.enabled, removed = excluded.removed, \
                 updated_at = excluded.updated_at WHERE systems.updated_at < excluded.updated_at",
            )
            .bind(r.id.as_str())
            .bind(r.name.as_str())
            .bind(r.vendor)
            .bind(r.address.as_str())
            .bind(r.tags.as_str())
            .bind(r.interval_s)
            .bind(r.enabled)
            .bind(r.removed)
            .bind(r.updated_at)
            .execute(&mut *c)
            .await?
            .rows_affected();
        }
        Ok(n)
    }

    async fn upsert_collectors(
        c: &mut SqliteConnection,
        rows: &[CollectorRow],
    ) -> Result<u64, StoreError> {
        let mut n = 0;
        for r in rows {
            n += sqlx::query(
                "INSERT INTO collectors (id, version, systems, polls, failures, outbox_depth, started_at, last_seen) VALUES (?,?,?,?,?,?,?,?) \
                 ON CONFLICT (id) DO UPDATE SET version = excluded.version, systems = excluded.systems, polls = excluded.polls, \
                 failures = excluded.failures, outbox_depth = excluded.outbox_depth, started_at = excluded.started_at, \
                 last_seen = excluded.last_seen WHERE collectors.last_seen < excluded.last_seen",
            )
            .bind(r.id.as_str())
            .bind(r.version.as_str())
            .bind(r.systems.as_str())
            .bind(r.polls)
            .bind(r.failures)
            .bind(r.outbox_depth)
            .bind(r.started_at)
            .bind(r.last_seen)
            .execute(&mut *c)
            .await?
            .rows_affected();
        }
        Ok(n)
    }

    /// Each read comes back as ONE row holding a JSON array: sqlx hands every result row from
    /// SQLite's thread to ours separately, which cost more than the reads themselves (about
    /// 20 ms for the 1,500 rows of a 1,000-snapshot batch; 1 ms as one JSON row). The open
    /// alerts come with their details, so that one seen again unchanged is only touched.
    async fn read_stored(c: &mut SqliteConnection, ids: &[&str]) -> Result<Stored, StoreError> {
        // System ids are `[a-z0-9_-]{1,64}` (validated on decode); one JSON array binds them all.
        let ids = encode_json(ids)?;
        let state_json: String = sqlx::query(concat!(
            "SELECT json_group_array(json_array(system_id, observed_at, status, hardware, cluster, last_online_at, ",
            last_capacity!(),
            ")) FROM system_state s WHERE system_id IN (SELECT value FROM json_each(?))"
        ))
        .bind(ids.as_str())
        .fetch_one(&mut *c)
        .await?
        .try_get(0)?;
        type StateTuple = (
            String,
            i64,
            String,
            String,
            String,
            Option<i64>,
            Option<i64>,
            Option<i64>,
        );
        let states: Vec<StateTuple> = serde_json::from_str(&state_json).map_err(decode_error)?;
        let mut stored = Stored {
            states: HashMap::with_capacity(states.len()),
            open_alerts: Vec::new(),
        };
        for (system_id, observed_at, status, hardware, cluster, last_online_at, used, total) in
            states
        {
            stored.states.insert(
                system_id.clone(),
                StoredState {
                    system_id,
                    observed_at,
                    status,
                    hardware,
                    cluster,
                    last_online_at,
                    capacity: used.zip(total),
                },
            );
        }
        let open_json: String = sqlx::query(
            "SELECT json_group_array(json_array(id, system_id, alert_id, first_seen, \
               json_object('severity', severity, 'vendor_severity', vendor_severity, 'title', title, \
                           'component', component, 'opened_at', opened_at))) FROM alerts \
             WHERE cleared_at IS NULL AND system_id IN (SELECT value FROM json_each(?))",
        )
        .bind(ids.as_str())
        .fetch_one(&mut *c)
        .await?
        .try_get(0)?;
        type OpenTuple = (i64, String, String, i64, AlertDetails);
        stored.open_alerts = serde_json::from_str::<Vec<OpenTuple>>(&open_json)
            .map_err(decode_error)?
            .into_iter()
            .map(
                |(id, system_id, alert_id, first_seen, details)| OpenAlertRow {
                    id,
                    system_id,
                    alert_id,
                    first_seen,
                    details: Some(details),
                },
            )
            .collect();
        Ok(stored)
    }

    async fn read_system_context(
        c: &mut SqliteConnection,
        ids: &[&str],
    ) -> Result<HashMap<String, SystemContext>, StoreError> {
        let ids = encode_json(ids)?;
        let rows = sqlx::query(
            "SELECT id, CASE WHEN updated_at > 0 THEN name END, tags FROM systems \
             WHERE id IN (SELECT value FROM json_each(?))",
        )
        .bind(ids.as_str())
        .fetch_all(&mut *c)
        .await?;
        super::outbox::system_contexts(&rows)
    }

    /// The multi-row `VALUES` keep their order, and so the `seq` order.
    async fn insert_changes(
        c: &mut SqliteConnection,
        rows: &[OutboxRow],
    ) -> Result<u64, StoreError> {
        insert_many(
            c,
            "INSERT INTO change_outbox (event_id, system_id, kind, payload, created_at) VALUES",
            5,
            "ON CONFLICT (event_id) DO NOTHING",
            rows,
            |q, r| {
                q.bind(r.event_id.as_str())
                    .bind(r.system_id.as_str())
                    .bind(r.kind)
                    .bind(r.payload.as_slice())
                    .bind(r.created_at)
            },
        )
        .await
    }

    // Operator commands (`super::commands`).

    async fn audited_commands(
        c: &mut SqliteConnection,
        ids: &[&str],
    ) -> Result<HashSet<String>, StoreError> {
        let ids = encode_json(ids)?;
        let rows = sqlx::query(
            "SELECT command_id FROM command_audit WHERE command_id IN (SELECT value FROM json_each(?))",
        )
        .bind(ids.as_str())
        .fetch_all(&mut *c)
        .await?;
        Ok(rows
            .iter()
            .map(|r| r.try_get(0))
            .collect::<Result<_, _>>()?)
    }

    async fn command_systems(
        c: &mut SqliteConnection,
        ids: &[&str],
    ) -> Result<HashMap<String, KnownSystem>, StoreError> {
        let ids = encode_json(ids)?;
        let rows = sqlx::query(
            "SELECT u.value, (SELECT vendor FROM systems WHERE id = u.value), \
             (SELECT vendor FROM system_state WHERE system_id = u.value), \
             (SELECT name FROM system_state WHERE system_id = u.value) \
             FROM json_each(?) u",
        )
        .bind(ids.as_str())
        .fetch_all(&mut *c)
        .await?;
        super::commands::known_systems(&rows)
    }

    async fn alert_instances(
        c: &mut SqliteConnection,
        keys: &[(&str, &str, i64)],
    ) -> Result<Vec<InstanceRow>, StoreError> {
        let keys = encode_json(keys)?;
        let rows = sqlx::query(concat!(
            "SELECT ",
            instance_columns!(),
            " FROM alerts a JOIN (SELECT json_extract(value, '$[0]') AS s, json_extract(value, '$[1]') AS k, \
             json_extract(value, '$[2]') AS f FROM json_each(?)) u \
             ON a.system_id = u.s AND a.alert_id = u.k AND a.first_seen = u.f"
        ))
        .bind(keys.as_str())
        .fetch_all(&mut *c)
        .await?;
        super::commands::instance_rows(&rows)
    }

    async fn set_alert_states(
        c: &mut SqliteConnection,
        rows: &[AlertStateRow],
    ) -> Result<u64, StoreError> {
        insert_many(
            c,
            "WITH u(id, ab, aa, asg, asb, asa) AS (VALUES",
            6,
            ") UPDATE alerts SET acknowledged_by = u.ab, acknowledged_at = u.aa, assignee = u.asg, \
             assigned_by = u.asb, assigned_at = u.asa FROM u WHERE alerts.id = u.id",
            rows,
            |q, r| {
                q.bind(r.id)
                    .bind(r.state.acknowledged_by.as_deref())
                    .bind(r.state.acknowledged_at)
                    .bind(r.state.assignee.as_deref())
                    .bind(r.state.assigned_by.as_deref())
                    .bind(r.state.assigned_at)
            },
        )
        .await
    }

    /// The multi-row `VALUES` keep their order, and so the thread's `id` order.
    async fn insert_alert_comments(
        c: &mut SqliteConnection,
        rows: &[CommentRow],
    ) -> Result<u64, StoreError> {
        insert_many(
            c,
            "INSERT INTO alert_comments (command_id, system_id, alert_id, opened_at, author, at, body) VALUES",
            7,
            "ON CONFLICT (command_id) DO NOTHING",
            rows,
            |q, r| {
                q.bind(r.command_id.as_str())
                    .bind(r.system_id.as_str())
                    .bind(r.alert_id.as_str())
                    .bind(r.opened_at)
                    .bind(r.author.as_str())
                    .bind(r.at)
                    .bind(r.body.as_str())
            },
        )
        .await
    }

    async fn upsert_assignees(
        c: &mut SqliteConnection,
        rows: &[(String, i64)],
    ) -> Result<u64, StoreError> {
        insert_many(
            c,
            "INSERT INTO assignees (name, last_used_at) VALUES",
            2,
            "ON CONFLICT (name) DO UPDATE SET last_used_at = max(assignees.last_used_at, excluded.last_used_at)",
            rows,
            |q, (name, at)| q.bind(name.as_str()).bind(*at),
        )
        .await
    }

    async fn insert_command_audit(
        c: &mut SqliteConnection,
        rows: &[AuditRow],
    ) -> Result<u64, StoreError> {
        insert_many(
            c,
            "INSERT INTO command_audit (command_id, kind, system_id, actor, alert_id, alert_opened_at, assignee, comment, \
             issued_at, recorded_at, publisher, outcome, reason) VALUES",
            13,
            "ON CONFLICT (command_id) DO NOTHING",
            rows,
            |q, r| {
                q.bind(r.command_id.as_str())
                    .bind(r.kind)
                    .bind(r.system_id.as_str())
                    .bind(r.actor.as_str())
                    .bind(r.alert_id.as_deref())
                    .bind(r.alert_opened_at)
                    .bind(r.assignee.as_deref())
                    .bind(r.comment.as_deref())
                    .bind(r.issued_at)
                    .bind(r.recorded_at)
                    .bind(r.publisher.as_str())
                    .bind(r.outcome)
                    .bind(r.reason)
            },
        )
        .await
    }

    // End of operator commands.

    async fn insert_minimal_systems(
        c: &mut SqliteConnection,
        rows: &[(String, &'static str)],
    ) -> Result<u64, StoreError> {
        insert_many(
            c,
            "INSERT INTO systems (id, name, vendor, updated_at) VALUES",
            4,
            "ON CONFLICT (id) DO NOTHING",
            rows,
            |q, (id, vendor)| {
                q.bind(id.as_str())
                    .bind(id.as_str())
                    .bind(*vendor)
                    .bind(0_i64)
            },
        )
        .await
    }

    async fn upsert_states(c: &mut SqliteConnection, rows: &[StateRow]) -> Result<u64, StoreError> {
        insert_many(
            c,
            "INSERT INTO system_state (system_id, event_id, collector_id, observed_at, vendor, status, hardware, cluster, name, version, model, serial, \
             total_bytes, used_bytes, free_bytes, data_reduction, alert_count, components, alerts, poll_ms, error, last_online_at, \
             provisioned_bytes, cluster_type, topology, pools, performance) VALUES",
            27,
            "ON CONFLICT (system_id) DO UPDATE SET event_id = excluded.event_id, collector_id = excluded.collector_id, observed_at = excluded.observed_at, \
             vendor = excluded.vendor, status = excluded.status, hardware = excluded.hardware, cluster = excluded.cluster, name = excluded.name, \
             version = excluded.version, model = excluded.model, serial = excluded.serial, total_bytes = excluded.total_bytes, used_bytes = excluded.used_bytes, \
             free_bytes = excluded.free_bytes, data_reduction = excluded.data_reduction, alert_count = excluded.alert_count, components = excluded.components, \
             alerts = excluded.alerts, poll_ms = excluded.poll_ms, error = excluded.error, \
             provisioned_bytes = excluded.provisioned_bytes, cluster_type = excluded.cluster_type, topology = excluded.topology, \
             pools = excluded.pools, performance = excluded.performance, \
             last_online_at = CASE WHEN system_state.last_online_at IS NULL THEN excluded.last_online_at \
                                   WHEN excluded.last_online_at IS NULL THEN system_state.last_online_at \
                                   ELSE max(system_state.last_online_at, excluded.last_online_at) END \
             WHERE system_state.observed_at < excluded.observed_at",
            rows,
            |q, r| {
                q.bind(r.system_id.as_str())
                    .bind(r.event_id.as_str())
                    .bind(r.collector_id.as_str())
                    .bind(r.observed_at)
                    .bind(r.vendor)
                    .bind(r.status)
                    .bind(r.hardware)
                    .bind(r.cluster)
                    .bind(r.name.as_deref())
                    .bind(r.version.as_deref())
                    .bind(r.model.as_deref())
                    .bind(r.serial.as_deref())
                    .bind(r.total_bytes)
                    .bind(r.used_bytes)
                    .bind(r.free_bytes)
                    .bind(r.data_reduction)
                    .bind(r.alert_count)
                    .bind(r.components.as_str())
                    .bind(r.alerts.as_str())
                    .bind(r.poll_ms)
                    .bind(r.error.as_deref())
                    .bind(r.last_online_at)
                    .bind(r.provisioned_bytes)
                    .bind(r.cluster_type)
                    .bind(r.topology.as_deref())
                    .bind(r.pools.as_str())
                    .bind(r.performance.as_deref())
            },
        )
        .await
    }

    /// One row per system (derive yields at most one), so each target row joins at most once.
    async fn raise_last_online(
        c: &mut SqliteConnection,
        rows: &[(String, i64)],
    ) -> Result<u64, StoreError> {
        insert_many(
            c,
            "WITH u(id, t) AS (VALUES",
            2,
            ") UPDATE system_state SET last_online_at = u.t FROM u WHERE system_state.system_id = u.id \
             AND (system_state.last_online_at IS NULL OR system_state.last_online_at < u.t)",
            rows,
            |q, (id, t)| q.bind(id.as_str()).bind(*t),
        )
        .await
    }

    async fn insert_transitions(
        c: &mut SqliteConnection,
        rows: &[TransitionRow],
    ) -> Result<u64, StoreError> {
        insert_many(
            c,
            "INSERT INTO status_transitions (system_id, at, field, from_value, to_value, event_id) VALUES",
            6,
            "ON CONFLICT (event_id, field) DO NOTHING",
            rows,
            |q, r| {
                q.bind(r.system_id.as_str())
                    .bind(r.at)
                    .bind(r.field)
                    .bind(r.from_value.as_deref())
                    .bind(r.to_value.as_str())
                    .bind(r.event_id.as_str())
            },
        )
        .await
    }

    async fn touch_alerts(
        c: &mut SqliteConnection,
        rows: &[&AlertEpisode],
    ) -> Result<u64, StoreError> {
        insert_many(
            c,
            "WITH u(id, t) AS (VALUES",
            2,
            ") UPDATE alerts SET last_seen = max(alerts.last_seen, u.t) FROM u WHERE alerts.id = u.id",
            rows,
            |q, r| q.bind(r.existing.unwrap_or(0)).bind(r.last_seen),
        )
        .await
    }

    /// An episode not seen in the batch only gets its `cleared_at`.
    async fn update_alerts(
        c: &mut SqliteConnection,
        rows: &[&AlertEpisode],
    ) -> Result<u64, StoreError> {
        insert_many(
            c,
            "WITH u(id, seen, severity, vendor_severity, title, component, opened_at, last_seen, cleared_at) AS (VALUES",
            9,
            concat!(
                ") UPDATE alerts SET ",
                update_alert_set!("max"),
                " FROM u WHERE alerts.id = u.id"
            ),
            rows,
            |q, r| {
                q.bind(r.existing.unwrap_or(0))
                    .bind(r.seen)
                    .bind(r.severity)
                    .bind(r.vendor_severity.as_str())
                    .bind(r.title.as_str())
                    .bind(r.component.as_deref())
                    .bind(r.opened_at)
                    .bind(r.last_seen)
                    .bind(r.cleared_at)
            },
        )
        .await
    }

    async fn insert_alerts(
        c: &mut SqliteConnection,
        rows: &[AlertEpisode],
    ) -> Result<u64, StoreError> {
        insert_many(
            c,
            "INSERT INTO alerts (system_id, alert_id, severity, vendor_severity, title, component, opened_at, first_seen, last_seen, cleared_at) VALUES",
            10,
            "ON CONFLICT (system_id, alert_id) WHERE cleared_at IS NULL DO NOTHING",
            rows,
            |q, r| {
                q.bind(r.system_id.as_str())
                    .bind(r.alert_id.as_str())
                    .bind(r.severity)
                    .bind(r.vendor_severity.as_str())
                    .bind(r.title.as_str())
                    .bind(r.component.as_deref())
                    .bind(r.opened_at)
                    .bind(r.first_seen)
                    .bind(r.last_seen)
                    .bind(r.cleared_at)
            },
        )
        .await
    }

    /// One JSON row (see [`Sqlite::read_stored`]).
    async fn read_capacity_marks(
        c: &mut SqliteConnection,
        ids: &[&str],
    ) -> Result<HashMap<String, CapacityMark>, StoreError> {
        let ids = encode_json(ids)?;
        let json: String = sqlx::query(
            "SELECT json_group_array(json_array(j.value, \
               (SELECT h.last_at FROM capacity_hourly h WHERE h.system_id = j.value ORDER BY h.system_id DESC, h.hour DESC LIMIT 1), \
               r.observed_at, r.used_bytes, r.total_bytes)) \
             FROM json_each(?) j LEFT JOIN capacity_samples r ON r.rowid = \
               (SELECT c.rowid FROM capacity_samples c WHERE c.system_id = j.value ORDER BY c.system_id DESC, c.observed_at DESC LIMIT 1)",
        )
        .bind(ids.as_str())
        .fetch_one(&mut *c)
        .await?
        .try_get(0)?;
        type MarkTuple = (String, Option<i64>, Option<i64>, Option<i64>, Option<i64>);
        let rows: Vec<MarkTuple> = serde_json::from_str(&json).map_err(decode_error)?;
        Ok(rows
            .into_iter()
            .filter(|r| r.1.is_some() || r.2.is_some())
            .map(|(id, hourly, at, used, total)| {
                let mark = CapacityMark {
                    counted_through: hourly.max(at),
                    last_raw: at.zip(used).zip(total).map(|((a, u), t)| (a, u, t)),
                };
                (id, mark)
            })
            .collect())
    }

    async fn write_capacity(
        c: &mut SqliteConnection,
        rows: &CapacityRows,
    ) -> Result<TiersWritten, StoreError> {
        let raw = insert_many(
            c,
            "INSERT INTO capacity_samples (system_id, observed_at, total_bytes, used_bytes, free_bytes) VALUES",
            5,
            "ON CONFLICT (system_id, observed_at) DO NOTHING",
            &rows.raw,
            |q, r| {
                q.bind(r.system_id.as_str())
                    .bind(r.observed_at)
                    .bind(r.total_bytes)
                    .bind(r.used_bytes)
                    .bind(r.free_bytes)
            },
        )
        .await?;
        let hourly = Self::upsert_rows(c, &CAPACITY_HOURLY, &rows.hourly).await?;
        let daily = insert_many(
            c,
            "INSERT INTO capacity_daily (system_id, day, samples, used_min, used_max, used_sum, last_at, total_bytes, used_bytes, free_bytes) VALUES",
            10,
            merge_daily!("min", "max"),
            &rows.daily,
            |q, r| bind_rollup(q.bind(r.key.as_str()).bind(r.period.as_str()), &r.rollup),
        )
        .await?;
        Ok(TiersWritten { raw, hourly, daily })
    }

    async fn upsert_rows<R: Sync + 'static>(
        c: &mut SqliteConnection,
        table: &'static Table<R>,
        rows: &[R],
    ) -> Result<u64, StoreError> {
        let head = format!(
            "INSERT INTO {} ({}) VALUES",
            table.name,
            table.column_list()
        );
        let tail = table.on_conflict("min", "max");
        insert_many(c, &head, table.cols.len(), &tail, rows, |q, r| {
            bind_row(q, table, r)
        })
        .await
    }

    /// One JSON row (see [`Sqlite::read_stored`]).
    async fn read_counted_through(
        c: &mut SqliteConnection,
        table: &'static str,
        ids: &[&str],
    ) -> Result<HashMap<String, i64>, StoreError> {
        let ids = encode_json(ids)?;
        let sql = format!(
            "SELECT json_group_array(json_array(j.value, {})) FROM json_each(?) j",
            newest_last_at(table, "j.value")
        );
        let json: String = sqlx::query(AssertSqlSafe(sql))
            .bind(ids.as_str())
            .fetch_one(&mut *c)
            .await?
            .try_get(0)?;
        let rows: Vec<(String, Option<i64>)> = serde_json::from_str(&json).map_err(decode_error)?;
        Ok(rows
            .into_iter()
            .filter_map(|(id, at)| Some((id, at?)))
            .collect())
    }

    async fn insert_imported_days(
        c: &mut SqliteConnection,
        rows: &[super::history::ImportedDayRow],
    ) -> Result<u64, StoreError> {
        insert_many(
            c,
            "INSERT INTO capacity_daily (system_id, day, samples, used_min, used_max, used_sum, last_at, total_bytes, used_bytes, free_bytes, source) \
             SELECT column1, column2, 1, column3, column3, column3, column4, column5, column3, column6, 'imported' FROM (VALUES",
            6,
            ") WHERE true ON CONFLICT (system_id, day) DO NOTHING",
            rows,
            |q, r| {
                q.bind(r.system_id.as_str())
                    .bind(r.day.as_str())
                    .bind(r.used_bytes)
                    .bind(r.last_at)
                    .bind(r.total_bytes)
                    .bind(r.free_bytes)
            },
        )
        .await
    }

    async fn insert_imported_events(
        c: &mut SqliteConnection,
        rows: &[super::history::ImportedEventRow],
    ) -> Result<u64, StoreError> {
        insert_many(
            c,
            "INSERT INTO events (event_id, system_id, collector_id, observed_at, level, level_rank, category, message, details, http_status, endpoint, keep) VALUES",
            12,
            "ON CONFLICT (event_id) DO NOTHING",
            rows,
            |q, e| bind_event(q, &e.row).bind(e.keep),
        )
        .await
    }

    fn delete_oldest(table: &str, condition: &str, column: &str) -> String {
        format!(
            "DELETE FROM {table} WHERE rowid IN (SELECT rowid FROM {table} WHERE {condition} \
             ORDER BY {column} LIMIT $1) RETURNING {column}"
        )
    }

    fn delete_hours(table: &str, key: &[&str]) -> String {
        // By key (the hourly tables are WITHOUT ROWID). CROSS JOIN makes SQLite seek each
        // system's range rather than scan the chunk's rows.
        let picked: Vec<String> = key.iter().map(|k| format!("h.{k}")).collect();
        format!(
            "DELETE FROM {table} WHERE ({}) IN (SELECT {} FROM systems s CROSS JOIN {table} h \
             WHERE h.system_id = s.id AND s.id > $1 AND s.id <= $2 AND h.hour < $3 LIMIT $4)",
            key.join(", "),
            picked.join(", ")
        )
    }

    fn migrator() -> Migrator {
        super::migrate::migrator(sqlx::migrate!("migrations/sqlite"))
    }

    const OLD_BOOKKEEPING: &'static str =
        "SELECT 1 FROM pragma_table_info('schema_migrations') WHERE name = 'applied_at'";

    /// Moves the schema from the WAL into the database file itself: a reader (the API) that
    /// opens the file before the first automatic checkpoint would otherwise find an empty file
    /// without the WAL marker in its header and keep seeing an empty database.
    async fn after_migrations(pool: &SqlitePool) -> Result<(), MigrateError> {
        sqlx::query("PRAGMA wal_checkpoint(TRUNCATE)")
            .execute(pool)
            .await?;
        Ok(())
    }
}
