//! `sdash-writer`: see the library documentation and `--help`.

use clap::Parser;
use sdash_proto::service::{init_tracing, shutdown_signal};
use sdash_writer::Cli;

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let cli = Cli::parse();
    init_tracing(&cli.log);
    sdash_writer::run(cli.writer, shutdown_signal()).await
}
