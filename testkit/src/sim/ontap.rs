//! Simulated NetApp ONTAP 9 cluster (REST, HTTP Basic on every request).
//!
//! * Bodies come from `testkit/fixtures/ontap/`. In [`Mode::Fixture`] they are served as they are;
//!   in [`Mode::Live`] timestamps move with the simulated clock (the fixtures' T0 becomes "now"),
//!   capacity follows [`live_capacity`] split over two aggregates, an `hm.alert.raised` problem
//!   opens and clears (with its recovery event) every 6 simulated hours, and the scenarios add a
//!   failed power supply with an emergency EMS event, or a near-full alert.
//! * Like a real ONTAP, `fields=` is checked: a name the resource does not have (at the top
//!   level, or a second-level name such as `metric.iops` of an object the records have) fails
//!   the whole call with 400 and code 262197; records are projected to the named fields (plus
//!   `uuid`, `name`, `_links`), and an object named only by sub-fields to those sub-fields.
//! * Collections page with `max_records` (and the fleet's `page_cap`) and `_links.next.href`
//!   (relative to the cluster, as ONTAP sends it). EMS queries filter on `message.severity`,
//!   `message.name` (`|` or `,` lists) and `time=>…`.
//!
//! * Scenarios of #17 (in both modes): `lif_down` takes the data LIF `lif_nfs01_a01` down,
//!   `port_down` the port `e0c` of `cl-prod-a-01`; `no_performance` is an ONTAP 9.5 (no cluster
//!   `metric` or `statistics`: asking for them fails with 262197); `slow_performance` answers
//!   `/api/cluster?fields=metric…` after [`super::SLOW_PERFORMANCE`].
//!
//! The timestamp helpers at the bottom are shared with the StorageGRID and DataDomain sims.

use base64::Engine;
use sdash_proto::Capacity;
use serde_json::{Value, json};
use time::OffsetDateTime;
use time::format_description::well_known::Rfc3339;

use super::{
    Mode, Scenario, SimRequest, SimResponse, SimTime, SystemState, VendorSim, live_capacity,
};

/// The fixtures' reference time T0 = 2026-11-20T08:00:00Z, ms since the epoch.
pub const FIXTURE_T0_MS: i64 = 1_795_161_600_000;

const CLUSTER: &str = include_str!("../../fixtures/ontap/api_cluster.json");
const NODES: &str = include_str!("../../fixtures/ontap/api_cluster_nodes.json");
const AGGREGATES: &str = include_str!("../../fixtures/ontap/api_storage_aggregates.json");
const DISKS: &str = include_str!("../../fixtures/ontap/api_storage_disks.json");
const PEERS: &str = include_str!("../../fixtures/ontap/api_cluster_peers.json");
const SNAPMIRROR: &str = include_str!("../../fixtures/ontap/api_snapmirror_relationships.json");
const METROCLUSTER: &str = include_str!("../../fixtures/ontap/api_cluster_metrocluster.json");
const METROCLUSTER_NOT_CONFIGURED: &str =
    include_str!("../../fixtures/ontap/api_cluster_metrocluster.not_configured.json");
const EMS: &str = include_str!("../../fixtures/ontap/api_support_ems_events.json");
const EMS_RECOVERY: &str =
    include_str!("../../fixtures/ontap/api_support_ems_events.recovery.json");
const INTERFACES: &str = include_str!("../../fixtures/ontap/api_network_ip_interfaces.json");
const PORTS: &str = include_str!("../../fixtures/ontap/api_network_ethernet_ports.json");
const VOLUMES: &str = include_str!("../../fixtures/ontap/api_storage_volumes.json");
/// The sum of the volumes' `space.size` in `api_storage_volumes.json` (1000 TiB).
const PROVISIONED: u64 = 1000 * TIB;

const TIB: u64 = 1 << 40;

/// Top-level fields each resource has beyond those in its fixture (from the ONTAP 9 model).
fn extra_fields(path: &str) -> &'static [&'static str] {
    match path {
        "/api/cluster" => &[
            "timezone",
            "certificate",
            "san_optimized",
            "peering_policy",
            "metric",
            "statistics",
        ],
        "/api/cluster/nodes" => &[
            "date",
            "is_all_flash_optimized",
            "nvram",
            "service_processor",
            "hw_assist",
            "statistics",
        ],
        "/api/storage/aggregates" => &[
            "metric",
            "statistics",
            "cloud_storage",
            "inactive_data_reporting",
        ],
        "/api/storage/disks" => &["outage", "stats", "key_id", "drawer", "error", "paths"],
        "/api/support/ems/events" => &["source", "filter_name"],
        _ => &[],
    }
}

