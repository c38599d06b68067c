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
//! | `GET /api/v4/grid/metric-query?query=storagegrid_storage_utilization_{total_space,data,usable_space}_bytes` | capacity | no |
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

use std::collections::BTreeMap;

use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use sdash_proto::{Alert, Capacity, Component, Health, Level, Severity, Snapshot, Status, Vendor};
use serde::Deserialize;
use serde::de::DeserializeOwned;

use super::PollOutput;
use crate::http::{
    AlertMemory, HttpClient, HttpError, Method, PollContext, Session, SetupError, StatusTracker,
    session_call, worst_health,
};
use crate::inventory::{Credentials, Secret, SystemConfig};
use time::OffsetDateTime;
use time::format_description::well_known::Rfc3339;

/// Prometheus metric names used for capacity.
pub const METRIC_TOTAL: &str = "storagegrid_storage_utilization_total_space_bytes";
pub const METRIC_DATA: &str = "storagegrid_storage_utilization_data_bytes";
pub const METRIC_USABLE: &str = "storagegrid_storage_utilization_usable_space_bytes";

/// `/api/v{version}{rest}`.
pub fn api_path(version: u32, rest: &str) -> String {
    format!("/api/v{version}{rest}")
}

/// The metric-query path for one metric (with the server-side timeout the app uses).
pub fn metric_path(version: u32, metric: &str) -> String {
    api_path(
        version,
        &format!("/grid/metric-query?query={metric}&timeout=30s"),
    )
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

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(default)]
pub struct GridHealth {
    pub nodes: NodeCounts,
}

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(default)]
pub struct NodeCounts {
    pub connected: u64,
    #[serde(rename = "administratively-down")]
    pub administratively_down: u64,
    pub unknown: u64,
}

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(default)]
pub struct ProductVersion {
    #[serde(rename = "productVersion")]
    pub product_version: String,
}

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(default)]
pub struct NodeHealth {
    pub id: String,
    pub name: String,
    #[serde(rename = "siteName")]
    pub site_name: String,
    pub severity: String,
    pub state: String,
    #[serde(rename = "type")]
    pub node_type: String,
}

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(default)]
pub struct GridAlert {
    pub id: String,
    pub name: String,
    pub labels: AlertLabels,
    pub annotations: AlertAnnotations,
    #[serde(rename = "startsAt")]
    pub starts_at: String,
    pub status: String,
}

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(default)]
pub struct AlertLabels {
    pub severity: String,
    pub instance: String,
}

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(default)]
pub struct AlertAnnotations {
    pub summary: String,
    pub description: String,
}

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(default)]
pub struct MetricData {
    pub result: Vec<MetricRow>,
}

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(default)]
pub struct MetricRow {
    pub metric: BTreeMap<String, String>,
    pub value: Vec<serde_json::Value>,
}

/// The StorageGRID error envelope's readable reason (`message.text`).
pub fn error_reason(body: &[u8]) -> Option<String> {
    #[derive(Deserialize, Default)]
    #[serde(default)]
    struct Err {
        code: Option<i64>,
        message: Msg,
    }
    #[derive(Deserialize, Default)]
    #[serde(default)]
    struct Msg {
        text: String,
    }
    let e: Err = serde_json::from_slice(body).ok()?;
    if e.message.text.is_empty() {
        return None;
    }
    Some(match e.code {
        Some(c) => format!("{c}: {}", e.message.text),
        None => e.message.text,
    })
}

/// One node → a `node` component (see the module docs).
pub fn node_component(node: &NodeHealth) -> Component {
    let by_state = match node.state.as_str() {
        "connected" => Health::Ok,
        "administratively-down" => Health::Warning,
        _ => Health::Error,
    };
    let by_severity = match node.severity.as_str() {
        "critical" => Health::Error,
        "major" | "minor" => Health::Warning,
        _ => Health::Ok,
    };
    Component {
        kind: "node".into(),
        name: node.name.clone(),
        status: by_state.worst(by_severity),
        detail: Some(format!(
            "{} at {}, state {}, severity {}",
            node.node_type,
            node.site_name,
            if node.state.is_empty() {
                "unknown"
            } else {
                &node.state
            },
            if node.severity.is_empty() {
                "unknown"
            } else {
                &node.severity
            },
        )),
    }
}

