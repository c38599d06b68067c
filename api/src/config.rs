//! The command line of `sdash-api` ([`Cli`]) and what [`crate::run`] needs ([`Config`]); each
//! default is written once, as a constant used by both.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

use sdash_service::bus::NatsArgs;
use sdash_service::{LogArgs, Secret, parse_duration};

use crate::auth::OperatorTokens;
use crate::{db, routes};

/// Default of `--listen`.
pub const DEFAULT_LISTEN: &str = "127.0.0.1:8080";
/// Default of `--database-url`.
pub const DEFAULT_DATABASE_URL: &str = "sqlite://sdash.db";
/// Default of `--db-pool-size`: as many connections as the pool takes.
pub const DEFAULT_DB_POOL_SIZE: u32 = db::MAX_CONNECTIONS;
/// Default of `--query-timeout-ms`.
pub const DEFAULT_QUERY_TIMEOUT_MS: u64 = 5000;
/// Default of `--collector-live-secs`.
pub const DEFAULT_COLLECTOR_LIVE_SECS: u64 = 45;
/// Default of `--stream-buffer`.
pub const DEFAULT_STREAM_BUFFER: usize = 256;
/// Default of `--stream-max-clients`.
pub const DEFAULT_STREAM_MAX_CLIENTS: usize = 10_000;
/// Default of `--stream-ping-secs`.
pub const DEFAULT_STREAM_PING_SECS: u64 = 15;
/// Default of `--list-cache-ms` (the binary's; [`Config::new`] reloads after every commit).
pub const DEFAULT_LIST_CACHE_MS: u64 = 250;
/// Default of `--poll-now-min-interval`.
pub const DEFAULT_POLL_NOW_MIN_INTERVAL: &str = "30s";
/// Default of `--command-publish-timeout`.
pub const DEFAULT_COMMAND_PUBLISH_TIMEOUT: &str = "5s";

