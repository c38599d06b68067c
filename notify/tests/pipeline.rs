//! The whole way, with nothing published by the test: a simulated array -> collector -> NATS ->
//! writer (derives a status change, publishes it from its outbox after the commit) -> notifier
//! -> a real Alertmanager. The array going unreachable fires `SdashSystemDown`; coming back
//! resolves it.

mod common;

use std::time::Duration;

use common::*;
use sdash_harness::{Backend, wait_for};
use sdash_notify::NotifyArgs;
use sdash_proto::Vendor;
use sdash_service::Shutdown;
use sdash_testkit::pipeline::{Pipeline, PipelineOptions};
use sdash_testkit::sim::{Fault, Mix, SimConfig};

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn an_unreachable_array_fires_in_alertmanager_and_resolves() {
    let am = Alertmanager::start();
    let pipeline = Pipeline::start(PipelineOptions {
        backend: Backend::Sqlite,
        sim: SimConfig {
            systems: 2,
            seed: 3,
            mix: Mix(vec![(Vendor::Pure, 1)]),
            ..SimConfig::default()
        },
        interval: "1s".into(),
        collectors: 1,
    })
    .await
    .expect("pipeline starts");
    let dir = tempfile::tempdir().expect("temp dir");
    let config = write(
        dir.path(),
        "notify.toml",
        &format!(
            "group_window = \"300ms\"\n\n[[receiver]]\nname = \"am\"\ntype = \"alertmanager\"\nurl = \"{}\"\nresend_interval = \"1s\"\n\n[[route]]\nreceivers = [\"am\"]\nkinds = [\"status_changed\"]\n",
            am.url()
        ),
    );
    let stop = Shutdown::new();
    let notifier = tokio::spawn(sdash_notify::run(
        NotifyArgs::new(&pipeline.nats.url(), &config),
        stop.clone(),
    ));
    let js = jetstream(&pipeline.nats.url()).await;
    wait_for_consumer(&js, "sdash-notify").await;

    // Both systems online in the API first: their first status change has been published.
    let ids = pipeline.fleet.system_ids();
    let online = wait_for(Duration::from_secs(30), || async {
        let body: serde_json::Value =
            reqwest::get(format!("{}/api/v1/systems?limit=10", pipeline.api_url()))
                .await
                .ok()?
                .json()
                .await
                .ok()?;
        let items = body["items"].as_array()?;
        (items.len() == 2 && items.iter().all(|s| s["status"] == "online")).then_some(())
    })
    .await;
    assert!(online.is_some(), "both simulated systems online");
    let down = &ids[0];
    let healthy = &ids[1];

    pipeline.fleet.set_fault(down, Fault::Unreachable);
    let firing = am
        .wait_for_alert(
            &[("alertname", "SdashSystemDown"), ("system", down)],
            Duration::from_secs(30),
        )
        .await;
    let Some(firing) = firing else {
        panic!(
            "{down} unreachable does not fire in Alertmanager: {:?}",
            am.alerts().await
        );
    };
    assert_eq!(firing["status"]["state"], "active");
    assert_eq!(firing["labels"]["vendor"], "pure");
    assert_eq!(firing["labels"]["severity"], "critical");
    assert!(
        am.alerts_with(&[("system", healthy)]).await.is_empty(),
        "only the faulty system fires"
    );

    pipeline.fleet.set_fault(down, Fault::None);
    let resolved = wait_for(Duration::from_secs(30), || async {
        am.alerts_with(&[("alertname", "SdashSystemDown"), ("system", down)])
            .await
            .is_empty()
            .then_some(())
    })
    .await;
    assert!(
        resolved.is_some(),
        "{down} back online does not resolve: {:?}",
        am.alerts().await
    );

    stop.cancel();
    let _ = tokio::time::timeout(Duration::from_secs(15), notifier).await;
    pipeline.stop().await;
}
