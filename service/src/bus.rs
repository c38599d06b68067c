//! Connecting to NATS and setting up the `SDASH` stream. Every service takes the same
//! [`NatsArgs`] so authentication and TLS are configured one way everywhere.

use std::path::PathBuf;
use std::time::Duration;

use async_nats::jetstream::{self, stream};

use sdash_proto::subjects::{DUPLICATE_WINDOW, STREAM, STREAM_SUBJECTS};

/// How to reach NATS. Each flag has an `SDASH_*` environment twin; secrets come from files.
#[derive(Debug, Clone, clap::Args)]
pub struct NatsArgs {
    /// NATS server URL(s), comma separated (nats:// or tls://): the servers of a cluster; the
    /// client connects to any that answers and moves to another when it goes away.
    #[arg(
        long = "nats-url",
        env = "SDASH_NATS_URL",
        default_value = "nats://127.0.0.1:4222"
    )]
    pub url: String,
    /// User name for NATS user/password authentication (with --nats-password-file).
    #[arg(long = "nats-user", env = "SDASH_NATS_USER")]
    pub user: Option<String>,
    /// File holding the NATS password.
    #[arg(long = "nats-password-file", env = "SDASH_NATS_PASSWORD_FILE")]
    pub password_file: Option<PathBuf>,
    /// File holding a NATS authentication token.
    #[arg(long = "nats-token-file", env = "SDASH_NATS_TOKEN_FILE")]
    pub token_file: Option<PathBuf>,
    /// NATS credentials file (JWT and nkey seed) for decentralized authentication.
    #[arg(long = "nats-creds-file", env = "SDASH_NATS_CREDS_FILE")]
    pub creds_file: Option<PathBuf>,
    /// PEM file with the CA that signed the NATS server certificate; turns TLS on.
    #[arg(long = "nats-ca-file", env = "SDASH_NATS_CA_FILE")]
    pub ca_file: Option<PathBuf>,
    /// PEM client certificate for NATS mutual TLS (with --nats-client-key).
    #[arg(long = "nats-client-cert", env = "SDASH_NATS_CLIENT_CERT")]
    pub client_cert: Option<PathBuf>,
    /// PEM private key of the NATS client certificate.
    #[arg(long = "nats-client-key", env = "SDASH_NATS_CLIENT_KEY")]
    pub client_key: Option<PathBuf>,
}

impl NatsArgs {
    /// Plain settings for a server at `url` (tests, tools).
    pub fn plain(url: &str) -> NatsArgs {
        NatsArgs {
            url: url.to_owned(),
            user: None,
            password_file: None,
            token_file: None,
            creds_file: None,
            ca_file: None,
            client_cert: None,
            client_key: None,
        }
    }
}

/// Limits of the `SDASH` stream (limits retention: the oldest messages go when one is hit).
#[derive(Debug, Clone, clap::Args)]
pub struct StreamArgs {
    /// Maximum age of messages in the SDASH stream, in hours.
    #[arg(
        long = "stream-max-age-hours",
        env = "SDASH_STREAM_MAX_AGE_HOURS",
        default_value_t = 168
    )]
    pub max_age_hours: u64,
    /// Maximum size of the SDASH stream, in MiB.
    #[arg(
        long = "stream-max-mib",
        env = "SDASH_STREAM_MAX_MIB",
        default_value_t = 10240
    )]
    pub max_mib: u64,
    /// Stream replicas (1 for a single server, 3 for a JetStream cluster).
    #[arg(
        long = "stream-replicas",
        env = "SDASH_STREAM_REPLICAS",
        default_value_t = 1
    )]
    pub replicas: usize,
}

impl Default for StreamArgs {
    fn default() -> Self {
        StreamArgs {
            max_age_hours: 168,
            max_mib: 10240,
            replicas: 1,
        }
    }
}

#[derive(Debug, thiserror::Error)]
pub enum BusError {
    #[error("cannot read {what} file {path}: {source}")]
    Secret {
        what: &'static str,
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("--nats-client-cert and --nats-client-key go together")]
    ClientCertPair,
    /// Position (from 1) in `--nats-url`, not the text: a URL may carry a password.
    #[error("NATS server URL number {position} in --nats-url is invalid: {source}")]
    Url {
        position: usize,
        source: std::io::Error,
    },
    #[error("--nats-url names no server")]
    NoUrl,
    #[error("cannot connect to NATS at {url}: {source}")]
    Connect {
        url: String,
        source: async_nats::ConnectError,
    },
    #[error("cannot set up the {STREAM} stream: {0}")]
    Stream(String),
}

fn read_secret(what: &'static str, path: &PathBuf) -> Result<String, BusError> {
    std::fs::read_to_string(path)
        .map(|s| s.trim().to_owned())
        .map_err(|source| BusError::Secret {
            what,
            path: path.clone(),
            source,
        })
}

/// The servers of `--nats-url`: comma separated, blanks around commas ignored. async-nats
/// reads a single string as one URL, so the list is split here.
pub fn server_addrs(urls: &str) -> Result<Vec<async_nats::ServerAddr>, BusError> {
    let addrs = urls
        .split(',')
        .map(str::trim)
        .filter(|url| !url.is_empty())
        .enumerate()
        .map(|(i, url)| {
            url.parse::<async_nats::ServerAddr>()
                .map_err(|source| BusError::Url {
                    position: i + 1,
                    source,
                })
        })
        .collect::<Result<Vec<_>, _>>()?;
    if addrs.is_empty() {
        return Err(BusError::NoUrl);
    }
    Ok(addrs)
}

