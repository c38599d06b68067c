//! Loading the generated rows per backend: SQLite by multi-row prepared INSERTs on one
//! exclusive connection without a journal, PostgreSQL by COPY; and [`run_job`], which runs the
//! generator on a thread of its own and feeds the loader.

use std::fmt::Write as _;
use std::str::FromStr;
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::Context as _;
use sdash_harness::{Backend, TestDatabase};
use sqlx::Connection;
use tokio::sync::mpsc;

use super::generate::{Chunk, Job, Written, generate};
use super::{Shape, system_id};

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
pub(super) async fn run_job(
    shape: &Shape,
    db: &TestDatabase,
    job: Job,
) -> anyhow::Result<(Written, f64)> {
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
