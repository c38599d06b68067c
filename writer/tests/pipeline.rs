//! The writer as a service, against a real nats-server and both databases: dead letters, the
//! oracle under faults (kill -9, database outage, nats-server restart), many concurrent
//! producers on SQLite, and the hot standby.

mod common;

use std::collections::{HashMap, HashSet};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use common::*;
use sdash_harness::{Backend, NatsServer, TcpProxy, TestDatabase, wait_for};
use sdash_proto::subjects::Kind;
use sdash_proto::*;
use sdash_service::Shutdown;
use sdash_writer::{Store, WriterConfig};
use sqlx::Connection;

/// Recent times: the writer applies event retention (30 days) when it starts.
fn t0() -> i64 {
    now_ms() - 3_600_000
}

/// The writer in-process, stopped when the returned token is cancelled.
fn start_in_process(
    config: WriterConfig,
) -> (Shutdown, tokio::task::JoinHandle<anyhow::Result<()>>) {
    let stop = Shutdown::new();
    let task = tokio::spawn(sdash_writer::run(config, stop.clone()));
    (stop, task)
}

async fn init_schema(db: &TestDatabase) {
    let store = Store::open(&db.url)
        .await
        .unwrap_or_else(|e| panic!("open: {e}"));
    store.close().await;
}

async fn dead_letters_through_the_pipeline(backend: Backend) {
    let dir = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
    let conf = dir.path().join("nats.conf");
    std::fs::write(&conf, "max_payload: 4MB\n").unwrap_or_else(|e| panic!("{e}"));
    let nats = NatsServer::start_with(&["-c", &conf.display().to_string()]);
    let db = TestDatabase::new(backend).await;
    init_schema(&db).await;
    let mut config = WriterConfig::new(&nats.url(), &db.url);
    config.batch_timeout = Duration::from_millis(20);
    let (stop, task) = start_in_process(config);
    let js = jetstream(&nats.url()).await;
    let subject = Kind::Snapshot.subject("x");
    let good = enc(&envelope(
        "x",
        "good-1",
        t0(),
        snapshot_body(Status::Online, Health::Ok, &[], Some(5)),
    ));
    let mut v2 = envelope(
        "x",
        "v2-1",
        t0(),
        snapshot_body(Status::Online, Health::Ok, &[], None),
    );
    v2.schema = 2;
    publish_acked(&js, subject.clone(), b"\xc1\xff garbage".to_vec(), "bad-1").await;
    publish_acked(
        &js,
        subject.clone(),
        good[..good.len() / 2].to_vec(),
        "bad-2",
    )
    .await;
    publish_acked(
        &js,
        subject.clone(),
        vec![0x90; codec::MAX_PAYLOAD_BYTES + 1],
        "bad-3",
    )
    .await;
    publish_acked(&js, subject.clone(), enc(&v2), "bad-4").await;
    publish_acked(&js, subject.clone(), good, "good-1").await;
    let stored = wait_for(Duration::from_secs(20), || async {
        (count(&db, "system_state WHERE system_id = 'x'").await == 1
            && count(&db, "dead_letters").await == 4)
            .then_some(())
    })
    .await;
    assert!(
        stored.is_some(),
        "dead letters: {:?}",
        rows(&db, "SELECT subject, reason FROM dead_letters").await
    );
    assert_eq!(
        count(&db, "dead_letters WHERE reason LIKE 'oversized%'").await,
        1
    );
    assert_eq!(
        count(&db, "dead_letters WHERE reason LIKE '%schema version 2%'").await,
        1
    );
    assert_eq!(
        count(&db, "dead_letters WHERE reason LIKE '%MessagePack%'").await,
        2
    );
    // And later valid messages still flow.
    publish_acked(
        &js,
        Kind::Event.subject("x"),
        enc(&envelope("x", "ev-after", t0(), event_body("after"))),
        "ev-after",
    )
    .await;
    let after = wait_for(Duration::from_secs(10), || async {
        (count(&db, "events WHERE event_id = 'ev-after'").await == 1).then_some(())
    })
    .await;
    assert!(after.is_some());
    stop.cancel();
    let result = tokio::time::timeout(Duration::from_secs(15), task).await;
    assert!(
        matches!(result, Ok(Ok(Ok(())))),
        "writer did not stop cleanly: {result:?}"
    );
}

