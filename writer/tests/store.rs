//! Store-level behaviour on both backends: idempotency, newest-wins state, derived history,
//! rollups, dead letters and retention.

mod common;

use common::*;
use sdash_harness::{Backend, TestDatabase};
use sdash_proto::subjects::Kind;
use sdash_proto::*;
use sdash_writer::{Incoming, RetentionPolicy, Store};

async fn open(db: &TestDatabase) -> Store {
    Store::open(&db.url)
        .await
        .unwrap_or_else(|e| panic!("open {}: {e}", db.url))
}

async fn write(store: &Store, batch: &[Incoming]) -> sdash_writer::BatchOutcome {
    store
        .write_batch(batch)
        .await
        .unwrap_or_else(|e| panic!("write_batch: {e}"))
}

const T0: i64 = 1_764_000_000_000;

async fn same_snapshot_twice_is_one_row(backend: Backend) {
    let db = TestDatabase::new(backend).await;
    let store = open(&db).await;
    let snap = snapshot_msg(
        1,
        "sys-1",
        T0,
        snapshot_body(Status::Online, Health::Ok, &["a1", "a2"], Some(400)),
    );
    write(&store, std::slice::from_ref(&snap)).await;
    // Redelivered alone, replayed under a new sequence, and twice inside one batch.
    write(&store, std::slice::from_ref(&snap)).await;
    let mut again = snap.clone();
    again.stream_seq = 2;
    write(&store, &[again.clone(), again]).await;
    assert_eq!(count(&db, "system_state").await, 1);
    assert_eq!(
        count(
            &db,
            "systems WHERE id = 'sys-1' AND name = 'sys-1' AND vendor = 'pure'"
        )
        .await,
        1
    );
    assert_eq!(count(&db, "capacity_samples").await, 1);
    assert_eq!(
        scalar(&db, "SELECT CAST(samples AS TEXT) FROM capacity_daily").await,
        1
    );
    assert_eq!(count(&db, "alerts").await, 2);
    assert_eq!(count(&db, "status_transitions").await, 3);
    assert_eq!(
        scalar(
            &db,
            "SELECT CAST(last_stream_seq AS TEXT) FROM pipeline_status WHERE id = 1"
        )
        .await,
        2
    );
    // Reopening runs no migration twice.
    drop(store);
    let store = open(&db).await;
    // SQLite has no 0003 (a PostgreSQL-only storage setting); 0004 is the change outbox.
    let migrations = match backend {
        Backend::Sqlite => 3,
        Backend::Postgres => 4,
    };
    assert_eq!(count(&db, "schema_migrations").await, migrations);
    store.close().await;
}

async fn out_of_order_snapshots_keep_the_newest_state(backend: Backend) {
    let db = TestDatabase::new(backend).await;
    let store = open(&db).await;
    write(
        &store,
        &[snapshot_msg(
            1,
            "s1",
            T0 + 2000,
            snapshot_body(Status::Online, Health::Ok, &[], Some(200)),
        )],
    )
    .await;
    write(
        &store,
        &[snapshot_msg(
            2,
            "s1",
            T0 + 1000,
            snapshot_body(Status::Unreachable, Health::Unknown, &[], None),
        )],
    )
    .await;
    let state = rows(
        &db,
        "SELECT CAST(observed_at AS TEXT), status, CAST(last_online_at AS TEXT) FROM system_state",
    )
    .await;
    assert_eq!(
        state,
        vec![vec![
            Some((T0 + 2000).to_string()),
            Some("online".into()),
            Some((T0 + 2000).to_string())
        ]]
    );
    // A newer unreachable one wins, then a late online one only moves last_online_at.
    write(
        &store,
        &[snapshot_msg(
            3,
            "s1",
            T0 + 3000,
            snapshot_body(Status::Unreachable, Health::Unknown, &[], None),
        )],
    )
    .await;
    write(
        &store,
        &[snapshot_msg(
            4,
            "s1",
            T0 + 2500,
            snapshot_body(Status::Online, Health::Ok, &[], Some(250)),
        )],
    )
    .await;
    let state = rows(
        &db,
        "SELECT CAST(observed_at AS TEXT), status, CAST(last_online_at AS TEXT) FROM system_state",
    )
    .await;
    assert_eq!(
        state,
        vec![vec![
            Some((T0 + 3000).to_string()),
            Some("unreachable".into()),
            Some((T0 + 2500).to_string())
        ]]
    );
    // Late snapshots still give their capacity samples; history only from newer ones.
    assert_eq!(count(&db, "capacity_samples").await, 2);
    assert_eq!(
        count(&db, "status_transitions WHERE field = 'status'").await,
        2
    );
    // Inside one batch the order of arrival does not matter either.
    let batch = vec![
        snapshot_msg(
            5,
            "s2",
            T0 + 3000,
            snapshot_body(Status::Error, Health::Unknown, &[], None),
        ),
        snapshot_msg(
            6,
            "s2",
            T0 + 1000,
            snapshot_body(Status::Online, Health::Ok, &[], Some(1)),
        ),
    ];
    write(&store, &batch).await;
    assert_eq!(
        scalar(
            &db,
            "SELECT CAST(observed_at AS TEXT) FROM system_state WHERE system_id = 's2'"
        )
        .await,
        T0 + 3000
    );
    assert_eq!(
        count(
            &db,
            "status_transitions WHERE system_id = 's2' AND field = 'status'"
        )
        .await,
        2
    );
}

