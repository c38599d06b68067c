//! Pure Storage FlashArray REST 2.x simulator.
//!
//! * `GET /api/api_version` (no auth) lists 1.0–1.19 and 2.0–2.26, as the fixture does.
//! * `POST /api/2.<n>/login` with header `api-token`: 200 with the session in the response header
//!   `x-auth-token` (401 with the error envelope for a wrong token).
//! * `POST /api/2.<n>/logout` ends the session (200, no body).
//! * `GET /api/2.<n>/{arrays, arrays/space, controllers, hardware, drives, alerts,
//!   array-connections, pods, network-interfaces, arrays/performance}` with `x-auth-token`; 401 without a valid
//!   session. Lists are paged with `limit` (and [`super::SimConfig::page_cap`]) through
//!   `continuation_token` (body and `x-next-token` header); `filter=<field>='<value>'` is applied
//!   (other filter syntax answers 400 "Invalid filter."), `total_item_count=true` is honoured.
//!
//! Live values: the array is named after the system id; capacity from
//! [`super::live_capacity`]; hardware all healthy except in the degraded scenario (CH0.PWR1
//! critical plus its critical alert); near full adds a capacity warning; two or three more
//! warning/info alerts open and close in 15-minute windows, deterministically per seed;
//! performance is the fixture's scaled per system.
//!
//! Scenarios of #17 (in both modes): `mgmt_interface_down` disables `ct1.eth0`;
//! `evergreen_zero_used` reports 0 used (`total_used` and `total_physical`) with the capacity;
//! `no_performance` answers 404 on `arrays/performance`; `slow_performance` answers it after
//! [`super::SLOW_PERFORMANCE`].

use std::sync::OnceLock;

use sdash_proto::Capacity;
use serde_json::{Value, json};

use super::{
    Mode, Scenario, SimRequest, SimResponse, SimTime, SystemState, VendorSim, live_capacity,
};

struct Fixtures {
    api_version: Value,
    login: Value,
    arrays: Value,
    arrays_space: Value,
    controllers: Value,
    hardware: Value,
    drives: Value,
    alerts: Value,
    array_connections: Value,
    pods: Value,
    network_interfaces: Value,
    arrays_performance: Value,
}

fn fixtures() -> &'static Fixtures {
    static FIXTURES: OnceLock<Fixtures> = OnceLock::new();
    FIXTURES.get_or_init(|| {
        // The files are part of this crate; a broken one shows up as empty answers in the tests.
        let parse = |text: &str| serde_json::from_str(text).unwrap_or(Value::Null);
        Fixtures {
            api_version: parse(include_str!("../../fixtures/pure/api_api_version.json")),
            login: parse(include_str!("../../fixtures/pure/api_2.26_login.json")),
            arrays: parse(include_str!("../../fixtures/pure/api_2.26_arrays.json")),
            arrays_space: parse(include_str!(
                "../../fixtures/pure/api_2.26_arrays_space.json"
            )),
            controllers: parse(include_str!(
                "../../fixtures/pure/api_2.26_controllers.json"
            )),
            hardware: parse(include_str!("../../fixtures/pure/api_2.26_hardware.json")),
            drives: parse(include_str!("../../fixtures/pure/api_2.26_drives.json")),
            alerts: parse(include_str!("../../fixtures/pure/api_2.26_alerts.json")),
            array_connections: parse(include_str!(
                "../../fixtures/pure/api_2.26_array-connections.json"
            )),
            pods: parse(include_str!("../../fixtures/pure/api_2.26_pods.json")),
            network_interfaces: parse(include_str!(
                "../../fixtures/pure/api_2.26_network-interfaces.json"
            )),
            arrays_performance: parse(include_str!(
                "../../fixtures/pure/api_2.26_arrays_performance.json"
            )),
        }
    })
}

/// The highest minor version advertised (2.26).
const MAX_MINOR: u32 = 26;

/// The Pure simulator (stateless: all state is in [`SystemState`]).
#[derive(Debug, Default)]
pub struct PureSim;

impl PureSim {
    pub fn new() -> PureSim {
        PureSim
    }

