//! Simulated NetApp StorageGRID 11 grid (Grid Management API v4 and v3).
//!
//! * `GET /api/versions` (no auth) offers 3 and 4. `POST /api/v{3,4}/authorize` with
//!   `{username, password, cookie, csrfToken}` answers the token in the body's `data` with
//!   `Cache-Control: private, no-cache, max-age=57599`; `DELETE` logs out (204). Every other call
//!   needs `Authorization: Bearer <token>`, else 401 in the grid's error envelope.
//! * [`Mode::Fixture`] serves `testkit/fixtures/storagegrid/` as it is. [`Mode::Live`] moves the
//!   timestamps with the simulated clock, spreads [`live_capacity`] over the four storage nodes
//!   (total, data and usable space), opens and closes the minor alert every 6 simulated hours, and
//!   adds the scenario's alerts (degraded: a critical power-supply alert on a node whose health
//!   turns critical; near full: a major low-storage alert).
//! * Paths the predecessor used that the API does not have (`/grid/nodes`, `/grid/sites`,
//!   `/grid/storage-usage`, `/grid/storage-nodes`) answer 404.
//! * Performance queries are evaluated by [`performance_rows`]: a query of `or`-joined parts,
//!   each a grid-wide `sum(rate(…[5m]))` (or the ratio of two for latency), optionally wrapped
//!   in `label_replace(expr, "<label>", "<value>", "", "")`. Each part whose expression is one of
//!   [`PERFORMANCE_SERIES`] answers one row (the label it asked for, the value of that series'
//!   row in the `performance` fixture); a part the grid has no series for answers nothing, as
//!   Prometheus does. In the `no_performance` scenario (a grid without these metrics) nothing
//!   answers; in `slow_performance` the query answers after [`super::SLOW_PERFORMANCE`].
//! * `GET /api/v{3,4}/private/ilm-pools` (a private call, shaped as NetApp's Ansible collection
//!   reads it: `data[].{id, name, displayName, disks[].{siteId, grade, group}, archives}`)
//!   serves three pools: every site, the Frankfurt site, and a Berlin pool limited to a storage
//!   grade. A grid without it is a `status` 404 fault on that endpoint.

use sdash_proto::Capacity;
use serde_json::{Value, json};

use super::ontap::{FIXTURE_T0_MS, shift_times};
use super::{
    Mode, Scenario, SimRequest, SimResponse, SimTime, SystemState, VendorSim, live_capacity,
};

const VERSIONS: &str = include_str!("../../fixtures/storagegrid/api_versions.json");
const HEALTH: &str = include_str!("../../fixtures/storagegrid/api_v4_grid_health.json");
const TOPOLOGY: &str = include_str!("../../fixtures/storagegrid/api_v4_grid_health_topology.json");
const PRODUCT_VERSION: &str =
    include_str!("../../fixtures/storagegrid/api_v4_grid_config_product-version.json");
const ALERTS: &str = include_str!("../../fixtures/storagegrid/api_v4_grid_alerts.json");
const NODE_HEALTH: &str = include_str!("../../fixtures/storagegrid/api_v4_grid_node-health.json");
/// The values of [`PERFORMANCE_SERIES`], one row each (named by the `sdash` label).
const METRIC_PERFORMANCE: &str =
    include_str!("../../fixtures/storagegrid/api_v4_grid_metric-query.performance.json");
const METRIC_TOTAL: &str =
    include_str!("../../fixtures/storagegrid/api_v4_grid_metric-query.total_space.json");
const METRIC_DATA: &str =
    include_str!("../../fixtures/storagegrid/api_v4_grid_metric-query.data.json");
const METRIC_USABLE: &str =
    include_str!("../../fixtures/storagegrid/api_v4_grid_metric-query.usable_space.json");
const SERVICE_IDS: &str = include_str!("../../fixtures/storagegrid/api_v4_grid_service-ids.json");
const ILM_POOLS: &str = include_str!("../../fixtures/storagegrid/api_v4_private_ilm-pools.json");

const TIB: u64 = 1 << 40;
/// Token lifetime announced at login (the spec example).
pub const TOKEN_MAX_AGE_S: u64 = 57599;

/// The StorageGRID simulator.
#[derive(Debug, Default)]
pub struct StorageGridSim;

impl StorageGridSim {
    pub fn new() -> StorageGridSim {
        StorageGridSim
    }

    fn envelope(&self, version: u32, data: Value) -> Value {
        json!({"responseTime": "2026-11-20T08:00:00.123Z", "status": "success", "apiVersion": format!("{version}.0"), "data": data})
    }