/// Cluster health from the sites: a site without any connected node → error; a site with some
/// nodes not connected → warning; `ok` otherwise (and with no nodes).
pub fn site_health(nodes: &[NodeHealth]) -> Health {
    let mut sites: BTreeMap<&str, (usize, usize)> = BTreeMap::new();
    for n in nodes {
        let e = sites.entry(n.site_name.as_str()).or_default();
        e.0 += 1;
        if n.state == "connected" {
            e.1 += 1;
        }
    }
    sites.values().fold(Health::Ok, |acc, (all, up)| {
        acc.worst(if *up == 0 {
            Health::Error
        } else if up < all {
            Health::Warning
        } else {
            Health::Ok
        })
    })
}

/// Normalized severity of a `labels.severity`.
pub fn alert_severity(severity: &str) -> Severity {
    match severity {
        "critical" => Severity::Critical,
        "major" => Severity::Error,
        "minor" => Severity::Warning,
        _ => Severity::Info,
    }
}

/// The active alerts, normalized.
pub fn alerts(list: &[GridAlert]) -> Vec<Alert> {
    list.iter()
        .filter(|a| a.status.is_empty() || a.status == "active")
        .map(|a| Alert {
            id: a.id.clone(),
            severity: alert_severity(&a.labels.severity),
            vendor_severity: a.labels.severity.clone(),
            title: if a.name.is_empty() {
                a.annotations.summary.clone()
            } else {
                a.name.clone()
            },
            component: (!a.labels.instance.is_empty()).then(|| a.labels.instance.clone()),
            opened_at: OffsetDateTime::parse(&a.starts_at, &Rfc3339)
                .ok()
                .and_then(|t| i64::try_from(t.unix_timestamp_nanos() / 1_000_000).ok()),
        })
        .collect()
}

/// Parses one Prometheus sample value (`"137438953472000"`, or a float text) to bytes.
fn sample_bytes(row: &MetricRow) -> Option<u64> {
    let v = row.value.get(1)?;
    let text = match v {
        serde_json::Value::String(s) => s.trim().to_owned(),
        serde_json::Value::Number(n) => n.to_string(),
        _ => return None,
    };
    if let Ok(n) = text.parse::<u64>() {
        return Some(n);
    }
    let f: f64 = text.parse().ok()?;
    (f.is_finite() && f >= 0.0).then_some(f.round() as u64)
}

/// Sum of a metric over its rows, and the number of rows that had a usable value.
pub fn metric_sum(data: &MetricData) -> (u64, usize) {
    data.result
        .iter()
        .filter_map(sample_bytes)
        .fold((0u64, 0usize), |(s, n), v| (s.saturating_add(v), n + 1))
}

/// Capacity from the three metric queries (`usable` is optional).
pub fn capacity(total: &MetricData, data: &MetricData, usable: Option<&MetricData>) -> Capacity {
    let (total_bytes, _) = metric_sum(total);
    let (used_bytes, _) = metric_sum(data);
    let free_bytes = match usable.map(metric_sum) {
        Some((free, rows)) if rows > 0 => free,
        _ => total_bytes.saturating_sub(used_bytes),
    };
    Capacity {
        total_bytes,
        used_bytes,
        free_bytes,
        data_reduction: None,
    }
}

/// Connected storage nodes that have no row in a metric vector (their capacity is missing).
pub fn missing_storage_nodes(nodes: &[NodeHealth], data: &MetricData) -> Vec<String> {
    nodes
        .iter()
        .filter(|n| n.node_type == "storageNode" && n.state == "connected")
        .filter(|n| {
            !data.result.iter().any(|r| {
                r.metric.get("node_id").is_some_and(|id| *id == n.id)
                    || r.metric.get("instance").is_some_and(|i| *i == n.name)
            })
        })
        .map(|n| n.name.clone())
        .collect()
}

// ---------------------------------------------------------------------------------------------
// The adapter.
// ---------------------------------------------------------------------------------------------

