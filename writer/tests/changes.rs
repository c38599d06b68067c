//! Derived changes on the bus (`sdash.v1.change.*`), against a real nats-server and both
//! databases: the exact changes a sequence of snapshots makes (once each, none for a
//! redelivery), and a writer killed between the commit and the publication (and between the
//! publication and the outbox delete) that still publishes each change exactly once downstream.

mod common;

use std::collections::{BTreeMap, HashMap};
use std::time::Duration;

use async_nats::jetstream::{self, consumer};
use common::*;
use futures::StreamExt;
use sdash_harness::{Backend, NatsServer, TestDatabase, wait_for};
use sdash_proto::subjects::{Kind, STREAM};
use sdash_proto::*;
use sdash_service::Shutdown;
use sdash_writer::testing::{
    ChangeSummary as Summary, alert_change, change_summary, crossing, transition,
};
use sdash_writer::{Store, WriterConfig};

/// Recent times: the writer applies retention when it starts.
fn t0() -> i64 {
    now_ms() - 3_600_000
}

async fn init_schema(db: &TestDatabase) {
    let store = Store::open(&db.url)
        .await
        .unwrap_or_else(|e| panic!("open: {e}"));
    store.close().await;
}

/// One change message as it is in the stream.
#[derive(Debug, Clone)]
struct Published {
    subject: String,
    msg_id: Option<String>,
    change: Envelope<ChangeRecord>,
}

/// Every message on `sdash.v1.change.>` in the stream, in stream order (a fresh ephemeral
/// consumer each time, so what the stream holds, duplicates included).
async fn changes_in_stream(js: &jetstream::Context) -> Vec<Published> {
    let Ok(stream) = js.get_stream(STREAM).await else {
        return Vec::new();
    };
    let consumer = stream
        .create_consumer(consumer::pull::Config {
            filter_subject: format!("{}.change.>", subjects::PREFIX),
            ack_policy: consumer::AckPolicy::None,
            deliver_policy: consumer::DeliverPolicy::All,
            inactive_threshold: Duration::from_secs(10),
            ..Default::default()
        })
        .await
        .unwrap_or_else(|e| panic!("consumer: {e}"));
    let mut out = Vec::new();
    loop {
        let mut batch = consumer
            .fetch()
            .max_messages(1000)
            .messages()
            .await
            .unwrap_or_else(|e| panic!("fetch: {e}"));
        let mut got = 0;
        while let Some(m) = batch.next().await {
            let m = m.unwrap_or_else(|e| panic!("message: {e}"));
            got += 1;
            let change = match codec::decode_record(&m.subject, &m.payload) {
                Ok(Record::Change(c)) => c,
                other => panic!("{}: not a change: {other:?}", m.subject),
            };
            out.push(Published {
                subject: m.subject.to_string(),
                msg_id: m
                    .headers
                    .as_ref()
                    .and_then(|h| h.get("Nats-Msg-Id"))
                    .map(|v| v.as_str().to_owned()),
                change,
            });
        }
        if got == 0 {
            return out;
        }
    }
}

/// Waits until the stream holds `n` change messages; all of them.
async fn wait_for_changes(js: &jetstream::Context, n: usize, why: &str) -> Vec<Published> {
    let got = wait_for(Duration::from_secs(20), || async {
        let c = changes_in_stream(js).await;
        (c.len() >= n).then_some(c)
    })
    .await;
    match got {
        Some(c) => c,
        None => {
            let now: Vec<Summary> = changes_in_stream(js).await.iter().map(summary).collect();
            panic!("{why}: expected {n} changes, the stream has {now:?}")
        }
    }
}

fn summary(p: &Published) -> Summary {
    change_summary(&p.change.body)
}

/// The event id `snapshot_msg` gives a snapshot.
fn snap_id(system: &str, at: i64) -> String {
    format!("snap-{system}-{at}")
}

