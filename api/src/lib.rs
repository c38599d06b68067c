//! sdash-api: the read-only JSON API over the sdash database, with a live stream (SSE) from the
//! bus, Prometheus metrics and an OpenAPI document. The binary is a thin wrapper around [`run`];
//! tests use [`spawn`] to serve on port 0 and learn the address.
//!
//! Routes are listed once in [`routes::ROUTES`]; requests are dispatched by that table
//! ([`server`]), metrics are labelled by its path patterns and `/api/v1/openapi.json` is generated
//! from it and from the response types ([`openapi`]).
//!
//! - [`config`]: command line and [`Config`]; [`state`]: what the handlers share;
//! - [`auth`]: the read token and the operator tokens (who may act);
//! - [`server`]: the warp filter (auth, parameters, dispatch); [`routes`]: the route table;
//! - [`resources`]: the handlers, queries and response types, by resource;
//! - [`http`]: parameters, errors, caching and CSV helpers; [`db`]: the read-only query layer;
//! - [`fleet`]: the cached fleet list; [`fleet_metrics`]: its Prometheus metrics;
//! - [`stream`]: the live stream; [`dashboard`]: the web UI;
//! - [`metrics`]: the API's own metrics; [`openapi`]: the generated document.

pub mod auth;
pub mod config;
pub mod dashboard;
pub mod db;
pub mod fleet;
pub mod fleet_metrics;
#[doc(hidden)]
pub mod fuzzing;
pub mod http;
pub mod metrics;
pub mod openapi;
pub mod resources;
pub mod routes;
pub mod server;
pub mod state;
pub mod stream;

use std::net::SocketAddr;
use std::sync::Arc;

use prometheus_client::registry::Registry;
use sdash_service::Shutdown;
use warp::Filter;

pub use crate::config::{Cli, Config};
use crate::db::{Db, DbOptions};
use crate::metrics::Metrics;
pub use crate::server::filter;
use crate::state::AppState;
use crate::stream::Hub;

/// Serves until `shutdown` is cancelled.
pub async fn run(config: Config, shutdown: Shutdown) -> anyhow::Result<()> {
    let (addr, task) = spawn_with_shutdown(config, shutdown).await?;
    tracing::info!(%addr, "sdash-api listening");
    task.await
        .map_err(|e| anyhow::anyhow!("server task failed: {e}"))
}

/// Binds `config.listen` (port 0 picks a free port) and serves in a task until the task is aborted.
pub async fn spawn(config: Config) -> anyhow::Result<(SocketAddr, tokio::task::JoinHandle<()>)> {
    spawn_with_shutdown(config, Shutdown::new()).await
}

/// Binds and serves in a task until `shutdown` is cancelled (or the task is aborted); returns the
/// bound address. The live-stream hub runs inside the same task.
pub async fn spawn_with_shutdown(
    config: Config,
    shutdown: Shutdown,
) -> anyhow::Result<(SocketAddr, tokio::task::JoinHandle<()>)> {
    let db = Db::open(
        &config.database_url,
        &DbOptions {
            max_connections: config.db_pool_size,
            query_timeout: config.query_timeout,
            password: config.database_password.clone(),
        },
    )?;
    let metrics_tag_labels = fleet_metrics::TagLabels::new(&config.metrics_tag_labels)
        .map_err(|e| anyhow::anyhow!("--metrics-tag-labels: {e}"))?;
    let mut registry = Registry::default();
    let metrics = Arc::new(Metrics::new(&mut registry));
    let hub = config.nats.as_ref().map(|_| {
        Arc::new(Hub::new(
            config.stream_buffer,
            config.stream_max_clients,
            metrics.clone(),
        ))
    });
    let state = Arc::new(AppState {
        db: db.clone(),
        fleet: fleet::FleetCache::new(config.list_cache),
        history: resources::history_cache::HistoryCache::new(),
        hub: hub.clone(),
        metrics,
        registry: Arc::new(registry),
        auth_token: config.auth_token.clone(),
        operators: config.operator_tokens.clone(),
        commands: resources::commands::Commands::new(
            config.instance_id.clone(),
            config.command_publish_timeout,
            config.poll_now_min_interval,
        ),
        max_page: config.max_page_size.clamp(1, routes::MAX_PAGE),
        live_window_ms: i64::try_from(config.collector_live.as_millis()).unwrap_or(i64::MAX),
        stream_ping: config.stream_ping,
        openapi: serde_json::to_vec_pretty(&openapi::openapi()).unwrap_or_default(),
        fleet_metrics: fleet_metrics::FleetMetrics::new(metrics_tag_labels),
    });
    // The default groupings of the fleet's capacity history, built before the first request.
    let warming = tokio::spawn(resources::history_cache::warm(state.clone()));
    let listener = tokio::net::TcpListener::bind(config.listen)
        .await
        .map_err(|e| anyhow::anyhow!("cannot listen on {}: {e}", config.listen))?;
    let addr = listener.local_addr()?;
    // The dashboard answers `/` and `/assets/...` and rejects everything else, which the API takes.
    let routes = dashboard::routes().or(filter(state)).unify();
    // Close live streams when shutdown starts: graceful shutdown waits for open responses.
    let closing = hub.clone();
    let graceful = async move {
        shutdown.cancelled_owned().await;
        if let Some(hub) = closing {
            hub.close();
        }
    };
    let server = warp::serve(routes)
        .incoming(listener)
        .graceful(graceful)
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
        warming.abort();
        db.close().await;
    });
    Ok((addr, task))
}
