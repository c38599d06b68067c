//! A real collector process rides out a 20 s NATS outage while it polls: every interval of every
//! system during the outage is in the stream afterwards (snapshots and the failing system's
//! events), nothing was dropped, and publishing resumed by itself. And a system that keeps
//! failing is retried less often while still being reported every interval.

use std::collections::{BTreeMap, BTreeSet};
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use async_nats::jetstream::{self, consumer};
use futures::StreamExt;
use sdash_collector::scheduler::phase_ms;
use sdash_harness::{NatsServer, free_port, metric_samples, wait_for};
use sdash_proto::Record;
use sdash_service::bus::{self, NatsArgs, StreamArgs};
use sdash_testkit::sim::{Fault, Fleet, SimConfig};

const INTERVAL: Duration = Duration::from_secs(1);

struct KillOnDrop(Child);

impl Drop for KillOnDrop {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn collector(nats: &str, inventory: &std::path::Path, metrics_port: u16) -> KillOnDrop {
    KillOnDrop(
        Command::new(env!("CARGO_BIN_EXE_sdash-collector"))
            .args([
                "--nats-url",
                nats,
                "--collector-id",
                "outage-test",
                "--no-sharding",
                "--log-level",
                "warn",
            ])
            .args(["--metrics-listen", &format!("127.0.0.1:{metrics_port}")])
            .arg("--inventory")
            .arg(inventory)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("start collector"),
    )
}

/// The sum of a metric's samples on the collector's `/metrics`, an absent metric counting as 0;
/// `None` while the endpoint does not answer.
async fn metric(port: u16, name: &str) -> Option<f64> {
    Some(metric_samples(port, name).await?.iter().sum())
}

/// Every record in the stream.
async fn read_stream(url: &str) -> Vec<Record> {
    let client = async_nats::connect(url).await.expect("connect");
    let js = jetstream::new(client);
    let stream = js
        .get_stream(sdash_proto::subjects::STREAM)
        .await
        .expect("stream");
    let total = stream.get_info().await.expect("info").state.messages;
    let consumer = stream
        .create_consumer(consumer::pull::Config {
            deliver_policy: consumer::DeliverPolicy::All,
            ..Default::default()
        })
        .await
        .expect("consumer");
    let mut messages = consumer.messages().await.expect("messages");
    let mut out = Vec::new();
    while (out.len() as u64) < total {
        let Ok(Some(Ok(m))) = tokio::time::timeout(Duration::from_secs(5), messages.next()).await
        else {
            break;
        };
        if let Ok(r) = sdash_proto::codec::decode_record(&m.subject, &m.payload) {
            out.push(r);
        }
        m.ack().await.ok();
    }
    out
}

fn interval_index(system: &str, t: i64) -> i64 {
    (t - phase_ms(system, INTERVAL) as i64).div_euclid(INTERVAL.as_millis() as i64)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_collector_loses_nothing_through_a_20s_nats_outage() {
    sdash_collector::app::install_crypto_provider();
    let mut nats = NatsServer::start();
    {
        let client = bus::connect(&NatsArgs::plain(&nats.url()), "setup", false)
            .await
            .expect("connect");
        bus::ensure_stream(&jetstream::new(client), &StreamArgs::default())
            .await
            .expect("stream");
    }
    let fleet = Fleet::start(SimConfig {
        systems: 5,
        ..SimConfig::default()
    })
    .await
    .expect("sim");
    let dir = tempfile::tempdir().expect("tempdir");
    let inventory = dir.path().join("inventory.toml");
    fleet.write_inventory(&inventory, "1s").expect("inventory");
    let failing = fleet.system_ids()[0].clone();
    // One array answers every data call with a 500: it produces an event every poll.
    fleet.set_fault_on(&failing, "/arrays/space", Fault::Status { code: 500 });
    let port = free_port();
    let _collector = collector(&nats.url(), &inventory, port);

    assert!(
        wait_for(Duration::from_secs(20), || async {
            (metric(port, "sdash_collector_published_total").await? >= 10.0).then_some(())
        })
        .await
        .is_some(),
        "the collector publishes before the outage"
    );
    nats.kill();
    let down_at = sdash_proto::now_ms();
    tokio::time::sleep(Duration::from_secs(20)).await;
    let depth = metric(port, "sdash_collector_outbox_depth")
        .await
        .expect("metrics during the outage");
    assert!(
        depth >= 50.0,
        "results wait in the outbox during the outage (depth {depth})"
    );
    let up_at = sdash_proto::now_ms();
    nats.restart();

    let drained = wait_for(Duration::from_secs(60), || async {
        (metric(port, "sdash_collector_outbox_depth").await? == 0.0).then_some(())
    })
    .await;
    assert!(
        drained.is_some(),
        "publishing resumes by itself and the outbox drains"
    );
    assert_eq!(
        metric(port, "sdash_collector_outbox_dropped_total").await,
        Some(0.0),
        "nothing was dropped"
    );

    let records = read_stream(&nats.url()).await;
    let mut snapshots: BTreeMap<String, BTreeSet<i64>> = BTreeMap::new();
    let mut events: BTreeSet<i64> = BTreeSet::new();
    let mut ids = BTreeSet::new();
    for r in &records {
        assert!(
            ids.insert(r.event_id().to_owned()),
            "a message is in the stream twice"
        );
        match r {
            Record::Snapshot(e) => {
                snapshots
                    .entry(e.system_id.clone())
                    .or_default()
                    .insert(interval_index(&e.system_id, e.observed_at));
            }
            Record::Event(e) if e.system_id == failing => {
                events.insert(interval_index(&failing, e.observed_at));
            }
            _ => {}
        }
    }
    assert_eq!(snapshots.len(), 5, "every system is in the stream");
    for (system, seen) in &snapshots {
        let (first, last) = (
            interval_index(system, down_at) + 1,
            interval_index(system, up_at) - 1,
        );
        let missing: Vec<i64> = (first..=last).filter(|k| !seen.contains(k)).collect();
        assert!(
            missing.is_empty(),
            "{system}: intervals during the outage with no snapshot in the stream: {missing:?}"
        );
        if *system == failing {
            let missing: Vec<i64> = (first..=last).filter(|k| !events.contains(k)).collect();
            assert!(
                missing.is_empty(),
                "{system}: intervals during the outage with no event in the stream: {missing:?}"
            );
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_failing_system_is_retried_less_often_but_reported_every_interval() {
    let nats = NatsServer::start();
    // An address that accepts TCP connections and closes them at once: each attempt is counted.
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let addr = listener.local_addr().expect("addr");
    let attempts = Arc::new(AtomicU64::new(0));
    {
        let attempts = attempts.clone();
        tokio::spawn(async move {
            while let Ok((socket, _)) = listener.accept().await {
                attempts.fetch_add(1, Ordering::SeqCst);
                drop(socket);
            }
        });
    }
    let dir = tempfile::tempdir().expect("tempdir");
    let inventory = dir.path().join("inventory.toml");
    std::fs::write(
        &inventory,
        format!("[[system]]\nid = \"flaky\"\nvendor = \"ontap\"\naddress = \"https://{addr}\"\ninterval = \"1s\"\ntimeout = \"1s\"\nauth = {{ username = \"u\", password_env = \"OUTAGE_TEST_PW\" }}\n"),
    )
    .expect("inventory");
    let client = async_nats::connect(nats.url()).await.expect("connect");
    let mut sub = client
        .subscribe("sdash.v1.snapshot.flaky")
        .await
        .expect("subscribe");
    let mut child = Command::new(env!("CARGO_BIN_EXE_sdash-collector"))
        .args([
            "--nats-url",
            &nats.url(),
            "--collector-id",
            "backoff-test",
            "--no-sharding",
            "--log-level",
            "warn",
        ])
        .arg("--inventory")
        .arg(&inventory)
        .env("OUTAGE_TEST_PW", "pw")
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("start collector");

    let mut intervals = BTreeSet::new();
    let deadline = tokio::time::Instant::now() + Duration::from_secs(14);
    while let Ok(Some(msg)) = tokio::time::timeout_at(deadline, sub.next()).await {
        if let Ok(Record::Snapshot(e)) =
            sdash_proto::codec::decode_record(&msg.subject, &msg.payload)
        {
            assert_ne!(e.body.status, sdash_proto::Status::Online);
            intervals.insert(interval_index("flaky", e.observed_at));
        }
    }
    let _ = child.kill();
    let _ = child.wait();
    let tried = attempts.load(Ordering::SeqCst);
    assert!(
        intervals.len() >= 12,
        "reported every interval: {} intervals",
        intervals.len()
    );
    assert!(
        tried >= 3 && (tried as usize) * 2 <= intervals.len(),
        "{tried} connection attempts over {} intervals: the retry delay should grow",
        intervals.len()
    );
}
