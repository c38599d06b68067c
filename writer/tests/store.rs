//! Store-level behaviour on both backends: idempotency, newest-wins state, derived history,
//! rollups, dead letters and retention.

mod common;

use common::*;
use sdash_harness::{Backend, TestDatabase};
use sdash_proto::subjects::Kind;
use sdash_proto::*;
use sdash_writer::{Incoming, RetentionPolicy, Store};

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
    // SQLite has no 0003 (a PostgreSQL-only storage setting): one per migration file.
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("migrations")
        .join(match backend {
            Backend::Sqlite => "sqlite",
            Backend::Postgres => "postgres",
        });
    let migrations = std::fs::read_dir(&dir)
        .unwrap_or_else(|e| panic!("{}: {e}", dir.display()))
        .count() as i64;
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

/// A small deterministic generator (xorshift64*), so a failing case replays by its seed.
struct Rng(u64);

impl Rng {
    fn below(&mut self, n: u64) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_f491_4f6c_dd1d) % n.max(1)
    }
}

/// `(system, observed_at, used)` of a capacity history: two systems over three days, polled
/// every 1 to 20 minutes with gaps of hours, mostly creeping inside the deadband (0.1 % of the
/// 1000-byte total is 1 byte), sometimes jumping.
fn capacity_history(rng: &mut Rng) -> Vec<(&'static str, i64, u64)> {
    let mut out = Vec::new();
    for system in ["cap-7", "cap-13"] {
        let mut t = T0 + rng.below(3_600_000) as i64;
        let mut used: u64 = 400;
        while t < T0 + 3 * 86_400_000 {
            t += match rng.below(20) {
                0 => 3_600_000 + rng.below(10_800_000) as i64,
                _ => 60_000 * (1 + rng.below(20) as i64),
            };
            used = match rng.below(6) {
                0 => (used + rng.below(40)).min(1000),
                1 => used.saturating_sub(rng.below(40)),
                2 => (used + 1).min(1000),
                _ => used,
            };
            out.push((system, t, used));
        }
    }
    out.sort_by_key(|s| s.1);
    out
}

/// The three tiers as stored, as text.
async fn tiers(db: &TestDatabase) -> [Vec<Vec<Option<String>>>; 3] {
    [
        rows(
            db,
            "SELECT system_id, CAST(observed_at AS TEXT), CAST(total_bytes AS TEXT), CAST(used_bytes AS TEXT), \
             CAST(free_bytes AS TEXT) FROM capacity_samples ORDER BY system_id, observed_at",
        )
        .await,
        rows(
            db,
            "SELECT system_id, CAST(hour AS TEXT), CAST(samples AS TEXT), CAST(used_min AS TEXT), CAST(used_max AS TEXT), \
             CAST(CAST(used_sum AS BIGINT) AS TEXT), CAST(last_at AS TEXT), CAST(total_bytes AS TEXT), \
             CAST(used_bytes AS TEXT), CAST(free_bytes AS TEXT) FROM capacity_hourly ORDER BY system_id, hour",
        )
        .await,
        rows(
            db,
            "SELECT system_id, day, CAST(samples AS TEXT), CAST(used_min AS TEXT), CAST(used_max AS TEXT), \
             CAST(CAST(used_sum AS BIGINT) AS TEXT), CAST(last_at AS TEXT), CAST(total_bytes AS TEXT), \
             CAST(used_bytes AS TEXT), CAST(free_bytes AS TEXT), source FROM capacity_daily ORDER BY system_id, day",
        )
        .await,
    ]
}

