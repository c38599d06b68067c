//! ONTAP topology, pools and performance.
//!
//! * **Topology** ([`topology`]): cluster type `metrocluster` when
//!   `local.configuration_state == configured`, else `ha` with two or more nodes, `local` with
//!   one; site count 2 with MetroCluster, else 1; nodes from `/api/cluster/nodes` (name, model,
//!   serial_number, state, version); management addresses from the cluster's
//!   `management_interfaces` (asked on topology polls only); partners: each cluster peer
//!   (`cluster-peer`, `status.state`) and the MetroCluster partner (`metrocluster`, its mode).
//! * **Provisioned** ([`provisioned_bytes`]): the sum of the volumes' `space.size` (read on
//!   topology polls, kept in between).
//! * **Pools** ([`pools`]): one `aggregate` pool per aggregate (`space.block_storage.size`,
//!   `.used`, `.available`).
//! * **Performance** ([`performance`]): the cluster's `metric` (ONTAP 9.6+): `iops.read/write`,
//!   `latency.read/write` (µs), `throughput.read/write` (bytes/s). A release that rejects the
//!   `metric` field (400/262197) has no performance; that is not a degradation.

use sdash_proto::{ClusterType, Partner, Performance, Pool, PoolKind, Topology, TopologyNode};

use super::model::{Aggregate, ClusterInfo, MetroCluster, Node, Peer, Volume, short_version};

/// The provisioned bytes: the sum of the volumes' sizes.
pub fn provisioned_bytes(volumes: &[Volume]) -> u64 {
    volumes
        .iter()
        .fold(0u64, |sum, v| sum.saturating_add(v.space.size))
}

fn text(s: &str) -> Option<String> {
    (!s.is_empty()).then(|| s.to_owned())
}

/// The topology from what one poll read (see the module docs); fields it could not read stay
/// empty, for [`crate::vendors::topology::TopologyState::fill`].
pub fn topology(
    cluster: &ClusterInfo,
    nodes: Option<&[Node]>,
    peers: Option<&[Peer]>,
    metrocluster: Option<&MetroCluster>,
    management_url: Option<String>,
) -> Topology {
    let mc = metrocluster.filter(|m| m.local.configuration_state == "configured");
    let cluster_type = match (mc, nodes) {
        (Some(_), _) => Some(ClusterType::Metrocluster),
        (None, Some(n)) if n.len() >= 2 => Some(ClusterType::Ha),
        (None, Some(n)) if n.len() == 1 => Some(ClusterType::Local),
        _ => None,
    };
    let site_count = match (mc, metrocluster, nodes) {
        (Some(_), _, _) => Some(2),
        (None, Some(_), _) | (None, None, Some(_)) => Some(1),
        _ => None,
    };
    let mut partners: Vec<Partner> = peers
        .unwrap_or(&[])
        .iter()
        .map(|p| Partner {
            name: p.name.clone(),
            kind: "cluster-peer".into(),
            state: text(&p.status.state),
        })
        .collect();
    if let Some(m) = mc
        && !m.remote.cluster.name.is_empty()
    {
        partners.push(Partner {
            name: m.remote.cluster.name.clone(),
            kind: "metrocluster".into(),
            state: text(&m.remote.mode),
        });
    }
    let mut management_addresses: Vec<String> = Vec::new();
    for a in cluster
        .management_interfaces
        .iter()
        .map(|m| m.ip.address.as_str())
    {
        if !a.is_empty() && !management_addresses.iter().any(|x| x == a) {
            management_addresses.push(a.to_owned());
        }
    }
    Topology {
        cluster_type,
        nodes: nodes
            .unwrap_or(&[])
            .iter()
            .map(|n| TopologyNode {
                name: n.name.clone(),
                model: text(&n.model),
                serial: text(&n.serial_number),
                state: text(&n.state),
                version: short_version(&n.version.full),
            })
            .collect(),
        site_count,
        management_addresses,
        dns_names: Vec::new(),
        partners,
        management_url,
    }
}

/// One `aggregate` pool per aggregate.
pub fn pools(aggregates: &[Aggregate]) -> Vec<Pool> {
    aggregates
        .iter()
        .map(|a| Pool {
            kind: PoolKind::Aggregate,
            name: a.name.clone(),
            total_bytes: a.space.block_storage.size,
            used_bytes: a.space.block_storage.used,
            free_bytes: a.space.block_storage.available,
        })
        .collect()
}

fn rate(v: Option<f64>) -> Option<f64> {
    v.filter(|x| x.is_finite() && *x >= 0.0)
}

/// The cluster's performance from its `metric`, `None` without one.
pub fn performance(cluster: &ClusterInfo) -> Option<Performance> {
    let m = cluster.metric.as_ref()?;
    let bytes = |v: Option<f64>| rate(v).map(|x| x.round() as u64);
    Some(Performance {
        read_iops: rate(m.iops.read),
        write_iops: rate(m.iops.write),
        read_latency_us: rate(m.latency.read),
        write_latency_us: rate(m.latency.write),
        read_bytes_per_s: bytes(m.throughput.read),
        write_bytes_per_s: bytes(m.throughput.write),
    })
}
