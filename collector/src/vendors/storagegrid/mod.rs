//! NetApp StorageGRID 11 (Grid Management API v4, or v3 when the grid offers only 3).
//!
//! Authentication: `POST /api/v{n}/authorize` with JSON `{username, password, cookie: true,
//! csrfToken: false}` returns the token in the body field `data`; it is sent as
//! `Authorization: Bearer <token>` and kept across polls until it expires (the `max-age` of the
//! login's `Cache-Control` header) or a call answers 401, which triggers one re-login per poll.
//! `DELETE /api/v{n}/authorize` logs out. Every body is the envelope `{status, apiVersion, data}`.
//!
//! Calls per poll:
//!
//! | call | use | essential |
//! |---|---|---|
//! | `GET /api/versions` (once per session) | API version: 4, or 3 when only 3 is offered | no (v4 assumed) |
//! | `GET /api/v4/grid/health` | reachability gate, node counts | yes |
//! | `GET /api/v4/grid/config/product-version` | version | no |
//! | `GET /api/v4/grid/health/topology` (until it answered, at most 3 polls) | the grid's name (the root's `name`); deprecated in v4, so its failure is not even a degradation | no |
//! | `GET /api/v4/grid/node-health` | nodes (components), hardware and site health | no |
//! | `GET /api/v4/grid/alerts?include=active` | open alerts | no |
//! | `GET /api/v4/grid/metric-query?query=storagegrid_storage_utilization_{total_space,data,usable_space}_bytes` | capacity, site pools | no |
//! | `GET /api/v4/grid/metric-query?query=<deep::PERFORMANCE_QUERY>` (one query; after a 400 or 404 not asked again until an outage) | performance: IOPS, latency, bandwidth ([`deep`]); bounded by [`PERFORMANCE_TIMEOUT`] | no, and never a degradation |
//! | `GET /api/v4/private/ilm-pools` (topology polls only; after a 404 not asked again until an outage) | ILM storage pools ([`deep`]) | no, and never a degradation |
//!
//! Topology, site pools, storage pools and performance: see [`deep`].
//!
//! Health rules:
//!
//! * **Nodes** ([`node_component`]): `state` connected → ok, administratively-down → warning,
//!   anything else (unknown, …) → error; node `severity` critical → error, major or minor →
//!   warning. Hardware health = the worst node.
//! * **Sites** ([`site_health`]): a site with no connected node → cluster error; a site with some
//!   nodes not connected → cluster warning.
//! * **Alerts** ([`alerts`]): `labels.severity` critical → critical, major → error, minor →
//!   warning; only `status == active` (or no status). The node is `labels.instance`.
//! * **Capacity** ([`capacity`]): Prometheus vectors summed over the storage nodes; values are
//!   decimal strings in `value[1]`. Total = total_space, used = data bytes, free = usable_space
//!   when that query answered, else total − used. A node that does not report has no row, so
//!   [`missing_storage_nodes`] cross-checks the row count against node-health.
//!
//! Files: this one (calls, session, the adapter), [`model`] (response shapes), [`rules`]
//! (normalization rules).

pub mod deep;
pub mod model;
pub mod rules;
#[cfg(test)]
mod tests;

pub use model::*;
pub use rules::*;

use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use sdash_proto::{Component, Health, Level, Snapshot, Status, Vendor};
use serde::Deserialize;
use serde::de::DeserializeOwned;

use super::bookkeeping::{AlertMemory, PollContext, online_snapshot};
use super::components::worst_health;
use super::session::{Session, session_call};
use super::shell::{Poll, Shell, UserPassword, VendorAdapter};
use super::topology::{
    PERFORMANCE_TIMEOUT, PerfOutcome, TopologyState, management_url, performance_call,
};
use crate::http::{HttpClient, HttpError, Method, Request, Response};

/// Prometheus metric names used for capacity.
pub const METRIC_TOTAL: &str = "storagegrid_storage_utilization_total_space_bytes";
pub const METRIC_DATA: &str = "storagegrid_storage_utilization_data_bytes";
pub const METRIC_USABLE: &str = "storagegrid_storage_utilization_usable_space_bytes";

