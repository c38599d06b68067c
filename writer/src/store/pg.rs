//! PostgreSQL backend: set-based writes (`INSERT ... SELECT FROM UNNEST(...)`), a constant number of
//! round trips per batch whatever its size.

use std::collections::HashMap;
use std::str::FromStr;
use std::time::Duration;

use sqlx::postgres::{PgConnectOptions, PgPoolOptions};
use sqlx::{PgConnection, PgPool, Row};

use super::plan::{self, OpenAlertRow, Plan, StoredState};
use super::{CommitMeta, Cutoffs, PG_MIGRATIONS, RetentionOutcome, RowCounts, StoreError};

/// Serializes concurrent migrations (two processes starting at once).
const MIGRATION_LOCK: i64 = 0x5344_4153_484d; // "SDASHM"

pub(crate) fn connect_options(url: &str) -> Result<PgConnectOptions, StoreError> {
    let options = PgConnectOptions::from_str(url)?.application_name("sdash-writer");
    Ok(crate::db_password::apply(url, options))
}

pub(crate) async fn open(url: &str) -> Result<PgPool, StoreError> {
    let pool = PgPoolOptions::new()
        .max_connections(1)
        .min_connections(0)
        .acquire_timeout(Duration::from_secs(10))
        .test_before_acquire(true)
        .connect_with(connect_options(url)?)
        .await?;
    Ok(pool)
}

pub(crate) async fn migrate(pool: &PgPool) -> Result<(), StoreError> {
    let mut tx = pool.begin().await?;
    sqlx::query("SELECT pg_advisory_xact_lock($1)")
        .bind(MIGRATION_LOCK)
        .execute(&mut *tx)
        .await?;
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
    let known = PG_MIGRATIONS.iter().map(|m| m.version).max().unwrap_or(0);
    if let Some(&found) = applied.iter().max()
        && found > known
    {
        return Err(StoreError::SchemaTooNew { found, known });
    }
    for m in PG_MIGRATIONS {
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
        sqlx::query(
            "INSERT INTO schema_migrations (version, name, applied_at) VALUES ($1, $2, $3)",
        )
        .bind(m.version)
        .bind(m.name)
        .bind(sdash_proto::now_ms())
        .execute(&mut *tx)
        .await?;
        tracing::info!(
            version = m.version,
            name = m.name,
            "applied PostgreSQL migration"
        );
    }
    tx.commit().await?;
    Ok(())
}

pub(crate) async fn write(
    pool: &PgPool,
    plan: &Plan,
    meta: &CommitMeta<'_>,
) -> Result<RowCounts, StoreError> {
    let mut tx = pool.begin().await?;
    let rows = write_in(&mut tx, plan, meta).await?;
    tx.commit().await?;
    Ok(rows)
}