    fn authorize(&self, system: &mut SystemState, version: u32, req: &SimRequest) -> SimResponse {
        match req.method.as_str() {
            "POST" => {
                let body: Value = serde_json::from_slice(&req.body).unwrap_or(Value::Null);
                let (Some(user), Some(pass)) =
                    (body["username"].as_str(), body["password"].as_str())
                else {
                    return self.error(400, "The request body must contain username and password.");
                };
                if !system.credentials_ok(Some(user), pass) {
                    system.stats.failed_logins += 1;
                    return self.error(401, "The provided credentials are invalid.");
                }
                system.stats.logins += 1;
                let token = system.new_session();
                SimResponse::json(200, &self.envelope(version, json!(token))).with_header(
                    "cache-control",
                    &format!("private, no-cache, max-age={TOKEN_MAX_AGE_S}"),
                )
            }
            "DELETE" => {
                if let Some(token) = bearer(req) {
                    system.sessions.remove(token);
                }
                system.stats.logouts += 1;
                SimResponse::empty(204)
            }
            _ => self.error(405, "Method not allowed."),
        }
    }

    fn grid(
        &self,
        system: &SystemState,
        now: &SimTime,
        rest: &str,
        req: &SimRequest,
    ) -> Option<Value> {
        let live = system.mode == Mode::Live;
        let mut body: Value = match rest {
            "/grid/health" => parse(HEALTH),
            "/grid/health/topology" => parse(TOPOLOGY),
            "/grid/config/product-version" => parse(PRODUCT_VERSION),
            "/grid/service-ids" => parse(SERVICE_IDS),
            "/private/ilm-pools" => parse(ILM_POOLS),
            "/grid/node-health" => {
                let mut v = parse(NODE_HEALTH);
                if live && let Some(nodes) = v["data"].as_array_mut() {
                    for n in nodes.iter_mut() {
                        n["severity"] = json!("normal");
                    }
                    if system.scenario == Scenario::Degraded
                        && let Some(n) = nodes.iter_mut().find(|n| n["name"] == "DC2-S1")
                    {
                        n["severity"] = json!("critical");
                    }
                }
                v
            }
            "/grid/alerts" => {
                let mut v = parse(ALERTS);
                if live {
                    live_alerts(system, now, &mut v);
                }
                if let Some(include) = req.param("include")
                    && let Some(list) = v["data"].as_array_mut()
                {
                    let wanted: Vec<&str> = include.split(',').map(str::trim).collect();
                    list.retain(|a| a["status"].as_str().is_none_or(|s| wanted.contains(&s)));
                }
                v
            }
            "/grid/metric-query" => {
                let query = req.param("query").unwrap_or("");
                if is_performance_query(query) {
                    let rows = if system.scenario == Scenario::NoPerformance {
                        Vec::new()
                    } else {
                        performance_rows(query, live.then_some(now.epoch_ms))
                    };
                    json!({"status": "success", "apiVersion": "4.0", "data": {"resultType": "vector", "result": rows}})
                } else {
                    let mut v = match query {
                        q if q.contains("total_space_bytes") => parse(METRIC_TOTAL),
                        q if q.contains("usable_space_bytes") => parse(METRIC_USABLE),
                        q if q.contains("data_bytes") => parse(METRIC_DATA),
                        _ => {
                            json!({"status": "success", "apiVersion": "4.0", "data": {"resultType": "vector", "result": []}})
                        }
                    };
                    if live {
                        live_metric(system, now, query, &mut v);
                    }
                    v
                }
            }
            _ => return None,
        };
        if live {
            shift_times(&mut body, now.epoch_ms - FIXTURE_T0_MS);
        }
        Some(body)
    }
}

impl VendorSim for StorageGridSim {
    fn handle(&self, system: &mut SystemState, now: &SimTime, req: &SimRequest) -> SimResponse {
        let path = req.path.trim_end_matches('/');
        if path == "/api/versions" {
            return SimResponse::json(200, &parse(VERSIONS));
        }
        let Some((version, rest)) = path
            .strip_prefix("/api/v")
            .and_then(|p| p.split_once('/'))
            .and_then(|(v, rest)| {
                v.parse::<u32>()
                    .ok()
                    .filter(|v| *v == 3 || *v == 4)
                    .map(|v| (v, format!("/{rest}")))
            })
        else {
            return self.error(404, "Not found.");
        };
        if rest == "/authorize" {
            return self.authorize(system, version, req);
        }
        if !bearer(req).is_some_and(|t| system.sessions.contains(t)) {
            system.stats.unauthorized += 1;
            return self.error(
                401,
                "The provided credentials are invalid or the session has expired.",
            );
        }
        if req.method != "GET" {
            return self.error(405, "Method not allowed.");
        }
        match self.grid(system, now, &rest, req) {
            Some(mut body) => {
                body["apiVersion"] = json!(format!("{version}.0"));
                SimResponse::json(200, &body)
            }
            None => self.error(404, &format!("Not found: {rest}")),
        }
    }