/// The ONTAP simulator.
#[derive(Debug, Default)]
pub struct OntapSim;

impl OntapSim {
    pub fn new() -> OntapSim {
        OntapSim
    }

    fn body(
        &self,
        system: &SystemState,
        now: &SimTime,
        path: &str,
        req: &SimRequest,
    ) -> Option<Value> {
        let live = system.mode == Mode::Live;
        let mut body: Value = match path {
            "/api/cluster" => {
                let mut v = parse(CLUSTER);
                if system.scenario == Scenario::NoPerformance {
                    // ONTAP 9.5: no cluster `metric` or `statistics` yet (added in 9.6).
                    if let Some(obj) = v.as_object_mut() {
                        obj.remove("metric");
                        obj.remove("statistics");
                    }
                    v["version"] = json!({"full": "NetApp Release 9.5P14: Tue Jan 14 02:01:59 UTC 2020", "generation": 9, "major": 5, "minor": 0});
                }
                v
            }
            "/api/cluster/nodes" => {
                let mut v = parse(NODES);
                if live && system.scenario == Scenario::Degraded {
                    v["records"][0]["controller"]["failed_power_supply"]["count"] = json!(1);
                }
                v
            }
            "/api/storage/aggregates" => {
                let mut v = parse(AGGREGATES);
                if live {
                    let cap = live_capacity(system, now);
                    let half_total = cap.total_bytes / 2;
                    let used = [cap.used_bytes / 2, cap.used_bytes - cap.used_bytes / 2];
                    let ratio = cap.data_reduction.unwrap_or(1.0);
                    if let Some(records) = v["records"].as_array_mut() {
                        for (i, r) in records.iter_mut().enumerate().take(2) {
                            let b = &mut r["space"]["block_storage"];
                            b["size"] = json!(half_total);
                            b["used"] = json!(used[i]);
                            b["available"] = json!(half_total - used[i]);
                            b["used_percent"] = json!(used[i] * 100 / half_total.max(1));
                            r["space"]["efficiency"]["ratio"] = json!(ratio);
                        }
                    }
                }
                v
            }
            "/api/storage/disks" => parse(DISKS),
            "/api/storage/volumes" => parse(VOLUMES),
            "/api/cluster/peers" => parse(PEERS),
            "/api/snapmirror/relationships" => parse(SNAPMIRROR),
            "/api/cluster/metrocluster" => {
                if system.hash(77).is_multiple_of(2) || !live {
                    parse(METROCLUSTER)
                } else {
                    parse(METROCLUSTER_NOT_CONFIGURED)
                }
            }
            "/api/network/ip/interfaces" => {
                let mut v = parse(INTERFACES);
                if system.scenario == Scenario::LifDown {
                    set_where(
                        &mut v,
                        |r| r["name"] == "lif_nfs01_a01",
                        "state",
                        json!("down"),
                    );
                }
                v
            }
            "/api/network/ethernet/ports" => {
                let mut v = parse(PORTS);
                if system.scenario == Scenario::PortDown {
                    set_where(
                        &mut v,
                        |r| r["name"] == "e0c" && r["node"]["name"] == "cl-prod-a-01",
                        "state",
                        json!("down"),
                    );
                }
                v
            }
            "/api/support/ems/events" => {
                let mut problems = parse(EMS);
                let mut recoveries = parse(EMS_RECOVERY);
                if live {
                    live_ems(system, now, &mut problems, &mut recoveries);
                }
                // Both EMS queries go to the same collection; the filters pick the events.
                let mut all: Vec<Value> = Vec::new();
                for v in [problems, recoveries] {
                    if let Value::Array(records) = v["records"].clone() {
                        all.extend(records);
                    }
                }
                all.sort_by_key(|r| {
                    std::cmp::Reverse(r["time"].as_str().and_then(parse_ms).unwrap_or(0))
                });
                let n = all.len();
                json!({"records": all, "num_records": n, "_links": {"self": {"href": "/api/support/ems/events"}}})
            }
            _ => return None,
        };
        if live {
            shift_times(&mut body, now.epoch_ms - FIXTURE_T0_MS);
        }
        if path == "/api/support/ems/events" {
            // Filtered after the shift, so `time=>…` compares with the times served.
            filter_ems(&mut body, req);
        }
        Some(body)
    }
}

