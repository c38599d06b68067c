//! NetApp ONTAP 9 (REST API, unversioned paths under `/api`).
//!
//! Authentication: HTTP Basic on every request; there is no session, login or logout.
//!
//! Calls per poll (every `fields=` list names only fields that exist in the ONTAP 9 model: one
//! unknown name makes ONTAP fail the whole call with 400/262197):
//!
//! | call | use | essential |
//! |---|---|---|
//! | `GET /api/cluster?fields=name,uuid,version` | name, version (`version.full` up to the first `:`) | yes: a non-200 fails the poll (`auth_failed` on 401/403, else `error`) |
//! | `GET /api/cluster/nodes?fields=…` | nodes, model, hardware health (on 400/262197 retried once with the basic fields only) | no |
//! | `GET /api/storage/aggregates?fields=name,state,space` | capacity, aggregate state | no |
//! | `GET /api/storage/disks?fields=name,state,container_type` | broken disks | no |
//! | `GET /api/support/ems/events` (problems, then recoveries) | open alerts | no |
//! | `GET /api/cluster/peers?fields=name,uuid,status` | cluster peer availability | no |
//! | `GET /api/snapmirror/relationships?fields=…` | replication health | no |
//! | `GET /api/cluster/metrocluster` | MetroCluster state (only when configured) | no |
//!
//! Collections are followed through `_links.next.href` until it is absent. A failing
//! non-essential call degrades the snapshot (`error` set, a warning event naming the endpoint,
//! the HTTP status and ONTAP's own reason such as `262197: …`) instead of failing the poll.
//!
//! Health rules (each one is a function below, with its own tests):
//!
//! * **Nodes** ([`node_component`]): `state` up → ok; booting, waiting_for_giveback, unknown →
//!   warning; down, taken_over, degraded → error. HA giveback/takeover states outside
//!   {nothing_to_giveback, not_attempted, enabled, ready, ""} → warning. Failed power supplies or
//!   fans (`controller.failed_*.count > 0`) → warning (the node runs on its redundant unit);
//!   `controller.over_temperature == "over"` → error. Hardware health = the worst node.
//! * **Aggregates** ([`aggregate_capacity`], [`aggregate_components`]): capacity is the sum of
//!   `space.block_storage.size` / `.used`; free is the sum of `.available` when every aggregate
//!   reports it, else size − used. Data reduction is `space.efficiency.ratio`, weighted by used
//!   bytes over the aggregates that report it. `state` other than online → hardware error.
//! * **Disks** ([`disk_components`]): `state == broken` or `container_type == broken` → hardware
//!   error; reconstructing, maintenance, pending, removed → warning. Only unhealthy disks become
//!   components, plus one `disks` summary component.
//! * **EMS** ([`ems_alerts`]): the two EMS queries are a log, not a state store, so open problems
//!   are reconstructed: events older than the look-back window (96 h) are dropped; names with a
//!   hardware prefix (`hm.`, `disk.`, `raid.`, `nvme.`, `nvmf.`, `env.`, `cf.`, `node.`, `sas.`,
//!   `fc.`, `callhome.`, `cpeer.`) are kept at any fetched severity, others only at emergency or
//!   alert; a problem with a newer recovery for the same key is dropped (`hm.alert.raised`/
//!   `cleared`: node + alert id; `cpeer.unavailable`/`available`: peer name;
//!   `cf.fsm.monitor.globalStatus.critical`/`ok`: node). Severity: emergency → critical,
//!   alert → error, error → error. An open emergency event → hardware error; an open event with a
//!   hardware prefix → hardware warning. If the problem query fails the poll is degraded and
//!   reports no alerts; if only the recovery query fails, every problem in the window counts as
//!   open (a stale alert beats a silently missing one).
//! * **Cluster** ([`peer_components`], [`snapmirror_components`], [`metrocluster_component`]):
//!   a peer whose `status.state` is not `available` → cluster warning; a SnapMirror relationship
//!   with `healthy == false` → cluster warning; MetroCluster is only looked at when
//!   `local.configuration_state == configured` (not_configured is the normal case): a local or
//!   remote mode other than `normal`, or an unreachable partner cluster → cluster warning.

use std::collections::HashMap;
use std::time::Duration;

use base64::Engine;
use base64::engine::general_purpose::STANDARD as BASE64;
use sdash_proto::{
    Alert, Capacity, Category, Component, Health, Level, Severity, Snapshot, Status, Vendor,
};
use serde::Deserialize;
use serde::de::DeserializeOwned;

use super::PollOutput;
use crate::http::{
    AlertMemory, HttpClient, HttpError, OntapCollection, Pager, PollContext, SetupError,
    StatusTracker, split_href, worst_health,
};
use crate::inventory::{Credentials, SystemConfig};
use time::OffsetDateTime;
use time::format_description::well_known::Rfc3339;

/// EMS look-back window: the Python app's 96 hours.
pub const EMS_WINDOW: Duration = Duration::from_secs(96 * 3600);

/// Paths and queries (fields named explicitly; every name exists in the ONTAP 9 model).
pub const CLUSTER_PATH: &str = "/api/cluster?fields=name,uuid,version";
pub const NODES_PATH: &str = "/api/cluster/nodes?fields=name,uuid,state,model,serial_number,version,ha,\
controller.failed_power_supply.count,controller.failed_fan.count,controller.over_temperature";
/// The node query for releases that reject one of the [`NODES_PATH`] fields (400/262197).
pub const NODES_MINIMAL_PATH: &str =
    "/api/cluster/nodes?fields=name,uuid,state,model,serial_number,version";