    fn capacity(&self, system: &SystemState, now: &SimTime) -> Option<Capacity> {
        Some(match system.mode {
            Mode::Fixture => Capacity {
                total_bytes: 500 * TIB,
                used_bytes: 346_346_162_749_440,
                free_bytes: 196_812_581_371_904,
                data_reduction: None,
                provisioned_bytes: None,
            },
            Mode::Live => {
                let c = live_capacity(system, now);
                Capacity {
                    data_reduction: None,
                    ..c
                }
            }
        })
    }

    fn delay(&self, system: &SystemState, req: &SimRequest) -> Option<std::time::Duration> {
        let perf = req.path.ends_with("/grid/metric-query")
            && req.param("query").is_some_and(is_performance_query);
        (perf && system.scenario == Scenario::SlowPerformance).then_some(super::SLOW_PERFORMANCE)
    }

    fn error(&self, status: u16, message: &str) -> SimResponse {
        let key = match status {
            401 => "error.unauthorized",
            404 => "error.not_found",
            _ => "error.general",
        };
        SimResponse::json(
            status,
            &json!({
                "responseTime": "2026-11-20T08:00:00.123Z",
                "status": "error",
                "apiVersion": "4.0",
                "code": status,
                "message": {"text": message, "key": key},
                "errors": [{"text": message, "key": key}],
            }),
        )
    }
}

fn parse(text: &str) -> Value {
    serde_json::from_str(text).unwrap_or(Value::Null)
}

fn bearer(req: &SimRequest) -> Option<&str> {
    req.header("authorization")
        .and_then(|h| h.strip_prefix("Bearer "))
        .map(str::trim)
}

/// Live alerts: the fixture's critical and major alerts belong to the degraded and near-full
/// scenarios; the minor one opens and closes every 6 simulated hours.
fn live_alerts(system: &SystemState, now: &SimTime, body: &mut Value) {
    let phase = (now.elapsed.as_secs() / (6 * 3600) + system.hash(7)) % 2;
    if let Some(list) = body["data"].as_array_mut() {
        list.retain(|a| match a["labels"]["severity"].as_str() {
            Some("critical") => system.scenario == Scenario::Degraded,
            Some("major") => system.scenario == Scenario::NearFull,
            _ => phase == 0,
        });
        if system.scenario == Scenario::Degraded
            && let Some(a) = list
                .iter_mut()
                .find(|a| a["labels"]["severity"] == "critical")
        {
            a["name"] = json!("Power supply failure");
            a["labels"]["alertname"] = json!("Power supply failure");
        }
    }
}

/// Live metric rows: the total, data and usable bytes of [`live_capacity`] split over the rows.
fn live_metric(system: &SystemState, now: &SimTime, query: &str, body: &mut Value) {
    let cap = live_capacity(system, now);
    let total = if query.contains("total_space_bytes") {
        cap.total_bytes
    } else if query.contains("usable_space_bytes") {
        cap.free_bytes
    } else {
        cap.used_bytes
    };
    let ts = now.epoch_ms as f64 / 1000.0;
    if let Some(rows) = body["data"]["result"].as_array_mut() {
        let n = rows.len() as u64;
        for (i, row) in rows.iter_mut().enumerate() {
            let share = if i as u64 + 1 == n {
                total - total / n.max(1) * (n - 1)
            } else {
                total / n.max(1)
            };
            row["value"] = json!([ts, share.to_string()]);
        }
    }
}

