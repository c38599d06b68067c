//! The README's first command: `deploy/demo.sh` starts nats-server, the simulator, the writer on
//! SQLite, two collectors, the API, and an Alertmanager fed by sdash-notify; the fleet shows up in
//! the API, the notifier is consuming; Ctrl-C stops everything.
//! It runs the binaries this test build made (`SDASH_DEMO_BIN_DIR`) rather than building again.

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::Duration;

use sdash_harness::{free_port, wait_for};

/// `target/<profile>`: test binaries run from `target/<profile>/deps/`.
fn binaries_dir() -> PathBuf {
    let exe = std::env::current_exe().expect("test executable");
    exe.parent()
        .and_then(Path::parent)
        .expect("target/<profile>")
        .to_path_buf()
}

/// Four consecutive free ports (the admin ports of the writer, the two collectors and the notifier).
fn four_free_ports() -> u16 {
    for _ in 0..100 {
        let base = free_port();
        if base < 60_000
            && (1..4).all(|i| std::net::TcpListener::bind(("127.0.0.1", base + i)).is_ok())
        {
            return base;
        }
    }
    panic!("no four consecutive free ports");
}

fn port_open(port: u16) -> bool {
    std::net::TcpStream::connect(("127.0.0.1", port)).is_ok()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_quick_start_demo_runs_the_pipeline_and_stops_on_ctrl_c() {
    sdash_testkit::install_crypto_provider();
    let bin = binaries_dir();
    for name in [
        "sdash-collector",
        "sdash-writer",
        "sdash-api",
        "sdash-sim",
        "sdash-notify",
    ] {
        assert!(
            bin.join(name).exists(),
            "{name} is built in {} (cargo nextest builds every binary)",
            bin.display()
        );
    }
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("../deploy/demo.sh");
    let data = tempfile::tempdir().expect("tempdir");
    let (api, nats, sim, admin) = (free_port(), free_port(), free_port(), four_free_ports());
    let alertmanager = free_port();
    let alertmanager_bin = sdash_harness::alertmanager_binary();
    let mut demo = Demo(
        Command::new("bash")
            .arg(&script)
            .env("SDASH_DEMO_BIN_DIR", &bin)
            .env("SDASH_DEMO_DIR", data.path())
            .env("SDASH_DEMO_SYSTEMS", "8")
            .env("SDASH_DEMO_PORT", api.to_string())
            .env("SDASH_DEMO_NATS_PORT", nats.to_string())
            .env("SDASH_DEMO_SIM_PORT", sim.to_string())
            .env("SDASH_DEMO_ADMIN_PORT", admin.to_string())
            .env("SDASH_DEMO_ALERTMANAGER_PORT", alertmanager.to_string())
            .env("SDASH_DEMO_ALERTMANAGER_BIN", &alertmanager_bin)
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .expect("run deploy/demo.sh"),
    );
    let demo = &mut demo.0;

    let url = format!("http://127.0.0.1:{api}/api/v1/systems");
    let listed = wait_for(Duration::from_secs(90), || {
        let url = url.clone();
        async move {
            let body: serde_json::Value = reqwest::get(&url).await.ok()?.json().await.ok()?;
            let items = body["items"].as_array()?;
            let online = items.iter().filter(|s| s["status"] == "online").count();
            (items.len() == 8 && online == 8).then_some(())
        }
    })
    .await;
    let page = reqwest::get(format!("http://127.0.0.1:{api}/"))
        .await
        .map(|r| r.status().as_u16());
    // The notifier consumes the writer's changes (ready = its consumer is bound) and Alertmanager
    // answers.
    let notifier_ready = wait_for(Duration::from_secs(30), || async move {
        let r = reqwest::get(format!("http://127.0.0.1:{}/readyz", admin + 3))
            .await
            .ok()?;
        r.status().is_success().then_some(())
    })
    .await;
    let alertmanager_up = reqwest::get(format!("http://127.0.0.1:{alertmanager}/api/v2/status"))
        .await
        .map(|r| r.status().as_u16());
    let collectors: Option<serde_json::Value> =
        match reqwest::get(format!("http://127.0.0.1:{api}/api/v1/collectors")).await {
            Ok(r) => r.json().await.ok(),
            Err(_) => None,
        };

    // Ctrl-C: the script stops every service and exits successfully.
    let _ = Command::new("kill")
        .args(["-INT", &demo.id().to_string()])
        .status();
    let deadline = std::time::Instant::now() + Duration::from_secs(30);
    let status = loop {
        if let Some(status) = demo.try_wait().expect("wait") {
            break status;
        }
        if std::time::Instant::now() > deadline {
            let _ = demo.kill();
            panic!("deploy/demo.sh did not stop on Ctrl-C");
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    };
    let mut stderr = String::new();
    if let Some(mut pipe) = demo.stderr.take() {
        use std::io::Read;
        let _ = pipe.read_to_string(&mut stderr);
    }
    assert!(
        listed.is_some(),
        "the demo fleet of 8 arrays is listed online through the API: {stderr}"
    );
    assert_eq!(page.ok(), Some(200), "the dashboard is served at /");
    assert!(
        notifier_ready.is_some(),
        "sdash-notify is consuming in the demo: {stderr}"
    );
    assert_eq!(
        alertmanager_up.ok(),
        Some(200),
        "the demo's Alertmanager answers: {stderr}"
    );
    let live = collectors
        .as_ref()
        .and_then(|c| c["items"].as_array())
        .map(Vec::len);
    assert_eq!(
        live,
        Some(2),
        "two collectors share the fleet: {collectors:?}"
    );
    assert!(
        status.success(),
        "Ctrl-C ends the demo cleanly ({status}): {stderr}"
    );
    assert!(
        stderr.contains(&format!("http://127.0.0.1:{api}/")),
        "the dashboard URL is printed: {stderr}"
    );
    for port in [
        api,
        nats,
        sim,
        admin,
        admin + 1,
        admin + 2,
        admin + 3,
        alertmanager,
    ] {
        assert!(
            !port_open(port),
            "port {port} still answers after Ctrl-C: a service was left running"
        );
    }
}

/// Stops the demo (as Ctrl-C would) even when an assertion fails first.
struct Demo(std::process::Child);

impl Drop for Demo {
    fn drop(&mut self) {
        if self.0.try_wait().ok().flatten().is_none() {
            let _ = Command::new("kill")
                .args(["-INT", &self.0.id().to_string()])
                .status();
            let deadline = std::time::Instant::now() + Duration::from_secs(20);
            while self.0.try_wait().ok().flatten().is_none() && std::time::Instant::now() < deadline
            {
                std::thread::sleep(Duration::from_millis(100));
            }
            let _ = self.0.kill();
        }
    }
}
