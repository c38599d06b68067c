//! PostgreSQL switchovers during ingest: a primary and its synchronous streaming replica
//! (`sdash_harness::PgCluster`), the writer (and the API) given the URL naming both servers.
//! Producers publish numbered events to JetStream and remember every acknowledged id; while
//! they publish, the replica is promoted and the primary stopped (`-m immediate`), or fenced
//! read-only and left running. The oracle: every acknowledged id is on the new primary exactly
//! once with its payload. The API, polled all along, may fail only for a short window and then
//! serves data written after the switchover.

use std::collections::{HashMap, HashSet};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use sdash_harness::{NatsServer, PgCluster, wait_for};
use sdash_proto::subjects::Kind;
use sdash_proto::{Category, Envelope, EventRecord, Level, SCHEMA_VERSION};
use sdash_service::Shutdown;
use sdash_service::bus::{self, NatsArgs, StreamArgs};
use sqlx::{Connection, Row};

/// The longest the API may keep failing while the servers change roles.
const API_FAILURE_WINDOW: Duration = Duration::from_secs(5);

fn event(system: &str, id: &str, observed_at: i64) -> Vec<u8> {
    let envelope = Envelope {
        schema: SCHEMA_VERSION,
        event_id: id.to_owned(),
        collector_id: "switchover-test".into(),
        system_id: system.to_owned(),
        observed_at,
        body: EventRecord {
            level: Level::Info,
            category: Category::Connection,
            message: format!("payload of {id}"),
            details: None,
            http_status: None,
            endpoint: None,
        },
    };
    sdash_proto::encode(&envelope).unwrap_or_else(|e| panic!("encode: {e}"))
}

