//! Plumbing every sdash service shares, kept out of `sdash-proto` so the bus contract stays
//! free of CLI, HTTP and logging crates:
//! - CLI conventions ([`flags_breaking_conventions`]) and [`LogArgs`] / [`init_tracing`];
//! - one shutdown mechanism, [`Shutdown`] (a cancellation token), fired by [`shutdown_on_signal`];
//! - the admin server (`/healthz`, `/readyz`, `/metrics`), [`serve_admin`];
//! - NATS connection and `SDASH` stream setup, [`bus`];
//! - one duration syntax, [`parse_duration`]; database URL detection, [`is_postgres_url`];
//! - PostgreSQL URLs naming several servers, [`postgres`] (connecting: the `postgres` feature);
//! - secrets read from files, [`Secret`] / [`read_password_file`].

pub mod bus;
mod duration;
pub mod postgres;

pub use duration::{DurationError, parse_duration};
/// The one shutdown mechanism of every service: cancel it to stop; clones observe the same
/// cancellation, and `child_token()` stops a part without stopping the whole.
pub use tokio_util::sync::CancellationToken as Shutdown;

use std::fmt;
use std::future::Future;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use prometheus_client::registry::Registry;
use warp::Filter;

/// Log output settings, shared by every binary.
#[derive(Debug, Clone, clap::Args)]
pub struct LogArgs {
    /// Log format: `text` for people, `json` for log pipelines.
    #[arg(long = "log-format", env = "SDASH_LOG_FORMAT", default_value = "text", value_parser = ["text", "json"])]
    pub format: String,
    /// Log filter in tracing's EnvFilter syntax, e.g. `info` or `info,sdash_writer=debug`.
    #[arg(
        long = "log-level",
        env = "SDASH_LOG",
        default_value = "info,async_nats=warn"
    )]
    pub level: String,
}

/// Sets up logging once per process; logs go to stderr.
pub fn init_tracing(args: &LogArgs) {
    let filter = tracing_subscriber::EnvFilter::try_new(&args.level)
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info"));
    let ansi = std::io::IsTerminal::is_terminal(&std::io::stderr());
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .with_ansi(ansi);
    let result = if args.format == "json" {
        builder.json().flatten_event(true).try_init()
    } else {
        builder.try_init()
    };
    // A second init (tests calling entry points repeatedly) keeps the first subscriber.
    drop(result);
}

/// A [`Shutdown`] that is cancelled on the first SIGTERM or SIGINT (Ctrl-C).
pub fn shutdown_on_signal() -> Shutdown {
    let shutdown = Shutdown::new();
    let fire = shutdown.clone();
    tokio::spawn(async move {
        shutdown_signal().await;
        fire.cancel();
    });
    shutdown
}

/// Resolves on the first SIGTERM or SIGINT (Ctrl-C).
pub async fn shutdown_signal() {
    let ctrl_c = tokio::signal::ctrl_c();
    #[cfg(unix)]
    {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut term) => {
                tokio::select! {
                    _ = ctrl_c => {}
                    _ = term.recv() => {}
                }
            }
            Err(_) => {
                let _ = ctrl_c.await;
            }
        }
    }
    #[cfg(not(unix))]
    {
        let _ = ctrl_c.await;
    }
    tracing::info!("shutdown requested");
}

/// Panics with the flags of `command` that break the services' CLI conventions (see
/// [`flags_breaking_conventions`]); the one test every service has.
#[track_caller]
pub fn assert_flag_conventions(command: &clap::Command) {
    let broken = flags_breaking_conventions(command);
    assert!(broken.is_empty(), "{broken:?}");
}

/// The flags of `command` and its subcommands that break the services' rule "every flag has
/// help text and an `SDASH_*` environment twin"; each service's tests assert there are none.
pub fn flags_breaking_conventions(command: &clap::Command) -> Vec<String> {
    let nested = command
        .get_subcommands()
        .filter(|c| c.get_name() != "help")
        .flat_map(flags_breaking_conventions);
    command
        .get_arguments()
        .filter(|a| !matches!(a.get_id().as_str(), "help" | "version"))
        .filter_map(|a| {
            let id = a.get_id().as_str();
            let env = a.get_env().and_then(|e| e.to_str()).unwrap_or("");
            if !env.starts_with("SDASH_") {
                Some(format!("--{id} has no SDASH_ environment variable"))
            } else if a.get_help().is_none() {
                Some(format!("--{id} has no help text"))
            } else {
                None
            }
        })
        .chain(nested)
        .collect()
}

/// Renders a registry in the Prometheus text exposition format.
pub fn render_metrics(registry: &Registry) -> String {
    let mut out = String::new();
    if prometheus_client::encoding::text::encode(&mut out, registry).is_err() {
        out.clear();
    }
    out
}

/// Readiness check used by `/readyz`.
pub type ReadyCheck = Arc<dyn Fn() -> bool + Send + Sync>;

