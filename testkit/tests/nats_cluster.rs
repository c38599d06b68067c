//! sdash on a three-node JetStream cluster (`sdash_harness::NatsCluster`): the services connect
//! to any of the listed servers and move to another when theirs dies; with the `SDASH` stream
//! and the membership bucket at three replicas, killing the node that leads the stream during
//! ingest, and restarting every node in turn, loses nothing and duplicates nothing (the oracle:
//! every record in the stream is in the database exactly once, and so is every record seen
//! published), the collectors stop double polling within one lease of the cluster having its
//! leaders again, and a killed node rejoins with its copy of the stream caught up. A membership
//! bucket made with one replica is raised to `--kv-replicas`, never lowered.
//!
//! Collectors (three), the writer and the simulated fleet run in this process through the same
//! entry points their binaries call; only the nats-servers are separate processes, killed -9.

use std::collections::{BTreeMap, BTreeSet, HashMap, HashSet};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use async_nats::jetstream::{self, consumer};
use clap::Parser;
use futures::StreamExt;
use sdash_collector::membership;
use sdash_harness::{Backend, NatsCluster, TestDatabase, free_port, metric_sum, wait_for};
use sdash_proto::subjects::STREAM;
use sdash_proto::{Record, Vendor};
use sdash_service::Shutdown;
use sdash_service::bus::{self, NatsArgs};
use sdash_testkit::sim::{Fleet, Mix, SimConfig};
use sqlx::{Connection, Row};

const SYSTEMS: usize = 24;
const COLLECTORS: usize = 3;
const INTERVAL: Duration = Duration::from_secs(1);
/// Shorter than the default 15 s so that the test sees a lease pass; still longer than a
/// leader election (a few seconds), so a killed node rarely costs a double poll at all.
const LEASE_S: u64 = 6;
const REPLICAS: &str = "3";
const KV_STREAM: &str = "KV_sdash-collectors";
const DOUBLE_POLLS: &str = "sdash_collector_double_polls_total";

/// A client of the kind every service uses, on every node of the cluster.
async fn connect(cluster: &NatsCluster, name: &str) -> async_nats::Client {
    bus::connect(&NatsArgs::plain(&cluster.urls()), name, true)
        .await
        .expect("a client that reconnects by itself")
}

