//! StorageGRID topology, site pools and performance.
//!
//! * **Topology** ([`topology`]): `multi-site` with nodes on more than one site (node-health
//!   `siteName`), else `single-site`; nodes: each grid node (`name`, its `type` as the model,
//!   `state`, the product version); site count: distinct `siteName`. The Grid Management API
//!   lists no management addresses on the calls used, so these stay empty; the management URL is
//!   the Grid Manager (the API host).
//! * **Pools** ([`site_pools`]): one `site` pool per `site_name` label of the capacity metric rows
//!   (total space, data bytes, usable space summed per site).
//! * **Storage pools** ([`storage_pools`]): the ILM storage pools of
//!   `GET /api/v4/private/ilm-pools` (`displayName`, `disks[].{siteId, grade}`; a private call,
//!   absent from the published v4 spec, so it is read at the topology cadence, a 404 means "not
//!   on this grid" and is not asked again until an outage, and any failure keeps the last pools
//!   without degrading the poll). A pool's capacity is the capacity rows (the same three
//!   metrics, already read for the site pools) of its sites (`site_id` label; a `null` site is
//!   every site). The metrics carry no storage grade, so a pool limited to a grade (or named
//!   by a legacy `group` only) has no attributable capacity and is left out.
//! * **Performance** ([`performance`]): one PromQL query through `metric-query`
//!   ([`PERFORMANCE_QUERY`]), six grid-wide sums each tagged by `label_replace` with an `sdash`
//!   label naming the field (`a or b` keeps both, their label sets differ), so one call per poll
//!   reads every value:
//!
//!   | `sdash` | expression | field |
//!   |---|---|---|
//!   | `read_bytes` | `sum(rate(storagegrid_s3_data_transfers_bytes_retrieved[5m]))` | read bytes/s |
//!   | `write_bytes` | `sum(rate(storagegrid_s3_data_transfers_bytes_ingested[5m]))` | write bytes/s |
//!   | `read_iops` | `sum(rate(storagegrid_private_s3_total_requests{type=~"get_.*"}[5m]))` | read operations/s |
//!   | `write_iops` | `sum(rate(storagegrid_private_s3_total_requests{type=~"put_.*"}[5m]))` | write operations/s |
//!   | `read_latency` | `sum(rate(storagegrid_private_load_balancer_storage_request_time{method="GET"}[5m])) / sum(rate(storagegrid_private_load_balancer_storage_request_count{method="GET"}[5m]))` | read latency, seconds → µs |
//!   | `write_latency` | the same with `method="PUT"` | write latency, seconds → µs |
//!
//!   The operation counts and the latency come from `storagegrid_private_*` metrics, which
//!   NetApp marks as subject to change; they are the ones NetApp Harvest's StorageGRID
//!   dashboards chart (S3 GET/PUT operations; "Average request duration (non-error)"). The
//!   latency covers the requests through the grid's Load Balancer service only (clients that
//!   talk to Storage Nodes directly are not in it), and its unit is not documented: it is read
//!   as seconds, Prometheus' base unit. A series the grid does not have (an older release, a
//!   grid without the private metrics, no request in 5 minutes: 0/0) is simply not in the
//!   answer and its field stays absent; an empty answer is no performance, not an error.
use std::collections::BTreeMap;

use sdash_proto::{ClusterType, Performance, Pool, PoolKind, Topology, TopologyNode};

use super::model::{IlmPool, MetricData, MetricRow, NodeHealth};

/// The `sdash` label of each series of [`PERFORMANCE_QUERY`].
pub const SERIES_READ_BYTES: &str = "read_bytes";
pub const SERIES_WRITE_BYTES: &str = "write_bytes";
pub const SERIES_READ_IOPS: &str = "read_iops";
pub const SERIES_WRITE_IOPS: &str = "write_iops";
pub const SERIES_READ_LATENCY: &str = "read_latency";
pub const SERIES_WRITE_LATENCY: &str = "write_latency";

