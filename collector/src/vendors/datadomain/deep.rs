//! DataDomain NICs, topology and tiers.
//!
//! * **NICs** ([`nic_check`]): each NIC of `/rest/v2.0/dd-systems/0/networks/nics` that is
//!   enabled and not an alias (`name` with a `:`, which shares its parent's link) but reports
//!   `has_link == false` → a warning component `nic` and the synthetic alert `sdash:nic:<name>`
//!   (hardware health warning). Disabled NICs are not checked.
//! * **Topology** ([`topology`]): `ha` when `type == HA` (or the HA info has a peer), else
//!   `local`; nodes: the local node (HA `nodeName`, else the system name; serial, model and
//!   version of the system; HA `state`) and the HA peer (`nodeName`, `serialno`, `state`); one
//!   site; management addresses: the addresses of the management NICs (`ethM*`, with their
//!   aliases, such as the HA floating address); partners: the HA peer (`ha`) and each MTree
//!   replication host (`mtree-replication`, the context state); the management URL is DD System
//!   Manager on port 443 of the API host.
//! * **Pools** ([`pools`]): `capacity_usage_details` tiers `active` and `cloud` (physical
//!   total, used, available) as `active_tier` / `cloud_tier` pools.
//! * **Performance** ([`performance`]): the newest sample (`collectionEpoch`) of
//!   `GET /api/v3/dd-systems/0/stats/performance` (schema `SystemPerformance`, PowerProtect DD
//!   REST API 8.3 and 8.7), asked for the last [`PERFORMANCE_WINDOW_S`] only
//!   ([`performance_filter`]: `filter=collection_epoch=(<start>,)`, the start by the array's own
//!   clock, the `Date` header of `/rest/v1.0/system`, so a skewed collector clock does not empty
//!   the window). Read and write bandwidth = `throughput.read` / `.write`; read IOPS =
//!   `iops.readSequential + readRandom`, write likewise; read latency = `protocolLatency`
//!   `readSequential` and `readRandom` weighted by their IOPS (their plain mean without any
//!   IOPS), write likewise. The spec gives no units: throughput is taken as bytes/s (as the
//!   spec's other rates, `networkThroughput.send_rate`, `filesysStats.data_in_rate`) and
//!   latency as milliseconds (as DD OS `system show performance` reports protocol latency),
//!   converted to µs. A DD OS without the endpoint (404) has no performance, not an error.

use sdash_proto::{
    ClusterType, Component, Health, Partner, Performance, Pool, PoolKind, Topology, TopologyNode,
};

use super::model::{HaSysInfo, Nic, PerfSample, ReplContext, SystemInfo};
use crate::vendors::components::Check;
use crate::vendors::topology::check_alert;

fn text(s: &str) -> Option<String> {
    (!s.is_empty()).then(|| s.to_owned())
}

/// Whether a NIC is checked for its link (see the module docs).
pub fn nic_checked(nic: &Nic) -> bool {
    nic.enabled != Some(false) && !nic.name.contains(':')
}

/// The NIC components (a `nics` summary, one per NIC without link), alerts and health.
pub fn nic_check(nics: &[Nic]) -> Check {
    let mut components = Vec::new();
    let mut alerts = Vec::new();
    let checked: Vec<&Nic> = nics.iter().filter(|n| nic_checked(n)).collect();
    for nic in &checked {
        if nic.has_link != Some(false) {
            continue;
        }
        components.push(Component {
            kind: "nic".into(),
            name: nic.name.clone(),
            status: Health::Warning,
            detail: Some(format!(
                "no link, {}",
                if nic.up_state == Some(true) {
                    "up"
                } else {
                    "down"
                }
            )),
        });
        alerts.push(check_alert(
            "nic",
            &nic.name,
            format!("NIC {} has no link", nic.name),
            &nic.name,
        ));
    }
    Check::from_down(
        "nics",
        "NICs",
        "without link",
        checked.len(),
        components,
        alerts,
    )
}

