//! Measuring and preparing the database directly: statements, sizes (whole and per table),
//! the planner's statistics after loading, which tables exist, emptying the capacity tiers.

use std::collections::BTreeMap;

use sdash_harness::{Backend, TestDatabase};
use sqlx::{Connection, Row as _};

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
pub(super) async fn db_size(db: &TestDatabase) -> anyhow::Result<(f64, BTreeMap<String, f64>)> {
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

pub(super) fn capacity_bytes(tables: &BTreeMap<String, f64>) -> f64 {
    tables
        .iter()
        .filter(|(k, _)| k.starts_with("capacity_"))
        .map(|(_, v)| v)
        .sum()
}

/// After loading: statistics for the planner (and on PostgreSQL the visibility map), as the
/// server's autovacuum would have them after two years.
pub(super) async fn settle(db: &TestDatabase) -> anyhow::Result<()> {
    match db.backend {
        Backend::Sqlite => exec(db, "PRAGMA analysis_limit = 2000; ANALYZE").await,
        Backend::Postgres => exec(db, "VACUUM (ANALYZE)").await,
    }
}

pub(super) async fn table_exists(db: &TestDatabase, table: &str) -> bool {
    let sql = match db.backend {
        Backend::Sqlite => {
            format!("SELECT COUNT(*) FROM sqlite_master WHERE type = 'table' AND name = '{table}'")
        }
        Backend::Postgres => format!(
            "SELECT COUNT(*) FROM information_schema.tables WHERE table_schema = current_schema() AND table_name = '{table}'"
        ),
    };
    crate::bench::writer::count(db, &sql).await.unwrap_or(0) > 0
}

pub(super) async fn clear_capacity(db: &TestDatabase) -> anyhow::Result<()> {
    let mut sql = String::from("DELETE FROM capacity_samples; DELETE FROM capacity_daily;");
    if table_exists(db, "capacity_hourly").await {
        sql.push_str(" DELETE FROM capacity_hourly;");
    }
    exec(db, &sql).await
}
