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
use super::dialect::{
    Dialect, SamplesWritten, Stored, last_capacity, merge_daily, update_alert_set,
};
use super::plan::{
    AlertDetails, AlertEpisode, CollectorRow, DailyRow, DeadRow, EventRow, OpenAlertRow, OutboxRow,
    SampleRow, StateRow, StoredState, SystemContext, SystemRow, TransitionRow,
};

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
            |q, r| {
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
            },
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
        let ids = serde_json::to_string(ids)
            .map_err(|e| StoreError::Db(sqlx::Error::Encode(Box::new(e))))?;
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
        let ids = serde_json::to_string(ids)
            .map_err(|e| StoreError::Db(sqlx::Error::Encode(Box::new(e))))?;
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
             total_bytes, used_bytes, free_bytes, data_reduction, alert_count, components, alerts, poll_ms, error, last_online_at) VALUES",
            22,
            "ON CONFLICT (system_id) DO UPDATE SET event_id = excluded.event_id, collector_id = excluded.collector_id, observed_at = excluded.observed_at, \
             vendor = excluded.vendor, status = excluded.status, hardware = excluded.hardware, cluster = excluded.cluster, name = excluded.name, \
             version = excluded.version, model = excluded.model, serial = excluded.serial, total_bytes = excluded.total_bytes, used_bytes = excluded.used_bytes, \
             free_bytes = excluded.free_bytes, data_reduction = excluded.data_reduction, alert_count = excluded.alert_count, components = excluded.components, \
             alerts = excluded.alerts, poll_ms = excluded.poll_ms, error = excluded.error, \
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

    /// Normally every sample is new: the insert then reports as many rows as it was given and
    /// nothing is read back. When some were already stored (a redelivery, a replayed outbox),
    /// the chunk is rolled back to a savepoint and inserted again with `RETURNING`, which names
    /// the new ones.
    async fn insert_samples(
        c: &mut SqliteConnection,
        samples: &[SampleRow],
        rollups: &[DailyRow],
    ) -> Result<SamplesWritten, StoreError> {
        const HEAD: &str = "INSERT INTO capacity_samples (system_id, observed_at, total_bytes, used_bytes, free_bytes) VALUES";
        const SKIP: &str = "ON CONFLICT (system_id, observed_at) DO NOTHING";
        fn bound<'q>(sql: String, chunk: &'q [SampleRow]) -> Query<'q> {
            let mut q = sqlx::query(AssertSqlSafe(sql));
            for r in chunk {
                q = q
                    .bind(r.system_id.as_str())
                    .bind(r.observed_at)
                    .bind(r.total_bytes)
                    .bind(r.used_bytes)
                    .bind(r.free_bytes);
            }
            q
        }
        // The samples inserted, once one was found already stored (`None` while all are new).
        let mut inserted: Option<Vec<SampleRow>> = None;
        let step = chunk_rows(5);
        for (i, chunk) in samples.chunks(step).enumerate() {
            sqlx::query("SAVEPOINT samples").execute(&mut *c).await?;
            let n = bound(multi_row_sql(HEAD, 5, chunk.len(), SKIP), chunk)
                .execute(&mut *c)
                .await?
                .rows_affected();
            if n == chunk.len() as u64 {
                if let Some(inserted) = &mut inserted {
                    inserted.extend_from_slice(chunk);
                }
            } else {
                sqlx::query("ROLLBACK TO samples").execute(&mut *c).await?;
                let sql = multi_row_sql(
                    HEAD,
                    5,
                    chunk.len(),
                    &format!("{SKIP} RETURNING system_id, observed_at"),
                );
                let new: HashSet<(String, i64)> = bound(sql, chunk)
                    .fetch_all(&mut *c)
                    .await?
                    .iter()
                    .map(|r| Ok((r.try_get(0)?, r.try_get(1)?)))
                    .collect::<Result<_, sqlx::Error>>()?;
                let inserted = inserted.get_or_insert_with(|| samples[..i * step].to_vec());
                inserted.extend(
                    chunk
                        .iter()
                        .filter(|r| new.contains(&(r.system_id.clone(), r.observed_at)))
                        .cloned(),
                );
            }
            sqlx::query("RELEASE samples").execute(&mut *c).await?;
        }
        match inserted {
            Some(inserted) => Ok(SamplesWritten::Some(inserted)),
            None => Ok(SamplesWritten::All {
                daily: Self::upsert_daily(c, rollups).await?,
            }),
        }
    }

    async fn upsert_daily(c: &mut SqliteConnection, rows: &[DailyRow]) -> Result<u64, StoreError> {
        insert_many(
            c,
            "INSERT INTO capacity_daily (system_id, day, samples, used_min, used_max, used_sum, last_at, total_bytes, used_bytes, free_bytes) VALUES",
            10,
            merge_daily!("min", "max"),
            rows,
            |q, r| {
                q.bind(r.system_id.as_str())
                    .bind(r.day.as_str())
                    .bind(r.samples)
                    .bind(r.used_min)
                    .bind(r.used_max)
                    .bind(r.used_sum)
                    .bind(r.last_at)
                    .bind(r.total_bytes)
                    .bind(r.used_bytes)
                    .bind(r.free_bytes)
            },
        )
        .await
    }

    fn delete_some(table: &str, condition: &str) -> String {
        format!(
            "DELETE FROM {table} WHERE rowid IN (SELECT rowid FROM {table} WHERE {condition} LIMIT $1)"
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
