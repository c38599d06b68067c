//! A failed alert query must not read as "every alert cleared": the snapshot keeps the last
//! known open alerts, says it is degraded, and a later good poll refreshes them.

use sdash_collector::inventory;
use sdash_collector::vendors::Adapter;
use sdash_proto::Vendor;
use sdash_testkit::sim::{Fault, Fleet, Mix, Scenario, SimConfig};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_failed_alert_query_keeps_the_last_known_alerts() {
    let vendors = [
        (Vendor::Ontap, "/api/support/ems/events"),
        (Vendor::Storagegrid, "/grid/alerts"),
        (Vendor::Datadomain, "/alerts"),
    ];
    let fleet = Fleet::start(SimConfig {
        systems: 3,
        mix: Mix(vendors.iter().map(|(v, _)| (*v, 1)).collect()),
        frozen_clock: true,
        ..SimConfig::default()
    })
    .await
    .expect("simulator");
    let dir = tempfile::tempdir().expect("tempdir");
    let path = dir.path().join("inventory.toml");
    fleet.write_inventory(&path, "60s").expect("inventory");
    let inventory = inventory::load(&path).expect("load");
    for (vendor, endpoint) in vendors {
        let config = inventory
            .systems
            .iter()
            .find(|s| s.vendor == vendor)
            .expect("system of the vendor");
        fleet.set_scenario(&config.id, Scenario::Degraded);
        let mut adapter = Adapter::new(config).expect("adapter");
        let first = adapter.poll().await;
        assert_eq!(
            first.snapshot.status,
            sdash_proto::Status::Online,
            "{vendor:?}: {:?}",
            first.snapshot.error
        );
        assert!(
            !first.snapshot.alerts.is_empty(),
            "{vendor:?}: a degraded system has open alerts"
        );

        fleet.set_fault_on(&config.id, endpoint, Fault::Status { code: 500 });
        let failed = adapter.poll().await;
        assert_eq!(
            failed.snapshot.alerts, first.snapshot.alerts,
            "{vendor:?}: alerts kept, not cleared"
        );
        assert!(
            failed.snapshot.error.is_some(),
            "{vendor:?}: the snapshot says it is degraded"
        );
        assert!(
            failed.events.iter().any(|e| e
                .endpoint
                .as_deref()
                .is_some_and(|p| p.contains(endpoint))
                && e.http_status == Some(500)),
            "{vendor:?}: an event names the failed alert endpoint: {:?}",
            failed.events
        );

        fleet.set_fault(&config.id, Fault::None);
        fleet.set_scenario(&config.id, Scenario::Healthy);
        let healed = adapter.poll().await;
        assert!(
            healed.snapshot.error.is_none(),
            "{vendor:?}: {:?}",
            healed.snapshot.error
        );
        assert!(
            healed.snapshot.alerts.len() < first.snapshot.alerts.len(),
            "{vendor:?}: fresh alerts replace the kept ones"
        );
    }
}