fn alert_story(system: &str, seq0: u64) -> Vec<Incoming> {
    let on = |a: &[&str]| snapshot_body(Status::Online, Health::Ok, a, None);
    vec![
        snapshot_msg(seq0, system, T0 + 1, on(&["a", "b"])),
        snapshot_msg(seq0 + 1, system, T0 + 2, on(&["a"])),
        snapshot_msg(seq0 + 2, system, T0 + 3, on(&["a", "c"])),
        // Unreachable: says nothing about alerts, clears nothing.
        snapshot_msg(
            seq0 + 3,
            system,
            T0 + 4,
            snapshot_body(Status::Unreachable, Health::Unknown, &[], None),
        ),
        snapshot_msg(seq0 + 4, system, T0 + 5, on(&["c"])),
        snapshot_msg(seq0 + 5, system, T0 + 6, on(&[])),
        snapshot_msg(seq0 + 6, system, T0 + 7, on(&["b"])),
    ]
}

async fn alert_history(db: &TestDatabase, system: &str) -> Vec<Vec<Option<String>>> {
    rows(
        db,
        &format!(
            "SELECT alert_id, CAST(first_seen - {T0} AS TEXT), CAST(last_seen - {T0} AS TEXT), CAST(cleared_at - {T0} AS TEXT) \
             FROM alerts WHERE system_id = '{system}' ORDER BY alert_id, first_seen"
        ),
    )
    .await
}

async fn alerts_open_still_open_cleared(backend: Backend) {
    let db = TestDatabase::new(backend).await;
    let store = open(&db).await;
    // One snapshot per batch for one system, all in one batch for another.
    for m in alert_story("one-by-one", 1) {
        write(&store, &[m]).await;
    }
    write(&store, &alert_story("all-at-once", 100)).await;
    let s = |v: &str| Some(v.to_owned());
    let expected = vec![
        vec![s("a"), s("1"), s("3"), s("5")],
        vec![s("b"), s("1"), s("1"), s("2")],
        vec![s("b"), s("7"), s("7"), None],
        vec![s("c"), s("3"), s("5"), s("6")],
    ];
    assert_eq!(alert_history(&db, "one-by-one").await, expected);
    assert_eq!(alert_history(&db, "all-at-once").await, expected);
    // Replaying the whole story changes nothing.
    write(&store, &alert_story("one-by-one", 1)).await;
    for m in alert_story("all-at-once", 100) {
        write(&store, &[m]).await;
    }
    assert_eq!(alert_history(&db, "one-by-one").await, expected);
    assert_eq!(alert_history(&db, "all-at-once").await, expected);
    assert_eq!(count(&db, "alerts WHERE cleared_at IS NULL").await, 2);
}

