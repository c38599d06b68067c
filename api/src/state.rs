//! The state every request handler shares.

use std::sync::Arc;
use std::time::Duration;

use prometheus_client::registry::Registry;

use crate::db::Db;
use crate::fleet::FleetCache;
use crate::metrics::Metrics;
use crate::stream::Hub;

/// Shared state of the request handlers.
pub struct AppState {
    pub db: Db,
    pub fleet: FleetCache,
    /// The fleet's summed daily capacity per grouping ([`crate::resources::history_cache`]).
    pub history: crate::resources::history_cache::HistoryCache,
    pub hub: Option<Arc<Hub>>,
    pub metrics: Arc<Metrics>,
    pub registry: Arc<Registry>,
    pub auth_token: Option<String>,
    /// Operator tokens (`--operator-tokens-file`); `None`: commands are disabled.
    pub operators: Option<crate::auth::OperatorTokens>,
    /// The command routes' publisher settings and poll-now rate limit.
    pub commands: crate::resources::commands::Commands,
    pub max_page: i64,
    pub live_window_ms: i64,
    /// Interval of the live stream's `ping` events.
    pub stream_ping: Duration,
    /// The text of `/metrics/fleet`, kept up to date with the fleet cache.
    pub fleet_metrics: crate::fleet_metrics::FleetMetrics,
    /// The OpenAPI document, rendered once.
    pub openapi: Vec<u8>,
}
