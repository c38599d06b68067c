//! Simulated Dell PowerProtect DataDomain (REST `/rest/v1.0`, `/rest/v2.0` and `/api/v1`).
//!
//! * `POST /rest/v1.0/auth` with `{username, password}` answers **201** with the token in the
//!   `X-DD-AUTH-TOKEN` header and a `serviceStatus` body; `DELETE /rest/v1.0/auth` logs out.
//!   Every other call needs `X-DD-AUTH-TOKEN`, else 401 with `{details, code}`.
//! * [`Mode::Fixture`] serves `testkit/fixtures/datadomain/` as it is. [`Mode::Live`] moves the
//!   epochs with the simulated clock, reports [`live_capacity`] (compression factor = its data
//!   reduction), opens and closes the replication-lag warning every 6 simulated hours, and applies
//!   the scenarios (healthy: no failed disk; degraded: the failed disk and a critical
//!   power-supply alert; near full: a capacity alert).
//! * Lists page with `page`/`size` (and the fleet's `page_cap`) and carry `paging_info`;
//!   alerts honour `is_active=true`.
//! * The predecessor's paths that `dd_api.json` does not define answer 404.
//! * The `nic_no_link` scenario (in both modes) reports the enabled NIC `ethV0` without link.
//! * `GET /api/v3/dd-systems/0/stats/performance` (schema `SystemPerformance`) serves the
//!   fixture's samples, keeping those the `filter=collection_epoch=(<start>,<end>)` asks for;
//!   in the `no_performance` scenario (an older DD OS) it answers 404, in `slow_performance`
//!   after [`super::SLOW_PERFORMANCE`].
//! * Every answer carries the array's clock in its `Date` header: the fixture time
//!   ([`FIXTURE_T0_MS`]) in [`Mode::Fixture`], the simulated clock in [`Mode::Live`].

use sdash_proto::Capacity;
use serde_json::{Value, json};

use super::ontap::{FIXTURE_T0_MS, shift_times};
use super::{
    Mode, Scenario, SimRequest, SimResponse, SimTime, SystemState, VendorSim, live_capacity,
};

const AUTH: &str = include_str!("../../fixtures/datadomain/rest_v1.0_auth.json");
const AUTH_DELETE: &str = include_str!("../../fixtures/datadomain/rest_v1.0_auth.delete.json");
const SYSTEM: &str = include_str!("../../fixtures/datadomain/rest_v1.0_system.json");
const ALERTS: &str = include_str!("../../fixtures/datadomain/rest_v1.0_dd-systems_0_alerts.json");
const DISKS: &str =
    include_str!("../../fixtures/datadomain/api_v1_dd-systems_0_storage_disks.json");
const HA: &str = include_str!("../../fixtures/datadomain/api_v1_dd-systems_0_ha.json");
const REPLICATION: &str =
    include_str!("../../fixtures/datadomain/api_v1_dd-systems_0_mtree-replications.json");
const NETWORKS: &str =
    include_str!("../../fixtures/datadomain/rest_v1.0_dd-systems_0_networks.json");
const NETWORK_ETHMA: &str =
    include_str!("../../fixtures/datadomain/rest_v1.0_dd-systems_0_networks_ethMa.json");
const NICS: &str =
    include_str!("../../fixtures/datadomain/rest_v2.0_dd-systems_0_networks_nics.json");
const NIC_ETHMA: &str =
    include_str!("../../fixtures/datadomain/rest_v2.0_dd-systems_0_networks_nics_ethMa.json");
const SERVICES: &str =
    include_str!("../../fixtures/datadomain/rest_v1.0_dd-systems_0_services.json");
const PERFORMANCE: &str =
    include_str!("../../fixtures/datadomain/api_v3_dd-systems_0_stats_performance.json");
const PERFORMANCE_PATH: &str = "/api/v3/dd-systems/0/stats/performance";

const TIB: u64 = 1 << 40;

/// The DataDomain simulator.
#[derive(Debug, Default)]
pub struct DataDomainSim;

impl DataDomainSim {
    pub fn new() -> DataDomainSim {
        DataDomainSim
    }

    fn auth(&self, system: &mut SystemState, req: &SimRequest) -> SimResponse {
        match req.method.as_str() {
            "POST" => {
                let body: Value = serde_json::from_slice(&req.body).unwrap_or(Value::Null);
                let (Some(user), Some(pass)) =
                    (body["username"].as_str(), body["password"].as_str())
                else {
                    return self.error(400, "username and password are required");
                };
                if !system.credentials_ok(Some(user), pass) {
                    system.stats.failed_logins += 1;
                    return self.error(401, "Authentication failed. Invalid username or password.");
                }
                system.stats.logins += 1;
                let token = system.new_session();
                SimResponse::json(201, &parse(AUTH)).with_header("X-DD-AUTH-TOKEN", &token)
            }
            "DELETE" => {
                if let Some(token) = req.header("x-dd-auth-token") {
                    system.sessions.remove(token);
                }
                system.stats.logouts += 1;
                SimResponse::json(200, &parse(AUTH_DELETE))
            }
            _ => self.error(405, "method not allowed"),
        }
    }

