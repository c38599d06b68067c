//! PostgreSQL dialect: set-based writes (`INSERT ... SELECT FROM UNNEST(...)`, one array per
//! column), so a batch takes a constant number of round trips whatever its size.

use std::collections::{HashMap, HashSet};
use std::str::FromStr;
use std::sync::{Arc, LazyLock};
use std::time::Duration;

use sdash_service::Secret;
use sdash_service::postgres::{PgServers, PgUrl, PgUrlError};
use sqlx::migrate::{MigrateError, Migrator};
use sqlx::postgres::{PgConnectOptions, PgPoolOptions};
use sqlx::{AssertSqlSafe, PgConnection, PgPool, Row, Transaction};

use super::StoreError;
use super::commands::{
    AlertStateRow, AuditRow, CommentRow, InstanceRow, KnownSystem, instance_columns,
};
use super::derive::{CapacityMark, CapacityRows};
use super::dialect::{Dialect, Stored, TiersWritten, last_capacity, merge_daily, update_alert_set};
use super::plan::{
    AlertDetails, AlertEpisode, CollectorRow, DailyRow, DeadRow, EventRow, OpenAlertRow, OutboxRow,
    Rollup, StateRow, StoredState, SystemContext, SystemRow, TransitionRow,
};
use super::tables::{CAPACITY_HOURLY, Get, Table, newest_last_at};

/// Serializes the conversion of old migration bookkeeping (two processes starting at once).
const MIGRATION_LOCK: i64 = 0x5344_4153_484d; // "SDASHM"

/// The connect options for `url`, logging in with `password` when given (it overrides one in
/// the URL or a pgpass file; sqlx never shows it in an error).
pub(crate) fn connect_options(
    url: &str,
    password: Option<&Secret>,
) -> Result<PgConnectOptions, StoreError> {
    let options = PgConnectOptions::from_str(url)?.application_name("sdash-writer");
    Ok(match password {
        Some(p) => options.password(p.expose()),
        None => options,
    })
}

/// The servers of `url` (one, or several: `postgres://u@h1:5432,h2:5432/db`), each logging in
/// as `application_name` with `password` when given, and the attributes a writing session
/// needs (with several servers: the writable one, see [`PgUrl::for_writing`]).
pub(crate) fn servers(
    url: &str,
    password: Option<&Secret>,
    application_name: &str,
) -> Result<PgServers, StoreError> {
    let url_error = |e: PgUrlError| StoreError::Db(sqlx::Error::Configuration(Box::new(e)));
    let parsed = PgUrl::parse(url).map_err(url_error)?;
    let attrs = parsed.for_writing().map_err(url_error)?;
    PgServers::new(&parsed, attrs, |server| {
        Ok::<_, StoreError>(connect_options(server, password)?.application_name(application_name))
    })
}

/// How long the writer's pool keeps connecting to its server when the URL names several. After
/// a switchover the old primary refuses connections; the lock notices within a second, and a
/// write still waiting for that server only delays the move to the new one.
const MULTI_HOST_ACQUIRE_TIMEOUT: Duration = Duration::from_secs(3);

/// The writer's pool of one connection, on the server [`PgServers::choose`] finds; a session
/// on a server that is no longer the right kind (a primary turned standby) is refused.
pub(crate) async fn open(url: &str, password: Option<&Secret>) -> Result<PgPool, StoreError> {
    let servers = Arc::new(servers(url, password, "sdash-writer")?);
    let index = servers.choose().await?;
    if servers.is_multi_host() {
        tracing::info!(server = servers.addr(index), attrs = %servers.attrs(), "writing to this PostgreSQL server");
    }
    let acquire_timeout = match servers.is_multi_host() {
        true => MULTI_HOST_ACQUIRE_TIMEOUT,
        false => Duration::from_secs(10),
    };
    let mut options = PgPoolOptions::new()
        .max_connections(1)
        .min_connections(0)
        .acquire_timeout(acquire_timeout)
        .test_before_acquire(true);
    if servers.attrs().needs_check() {
        let check = servers.clone();
        options = options.after_connect(move |conn, _meta| {
            let check = check.clone();
            Box::pin(async move { check.check(conn).await })
        });
    }
    Ok(options.connect_with(servers.options(index).clone()).await?)
}

/// One column of `rows`, as the array bound to an `UNNEST` argument.
fn col<'a, T, U>(rows: &'a [T], f: impl Fn(&'a T) -> U) -> Vec<U> {
    rows.iter().map(f).collect()
}

/// `UNNEST` of the ten `capacity_daily` columns, bound to these parameters.
macro_rules! daily_arrays {
    ($a:literal, $b:literal, $c:literal, $d:literal, $e:literal, $f:literal, $g:literal, $h:literal, $i:literal, $j:literal) => {
        concat!(
            "UNNEST($",
            $a,
            "::text[], $",
            $b,
            "::text[], $",
            $c,
            "::bigint[], $",
            $d,
            "::bigint[], $",
            $e,
            "::bigint[], $",
            $f,
            "::float8[], $",
            $g,
            "::bigint[], $",
            $h,
            "::bigint[], $",
            $i,
            "::bigint[], $",
            $j,
            "::bigint[])"
        )
    };
}

type Query<'q> = sqlx::query::Query<'q, sqlx::Postgres, sqlx::postgres::PgArguments>;

