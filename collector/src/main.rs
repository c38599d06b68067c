//! The `sdash-collector` binary: parses the command line and runs the collector or `probe`.

use clap::Parser;
use sdash_collector::app::{self, Cli, Command};

/// How long the runtime waits at exit for blocking work still running: a forward DNS check
/// (`getaddrinfo` on a blocking thread, which cannot be cancelled and may take resolv.conf's
/// timeout × attempts) must not hold up a stop.
const BLOCKING_EXIT_TIMEOUT: std::time::Duration = std::time::Duration::from_millis(500);

fn main() -> std::process::ExitCode {
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(runtime) => runtime,
        Err(e) => {
            eprintln!("sdash-collector: cannot start the async runtime: {e}");
            return std::process::ExitCode::FAILURE;
        }
    };
    let code = runtime.block_on(run());
    runtime.shutdown_timeout(BLOCKING_EXIT_TIMEOUT);
    code
}

async fn run() -> std::process::ExitCode {
    let cli = Cli::parse();
    let result = match &cli.command {
        Some(Command::Probe(args)) => {
            sdash_service::init_tracing(&args.log);
            app::probe(args).await.and_then(|out| {
                println!("{}", serde_json::to_string_pretty(&out)?);
                Ok(())
            })
        }
        None => {
            sdash_service::init_tracing(&cli.run.log);
            app::run(cli.run, sdash_service::shutdown_on_signal()).await
        }
    };
    match result {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("sdash-collector: {e:#}");
            std::process::ExitCode::FAILURE
        }
    }
}
