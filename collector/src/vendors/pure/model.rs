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

#[derive(Debug, Deserialize)]
pub struct Space {
    #[serde(default)]
    pub total_used: Option<u64>,
    #[serde(default)]
    pub total_physical: Option<u64>,
    #[serde(default)]
    pub data_reduction: Option<f64>,
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