/// The rollup property on the real statements: whatever the batches (split anywhere, with
/// redeliveries of messages already written, messages repeated inside a batch), the raw, hourly
/// and daily rows are those of delivering each message once, the rollups count every sample
/// exactly once (min, max, sum, last are the samples'), and raw samples are stored only outside
/// the deadband or after the maximum gap.
async fn rollups_equal_raw_aggregates(backend: Backend) {
    for seed in [7u64, 1_000_003] {
        let mut rng = Rng(seed);
        let history = capacity_history(&mut rng);
        let msgs: Vec<Incoming> = history
            .iter()
            .enumerate()
            .map(|(i, &(system, t, used))| {
                snapshot_msg(
                    i as u64 + 1,
                    system,
                    t,
                    snapshot_body(Status::Online, Health::Ok, &[], Some(used)),
                )
            })
            .collect();

        let once = TestDatabase::new(backend).await;
        let store = open(&once).await;
        for m in &msgs {
            write(&store, std::slice::from_ref(m)).await;
        }
        store.close().await;
        let expected = tiers(&once).await;

        let messy = TestDatabase::new(backend).await;
        let store = open(&messy).await;
        let mut next = 0;
        let mut not_newer = 0;
        while next < msgs.len() {
            let end = (next + 1 + rng.below(60) as usize).min(msgs.len());
            let mut batch: Vec<Incoming> = msgs[next..end].to_vec();
            // Redeliveries of messages already written, and repeats inside the batch.
            for _ in 0..rng.below(8) {
                let i = rng.below(end as u64) as usize;
                let mut again = msgs[i].clone();
                again.deliveries = 2;
                batch.push(again);
            }
            not_newer += write(&store, &batch).await.rows.capacity_samples_not_newer;
            if rng.below(4) == 0 {
                // The whole batch again (its acks were lost).
                let again = write(&store, &batch).await;
                assert_eq!(again.rows.capacity_samples, 0);
                assert_eq!(again.rows.capacity_hourly, 0);
                assert_eq!(again.rows.capacity_daily, 0);
            }
            next = end;
        }
        store.close().await;
        assert!(not_newer > 0, "the redeliveries were not seen");
        let got = tiers(&messy).await;
        assert_eq!(got[0], expected[0], "seed {seed}: raw");
        assert_eq!(got[1], expected[1], "seed {seed}: hourly");
        assert_eq!(got[2], expected[2], "seed {seed}: daily");

        // The rollups are the samples' own aggregates.
        let mut hourly: std::collections::BTreeMap<(String, i64), [i64; 5]> = Default::default();
        let mut daily: std::collections::BTreeMap<(String, String), [i64; 5]> = Default::default();
        for &(system, t, used) in &history {
            let u = used as i64;
            for agg in [
                hourly
                    .entry((system.to_owned(), t / 3_600_000 * 3_600_000))
                    .or_insert([0, i64::MAX, i64::MIN, 0, 0]),
                daily
                    .entry((system.to_owned(), sdash_writer::store::utc_day(t)))
                    .or_insert([0, i64::MAX, i64::MIN, 0, 0]),
            ] {
                *agg = [agg[0] + 1, agg[1].min(u), agg[2].max(u), agg[3] + u, t];
            }
        }
        let text = |a: &[i64; 5]| a.iter().map(|v| Some(v.to_string())).collect::<Vec<_>>();
        let want_hourly: Vec<Vec<Option<String>>> = hourly
            .iter()
            .map(|((s, h), a)| {
                let mut row = vec![Some(s.clone()), Some(h.to_string())];
                row.extend(text(a));
                row
            })
            .collect();
        let got_hourly: Vec<Vec<Option<String>>> = got[1].iter().map(|r| r[..7].to_vec()).collect();
        assert_eq!(got_hourly, want_hourly, "seed {seed}: hourly aggregates");
        let want_daily: Vec<Vec<Option<String>>> = daily
            .iter()
            .map(|((s, d), a)| {
                let mut row = vec![Some(s.clone()), Some(d.clone())];
                row.extend(text(a));
                row
            })
            .collect();
        let got_daily: Vec<Vec<Option<String>>> = got[2].iter().map(|r| r[..7].to_vec()).collect();
        assert_eq!(got_daily, want_daily, "seed {seed}: daily aggregates");
        // The last values are the last sample's (used + free = total).
        assert!(got[1].iter().chain(got[2].iter()).all(|r| {
            let n = |i: usize| r[i].as_deref().and_then(|v| v.parse::<i64>().ok());
            n(7) == Some(1000) && n(8).zip(n(9)).map(|(u, f)| u + f) == Some(1000)
        }));

        // Raw: each system's first sample, then exactly those that moved by more than the
        // deadband (1 byte) from the last stored one, or came at least the maximum gap after it.
        let stored: std::collections::HashSet<(String, i64)> = got[0]
            .iter()
            .map(|r| {
                (
                    r[0].clone().unwrap_or_default(),
                    r[1].as_deref().and_then(|v| v.parse().ok()).unwrap_or(0),
                )
            })
            .collect();
        let mut last: std::collections::HashMap<&str, (i64, u64)> = Default::default();
        for &(system, t, used) in &history {
            let want = last.get(system).is_none_or(|&(at, u)| {
                t - at >= sdash_writer::RawSamplePolicy::default().max_gap_ms
                    || used.abs_diff(u) > 1
            });
            assert_eq!(
                stored.contains(&(system.to_owned(), t)),
                want,
                "seed {seed}: raw sample {system} {t} {used}"
            );
            if want {
                last.insert(system, (t, used));
            }
        }
        assert!(
            stored.len() < history.len() * 3 / 4,
            "the deadband thinned little: {} of {}",
            stored.len(),
            history.len()
        );
    }
}