async fn write_in(
    c: &mut PgConnection,
    plan: &Plan,
    meta: &CommitMeta<'_>,
) -> Result<RowCounts, StoreError> {
    let mut rows = RowCounts::default();
    if meta.fence_pid != 0 {
        if meta.fence_pid < 0 {
            return Err(StoreError::LockLost);
        }
        let held: bool = sqlx::query(
            "SELECT EXISTS (SELECT 1 FROM pg_locks WHERE locktype = 'advisory' AND granted AND pid = $1 \
             AND database = (SELECT oid FROM pg_database WHERE datname = current_database()))",
        )
        .bind(meta.fence_pid)
        .fetch_one(&mut *c)
        .await?
        .try_get(0)?;
        if !held {
            return Err(StoreError::LockLost);
        }
    }

    if !plan.dead.is_empty() {
        let d = &plan.dead;
        rows.dead_letters = sqlx::query(
            "INSERT INTO dead_letters (stream_seq, subject, payload, reason, deliveries, received_at) \
             SELECT * FROM UNNEST($1::bigint[], $2::text[], $3::bytea[], $4::text[], $5::bigint[], $6::bigint[]) \
             ON CONFLICT (stream_seq) DO NOTHING",
        )
        .bind(d.iter().map(|r| r.stream_seq).collect::<Vec<_>>())
        .bind(d.iter().map(|r| r.subject.as_str()).collect::<Vec<_>>())
        .bind(d.iter().map(|r| r.payload.clone()).collect::<Vec<_>>())
        .bind(d.iter().map(|r| r.reason.as_str()).collect::<Vec<_>>())
        .bind(d.iter().map(|r| r.deliveries).collect::<Vec<_>>())
        .bind(d.iter().map(|r| r.received_at).collect::<Vec<_>>())
        .execute(&mut *c)
        .await?
        .rows_affected();
    }

    if !plan.events.is_empty() {
        let e = &plan.events;
        rows.events = sqlx::query(
            "INSERT INTO events (event_id, system_id, collector_id, observed_at, level, level_rank, category, message, details, http_status, endpoint) \
             SELECT * FROM UNNEST($1::text[], $2::text[], $3::text[], $4::bigint[], $5::text[], $6::smallint[], $7::text[], $8::text[], $9::text[], $10::int[], $11::text[]) \
             ON CONFLICT (event_id) DO NOTHING",
        )
        .bind(e.iter().map(|r| r.event_id.as_str()).collect::<Vec<_>>())
        .bind(e.iter().map(|r| r.system_id.as_str()).collect::<Vec<_>>())
        .bind(e.iter().map(|r| r.collector_id.as_str()).collect::<Vec<_>>())
        .bind(e.iter().map(|r| r.observed_at).collect::<Vec<_>>())
        .bind(e.iter().map(|r| r.level).collect::<Vec<_>>())
        .bind(e.iter().map(|r| r.level_rank).collect::<Vec<_>>())
        .bind(e.iter().map(|r| r.category).collect::<Vec<_>>())
        .bind(e.iter().map(|r| r.message.as_str()).collect::<Vec<_>>())
        .bind(e.iter().map(|r| r.details.as_deref()).collect::<Vec<_>>())
        .bind(e.iter().map(|r| r.http_status).collect::<Vec<_>>())
        .bind(e.iter().map(|r| r.endpoint.as_deref()).collect::<Vec<_>>())
        .execute(&mut *c)
        .await?
        .rows_affected();
    }

    if !plan.systems.is_empty() {
        let s = &plan.systems;
        rows.systems = sqlx::query(
            "INSERT INTO systems (id, name, vendor, address, tags, interval_s, enabled, removed, updated_at) \
             SELECT * FROM UNNEST($1::text[], $2::text[], $3::text[], $4::text[], $5::text[], $6::bigint[], $7::bool[], $8::bool[], $9::bigint[]) \
             ON CONFLICT (id) DO UPDATE SET name = EXCLUDED.name, vendor = EXCLUDED.vendor, address = EXCLUDED.address, \
             tags = EXCLUDED.tags, interval_s = EXCLUDED.interval_s, enabled = EXCLUDED.enabled, removed = EXCLUDED.removed, \
             updated_at = EXCLUDED.updated_at WHERE systems.updated_at < EXCLUDED.updated_at",
        )
        .bind(s.iter().map(|r| r.id.as_str()).collect::<Vec<_>>())
        .bind(s.iter().map(|r| r.name.as_str()).collect::<Vec<_>>())
        .bind(s.iter().map(|r| r.vendor).collect::<Vec<_>>())
        .bind(s.iter().map(|r| r.address.as_str()).collect::<Vec<_>>())
        .bind(s.iter().map(|r| r.tags.as_str()).collect::<Vec<_>>())
        .bind(s.iter().map(|r| r.interval_s).collect::<Vec<_>>())
        .bind(s.iter().map(|r| r.enabled).collect::<Vec<_>>())
        .bind(s.iter().map(|r| r.removed).collect::<Vec<_>>())
        .bind(s.iter().map(|r| r.updated_at).collect::<Vec<_>>())
        .execute(&mut *c)
        .await?
        .rows_affected();
    }

    if !plan.collectors.is_empty() {
        let s = &plan.collectors;
        rows.collectors = sqlx::query(
            "INSERT INTO collectors (id, version, systems, polls, failures, outbox_depth, started_at, last_seen) \
             SELECT * FROM UNNEST($1::text[], $2::text[], $3::text[], $4::bigint[], $5::bigint[], $6::bigint[], $7::bigint[], $8::bigint[]) \
             ON CONFLICT (id) DO UPDATE SET version = EXCLUDED.version, systems = EXCLUDED.systems, polls = EXCLUDED.polls, \
             failures = EXCLUDED.failures, outbox_depth = EXCLUDED.outbox_depth, started_at = EXCLUDED.started_at, \
             last_seen = EXCLUDED.last_seen WHERE collectors.last_seen < EXCLUDED.last_seen",
        )
        .bind(s.iter().map(|r| r.id.as_str()).collect::<Vec<_>>())
        .bind(s.iter().map(|r| r.version.as_str()).collect::<Vec<_>>())
        .bind(s.iter().map(|r| r.systems.as_str()).collect::<Vec<_>>())
        .bind(s.iter().map(|r| r.polls).collect::<Vec<_>>())
        .bind(s.iter().map(|r| r.failures).collect::<Vec<_>>())
        .bind(s.iter().map(|r| r.outbox_depth).collect::<Vec<_>>())
        .bind(s.iter().map(|r| r.started_at).collect::<Vec<_>>())
        .bind(s.iter().map(|r| r.last_seen).collect::<Vec<_>>())
        .execute(&mut *c)
        .await?
        .rows_affected();
    }

    if !plan.snapshots.is_empty() {
        write_snapshots(c, plan, &mut rows).await?;
    }

    if let Some(seq) = plan.last_stream_seq {
        sqlx::query(
            "INSERT INTO pipeline_status (id, writer_id, last_commit_at, last_stream_seq, consumer_pending) VALUES (1, $1, $2, $3, $4) \
             ON CONFLICT (id) DO UPDATE SET writer_id = EXCLUDED.writer_id, last_commit_at = EXCLUDED.last_commit_at, \
             last_stream_seq = EXCLUDED.last_stream_seq, consumer_pending = EXCLUDED.consumer_pending",
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

async fn write_snapshots(
    c: &mut PgConnection,
    plan: &Plan,
    rows: &mut RowCounts,
) -> Result<(), StoreError> {
    let ids: Vec<&str> = plan.snapshots.keys().map(String::as_str).collect();
    let mut stored = HashMap::new();
    for r in sqlx::query(
        "SELECT system_id, observed_at, status, hardware, cluster, last_online_at FROM system_state WHERE system_id = ANY($1::text[])",
    )
    .bind(&ids)
    .fetch_all(&mut *c)
    .await?
    {
        let s = StoredState {
            system_id: r.try_get(0)?,
            observed_at: r.try_get(1)?,
            status: r.try_get(2)?,
            hardware: r.try_get(3)?,
            cluster: r.try_get(4)?,
            last_online_at: r.try_get(5)?,
        };
        stored.insert(s.system_id.clone(), s);
    }
    let mut open = Vec::new();
    for r in sqlx::query("SELECT id, system_id, alert_id FROM alerts WHERE cleared_at IS NULL AND system_id = ANY($1::text[])")
        .bind(&ids)
        .fetch_all(&mut *c)
        .await?
    {
        open.push(OpenAlertRow { id: r.try_get(0)?, system_id: r.try_get(1)?, alert_id: r.try_get(2)?, details: None });
    }
    let d = plan::derive(&plan.snapshots, &stored, &open);

    let m = &d.minimal_systems;
    rows.systems += sqlx::query(
        "INSERT INTO systems (id, name, vendor, updated_at) SELECT u.id, u.id, u.vendor, 0 FROM UNNEST($1::text[], $2::text[]) AS u(id, vendor) \
         ON CONFLICT (id) DO NOTHING",
    )
    .bind(m.iter().map(|r| r.0.as_str()).collect::<Vec<_>>())
    .bind(m.iter().map(|r| r.1).collect::<Vec<_>>())
    .execute(&mut *c)
    .await?
    .rows_affected();

    if !d.states.is_empty() {
        let s = &d.states;
        rows.system_state += sqlx::query(
            "INSERT INTO system_state (system_id, event_id, collector_id, observed_at, vendor, status, hardware, cluster, name, version, model, serial, \
             total_bytes, used_bytes, free_bytes, data_reduction, alert_count, components, alerts, poll_ms, error, last_online_at) \
             SELECT * FROM UNNEST($1::text[], $2::text[], $3::text[], $4::bigint[], $5::text[], $6::text[], $7::text[], $8::text[], $9::text[], $10::text[], \
             $11::text[], $12::text[], $13::bigint[], $14::bigint[], $15::bigint[], $16::float8[], $17::int[], $18::text[], $19::text[], $20::bigint[], $21::text[], $22::bigint[]) \
             ON CONFLICT (system_id) DO UPDATE SET event_id = EXCLUDED.event_id, collector_id = EXCLUDED.collector_id, observed_at = EXCLUDED.observed_at, \
             vendor = EXCLUDED.vendor, status = EXCLUDED.status, hardware = EXCLUDED.hardware, cluster = EXCLUDED.cluster, name = EXCLUDED.name, \
             version = EXCLUDED.version, model = EXCLUDED.model, serial = EXCLUDED.serial, total_bytes = EXCLUDED.total_bytes, used_bytes = EXCLUDED.used_bytes, \
             free_bytes = EXCLUDED.free_bytes, data_reduction = EXCLUDED.data_reduction, alert_count = EXCLUDED.alert_count, components = EXCLUDED.components, \
             alerts = EXCLUDED.alerts, poll_ms = EXCLUDED.poll_ms, error = EXCLUDED.error, \
             last_online_at = GREATEST(system_state.last_online_at, EXCLUDED.last_online_at) \
             WHERE system_state.observed_at < EXCLUDED.observed_at",
        )
        .bind(s.iter().map(|r| r.system_id.as_str()).collect::<Vec<_>>())
        .bind(s.iter().map(|r| r.event_id.as_str()).collect::<Vec<_>>())
        .bind(s.iter().map(|r| r.collector_id.as_str()).collect::<Vec<_>>())
        .bind(s.iter().map(|r| r.observed_at).collect::<Vec<_>>())
        .bind(s.iter().map(|r| r.vendor).collect::<Vec<_>>())
        .bind(s.iter().map(|r| r.status).collect::<Vec<_>>())
        .bind(s.iter().map(|r| r.hardware).collect::<Vec<_>>())
        .bind(s.iter().map(|r| r.cluster).collect::<Vec<_>>())
        .bind(s.iter().map(|r| r.name.as_deref()).collect::<Vec<_>>())
        .bind(s.iter().map(|r| r.version.as_deref()).collect::<Vec<_>>())
        .bind(s.iter().map(|r| r.model.as_deref()).collect::<Vec<_>>())
        .bind(s.iter().map(|r| r.serial.as_deref()).collect::<Vec<_>>())
        .bind(s.iter().map(|r| r.total_bytes).collect::<Vec<_>>())
        .bind(s.iter().map(|r| r.used_bytes).collect::<Vec<_>>())
        .bind(s.iter().map(|r| r.free_bytes).collect::<Vec<_>>())
        .bind(s.iter().map(|r| r.data_reduction).collect::<Vec<_>>())
        .bind(s.iter().map(|r| r.alert_count).collect::<Vec<_>>())
        .bind(s.iter().map(|r| r.components.as_str()).collect::<Vec<_>>())
        .bind(s.iter().map(|r| r.alerts.as_str()).collect::<Vec<_>>())
        .bind(s.iter().map(|r| r.poll_ms).collect::<Vec<_>>())
        .bind(s.iter().map(|r| r.error.as_deref()).collect::<Vec<_>>())
        .bind(s.iter().map(|r| r.last_online_at).collect::<Vec<_>>())
        .execute(&mut *c)
        .await?
        .rows_affected();
    }

    if !d.last_online.is_empty() {
        rows.system_state += sqlx::query(
            "UPDATE system_state s SET last_online_at = GREATEST(s.last_online_at, u.t) \
             FROM UNNEST($1::text[], $2::bigint[]) AS u(id, t) WHERE s.system_id = u.id",
        )
        .bind(
            d.last_online
                .iter()
                .map(|r| r.0.as_str())
                .collect::<Vec<_>>(),
        )
        .bind(d.last_online.iter().map(|r| r.1).collect::<Vec<_>>())
        .execute(&mut *c)
        .await?
        .rows_affected();
    }

    if !d.transitions.is_empty() {
        let t = &d.transitions;
        rows.status_transitions += sqlx::query(
            "INSERT INTO status_transitions (system_id, at, field, from_value, to_value, event_id) \
             SELECT * FROM UNNEST($1::text[], $2::bigint[], $3::text[], $4::text[], $5::text[], $6::text[]) \
             ON CONFLICT (event_id, field) DO NOTHING",
        )
        .bind(t.iter().map(|r| r.system_id.as_str()).collect::<Vec<_>>())
        .bind(t.iter().map(|r| r.at).collect::<Vec<_>>())
        .bind(t.iter().map(|r| r.field).collect::<Vec<_>>())
        .bind(t.iter().map(|r| r.from_value.as_deref()).collect::<Vec<_>>())
        .bind(t.iter().map(|r| r.to_value.as_str()).collect::<Vec<_>>())
        .bind(t.iter().map(|r| r.event_id.as_str()).collect::<Vec<_>>())
        .execute(&mut *c)
        .await?
        .rows_affected();
    }

    // Existing episodes first (a clear frees the open slot a re-opened alert then takes).
    if !d.alert_updates.is_empty() {
        let a = &d.alert_updates;
        rows.alerts += sqlx::query(
            "UPDATE alerts a SET \
             severity = CASE WHEN u.seen THEN u.severity ELSE a.severity END, \
             vendor_severity = CASE WHEN u.seen THEN u.vendor_severity ELSE a.vendor_severity END, \
             title = CASE WHEN u.seen THEN u.title ELSE a.title END, \
             component = CASE WHEN u.seen THEN u.component ELSE a.component END, \
             opened_at = CASE WHEN u.seen THEN COALESCE(u.opened_at, a.opened_at) ELSE a.opened_at END, \
             last_seen = CASE WHEN u.seen THEN GREATEST(a.last_seen, u.last_seen) ELSE a.last_seen END, \
             cleared_at = u.cleared_at \
             FROM UNNEST($1::bigint[], $2::bool[], $3::text[], $4::text[], $5::text[], $6::text[], $7::bigint[], $8::bigint[], $9::bigint[]) \
             AS u(id, seen, severity, vendor_severity, title, component, opened_at, last_seen, cleared_at) WHERE a.id = u.id",
        )
        .bind(a.iter().map(|r| r.existing.unwrap_or(0)).collect::<Vec<_>>())
        .bind(a.iter().map(|r| r.seen).collect::<Vec<_>>())
        .bind(a.iter().map(|r| r.severity).collect::<Vec<_>>())
        .bind(a.iter().map(|r| r.vendor_severity.as_str()).collect::<Vec<_>>())
        .bind(a.iter().map(|r| r.title.as_str()).collect::<Vec<_>>())
        .bind(a.iter().map(|r| r.component.as_deref()).collect::<Vec<_>>())
        .bind(a.iter().map(|r| r.opened_at).collect::<Vec<_>>())
        .bind(a.iter().map(|r| r.last_seen).collect::<Vec<_>>())
        .bind(a.iter().map(|r| r.cleared_at).collect::<Vec<_>>())
        .execute(&mut *c)
        .await?
        .rows_affected();
    }
    if !d.alert_inserts.is_empty() {
        let a = &d.alert_inserts;
        rows.alerts += sqlx::query(
            "INSERT INTO alerts (system_id, alert_id, severity, vendor_severity, title, component, opened_at, first_seen, last_seen, cleared_at) \
             SELECT * FROM UNNEST($1::text[], $2::text[], $3::text[], $4::text[], $5::text[], $6::text[], $7::bigint[], $8::bigint[], $9::bigint[], $10::bigint[]) \
             ON CONFLICT (system_id, alert_id) WHERE cleared_at IS NULL DO NOTHING",
        )
        .bind(a.iter().map(|r| r.system_id.as_str()).collect::<Vec<_>>())
        .bind(a.iter().map(|r| r.alert_id.as_str()).collect::<Vec<_>>())
        .bind(a.iter().map(|r| r.severity).collect::<Vec<_>>())
        .bind(a.iter().map(|r| r.vendor_severity.as_str()).collect::<Vec<_>>())
        .bind(a.iter().map(|r| r.title.as_str()).collect::<Vec<_>>())
        .bind(a.iter().map(|r| r.component.as_deref()).collect::<Vec<_>>())
        .bind(a.iter().map(|r| r.opened_at).collect::<Vec<_>>())
        .bind(a.iter().map(|r| r.first_seen).collect::<Vec<_>>())
        .bind(a.iter().map(|r| r.last_seen).collect::<Vec<_>>())
        .bind(a.iter().map(|r| r.cleared_at).collect::<Vec<_>>())
        .execute(&mut *c)
        .await?
        .rows_affected();
    }

    if !d.samples.is_empty() {
        // One statement: the samples really inserted (a redelivered one is skipped) are rolled up
        // by (system, UTC day) on the server and added to the daily rows; nothing is read back
        // but the two counts.
        let s = &d.samples;
        let counts = sqlx::query(
            "WITH ins AS ( \
               INSERT INTO capacity_samples (system_id, observed_at, total_bytes, used_bytes, free_bytes) \
               SELECT * FROM UNNEST($1::text[], $2::bigint[], $3::bigint[], $4::bigint[], $5::bigint[]) \
               ON CONFLICT (system_id, observed_at) DO NOTHING \
               RETURNING system_id, observed_at, total_bytes, used_bytes, free_bytes \
             ), day AS ( \
               SELECT system_id, to_char(DATE '1970-01-01' + (observed_at / 86400000)::int, 'YYYY-MM-DD') AS day, \
                 count(*) AS samples, min(used_bytes) AS used_min, max(used_bytes) AS used_max, \
                 sum(used_bytes)::float8 AS used_sum, max(observed_at) AS last_at, \
                 (array_agg(total_bytes ORDER BY observed_at DESC))[1] AS total_bytes, \
                 (array_agg(used_bytes ORDER BY observed_at DESC))[1] AS used_bytes, \
                 (array_agg(free_bytes ORDER BY observed_at DESC))[1] AS free_bytes \
               FROM ins GROUP BY 1, 2 \
             ), up AS ( \
               INSERT INTO capacity_daily (system_id, day, samples, used_min, used_max, used_sum, last_at, total_bytes, used_bytes, free_bytes) \
               SELECT * FROM day \
               ON CONFLICT (system_id, day) DO UPDATE SET samples = capacity_daily.samples + EXCLUDED.samples, \
               used_min = LEAST(capacity_daily.used_min, EXCLUDED.used_min), used_max = GREATEST(capacity_daily.used_max, EXCLUDED.used_max), \
               used_sum = capacity_daily.used_sum + EXCLUDED.used_sum, last_at = GREATEST(capacity_daily.last_at, EXCLUDED.last_at), \
               total_bytes = CASE WHEN EXCLUDED.last_at >= capacity_daily.last_at THEN EXCLUDED.total_bytes ELSE capacity_daily.total_bytes END, \
               used_bytes = CASE WHEN EXCLUDED.last_at >= capacity_daily.last_at THEN EXCLUDED.used_bytes ELSE capacity_daily.used_bytes END, \
               free_bytes = CASE WHEN EXCLUDED.last_at >= capacity_daily.last_at THEN EXCLUDED.free_bytes ELSE capacity_daily.free_bytes END \
               RETURNING 1 \
             ) \
             SELECT (SELECT count(*) FROM ins), (SELECT count(*) FROM up)",
        )
        .bind(s.iter().map(|r| r.system_id.as_str()).collect::<Vec<_>>())
        .bind(s.iter().map(|r| r.observed_at).collect::<Vec<_>>())
        .bind(s.iter().map(|r| r.total_bytes).collect::<Vec<_>>())
        .bind(s.iter().map(|r| r.used_bytes).collect::<Vec<_>>())
        .bind(s.iter().map(|r| r.free_bytes).collect::<Vec<_>>())
        .fetch_one(&mut *c)
        .await?;
        let samples: i64 = counts.try_get(0)?;
        let daily: i64 = counts.try_get(1)?;
        rows.capacity_samples += samples.max(0) as u64;
        rows.capacity_daily += daily.max(0) as u64;
    }
    Ok(())
}

async fn delete_loop(
    pool: &PgPool,
    sql: &'static str,
    bind: impl Fn() -> Vec<Bound>,
    batch: i64,
) -> Result<u64, StoreError> {
    let mut total = 0;
    loop {
        let mut q = sqlx::query(sql);
        for b in bind() {
            q = match b {
                Bound::I(v) => q.bind(v),
                Bound::S(v) => q.bind(v),
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

enum Bound {
    I(i64),
    S(String),
}

pub(crate) async fn retention(
    pool: &PgPool,
    cut: &Cutoffs,
) -> Result<RetentionOutcome, StoreError> {
    let mut out = RetentionOutcome {
        events_expired: delete_loop(
            pool,
            "DELETE FROM events WHERE ctid = ANY(ARRAY(SELECT ctid FROM events WHERE observed_at < $1 LIMIT $2))",
            || vec![Bound::I(cut.events_before)],
            cut.batch,
        )
        .await?,
        ..Default::default()
    };
    if cut.keep_per_system > 0 {
        let systems: Vec<String> =
            sqlx::query("SELECT system_id FROM events GROUP BY system_id HAVING count(*) > $1 ORDER BY system_id")
                .bind(cut.keep_per_system)
                .fetch_all(pool)
                .await?
                .iter()
                .map(|r| r.try_get::<String, _>(0))
                .collect::<Result<_, _>>()?;
        for system in systems {
            // The newest event beyond the limit: it and everything older go.
            let Some(row) = sqlx::query(
                "SELECT observed_at, event_id FROM events WHERE system_id = $1 ORDER BY observed_at DESC, event_id DESC OFFSET $2 LIMIT 1",
            )
            .bind(&system)
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
                "DELETE FROM events WHERE ctid = ANY(ARRAY(SELECT ctid FROM events WHERE system_id = $1 \
                 AND (observed_at, event_id) <= ($2, $3) LIMIT $4))",
                || vec![Bound::S(system.clone()), Bound::I(at), Bound::S(id.clone())],
                cut.batch,
            )
            .await?;
        }
    }
    out.capacity_samples_expired = delete_loop(
        pool,
        "DELETE FROM capacity_samples WHERE ctid = ANY(ARRAY(SELECT ctid FROM capacity_samples WHERE observed_at < $1 LIMIT $2))",
        || vec![Bound::I(cut.samples_before)],
        cut.batch,
    )
    .await?;
    out.dead_letters_expired = delete_loop(
        pool,
        "DELETE FROM dead_letters WHERE id = ANY(ARRAY(SELECT id FROM dead_letters WHERE received_at < $1 LIMIT $2))",
        || vec![Bound::I(cut.dead_letters_before)],
        cut.batch,
    )
    .await?;
    Ok(out)
}