/// `INSERT INTO t (…) SELECT * FROM UNNEST($first::…[], …) ON CONFLICT …`: one array per
/// column of `table`, bound by [`bind_columns`] from parameter `first` on.
fn upsert_sql<R>(table: &Table<R>, first: usize) -> String {
    let arrays: Vec<String> = table
        .cols
        .iter()
        .enumerate()
        .map(|(i, c)| {
            let ty = match c.get {
                Get::Int(_) => "bigint",
                Get::Real(_) | Get::OptReal(_) => "float8",
                Get::Text(_) => "text",
            };
            format!("${}::{ty}[]", first + i)
        })
        .collect();
    format!(
        "INSERT INTO {} ({}) SELECT * FROM UNNEST({}) {}",
        table.name,
        table.column_list(),
        arrays.join(", "),
        table.on_conflict("LEAST", "GREATEST")
    )
}

/// Binds the columns of `rows` as `table` lists them, one array each.
fn bind_columns<'q, R>(mut q: Query<'q>, table: &Table<R>, rows: &[R]) -> Query<'q> {
    for c in table.cols {
        q = match c.get {
            Get::Int(f) => q.bind(col(rows, f)),
            Get::Real(f) => q.bind(col(rows, f)),
            Get::OptReal(f) => q.bind(col(rows, f)),
            Get::Text(f) => q.bind(col(rows, f)),
        };
    }
    q
}

/// The three capacity tiers in one statement (the hourly part from [`CAPACITY_HOURLY`]).
static WRITE_CAPACITY: LazyLock<String> = LazyLock::new(|| {
    format!(
        concat!(
            "WITH raw AS ( \
               INSERT INTO capacity_samples (system_id, observed_at, total_bytes, used_bytes, free_bytes) \
               SELECT * FROM UNNEST($1::text[], $2::bigint[], $3::bigint[], $4::bigint[], $5::bigint[]) \
               ON CONFLICT (system_id, observed_at) DO NOTHING RETURNING 1 \
             ), hourly AS ({} RETURNING 1), daily AS ( \
               INSERT INTO capacity_daily (system_id, day, samples, used_min, used_max, used_sum, last_at, total_bytes, used_bytes, free_bytes) \
               SELECT * FROM ",
            daily_arrays!(16, 17, 18, 19, 20, 21, 22, 23, 24, 25),
            " ",
            merge_daily!("LEAST", "GREATEST"),
            " RETURNING 1 \
             ) \
             SELECT (SELECT count(*) FROM raw), (SELECT count(*) FROM hourly), (SELECT count(*) FROM daily)"
        ),
        upsert_sql(&CAPACITY_HOURLY, 6)
    )
});

/// Binds the 8 rollup columns after the key (`samples` … `free_bytes`) of daily rows.
fn bind_rollups<'q, T>(q: Query<'q>, rows: &[T], of: impl Fn(&T) -> &Rollup) -> Query<'q> {
    q.bind(col(rows, |r| of(r).samples))
        .bind(col(rows, |r| of(r).used_min))
        .bind(col(rows, |r| of(r).used_max))
        .bind(col(rows, |r| of(r).used_sum))
        .bind(col(rows, |r| of(r).last_at))
        .bind(col(rows, |r| of(r).total_bytes))
        .bind(col(rows, |r| of(r).used_bytes))
        .bind(col(rows, |r| of(r).free_bytes))
}

fn bind_daily<'q>(q: Query<'q>, d: &[DailyRow]) -> Query<'q> {
    let q = q
        .bind(col(d, |r| r.key.as_str()))
        .bind(col(d, |r| r.period.as_str()));
    bind_rollups(q, d, |r| &r.rollup)
}

/// The PostgreSQL [`Dialect`].
pub(crate) struct Postgres;

impl Dialect for Postgres {
    type Db = sqlx::Postgres;