impl VendorSim for OntapSim {
    fn handle(&self, system: &mut SystemState, now: &SimTime, req: &SimRequest) -> SimResponse {
        let authorized = req
            .header("authorization")
            .and_then(|h| h.strip_prefix("Basic "))
            .and_then(|b| {
                base64::engine::general_purpose::STANDARD
                    .decode(b.trim())
                    .ok()
            })
            .and_then(|raw| String::from_utf8(raw).ok())
            .and_then(|text| {
                text.split_once(':')
                    .map(|(u, p)| system.credentials_ok(Some(u), p))
            })
            .unwrap_or(false);
        if !authorized {
            system.stats.unauthorized += 1;
            return self
                .error(401, "User is not authorized.")
                .with_header("www-authenticate", "Basic realm=\"ONTAP\"");
        }
        if req.method != "GET" {
            return self.error(405, "The method is not allowed for this resource.");
        }
        let path = req.path.trim_end_matches('/');
        let Some(mut body) = self.body(system, now, path, req) else {
            return self.error(404, &format!("API not found: {path}"));
        };
        if let Some(fields) = req.param("fields") {
            let old_release = system.scenario == Scenario::NoPerformance;
            let mut allowed: Vec<String> = extra_fields(path)
                .iter()
                .filter(|f| !(old_release && matches!(**f, "metric" | "statistics")))
                .map(|s| (*s).to_owned())
                .collect();
            allowed.push("*".into());
            let sample: Vec<&Value> = match body["records"].as_array() {
                Some(records) => records.iter().collect(),
                None => vec![&body],
            };
            for record in sample {
                if let Some(obj) = record.as_object() {
                    allowed.extend(obj.keys().cloned());
                }
            }
            let wanted: Vec<&str> = fields
                .split(',')
                .map(str::trim)
                .filter(|f| !f.is_empty())
                .collect();
            for f in &wanted {
                let top = f.split('.').next().unwrap_or("");
                if !allowed.iter().any(|a| a == top) {
                    return SimResponse::json(
                        400,
                        &json!({"error": {"message": format!("The value \"{f}\" is invalid for field \"fields\" (<field,...>)"), "code": "262197", "target": "fields"}}),
                    );
                }
            }
            if let Some(f) = wanted.iter().find(|f| !sub_field_exists(&body, f)) {
                return SimResponse::json(
                    400,
                    &json!({"error": {"message": format!("The value \"{f}\" is invalid for field \"fields\" (<field,...>)"), "code": "262197", "target": "fields"}}),
                );
            }
            if !wanted.contains(&"*") {
                let tops: Vec<&str> = wanted
                    .iter()
                    .map(|f| f.split('.').next().unwrap_or(""))
                    .collect();
                project(&mut body, &tops);
                project_sub_fields(&mut body, &wanted);
            }
        }
        if body.get("records").is_some() {
            page(&mut body, system, req, path);
        }
        SimResponse::json(200, &body)
    }

    fn capacity(&self, system: &SystemState, now: &SimTime) -> Option<Capacity> {
        Some(match system.mode {
            Mode::Fixture => Capacity {
                total_bytes: 500 * TIB,
                used_bytes: 346_346_162_749_440,
                free_bytes: 203_409_651_138_560,
                data_reduction: Some(2.41),
                provisioned_bytes: Some(PROVISIONED),
            },
            Mode::Live => Capacity {
                provisioned_bytes: Some(PROVISIONED),
                ..live_capacity(system, now)
            },
        })
    }

    fn delay(&self, system: &SystemState, req: &SimRequest) -> Option<std::time::Duration> {
        let metric = req.path.trim_end_matches('/') == "/api/cluster"
            && req
                .param("fields")
                .is_some_and(|f| f.split(',').any(|x| x.trim().starts_with("metric")));
        (metric && system.scenario == Scenario::SlowPerformance).then_some(super::SLOW_PERFORMANCE)
    }