async fn publish_snapshot(js: &jetstream::Context, system: &str, at: i64, body: Snapshot) {
    let id = snap_id(system, at);
    let env = envelope(system, &id, at, body);
    publish_acked(js, Kind::Snapshot.subject(system), enc(&env), &id).await;
}

/// Snapshots that open and clear an alert, change the status (unreachable and back), cross
/// 80 % and 90 % up and down: exactly the expected changes, each once, with the system's
/// inventory name and tags; a redelivered snapshot makes none.
async fn snapshots_make_exactly_their_changes(backend: Backend) {
    let nats = NatsServer::start();
    let db = TestDatabase::new(backend).await;
    init_schema(&db).await;
    let mut config = WriterConfig::new(&nats.url(), &db.url);
    config.batch_timeout = Duration::from_millis(20);
    config.writer_id = Some("writer-changes".into());
    config.admin_listen = ([127, 0, 0, 1], sdash_harness::free_port()).into();
    let stop = Shutdown::new();
    let task = tokio::spawn(sdash_writer::run(config.clone(), stop.clone()));
    let js = jetstream(&nats.url()).await;

    let sys = "arr-1";
    let inventory = envelope(
        sys,
        "sys-arr-1",
        t0(),
        SystemRecord {
            name: "Array One".into(),
            vendor: Vendor::Pure,
            address: "https://arr-1.example.net".into(),
            tags: [("environment".to_owned(), "prod".to_owned())].into(),
            interval_s: 60,
            enabled: true,
            removed: false,
        },
    );
    publish_acked(&js, Kind::System.subject(sys), enc(&inventory), "sys-arr-1").await;
    let base = t0();
    let t = move |n: i64| base + n * 1000;
    let online = |alerts: &[&str], used| snapshot_body(Status::Online, Health::Ok, alerts, used);
    // Published back to back: the changes must not depend on how they are batched.
    publish_snapshot(&js, sys, t(1), online(&["a1"], Some(500))).await;
    publish_snapshot(&js, sys, t(2), online(&[], Some(850))).await;
    let unreachable = snapshot_body(Status::Unreachable, Health::Ok, &[], None);
    publish_snapshot(&js, sys, t(3), unreachable).await;
    publish_snapshot(&js, sys, t(4), online(&[], Some(920))).await;
    publish_snapshot(&js, sys, t(5), online(&[], Some(930))).await;
    publish_snapshot(&js, sys, t(6), online(&[], Some(700))).await;
    let id = |n| snap_id(sys, t(n));
    let mut expected = vec![
        transition("status_changed", &id(1), None, "online"),
        transition("hardware_changed", &id(1), None, "ok"),
        transition("cluster_changed", &id(1), None, "ok"),
        alert_change("alert_opened", &id(1), "a1", t(1)),
        alert_change("alert_cleared", &id(2), "a1", t(1)),
        crossing(&id(2), 80, true),
        transition("status_changed", &id(3), Some("online"), "unreachable"),
        // Back online at 92 %: 80 % was crossed before the outage, only 90 % is new.
        transition("status_changed", &id(4), Some("unreachable"), "online"),
        crossing(&id(4), 90, true),
        // 93 %: still above, nothing.
        crossing(&id(6), 90, false),
        crossing(&id(6), 80, false),
    ];
    let got = wait_for_changes(&js, expected.len(), "the first six snapshots").await;
    assert_eq!(got.iter().map(summary).collect::<Vec<_>>(), expected);

    // The second snapshot delivered again (a new Nats-Msg-Id, so JetStream lets it through), then
    // one that makes a change: the redelivery makes none.
    let again = envelope(sys, &id(2), t(2), online(&[], Some(850)));
    publish_acked(&js, Kind::Snapshot.subject(sys), enc(&again), "redelivery").await;
    let error = snapshot_body(Status::Error, Health::Ok, &[], None);
    publish_snapshot(&js, sys, t(7), error).await;
    expected.push(transition(
        "status_changed",
        &id(7),
        Some("online"),
        "error",
    ));
    let got = wait_for_changes(&js, expected.len(), "after the redelivery").await;
    assert_eq!(got.iter().map(summary).collect::<Vec<_>>(), expected);

    let mut ids: HashMap<&str, usize> = HashMap::new();
    for p in &got {
        let c = &p.change;
        *ids.entry(c.event_id.as_str()).or_default() += 1;
        assert_eq!(
            p.msg_id.as_deref(),
            Some(c.event_id.as_str()),
            "Nats-Msg-Id"
        );
        assert_eq!(p.subject, "sdash.v1.change.arr-1");
        assert_eq!(c.system_id, sys);
        assert_eq!(c.collector_id, "writer-changes");
        assert_eq!(c.body.vendor, Vendor::Pure);
        assert_eq!(c.body.system_name.as_deref(), Some("Array One"));
        assert_eq!(
            c.body.tags,
            BTreeMap::from([("environment".to_owned(), "prod".to_owned())])
        );
        // observed_at is the causing snapshot's.
        assert_eq!(
            Some(c.observed_at),
            (1..=7)
                .map(t)
                .find(|&at| snap_id(sys, at) == c.body.cause_event_id)
        );
    }
    assert!(ids.values().all(|&n| n == 1), "an event id twice: {ids:?}");
    let cleared = &got[4].change.body;
    assert_eq!(
        cleared
            .alert
            .as_ref()
            .map(|a| (a.title.as_str(), a.severity)),
        Some(("alert a1", Severity::Warning))
    );
    assert_eq!(
        got[5].change.body.capacity.as_ref().map(|c| c.used_bytes),
        Some(850)
    );

    // Published changes leave the outbox; the metrics say what went out.
    let empty = wait_for(Duration::from_secs(10), || async {
        (count(&db, "change_outbox").await == 0).then_some(())
    })
    .await;
    assert!(empty.is_some(), "the outbox was not emptied");
    let body = http_get(config.admin_listen, "/metrics")
        .await
        .map(|(_, b)| b)
        .unwrap_or_default();
    for (kind, n) in [
        ("status_changed", 4.0),
        ("hardware_changed", 1.0),
        ("cluster_changed", 1.0),
        ("alert_opened", 1.0),
        ("alert_cleared", 1.0),
        ("capacity_threshold", 4.0),
    ] {
        let name = format!("sdash_writer_changes_published_total{{kind=\"{kind}\"}}");
        assert_eq!(metric(&body, &name), Some(n), "{name}\n{body}");
    }
    assert_eq!(metric(&body, "sdash_writer_change_outbox_depth"), Some(0.0));
    assert_eq!(
        metric(&body, "sdash_writer_change_publish_failures_total"),
        Some(0.0)
    );
    assert_eq!(
        metric(&body, "sdash_writer_rows_total{table=\"change_outbox\"}"),
        Some(expected.len() as f64)
    );
    stop.cancel();
    let _ = tokio::time::timeout(Duration::from_secs(15), task).await;
}