/// `/api/v{version}{rest}`.
pub fn api_path(version: u32, rest: &str) -> String {
    format!("/api/v{version}{rest}")
}

/// The response envelope `{status, apiVersion, data}`.
#[derive(Debug, Clone, Default, Deserialize)]
pub struct Envelope<T> {
    #[serde(default)]
    pub status: String,
    #[serde(default, rename = "apiVersion")]
    pub api_version: String,
    pub data: T,
}

/// Picks the API version from `GET /api/versions`: 4 when offered, else 3 when offered, else
/// the highest offered (and 4 when the list is empty).
pub fn choose_version(offered: &[u32]) -> u32 {
    if offered.contains(&4) {
        4
    } else if offered.contains(&3) {
        3
    } else {
        offered.iter().copied().max().unwrap_or(4)
    }
}

/// The token lifetime in seconds from a `Cache-Control` header (`max-age=<s>`).
pub fn max_age(cache_control: &str) -> Option<u64> {
    cache_control.split(',').map(str::trim).find_map(|d| {
        d.strip_prefix("max-age=")
            .and_then(|v| v.trim().parse().ok())
    })
}

// ---------------------------------------------------------------------------------------------
// The adapter.
// ---------------------------------------------------------------------------------------------

/// The StorageGRID adapter of one grid (its primary Admin Node).
pub type StorageGridAdapter = Shell<StorageGrid>;

/// StorageGRID's part of the adapter: the token's expiry and the API version, kept across polls.
#[derive(Debug)]
pub struct StorageGrid {
    /// When the token expires (from the login's `Cache-Control: max-age`).
    expires_at: Option<Instant>,
    /// The API version in use, once `GET /api/versions` answered.
    version: Option<u32>,
    /// The grid's name (the root of `GET /grid/health/topology`), once read.
    grid_name: Option<String>,
    /// Attempts left at reading the grid name (the topology call is deprecated in v4 and may go).
    grid_name_tries: u8,
    topology: TopologyState,
    /// The ILM storage pools of the last topology poll that read them.
    ilm_pools: Option<Vec<IlmPool>>,
    /// True after `/private/ilm-pools` answered 404 (until the next outage).
    no_ilm_pools: bool,
    /// True after the performance query was rejected (400, 404; until the next outage).
    no_performance: bool,
}

/// The ILM storage pools (a private call: see [`deep`]).
pub const ILM_POOLS_REST: &str = "/private/ilm-pools";

/// How many polls try to read the grid's name before giving up on it.
const GRID_NAME_TRIES: u8 = 3;

/// The root of `GET /grid/health/topology`: the grid itself.
#[derive(Debug, Default, Deserialize)]
struct TopologyRoot {
    #[serde(default)]
    name: String,
    #[serde(default, rename = "displayName")]
    display_name: String,
}

impl TopologyRoot {
    fn grid_name(self) -> Option<String> {
        [self.name, self.display_name]
            .into_iter()
            .map(|n| n.trim().to_owned())
            .find(|n| !n.is_empty())
    }
}

/// Renew a token this long before the server says it expires.
const EXPIRY_MARGIN: Duration = Duration::from_secs(60);

/// True when a token that expires at `expires_at` should be replaced before a poll at `now`
/// (less than [`EXPIRY_MARGIN`] left). A token without a known lifetime is kept until a 401.
fn token_expiring(expires_at: Option<Instant>, now: Instant) -> bool {
    expires_at.is_some_and(|t| now + EXPIRY_MARGIN >= t)
}

impl VendorAdapter for StorageGrid {
    const VENDOR: Vendor = Vendor::Storagegrid;
    type Credentials = UserPassword;

