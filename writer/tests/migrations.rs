//! Databases made by writers before the sqlx migrator: their `schema_migrations (version, name,
//! applied_at)` is taken over (no migration runs twice, the missing ones run, the data stays),
//! and one from a newer writer is refused.

mod common;

use common::*;
use sdash_harness::{Backend, TestDatabase};
use sdash_proto::*;
use sdash_writer::{Store, StoreError};
use std::str::FromStr;

use sqlx::{AssertSqlSafe, Connection};

/// The migration files of `backend`, in order.
fn migration_files(backend: Backend) -> Vec<(i64, String, String)> {
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("migrations")
        .join(match backend {
            Backend::Sqlite => "sqlite",
            Backend::Postgres => "postgres",
        });
    let mut files: Vec<_> = std::fs::read_dir(&dir)
        .unwrap_or_else(|e| panic!("{}: {e}", dir.display()))
        .map(|e| e.unwrap_or_else(|e| panic!("{e}")).path())
        .collect();
    files.sort();
    files
        .iter()
        .map(|path| {
            let stem = path
                .file_stem()
                .and_then(|s| s.to_str())
                .unwrap_or_else(|| panic!("{}", path.display()));
            let (version, name) = stem
                .split_once('_')
                .unwrap_or_else(|| panic!("{}", path.display()));
            let sql = std::fs::read_to_string(path).unwrap_or_else(|e| panic!("{e}"));
            (
                version.parse().unwrap_or_else(|e| panic!("{stem}: {e}")),
                name.to_owned(),
                sql,
            )
        })
        .collect()
}

/// Runs `sql` (several statements) on the test database.
async fn exec(db: &TestDatabase, sql: &str) {
    let sql = AssertSqlSafe(sql.to_owned());
    let done = match db.backend {
        Backend::Sqlite => {
            let options = sqlx::sqlite::SqliteConnectOptions::from_str(&db.url)
                .unwrap_or_else(|e| panic!("{e}"))
                .create_if_missing(true);
            let mut c = sqlx::SqliteConnection::connect_with(&options)
                .await
                .unwrap_or_else(|e| panic!("connect: {e}"));
            sqlx::raw_sql(sql).execute(&mut c).await.map(drop)
        }
        Backend::Postgres => {
            let mut c = sqlx::PgConnection::connect(&db.url)
                .await
                .unwrap_or_else(|e| panic!("connect: {e}"));
            sqlx::raw_sql(sql).execute(&mut c).await.map(drop)
        }
    };
    done.unwrap_or_else(|e| panic!("{e}"));
}

/// A database as the writers before the sqlx migrator left it, with all migrations but the
/// last applied and recorded their way.
async fn old_database(db: &TestDatabase) -> usize {
    let files = migration_files(db.backend);
    exec(
        db,
        "CREATE TABLE schema_migrations (version BIGINT PRIMARY KEY, name TEXT NOT NULL, applied_at BIGINT NOT NULL)",
    )
    .await;
    for (version, name, sql) in &files[..files.len() - 1] {
        exec(db, sql).await;
        exec(
            db,
            &format!("INSERT INTO schema_migrations VALUES ({version}, '{name}', 1764000000000)"),
        )
        .await;
    }
    exec(
        db,
        "INSERT INTO systems (id, name, vendor, updated_at) VALUES ('old-1', 'kept', 'pure', 1)",
    )
    .await;
    files.len()
}

async fn old_bookkeeping_is_taken_over(backend: Backend) {
    let db = TestDatabase::new(backend).await;
    let migrations = old_database(&db).await as i64;
    for _ in 0..2 {
        let store = Store::open(&db.url)
            .await
            .unwrap_or_else(|e| panic!("open: {e}"));
        store
            .write_batch(&[event_msg(1, "old-1", "ev-1", now_ms(), "after the upgrade")])
            .await
            .unwrap_or_else(|e| panic!("write: {e}"));
        store.close().await;
        assert_eq!(count(&db, "schema_migrations").await, migrations);
    }
    assert_eq!(
        count(&db, "systems WHERE id = 'old-1' AND name = 'kept'").await,
        1
    );
    assert_eq!(count(&db, "events WHERE event_id = 'ev-1'").await, 1);
}

async fn a_newer_schema_is_refused(backend: Backend) {
    let db = TestDatabase::new(backend).await;
    old_database(&db).await;
    exec(
        &db,
        "INSERT INTO schema_migrations VALUES (999, 'future', 1764000000000)",
    )
    .await;
    refused(&db).await;
    // The same for a database the sqlx migrator keeps.
    let db = TestDatabase::new(backend).await;
    Store::open(&db.url)
        .await
        .unwrap_or_else(|e| panic!("open: {e}"))
        .close()
        .await;
    let checksum = match backend {
        Backend::Sqlite => "X'00'",
        Backend::Postgres => "'\\x00'::bytea",
    };
    exec(
        &db,
        &format!(
            "INSERT INTO schema_migrations (version, description, success, checksum, execution_time) \
             VALUES (999, 'future', TRUE, {checksum}, 0)"
        ),
    )
    .await;
    refused(&db).await;
}

async fn refused(db: &TestDatabase) {
    match Store::open(&db.url).await {
        Err(StoreError::SchemaTooNew { found: 999, .. }) => {}
        Err(e) => panic!("other error: {e}"),
        Ok(_) => panic!("opened a database of a newer writer"),
    }
}

both_backends!(old_bookkeeping_is_taken_over, a_newer_schema_is_refused);