    fn body(&self, s: &SystemState, now: &SimTime, resource: &str) -> Option<Value> {
        let f = fixtures();
        let fixture = match resource {
            "arrays" => &f.arrays,
            "arrays/space" => &f.arrays_space,
            "controllers" => &f.controllers,
            "hardware" => &f.hardware,
            "drives" => &f.drives,
            "alerts" => &f.alerts,
            "array-connections" => &f.array_connections,
            "pods" => &f.pods,
            "network-interfaces" => &f.network_interfaces,
            "arrays/performance" if s.scenario != Scenario::NoPerformance => &f.arrays_performance,
            _ => return None,
        };
        let mut body = fixture.clone();
        scenario_changes(s, resource, &mut body);
        if s.mode == Mode::Fixture {
            return Some(body);
        }
        let items = body.get_mut("items").and_then(Value::as_array_mut);
        match (resource, items) {
            ("arrays" | "arrays/space", Some(items)) => {
                let cap = pure_live_capacity(s, now);
                for item in items {
                    item["name"] = json!(s.id);
                    item["capacity"] = json!(cap.total_bytes);
                    if let Some(space) = item.get_mut("space") {
                        let used = if s.scenario == Scenario::EvergreenZeroUsed {
                            0
                        } else {
                            cap.used_bytes
                        };
                        space["total_used"] = json!(used);
                        space["total_physical"] = json!(used);
                        space["data_reduction"] = json!(cap.data_reduction);
                        space["total_provisioned"] = json!(cap.provisioned_bytes);
                    }
                }
            }
            ("hardware", Some(items)) => {
                for item in items {
                    match item.get("name").and_then(Value::as_str) {
                        Some("CH0.PWR1") => {
                            let failed = s.scenario == Scenario::Degraded;
                            item["status"] = json!(if failed { "critical" } else { "healthy" });
                            item["details"] = if failed {
                                json!("Power supply input lost")
                            } else {
                                Value::Null
                            };
                        }
                        Some("CH0") => {
                            item["serial"] = json!(format!("PCHFL{:08X}", s.hash(7) as u32))
                        }
                        _ => {}
                    }
                }
            }
            ("pods", Some(items)) => {
                for pod in items {
                    if let Some(arrays) = pod.get_mut("arrays").and_then(Value::as_array_mut) {
                        for a in arrays {
                            if a.get("name").and_then(Value::as_str) == Some("fa-prod-01") {
                                a["name"] = json!(s.id);
                            }
                            a["mediator_status"] = json!("online");
                        }
                    }
                }
            }
            ("alerts", Some(_)) => body["items"] = Value::Array(live_alerts(s, now)),
            ("arrays/performance", Some(items)) => {
                // The fixture's figures scaled by 0.5..1.5 per system and a slow 10-minute wave.
                let wave = ((now.elapsed.as_secs() / 600 + s.hash(11)) % 7) as f64 / 14.0;
                let scale = 0.5 + (s.hash(12) % 100) as f64 / 100.0 + wave - 0.25;
                for item in items {
                    item["name"] = json!(s.id);
                    item["time"] = json!(now.epoch_ms);
                    for key in [
                        "reads_per_sec",
                        "writes_per_sec",
                        "read_bytes_per_sec",
                        "write_bytes_per_sec",
                    ] {
                        if let Some(v) = item.get(key).and_then(Value::as_f64) {
                            item[key] = json!((v * scale).round() as u64);
                        }
                    }
                }
            }
            _ => {}
        }
        Some(body)
    }
}

/// [`live_capacity`] with the provisioned bytes a FlashArray reports: 3 to 9 times the total.
fn pure_live_capacity(s: &SystemState, now: &SimTime) -> Capacity {
    let cap = live_capacity(s, now);
    Capacity {
        provisioned_bytes: Some(cap.total_bytes * (3 + s.hash(13) % 7)),
        ..cap
    }
}

/// The scenario switches that apply in both modes.
fn scenario_changes(s: &SystemState, resource: &str, body: &mut Value) {
    let Some(items) = body.get_mut("items").and_then(Value::as_array_mut) else {
        return;
    };
    match (s.scenario, resource) {
        (Scenario::MgmtInterfaceDown, "network-interfaces") => {
            for i in items {
                if i.get("name").and_then(Value::as_str) == Some("ct1.eth0") {
                    i["enabled"] = json!(false);
                }
            }
        }
        (Scenario::EvergreenZeroUsed, "arrays/space" | "arrays") => {
            for item in items {
                if let Some(space) = item.get_mut("space") {
                    space["total_used"] = json!(0);
                    space["total_physical"] = json!(0);
                }
            }
        }
        _ => {}
    }
}