/// Waits for a writer process to end by its failpoint.
async fn wait_for_failpoint_exit(w: &mut WriterProcess, what: &str) {
    let exited = wait_for(Duration::from_secs(20), || {
        let status = w.child.try_wait().ok().flatten();
        async move { status }
    })
    .await;
    match exited {
        Some(status) => assert_eq!(status.code(), Some(86), "{what}: {}", w.log_text()),
        None => panic!("{what}: the writer did not exit\n{}", w.log_text()),
    }
}

/// The writer process exits (by `SDASH_WRITER_FAILPOINT`) right after the commit that stored a
/// new system's changes, before publishing them: nothing is on the bus, the outbox holds them.
/// The next writer publishes them and exits before deleting them from the outbox. The third
/// publishes them once more with the same `Nats-Msg-Id`s: JetStream drops the repeats, so the
/// stream holds each change exactly once, and a subscriber deduplicating by event id sees each
/// once. New changes then flow as usual.
async fn a_crash_between_commit_and_publish_loses_and_repeats_nothing(backend: Backend) {
    let nats = NatsServer::start();
    let db = TestDatabase::new(backend).await;
    init_schema(&db).await;
    let dir = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
    let js = jetstream(&nats.url()).await;
    let failpoint = |point| [("SDASH_WRITER_FAILPOINT", point)];

    let mut a = WriterProcess::spawn_with_env(
        &nats.url(),
        &db.url,
        "crash-a",
        dir.path(),
        &[],
        &failpoint("exit-after-commit"),
    );
    let sys = "crash-1";
    let base = t0();
    let t = move |n: i64| base + n * 1000;
    let first = snapshot_body(Status::Online, Health::Ok, &[], Some(100));
    publish_snapshot(&js, sys, t(1), first).await;
    wait_for_failpoint_exit(&mut a, "after the commit").await;
    assert_eq!(count(&db, "change_outbox").await, 3, "{}", a.log_text());
    assert_eq!(count(&db, "system_state").await, 1);
    assert!(changes_in_stream(&js).await.is_empty());

    let mut b = WriterProcess::spawn_with_env(
        &nats.url(),
        &db.url,
        "crash-b",
        dir.path(),
        &[],
        &failpoint("exit-after-publish"),
    );
    wait_for_failpoint_exit(&mut b, "after the publication").await;
    assert_eq!(
        count(&db, "change_outbox").await,
        3,
        "published but not yet deleted"
    );
    let published = changes_in_stream(&js).await;
    assert_eq!(published.len(), 3, "{}", b.log_text());

    let c = WriterProcess::spawn(&nats.url(), &db.url, "crash-c", dir.path(), &[]);
    let emptied = wait_for(Duration::from_secs(20), || async {
        (count(&db, "change_outbox").await == 0).then_some(())
    })
    .await;
    assert!(emptied.is_some(), "{}", c.log_text());
    let metrics = c.metrics().await;
    assert_eq!(
        metric(&metrics, "sdash_writer_changes_duplicate_total"),
        Some(3.0),
        "the third writer published them again, and JetStream knew them\n{metrics}"
    );
    let mut stream = changes_in_stream(&js).await;
    assert_eq!(stream.len(), 3, "JetStream kept a repeat: {stream:?}");
    let id = snap_id(sys, t(1));
    assert_eq!(
        stream.iter().map(summary).collect::<Vec<_>>(),
        vec![
            transition("status_changed", &id, None, "online"),
            transition("hardware_changed", &id, None, "ok"),
            transition("cluster_changed", &id, None, "ok"),
        ]
    );
    // Written by the first writer, published by the others.
    assert!(stream.iter().all(|p| p.change.collector_id == "crash-a"
        && p.msg_id.as_deref() == Some(p.change.event_id.as_str())));

    // The system goes unreachable: one change, once.
    let down = snapshot_body(Status::Unreachable, Health::Ok, &[], None);
    publish_snapshot(&js, sys, t(2), down).await;
    let all = wait_for_changes(&js, 4, "the unreachable snapshot").await;
    assert_eq!(all.len(), 4, "{all:?}");
    assert_eq!(
        summary(&all[3]),
        transition(
            "status_changed",
            &snap_id(sys, t(2)),
            Some("online"),
            "unreachable"
        )
    );
    // A subscriber deduplicating by event id sees each change once: no id repeats at all.
    stream = all;
    let mut seen: HashMap<String, usize> = HashMap::new();
    for p in &stream {
        *seen.entry(p.change.event_id.clone()).or_default() += 1;
    }
    assert_eq!(seen.len(), 4);
    assert!(seen.values().all(|&n| n == 1));
    assert_eq!(count(&db, "status_transitions").await, 4);
}

