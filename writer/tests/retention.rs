//! Retention at scale: a large pass runs in bounded steps between batches (through the store,
//! and through the running writer), so snapshots keep being stored while it runs.

mod common;

use std::time::{Duration, Instant};

use common::*;
use sdash_harness::{Backend, NatsServer, TestDatabase, wait_for};
use sdash_proto::subjects::Kind;
use sdash_proto::*;
use sdash_service::Shutdown;
use sdash_writer::{RetentionPolicy, Store, WriterConfig};

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

/// `per_system` events (the oldest `old` of them older than the event window) of each of 20
/// systems.
async fn events(db: &TestDatabase, now: i64, per_system: i64, old: i64) {
    let old_at = now - 40 * 86_400_000;
    let sql = match db.backend {
        Backend::Sqlite => format!(
            "WITH RECURSIVE s(i) AS (SELECT 0 UNION ALL SELECT i + 1 FROM s WHERE i < 19), \
             n(k) AS (SELECT 0 UNION ALL SELECT k + 1 FROM n WHERE k < {per_system} - 1) \
             INSERT INTO events (event_id, system_id, collector_id, observed_at, level, level_rank, category, message) \
             SELECT printf('ev-%02d-%04d', i, k), printf('ev-%02d', i), 'c1', \
             CASE WHEN k < {old} THEN {old_at} + k * 1000 ELSE {now} - 86400000 + k * 1000 END, \
             'info', 1, 'api_call', 'm' FROM s, n"
        ),
        Backend::Postgres => format!(
            "INSERT INTO events (event_id, system_id, collector_id, observed_at, level, level_rank, category, message) \
             SELECT format('ev-%s-%s', lpad(i::text, 2, '0'), lpad(k::text, 4, '0')), format('ev-%s', lpad(i::text, 2, '0')), 'c1', \
             CASE WHEN k < {old} THEN {old_at} + k * 1000::bigint ELSE {now} - 86400000 + k * 1000::bigint END, \
             'info', 1, 'api_call', 'm' FROM generate_series(0, 19) i, generate_series(0, {per_system} - 1) k"
        ),
    };
    exec(db, &sql).await;
}

/// The retention policy of the store-level tests: events kept 30 days and 50 per system, raw
/// samples 90 days (performance: 7), hourly rollups 400 days, `batch` rows per statement.
fn policy(batch: u32) -> RetentionPolicy {
    RetentionPolicy {
        event_retention_days: 30,
        events_per_system: 50,
        batch_rows: batch,
        ..RetentionPolicy::default()
    }
}

/// A large pass run as the writer runs it, in steps between batches, here with no time budget
/// (a step is then one statement): every step deletes at most one batch of rows with one or two
/// statements, each batch written between steps is stored while old rows are still left (the
/// pass interleaves with ingestion rather than finishing first), and the pass deletes exactly
/// what is beyond the windows.
async fn retention_steps_are_bounded_and_interleave_with_batches(backend: Backend) {
    let db = TestDatabase::new(backend).await;
    open(&db).await.close().await;
    let now = now_ms();
    old_samples(&db, now - 100 * 86_400_000).await;
    // 20 systems x 80 events: 10 expired, 20 more beyond the limit of 50.
    events(&db, now, 80, 10).await;
    let old = "capacity_samples WHERE system_id LIKE 'old-%'";
    let store = open(&db).await;
    let batch = 1000u32;
    let mut run = store.start_retention(&policy(batch));
    let mut steps = 0u64;
    let mut seq = 0u64;
    let mut left_when_stored = Vec::new();
    while !run.is_done() {
        let statements = run.statements();
        let step = store
            .retention_step(&mut run, Duration::ZERO)
            .await
            .unwrap_or_else(|e| panic!("retention step: {e}"));
        steps += 1;
        assert!(
            step.total() <= u64::from(batch),
            "step {steps} deleted {} rows: {step:?}",
            step.total()
        );
        let ran = run.statements() - statements;
        assert!((1..=2).contains(&ran), "step {steps} ran {ran} statements");
        if steps % 10 == 1 {
            seq += 1;
            let at = now - 1000 + seq as i64;
            let msg = snapshot_msg(
                seq,
                "fresh",
                at,
                snapshot_body(Status::Online, Health::Ok, &[], Some(100 + seq * 10)),
            );
            store
                .write_batch(&[msg])
                .await
                .unwrap_or_else(|e| panic!("write_batch: {e}"));
            let stored = format!("system_state WHERE system_id = 'fresh' AND observed_at = {at}");
            assert_eq!(count(&db, &stored).await, 1, "batch {seq}");
            left_when_stored.push(count(&db, old).await);
        }
    }
    store.close().await;
    // 200,000 + 20,000 + 20,000 rows (and 600 events) in batches of 1,000: hundreds of steps.
    assert!(steps > 240, "{steps} steps");
    let during = left_when_stored
        .iter()
        .filter(|&&left| left > 0 && left < 200_000)
        .count();
    assert!(
        during >= 10,
        "the pass was not interleaved with the batches: {left_when_stored:?}"
    );
    assert!(
        left_when_stored.windows(2).all(|w| w[0] >= w[1]),
        "{left_when_stored:?}"
    );
    let d = run.deleted;
    assert_eq!(d.capacity_samples_expired, 200_000, "{d:?}");
    assert_eq!(d.performance_samples_expired, 20_000, "{d:?}");
    assert_eq!(d.pool_hourly_expired, 20_000, "{d:?}");
    assert_eq!(d.events_expired, 20 * 10, "{d:?}");
    assert_eq!(d.events_over_limit, 20 * 20, "{d:?}");
    assert_eq!(d.systems_trimmed, 20, "{d:?}");
    assert_eq!(count(&db, old).await, 0);
    for table in [
        "performance_samples WHERE system_id LIKE 'old-%'",
        "pool_hourly WHERE system_id LIKE 'old-%'",
    ] {
        assert_eq!(count(&db, table).await, 0, "{table}");
    }
    // Each system keeps its newest 50 events.
    let kept = "SELECT CAST(count(*) AS TEXT) FROM events WHERE system_id LIKE 'ev-%' \
                AND CAST(substr(event_id, 7) AS INTEGER) >= 30";
    assert_eq!(scalar(&db, kept).await, 20 * 50);
    assert_eq!(
        count(&db, "events WHERE system_id LIKE 'ev-%'").await,
        20 * 50
    );
    // Every batch written during the pass is in the tiers.
    assert_eq!(
        scalar(
            &db,
            "SELECT CAST(SUM(samples) AS TEXT) FROM capacity_hourly WHERE system_id = 'fresh'"
        )
        .await,
        seq as i64
    );
}

