//! Retention at scale, through the running writer: a large pass runs in steps between batches,
//! so snapshots keep being stored while it runs.

mod common;

use std::time::{Duration, Instant};

use common::*;
use sdash_harness::{Backend, NatsServer, TestDatabase, wait_for};
use sdash_proto::subjects::Kind;
use sdash_proto::*;
use sdash_service::Shutdown;
use sdash_writer::{Store, WriterConfig};

/// 200,000 raw capacity samples of 100 systems, older than the raw window: a pass of seconds
/// with a few rows per statement; and 20,000 raw performance samples and 20,000 hourly pool
/// rollups of those systems, older than their windows.
async fn old_samples(db: &TestDatabase, before: i64) {
    let hours_before = before - 301 * 86_400_000;
    let deep = match db.backend {
        Backend::Sqlite => format!(
            "WITH RECURSIVE s(i) AS (SELECT 0 UNION ALL SELECT i + 1 FROM s WHERE i < 99), \
             n(k) AS (SELECT 0 UNION ALL SELECT k + 1 FROM n WHERE k < 199) \
             INSERT INTO performance_samples (system_id, observed_at, read_iops) \
             SELECT printf('old-%03d', i), {before} - k * 60000, 1.0 FROM s, n; \
             WITH RECURSIVE s(i) AS (SELECT 0 UNION ALL SELECT i + 1 FROM s WHERE i < 99), \
             n(k) AS (SELECT 0 UNION ALL SELECT k + 1 FROM n WHERE k < 99), p(pool) AS (VALUES ('aggregate:a'), ('aggregate:b')) \
             INSERT INTO pool_hourly (system_id, hour, pool, samples, used_min, used_max, used_sum, last_at, total_bytes, used_bytes) \
             SELECT printf('old-%03d', i), {hours_before} - k * 3600000, pool, 1, 5, 5, 5, {hours_before} - k * 3600000, 10, 5 FROM s, n, p; \
             WITH RECURSIVE s(i) AS (SELECT 0 UNION ALL SELECT i + 1 FROM s WHERE i < 99) \
             INSERT INTO systems (id, name, vendor, updated_at) SELECT printf('old-%03d', i), printf('old-%03d', i), 'pure', 1 FROM s"
        ),
        Backend::Postgres => format!(
            "INSERT INTO performance_samples (system_id, observed_at, read_iops) \
             SELECT format('old-%s', lpad(i::text, 3, '0')), {before} - k * 60000::bigint, 1.0 \
             FROM generate_series(0, 99) i, generate_series(0, 199) k; \
             INSERT INTO pool_hourly (system_id, hour, pool, samples, used_min, used_max, used_sum, last_at, total_bytes, used_bytes) \
             SELECT format('old-%s', lpad(i::text, 3, '0')), {hours_before} - k * 3600000::bigint, p, 1, 5, 5, 5, {hours_before} - k * 3600000::bigint, 10, 5 \
             FROM generate_series(0, 99) i, generate_series(0, 99) k, (VALUES ('aggregate:a'), ('aggregate:b')) v(p); \
             INSERT INTO systems (id, name, vendor, updated_at) \
             SELECT format('old-%s', lpad(i::text, 3, '0')), format('old-%s', lpad(i::text, 3, '0')), 'pure', 1 FROM generate_series(0, 99) i"
        ),
    };
    exec(db, &deep).await;
    let sql = match db.backend {
        Backend::Sqlite => format!(
            "WITH RECURSIVE s(i) AS (SELECT 0 UNION ALL SELECT i + 1 FROM s WHERE i < 99), \
             n(k) AS (SELECT 0 UNION ALL SELECT k + 1 FROM n WHERE k < 1999) \
             INSERT INTO capacity_samples SELECT printf('old-%03d', i), {before} - k * 60000, 1000, 500, 500 FROM s, n"
        ),
        Backend::Postgres => format!(
            "INSERT INTO capacity_samples SELECT format('old-%s', lpad(i::text, 3, '0')), {before} - k * 60000::bigint, 1000, 500, 500 \
             FROM generate_series(0, 99) i, generate_series(0, 1999) k"
        ),
    };
    exec(db, &sql).await;
}

