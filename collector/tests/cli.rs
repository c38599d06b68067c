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