/// Command line of `sdash-api`; every flag has an `SDASH_*` environment twin.
#[derive(Debug, Clone, clap::Parser)]
#[command(
    name = "sdash-api",
    version,
    about = "sdash read-only JSON API, live stream and metrics"
)]
pub struct Cli {
    /// Address to serve HTTP on (loopback by default; put a TLS proxy in front for remote access).
    #[arg(long, env = "SDASH_LISTEN", default_value = DEFAULT_LISTEN)]
    pub listen: SocketAddr,
    /// Database to read (`sqlite://PATH` or `postgres://...`); opened read-only. Several
    /// PostgreSQL servers: `postgres://u@h1:5432,h2:5432/db`, the first that answers, or the kind
    /// `?target_session_attrs=` names (`prefer-standby`, `standby`, ...).
    #[arg(long, env = "SDASH_DATABASE_URL", default_value = DEFAULT_DATABASE_URL)]
    pub database_url: String,
    /// File holding the PostgreSQL password (trailing newline removed; must not be empty).
    /// Overrides a password in the URL or a pgpass file; ignored, with a warning, for SQLite.
    #[arg(long, env = "SDASH_DATABASE_PASSWORD_FILE")]
    pub database_password_file: Option<PathBuf>,
    /// File holding a bearer token that every `/api/` request must present (none: no auth). The
    /// live stream and the CSV exports also take it as `?access_token=` (for EventSource and
    /// download links, which cannot send a header).
    #[arg(long, env = "SDASH_AUTH_TOKEN_FILE")]
    pub auth_token_file: Option<PathBuf>,
    /// File of operator tokens, one `name token` line each (`#` comments and blank lines
    /// ignored): the tokens that may act (the POST routes: acknowledge, assign, comment, poll
    /// now, ...) and read; the name is recorded as the actor. Without it, commands are disabled
    /// (POST routes answer 403). Read tokens (--auth-token-file) never act.
    #[arg(long, env = "SDASH_OPERATOR_TOKENS_FILE")]
    pub operator_tokens_file: Option<PathBuf>,
    /// Least time between two accepted poll-now commands for one system (a sooner one is
    /// answered 429 with Retry-After).
    #[arg(long, env = "SDASH_POLL_NOW_MIN_INTERVAL", default_value = DEFAULT_POLL_NOW_MIN_INTERVAL,
          value_parser = parse_duration)]
    pub poll_now_min_interval: Duration,
    /// How long a command waits for JetStream's acknowledgement before the request is answered
    /// 503.
    #[arg(long, env = "SDASH_COMMAND_PUBLISH_TIMEOUT", default_value = DEFAULT_COMMAND_PUBLISH_TIMEOUT,
          value_parser = parse_duration)]
    pub command_publish_timeout: Duration,
    /// This API instance's id, published as the `collector_id` of the commands it sends
    /// (default `sdash-api-<hostname>`).
    #[arg(long, env = "SDASH_INSTANCE_ID")]
    pub instance_id: Option<String>,
    /// Largest page size a client may ask for (at most 1000).
    #[arg(long, env = "SDASH_MAX_PAGE_SIZE", default_value_t = routes::MAX_PAGE,
          value_parser = clap::value_parser!(i64).range(1..=routes::MAX_PAGE))]
    pub max_page_size: i64,
    /// Database connections in the pool (1 to 4).
    #[arg(long, env = "SDASH_DB_POOL_SIZE", default_value_t = DEFAULT_DB_POOL_SIZE,
          value_parser = clap::value_parser!(u32).range(1..=i64::from(db::MAX_CONNECTIONS)))]
    pub db_pool_size: u32,
    /// Time limit of one database query, in milliseconds.
    #[arg(long, env = "SDASH_QUERY_TIMEOUT_MS", default_value_t = DEFAULT_QUERY_TIMEOUT_MS,
          value_parser = clap::value_parser!(u64).range(10..=600_000))]
    pub query_timeout_ms: u64,
    /// A collector counts as live when its last heartbeat is at most this many seconds old.
    #[arg(long, env = "SDASH_COLLECTOR_LIVE_SECS", default_value_t = DEFAULT_COLLECTOR_LIVE_SECS)]
    pub collector_live_secs: u64,
    /// Messages buffered per live-stream client; a client further behind is disconnected.
    #[arg(long, env = "SDASH_STREAM_BUFFER", default_value_t = DEFAULT_STREAM_BUFFER,
          value_parser = clap::builder::RangedU64ValueParser::<usize>::new().range(1..=100_000))]
    pub stream_buffer: usize,
    /// Live-stream clients served at once; one more is answered 503 (memory stays bounded:
    /// at most this many clients, each at most `--stream-buffer` records behind).
    #[arg(long, env = "SDASH_STREAM_MAX_CLIENTS", default_value_t = DEFAULT_STREAM_MAX_CLIENTS,
          value_parser = clap::builder::RangedU64ValueParser::<usize>::new().range(1..=1_000_000))]
    pub stream_max_clients: usize,
    /// Seconds between the `ping` events of the live stream (clients use them to tell a live
    /// connection from a silent, dead one).
    #[arg(long, env = "SDASH_STREAM_PING_SECS", default_value_t = DEFAULT_STREAM_PING_SECS,
          value_parser = clap::value_parser!(u64).range(1..=300))]
    pub stream_ping_secs: u64,
    /// The fleet list is reloaded at most this often while the writer keeps committing
    /// (milliseconds; it is reloaded at once after a quiet period).
    #[arg(long, env = "SDASH_LIST_CACHE_MS", default_value_t = DEFAULT_LIST_CACHE_MS,
          value_parser = clap::value_parser!(u64).range(0..=10_000))]
    pub list_cache_ms: u64,
    /// Serve no live stream and do not connect to NATS.
    #[arg(long, env = "SDASH_NO_STREAM")]
    pub no_stream: bool,
    /// Tag keys that become labels of the fleet metrics at `/metrics/fleet`, comma-separated
    /// (e.g. `environment,storage_type`; a system without the tag gets an empty label). A key adds
    /// a label, not series: there is still one series per system and value.
    #[arg(long, env = "SDASH_METRICS_TAG_LABELS", value_delimiter = ',')]
    pub metrics_tag_labels: Vec<String>,
    #[command(flatten)]
    pub nats: NatsArgs,
    #[command(flatten)]
    pub log: LogArgs,
}

