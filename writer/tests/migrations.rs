//! Databases made by writers before the sqlx migrator: their `schema_migrations (version, name,
//! applied_at)` is taken over (no migration runs twice, the missing ones run, the data stays),
//! and one from a newer writer is refused.

mod common;

use common::*;
use sdash_harness::{Backend, TestDatabase};
use sdash_proto::*;
use sdash_writer::{Incoming, Store, StoreError};

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

/// A database with capacity history in the schema before the capacity tiers (0006): the
/// migration makes the hourly rollups of the raw samples it still has, marks the daily rows
/// measured, and the writer then goes on from them without counting a sample twice.
async fn capacity_tiers_migrate_existing_history(backend: Backend) {
    let db = TestDatabase::new(backend).await;
    exec(
        &db,
        "CREATE TABLE schema_migrations (version BIGINT PRIMARY KEY, name TEXT NOT NULL, applied_at BIGINT NOT NULL)",
    )
    .await;
    for (version, name, sql) in migration_files(backend).iter().filter(|f| f.0 < 6) {
        exec(&db, sql).await;
        exec(
            &db,
            &format!("INSERT INTO schema_migrations VALUES ({version}, '{name}', 1764000000000)"),
        )
        .await;
    }
    let h = 3_600_000i64;
    let t0 = 1_764_000_000_000i64 / h * h; // the start of an hour
    let day = sdash_writer::store::utc_day(t0);
    // Raw samples as the writer stored them before: one per poll.
    exec(
        &db,
        &format!(
            "INSERT INTO systems (id, name, vendor, updated_at) VALUES ('m-a', 'm-a', 'pure', 0), ('m-b', 'm-b', 'pure', 0); \
             INSERT INTO capacity_samples (system_id, observed_at, total_bytes, used_bytes, free_bytes) VALUES \
             ('m-a', {a1}, 1000, 100, 900), ('m-a', {a2}, 1000, 300, 700), ('m-a', {a3}, 1000, 200, 800), \
             ('m-a', {a4}, 1000, 250, 750), ('m-b', {b1}, 2000, 50, 1950); \
             INSERT INTO capacity_daily (system_id, day, samples, used_min, used_max, used_sum, last_at, total_bytes, used_bytes, free_bytes) VALUES \
             ('m-a', '{day}', 4, 100, 300, 850, {a4}, 1000, 250, 750), ('m-b', '{day}', 1, 50, 50, 50, {b1}, 2000, 50, 1950)",
            a1 = t0 + 60_000,
            a2 = t0 + 600_000,
            a3 = t0 + 1_800_000,
            a4 = t0 + h + 60_000,
            b1 = t0 + 300_000,
        ),
    )
    .await;
    let store = Store::open(&db.url)
        .await
        .unwrap_or_else(|e| panic!("open: {e}"));
    let hourly = || async {
        rows(
            &db,
            "SELECT system_id, CAST(hour AS TEXT), CAST(samples AS TEXT), CAST(used_min AS TEXT), CAST(used_max AS TEXT), \
             CAST(CAST(used_sum AS BIGINT) AS TEXT), CAST(last_at AS TEXT), CAST(total_bytes AS TEXT), CAST(used_bytes AS TEXT), \
             CAST(free_bytes AS TEXT) FROM capacity_hourly ORDER BY system_id, hour",
        )
        .await
    };
    let row = |v: &[&str]| v.iter().map(|s| Some((*s).to_owned())).collect::<Vec<_>>();
    let (h0, h1) = (t0.to_string(), (t0 + h).to_string());
    let (a3, a4, b1) = (
        (t0 + 1_800_000).to_string(),
        (t0 + h + 60_000).to_string(),
        (t0 + 300_000).to_string(),
    );
    assert_eq!(
        hourly().await,
        vec![
            row(&[
                "m-a", &h0, "3", "100", "300", "600", &a3, "1000", "200", "800"
            ]),
            row(&[
                "m-a", &h1, "1", "250", "250", "250", &a4, "1000", "250", "750"
            ]),
            row(&["m-b", &h0, "1", "50", "50", "50", &b1, "2000", "50", "1950"]),
        ]
    );
    assert_eq!(
        count(&db, "capacity_daily WHERE source = 'measured'").await,
        2
    );
    // A redelivered old snapshot counts nowhere; a new one adds to its hour and day.
    let snap = |seq: u64, t: i64, used: u64| {
        snapshot_msg(
            seq,
            "m-a",
            t,
            snapshot_body(Status::Online, Health::Ok, &[], Some(used)),
        )
    };
    store
        .write_batch(&[
            snap(1, t0 + h + 60_000, 250),
            snap(2, t0 + h + 120_000, 400),
        ])
        .await
        .unwrap_or_else(|e| panic!("write: {e}"));
    let a5 = (t0 + h + 120_000).to_string();
    assert_eq!(
        hourly().await[1],
        row(&[
            "m-a", &h1, "2", "250", "400", "650", &a5, "1000", "400", "600"
        ])
    );
    assert_eq!(
        rows(
            &db,
            "SELECT CAST(samples AS TEXT), CAST(used_max AS TEXT), CAST(CAST(used_sum AS BIGINT) AS TEXT) FROM capacity_daily WHERE system_id = 'm-a'"
        )
        .await,
        vec![row(&["5", "400", "1250"])]
    );
    // The raw sample moved by more than the deadband: stored.
    assert_eq!(
        count(&db, "capacity_samples WHERE system_id = 'm-a'").await,
        5
    );
    // A day long past changed: readers caching past days are told (pipeline_status).
    assert!(
        scalar(
            &db,
            "SELECT CAST(capacity_past_version AS TEXT) FROM pipeline_status WHERE id = 1"
        )
        .await
            >= now_ms() - 600_000
    );
    store.close().await;
}