/// The StorageGRID adapter of one grid (its primary Admin Node). Keeps the bearer token and the
/// API version across polls.
#[derive(Debug)]
pub struct StorageGridAdapter {
    config: SystemConfig,
    http: HttpClient,
    session: Session,
    /// When the token expires (from the login's `Cache-Control: max-age`).
    expires_at: Option<Instant>,
    /// The API version in use, once `GET /api/versions` answered.
    version: Option<u32>,
    /// The grid's name (the root of `GET /grid/health/topology`), once read.
    grid_name: Option<String>,
    /// Attempts left at reading the grid name (the topology call is deprecated in v4 and may go).
    grid_name_tries: u8,
    tracker: StatusTracker,
    alerts: AlertMemory,
}

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

impl StorageGridAdapter {
    pub fn new(config: &SystemConfig) -> Result<StorageGridAdapter, SetupError> {
        Ok(StorageGridAdapter {
            config: config.clone(),
            http: HttpClient::new(config)?,
            session: Session::default(),
            expires_at: None,
            version: None,
            grid_name: None,
            grid_name_tries: GRID_NAME_TRIES,
            tracker: StatusTracker::default(),
            alerts: AlertMemory::default(),
        })
    }

    /// Logins performed so far (first login and renewals).
    pub fn logins(&self) -> u64 {
        self.session.logins
    }

    /// Ends the session: `DELETE /api/v{n}/authorize` (failures are ignored: the token expires anyway).
    pub async fn logout(&mut self) {
        if let Some(token) = self.session.clear() {
            let path = api_path(self.version.unwrap_or(4), "/authorize");
            let bearer = format!("Bearer {token}");
            let _ = self
                .http
                .request(Method::DELETE, &path)
                .header("authorization", &bearer)
                .allow_empty()
                .send()
                .await;
        }
        self.expires_at = None;
    }

    /// Polls the grid once (see the module docs for the calls and rules).
    pub async fn poll(&mut self) -> PollOutput {
        let mut ctx = PollContext::new();
        self.session.begin_poll();
        if token_expiring(self.expires_at, Instant::now()) {
            self.session.clear();
            self.expires_at = None;
        }
        let credentials = match self.config.credentials() {
            Ok(Credentials::UserPassword { username, password }) => (username, password),
            Ok(Credentials::ApiToken(_)) => {
                return self
                    .credential_failure(ctx, "StorageGRID needs a username and password".into());
            }
            Err(e) => return self.credential_failure(ctx, e.to_string()),
        };

        // The API version, once per adapter: 4, or 3 when the grid offers only 3.
        let version = match self.version {
            Some(v) => v,
            None => match self
                .http
                .get("/api/versions")
                .send()
                .await
                .and_then(|r| r.json::<Envelope<Vec<u32>>>())
            {
                Ok(list) => *self.version.insert(choose_version(&list.data)),
                Err(e) if e.status() == Status::Unreachable => {
                    let snapshot = ctx.fail(Vendor::Storagegrid, &e);
                    return self.finish(snapshot, ctx);
                }
                Err(e) => {
                    ctx.degrade(&e);
                    4
                }
            },
        };
        let mut api = Api {
            http: &self.http,
            session: &mut self.session,
            expires_at: &mut self.expires_at,
            credentials: &credentials,
            version,
        };

        let health: GridHealth = match api.get(&mut ctx, "/grid/health").await {
            Ok(h) => h,
            Err(e) => {
                let snapshot = ctx.fail(Vendor::Storagegrid, &e);
                return self.finish(snapshot, ctx);
            }
        };
        let mut snapshot = Snapshot {
            vendor: Vendor::Storagegrid,
            status: Status::Online,
            hardware: Health::Unknown,
            cluster: Health::Unknown,
            name: None,
            version: None,
            model: Some("StorageGRID".into()),
            serial: None,
            capacity: None,
            alerts: Vec::new(),
            components: Vec::new(),
            poll_ms: 0,
            error: None,
        };
        if health.nodes.unknown > 0 {
            snapshot.hardware = Health::Warning;
        }

        if let Some(v) = api
            .try_get::<ProductVersion>(&mut ctx, "/grid/config/product-version")
            .await
        {
            snapshot.version = (!v.product_version.is_empty()).then_some(v.product_version);
        }
        // The grid's name: optional and deprecated in v4, so a failure neither degrades the poll
        // nor is retried on every poll.
        if self.grid_name.is_none() && self.grid_name_tries > 0 {
            self.grid_name_tries -= 1;
            match api
                .get::<TopologyRoot>(&mut ctx, "/grid/health/topology")
                .await
            {
                Ok(root) => self.grid_name = root.grid_name(),
                Err(e) => {
                    tracing::debug!(system = %self.config.id, error = %e, "no grid name from the topology")
                }
            }
        }
        snapshot.name = self.grid_name.clone();
        let nodes = api
            .try_get::<Vec<NodeHealth>>(&mut ctx, "/grid/node-health")
            .await;
        if let Some(nodes) = &nodes {
            let comps: Vec<Component> = nodes.iter().map(node_component).collect();
            snapshot.hardware = snapshot.hardware.worst(worst_health(&comps));
            snapshot.cluster = site_health(nodes);
            snapshot.components.extend(comps);
        }
        let fresh = api
            .try_get::<Vec<GridAlert>>(&mut ctx, "/grid/alerts?include=active")
            .await
            .map(|list| alerts(&list));
        snapshot.alerts = self.alerts.resolve(fresh);

        // Capacity: total and data are needed; usable space is optional.
        let total = api
            .try_get::<MetricData>(&mut ctx, &metric_rest(METRIC_TOTAL))
            .await;
        let data = match total {
            Some(_) => {
                api.try_get::<MetricData>(&mut ctx, &metric_rest(METRIC_DATA))
                    .await
            }
            None => None,
        };
        if let (Some(total), Some(data)) = (total, data) {
            let usable = match api
                .get::<MetricData>(&mut ctx, &metric_rest(METRIC_USABLE))
                .await
            {
                Ok(u) => Some(u),
                Err(e) => {
                    ctx.push(e.event(Level::Info));
                    None
                }
            };
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
                snapshot.capacity = Some(capacity(&total, &data, usable.as_ref()));
            }
        }

