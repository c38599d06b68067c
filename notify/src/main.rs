//! `sdash-notify`: see the library documentation and `--help`.

use clap::Parser;
use sdash_notify::Cli;
use sdash_service::{init_tracing, shutdown_on_signal};

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let cli = Cli::parse();
    init_tracing(&cli.log);
    if cli.notify.check_config {
        let config = sdash_notify::check(&cli.notify)?;
        println!(
            "{}: {} receiver(s), {} route(s): OK",
            cli.notify.config.display(),
            config.receivers.len(),
            config.routes.len()
        );
        return Ok(());
    }
    sdash_notify::run(cli.notify, shutdown_on_signal()).await
}