/// Publishes with `Nats-Msg-Id` = `id` until JetStream acknowledges it.
async fn publish_acked(js: &async_nats::jetstream::Context, system: &str, id: &str, at: i64) {
    let payload = bytes::Bytes::from(event(system, id, at));
    loop {
        let mut headers = async_nats::HeaderMap::new();
        headers.insert(async_nats::header::NATS_MESSAGE_ID, id);
        if let Ok(ack) = js
            .publish_with_headers(Kind::Event.subject(system), headers, payload.clone())
            .await
            && let Ok(Ok(_)) = tokio::time::timeout(Duration::from_secs(5), ack).await
        {
            return;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// `event_id -> message` of the test's events on one server.
async fn stored_events(url: &str) -> Option<Vec<(String, String)>> {
    let mut c = sqlx::PgConnection::connect(url).await.ok()?;
    let rows = sqlx::query("SELECT event_id, message FROM events WHERE event_id LIKE 'switch-%'")
        .fetch_all(&mut c)
        .await
        .ok()?;
    let _ = c.close().await;
    rows.iter()
        .map(|r| Some((r.try_get(0).ok()?, r.try_get(1).ok()?)))
        .collect()
}

async fn api_events(url: &str) -> Option<serde_json::Value> {
    let response = reqwest::Client::new()
        .get(url)
        .timeout(Duration::from_secs(10))
        .send()
        .await
        .ok()?;
    if !response.status().is_success() {
        return None;
    }
    response.json().await.ok()
}

/// The longest time from a failed API request to the next answered one.
fn longest_failure(polls: &[(Instant, bool)]) -> Duration {
    let mut longest = Duration::ZERO;
    let mut failing_since = None;
    for &(at, ok) in polls {
        match (ok, failing_since) {
            (false, None) => failing_since = Some(at),
            (true, Some(since)) => {
                longest = longest.max(at - since);
                failing_since = None;
            }
            _ => {}
        }
    }
    if let (Some(since), Some(&(last, _))) = (failing_since, polls.last()) {
        longest = longest.max(last - since);
    }
    longest
}

/// Producers publishing numbered events (`switch-<p>-<n>`) until stopped, each id remembered
/// once JetStream acknowledged it.
struct Producers {
    acked: Arc<Mutex<Vec<String>>>,
    producing: Arc<AtomicBool>,
    tasks: Vec<tokio::task::JoinHandle<()>>,
}

impl Producers {
    fn start(js: &async_nats::jetstream::Context) -> Producers {
        let acked: Arc<Mutex<Vec<String>>> = Arc::default();
        let producing = Arc::new(AtomicBool::new(true));
        let t0 = sdash_proto::now_ms() - 60_000;
        let tasks = (0..3)
            .map(|p| {
                let (js, acked, producing) = (js.clone(), acked.clone(), producing.clone());
                tokio::spawn(async move {
                    let system = format!("switch-{p}");
                    let mut n = 0i64;
                    while producing.load(Ordering::SeqCst) {
                        n += 1;
                        let id = format!("switch-{p}-{n:06}");
                        publish_acked(&js, &system, &id, t0 + n).await;
                        acked.lock().unwrap_or_else(|e| e.into_inner()).push(id);
                        tokio::time::sleep(Duration::from_millis(5)).await;
                    }
                })
            })
            .collect();
        Producers {
            acked,
            producing,
            tasks,
        }
    }

    fn acked(&self) -> Vec<String> {
        self.acked.lock().unwrap_or_else(|e| e.into_inner()).clone()
    }

    /// Stops them; every acknowledged id.
    async fn stop(self) -> HashSet<String> {
        self.producing.store(false, Ordering::SeqCst);
        let acked = self.acked.clone();
        for task in self.tasks {
            let _ = task.await;
        }
        let ids = acked.lock().unwrap_or_else(|e| e.into_inner()).clone();
        ids.into_iter().collect()
    }
}

/// NATS, the cluster and the writer (given both servers), for one test.
struct Setup {
    cluster: PgCluster,
    nats: NatsServer,
    js: async_nats::jetstream::Context,
    stop: Shutdown,
    writer: tokio::task::JoinHandle<anyhow::Result<()>>,
}

impl Setup {
    async fn start() -> Setup {
        let _ = tracing_subscriber::fmt()
            .with_env_filter("warn,sdash_writer=info,sdash_api=info,sdash_service=info")
            .with_test_writer()
            .try_init();
        sdash_testkit::install_crypto_provider();
        let cluster = PgCluster::start().await;
        let nats = NatsServer::start();
        let stop = Shutdown::new();
        let writer_url = format!("{}?target_session_attrs=read-write", cluster.url());
        let mut writer_config = sdash_writer::WriterConfig::new(&nats.url(), &writer_url);
        // Messages handed to a fetch that the writer abandoned when it lost the lock come back
        // after the ack wait; 30 s by default, shortened so that the test stays short.
        writer_config.ack_wait = Duration::from_secs(5);
        let writer = tokio::spawn(sdash_writer::run(writer_config, stop.clone()));
        let client = bus::connect(&NatsArgs::plain(&nats.url()), "switchover-producer", true)
            .await
            .unwrap_or_else(|e| panic!("connect: {e}"));
        let js = async_nats::jetstream::new(client);
        bus::ensure_stream(&js, &StreamArgs::default())
            .await
            .unwrap_or_else(|e| panic!("stream: {e}"));
        Setup {
            cluster,
            nats,
            js,
            stop,
            writer,
        }
    }

    /// Waits until ingest is under way on the primary and the replica has all of it.
    async fn wait_ingesting(&self) {
        let primary_url = self.cluster.primary_url();
        let ingesting = wait_for(Duration::from_secs(30), || async {
            (stored_events(&primary_url).await?.len() >= 200).then_some(())
        })
        .await;
        assert!(
            ingesting.is_some(),
            "the writer did not write to the primary\n{}",
            self.cluster.logs()
        );
        assert!(
            self.cluster.wait_caught_up(Duration::from_secs(10)).await,
            "the replica does not keep up\n{}",
            self.cluster.logs()
        );
    }

    /// Waits until 50 events acknowledged after `published_before` ids are on the new primary.
    async fn wait_resumed(&self, producers: &Producers, published_before: usize) {
        let new_primary = self.cluster.replica_url();
        let resumed = wait_for(Duration::from_secs(30), || async {
            let later: HashSet<String> = producers
                .acked()
                .into_iter()
                .skip(published_before)
                .take(50)
                .collect();
            let stored = stored_events(&new_primary).await?;
            let found = stored.iter().filter(|(id, _)| later.contains(id)).count();
            (later.len() == 50 && found == 50).then_some(())
        })
        .await;
        assert!(
            resumed.is_some(),
            "the writer did not resume on the new primary within 30 s\n{}",
            self.cluster.logs()
        );
    }

    /// The oracle: every id of `expected` on the new primary, once, with its payload, and no
    /// other event of the test.
    async fn assert_all_stored_once(&self, expected: &HashSet<String>) {
        let new_primary = self.cluster.replica_url();
        let stored = wait_for(Duration::from_secs(30), || async {
            let stored = stored_events(&new_primary).await?;
            let ids: HashSet<&String> = stored.iter().map(|(id, _)| id).collect();
            expected.iter().all(|id| ids.contains(id)).then_some(stored)
        })
        .await
        .or(stored_events(&new_primary).await)
        .unwrap_or_default();
        let mut seen: HashMap<&str, usize> = HashMap::new();
        for (id, message) in &stored {
            assert_eq!(message, &format!("payload of {id}"), "payload of {id}");
            *seen.entry(id.as_str()).or_default() += 1;
        }
        let missing: Vec<&String> = expected
            .iter()
            .filter(|id| !seen.contains_key(id.as_str()))
            .collect();
        assert!(
            missing.is_empty(),
            "{} of {} acknowledged events are not on the new primary, e.g. {:?}",
            missing.len(),
            expected.len(),
            missing.iter().take(5).collect::<Vec<_>>()
        );
        let duplicated: Vec<_> = seen.iter().filter(|(_, n)| **n > 1).collect();
        assert!(duplicated.is_empty(), "stored twice: {duplicated:?}");
        assert_eq!(seen.len(), expected.len(), "unexpected events stored");
    }

    /// Stops the services; the writer must stop cleanly.
    async fn stop(self, api: Option<tokio::task::JoinHandle<()>>) {
        self.stop.cancel();
        if let Some(api) = api {
            let _ = tokio::time::timeout(Duration::from_secs(15), api).await;
        }
        let stopped = tokio::time::timeout(Duration::from_secs(15), self.writer).await;
        assert!(
            matches!(stopped, Ok(Ok(Ok(())))),
            "the writer did not stop cleanly: {stopped:?}"
        );
        drop(self.nats);
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn writer_and_api_follow_a_switchover_without_loss() {
    let mut setup = Setup::start().await;
    // The API reads from any server (libpq's default), the first in the URL while it answers.
    let api_config = sdash_api::Config::new(&setup.cluster.url());
    let api = wait_for(Duration::from_secs(20), || {
        let (config, stop) = (api_config.clone(), setup.stop.clone());
        async move { sdash_api::spawn_with_shutdown(config, stop).await.ok() }
    })
    .await;
    let Some((api_addr, api_task)) = api else {
        panic!("the API did not start\n{}", setup.cluster.logs());
    };
    let events_url = format!("http://{api_addr}/api/v1/events?limit=5");
    let producers = Producers::start(&setup.js);
    setup.wait_ingesting().await;
    assert!(
        api_events(&events_url).await.is_some(),
        "the API does not answer before the switchover"
    );
    // The API is polled from now on, through the switchover.
    let polling = Arc::new(AtomicBool::new(true));
    let poller = {
        let (url, polling) = (events_url.clone(), polling.clone());
        tokio::spawn(async move {
            let mut polls = Vec::new();
            while polling.load(Ordering::SeqCst) {
                let ok = api_events(&url).await.is_some();
                polls.push((Instant::now(), ok));
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
            polls
        })
    };

    // The switchover, with the producers still publishing: for a moment both servers accept
    // writes (the old primary's commits wait for the replica, which no longer replicates), then
    // the old primary goes away with every session.
    setup.cluster.promote_replica();
    tokio::time::sleep(Duration::from_millis(300)).await;
    setup.cluster.stop_primary();
    let switched = Instant::now();
    let published_before = producers.acked().len();
    setup.wait_resumed(&producers, published_before).await;
    let writer_resumed_after = switched.elapsed();
    tokio::time::sleep(Duration::from_secs(1)).await;
    let mut expected = producers.stop().await;
    // One more, the newest of all, that the API must show from the new primary.
    publish_acked(
        &setup.js,
        "switch-after",
        "switch-after",
        sdash_proto::now_ms(),
    )
    .await;
    expected.insert("switch-after".to_owned());
    setup.assert_all_stored_once(&expected).await;

    // The API serves what was written after the switchover.
    let newest = wait_for(Duration::from_secs(15), || async {
        let body = api_events(&events_url).await?;
        (body["items"][0]["event_id"] == "switch-after").then_some(())
    })
    .await;
    polling.store(false, Ordering::SeqCst);
    let polls = poller.await.unwrap_or_default();
    assert!(
        newest.is_some(),
        "the API does not show the event written after the switchover"
    );
    let failed = polls.iter().filter(|(_, ok)| !ok).count();
    let longest = longest_failure(&polls);
    assert!(
        polls.iter().any(|&(at, ok)| ok && at > switched),
        "the API answered nothing after the switchover"
    );
    assert!(
        longest <= API_FAILURE_WINDOW,
        "the API failed for {longest:?} in a row ({failed} of {} requests failed)",
        polls.len()
    );
    eprintln!(
        "{} events, none lost or duplicated; writer resumed {writer_resumed_after:?} after the \
         switchover; API: {failed} of {} requests failed, longest failure {longest:?}",
        expected.len(),
        polls.len()
    );
    setup.stop(Some(api_task)).await;
}

/// The old primary is fenced (made read-only) and left running, then the replica promoted: the
/// writer's lock check sees its server is no longer writable, lets the lock go and takes it on
/// the new primary.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn writer_leaves_a_fenced_primary_without_loss() {
    let mut setup = Setup::start().await;
    let producers = Producers::start(&setup.js);
    setup.wait_ingesting().await;

    setup.cluster.fence_primary();
    tokio::time::sleep(Duration::from_millis(300)).await;
    setup.cluster.promote_replica();
    let switched = Instant::now();
    let published_before = producers.acked().len();
    setup.wait_resumed(&producers, published_before).await;
    let writer_resumed_after = switched.elapsed();
    tokio::time::sleep(Duration::from_secs(1)).await;
    let expected = producers.stop().await;
    setup.assert_all_stored_once(&expected).await;
    // The fenced server is still up, with nothing written after the fence.
    let on_old = stored_events(&setup.cluster.primary_url())
        .await
        .map(|rows| rows.len());
    assert!(
        on_old.is_some_and(|n| n < expected.len()),
        "the fenced primary should be up and missing the later events: {on_old:?} of {}",
        expected.len()
    );
    eprintln!(
        "{} events, none lost or duplicated; writer resumed {writer_resumed_after:?} after the fence",
        expected.len()
    );
    setup.cluster.stop_primary();
    setup.stop(None).await;
}
