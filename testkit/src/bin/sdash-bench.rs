//! `sdash-bench`: the benchmarks of BENCHMARKS.md, each figure next to a baseline measured in the
//! same run.
//!
//! ```text
//! cargo run --release -p sdash-testkit --bin sdash-bench -- writer-throughput --json bench.json
//! cargo run --release -p sdash-testkit --bin sdash-bench -- all --quick
//! ```

use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

use clap::Parser;
use sdash_harness::Backend;
use sdash_testkit::bench::{
    self, API_SUBCOMMAND, COLLECTOR_SUBCOMMAND, Options, Program, Scenario,
};

#[derive(Debug, Parser)]
#[command(
    name = "sdash-bench",
    version,
    about = "sdash benchmarks: each figure next to its baseline measured in the same run"
)]
struct Args {
    /// Which benchmark to run.
    #[arg(value_enum)]
    scenario: Scenario,
    /// Small sizes and short durations (seconds); what the test suite runs.
    #[arg(long)]
    quick: bool,
    /// Also write the results as JSON to this file.
    #[arg(long)]
    json: Option<PathBuf>,
    /// Also write the results as a Markdown table to this file.
    #[arg(long)]
    markdown: Option<PathBuf>,
    /// Backend(s) of the scenarios that take one: sqlite, postgres or both (default per scenario).
    #[arg(long, value_parser = ["sqlite", "postgres", "both"])]
    backend: Option<String>,
    /// Simulated systems (collector-scale) or seeded systems (api-latency).
    #[arg(long)]
    systems: Option<usize>,
    /// Poll interval of collector-scale, seconds; live publishes one snapshot per system per interval.
    #[arg(long)]
    interval: Option<u64>,
    /// Live-stream clients of live (default 1000).
    #[arg(long)]
    clients: Option<usize>,
    /// Seconds the timed part runs (collector-scale; freshness per load level; api-latency per endpoint).
    #[arg(long)]
    duration: Option<u64>,
    /// Messages per writer-throughput case.
    #[arg(long)]
    messages: Option<usize>,
    /// Years of capacity history history-scale generates (default 2).
    #[arg(long, env = "SDASH_BENCH_YEARS")]
    years: Option<f64>,
    /// Systems of history-scale's per-poll baseline, measured and extrapolated (default 20).
    #[arg(long, env = "SDASH_BENCH_BASELINE_SYSTEMS")]
    baseline_systems: Option<usize>,
    /// history-scale: the writer's --capacity-raw-max-gap to generate raw samples with, seconds (default 3600).
    #[arg(long, env = "SDASH_BENCH_RAW_MAX_GAP")]
    raw_max_gap: Option<u64>,
    /// Which writer-throughput loads to run: events, snapshots or both.
    #[arg(long, value_parser = ["events", "snapshots", "both"], default_value = "both")]
    load: String,
    /// The sdash-sim program (default: beside sdash-bench).
    #[arg(long, env = "SDASH_BENCH_SIM")]
    sim: Option<PathBuf>,
    /// The sdash-collector program (default: beside sdash-bench, else sdash-bench itself).
    #[arg(long, env = "SDASH_BENCH_COLLECTOR")]
    collector: Option<PathBuf>,
    /// CPU the collector is pinned to with taskset (the simulator takes the next one).
    #[arg(long, default_value_t = 0)]
    pin_cpu: usize,
}

