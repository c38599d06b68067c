//! sdash-api: the read-only JSON API over the sdash database, with a live stream (SSE) from the
//! bus, Prometheus metrics and an OpenAPI document. The binary is a thin wrapper around [`run`];
//! tests use [`spawn`] to serve on port 0 and learn the address.
//!
//! Routes are listed once in [`routes::ROUTES`]; requests are dispatched by that table, metrics are
//! labelled by its path patterns and `/api/v1/openapi.json` is generated from it.

pub mod dashboard;
pub mod db;
pub mod fleet;
pub mod handlers;
pub mod http;
pub mod metrics;
pub mod routes;
pub mod stream;

use std::convert::Infallible;
use std::future::Future;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, Instant};

use prometheus_client::registry::Registry;
use sdash_service::bus::NatsArgs;
use sdash_service::{LogArgs, Secret};
use warp::Filter;
use warp::http::{HeaderMap, HeaderValue, Method, StatusCode, header};
use warp::reply::{Reply, Response};

use crate::db::{Db, DbOptions};
use crate::http::{ApiError, Params, cached, constant_time_eq};
use crate::metrics::Metrics;
use crate::routes::{RouteId, RouteSpec};
use crate::stream::Hub;

/// Command line of `sdash-api`; every flag has an `SDASH_*` environment twin.
#[derive(Debug, Clone, clap::Parser)]
#[command(
    name = "sdash-api",
    version,
    about = "sdash read-only JSON API, live stream and metrics"
)]
pub struct Cli {
    /// Address to serve HTTP on (loopback by default; put a TLS proxy in front for remote access).
    #[arg(long, env = "SDASH_LISTEN", default_value = "127.0.0.1:8080")]
    pub listen: SocketAddr,
    /// Database to read (`sqlite://PATH` or `postgres://...`); opened read-only.
    #[arg(long, env = "SDASH_DATABASE_URL", default_value = "sqlite://sdash.db")]
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
    /// Largest page size a client may ask for (at most 1000).
    #[arg(long, env = "SDASH_MAX_PAGE_SIZE", default_value_t = 1000,
          value_parser = clap::value_parser!(i64).range(1..=routes::MAX_PAGE))]
    pub max_page_size: i64,
    /// Database connections in the pool (1 to 4).
    #[arg(long, env = "SDASH_DB_POOL_SIZE", default_value_t = 4,
          value_parser = clap::value_parser!(u32).range(1..=4))]
    pub db_pool_size: u32,
    /// Time limit of one database query, in milliseconds.
    #[arg(long, env = "SDASH_QUERY_TIMEOUT_MS", default_value_t = 5000,
          value_parser = clap::value_parser!(u64).range(10..=600_000))]
    pub query_timeout_ms: u64,
    /// A collector counts as live when its last heartbeat is at most this many seconds old.
    #[arg(long, env = "SDASH_COLLECTOR_LIVE_SECS", default_value_t = 45)]
    pub collector_live_secs: u64,
    /// Messages buffered per live-stream client; a client further behind is disconnected.
    #[arg(long, env = "SDASH_STREAM_BUFFER", default_value_t = 256)]
    pub stream_buffer: usize,
    /// Seconds between the `ping` events of the live stream (clients use them to tell a live
    /// connection from a silent, dead one).
    #[arg(long, env = "SDASH_STREAM_PING_SECS", default_value_t = 15,
          value_parser = clap::value_parser!(u64).range(1..=300))]
    pub stream_ping_secs: u64,
    /// The fleet list is reloaded at most this often while the writer keeps committing
    /// (milliseconds; it is reloaded at once after a quiet period).
    #[arg(long, env = "SDASH_LIST_CACHE_MS", default_value_t = 250,
          value_parser = clap::value_parser!(u64).range(0..=10_000))]
    pub list_cache_ms: u64,
    /// Serve no live stream and do not connect to NATS.
    #[arg(long, env = "SDASH_NO_STREAM")]
    pub no_stream: bool,
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
    pub max_page_size: i64,
    pub db_pool_size: u32,
    pub query_timeout: Duration,
    pub collector_live: Duration,
    pub stream_buffer: usize,
    /// Interval of the live stream's `ping` events.
    pub stream_ping: Duration,
    /// Least age of the cached fleet list before a writer commit makes it reload.
    pub list_cache: Duration,
    /// NATS for the live stream; `None` disables it (the stream answers 503).
    pub nats: Option<NatsArgs>,
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
            max_page_size: routes::MAX_PAGE,
            db_pool_size: 4,
            query_timeout: Duration::from_secs(5),
            collector_live: Duration::from_secs(45),
            stream_buffer: 256,
            stream_ping: Duration::from_secs(15),
            list_cache: Duration::ZERO,
            nats: None,
        }
    }

    /// Builds the config from the command line, reading the token and password files.
    pub fn from_cli(cli: &Cli) -> anyhow::Result<Config> {
        let database_password = match &cli.database_password_file {
            None => None,
            Some(path) if db::is_postgres_url(&cli.database_url) => Some(
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
        Ok(Config {
            listen: cli.listen,
            database_url: cli.database_url.clone(),
            database_password,
            auth_token,
            max_page_size: cli.max_page_size.clamp(1, routes::MAX_PAGE),
            db_pool_size: cli.db_pool_size,
            query_timeout: Duration::from_millis(cli.query_timeout_ms),
            collector_live: Duration::from_secs(cli.collector_live_secs.max(1)),
            stream_buffer: cli.stream_buffer.max(1),
            stream_ping: Duration::from_secs(cli.stream_ping_secs.max(1)),
            list_cache: Duration::from_millis(cli.list_cache_ms),
            nats: (!cli.no_stream).then(|| cli.nats.clone()),
        })
    }
}

/// Shared state of the request handlers.
pub struct AppState {
    pub db: Db,
    pub fleet: fleet::FleetCache,
    pub hub: Option<Arc<Hub>>,
    pub metrics: Arc<Metrics>,
    pub registry: Arc<Registry>,
    pub auth_token: Option<String>,
    pub max_page: i64,
    pub live_window_ms: i64,
    /// Interval of the live stream's `ping` events.
    pub stream_ping: Duration,
    openapi: Vec<u8>,
}

/// Serves until `shutdown` resolves.
pub async fn run(
    config: Config,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> anyhow::Result<()> {
    let (addr, task) = spawn_with_shutdown(config, shutdown).await?;
    tracing::info!(%addr, "sdash-api listening");
    task.await
        .map_err(|e| anyhow::anyhow!("server task failed: {e}"))
}

/// Binds `config.listen` (port 0 picks a free port) and serves in a task until the task is aborted.
pub async fn spawn(config: Config) -> anyhow::Result<(SocketAddr, tokio::task::JoinHandle<()>)> {
    spawn_with_shutdown(config, std::future::pending()).await
}

/// Binds and serves in a task until `shutdown` resolves (or the task is aborted); returns the
/// bound address. The live-stream hub runs inside the same task.
pub async fn spawn_with_shutdown(
    config: Config,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> anyhow::Result<(SocketAddr, tokio::task::JoinHandle<()>)> {
    let db = Db::open(
        &config.database_url,
        &DbOptions {
            max_connections: config.db_pool_size,
            query_timeout: config.query_timeout,
            password: config.database_password.clone(),
        },
    )?;
    let mut registry = Registry::default();
    let metrics = Arc::new(Metrics::new(&mut registry));
    let hub = config
        .nats
        .as_ref()
        .map(|_| Arc::new(Hub::new(config.stream_buffer, metrics.clone())));
    let state = Arc::new(AppState {
        db: db.clone(),
        fleet: fleet::FleetCache::new(config.list_cache),
        hub: hub.clone(),
        metrics,
        registry: Arc::new(registry),
        auth_token: config.auth_token.clone(),
        max_page: config.max_page_size.clamp(1, routes::MAX_PAGE),
        live_window_ms: i64::try_from(config.collector_live.as_millis()).unwrap_or(i64::MAX),
        stream_ping: config.stream_ping,
        openapi: serde_json::to_vec_pretty(&routes::openapi()).unwrap_or_default(),
    });
    let listener = tokio::net::TcpListener::bind(config.listen)
        .await
        .map_err(|e| anyhow::anyhow!("cannot listen on {}: {e}", config.listen))?;
    let addr = listener.local_addr()?;
    // The dashboard answers `/` and `/assets/...` and rejects everything else, which the API takes.
    let routes = dashboard::routes().or(filter(state)).unify();
    // Close live streams when shutdown starts: graceful shutdown waits for open responses.
    let closing = hub.clone();
    let shutdown = async move {
        shutdown.await;
        if let Some(hub) = closing {
            hub.close();
        }
    };
    let server = warp::serve(routes)
        .incoming(listener)
        .graceful(shutdown)
        .run();
    let nats = config.nats.clone();
    let task = tokio::spawn(async move {
        match (hub, nats) {
            (Some(hub), Some(args)) => {
                tokio::select! {
                    _ = server => {}
                    _ = hub.run(args) => {}
                }
            }
            _ => server.await,
        }
        db.close().await;
    });
    Ok((addr, task))
}

/// The whole HTTP surface as one warp filter.
pub fn filter(
    state: Arc<AppState>,
) -> impl Filter<Extract = (Response,), Error = Infallible> + Clone {
    let query = warp::query::<Vec<(String, String)>>()
        .map(Some)
        .or(warp::any().map(|| None))
        .unify();
    warp::any()
        .map(move || state.clone())
        .and(warp::method())
        .and(warp::path::full())
        .and(query)
        .and(warp::header::headers_cloned())
        .then(
            |state: Arc<AppState>,
             method: Method,
             path: warp::path::FullPath,
             query,
             headers: HeaderMap| async move {
                let started = Instant::now();
                let (label, mut resp) =
                    handle(&state, &method, path.as_str(), query, &headers).await;
                resp.headers_mut().insert(
                    header::X_CONTENT_TYPE_OPTIONS,
                    HeaderValue::from_static("nosniff"),
                );
                state.metrics.observe(
                    label,
                    resp.status().as_u16(),
                    started.elapsed().as_secs_f64(),
                );
                resp
            },
        )
}

async fn handle(
    state: &Arc<AppState>,
    method: &Method,
    path: &str,
    query: Option<Vec<(String, String)>>,
    headers: &HeaderMap,
) -> (&'static str, Response) {
    let Some((route, id)) = routes::match_path(path) else {
        return (
            "unmatched",
            ApiError::NotFound(format!("no route for {path}")).into_response(),
        );
    };
    let result = async {
        if method != Method::GET && method != Method::HEAD {
            return Err(ApiError::MethodNotAllowed);
        }
        if route.protected()
            && let Some(token) = &state.auth_token
            && !authorized(route, headers, query.as_deref(), token)
        {
            return Err(ApiError::Unauthorized);
        }
        let mut pairs = query.ok_or_else(|| ApiError::bad("malformed query string"))?;
        if route.query_token() {
            // Used (or ignored, without a server token) above; never seen by the handlers.
            pairs.retain(|(k, _)| k != routes::ACCESS_TOKEN_PARAM);
        }
        let params = Params::new(pairs, route.params)?;
        dispatch(state, route, &params, id.as_deref(), headers).await
    }
    .await;
    (route.path, result.unwrap_or_else(ApiError::into_response))
}

/// Whether a request presents the server's token: as `Authorization: Bearer <token>` on every
/// protected route, or as `?access_token=<token>` on the routes that allow it
/// ([`RouteSpec::query_token`]: the live stream and the CSV exports). Both comparisons take
/// constant time; the token is never logged (the API logs no request URLs).
fn authorized(
    route: &RouteSpec,
    headers: &HeaderMap,
    query: Option<&[(String, String)]>,
    token: &str,
) -> bool {
    let bearer = headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| {
            v.strip_prefix("Bearer ")
                .or_else(|| v.strip_prefix("bearer "))
        })
        .map(str::trim);
    let by_header = bearer.is_some_and(|t| constant_time_eq(t.as_bytes(), token.as_bytes()));
    let by_query = route.query_token()
        && query
            .and_then(|q| q.iter().find(|(k, _)| k == routes::ACCESS_TOKEN_PARAM))
            .is_some_and(|(_, v)| constant_time_eq(v.as_bytes(), token.as_bytes()));
    by_header || by_query
}

async fn dispatch(
    st: &Arc<AppState>,
    route: &RouteSpec,
    p: &Params,
    id: Option<&str>,
    h: &HeaderMap,
) -> Result<Response, ApiError> {
    match route.id {
        RouteId::Systems => handlers::systems(st, p, h).await,
        RouteId::System => handlers::system(st, id, h).await,
        RouteId::SystemCapacity => handlers::capacity(st, p, id, h).await,
        RouteId::SystemForecast => handlers::forecast(st, p, id, h).await,
        RouteId::SystemEvents => handlers::events(st, p, id, h).await,
        RouteId::CapacitySummary => handlers::capacity_summary(st, p, h).await,
        RouteId::CapacityHistory => handlers::capacity_history(st, p, h).await,
        RouteId::Alerts => handlers::alerts(st, p, h).await,
        RouteId::Events => handlers::events(st, p, None, h).await,
        RouteId::Collectors => handlers::collectors(st, h).await,
        RouteId::Status => handlers::status(st, h).await,
        RouteId::ExportCapacity => handlers::export_capacity(st, h).await,
        RouteId::ExportCapacityHistory => handlers::export_capacity_history(st, p, h).await,
        RouteId::Stream => live_stream(st, p),
        RouteId::OpenApi => Ok(cached(
            h,
            "application/json",
            st.openapi.clone(),
            "public, max-age=300",
        )),
        RouteId::Healthz => Ok(text(StatusCode::OK, "ok")),
        RouteId::Readyz => Ok(if st.db.ping().await {
            text(StatusCode::OK, "ready")
        } else {
            text(StatusCode::SERVICE_UNAVAILABLE, "database not reachable")
        }),
        RouteId::Metrics => {
            let mut resp = Response::new(sdash_service::render_metrics(&st.registry).into());
            resp.headers_mut().insert(
                header::CONTENT_TYPE,
                HeaderValue::from_static(
                    "application/openmetrics-text; version=1.0.0; charset=utf-8",
                ),
            );
            Ok(resp)
        }
    }
}

fn text(status: StatusCode, body: &'static str) -> Response {
    let mut resp = Response::new(body.into());
    *resp.status_mut() = status;
    resp.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("text/plain; charset=utf-8"),
    );
    resp.headers_mut()
        .insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    resp
}

fn live_stream(st: &Arc<AppState>, p: &Params) -> Result<Response, ApiError> {
    let system = p.system_id("system")?;
    let hub = match &st.hub {
        Some(hub) if hub.available() => hub.clone(),
        Some(_) => {
            return Err(ApiError::Unavailable(
                "live stream unavailable: NATS is not connected".into(),
            ));
        }
        None => {
            return Err(ApiError::Unavailable(
                "live stream disabled on this server".into(),
            ));
        }
    };
    let events = hub.register(system).into_events(st.stream_ping);
    let mut resp = warp::sse::reply(events).into_response();
    resp.headers_mut()
        .insert(header::CACHE_CONTROL, HeaderValue::from_static("no-cache"));
    resp.headers_mut()
        .insert("x-accel-buffering", HeaderValue::from_static("no"));
    Ok(resp)
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::{CommandFactory, Parser};

    #[test]
    fn every_flag_has_an_env_twin_and_help() {
        let broken = sdash_service::flags_breaking_conventions(&Cli::command());
        assert!(broken.is_empty(), "{broken:?}");
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
