//! `sdash-sim`: a simulated fleet of storage arrays speaking the vendors' REST APIs over HTTPS,
//! one listener for the whole fleet (system `sim-pure-0001` at `https://<listen>/sim-pure-0001`).
//!
//! ```text
//! sdash-sim --systems 20 --inventory-out /tmp/sim/inventory.toml
//! sdash-collector probe --inventory /tmp/sim/inventory.toml --system sim-pure-0001
//! curl --cacert /tmp/sim/sim-ca.pem -X POST https://127.0.0.1:8443/control/sim-pure-0001/fault \
//!      -d '{"kind":"status","code":503}'
//! ```

use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

use clap::Parser;
use sdash_testkit::sim::{Fleet, Mix, Mode, SimConfig};

#[derive(Debug, Parser)]
#[command(
    name = "sdash-sim",
    version,
    about = "Simulated fleet of storage arrays (Pure, ONTAP, StorageGRID, DataDomain) over HTTPS"
)]
struct Args {
    /// Number of simulated systems.
    #[arg(long, env = "SDASH_SIM_SYSTEMS", default_value_t = 10)]
    systems: usize,
    /// Seed of the deterministic values (capacity, alerts, tokens).
    #[arg(long, env = "SDASH_SIM_SEED", default_value_t = 1)]
    seed: u64,
    /// Address of the HTTPS listener serving every system.
    #[arg(long, env = "SDASH_SIM_LISTEN", default_value = "127.0.0.1:8443")]
    listen: SocketAddr,
    /// Write a ready inventory TOML here (plus sim-ca.pem and secrets/ next to it).
    #[arg(long, env = "SDASH_SIM_INVENTORY_OUT")]
    inventory_out: Option<PathBuf>,
    /// Poll interval written into the inventory.
    #[arg(long, env = "SDASH_SIM_INTERVAL", default_value = "60s")]
    interval: String,
    /// Vendor weights, e.g. pure=40,ontap=30,storagegrid=15,datadomain=15.
    #[arg(long, env = "SDASH_SIM_MIX", default_value = "pure=100")]
    mix: Mix,
    /// Serve the vendor fixtures unchanged instead of live values.
    #[arg(long, env = "SDASH_SIM_FIXTURES")]
    fixtures: bool,
    /// PEM certificate chain to serve (default: a generated CA and certificate).
    #[arg(long, env = "SDASH_SIM_CERT", requires = "key")]
    cert: Option<PathBuf>,
    /// PEM private key of --cert.
    #[arg(long, env = "SDASH_SIM_KEY", requires = "cert")]
    key: Option<PathBuf>,
    /// Serve list endpoints in pages of at most this many items.
    #[arg(long, env = "SDASH_SIM_PAGE_CAP")]
    page_cap: Option<usize>,
    /// An extra plain-HTTP listener for /control/... only.
    #[arg(long, env = "SDASH_SIM_CONTROL_LISTEN")]
    control_listen: Option<SocketAddr>,
    /// Percent of the systems that start degraded (a failed PSU and its critical alert).
    #[arg(long, env = "SDASH_SIM_DEGRADED_PCT", default_value_t = 10, value_parser = clap::value_parser!(u8).range(0..=100))]
    degraded_pct: u8,
    /// Percent of the systems that start near full (above 90 % used).
    #[arg(long, env = "SDASH_SIM_NEAR_FULL_PCT", default_value_t = 10, value_parser = clap::value_parser!(u8).range(0..=100))]
    near_full_pct: u8,
    /// Write plausible daily capacity history of every system here, in the predecessor
    /// dashboard's history CSV format, ending yesterday at the capacity each serves now (for
    /// `sdash-writer import --from-csv`).
    #[arg(long, env = "SDASH_SIM_HISTORY_OUT")]
    history_out: Option<PathBuf>,
    /// Days of history --history-out writes per system.
    #[arg(long, env = "SDASH_SIM_HISTORY_DAYS", default_value_t = 730, value_parser = clap::value_parser!(u32).range(1..=3660))]
    history_days: u32,
}

fn main() -> ExitCode {
    let args = Args::parse();
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("sdash-sim: cannot start the runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    runtime.block_on(run(args))
}

async fn run(args: Args) -> ExitCode {
    let interval = args.interval.clone();
    if !interval
        .trim_end_matches(|c: char| c.is_ascii_alphabetic())
        .chars()
        .all(|c| c.is_ascii_digit())
        || interval.is_empty()
    {
        eprintln!("sdash-sim: --interval {interval:?} is not a duration like 60s or 5m");
        return ExitCode::FAILURE;
    }
    let config = SimConfig {
        systems: args.systems,
        seed: args.seed,
        listen: args.listen,
        mix: args.mix,
        mode: if args.fixtures {
            Mode::Fixture
        } else {
            Mode::Live
        },
        cert: args.cert.zip(args.key),
        page_cap: args.page_cap,
        frozen_clock: false,
        hang: Duration::from_secs(120),
        control_listen: args.control_listen,
        degraded_pct: args.degraded_pct,
        near_full_pct: args.near_full_pct,
    };
    let fleet = match Fleet::start(config).await {
        Ok(f) => f,
        Err(e) => {
            eprintln!("sdash-sim: {e}");
            return ExitCode::FAILURE;
        }
    };
    // Before the inventory: whoever waits for the inventory file finds the history written.
    if let Some(path) = &args.history_out {
        match fleet.write_history_csv(path, args.history_days) {
            Ok(rows) => println!(
                "sdash-sim: {rows} days of history written to {}",
                path.display()
            ),
            Err(e) => {
                eprintln!("sdash-sim: {e}");
                return ExitCode::FAILURE;
            }
        }
    }
    if let Some(path) = &args.inventory_out {
        if let Err(e) = fleet.write_inventory(path, &interval) {
            eprintln!("sdash-sim: {e}");
            return ExitCode::FAILURE;
        }
        println!("sdash-sim: inventory written to {}", path.display());
    }
    let ids = fleet.system_ids();
    println!(
        "sdash-sim: {} systems on https://{} (e.g. {})",
        ids.len(),
        fleet.addr(),
        ids.first().map(|id| fleet.base_url(id)).unwrap_or_default()
    );
    if let Some(control) = fleet.control_addr() {
        println!("sdash-sim: control API on http://{control}/control/systems");
    }
    match tokio::signal::ctrl_c().await {
        Ok(()) => println!("sdash-sim: stopping"),
        Err(e) => eprintln!("sdash-sim: cannot wait for Ctrl-C: {e}"),
    }
    drop(fleet);
    ExitCode::SUCCESS
}