/// Producers publish numbered events and remember each acknowledged id; the writer is killed,
/// the database goes away for 10 s, nats-server restarts. Every acknowledged id must end up
/// stored exactly once with its payload, and new data must still flow.
async fn oracle_under_faults(backend: Backend) {
    let mut nats = NatsServer::start();
    let db = TestDatabase::new(backend).await;
    init_schema(&db).await;
    let proxy = match db.server_addr() {
        Some(addr) if backend == Backend::Postgres => Some(TcpProxy::start(addr).await),
        _ => None,
    };
    let writer_url = proxy
        .as_ref()
        .map(|p| db.url_via(p.addr()))
        .unwrap_or_else(|| db.url.clone());
    let dir = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
    let mut writer = WriterProcess::spawn(&nats.url(), &writer_url, "oracle-1", dir.path(), &[]);
    let js = jetstream(&nats.url()).await;
    let acked: Arc<Mutex<Vec<String>>> = Arc::default();
    let running = Arc::new(AtomicBool::new(true));
    let mut producers = Vec::new();
    for p in 0..4 {
        let (js, acked, running) = (js.clone(), acked.clone(), running.clone());
        producers.push(tokio::spawn(async move {
            let system = format!("ora-{p}");
            let mut n = 0i64;
            while running.load(Ordering::SeqCst) {
                n += 1;
                let id = format!("oracle-{p}-{n:06}");
                let env = envelope(
                    &system,
                    &id,
                    t0() + n,
                    event_body(&format!("payload of {id}")),
                );
                publish_acked(&js, Kind::Event.subject(&system), enc(&env), &id).await;
                acked.lock().unwrap_or_else(|e| e.into_inner()).push(id);
                tokio::time::sleep(Duration::from_millis(3)).await;
            }
        }));
    }
    let sleep = |ms| tokio::time::sleep(Duration::from_millis(ms));
    sleep(1500).await;
    // (a) kill -9 the writer, start another.
    writer.kill();
    sleep(500).await;
    let mut writer = WriterProcess::spawn(&nats.url(), &writer_url, "oracle-2", dir.path(), &[]);
    sleep(2000).await;
    // (b) the database goes away for 10 s.
    match &proxy {
        Some(proxy) => {
            proxy.cut();
            sleep(10_000).await;
            proxy.restore();
        }
        None => {
            let mut c = sqlx::SqliteConnection::connect(&db.url)
                .await
                .unwrap_or_else(|e| panic!("{e}"));
            sqlx::query("BEGIN EXCLUSIVE")
                .execute(&mut c)
                .await
                .unwrap_or_else(|e| panic!("{e}"));
            sleep(10_000).await;
            sqlx::query("ROLLBACK")
                .execute(&mut c)
                .await
                .unwrap_or_else(|e| panic!("{e}"));
            let _ = c.close().await;
        }
    }
    sleep(1000).await;
    // (c) nats-server restarts.
    nats.restart();
    sleep(2000).await;
    running.store(false, Ordering::SeqCst);
    for p in producers {
        let _ = p.await;
    }
    publish_acked(
        &js,
        Kind::Event.subject("ora-new"),
        enc(&envelope("ora-new", "oracle-new", t0(), event_body("new"))),
        "oracle-new",
    )
    .await;
    let expected: HashSet<String> = acked
        .lock()
        .unwrap_or_else(|e| e.into_inner())
        .iter()
        .cloned()
        .collect();
    assert!(
        expected.len() > 100,
        "too few events were published: {}",
        expected.len()
    );
    let total = expected.len() as i64 + 1;
    let done = wait_for(Duration::from_secs(60), || async {
        (count(&db, "events WHERE event_id LIKE 'oracle-%'").await >= total).then_some(())
    })
    .await;
    let stored = rows(
        &db,
        "SELECT event_id, message, system_id FROM events WHERE event_id LIKE 'oracle-%'",
    )
    .await;
    let mut seen: HashMap<String, usize> = HashMap::new();
    for r in &stored {
        let id = r[0].clone().unwrap_or_default();
        if id != "oracle-new" {
            assert_eq!(
                r[1].as_deref(),
                Some(format!("payload of {id}").as_str()),
                "payload of {id}"
            );
        }
        *seen.entry(id).or_default() += 1;
    }
    let missing: Vec<&String> = expected
        .iter()
        .filter(|id| !seen.contains_key(*id))
        .collect();
    assert!(
        done.is_some() && missing.is_empty(),
        "{} of {} acknowledged ids missing, e.g. {:?}\n{}",
        missing.len(),
        expected.len(),
        missing.iter().take(5).collect::<Vec<_>>(),
        writer.log_text()
    );
    assert!(seen.values().all(|&n| n == 1), "duplicates");
    assert!(
        seen.contains_key("oracle-new"),
        "new data did not flow after the faults"
    );
    assert_eq!(count(&db, "dead_letters").await, 0);
    let metrics = writer.metrics().await;
    assert_eq!(
        metric(&metrics, "sdash_writer_dropped_total"),
        Some(0.0),
        "{metrics}"
    );
    eprintln!(
        "published and stored {} events\n--- writer log ---\n{}",
        expected.len(),
        writer.log_text()
    );
    writer.kill();
}