/// Binds the admin server (`/healthz`, `/readyz`, `/metrics`) and serves it until `shutdown`.
/// Returns the bound address (useful with port 0) and the serving task.
pub async fn serve_admin(
    listen: SocketAddr,
    registry: Arc<Registry>,
    ready: ReadyCheck,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> std::io::Result<(SocketAddr, tokio::task::JoinHandle<()>)> {
    let listener = tokio::net::TcpListener::bind(listen).await?;
    let addr = listener.local_addr()?;
    let healthz = warp::path!("healthz").and(warp::get()).map(|| "ok");
    let readyz = warp::path!("readyz").and(warp::get()).map(move || {
        if ready() {
            warp::reply::with_status("ready", warp::http::StatusCode::OK)
        } else {
            warp::reply::with_status("not ready", warp::http::StatusCode::SERVICE_UNAVAILABLE)
        }
    });
    let metrics = warp::path!("metrics").and(warp::get()).map(move || {
        warp::reply::with_header(
            render_metrics(&registry),
            "content-type",
            "application/openmetrics-text; version=1.0.0; charset=utf-8",
        )
    });
    let routes = healthz.or(readyz).or(metrics);
    let task = tokio::spawn(
        warp::serve(routes)
            .incoming(listener)
            .graceful(shutdown)
            .run(),
    );
    Ok((addr, task))
}

/// Whether `url` names a PostgreSQL database (`postgres:` or `postgresql:`); anything else is
/// taken as SQLite.
pub fn is_postgres_url(url: &str) -> bool {
    url.starts_with("postgres:") || url.starts_with("postgresql:")
}

/// The flag of every service's admin server (`/healthz`, `/readyz`, `/metrics`). The collector
/// once called it `--metrics-listen`; that spelling stays accepted as a hidden alias.
pub const ADMIN_LISTEN_FLAG: &str = "admin-listen";
/// The hidden, older spelling of [`ADMIN_LISTEN_FLAG`].
pub const ADMIN_LISTEN_ALIAS: &str = "metrics-listen";

/// A secret read from a file (a database password, ...). Its `Debug` never shows the value; use
/// [`Secret::expose`] only where the value is handed to the library that needs it.
#[derive(Clone, PartialEq, Eq)]
pub struct Secret(String);

impl Secret {
    pub fn new(value: impl Into<String>) -> Secret {
        Secret(value.into())
    }

    /// The secret value itself: never log or format it.
    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Secret(<redacted>)")
    }
}

/// Why a secret file could not be used. The messages name the flag and the file, never its
/// content.
#[derive(Debug, thiserror::Error)]
pub enum SecretFileError {
    #[error("cannot read {flag} {}: {source}", path.display())]
    Read {
        flag: &'static str,
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("{flag} {} is empty", path.display())]
    Empty { flag: &'static str, path: PathBuf },
    #[error("{flag} {} contains a NUL byte", path.display())]
    Nul { flag: &'static str, path: PathBuf },
}

/// Reads a password file given by `flag` (e.g. `--database-password-file`): the whole file with
/// its trailing line break(s) removed (other whitespace is part of the password). An empty file
/// is an error, so a missing secret is noticed at start rather than as a failed login.
pub fn read_password_file(flag: &'static str, path: &Path) -> Result<Secret, SecretFileError> {
    let text = std::fs::read_to_string(path).map_err(|source| SecretFileError::Read {
        flag,
        path: path.to_owned(),
        source,
    })?;
    let password = text.trim_end_matches(['\n', '\r']);
    if password.is_empty() {
        return Err(SecretFileError::Empty {
            flag,
            path: path.to_owned(),
        });
    }
    if password.contains('\0') {
        return Err(SecretFileError::Nul {
            flag,
            path: path.to_owned(),
        });
    }
    Ok(Secret(password.to_owned()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn postgres_urls() {
        assert!(is_postgres_url("postgres://u@h/db"));
        assert!(is_postgres_url("postgresql://u@h/db"));
        assert!(!is_postgres_url("sqlite:///tmp/x.db"));
        assert!(!is_postgres_url("/var/lib/sdash/sdash.db"));
    }

    #[test]
    fn password_files() {
        let dir = std::env::temp_dir().join(format!("sdash-secret-{}", std::process::id()));
        std::fs::create_dir_all(&dir).expect("temp dir");
        let write = |name: &str, text: &str| {
            let path = dir.join(name);
            std::fs::write(&path, text).expect("write");
            path
        };
        let flag = "--database-password-file";
        let ok = write("ok", "s3cret pass\r\n");
        let secret = read_password_file(flag, &ok).expect("read");
        assert_eq!(secret.expose(), "s3cret pass");
        assert!(!format!("{secret:?}").contains("s3cret"));
        assert_eq!(
            read_password_file(flag, &write("bare", "x"))
                .map(|s| s.expose().to_owned())
                .ok(),
            Some("x".to_owned())
        );
        for (name, text) in [("empty", ""), ("newline", "\n"), ("crlf", "\r\n\n")] {
            let err = read_password_file(flag, &write(name, text)).expect_err(name);
            assert!(
                matches!(err, SecretFileError::Empty { .. }),
                "{name}: {err}"
            );
            assert!(
                err.to_string().contains("--database-password-file"),
                "{err}"
            );
            assert!(err.to_string().contains("is empty"), "{err}");
        }
        let err = read_password_file(flag, &dir.join("missing")).expect_err("missing");
        assert!(matches!(err, SecretFileError::Read { .. }), "{err}");
        assert!(err.to_string().contains("missing"), "{err}");
        let err = read_password_file(flag, &write("nul", "a\0b-hidden")).expect_err("nul");
        assert!(!err.to_string().contains("hidden"), "{err}");
        let _ = std::fs::remove_dir_all(&dir);
    }
}
