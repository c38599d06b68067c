//! The reads the API's charts make are answered from the indexes made for them (SQLite, whose
//! rowid tables lie in write order: the fleet's rows day by day, not one system's together).

mod common;

use common::*;
use sdash_harness::{Backend, TestDatabase};
use sqlx::{Connection, Row};

/// `EXPLAIN QUERY PLAN` of `sql` (with `?` parameters bound to text) on the test database.
async fn plan(db: &TestDatabase, sql: &str, params: &[&str]) -> String {
    let mut c = sqlx::SqliteConnection::connect(&db.url)
        .await
        .unwrap_or_else(|e| panic!("connect: {e}"));
    let mut query = sqlx::query(sqlx::AssertSqlSafe(format!("EXPLAIN QUERY PLAN {sql}")));
    for p in params {
        query = query.bind(*p);
    }
    let rows = query
        .fetch_all(&mut c)
        .await
        .unwrap_or_else(|e| panic!("{sql}: {e}"));
    let _ = c.close().await;
    rows.iter()
        .map(|r| {
            r.try_get::<String, _>("detail")
                .unwrap_or_else(|e| panic!("{e}"))
        })
        .collect::<Vec<_>>()
        .join("\n")
}

#[tokio::test]
async fn one_systems_daily_capacity_series_reads_one_covering_index() {
    let db = TestDatabase::new(Backend::Sqlite).await;
    open(&db).await.close().await;
    // The query of GET /api/v1/systems/{id}/capacity for the daily tier (api/src/resources).
    let series = "SELECT day, samples, used_min, used_max, used_sum, last_at, total_bytes, used_bytes, free_bytes \
                  FROM capacity_daily WHERE system_id = ? AND day >= ? AND day <= ? ORDER BY day";
    let plan = plan(&db, series, &["array-1", "2025-01-01", "2026-12-31"]).await;
    assert!(
        plan.contains(
            "USING COVERING INDEX capacity_daily_series (system_id=? AND day>? AND day<?)"
        ),
        "the daily series must be one range of capacity_daily_series, not table lookups per day:\n{plan}"
    );
    assert!(
        !plan.contains("TEMP B-TREE"),
        "no sort after the read:\n{plan}"
    );
}
