//! `sdash-collector probe` against each vendor of the simulator: the normalized snapshot and the
//! events come out as JSON, with the exact values the simulated array serves, and no secret.

use std::process::Command;

use sdash_proto::Vendor;
use sdash_testkit::sim::{Fleet, Mix, SimConfig};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn probe_prints_the_normalized_snapshot_for_every_vendor() {
    let fleet = Fleet::start(SimConfig {
        systems: 4,
        mix: Mix(Vendor::ALL.iter().map(|v| (*v, 1)).collect()),
        frozen_clock: true,
        ..SimConfig::default()
    })
    .await
    .expect("simulator");
    let dir = tempfile::tempdir().expect("tempdir");
    let inventory = dir.path().join("inventory.toml");
    fleet.write_inventory(&inventory, "60s").expect("inventory");

    let mut vendors = Vec::new();
    for info in fleet.systems() {
        let out = Command::new(env!("CARGO_BIN_EXE_sdash-collector"))
            .args(["probe", "--system", &info.id, "--inventory"])
            .arg(&inventory)
            .output()
            .expect("run probe");
        let stdout = String::from_utf8_lossy(&out.stdout);
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(out.status.success(), "probe {} failed: {stderr}", info.id);
        assert!(
            !stdout.contains(&info.secret) && !stderr.contains(&info.secret),
            "the secret leaked"
        );
        let json: serde_json::Value = serde_json::from_str(&stdout).expect("probe prints JSON");
        let snapshot = &json["snapshot"];
        let expected = fleet.expected_capacity(&info.id).expect("capacity");
        assert_eq!(json["system_id"], info.id.as_str());
        assert_eq!(snapshot["vendor"], info.vendor.as_str());
        assert_eq!(snapshot["status"], "online", "{stdout}");
        assert_eq!(
            snapshot["capacity"]["total_bytes"].as_u64(),
            Some(expected.total_bytes),
            "{stdout}"
        );
        assert_eq!(
            snapshot["capacity"]["used_bytes"].as_u64(),
            Some(expected.used_bytes),
            "{stdout}"
        );
        assert!(snapshot["version"].is_string(), "{stdout}");
        assert!(
            snapshot["components"]
                .as_array()
                .is_some_and(|c| !c.is_empty()),
            "{stdout}"
        );
        assert!(
            json["events"].as_array().is_some_and(|e| !e.is_empty()),
            "the first poll logs a line: {stdout}"
        );
        vendors.push(info.vendor);
    }
    vendors.sort();
    assert_eq!(vendors, Vendor::ALL.to_vec());

    let out = Command::new(env!("CARGO_BIN_EXE_sdash-collector"))
        .args(["probe", "--system", "nope", "--inventory"])
        .arg(&inventory)
        .output()
        .expect("run probe");
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("\"nope\" is not in"));
}