/// The topology from what one poll read (see the module docs).
pub fn topology(
    system: &SystemInfo,
    ha: Option<&HaSysInfo>,
    nics: Option<&[Nic]>,
    replications: Option<&[ReplContext]>,
    management_url: Option<String>,
) -> Topology {
    let peer = ha.and_then(|h| h.ha_info.peer_info.as_ref());
    let mut nodes = vec![TopologyNode {
        name: ha
            .map(|h| h.ha_info.node_name.clone())
            .filter(|n| !n.is_empty())
            .unwrap_or_else(|| system.name.clone()),
        model: text(&system.model),
        serial: text(&system.serialno),
        state: ha.and_then(|h| text(&h.ha_info.state)),
        version: text(&system.version),
    }];
    let mut partners = Vec::new();
    if let Some(p) = peer.filter(|p| !p.node_name.is_empty()) {
        nodes.push(TopologyNode {
            name: p.node_name.clone(),
            model: text(&system.model),
            serial: text(&p.serialno),
            state: text(&p.state),
            version: None,
        });
        partners.push(Partner {
            name: p.node_name.clone(),
            kind: "ha".into(),
            state: text(&p.state),
        });
    }
    for c in replications.unwrap_or(&[]) {
        let host = if c.conn_host.is_empty() {
            &c.destination_host
        } else {
            &c.conn_host
        };
        if host.is_empty() {
            continue;
        }
        match partners
            .iter_mut()
            .find(|p| p.kind == "mtree-replication" && &p.name == host)
        {
            // One partner per host; a context that is not NORMAL gives the host its state.
            Some(p) => {
                if c.state != "NORMAL" && !c.state.is_empty() {
                    p.state = Some(c.state.clone());
                }
            }
            None => partners.push(Partner {
                name: host.clone(),
                kind: "mtree-replication".into(),
                state: text(&c.state),
            }),
        }
    }
    let mut management_addresses: Vec<String> = Vec::new();
    for n in nics.unwrap_or(&[]) {
        if n.name.starts_with("ethM")
            && !n.address.is_empty()
            && !management_addresses.contains(&n.address)
        {
            management_addresses.push(n.address.clone());
        }
    }
    Topology {
        cluster_type: Some(if system.is_ha() || peer.is_some() {
            ClusterType::Ha
        } else {
            ClusterType::Local
        }),
        nodes,
        site_count: Some(1),
        management_addresses,
        dns_names: Vec::new(),
        partners,
        management_url,
    }
}

/// The `active` and `cloud` tiers as pools.
pub fn pools(system: &SystemInfo) -> Vec<Pool> {
    system
        .capacity_usage_details
        .iter()
        .filter_map(|t| {
            let kind = match t.tier.to_ascii_lowercase().as_str() {
                "active" => PoolKind::ActiveTier,
                "cloud" => PoolKind::CloudTier,
                _ => return None,
            };
            Some(Pool {
                kind,
                name: t.tier.clone(),
                total_bytes: t.physical_capacity.total,
                used_bytes: t.physical_capacity.used,
                free_bytes: t.physical_capacity.available,
            })
        })
        .collect()
}

/// How far back the performance query reaches: three of DD OS's 5-minute samples.
pub const PERFORMANCE_WINDOW_S: i64 = 15 * 60;

/// The `filter` of the performance query: samples since [`PERFORMANCE_WINDOW_S`] before `now_s`
/// (epoch seconds, the array's clock).
pub fn performance_filter(now_s: i64) -> String {
    format!(
        "collection_epoch=({},)",
        now_s.saturating_sub(PERFORMANCE_WINDOW_S)
    )
}

/// The latency of sequential and random operations, weighted by their IOPS (µs from ms).
fn weighted_latency_us(
    sequential: (Option<f64>, Option<u64>),
    random: (Option<f64>, Option<u64>),
) -> Option<f64> {
    let parts: Vec<(f64, f64)> = [sequential, random]
        .into_iter()
        .filter_map(|(lat, ops)| {
            let lat = lat.filter(|l| l.is_finite() && *l >= 0.0)?;
            Some((lat * 1000.0, ops.unwrap_or(0) as f64))
        })
        .collect();
    if parts.is_empty() {
        return None;
    }
    let ops: f64 = parts.iter().map(|(_, o)| o).sum();
    Some(if ops > 0.0 {
        parts.iter().map(|(l, o)| l * o).sum::<f64>() / ops
    } else {
        parts.iter().map(|(l, _)| l).sum::<f64>() / parts.len() as f64
    })
}

fn sum_ops(a: Option<u64>, b: Option<u64>) -> Option<f64> {
    match (a, b) {
        (None, None) => None,
        (a, b) => Some(a.unwrap_or(0).saturating_add(b.unwrap_or(0)) as f64),
    }
}

fn rate(v: Option<f64>) -> Option<u64> {
    v.filter(|v| v.is_finite() && *v >= 0.0)
        .map(|v| v.round() as u64)
}

/// The performance of the newest sample; `None` without a sample.
pub fn performance(samples: &[PerfSample]) -> Option<Performance> {
    let s = samples.iter().max_by_key(|s| s.collection_epoch)?;
    let (l, o) = (&s.protocol_latency, &s.iops);
    Some(Performance {
        read_iops: sum_ops(o.read_sequential, o.read_random),
        write_iops: sum_ops(o.write_sequential, o.write_random),
        read_latency_us: weighted_latency_us(
            (l.read_sequential, o.read_sequential),
            (l.read_random, o.read_random),
        ),
        write_latency_us: weighted_latency_us(
            (l.write_sequential, o.write_sequential),
            (l.write_random, o.write_random),
        ),
        read_bytes_per_s: rate(s.throughput.read),
        write_bytes_per_s: rate(s.throughput.write),
    })
}