pub const AGGREGATES_PATH: &str = "/api/storage/aggregates?fields=name,state,space";
pub const DISKS_PATH: &str = "/api/storage/disks?fields=name,state,container_type";
pub const PEERS_PATH: &str = "/api/cluster/peers?fields=name,uuid,status";
pub const SNAPMIRROR_PATH: &str =
    "/api/snapmirror/relationships?fields=healthy,unhealthy_reason,state,source,destination";
pub const METROCLUSTER_PATH: &str = "/api/cluster/metrocluster";
const EMS_FIELDS: &str = "fields=index,message.name,message.severity,log_message,time,node.name,parameters&max_records=500&order_by=time%20desc";

/// The EMS problem query: emergency, alert and error events newer than `since`.
pub fn ems_problems_path(since: OffsetDateTime) -> String {
    format!(
        "/api/support/ems/events?message.severity=emergency%7Calert%7Cerror&time=%3E{}&{EMS_FIELDS}",
        since_query(since)
    )
}

/// The EMS recovery query: the events that clear a problem, newer than `since`.
pub fn ems_recoveries_path(since: OffsetDateTime) -> String {
    format!(
        "/api/support/ems/events?message.name=cf.fsm.monitor.globalStatus.ok%7Ccpeer.available%7Chm.alert.cleared&time=%3E{}&{EMS_FIELDS}",
        since_query(since)
    )
}

fn since_query(since: OffsetDateTime) -> String {
    since
        .replace_nanosecond(0)
        .unwrap_or(since)
        .format(&Rfc3339)
        .unwrap_or_default()
        .replace(':', "%3A")
        .replace('+', "%2B")
}

// ---------------------------------------------------------------------------------------------
// Response bodies (tolerant: every field defaults).
// ---------------------------------------------------------------------------------------------

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(default)]
pub struct Named {
    pub name: String,
}

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(default)]
pub struct Version {
    pub full: String,
}

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(default)]
pub struct ClusterInfo {
    pub name: String,
    pub uuid: String,
    pub version: Version,
}

impl ClusterInfo {
    /// `version.full` up to the first `:` ("NetApp Release 9.15.1P4").
    pub fn version(&self) -> Option<String> {
        short_version(&self.version.full)
    }
}

fn short_version(full: &str) -> Option<String> {
    let text = full.split(':').next().unwrap_or("").trim();
    (!text.is_empty()).then(|| text.to_owned())
}

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(default)]
pub struct Node {
    pub name: String,
    pub state: String,
    pub model: String,
    pub serial_number: String,
    pub version: Version,
    pub ha: NodeHa,
    pub controller: NodeController,
}

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(default)]
pub struct NodeHa {
    pub enabled: Option<bool>,
    pub giveback: StateField,
    pub takeover: StateField,
}

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(default)]
pub struct StateField {
    pub state: String,
}

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(default)]
pub struct NodeController {
    pub over_temperature: String,
    pub failed_fan: Count,
    pub failed_power_supply: Count,
}

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(default)]
pub struct Count {
    pub count: u64,
}

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(default)]
pub struct Aggregate {
    pub name: String,
    pub state: String,
    pub space: AggregateSpace,
}

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(default)]
pub struct AggregateSpace {
    pub block_storage: BlockStorage,
    pub efficiency: Option<Efficiency>,
}

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(default)]
pub struct BlockStorage {
    pub size: u64,
    pub used: u64,
    pub available: Option<u64>,
}

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(default)]
pub struct Efficiency {
    pub ratio: Option<f64>,
}

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(default)]
pub struct Disk {
    pub name: String,
    pub state: String,
    pub container_type: String,
}

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(default)]
pub struct EmsEvent {
    pub index: u64,
    pub time: String,
    pub message: EmsMessage,
    pub log_message: String,
    pub node: Named,
    pub parameters: Vec<EmsParameter>,
}

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(default)]
pub struct EmsMessage {
    pub name: String,
    pub severity: String,
}

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(default)]
pub struct EmsParameter {
    pub name: String,
    pub value: String,
}

impl EmsEvent {
    fn param(&self, names: &[&str]) -> Option<&str> {
        names.iter().find_map(|n| {
            self.parameters
                .iter()
                .find(|p| p.name == *n)
                .map(|p| p.value.as_str())
        })
    }

    fn time_ms(&self) -> Option<i64> {
        parse_time_ms(&self.time)
    }
}

fn parse_time_ms(text: &str) -> Option<i64> {
    let t = OffsetDateTime::parse(text, &Rfc3339).ok()?;
    i64::try_from(t.unix_timestamp_nanos() / 1_000_000).ok()
}

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(default)]
pub struct Peer {
    pub name: String,
    pub status: StateField,
}

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(default)]
pub struct SnapMirror {
    pub uuid: String,
    pub healthy: Option<bool>,
    pub state: String,
    pub unhealthy_reason: Vec<Reason>,
    pub source: Endpoint,
    pub destination: Endpoint,
}

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(default)]
pub struct Reason {
    pub message: String,
}

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(default)]
pub struct Endpoint {
    pub path: String,
}

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(default)]
pub struct MetroCluster {
    pub configuration_type: String,
    pub local: McSide,
    pub remote: McSide,
}

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(default)]
pub struct McSide {
    pub cluster: Named,
    pub configuration_state: String,
    pub mode: String,
    pub partner_cluster_reachable: Option<bool>,
}