/// Everything [`run`] and [`spawn`] need.
#[derive(Debug, Clone)]
pub struct Config {
    pub listen: SocketAddr,
    pub database_url: String,
    /// PostgreSQL password (from `--database-password-file`); not used for SQLite.
    pub database_password: Option<Secret>,
    /// Bearer token required for `/api/*`, when set.
    pub auth_token: Option<String>,
    /// Operator tokens (`--operator-tokens-file`); `None`: commands are disabled.
    pub operator_tokens: Option<OperatorTokens>,
    /// `--poll-now-min-interval`.
    pub poll_now_min_interval: Duration,
    /// `--command-publish-timeout`.
    pub command_publish_timeout: Duration,
    /// `--instance-id`: the `collector_id` of published commands.
    pub instance_id: String,
    pub max_page_size: i64,
    pub db_pool_size: u32,
    pub query_timeout: Duration,
    pub collector_live: Duration,
    pub stream_buffer: usize,
    /// Most live-stream clients served at once.
    pub stream_max_clients: usize,
    /// Interval of the live stream's `ping` events.
    pub stream_ping: Duration,
    /// Least age of the cached fleet list before a writer commit makes it reload.
    pub list_cache: Duration,
    /// NATS for the live stream; `None` disables it (the stream answers 503).
    pub nats: Option<NatsArgs>,
    /// Tag keys that label the fleet metrics (`--metrics-tag-labels`).
    pub metrics_tag_labels: Vec<String>,
}

impl Config {
    /// Defaults for `database_url`, serving on 127.0.0.1 port 0, no NATS, no auth, and a fleet
    /// list reloaded after every writer commit (tests, tools).
    pub fn new(database_url: &str) -> Config {
        Config {
            listen: SocketAddr::from(([127, 0, 0, 1], 0)),
            database_url: database_url.to_owned(),
            database_password: None,
            auth_token: None,
            operator_tokens: None,
            poll_now_min_interval: Duration::from_secs(30),
            command_publish_timeout: Duration::from_secs(5),
            instance_id: "sdash-api-test".to_owned(),
            max_page_size: routes::MAX_PAGE,
            db_pool_size: DEFAULT_DB_POOL_SIZE,
            query_timeout: Duration::from_millis(DEFAULT_QUERY_TIMEOUT_MS),
            collector_live: Duration::from_secs(DEFAULT_COLLECTOR_LIVE_SECS),
            stream_buffer: DEFAULT_STREAM_BUFFER,
            stream_max_clients: DEFAULT_STREAM_MAX_CLIENTS,
            stream_ping: Duration::from_secs(DEFAULT_STREAM_PING_SECS),
            list_cache: Duration::ZERO,
            nats: None,
            metrics_tag_labels: Vec::new(),
        }
    }