/// Connects to NATS with the configured authentication and TLS, to any of the servers of
/// `--nats-url` (and those the cluster announces). The client reconnects by itself forever,
/// trying every server; `retry_initial` also keeps trying when none answers at start.
pub async fn connect(
    args: &NatsArgs,
    name: &str,
    retry_initial: bool,
) -> Result<async_nats::Client, BusError> {
    let servers = server_addrs(&args.url)?;
    let mut options = async_nats::ConnectOptions::new()
        .name(name)
        .max_reconnects(None)
        .connection_timeout(Duration::from_secs(5))
        .reconnect_delay_callback(|attempt| {
            Duration::from_millis((100 * attempt as u64).min(2000))
        });
    if let Some(path) = &args.creds_file {
        options = options
            .credentials_file(path)
            .await
            .map_err(|source| BusError::Secret {
                what: "NATS credentials",
                path: path.clone(),
                source,
            })?;
    }
    if let Some(user) = &args.user {
        let password = match &args.password_file {
            Some(path) => read_secret("NATS password", path)?,
            None => String::new(),
        };
        options = options.user_and_password(user.clone(), password);
    }
    if let Some(path) = &args.token_file {
        options = options.token(read_secret("NATS token", path)?);
    }
    if let Some(ca) = &args.ca_file {
        options = options.add_root_certificates(ca.clone()).require_tls(true);
    }
    match (&args.client_cert, &args.client_key) {
        (Some(cert), Some(key)) => {
            options = options.add_client_certificate(cert.clone(), key.clone())
        }
        (None, None) => {}
        _ => return Err(BusError::ClientCertPair),
    }
    if retry_initial {
        options = options.retry_on_initial_connect();
    }
    options
        .connect(servers)
        .await
        .map_err(|source| BusError::Connect {
            url: args.url.clone(),
            source,
        })
}

/// The stream configuration the contract fixes.
pub fn stream_config(limits: &StreamArgs) -> stream::Config {
    stream::Config {
        name: STREAM.to_owned(),
        subjects: vec![STREAM_SUBJECTS.to_owned()],
        storage: stream::StorageType::File,
        retention: stream::RetentionPolicy::Limits,
        discard: stream::DiscardPolicy::Old,
        max_age: Duration::from_secs(limits.max_age_hours * 3600),
        max_bytes: i64::try_from(limits.max_mib.saturating_mul(1024 * 1024)).unwrap_or(i64::MAX),
        duplicate_window: DUPLICATE_WINDOW,
        num_replicas: limits.replicas.max(1),
        description: Some("sdash v1: systems, snapshots, events, collector heartbeats".to_owned()),
        ..Default::default()
    }
}

/// Creates the `SDASH` stream, or brings an existing one's limits in line; safe to call from
/// every service at start, concurrently.
pub async fn ensure_stream(
    js: &jetstream::Context,
    limits: &StreamArgs,
) -> Result<stream::Stream, BusError> {
    let wanted = stream_config(limits);
    for attempt in 0..5 {
        match js.get_stream(STREAM).await {
            Ok(mut existing) => {
                let have = existing
                    .info()
                    .await
                    .map_err(|e| BusError::Stream(e.to_string()))?
                    .config
                    .clone();
                // Replicas are only ever raised: a service left at the default of 1 must not
                // take a cluster's R3 stream down to one copy when it adjusts the limits.
                let mut wanted = wanted.clone();
                wanted.num_replicas = wanted.num_replicas.max(have.num_replicas);
                if have.max_age != wanted.max_age
                    || have.max_bytes != wanted.max_bytes
                    || have.duplicate_window != wanted.duplicate_window
                    || have.subjects != wanted.subjects
                    || have.num_replicas != wanted.num_replicas
                {
                    js.update_stream(&wanted)
                        .await
                        .map_err(|e| BusError::Stream(e.to_string()))?;
                }
                return Ok(existing);
            }
            Err(_) => match js.create_stream(wanted.clone()).await {
                Ok(stream) => return Ok(stream),
                // Another service may have created it between our get and create: look again.
                Err(e) if attempt < 4 => {
                    tracing::debug!(error = %e, "creating the stream failed, retrying");
                    tokio::time::sleep(Duration::from_millis(200)).await;
                }
                Err(e) => return Err(BusError::Stream(e.to_string())),
            },
        }
    }
    Err(BusError::Stream("gave up after 5 attempts".into()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn nats_url_lists_every_server() {
        let addrs = server_addrs("nats://127.0.0.1:4222, tls://nats-2:4222,,127.0.0.1:4333")
            .unwrap_or_default();
        let urls: Vec<String> = addrs
            .iter()
            .map(|a| a.clone().into_inner().to_string())
            .collect();
        assert_eq!(
            urls,
            [
                "nats://127.0.0.1:4222",
                "tls://nats-2:4222",
                "nats://127.0.0.1:4333"
            ]
        );
        assert!(matches!(server_addrs(" , "), Err(BusError::NoUrl)));
        let bad = server_addrs("nats://a:1,http://user:secret@b:2");
        assert!(matches!(bad, Err(BusError::Url { position: 2, .. })));
        let message = bad.err().map(|e| e.to_string()).unwrap_or_default();
        assert!(!message.contains("secret"), "{message}");
    }
}