/// A day imported from the predecessor is replaced by the first sample sdash measures for it
/// (not added to), and the measured day then merges as usual.
async fn measured_samples_replace_an_imported_day(backend: Backend) {
    let db = TestDatabase::new(backend).await;
    let store = open(&db).await;
    let day = sdash_writer::store::utc_day(T0);
    exec(
        &db,
        &format!(
            "INSERT INTO capacity_daily (system_id, day, samples, used_min, used_max, used_sum, last_at, total_bytes, used_bytes, free_bytes, source) \
             VALUES ('imp-1', '{day}', 1, 900, 900, 900, {}, 5000, 900, 4100, 'imported'), \
                    ('imp-1', '{}', 1, 800, 800, 800, {}, 5000, 800, 4200, 'imported')",
            T0 + 3_600_000,
            sdash_writer::store::utc_day(T0 - 86_400_000),
            T0 - 86_400_000
        ),
    )
    .await;
    for (i, used) in [(0i64, 300u64), (1, 350)] {
        write(
            &store,
            &[snapshot_msg(
                i as u64 + 1,
                "imp-1",
                T0 + i * 60_000,
                snapshot_body(Status::Online, Health::Ok, &[], Some(used)),
            )],
        )
        .await;
    }
    let got = rows(
        &db,
        "SELECT day, CAST(samples AS TEXT), CAST(used_min AS TEXT), CAST(used_max AS TEXT), CAST(CAST(used_sum AS BIGINT) AS TEXT), \
         CAST(total_bytes AS TEXT), CAST(used_bytes AS TEXT), source FROM capacity_daily WHERE system_id = 'imp-1' ORDER BY day",
    )
    .await;
    let s = |v: &str| Some(v.to_owned());
    assert_eq!(
        got,
        vec![
            // The day before stays imported.
            vec![
                Some(sdash_writer::store::utc_day(T0 - 86_400_000)),
                s("1"),
                s("800"),
                s("800"),
                s("800"),
                s("5000"),
                s("800"),
                s("imported")
            ],
            vec![
                Some(day),
                s("2"),
                s("300"),
                s("350"),
                s("650"),
                s("1000"),
                s("350"),
                s("measured")
            ],
        ]
    );
    store.close().await;
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
            seq + 3,
            "sys-7",
            now - 401 * day,
            snapshot_body(Status::Online, Health::Ok, &[], Some(1)),
        )],
    )
    .await;
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
    assert_eq!(out.capacity_samples_expired, 2);
    // Hourly rollups go after 400 days, daily ones are kept forever by default.
    assert_eq!(out.capacity_hourly_expired, 1);
    assert_eq!(out.capacity_daily_expired, 0);
    assert_eq!(count(&db, "capacity_hourly").await, 2);
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
        3,
        "rollups outlive raw samples"
    );
    let again = store
        .apply_retention(&policy)
        .await
        .unwrap_or_else(|e| panic!("retention: {e}"));
    assert_eq!(again.total(), 0);
    // A daily window, in steps as the writer runs them (each at least one statement).
    let mut run = store.start_retention(&RetentionPolicy {
        capacity_daily_days: 100,
        batch_rows: 1,
        ..policy.clone()
    });
    let mut steps = 0;
    while !run.is_done() {
        steps += 1;
        store
            .retention_step(&mut run, std::time::Duration::ZERO)
            .await
            .unwrap_or_else(|e| panic!("retention step: {e}"));
        assert!(steps < 100_000, "the pass does not end");
    }
    assert_eq!(run.deleted.capacity_daily_expired, 1);
    assert_eq!(run.deleted.total(), 1);
    assert!(steps > 5, "{steps} steps");
    assert_eq!(count(&db, "capacity_daily").await, 2);
    // Zero means "keep forever" / "no limit".
    let keep = RetentionPolicy {
        event_retention_days: 0,
        events_per_system: 0,
        capacity_raw_days: 0,
        capacity_hourly_days: 0,
        capacity_daily_days: 0,
        performance_raw_days: 0,
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

/// A snapshot with everything #17 added: provisioned capacity, topology, pools, performance.
fn deep_body(
    used: u64,
    pools: &[(PoolKind, &str, u64)],
    performance: Option<Performance>,
) -> Snapshot {
    let mut body = snapshot_body(Status::Online, Health::Ok, &[], Some(used));
    if let Some(c) = body.capacity.as_mut() {
        c.provisioned_bytes = Some(5000 + used);
    }
    body.topology = Some(Topology {
        cluster_type: Some(ClusterType::ActiveCluster),
        nodes: vec![TopologyNode {
            name: "ct0".into(),
            model: Some("FA-X70R4".into()),
            serial: Some("PCT0".into()),
            state: Some("ready".into()),
            version: Some("6.7.3".into()),
        }],
        site_count: Some(2),
        management_addresses: vec!["10.0.0.5".into()],
        dns_names: vec!["fa-prod-01.example.net".into()],
        partners: vec![Partner {
            name: "fa-dr-01".into(),
            kind: "sync-replication".into(),
            state: Some("connected".into()),
        }],
        management_url: Some("https://10.0.0.5".into()),
    });
    body.pools = pools
        .iter()
        .map(|&(kind, name, used)| Pool {
            kind,
            name: name.into(),
            total_bytes: 10_000,
            used_bytes: used,
            free_bytes: Some(10_000 - used),
        })
        .collect();
    body.performance = performance;
    body
}

/// The latest state keeps what the newest snapshot says of topology, pools, performance and
/// provisioned capacity (absent ones too); an older snapshot changes none of it.
async fn deep_state_newest_wins(backend: Backend) {
    let db = TestDatabase::new(backend).await;
    let store = open(&db).await;
    let perf = Performance {
        read_iops: Some(1200.5),
        write_iops: Some(300.0),
        read_latency_us: Some(250.25),
        write_latency_us: None,
        read_bytes_per_s: Some(52_428_800),
        write_bytes_per_s: Some(1_048_576),
    };
    let body = deep_body(
        400,
        &[
            (PoolKind::Aggregate, "aggr1", 300),
            (PoolKind::Space, "snapshots", 20),
        ],
        Some(perf.clone()),
    );
    write(&store, &[snapshot_msg(1, "deep-1", T0, body.clone())]).await;
    let state = || async {
        rows(
            &db,
            "SELECT CAST(provisioned_bytes AS TEXT), cluster_type, topology, pools, performance FROM system_state",
        )
        .await
        .remove(0)
    };
    let got = state().await;
    assert_eq!(got[0].as_deref(), Some("5400"));
    assert_eq!(got[1].as_deref(), Some("active-cluster"));
    let json = |i: usize| {
        got[i]
            .clone()
            .unwrap_or_else(|| panic!("column {i} is NULL"))
    };
    let topology: Topology = serde_json::from_str(&json(2)).unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(Some(topology), body.topology);
    let pools: Vec<Pool> = serde_json::from_str(&json(3)).unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(pools, body.pools);
    let performance: Performance = serde_json::from_str(&json(4)).unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(performance, perf);

    // An older snapshot with other values changes nothing.
    let older = deep_body(100, &[(PoolKind::Aggregate, "aggr9", 1)], None);
    write(&store, &[snapshot_msg(2, "deep-1", T0 - 60_000, older)]).await;
    assert_eq!(state().await, got);

    // A newer one without them: what it says (no topology, no pools, no performance).
    let mut bare = snapshot_body(Status::Online, Health::Ok, &[], Some(450));
    bare.topology = None;
    write(&store, &[snapshot_msg(3, "deep-1", T0 + 60_000, bare)]).await;
    assert_eq!(
        state().await,
        vec![None, None, None, Some("[]".into()), None]
    );
    store.close().await;
}

/// `(system, observed_at, pools (name, used), performance metrics)` of a history of two systems
/// over two days, polled every 1 to 20 minutes with gaps of hours; a pool is sometimes missing,
/// read latency never reported, other metrics sometimes not. Metric values are whole numbers.
type DeepSample = (
    &'static str,
    i64,
    Vec<(&'static str, u64)>,
    [Option<i64>; 6],
);

fn deep_history(rng: &mut Rng) -> Vec<DeepSample> {
    let mut out = Vec::new();
    for system in ["deep-7", "deep-13"] {
        let mut t = T0 + rng.below(3_600_000) as i64;
        while t < T0 + 2 * 86_400_000 {
            t += match rng.below(20) {
                0 => 3_600_000 + rng.below(10_800_000) as i64,
                _ => 60_000 * (1 + rng.below(20) as i64),
            };
            let mut pools = vec![("aggr1", rng.below(10_000))];
            if rng.below(6) != 0 {
                pools.push(("aggr2", rng.below(10_000)));
            }
            let metric =
                |rng: &mut Rng, p: u64| (rng.below(p) != 0).then(|| rng.below(100_000) as i64);
            let perf = [
                metric(rng, 8),
                metric(rng, 4),
                None,
                metric(rng, 4),
                metric(rng, 8),
                metric(rng, 3),
            ];
            out.push((system, t, pools, perf));
        }
    }
    out.sort_by_key(|s| s.1);
    out
}

fn deep_msg(seq: u64, s: &DeepSample) -> Incoming {
    let pools: Vec<(PoolKind, &str, u64)> =
        s.2.iter()
            .map(|&(name, used)| (PoolKind::Aggregate, name, used))
            .collect();
    let m = |i: usize| s.3[i].map(|v| v as f64);
    let u = |i: usize| s.3[i].map(|v| v as u64);
    let perf = Performance {
        read_iops: m(0),
        write_iops: m(1),
        read_latency_us: m(2),
        write_latency_us: m(3),
        read_bytes_per_s: u(4),
        write_bytes_per_s: u(5),
    };
    snapshot_msg(seq, s.0, s.1, deep_body(400, &pools, Some(perf)))
}

/// The pool and performance tiers as stored, as text (sums and maxima of whole numbers as
/// integers).
async fn deep_tiers(db: &TestDatabase) -> [Vec<Vec<Option<String>>>; 5] {
    let pool = |table: &str, period: &str| {
        format!(
            "SELECT system_id, pool, CAST({period} AS TEXT), CAST(samples AS TEXT), CAST(used_min AS TEXT), \
             CAST(used_max AS TEXT), CAST(CAST(used_sum AS BIGINT) AS TEXT), CAST(last_at AS TEXT), \
             CAST(total_bytes AS TEXT), CAST(used_bytes AS TEXT) FROM {table} ORDER BY system_id, pool, {period}"
        )
    };
    let perf = |table: &str, period: &str| {
        let metrics: Vec<String> = sdash_writer::store::PERFORMANCE_METRICS
            .iter()
            .map(|m| {
                format!(
                    "CAST({m}_n AS TEXT), CAST(CAST({m}_sum AS BIGINT) AS TEXT), CAST(CAST({m}_max AS BIGINT) AS TEXT)"
                )
            })
            .collect();
        format!(
            "SELECT system_id, CAST({period} AS TEXT), CAST(samples AS TEXT), CAST(last_at AS TEXT), {} \
             FROM {table} ORDER BY system_id, {period}",
            metrics.join(", ")
        )
    };
    let raw: Vec<String> = sdash_writer::store::PERFORMANCE_METRICS
        .iter()
        .map(|m| format!("CAST(CAST({m} AS BIGINT) AS TEXT)"))
        .collect();
    [
        rows(db, &pool("pool_hourly", "hour")).await,
        rows(db, &pool("pool_daily", "day")).await,
        rows(
            db,
            &format!(
                "SELECT system_id, CAST(observed_at AS TEXT), {} FROM performance_samples ORDER BY system_id, observed_at",
                raw.join(", ")
            ),
        )
        .await,
        rows(db, &perf("performance_hourly", "hour")).await,
        rows(db, &perf("performance_daily", "day")).await,
    ]
}

/// The pool and performance tiers on the real statements: whatever the batches (split
/// anywhere, with redeliveries, repeats inside a batch, a batch written twice), their rows are
/// those of delivering each snapshot once and hold the samples' own aggregates; a late
/// snapshot (older than one counted) counts nowhere.
async fn pool_and_performance_tiers_equal_their_samples(backend: Backend) {
    let mut rng = Rng(99);
    let history = deep_history(&mut rng);
    let msgs: Vec<Incoming> = history
        .iter()
        .enumerate()
        .map(|(i, s)| deep_msg(i as u64 + 1, s))
        .collect();

    let once = TestDatabase::new(backend).await;
    let store = open(&once).await;
    let mut counted = sdash_writer::RowCounts::default();
    for m in &msgs {
        let rows = write(&store, std::slice::from_ref(m)).await.rows;
        counted.performance_samples += rows.performance_samples;
        counted.pool_hourly += rows.pool_hourly;
    }
    store.close().await;
    let expected = deep_tiers(&once).await;
    assert_eq!(counted.performance_samples, history.len() as u64);
    assert!(counted.pool_hourly >= expected[0].len() as u64);

    let messy = TestDatabase::new(backend).await;
    let store = open(&messy).await;
    let mut next = 0;
    while next < msgs.len() {
        let end = (next + 1 + rng.below(60) as usize).min(msgs.len());
        let mut batch: Vec<Incoming> = msgs[next..end].to_vec();
        for _ in 0..rng.below(8) {
            let mut again = msgs[rng.below(end as u64) as usize].clone();
            again.deliveries = 2;
            batch.push(again);
        }
        let first = write(&store, &batch).await.rows;
        assert!(first.pool_hourly > 0 && first.pool_daily > 0 && first.performance_hourly > 0);
        let again = write(&store, &batch).await.rows;
        assert_eq!(
            (
                again.pool_hourly,
                again.pool_daily,
                again.performance_samples,
                again.performance_hourly,
                again.performance_daily
            ),
            (0, 0, 0, 0, 0),
            "a batch written again counted"
        );
        next = end;
    }
    let got = deep_tiers(&messy).await;
    for (i, table) in [
        "pool_hourly",
        "pool_daily",
        "performance_samples",
        "performance_hourly",
        "performance_daily",
    ]
    .iter()
    .enumerate()
    {
        assert_eq!(got[i], expected[i], "{table}");
    }

    // The samples' own aggregates.
    let text = |v: i64| Some(v.to_string());
    let mut pools: std::collections::BTreeMap<(String, String, String), [i64; 7]> =
        Default::default();
    let mut perf: std::collections::BTreeMap<(String, String), Vec<Option<i64>>> =
        Default::default();
    for (system, t, list, metrics) in &history {
        let hour = t / 3_600_000 * 3_600_000;
        for period in [hour.to_string(), sdash_writer::store::utc_day(*t)] {
            for &(name, used) in list {
                let u = used as i64;
                let a = pools
                    .entry((
                        system.to_string(),
                        format!("aggregate:{name}"),
                        period.clone(),
                    ))
                    .or_insert([0, i64::MAX, i64::MIN, 0, 0, 0, 0]);
                *a = [a[0] + 1, a[1].min(u), a[2].max(u), a[3] + u, *t, 10_000, u];
            }
            // samples, last_at, then per metric n, sum, max.
            let a = perf.entry((system.to_string(), period)).or_insert_with(|| {
                [
                    [Some(0), Some(0)].as_slice(),
                    &[Some(0), Some(0), None].repeat(6),
                ]
                .concat()
            });
            a[0] = a[0].map(|n| n + 1);
            a[1] = Some(*t);
            for (i, m) in metrics.iter().enumerate() {
                if let Some(v) = m {
                    let at = 2 + i * 3;
                    a[at] = a[at].map(|n| n + 1);
                    a[at + 1] = a[at + 1].map(|s| s + v);
                    a[at + 2] = Some(a[at + 2].map_or(*v, |x| x.max(*v)));
                }
            }
        }
    }
    let want_pools: Vec<Vec<Option<String>>> = pools
        .iter()
        .map(|((s, p, period), a)| {
            let mut row = vec![Some(s.clone()), Some(p.clone()), Some(period.clone())];
            row.extend(a.iter().map(|&v| text(v)));
            row
        })
        .collect();
    let mut got_pools = got[0].clone();
    got_pools.extend(got[1].iter().cloned());
    got_pools.sort();
    let mut want_pools = want_pools;
    want_pools.sort();
    assert_eq!(got_pools, want_pools, "pool aggregates");
    let mut want_perf: Vec<Vec<Option<String>>> = perf
        .iter()
        .map(|((s, period), a)| {
            let mut row = vec![Some(s.clone()), Some(period.clone())];
            row.extend(a.iter().map(|v| v.map(|v| v.to_string())));
            row
        })
        .collect();
    want_perf.sort();
    let mut got_perf = got[3].clone();
    got_perf.extend(got[4].iter().cloned());
    got_perf.sort();
    assert_eq!(got_perf, want_perf, "performance aggregates");
    // Read latency was never reported: no count, no maximum.
    assert!(
        got[3]
            .iter()
            .all(|r| r[10].as_deref() == Some("0") && r[12].is_none())
    );
    assert_eq!(got[2].len(), history.len());

    // A late snapshot of a time never seen, older than what was counted and than
    // --late-sample-window (these times are a year old): ignored everywhere.
    let (system, t, _, _) = &history[history.len() / 2];
    let late = deep_msg(
        10_000,
        &(
            system,
            t + 1,
            vec![("aggr1", 1), ("aggr3", 1)],
            [Some(1); 6],
        ),
    );
    let rows = write(&store, &[late]).await.rows;
    assert_eq!(
        (
            rows.pool_hourly,
            rows.pool_daily,
            rows.performance_samples,
            rows.performance_hourly
        ),
        (0, 0, 0, 0)
    );
    assert_eq!(deep_tiers(&messy).await, got);
    store.close().await;
}

/// Raw performance samples go after --performance-raw-days, the pool and performance rollups
/// with the capacity windows (hourly: 400 days, daily: when set).
async fn retention_prunes_pool_and_performance_tiers(backend: Backend) {
    let db = TestDatabase::new(backend).await;
    let store = open(&db).await;
    let now = now_ms();
    let day = 86_400_000;
    let perf = Some(Performance {
        read_iops: Some(10.0),
        ..Performance::default()
    });
    let pools = [
        (PoolKind::Aggregate, "aggr1", 10),
        (PoolKind::Aggregate, "aggr2", 20),
    ];
    for (seq, age) in [(1u64, 401 * day), (2, 30 * day), (3, 8 * day), (4, 1000)] {
        write(
            &store,
            &[snapshot_msg(
                seq,
                "ret-1",
                now - age,
                deep_body(100, &pools, perf.clone()),
            )],
        )
        .await;
    }
    assert_eq!(count(&db, "performance_samples").await, 4);
    assert_eq!(count(&db, "pool_hourly").await, 8);
    let policy = RetentionPolicy {
        batch_rows: 1,
        ..RetentionPolicy::default()
    };
    let out = store
        .apply_retention(&policy)
        .await
        .unwrap_or_else(|e| panic!("retention: {e}"));
    assert_eq!(out.performance_samples_expired, 3);
    assert_eq!(out.pool_hourly_expired, 2);
    assert_eq!(out.performance_hourly_expired, 1);
    assert_eq!(
        (out.pool_daily_expired, out.performance_daily_expired),
        (0, 0)
    );
    assert_eq!(count(&db, "performance_samples").await, 1);
    assert_eq!(count(&db, "pool_hourly").await, 6);
    assert_eq!(count(&db, "performance_hourly").await, 3);
    assert_eq!(count(&db, "pool_daily").await, 8);
    let out = store
        .apply_retention(&RetentionPolicy {
            capacity_daily_days: 100,
            performance_raw_days: 0,
            ..policy.clone()
        })
        .await
        .unwrap_or_else(|e| panic!("retention: {e}"));
    assert_eq!(
        (out.pool_daily_expired, out.performance_daily_expired),
        (2, 1)
    );
    assert_eq!(out.performance_samples_expired, 0);
    assert_eq!(count(&db, "pool_daily").await, 6);
    assert_eq!(count(&db, "performance_daily").await, 3);
    store.close().await;
}

/// The deep sample `i` of `late_snapshots_count_once_within_the_window`: a minute apart from
/// `base`, with one pool and every metric.
fn late_msg(base: i64, i: u64, deliveries: u64) -> Incoming {
    let mut m = deep_msg(
        i + 1,
        &(
            "sys-late",
            base + i as i64 * 60_000,
            vec![("aggr1", 100 + i)],
            [Some(i as i64 + 1); 6],
        ),
    );
    m.deliveries = deliveries;
    m
}

/// Sums of `samples` in each tier of capacity, pools and performance, and the raw rows of
/// capacity and performance.
async fn tier_counts(db: &TestDatabase) -> [i64; 8] {
    let mut out = [0; 8];
    for (i, table) in [
        "capacity_hourly",
        "capacity_daily",
        "pool_hourly",
        "pool_daily",
        "performance_hourly",
        "performance_daily",
    ]
    .iter()
    .enumerate()
    {
        out[i] = scalar(
            db,
            &format!("SELECT CAST(COALESCE(SUM(samples), 0) AS TEXT) FROM {table}"),
        )
        .await;
    }
    out[6] = count(db, "capacity_samples").await;
    out[7] = count(db, "performance_samples").await;
    out
}

/// A snapshot that reaches the writer after a newer one of its system was committed (late: a
/// message JetStream delivered again after the writer gave up on a pull, a slower collector)
/// is counted once in every tier when it is within --late-sample-window; a redelivery of a
/// committed one is not counted again, neither while the ledger holds it nor after its row was
/// pruned (then by the rule before the ledger: not newer); one older than the window is not
/// counted (a system's first sample always is).
async fn late_snapshots_count_once_within_the_window(backend: Backend) {
    let db = TestDatabase::new(backend).await;
    let store = open(&db)
        .await
        .with_raw_samples(sdash_writer::RawSamplePolicy::EVERY_SAMPLE);
    let base = now_ms() - 40 * 60_000;
    let m = |i: u64, deliveries: u64| late_msg(base, i, deliveries);

    let first = write(&store, &[m(0, 1), m(1, 1), m(2, 1), m(5, 1), m(6, 1)]).await;
    assert_eq!(first.rows.capacity_samples, 5);
    // 3 and 4 come after 6 (3 was delivered before, to a pull the writer gave up on); 5 and 1
    // are redeliveries of the committed batch.
    let second = write(&store, &[m(3, 2), m(4, 1), m(5, 2), m(1, 2)])
        .await
        .rows;
    assert_eq!(
        (
            second.capacity_samples_late,
            second.capacity_samples_repeated,
            second.capacity_samples_not_newer
        ),
        (2, 2, 0)
    );
    assert_eq!(
        (second.capacity_samples, second.performance_samples),
        (2, 2)
    );
    let third = write(&store, &[m(7, 1), m(8, 1), m(9, 1), m(3, 3), m(4, 2)])
        .await
        .rows;
    assert_eq!(
        (third.capacity_samples_late, third.capacity_samples_repeated),
        (0, 2)
    );
    // The second batch again (its acks were lost): nothing counted.
    let again = write(&store, &[m(3, 2), m(4, 1), m(5, 2), m(1, 2)])
        .await
        .rows;
    assert_eq!(again.capacity_samples_repeated, 4);
    assert_eq!(
        tier_counts(&db).await,
        [10; 8],
        "every sample once in every tier"
    );
    assert_eq!(count(&db, "counted_snapshots").await, 10);
    // The rollups are the samples' own: pool used 100..=109, capacity 400 each.
    assert_eq!(
        scalar(
            &db,
            "SELECT CAST(CAST(SUM(used_sum) AS BIGINT) AS TEXT) FROM pool_daily"
        )
        .await,
        (100..110).sum::<i64>()
    );
    assert_eq!(
        scalar(
            &db,
            "SELECT CAST(CAST(SUM(used_sum) AS BIGINT) AS TEXT) FROM capacity_hourly"
        )
        .await,
        4000
    );

    // Older than the window: a sample of a counted system is not counted, a new system's is.
    let old = |seq: u64, system: &str, t: i64| {
        let mut m = snapshot_msg(
            seq,
            system,
            t,
            snapshot_body(Status::Online, Health::Ok, &[], Some(500)),
        );
        m.deliveries = 1;
        m
    };
    let rows = write(
        &store,
        &[
            old(100, "sys-late", now_ms() - 2 * 3_600_000),
            old(101, "sys-new", now_ms() - 2 * 3_600_000),
        ],
    )
    .await
    .rows;
    assert_eq!(
        (rows.capacity_samples_not_newer, rows.capacity_samples),
        (1, 1)
    );
    store.close().await;

    // A shorter window: the next batch prunes the rows it no longer covers, and a redelivery
    // of them is then judged by the rule before the ledger (not newer: not counted again).
    let store = open(&db)
        .await
        .with_late_sample_window(std::time::Duration::from_secs(20 * 60));
    write(&store, &[old(102, "sys-other", now_ms())]).await;
    assert_eq!(
        count(&db, "counted_snapshots WHERE system_id = 'sys-late'").await,
        0,
        "pruned"
    );
    assert!(
        scalar(
            &db,
            "SELECT CAST(floor_at AS TEXT) FROM counted_snapshots_floor WHERE id = 1"
        )
        .await
            >= base + 9 * 60_000
    );
    let rows = write(&store, &[m(2, 4), m(9, 2)]).await.rows;
    assert_eq!(
        (rows.capacity_samples_not_newer, rows.capacity_samples),
        (2, 0)
    );
    let counts = tier_counts(&db).await;
    assert_eq!(
        counts[..2],
        [12, 12],
        "capacity: ten, sys-new and sys-other"
    );
    store.close().await;
}

/// The ledger of counted snapshots is pruned at most about 5,000 rows per batch, oldest first,
/// its floor rising to just below the oldest row kept; the next batch takes the rest.
async fn the_ledger_is_pruned_a_bounded_share_per_batch(backend: Backend) {
    let db = TestDatabase::new(backend).await;
    let store = open(&db).await;
    // 6,000 systems' snapshots two hours old (older than the window), in one batch of a new
    // database (floor 0): recorded, then pruned in the same transaction.
    let t0 = now_ms() - 2 * 3_600_000;
    let batch: Vec<Incoming> = (0..6_000u64)
        .map(|i| {
            snapshot_msg(
                i + 1,
                &format!("prune-{i:04}"),
                t0 + i as i64,
                snapshot_body(Status::Online, Health::Ok, &[], Some(100)),
            )
        })
        .collect();
    write(&store, &batch).await;
    let floor = || async {
        scalar(
            &db,
            "SELECT CAST(floor_at AS TEXT) FROM counted_snapshots_floor WHERE id = 1",
        )
        .await
    };
    assert_eq!(count(&db, "counted_snapshots").await, 1_000);
    assert_eq!(floor().await, t0 + 4_999, "just below the oldest row kept");
    assert_eq!(
        scalar(
            &db,
            "SELECT CAST(MIN(observed_at) AS TEXT) FROM counted_snapshots"
        )
        .await,
        t0 + 5_000
    );
    // The next batch prunes the rest and raises the floor to the window's edge.
    write(
        &store,
        &[snapshot_msg(
            10_000,
            "prune-new",
            now_ms(),
            snapshot_body(Status::Online, Health::Ok, &[], Some(100)),
        )],
    )
    .await;
    assert_eq!(count(&db, "counted_snapshots").await, 1, "only the new one");
    assert!(floor().await >= now_ms() - 3_600_000 - 60_000);
    store.close().await;
}

both_backends!(
    same_snapshot_twice_is_one_row,
    out_of_order_snapshots_keep_the_newest_state,
    alerts_open_still_open_cleared,
    open_alert_details_follow_the_newest_sighting,
    transitions_are_recorded,
    rollups_equal_raw_aggregates,
    measured_samples_replace_an_imported_day,
    bad_messages_become_dead_letters,
    far_future_observed_at_is_a_dead_letter,
    inventory_and_collectors_newest_wins,
    retention_applies_to_every_system,
    deep_state_newest_wins,
    pool_and_performance_tiers_equal_their_samples,
    late_snapshots_count_once_within_the_window,
    the_ledger_is_pruned_a_bounded_share_per_batch,
    retention_prunes_pool_and_performance_tiers,
);