/// The open alerts of a live system at `now`.
fn live_alerts(s: &SystemState, now: &SimTime) -> Vec<Value> {
    let templates = fixtures()
        .alerts
        .get("items")
        .and_then(Value::as_array)
        .cloned()
        .unwrap_or_default();
    let template = |i: usize| templates.get(i).cloned().unwrap_or_else(|| json!({}));
    let started_ms = now.epoch_ms - now.elapsed.as_millis() as i64;
    let mut out = Vec::new();
    if s.scenario == Scenario::Degraded {
        let mut a = template(0);
        a["id"] = json!(format!("{}-psu", s.id));
        a["created"] = json!(started_ms);
        a["updated"] = json!(started_ms);
        out.push(a);
    }
    if s.scenario == Scenario::NearFull {
        let mut a = template(1);
        a["id"] = json!(format!("{}-capacity", s.id));
        a["name"] = json!("41001");
        a["code"] = json!(14);
        a["category"] = json!("array");
        a["component_type"] = json!("array");
        a["component_name"] = json!(s.id);
        a["summary"] = json!(format!("(array:{}): space usage above 90%", s.id));
        a["description"] = json!("Array space usage above 90%");
        a["issue"] = json!("Array space usage above 90%");
        a["created"] = json!(started_ms);
        out.push(a);
    }
    let window = now.elapsed.as_secs() / 900;
    for k in 0..3u64 {
        if !s.hash(100 + k * 1_000_003 + window).is_multiple_of(3) {
            continue;
        }
        // Texts that do not contradict the served hardware and pod states.
        let (severity, category, component, summary) = match k {
            0 => (
                "warning",
                "array",
                "pgroup-daily",
                "replication of pgroup-daily is behind schedule",
            ),
            1 => (
                "info",
                "certificate",
                "management",
                "certificate expires in 27 days",
            ),
            _ => (
                "warning",
                "volume",
                "vol-app-01",
                "volume vol-app-01 above 90% of its quota",
            ),
        };
        let mut a = template(1 + (k % 2) as usize);
        let created = started_ms + (window * 900_000 + k * 1000) as i64;
        a["id"] = json!(format!("{}-{k}-{window}", s.id));
        a["name"] = json!(format!("{}", 42000 + k * 1000 + window % 1000));
        a["severity"] = json!(severity);
        a["category"] = json!(category);
        a["component_type"] = json!(category);
        a["component_name"] = json!(component);
        a["summary"] = json!(format!("({category}:{component}): {summary}"));
        a["description"] = json!(summary);
        a["issue"] = json!(summary);
        a["created"] = json!(created);
        a["updated"] = json!(created);
        out.push(a);
    }
    out
}

impl VendorSim for PureSim {
    fn handle(&self, s: &mut SystemState, now: &SimTime, req: &SimRequest) -> SimResponse {
        let path = req.path.trim_end_matches('/');
        if path == "/api/api_version" {
            return if req.method == "GET" {
                SimResponse::json(200, &fixtures().api_version)
            } else {
                self.error(405, "Method not allowed.")
            };
        }
        let Some((version, resource)) = path.strip_prefix("/api/").and_then(|r| r.split_once('/'))
        else {
            return self.error(404, "Not found.");
        };
        let supported = version
            .strip_prefix("2.")
            .and_then(|minor| minor.parse::<u32>().ok())
            .is_some_and(|minor| minor <= MAX_MINOR);
        if !supported {
            return self.error(404, "Unsupported API version.");
        }
        match (req.method.as_str(), resource) {
            ("POST", "login") => {
                let token = req.header("api-token").unwrap_or("");
                if !token.is_empty() && s.credentials_ok(None, token) {
                    s.stats.logins += 1;
                    let session = s.new_session();
                    SimResponse::json(200, &fixtures().login).with_header("x-auth-token", &session)
                } else {
                    s.stats.failed_logins += 1;
                    self.error(401, "Invalid API token.")
                }
            }
            ("POST", "logout") => {
                if let Some(token) = req.header("x-auth-token") {
                    s.sessions.remove(token);
                }
                s.stats.logouts += 1;
                SimResponse::empty(200)
            }
            ("GET", resource) => {
                let authorized = req
                    .header("x-auth-token")
                    .is_some_and(|t| s.sessions.contains(t));
                if !authorized {
                    s.stats.unauthorized += 1;
                    return self.error(401, "Invalid or expired session token.");
                }
                let Some(body) = self.body(s, now, resource) else {
                    return self.error(404, "Not found.");
                };
                page(self, body, req, s.page_cap)
            }
            _ => self.error(405, "Method not allowed."),
        }
    }

    fn delay(&self, s: &SystemState, req: &SimRequest) -> Option<std::time::Duration> {
        (s.scenario == Scenario::SlowPerformance && req.path.ends_with("/arrays/performance"))
            .then_some(super::SLOW_PERFORMANCE)
    }