/// The ONTAP error envelope `{"error":{"message","code","target"}}` (`code` is a string).
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(default)]
pub struct ErrorBody {
    pub error: ErrorDetail,
}

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(default)]
pub struct ErrorDetail {
    pub message: String,
    pub code: String,
    pub target: String,
}

/// A readable reason from an ONTAP error body, e.g. `262197: The value "x" is invalid…`.
pub fn error_reason(body: &[u8]) -> Option<String> {
    let parsed: ErrorBody = serde_json::from_slice(body).ok()?;
    if parsed.error.message.is_empty() {
        return None;
    }
    Some(if parsed.error.code.is_empty() {
        parsed.error.message
    } else {
        format!("{}: {}", parsed.error.code, parsed.error.message)
    })
}

// ---------------------------------------------------------------------------------------------
// Mapping rules.
// ---------------------------------------------------------------------------------------------

/// One node → a `node` component (see the module docs for the rules).
pub fn node_component(node: &Node) -> Component {
    let mut status = match node.state.as_str() {
        "up" => Health::Ok,
        "down" | "taken_over" | "degraded" => Health::Error,
        _ => Health::Warning,
    };
    let mut detail = vec![format!(
        "state {}",
        if node.state.is_empty() {
            "unknown"
        } else {
            &node.state
        }
    )];
    if !node.model.is_empty() {
        detail.push(format!("model {}", node.model));
    }
    const HA_OK: [&str; 5] = [
        "",
        "nothing_to_giveback",
        "not_attempted",
        "enabled",
        "ready",
    ];
    for (what, state) in [
        ("giveback", &node.ha.giveback.state),
        ("takeover", &node.ha.takeover.state),
    ] {
        if !HA_OK.contains(&state.as_str()) {
            status = status.worst(Health::Warning);
            detail.push(format!("HA {what} {state}"));
        }
    }
    if node.controller.failed_power_supply.count > 0 {
        status = status.worst(Health::Warning);
        detail.push(format!(
            "{} failed power supplies",
            node.controller.failed_power_supply.count
        ));
    }
    if node.controller.failed_fan.count > 0 {
        status = status.worst(Health::Warning);
        detail.push(format!("{} failed fans", node.controller.failed_fan.count));
    }
    if node.controller.over_temperature == "over" {
        status = status.worst(Health::Error);
        detail.push("over temperature".into());
    }
    Component {
        kind: "node".into(),
        name: node.name.clone(),
        status,
        detail: Some(detail.join(", ")),
    }
}

/// The common model of the nodes, or their models joined when they differ.
pub fn nodes_model(nodes: &[Node]) -> Option<String> {
    let mut models: Vec<&str> = nodes
        .iter()
        .map(|n| n.model.as_str())
        .filter(|m| !m.is_empty())
        .collect();
    models.dedup();
    models.sort_unstable();
    models.dedup();
    (!models.is_empty()).then(|| models.join(", "))
}

/// Capacity summed over the aggregates; `None` when there are none.
pub fn aggregate_capacity(aggregates: &[Aggregate]) -> Option<Capacity> {
    if aggregates.is_empty() {
        return None;
    }
    let total: u64 = aggregates.iter().map(|a| a.space.block_storage.size).sum();
    let used: u64 = aggregates.iter().map(|a| a.space.block_storage.used).sum();
    let free = if aggregates
        .iter()
        .all(|a| a.space.block_storage.available.is_some())
    {
        aggregates
            .iter()
            .filter_map(|a| a.space.block_storage.available)
            .sum()
    } else {
        total.saturating_sub(used)
    };
    let (mut weighted, mut weight) = (0.0_f64, 0.0_f64);
    let mut ratios = Vec::new();
    for a in aggregates {
        if let Some(r) = a
            .space
            .efficiency
            .as_ref()
            .and_then(|e| e.ratio)
            .filter(|r| r.is_finite() && *r > 0.0)
        {
            weighted += r * a.space.block_storage.used as f64;
            weight += a.space.block_storage.used as f64;
            ratios.push(r);
        }
    }
    let data_reduction = if weight > 0.0 {
        Some((weighted / weight * 100.0).round() / 100.0)
    } else {
        ratios.first().copied()
    };
    Some(Capacity {
        total_bytes: total,
        used_bytes: used,
        free_bytes: free,
        data_reduction,
    })
}

/// One `aggregate` component per aggregate: `state` other than online → error.
pub fn aggregate_components(aggregates: &[Aggregate]) -> Vec<Component> {
    aggregates
        .iter()
        .map(|a| {
            let status = match a.state.as_str() {
                "online" | "" => Health::Ok,
                _ => Health::Error,
            };
            let b = &a.space.block_storage;
            let pct = if b.size > 0 {
                b.used as f64 * 100.0 / b.size as f64
            } else {
                0.0
            };
            Component {
                kind: "aggregate".into(),
                name: a.name.clone(),
                status,
                detail: Some(format!(
                    "state {}, {pct:.0} % used",
                    if a.state.is_empty() {
                        "unknown"
                    } else {
                        &a.state
                    }
                )),
            }
        })
        .collect()
}

