//! StorageGRID normalization rules (see the module docs of [`super`]): nodes, sites, alerts and
//! capacity from the metric queries.

use std::collections::BTreeMap;

use sdash_proto::{Alert, Capacity, Component, Health, Severity};
use time::OffsetDateTime;
use time::format_description::well_known::Rfc3339;

use super::model::{GridAlert, MetricData, MetricRow, NodeHealth};

/// One node → a `node` component (see the module docs).
pub fn node_component(node: &NodeHealth) -> Component {
    let by_state = match node.state.as_str() {
        "connected" => Health::Ok,
        "administratively-down" => Health::Warning,
        _ => Health::Error,
    };
    let by_severity = match node.severity.as_str() {
        "critical" => Health::Error,
        "major" | "minor" => Health::Warning,
        _ => Health::Ok,
    };
    Component {
        kind: "node".into(),
        name: node.name.clone(),
        status: by_state.worst(by_severity),
        detail: Some(format!(
            "{} at {}, state {}, severity {}",
            node.node_type,
            node.site_name,
            if node.state.is_empty() {
                "unknown"
            } else {
                &node.state
            },
            if node.severity.is_empty() {
                "unknown"
            } else {
                &node.severity
            },
        )),
    }
}

/// Cluster health from the sites: a site without any connected node → error; a site with some
/// nodes not connected → warning; `ok` otherwise (and with no nodes).
pub fn site_health(nodes: &[NodeHealth]) -> Health {
    let mut sites: BTreeMap<&str, (usize, usize)> = BTreeMap::new();
    for n in nodes {
        let e = sites.entry(n.site_name.as_str()).or_default();
        e.0 += 1;
        if n.state == "connected" {
            e.1 += 1;
        }
    }
    sites.values().fold(Health::Ok, |acc, (all, up)| {
        acc.worst(if *up == 0 {
            Health::Error
        } else if up < all {
            Health::Warning
        } else {
            Health::Ok
        })
    })
}

/// Normalized severity of a `labels.severity`.
pub fn alert_severity(severity: &str) -> Severity {
    match severity {
        "critical" => Severity::Critical,
        "major" => Severity::Error,
        "minor" => Severity::Warning,
        _ => Severity::Info,
    }
}

/// The active alerts, normalized.
pub fn alerts(list: &[GridAlert]) -> Vec<Alert> {
    list.iter()
        .filter(|a| a.status.is_empty() || a.status == "active")
        .map(|a| Alert {
            id: a.id.clone(),
            severity: alert_severity(&a.labels.severity),
            vendor_severity: a.labels.severity.clone(),
            title: if a.name.is_empty() {
                a.annotations.summary.clone()
            } else {
                a.name.clone()
            },
            component: (!a.labels.instance.is_empty()).then(|| a.labels.instance.clone()),
            opened_at: OffsetDateTime::parse(&a.starts_at, &Rfc3339)
                .ok()
                .and_then(|t| i64::try_from(t.unix_timestamp_nanos() / 1_000_000).ok()),
        })
        .collect()
}

/// Parses one Prometheus sample value (`"137438953472000"`, or a float text) to bytes.
pub(super) fn sample_bytes(row: &MetricRow) -> Option<u64> {
    let v = row.value.get(1)?;
    let text = match v {
        serde_json::Value::String(s) => s.trim().to_owned(),
        serde_json::Value::Number(n) => n.to_string(),
        _ => return None,
    };
    if let Ok(n) = text.parse::<u64>() {
        return Some(n);
    }
    let f: f64 = text.parse().ok()?;
    (f.is_finite() && f >= 0.0).then_some(f.round() as u64)
}

/// Sum of a metric over its rows, and the number of rows that had a usable value.
pub fn metric_sum(data: &MetricData) -> (u64, usize) {
    data.result
        .iter()
        .filter_map(sample_bytes)
        .fold((0u64, 0usize), |(s, n), v| (s.saturating_add(v), n + 1))
}

/// Capacity from the three metric queries (`usable` is optional).
pub fn capacity(total: &MetricData, data: &MetricData, usable: Option<&MetricData>) -> Capacity {
    let (total_bytes, _) = metric_sum(total);
    let (used_bytes, _) = metric_sum(data);
    let free_bytes = match usable.map(metric_sum) {
        Some((free, rows)) if rows > 0 => free,
        _ => total_bytes.saturating_sub(used_bytes),
    };
    Capacity {
        total_bytes,
        used_bytes,
        free_bytes,
        data_reduction: None,
        provisioned_bytes: None,
    }
}

/// Connected storage nodes that have no row in a metric vector (their capacity is missing).
pub fn missing_storage_nodes(nodes: &[NodeHealth], data: &MetricData) -> Vec<String> {
    nodes
        .iter()
        .filter(|n| n.node_type == "storageNode" && n.state == "connected")
        .filter(|n| {
            !data.result.iter().any(|r| {
                r.metric.get("node_id").is_some_and(|id| *id == n.id)
                    || r.metric.get("instance").is_some_and(|i| *i == n.name)
            })
        })
        .map(|n| n.name.clone())
        .collect()
}
