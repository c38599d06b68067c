//! Membership survives nats-server restarts. Two real collector processes share a fleet; the
//! server is restarted with its store, or without it (the membership bucket is gone), and within
//! one lease plus an interval every system is polled by exactly one collector again, while the
//! double-poll metric, which counts a deliberate overlap, stops growing. And a membership bucket
//! an older collector made with memory storage is kept until a restart removes it, then made
//! again, on file.

#[path = "common/snapshots.rs"]
mod snapshots;

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use async_nats::jetstream::{self, stream};
use sdash_collector::membership::{self, Membership};
use sdash_collector::scheduler::interval_index;
use sdash_harness::{NatsServer, free_port, metric_sum, wait_for};
use sdash_service::bus::{self, NatsArgs, StreamArgs};
use snapshots::watch_snapshots;

const SYSTEMS: usize = 60;
const INTERVAL: Duration = Duration::from_secs(2);
const LEASE_S: u64 = 4;
const DOUBLE_POLLS: &str = "sdash_collector_double_polls_total";

struct Collector(Child);

impl Collector {
    fn start(nats: &str, inventory: &std::path::Path, id: &str, extra: &[&str]) -> Collector {
        let child = Command::new(env!("CARGO_BIN_EXE_sdash-collector"))
            .args(["--nats-url", nats, "--collector-id", id])
            .args(["--lease-seconds", &LEASE_S.to_string()])
            .args(["--heartbeat-seconds", "1", "--log-level", "warn"])
            .args(extra)
            .arg("--inventory")
            .arg(inventory)
            .env("RESTART_TEST_TOKEN", "not-a-real-token")
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("start sdash-collector");
        Collector(child)
    }

    fn with_metrics(nats: &str, inventory: &std::path::Path, id: &str, port: u16) -> Collector {
        let listen = format!("127.0.0.1:{port}");
        Collector::start(nats, inventory, id, &["--metrics-listen", &listen])
    }
}