    fn body(&self, system: &SystemState, now: &SimTime, path: &str) -> Option<Value> {
        let live = system.mode == Mode::Live;
        let mut body = match path {
            "/rest/v1.0/system" => {
                let mut v = parse(SYSTEM);
                if live {
                    let c = live_capacity(system, now);
                    let physical = json!({"total": c.total_bytes, "used": c.used_bytes, "available": c.free_bytes, "cleanable": 0});
                    v["physical_capacity"] = physical.clone();
                    v["compression_factor"] = json!(c.data_reduction.unwrap_or(1.0));
                    if let Some(tiers) = v["capacity_usage_details"].as_array_mut() {
                        for t in tiers.iter_mut() {
                            t["physical_capacity"] = physical.clone();
                            t["compression_factor"] = json!(c.data_reduction.unwrap_or(1.0));
                        }
                    }
                }
                v
            }
            "/rest/v1.0/dd-systems/0/alerts" => {
                let mut v = parse(ALERTS);
                if live {
                    live_alerts(system, now, &mut v);
                }
                v
            }
            "/api/v1/dd-systems/0/storage/disks" => {
                let mut v = parse(DISKS);
                if live
                    && system.scenario != Scenario::Degraded
                    && let Some(disks) = v["diskInfo"].as_array_mut()
                {
                    for d in disks.iter_mut().filter(|d| d["status"] == "FAILED") {
                        d["status"] = json!("IN_USE");
                    }
                }
                v
            }
            "/api/v1/dd-systems/0/ha" => parse(HA),
            "/api/v1/dd-systems/0/mtree-replications" => parse(REPLICATION),
            "/rest/v1.0/dd-systems/0/networks" => parse(NETWORKS),
            "/rest/v1.0/dd-systems/0/networks/ethMa" => parse(NETWORK_ETHMA),
            "/rest/v2.0/dd-systems/0/networks/nics" => {
                let mut v = parse(NICS);
                if system.scenario == Scenario::NicNoLink {
                    super::ontap::set_where(
                        &mut v,
                        |n| n["name"] == "ethV0",
                        "has_link",
                        json!(false),
                    );
                }
                v
            }
            "/rest/v2.0/dd-systems/0/networks/nics/ethMa" => parse(NIC_ETHMA),
            "/rest/v1.0/dd-systems/0/services" => parse(SERVICES),
            PERFORMANCE_PATH if system.scenario != Scenario::NoPerformance => parse(PERFORMANCE),
            _ => return None,
        };
        if live {
            shift_times(&mut body, now.epoch_ms - FIXTURE_T0_MS);
        }
        Some(body)
    }
}

impl VendorSim for DataDomainSim {
    fn handle(&self, system: &mut SystemState, now: &SimTime, req: &SimRequest) -> SimResponse {
        let clock_ms = match system.mode {
            Mode::Fixture => FIXTURE_T0_MS,
            Mode::Live => now.epoch_ms,
        };
        let response = self.answer(system, now, req);
        match http_date(clock_ms) {
            Some(date) => response.with_header("date", &date),
            None => response,
        }
    }

    fn capacity(&self, system: &SystemState, now: &SimTime) -> Option<Capacity> {
        Some(match system.mode {
            Mode::Fixture => Capacity {
                total_bytes: 500 * TIB,
                used_bytes: 346_346_162_749_440,
                free_bytes: 203_409_651_138_560,
                data_reduction: Some(18.4),
                provisioned_bytes: None,
            },
            Mode::Live => live_capacity(system, now),
        })
    }

    fn delay(&self, system: &SystemState, req: &SimRequest) -> Option<std::time::Duration> {
        (system.scenario == Scenario::SlowPerformance
            && req.path.trim_end_matches('/') == PERFORMANCE_PATH)
            .then_some(super::SLOW_PERFORMANCE)
    }

    fn error(&self, status: u16, message: &str) -> SimResponse {
        let code = match status {
            401 => 5023,
            404 => 5404,
            _ => 5000 + i64::from(status),
        };
        SimResponse::json(status, &json!({"details": message, "code": code}))
    }
}

