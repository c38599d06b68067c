//! history-scale (#15 items 2 and 6): years of capacity history for a large fleet, generated
//! directly into the writer's storage tiers (not in real time, not through the bus), then
//! measured through the real API and the writer's own retention:
//!
//! * database size per system, next to today's storage (one raw sample per poll for the raw
//!   window plus daily rollups), measured on a sample of systems and extrapolated;
//! * the time of a retention pass (the oldest day of raw samples and hourly rollups falling out),
//!   next to today's storage deleting a day of per-poll samples for the whole fleet;
//! * p99 of the 2-year capacity chart of one system and of the fleet grouped by a tag;
//! * fleet-list p99 while the retention pass runs, next to the same without it;
//! * freshness p99 (snapshot published -> visible in the API) while a writer consuming a steady
//!   snapshot flow runs a large retention pass, next to the same writer without one.
//!
//! The history follows a per-system model (growth trend, a daily cycle, noise, a few jumps, for
//! some systems a capacity expansion). Raw samples are simulated poll by poll for the raw window
//! and stored by the writer's deadband / max-gap rule; older hours come from the model in closed
//! form (first and last poll of the hour, the noise bound for min and max). Rows are generated
//! hour by hour for the whole fleet (time-major, as the writer writes them), so that the indexes
//! fill as they would after two years of polling.

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::str::FromStr;
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::Context as _;
use async_nats::jetstream;
use sdash_harness::{Backend, NatsServer, TestDatabase};
use sdash_proto::subjects::Kind;
use sdash_proto::*;
use sdash_writer::{RetentionPolicy, Store};
use sqlx::{Connection, Row as _};
use tokio::sync::{mpsc, watch};

use super::api::{RunningApi, hammer, prober, seed_fleet_range};
use super::writer::{RunningWriter, backend_name, jetstream as connect_jetstream, snapshot_record};
use super::{AckWindow, Options, Report, Row, http_client, percentile};

const HOUR_MS: i64 = 3_600_000;
const DAY_MS: i64 = 86_400_000;
const TIB: f64 = 1_099_511_627_776.0;
const MIB: f64 = 1_048_576.0;

/// The sizes and windows of one run.
#[derive(Debug, Clone)]
struct Shape {
    systems: usize,
    /// Days of history (years × 365).
    days: i64,
    interval_ms: i64,
    /// The writer's windows: raw samples and hourly rollups are kept this many days.
    raw_days: i64,
    hourly_days: i64,
    /// Raw samples and hourly rollups generated beyond the windows: what a retention pass deletes.
    expired_days: i64,
    /// The freshness phase shortens both windows by this many days: a large retention pass.
    shift_days: i64,
    /// Systems of the per-poll baseline (today's storage), measured and extrapolated.
    baseline_systems: usize,
    /// The writer's raw-sample rule: a sample is stored when used or total moved by more than
    /// the deadband since the last stored one, or when the last stored one is `max_gap_ms` old.
    deadband_pct: f64,
    deadband_min_bytes: f64,
    max_gap_ms: i64,
    /// Concurrent clients on a chart, and how long each latency measure runs.
    chart_clients: usize,
    duration: Duration,
    /// Retention rows per statement (the writer's default).
    retention_batch: u32,
    /// Snapshots per second of the steady flow of the freshness phase.
    flow_rate: f64,
    quick: bool,
}

impl Shape {
    fn of(options: &Options) -> Shape {
        let quick = options.quick;
        let years = options.years.unwrap_or(2.0);
        let days = if quick {
            30
        } else {
            ((years * 365.0).round() as i64).max(2)
        };
        let systems = options
            .systems
            .unwrap_or(if quick { 20 } else { 10_000 })
            .max(1);
        let interval_ms = options
            .interval
            .map(|d| d.as_millis() as i64)
            .unwrap_or(60_000)
            .clamp(1000, HOUR_MS);
        let defaults = RetentionPolicy::default();
        // The writer's raw-sample rule by default (deadband, max gap).
        let raw_rule = sdash_writer::RawSamplePolicy::default();
        let (raw_days, hourly_days) = if quick {
            (7, 20)
        } else {
            (
                i64::from(defaults.capacity_raw_days),
                i64::from(defaults.capacity_hourly_days),
            )
        };
        let raw_days = raw_days.min(days);
        let hourly_days = hourly_days.min(days).max(raw_days);
        Shape {
            systems,
            days,
            interval_ms,
            raw_days,
            hourly_days,
            expired_days: 1,
            shift_days: if quick { 2 } else { 7 },
            baseline_systems: options
                .baseline_systems
                .unwrap_or(if quick { 4 } else { 20 })
                .clamp(1, systems),
            deadband_pct: raw_rule.deadband_percent,
            deadband_min_bytes: raw_rule.deadband_bytes as f64,
            max_gap_ms: options
                .raw_max_gap
                .map(|d| d.as_millis() as i64)
                .unwrap_or(raw_rule.max_gap_ms)
                .max(interval_ms),
            chart_clients: 4,
            duration: options
                .duration
                .unwrap_or(Duration::from_secs(if quick { 1 } else { 10 })),
            retention_batch: defaults.batch_rows,
            flow_rate: (systems as f64 * 1000.0 / interval_ms as f64).clamp(1.0, 500.0),
            quick,
        }
    }

    fn polls_per_hour(&self) -> i64 {
        (HOUR_MS / self.interval_ms).max(1)
    }
}

// ---------------------------------------------------------------------------------------------
// The model.