/// An open alert seen again: a change of its details is stored, an unchanged sighting only
/// moves `last_seen`, and a sighting without `opened_at` keeps the stored one.
async fn open_alert_details_follow_the_newest_sighting(backend: Backend) {
    let db = TestDatabase::new(backend).await;
    let store = open(&db).await;
    let seen = |seq: u64, at: i64, severity: Severity, title: &str, opened: Option<i64>| {
        let mut body = snapshot_body(Status::Online, Health::Ok, &["a"], None);
        body.alerts[0].severity = severity;
        body.alerts[0].vendor_severity = severity.as_str().to_owned();
        body.alerts[0].title = title.to_owned();
        body.alerts[0].opened_at = opened;
        snapshot_msg(seq, "alerting", T0 + at, body)
    };
    let row = || async {
        rows(
            &db,
            &format!(
                "SELECT severity, vendor_severity, title, CAST(opened_at AS TEXT), CAST(last_seen - {T0} AS TEXT), \
                 CAST(cleared_at AS TEXT) FROM alerts WHERE system_id = 'alerting'"
            ),
        )
        .await
    };
    let expect = |title: &str, last_seen: &str| {
        let s = |v: &str| Some(v.to_owned());
        vec![vec![
            s("critical"),
            s("critical"),
            s(title),
            s(&T0.to_string()),
            s(last_seen),
            None,
        ]]
    };
    let critical = |seq: u64, title: &str, opened: Option<i64>| {
        seen(seq, seq as i64, Severity::Critical, title, opened)
    };
    write(
        &store,
        &[seen(1, 1, Severity::Warning, "fan slow", Some(T0))],
    )
    .await;
    // Changed details, one batch later and twice within one batch (the newest wins).
    write(&store, &[critical(2, "fan failed", Some(T0))]).await;
    assert_eq!(row().await, expect("fan failed", "2"));
    let slow_again = seen(3, 3, Severity::Warning, "fan slow again", Some(T0));
    write(
        &store,
        &[slow_again, critical(4, "fan failed again", Some(T0))],
    )
    .await;
    assert_eq!(row().await, expect("fan failed again", "4"));
    // Unchanged: only last_seen moves; without opened_at the stored one stays.
    write(&store, &[critical(5, "fan failed again", Some(T0))]).await;
    write(&store, &[critical(6, "fan failed again", None)]).await;
    assert_eq!(row().await, expect("fan failed again", "6"));
    // A redelivered older sighting moves nothing back.
    write(&store, &[critical(2, "fan failed", Some(T0))]).await;
    assert_eq!(row().await[0][4].as_deref(), Some("6"));
    assert_eq!(count(&db, "alerts").await, 1);
}

async fn transitions_are_recorded(backend: Backend) {
    let db = TestDatabase::new(backend).await;
    let store = open(&db).await;
    let batch = vec![
        snapshot_msg(
            1,
            "s1",
            T0 + 1,
            snapshot_body(Status::Online, Health::Ok, &[], None),
        ),
        snapshot_msg(
            2,
            "s1",
            T0 + 2,
            snapshot_body(Status::Online, Health::Warning, &[], None),
        ),
    ];
    write(&store, &batch).await;
    write(
        &store,
        &[snapshot_msg(
            3,
            "s1",
            T0 + 3,
            snapshot_body(Status::Unreachable, Health::Unknown, &[], None),
        )],
    )
    .await;
    write(&store, &batch).await; // redelivery of the first batch
    let got = rows(
        &db,
        &format!("SELECT field, from_value, to_value, CAST(at - {T0} AS TEXT) FROM status_transitions ORDER BY field, at"),
    )
    .await;
    let s = |v: &str| Some(v.to_owned());
    assert_eq!(
        got,
        vec![
            vec![s("cluster"), None, s("ok"), s("1")],
            vec![s("hardware"), None, s("ok"), s("1")],
            vec![s("hardware"), s("ok"), s("warning"), s("2")],
            vec![s("hardware"), s("warning"), s("unknown"), s("3")],
            vec![s("status"), None, s("online"), s("1")],
            vec![s("status"), s("online"), s("unreachable"), s("3")],
        ]
    );
}