async fn standby_takes_over(backend: Backend) {
    let nats = NatsServer::start();
    let db = TestDatabase::new(backend).await;
    init_schema(&db).await;
    let dir = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
    let mut a = WriterProcess::spawn(&nats.url(), &db.url, "writer-a", dir.path(), &[]);
    assert!(
        wait_for(Duration::from_secs(20), || async {
            a.ready().await.then_some(())
        })
        .await
        .is_some(),
        "{}",
        a.log_text()
    );
    let b = WriterProcess::spawn(&nats.url(), &db.url, "writer-b", dir.path(), &[]);
    let standby = wait_for(Duration::from_secs(10), || async {
        b.log_text()
            .contains("standby: waiting for the writer lock")
            .then_some(())
    })
    .await;
    assert!(standby.is_some(), "{}", b.log_text());
    assert!(!b.ready().await, "the standby must not report ready");
    let js = jetstream(&nats.url()).await;
    publish_acked(
        &js,
        Kind::Event.subject("sb"),
        enc(&envelope("sb", "sb-1", t0(), event_body("one"))),
        "sb-1",
    )
    .await;
    assert!(
        wait_for(Duration::from_secs(10), || async {
            (count(&db, "events").await == 1).then_some(())
        })
        .await
        .is_some()
    );
    let writer_id = rows(&db, "SELECT writer_id FROM pipeline_status").await;
    assert_eq!(writer_id, vec![vec![Some("writer-a".to_owned())]]);
    assert_eq!(
        metric(&b.metrics().await, "sdash_writer_batches_total"),
        Some(0.0)
    );
    assert_eq!(
        metric(&b.metrics().await, "sdash_writer_lock_held"),
        Some(0.0)
    );

    a.kill();
    let killed = Instant::now();
    publish_acked(
        &js,
        Kind::Event.subject("sb"),
        enc(&envelope("sb", "sb-2", t0() + 1, event_body("two"))),
        "sb-2",
    )
    .await;
    let took_over = wait_for(Duration::from_secs(10), || async {
        (count(&db, "events WHERE event_id = 'sb-2'").await == 1).then_some(())
    })
    .await;
    assert!(
        took_over.is_some(),
        "standby did not take over within 10 s:\n{}",
        b.log_text()
    );
    assert!(killed.elapsed() < Duration::from_secs(10));
    let writer_id = rows(&db, "SELECT writer_id FROM pipeline_status").await;
    assert_eq!(writer_id, vec![vec![Some("writer-b".to_owned())]]);
    assert!(
        wait_for(Duration::from_secs(5), || async {
            b.ready().await.then_some(())
        })
        .await
        .is_some()
    );
    assert_eq!(count(&db, "events").await, 2);
}