/// The performance series of the simulated grid's Prometheus: the metric selectors an
/// expression must hold (all of them), and the row of the `performance` fixture (its `sdash`
/// label) with the value. The selectors are the ones NetApp Harvest's StorageGRID dashboards
/// use; latency is the ratio of request time (seconds) to request count.
pub const PERFORMANCE_SERIES: &[(&[&str], &str)] = &[
    (
        &["rate(storagegrid_s3_data_transfers_bytes_retrieved[5m])"],
        "read_bytes",
    ),
    (
        &["rate(storagegrid_s3_data_transfers_bytes_ingested[5m])"],
        "write_bytes",
    ),
    (
        &[r#"rate(storagegrid_private_s3_total_requests{type=~"get_.*"}[5m])"#],
        "read_iops",
    ),
    (
        &[r#"rate(storagegrid_private_s3_total_requests{type=~"put_.*"}[5m])"#],
        "write_iops",
    ),
    (
        &[
            r#"rate(storagegrid_private_load_balancer_storage_request_time{method="GET"}[5m])"#,
            r#"rate(storagegrid_private_load_balancer_storage_request_count{method="GET"}[5m])"#,
        ],
        "read_latency",
    ),
    (
        &[
            r#"rate(storagegrid_private_load_balancer_storage_request_time{method="PUT"}[5m])"#,
            r#"rate(storagegrid_private_load_balancer_storage_request_count{method="PUT"}[5m])"#,
        ],
        "write_latency",
    ),
];

fn is_performance_query(query: &str) -> bool {
    query.contains("storagegrid_s3_data_transfers")
        || query.contains("storagegrid_private_s3_total_requests")
        || query.contains("storagegrid_private_load_balancer_storage_request")
}

/// The rows of a performance query (see the module docs), stamped `epoch_ms` when given (live
/// mode), else with the fixture's time.
fn performance_rows(query: &str, epoch_ms: Option<i64>) -> Vec<Value> {
    let fixture = parse(METRIC_PERFORMANCE);
    let value_of = |row_name: &str| -> Option<Value> {
        let mut value = fixture["data"]["result"]
            .as_array()?
            .iter()
            .find(|r| r["metric"]["sdash"] == row_name)?["value"]
            .clone();
        if let Some(ms) = epoch_ms {
            value[0] = json!(ms as f64 / 1000.0);
        }
        Some(value)
    };
    split_top_level(query, " or ")
        .into_iter()
        .filter_map(|part| {
            let (expr, labels) = match label_replace(part) {
                Some((expr, label, value)) => (expr, json!({ label: value })),
                None => (part, json!({})),
            };
            let expr = expr.trim();
            if !expr.starts_with("sum(") {
                return None;
            }
            let (_, row_name) = PERFORMANCE_SERIES
                .iter()
                .find(|(selectors, _)| selectors.iter().all(|s| expr.contains(s)))?;
            Some(json!({"metric": labels, "value": value_of(row_name)?}))
        })
        .collect()
}

/// `label_replace(expr, "label", "value", "", "")` (an empty source label and regex: the label
/// is set on every row) as `(expr, label, value)`; `None` for anything else.
fn label_replace(part: &str) -> Option<(&str, String, String)> {
    let inner = part
        .trim()
        .strip_prefix("label_replace(")?
        .strip_suffix(')')?;
    let args = split_top_level(inner, ",");
    let [expr, label, value, source, regex] = args.as_slice() else {
        return None;
    };
    let unquote = |s: &str| -> Option<String> {
        let s = s.trim();
        s.strip_prefix('"')?.strip_suffix('"').map(str::to_owned)
    };
    if !unquote(source)?.is_empty() || !unquote(regex)?.is_empty() {
        return None;
    }
    Some((expr, unquote(label)?, unquote(value)?))
}

/// `text` split on `separator` where it is outside parentheses, braces, brackets and quotes.
fn split_top_level<'a>(text: &'a str, separator: &str) -> Vec<&'a str> {
    let mut parts = Vec::new();
    let mut depth = 0i32;
    let mut quoted = false;
    let mut start = 0;
    let mut i = 0;
    let bytes = text.as_bytes();
    while i < bytes.len() {
        match bytes[i] {
            b'"' => quoted = !quoted,
            b'(' | b'{' | b'[' if !quoted => depth += 1,
            b')' | b'}' | b']' if !quoted => depth -= 1,
            _ if !quoted && depth == 0 && text[i..].starts_with(separator) => {
                parts.push(&text[start..i]);
                i += separator.len();
                start = i;
                continue;
            }
            _ => {}
        }
        i += 1;
    }
    parts.push(&text[start..]);
    parts
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_performance_query_answers_one_labelled_row_per_known_series() {
        let query = concat!(
            r#"label_replace(sum(rate(storagegrid_private_s3_total_requests{type=~"get_.*"}[5m])), "sdash", "ops", "", "")"#,
            r#" or label_replace(sum(rate(storagegrid_unknown_metric[5m])), "sdash", "x", "", "")"#,
            r#" or sum(rate(storagegrid_s3_data_transfers_bytes_ingested[5m]))"#,
        );
        let rows = performance_rows(query, Some(1_795_161_600_000));
        assert_eq!(
            rows,
            vec![
                json!({"metric": {"sdash": "ops"}, "value": [1_795_161_600.0, "1843.2"]}),
                json!({"metric": {}, "value": [1_795_161_600.0, "402653184"]}),
            ]
        );
    }

    #[test]
    fn latency_needs_both_the_time_and_the_count_of_the_same_method() {
        let mixed = r#"sum(rate(storagegrid_private_load_balancer_storage_request_time{method="GET"}[5m])) / sum(rate(storagegrid_private_load_balancer_storage_request_count{method="PUT"}[5m]))"#;
        assert_eq!(performance_rows(mixed, None), Vec::<Value>::new());
    }
}