async fn rollups_equal_raw_aggregates(backend: Backend) {
    let db = TestDatabase::new(backend).await;
    let store = open(&db).await;
    // Three days of samples for two systems, every 2 h, in overlapping, redelivered batches.
    let mut all = Vec::new();
    let mut seq = 0;
    for system in ["cap-7", "cap-13"] {
        for i in 0..36i64 {
            seq += 1;
            let used = ((i * 37 + seq as i64 * 11) % 900) as u64;
            all.push(snapshot_msg(
                seq,
                system,
                T0 + i * 7_200_000,
                snapshot_body(Status::Online, Health::Ok, &[], Some(used)),
            ));
        }
    }
    for chunk in all.chunks(10) {
        write(&store, chunk).await;
    }
    for chunk in all.chunks(7) {
        write(&store, chunk).await;
    }
    let day = match backend {
        Backend::Sqlite => "strftime('%Y-%m-%d', observed_at / 1000, 'unixepoch')",
        Backend::Postgres => {
            "to_char(to_timestamp(observed_at / 1000) AT TIME ZONE 'UTC', 'YYYY-MM-DD')"
        }
    };
    let raw = rows(
        &db,
        &format!(
            "SELECT system_id, {day} AS d, CAST(count(*) AS TEXT), CAST(min(used_bytes) AS TEXT), CAST(max(used_bytes) AS TEXT), \
             CAST(sum(used_bytes) AS TEXT), CAST(max(observed_at) AS TEXT) FROM capacity_samples GROUP BY system_id, d ORDER BY system_id, d"
        ),
    )
    .await;
    let daily = rows(
        &db,
        "SELECT system_id, day, CAST(samples AS TEXT), CAST(used_min AS TEXT), CAST(used_max AS TEXT), \
         CAST(CAST(used_sum AS BIGINT) AS TEXT), CAST(last_at AS TEXT) FROM capacity_daily ORDER BY system_id, day",
    )
    .await;
    assert_eq!(raw.len(), 8, "{raw:?}");
    assert_eq!(raw, daily);
    assert_eq!(count(&db, "capacity_samples").await, 72);
    // The last values are the last sample's.
    let last = rows(
        &db,
        "SELECT CAST(d.used_bytes AS TEXT), CAST(s.used_bytes AS TEXT) FROM capacity_daily d JOIN capacity_samples s \
         ON s.system_id = d.system_id AND s.observed_at = d.last_at",
    )
    .await;
    assert_eq!(last.len(), 8);
    assert!(last.iter().all(|r| r[0] == r[1]));
}

async fn bad_messages_become_dead_letters(backend: Backend) {
    let db = TestDatabase::new(backend).await;
    let store = open(&db).await;
    let subject = Kind::Snapshot.subject("x");
    let good = enc(&envelope(
        "x",
        "good-1",
        T0,
        snapshot_body(Status::Online, Health::Ok, &[], Some(5)),
    ));
    let mut v2 = envelope(
        "x",
        "v2-1",
        T0,
        snapshot_body(Status::Online, Health::Ok, &[], None),
    );
    v2.schema = 2;
    let mut poison = event_msg(6, "x", "ev-poison", T0, "poison");
    poison.deliveries = 11;
    let batch = vec![
        incoming(1, subject.clone(), b"\xc1\xff garbage".to_vec()),
        incoming(2, subject.clone(), good[..good.len() / 2].to_vec()),
        incoming(3, subject.clone(), vec![0x90; codec::MAX_PAYLOAD_BYTES + 1]),
        incoming(4, subject.clone(), enc(&v2)),
        incoming(5, subject.clone(), good.clone()),
        poison,
        incoming(7, "sdash.v1.nonsense.x".into(), good.clone()),
        event_msg(8, "x", "ev-nul", T0, "nul \0 byte"),
    ];
    let out = write(&store, &batch).await;
    assert_eq!(out.dead_lettered, vec![1, 2, 3, 4, 6, 7]);
    write(&store, &batch).await; // redelivered: stored once
    assert_eq!(count(&db, "dead_letters").await, 6);
    assert_eq!(
        count(
            &db,
            "dead_letters WHERE stream_seq = 3 AND reason LIKE 'oversized%'"
        )
        .await,
        1
    );
    assert_eq!(
        count(
            &db,
            "dead_letters WHERE stream_seq = 4 AND reason LIKE '%schema version 2%'"
        )
        .await,
        1
    );
    assert_eq!(
        count(
            &db,
            "dead_letters WHERE stream_seq = 6 AND reason LIKE 'poison%' AND deliveries = 11"
        )
        .await,
        1
    );
    let raw = rows(
        &db,
        "SELECT CAST(length(payload) AS TEXT) FROM dead_letters WHERE stream_seq = 1",
    )
    .await;
    assert_eq!(raw, vec![vec![Some("10".to_owned())]]);
    assert_eq!(count(&db, "system_state WHERE system_id = 'x'").await, 1);
    assert_eq!(count(&db, "events WHERE event_id = 'ev-nul'").await, 1);
}