    fn error(&self, status: u16, message: &str) -> SimResponse {
        // A 400 is ONTAP's most common one: an invalid name in `fields=` (code 262197).
        let (code, target) = match status {
            400 => ("262197", Some("fields")),
            401 => ("6691623", None),
            404 => ("3", None),
            _ => ("1", None),
        };
        SimResponse::json(
            status,
            &json!({"error": {"message": message, "code": code, "target": target}}),
        )
    }
}

fn parse(text: &str) -> Value {
    serde_json::from_str(text).unwrap_or(Value::Null)
}

/// Sets `key` to `value` in every record of a collection (`records`, or `items` for Pure) that
/// `select` picks. Shared with the other vendor sims.
pub(crate) fn set_where(
    body: &mut Value,
    select: impl Fn(&Value) -> bool,
    key: &str,
    value: Value,
) {
    for list in ["records", "items", "nics"] {
        if let Some(records) = body.get_mut(list).and_then(Value::as_array_mut) {
            for r in records.iter_mut().filter(|r| select(r)) {
                r[key] = value.clone();
            }
        }
    }
}

/// Live EMS: a DualPath problem that is raised and cleared every 6 simulated hours (the recovery
/// follows the problem in the "cleared" half), plus the scenario's events.
fn live_ems(system: &SystemState, now: &SimTime, problems: &mut Value, recoveries: &mut Value) {
    let phase = (now.elapsed.as_secs() / (6 * 3600) + system.hash(5)) % 2;
    let Some(list) = problems["records"].as_array_mut() else {
        return;
    };
    let at = |ms_before_t0: i64| {
        OffsetDateTime::from_unix_timestamp((FIXTURE_T0_MS - ms_before_t0) / 1000)
            .ok()
            .and_then(|t| t.format(&Rfc3339).ok())
            .unwrap_or_default()
    };
    // The hm.alert.raised of the fixture: in the "cleared" phase a newer hm.alert.cleared exists.
    if phase == 1
        && let Some(raised) = list
            .iter()
            .find(|r| r["message"]["name"] == "hm.alert.raised")
            .cloned()
        && let Some(rlist) = recoveries["records"].as_array_mut()
    {
        let mut cleared = raised;
        cleared["message"] = json!({"severity": "notice", "name": "hm.alert.cleared"});
        cleared["index"] = json!(8_812_100);
        cleared["time"] = json!(at(30 * 60 * 1000));
        cleared["log_message"] = json!(
            "hm.alert.cleared: Alert Id = DualPathToDiskShelf_Alert , Alerting Resource = 1.10 cleared"
        );
        rlist.push(cleared);
    }
    let event = |index: u64, severity: &str, name: &str, message: &str| {
        json!({
            "node": {"name": "cl-prod-a-01"},
            "index": index,
            "time": at(10 * 60 * 1000),
            "message": {"severity": severity, "name": name},
            "parameters": [],
            "log_message": message,
        })
    };
    match system.scenario {
        Scenario::Healthy
        | Scenario::LifDown
        | Scenario::PortDown
        | Scenario::NicNoLink
        | Scenario::MgmtInterfaceDown
        | Scenario::EvergreenZeroUsed
        | Scenario::NoPerformance
        | Scenario::SlowPerformance => {}
        Scenario::Degraded => list.insert(
            0,
            event(
                8_812_200,
                "emergency",
                "monitor.chassisPowerSupply.off",
                "monitor.chassisPowerSupply.off: Power supply PSU2 on cl-prod-a-01 is off.",
            ),
        ),
        Scenario::NearFull => list.insert(
            0,
            event(
                8_812_300,
                "alert",
                "wafl.aggr.almost.full",
                "wafl.aggr.almost.full: Aggregate aggr1_a01_ssd is more than 90 % full.",
            ),
        ),
    }
}

