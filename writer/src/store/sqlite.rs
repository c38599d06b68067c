//! SQLite backend: one connection, WAL, `BEGIN IMMEDIATE` transactions, multi-row inserts and
//! `UPDATE … FROM (VALUES …)` chunked under the bind-parameter limit for the high-volume tables
//! (snapshots take about ten statements per batch), prepared statements for the rest.

use std::collections::{HashMap, HashSet};
use std::path::PathBuf;
use std::str::FromStr;
use std::time::Duration;

use sqlx::sqlite::{
    SqliteArguments, SqliteConnectOptions, SqliteJournalMode, SqlitePoolOptions, SqliteSynchronous,
};
use sqlx::{AssertSqlSafe, Row, Sqlite, SqliteConnection, SqlitePool};

use super::plan::{self, OpenAlertRow, Plan, StoredState};
use super::{CommitMeta, Cutoffs, RetentionOutcome, RowCounts, SQLITE_MIGRATIONS, StoreError};

type Query<'q> = sqlx::query::Query<'q, Sqlite, SqliteArguments>;

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

pub(crate) async fn migrate(pool: &SqlitePool) -> Result<(), StoreError> {
    let mut tx = pool.begin_with("BEGIN IMMEDIATE").await?;
    sqlx::query(
        "CREATE TABLE IF NOT EXISTS schema_migrations (version BIGINT PRIMARY KEY, name TEXT NOT NULL, applied_at BIGINT NOT NULL)",
    )
    .execute(&mut *tx)
    .await?;
    let applied: Vec<i64> = sqlx::query("SELECT version FROM schema_migrations")
        .fetch_all(&mut *tx)
        .await?
        .iter()
        .map(|r| r.try_get::<i64, _>(0))
        .collect::<Result<_, _>>()?;
    let known = SQLITE_MIGRATIONS
        .iter()
        .map(|m| m.version)
        .max()
        .unwrap_or(0);
    if let Some(&found) = applied.iter().max()
        && found > known
    {
        return Err(StoreError::SchemaTooNew { found, known });
    }
    for m in SQLITE_MIGRATIONS {
        if applied.contains(&m.version) {
            continue;
        }
        sqlx::raw_sql(m.sql)
            .execute(&mut *tx)
            .await
            .map_err(|source| StoreError::Migration {
                version: m.version,
                name: m.name,
                source,
            })?;
        sqlx::query("INSERT INTO schema_migrations (version, name, applied_at) VALUES (?, ?, ?)")
            .bind(m.version)
            .bind(m.name)
            .bind(sdash_proto::now_ms())
            .execute(&mut *tx)
            .await?;
        tracing::info!(
            version = m.version,
            name = m.name,
            "applied SQLite migration"
        );
    }
    tx.commit().await?;
    // Move the schema from the WAL into the database file itself: a reader (the API) that opens
    // the file before the first automatic checkpoint would otherwise find an empty file without
    // the WAL marker in its header and keep seeing an empty database.
    sqlx::query("PRAGMA wal_checkpoint(TRUNCATE)")
        .execute(pool)
        .await?;
    Ok(())
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

pub(crate) async fn write(
    pool: &SqlitePool,
    plan: &Plan,
    meta: &CommitMeta<'_>,
) -> Result<RowCounts, StoreError> {
    let mut tx = pool.begin_with("BEGIN IMMEDIATE").await?;
    let rows = write_in(&mut tx, plan, meta).await?;
    tx.commit().await?;
    Ok(rows)
}

async fn write_in(
    c: &mut SqliteConnection,
    plan: &Plan,
    meta: &CommitMeta<'_>,
) -> Result<RowCounts, StoreError> {
    let mut rows = RowCounts::default();
    if meta.fence_pid < 0 {
        return Err(StoreError::LockLost);
    }
    rows.dead_letters = insert_many(
        c,
        "INSERT INTO dead_letters (stream_seq, subject, payload, reason, deliveries, received_at) VALUES",
        6,
        "ON CONFLICT (stream_seq) DO NOTHING",
        &plan.dead,
        |q, r| {
            q.bind(r.stream_seq)
                .bind(r.subject.as_str())
                .bind(r.payload.as_slice())
                .bind(r.reason.as_str())
                .bind(r.deliveries)
                .bind(r.received_at)
        },
    )
    .await?;
    rows.events = insert_many(
        c,
        "INSERT INTO events (event_id, system_id, collector_id, observed_at, level, level_rank, category, message, details, http_status, endpoint) VALUES",
        11,
        "ON CONFLICT (event_id) DO NOTHING",
        &plan.events,
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
    .await?;
    for r in &plan.systems {
        rows.systems += sqlx::query(
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
    for r in &plan.collectors {
        rows.collectors += sqlx::query(
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
    if !plan.snapshots.is_empty() {
        write_snapshots(c, plan, &mut rows).await?;
    }
    if let Some(seq) = plan.last_stream_seq {
        sqlx::query(
            "INSERT INTO pipeline_status (id, writer_id, last_commit_at, last_stream_seq, consumer_pending) VALUES (1, ?, ?, ?, ?) \
             ON CONFLICT (id) DO UPDATE SET writer_id = excluded.writer_id, last_commit_at = excluded.last_commit_at, \
             last_stream_seq = excluded.last_stream_seq, consumer_pending = excluded.consumer_pending",
        )
        .bind(meta.writer_id)
        .bind(meta.now)
        .bind(seq)
        .bind(meta.consumer_pending)
        .execute(&mut *c)
        .await?;
    }
    Ok(rows)
}

/// Snapshots, set-based: the stored states and open alerts of all systems of the batch are read
/// with one `SELECT` each, history is derived in [`plan::derive`], and every kind of row is written
/// with one multi-row statement (chunked under the bind-parameter limit): about ten statements
/// per batch whatever its size.
async fn write_snapshots(
    c: &mut SqliteConnection,
    plan: &Plan,
    rows: &mut RowCounts,
) -> Result<(), StoreError> {
    // System ids are `[a-z0-9_-]{1,64}` (validated on decode); one JSON array binds them all.
    let ids = serde_json::to_string(&plan.snapshots.keys().collect::<Vec<_>>())
        .map_err(|e| StoreError::Db(sqlx::Error::Encode(Box::new(e))))?;
    // Each read comes back as ONE row holding a JSON array: sqlx hands every result row from
    // SQLite's thread to ours separately, which cost more than the reads themselves (about
    // 20 ms for the 1,500 rows of a 1,000-snapshot batch; 1 ms as one JSON row).
    let state_json: String = sqlx::query(
        "SELECT json_group_array(json_array(system_id, observed_at, status, hardware, cluster, last_online_at)) \
         FROM system_state WHERE system_id IN (SELECT value FROM json_each(?))",
    )
    .bind(ids.as_str())
    .fetch_one(&mut *c)
    .await?
    .try_get(0)?;
    type StateTuple = (String, i64, String, String, String, Option<i64>);
    let states: Vec<StateTuple> = serde_json::from_str(&state_json)
        .map_err(|e| StoreError::Db(sqlx::Error::Decode(Box::new(e))))?;
    let mut stored = HashMap::with_capacity(states.len());
    for (system_id, observed_at, status, hardware, cluster, last_online_at) in states {
        stored.insert(
            system_id.clone(),
            StoredState {
                system_id,
                observed_at,
                status,
                hardware,
                cluster,
                last_online_at,
            },
        );
    }
    let open_json: String = sqlx::query(
        "SELECT json_group_array(json_array(id, system_id, alert_id, \
           json_object('severity', severity, 'vendor_severity', vendor_severity, 'title', title, \
                       'component', component, 'opened_at', opened_at))) FROM alerts \
         WHERE cleared_at IS NULL AND system_id IN (SELECT value FROM json_each(?))",
    )
    .bind(ids.as_str())
    .fetch_one(&mut *c)
    .await?
    .try_get(0)?;
    type OpenTuple = (i64, String, String, plan::AlertDetails);
    let open: Vec<OpenAlertRow> = serde_json::from_str::<Vec<OpenTuple>>(&open_json)
        .map_err(|e| StoreError::Db(sqlx::Error::Decode(Box::new(e))))?
        .into_iter()
        .map(|(id, system_id, alert_id, details)| OpenAlertRow {
            id,
            system_id,
            alert_id,
            details: Some(details),
        })
        .collect();
    let d = plan::derive(&plan.snapshots, &stored, &open);

    rows.systems += insert_many(
        c,
        "INSERT INTO systems (id, name, vendor, updated_at) VALUES",
        4,
        "ON CONFLICT (id) DO NOTHING",
        &d.minimal_systems,
        |q, (id, vendor)| {
            q.bind(id.as_str())
                .bind(id.as_str())
                .bind(*vendor)
                .bind(0_i64)
        },
    )
    .await?;
    rows.system_state += insert_many(
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
        &d.states,
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
    .await?;
    // One row per system (derive yields at most one), so each target row joins at most once.
    rows.system_state += insert_many(
        c,
        "WITH u(id, t) AS (VALUES",
        2,
        ") UPDATE system_state SET last_online_at = u.t FROM u WHERE system_state.system_id = u.id \
         AND (system_state.last_online_at IS NULL OR system_state.last_online_at < u.t)",
        &d.last_online,
        |q, (id, t)| q.bind(id.as_str()).bind(*t),
    )
    .await?;
    rows.status_transitions += insert_many(
        c,
        "INSERT INTO status_transitions (system_id, at, field, from_value, to_value, event_id) VALUES",
        6,
        "ON CONFLICT (event_id, field) DO NOTHING",
        &d.transitions,
        |q, r| {
            q.bind(r.system_id.as_str())
                .bind(r.at)
                .bind(r.field)
                .bind(r.from_value.as_deref())
                .bind(r.to_value.as_str())
                .bind(r.event_id.as_str())
        },
    )
    .await?;
    // Existing episodes first (a clear frees the open slot a re-opened alert then takes). Each
    // stored row id appears once. Most are seen again unchanged: those only move `last_seen`.
    let (touched, updated): (Vec<&plan::AlertEpisode>, Vec<&plan::AlertEpisode>) =
        d.alert_updates.iter().partition(|e| e.touch_only);
    rows.alerts += insert_many(
        c,
        "WITH u(id, t) AS (VALUES",
        2,
        ") UPDATE alerts SET last_seen = max(alerts.last_seen, u.t) FROM u WHERE alerts.id = u.id",
        &touched,
        |q, r| q.bind(r.existing.unwrap_or(0)).bind(r.last_seen),
    )
    .await?;
    // An episode not seen in the batch only gets its `cleared_at`.
    rows.alerts += insert_many(
        c,
        "WITH u(id, seen, severity, vendor_severity, title, component, opened_at, last_seen, cleared_at) AS (VALUES",
        9,
        ") UPDATE alerts SET \
         severity = CASE WHEN u.seen THEN u.severity ELSE alerts.severity END, \
         vendor_severity = CASE WHEN u.seen THEN u.vendor_severity ELSE alerts.vendor_severity END, \
         title = CASE WHEN u.seen THEN u.title ELSE alerts.title END, \
         component = CASE WHEN u.seen THEN u.component ELSE alerts.component END, \
         opened_at = CASE WHEN u.seen THEN COALESCE(u.opened_at, alerts.opened_at) ELSE alerts.opened_at END, \
         last_seen = CASE WHEN u.seen THEN max(alerts.last_seen, u.last_seen) ELSE alerts.last_seen END, \
         cleared_at = u.cleared_at \
         FROM u WHERE alerts.id = u.id",
        &updated,
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
    .await?;
    rows.alerts += insert_many(
        c,
        "INSERT INTO alerts (system_id, alert_id, severity, vendor_severity, title, component, opened_at, first_seen, last_seen, cleared_at) VALUES",
        10,
        "ON CONFLICT (system_id, alert_id) WHERE cleared_at IS NULL DO NOTHING",
        &d.alert_inserts,
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
    .await?;
    if !d.samples.is_empty() {
        let inserted = insert_samples(c, &d.samples).await?;
        rows.capacity_samples += inserted.len() as u64;
        // One row per (system, day): the rollup of the samples this batch really inserted.
        rows.capacity_daily += insert_many(
            c,
            "INSERT INTO capacity_daily (system_id, day, samples, used_min, used_max, used_sum, last_at, total_bytes, used_bytes, free_bytes) VALUES",
            10,
            "ON CONFLICT (system_id, day) DO UPDATE SET samples = capacity_daily.samples + excluded.samples, \
             used_min = min(capacity_daily.used_min, excluded.used_min), used_max = max(capacity_daily.used_max, excluded.used_max), \
             used_sum = capacity_daily.used_sum + excluded.used_sum, last_at = max(capacity_daily.last_at, excluded.last_at), \
             total_bytes = CASE WHEN excluded.last_at >= capacity_daily.last_at THEN excluded.total_bytes ELSE capacity_daily.total_bytes END, \
             used_bytes = CASE WHEN excluded.last_at >= capacity_daily.last_at THEN excluded.used_bytes ELSE capacity_daily.used_bytes END, \
             free_bytes = CASE WHEN excluded.last_at >= capacity_daily.last_at THEN excluded.free_bytes ELSE capacity_daily.free_bytes END",
            &plan::rollup(&inserted),
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
        .await?;
    }
    Ok(())
}

/// Inserts capacity samples (a sample already stored is skipped) and returns the ones really
/// inserted, which the daily rollup adds up. Normally every sample is new: the insert then
/// reports as many rows as it was given and nothing is read back. When some were already stored
/// (a redelivery, a replayed outbox), the chunk is rolled back to a savepoint and inserted again
/// with `RETURNING`, which names the new ones.
async fn insert_samples(
    c: &mut SqliteConnection,
    samples: &[plan::SampleRow],
) -> Result<Vec<plan::SampleRow>, StoreError> {
    const HEAD: &str = "INSERT INTO capacity_samples (system_id, observed_at, total_bytes, used_bytes, free_bytes) VALUES";
    const SKIP: &str = "ON CONFLICT (system_id, observed_at) DO NOTHING";
    fn bound<'q>(sql: String, chunk: &'q [plan::SampleRow]) -> Query<'q> {
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
    let mut inserted = Vec::with_capacity(samples.len());
    for chunk in samples.chunks(chunk_rows(5)) {
        sqlx::query("SAVEPOINT samples").execute(&mut *c).await?;
        let n = bound(multi_row_sql(HEAD, 5, chunk.len(), SKIP), chunk)
            .execute(&mut *c)
            .await?
            .rows_affected();
        if n == chunk.len() as u64 {
            inserted.extend_from_slice(chunk);
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
            inserted.extend(
                chunk
                    .iter()
                    .filter(|r| new.contains(&(r.system_id.clone(), r.observed_at)))
                    .cloned(),
            );
        }
        sqlx::query("RELEASE samples").execute(&mut *c).await?;
    }
    Ok(inserted)
}

async fn delete_loop(
    pool: &SqlitePool,
    sql: &'static str,
    binds: &[Bound<'_>],
    batch: i64,
) -> Result<u64, StoreError> {
    let mut total = 0;
    loop {
        let mut q = sqlx::query(sql);
        for b in binds {
            q = match b {
                Bound::I(v) => q.bind(*v),
                Bound::S(v) => q.bind(*v),
            };
        }
        let n = q.bind(batch).execute(pool).await?.rows_affected();
        total += n;
        if n < batch as u64 {
            return Ok(total);
        }
        tokio::task::yield_now().await;
    }
}

enum Bound<'a> {
    I(i64),
    S(&'a str),
}

pub(crate) async fn retention(
    pool: &SqlitePool,
    cut: &Cutoffs,
) -> Result<RetentionOutcome, StoreError> {
    let mut out = RetentionOutcome {
        events_expired: delete_loop(
            pool,
            "DELETE FROM events WHERE rowid IN (SELECT rowid FROM events WHERE observed_at < ? LIMIT ?)",
            &[Bound::I(cut.events_before)],
            cut.batch,
        )
        .await?,
        ..Default::default()
    };
    if cut.keep_per_system > 0 {
        let systems: Vec<String> =
            sqlx::query("SELECT system_id FROM events GROUP BY system_id HAVING count(*) > ? ORDER BY system_id")
                .bind(cut.keep_per_system)
                .fetch_all(pool)
                .await?
                .iter()
                .map(|r| r.try_get::<String, _>(0))
                .collect::<Result<_, _>>()?;
        for system in systems {
            let Some(row) = sqlx::query(
                "SELECT observed_at, event_id FROM events WHERE system_id = ? ORDER BY observed_at DESC, event_id DESC LIMIT 1 OFFSET ?",
            )
            .bind(system.as_str())
            .bind(cut.keep_per_system)
            .fetch_optional(pool)
            .await?
            else {
                continue;
            };
            let at: i64 = row.try_get(0)?;
            let id: String = row.try_get(1)?;
            out.systems_trimmed += 1;
            out.events_over_limit += delete_loop(
                pool,
                "DELETE FROM events WHERE rowid IN (SELECT rowid FROM events WHERE system_id = ? \
                 AND (observed_at, event_id) <= (?, ?) LIMIT ?)",
                &[Bound::S(&system), Bound::I(at), Bound::S(&id)],
                cut.batch,
            )
            .await?;
        }
    }
    out.capacity_samples_expired = delete_loop(
        pool,
        "DELETE FROM capacity_samples WHERE rowid IN (SELECT rowid FROM capacity_samples WHERE observed_at < ? LIMIT ?)",
        &[Bound::I(cut.samples_before)],
        cut.batch,
    )
    .await?;
    out.dead_letters_expired = delete_loop(
        pool,
        "DELETE FROM dead_letters WHERE id IN (SELECT id FROM dead_letters WHERE received_at < ? LIMIT ?)",
        &[Bound::I(cut.dead_letters_before)],
        cut.batch,
    )
    .await?;
    Ok(out)
}
