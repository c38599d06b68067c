//! The README's first command: `deploy/demo.sh` starts nats-server, the simulator, the writer on
//! SQLite, two collectors, the API, and an Alertmanager fed by sdash-notify; the fleet shows up in
//! the API, the notifier is consuming; Ctrl-C stops everything.
//! It runs the binaries this test build made (`SDASH_DEMO_BIN_DIR`) rather than building again.

mod common;

use std::process::{Command, Stdio};
use std::time::Duration;

use common::{Demo, DemoPorts, demo_command};
use sdash_harness::wait_for;

fn port_open(port: u16) -> bool {
    std::net::TcpStream::connect(("127.0.0.1", port)).is_ok()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_quick_start_demo_runs_the_pipeline_and_stops_on_ctrl_c() {
    sdash_testkit::install_crypto_provider();
    let data = tempfile::tempdir().expect("tempdir");
    let ports = DemoPorts::free();
    let (api, nats, sim, admin, alertmanager) = (
        ports.api,
        ports.nats,
        ports.sim,
        ports.admin,
        ports.alertmanager,
    );
    let mut demo = Demo(
        demo_command(data.path(), 8, &ports)
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
    // Two years of the fleet's history were imported at start (the simulator's history CSV,
    // `sdash-writer import --from-csv`): every array has its 730 daily points and a forecast,
    // and the fleet history grouped by storage type spans them (H5, #15 item 4).
    let get = |path: String| async move {
        let r = reqwest::get(format!("http://127.0.0.1:{api}{path}"))
            .await
            .ok()?;
        r.json::<serde_json::Value>().await.ok()
    };
    let ids: Vec<String> = get("/api/v1/systems".into())
        .await
        .and_then(|b| {
            b["items"].as_array().map(|i| {
                i.iter()
                    .filter_map(|s| s["id"].as_str().map(str::to_owned))
                    .collect()
            })
        })
        .unwrap_or_default();
    let mut history_points = Vec::new();
    let mut forecast_dates = Vec::new();
    for id in &ids {
        let series = get(format!("/api/v1/systems/{id}/capacity?range=all")).await;
        history_points.push(
            series
                .as_ref()
                .and_then(|s| s["points"].as_array().map(Vec::len))
                .unwrap_or(0),
        );
        let forecast = get(format!("/api/v1/systems/{id}/forecast")).await;
        forecast_dates.push(
            forecast
                .as_ref()
                .and_then(|f| f["date_100_pct"].as_str().map(str::to_owned)),
        );
    }
    let fleet_history =
        get("/api/v1/capacity/history?group_by=storage_type&range=all".into()).await;
    let group_points: Vec<usize> = fleet_history
        .as_ref()
        .and_then(|h| h["series"].as_array())
        .map(|s| {
            s.iter()
                .map(|g| g["points"].as_array().map_or(0, Vec::len))
                .collect()
        })
        .unwrap_or_default();

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
    assert!(
        stderr.contains(
            "imported the simulated fleet's history: capacity days 5840 read, 5840 imported"
        ),
        "the demo imports 2 years x 8 arrays of history at start: {stderr}"
    );
    assert_eq!(ids.len(), 8);
    assert!(
        history_points.iter().all(|&n| n >= 730),
        "every array shows two years of daily history: {history_points:?}"
    );
    assert!(
        forecast_dates.iter().all(Option::is_some),
        "every array has a forecast date from its history: {forecast_dates:?}"
    );
    assert!(
        group_points.len() == 4 && group_points.iter().all(|&n| n >= 730),
        "the fleet history by storage type has four groups of two years: {group_points:?}"
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
