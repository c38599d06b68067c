//! ONTAP response bodies (only the fields used; tolerant: every field defaults) and the reason
//! in ONTAP's error envelope.

use serde::Deserialize;
use time::OffsetDateTime;
use time::format_description::well_known::Rfc3339;

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
    /// Asked only on topology polls (`fields=…,management_interfaces`).
    pub management_interfaces: Vec<ManagementInterface>,
    /// The cluster's performance over the last sample interval (ONTAP 9.6+; asked with
    /// `fields=…,metric`, absent on releases without it).
    pub metric: Option<ClusterMetric>,
}

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(default)]
pub struct ManagementInterface {
    pub name: String,
    pub ip: IpInfo,
}

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(default)]
pub struct IpInfo {
    pub address: String,
}

/// `metric` of `/api/cluster`: `iops` (ops/s), `latency` (µs), `throughput` (bytes/s).
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(default)]
pub struct ClusterMetric {
    pub status: String,
    pub iops: ReadWrite,
    pub latency: ReadWrite,
    pub throughput: ReadWrite,
}

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(default)]
pub struct ReadWrite {
    pub read: Option<f64>,
    pub write: Option<f64>,
}

/// One LIF of `/api/network/ip/interfaces`.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(default)]
pub struct IpInterface {
    pub name: String,
    pub state: String,
    pub enabled: Option<bool>,
    /// Absent for cluster-scoped LIFs.
    pub svm: Named,
    pub location: LifLocation,
}

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(default)]
pub struct LifLocation {
    pub node: Named,
    pub port: Named,
}

/// One volume of `/api/storage/volumes?fields=space.size`.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(default)]
pub struct Volume {
    pub name: String,
    pub space: VolumeSpace,
}

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(default)]
pub struct VolumeSpace {
    /// The volume's provisioned size, bytes.
    pub size: u64,
}

/// One port of `/api/network/ethernet/ports`.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(default)]
pub struct Port {
    pub name: String,
    pub node: Named,
    pub state: String,
    /// physical, lag, vlan, pvlan.
    #[serde(rename = "type")]
    pub kind: String,
    pub enabled: Option<bool>,
}

impl ClusterInfo {
    /// `version.full` up to the first `:` ("NetApp Release 9.15.1P4").
    pub fn version(&self) -> Option<String> {
        short_version(&self.version.full)
    }
}

pub(crate) fn short_version(full: &str) -> Option<String> {
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
    pub(crate) fn param(&self, names: &[&str]) -> Option<&str> {
        names.iter().find_map(|n| {
            self.parameters
                .iter()
                .find(|p| p.name == *n)
                .map(|p| p.value.as_str())
        })
    }

    pub(crate) fn time_ms(&self) -> Option<i64> {
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