both_backends!(
    dead_letters_through_the_pipeline,
    oracle_under_faults,
    standby_takes_over
);

/// 32 and then 320 concurrent producers of log events for different systems, SQLite: zero lock
/// errors (no retried batch), nothing lost, nothing duplicated.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn many_concurrent_producers_on_sqlite() {
    let nats = NatsServer::start();
    let db = TestDatabase::new(Backend::Sqlite).await;
    init_schema(&db).await;
    let mut config = WriterConfig::new(&nats.url(), &db.url);
    let port = sdash_harness::free_port();
    config.admin_listen = ([127, 0, 0, 1], port).into();
    let (stop, task) = start_in_process(config.clone());
    let js = jetstream(&nats.url()).await;
    let mut total = 0i64;
    for (round, producers, per) in [(1, 32, 40), (2, 320, 8)] {
        let mut tasks = Vec::new();
        for p in 0..producers {
            let js = js.clone();
            tasks.push(tokio::spawn(async move {
                let system = format!("load-{round}-{p}");
                for n in 0..per {
                    let id = format!("{system}-{n:04}");
                    let env = envelope(&system, &id, t0() + i64::from(n), event_body(&id));
                    publish_acked(&js, Kind::Event.subject(&system), enc(&env), &id).await;
                }
            }));
        }
        for t in tasks {
            let _ = t.await;
        }
        total += i64::from(producers) * i64::from(per);
        let all = wait_for(Duration::from_secs(30), || async {
            (count(&db, "events").await == total).then_some(())
        })
        .await;
        assert!(
            all.is_some(),
            "round {round}: {} of {total} events stored",
            count(&db, "events").await
        );
    }
    assert_eq!(
        scalar(
            &db,
            "SELECT CAST(count(DISTINCT event_id) AS TEXT) FROM events"
        )
        .await,
        total
    );
    assert_eq!(count(&db, "events WHERE message <> event_id").await, 0);
    assert_eq!(count(&db, "dead_letters").await, 0);
    let body = http_get(config.admin_listen, "/metrics")
        .await
        .map(|(_, b)| b)
        .unwrap_or_default();
    assert_eq!(
        metric(&body, "sdash_writer_retries_total"),
        Some(0.0),
        "{body}"
    );
    assert_eq!(metric(&body, "sdash_writer_dropped_total"), Some(0.0));
    assert_eq!(
        metric(&body, "sdash_writer_messages_total"),
        Some(total as f64)
    );
    assert!(matches!(
        http_get(config.admin_listen, "/readyz").await,
        Some((200, _))
    ));
    stop.cancel();
    let _ = tokio::time::timeout(Duration::from_secs(15), task).await;
}

/// Shutdown while the database is unavailable: the writer releases its batch (nak) and stops
/// promptly; the next writer stores it.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn shutdown_during_an_outage_releases_the_batch() {
    let nats = NatsServer::start();
    let db = TestDatabase::new(Backend::Sqlite).await;
    init_schema(&db).await;
    let config = WriterConfig::new(&nats.url(), &db.url);
    let (stop, task) = start_in_process(config.clone());
    let js = jetstream(&nats.url()).await;
    let mut blocker = sqlx::SqliteConnection::connect(&db.url)
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    sqlx::query("BEGIN EXCLUSIVE")
        .execute(&mut blocker)
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    for i in 0..3 {
        let id = format!("sd-{i}");
        publish_acked(
            &js,
            Kind::Event.subject("sd"),
            enc(&envelope("sd", &id, t0(), event_body(&id))),
            &id,
        )
        .await;
    }
    tokio::time::sleep(Duration::from_millis(1500)).await;
    stop.cancel();
    let result = tokio::time::timeout(Duration::from_secs(12), task).await;
    assert!(
        matches!(result, Ok(Ok(Ok(())))),
        "writer did not stop: {result:?}"
    );
    sqlx::query("ROLLBACK")
        .execute(&mut blocker)
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(count(&db, "events").await, 0);
    let started = Instant::now();
    let (stop, task) = start_in_process(config);
    let stored = wait_for(Duration::from_secs(10), || async {
        (count(&db, "events").await == 3).then_some(())
    })
    .await;
    assert!(stored.is_some(), "the released batch was not redelivered");
    assert!(
        started.elapsed() < Duration::from_secs(5),
        "released messages should not wait for ack_wait"
    );
    stop.cancel();
    let _ = tokio::time::timeout(Duration::from_secs(10), task).await;
}