/// Health of one disk (see the module docs).
pub fn disk_health(disk: &Disk) -> Health {
    if disk.state == "broken" || disk.container_type == "broken" {
        Health::Error
    } else if matches!(
        disk.state.as_str(),
        "reconstructing" | "maintenance" | "pending" | "removed"
    ) {
        Health::Warning
    } else {
        Health::Ok
    }
}

/// A `disks` summary component plus one `disk` component per unhealthy disk.
pub fn disk_components(disks: &[Disk]) -> Vec<Component> {
    let mut out = Vec::new();
    let mut worst = Health::Ok;
    let mut bad = 0usize;
    for d in disks {
        let h = disk_health(d);
        if h != Health::Ok {
            bad += 1;
            worst = worst.worst(h);
            out.push(Component {
                kind: "disk".into(),
                name: d.name.clone(),
                status: h,
                detail: Some(format!("state {}, container {}", d.state, d.container_type)),
            });
        }
    }
    out.insert(
        0,
        Component {
            kind: "disks".into(),
            name: "disks".into(),
            status: worst,
            detail: Some(format!("{} disks, {bad} unhealthy", disks.len())),
        },
    );
    out
}

const HARDWARE_PREFIXES: [&str; 12] = [
    "hm.",
    "disk.",
    "raid.",
    "nvme.",
    "nvmf.",
    "env.",
    "cf.",
    "node.",
    "sas.",
    "fc.",
    "callhome.",
    "cpeer.",
];

fn has_hardware_prefix(name: &str) -> bool {
    HARDWARE_PREFIXES.iter().any(|p| name.starts_with(p))
}

/// The pairing key of a problem or recovery event: (family, key).
fn pairing_key(event: &EmsEvent) -> Option<(&'static str, String)> {
    let node = event.node.name.as_str();
    match event.message.name.as_str() {
        "hm.alert.raised" | "hm.alert.cleared" => Some((
            "hm.alert",
            format!(
                "{node}/{}",
                event.param(&["alertId", "alert_id"]).unwrap_or("")
            ),
        )),
        "cpeer.unavailable" | "cpeer.available" => Some((
            "cpeer",
            event
                .param(&["peerName", "peer_name", "peer"])
                .unwrap_or("")
                .to_owned(),
        )),
        "cf.fsm.monitor.globalStatus.critical" | "cf.fsm.monitor.globalStatus.ok" => {
            Some(("cf.fsm", node.to_owned()))
        }
        _ => None,
    }
}

/// Result of the EMS reconstruction: the open alerts and the hardware health they imply.
#[derive(Debug, Clone, PartialEq)]
pub struct EmsState {
    pub alerts: Vec<Alert>,
    pub hardware: Health,
}

/// Normalized severity of an EMS severity word.
pub fn ems_severity(severity: &str) -> Severity {
    match severity {
        "emergency" => Severity::Critical,
        "alert" | "error" => Severity::Error,
        "notice" | "informational" | "debug" => Severity::Info,
        _ => Severity::Warning,
    }
}

