//! The `sdash-collector` binary: parses the command line and runs the collector or `probe`.

use clap::Parser;
use sdash_collector::app::{self, Cli, Command};

#[tokio::main]
async fn main() -> std::process::ExitCode {
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