        snapshot.error = ctx.error_text();
        snapshot.poll_ms = ctx.elapsed_ms();
        self.finish(snapshot, ctx)
    }

    fn credential_failure(&mut self, mut ctx: PollContext, reason: String) -> PollOutput {
        let snapshot = ctx.credentials_failed(Vendor::Storagegrid, &reason);
        self.finish(snapshot, ctx)
    }

    fn finish(&mut self, snapshot: Snapshot, ctx: PollContext) -> PollOutput {
        if snapshot.status == Status::Unreachable {
            // The grid may come back upgraded: ask for the API version again.
            self.version = None;
        }
        let (snapshot, events) = self.tracker.finish(snapshot, ctx);
        PollOutput { snapshot, events }
    }
}

fn metric_rest(metric: &str) -> String {
    format!("/grid/metric-query?query={metric}&timeout=30s")
}

/// One poll's view of the API: client, session and credentials.
struct Api<'a> {
    http: &'a HttpClient,
    session: &'a mut Session,
    expires_at: &'a mut Option<Instant>,
    credentials: &'a (String, Secret),
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
        let (username, password) = self.credentials;
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
        let response = response?;
        let envelope: Envelope<T> = response.json()?;
        if envelope.status == "error" {
            return Err(HttpError::Protocol {
                endpoint: response.endpoint.clone(),
                reason: "envelope status is error".into(),
            });
        }
        Ok(envelope.data)
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

#[cfg(test)]
mod tests {
    use super::*;

    const TIB: u64 = 1 << 40;

    fn env<T: Default + for<'de> Deserialize<'de>>(text: &str) -> T {
        serde_json::from_str::<Envelope<T>>(text)
            .map(|e| e.data)
            .unwrap_or_default()
    }

    #[test]
    fn version_choice_and_max_age() {
        let v: Vec<u32> = env(include_str!(
            "../../../testkit/fixtures/storagegrid/api_versions.json"
        ));
        assert_eq!(choose_version(&v), 4);
        assert_eq!(choose_version(&[2, 3]), 3);
        assert_eq!(choose_version(&[]), 4);
        assert_eq!(max_age("private, no-cache, max-age=57599"), Some(57599));
        assert_eq!(max_age("no-cache"), None);
        let token: String = env(include_str!(
            "../../../testkit/fixtures/storagegrid/api_v4_authorize.json"
        ));
        assert_eq!(token, "8f5e2c1a-7b3d-4e9f-a6c2-1d0b9e8f7a65");
    }

