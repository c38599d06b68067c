//! The collector binary as an operator meets it: a malformed inventory is refused with the file,
//! line and field; /metrics and /healthz answer; SIGTERM stops it cleanly.

use std::process::{Command, Stdio};
use std::time::Duration;

use sdash_harness::{NatsServer, free_port};

const BIN: &str = env!("CARGO_BIN_EXE_sdash-collector");

#[test]
fn malformed_inventory_exits_nonzero_naming_file_line_and_field() {
    let dir = tempfile::tempdir().expect("tempdir");
    let path = dir.path().join("inventory.toml");
    std::fs::write(
        &path,
        "[[system]]\nid = \"fa-1\"\nvendor = \"pure\"\naddress = \"https://fa-1\"\ninterval = 60\nauth = { api_token_env = \"X\" }\n",
    )
    .expect("write");
    let out = Command::new(BIN)
        .args(["--nats-url", "nats://127.0.0.1:1"])
        .arg("--inventory")
        .arg(&path)
        .output()
        .expect("run");
    assert!(!out.status.success());
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains(&format!("{}:5:", path.display())),
        "names file and line: {stderr}"
    );
    assert!(
        stderr.contains("field `interval`"),
        "names the field: {stderr}"
    );

    let out = Command::new(BIN)
        .arg("--inventory")
        .arg(dir.path().join("missing.toml"))
        .output()
        .expect("run");
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("missing.toml"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn metrics_health_and_graceful_shutdown() {
    let nats = NatsServer::start();
    let dir = tempfile::tempdir().expect("tempdir");
    let path = dir.path().join("inventory.toml");
    std::fs::write(
        &path,
        "[[system]]\nid = \"fa-1\"\nvendor = \"pure\"\naddress = \"https://127.0.0.1:9\"\ninterval = \"1s\"\ntimeout = \"1s\"\nauth = { api_token_env = \"CLI_TEST_TOKEN\" }\n",
    )
    .expect("write");
    let port = free_port();
    let mut child = Command::new(BIN)
        .args([
            "--nats-url",
            &nats.url(),
            "--metrics-listen",
            &format!("127.0.0.1:{port}"),
            "--heartbeat-seconds",
            "1",
        ])
        .arg("--inventory")
        .arg(&path)
        .env("CLI_TEST_TOKEN", "t")
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .expect("start");
    sdash_collector::app::install_crypto_provider();
    let client = reqwest::Client::new();
    let metrics = sdash_harness::wait_for(Duration::from_secs(20), || {
        let client = client.clone();
        async move {
            let text = client
                .get(format!("http://127.0.0.1:{port}/metrics"))
                .send()
                .await
                .ok()?
                .text()
                .await
                .ok()?;
            (text.contains("sdash_collector_polls_total{")
                && text.contains("sdash_collector_published_total{kind=\"snapshot\"}"))
            .then_some(text)
        }
    })
    .await
    .expect("metrics show polls and published snapshots");
    assert!(
        metrics.contains("sdash_collector_outbox_depth"),
        "{metrics}"
    );
    let health = client
        .get(format!("http://127.0.0.1:{port}/healthz"))
        .send()
        .await
        .expect("healthz");
    assert!(health.status().is_success());

    // SIGTERM: the collector stops on its own, successfully, within a few seconds.
    let pid = i32::try_from(child.id()).expect("pid");
    let status = Command::new("kill")
        .args(["-TERM", &pid.to_string()])
        .status()
        .expect("kill");
    assert!(status.success());
    let deadline = std::time::Instant::now() + Duration::from_secs(15);
    loop {
        if let Some(status) = child.try_wait().expect("wait") {
            assert!(status.success(), "exit status {status}");
            break;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "collector did not stop on SIGTERM"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// A stop with every array hanging on its logout: the systems are let go together, under one
/// bound ([`sdash_collector::app::SYSTEMS_STOP_TIMEOUT`]), not one after the other (three
/// hanging logouts once took 3 × 5 s, past the demo's and many orchestrators' grace periods).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigterm_stops_promptly_while_every_array_hangs() {
    use sdash_testkit::sim::{Fault, Fleet, Mix, Mode, SimConfig};
    let nats = NatsServer::start();
    let fleet = Fleet::start(SimConfig {
        mode: Mode::Fixture,
        frozen_clock: true,
        systems: 3,
        mix: Mix(vec![(sdash_proto::Vendor::Storagegrid, 1)]),
        hang: Duration::from_secs(60),
        ..SimConfig::default()
    })
    .await
    .expect("start simulator");
    let dir = tempfile::tempdir().expect("tempdir");
    let path = dir.path().join("inventory.toml");
    fleet
        .write_inventory(&path, "60s")
        .expect("write inventory");
    let mut child = Command::new(BIN)
        .args([
            "--nats-url",
            &nats.url(),
            "--no-sharding",
            "--no-reverse-dns",
        ])
        .arg("--inventory")
        .arg(&path)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("start");
    let ids = fleet.system_ids();
    assert_eq!(ids.len(), 3);
    // Every grid polled once (logged in: a session to log out of).
    let polled = sdash_harness::wait_for(Duration::from_secs(30), || {
        let all = ids.iter().all(|id| {
            fleet.stats(id).is_some_and(|s| {
                s.logins > 0 && s.requests.contains_key("/api/v4/grid/metric-query")
            })
        });
        async move { all.then_some(()) }
    })
    .await;
    assert!(polled.is_some(), "the grids were polled");
    for id in &ids {
        fleet.set_fault(id, Fault::Hang);
    }
    let pid = i32::try_from(child.id()).expect("pid");
    let started = std::time::Instant::now();
    let status = Command::new("kill")
        .args(["-TERM", &pid.to_string()])
        .status()
        .expect("kill");
    assert!(status.success());
    let deadline = started + Duration::from_secs(10);
    loop {
        if let Some(status) = child.try_wait().expect("wait") {
            assert!(status.success(), "exit status {status}");
            break;
        }
        if std::time::Instant::now() >= deadline {
            let _ = child.kill();
            panic!("the collector did not stop within 10 s of SIGTERM");
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let took = started.elapsed();
    assert!(
        took < Duration::from_secs(9),
        "stopping took {took:?} (the logouts hang)"
    );
    for id in &ids {
        assert_eq!(
            fleet.stats(id).map(|s| s.logouts),
            Some(0),
            "{id}: a hanging logout never completes"
        );
    }
}