both_backends!(
    snapshots_make_exactly_their_changes,
    a_crash_between_commit_and_publish_loses_and_repeats_nothing
);

/// NATS refuses the writer's change publications (a permission the test takes away, then gives
/// back): ingestion goes on, the changes wait in the outbox (counted in the depth and the
/// failures), and once NATS accepts them they are all published, in order, once.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn refused_publications_wait_in_the_outbox() {
    let dir = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
    let conf = dir.path().join("nats.conf");
    let write_conf = |deny: &str| {
        let text = format!(
            "authorization {{ users = [\n\
             {{ user: writer, password: pw, permissions: {{ publish: {{ deny: [{deny}] }} }} }},\n\
             {{ user: producer, password: pw }}\n] }}\n"
        );
        std::fs::write(&conf, text).unwrap_or_else(|e| panic!("{e}"));
    };
    write_conf("\"sdash.v1.change.>\"");
    let mut nats = NatsServer::start_with(&["-c", &conf.display().to_string()]);
    let password = dir.path().join("password");
    std::fs::write(&password, "pw").unwrap_or_else(|e| panic!("{e}"));
    let as_user = |user: &str| {
        let mut args = sdash_service::bus::NatsArgs::plain(&nats.url());
        args.user = Some(user.to_owned());
        args.password_file = Some(password.clone());
        args
    };
    let db = TestDatabase::new(Backend::Sqlite).await;
    init_schema(&db).await;
    let mut config = WriterConfig::new(&nats.url(), &db.url);
    config.nats = as_user("writer");
    config.batch_timeout = Duration::from_millis(20);
    config.admin_listen = ([127, 0, 0, 1], sdash_harness::free_port()).into();
    let stop = Shutdown::new();
    let task = tokio::spawn(sdash_writer::run(config.clone(), stop.clone()));
    let producer = sdash_service::bus::connect(&as_user("producer"), "test-producer", true)
        .await
        .unwrap_or_else(|e| panic!("connect: {e}"));
    let js = jetstream::new(producer);

    let sys = "refused-1";
    let base = t0();
    let t = move |n: i64| base + n * 1000;
    let up = snapshot_body(Status::Online, Health::Ok, &[], Some(100));
    publish_snapshot(&js, sys, t(1), up).await;
    let down = snapshot_body(Status::Unreachable, Health::Ok, &[], None);
    publish_snapshot(&js, sys, t(2), down).await;
    // Ingestion goes on; the four changes wait, counted.
    let waiting = wait_for(Duration::from_secs(30), || async {
        let body = http_get(config.admin_listen, "/metrics").await?.1;
        let failures = metric(&body, "sdash_writer_change_publish_failures_total")?;
        (count(&db, "system_state WHERE status = 'unreachable'").await == 1
            && metric(&body, "sdash_writer_change_outbox_depth") == Some(4.0)
            && failures >= 1.0)
            .then_some(())
    })
    .await;
    assert!(
        waiting.is_some(),
        "{:?}",
        http_get(config.admin_listen, "/metrics").await
    );
    assert_eq!(count(&db, "change_outbox").await, 4);
    assert!(changes_in_stream(&js).await.is_empty());

    // NATS accepts them again (restarted with the permission back, the same store).
    write_conf("\"nothing.else\"");
    nats.restart();
    let emptied = wait_for(Duration::from_secs(30), || async {
        (count(&db, "change_outbox").await == 0).then_some(())
    })
    .await;
    assert!(
        emptied.is_some(),
        "the outbox was not published after NATS came back"
    );
    let got = wait_for_changes(&js, 4, "after NATS came back").await;
    let (one, two) = (snap_id(sys, t(1)), snap_id(sys, t(2)));
    assert_eq!(
        got.iter().map(summary).collect::<Vec<_>>(),
        vec![
            transition("status_changed", &one, None, "online"),
            transition("hardware_changed", &one, None, "ok"),
            transition("cluster_changed", &one, None, "ok"),
            transition("status_changed", &two, Some("online"), "unreachable"),
        ]
    );
    stop.cancel();
    let _ = tokio::time::timeout(Duration::from_secs(15), task).await;
}
