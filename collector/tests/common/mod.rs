//! Scaffolding shared by the vendor tests (`ontap`, `storagegrid`, `datadomain`, `pure`): a
//! one-vendor simulator with its inventory loaded, and the checks every vendor repeats. Each test
//! binary compiles its own copy, so items one binary does not use carry `allow(dead_code)`.

use std::time::Duration;

use sdash_collector::inventory::SystemConfig;
use sdash_collector::vendors::PollOutput;
use sdash_proto::{Status, Vendor};
use sdash_testkit::sim::{Fleet, Mix, Mode, SimConfig};

pub const TIB: u64 = 1 << 40;

/// The simulator settings the vendor tests share: a frozen clock, and [`Fault::Hang`] held
/// longer than the 2 s client timeout.
///
/// [`Fault::Hang`]: sdash_testkit::sim::Fault::Hang
pub fn sim_config(mode: Mode) -> SimConfig {
    SimConfig {
        mode,
        frozen_clock: true,
        hang: Duration::from_secs(5),
        ..SimConfig::default()
    }
}

/// One simulated system of one vendor, and its config as the collector loads it from the
/// inventory the simulator writes.
#[allow(dead_code)] // not used by `pure`
pub struct Setup {
    pub fleet: Fleet,
    pub config: SystemConfig,
    _dir: tempfile::TempDir,
}

/// Starts a simulator with one `vendor` system, writes and loads its inventory, and shortens the
/// timeout to 2 s. `page_cap`: see [`SimConfig::page_cap`].
#[allow(dead_code)] // not used by `pure`
pub async fn setup(vendor: Vendor, mode: Mode, page_cap: Option<usize>) -> Setup {
    let fleet = Fleet::start(SimConfig {
        mix: Mix(vec![(vendor, 1)]),
        page_cap,
        ..sim_config(mode)
    })
    .await
    .expect("start simulator");
    let dir = tempfile::tempdir().expect("tempdir");
    let path = dir.path().join("inventory.toml");
    fleet
        .write_inventory(&path, "60s")
        .expect("write inventory");
    let mut config = sdash_collector::inventory::load(&path)
        .expect("load inventory")
        .systems
        .remove(0);
    config.timeout = Duration::from_secs(2);
    Setup {
        fleet,
        config,
        _dir: dir,
    }
}

impl Setup {
    #[allow(dead_code)] // not used by `pure`
    pub fn id(&self) -> String {
        self.config.id.clone()
    }

    /// Logins the simulated system has seen.
    #[allow(dead_code)] // not used by `ontap`, `pure`
    pub fn logins(&self) -> u64 {
        self.fleet.stats(&self.id()).expect("stats").logins
    }

    /// The config without the simulator's CA: its certificate is not trusted.
    #[allow(dead_code)] // not used by `pure`
    pub fn untrusted(&self) -> SystemConfig {
        let mut config = self.config.clone();
        config.tls.ca_file = None;
        config
    }
}

/// The poll failed or is degraded, and an event names `endpoint`.
#[allow(dead_code)] // not used by `pure`
pub fn assert_names(label: &str, out: &PollOutput, endpoint: &str) {
    assert!(
        out.snapshot.status != Status::Online || out.snapshot.error.is_some(),
        "{label}: {:?}",
        out.snapshot
    );
    assert!(
        out.events
            .iter()
            .any(|e| e.endpoint.as_deref() == Some(endpoint)),
        "{label}: no event names {endpoint}: {:?}",
        out.events
    );
}

/// A poll against an untrusted certificate: unreachable, and an event says TLS.
#[allow(dead_code)] // not used by `pure`
pub fn assert_tls_failure(out: &PollOutput) {
    assert_eq!(out.snapshot.status, Status::Unreachable);
    assert!(
        out.events.iter().any(|e| e.message.contains("TLS")),
        "{:?}",
        out.events
    );
}

/// `secret` (a password, a token) does not show up in `text` (a `Debug` dump, a written file).
#[allow(dead_code)] // not used by `storagegrid`, `datadomain`
pub fn assert_hidden(secret: &str, text: &str, what: &str) {
    assert!(!text.contains(secret), "{what}");
}
