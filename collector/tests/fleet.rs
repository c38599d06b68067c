//! Collectors share the fleet without configuration: real collector processes, a real
//! nats-server, snapshots counted per system per interval from the bus.

#[path = "common/snapshots.rs"]
mod snapshots;

use std::collections::{BTreeMap, HashMap};
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use sdash_collector::scheduler::phase_ms;
use sdash_harness::NatsServer;
use snapshots::watch_snapshots;

const SYSTEMS: usize = 300;
const INTERVAL: Duration = Duration::from_secs(2);
const LEASE_S: u64 = 6;

struct Collector(Child);

impl Collector {
    fn start(nats: &str, inventory: &std::path::Path, id: &str) -> Collector {
        let child = Command::new(env!("CARGO_BIN_EXE_sdash-collector"))
            .args([
                "--nats-url",
                nats,
                "--collector-id",
                id,
                "--lease-seconds",
                &LEASE_S.to_string(),
            ])
            .args(["--heartbeat-seconds", "1", "--log-level", "warn"])
            .arg("--inventory")
            .arg(inventory)
            .env("FLEET_TEST_TOKEN", "not-a-real-token")
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("start sdash-collector");
        Collector(child)
    }

    fn kill9(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

impl Drop for Collector {
    fn drop(&mut self) {
        self.kill9();
    }
}

/// (system, interval index) -> collectors that published a snapshot for it.
type Seen = Arc<Mutex<HashMap<(String, i64), Vec<String>>>>;

fn interval_index(system: &str, observed_at: i64) -> i64 {
    let interval_ms = INTERVAL.as_millis() as i64;
    (observed_at - phase_ms(system, INTERVAL) as i64).div_euclid(interval_ms)
}

/// Intervals fully inside [from, to): for each, how many systems were polled 0, 1, 2+ times
/// and by which collectors.
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
                match seen.get(&(id, k)) {
                    None => zero += 1,
                    Some(v) if v.len() == 1 => {
                        one += 1;
                        *by_collector.entry(v[0].clone()).or_insert(0) += 1;
                    }
                    Some(_) => more += 1,
                }
            }
            (zero, one, more, by_collector)
        })
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn collectors_shard_the_fleet_fail_over_and_rebalance() {
    let nats = NatsServer::start();
    let dir = tempfile::tempdir().expect("tempdir");
    let inventory = dir.path().join("inventory.toml");
    let mut text = String::new();
    for i in 0..SYSTEMS {
        // Port 9 on loopback refuses connections: each poll ends fast as `unreachable`, and the
        // collector still publishes one snapshot per interval.
        text.push_str(&format!(
            "[[system]]\nid = \"sys-{i:03}\"\nvendor = \"pure\"\naddress = \"https://127.0.0.1:9\"\ninterval = \"2s\"\ntimeout = \"1s\"\nauth = {{ api_token_env = \"FLEET_TEST_TOKEN\" }}\n\n"
        ));
    }
    std::fs::write(&inventory, text).expect("write inventory");

    let client = async_nats::connect(nats.url()).await.expect("connect");
    let seen: Seen = Arc::default();
    {
        let seen = seen.clone();
        watch_snapshots(client.clone(), move |env| {
            let key = (
                env.system_id.clone(),
                interval_index(&env.system_id, env.observed_at),
            );
            seen.lock()
                .expect("lock")
                .entry(key)
                .or_default()
                .push(env.collector_id);
        })
        .await;
    }

    let mut c1 = Collector::start(&nats.url(), &inventory, "c1");
    let _c2 = Collector::start(&nats.url(), &inventory, "c2");
    let _c3 = Collector::start(&nats.url(), &inventory, "c3");

    // Steady state: once the members have seen each other (the first clean interval with all
    // three, within 30 s of starting), each system exactly once per interval from then on.
    let started = sdash_proto::now_ms();
    let converged = sdash_harness::wait_for(Duration::from_secs(30), || {
        let seen = seen.clone();
        async move {
            let now = sdash_proto::now_ms();
            let last = tally(&seen, now - 3 * INTERVAL.as_millis() as i64, now);
            last.iter()
                .any(|(z, o, m, by)| (*z, *o, *m) == (0, SYSTEMS, 0) && by.len() == 3)
                .then_some(())
        }
    })
    .await;
    assert!(
        converged.is_some(),
        "the three collectors settle into sharing the fleet within 30 s"
    );
    assert!(sdash_proto::now_ms() - started < 30_000);
    let from = sdash_proto::now_ms();
    tokio::time::sleep(Duration::from_secs(10)).await;
    let steady = tally(&seen, from, sdash_proto::now_ms());
    assert!(
        steady.len() >= 3,
        "too few intervals observed: {}",
        steady.len()
    );
    for (zero, one, more, by) in &steady {
        assert_eq!(
            (*zero, *one, *more),
            (0, SYSTEMS, 0),
            "steady state: missed, once, twice ({by:?})"
        );
        assert_eq!(by.len(), 3, "all three collectors take a share: {by:?}");
        assert!(
            by.values().all(|n| *n > SYSTEMS / 6),
            "shares are balanced: {by:?}"
        );
    }

    // c1 dies without a goodbye: its systems move within one lease plus one interval.
    c1.kill9();
    let killed_at = sdash_proto::now_ms();
    let takeover = Duration::from_secs(LEASE_S) + INTERVAL;
    tokio::time::sleep(takeover + Duration::from_secs(1)).await;
    let from = sdash_proto::now_ms();
    tokio::time::sleep(Duration::from_secs(8)).await;
    let after = tally(&seen, from, sdash_proto::now_ms());
    for (zero, one, more, by) in &after {
        assert_eq!(
            (*zero, *one, *more),
            (0, SYSTEMS, 0),
            "after failover ({by:?})"
        );
        assert!(!by.contains_key("c1"), "a dead collector polls nothing");
        assert_eq!(by.len(), 2);
    }
    // No gap longer than lease + interval for any system: every interval from the deadline on is covered.
    let deadline = killed_at + takeover.as_millis() as i64 + INTERVAL.as_millis() as i64;
    let gaps = tally(&seen, deadline, from);
    for (zero, _, _, by) in &gaps {
        assert_eq!(
            *zero, 0,
            "systems left unpolled after the takeover deadline ({by:?})"
        );
    }

    // A new collector joins and takes a share without restarting the others: no system goes
    // unpolled across the join (while the members' views converge a system may briefly be
    // polled twice), and then each system is polled exactly once again, c4 included.
    let joined_at = sdash_proto::now_ms();
    let _c4 = Collector::start(&nats.url(), &inventory, "c4");
    tokio::time::sleep(Duration::from_secs(LEASE_S + 3)).await;
    for (zero, _, _, by) in &tally(&seen, joined_at, sdash_proto::now_ms()) {
        assert_eq!(*zero, 0, "no gap while a collector joins ({by:?})");
    }
    tokio::time::sleep(Duration::from_secs(LEASE_S)).await;
    let from = sdash_proto::now_ms();
    tokio::time::sleep(Duration::from_secs(8)).await;
    let joined = tally(&seen, from, sdash_proto::now_ms());
    assert!(
        joined.len() >= 2,
        "too few intervals observed: {}",
        joined.len()
    );
    for (zero, one, more, by) in &joined {
        assert_eq!(
            (*zero, *one, *more),
            (0, SYSTEMS, 0),
            "steady again after a join ({by:?})"
        );
        assert!(
            by.contains_key("c4"),
            "the new collector takes a share: {by:?}"
        );
    }
}