/// Applies the EMS query filters: `message.severity`, `message.name` and `time`.
fn filter_ems(body: &mut Value, req: &SimRequest) {
    let list = |name: &str| -> Option<Vec<String>> {
        req.param(name).map(|v| {
            v.split(['|', ','])
                .map(|s| s.trim().to_owned())
                .filter(|s| !s.is_empty())
                .collect()
        })
    };
    let severities = list("message.severity");
    let names = list("message.name");
    let since = req.param("time").and_then(|t| {
        let t = t.trim_start_matches(">=").trim_start_matches('>');
        t.parse::<i64>()
            .ok()
            .map(|s| s * 1000)
            .or_else(|| parse_ms(t))
    });
    if let Some(records) = body["records"].as_array_mut() {
        records.retain(|r| {
            severities
                .as_ref()
                .is_none_or(|s| s.iter().any(|x| r["message"]["severity"] == x.as_str()))
                && names
                    .as_ref()
                    .is_none_or(|n| n.iter().any(|x| r["message"]["name"] == x.as_str()))
                && since
                    .is_none_or(|s| r["time"].as_str().and_then(parse_ms).is_some_and(|t| t > s))
        });
        let n = records.len();
        body["num_records"] = json!(n);
    }
}

/// Keeps only the named top-level fields (plus the key fields) of each record.
fn project(body: &mut Value, tops: &[&str]) {
    let keep = |v: &mut Value| {
        if let Some(obj) = v.as_object_mut() {
            obj.retain(|k, _| {
                tops.contains(&k.as_str()) || matches!(k.as_str(), "uuid" | "name" | "_links")
            });
        }
    };
    match body["records"].as_array_mut() {
        Some(records) => records.iter_mut().for_each(keep),
        None => keep(body),
    }
}

/// False when `field` names a sub-field (`metric.iops`) of an object the records have whose
/// known keys do not include it (ONTAP rejects it with 262197 like an unknown top-level name).
/// Only the second level is checked, and only where a record has the object.
fn sub_field_exists(body: &Value, field: &str) -> bool {
    let mut parts = field.split('.');
    let (Some(top), Some(sub)) = (parts.next(), parts.next()) else {
        return true;
    };
    let records: Vec<&Value> = match body["records"].as_array() {
        Some(records) => records.iter().collect(),
        None => vec![body],
    };
    let objects: Vec<&serde_json::Map<String, Value>> = records
        .iter()
        .filter_map(|r| r.get(top).and_then(Value::as_object))
        .collect();
    objects.is_empty() || objects.iter().any(|o| o.contains_key(sub))
}

/// Projects the objects named with sub-fields (`fields=metric.iops,metric.latency`) to those
/// sub-fields, as ONTAP does; an object also named whole (`metric`) keeps everything.
fn project_sub_fields(body: &mut Value, wanted: &[&str]) {
    let mut subs: Vec<(&str, Vec<&str>)> = Vec::new();
    for f in wanted {
        let mut parts = f.splitn(3, '.');
        let top = parts.next().unwrap_or("");
        let sub = parts.next();
        if wanted.contains(&top) {
            continue;
        }
        let Some(sub) = sub else { continue };
        match subs.iter_mut().find(|(t, _)| *t == top) {
            Some((_, list)) => list.push(sub),
            None => subs.push((top, vec![sub])),
        }
    }
    let keep = |record: &mut Value| {
        for (top, list) in &subs {
            if let Some(obj) = record.get_mut(*top).and_then(Value::as_object_mut) {
                obj.retain(|k, _| list.contains(&k.as_str()));
            }
        }
    };
    match body["records"].as_array_mut() {
        Some(records) => records.iter_mut().for_each(keep),
        None => keep(body),
    }
}

/// Cuts a collection to one page: `max_records` and the fleet's page cap, from `start.index`;
/// `_links.next.href` points at the next page, relative to the cluster like ONTAP's.
fn page(body: &mut Value, system: &SystemState, req: &SimRequest, path: &str) {
    let Some(records) = body["records"].as_array().cloned() else {
        return;
    };
    let asked = req
        .param("max_records")
        .and_then(|m| m.parse::<usize>().ok());
    let size = match (asked, system.page_cap) {
        (Some(a), Some(c)) => Some(a.min(c)),
        (a, c) => a.or(c),
    }
    .map(|s| s.max(1));
    let start = req
        .param("start.index")
        .and_then(|s| s.parse::<usize>().ok())
        .unwrap_or(0)
        .min(records.len());
    let end = size.map_or(records.len(), |s| (start + s).min(records.len()));
    let slice: Vec<Value> = records[start..end].to_vec();
    body["num_records"] = json!(slice.len());
    body["records"] = Value::Array(slice);
    if end < records.len() {
        let mut query: Vec<String> = req
            .query
            .iter()
            .filter(|(k, _)| k != "start.index")
            .map(|(k, v)| format!("{}={}", encode(k), encode(v)))
            .collect();
        query.push(format!("start.index={end}"));
        body["_links"]["next"] = json!({"href": format!("{path}?{}", query.join("&"))});
    }
}

