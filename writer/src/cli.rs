//! The command line: [`Cli`] (logging and [`WriterConfig`] flags, then an optional
//! [`Command`]) and the flags of the one-off commands ([`ReplayArgs`]).

use sdash_service::LogArgs;

use crate::config::WriterConfig;

/// sdash-writer: consumes the SDASH JetStream stream and persists it, exactly one active writer
/// per database (a second one waits as a hot standby).
#[derive(Debug, Clone, clap::Parser)]
#[command(name = "sdash-writer", version, about, long_about = None)]
pub struct Cli {
    #[command(flatten)]
    pub log: LogArgs,
    #[command(flatten)]
    pub writer: WriterConfig,
    /// Without a command: run the writer.
    #[command(subcommand)]
    pub command: Option<Command>,
}

/// One-off tasks on the writer's database and stream (their flags come after the command; the
/// database and NATS flags before it, or from the environment).
#[derive(Debug, Clone, clap::Subcommand)]
pub enum Command {
    /// Publish stored dead letters to the stream again (deleting each once JetStream has it), so
    /// the running writer stores them; by default only poison and database refusals.
    ReplayDeadLetters(ReplayArgs),
    /// Import the predecessor dashboard's database and/or history CSV through the bus (the
    /// running writer stores it): inventory, daily capacity, logs, alert states.
    Import(crate::import::ImportArgs),
}

/// What `replay-dead-letters` replays; see [`crate::replay_dead_letters`].
#[derive(Debug, Clone, clap::Args)]
pub struct ReplayArgs {
    /// Replay at most this many dead letters (oldest first).
    #[arg(long = "limit", env = "SDASH_REPLAY_LIMIT", default_value_t = 1000)]
    pub limit: u64,
    /// Also replay messages that were rejected when decoded (malformed, invalid, oversized); by
    /// default only those that can succeed now: poison (delivered too often, e.g. by writer
    /// restarts) and those the database refused.
    #[arg(long = "all", env = "SDASH_REPLAY_ALL")]
    pub all: bool,
    /// Only list what would be replayed.
    #[arg(long = "dry-run", env = "SDASH_REPLAY_DRY_RUN")]
    pub dry_run: bool,
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use clap::{CommandFactory, FromArgMatches};
    use sdash_service::Secret;

    use super::*;

    /// Parses `args` as the command line alone: the SDASH_* twins of the flags are dropped, so
    /// the process environment (a developer's shell, CI) cannot change what a test sees. The
    /// environment is not touched, so tests in parallel threads stay independent.
    fn parse_cli(args: &[&str]) -> Result<Cli, clap::Error> {
        let argv = std::iter::once("sdash-writer").chain(args.iter().copied());
        let command = Cli::command().mut_args(|arg| arg.env(None::<&'static str>));
        Cli::from_arg_matches(&command.try_get_matches_from(argv)?)
    }

    fn parse(args: &[&str]) -> WriterConfig {
        parse_cli(args)
            .unwrap_or_else(|e| panic!("{args:?}: {e}"))
            .writer
    }

    #[test]
    fn durations() {
        let config = parse(&["--batch-timeout", "250ms", "--retention-interval", "5m"]);
        assert_eq!(config.batch_timeout, Duration::from_millis(250));
        assert_eq!(config.retention_interval, Duration::from_secs(300));
        // The one rule of every service: a bare number is seconds.
        assert_eq!(
            parse(&["--ack-wait", "30"]).ack_wait,
            Duration::from_secs(30)
        );
        for bad in ["5 parsecs", ""] {
            assert!(parse_cli(&["--lock-poll", bad]).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn every_flag_has_an_env_twin_and_help() {
        let broken = sdash_service::flags_breaking_conventions(&Cli::command());
        assert!(broken.is_empty(), "{broken:?}");
    }

    #[test]
    fn database_password_file() {
        let dir = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
        let file = |name: &str, text: &str| {
            let path = dir.path().join(name);
            std::fs::write(&path, text).unwrap_or_else(|e| panic!("{e}"));
            path
        };
        let pg = "postgres://sdash@db.example.net/sdash";
        let cli = parse_cli(&[
            "--database-url",
            pg,
            "--database-password-file",
            file("pw", "hunter2 x\n").to_str().unwrap_or_default(),
        ])
        .unwrap_or_else(|e| panic!("{e}"));
        let password = cli
            .writer
            .database_password()
            .unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(password.as_ref().map(Secret::expose), Some("hunter2 x"));
        assert!(!format!("{:?}", cli.writer).contains("hunter2"));

        let mut config = WriterConfig::new("nats://127.0.0.1:4222", pg);
        assert!(matches!(config.database_password(), Ok(None)));
        config.database_password_file = Some(file("empty", "\n"));
        let err = config.database_password().err().map(|e| e.to_string());
        let err = err.unwrap_or_else(|| panic!("an empty file is accepted"));
        assert!(
            err.contains("--database-password-file") && err.contains("is empty"),
            "{err}"
        );
        config.database_password_file = Some(dir.path().join("missing"));
        let err = config.database_password().err().map(|e| e.to_string());
        let err = err.unwrap_or_else(|| panic!("a missing file is accepted"));
        assert!(
            err.contains("cannot read") && err.contains("missing"),
            "{err}"
        );

        // SQLite has no password: the flag is ignored (the file is not even read).
        config.database_url = "sqlite://sdash.db".into();
        assert!(matches!(config.database_password(), Ok(None)));
    }

    #[test]
    fn defaults_parse() {
        let config = parse(&[]);
        assert_eq!(config.batch_max, 1000);
        assert_eq!(config.batch_timeout, Duration::from_millis(100));
        assert_eq!(config.max_deliver, 10);
        let config = parse(&["--admin-listen", "127.0.0.1:0", "--batch-timeout", "1s"]);
        assert_eq!(config.admin_listen.port(), 0);
        assert_eq!(config.batch_timeout, Duration::from_secs(1));
    }

    #[test]
    fn new_has_the_command_line_defaults() {
        // `parse` ignores the SDASH_* environment, so this compares the flags' own defaults.
        let mut from_cli = parse(&[]);
        from_cli.admin_listen.set_port(0);
        let new = WriterConfig::new(&from_cli.nats.url, &from_cli.database_url);
        assert_eq!(format!("{new:?}"), format!("{from_cli:?}"));
    }

    #[test]
    fn admin_listen_has_the_old_spelling_as_hidden_alias() {
        let config = parse(&["--metrics-listen", "127.0.0.1:9999"]);
        assert_eq!(config.admin_listen.port(), 9999);
        let help = Cli::command().render_long_help().to_string();
        assert!(help.contains("--admin-listen") && !help.contains("metrics-listen"));
    }
}