fn splitmix(mut x: u64) -> u64 {
    x = x.wrapping_add(0x9E37_79B9_7F4A_7C15);
    x = (x ^ (x >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    x = (x ^ (x >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    x ^ (x >> 31)
}

/// A uniform number in [0, 1) from a hash.
fn unit(h: u64) -> f64 {
    (h >> 11) as f64 / (1u64 << 53) as f64
}

/// A small deterministic random sequence.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> f64 {
        self.0 = splitmix(self.0);
        unit(self.0)
    }
}

/// One system's capacity over time: a growth trend, a daily cycle, noise, a few jumps (data
/// migrated in or deleted) and for some systems a capacity expansion.
#[derive(Debug, Clone)]
struct Model {
    seed: u64,
    /// Epoch of the trend (start of the history).
    t0: i64,
    /// Poll offset within the interval, so that the fleet's polls spread.
    offset_ms: i64,
    total0: f64,
    expand_at: i64,
    expand_factor: f64,
    used0: f64,
    /// Bytes per ms.
    rate: f64,
    jumps: Vec<(i64, f64)>,
    cycle_amp: f64,
    cycle_phase_ms: i64,
    noise: f64,
}

/// sin over one day, by minute (the daily cycle without a sin per poll).
fn cycle_table() -> Arc<Vec<f64>> {
    Arc::new(
        (0..1440)
            .map(|m| (m as f64 / 1440.0 * std::f64::consts::TAU).sin())
            .collect(),
    )
}

impl Model {
    fn new(system: usize, t0: i64, span_ms: i64, interval_ms: i64) -> Model {
        let seed = splitmix(system as u64 ^ 0x5DA5_4157_0000_0000);
        let mut r = Rng(seed);
        let total0 = ((20.0 + 480.0 * r.next()) * TIB).round();
        let used0 = total0 * (0.15 + 0.4 * r.next());
        // 0.02 % to 0.15 % of the capacity per day; one system in 50 fills up fast.
        let per_day = if system % 50 == 7 {
            0.004
        } else {
            0.0002 + 0.0013 * r.next()
        };
        let rate = total0 * per_day / DAY_MS as f64;
        let jumps = (0..(r.next() * 4.0) as usize)
            .map(|_| {
                let at = t0 + (r.next() * span_ms as f64) as i64;
                let delta = total0 * (-0.05 + 0.13 * r.next());
                (at, delta)
            })
            .collect();
        let (expand_at, expand_factor) = if r.next() < 0.3 {
            (t0 + (r.next() * span_ms as f64) as i64, 1.5)
        } else {
            (i64::MAX, 1.0)
        };
        Model {
            seed,
            t0,
            offset_ms: (splitmix(seed) % interval_ms.max(1) as u64) as i64,
            total0,
            expand_at,
            expand_factor,
            used0,
            rate,
            jumps,
            cycle_amp: total0 * 0.001 * r.next(),
            cycle_phase_ms: (r.next() * DAY_MS as f64) as i64,
            noise: total0 * (0.00002 + 0.0002 * r.next()),
        }
    }

    fn total(&self, t: i64) -> f64 {
        if t >= self.expand_at {
            self.total0 * self.expand_factor
        } else {
            self.total0
        }
    }

    /// Used bytes without the noise at `t`.
    fn trend(&self, t: i64, cycle: &[f64]) -> f64 {
        let mut u = self.used0 + self.rate * (t - self.t0) as f64;
        for &(at, d) in &self.jumps {
            if t >= at {
                u += d;
            }
        }
        let minute = ((t + self.cycle_phase_ms).rem_euclid(DAY_MS) / 60_000) as usize;
        u + self.cycle_amp * cycle[minute.min(1439)]
    }

    fn clamp(&self, u: f64, total: f64) -> f64 {
        u.clamp(total * 0.01, total * 0.985)
    }

    /// The poll at `t` (the k-th of the system): total and used bytes.
    fn poll(&self, t: i64, cycle: &[f64]) -> (i64, i64) {
        let total = self.total(t);
        let n = 2.0 * unit(splitmix(self.seed ^ t as u64)) - 1.0;
        let used = self.clamp(self.trend(t, cycle) + self.noise * n, total);
        (total as i64, used as i64)
    }

    /// One hour's rollup in closed form: the first and last poll of the hour from the trend,
    /// min and max beyond them by the noise bound, the average between them.
    fn hour_closed(&self, hour: i64, polls: i64, interval_ms: i64, cycle: &[f64]) -> HourStats {
        let first = hour + self.offset_ms;
        let last = first + (polls - 1) * interval_ms;
        let total = self.total(last);
        let d0 = self.clamp(self.trend(first, cycle), total);
        let d1 = self.clamp(self.trend(last, cycle), total);
        let h = splitmix(self.seed ^ (hour as u64).wrapping_mul(31));
        let (a, b, c) = (unit(h), unit(splitmix(h)), unit(splitmix(h ^ 1)));
        let min = self.clamp(d0.min(d1) - self.noise * (0.8 + 0.2 * a), total);
        let max = self.clamp(d0.max(d1) + self.noise * (0.8 + 0.2 * b), total);
        let last_used = (d1 + self.noise * (2.0 * c - 1.0)).clamp(min, max);
        HourStats {
            samples: polls,
            min: min as i64,
            max: max as i64,
            sum: (d0 + d1) / 2.0 * polls as f64,
            last_at: last,
            total: total as i64,
            used: last_used as i64,
        }
    }
}

/// One hour (or day) of polls summed up, as the rollup tables hold it.
#[derive(Debug, Clone, Copy)]
struct HourStats {
    samples: i64,
    min: i64,
    max: i64,
    sum: f64,
    last_at: i64,
    total: i64,
    used: i64,
}

impl HourStats {
    fn empty() -> HourStats {
        HourStats {
            samples: 0,
            min: i64::MAX,
            max: i64::MIN,
            sum: 0.0,
            last_at: 0,
            total: 0,
            used: 0,
        }
    }

    fn add(&mut self, o: &HourStats) {
        self.samples += o.samples;
        self.min = self.min.min(o.min);
        self.max = self.max.max(o.max);
        self.sum += o.sum;
        if o.last_at >= self.last_at {
            self.last_at = o.last_at;
            self.total = o.total;
            self.used = o.used;
        }
    }

    fn add_poll(&mut self, t: i64, total: i64, used: i64) {
        self.add(&HourStats {
            samples: 1,
            min: used,
            max: used,
            sum: used as f64,
            last_at: t,
            total,
            used,
        });
    }
}

// ---------------------------------------------------------------------------------------------
// The generator.

/// Which raw samples are stored: the writer's deadband / max-gap rule, or every poll (today).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum RawRule {
    Deadband,
    EveryPoll,
}

/// What one generation writes: for `systems`, raw samples of the polls in `[raw_from, raw_to)`,
/// hourly rollups of the hours from `hourly_from`, daily rollups of the days from `daily_from`,
/// all before `end` (`i64::MAX`: none of that tier).
#[derive(Debug, Clone)]
struct Job {
    systems: std::ops::Range<usize>,
    /// Start of the history (the models' epoch) and its end (an hour boundary).
    start: i64,
    end: i64,
    raw_from: i64,
    raw_to: i64,
    hourly_from: i64,
    daily_from: i64,
    rule: RawRule,
}

#[derive(Default)]
struct Chunk {
    raw: Vec<(u32, i64, i64, i64)>,
    hourly: Vec<(u32, i64, HourStats)>,
    daily: Vec<(u32, i64, HourStats)>,
}

impl Chunk {
    fn rows(&self) -> usize {
        self.raw.len() + self.hourly.len() + self.daily.len()
    }
}

/// Rows written per tier.
#[derive(Debug, Default, Clone, Copy)]
struct Written {
    raw: u64,
    hourly: u64,
    daily: u64,
}

impl Written {
    fn total(&self) -> u64 {
        self.raw + self.hourly + self.daily
    }
}

/// Runs `job` on a thread of its own, sending chunks of rows to `tx`.
fn generate(shape: Shape, job: Job, tx: mpsc::Sender<Chunk>) -> anyhow::Result<()> {
    let cycle = cycle_table();
    let span = job.end - job.start;
    let models: Vec<Model> = job
        .systems
        .clone()
        .map(|s| Model::new(s, job.start, span, shape.interval_ms))
        .collect();
    let polls = shape.polls_per_hour();
    let iv = shape.interval_ms;
    let first_hour = job
        .raw_from
        .min(job.hourly_from)
        .min(job.daily_from.div_euclid(DAY_MS) * DAY_MS)
        .max(job.start)
        .div_euclid(HOUR_MS)
        * HOUR_MS;
    let last_hour = job.end.min(
        if job.hourly_from == i64::MAX && job.daily_from == i64::MAX {
            job.raw_to
        } else {
            job.end
        },
    );
    // Per system: the last stored raw sample (at, total, used), the day being summed up.
    let mut last_raw: Vec<Option<(i64, i64, i64)>> = vec![None; models.len()];
    let mut days: Vec<HourStats> = vec![HourStats::empty(); models.len()];
    let mut chunk = Chunk::default();
    let mut hour = first_hour;
    while hour < last_hour {
        let day = hour.div_euclid(DAY_MS) * DAY_MS;
        let day_ends = hour + HOUR_MS >= day + DAY_MS || hour + HOUR_MS >= last_hour;
        let simulate = hour + HOUR_MS > job.raw_from && hour < job.raw_to;
        for (i, m) in models.iter().enumerate() {
            let idx = (job.systems.start + i) as u32;
            let stats = if simulate {
                let mut st = HourStats::empty();
                for k in 0..polls {
                    let t = hour + m.offset_ms + k * iv;
                    let (total, used) = m.poll(t, &cycle);
                    st.add_poll(t, total, used);
                    if t < job.raw_from || t >= job.raw_to {
                        continue;
                    }
                    let store = match (job.rule, last_raw[i]) {
                        (RawRule::EveryPoll, _) | (_, None) => true,
                        (RawRule::Deadband, Some((at, lt, lu))) => {
                            // The band of the last stored sample, as the writer has it.
                            let band = (shape.deadband_pct / 100.0 * lt as f64)
                                .max(shape.deadband_min_bytes);
                            (used - lu).abs() as f64 > band
                                || (total - lt).abs() as f64 > band
                                || t - at >= shape.max_gap_ms
                        }
                    };
                    if store {
                        last_raw[i] = Some((t, total, used));
                        chunk.raw.push((idx, t, total, used));
                    }
                }
                st
            } else {
                m.hour_closed(hour, polls, iv, &cycle)
            };
            if hour >= job.hourly_from {
                chunk.hourly.push((idx, hour, stats));
            }
            if day + DAY_MS > job.daily_from {
                days[i].add(&stats);
                if day_ends {
                    chunk.daily.push((idx, day, days[i]));
                    days[i] = HourStats::empty();
                }
            }
        }
        hour += HOUR_MS;
        if chunk.rows() >= 200_000 || hour >= last_hour {
            let full = std::mem::take(&mut chunk);
            if full.rows() > 0 && tx.blocking_send(full).is_err() {
                anyhow::bail!("the database side stopped");
            }
        }
    }
    Ok(())
}

// ---------------------------------------------------------------------------------------------
// Writing the rows.

fn system_id(i: u32) -> String {
    format!("arr-{i:05}")
}

enum Sink {
    Sqlite(SqliteSink),
    Postgres(sqlx::PgConnection),
}

/// Rows a SQLite sink writes per transaction: with no journal, a commit writes out every page the
/// transaction dirtied (about one leaf per system and table, time-major), so commits are rare.
const SQLITE_COMMIT_ROWS: usize = 4_000_000;

/// The SQLite side of the generator: one connection that owns the file while it loads (exclusive
/// lock, no journal, no sync: a crash only loses a benchmark's scratch file) and puts the file back
/// in WAL mode, as the writer runs it, when it closes.
struct SqliteSink {
    conn: sqlx::SqliteConnection,
    /// `arr-NNNNN` per system index, made once (bound by reference count, not copied per row).
    ids: Vec<Arc<str>>,
    /// The multi-row INSERT per (table, rows), made once.
    sql: std::collections::HashMap<(&'static str, usize), Arc<str>>,
    /// Rows written in the open transaction (none open when 0).
    pending: usize,
}

impl SqliteSink {
    async fn open(db: &TestDatabase, systems: usize) -> anyhow::Result<SqliteSink> {
        use sqlx::sqlite::{SqliteConnectOptions, SqliteLockingMode, SqliteSynchronous};
        let opts = SqliteConnectOptions::from_str(&db.url)?
            .locking_mode(SqliteLockingMode::Exclusive)
            .synchronous(SqliteSynchronous::Off)
            .busy_timeout(Duration::from_secs(60))
            .pragma("cache_size", "-1048576")
            .pragma("temp_store", "memory");
        let mut conn = sqlx::SqliteConnection::connect_with(&opts).await?;
        // Leaving WAL needs every other connection gone; when one lingers, load in WAL (slower).
        let mode: String = sqlx::query_scalar("PRAGMA journal_mode = OFF")
            .fetch_one(&mut conn)
            .await?;
        if !mode.eq_ignore_ascii_case("off") {
            println!("   (SQLite stays in {mode} mode while loading: another connection is open)");
        }
        Ok(SqliteSink {
            conn,
            ids: (0..systems as u32)
                .map(|i| Arc::from(system_id(i)))
                .collect(),
            sql: Default::default(),
            pending: 0,
        })
    }

    fn id(&self, s: u32) -> Arc<str> {
        self.ids
            .get(s as usize)
            .cloned()
            .unwrap_or_else(|| Arc::from(system_id(s)))
    }

    fn insert_sql(
        &mut self,
        table: &'static str,
        cols: &str,
        ncols: usize,
        rows: usize,
    ) -> Arc<str> {
        self.sql
            .entry((table, rows))
            .or_insert_with(|| Arc::from(values_sql(table, cols, ncols, rows)))
            .clone()
    }

    /// Multi-row prepared INSERTs (at most 32,766 parameters each) in the open transaction.
    async fn write(&mut self, chunk: &Chunk) -> anyhow::Result<()> {
        if self.pending == 0 {
            sqlx::raw_sql("BEGIN").execute(&mut self.conn).await?;
        }
        for part in chunk.raw.chunks(6000) {
            let sql = self.insert_sql("capacity_samples", RAW_COLS, 5, part.len());
            let mut q = sqlx::query(sqlx::AssertSqlSafe(sql)).persistent(true);
            for &(s, t, total, used) in part {
                q = q
                    .bind(self.id(s))
                    .bind(t)
                    .bind(total)
                    .bind(used)
                    .bind(total - used);
            }
            q.execute(&mut self.conn).await?;
        }
        for (table, rows, is_day) in [
            ("capacity_hourly", &chunk.hourly, false),
            ("capacity_daily", &chunk.daily, true),
        ] {
            let cols = if is_day { DAILY_COLS } else { HOURLY_COLS };
            for part in rows.chunks(3000) {
                let sql = self.insert_sql(table, cols, 10, part.len());
                let mut q = sqlx::query(sqlx::AssertSqlSafe(sql)).persistent(true);
                for (s, at, st) in part {
                    q = q.bind(self.id(*s));
                    q = if is_day {
                        q.bind(sdash_writer::store::utc_day(*at))
                    } else {
                        q.bind(*at)
                    };
                    q = q
                        .bind(st.samples)
                        .bind(st.min)
                        .bind(st.max)
                        .bind(st.sum)
                        .bind(st.last_at)
                        .bind(st.total)
                        .bind(st.used)
                        .bind(st.total - st.used);
                }
                q.execute(&mut self.conn).await?;
            }
        }
        self.pending += chunk.rows();
        if self.pending >= SQLITE_COMMIT_ROWS {
            self.commit().await?;
        }
        Ok(())
    }

    async fn commit(&mut self) -> anyhow::Result<()> {
        if self.pending > 0 {
            sqlx::raw_sql("COMMIT").execute(&mut self.conn).await?;
            self.pending = 0;
        }
        Ok(())
    }

    /// Commits, and puts the file back in WAL mode (what the writer and the API run it in).
    async fn finish(mut self) -> anyhow::Result<()> {
        self.commit().await?;
        let mode: String = sqlx::query_scalar("PRAGMA journal_mode = WAL")
            .fetch_one(&mut self.conn)
            .await?;
        anyhow::ensure!(
            mode.eq_ignore_ascii_case("wal"),
            "the loaded SQLite file did not go back to WAL mode ({mode})"
        );
        self.conn.close().await?;
        Ok(())
    }
}

impl Sink {
    async fn open(db: &TestDatabase, systems: usize) -> anyhow::Result<Sink> {
        Ok(match db.backend {
            Backend::Sqlite => Sink::Sqlite(SqliteSink::open(db, systems).await?),
            Backend::Postgres => {
                let mut c = sqlx::PgConnection::connect(&db.url).await?;
                sqlx::query("SET synchronous_commit = off")
                    .execute(&mut c)
                    .await?;
                Sink::Postgres(c)
            }
        })
    }

    async fn write(&mut self, chunk: &Chunk) -> anyhow::Result<()> {
        match self {
            Sink::Sqlite(c) => c.write(chunk).await,
            Sink::Postgres(c) => pg_write(c, chunk).await,
        }
    }

    async fn finish(self) -> anyhow::Result<()> {
        match self {
            Sink::Sqlite(c) => c.finish().await,
            Sink::Postgres(c) => Ok(c.close().await?),
        }
    }
}

const RAW_COLS: &str = "system_id, observed_at, total_bytes, used_bytes, free_bytes";
const HOURLY_COLS: &str = "system_id, hour, samples, used_min, used_max, used_sum, last_at, total_bytes, used_bytes, free_bytes";
const DAILY_COLS: &str = "system_id, day, samples, used_min, used_max, used_sum, last_at, total_bytes, used_bytes, free_bytes";

fn values_sql(table: &str, cols: &str, ncols: usize, rows: usize) -> String {
    let mut s = format!("INSERT INTO {table} ({cols}) VALUES ");
    for r in 0..rows {
        if r > 0 {
            s.push(',');
        }
        s.push('(');
        for c in 0..ncols {
            if c > 0 {
                s.push(',');
            }
            // Anonymous parameters: SQLite looks each numbered one up among the earlier ones.
            s.push('?');
        }
        s.push(')');
    }
    s
}

/// PostgreSQL: COPY in text format, one transaction per chunk.
async fn pg_write(c: &mut sqlx::PgConnection, chunk: &Chunk) -> anyhow::Result<()> {
    let mut tx = c.begin().await?;
    if !chunk.raw.is_empty() {
        let mut buf = String::with_capacity(chunk.raw.len() * 64);
        for &(s, t, total, used) in &chunk.raw {
            let _ = writeln!(
                buf,
                "{}\t{t}\t{total}\t{used}\t{}",
                system_id(s),
                total - used
            );
        }
        copy(&mut tx, "capacity_samples", RAW_COLS, buf).await?;
    }
    for (table, rows, is_day) in [
        ("capacity_hourly", &chunk.hourly, false),
        ("capacity_daily", &chunk.daily, true),
    ] {
        if rows.is_empty() {
            continue;
        }
        let mut buf = String::with_capacity(rows.len() * 128);
        for (s, at, st) in rows.iter() {
            let key = if is_day {
                sdash_writer::store::utc_day(*at)
            } else {
                at.to_string()
            };
            let _ = writeln!(
                buf,
                "{}\t{key}\t{}\t{}\t{}\t{}\t{}\t{}\t{}\t{}",
                system_id(*s),
                st.samples,
                st.min,
                st.max,
                st.sum,
                st.last_at,
                st.total,
                st.used,
                st.total - st.used
            );
        }
        copy(
            &mut tx,
            table,
            if is_day { DAILY_COLS } else { HOURLY_COLS },
            buf,
        )
        .await?;
    }
    tx.commit().await?;
    Ok(())
}

async fn copy(
    c: &mut sqlx::PgConnection,
    table: &str,
    cols: &str,
    data: String,
) -> anyhow::Result<()> {
    let mut copy = c
        .copy_in_raw(&format!("COPY {table} ({cols}) FROM STDIN"))
        .await?;
    for part in data.as_bytes().chunks(1 << 20) {
        copy.send(part).await?;
    }
    copy.finish().await?;
    Ok(())
}

/// Generates `job` into `db`; the rows written and the seconds it took.
async fn run_job(shape: &Shape, db: &TestDatabase, job: Job) -> anyhow::Result<(Written, f64)> {
    let started = Instant::now();
    let (tx, mut rx) = mpsc::channel::<Chunk>(2);
    let (shape2, job2) = (shape.clone(), job.clone());
    let producer = tokio::task::spawn_blocking(move || generate(shape2, job2, tx));
    let mut sink = Sink::open(db, shape.systems).await?;
    let mut written = Written::default();
    let mut last_print = Instant::now();
    while let Some(chunk) = rx.recv().await {
        sink.write(&chunk).await.context("writing generated rows")?;
        written.raw += chunk.raw.len() as u64;
        written.hourly += chunk.hourly.len() as u64;
        written.daily += chunk.daily.len() as u64;
        if last_print.elapsed() > Duration::from_secs(30) {
            last_print = Instant::now();
            println!(
                "   ... {} rows in {:.0} s",
                written.total(),
                started.elapsed().as_secs_f64()
            );
        }
    }
    producer.await??;
    sink.finish()
        .await
        .context("finishing the generated rows")?;
    Ok((written, started.elapsed().as_secs_f64()))
}

// ---------------------------------------------------------------------------------------------
// Measuring the database.

async fn exec(db: &TestDatabase, sql: &str) -> anyhow::Result<()> {
    let q = sqlx::AssertSqlSafe(sql.to_owned());
    match db.backend {
        Backend::Sqlite => {
            let mut c = sqlx::SqliteConnection::connect(&db.url).await?;
            sqlx::raw_sql(q).execute(&mut c).await?;
            let _ = c.close().await;
        }
        Backend::Postgres => {
            let mut c = sqlx::PgConnection::connect(&db.url).await?;
            sqlx::raw_sql(q).execute(&mut c).await?;
            let _ = c.close().await;
        }
    }
    Ok(())
}

/// The size of the database in bytes, and per table (with its indexes) where the backend says.
async fn db_size(db: &TestDatabase) -> anyhow::Result<(f64, BTreeMap<String, f64>)> {
    let mut tables = BTreeMap::new();
    match db.backend {
        Backend::Sqlite => {
            let mut c = sqlx::SqliteConnection::connect(&db.url).await?;
            sqlx::query("PRAGMA wal_checkpoint(TRUNCATE)")
                .execute(&mut c)
                .await?;
            let pages: i64 = sqlx::query("PRAGMA page_count")
                .fetch_one(&mut c)
                .await?
                .try_get(0)?;
            let free: i64 = sqlx::query("PRAGMA freelist_count")
                .fetch_one(&mut c)
                .await?
                .try_get(0)?;
            let size: i64 = sqlx::query("PRAGMA page_size")
                .fetch_one(&mut c)
                .await?
                .try_get(0)?;
            // Per table and index, where SQLite was built with the dbstat table.
            if let Ok(rows) = sqlx::query(
                "SELECT coalesce(m.tbl_name, d.name), SUM(d.pgsize) FROM dbstat d \
                 LEFT JOIN sqlite_master m ON m.name = d.name GROUP BY 1",
            )
            .fetch_all(&mut c)
            .await
            {
                for r in rows {
                    let (name, bytes): (String, i64) = (r.try_get(0)?, r.try_get(1)?);
                    tables.insert(name, bytes as f64);
                }
            }
            let _ = c.close().await;
            Ok((((pages - free) * size) as f64, tables))
        }
        Backend::Postgres => {
            let mut c = sqlx::PgConnection::connect(&db.url).await?;
            let total: i64 = sqlx::query("SELECT pg_database_size(current_database())")
                .fetch_one(&mut c)
                .await?
                .try_get(0)?;
            let rows = sqlx::query(
                "SELECT c.relname::text, pg_total_relation_size(c.oid) FROM pg_class c \
                 JOIN pg_namespace n ON n.oid = c.relnamespace \
                 WHERE n.nspname = current_schema() AND c.relkind = 'r'",
            )
            .fetch_all(&mut c)
            .await?;
            for r in rows {
                let (name, bytes): (String, i64) = (r.try_get(0)?, r.try_get(1)?);
                tables.insert(name, bytes as f64);
            }
            let _ = c.close().await;
            Ok((total as f64, tables))
        }
    }
}

fn capacity_bytes(tables: &BTreeMap<String, f64>) -> f64 {
    tables
        .iter()
        .filter(|(k, _)| k.starts_with("capacity_"))
        .map(|(_, v)| v)
        .sum()
}

/// After loading: statistics for the planner (and on PostgreSQL the visibility map), as the
/// server's autovacuum would have them after two years.
async fn settle(db: &TestDatabase) -> anyhow::Result<()> {
    match db.backend {
        Backend::Sqlite => exec(db, "PRAGMA analysis_limit = 2000; ANALYZE").await,
        Backend::Postgres => exec(db, "VACUUM (ANALYZE)").await,
    }
}

async fn table_exists(db: &TestDatabase, table: &str) -> bool {
    let sql = match db.backend {
        Backend::Sqlite => {
            format!("SELECT COUNT(*) FROM sqlite_master WHERE type = 'table' AND name = '{table}'")
        }
        Backend::Postgres => format!(
            "SELECT COUNT(*) FROM information_schema.tables WHERE table_schema = current_schema() AND table_name = '{table}'"
        ),
    };
    super::writer::count(db, &sql).await.unwrap_or(0) > 0
}

// ---------------------------------------------------------------------------------------------
// Requests.

fn rfc(ms: i64) -> String {
    format_ms(ms).replace(':', "%3A").replace('+', "%2B")
}

/// One GET read to the end and parsed: its latency and body size.
async fn get_json(
    client: &reqwest::Client,
    url: &str,
) -> anyhow::Result<(f64, usize, serde_json::Value)> {
    let t = Instant::now();
    let resp = client.get(url).send().await?.error_for_status()?;
    let body = resp.bytes().await?;
    let ms = t.elapsed().as_secs_f64() * 1000.0;
    Ok((ms, body.len(), serde_json::from_slice(&body)?))
}

/// `clients` readers of `url` until `stop` turns true; latencies (ms) and errors.
async fn read_until(
    client: &reqwest::Client,
    url: String,
    clients: usize,
    stop: watch::Receiver<bool>,
) -> (Vec<f64>, u64) {
    let tasks: Vec<_> = (0..clients)
        .map(|_| {
            let (client, url, stop) = (client.clone(), url.clone(), stop.clone());
            tokio::spawn(async move {
                let mut lat = Vec::new();
                let mut errors = 0u64;
                while !*stop.borrow() {
                    let t = Instant::now();
                    let ok = match client.get(&url).send().await {
                        Ok(r) => r.status().is_success() && r.bytes().await.is_ok(),
                        Err(_) => false,
                    };
                    if ok {
                        lat.push(t.elapsed().as_secs_f64() * 1000.0);
                    } else {
                        errors += 1;
                    }
                }
                (lat, errors)
            })
        })
        .collect();
    let mut all = Vec::new();
    let mut errors = 0;
    for t in tasks {
        if let Ok((l, e)) = t.await {
            all.extend(l);
            errors += e;
        }
    }
    (all, errors)
}

struct Latency {
    p50: f64,
    p99: f64,
    n: usize,
    errors: u64,
}

fn latency(mut samples: Vec<f64>, errors: u64) -> Latency {
    Latency {
        p50: percentile(&mut samples, 50.0),
        p99: percentile(&mut samples, 99.0),
        n: samples.len(),
        errors,
    }
}

// ---------------------------------------------------------------------------------------------
// The scenario.

pub(crate) async fn history_scale(options: &Options, report: &mut Report) -> anyhow::Result<()> {
    let shape = Shape::of(options);
    println!(
        "-- {} systems x {} days every {} s; raw window {} d, hourly {} d (+{} d to expire); deadband {} % (min {} bytes), max gap {} s",
        shape.systems,
        shape.days,
        shape.interval_ms / 1000,
        shape.raw_days,
        shape.hourly_days,
        shape.expired_days,
        shape.deadband_pct,
        shape.deadband_min_bytes,
        shape.max_gap_ms / 1000
    );
    for backend in options.backends_or(&[Backend::Sqlite, Backend::Postgres]) {
        let baseline = baseline_storage(&shape, backend, report).await?;
        tiered(&shape, backend, &baseline, report).await?;
    }
    report.note(format!(
        "History generated directly (no bus): per system a growth trend (0.02-0.15 %/day, one in 50 at 0.4 %/day), a daily cycle, \
         noise, 0-3 jumps of -5..+8 % and for 30 % a capacity expansion; polls every {} s simulated one by one for the raw window \
         (stored by the writer's rule: used or total moved by more than {} % of total, at least {} bytes, or {} s since the last \
         stored sample), older hours in closed form (first and last poll of the hour from the trend, min/max by the noise bound). \
         Rows are inserted hour by hour for the whole fleet, as the writer writes them, so the indexes fill as after two years of \
         polling. Sizes: SQLite (page_count - freelist_count) x page_size after a checkpoint, PostgreSQL pg_database_size and \
         pg_total_relation_size after VACUUM ANALYZE.",
        shape.interval_ms / 1000,
        shape.deadband_pct,
        shape.deadband_min_bytes,
        shape.max_gap_ms / 1000
    ));
    report.note(format!(
        "Baseline (today's storage: one raw sample per poll for {} days plus daily rollups): {} systems x {} polls/day x {} days \
         cannot be materialized here for the whole fleet, so it is measured on {} systems with the same model and extrapolated per \
         system; its retention pass (one day of per-poll samples of every system) is measured at full fleet size: one expired day of \
         per-poll samples generated for every system and deleted by the writer's retention.",
        shape.raw_days,
        shape.systems,
        DAY_MS / shape.interval_ms,
        shape.raw_days,
        shape.baseline_systems
    ));
    report.note(
        "Charts through the API's HTTP routes (what users get): GET /api/v1/systems/{id}/capacity?from=&to= (2 years, random \
         systems) and GET /api/v1/capacity/history?group_by=environment&from=&to=, clients interleaved in rounds with GET /healthz \
         of the same server as the static baseline. Retention: Store::apply_retention (the writer's code) with the writer's \
         windows, while 16 clients read the fleet list (GET /api/v1/systems). Freshness: a writer consuming a steady snapshot flow \
         (the fleet's own rate, at most 500/s), 4 probers publishing a snapshot and polling GET /api/v1/systems/{id} until it \
         shows, first with nothing to delete, then restarted with both windows shortened (a large retention pass).",
    );
    Ok(())
}

/// What the baseline measured, for the tiered rows' ratios.
struct Baseline {
    bytes_per_system: f64,
    capacity_bytes_per_system: f64,
    retention_secs: f64,
    retention_rows: u64,
    chart_p99: f64,
}

/// Today's storage: one raw sample per poll for the raw window plus daily rollups, on
/// `baseline_systems` systems; then one expired day of per-poll samples for the whole fleet and
/// the retention pass that deletes it.
async fn baseline_storage(
    shape: &Shape,
    backend: Backend,
    report: &mut Report,
) -> anyhow::Result<Baseline> {
    let name = backend_name(backend);
    let case = format!("{name} baseline: per-poll raw + daily");
    let b = shape.baseline_systems;
    println!("-- {case}: {b} systems");
    let db = TestDatabase::new(backend).await;
    let store = Store::open(&db.url).await?;
    let mut seq = 0;
    // The whole fleet's inventory first (the retention pass below needs it), history for `b`.
    seed_fleet_range(&store, backend, 0..shape.systems, &mut seq).await?;
    store.close().await;
    clear_capacity(&db).await?;
    let end = now_ms().div_euclid(HOUR_MS) * HOUR_MS;
    let start = end - shape.days * DAY_MS;
    let job = Job {
        systems: 0..b,
        start,
        end,
        raw_from: end - shape.raw_days * DAY_MS,
        raw_to: end,
        hourly_from: i64::MAX,
        daily_from: start,
        rule: RawRule::EveryPoll,
    };
    let (written, secs) = run_job(shape, &db, job).await?;
    settle(&db).await?;
    let (bytes, tables) = db_size(&db).await?;
    let cap_per_system = capacity_bytes(&tables) / b as f64;
    // The capacity history of the sample per system, the other tables per fleet system.
    let per_system = if tables.is_empty() {
        bytes / b as f64
    } else {
        cap_per_system + (bytes - capacity_bytes(&tables)) / shape.systems as f64
    };
    report.push(Row::new(
        &case,
        "rows generated",
        written.total() as f64,
        "rows",
    ));
    report.push(Row::new(&case, "generation time", secs, "s"));
    report.push(Row::new(
        &case,
        "raw samples per system",
        written.raw as f64 / b as f64,
        "rows",
    ));
    report.push(Row::new(
        &case,
        "database size per system (measured)",
        per_system / MIB,
        "MiB",
    ));
    if !tables.is_empty() {
        report.push(Row::new(
            &case,
            "capacity tables per system",
            cap_per_system / MIB,
            "MiB",
        ));
    }
    let history_per_system = if tables.is_empty() {
        per_system
    } else {
        cap_per_system
    };
    report.push(Row::new(
        &case,
        &format!("capacity history, {} systems (extrapolated)", shape.systems),
        history_per_system * shape.systems as f64 / (1024.0 * MIB),
        "GiB",
    ));
    // The chart of one system on today's storage, the same route.
    let chart_p99 = {
        let api = RunningApi::start(&db.url).await?;
        let paths: Vec<String> = (0..b)
            .map(|s| {
                format!(
                    "/api/v1/systems/{}/capacity?from={}&to={}",
                    system_id(s as u32),
                    rfc(start),
                    rfc(end)
                )
            })
            .collect();
        let paths_first = paths[0].clone();
        let client = http_client()?;
        let (lat, errors) = hammer(
            &client,
            &format!("http://{}", api.addr),
            Arc::new(paths),
            shape.chart_clients,
            shape.duration,
        )
        .await?;
        let l = latency(lat, errors);
        let tier = match get_json(&client, &api.url(&paths_first)).await {
            Ok((_, _, v)) => v
                .get("tier")
                .or_else(|| v.get("resolution"))
                .and_then(|r| r.as_str())
                .unwrap_or("?")
                .to_owned(),
            Err(e) => format!("error: {e}"),
        };
        report.push(Row::new(
            &case,
            &format!("2-year chart of one system p99 ({tier})"),
            l.p99,
            "ms",
        ));
        report.push(
            Row::new(&case, "chart errors", l.errors as f64, "").target("= 0", l.errors == 0),
        );
        l.p99
    };
    // Retention at fleet size: one expired day of per-poll samples for every system.
    let expired_from = end - (shape.raw_days + shape.expired_days) * DAY_MS;
    let job = Job {
        systems: 0..shape.systems,
        start,
        end,
        raw_from: expired_from,
        raw_to: end - shape.raw_days * DAY_MS,
        hourly_from: i64::MAX,
        daily_from: i64::MAX,
        rule: RawRule::EveryPoll,
    };
    let (expired, secs) = run_job(shape, &db, job).await?;
    println!(
        "   {} expired per-poll samples for {} systems generated in {secs:.1} s",
        expired.raw, shape.systems
    );
    settle(&db).await?;
    let (retention_secs, deleted) = retention_pass(shape, &db, 0, &case, report, None).await?;
    report.push(
        Row::new(
            &case,
            &format!("retention pass, {} systems", shape.systems),
            retention_secs,
            "s",
        )
        .vs("rows deleted", deleted as f64),
    );
    Ok(Baseline {
        bytes_per_system: per_system,
        capacity_bytes_per_system: cap_per_system,
        retention_secs,
        retention_rows: deleted,
        chart_p99,
    })
}

async fn clear_capacity(db: &TestDatabase) -> anyhow::Result<()> {
    let mut sql = String::from("DELETE FROM capacity_samples; DELETE FROM capacity_daily;");
    if table_exists(db, "capacity_hourly").await {
        sql.push_str(" DELETE FROM capacity_hourly;");
    }
    exec(db, &sql).await
}

/// The writer's retention policy for `shape`, windows shortened by `shift_days`.
fn policy(shape: &Shape, shift_days: i64) -> RetentionPolicy {
    RetentionPolicy {
        event_retention_days: 0,
        events_per_system: 0,
        capacity_raw_days: (shape.raw_days - shift_days).max(1) as u32,
        capacity_hourly_days: (shape.hourly_days - shift_days).max(1) as u32,
        dead_letter_days: 0,
        batch_rows: shape.retention_batch,
        ..RetentionPolicy::default()
    }
}

/// One retention pass by the writer's code while 16 clients read the fleet list; before it, the
/// same readers for `shape.duration` without it (the baseline). Returns the pass's seconds and
/// rows deleted; pushes the fleet-list rows when `api` is given.
async fn retention_pass(
    shape: &Shape,
    db: &TestDatabase,
    shift_days: i64,
    case: &str,
    report: &mut Report,
    api: Option<&RunningApi>,
) -> anyhow::Result<(f64, u64)> {
    let client = http_client()?;
    let list_url = api.map(|a| a.url("/api/v1/systems"));
    let idle = match &list_url {
        Some(url) => {
            let (tx, rx) = watch::channel(false);
            let readers = tokio::spawn({
                let (client, url) = (client.clone(), url.clone());
                async move { read_until(&client, url, 16, rx).await }
            });
            tokio::time::sleep(shape.duration).await;
            let _ = tx.send(true);
            let (lat, errors) = readers.await?;
            Some(latency(lat, errors))
        }
        None => None,
    };
    let store = Store::open(&db.url).await?;
    let (tx, rx) = watch::channel(false);
    let readers = list_url.clone().map(|url| {
        let client = client.clone();
        tokio::spawn(async move { read_until(&client, url, 16, rx).await })
    });
    let started = Instant::now();
    let outcome = store.apply_retention(&policy(shape, shift_days)).await;
    let secs = started.elapsed().as_secs_f64();
    let _ = tx.send(true);
    store.close().await;
    let outcome = outcome.context("retention")?;
    if let (Some(readers), Some(idle)) = (readers, idle) {
        let (lat, errors) = readers.await?;
        let during = latency(lat, errors);
        report.push(
            Row::new(case, "fleet list p50 during retention", during.p50, "ms")
                .vs("without retention", idle.p50),
        );
        report.push(
            Row::new(case, "fleet list p99 during retention", during.p99, "ms")
                .vs("without retention", idle.p99)
                .target(
                    "< 50 ms",
                    during.p99 < 50.0 && during.errors == 0 && during.n > 0,
                ),
        );
        report.push(
            Row::new(
                case,
                "fleet list requests during retention",
                during.n as f64,
                "",
            )
            .vs("errors", (during.errors + idle.errors) as f64),
        );
    }
    Ok((secs, outcome.total()))
}

/// The tiered storage: generated, measured, charted, retention, freshness.
async fn tiered(
    shape: &Shape,
    backend: Backend,
    base: &Baseline,
    report: &mut Report,
) -> anyhow::Result<()> {
    let name = backend_name(backend);
    let case = format!("{name} {} systems x {} days", shape.systems, shape.days);
    println!("-- {case}");
    let db = TestDatabase::new(backend).await;
    let store = Store::open(&db.url).await?;
    let mut seq = 0;
    seed_fleet_range(&store, backend, 0..shape.systems, &mut seq).await?;
    store.close().await;
    let has_hourly = table_exists(&db, "capacity_hourly").await;
    anyhow::ensure!(
        has_hourly,
        "the writer's schema has no capacity_hourly table (tiers not migrated)"
    );
    clear_capacity(&db).await?;
    let end = now_ms().div_euclid(HOUR_MS) * HOUR_MS;
    let start = end - shape.days * DAY_MS;
    let job = Job {
        systems: 0..shape.systems,
        start,
        end,
        raw_from: end - (shape.raw_days + shape.expired_days) * DAY_MS,
        raw_to: end,
        hourly_from: end - (shape.hourly_days + shape.expired_days) * DAY_MS,
        daily_from: start,
        rule: RawRule::Deadband,
    };
    let (written, gen_secs) = run_job(shape, &db, job).await?;
    let settle_started = Instant::now();
    settle(&db).await?;
    let settle_secs = settle_started.elapsed().as_secs_f64();
    let n = shape.systems as f64;
    report.push(Row::new(
        &case,
        "rows generated (raw / hourly / daily)",
        written.total() as f64,
        "rows",
    ));
    report.push(
        Row::new(
            &case,
            "raw samples per system per day",
            written.raw as f64 / n / (shape.raw_days + shape.expired_days) as f64,
            "rows",
        )
        .vs("polls per day", (DAY_MS / shape.interval_ms) as f64),
    );
    report.push(Row::new(
        &case,
        "hourly rollups",
        written.hourly as f64,
        "rows",
    ));
    report.push(Row::new(
        &case,
        "daily rollups",
        written.daily as f64,
        "rows",
    ));
    report.push(
        Row::new(&case, "generation time", gen_secs, "s")
            .vs("rows/s", written.total() as f64 / gen_secs.max(1e-9)),
    );
    report.push(Row::new(
        &case,
        "VACUUM/ANALYZE after loading",
        settle_secs,
        "s",
    ));
    // Size, with the expired day still in (it is what the retention pass deletes next).
    let (bytes, tables) = db_size(&db).await?;
    let per_system = bytes / n;
    // Today's storage for the same fleet: its capacity tables per system (measured on the
    // sample) and the same other tables (inventory, state) as here.
    let base_per_system = if tables.is_empty() || base.capacity_bytes_per_system == 0.0 {
        base.bytes_per_system
    } else {
        base.capacity_bytes_per_system + (bytes - capacity_bytes(&tables)) / n
    };
    report.push(
        Row::new(&case, "database size per system", per_system / MIB, "MiB")
            .vs("today's storage per system", base_per_system / MIB)
            .target("<= 2 MiB", per_system <= 2.0 * MIB),
    );
    if !tables.is_empty() {
        report.push(
            Row::new(
                &case,
                "capacity tables per system",
                capacity_bytes(&tables) / n / MIB,
                "MiB",
            )
            .vs("today's storage", base.capacity_bytes_per_system / MIB),
        );
        for (t, b) in tables.iter().filter(|(k, _)| k.starts_with("capacity_")) {
            report.push(Row::new(
                &case,
                &format!("{t} per system"),
                b / n / 1024.0,
                "KiB",
            ));
        }
    }
    report.push(
        Row::new(&case, "database size", bytes / (1024.0 * MIB), "GiB").vs(
            "today's storage (extrapolated)",
            base_per_system * n / (1024.0 * MIB),
        ),
    );

    let api = RunningApi::start(&db.url).await?;
    charts(shape, &api, start, end, &case, base, report).await?;

    // The retention pass: the expired day of raw samples and hourly rollups falls out.
    let (secs, deleted) = retention_pass(shape, &db, 0, &case, report, Some(&api)).await?;
    report.push(
        Row::new(&case, "retention pass (1 day expired)", secs, "s")
            .vs("today's storage, same fleet", base.retention_secs),
    );
    report.push(
        Row::new(&case, "rows deleted by the pass", deleted as f64, "rows")
            .vs("today's storage, same fleet", base.retention_rows as f64),
    );
    freshness(shape, &db, &api, &case, report).await?;
    drop(api);
    if let Ok((after, _)) = db_size(&db).await {
        report.push(Row::new(
            &case,
            "database size per system after the passes",
            after / n / MIB,
            "MiB",
        ));
    }
    Ok(())
}

/// The 2-year charts: one system (random systems) and the fleet grouped by a tag, interleaved
/// with `/healthz` of the same server.
async fn charts(
    shape: &Shape,
    api: &RunningApi,
    start: i64,
    end: i64,
    case: &str,
    base: &Baseline,
    report: &mut Report,
) -> anyhow::Result<()> {
    let client = http_client()?;
    let range = format!("from={}&to={}", rfc(start), rfc(end));
    // Content: a 2-year series with points, and which tier served it.
    let sample = api.url(&format!(
        "/api/v1/systems/{}/capacity?{range}",
        system_id((shape.systems / 2) as u32)
    ));
    let (ms, bytes, v) = get_json(&client, &sample)
        .await
        .context("one system's chart")?;
    let points = v
        .get("points")
        .and_then(|p| p.as_array())
        .map(Vec::len)
        .unwrap_or(0);
    anyhow::ensure!(
        points > 0,
        "the 2-year chart of one system has no points: {v}"
    );
    let tier = v
        .get("tier")
        .or_else(|| v.get("resolution"))
        .and_then(|r| r.as_str())
        .unwrap_or("?")
        .to_owned();
    println!("   one system: {points} points ({tier}), {bytes} bytes, first request {ms:.1} ms");
    let fleet = api.url(&format!(
        "/api/v1/capacity/history?group_by=environment&{range}"
    ));
    let (cold_ms, fleet_bytes, fv) = get_json(&client, &fleet).await.context("fleet chart")?;
    let series = fv
        .get("series")
        .and_then(|s| s.as_array())
        .map(Vec::len)
        .unwrap_or(0);
    let fleet_points: usize = fv
        .get("series")
        .and_then(|s| s.as_array())
        .map(|a| {
            a.iter()
                .filter_map(|s| s.get("points").and_then(|p| p.as_array()).map(Vec::len))
                .sum()
        })
        .unwrap_or(0);
    anyhow::ensure!(fleet_points > 0, "the fleet chart has no points");
    println!(
        "   fleet by environment: {series} series, {fleet_points} points, {fleet_bytes} bytes, first request {cold_ms:.0} ms"
    );
    let one: Vec<String> = (0..2000.min(shape.systems))
        .map(|i| {
            let s = splitmix(i as u64 ^ 0xC4A2) % shape.systems as u64;
            format!("/api/v1/systems/{}/capacity?{range}", system_id(s as u32))
        })
        .collect();
    // For context: the last raw window of one system (the finest tier that covers it).
    let recent_range = format!(
        "from={}&to={}",
        rfc(end - shape.raw_days * DAY_MS + HOUR_MS),
        rfc(end)
    );
    let recent: Vec<String> = (0..2000.min(shape.systems))
        .map(|i| {
            let s = splitmix(i as u64 ^ 0x90D) % shape.systems as u64;
            format!(
                "/api/v1/systems/{}/capacity?{recent_range}",
                system_id(s as u32)
            )
        })
        .collect();
    let (_, recent_bytes, rv) = get_json(&client, &api.url(&recent[0]))
        .await
        .context("recent chart")?;
    let recent_points = rv
        .get("points")
        .and_then(|p| p.as_array())
        .map(Vec::len)
        .unwrap_or(0);
    let recent_tier = rv
        .get("tier")
        .or_else(|| rv.get("resolution"))
        .and_then(|r| r.as_str())
        .unwrap_or("?")
        .to_owned();
    let endpoints: [(&str, Vec<String>); 4] = [
        ("GET /healthz", vec!["/healthz".to_owned()]),
        ("one system", one),
        ("recent", recent),
        (
            "fleet",
            vec![format!(
                "/api/v1/capacity/history?group_by=environment&{range}"
            )],
        ),
    ];
    let rounds = if shape.quick { 1 } else { 3 };
    let base_url = format!("http://{}", api.addr);
    let mut results: Vec<(Vec<f64>, u64)> = vec![(Vec::new(), 0); endpoints.len()];
    for _ in 0..rounds {
        for (i, (_, paths)) in endpoints.iter().enumerate() {
            let (lat, errors) = hammer(
                &client,
                &base_url,
                Arc::new(paths.clone()),
                shape.chart_clients,
                shape.duration / rounds,
            )
            .await?;
            results[i].0.extend(lat);
            results[i].1 += errors;
        }
    }
    let mut it = results.into_iter();
    let healthz = it.next().map(|(l, e)| latency(l, e)).context("healthz")?;
    let one = it.next().map(|(l, e)| latency(l, e)).context("one")?;
    let recent_l = it.next().map(|(l, e)| latency(l, e)).context("recent")?;
    let fleet_l = it.next().map(|(l, e)| latency(l, e)).context("fleet")?;
    report.push(Row::new(
        case,
        "GET /healthz p99 (static, same server)",
        healthz.p99,
        "ms",
    ));
    report.push(
        Row::new(
            case,
            &format!("2-year chart of one system p50 ({tier}, {points} points)"),
            one.p50,
            "ms",
        )
        .vs("/healthz p50", healthz.p50),
    );
    report.push(
        Row::new(case, "2-year chart of one system p99", one.p99, "ms")
            .vs("today's storage, same route", base.chart_p99)
            .target("< 50 ms", one.p99 < 50.0 && one.errors == 0 && one.n > 0),
    );
    report.push(
        Row::new(
            case,
            "2-year chart of one system p99 vs /healthz",
            one.p99,
            "ms",
        )
        .vs("/healthz p99", healthz.p99),
    );
    report.push(
        Row::new(
            case,
            &format!(
                "{}-day chart of one system p99 ({recent_tier}, {recent_points} points, {recent_bytes} bytes)",
                shape.raw_days
            ),
            recent_l.p99,
            "ms",
        )
        .vs("/healthz p99", healthz.p99),
    );
    report.push(
        Row::new(
            case,
            "2-year fleet chart by environment, first request",
            cold_ms,
            "ms",
        )
        .vs("series x points", fleet_points as f64),
    );
    report.push(
        Row::new(
            case,
            "2-year fleet chart by environment p50",
            fleet_l.p50,
            "ms",
        )
        .vs("/healthz p50", healthz.p50),
    );
    report.push(
        Row::new(
            case,
            "2-year fleet chart by environment p99",
            fleet_l.p99,
            "ms",
        )
        .vs("/healthz p99", healthz.p99)
        .target(
            "< 250 ms",
            fleet_l.p99 < 250.0 && fleet_l.errors == 0 && fleet_l.n > 0,
        ),
    );
    report.push(
        Row::new(case, "chart requests", (one.n + fleet_l.n) as f64, "")
            .vs(
                "errors",
                (one.errors + fleet_l.errors + healthz.errors + recent_l.errors) as f64,
            )
            .target(
                "no errors",
                one.errors + fleet_l.errors + healthz.errors + recent_l.errors == 0,
            ),
    );
    Ok(())
}

/// A steady snapshot flow for systems `0..systems`, capacity from their models, at `rate`/s.
async fn flow(
    js: jetstream::Context,
    shape: Shape,
    start: i64,
    stop: watch::Receiver<bool>,
) -> anyhow::Result<u64> {
    let cycle = cycle_table();
    let span = now_ms() - start;
    let started = Instant::now();
    let mut sent = 0u64;
    let mut acks = AckWindow::new(1000);
    let run = format!("{:x}", now_ms());
    let models: Vec<Model> = (0..shape.systems)
        .map(|s| Model::new(s, start, span, shape.interval_ms))
        .collect();
    while !*stop.borrow() {
        let due = (shape.flow_rate * started.elapsed().as_secs_f64()) as u64;
        while sent < due {
            let s = (sent % shape.systems as u64) as usize;
            let system = system_id(s as u32);
            let at = now_ms();
            let (total, used) = models[s].poll(at, &cycle);
            let mut snap = snapshot_record(s, sent as usize);
            if let Some(c) = snap.capacity.as_mut() {
                c.total_bytes = total as u64;
                c.used_bytes = used as u64;
                c.free_bytes = (total - used) as u64;
            }
            let id = format!("flow-{run}-{sent:09}");
            let env = Envelope {
                schema: SCHEMA_VERSION,
                event_id: id.clone(),
                collector_id: "bench-collector".into(),
                system_id: system.clone(),
                observed_at: at,
                body: snap,
            };
            acks.publish(
                &js,
                Kind::Snapshot.subject(&system),
                &id,
                encode(&env)?.into(),
            )
            .await?;
            sent += 1;
            acks.settle().await?;
        }
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    acks.finish().await?;
    Ok(sent)
}

/// Four probers for `window`; the latencies and timeouts.
async fn probe(
    js: &jetstream::Context,
    client: &reqwest::Client,
    api: &RunningApi,
    window: Duration,
) -> anyhow::Result<(Vec<f64>, u64)> {
    let until = Instant::now() + window;
    let probes: Vec<_> = (0..4)
        .map(|p| {
            let system = format!("fresh-{p}");
            tokio::spawn(prober(
                js.clone(),
                client.clone(),
                api.url(&format!("/api/v1/systems/{system}")),
                system,
                until,
            ))
        })
        .collect();
    let mut samples = Vec::new();
    let mut timeouts = 0;
    for p in probes {
        let (s, t) = p.await??;
        samples.extend(s);
        timeouts += t;
    }
    Ok((samples, timeouts))
}

/// Issue #15 item 2: freshness p99 while the writer, consuming a steady snapshot flow, runs a
/// large retention pass (both windows shortened by `shift_days`), next to the same writer and
/// flow without one.
async fn freshness(
    shape: &Shape,
    db: &TestDatabase,
    api: &RunningApi,
    case: &str,
    report: &mut Report,
) -> anyhow::Result<()> {
    let client = http_client()?;
    let nats = NatsServer::start();
    let js = connect_jetstream(&nats.url()).await?;
    let start = now_ms() - shape.days * DAY_MS;
    let (stop_tx, stop_rx) = watch::channel(false);
    let flow_started = Instant::now();
    let load = tokio::spawn(flow(js.clone(), shape.clone(), start, stop_rx));
    // Without retention: the windows as generated (the pass before deleted what was expired).
    let keep = policy(shape, 0);
    let writer = RunningWriter::start_with(&nats.url(), &db.url, |c| {
        c.capacity_raw_days = keep.capacity_raw_days;
        c.capacity_hourly_days = keep.capacity_hourly_days;
        c.capacity_raw_max_gap = Duration::from_millis(shape.max_gap_ms as u64);
    });
    writer
        .wait_messages(&client, 1, Duration::from_secs(120))
        .await?;
    let (idle, idle_timeouts) = probe(&js, &client, api, shape.duration).await?;
    writer.stop().await?;
    // With a large pass: both windows shortened by shift_days, retention at the writer's start.
    let shifted = policy(shape, shape.shift_days);
    let started = Instant::now();
    let writer = RunningWriter::start_with(&nats.url(), &db.url, |c| {
        c.capacity_raw_days = shifted.capacity_raw_days;
        c.capacity_hourly_days = shifted.capacity_hourly_days;
        c.capacity_raw_max_gap = Duration::from_millis(shape.max_gap_ms as u64);
        c.retention_interval = Duration::from_secs(24 * 3600);
    });
    let slice = if shape.quick {
        Duration::from_millis(500)
    } else {
        Duration::from_secs(2)
    };
    let mut during = Vec::new();
    let mut during_timeouts = 0;
    let mut deleted = 0.0;
    let mut last_change = started.elapsed();
    let mut quiet = 0;
    while started.elapsed() < Duration::from_secs(3600) {
        let (s, t) = probe(&js, &client, api, slice).await?;
        let now_deleted = writer
            .metric_or_zero(&client, "sdash_writer_retention_deleted_total")
            .await;
        if now_deleted > deleted || deleted == 0.0 {
            // The pass was running during (part of) this slice.
            during.extend(s);
            during_timeouts += t;
            if now_deleted > deleted {
                last_change = started.elapsed();
                quiet = 0;
            }
            deleted = now_deleted;
            if deleted == 0.0 && started.elapsed() > Duration::from_secs(900) {
                break;
            }
        } else {
            quiet += 1;
            if quiet >= 2 {
                break;
            }
        }
    }
    let _ = stop_tx.send(true);
    let sent = load.await??;
    writer.stop().await?;
    let idle_l = latency(idle, idle_timeouts);
    let during_l = latency(during, during_timeouts);
    report.push(
        Row::new(
            case,
            "freshness p99 during a large retention pass",
            during_l.p99,
            "ms",
        )
        .vs("same writer and flow, no retention", idle_l.p99)
        .target("< 1000 ms", during_l.p99 < 1000.0 && during_l.errors == 0),
    );
    report.push(
        Row::new(case, "freshness p50 during the pass", during_l.p50, "ms")
            .vs("no retention", idle_l.p50),
    );
    report.push(
        Row::new(
            case,
            "freshness probes during the pass",
            during_l.n as f64,
            "",
        )
        .vs("timed out (10 s)", during_l.errors as f64),
    );
    report.push(
        Row::new(
            case,
            &format!("large pass by the writer (windows -{} d)", shape.shift_days),
            last_change.as_secs_f64(),
            "s",
        )
        .vs("rows deleted", deleted),
    );
    report.push(
        Row::new(
            case,
            "snapshot flow (published)",
            sent as f64 / flow_started.elapsed().as_secs_f64().max(1e-9),
            "msg/s",
        )
        .vs("asked", shape.flow_rate),
    );
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn shape() -> Shape {
        let mut o = Options::new(true);
        o.systems = Some(3);
        Shape::of(&o)
    }

    /// Runs `job` and gathers every chunk.
    fn gather(shape: &Shape, job: Job) -> Chunk {
        let (tx, mut rx) = mpsc::channel(1_000_000);
        generate(shape.clone(), job, tx).expect("generate");
        let mut all = Chunk::default();
        while let Ok(c) = rx.try_recv() {
            all.raw.extend(c.raw);
            all.hourly.extend(c.hourly);
            all.daily.extend(c.daily);
        }
        all
    }

    fn job(shape: &Shape, rule: RawRule) -> Job {
        let end = 1_780_000_000_000i64.div_euclid(HOUR_MS) * HOUR_MS;
        let start = end - shape.days * DAY_MS;
        Job {
            systems: 0..3,
            start,
            end,
            raw_from: end - shape.raw_days * DAY_MS,
            raw_to: end,
            hourly_from: end - shape.hourly_days * DAY_MS,
            daily_from: start,
            rule,
        }
    }

    #[test]
    fn tiers_hold_what_the_writer_keeps() {
        let shape = shape();
        let j = job(&shape, RawRule::Deadband);
        let c = gather(&shape, j.clone());
        // One hourly rollup per system and hour of the hourly window, each of every poll.
        assert_eq!(c.hourly.len() as i64, 3 * shape.hourly_days * 24);
        assert!(c.hourly.iter().all(|(_, h, st)| st.samples == 60
            && *h >= j.hourly_from
            && *h < j.end
            && st.min <= st.used
            && st.used <= st.max
            && st.last_at >= *h
            && st.last_at < *h + HOUR_MS));
        // Daily rollups cover every day of the history (the first and last may be partial).
        let days = c.daily.iter().filter(|d| d.0 == 0).count() as i64;
        assert!(days == shape.days || days == shape.days + 1, "{days}");
        // The raw samples follow the deadband / max-gap rule, within the raw window.
        for s in 0..3u32 {
            let raw: Vec<_> = c.raw.iter().filter(|r| r.0 == s).collect();
            assert!(
                raw.len() as i64 >= shape.raw_days * DAY_MS / shape.max_gap_ms,
                "{}",
                raw.len()
            );
            assert!((raw.len() as i64) < shape.raw_days * 1440);
            for w in raw.windows(2) {
                let (a, b) = (w[0], w[1]);
                assert!(b.1 - a.1 <= shape.max_gap_ms, "gap {}", b.1 - a.1);
                assert!(b.1 >= j.raw_from && b.1 < j.raw_to);
                let band = shape.deadband_pct / 100.0 * a.2 as f64;
                let moved = (b.3 - a.3).abs() as f64 > band || b.2 != a.2;
                assert!(moved || b.1 - a.1 >= shape.max_gap_ms);
            }
        }
        // A day's rollup sums up its hours (where the hours are kept).
        let &(s, day, d) = c
            .daily
            .iter()
            .find(|d| d.0 == 1 && d.1 >= j.hourly_from && d.1 + DAY_MS <= j.end)
            .expect("a whole day in the hourly window");
        let hours: Vec<_> = c
            .hourly
            .iter()
            .filter(|(hs, h, _)| *hs == s && *h >= day && *h < day + DAY_MS)
            .collect();
        assert_eq!(hours.len(), 24);
        assert_eq!(d.samples, hours.iter().map(|h| h.2.samples).sum::<i64>());
        assert_eq!(d.min, hours.iter().map(|h| h.2.min).min().unwrap_or(0));
        assert_eq!(d.max, hours.iter().map(|h| h.2.max).max().unwrap_or(0));
        let sum: f64 = hours.iter().map(|h| h.2.sum).sum();
        assert!((d.sum - sum).abs() <= sum * 1e-12);
        assert_eq!(d.used, hours[23].2.used);
    }

    #[test]
    fn baseline_stores_every_poll() {
        let shape = shape();
        let mut j = job(&shape, RawRule::EveryPoll);
        j.hourly_from = i64::MAX;
        let c = gather(&shape, j);
        assert_eq!(c.raw.len() as i64, 3 * shape.raw_days * 1440);
        assert!(c.hourly.is_empty());
    }

    #[test]
    fn expired_day_only() {
        let shape = shape();
        let mut j = job(&shape, RawRule::EveryPoll);
        j.raw_from = j.end - 8 * DAY_MS;
        j.raw_to = j.end - 7 * DAY_MS;
        j.hourly_from = i64::MAX;
        j.daily_from = i64::MAX;
        let c = gather(&shape, j.clone());
        assert_eq!(c.raw.len(), 3 * 1440);
        assert!(c.raw.iter().all(|r| r.1 >= j.raw_from && r.1 < j.raw_to));
        assert!(c.daily.is_empty());
    }
}