/// Sequential scans of the tables retention deletes from, and index scans of capacity_samples.
async fn scans(db: &TestDatabase) -> (Vec<(String, i64)>, i64) {
    let seq = rows(
        db,
        "SELECT CAST(relname AS TEXT), CAST(seq_scan AS TEXT) FROM pg_stat_user_tables \
         WHERE relname IN ('capacity_samples', 'performance_samples', 'pool_hourly', 'events') ORDER BY relname",
    )
    .await
    .into_iter()
    .map(|r| {
        let n = r[1].as_deref().and_then(|v| v.parse().ok()).unwrap_or(-1);
        (r[0].clone().unwrap_or_default(), n)
    })
    .collect();
    let idx = scalar(
        db,
        "SELECT CAST(COALESCE(idx_scan, 0) AS TEXT) FROM pg_stat_user_tables WHERE relname = 'capacity_samples'",
    )
    .await;
    (seq, idx)
}

/// On PostgreSQL, no retention statement reads a large table from its start (a sequential
/// scan: when the old rows are gone, or deleted but not vacuumed, that is the whole table, for
/// seconds at fleet size): each finds its rows through an index. The server's own counters say
/// so, once the store's connection has ended (a session reports them when it ends).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn retention_reads_tables_through_their_indexes_on_postgres() {
    let db = TestDatabase::new(Backend::Postgres).await;
    open(&db).await.close().await;
    let now = now_ms();
    old_samples(&db, now - 100 * 86_400_000).await;
    events(&db, now, 80, 10).await;
    // Newer rows too: the planner sees tables mostly to keep.
    exec(
        &db,
        &format!(
            "INSERT INTO capacity_samples SELECT format('new-%s', lpad(i::text, 3, '0')), {now} - k * 60000::bigint, 1000, 500, 500 \
             FROM generate_series(0, 99) i, generate_series(0, 1999) k; ANALYZE"
        ),
    )
    .await;
    let (seq_before, idx_before) = scans(&db).await;
    assert_eq!(seq_before.len(), 4, "{seq_before:?}");
    let store = open(&db).await;
    let deleted = store
        .apply_retention(&policy(1000))
        .await
        .unwrap_or_else(|e| panic!("retention: {e}"));
    store.close().await;
    assert_eq!(deleted.capacity_samples_expired, 200_000, "{deleted:?}");
    assert_eq!(deleted.events_over_limit, 20 * 20, "{deleted:?}");
    let reported = wait_for(Duration::from_secs(30), || async {
        let (seq, idx) = scans(&db).await;
        (idx > idx_before).then_some(seq)
    })
    .await
    .unwrap_or_else(|| panic!("the store's session never reported its scans"));
    assert_eq!(
        reported, seq_before,
        "sequential scans during the retention pass"
    );
}

both_backends!(
    a_large_retention_pass_does_not_hold_up_ingestion,
    retention_steps_are_bounded_and_interleave_with_batches,
);
