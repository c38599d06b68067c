//! Plumbing every sdash service shares: structured logging, shutdown on SIGTERM/SIGINT, and the
//! small admin HTTP server (`/healthz`, `/readyz`, `/metrics`).

use std::future::Future;
use std::net::SocketAddr;
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