async fn a_large_retention_pass_does_not_hold_up_ingestion(backend: Backend) {
    let nats = NatsServer::start();
    let db = TestDatabase::new(backend).await;
    Store::open(&db.url)
        .await
        .unwrap_or_else(|e| panic!("open: {e}"))
        .close()
        .await;
    let now = now_ms();
    old_samples(&db, now - 100 * 86_400_000).await;
    let old = "capacity_samples WHERE system_id LIKE 'old-%'";
    assert_eq!(count(&db, old).await, 200_000);
    let old_deep = [
        "performance_samples WHERE system_id LIKE 'old-%'",
        "pool_hourly WHERE system_id LIKE 'old-%'",
    ];
    for table in old_deep {
        assert_eq!(count(&db, table).await, 20_000, "{table}");
    }

    let mut config = WriterConfig::new(&nats.url(), &db.url);
    config.batch_timeout = Duration::from_millis(20);
    // Seconds of deleting on either backend (SQLite deletes a few rows much faster).
    config.retention_batch = match backend {
        Backend::Sqlite => 2,
        Backend::Postgres => 50,
    };
    let stop = Shutdown::new();
    let task = tokio::spawn(sdash_writer::run(config, stop.clone()));
    let js = jetstream(&nats.url()).await;

    // Snapshots one after another while the pass (which starts with the writer) runs: each is
    // stored within a fraction of the pass's duration, and the pass is still under way after
    // the first ones are stored.
    let mut slowest = Duration::ZERO;
    let mut left_when_stored = Vec::new();
    for i in 0..10i64 {
        let t = now + i * 1000;
        let env = envelope(
            "fresh",
            &format!("fresh-{i}"),
            t,
            snapshot_body(Status::Online, Health::Ok, &[], Some(100 + i as u64 * 50)),
        );
        let sent = Instant::now();
        publish_acked(
            &js,
            Kind::Snapshot.subject("fresh"),
            enc(&env),
            &format!("fresh-{i}"),
        )
        .await;
        let stored = format!("system_state WHERE system_id = 'fresh' AND observed_at = {t}");
        assert!(
            wait_for(Duration::from_secs(30), || async {
                (count(&db, &stored).await == 1).then_some(())
            })
            .await
            .is_some(),
            "snapshot {i} was not stored"
        );
        slowest = slowest.max(sent.elapsed());
        left_when_stored.push(count(&db, old).await);
    }
    eprintln!("slowest snapshot: {slowest:?}; old samples left after each: {left_when_stored:?}");
    assert!(
        left_when_stored[0] > 0,
        "the pass was over before the first snapshots were stored: {left_when_stored:?}"
    );
    assert!(
        slowest < Duration::from_millis(1500),
        "a snapshot waited {slowest:?} for the retention pass"
    );
    // The pass ends, and deleted only what was old.
    assert!(
        wait_for(Duration::from_secs(180), || async {
            (count(&db, old).await == 0).then_some(())
        })
        .await
        .is_some(),
        "the retention pass did not end: {} old samples left",
        count(&db, old).await
    );
    for table in old_deep {
        assert!(
            wait_for(Duration::from_secs(60), || async {
                (count(&db, table).await == 0).then_some(())
            })
            .await
            .is_some(),
            "the retention pass did not empty {table}"
        );
    }
    assert_eq!(
        scalar(
            &db,
            "SELECT CAST(SUM(samples) AS TEXT) FROM capacity_hourly WHERE system_id = 'fresh'"
        )
        .await,
        10
    );
    stop.cancel();
    let _ = task.await;
}

both_backends!(a_large_retention_pass_does_not_hold_up_ingestion);
