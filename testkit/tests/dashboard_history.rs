//! The demo's first run, in a browser: `deploy/demo.sh` imports two years of the simulated
//! fleet's history at start (`sdash-sim --history-out`, `sdash-writer import --from-csv`), so
//! the capacity page draws two years of history lines per storage type and a system page shows
//! a forecast date, before the demo has measured more than a few minutes itself.
//!
//! Runs the binaries this test build made (`SDASH_DEMO_BIN_DIR`) and a real headless Chromium
//! (`sdash_testkit::webdriver`; installed from Debian's packages when missing, never skipped).

mod common;

use std::process::Stdio;
use std::time::Duration;

use common::{Demo, DemoPorts, demo_command};
use sdash_harness::wait_for;
use sdash_testkit::webdriver::{Browser, ensure_chromium, start_driver};
use serde_json::Value;

async fn json(url: &str) -> Option<Value> {
    reqwest::get(url).await.ok()?.json().await.ok()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_demo_shows_two_years_of_history_and_a_forecast_on_its_first_run() {
    sdash_testkit::install_crypto_provider();
    let tools = ensure_chromium();
    let data = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
    let ports = DemoPorts::free();
    let api = ports.api;
    let _demo = Demo(
        demo_command(data.path(), 8, &ports)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap_or_else(|e| panic!("run deploy/demo.sh: {e}")),
    );
    let base = format!("http://127.0.0.1:{api}");
    let systems = wait_for(Duration::from_secs(120), || {
        let url = format!("{base}/api/v1/systems");
        async move {
            let body = json(&url).await?;
            let items = body["items"].as_array()?;
            let online = items.iter().filter(|s| s["status"] == "online").count();
            (items.len() == 8 && online == 8).then(|| items.clone())
        }
    })
    .await
    .unwrap_or_else(|| {
        let log = std::fs::read_to_string(data.path().join("import.log")).unwrap_or_default();
        panic!("the demo fleet did not come up online; import log:\n{log}")
    });

    // The system that fills up fast: the earliest projected full date.
    let mut forecasts = Vec::new();
    for s in &systems {
        let id = s["id"].as_str().unwrap_or_default().to_owned();
        let f = json(&format!("{base}/api/v1/systems/{id}/forecast")).await;
        let full = f
            .as_ref()
            .and_then(|f| f["date_100_pct"].as_str())
            .map(str::to_owned);
        forecasts.push((full, id));
    }
    forecasts.retain(|(full, _)| full.is_some());
    forecasts.sort();
    let Some((Some(full), fast)) = forecasts.first().cloned() else {
        panic!("no system has a projected full date: {forecasts:?}");
    };

    let http = reqwest::Client::new();
    let driver = start_driver(&tools, &http)
        .await
        .unwrap_or_else(|e| panic!("chromedriver: {e:#}"));
    let b = Browser::open(&driver, &tools, &http)
        .await
        .unwrap_or_else(|e| panic!("chromium: {e:#}"));
    let result = async {
        // The capacity page, all of the history, grouped by storage type: one used line per
        // type (block, file, object, backup), each of two years of days.
        b.goto(&format!("{base}/#/capacity?group_by=storage_type&range=all"))
            .await?;
        b.wait_for(
            "four history lines",
            "document.querySelector('svg#history-chart') && document.querySelector('svg#history-chart').dataset.series === '4'",
            Duration::from_secs(30),
        )
        .await?;
        let lines = b
            .js(
                "return [...document.querySelectorAll('svg#history-chart g.series-group:not([data-aux])')]\
                   .map((g) => [g.dataset.label, Number(g.dataset.points), g.querySelector('path') ? g.querySelector('path').getTotalLength() : 0])",
                vec![],
            )
            .await?;
        let tier = b
            .js(
                "return document.getElementById('history-tier').dataset.tier",
                vec![],
            )
            .await?;
        // The system page: its forecast's projected full date, from the imported history.
        b.goto(&format!("{base}/#/systems/{fast}?range=2y")).await?;
        let shown = b
            .wait_for(
                "the projected full date",
                "/^\\d{4}-\\d{2}-\\d{2}$/.test((document.getElementById('date-full') || {}).textContent || '') && document.getElementById('date-full').textContent",
                Duration::from_secs(30),
            )
            .await?;
        let used_points = b
            .wait_for(
                "the capacity chart",
                "(() => { const g = document.querySelector('svg#capacity-chart g.series-group[data-label=\"Used\"]'); return g && Number(g.dataset.points); })()",
                Duration::from_secs(30),
            )
            .await?;
        anyhow::Ok((lines, tier, shown, used_points))
    }
    .await;
    if result.is_err() {
        b.save_failure_screenshot().await;
    }
    b.quit().await;
    let (lines, tier, shown, used_points) = result.unwrap_or_else(|e| panic!("{e:#}"));

    let lines = lines.as_array().cloned().unwrap_or_default();
    assert_eq!(lines.len(), 4, "{lines:?}");
    for line in &lines {
        let points = line[1].as_u64().unwrap_or(0);
        let length = line[2].as_f64().unwrap_or(0.0);
        assert!(
            points >= 730,
            "line {} has {points} points: two years of days expected",
            line[0]
        );
        assert!(length > 100.0, "line {} is drawn ({length} px)", line[0]);
    }
    assert_eq!(tier, "daily");
    assert_eq!(
        shown.as_str(),
        Some(full.as_str()),
        "{fast}'s page shows the API's projected full date"
    );
    assert!(
        used_points.as_u64().unwrap_or(0) >= 700,
        "{fast}'s chart has two years of used capacity: {used_points}"
    );
}