    async fn poll(&mut self, poll: Poll<'_, UserPassword>) -> Result<Snapshot, HttpError> {
        let ctx = poll.ctx;
        if token_expiring(self.expires_at, Instant::now()) {
            poll.session.clear();
            self.expires_at = None;
        }
        // The API version, once per adapter: 4, or 3 when the grid offers only 3.
        let version = match self.version {
            Some(v) => v,
            None => match api_version(poll.http).await {
                Ok(v) => *self.version.insert(v),
                Err(e) if e.status() == Status::Unreachable => return Err(e),
                Err(e) => {
                    ctx.degrade(&e);
                    4
                }
            },
        };
        let mut api = Api {
            http: poll.http,
            session: poll.session,
            expires_at: &mut self.expires_at,
            credentials: &poll.credentials,
            version,
        };

        let health: GridHealth = api.get(ctx, "/grid/health").await?;
        let product_version = api
            .try_get::<ProductVersion>(ctx, "/grid/config/product-version")
            .await;
        // The grid's name: optional and deprecated in v4, so a failure neither degrades the poll
        // nor is retried on every poll.
        if self.grid_name.is_none() && self.grid_name_tries > 0 {
            self.grid_name_tries -= 1;
            match api.get::<TopologyRoot>(ctx, "/grid/health/topology").await {
                Ok(root) => self.grid_name = root.grid_name(),
                Err(e) => {
                    tracing::debug!(system = %poll.config.id, error = %e, "no grid name from the topology")
                }
            }
        }
        let nodes = api
            .try_get::<Vec<NodeHealth>>(ctx, "/grid/node-health")
            .await;
        let alerts = api
            .try_get::<Vec<GridAlert>>(ctx, "/grid/alerts?include=active")
            .await;
        // Capacity: total and data are needed; usable space is optional.
        let total = api
            .try_get::<MetricData>(ctx, &metric_rest(METRIC_TOTAL))
            .await;
        let data = match total {
            Some(_) => {
                api.try_get::<MetricData>(ctx, &metric_rest(METRIC_DATA))
                    .await
            }
            None => None,
        };
        let usable = match (&total, &data) {
            (Some(_), Some(_)) => match api
                .get::<MetricData>(ctx, &metric_rest(METRIC_USABLE))
                .await
            {
                Ok(u) => Some(u),
                Err(e) => {
                    ctx.push(e.event(Level::Info));
                    None
                }
            },
            _ => None,
        };
        // Performance: one bounded query for every value (see `deep`); a grid that rejected it
        // (400, 404) is not asked again until the next outage.
        let performance = if self.no_performance {
            None
        } else {
            let limit = PERFORMANCE_TIMEOUT.min(poll.config.timeout);
            let endpoint = api_path(version, "/grid/metric-query");
            let path = metric_rest(&promql(deep::PERFORMANCE_QUERY));
            let call = api.get::<MetricData>(ctx, &path);
            let mut scratch = PollContext::new();
            let outcome =
                performance_call(&mut scratch, &endpoint, limit, call, query_rejected).await;
            for event in scratch.into_events() {
                ctx.push(event);
            }
            match outcome {
                PerfOutcome::Value(v) => Some(v),
                PerfOutcome::Unsupported => {
                    self.no_performance = true;
                    None
                }
                PerfOutcome::Failed => None,
            }
        };
        let topology_due = self.topology.due(
            product_version
                .as_ref()
                .map(|v| v.product_version.as_str())
                .filter(|v| !v.is_empty()),
        );
        // Storage pools rarely change: read with the topology, the last ones kept in between.
        if topology_due && !self.no_ilm_pools {
            match api.get::<Vec<IlmPool>>(ctx, ILM_POOLS_REST).await {
                Ok(pools) => self.ilm_pools = Some(pools),
                Err(e) => {
                    let missing = matches!(e, HttpError::Status { status: 404, .. });
                    let mut event = e.event(Level::Info);
                    if missing {
                        self.no_ilm_pools = true;
                        self.ilm_pools = None;
                        event.message = format!(
                            "{}: no storage pools on this grid ({e})",
                            api_path(version, ILM_POOLS_REST)
                        );
                    }
                    ctx.push(event);
                }
            }
        }
        let responses = Responses {
            health,
            product_version,
            grid_name: self.grid_name.clone(),
            nodes,
            alerts,
            total,
            data,
            usable,
            performance,
            ilm_pools: self.ilm_pools.clone(),
            management_url: management_url(poll.http.base_url(), None),
        };
        let mut snapshot = snapshot(responses, version, ctx, poll.alerts);
        if let Some(fresh) = snapshot.topology.take() {
            snapshot.topology = Some(self.topology.resolve(topology_due, fresh).await);
        }
        Ok(snapshot)
    }

