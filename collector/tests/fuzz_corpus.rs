//! Replays the corpora of the collector's fuzz targets (`fuzz/corpus/<target>/`, see
//! `FUZZING.md`) on stable Rust through the same functions the targets run
//! (`sdash_collector::fuzzing`), and checks that the valid seeds (the inventory examples, the
//! vendors' fixtures) still parse, so the harnesses are not rejecting everything.

use std::path::{Path, PathBuf};

use sdash_collector::fuzzing;

fn fuzz_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../fuzz")
}

/// Runs `entry` on every file of the target's minimised corpus and of its seeds; a panic fails
/// the test (the file is named on stderr just before).
fn replay<T>(target: &str, entry: impl Fn(&[u8]) -> T) {
    for kind in ["corpus", "seeds"] {
        let dir = fuzz_dir().join(kind).join(target);
        let mut replayed = 0;
        for file in std::fs::read_dir(&dir).unwrap_or_else(|e| panic!("{}: {e}", dir.display())) {
            let path = file.expect("corpus entry").path();
            let input = std::fs::read(&path).expect("read corpus file");
            eprintln!("replaying {}", path.display());
            let _ = entry(&input);
            replayed += 1;
        }
        assert!(replayed > 0, "{} is empty", dir.display());
    }
}

#[test]
fn inventory_corpus_replays_and_the_examples_parse() {
    replay("inventory_parse", fuzzing::inventory);
    let examples = fuzz_dir().join("seeds/inventory_parse");
    for (file, systems) in [("readme-example.toml", 2), ("all-vendors.toml", 4)] {
        let text = std::fs::read(examples.join(file)).expect("example inventory");
        let inventory = fuzzing::inventory(&text).unwrap_or_else(|e| panic!("{file}: {e}"));
        assert_eq!(inventory.systems.len(), systems, "{file}");
    }
    let text = std::fs::read(examples.join("wrong-type.toml")).expect("example inventory");
    assert!(fuzzing::inventory(&text).is_err());
}

/// The vendors' fixtures (`testkit/fixtures/<vendor>/`) in the order each adapter makes its calls
/// (the order the fuzz entry points read bodies in), by scenario.
const VENDOR_SEEDS: &[(&str, &str, &[&str])] = &[
    (
        "pure",
        "fixtures",
        &[
            "api_api_version.json",
            "api_2.26_arrays.json",
            "api_2.26_arrays_space.json",
            "api_2.26_controllers.json",
            "api_2.26_hardware.json",
            "api_2.26_drives.json",
            "api_2.26_alerts.json",
            "api_2.26_array-connections.json",
            "api_2.26_pods.json",
            "api_2.26_network-interfaces.json",
            "api_2.26_arrays_performance.json",
        ],
    ),
    (
        "ontap",
        "fixtures",
        &[
            "api_cluster.json",
            "api_cluster_nodes.json",
            "api_storage_aggregates.json",
            "api_storage_disks.json",
            "api_support_ems_events.json",
            "api_support_ems_events.recovery.json",
            "api_cluster_peers.json",
            "api_snapmirror_relationships.json",
            "api_cluster_metrocluster.json",
            "api_network_ip_interfaces.json",
            "api_network_ethernet_ports.json",
        ],
    ),
    (
        "ontap",
        "basic-nodes-no-metrocluster",
        &[
            "api_cluster.json",
            "api_cluster_nodes.default.json",
            "api_storage_aggregates.json",
            "api_storage_disks.json",
            "api_support_ems_events.json",
            "api_support_ems_events.recovery.json",
            "api_cluster_peers.json",
            "api_snapmirror_relationships.json",
            "api_cluster_metrocluster.not_configured.json",
            "api_network_ip_interfaces.json",
            "api_network_ethernet_ports.json",
        ],
    ),
    (
        "storagegrid",
        "fixtures",
        &[
            "api_versions.json",
            "api_v4_grid_health.json",
            "api_v4_grid_config_product-version.json",
            "api_v4_grid_node-health.json",
            "api_v4_grid_alerts.json",
            "api_v4_grid_metric-query.total_space.json",
            "api_v4_grid_metric-query.data.json",
            "api_v4_grid_metric-query.usable_space.json",
            "api_v4_grid_metric-query.performance.json",
        ],
    ),
    (
        "datadomain",
        "fixtures",
        &[
            "rest_v1.0_system.json",
            "rest_v1.0_dd-systems_0_alerts.json",
            "api_v1_dd-systems_0_storage_disks.json",
            "api_v1_dd-systems_0_ha.json",
            "api_v1_dd-systems_0_mtree-replications.json",
            "rest_v2.0_dd-systems_0_networks_nics.json",
        ],
    ),
];

