//! `sdash-writer`: see the library documentation and `--help`.

use clap::Parser;
use sdash_service::{init_tracing, shutdown_on_signal};
use sdash_writer::{Cli, Command};

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let cli = Cli::parse();
    init_tracing(&cli.log);
    match &cli.command {
        None => sdash_writer::run(cli.writer, shutdown_on_signal()).await,
        Some(Command::ReplayDeadLetters(args)) => {
            let out = sdash_writer::replay_dead_letters(&cli.writer, args).await?;
            println!(
                "{} {} dead letter(s); skipped {} rejected when decoded (see --all); {} could not be published",
                if args.dry_run {
                    "would replay"
                } else {
                    "replayed"
                },
                out.replayed,
                out.skipped,
                out.failed
            );
            if out.failed > 0 {
                anyhow::bail!("{} dead letter(s) could not be published", out.failed);
            }
            Ok(())
        }
        Some(Command::Import(args)) => {
            let summary = sdash_writer::import::import(&cli.writer, args).await?;
            print!("{summary}");
            Ok(())
        }
    }
}