    fn capacity(&self, s: &SystemState, now: &SimTime) -> Option<Capacity> {
        match s.mode {
            Mode::Live => Some(pure_live_capacity(s, now)),
            Mode::Fixture => {
                let item = fixtures().arrays_space.get("items")?.get(0)?;
                let total = item.get("capacity")?.as_u64()?;
                let space = item.get("space")?;
                let used = space.get("total_used")?.as_u64()?;
                Some(Capacity {
                    total_bytes: total,
                    used_bytes: used,
                    free_bytes: total.saturating_sub(used),
                    data_reduction: space.get("data_reduction").and_then(Value::as_f64),
                    provisioned_bytes: space.get("total_provisioned").and_then(Value::as_u64),
                })
            }
        }
    }

    fn error(&self, status: u16, message: &str) -> SimResponse {
        SimResponse::json(
            status,
            &json!({ "errors": [{ "context": "", "message": message }] }),
        )
        .with_header("x-request-id", "00000000-0000-4000-8000-000000000000")
    }
}

/// Applies `filter`, then `limit`/`continuation_token` paging, to a list envelope.
fn page(sim: &PureSim, mut body: Value, req: &SimRequest, cap: Option<usize>) -> SimResponse {
    let Some(items) = body.get_mut("items").and_then(Value::as_array_mut) else {
        return SimResponse::json(200, &body);
    };
    if let Some(filter) = req.param("filter") {
        let Some((field, value)) = parse_filter(filter) else {
            return sim.error(400, "Invalid filter.");
        };
        // A list field (`services`) matches when it holds the value, as on the array.
        items.retain(|item| match item.get(&field) {
            Some(Value::Array(values)) => values.iter().any(|v| v.as_str() == Some(&value)),
            other => other.and_then(Value::as_str) == Some(value.as_str()),
        });
    }
    let total = items.len();
    let limit = match req.param("limit").map(str::parse::<usize>) {
        None => None,
        Some(Ok(n)) if n > 0 => Some(n),
        Some(_) => return sim.error(400, "Invalid limit."),
    };
    let offset = match req.param("continuation_token") {
        None => 0,
        Some(token) => match token
            .strip_prefix("sim-ct-")
            .and_then(|n| n.parse::<usize>().ok())
        {
            Some(n) if n <= total => n,
            _ => return sim.error(400, "Invalid continuation_token."),
        },
    };
    let size = match (limit, cap) {
        (Some(l), Some(c)) => l.min(c),
        (Some(l), None) => l,
        (None, Some(c)) => c,
        (None, None) => total,
    };
    let end = offset.saturating_add(size).min(total);
    let page: Vec<Value> = items.drain(..).skip(offset).take(end - offset).collect();
    *items = page;
    let next = (end < total).then(|| format!("sim-ct-{end}"));
    body["continuation_token"] = json!(next);
    body["more_items_remaining"] = json!(next.is_some());
    body["total_item_count"] = if req.param("total_item_count") == Some("true") {
        json!(total)
    } else {
        Value::Null
    };
    let resp = SimResponse::json(200, &body);
    match next {
        Some(token) => resp.with_header("x-next-token", &token),
        None => resp,
    }
}

/// `field='value'` (or double quotes); anything else is not understood.
fn parse_filter(filter: &str) -> Option<(String, String)> {
    let (field, value) = filter.split_once('=')?;
    let field = field.trim();
    let value = value.trim();
    let quoted = (value.starts_with('\'') && value.ends_with('\''))
        || (value.starts_with('"') && value.ends_with('"'));
    if field.is_empty()
        || !field
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '.')
        || !quoted
        || value.len() < 2
    {
        return None;
    }
    Some((field.to_owned(), value[1..value.len() - 1].to_owned()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fixtures_parse() {
        let f = fixtures();
        for v in [
            &f.api_version,
            &f.login,
            &f.arrays,
            &f.arrays_space,
            &f.controllers,
            &f.hardware,
            &f.drives,
            &f.alerts,
            &f.array_connections,
            &f.pods,
            &f.network_interfaces,
        ] {
            assert!(v.is_object());
        }
        assert_eq!(f.drives["items"].as_array().map(Vec::len), Some(48));
    }

    #[test]
    fn filters_parse() {
        assert_eq!(
            parse_filter("state='open'"),
            Some(("state".into(), "open".into()))
        );
        assert_eq!(parse_filter("state=open"), None);
        assert_eq!(parse_filter("a b='x'"), None);
    }
}
