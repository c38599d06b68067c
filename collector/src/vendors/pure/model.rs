//! Pure REST 2.x response shapes.

use serde::Deserialize;

// Response shapes (only the fields used; unknown fields are ignored, wrong types are errors).

#[derive(Debug, Deserialize)]
pub struct ApiVersions {
    pub(super) version: Vec<String>,
}

#[derive(Debug, Deserialize)]
pub struct ArrayItem {
    #[serde(default)]
    pub name: Option<String>,
    #[serde(default)]
    pub version: Option<String>,
    #[serde(default)]
    pub os: Option<String>,
}

#[derive(Debug, Deserialize)]
pub struct SpaceItem {
    #[serde(default)]
    pub capacity: Option<u64>,
    #[serde(default)]
    pub space: Option<Space>,
}

#[derive(Debug, Default, Deserialize)]
pub struct Space {
    #[serde(default)]
    pub total_used: Option<u64>,
    #[serde(default)]
    pub total_physical: Option<u64>,
    #[serde(default)]
    pub data_reduction: Option<f64>,
    /// Provisioned size of all volumes, bytes.
    #[serde(default)]
    pub total_provisioned: Option<u64>,
    // The space breakdown (bytes): the array's space pools.
    #[serde(default)]
    pub unique: Option<u64>,
    #[serde(default)]
    pub snapshots: Option<u64>,
    #[serde(default)]
    pub shared: Option<u64>,
    #[serde(default)]
    pub system: Option<u64>,
    #[serde(default)]
    pub replication: Option<u64>,
}

/// One item of `GET /api/<v>/network-interfaces?filter=services='management'`.
#[derive(Debug, Deserialize)]
pub struct NetworkInterfaceItem {
    #[serde(default)]
    pub name: Option<String>,
    #[serde(default)]
    pub enabled: Option<bool>,
    #[serde(default)]
    pub services: Option<Vec<String>>,
    #[serde(default)]
    pub eth: Option<Eth>,
}

#[derive(Debug, Deserialize)]
pub struct Eth {
    #[serde(default)]
    pub address: Option<String>,
}

/// One item of `GET /api/<v>/arrays/performance`: rates per second and µs per operation.
#[derive(Debug, Deserialize)]
pub struct ArrayPerformanceItem {
    #[serde(default)]
    pub reads_per_sec: Option<f64>,
    #[serde(default)]
    pub writes_per_sec: Option<f64>,
    #[serde(default)]
    pub usec_per_read_op: Option<f64>,
    #[serde(default)]
    pub usec_per_write_op: Option<f64>,
    #[serde(default)]
    pub read_bytes_per_sec: Option<f64>,
    #[serde(default)]
    pub write_bytes_per_sec: Option<f64>,
}

#[derive(Debug, Deserialize)]
pub struct ControllerItem {
    #[serde(default)]
    pub name: Option<String>,
    #[serde(default)]
    pub status: Option<String>,
    #[serde(default)]
    pub mode: Option<String>,
    #[serde(default)]
    pub model: Option<String>,
    #[serde(default)]
    pub r#type: Option<String>,
    #[serde(default)]
    pub version: Option<String>,
}

#[derive(Debug, Deserialize)]
pub struct HardwareItem {
    #[serde(default)]
    pub name: Option<String>,
    #[serde(default)]
    pub r#type: Option<String>,
    #[serde(default)]
    pub status: Option<String>,
    #[serde(default)]
    pub details: Option<String>,
    #[serde(default)]
    pub serial: Option<String>,
}

#[derive(Debug, Deserialize)]
pub struct DriveItem {
    #[serde(default)]
    pub name: Option<String>,
    #[serde(default)]
    pub r#type: Option<String>,
    #[serde(default)]
    pub status: Option<String>,
    #[serde(default)]
    pub details: Option<String>,
}

#[derive(Debug, Deserialize)]
pub struct AlertItem {
    #[serde(default)]
    pub id: Option<String>,
    #[serde(default)]
    pub name: Option<String>,
    #[serde(default)]
    pub summary: Option<String>,
    #[serde(default)]
    pub description: Option<String>,
    #[serde(default)]
    pub issue: Option<String>,
    #[serde(default)]
    pub severity: Option<String>,
    #[serde(default)]
    pub created: Option<i64>,
    #[serde(default)]
    pub component_name: Option<String>,
    #[serde(default)]
    pub state: Option<String>,
}

#[derive(Debug, Deserialize)]
pub struct ConnectionItem {
    #[serde(default)]
    pub name: Option<String>,
    #[serde(default)]
    pub status: Option<String>,
    #[serde(default)]
    pub r#type: Option<String>,
}

#[derive(Debug, Deserialize)]
pub struct PodItem {
    #[serde(default)]
    pub name: Option<String>,
    #[serde(default)]
    pub array_count: Option<u64>,
    #[serde(default)]
    pub arrays: Option<Vec<PodArray>>,
}

#[derive(Debug, Deserialize)]
pub struct PodArray {
    #[serde(default)]
    pub name: Option<String>,
    #[serde(default)]
    pub status: Option<String>,
    #[serde(default)]
    pub mediator_status: Option<String>,
}
