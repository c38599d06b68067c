//! The `sdash-api` binary: parses the command line and serves until SIGTERM or Ctrl-C.

use clap::Parser;

#[tokio::main]
async fn main() -> std::process::ExitCode {
    let cli = sdash_api::Cli::parse();
    sdash_service::init_tracing(&cli.log);
    let result = match sdash_api::Config::from_cli(&cli) {
        Ok(config) => sdash_api::run(config, sdash_service::shutdown_on_signal()).await,
        Err(e) => Err(e),
    };
    match result {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(e) => {
            tracing::error!("{e:#}");
            eprintln!("sdash-api: {e:#}");
            std::process::ExitCode::FAILURE
        }
    }
}
