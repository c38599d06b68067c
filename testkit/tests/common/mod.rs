//! Shared by the testkit tests that run `deploy/demo.sh` (`demo.rs`, `dashboard_history.rs`):
//! the binaries this test build made, free ports, the demo's command line and a guard that stops it.
#![allow(dead_code)]

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

use sdash_harness::free_port;

/// `target/<profile>`: test binaries run from `target/<profile>/deps/`.
pub fn binaries_dir() -> PathBuf {
    let exe = std::env::current_exe().unwrap_or_else(|e| panic!("test executable: {e}"));
    exe.parent()
        .and_then(Path::parent)
        .unwrap_or_else(|| panic!("target/<profile>"))
        .to_path_buf()
}

/// Four consecutive free ports (the admin ports of the writer, the two collectors and the notifier).
pub fn four_free_ports() -> u16 {
    for _ in 0..100 {
        let base = free_port();
        if base < 60_000
            && (1..4).all(|i| std::net::TcpListener::bind(("127.0.0.1", base + i)).is_ok())
        {
            return base;
        }
    }
    panic!("no four consecutive free ports");
}

/// The ports the demo listens on, all free when chosen.
pub struct DemoPorts {
    pub api: u16,
    pub nats: u16,
    pub sim: u16,
    /// The first of four consecutive ports (writer, two collectors, notifier).
    pub admin: u16,
    pub alertmanager: u16,
}

impl DemoPorts {
    pub fn free() -> Self {
        DemoPorts {
            api: free_port(),
            nats: free_port(),
            sim: free_port(),
            admin: four_free_ports(),
            alertmanager: free_port(),
        }
    }
}

/// `bash deploy/demo.sh` with `systems` simulated arrays, its data in `data` and the binaries of
/// this test build (each asserted to exist); the caller sets stdout/stderr and spawns it.
pub fn demo_command(data: &Path, systems: usize, ports: &DemoPorts) -> Command {
    let bin = binaries_dir();
    for name in [
        "sdash-collector",
        "sdash-writer",
        "sdash-api",
        "sdash-sim",
        "sdash-notify",
    ] {
        assert!(
            bin.join(name).exists(),
            "{name} is built in {} (cargo nextest builds every binary)",
            bin.display()
        );
    }
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("../deploy/demo.sh");
    let mut command = Command::new("bash");
    command
        .arg(&script)
        .env("SDASH_DEMO_BIN_DIR", &bin)
        .env("SDASH_DEMO_DIR", data)
        .env("SDASH_DEMO_SYSTEMS", systems.to_string())
        .env("SDASH_DEMO_PORT", ports.api.to_string())
        .env("SDASH_DEMO_NATS_PORT", ports.nats.to_string())
        .env("SDASH_DEMO_SIM_PORT", ports.sim.to_string())
        .env("SDASH_DEMO_ADMIN_PORT", ports.admin.to_string())
        .env(
            "SDASH_DEMO_ALERTMANAGER_PORT",
            ports.alertmanager.to_string(),
        )
        .env(
            "SDASH_DEMO_ALERTMANAGER_BIN",
            sdash_harness::alertmanager_binary(),
        );
    command
}

/// Stops the demo (as Ctrl-C does) when the test ends, passed or not.
pub struct Demo(pub std::process::Child);

impl Drop for Demo {
    fn drop(&mut self) {
        if self.0.try_wait().ok().flatten().is_none() {
            let _ = Command::new("kill")
                .args(["-INT", &self.0.id().to_string()])
                .status();
            let deadline = std::time::Instant::now() + Duration::from_secs(20);
            while self.0.try_wait().ok().flatten().is_none() && std::time::Instant::now() < deadline
            {
                std::thread::sleep(Duration::from_millis(100));
            }
            let _ = self.0.kill();
        }
    }
}
