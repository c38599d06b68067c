//! StorageGRID topology, site pools and performance.
//!
//! * **Topology** ([`topology`]): `multi-site` with nodes on more than one site (node-health
//!   `siteName`), else `single-site`; nodes: each grid node (`name`, its `type` as the model,
//!   `state`, the product version); site count: distinct `siteName`. The Grid Management API
//!   lists no management addresses on the calls used, so these stay empty; the management URL is
//!   the Grid Manager (the API host).
//! * **Pools** ([`site_pools`]): one `site` pool per `site_name` label of the capacity metric rows
//!   (total space, data bytes, usable space summed per site). Storage pools
//!   (`/grid/storage-pools`?) are not read: the call was not verified against the v4 spec.
//! * **Performance** ([`performance`]): PromQL through `metric-query`:
//!   `sum(rate(storagegrid_s3_data_transfers_bytes_retrieved[5m]))` (read bytes/s) and
//!   `…_ingested` (write bytes/s). StorageGRID's metrics have no read/write split of operations or
//!   latency, so IOPS and latency stay absent. An empty result (a grid without these metrics) is
//!   no performance, not an error.

use std::collections::BTreeMap;

use sdash_proto::{ClusterType, Performance, Pool, PoolKind, Topology, TopologyNode};

use super::model::{MetricData, NodeHealth};

/// Read bandwidth (bytes/s over 5 minutes).
pub const QUERY_READ_BYTES: &str = "sum(rate(storagegrid_s3_data_transfers_bytes_retrieved[5m]))";
/// Write bandwidth (bytes/s over 5 minutes).
pub const QUERY_WRITE_BYTES: &str = "sum(rate(storagegrid_s3_data_transfers_bytes_ingested[5m]))";

/// The topology from node-health (see the module docs).
pub fn topology(
    nodes: Option<&[NodeHealth]>,
    version: Option<&str>,
    management_url: Option<String>,
) -> Topology {
    let mut sites: Vec<&str> = nodes
        .unwrap_or(&[])
        .iter()
        .map(|n| n.site_name.as_str())
        .filter(|s| !s.is_empty())
        .collect();
    sites.sort_unstable();
    sites.dedup();
    Topology {
        cluster_type: nodes.map(|_| {
            if sites.len() > 1 {
                ClusterType::MultiSite
            } else {
                ClusterType::SingleSite
            }
        }),
        nodes: nodes
            .unwrap_or(&[])
            .iter()
            .map(|n| TopologyNode {
                name: n.name.clone(),
                model: (!n.node_type.is_empty()).then(|| n.node_type.clone()),
                serial: None,
                state: (!n.state.is_empty()).then(|| n.state.clone()),
                version: version.map(str::to_owned),
            })
            .collect(),
        site_count: nodes.map(|_| sites.len() as u32),
        management_addresses: Vec::new(),
        dns_names: Vec::new(),
        partners: Vec::new(),
        management_url,
    }
}

fn per_site(data: &MetricData) -> BTreeMap<String, u64> {
    let mut out = BTreeMap::new();
    for row in &data.result {
        let site = row.metric.get("site_name").cloned().unwrap_or_default();
        let value = row
            .value
            .get(1)
            .and_then(|v| v.as_str())
            .and_then(|s| s.parse::<f64>().ok())
            .filter(|v| v.is_finite() && *v >= 0.0)
            .map_or(0, |v| v as u64);
        let e = out.entry(site).or_insert(0u64);
        *e = e.saturating_add(value);
    }
    out
}

/// One `site` pool per site of the capacity rows.
pub fn site_pools(total: &MetricData, data: &MetricData, usable: Option<&MetricData>) -> Vec<Pool> {
    let totals = per_site(total);
    let used = per_site(data);
    let free = usable.map(per_site);
    totals
        .into_iter()
        .filter(|(site, _)| !site.is_empty())
        .map(|(site, total_bytes)| Pool {
            kind: PoolKind::Site,
            used_bytes: used.get(&site).copied().unwrap_or(0),
            free_bytes: free.as_ref().and_then(|f| f.get(&site).copied()),
            name: site,
            total_bytes,
        })
        .collect()
}

/// The single value of a `sum(...)` query; `None` for an empty result.
pub fn scalar(data: &MetricData) -> Option<f64> {
    let row = data.result.first()?;
    row.value
        .get(1)?
        .as_str()?
        .parse::<f64>()
        .ok()
        .filter(|v| v.is_finite() && *v >= 0.0)
}

/// Performance from the two bandwidth queries; `None` when neither has a value.
pub fn performance(read: Option<&MetricData>, write: Option<&MetricData>) -> Option<Performance> {
    let read = read.and_then(scalar);
    let write = write.and_then(scalar);
    if read.is_none() && write.is_none() {
        return None;
    }
    Some(Performance {
        read_bytes_per_s: read.map(|v| v.round() as u64),
        write_bytes_per_s: write.map(|v| v.round() as u64),
        ..Performance::default()
    })
}