/// A producer whose clock is far ahead must not win "newer wins" forever: its records are dead
/// letters, and the state keeps following the producers with a sane clock.
async fn far_future_observed_at_is_a_dead_letter(backend: Backend) {
    let db = TestDatabase::new(backend).await;
    let store = open(&db).await;
    let now = now_ms();
    let far = now + 365 * 86_400_000;
    let batch = vec![
        snapshot_msg(
            1,
            "skew",
            far,
            snapshot_body(Status::Unreachable, Health::Error, &["a"], Some(900)),
        ),
        snapshot_msg(
            2,
            "skew",
            now,
            snapshot_body(Status::Online, Health::Ok, &[], Some(5)),
        ),
        // A clock a minute ahead is within the allowed skew.
        snapshot_msg(
            3,
            "near",
            now + 60_000,
            snapshot_body(Status::Online, Health::Ok, &[], Some(5)),
        ),
        event_msg(4, "skew", "ev-future", far, "from the future"),
    ];
    let out = write(&store, &batch).await;
    assert_eq!(out.dead_lettered, vec![1, 4]);
    assert_eq!(
        count(
            &db,
            "dead_letters WHERE reason LIKE 'rejected: invalid record: observed_at%ahead of this reader''s clock%'"
        )
        .await,
        2
    );
    assert_eq!(count(&db, "events WHERE event_id = 'ev-future'").await, 0);
    assert_eq!(count(&db, "system_state WHERE system_id = 'near'").await, 1);
    let state =
        "SELECT status, CAST(observed_at AS TEXT) FROM system_state WHERE system_id = 'skew'";
    assert_eq!(
        rows(&db, state).await,
        vec![vec![Some("online".to_owned()), Some(now.to_string())]]
    );
    // Newer snapshots from a sane clock keep winning.
    write(
        &store,
        &[snapshot_msg(
            5,
            "skew",
            now + 1000,
            snapshot_body(Status::Unreachable, Health::Unknown, &[], None),
        )],
    )
    .await;
    assert_eq!(
        rows(&db, state).await,
        vec![vec![
            Some("unreachable".to_owned()),
            Some((now + 1000).to_string())
        ]]
    );
}

async fn inventory_and_collectors_newest_wins(backend: Backend) {
    let db = TestDatabase::new(backend).await;
    let store = open(&db).await;
    let sys = |seq: u64, t: i64, name: &str| {
        let body = SystemRecord {
            name: name.into(),
            vendor: Vendor::Ontap,
            address: "https://x".into(),
            tags: [("env".to_owned(), "prod".to_owned())].into(),
            interval_s: 60,
            enabled: true,
            removed: false,
        };
        incoming(
            seq,
            Kind::System.subject("inv-1"),
            enc(&envelope("inv-1", &format!("sys-{seq}"), t, body)),
        )
    };
    // A snapshot first: a minimal row appears.
    write(
        &store,
        &[snapshot_msg(
            1,
            "inv-1",
            T0,
            snapshot_body(Status::Online, Health::Ok, &[], None),
        )],
    )
    .await;
    assert_eq!(
        count(&db, "systems WHERE id = 'inv-1' AND name = 'inv-1'").await,
        1
    );
    write(&store, &[sys(2, T0 + 10, "new"), sys(3, T0 + 5, "old")]).await;
    write(&store, &[sys(4, T0 + 1, "older")]).await;
    assert_eq!(
        rows(&db, "SELECT name, vendor, tags FROM systems").await,
        vec![vec![
            Some("new".to_owned()),
            Some("ontap".to_owned()),
            Some("{\"env\":\"prod\"}".to_owned())
        ]]
    );
    let hb = |seq: u64, t: i64, polls: u64| {
        let mut env = envelope(
            "",
            &format!("hb-{seq}"),
            t,
            CollectorRecord {
                version: "1".into(),
                systems: vec!["inv-1".into()],
                polls,
                failures: 0,
                outbox_depth: 0,
                started_at: T0,
            },
        );
        env.collector_id = "col-a".into();
        incoming(seq, Kind::Collector.subject("col-a"), enc(&env))
    };
    write(&store, &[hb(5, T0 + 20, 7)]).await;
    write(&store, &[hb(6, T0 + 10, 3)]).await;
    assert_eq!(
        scalar(
            &db,
            "SELECT CAST(polls AS TEXT) FROM collectors WHERE id = 'col-a'"
        )
        .await,
        7
    );
}