/// Reconstructs the open problems from the EMS problem and recovery events (see the module docs).
pub fn ems_alerts(
    problems: &[EmsEvent],
    recoveries: &[EmsEvent],
    now_ms: i64,
    window: Duration,
) -> EmsState {
    let cutoff = now_ms.saturating_sub(i64::try_from(window.as_millis()).unwrap_or(i64::MAX));
    let mut latest_recovery: HashMap<(&'static str, String), i64> = HashMap::new();
    for r in recoveries {
        if let (Some(key), Some(t)) = (pairing_key(r), r.time_ms()) {
            let entry = latest_recovery.entry(key).or_insert(t);
            *entry = (*entry).max(t);
        }
    }
    let mut alerts: Vec<Alert> = Vec::new();
    let mut hardware = Health::Ok;
    for p in problems {
        let Some(t) = p.time_ms() else { continue };
        if t < cutoff {
            continue;
        }
        let name = p.message.name.as_str();
        let severity = p.message.severity.as_str();
        let hw = has_hardware_prefix(name);
        if !hw && !matches!(severity, "emergency" | "alert") {
            continue;
        }
        if let Some(key) = pairing_key(p)
            && latest_recovery.get(&key).is_some_and(|rt| *rt > t)
        {
            continue;
        }
        if severity == "emergency" {
            hardware = Health::Error;
        } else if hw {
            hardware = hardware.worst(Health::Warning);
        }
        let id = format!("{}/{}", p.node.name, p.index);
        if alerts.iter().any(|a| a.id == id) {
            continue;
        }
        alerts.push(Alert {
            id,
            severity: ems_severity(severity),
            vendor_severity: severity.to_owned(),
            title: if p.log_message.is_empty() {
                name.to_owned()
            } else {
                p.log_message.clone()
            },
            component: (!p.node.name.is_empty()).then(|| p.node.name.clone()),
            opened_at: Some(t),
        });
    }
    EmsState { alerts, hardware }
}

/// One `peer` component per cluster peer: `status.state` other than available → warning.
pub fn peer_components(peers: &[Peer]) -> Vec<Component> {
    peers
        .iter()
        .map(|p| Component {
            kind: "peer".into(),
            name: p.name.clone(),
            status: if p.status.state == "available" {
                Health::Ok
            } else {
                Health::Warning
            },
            detail: Some(format!(
                "status {}",
                if p.status.state.is_empty() {
                    "unknown"
                } else {
                    &p.status.state
                }
            )),
        })
        .collect()
}

/// One `replication` component per SnapMirror relationship: `healthy == false` → warning.
pub fn snapmirror_components(relationships: &[SnapMirror]) -> Vec<Component> {
    relationships
        .iter()
        .map(|r| {
            let healthy = r.healthy != Some(false);
            let mut detail = format!("state {}", r.state);
            if let Some(reason) = r.unhealthy_reason.first().filter(|_| !healthy) {
                detail.push_str(": ");
                detail.push_str(&reason.message);
            }
            Component {
                kind: "replication".into(),
                name: format!("{} -> {}", r.source.path, r.destination.path),
                status: if healthy { Health::Ok } else { Health::Warning },
                detail: Some(detail),
            }
        })
        .collect()
}

/// A `metrocluster` component when MetroCluster is configured; `None` otherwise (the normal case).
pub fn metrocluster_component(mc: &MetroCluster) -> Option<Component> {
    if mc.local.configuration_state != "configured" {
        return None;
    }
    let mut status = Health::Ok;
    let mut detail = vec![format!(
        "{} local mode {}",
        mc.configuration_type, mc.local.mode
    )];
    if mc.local.mode != "normal" {
        status = Health::Warning;
    }
    if !mc.remote.mode.is_empty() && mc.remote.mode != "normal" {
        status = Health::Warning;
        detail.push(format!("remote mode {}", mc.remote.mode));
    }
    if mc.local.partner_cluster_reachable == Some(false) {
        status = Health::Warning;
        detail.push("partner cluster unreachable".into());
    }
    Some(Component {
        kind: "metrocluster".into(),
        name: if mc.remote.cluster.name.is_empty() {
            "metrocluster".into()
        } else {
            mc.remote.cluster.name.clone()
        },
        status,
        detail: Some(detail.join(", ")),
    })
}

// ---------------------------------------------------------------------------------------------
// The adapter.
// ---------------------------------------------------------------------------------------------

/// The ONTAP adapter of one cluster. ONTAP has no session: the Basic credentials are read at the
/// start of each poll (so a rotated password file is picked up) and sent on every call.
#[derive(Debug)]
pub struct OntapAdapter {
    config: SystemConfig,
    http: HttpClient,
    tracker: StatusTracker,
    alerts: AlertMemory,
    /// A fixed "now" for the EMS window (tests replaying fixtures recorded at a known time).
    frozen_now_ms: Option<i64>,
    /// The EMS look-back window.
    pub ems_window: Duration,
}

impl OntapAdapter {
    pub fn new(config: &SystemConfig) -> Result<OntapAdapter, SetupError> {
        Ok(OntapAdapter {
            config: config.clone(),
            http: HttpClient::new(config)?,
            tracker: StatusTracker::default(),
            alerts: AlertMemory::default(),
            frozen_now_ms: None,
            ems_window: EMS_WINDOW,
        })
    }

    /// Evaluates the EMS look-back window at `now_ms` instead of the clock (for fixture replays).
    pub fn freeze_clock(&mut self, now_ms: i64) {
        self.frozen_now_ms = Some(now_ms);
    }

    fn now_ms(&self) -> i64 {
        self.frozen_now_ms.unwrap_or_else(sdash_proto::now_ms)
    }

    /// ONTAP has no session to end.
    pub async fn logout(&mut self) {}

    /// Polls the cluster once (see the module docs for the calls and rules).
    pub async fn poll(&mut self) -> PollOutput {
        let mut ctx = PollContext::new();
        let authorization = match self.config.credentials() {
            Ok(Credentials::UserPassword { username, password }) => {
                format!(
                    "Basic {}",
                    BASE64.encode(format!("{username}:{}", password.expose()))
                )
            }
            Ok(Credentials::ApiToken(_)) => {
                return self.credential_failure(ctx, "ONTAP needs a username and password".into());
            }
            Err(e) => return self.credential_failure(ctx, e.to_string()),
        };
        let api = Api {
            http: &self.http,
            authorization: &authorization,
        };

        let cluster: ClusterInfo = match api.get(CLUSTER_PATH).await {
            Ok(c) => c,
            Err(e) => {
                let snapshot = ctx.fail(Vendor::Ontap, &e);
                return self.finish(snapshot, ctx);
            }
        };
        let mut snapshot = Snapshot {
            vendor: Vendor::Ontap,
            status: Status::Online,
            hardware: Health::Unknown,
            cluster: Health::Unknown,
            name: (!cluster.name.is_empty()).then(|| cluster.name.clone()),
            version: cluster.version(),
            model: None,
            serial: None,
            capacity: None,
            alerts: Vec::new(),
            components: Vec::new(),
            poll_ms: 0,
            error: None,
        };

        // Hardware: nodes, aggregates, disks.
        let nodes = match api.collect::<Node>(NODES_PATH).await {
            Err(e) if is_invalid_field(&e) => {
                // An older release without one of the controller/HA fields: node states still
                // count, the PSU/fan/temperature/HA checks are skipped (and said so).
                ctx.push(e.event(Level::Info));
                ctx.event(
                    Level::Info,
                    Category::DataQuery,
                    "/api/cluster/nodes: retrying with the basic fields; PSU, fan, temperature and HA checks skipped",
                );
                api.collect::<Node>(NODES_MINIMAL_PATH).await
            }
            other => other,
        };
        if let Some(nodes) = ctx.keep(nodes) {
            snapshot.model = nodes_model(&nodes);
            let comps: Vec<Component> = nodes.iter().map(node_component).collect();
            snapshot.hardware = snapshot.hardware.worst(worst_health(&comps));
            snapshot.components.extend(comps);
        }
        if let Some(aggs) = ctx.keep(api.collect::<Aggregate>(AGGREGATES_PATH).await) {
            snapshot.capacity = aggregate_capacity(&aggs);
            if snapshot.capacity.is_none() {
                ctx.degrade_with(
                    "/api/storage/aggregates",
                    "no aggregates listed, capacity unknown",
                );
            }
            let comps = aggregate_components(&aggs);
            snapshot.hardware = snapshot.hardware.worst(worst_health(&comps));
            snapshot.components.extend(comps);
        }
        if let Some(disks) = ctx.keep(api.collect::<Disk>(DISKS_PATH).await) {
            let comps = disk_components(&disks);
            snapshot.hardware = snapshot.hardware.worst(worst_health(&comps));
            snapshot.components.extend(comps);
        }

        // Alerts: EMS problems paired with their recoveries, inside the look-back window.
        let now_ms = self.now_ms();
        let window_ms = i64::try_from(self.ems_window.as_millis()).unwrap_or(i64::MAX);
        let since = OffsetDateTime::from_unix_timestamp(now_ms.saturating_sub(window_ms) / 1000)
            .unwrap_or(OffsetDateTime::UNIX_EPOCH);
        let problems = ctx.keep(api.collect::<EmsEvent>(&ems_problems_path(since)).await);
        let recoveries = match problems {
            Some(_) => ctx.keep(api.collect::<EmsEvent>(&ems_recoveries_path(since)).await),
            None => None,
        };
        let fresh = problems.map(|problems| {
            // Without the recoveries every problem in the window counts as open (and the poll is
            // already marked degraded): better a stale alert than a silently missing one.
            let ems = ems_alerts(
                &problems,
                recoveries.as_deref().unwrap_or(&[]),
                now_ms,
                self.ems_window,
            );
            snapshot.hardware = snapshot.hardware.worst(ems.hardware);
            ems.alerts
        });
        // Without the problems query the open alerts are unknown: keep the last known set.
        snapshot.alerts = self.alerts.resolve(fresh);

        // Cluster: peers, SnapMirror, MetroCluster.
        if let Some(peers) = ctx.keep(api.collect::<Peer>(PEERS_PATH).await) {
            let comps = peer_components(&peers);
            snapshot.cluster = snapshot.cluster.worst(worst_health(&comps));
            snapshot.components.extend(comps);
        }
        if let Some(rels) = ctx.keep(api.collect::<SnapMirror>(SNAPMIRROR_PATH).await) {
            let comps = snapmirror_components(&rels);
            snapshot.cluster = snapshot.cluster.worst(worst_health(&comps));
            snapshot.components.extend(comps);
        }
        if let Some(mc) = ctx.keep(api.get::<MetroCluster>(METROCLUSTER_PATH).await) {
            snapshot.cluster = snapshot.cluster.worst(Health::Ok);
            if let Some(c) = metrocluster_component(&mc) {
                snapshot.cluster = snapshot.cluster.worst(c.status);
                snapshot.components.push(c);
            }
        }

        snapshot.error = ctx.error_text();
        snapshot.poll_ms = ctx.elapsed_ms();
        self.finish(snapshot, ctx)
    }

    fn credential_failure(&mut self, mut ctx: PollContext, reason: String) -> PollOutput {
        let snapshot = ctx.credentials_failed(Vendor::Ontap, &reason);
        self.finish(snapshot, ctx)
    }

    /// Adds the status/health transition events and packs the output.
    fn finish(&mut self, snapshot: Snapshot, ctx: PollContext) -> PollOutput {
        let (snapshot, events) = self.tracker.finish(snapshot, ctx);
        PollOutput { snapshot, events }
    }
}

/// True for ONTAP's "invalid name in `fields`" answer (HTTP 400, code 262197).
fn is_invalid_field(e: &HttpError) -> bool {
    matches!(e, HttpError::Status { status: 400, excerpt, .. } if excerpt.contains("262197"))
}

/// Puts the reason from an ONTAP error body (e.g. `262197: invalid field`) into the excerpt.
fn with_reason(e: HttpError) -> HttpError {
    match e {
        HttpError::Status {
            endpoint,
            status,
            excerpt,
        } => {
            let excerpt = error_reason(excerpt.as_bytes()).unwrap_or(excerpt);
            HttpError::Status {
                endpoint,
                status,
                excerpt,
            }
        }
        other => other,
    }
}

/// One poll's view of the API: the client and the Basic authorization header.
struct Api<'a> {
    http: &'a HttpClient,
    authorization: &'a str,
}