    fn after_outage(&mut self) {
        self.version = None;
        self.no_ilm_pools = false;
        self.no_performance = false;
        self.topology.invalidate();
    }

    /// `DELETE /api/v{n}/authorize`.
    fn logout<'a>(&self, http: &'a HttpClient, token: &str) -> Option<Request<'a>> {
        let path = api_path(self.version.unwrap_or(4), "/authorize");
        Some(
            http.request(Method::DELETE, &path)
                .header("authorization", &format!("Bearer {token}")),
        )
    }
}

/// What one poll read from a grid: `/grid/health` (essential), the grid's name (kept from an
/// earlier poll) and each non-essential answer, `None` when its call failed (already recorded).
/// `data` is only asked when `total` was read, `usable` only when both were.
#[derive(Debug)]
pub struct Responses {
    pub health: GridHealth,
    pub product_version: Option<ProductVersion>,
    pub grid_name: Option<String>,
    pub nodes: Option<Vec<NodeHealth>>,
    pub alerts: Option<Vec<GridAlert>>,
    pub total: Option<MetricData>,
    pub data: Option<MetricData>,
    pub usable: Option<MetricData>,
    /// The answer of [`deep::PERFORMANCE_QUERY`].
    pub performance: Option<MetricData>,
    /// The ILM storage pools (`/private/ilm-pools`), kept from the last topology poll.
    pub ilm_pools: Option<Vec<IlmPool>>,
    /// The Grid Manager: the API base URL.
    pub management_url: Option<String>,
}

/// The snapshot from what a poll read with API `version`, by the rules of the module docs;
/// degradations go into `ctx`, a failed alert query falls back on `alerts`. Shared by
/// [`StorageGrid::poll`] and the fuzz target (`crate::fuzzing::storagegrid`).
pub fn snapshot(
    responses: Responses,
    version: u32,
    ctx: &mut PollContext,
    alerts: &mut AlertMemory,
) -> Snapshot {
    let mut snapshot = Snapshot {
        model: Some("StorageGRID".into()),
        name: responses.grid_name,
        ..online_snapshot(Vendor::Storagegrid)
    };
    if responses.health.nodes.unknown > 0 {
        snapshot.hardware = Health::Warning;
    }
    if let Some(v) = responses.product_version {
        snapshot.version = (!v.product_version.is_empty()).then_some(v.product_version);
    }
    let nodes = responses.nodes;
    if let Some(nodes) = &nodes {
        let comps: Vec<Component> = nodes.iter().map(node_component).collect();
        snapshot.hardware = snapshot.hardware.worst(worst_health(&comps));
        snapshot.cluster = site_health(nodes);
        snapshot.components.extend(comps);
    }
    let fresh = responses.alerts.map(|list| rules::alerts(&list));
    snapshot.alerts = alerts.resolve(fresh);
    snapshot.performance = deep::performance(responses.performance.as_ref());
    snapshot.topology = Some(deep::topology(
        nodes.as_deref(),
        snapshot.version.as_deref(),
        responses.management_url,
    ));

    if let (Some(total), Some(data)) = (responses.total, responses.data) {
        if total.result.is_empty() {
            ctx.degrade_with(
                "/grid/metric-query",
                "no storage node reported total space, capacity unknown",
            );
        } else {
            let missing = nodes
                .as_deref()
                .map(|n| missing_storage_nodes(n, &data))
                .unwrap_or_default();
            if !missing.is_empty() {
                ctx.degrade_with(
                    &api_path(version, "/grid/metric-query"),
                    format!(
                        "no capacity data from connected storage nodes {}: totals are low",
                        missing.join(", ")
                    ),
                );
            }
            snapshot.capacity = Some(capacity(&total, &data, responses.usable.as_ref()));
            snapshot.pools = deep::site_pools(&total, &data, responses.usable.as_ref());
            if let Some(pools) = &responses.ilm_pools {
                snapshot.pools.extend(deep::storage_pools(
                    pools,
                    &total,
                    &data,
                    responses.usable.as_ref(),
                ));
            }
        }
    }
    snapshot
}

