//! The command line: [`Cli`] (logging and [`NotifyArgs`]).

use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

use sdash_service::LogArgs;
use sdash_service::bus::{NatsArgs, StreamArgs};
use sdash_service::parse_duration;

/// The default of every flag.
pub mod defaults {
    pub const CONFIG: &str = "/etc/sdash/notify.toml";
    pub const CONSUMER: &str = "sdash-notify";
    pub const STATE_BUCKET: &str = "sdash-notify";
    pub const ACK_WAIT: &str = "30s";
    pub const ADMIN_LISTEN: &str = "127.0.0.1:9104";
    pub const SHUTDOWN_GRACE: &str = "10s";
}

/// sdash-notify: routes the changes the writer derives (alerts opened and cleared, status and
/// health transitions, capacity thresholds) to Alertmanager, signed webhooks and email.
#[derive(Debug, Clone, clap::Parser)]
#[command(name = "sdash-notify", version, about, long_about = None)]
pub struct Cli {
    #[command(flatten)]
    pub log: LogArgs,
    #[command(flatten)]
    pub notify: NotifyArgs,
}

/// Everything [`crate::run`] needs besides the configuration file's content.
#[derive(Debug, Clone, clap::Args)]
pub struct NotifyArgs {
    #[command(flatten)]
    pub nats: NatsArgs,
    #[command(flatten)]
    pub stream: StreamArgs,
    /// The TOML configuration: receivers, routes, grouping (see docs/operations.md).
    #[arg(long = "config", env = "SDASH_NOTIFY_CONFIG", default_value = defaults::CONFIG)]
    pub config: PathBuf,
    /// Only read and check the configuration (and its secret files), then exit.
    #[arg(long = "check-config", env = "SDASH_NOTIFY_CHECK_CONFIG")]
    pub check_config: bool,
    /// Durable consumer name on the SDASH stream (its own, independent of the writer's).
    #[arg(long = "consumer", env = "SDASH_NOTIFY_CONSUMER", default_value = defaults::CONSUMER)]
    pub consumer: String,
    /// A new consumer starts at the oldest change in the stream instead of the next one (only
    /// when the consumer is created; the dedupe window still applies).
    #[arg(long = "replay-history", env = "SDASH_NOTIFY_REPLAY_HISTORY")]
    pub replay_history: bool,
    /// NATS KV bucket remembering what was sent (and `<bucket>-firing`, what is firing).
    #[arg(long = "state-bucket", env = "SDASH_NOTIFY_STATE_BUCKET", default_value = defaults::STATE_BUCKET)]
    pub state_bucket: String,
    /// How long JetStream waits for an ack before redelivering (in-progress acks extend it
    /// while a change is grouped or retried).
    #[arg(long = "ack-wait", env = "SDASH_NOTIFY_ACK_WAIT", default_value = defaults::ACK_WAIT, value_parser = parse_duration)]
    pub ack_wait: Duration,
    /// On SIGTERM, how long grouped changes may take to be sent before the notifier exits
    /// (what is not sent by then is redelivered to the next start).
    #[arg(long = "shutdown-grace", env = "SDASH_NOTIFY_SHUTDOWN_GRACE", default_value = defaults::SHUTDOWN_GRACE, value_parser = parse_duration)]
    pub shutdown_grace: Duration,
    /// Address of the admin server (/healthz, /readyz, /metrics); port 0 picks a free port.
    #[arg(
        long = sdash_service::ADMIN_LISTEN_FLAG,
        env = "SDASH_ADMIN_LISTEN",
        default_value = defaults::ADMIN_LISTEN
    )]
    pub admin_listen: SocketAddr,
}

impl NotifyArgs {
    /// The defaults, for a NATS server at `nats_url` and the configuration at `config`, with the
    /// admin server on a free port (tests, tools).
    pub fn new(nats_url: &str, config: &std::path::Path) -> NotifyArgs {
        NotifyArgs {
            nats: NatsArgs::plain(nats_url),
            stream: StreamArgs::default(),
            config: config.to_owned(),
            check_config: false,
            consumer: defaults::CONSUMER.into(),
            replay_history: false,
            state_bucket: defaults::STATE_BUCKET.into(),
            ack_wait: parse_duration(defaults::ACK_WAIT).unwrap_or_default(),
            shutdown_grace: parse_duration(defaults::SHUTDOWN_GRACE).unwrap_or_default(),
            admin_listen: SocketAddr::from(([127, 0, 0, 1], 0)),
        }
    }
}

#[cfg(test)]
mod tests {
    use clap::{CommandFactory, Parser};

    use super::*;

    #[test]
    fn defaults_and_new_agree() {
        let cli = Cli::try_parse_from(["sdash-notify"]).unwrap_or_else(|e| panic!("{e}"));
        let mut from_cli = cli.notify;
        from_cli.admin_listen.set_port(0);
        let new = NotifyArgs::new(&from_cli.nats.url, &from_cli.config);
        assert_eq!(format!("{new:?}"), format!("{from_cli:?}"));
        assert!(defaults::ADMIN_LISTEN.parse::<SocketAddr>().is_ok());
        let cli = Cli::try_parse_from(["sdash-notify", "--ack-wait", "90"])
            .unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(cli.notify.ack_wait, Duration::from_secs(90));
    }

    #[test]
    fn every_flag_has_an_env_twin_and_help() {
        sdash_service::assert_flag_conventions(&Cli::command());
    }
}