    /// Builds the config from the command line, reading the token and password files.
    pub fn from_cli(cli: &Cli) -> anyhow::Result<Config> {
        let database_password = match &cli.database_password_file {
            None => None,
            Some(path) if sdash_service::is_postgres_url(&cli.database_url) => Some(
                sdash_service::read_password_file("--database-password-file", path)?,
            ),
            Some(path) => {
                tracing::warn!(
                    file = %path.display(),
                    "--database-password-file is ignored: the database is not PostgreSQL"
                );
                None
            }
        };
        let auth_token = match &cli.auth_token_file {
            None => None,
            Some(path) => {
                let token = std::fs::read_to_string(path).map_err(|e| {
                    anyhow::anyhow!("cannot read --auth-token-file {}: {e}", path.display())
                })?;
                let token = token.trim().to_owned();
                if token.is_empty() {
                    anyhow::bail!("--auth-token-file {} is empty", path.display());
                }
                Some(token)
            }
        };
        let operator_tokens = match &cli.operator_tokens_file {
            None => None,
            Some(path) => Some(OperatorTokens::read(path, auth_token.as_deref())?),
        };
        if let Some(tokens) = &operator_tokens {
            // Names only: tokens are never logged.
            tracing::info!(operators = ?tokens.names().collect::<Vec<_>>(), "operator commands enabled");
        }
        let instance_id = match &cli.instance_id {
            Some(id) if !id.trim().is_empty() && id.len() <= 128 => id.trim().to_owned(),
            Some(_) => anyhow::bail!("--instance-id must have 1 to 128 characters"),
            None => default_instance_id(),
        };
        Ok(Config {
            listen: cli.listen,
            database_url: cli.database_url.clone(),
            database_password,
            auth_token,
            operator_tokens,
            poll_now_min_interval: cli.poll_now_min_interval,
            command_publish_timeout: cli.command_publish_timeout.max(Duration::from_millis(100)),
            instance_id,
            max_page_size: cli.max_page_size.clamp(1, routes::MAX_PAGE),
            db_pool_size: cli.db_pool_size,
            query_timeout: Duration::from_millis(cli.query_timeout_ms),
            collector_live: Duration::from_secs(cli.collector_live_secs.max(1)),
            stream_buffer: cli.stream_buffer.max(1),
            stream_max_clients: cli.stream_max_clients.max(1),
            stream_ping: Duration::from_secs(cli.stream_ping_secs.max(1)),
            list_cache: Duration::from_millis(cli.list_cache_ms),
            nats: (!cli.no_stream).then(|| cli.nats.clone()),
            metrics_tag_labels: cli.metrics_tag_labels.clone(),
        })
    }
}