/// `GET /api/versions` (no auth) and the version to use.
async fn api_version(http: &HttpClient) -> Result<u32, HttpError> {
    offered_version(&http.get("/api/versions").send().await?)
}

/// The version to use from the answer of `GET /api/versions` ([`choose_version`]).
pub fn offered_version(response: &Response) -> Result<u32, HttpError> {
    let offered: Envelope<Vec<u32>> = response.json()?;
    Ok(choose_version(&offered.data))
}

impl Default for StorageGrid {
    fn default() -> StorageGrid {
        StorageGrid {
            expires_at: None,
            version: None,
            grid_name: None,
            grid_name_tries: GRID_NAME_TRIES,
            topology: TopologyState::default(),
            ilm_pools: None,
            no_ilm_pools: false,
            no_performance: false,
        }
    }
}

/// The `data` of an answer's envelope; an envelope whose `status` is `error` is a protocol error.
pub fn envelope_data<T: DeserializeOwned>(response: &Response) -> Result<T, HttpError> {
    let envelope: Envelope<T> = response.json()?;
    if envelope.status == "error" {
        return Err(HttpError::Protocol {
            endpoint: response.endpoint.clone(),
            reason: "envelope status is error".into(),
        });
    }
    Ok(envelope.data)
}

/// True when the grid rejected the performance query itself (an older release without the
/// metric-query call, or one that cannot evaluate it): no performance here, not an error.
fn query_rejected(e: &HttpError) -> bool {
    matches!(
        e,
        HttpError::Status {
            status: 400 | 404,
            ..
        }
    )
}

/// The metric query of one metric, with a server-side timeout of 30 s.
fn metric_rest(metric: &str) -> String {
    format!("/grid/metric-query?query={metric}&timeout=30s")
}

/// A PromQL expression percent-encoded for the query string.
fn promql(query: &str) -> String {
    let mut out = String::new();
    for b in query.bytes() {
        if b.is_ascii_alphanumeric() || b"_-.".contains(&b) {
            out.push(b as char);
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

/// One poll's view of the API: client, session and credentials.
struct Api<'a> {
    http: &'a HttpClient,
    session: &'a mut Session,
    expires_at: &'a mut Option<Instant>,
    credentials: &'a UserPassword,
    version: u32,
}

impl Api<'_> {
    /// `GET /api/v{n}{rest}` with the bearer token (logging in, or renewing once on a 401), and
    /// the envelope's `data`.
    async fn get<T: DeserializeOwned>(
        &mut self,
        ctx: &mut PollContext,
        rest: &str,
    ) -> Result<T, HttpError> {
        let path = api_path(self.version, rest);
        let login_path = api_path(self.version, "/authorize");
        let http = self.http;
        let UserPassword { username, password } = self.credentials;
        // The login's token lifetime (Cache-Control max-age), seen by the plain `extract` closure.
        let max_age_s = AtomicU64::new(0);
        let logins_before = self.session.logins;
        let response = session_call(
            self.session,
            ctx,
            || {
                let body = serde_json::json!({"username": username, "password": password.expose(), "cookie": true, "csrfToken": false});
                Ok(http.post(&login_path).json(&body))
            },
            |resp| {
                if let Some(s) = resp.header("cache-control").and_then(max_age) {
                    max_age_s.store(s, Ordering::Relaxed);
                }
                let envelope: Envelope<String> = resp.json()?;
                if envelope.data.is_empty() {
                    return Err(HttpError::Protocol { endpoint: resp.endpoint.clone(), reason: "login answer has no token in `data`".into() });
                }
                Ok(envelope.data)
            },
            |token| http.get(&path).header("authorization", &format!("Bearer {token}")),
        )
        .await;
        if self.session.logins != logins_before {
            let s = max_age_s.load(Ordering::Relaxed);
            *self.expires_at = (s > 0).then(|| Instant::now() + Duration::from_secs(s));
        }
        envelope_data(&response?)
    }

    /// [`Api::get`] for a non-essential call: a failure degrades the poll and gives `None`.
    async fn try_get<T: DeserializeOwned>(
        &mut self,
        ctx: &mut PollContext,
        rest: &str,
    ) -> Option<T> {
        let result = self.get(ctx, rest).await;
        ctx.keep(result)
    }
}