impl DataDomainSim {
    fn answer(&self, system: &mut SystemState, now: &SimTime, req: &SimRequest) -> SimResponse {
        let path = req.path.trim_end_matches('/');
        if path == "/rest/v1.0/auth" {
            return self.auth(system, req);
        }
        let token_ok = req
            .header("x-dd-auth-token")
            .is_some_and(|t| system.sessions.contains(t.trim()));
        if !token_ok {
            system.stats.unauthorized += 1;
            return self.error(401, "Authentication failed. Invalid or expired token.");
        }
        if req.method != "GET" {
            return self.error(405, "method not allowed");
        }
        let Some(mut body) = self.body(system, now, path) else {
            return self.error(404, &format!("resource not found: {path}"));
        };
        if path.ends_with("/alerts")
            && req.param("is_active") == Some("true")
            && let Some(list) = body["alert_list"].as_array_mut()
        {
            list.retain(|a| a["status"] == "active");
        }
        if path == PERFORMANCE_PATH {
            filter_epochs(&mut body, req);
        }
        for key in ["alert_list", "diskInfo", "contexts", "statsPerformance"] {
            if body.get(key).is_some() {
                page(&mut body, key, system, req);
            }
        }
        SimResponse::json(200, &body)
    }
}

/// An HTTP `Date` (IMF-fixdate) of epoch milliseconds.
fn http_date(epoch_ms: i64) -> Option<String> {
    let t = time::OffsetDateTime::from_unix_timestamp(epoch_ms.div_euclid(1000)).ok()?;
    let format = time::macros::format_description!(
        "[weekday repr:short], [day] [month repr:short] [year] [hour]:[minute]:[second] GMT"
    );
    t.format(format).ok()
}

/// Keeps the performance samples within `filter=collection_epoch=(<start>,<end>)` (either bound
/// may be empty); a filter not of that form keeps everything, as the default `0` does.
fn filter_epochs(body: &mut Value, req: &SimRequest) {
    let Some(range) = req.param("filter").and_then(|f| {
        let (key, value) = f.split_once('=')?;
        (key.trim() == "collection_epoch").then_some(())?;
        let inner = value.trim().strip_prefix('(')?.strip_suffix(')')?;
        let (start, end) = inner.split_once(',')?;
        let bound = |b: &str| b.trim().parse::<i64>().ok();
        Some((bound(start), bound(end)))
    }) else {
        return;
    };
    if let Some(samples) = body["statsPerformance"].as_array_mut() {
        samples.retain(|s| {
            let epoch = s["collectionEpoch"].as_i64().unwrap_or(0);
            range.0.is_none_or(|start| epoch >= start) && range.1.is_none_or(|end| epoch <= end)
        });
    }
}

fn parse(text: &str) -> Value {
    serde_json::from_str(text).unwrap_or(Value::Null)
}

/// Live alerts: the disk alert belongs to the degraded scenario (with a critical PSU alert), the
/// replication-lag warning opens and closes every 6 simulated hours, the cleaning notice stays.
fn live_alerts(system: &SystemState, now: &SimTime, body: &mut Value) {
    let phase = (now.elapsed.as_secs() / (6 * 3600) + system.hash(9)) % 2;
    let Some(list) = body["alert_list"].as_array_mut() else {
        return;
    };
    list.retain(|a| match a["class"].as_str() {
        Some("HardwareFailure") => system.scenario == Scenario::Degraded,
        Some("Replication") => phase == 0,
        _ => true,
    });
    let alert = |id: &str, class: &str, severity: &str, msg: &str| {
        json!({
            "id": format!("0%3A0%3A{id}"), "alert_id": id, "name": id, "alert_gen_epoch": FIXTURE_T0_MS / 1000 - 600,
            "msg": msg, "description": msg, "status": "active", "class": class, "severity": severity,
        })
    };
    match system.scenario {
        Scenario::Degraded => {
            list.insert(
                0,
                alert(
                    "p0-1300",
                    "Environment",
                    "CRITICAL",
                    "Power supply 1 in enclosure 1 has failed.",
                ),
            );
        }
        Scenario::NearFull => {
            list.insert(
                0,
                alert(
                    "p0-1301",
                    "Capacity",
                    "CRITICAL",
                    "Active tier is more than 90 % full.",
                ),
            );
        }
        _ => {}
    }
}

/// Cuts a list to one page (`page` from 0, `size` and the fleet's page cap) and writes its
/// `paging_info`.
fn page(body: &mut Value, key: &str, system: &SystemState, req: &SimRequest) {
    let Some(all) = body[key].as_array().cloned() else {
        return;
    };
    let asked = req.param("size").and_then(|s| s.parse::<usize>().ok());
    let size = match (asked, system.page_cap) {
        (Some(a), Some(c)) => a.min(c),
        (Some(a), None) => a,
        (None, Some(c)) => c,
        (None, None) => all.len().max(1),
    }
    .max(1);
    let current = req
        .param("page")
        .and_then(|p| p.parse::<usize>().ok())
        .unwrap_or(0);
    let start = current.saturating_mul(size).min(all.len());
    let end = (start + size).min(all.len());
    body[key] = Value::Array(all[start..end].to_vec());
    body["paging_info"] = json!({
        "current_page": current,
        "page_entries": end - start,
        "total_entries": all.len(),
        "page_size": size,
        "page_links": [],
    });
}