    async fn begin(pool: &PgPool) -> Result<Transaction<'static, sqlx::Postgres>, sqlx::Error> {
        pool.begin().await
    }

    async fn begin_exclusive(
        pool: &PgPool,
    ) -> Result<Transaction<'static, sqlx::Postgres>, sqlx::Error> {
        let mut tx = pool.begin().await?;
        sqlx::query("SELECT pg_advisory_xact_lock($1)")
            .bind(MIGRATION_LOCK)
            .execute(&mut *tx)
            .await?;
        Ok(tx)
    }

    async fn writer_lock_held(c: &mut PgConnection, pid: i32) -> Result<bool, StoreError> {
        Ok(sqlx::query(
            "SELECT EXISTS (SELECT 1 FROM pg_locks WHERE locktype = 'advisory' AND granted AND pid = $1 \
             AND database = (SELECT oid FROM pg_database WHERE datname = current_database()))",
        )
        .bind(pid)
        .fetch_one(c)
        .await?
        .try_get(0)?)
    }

    async fn insert_dead_letters(c: &mut PgConnection, d: &[DeadRow]) -> Result<u64, StoreError> {
        Ok(sqlx::query(
            "INSERT INTO dead_letters (stream_seq, subject, payload, reason, deliveries, received_at) \
             SELECT * FROM UNNEST($1::bigint[], $2::text[], $3::bytea[], $4::text[], $5::bigint[], $6::bigint[]) \
             ON CONFLICT (stream_seq) DO NOTHING",
        )
        .bind(col(d, |r| r.stream_seq))
        .bind(col(d, |r| r.subject.as_str()))
        .bind(col(d, |r| r.payload.as_slice()))
        .bind(col(d, |r| r.reason.as_str()))
        .bind(col(d, |r| r.deliveries))
        .bind(col(d, |r| r.received_at))
        .execute(c)
        .await?
        .rows_affected())
    }

    async fn insert_events(c: &mut PgConnection, e: &[EventRow]) -> Result<u64, StoreError> {
        Ok(sqlx::query(
            "INSERT INTO events (event_id, system_id, collector_id, observed_at, level, level_rank, category, message, details, http_status, endpoint) \
             SELECT * FROM UNNEST($1::text[], $2::text[], $3::text[], $4::bigint[], $5::text[], $6::smallint[], $7::text[], $8::text[], $9::text[], $10::int[], $11::text[]) \
             ON CONFLICT (event_id) DO NOTHING",
        )
        .bind(col(e, |r| r.event_id.as_str()))
        .bind(col(e, |r| r.system_id.as_str()))
        .bind(col(e, |r| r.collector_id.as_str()))
        .bind(col(e, |r| r.observed_at))
        .bind(col(e, |r| r.level))
        .bind(col(e, |r| r.level_rank))
        .bind(col(e, |r| r.category))
        .bind(col(e, |r| r.message.as_str()))
        .bind(col(e, |r| r.details.as_deref()))
        .bind(col(e, |r| r.http_status))
        .bind(col(e, |r| r.endpoint.as_deref()))
        .execute(c)
        .await?
        .rows_affected())
    }

    async fn upsert_systems(c: &mut PgConnection, s: &[SystemRow]) -> Result<u64, StoreError> {
        Ok(sqlx::query(
            "INSERT INTO systems (id, name, vendor, address, tags, interval_s, enabled, removed, updated_at) \
             SELECT * FROM UNNEST($1::text[], $2::text[], $3::text[], $4::text[], $5::text[], $6::bigint[], $7::bool[], $8::bool[], $9::bigint[]) \
             ON CONFLICT (id) DO UPDATE SET name = EXCLUDED.name, vendor = EXCLUDED.vendor, address = EXCLUDED.address, \
             tags = EXCLUDED.tags, interval_s = EXCLUDED.interval_s, enabled = EXCLUDED.enabled, removed = EXCLUDED.removed, \
             updated_at = EXCLUDED.updated_at WHERE systems.updated_at < EXCLUDED.updated_at",
        )
        .bind(col(s, |r| r.id.as_str()))
        .bind(col(s, |r| r.name.as_str()))
        .bind(col(s, |r| r.vendor))
        .bind(col(s, |r| r.address.as_str()))
        .bind(col(s, |r| r.tags.as_str()))
        .bind(col(s, |r| r.interval_s))
        .bind(col(s, |r| r.enabled))
        .bind(col(s, |r| r.removed))
        .bind(col(s, |r| r.updated_at))
        .execute(c)
        .await?
        .rows_affected())
    }

    async fn upsert_collectors(
        c: &mut PgConnection,
        s: &[CollectorRow],
    ) -> Result<u64, StoreError> {
        Ok(sqlx::query(
            "INSERT INTO collectors (id, version, systems, polls, failures, outbox_depth, started_at, last_seen) \
             SELECT * FROM UNNEST($1::text[], $2::text[], $3::text[], $4::bigint[], $5::bigint[], $6::bigint[], $7::bigint[], $8::bigint[]) \
             ON CONFLICT (id) DO UPDATE SET version = EXCLUDED.version, systems = EXCLUDED.systems, polls = EXCLUDED.polls, \
             failures = EXCLUDED.failures, outbox_depth = EXCLUDED.outbox_depth, started_at = EXCLUDED.started_at, \
             last_seen = EXCLUDED.last_seen WHERE collectors.last_seen < EXCLUDED.last_seen",
        )
        .bind(col(s, |r| r.id.as_str()))
        .bind(col(s, |r| r.version.as_str()))
        .bind(col(s, |r| r.systems.as_str()))
        .bind(col(s, |r| r.polls))
        .bind(col(s, |r| r.failures))
        .bind(col(s, |r| r.outbox_depth))
        .bind(col(s, |r| r.started_at))
        .bind(col(s, |r| r.last_seen))
        .execute(c)
        .await?
        .rows_affected())
    }

    async fn read_stored(c: &mut PgConnection, ids: &[&str]) -> Result<Stored, StoreError> {
        let mut stored = Stored::default();
        for r in sqlx::query(concat!(
            "SELECT system_id, observed_at, status, hardware, cluster, last_online_at, ",
            last_capacity!(),
            " FROM system_state s WHERE system_id = ANY($1::text[])"
        ))
        .bind(ids)
        .fetch_all(&mut *c)
        .await?
        {
            let used: Option<i64> = r.try_get(6)?;
            let total: Option<i64> = r.try_get(7)?;
            let s = StoredState {
                system_id: r.try_get(0)?,
                observed_at: r.try_get(1)?,
                status: r.try_get(2)?,
                hardware: r.try_get(3)?,
                cluster: r.try_get(4)?,
                last_online_at: r.try_get(5)?,
                capacity: used.zip(total),
            };
            stored.states.insert(s.system_id.clone(), s);
        }
        for r in sqlx::query(
            "SELECT id, system_id, alert_id, first_seen, severity, vendor_severity, title, component, opened_at \
             FROM alerts WHERE cleared_at IS NULL AND system_id = ANY($1::text[])",
        )
        .bind(ids)
        .fetch_all(&mut *c)
        .await?
        {
            stored.open_alerts.push(OpenAlertRow {
                id: r.try_get(0)?,
                system_id: r.try_get(1)?,
                alert_id: r.try_get(2)?,
                first_seen: r.try_get(3)?,
                details: Some(AlertDetails {
                    severity: r.try_get(4)?,
                    vendor_severity: r.try_get(5)?,
                    title: r.try_get(6)?,
                    component: r.try_get(7)?,
                    opened_at: r.try_get(8)?,
                }),
            });
        }
        Ok(stored)
    }

    async fn read_system_context(
        c: &mut PgConnection,
        ids: &[&str],
    ) -> Result<HashMap<String, SystemContext>, StoreError> {
        let rows = sqlx::query(
            "SELECT id, CASE WHEN updated_at > 0 THEN name END, tags FROM systems WHERE id = ANY($1::text[])",
        )
        .bind(ids)
        .fetch_all(&mut *c)
        .await?;
        super::outbox::system_contexts(&rows)
    }

    async fn insert_changes(c: &mut PgConnection, o: &[OutboxRow]) -> Result<u64, StoreError> {
        Ok(sqlx::query(
            "INSERT INTO change_outbox (event_id, system_id, kind, payload, created_at) \
             SELECT e, s, k, p, t FROM UNNEST($1::text[], $2::text[], $3::text[], $4::bytea[], $5::bigint[]) \
             WITH ORDINALITY AS u(e, s, k, p, t, n) ORDER BY n \
             ON CONFLICT (event_id) DO NOTHING",
        )
        .bind(col(o, |r| r.event_id.as_str()))
        .bind(col(o, |r| r.system_id.as_str()))
        .bind(col(o, |r| r.kind))
        .bind(col(o, |r| r.payload.as_slice()))
        .bind(col(o, |r| r.created_at))
        .execute(c)
        .await?
        .rows_affected())
    }

    // Operator commands (`super::commands`).

    async fn audited_commands(
        c: &mut PgConnection,
        ids: &[&str],
    ) -> Result<HashSet<String>, StoreError> {
        let rows =
            sqlx::query("SELECT command_id FROM command_audit WHERE command_id = ANY($1::text[])")
                .bind(ids)
                .fetch_all(c)
                .await?;
        Ok(rows
            .iter()
            .map(|r| r.try_get(0))
            .collect::<Result<_, _>>()?)
    }

    async fn command_systems(
        c: &mut PgConnection,
        ids: &[&str],
    ) -> Result<HashMap<String, KnownSystem>, StoreError> {
        let rows = sqlx::query(
            "SELECT u.id, (SELECT vendor FROM systems WHERE id = u.id), \
             (SELECT vendor FROM system_state WHERE system_id = u.id), \
             (SELECT name FROM system_state WHERE system_id = u.id) \
             FROM UNNEST($1::text[]) AS u(id)",
        )
        .bind(ids)
        .fetch_all(c)
        .await?;
        super::commands::known_systems(&rows)
    }

    async fn alert_instances(
        c: &mut PgConnection,
        k: &[(&str, &str, i64)],
    ) -> Result<Vec<InstanceRow>, StoreError> {
        let rows = sqlx::query(concat!(
            "SELECT ",
            instance_columns!(),
            " FROM alerts a JOIN UNNEST($1::text[], $2::text[], $3::bigint[]) AS u(s, k, f) \
             ON a.system_id = u.s AND a.alert_id = u.k AND a.first_seen = u.f"
        ))
        .bind(col(k, |r| r.0))
        .bind(col(k, |r| r.1))
        .bind(col(k, |r| r.2))
        .fetch_all(c)
        .await?;
        super::commands::instance_rows(&rows)
    }

    async fn set_alert_states(
        c: &mut PgConnection,
        a: &[AlertStateRow],
    ) -> Result<u64, StoreError> {
        Ok(sqlx::query(
            "UPDATE alerts SET acknowledged_by = u.ab, acknowledged_at = u.aa, assignee = u.asg, \
             assigned_by = u.asb, assigned_at = u.asa \
             FROM UNNEST($1::bigint[], $2::text[], $3::bigint[], $4::text[], $5::text[], $6::bigint[]) \
             AS u(id, ab, aa, asg, asb, asa) WHERE alerts.id = u.id",
        )
        .bind(col(a, |r| r.id))
        .bind(col(a, |r| r.state.acknowledged_by.as_deref()))
        .bind(col(a, |r| r.state.acknowledged_at))
        .bind(col(a, |r| r.state.assignee.as_deref()))
        .bind(col(a, |r| r.state.assigned_by.as_deref()))
        .bind(col(a, |r| r.state.assigned_at))
        .execute(c)
        .await?
        .rows_affected())
    }

    async fn insert_alert_comments(
        c: &mut PgConnection,
        m: &[CommentRow],
    ) -> Result<u64, StoreError> {
        Ok(sqlx::query(
            "INSERT INTO alert_comments (command_id, system_id, alert_id, opened_at, author, at, body) \
             SELECT i, s, k, o, w, t, b FROM UNNEST($1::text[], $2::text[], $3::text[], $4::bigint[], $5::text[], $6::bigint[], $7::text[]) \
             WITH ORDINALITY AS u(i, s, k, o, w, t, b, n) ORDER BY n \
             ON CONFLICT (command_id) DO NOTHING",
        )
        .bind(col(m, |r| r.command_id.as_str()))
        .bind(col(m, |r| r.system_id.as_str()))
        .bind(col(m, |r| r.alert_id.as_str()))
        .bind(col(m, |r| r.opened_at))
        .bind(col(m, |r| r.author.as_str()))
        .bind(col(m, |r| r.at))
        .bind(col(m, |r| r.body.as_str()))
        .execute(c)
        .await?
        .rows_affected())
    }

    async fn upsert_assignees(
        c: &mut PgConnection,
        n: &[(String, i64)],
    ) -> Result<u64, StoreError> {
        Ok(sqlx::query(
            "INSERT INTO assignees (name, last_used_at) SELECT * FROM UNNEST($1::text[], $2::bigint[]) \
             ON CONFLICT (name) DO UPDATE SET last_used_at = GREATEST(assignees.last_used_at, EXCLUDED.last_used_at)",
        )
        .bind(col(n, |r| r.0.as_str()))
        .bind(col(n, |r| r.1))
        .execute(c)
        .await?
        .rows_affected())
    }

    async fn insert_command_audit(c: &mut PgConnection, a: &[AuditRow]) -> Result<u64, StoreError> {
        Ok(sqlx::query(
            "INSERT INTO command_audit (command_id, kind, system_id, actor, alert_id, alert_opened_at, assignee, comment, \
             issued_at, recorded_at, publisher, outcome, reason) \
             SELECT * FROM UNNEST($1::text[], $2::text[], $3::text[], $4::text[], $5::text[], $6::bigint[], $7::text[], $8::text[], \
             $9::bigint[], $10::bigint[], $11::text[], $12::text[], $13::text[]) \
             ON CONFLICT (command_id) DO NOTHING",
        )
        .bind(col(a, |r| r.command_id.as_str()))
        .bind(col(a, |r| r.kind))
        .bind(col(a, |r| r.system_id.as_str()))
        .bind(col(a, |r| r.actor.as_str()))
        .bind(col(a, |r| r.alert_id.as_deref()))
        .bind(col(a, |r| r.alert_opened_at))
        .bind(col(a, |r| r.assignee.as_deref()))
        .bind(col(a, |r| r.comment.as_deref()))
        .bind(col(a, |r| r.issued_at))
        .bind(col(a, |r| r.recorded_at))
        .bind(col(a, |r| r.publisher.as_str()))
        .bind(col(a, |r| r.outcome))
        .bind(col(a, |r| r.reason))
        .execute(c)
        .await?
        .rows_affected())
    }

    // End of operator commands.

    async fn insert_minimal_systems(
        c: &mut PgConnection,
        m: &[(String, &'static str)],
    ) -> Result<u64, StoreError> {
        Ok(sqlx::query(
            "INSERT INTO systems (id, name, vendor, updated_at) SELECT u.id, u.id, u.vendor, 0 FROM UNNEST($1::text[], $2::text[]) AS u(id, vendor) \
             ON CONFLICT (id) DO NOTHING",
        )
        .bind(col(m, |r| r.0.as_str()))
        .bind(col(m, |r| r.1))
        .execute(c)
        .await?
        .rows_affected())
    }

    async fn upsert_states(c: &mut PgConnection, s: &[StateRow]) -> Result<u64, StoreError> {
        Ok(sqlx::query(
            "INSERT INTO system_state (system_id, event_id, collector_id, observed_at, vendor, status, hardware, cluster, name, version, model, serial, \
             total_bytes, used_bytes, free_bytes, data_reduction, alert_count, components, alerts, poll_ms, error, last_online_at, \
             provisioned_bytes, cluster_type, topology, pools, performance) \
             SELECT * FROM UNNEST($1::text[], $2::text[], $3::text[], $4::bigint[], $5::text[], $6::text[], $7::text[], $8::text[], $9::text[], $10::text[], \
             $11::text[], $12::text[], $13::bigint[], $14::bigint[], $15::bigint[], $16::float8[], $17::int[], $18::text[], $19::text[], $20::bigint[], $21::text[], $22::bigint[], \
             $23::bigint[], $24::text[], $25::text[], $26::text[], $27::text[]) \
             ON CONFLICT (system_id) DO UPDATE SET event_id = EXCLUDED.event_id, collector_id = EXCLUDED.collector_id, observed_at = EXCLUDED.observed_at, \
             vendor = EXCLUDED.vendor, status = EXCLUDED.status, hardware = EXCLUDED.hardware, cluster = EXCLUDED.cluster, name = EXCLUDED.name, \
             version = EXCLUDED.version, model = EXCLUDED.model, serial = EXCLUDED.serial, total_bytes = EXCLUDED.total_bytes, used_bytes = EXCLUDED.used_bytes, \
             free_bytes = EXCLUDED.free_bytes, data_reduction = EXCLUDED.data_reduction, alert_count = EXCLUDED.alert_count, components = EXCLUDED.components, \
             alerts = EXCLUDED.alerts, poll_ms = EXCLUDED.poll_ms, error = EXCLUDED.error, \
             provisioned_bytes = EXCLUDED.provisioned_bytes, cluster_type = EXCLUDED.cluster_type, topology = EXCLUDED.topology, \
             pools = EXCLUDED.pools, performance = EXCLUDED.performance, \
             last_online_at = GREATEST(system_state.last_online_at, EXCLUDED.last_online_at) \
             WHERE system_state.observed_at < EXCLUDED.observed_at",
        )
        .bind(col(s, |r| r.system_id.as_str()))
        .bind(col(s, |r| r.event_id.as_str()))
        .bind(col(s, |r| r.collector_id.as_str()))
        .bind(col(s, |r| r.observed_at))
        .bind(col(s, |r| r.vendor))
        .bind(col(s, |r| r.status))
        .bind(col(s, |r| r.hardware))
        .bind(col(s, |r| r.cluster))
        .bind(col(s, |r| r.name.as_deref()))
        .bind(col(s, |r| r.version.as_deref()))
        .bind(col(s, |r| r.model.as_deref()))
        .bind(col(s, |r| r.serial.as_deref()))
        .bind(col(s, |r| r.total_bytes))
        .bind(col(s, |r| r.used_bytes))
        .bind(col(s, |r| r.free_bytes))
        .bind(col(s, |r| r.data_reduction))
        .bind(col(s, |r| r.alert_count))
        .bind(col(s, |r| r.components.as_str()))
        .bind(col(s, |r| r.alerts.as_str()))
        .bind(col(s, |r| r.poll_ms))
        .bind(col(s, |r| r.error.as_deref()))
        .bind(col(s, |r| r.last_online_at))
        .bind(col(s, |r| r.provisioned_bytes))
        .bind(col(s, |r| r.cluster_type))
        .bind(col(s, |r| r.topology.as_deref()))
        .bind(col(s, |r| r.pools.as_str()))
        .bind(col(s, |r| r.performance.as_deref()))
        .execute(c)
        .await?
        .rows_affected())
    }

    async fn raise_last_online(
        c: &mut PgConnection,
        l: &[(String, i64)],
    ) -> Result<u64, StoreError> {
        Ok(sqlx::query(
            "UPDATE system_state s SET last_online_at = GREATEST(s.last_online_at, u.t) \
             FROM UNNEST($1::text[], $2::bigint[]) AS u(id, t) WHERE s.system_id = u.id",
        )
        .bind(col(l, |r| r.0.as_str()))
        .bind(col(l, |r| r.1))
        .execute(c)
        .await?
        .rows_affected())
    }

    async fn insert_transitions(
        c: &mut PgConnection,
        t: &[TransitionRow],
    ) -> Result<u64, StoreError> {
        Ok(sqlx::query(
            "INSERT INTO status_transitions (system_id, at, field, from_value, to_value, event_id) \
             SELECT * FROM UNNEST($1::text[], $2::bigint[], $3::text[], $4::text[], $5::text[], $6::text[]) \
             ON CONFLICT (event_id, field) DO NOTHING",
        )
        .bind(col(t, |r| r.system_id.as_str()))
        .bind(col(t, |r| r.at))
        .bind(col(t, |r| r.field))
        .bind(col(t, |r| r.from_value.as_deref()))
        .bind(col(t, |r| r.to_value.as_str()))
        .bind(col(t, |r| r.event_id.as_str()))
        .execute(c)
        .await?
        .rows_affected())
    }

    async fn touch_alerts(c: &mut PgConnection, a: &[&AlertEpisode]) -> Result<u64, StoreError> {
        Ok(sqlx::query(
            "UPDATE alerts a SET last_seen = GREATEST(a.last_seen, u.t) \
             FROM UNNEST($1::bigint[], $2::bigint[]) AS u(id, t) WHERE a.id = u.id",
        )
        .bind(col(a, |r| r.existing.unwrap_or(0)))
        .bind(col(a, |r| r.last_seen))
        .execute(c)
        .await?
        .rows_affected())
    }

    async fn update_alerts(c: &mut PgConnection, a: &[&AlertEpisode]) -> Result<u64, StoreError> {
        Ok(sqlx::query(
            concat!(
                "UPDATE alerts SET ",
                update_alert_set!("GREATEST"),
                " FROM UNNEST($1::bigint[], $2::bool[], $3::text[], $4::text[], $5::text[], $6::text[], $7::bigint[], $8::bigint[], $9::bigint[]) \
                 AS u(id, seen, severity, vendor_severity, title, component, opened_at, last_seen, cleared_at) WHERE alerts.id = u.id"
            ),
        )
        .bind(col(a, |r| r.existing.unwrap_or(0)))
        .bind(col(a, |r| r.seen))
        .bind(col(a, |r| r.severity))
        .bind(col(a, |r| r.vendor_severity.as_str()))
        .bind(col(a, |r| r.title.as_str()))
        .bind(col(a, |r| r.component.as_deref()))
        .bind(col(a, |r| r.opened_at))
        .bind(col(a, |r| r.last_seen))
        .bind(col(a, |r| r.cleared_at))
        .execute(c)
        .await?
        .rows_affected())
    }

    async fn insert_alerts(c: &mut PgConnection, a: &[AlertEpisode]) -> Result<u64, StoreError> {
        Ok(sqlx::query(
            "INSERT INTO alerts (system_id, alert_id, severity, vendor_severity, title, component, opened_at, first_seen, last_seen, cleared_at) \
             SELECT * FROM UNNEST($1::text[], $2::text[], $3::text[], $4::text[], $5::text[], $6::text[], $7::bigint[], $8::bigint[], $9::bigint[], $10::bigint[]) \
             ON CONFLICT (system_id, alert_id) WHERE cleared_at IS NULL DO NOTHING",
        )
        .bind(col(a, |r| r.system_id.as_str()))
        .bind(col(a, |r| r.alert_id.as_str()))
        .bind(col(a, |r| r.severity))
        .bind(col(a, |r| r.vendor_severity.as_str()))
        .bind(col(a, |r| r.title.as_str()))
        .bind(col(a, |r| r.component.as_deref()))
        .bind(col(a, |r| r.opened_at))
        .bind(col(a, |r| r.first_seen))
        .bind(col(a, |r| r.last_seen))
        .bind(col(a, |r| r.cleared_at))
        .execute(c)
        .await?
        .rows_affected())
    }

    async fn read_capacity_marks(
        c: &mut PgConnection,
        ids: &[&str],
    ) -> Result<HashMap<String, CapacityMark>, StoreError> {
        let rows = sqlx::query(
            "SELECT u.id, h.last_at, r.observed_at, r.used_bytes, r.total_bytes FROM UNNEST($1::text[]) AS u(id) \
             LEFT JOIN LATERAL (SELECT last_at FROM capacity_hourly WHERE system_id = u.id ORDER BY system_id DESC, hour DESC LIMIT 1) h ON true \
             LEFT JOIN LATERAL (SELECT observed_at, used_bytes, total_bytes FROM capacity_samples WHERE system_id = u.id \
               ORDER BY system_id DESC, observed_at DESC LIMIT 1) r ON true \
             WHERE h.last_at IS NOT NULL OR r.observed_at IS NOT NULL",
        )
        .bind(ids)
        .fetch_all(c)
        .await?;
        let mut marks = HashMap::with_capacity(rows.len());
        for r in rows {
            let hourly: Option<i64> = r.try_get(1)?;
            let at: Option<i64> = r.try_get(2)?;
            let used: Option<i64> = r.try_get(3)?;
            let total: Option<i64> = r.try_get(4)?;
            marks.insert(
                r.try_get(0)?,
                CapacityMark {
                    counted_through: hourly.max(at),
                    last_raw: at.zip(used).zip(total).map(|((a, u), t)| (a, u, t)),
                },
            );
        }
        Ok(marks)
    }

    /// One statement for the three tiers.
    async fn write_capacity(
        c: &mut PgConnection,
        rows: &CapacityRows,
    ) -> Result<TiersWritten, StoreError> {
        let s = &rows.raw;
        let q = sqlx::query(WRITE_CAPACITY.as_str())
            .bind(col(s, |r| r.system_id.as_str()))
            .bind(col(s, |r| r.observed_at))
            .bind(col(s, |r| r.total_bytes))
            .bind(col(s, |r| r.used_bytes))
            .bind(col(s, |r| r.free_bytes));
        let q = bind_columns(q, &CAPACITY_HOURLY, &rows.hourly);
        let row = bind_daily(q, &rows.daily).fetch_one(c).await?;
        let n =
            |i: usize| -> Result<u64, StoreError> { Ok(row.try_get::<i64, _>(i)?.max(0) as u64) };
        Ok(TiersWritten {
            raw: n(0)?,
            hourly: n(1)?,
            daily: n(2)?,
        })
    }

    async fn upsert_rows<R: Sync + 'static>(
        c: &mut PgConnection,
        table: &'static Table<R>,
        rows: &[R],
    ) -> Result<u64, StoreError> {
        let q = sqlx::query(AssertSqlSafe(upsert_sql(table, 1)));
        Ok(bind_columns(q, table, rows)
            .execute(c)
            .await?
            .rows_affected())
    }

    async fn read_counted_through(
        c: &mut PgConnection,
        table: &'static str,
        ids: &[&str],
    ) -> Result<HashMap<String, i64>, StoreError> {
        let sql = format!(
            "SELECT u.id, {} FROM UNNEST($1::text[]) AS u(id)",
            newest_last_at(table, "u.id")
        );
        let rows = sqlx::query(AssertSqlSafe(sql))
            .bind(ids)
            .fetch_all(c)
            .await?;
        let mut out = HashMap::with_capacity(rows.len());
        for r in rows {
            if let Some(at) = r.try_get::<Option<i64>, _>(1)? {
                out.insert(r.try_get(0)?, at);
            }
        }
        Ok(out)
    }

    async fn insert_imported_days(
        c: &mut PgConnection,
        d: &[super::history::ImportedDayRow],
    ) -> Result<u64, StoreError> {
        Ok(sqlx::query(
            "INSERT INTO capacity_daily (system_id, day, samples, used_min, used_max, used_sum, last_at, total_bytes, used_bytes, free_bytes, source) \
             SELECT u.system_id, u.day, 1, u.used, u.used, u.used, u.last_at, u.total, u.used, u.free, 'imported' \
             FROM UNNEST($1::text[], $2::text[], $3::bigint[], $4::bigint[], $5::bigint[], $6::bigint[]) AS u(system_id, day, last_at, total, used, free) \
             ON CONFLICT (system_id, day) DO NOTHING",
        )
        .bind(col(d, |r| r.system_id.as_str()))
        .bind(col(d, |r| r.day.as_str()))
        .bind(col(d, |r| r.last_at))
        .bind(col(d, |r| r.total_bytes))
        .bind(col(d, |r| r.used_bytes))
        .bind(col(d, |r| r.free_bytes))
        .execute(c)
        .await?
        .rows_affected())
    }

    async fn insert_imported_events(
        c: &mut PgConnection,
        e: &[super::history::ImportedEventRow],
    ) -> Result<u64, StoreError> {
        Ok(sqlx::query(
            "INSERT INTO events (event_id, system_id, collector_id, observed_at, level, level_rank, category, message, details, http_status, endpoint, keep) \
             SELECT * FROM UNNEST($1::text[], $2::text[], $3::text[], $4::bigint[], $5::text[], $6::smallint[], $7::text[], $8::text[], $9::text[], $10::int[], $11::text[], $12::bool[]) \
             ON CONFLICT (event_id) DO NOTHING",
        )
        .bind(col(e, |r| r.row.event_id.as_str()))
        .bind(col(e, |r| r.row.system_id.as_str()))
        .bind(col(e, |r| r.row.collector_id.as_str()))
        .bind(col(e, |r| r.row.observed_at))
        .bind(col(e, |r| r.row.level))
        .bind(col(e, |r| r.row.level_rank))
        .bind(col(e, |r| r.row.category))
        .bind(col(e, |r| r.row.message.as_str()))
        .bind(col(e, |r| r.row.details.as_deref()))
        .bind(col(e, |r| r.row.http_status))
        .bind(col(e, |r| r.row.endpoint.as_deref()))
        .bind(col(e, |r| r.keep))
        .execute(c)
        .await?
        .rows_affected())
    }

    fn delete_oldest(table: &str, condition: &str, column: &str) -> String {
        // `ctid = ANY(ARRAY(…))` is a TID scan; `ctid IN (…)` may not be. Without the ORDER BY
        // the planner reads the heap from its start with a filter (a LIMIT "soon" satisfied):
        // once the old rows are gone, or dead and not yet vacuumed, that is the whole table.
        format!(
            "DELETE FROM {table} WHERE ctid = ANY(ARRAY(SELECT ctid FROM {table} WHERE {condition} \
             ORDER BY {column} LIMIT $1)) RETURNING {column}"
        )
    }

    fn delete_hours(table: &str, _key: &[&str]) -> String {
        // By row id, each system's range through LATERAL: `(key) IN (…)`, or a plain join, may
        // be planned as a hash join reading the whole table.
        format!(
            "DELETE FROM {table} WHERE ctid = ANY(ARRAY(SELECT h.ctid FROM systems s CROSS JOIN LATERAL \
             (SELECT ctid FROM {table} WHERE system_id = s.id AND hour < $3 LIMIT $4) h \
             WHERE s.id > $1 AND s.id <= $2 LIMIT $4))"
        )
    }

    fn migrator() -> Migrator {
        super::migrate::migrator(sqlx::migrate!("migrations/postgres"))
    }

    const OLD_BOOKKEEPING: &'static str = "SELECT 1 FROM information_schema.columns WHERE table_schema = current_schema() \
         AND table_name = 'schema_migrations' AND column_name = 'applied_at'";

    async fn after_migrations(_pool: &PgPool) -> Result<(), MigrateError> {
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use sqlx::Connection;

    /// The test PostgreSQL (a primary) behind a port where nothing listens: servers are tried
    /// in order and the first whose session fits is taken.
    #[tokio::test]
    async fn the_first_server_that_fits_is_chosen() {
        let db = sdash_harness::TestDatabase::new(sdash_harness::Backend::Postgres).await;
        let Some(live) = db.server_addr() else {
            panic!("the test database URL names no server address");
        };
        let dead = format!("127.0.0.1:{}", sdash_harness::free_port());
        let url = |attrs: &str| {
            let single = db.url_via(live);
            let (scheme, rest) = single.split_once('@').unwrap_or_default();
            let path = rest.split_once('/').map(|(_, p)| p).unwrap_or_default();
            format!("{scheme}@{dead},{live}/{path}?target_session_attrs={attrs}")
        };
        let choose = |attrs: &'static str| {
            let url = url(attrs);
            async move {
                let parsed = PgUrl::parse(&url).map_err(|e| e.to_string())?;
                let servers =
                    PgServers::new(&parsed, parsed.for_reading(), |u| connect_options(u, None))
                        .map_err(|e| e.to_string())?;
                servers.choose().await.map_err(|e| e.to_string())
            }
        };
        assert_eq!(choose("read-write").await, Ok(1));
        assert_eq!(choose("primary").await, Ok(1));
        assert_eq!(choose("any").await, Ok(1));
        // No standby: prefer-standby takes the primary, standby finds nothing.
        assert_eq!(choose("prefer-standby").await, Ok(1));
        let err = choose("standby").await.err().unwrap_or_default();
        assert!(
            err.contains("offers a standby session")
                && err.contains(&format!("{dead}: "))
                && err.contains(&format!("{live}: a read-write primary")),
            "{err}"
        );

        // The writer opens its store on the live server (after migrations, the schema is there).
        let store = super::super::Store::open(&url("read-write"))
            .await
            .unwrap_or_else(|e| panic!("open: {e}"));
        store.ping().await.unwrap_or_else(|e| panic!("ping: {e}"));
        store.close().await;
        // A writer is never told to use a standby.
        let refused = super::super::Store::open(&url("standby")).await.err();
        assert!(
            refused.is_some_and(|e| e.to_string().contains("needs a server it can write to")),
            "a writer accepted target_session_attrs=standby"
        );
    }

    #[tokio::test]
    async fn connect_options_carry_the_password() {
        let probe = sdash_harness::PasswordProbe::start().await;
        let url = probe.url("sdash");
        // Without a password the client has none to send (the probe still asks).
        let options = connect_options(&probe.url("other"), None).expect("options");
        assert!(sqlx::PgConnection::connect_with(&options).await.is_err());

        let password = Secret::new("pw-from-file s3cret");
        let options = connect_options(&url, Some(&password)).expect("options");
        let err = sqlx::PgConnection::connect_with(&options)
            .await
            .err()
            .map(|e| e.to_string())
            .unwrap_or_default();
        assert_eq!(
            probe.passwords().last().map(String::as_str),
            Some("pw-from-file s3cret")
        );
        assert!(err.contains("password authentication failed"), "{err}");
        assert!(
            !err.contains("s3cret"),
            "the error shows the password: {err}"
        );
    }
}
