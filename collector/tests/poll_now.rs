//! Poll-now (#14): two real collector processes share a simulated fleet over a real nats-server;
//! a poll-now command makes exactly one extra poll, by the system's owner and by no other
//! collector, within 2 s of the command; a command republished with the same id polls nothing
//! more; a command for a system no collector has does nothing. Polls are counted twice: the
//! requests the simulated arrays answered, and the snapshots on the bus (with their publisher).

#[path = "common/snapshots.rs"]
mod snapshots;

use std::collections::BTreeMap;
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use sdash_collector::membership::owner;
use sdash_collector::scheduler::next_due;
use sdash_harness::{NatsServer, free_port, metric_samples, wait_for};
use sdash_proto::{CommandKind, CommandRecord, Envelope, Vendor};
use sdash_testkit::sim::{Fleet, Mix, SimConfig};
use snapshots::watch_snapshots;

/// Long enough that no regular poll falls inside the test (targets are picked so that their
/// next regular poll is minutes away).
const INTERVAL: Duration = Duration::from_secs(3600);
const SYSTEMS: usize = 12;
/// The Pure simulator's path that every poll reads once (and nothing else does).
const POLL_PATH_SUFFIX: &str = "/arrays/space";

struct Collector {
    child: Child,
    metrics: u16,
}

impl Collector {
    fn start(nats: &str, inventory: &std::path::Path, id: &str) -> Collector {
        let metrics = free_port();
        let child = Command::new(env!("CARGO_BIN_EXE_sdash-collector"))
            .args(["--nats-url", nats, "--collector-id", id])
            .args(["--lease-seconds", "4", "--heartbeat-seconds", "1"])
            .args(["--log-level", "warn"])
            .args(["--admin-listen", &format!("127.0.0.1:{metrics}")])
            .arg("--inventory")
            .arg(inventory)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("start sdash-collector");
        Collector { child, metrics }
    }

    async fn metric(&self, name: &str) -> f64 {
        metric_samples(self.metrics, name)
            .await
            .unwrap_or_default()
            .iter()
            .sum()
    }

    async fn poll_now(&self, outcome: &str) -> f64 {
        self.metric(&format!(
            "sdash_collector_poll_now_total{{outcome=\"{outcome}\"}}"
        ))
        .await
    }
}