/// Every performance value in one PromQL query (see the module docs); rates over 5 minutes.
pub const PERFORMANCE_QUERY: &str = concat!(
    r#"label_replace(sum(rate(storagegrid_s3_data_transfers_bytes_retrieved[5m])), "sdash", "read_bytes", "", "")"#,
    r#" or label_replace(sum(rate(storagegrid_s3_data_transfers_bytes_ingested[5m])), "sdash", "write_bytes", "", "")"#,
    r#" or label_replace(sum(rate(storagegrid_private_s3_total_requests{type=~"get_.*"}[5m])), "sdash", "read_iops", "", "")"#,
    r#" or label_replace(sum(rate(storagegrid_private_s3_total_requests{type=~"put_.*"}[5m])), "sdash", "write_iops", "", "")"#,
    r#" or label_replace(sum(rate(storagegrid_private_load_balancer_storage_request_time{method="GET"}[5m])) / sum(rate(storagegrid_private_load_balancer_storage_request_count{method="GET"}[5m])), "sdash", "read_latency", "", "")"#,
    r#" or label_replace(sum(rate(storagegrid_private_load_balancer_storage_request_time{method="PUT"}[5m])) / sum(rate(storagegrid_private_load_balancer_storage_request_count{method="PUT"}[5m])), "sdash", "write_latency", "", "")"#,
);

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
        let value = row_value(row);
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

fn row_value(row: &MetricRow) -> u64 {
    row_number(row).map_or(0, |v| v as u64)
}

/// The sum of the rows on `sites` (`None`: every site); `None` when no row is on them.
fn sum_on(data: &MetricData, sites: Option<&[&str]>) -> Option<u64> {
    let mut rows = data
        .result
        .iter()
        .filter(|r| {
            sites.is_none_or(|s| {
                r.metric
                    .get("site_id")
                    .is_some_and(|id| s.contains(&id.as_str()))
            })
        })
        .peekable();
    rows.peek()?;
    Some(rows.fold(0u64, |sum, r| sum.saturating_add(row_value(r))))
}

/// The sites of a pool (`None`: every site), or `Err` when its capacity cannot be attributed
/// (a storage grade, a legacy group only, no disks).
fn pool_sites(pool: &IlmPool) -> Result<Option<Vec<&str>>, ()> {
    if pool.disks.is_empty() {
        return Err(());
    }
    let mut sites = Vec::new();
    for d in &pool.disks {
        if d.grade.is_some() {
            return Err(());
        }
        match (&d.site_id, d.group) {
            (Some(id), _) => sites.push(id.as_str()),
            (None, None) => return Ok(None),
            (None, Some(_)) => return Err(()),
        }
    }
    Ok(Some(sites))
}

/// One `storage_pool` pool per ILM storage pool whose capacity can be attributed (see the
/// module docs).
pub fn storage_pools(
    pools: &[IlmPool],
    total: &MetricData,
    data: &MetricData,
    usable: Option<&MetricData>,
) -> Vec<Pool> {
    pools
        .iter()
        .filter_map(|p| {
            let sites = pool_sites(p).ok()?;
            let sites = sites.as_deref();
            let name = [&p.display_name, &p.name, &p.id]
                .into_iter()
                .find(|n| !n.is_empty())?;
            Some(Pool {
                kind: PoolKind::StoragePool,
                name: name.clone(),
                total_bytes: sum_on(total, sites)?,
                used_bytes: sum_on(data, sites).unwrap_or(0),
                free_bytes: usable.and_then(|u| sum_on(u, sites)),
            })
        })
        .collect()
}

/// The value of one row: a finite, non-negative number in `value[1]`.
fn row_number(row: &MetricRow) -> Option<f64> {
    row.value
        .get(1)?
        .as_str()?
        .parse::<f64>()
        .ok()
        .filter(|v| v.is_finite() && *v >= 0.0)
}

/// Performance from the answer of [`PERFORMANCE_QUERY`]: each field from the row whose `sdash`
/// label names it (latency seconds → µs); `None` when no row has a value.
pub fn performance(data: Option<&MetricData>) -> Option<Performance> {
    let series = |name: &str| {
        data?
            .result
            .iter()
            .find(|r| r.metric.get("sdash").is_some_and(|s| s == name))
            .and_then(row_number)
    };
    // Whole nanoseconds: seconds × 10⁶ in binary floating point is not exact (412 µs would
    // read 411.99999999999994).
    let micros = |seconds: f64| (seconds * 1e9).round() / 1e3;
    let performance = Performance {
        read_iops: series(SERIES_READ_IOPS),
        write_iops: series(SERIES_WRITE_IOPS),
        read_latency_us: series(SERIES_READ_LATENCY).map(micros),
        write_latency_us: series(SERIES_WRITE_LATENCY).map(micros),
        read_bytes_per_s: series(SERIES_READ_BYTES).map(|v| v.round() as u64),
        write_bytes_per_s: series(SERIES_WRITE_BYTES).map(|v| v.round() as u64),
    };
    (performance != Performance::default()).then_some(performance)
}