fn main() -> ExitCode {
    let argv: Vec<String> = std::env::args().collect();
    if argv.get(1).map(String::as_str) == Some(COLLECTOR_SUBCOMMAND) {
        return collector_process(&argv[2..]);
    }
    if argv.get(1).map(String::as_str) == Some(API_SUBCOMMAND) {
        return api_process(&argv[2..]);
    }
    let args = Args::parse();
    let command = format!(
        "cargo run --release -p sdash-testkit --bin sdash-bench -- {}",
        argv[1..].join(" ")
    );
    block_on(async move {
        let mut options = Options::new(args.quick);
        options.backends = args.backend.as_deref().map(|b| match b {
            "sqlite" => vec![Backend::Sqlite],
            "postgres" => vec![Backend::Postgres],
            _ => vec![Backend::Sqlite, Backend::Postgres],
        });
        options.systems = args.systems;
        options.interval = args.interval.map(Duration::from_secs);
        options.clients = args.clients;
        options.duration = args.duration.map(Duration::from_secs);
        options.messages = args.messages;
        options.years = args.years;
        options.baseline_systems = args.baseline_systems;
        options.raw_max_gap = args.raw_max_gap.map(Duration::from_secs);
        options.events = args.load != "snapshots";
        options.snapshots = args.load != "events";
        options.pin_cpu = Some(args.pin_cpu);
        if let Some(sim) = args.sim {
            options.sim = Program::new(sim);
        }
        if let Some(collector) = args.collector {
            options.collector = Program::new(collector);
        }
        let run = match bench::run(args.scenario, &options, &command).await {
            Ok(run) => run,
            Err(e) => {
                eprintln!("sdash-bench: {e:#}");
                return ExitCode::FAILURE;
            }
        };
        if let Some(path) = &args.json {
            let written = serde_json::to_vec_pretty(&run)
                .map_err(std::io::Error::other)
                .and_then(|bytes| std::fs::write(path, bytes));
            if let Err(e) = written {
                eprintln!("sdash-bench: cannot write {}: {e}", path.display());
                return ExitCode::FAILURE;
            }
            println!("results written to {}", path.display());
        }
        if let Some(path) = &args.markdown {
            if let Err(e) = std::fs::write(path, run.markdown()) {
                eprintln!("sdash-bench: cannot write {}: {e}", path.display());
                return ExitCode::FAILURE;
            }
            println!("table written to {}", path.display());
        }
        let missed: usize = run.reports.iter().map(|r| r.missed().len()).sum();
        if missed > 0 {
            println!("{missed} target(s) missed (see the table)");
        }
        ExitCode::SUCCESS
    })
}

/// `sdash-bench collector-process <sdash-collector arguments>`: the collector through the same
/// library entry point as the `sdash-collector` binary, for when that binary is not built.
fn collector_process(rest: &[String]) -> ExitCode {
    use sdash_collector::app::{Cli, run};
    let cli: Cli = match parse_program_args("sdash-collector", rest) {
        Ok(cli) => cli,
        Err(code) => return code,
    };
    block_on(async move {
        sdash_service::init_tracing(&cli.run.log);
        let result = run(cli.run, sdash_service::shutdown_on_signal()).await;
        exit_code("sdash-collector", result)
    })
}

/// `sdash-bench api-process <sdash-api arguments>`: the API through the same library entry point
/// as the `sdash-api` binary, for when that binary is not built.
fn api_process(rest: &[String]) -> ExitCode {
    let cli: sdash_api::Cli = match parse_program_args("sdash-api", rest) {
        Ok(cli) => cli,
        Err(code) => return code,
    };
    block_on(async move {
        sdash_service::init_tracing(&cli.log);
        let result = match sdash_api::Config::from_cli(&cli) {
            Ok(config) => sdash_api::run(config, sdash_service::shutdown_on_signal()).await,
            Err(e) => Err(e),
        };
        exit_code("sdash-api", result)
    })
}

/// `rest` parsed as the arguments of `program`; on an error (or `--help`) clap's message is
/// printed and the exit code returned.
fn parse_program_args<C: Parser>(program: &str, rest: &[String]) -> Result<C, ExitCode> {
    C::try_parse_from(std::iter::once(program.to_owned()).chain(rest.iter().cloned())).map_err(
        |e| {
            let _ = e.print();
            ExitCode::FAILURE
        },
    )
}

/// Runs `work` on a multi-threaded runtime; failure when the runtime cannot start.
fn block_on(work: impl std::future::Future<Output = ExitCode>) -> ExitCode {
    match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(runtime) => runtime.block_on(work),
        Err(e) => {
            eprintln!("sdash-bench: cannot start the runtime: {e}");
            ExitCode::FAILURE
        }
    }
}

/// The exit code of a service `program` that ran to `result`, its error printed.
fn exit_code<E: std::fmt::Display>(program: &str, result: Result<(), E>) -> ExitCode {
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("{program}: {e:#}");
            ExitCode::FAILURE
        }
    }
}
