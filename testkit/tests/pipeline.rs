//! The pipeline spine end to end, on SQLite and on PostgreSQL: simulated arrays of all four
//! vendors -> collector -> NATS JetStream -> writer -> database -> API.

use std::collections::BTreeMap;
use std::time::Duration;

use sdash_harness::{Backend, wait_for};
use sdash_proto::Vendor;
use sdash_testkit::pipeline::{Pipeline, PipelineOptions};
use sdash_testkit::sim::{Mix, SimConfig};
use serde_json::Value;

async fn get_json(url: &str) -> Option<Value> {
    let response = reqwest::get(url).await.ok()?;
    if !response.status().is_success() {
        return None;
    }
    response.json().await.ok()
}

async fn end_to_end(backend: Backend) {
    let sim = SimConfig {
        systems: 20,
        seed: 42,
        mix: Mix(vec![
            (Vendor::Pure, 8),
            (Vendor::Ontap, 4),
            (Vendor::Storagegrid, 4),
            (Vendor::Datadomain, 4),
        ]),
        // A frozen clock keeps every value still, so the API must show exactly what the arrays serve.
        frozen_clock: true,
        ..SimConfig::default()
    };
    let pipeline = Pipeline::start(PipelineOptions {
        backend,
        sim,
        interval: "1s".into(),
        collectors: 1,
    })
    .await
    .expect("pipeline starts");
    let url = format!("{}/api/v1/systems?limit=100", pipeline.api_url());
    let expected: BTreeMap<String, sdash_proto::Capacity> = pipeline
        .fleet
        .system_ids()
        .into_iter()
        .map(|id| {
            let capacity = pipeline.fleet.expected_capacity(&id).expect("sim capacity");
            (id, capacity)
        })
        .collect();
    assert_eq!(expected.len(), 20);

    let listed = wait_for(Duration::from_secs(60), || {
        let url = url.clone();
        let expected = expected.clone();
        async move {
            let body = get_json(&url).await?;
            let items = body["items"].as_array()?.clone();
            let matching = items
                .iter()
                .filter(|s| {
                    let id = s["id"].as_str().unwrap_or_default();
                    let Some(cap) = expected.get(id) else {
                        return false;
                    };
                    s["status"] == "online"
                        && s["capacity"]["total_bytes"].as_u64() == Some(cap.total_bytes)
                        && s["capacity"]["used_bytes"].as_u64() == Some(cap.used_bytes)
                        && s["capacity"]["free_bytes"].as_u64() == Some(cap.free_bytes)
                })
                .count();
            (items.len() == 20 && matching == 20).then_some(items)
        }
    })
    .await;
    let Some(items) = listed else {
        let body = get_json(&url).await;
        panic!(
            "within 60 s the API should list all 20 systems online with the simulator's exact capacity; last answer: {body:#?}"
        );
    };
    let vendors: std::collections::BTreeSet<&str> =
        items.iter().filter_map(|s| s["vendor"].as_str()).collect();
    assert_eq!(
        vendors.len(),
        4,
        "all four vendors came through: {vendors:?}"
    );

    // Events exist for the systems (sessions opened, reachability established...).
    let events_url = format!("{}/api/v1/events?limit=1000", pipeline.api_url());
    let events = wait_for(Duration::from_secs(20), || {
        let events_url = events_url.clone();
        async move {
            let body = get_json(&events_url).await?;
            let items = body["items"].as_array()?.clone();
            (!items.is_empty()).then_some(items)
        }
    })
    .await
    .expect("events reach the API");
    let with_events: std::collections::BTreeSet<&str> = events
        .iter()
        .filter_map(|e| e["system_id"].as_str())
        .collect();
    assert!(
        with_events.iter().all(|id| expected.contains_key(*id)),
        "events name known systems: {with_events:?}"
    );
    assert!(!with_events.is_empty());

    // The system detail answers for one of them.
    let first = expected.keys().next().expect("a system");
    let detail = get_json(&format!("{}/api/v1/systems/{first}", pipeline.api_url()))
        .await
        .expect("detail");
    assert_eq!(detail["id"], first.as_str());
    pipeline.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn end_to_end_on_sqlite() {
    end_to_end(Backend::Sqlite).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn end_to_end_on_postgres() {
    end_to_end(Backend::Postgres).await;
}
