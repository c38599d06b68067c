//! #17 through the whole pipeline: a LIF taken down in the simulated ONTAP cluster raises a
//! warning alert (collector -> NATS -> writer -> database -> API) within one poll, and bringing it
//! back clears it.

use std::time::Duration;

use sdash_harness::{Backend, wait_for};
use sdash_proto::Vendor;
use sdash_testkit::pipeline::{Pipeline, PipelineOptions};
use sdash_testkit::sim::{Mix, Mode, Scenario, SimConfig};
use serde_json::Value;

const LIF_ALERT: &str = "sdash:lif:svm_nfs01:lif_nfs01_a01";

async fn get_json(url: &str) -> Option<Value> {
    let response = reqwest::get(url).await.ok()?;
    if !response.status().is_success() {
        return None;
    }
    response.json().await.ok()
}

/// The LIF alert in `GET /api/v1/alerts?state=<state>&system=<id>`, if listed.
async fn lif_alert(api: &str, id: &str, state: &str) -> Option<Value> {
    let body = get_json(&format!(
        "{api}/api/v1/alerts?state={state}&system={id}&limit=100"
    ))
    .await?;
    body["items"]
        .as_array()?
        .iter()
        .find(|a| a["alert_id"] == LIF_ALERT)
        .cloned()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_lif_down_opens_a_warning_alert_and_its_return_clears_it() {
    let pipeline = Pipeline::start(PipelineOptions {
        backend: Backend::Sqlite,
        sim: SimConfig {
            systems: 1,
            seed: 17,
            mix: Mix(vec![(Vendor::Ontap, 1)]),
            mode: Mode::Fixture,
            frozen_clock: true,
            ..SimConfig::default()
        },
        interval: "1s".into(),
        collectors: 1,
    })
    .await
    .expect("pipeline starts");
    let api = pipeline.api_url().to_owned();
    let id = pipeline.fleet.system_ids().remove(0);

    // Online first, without the alert.
    let detail_url = format!("{api}/api/v1/systems/{id}");
    let online = wait_for(Duration::from_secs(60), || {
        let url = detail_url.clone();
        async move {
            let body = get_json(&url).await?;
            (body["status"] == "online").then_some(body)
        }
    })
    .await;
    assert!(online.is_some(), "the cluster comes online");
    assert!(lif_alert(&api, &id, "open").await.is_none());

    // Down: a warning alert within one poll (1 s) plus the pipeline's latency.
    assert!(pipeline.fleet.set_scenario(&id, Scenario::LifDown));
    let opened = wait_for(Duration::from_secs(20), || {
        let (api, id) = (api.clone(), id.clone());
        async move { lif_alert(&api, &id, "open").await }
    })
    .await
    .expect("the LIF alert opens");
    assert_eq!(opened["severity"], "warning");
    assert_eq!(opened["title"], "LIF lif_nfs01_a01 of svm_nfs01 is down");
    assert_eq!(opened["component"], "lif_nfs01_a01");
    assert_eq!(opened["open"], true);

    // Back up: the same alert instance clears.
    assert!(pipeline.fleet.set_scenario(&id, Scenario::Healthy));
    let cleared = wait_for(Duration::from_secs(20), || {
        let (api, id) = (api.clone(), id.clone());
        async move { lif_alert(&api, &id, "cleared").await }
    })
    .await
    .expect("the LIF alert clears");
    assert_eq!(cleared["id"], opened["id"], "the same instance");
    assert!(cleared["cleared_at_ms"].as_i64().is_some());
    assert!(lif_alert(&api, &id, "open").await.is_none());
    pipeline.stop().await;
}