/// nats-server comes back with an empty store (stream and consumer gone): the writer creates
/// them again and keeps consuming.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn stream_lost_on_the_server_is_recreated() {
    let mut nats = NatsServer::start();
    let db = TestDatabase::new(Backend::Sqlite).await;
    init_schema(&db).await;
    let (stop, task) = start_in_process(WriterConfig::new(&nats.url(), &db.url));
    let js = jetstream(&nats.url()).await;
    let event = |id: &str| enc(&envelope("lost", id, t0(), event_body(id)));
    publish_acked(&js, Kind::Event.subject("lost"), event("lost-1"), "lost-1").await;
    assert!(
        wait_for(Duration::from_secs(10), || async {
            (count(&db, "events").await == 1).then_some(())
        })
        .await
        .is_some()
    );
    nats.kill();
    for entry in std::fs::read_dir(nats.store_dir())
        .into_iter()
        .flatten()
        .flatten()
    {
        let _ = std::fs::remove_dir_all(entry.path());
    }
    nats.restart();
    // The producer's publish only succeeds once somebody (the writer) has recreated the stream.
    tokio::time::timeout(
        Duration::from_secs(30),
        publish_acked(&js, Kind::Event.subject("lost"), event("lost-2"), "lost-2"),
    )
    .await
    .unwrap_or_else(|_| panic!("the stream was not recreated"));
    let stored = wait_for(Duration::from_secs(15), || async {
        (count(&db, "events").await == 2).then_some(())
    })
    .await;
    assert!(
        stored.is_some(),
        "the writer did not resume on the recreated stream"
    );
    stop.cancel();
    let _ = tokio::time::timeout(Duration::from_secs(10), task).await;
}

/// A message that decodes but that PostgreSQL refuses (an alert id too large for its index):
/// the batch is written in parts, that one message becomes a dead letter, the rest is stored.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_message_the_database_refuses_is_isolated() {
    let nats = NatsServer::start();
    let db = TestDatabase::new(Backend::Postgres).await;
    init_schema(&db).await;
    let mut config = WriterConfig::new(&nats.url(), &db.url);
    config.batch_timeout = Duration::from_millis(500);
    let (stop, task) = start_in_process(config);
    let js = jetstream(&nats.url()).await;
    // ~40 KB of incompressible text: larger than a btree index entry may be.
    let mut x: u64 = 0x2545_f491_4f6c_dd1d;
    let huge: String = (0..40_000)
        .map(|_| {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            char::from(b'a' + (x % 26) as u8)
        })
        .collect();
    let mut body = snapshot_body(Status::Online, Health::Ok, &[], None);
    body.alerts = vec![alert(&huge)];
    for i in 0..5 {
        let id = format!("iso-{i}");
        publish_acked(
            &js,
            Kind::Event.subject("iso"),
            enc(&envelope("iso", &id, t0(), event_body(&id))),
            &id,
        )
        .await;
        if i == 2 {
            let env = envelope("iso", "iso-snap", t0(), body.clone());
            publish_acked(&js, Kind::Snapshot.subject("iso"), enc(&env), "iso-snap").await;
        }
    }
    let done = wait_for(Duration::from_secs(20), || async {
        (count(&db, "events").await == 5 && count(&db, "dead_letters").await == 1).then_some(())
    })
    .await;
    assert!(
        done.is_some(),
        "{:?}",
        rows(&db, "SELECT reason FROM dead_letters").await
    );
    assert_eq!(
        count(
            &db,
            "dead_letters WHERE reason LIKE 'refused by the database%'"
        )
        .await,
        1
    );
    stop.cancel();
    let _ = tokio::time::timeout(Duration::from_secs(10), task).await;
}