impl Drop for Collector {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// A snapshot seen on the bus: system, publisher, when it arrived here.
type Seen = Arc<Mutex<Vec<(String, String, Instant)>>>;

fn polls_in_sim(fleet: &Fleet, id: &str) -> u64 {
    fleet
        .stats(id)
        .expect("stats")
        .requests
        .iter()
        .filter(|(path, _)| path.ends_with(POLL_PATH_SUFFIX))
        .map(|(_, n)| *n)
        .sum()
}

fn all_polls_in_sim(fleet: &Fleet) -> BTreeMap<String, u64> {
    fleet
        .system_ids()
        .into_iter()
        .map(|id| {
            let n = polls_in_sim(fleet, &id);
            (id, n)
        })
        .collect()
}

fn snapshots_since(seen: &Seen, since: Instant) -> Vec<(String, String, Instant)> {
    seen.lock()
        .expect("lock")
        .iter()
        .filter(|(_, _, at)| *at >= since)
        .cloned()
        .collect()
}

fn command(system: &str) -> (String, Envelope<CommandRecord>, Vec<u8>) {
    let body = CommandRecord {
        kind: CommandKind::PollNow,
        actor: "alice".into(),
        alert: None,
        assignee: None,
        comment: None,
    };
    let envelope = Envelope::new("api-test", system, body);
    let bytes = sdash_proto::encode(&envelope).expect("encode");
    (CommandKind::PollNow.subject(system), envelope, bytes)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn only_the_owner_polls_once_at_once() {
    sdash_collector::app::install_crypto_provider();
    let nats = NatsServer::start();
    let fleet = Fleet::start(SimConfig {
        systems: SYSTEMS,
        mix: Mix(vec![(Vendor::Pure, 1)]),
        ..SimConfig::default()
    })
    .await
    .expect("start simulator");
    let dir = tempfile::tempdir().expect("tempdir");
    let inventory = dir.path().join("inventory.toml");
    fleet
        .write_inventory(&inventory, "1h")
        .expect("write inventory");

    let client = async_nats::connect(nats.url()).await.expect("connect");
    let seen: Seen = Arc::default();
    {
        let seen = seen.clone();
        watch_snapshots(client.clone(), move |env| {
            seen.lock()
                .expect("lock")
                .push((env.system_id, env.collector_id, Instant::now()));
        })
        .await;
    }

    let names = ["c1", "c2"].map(String::from);
    let collectors = [
        Collector::start(&nats.url(), &inventory, &names[0]),
        Collector::start(&nats.url(), &inventory, &names[1]),
    ];
    // Both collectors see each other, and every system had its first poll.
    let ids = fleet.system_ids();
    let ready = wait_for(Duration::from_secs(30), || {
        let (seen, ids, collectors) = (seen.clone(), ids.clone(), &collectors);
        async move {
            for c in collectors {
                if c.metric("sdash_collector_live_collectors").await != 2.0 {
                    return None;
                }
            }
            let seen = seen.lock().expect("lock");
            ids.iter()
                .all(|id| seen.iter().any(|(s, _, _)| s == id))
                .then_some(())
        }
    })
    .await;
    assert!(
        ready.is_some(),
        "the collectors start and poll every system"
    );
    // Let the start-up polls (at most 5 s after start) finish.
    tokio::time::sleep(Duration::from_secs(6)).await;

    // Targets: one system owned by each collector whose next regular poll is minutes away.
    let now = sdash_proto::now_ms();
    let quiet: Vec<&String> = ids
        .iter()
        .filter(|id| next_due(now, id, INTERVAL) - now > 180_000)
        .collect();
    let target_of = |who: &String| {
        quiet
            .iter()
            .find(|id| owner(names.iter(), id) == Some(who))
            .map(|id| (*id).clone())
            .expect("a quiet system owned by each collector")
    };
    let targets = [target_of(&names[0]), target_of(&names[1])];

    let js = async_nats::jetstream::new(client.clone());
    let before = all_polls_in_sim(&fleet);
    for (n, target) in targets.iter().enumerate() {
        let owner_name = &names[n];
        let (subject, envelope, bytes) = command(target);
        let sent = Instant::now();
        let mut headers = async_nats::HeaderMap::new();
        headers.insert("Nats-Msg-Id", envelope.event_id.as_str());
        js.publish_with_headers(subject.clone(), headers, bytes.clone().into())
            .await
            .expect("publish")
            .await
            .expect("PubAck");
        // The snapshot of the extra poll arrives on the bus, published by the owner.
        let arrived = wait_for(Duration::from_secs(5), || {
            let seen = seen.clone();
            async move {
                snapshots_since(&seen, sent)
                    .into_iter()
                    .find(|(s, _, _)| s == target)
            }
        })
        .await
        .expect("the poll-now snapshot is published");
        let took = arrived.2.duration_since(sent);
        eprintln!(
            "poll-now of {target} by {owner_name}: command to snapshot on the bus in {took:?}"
        );
        assert_eq!(&arrived.1, owner_name, "the owner polls");
        assert!(
            took < Duration::from_secs(2),
            "published within 2 s: {took:?}"
        );

        // The same command again (core NATS: JetStream's duplicate window would drop it before
        // any collector saw it): acted on once per id.
        client
            .publish(subject.clone(), bytes.clone().into())
            .await
            .expect("republish");
        client.flush().await.expect("flush");
        tokio::time::sleep(Duration::from_secs(3)).await;
        let after: Vec<_> = snapshots_since(&seen, sent)
            .into_iter()
            .filter(|(s, _, _)| s == target)
            .collect();
        assert_eq!(
            after.len(),
            1,
            "exactly one extra poll of {target}: {after:?}"
        );
    }

    // In the simulator: one extra poll of each target and none of any other system.
    let polled = all_polls_in_sim(&fleet);
    for (id, n) in &polled {
        let extra = n - before[id];
        let expected = u64::from(targets.contains(id));
        assert_eq!(extra, expected, "{id}: extra polls in the simulator");
    }

    // A system no collector has: nothing happens anywhere.
    let (subject, envelope, bytes) = command("fa-nobody-owns-this");
    let sent = Instant::now();
    let mut headers = async_nats::HeaderMap::new();
    headers.insert("Nats-Msg-Id", envelope.event_id.as_str());
    js.publish_with_headers(subject, headers, bytes.into())
        .await
        .expect("publish")
        .await
        .expect("PubAck");
    tokio::time::sleep(Duration::from_secs(2)).await;
    assert_eq!(
        all_polls_in_sim(&fleet),
        polled,
        "no poll for an unknown system"
    );
    assert!(
        snapshots_since(&seen, sent).is_empty(),
        "no snapshot published"
    );

    // What each collector counted: the own target polled (its repeat a duplicate), the other's
    // ignored (its repeat a duplicate too), the unknown system.
    for c in &collectors {
        let counts = (
            c.poll_now("polled").await,
            c.poll_now("not_owned").await,
            c.poll_now("duplicate").await,
            c.poll_now("unknown_system").await,
        );
        assert_eq!(
            counts,
            (1.0, 1.0, 2.0, 1.0),
            "polled, not_owned, duplicate, unknown"
        );
    }
}