impl Drop for Collector {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// The double polls both collectors counted.
async fn double_polls(ports: &[u16]) -> f64 {
    let mut total = 0.0;
    for port in ports {
        total += metric_sum(*port, DOUBLE_POLLS)
            .await
            .unwrap_or_else(|| panic!("{DOUBLE_POLLS} on port {port}"));
    }
    total
}

/// (system, interval index) -> collectors that published a snapshot for it (a set: an outbox
/// retrying a publish repeats the same snapshot).
type Seen = Arc<Mutex<HashMap<(String, i64), BTreeSet<String>>>>;

/// Intervals fully inside [from, to): for each, how many systems were polled by 0, 1 and 2+
/// collectors, and how many each collector polled alone.
fn tally(
    seen: &Seen,
    from_ms: i64,
    to_ms: i64,
) -> Vec<(usize, usize, usize, BTreeMap<String, usize>)> {
    let seen = seen.lock().expect("lock");
    let interval_ms = INTERVAL.as_millis() as i64;
    let first = from_ms.div_euclid(interval_ms) + 1;
    let last = to_ms.div_euclid(interval_ms) - 2;
    (first..=last)
        .map(|k| {
            let (mut zero, mut one, mut more) = (0, 0, 0);
            let mut by_collector = BTreeMap::new();
            for i in 0..SYSTEMS {
                let id = format!("sys-{i:03}");
                match seen.get(&(id, k)).map(|c| c.iter().collect::<Vec<_>>()) {
                    None => zero += 1,
                    Some(c) if c.len() == 1 => {
                        one += 1;
                        *by_collector.entry(c[0].clone()).or_insert(0) += 1;
                    }
                    Some(_) => more += 1,
                }
            }
            (zero, one, more, by_collector)
        })
        .collect()
}

/// A client that reconnects by itself, as the services' do.
async fn connect(url: &str) -> async_nats::Client {
    bus::connect(&NatsArgs::plain(url), "restart-test", false)
        .await
        .expect("connect")
}

fn write_inventory(path: &std::path::Path) {
    let mut text = String::new();
    for i in 0..SYSTEMS {
        // Port 9 on loopback refuses connections: each poll ends fast as `unreachable`, and the
        // collector still publishes one snapshot per interval.
        text.push_str(&format!(
            "[[system]]\nid = \"sys-{i:03}\"\nvendor = \"pure\"\naddress = \"https://127.0.0.1:9\"\ninterval = \"2s\"\ntimeout = \"1s\"\nauth = {{ api_token_env = \"RESTART_TEST_TOKEN\" }}\n\n"
        ));
    }
    std::fs::write(path, text).expect("write inventory");
}

/// Records who published which snapshot, from a client that reconnects by itself.
async fn follow_snapshots(url: &str) -> Seen {
    let client = connect(url).await;
    let seen: Seen = Arc::default();
    let record = seen.clone();
    watch_snapshots(client, move |env| {
        let index = interval_index(&env.system_id, env.observed_at, INTERVAL);
        record
            .lock()
            .expect("lock")
            .entry((env.system_id.clone(), index))
            .or_default()
            .insert(env.collector_id);
    })
    .await;
    seen
}

/// Every system polled by exactly one collector in every interval of [from, to), both sharing.
fn assert_polled_once(seen: &Seen, from: i64, to: i64, when: &str) {
    let intervals = tally(seen, from, to);
    assert!(
        intervals.len() >= 3,
        "{when}: too few intervals observed: {}",
        intervals.len()
    );
    for (zero, one, more, by) in &intervals {
        assert_eq!(
            (*zero, *one, *more),
            (0, SYSTEMS, 0),
            "{when}: systems polled by none, one, several collectors ({by:?})"
        );
        assert_eq!(by.len(), 2, "{when}: both collectors take a share: {by:?}");
    }
}

/// Kills the server, empties its store when `lose_store`, and starts it again.
fn restart(nats: &mut NatsServer, lose_store: bool) {
    nats.kill();
    if lose_store {
        for entry in std::fs::read_dir(nats.store_dir()).expect("read the store") {
            let path = entry.expect("store entry").path();
            if path.is_dir() {
                std::fs::remove_dir_all(&path).expect("wipe the store");
            } else {
                std::fs::remove_file(&path).expect("wipe the store");
            }
        }
    }
    nats.restart();
}

async fn collectors_converge_after_a_restart(lose_store: bool) {
    // reqwest (reading /metrics) needs the process's TLS provider.
    sdash_collector::app::install_crypto_provider();
    let mut nats = NatsServer::start();
    let dir = tempfile::tempdir().expect("tempdir");
    let inventory = dir.path().join("inventory.toml");
    write_inventory(&inventory);
    let seen = follow_snapshots(&nats.url()).await;
    let ports = [free_port(), free_port()];
    let _c1 = Collector::with_metrics(&nats.url(), &inventory, "c1", ports[0]);
    let _c2 = Collector::with_metrics(&nats.url(), &inventory, "c2", ports[1]);

    let converged = wait_for(Duration::from_secs(30), || {
        let seen = seen.clone();
        async move {
            let now = sdash_proto::now_ms();
            tally(&seen, now - 3 * INTERVAL.as_millis() as i64, now)
                .iter()
                .any(|(z, o, m, by)| (*z, *o, *m) == (0, SYSTEMS, 0) && by.len() == 2)
                .then_some(())
        }
    })
    .await;
    assert!(
        converged.is_some(),
        "the two collectors settle into sharing the fleet within 30 s"
    );

    // A collector that ignores the others polls every system: the owners count the overlap.
    let before = double_polls(&ports).await;
    let rogue = Collector::start(&nats.url(), &inventory, "rogue", &["--no-sharding"]);
    let counted = wait_for(Duration::from_secs(20), || async {
        (double_polls(&ports).await >= before + SYSTEMS as f64).then_some(())
    })
    .await;
    assert!(
        counted.is_some(),
        "{DOUBLE_POLLS} counts a collector polling systems the others own (from {before} to {})",
        double_polls(&ports).await
    );
    drop(rogue);

    restart(&mut nats, lose_store);
    if lose_store {
        // A writer would make the SDASH stream again; the collectors' outboxes wait for it.
        bus::ensure_stream(
            &jetstream::new(connect(&nats.url()).await),
            &StreamArgs::default(),
        )
        .await
        .expect("stream");
    }

    // Within one lease plus an interval, each system has one owner again, and no more double
    // polls are counted.
    tokio::time::sleep(Duration::from_secs(LEASE_S) + INTERVAL + Duration::from_secs(1)).await;
    let from = sdash_proto::now_ms();
    let counted_at_from = double_polls(&ports).await;
    tokio::time::sleep(Duration::from_secs(10)).await;
    let to = sdash_proto::now_ms();
    let when = if lose_store {
        "after a restart that lost the store"
    } else {
        "after a restart"
    };
    assert_polled_once(&seen, from, to, when);
    assert_eq!(
        double_polls(&ports).await,
        counted_at_from,
        "{when}: {DOUBLE_POLLS} stops growing"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn collectors_share_the_fleet_again_within_a_lease_after_a_nats_restart() {
    collectors_converge_after_a_restart(false).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn collectors_share_the_fleet_again_after_a_nats_restart_that_lost_the_bucket() {
    collectors_converge_after_a_restart(true).await;
}

/// The bucket as collectors before file storage made it.
fn memory_bucket(lease: Duration) -> stream::Config {
    let ttl = membership::key_ttl(lease);
    stream::Config {
        name: format!("KV_{}", membership::BUCKET),
        subjects: vec![format!("$KV.{}.>", membership::BUCKET)],
        max_messages_per_subject: 1,
        max_age: ttl,
        duplicate_window: ttl,
        storage: stream::StorageType::Memory,
        discard: stream::DiscardPolicy::New,
        allow_rollup: true,
        deny_delete: true,
        allow_direct: true,
        ..Default::default()
    }
}

async fn bucket_storage(js: &jetstream::Context) -> Option<stream::StorageType> {
    let stream = js
        .get_stream(format!("KV_{}", membership::BUCKET))
        .await
        .ok()?;
    Some(stream.cached_info().config.storage)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_old_memory_bucket_is_kept_until_a_restart_removes_it_then_made_on_file() {
    let mut nats = NatsServer::start();
    let lease = Duration::from_secs(2);
    let url = nats.url();
    let js = jetstream::new(connect(&url).await);
    js.create_stream(memory_bucket(lease))
        .await
        .expect("the old memory bucket");

    let stop = tokio_util::sync::CancellationToken::new();
    let members: Vec<Membership> = ["m1", "m2"].into_iter().map(Membership::solo).collect();
    let mut tasks = Vec::new();
    for m in &members {
        let (m, js, stop) = (m.clone(), jetstream::new(connect(&url).await), stop.clone());
        tasks.push(tokio::spawn(async move {
            membership::run(
                m,
                js,
                lease,
                1,
                |_| {},
                async move { stop.cancelled().await },
            )
            .await
        }));
    }
    let both = BTreeSet::from(["m1".to_string(), "m2".to_string()]);
    let see_each_other = || async { members.iter().all(|m| m.members() == both).then_some(()) };
    assert!(
        wait_for(Duration::from_secs(10), see_each_other)
            .await
            .is_some(),
        "the members see each other"
    );
    assert_eq!(
        bucket_storage(&js).await,
        Some(stream::StorageType::Memory),
        "a running fleet's memory bucket is kept"
    );

    restart(&mut nats, false);
    let remade = wait_for(lease * 2, || async {
        (bucket_storage(&js).await == Some(stream::StorageType::File)).then_some(())
    })
    .await;
    assert!(
        remade.is_some(),
        "the bucket a restart removed is made again within a lease, on file (now {:?})",
        bucket_storage(&js).await
    );
    // Both heartbeat into the new bucket and hear each other through it: after more than a
    // key's lifetime, the members heard before the restart would have expired.
    tokio::time::sleep(lease * 2).await;
    assert!(
        see_each_other().await.is_some(),
        "the members see each other through the new bucket: {:?}",
        members.iter().map(|m| m.members()).collect::<Vec<_>>()
    );

    stop.cancel();
    for task in tasks {
        let _ = tokio::time::timeout(Duration::from_secs(5), task).await;
    }
}
