//! The API started before the writer has built the SQLite database (the demo and compose start
//! them together): it answers 503 meanwhile, and shows the data as soon as the writer has written
//! it, instead of keeping a connection that saw an empty file.

mod common;

use std::time::Duration;

use sdash_proto::Vendor;
use sdash_writer::{Incoming, Store};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_api_started_before_the_writer_catches_up() {
    common::install_crypto();
    let dir = tempfile::tempdir().expect("tempdir");
    let path = dir.path().join("sdash.db");
    let url = format!("sqlite://{}", path.display());
    // The writer has created the file but not yet migrated it.
    std::fs::write(&path, b"").expect("create an empty database file");
    let (addr, task) = sdash_api::spawn(sdash_api::Config::new(&url))
        .await
        .expect("api");
    let http = reqwest::Client::new();
    let list = format!("http://{addr}/api/v1/systems");
    for _ in 0..1 {
        let response = http.get(&list).send().await.expect("request");
        assert_eq!(
            response.status(),
            503,
            "no schema yet: unavailable, not an empty fleet"
        );
    }

    let store = Store::open(&url).await.expect("writer opens and migrates");
    let (subject, payload) = common::snapshot(
        "early-1",
        sdash_proto::now_ms(),
        common::snapshot_body(Vendor::Pure, 10, 100, Vec::new()),
    );
    store
        .write_batch(&[Incoming {
            stream_seq: 1,
            subject,
            payload,
            deliveries: 1,
        }])
        .await
        .expect("write");

    let seen = sdash_harness::wait_for(Duration::from_secs(5), || {
        let (http, list) = (http.clone(), list.clone());
        async move {
            let body: serde_json::Value = http.get(&list).send().await.ok()?.json().await.ok()?;
            (body["items"].as_array()?.len() == 1).then_some(())
        }
    })
    .await;
    assert!(seen.is_some(), "the API shows what the writer wrote");
    task.abort();
}