    #[test]
    fn capacity_from_metric_queries() {
        let total: MetricData = env(include_str!(
            "../../../testkit/fixtures/storagegrid/api_v4_grid_metric-query.total_space.json"
        ));
        let data: MetricData = env(include_str!(
            "../../../testkit/fixtures/storagegrid/api_v4_grid_metric-query.data.json"
        ));
        let usable: MetricData = env(include_str!(
            "../../../testkit/fixtures/storagegrid/api_v4_grid_metric-query.usable_space.json"
        ));
        let cap = capacity(&total, &data, Some(&usable));
        assert_eq!(cap.total_bytes, 500 * TIB);
        assert_eq!(cap.used_bytes, 346_346_162_749_440);
        assert_eq!(cap.used_bytes * 100 / cap.total_bytes, 63);
        assert_eq!(cap.free_bytes, 196_812_581_371_904);
        assert_eq!(cap.data_reduction, None);
        let cap = capacity(&total, &data, None);
        assert_eq!(cap.free_bytes, 500 * TIB - 346_346_162_749_440);
        let nodes: Vec<NodeHealth> = env(include_str!(
            "../../../testkit/fixtures/storagegrid/api_v4_grid_node-health.json"
        ));
        assert!(missing_storage_nodes(&nodes, &data).is_empty());
        let mut short = data.clone();
        short.result.pop();
        assert_eq!(
            missing_storage_nodes(&nodes, &short),
            vec!["DC2-S2".to_owned()]
        );
    }

    #[test]
    fn sample_values_tolerate_floats_and_garbage() {
        let row = |v: serde_json::Value| MetricRow {
            metric: BTreeMap::new(),
            value: vec![serde_json::json!(1.0), v],
        };
        assert_eq!(sample_bytes(&row(serde_json::json!("1.5e3"))), Some(1500));
        assert_eq!(sample_bytes(&row(serde_json::json!(42))), Some(42));
        assert_eq!(sample_bytes(&row(serde_json::json!("NaN"))), None);
        assert_eq!(sample_bytes(&row(serde_json::json!({}))), None);
    }

    #[test]
    fn alerts_map_severities() {
        let list: Vec<GridAlert> = env(include_str!(
            "../../../testkit/fixtures/storagegrid/api_v4_grid_alerts.json"
        ));
        let a = alerts(&list);
        let sev: Vec<_> = a.iter().map(|a| a.severity).collect();
        assert_eq!(
            sev,
            vec![Severity::Critical, Severity::Error, Severity::Warning]
        );
        assert_eq!(a[0].component.as_deref(), Some("DC2-S1"));
        assert_eq!(a[0].opened_at, Some(1_795_161_600_000 - 3 * 3600 * 1000));
    }

    #[test]
    fn nodes_and_sites() {
        let nodes: Vec<NodeHealth> = env(include_str!(
            "../../../testkit/fixtures/storagegrid/api_v4_grid_node-health.json"
        ));
        assert_eq!(nodes.len(), 7);
        let st: Vec<_> = nodes.iter().map(|n| node_component(n).status).collect();
        use Health::*;
        assert_eq!(st, vec![Ok, Warning, Warning, Ok, Ok, Error, Ok]);
        assert_eq!(site_health(&nodes), Ok);
        let mut down = nodes.clone();
        down[6].state = "unknown".into();
        assert_eq!(site_health(&down), Warning);
        assert_eq!(node_component(&down[6]).status, Error);
        down[6].state = "administratively-down".into();
        assert_eq!(node_component(&down[6]).status, Warning);
        for n in down.iter_mut().filter(|n| n.site_name == "DC2") {
            n.state = "unknown".into();
        }
        assert_eq!(site_health(&down), Error);
    }

    #[test]
    fn tokens_are_replaced_shortly_before_they_expire() {
        let now = Instant::now();
        assert!(!token_expiring(None, now));
        assert!(!token_expiring(Some(now + Duration::from_secs(57599)), now));
        assert!(token_expiring(Some(now + Duration::from_secs(30)), now));
        assert!(token_expiring(Some(now), now));
    }

    #[test]
    fn error_envelope() {
        let r = error_reason(include_bytes!(
            "../../../testkit/fixtures/storagegrid/error.json"
        ));
        assert_eq!(
            r.as_deref(),
            Some("401: The provided credentials are invalid or the session has expired.")
        );
    }
}