async fn retention_applies_to_every_system(backend: Backend) {
    let db = TestDatabase::new(backend).await;
    let store = open(&db).await;
    let now = now_ms();
    let day = 86_400_000;
    let mut batch = Vec::new();
    let mut seq = 0;
    // sys-7: 1200 recent events; sys-13: 40 recent + 30 older than 30 days; sys-10: 1001 recent.
    for (system, n, age) in [
        ("sys-7", 1200, 0),
        ("sys-13", 40, 0),
        ("sys-13", 30, 31 * day),
        ("sys-10", 1001, 0),
    ] {
        for i in 0..n {
            seq += 1;
            batch.push(event_msg(
                seq,
                system,
                &format!("{system}-{age}-{i:05}"),
                now - age - 1000 - i64::from(i) * 10,
                "m",
            ));
        }
    }
    for chunk in batch.chunks(700) {
        write(&store, chunk).await;
    }
    write(
        &store,
        &[snapshot_msg(
            seq + 1,
            "sys-7",
            now - 91 * day,
            snapshot_body(Status::Online, Health::Ok, &[], Some(1)),
        )],
    )
    .await;
    write(
        &store,
        &[snapshot_msg(
            seq + 2,
            "sys-7",
            now - 10 * day,
            snapshot_body(Status::Online, Health::Ok, &[], Some(2)),
        )],
    )
    .await;
    let policy = RetentionPolicy {
        batch_rows: 64,
        ..RetentionPolicy::default()
    };
    let out = store
        .apply_retention(&policy)
        .await
        .unwrap_or_else(|e| panic!("retention: {e}"));
    assert_eq!(out.events_expired, 30);
    assert_eq!(out.events_over_limit, 201);
    assert_eq!(out.capacity_samples_expired, 1);
    assert_eq!(count(&db, "events WHERE system_id = 'sys-7'").await, 1000);
    assert_eq!(count(&db, "events WHERE system_id = 'sys-10'").await, 1000);
    assert_eq!(count(&db, "events WHERE system_id = 'sys-13'").await, 40);
    // The newest are the ones kept.
    assert_eq!(
        count(
            &db,
            "events WHERE system_id = 'sys-7' AND event_id > 'sys-7-0-00999'"
        )
        .await,
        0
    );
    assert_eq!(
        count(
            &db,
            "events WHERE system_id = 'sys-10' AND event_id = 'sys-10-0-01000'"
        )
        .await,
        0
    );
    assert_eq!(
        count(&db, "capacity_daily").await,
        2,
        "rollups outlive raw samples"
    );
    let again = store
        .apply_retention(&policy)
        .await
        .unwrap_or_else(|e| panic!("retention: {e}"));
    assert_eq!(again.total(), 0);
    // Zero means "keep forever" / "no limit".
    let keep = RetentionPolicy {
        event_retention_days: 0,
        events_per_system: 0,
        capacity_raw_days: 0,
        dead_letter_days: 0,
        batch_rows: 10,
    };
    let none = store
        .apply_retention(&keep)
        .await
        .unwrap_or_else(|e| panic!("retention: {e}"));
    assert_eq!(none.total(), 0);
    assert_eq!(count(&db, "events").await, 2040);
}

both_backends!(
    same_snapshot_twice_is_one_row,
    out_of_order_snapshots_keep_the_newest_state,
    alerts_open_still_open_cleared,
    open_alert_details_follow_the_newest_sighting,
    transitions_are_recorded,
    rollups_equal_raw_aggregates,
    bad_messages_become_dead_letters,
    far_future_observed_at_is_a_dead_letter,
    inventory_and_collectors_newest_wins,
    retention_applies_to_every_system,
);