fn encode(text: &str) -> String {
    let mut out = String::new();
    for b in text.bytes() {
        if b.is_ascii_alphanumeric() || b"-_.,*".contains(&b) {
            out.push(b as char);
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

/// An RFC 3339 timestamp in ms since the epoch.
pub(crate) fn parse_ms(text: &str) -> Option<i64> {
    let t = OffsetDateTime::parse(text, &Rfc3339).ok()?;
    i64::try_from(t.unix_timestamp_nanos() / 1_000_000).ok()
}

/// Moves every timestamp in a body by `delta_ms`: RFC 3339 strings (kept in UTC with their
/// precision), and integers under keys ending in `epoch`/`Epoch` (seconds).
pub(crate) fn shift_times(value: &mut Value, delta_ms: i64) {
    match value {
        Value::Object(map) => {
            for (key, v) in map.iter_mut() {
                let lower = key.to_ascii_lowercase();
                if lower.ends_with("epoch")
                    && let Some(s) = v.as_i64()
                {
                    *v = json!(s + delta_ms / 1000);
                } else {
                    shift_times(v, delta_ms);
                }
            }
        }
        Value::Array(items) => items.iter_mut().for_each(|v| shift_times(v, delta_ms)),
        Value::String(text) => {
            if text.len() >= 20
                && text.as_bytes().get(10) == Some(&b'T')
                && let Ok(t) = OffsetDateTime::parse(text, &Rfc3339)
            {
                let shifted = t + time::Duration::milliseconds(delta_ms);
                let millis = text.contains('.');
                let utc = shifted.to_offset(time::UtcOffset::UTC);
                let formatted = if millis {
                    format!(
                        "{:04}-{:02}-{:02}T{:02}:{:02}:{:02}.{:03}Z",
                        utc.year(),
                        utc.month() as u8,
                        utc.day(),
                        utc.hour(),
                        utc.minute(),
                        utc.second(),
                        utc.millisecond()
                    )
                } else {
                    utc.replace_nanosecond(0)
                        .unwrap_or(utc)
                        .format(&Rfc3339)
                        .unwrap_or_else(|_| text.clone())
                };
                *text = formatted;
            }
        }
        _ => {}
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sub_fields_are_checked_and_projected() {
        let mut cluster = parse(CLUSTER);
        assert!(sub_field_exists(&cluster, "metric.iops"));
        assert!(sub_field_exists(&cluster, "name"));
        assert!(!sub_field_exists(&cluster, "metric.bogus"));
        project_sub_fields(&mut cluster, &["metric.iops", "metric.latency"]);
        let keys: Vec<&String> = cluster["metric"]
            .as_object()
            .map(|m| m.keys().collect())
            .unwrap_or_default();
        assert_eq!(keys, ["iops", "latency"]);
        assert_eq!(cluster["metric"]["iops"]["read"], 18234);

        // An object also named whole keeps everything.
        let mut whole = parse(CLUSTER);
        project_sub_fields(&mut whole, &["metric", "metric.iops"]);
        assert!(whole["metric"]["status"].is_string());
    }

    #[test]
    fn shift_moves_iso_and_epoch_values() {
        let mut v = json!({"time": "2026-11-20T06:00:00+00:00", "startsAt": "2026-11-20T05:00:00.000Z", "alert_gen_epoch": 100, "n": 5});
        shift_times(&mut v, 3_600_000);
        assert_eq!(v["time"], "2026-11-20T07:00:00Z");
        assert_eq!(v["startsAt"], "2026-11-20T06:00:00.000Z");
        assert_eq!(v["alert_gen_epoch"], 3700);
        assert_eq!(v["n"], 5);
    }

    #[test]
    fn encode_keeps_fields_readable() {
        assert_eq!(encode("emergency|alert"), "emergency%7Calert");
        assert_eq!(encode("name,state"), "name,state");
    }
}