/// The node `client` is connected to now.
fn node_of(cluster: &NatsCluster, client: &async_nats::Client) -> Option<usize> {
    (client.connection_state() == async_nats::connection::State::Connected)
        .then(|| cluster.node_of_port(client.server_info().port))
        .flatten()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn services_connect_to_any_listed_server_and_move_on_when_it_dies() {
    let mut cluster = NatsCluster::start().await;
    // The first listed server is down: a service connects to another one at once.
    cluster.kill(0);
    let client = bus::connect(&NatsArgs::plain(&cluster.urls()), "failover-test", false)
        .await
        .expect("connects although the first listed server is down");
    let first = node_of(&cluster, &client).expect("connected to a listed node");
    assert_ne!(first, 0, "connected to the node that is down");
    let mut subscription = client.subscribe("failover.test").await.expect("subscribe");
    client.flush().await.expect("flush");

    // Its server dies: the client moves to the last one, and its subscription comes along.
    cluster.kill(first);
    let last = 3 - first;
    let moved = wait_for(Duration::from_secs(15), || async {
        (node_of(&cluster, &client) == Some(last)).then_some(())
    })
    .await;
    assert!(
        moved.is_some(),
        "the client moves from n{} to n{} (state {:?})",
        first + 1,
        last + 1,
        client.connection_state()
    );
    let publisher = async_nats::connect(cluster.url(last))
        .await
        .expect("connect to the live node");
    publisher
        .publish("failover.test", "after the move".into())
        .await
        .expect("publish");
    publisher.flush().await.expect("flush");
    let received = tokio::time::timeout(Duration::from_secs(5), subscription.next()).await;
    assert_eq!(
        received.ok().flatten().map(|m| m.payload),
        Some("after the move".into()),
        "the subscription survives the move"
    );

    // Every listed server is down at start: the service starts anyway and connects as soon as
    // one comes back.
    drop(publisher);
    cluster.kill(last);
    let late = bus::connect(&NatsArgs::plain(&cluster.urls()), "late-test", true)
        .await
        .expect("starts while every server is down");
    assert_eq!(node_of(&cluster, &late), None);
    cluster.restart(1).await;
    let connected = wait_for(Duration::from_secs(15), || async {
        (node_of(&cluster, &late) == Some(1)).then_some(())
    })
    .await;
    assert!(
        connected.is_some(),
        "connects to n2 once it is back (state {:?})",
        late.connection_state()
    );
    late.flush().await.expect("flush once connected");
}

/// The replicas of the membership bucket's stream, as its configuration says.
async fn bucket_replicas(js: &jetstream::Context) -> Option<usize> {
    let stream = js.get_stream(KV_STREAM).await.ok()?;
    Some(stream.cached_info().config.num_replicas)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_membership_bucket_with_one_replica_is_raised_to_three_never_lowered() {
    let cluster = NatsCluster::start().await;
    let js = jetstream::new(connect(&cluster, "replicas-test").await);
    let lease = Duration::from_secs(2);
    // As a collector with the default --kv-replicas 1 makes it.
    let made = membership::ensure_bucket(&js, lease, 1).await;
    assert_eq!(made, Ok(true), "the bucket is made");
    assert_eq!(bucket_replicas(&js).await, Some(1));

    let raised = membership::ensure_bucket(&js, lease, 3).await;
    assert_eq!(raised, Ok(false), "an existing bucket is kept");
    assert_eq!(
        bucket_replicas(&js).await,
        Some(3),
        "--kv-replicas 3 raises it"
    );
    let kept = membership::ensure_bucket(&js, lease, 1).await;
    assert_eq!(kept, Ok(false));
    assert_eq!(
        bucket_replicas(&js).await,
        Some(3),
        "--kv-replicas 1 does not lower it"
    );
    // Every node holds a current copy.
    let synced = cluster
        .wait_until_in_sync(KV_STREAM, Duration::from_secs(20))
        .await;
    assert!(synced.is_ok(), "three current copies: {synced:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_stream_is_raised_to_three_replicas_and_never_lowered() {
    let cluster = NatsCluster::start().await;
    let js = jetstream::new(connect(&cluster, "stream-replicas-test").await);
    let limits = |replicas: usize, max_age_hours: u64| bus::StreamArgs {
        max_age_hours,
        max_mib: 64,
        replicas,
    };
    let replicas = |js: jetstream::Context| async move {
        let mut stream = js.get_stream(STREAM).await.ok()?;
        Some(stream.info().await.ok()?.config.num_replicas)
    };
    let made = bus::ensure_stream(&js, &limits(1, 24)).await;
    assert!(made.is_ok(), "the stream is made: {:?}", made.err());
    assert_eq!(replicas(js.clone()).await, Some(1));
    let raised = bus::ensure_stream(&js, &limits(3, 24)).await;
    assert!(raised.is_ok(), "{:?}", raised.err());
    assert_eq!(
        replicas(js.clone()).await,
        Some(3),
        "--stream-replicas 3 raises an existing stream with the same limits"
    );
    let synced = cluster
        .wait_until_in_sync(STREAM, Duration::from_secs(20))
        .await;
    assert!(synced.is_ok(), "three current copies: {synced:?}");
    // A service at the default of 1 with other limits changes the limits, not the replicas.
    let kept = bus::ensure_stream(&js, &limits(1, 48)).await;
    assert!(kept.is_ok(), "{:?}", kept.err());
    let mut stream = js.get_stream(STREAM).await.expect("the stream");
    let config = stream.info().await.expect("stream info").config.clone();
    assert_eq!(
        config.max_age,
        Duration::from_secs(48 * 3600),
        "limits move"
    );
    assert_eq!(
        config.num_replicas, 3,
        "--stream-replicas 1 does not lower it"
    );
}

/// One collector in this process, with its admin server for `/metrics`.
struct Collector {
    stop: Shutdown,
    task: tokio::task::JoinHandle<()>,
    metrics_port: u16,
}

/// Who polled the fleet in one interval of its schedule.
#[derive(Debug, Default)]
#[allow(dead_code)] // `index` is read in failure messages.
struct Interval {
    index: i64,
    unpolled: usize,
    doubled: usize,
    alone: BTreeMap<String, usize>,
}

/// Records seen on the bus, from a core subscription to `sdash.v1.>` that reconnects by itself:
/// what the producers published (it may miss some while it moves between nodes, never invent
/// one), and who polled which system in which interval.
#[derive(Default)]
struct Observed {
    /// Event ids of the collectors' records.
    ids: HashSet<String>,
    /// (system, interval index) -> collectors that published a snapshot of it.
    polls: HashMap<(String, i64), BTreeSet<String>>,
}

/// The cluster, the simulated fleet, three collectors and the writer, on a fresh database.
struct Deployment {
    cluster: NatsCluster,
    db: TestDatabase,
    fleet: Fleet,
    _dir: tempfile::TempDir,
    collectors: Vec<Collector>,
    writer_stop: Shutdown,
    writer: tokio::task::JoinHandle<anyhow::Result<()>>,
    /// The writer's admin server (`/metrics`).
    writer_admin_port: u16,
    observed: Arc<Mutex<Observed>>,
    js: jetstream::Context,
}

impl Deployment {
    async fn start(backend: Backend) -> Deployment {
        sdash_testkit::install_crypto_provider();
        // What the collectors and the writer log goes to the test's output, shown on failure.
        let _ = tracing_subscriber::fmt()
            .with_env_filter("warn,sdash_collector::membership=info")
            .with_test_writer()
            .try_init();
        let cluster = NatsCluster::start().await;
        let db = TestDatabase::new(backend).await;
        let fleet = Fleet::start(SimConfig {
            systems: SYSTEMS,
            seed: 18,
            mix: Mix(vec![
                (Vendor::Pure, 1),
                (Vendor::Ontap, 1),
                (Vendor::Storagegrid, 1),
                (Vendor::Datadomain, 1),
            ]),
            ..SimConfig::default()
        })
        .await
        .expect("simulated fleet");
        let dir = tempfile::tempdir().expect("tempdir");
        let inventory = dir.path().join("inventory.toml");
        fleet
            .write_inventory(&inventory, &format!("{}s", INTERVAL.as_secs()))
            .expect("inventory");
        let client = connect(&cluster, "cluster-test").await;
        let observed = observe(client.clone());

        let mut writer_config = sdash_writer::WriterConfig::new(&cluster.urls(), &db.url);
        writer_config.stream.replicas = 3;
        // Every capacity sample stored raw (no deadband, no gap), so that the oracle can compare
        // the raw samples with the stream's snapshots one for one.
        writer_config.capacity_raw_deadband = 0.0;
        writer_config.capacity_raw_max_gap = Duration::ZERO;
        let writer_admin_port = free_port();
        writer_config.admin_listen =
            std::net::SocketAddr::from(([127, 0, 0, 1], writer_admin_port));
        let writer_stop = Shutdown::new();
        let writer = tokio::spawn(sdash_writer::run(writer_config, writer_stop.clone()));

        let urls = cluster.urls();
        let collectors = (0..COLLECTORS)
            .map(|n| {
                let metrics_port = free_port();
                let cli = sdash_collector::app::Cli::try_parse_from([
                    "sdash-collector",
                    "--nats-url",
                    &urls,
                    "--stream-replicas",
                    REPLICAS,
                    "--kv-replicas",
                    REPLICAS,
                    "--inventory",
                    &inventory.display().to_string(),
                    "--collector-id",
                    &format!("c{}", n + 1),
                    "--lease-seconds",
                    &LEASE_S.to_string(),
                    "--heartbeat-seconds",
                    "1",
                    "--metrics-listen",
                    &format!("127.0.0.1:{metrics_port}"),
                ])
                .expect("collector flags");
                let stop = Shutdown::new();
                let run_stop = stop.clone();
                let task = tokio::spawn(async move {
                    if let Err(e) = sdash_collector::app::run(cli.run, run_stop).await {
                        panic!("collector failed: {e:#}");
                    }
                });
                Collector {
                    stop,
                    task,
                    metrics_port,
                }
            })
            .collect();
        Deployment {
            cluster,
            db,
            fleet,
            _dir: dir,
            collectors,
            writer_stop,
            writer,
            writer_admin_port,
            observed,
            js: jetstream::new(client),
        }
    }

    /// Waits until the three collectors share the fleet (an interval with every system polled
    /// exactly once, by all three between them), and both replicated streams are in sync.
    async fn wait_until_sharing(&self) {
        let shared = wait_for(Duration::from_secs(30), || async {
            let now = sdash_proto::now_ms();
            self.intervals(now - 3000, now)
                .iter()
                .any(|i| i.alone.len() == COLLECTORS && i.alone.values().sum::<usize>() == SYSTEMS)
                .then_some(())
        })
        .await;
        assert!(
            shared.is_some(),
            "the collectors share the fleet within 30 s: {:?}",
            {
                let now = sdash_proto::now_ms();
                self.intervals(now - 3000, now)
            }
        );
        self.wait_until_in_sync(STREAM).await;
        self.wait_until_in_sync(KV_STREAM).await;
    }

    /// For each interval fully inside [from, to): how many systems no collector, exactly one,
    /// and several polled, and how many each collector polled alone.
    fn intervals(&self, from_ms: i64, to_ms: i64) -> Vec<Interval> {
        let observed = self.observed.lock().unwrap_or_else(|p| p.into_inner());
        let interval_ms = INTERVAL.as_millis() as i64;
        let first = from_ms.div_euclid(interval_ms) + 1;
        let last = to_ms.div_euclid(interval_ms) - 2;
        let systems = self.fleet.system_ids();
        (first..=last)
            .map(|index| {
                let mut interval = Interval {
                    index,
                    ..Interval::default()
                };
                for system in &systems {
                    match observed.polls.get(&(system.clone(), index)) {
                        None => interval.unpolled += 1,
                        Some(c) if c.len() > 1 => interval.doubled += 1,
                        Some(c) => {
                            for collector in c {
                                *interval.alone.entry(collector.clone()).or_insert(0) += 1;
                            }
                        }
                    }
                }
                interval
            })
            .collect()
    }

    async fn wait_until_in_sync(&self, stream: &str) {
        if let Err(last) = self
            .cluster
            .wait_until_in_sync(stream, Duration::from_secs(30))
            .await
        {
            panic!("{stream} is not in sync on every node within 30 s: {last:?}");
        }
    }

    /// The double polls the collectors counted between them.
    async fn double_polls(&self) -> f64 {
        let mut total = 0.0;
        for c in &self.collectors {
            total += metric_sum(c.metrics_port, DOUBLE_POLLS)
                .await
                .unwrap_or_else(|| panic!("{DOUBLE_POLLS} on port {}", c.metrics_port));
        }
        total
    }

    /// Kills the node leading the `SDASH` stream and waits until another one leads it (and the
    /// membership bucket); returns the killed node.
    async fn kill_stream_leader(&mut self) -> usize {
        let leader = self
            .cluster
            .wait_for_leader(STREAM, Duration::from_secs(10))
            .await
            .expect("the stream has a leader");
        self.kill_and_wait_for_leaders(leader).await;
        leader
    }

    async fn kill_and_wait_for_leaders(&mut self, node: usize) {
        self.cluster.kill(node);
        for stream in [STREAM, KV_STREAM] {
            let elected = self
                .cluster
                .wait_for_leader(stream, Duration::from_secs(30))
                .await;
            assert!(
                elected.is_some_and(|n| n != node),
                "{stream} has a new leader within 30 s of killing n{} (now {elected:?})",
                node + 1
            );
        }
    }

    /// The newest capacity sample the writer has stored.
    async fn newest_sample(&self) -> i64 {
        let rows = text_rows(
            &self.db,
            "SELECT CAST(COALESCE(MAX(observed_at), 0) AS TEXT) FROM capacity_samples",
        )
        .await;
        rows.first()
            .and_then(|r| r.first().cloned().flatten())
            .and_then(|v| v.parse().ok())
            .unwrap_or(0)
    }

    /// Waits until the writer stores samples newer than now: ingest goes on.
    async fn wait_for_ingest(&self, what: &str) {
        let since = sdash_proto::now_ms();
        let flowing = wait_for(Duration::from_secs(30), || async {
            (self.newest_sample().await > since).then_some(())
        })
        .await;
        assert!(
            flowing.is_some(),
            "{what}: new snapshots reach the database within 30 s"
        );
    }

    /// Asserts that the collectors' double polls stop growing, when the cluster has its leaders:
    /// after a lease the counter stays put for 6 s, a quiet that begins within three leases from now
    /// (one lease is the design; a loaded machine elects the membership bucket's new leader
    /// later). Returns how many were counted since `before`.
    async fn assert_double_polls_stop(&self, before: f64, what: &str) -> f64 {
        let quiet = Duration::from_secs(6);
        let deadline = tokio::time::Instant::now() + Duration::from_secs(3 * LEASE_S) + quiet;
        // Not before a lease: until then doubling is expected (and may not have begun).
        tokio::time::sleep(Duration::from_secs(LEASE_S)).await;
        let mut settled = self.double_polls().await;
        let mut since = tokio::time::Instant::now();
        loop {
            tokio::time::sleep(INTERVAL).await;
            let now_count = self.double_polls().await;
            if now_count != settled {
                settled = now_count;
                since = tokio::time::Instant::now();
            } else if since.elapsed() >= quiet {
                break;
            }
            let now = sdash_proto::now_ms();
            assert!(
                tokio::time::Instant::now() < deadline,
                "{what}: {DOUBLE_POLLS} stops growing within three leases; the last intervals: {:#?}",
                self.intervals(now - 25_000, now)
            );
        }
        settled - before
    }

    /// Stops the collectors, lets the writer finish, and checks the oracle: the stream holds
    /// each collector record once (no duplicate across leader changes), every record seen
    /// published is in the stream, and the database holds each event and each capacity sample of
    /// the stream exactly once (its daily rollups count each sample once).
    async fn stop_and_check_the_oracle(mut self) {
        for c in &self.collectors {
            c.stop.cancel();
        }
        for c in self.collectors.drain(..) {
            let ended = tokio::time::timeout(Duration::from_secs(20), c.task).await;
            assert!(
                matches!(ended, Ok(Ok(()))),
                "a collector stops within 20 s: {ended:?}"
            );
        }
        self.wait_until_written().await;
        let records = read_stream(&self.js).await;

        let mut in_stream: HashMap<String, usize> = HashMap::new();
        let mut events = BTreeSet::new();
        let mut samples: BTreeMap<String, BTreeSet<i64>> = BTreeMap::new();
        for record in &records {
            let (event_id, collector) = match record {
                Record::Event(e) => {
                    events.insert(e.event_id.clone());
                    (&e.event_id, true)
                }
                Record::Snapshot(s) => {
                    if s.body.capacity.is_some() {
                        samples
                            .entry(s.system_id.clone())
                            .or_default()
                            .insert(s.observed_at);
                    }
                    (&s.event_id, true)
                }
                Record::System(s) => (&s.event_id, true),
                Record::Collector(c) => (&c.event_id, true),
                Record::Change(c) => (&c.event_id, false),
                Record::Command(c) => (&c.event_id, false),
                Record::History(h) => (&h.event_id, false),
            };
            if collector {
                *in_stream.entry(event_id.clone()).or_default() += 1;
            }
        }
        let twice: Vec<_> = in_stream.iter().filter(|(_, n)| **n > 1).collect();
        assert!(
            twice.is_empty(),
            "records stored twice in the stream (by Nats-Msg-Id): {twice:?}"
        );
        let observed = self
            .observed
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .ids
            .clone();
        let lost: Vec<&String> = observed
            .iter()
            .filter(|id| !in_stream.contains_key(*id))
            .collect();
        assert!(
            lost.is_empty(),
            "{} of {} records seen published are not in the stream, e.g. {:?}",
            lost.len(),
            observed.len(),
            lost.iter().take(5).collect::<Vec<_>>()
        );
        let sample_count: usize = samples.values().map(BTreeSet::len).sum();
        assert!(
            samples.len() == SYSTEMS && sample_count > SYSTEMS * 10,
            "too little ingest to judge: {sample_count} samples of {} systems",
            samples.len()
        );

        let stored_events = text_rows(&self.db, "SELECT event_id FROM events").await;
        let mut stored: HashMap<String, usize> = HashMap::new();
        for row in stored_events {
            *stored
                .entry(row[0].clone().unwrap_or_default())
                .or_default() += 1;
        }
        let stored_ids: BTreeSet<String> = stored.keys().cloned().collect();
        assert_eq!(
            stored_ids, events,
            "the events in the database are those of the stream"
        );
        assert!(stored.values().all(|n| *n == 1), "an event stored twice");

        let stored_samples = text_rows(
            &self.db,
            "SELECT system_id, CAST(observed_at AS TEXT) FROM capacity_samples",
        )
        .await;
        let mut by_system: BTreeMap<String, BTreeSet<i64>> = BTreeMap::new();
        for row in &stored_samples {
            let system = row[0].clone().unwrap_or_default();
            let at = row[1].as_deref().and_then(|v| v.parse().ok()).unwrap_or(0);
            by_system.entry(system).or_default().insert(at);
        }
        // Every sample once: also those that reached the writer after a newer one of their
        // system was committed (a redelivery after a lost pull, another collector's slower
        // publish), which the ledger of counted snapshots tells from redeliveries.
        for (system, stored) in &by_system {
            let published = samples.get(system).cloned().unwrap_or_default();
            assert_eq!(
                stored,
                &published,
                "{system}: the capacity samples stored are those of the stream (missing {:?}, extra {:?})",
                published.difference(stored).collect::<Vec<_>>(),
                stored.difference(&published).collect::<Vec<_>>()
            );
        }
        assert_eq!(
            by_system.keys().collect::<Vec<_>>(),
            samples.keys().collect::<Vec<_>>(),
            "every system's capacity samples are stored"
        );
        assert_eq!(stored_samples.len(), sample_count);
        let port = self.writer_admin_port;
        let metric =
            |name: &'static str| async move { metric_sum(port, name).await.unwrap_or(0.0) as u64 };
        let late = metric("sdash_writer_capacity_samples_late_total").await;
        let not_newer = metric("sdash_writer_capacity_samples_not_newer_total").await;
        assert_eq!(not_newer, 0, "no sample was too late to be counted");
        let rollups = text_rows(
            &self.db,
            "SELECT system_id, CAST(SUM(samples) AS TEXT) FROM capacity_daily GROUP BY system_id",
        )
        .await;
        let counted: BTreeMap<String, usize> = rollups
            .iter()
            .map(|r| {
                let n = r[1].as_deref().and_then(|v| v.parse().ok()).unwrap_or(0);
                (r[0].clone().unwrap_or_default(), n)
            })
            .collect();
        let expected: BTreeMap<String, usize> = by_system
            .iter()
            .map(|(s, t)| (s.clone(), t.len()))
            .collect();
        assert_eq!(
            counted, expected,
            "the daily rollups count each stored sample once"
        );
        eprintln!(
            "oracle: {} records in the stream, {} seen published, {} events and {} capacity samples stored once each, {late} of them late",
            records.len(),
            observed.len(),
            events.len(),
            stored_samples.len()
        );

        self.writer_stop.cancel();
        let writer = tokio::time::timeout(Duration::from_secs(20), &mut self.writer).await;
        assert!(
            matches!(writer, Ok(Ok(Ok(())))),
            "the writer stops cleanly: {writer:?}"
        );
    }

    /// Waits until the writer's consumer has nothing pending or unacknowledged, twice in a row
    /// a second apart (its own change records go through the stream too).
    async fn wait_until_written(&self) {
        let idle = || async {
            let stream = self.js.get_stream(STREAM).await.ok()?;
            let info = stream
                .consumer_info(sdash_writer::config::defaults::CONSUMER)
                .await
                .ok()?;
            (info.num_pending == 0 && info.num_ack_pending == 0).then_some(())
        };
        let done = wait_for(Duration::from_secs(40), || async {
            idle().await?;
            tokio::time::sleep(Duration::from_secs(1)).await;
            idle().await
        })
        .await;
        assert!(done.is_some(), "the writer catches up within 40 s");
    }
}

impl Drop for Deployment {
    fn drop(&mut self) {
        for c in &self.collectors {
            c.stop.cancel();
            c.task.abort();
        }
        self.writer_stop.cancel();
        self.writer.abort();
    }
}

/// Follows `sdash.v1.>` and records what the collectors publish.
fn observe(client: async_nats::Client) -> Arc<Mutex<Observed>> {
    let observed: Arc<Mutex<Observed>> = Arc::default();
    let record = observed.clone();
    tokio::spawn(async move {
        let Ok(mut sub) = client.subscribe("sdash.v1.>").await else {
            return;
        };
        while let Some(msg) = sub.next().await {
            let Ok(decoded) = sdash_proto::codec::decode_record(&msg.subject, &msg.payload) else {
                continue;
            };
            let mut observed = record.lock().unwrap_or_else(|p| p.into_inner());
            match decoded {
                Record::Snapshot(s) => {
                    let index = sdash_collector::scheduler::interval_index(
                        &s.system_id,
                        s.observed_at,
                        INTERVAL,
                    );
                    observed
                        .polls
                        .entry((s.system_id.clone(), index))
                        .or_default()
                        .insert(s.collector_id);
                    observed.ids.insert(s.event_id);
                }
                Record::Event(e) => {
                    observed.ids.insert(e.event_id);
                }
                Record::System(s) => {
                    observed.ids.insert(s.event_id);
                }
                Record::Collector(c) => {
                    observed.ids.insert(c.event_id);
                }
                Record::Change(_) | Record::Command(_) | Record::History(_) => {}
            }
        }
    });
    observed
}

/// Every record in the `SDASH` stream, in order, read by an ephemeral consumer.
async fn read_stream(js: &jetstream::Context) -> Vec<Record> {
    let mut stream = js.get_stream(STREAM).await.expect("the stream");
    let last = stream
        .info()
        .await
        .expect("stream info")
        .state
        .last_sequence;
    let reader = stream
        .create_consumer(consumer::pull::Config {
            deliver_policy: consumer::DeliverPolicy::All,
            ack_policy: consumer::AckPolicy::None,
            ..Default::default()
        })
        .await
        .expect("a reading consumer");
    let mut records = Vec::new();
    let mut seq = 0;
    while seq < last {
        let mut batch = reader
            .fetch()
            .max_messages(1000)
            .expires(Duration::from_secs(2))
            .messages()
            .await
            .expect("fetch");
        let before = seq;
        while let Some(Ok(msg)) = batch.next().await {
            seq = msg.info().map(|i| i.stream_sequence).unwrap_or(seq);
            let record = sdash_proto::codec::decode_record(&msg.subject, &msg.payload)
                .unwrap_or_else(|e| panic!("stream message {seq} does not decode: {e}"));
            records.push(record);
        }
        assert!(
            seq > before,
            "reading the stream stalled at {seq} of {last}"
        );
    }
    records
}

/// The rows of `sql`, each column read as text (cast numbers in the query).
async fn text_rows(db: &TestDatabase, sql: &str) -> Vec<Vec<Option<String>>> {
    match db.backend {
        Backend::Sqlite => text_rows_on::<sqlx::SqliteConnection>(&db.url, sql).await,
        Backend::Postgres => text_rows_on::<sqlx::PgConnection>(&db.url, sql).await,
    }
}

/// [`text_rows`] over one connection of type `C` to `url`.
async fn text_rows_on<C>(url: &str, sql: &str) -> Vec<Vec<Option<String>>>
where
    C: Connection,
    for<'c> &'c mut C: sqlx::Executor<'c, Database = C::Database>,
    for<'a> Option<String>: sqlx::Decode<'a, C::Database> + sqlx::Type<C::Database>,
    usize: sqlx::ColumnIndex<<C::Database as sqlx::Database>::Row>,
    <C::Database as sqlx::Database>::Arguments: sqlx::IntoArguments<C::Database>,
{
    let mut c = C::connect(url)
        .await
        .unwrap_or_else(|e| panic!("connect: {e}"));
    let rows = sqlx::query(sqlx::AssertSqlSafe(sql.to_owned()))
        .fetch_all(&mut c)
        .await;
    let _ = c.close().await;
    rows.unwrap_or_else(|e| panic!("{sql}: {e}"))
        .iter()
        .map(|row| {
            (0..row.len())
                .map(|i| {
                    row.try_get::<Option<String>, _>(i)
                        .unwrap_or_else(|e| panic!("column {i}: {e}"))
                })
                .collect()
        })
        .collect()
}

async fn killing_the_stream_leader_loses_nothing_and_the_node_catches_up(backend: Backend) {
    let mut d = Deployment::start(backend).await;
    d.wait_until_sharing().await;
    let before = d.double_polls().await;

    let killed = d.kill_stream_leader().await;
    d.wait_for_ingest("after the stream leader died").await;
    let doubled = d
        .assert_double_polls_stop(before, "after the stream leader died")
        .await;

    // The node comes back with its store and catches up: its copy current, at the leader's
    // last sequence, while ingest goes on.
    d.cluster.restart(killed).await;
    d.wait_until_in_sync(STREAM).await;
    d.wait_until_in_sync(KV_STREAM).await;
    let synced = d.cluster.stream(STREAM).await;
    eprintln!(
        "killed n{}, {doubled} double polls counted; back in sync: {synced:?}",
        killed + 1
    );
    d.wait_for_ingest("after the node rejoined").await;
    d.stop_and_check_the_oracle().await;
}

async fn a_rolling_restart_loses_nothing(backend: Backend) {
    let mut d = Deployment::start(backend).await;
    d.wait_until_sharing().await;
    let before = d.double_polls().await;
    let started = std::time::Instant::now();
    for node in 0..sdash_harness::nats_cluster::NODES {
        d.kill_and_wait_for_leaders(node).await;
        d.cluster.restart(node).await;
        d.wait_until_in_sync(STREAM).await;
        d.wait_until_in_sync(KV_STREAM).await;
        eprintln!(
            "n{} killed, restarted and back in sync at {:?}",
            node + 1,
            started.elapsed()
        );
    }
    d.wait_for_ingest("after the rolling restart").await;
    let doubled = d
        .assert_double_polls_stop(before, "after the rolling restart")
        .await;
    eprintln!("rolling restart: {doubled} double polls counted");
    d.stop_and_check_the_oracle().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn killing_the_stream_leader_during_ingest_loses_nothing_on_sqlite() {
    killing_the_stream_leader_loses_nothing_and_the_node_catches_up(Backend::Sqlite).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_rolling_restart_of_the_cluster_loses_nothing_on_postgres() {
    a_rolling_restart_loses_nothing(Backend::Postgres).await;
}