impl Api<'_> {
    async fn get<T: DeserializeOwned>(&self, path: &str) -> Result<T, HttpError> {
        self.http
            .get(path)
            .header("authorization", self.authorization)
            .send()
            .await
            .map_err(with_reason)?
            .json()
    }

    /// All records of a collection, following `_links.next.href` (relative hrefs only).
    async fn collect<T: DeserializeOwned>(&self, path: &str) -> Result<Vec<T>, HttpError> {
        let endpoint = path.split('?').next().unwrap_or(path).to_owned();
        let mut pager: Pager<String> = Pager::new(&endpoint);
        let mut all = Vec::new();
        while let Some(next) = pager.next_cursor() {
            let request = match next {
                None => self.http.get(path),
                Some(href) => {
                    let (next_path, query) =
                        split_href(&href).ok_or_else(|| HttpError::Protocol {
                            endpoint: endpoint.clone(),
                            reason: format!(
                                "unusable _links.next.href {:?}",
                                crate::http::excerpt(href.as_bytes())
                            ),
                        })?;
                    query
                        .into_iter()
                        .fold(self.http.get(&next_path), |r, (k, v)| r.query(&k, v))
                }
            };
            let page: OntapCollection<T> = request
                .header("authorization", self.authorization)
                .send()
                .await
                .map_err(with_reason)?
                .json()?;
            let next = page.next_href().map(str::to_owned);
            all.extend(page.records);
            pager.advance(next)?;
        }
        Ok(all)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const TIB: u64 = 1 << 40;
    const T0_MS: i64 = 1_795_161_600_000; // 2026-11-20T08:00:00Z

    fn coll<T: for<'de> Deserialize<'de>>(text: &str) -> Vec<T> {
        serde_json::from_str::<crate::http::OntapCollection<T>>(text)
            .map(|c| c.records)
            .unwrap_or_default()
    }

    #[test]
    fn cluster_version_is_text_before_colon() {
        let c: ClusterInfo = serde_json::from_str(include_str!(
            "../../../testkit/fixtures/ontap/api_cluster.json"
        ))
        .unwrap_or_default();
        assert_eq!(c.name, "cl-prod-a");
        assert_eq!(c.version().as_deref(), Some("NetApp Release 9.15.1P4"));
        assert_eq!(ClusterInfo::default().version(), None);
    }

    #[test]
    fn aggregates_sum_to_two_times_250_tib() {
        let aggs: Vec<Aggregate> = coll(include_str!(
            "../../../testkit/fixtures/ontap/api_storage_aggregates.json"
        ));
        assert_eq!(aggs.len(), 2);
        let cap = aggregate_capacity(&aggs);
        let total = 500 * TIB;
        let used = 173_173_081_374_720 * 2;
        assert_eq!(
            cap,
            Some(Capacity {
                total_bytes: total,
                used_bytes: used,
                free_bytes: total - used,
                data_reduction: Some(2.41)
            })
        );
        assert_eq!(used * 100 / total, 63);
        assert!(
            aggregate_components(&aggs)
                .iter()
                .all(|c| c.status == Health::Ok)
        );
    }

    #[test]
    fn aggregate_without_available_uses_size_minus_used() {
        let aggs = vec![Aggregate {
            name: "a".into(),
            state: "offline".into(),
            space: AggregateSpace {
                block_storage: BlockStorage {
                    size: 100,
                    used: 30,
                    available: None,
                },
                efficiency: None,
            },
        }];
        let cap = aggregate_capacity(&aggs);
        assert_eq!(
            cap.map(|c| (c.free_bytes, c.data_reduction)),
            Some((70, None))
        );
        assert_eq!(aggregate_components(&aggs)[0].status, Health::Error);
        assert_eq!(aggregate_capacity(&[]), None);
    }

    #[test]
    fn nodes_from_fixture_are_healthy() {
        let nodes: Vec<Node> = coll(include_str!(
            "../../../testkit/fixtures/ontap/api_cluster_nodes.json"
        ));
        assert_eq!(nodes.len(), 2);
        let comps: Vec<_> = nodes.iter().map(node_component).collect();
        assert!(comps.iter().all(|c| c.status == Health::Ok), "{comps:?}");
        assert_eq!(nodes_model(&nodes).as_deref(), Some("AFF-A400"));
    }

    #[test]
    fn node_rules() {
        let mut n = Node {
            name: "n1".into(),
            state: "up".into(),
            ..Default::default()
        };
        assert_eq!(node_component(&n).status, Health::Ok);
        n.controller.failed_fan.count = 1;
        assert_eq!(node_component(&n).status, Health::Warning);
        n.controller.over_temperature = "over".into();
        assert_eq!(node_component(&n).status, Health::Error);
        for (state, want) in [
            ("down", Health::Error),
            ("taken_over", Health::Error),
            ("degraded", Health::Error),
            ("booting", Health::Warning),
        ] {
            let n = Node {
                state: state.into(),
                ..Default::default()
            };
            assert_eq!(node_component(&n).status, want, "{state}");
        }
        let mut n = Node {
            state: "up".into(),
            ..Default::default()
        };
        n.ha.giveback.state = "failed".into();
        assert_eq!(node_component(&n).status, Health::Warning);
    }

    #[test]
    fn disks_fixture_has_no_broken_disk() {
        let disks: Vec<Disk> = coll(include_str!(
            "../../../testkit/fixtures/ontap/api_storage_disks.json"
        ));
        assert_eq!(disks.len(), 48);
        let comps = disk_components(&disks);
        assert_eq!(comps.len(), 1);
        assert_eq!(comps[0].status, Health::Ok);
        let broken = vec![Disk {
            name: "1.0.1".into(),
            state: "broken".into(),
            container_type: "broken".into(),
        }];
        let comps = disk_components(&broken);
        assert_eq!(
            (comps[0].status, comps[1].status),
            (Health::Error, Health::Error)
        );
    }

    #[test]
    fn ems_pairing_and_window_leave_three_alerts() {
        let problems: Vec<EmsEvent> = coll(include_str!(
            "../../../testkit/fixtures/ontap/api_support_ems_events.json"
        ));
        let recoveries: Vec<EmsEvent> = coll(include_str!(
            "../../../testkit/fixtures/ontap/api_support_ems_events.recovery.json"
        ));
        assert_eq!((problems.len(), recoveries.len()), (5, 2));
        let state = ems_alerts(&problems, &recoveries, T0_MS, EMS_WINDOW);
        let sev: Vec<_> = state
            .alerts
            .iter()
            .map(|a| (a.vendor_severity.as_str(), a.severity))
            .collect();
        assert_eq!(
            sev,
            vec![
                ("alert", Severity::Error),
                ("alert", Severity::Error),
                ("error", Severity::Error)
            ]
        );
        let ids: Vec<_> = state.alerts.iter().map(|a| a.id.as_str()).collect();
        assert_eq!(
            ids,
            vec![
                "cl-prod-a-02/8812051",
                "cl-prod-a-01/8811977",
                "cl-prod-a-01/8811802"
            ]
        );
        assert_eq!(state.alerts[0].opened_at, Some(T0_MS - 2 * 3600 * 1000));
        assert_eq!(state.hardware, Health::Warning);
        // Without the recovery the peer problem stays open.
        let state = ems_alerts(&problems, &[], T0_MS, EMS_WINDOW);
        assert_eq!(state.alerts.len(), 4);
        // An older recovery does not clear a newer problem.
        let mut old = recoveries.clone();
        old[0].time = "2026-11-17T09:00:00+00:00".into();
        assert_eq!(
            ems_alerts(&problems, &old, T0_MS, EMS_WINDOW).alerts.len(),
            4
        );
    }

    #[test]
    fn ems_emergency_is_hardware_error_and_non_hw_error_dropped() {
        let ev = |name: &str, sev: &str| EmsEvent {
            index: 1,
            time: "2026-11-20T07:00:00Z".into(),
            message: EmsMessage {
                name: name.into(),
                severity: sev.into(),
            },
            ..Default::default()
        };
        let state = ems_alerts(&[ev("wafl.vol.full", "error")], &[], T0_MS, EMS_WINDOW);
        assert!(state.alerts.is_empty());
        let state = ems_alerts(&[ev("wafl.panic", "emergency")], &[], T0_MS, EMS_WINDOW);
        assert_eq!(
            (state.alerts[0].severity, state.hardware),
            (Severity::Critical, Health::Error)
        );
    }

    #[test]
    fn peers_snapmirror_metrocluster() {
        let peers: Vec<Peer> = coll(include_str!(
            "../../../testkit/fixtures/ontap/api_cluster_peers.json"
        ));
        let comps = peer_components(&peers);
        assert_eq!(comps.len(), 3);
        assert_eq!(worst_health(&comps), Health::Ok);
        let sm: Vec<SnapMirror> = coll(include_str!(
            "../../../testkit/fixtures/ontap/api_snapmirror_relationships.json"
        ));
        let comps = snapmirror_components(&sm);
        let st: Vec<_> = comps.iter().map(|c| c.status).collect();
        assert_eq!(st, vec![Health::Ok, Health::Warning]);
        assert!(
            comps[1]
                .detail
                .as_deref()
                .unwrap_or("")
                .contains("Failed to complete update")
        );
        let mc: MetroCluster = serde_json::from_str(include_str!(
            "../../../testkit/fixtures/ontap/api_cluster_metrocluster.json"
        ))
        .unwrap_or_default();
        assert_eq!(
            metrocluster_component(&mc).map(|c| c.status),
            Some(Health::Ok)
        );
        let mc: MetroCluster = serde_json::from_str(include_str!(
            "../../../testkit/fixtures/ontap/api_cluster_metrocluster.not_configured.json"
        ))
        .unwrap_or_default();
        assert_eq!(metrocluster_component(&mc), None);
    }

    #[test]
    fn status_errors_carry_the_ontap_reason() {
        let body = include_str!("../../../testkit/fixtures/ontap/error.json");
        let e = HttpError::Status {
            endpoint: "/api/storage/disks".into(),
            status: 400,
            excerpt: crate::http::excerpt(body.as_bytes()),
        };
        let event = with_reason(e).event(sdash_proto::Level::Warning);
        assert_eq!(event.http_status, Some(400));
        assert!(event.details.unwrap_or_default().starts_with("262197: "));
    }

    #[test]
    fn error_body_reason() {
        let r = error_reason(include_bytes!("../../../testkit/fixtures/ontap/error.json"));
        assert!(
            r.unwrap_or_default()
                .starts_with("262197: The value \"raid_state\"")
        );
        assert_eq!(error_reason(b"<html>"), None);
    }

    #[test]
    fn ems_paths_are_encoded() {
        let since = OffsetDateTime::from_unix_timestamp(1_794_816_000)
            .unwrap_or(OffsetDateTime::UNIX_EPOCH);
        let p = ems_problems_path(since);
        assert!(
            p.contains("message.severity=emergency%7Calert%7Cerror"),
            "{p}"
        );
        assert!(p.contains("time=%3E2026-11-16T08%3A00%3A00Z"), "{p}");
    }
}
