//! StorageGRID response shapes (tolerant: every field defaults) and the reason in its error
//! envelope.

use std::collections::BTreeMap;

use serde::Deserialize;

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

/// One ILM storage pool of `GET /api/v4/private/ilm-pools` (a private Grid Management API
/// call, as NetApp's Ansible collection `na_sg_grid_ilm_pool` uses it).
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(default)]
pub struct IlmPool {
    pub id: String,
    pub name: String,
    #[serde(rename = "displayName")]
    pub display_name: String,
    /// The sites and storage grades of its Storage Nodes.
    pub disks: Vec<IlmPoolDisks>,
}

/// One `disks` entry: a site (`null`: all sites) and a storage grade (`null`: all Storage
/// Nodes); `group` is the legacy id of a site.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(default)]
pub struct IlmPoolDisks {
    #[serde(rename = "siteId")]
    pub site_id: Option<String>,
    pub grade: Option<i64>,
    pub group: Option<i64>,
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