/// The fuzz entry point of `vendor`.
fn vendor_entry(
    vendor: &str,
) -> fn(&[u8]) -> Result<sdash_proto::Snapshot, sdash_collector::http::HttpError> {
    match vendor {
        "pure" => fuzzing::pure,
        "ontap" => fuzzing::ontap,
        "storagegrid" => fuzzing::storagegrid,
        "datadomain" => fuzzing::datadomain,
        other => panic!("no fuzz entry point for {other}"),
    }
}

/// The fixtures joined into one fuzz input, each body compacted (smaller inputs fuzz faster).
fn vendor_seed(vendor: &str, files: &[&str]) -> Vec<u8> {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../testkit/fixtures")
        .join(vendor);
    let bodies: Vec<String> = files
        .iter()
        .map(|file| {
            let text = std::fs::read(dir.join(file)).unwrap_or_else(|e| panic!("{file}: {e}"));
            let value: serde_json::Value =
                serde_json::from_slice(&text).unwrap_or_else(|e| panic!("{file}: {e}"));
            value.to_string()
        })
        .collect();
    bodies.join("\0").into_bytes()
}

#[test]
fn vendor_corpora_replay_and_the_fixtures_normalize() {
    let seeds = std::env::var_os("SDASH_FUZZ_WRITE_SEEDS").map(PathBuf::from);
    for (vendor, scenario, files) in VENDOR_SEEDS {
        let input = vendor_seed(vendor, files);
        let snapshot =
            vendor_entry(vendor)(&input).unwrap_or_else(|e| panic!("{vendor} {scenario}: {e}"));
        // The fixtures' scenario: about 500 TiB usable, 63 % used, components and open alerts.
        let capacity = snapshot
            .capacity
            .clone()
            .unwrap_or_else(|| panic!("{vendor}: capacity"));
        let used = capacity.used_bytes as f64 / capacity.total_bytes as f64;
        assert!(
            (0.5..0.75).contains(&used),
            "{vendor} {scenario}: {capacity:?}"
        );
        assert!(!snapshot.components.is_empty(), "{vendor} {scenario}");
        assert!(!snapshot.alerts.is_empty(), "{vendor} {scenario}");
        // Every essential body missing is an error, never a panic.
        assert!(vendor_entry(vendor)(b"").is_err(), "{vendor}");
        if let Some(dir) = &seeds {
            let dir = dir.join(format!("vendor_{vendor}"));
            std::fs::create_dir_all(&dir).expect("seed dir");
            std::fs::write(dir.join(format!("{scenario}.json")), &input).expect("write seed");
        }
    }
    for vendor in ["pure", "ontap", "storagegrid", "datadomain"] {
        replay(&format!("vendor_{vendor}"), vendor_entry(vendor));
    }
}

/// Found by `vendor_datadomain` (FUZZING.md): a system reporting a physical total of 0 bytes
/// with bytes used gave a snapshot whose capacity the bus contract refuses, so the writer would
/// have dead-lettered the whole snapshot (status, alerts and all) on every poll. The capacity is
/// now dropped with a degradation and the rest of the snapshot kept.
#[test]
fn an_implausible_capacity_is_dropped_not_published() {
    let input = std::fs::read(
        fuzz_dir().join("regressions/vendor_datadomain/capacity-total-zero-used-nonzero"),
    )
    .expect("regression input");
    let snapshot = fuzzing::datadomain(&input).expect("the system answered");
    assert_eq!(snapshot.capacity, None);
    let error = snapshot.error.expect("a degraded poll");
    assert!(
        error.contains(
            "capacity dropped: used 346346162749440 bytes is implausible for a total of 0 bytes"
        ),
        "{error}"
    );
    // The rest of the snapshot is kept.
    assert_eq!(snapshot.status, sdash_proto::Status::Online);
    assert_eq!(snapshot.model.as_deref(), Some("DD9410"));
}