/// `sdash-api-<hostname>` (the hostname lower-cased, other characters as `-`).
fn default_instance_id() -> String {
    let host = std::fs::read_to_string("/proc/sys/kernel/hostname")
        .ok()
        .or_else(|| std::env::var("HOSTNAME").ok())
        .unwrap_or_default();
    let clean: String = host
        .trim()
        .to_ascii_lowercase()
        .chars()
        .take(64)
        .map(|c| {
            if c.is_ascii_alphanumeric() || c == '-' || c == '_' {
                c
            } else {
                '-'
            }
        })
        .collect();
    if clean.is_empty() {
        "sdash-api".to_owned()
    } else {
        format!("sdash-api-{clean}")
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::{CommandFactory, Parser};

    #[test]
    fn every_flag_has_an_env_twin_and_help() {
        sdash_service::assert_flag_conventions(&Cli::command());
    }

    #[test]
    fn database_password_file() {
        let dir = std::env::temp_dir().join(format!("sdash-api-pw-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap_or_else(|e| panic!("{e}"));
        let file = |name: &str, text: &str| {
            let path = dir.join(name);
            std::fs::write(&path, text).unwrap_or_else(|e| panic!("{e}"));
            path.display().to_string()
        };
        let config = |url: &str, path: &str| {
            let cli = Cli::try_parse_from([
                "sdash-api",
                "--database-url",
                url,
                "--database-password-file",
                path,
            ])
            .unwrap_or_else(|e| panic!("{e}"));
            Config::from_cli(&cli).map_err(|e| format!("{e:#}"))
        };
        let pg = "postgres://sdash@db.example.net/sdash";
        let ok = config(pg, &file("pw", "hunter2 x\r\n")).unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(
            ok.database_password.as_ref().map(Secret::expose),
            Some("hunter2 x")
        );
        assert!(
            !format!("{ok:?}").contains("hunter2"),
            "Debug shows the password"
        );
        let options = db::pg_connect_options(pg, ok.database_password.as_ref())
            .unwrap_or_else(|e| panic!("{e}"));
        // sqlx has no getter for the password; its Debug is the only window into the options.
        assert!(format!("{options:?}").contains("hunter2 x"));

        let err = config(pg, &file("empty", "\n")).err().unwrap_or_default();
        assert!(
            err.contains("--database-password-file") && err.contains("is empty"),
            "{err}"
        );
        let missing = dir.join("missing").display().to_string();
        let err = config(pg, &missing).err().unwrap_or_default();
        assert!(
            err.contains("cannot read") && err.contains(&missing),
            "{err}"
        );
        // SQLite: ignored (with a warning), the file is not read.
        let sqlite = config("sqlite://sdash.db", &missing).unwrap_or_else(|e| panic!("{e}"));
        assert!(sqlite.database_password.is_none());
        let _ = std::fs::remove_dir_all(&dir);
    }

    #[test]
    fn operator_tokens_file_and_command_flags() {
        let dir = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
        let file = |name: &str, text: &str| {
            let path = dir.path().join(name);
            std::fs::write(&path, text).unwrap_or_else(|e| panic!("{e}"));
            path.display().to_string()
        };
        let read = file("read", "read-token-0123456789\n");
        let config = |args: &[&str]| {
            let mut argv = vec!["sdash-api", "--auth-token-file", read.as_str()];
            argv.extend_from_slice(args);
            let cli = Cli::try_parse_from(argv).unwrap_or_else(|e| panic!("{e}"));
            Config::from_cli(&cli).map_err(|e| format!("{e:#}"))
        };
        let ok = file(
            "ops",
            "# who may act\nalice aaaaaaaaaaaaaaaa-1\n\nbob bbbbbbbbbbbbbbbb-2\n",
        );
        let c = config(&[
            "--operator-tokens-file",
            &ok,
            "--poll-now-min-interval",
            "1m",
            "--command-publish-timeout",
            "2s",
            "--instance-id",
            "api-a",
        ])
        .unwrap_or_else(|e| panic!("{e}"));
        let names: Vec<&str> = c
            .operator_tokens
            .as_ref()
            .map(|t| t.names().collect())
            .unwrap_or_default();
        assert_eq!(names, ["alice", "bob"]);
        assert_eq!(c.poll_now_min_interval, Duration::from_secs(60));
        assert_eq!(c.command_publish_timeout, Duration::from_secs(2));
        assert_eq!(c.instance_id, "api-a");
        assert!(
            !format!("{c:?}").contains("aaaaaaaaaaaaaaaa-1"),
            "Debug shows a token"
        );
        let dup = file(
            "dup",
            "alice aaaaaaaaaaaaaaaa-1\nalice bbbbbbbbbbbbbbbb-2\n",
        );
        let err = config(&["--operator-tokens-file", &dup])
            .err()
            .unwrap_or_default();
        assert!(err.contains("line 2") && err.contains("line 1"), "{err}");
        let reader = file("reader", "eve read-token-0123456789\n");
        let err = config(&["--operator-tokens-file", &reader])
            .err()
            .unwrap_or_default();
        assert!(
            err.contains("read token") && !err.contains("read-token-0123456789"),
            "{err}"
        );
        let empty = file("empty", "# nobody\n\n");
        let err = config(&["--operator-tokens-file", &empty])
            .err()
            .unwrap_or_default();
        assert!(err.contains("no `name token` line"), "{err}");
        let defaults = config(&[]).unwrap_or_else(|e| panic!("{e}"));
        assert!(
            defaults.operator_tokens.is_none(),
            "commands disabled by default"
        );
        assert_eq!(defaults.poll_now_min_interval, Duration::from_secs(30));
        assert!(defaults.instance_id.starts_with("sdash-api"));
    }

    #[test]
    fn defaults_work_without_configuration() {
        let cli = Cli::try_parse_from(["sdash-api"]).map_err(|e| e.to_string());
        let cli = cli.unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(cli.listen, SocketAddr::from(([127, 0, 0, 1], 8080)));
        assert_eq!(cli.database_url, "sqlite://sdash.db");
        assert_eq!(cli.nats.url, "nats://127.0.0.1:4222");
        let config = Config::from_cli(&cli).unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(config.max_page_size, 1000);
        assert!(config.auth_token.is_none());
        assert!(Cli::try_parse_from(["sdash-api", "--max-page-size", "5000"]).is_err());
        assert!(Cli::try_parse_from(["sdash-api", "--db-pool-size", "32"]).is_err());
    }
}