/// Writes one batch; the rows it wrote.
async fn write(store: &Store, batch: Vec<Incoming>) -> sdash_writer::RowCounts {
    store
        .write_batch(&batch)
        .await
        .unwrap_or_else(|e| panic!("write: {e}"))
        .rows
}

/// A database from before the ledger of counted snapshots (0010): the ledger starts above
/// everything it may have counted (its newest snapshot, the clock plus the allowed skew), so a
/// redelivery of what it had counted is not counted again; until the floor passes, a late
/// snapshot is judged as before the ledger. A new database's ledger starts at 0.
async fn the_ledger_of_an_upgraded_database_starts_above_what_it_counted(backend: Backend) {
    let db = TestDatabase::new(backend).await;
    let store = Store::open(&db.url)
        .await
        .unwrap_or_else(|e| panic!("open: {e}"));
    let now = now_ms();
    let snap = |seq: u64, t: i64| {
        snapshot_msg(
            seq,
            "up-1",
            t,
            snapshot_body(Status::Online, Health::Ok, &[], Some(300)),
        )
    };
    write(&store, vec![snap(1, now - 600_000), snap(2, now - 300_000)]).await;
    // As a writer before 0010 left it.
    for sql in [
        "DROP TABLE counted_snapshots",
        "DROP TABLE counted_snapshots_floor",
        "DELETE FROM schema_migrations WHERE version = 10",
    ] {
        exec(&db, sql).await;
    }
    store.close().await;
    let store = Store::open(&db.url)
        .await
        .unwrap_or_else(|e| panic!("reopen: {e}"));
    let floor = || async {
        scalar(
            &db,
            "SELECT CAST(floor_at AS TEXT) FROM counted_snapshots_floor WHERE id = 1",
        )
        .await
    };
    let skew = sdash_proto::codec::MAX_FUTURE_SKEW_MS;
    let after = now_ms();
    assert!(
        (now - 1000 + skew..=after + skew).contains(&floor().await),
        "{} not about {now} + {skew}",
        floor().await
    );
    let rows = write(&store, vec![snap(1, now - 600_000), snap(2, now - 300_000)]).await;
    assert_eq!(
        (rows.capacity_samples_not_newer, rows.capacity_hourly),
        (2, 0)
    );
    write(&store, vec![snap(3, now - 60_000)]).await;
    let rows = write(&store, vec![snap(4, now - 120_000), snap(3, now - 60_000)]).await;
    assert_eq!(
        (
            rows.capacity_samples_late,
            rows.capacity_samples_repeated,
            rows.capacity_samples_not_newer
        ),
        (0, 0, 2)
    );
    assert_eq!(
        scalar(
            &db,
            "SELECT CAST(SUM(samples) AS TEXT) FROM capacity_daily WHERE system_id = 'up-1'"
        )
        .await,
        3
    );
    store.close().await;

    let fresh = TestDatabase::new(backend).await;
    Store::open(&fresh.url)
        .await
        .unwrap_or_else(|e| panic!("open: {e}"))
        .close()
        .await;
    assert_eq!(
        scalar(
            &fresh,
            "SELECT CAST(floor_at AS TEXT) FROM counted_snapshots_floor WHERE id = 1"
        )
        .await,
        0
    );
}

both_backends!(
    old_bookkeeping_is_taken_over,
    a_newer_schema_is_refused,
    capacity_tiers_migrate_existing_history,
    the_ledger_of_an_upgraded_database_starts_above_what_it_counted
);
