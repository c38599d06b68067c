//! DataDomain response shapes (tolerant: every field defaults) and the reason in its
//! `serviceStatus` error envelope.

use serde::Deserialize;

use super::DdPagingInfo;

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(default)]
pub struct SystemInfo {
    pub name: String,
    #[serde(rename = "type")]
    pub system_type: String,
    pub version: String,
    pub serialno: String,
    pub model: String,
    pub physical_capacity: CapacityInfo,
    pub compression_factor: Option<f64>,
    /// Per tier (`active`, `cloud`, `total`).
    pub capacity_usage_details: Vec<TierUsage>,
}

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(default)]
pub struct TierUsage {
    pub tier: String,
    pub physical_capacity: CapacityInfo,
}

/// `GET /rest/v2.0/dd-systems/0/networks/nics`.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(default)]
pub struct NicList {
    pub nics: Vec<Nic>,
    pub paging_info: Option<DdPagingInfo>,
}

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(default)]
pub struct Nic {
    pub name: String,
    pub address: String,
    pub enabled: Option<bool>,
    pub up_state: Option<bool>,
    pub has_link: Option<bool>,
    #[serde(rename = "virtual")]
    pub is_virtual: Option<bool>,
}

impl SystemInfo {
    pub fn is_ha(&self) -> bool {
        self.system_type.eq_ignore_ascii_case("ha")
    }
}

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(default)]
pub struct CapacityInfo {
    pub total: u64,
    pub used: u64,
    pub available: Option<u64>,
}

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(default)]
pub struct AlertList {
    pub alert_list: Vec<DdAlert>,
    pub paging_info: Option<DdPagingInfo>,
}

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(default)]
pub struct DdAlert {
    pub id: String,
    pub alert_id: String,
    pub name: String,
    pub alert_gen_epoch: Option<i64>,
    pub msg: String,
    pub description: String,
    pub status: String,
    pub class: String,
    pub severity: String,
    pub object_id: String,
    #[serde(rename = "partName")]
    pub part_name: String,
}

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(default)]
pub struct DiskList {
    #[serde(rename = "diskInfo")]
    pub disk_info: Vec<DdDisk>,
    pub paging_info: Option<DdPagingInfo>,
}

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(default)]
pub struct DdDisk {
    pub id: String,
    pub device: String,
    pub status: String,
}

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(default)]
pub struct HaSysInfo {
    #[serde(rename = "haInfo")]
    pub ha_info: HaInfo,
}

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(default)]
pub struct HaInfo {
    pub role: String,
    pub mode: String,
    pub state: String,
    #[serde(rename = "nodeName")]
    pub node_name: String,
    #[serde(rename = "peerInfo")]
    pub peer_info: Option<HaPeer>,
}

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(default)]
pub struct HaPeer {
    #[serde(rename = "nodeName")]
    pub node_name: String,
    pub state: String,
    pub serialno: String,
}

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(default)]
pub struct ReplicationList {
    pub contexts: Vec<ReplContext>,
    pub paging_info: Option<DdPagingInfo>,
}

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(default)]
pub struct ReplContext {
    pub id: String,
    pub mode: String,
    pub state: String,
    pub enabled: Option<bool>,
    #[serde(rename = "needResync")]
    pub need_resync: Option<bool>,
    pub connected: Option<bool>,
    #[serde(rename = "sourceMtreePath")]
    pub source_mtree_path: String,
    #[serde(rename = "destinationHost")]
    pub destination_host: String,
    #[serde(rename = "errorMessage")]
    pub error_message: String,
    #[serde(rename = "connHost")]
    pub conn_host: String,
}

/// `GET /api/v3/dd-systems/0/stats/performance` (schema `SystemPerformance`): samples of system
/// performance, oldest first, paged like the other lists. Only the fields used are modelled.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(default)]
pub struct PerformanceList {
    #[serde(rename = "statsPerformance")]
    pub stats_performance: Vec<PerfSample>,
    pub paging_info: Option<DdPagingInfo>,
}

/// One sample (`SystemPerfInfo_3`).
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(default)]
pub struct PerfSample {
    #[serde(rename = "collectionEpoch")]
    pub collection_epoch: i64,
    pub throughput: PerfThroughput,
    pub iops: PerfIops,
    #[serde(rename = "protocolLatency")]
    pub protocol_latency: PerfLatency,
}

/// `Throughput`: read and write (replication in/out are not used).
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(default)]
pub struct PerfThroughput {
    pub read: Option<f64>,
    pub write: Option<f64>,
}

/// `Iops`, split by sequential and random reads and writes.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(default)]
pub struct PerfIops {
    #[serde(rename = "readSequential")]
    pub read_sequential: Option<u64>,
    #[serde(rename = "readRandom")]
    pub read_random: Option<u64>,
    #[serde(rename = "writeSequential")]
    pub write_sequential: Option<u64>,
    #[serde(rename = "writeRandom")]
    pub write_random: Option<u64>,
}

/// `ProtocolLatency`, split like [`PerfIops`].
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(default)]
pub struct PerfLatency {
    #[serde(rename = "readSequential")]
    pub read_sequential: Option<f64>,
    #[serde(rename = "readRandom")]
    pub read_random: Option<f64>,
    #[serde(rename = "writeSequential")]
    pub write_sequential: Option<f64>,
    #[serde(rename = "writeRandom")]
    pub write_random: Option<f64>,
}

/// The `serviceStatus` envelope `{details, code}`, bare or wrapped in `service_status`.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(default)]
pub struct ServiceStatus {
    pub details: String,
    pub code: Option<i64>,
    pub service_status: Option<Box<ServiceStatus>>,
}

impl ServiceStatus {
    fn inner(&self) -> &ServiceStatus {
        self.service_status.as_deref().unwrap_or(self)
    }
}

/// A readable reason from a DataDomain error body (`serviceStatus`).
pub fn error_reason(body: &[u8]) -> Option<String> {
    let s: ServiceStatus = serde_json::from_slice(body).ok()?;
    let s = s.inner();
    if s.details.is_empty() {
        return None;
    }
    Some(match s.code {
        Some(c) => format!("{c}: {}", s.details),
        None => s.details.clone(),
    })
}
