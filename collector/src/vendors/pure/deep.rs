//! Pure topology, management interfaces, space pools and performance.
//!
//! * **Management interfaces** ([`management_check`]): each interface of
//!   `network-interfaces?filter=services='management'`; `enabled == false` → a warning component
//!   and the synthetic alert `sdash:mgmt:<name>` (hardware health warning). REST 2.x reports no
//!   link state for network interfaces, so "down" means disabled. Their `eth.address` values are
//!   the management addresses.
//! * **Topology** ([`topology`]): `active-cluster` with a `sync-replication` connection or a
//!   stretched pod, else `ha` with two or more array controllers, else `local`; nodes are the
//!   array controllers (`name`, `model`, `status`, `version`); site count = 1 + connected
//!   arrays; partners are the array connections (`type`, `status`).
//! * **Pools** ([`pools`]): the space breakdown of `/arrays/space` (`unique`, `snapshots`,
//!   `shared`, `system`, `replication`) as `space` pools, each against the array's `capacity`.
//! * **Provisioned** bytes: `space.total_provisioned`.
//! * **Performance** ([`performance`]): `/arrays/performance` `reads_per_sec`,
//!   `writes_per_sec`, `usec_per_read_op`, `usec_per_write_op`, `read_bytes_per_sec`,
//!   `write_bytes_per_sec`; a 404 (no such endpoint) is no performance, not an error.

use sdash_proto::{
    ClusterType, Component, Health, Partner, Performance, Pool, PoolKind, Topology, TopologyNode,
};

use super::model::{
    ArrayPerformanceItem, ConnectionItem, ControllerItem, NetworkInterfaceItem, PodItem, SpaceItem,
};
use crate::vendors::components::Check;
use crate::vendors::topology::check_alert;

/// Management interface components (a `management_interfaces` summary, one per disabled
/// interface), their alerts, and the health they imply.
pub fn management_check(interfaces: &[NetworkInterfaceItem]) -> Check {
    let mut components = Vec::new();
    let mut alerts = Vec::new();
    for i in interfaces {
        if i.enabled != Some(false) {
            continue;
        }
        let name = i.name.clone().unwrap_or_default();
        components.push(Component {
            kind: "management_interface".into(),
            name: name.clone(),
            status: Health::Warning,
            detail: Some(format!(
                "disabled{}",
                i.eth
                    .as_ref()
                    .and_then(|e| e.address.as_deref())
                    .map(|a| format!(", address {a}"))
                    .unwrap_or_default()
            )),
        });
        alerts.push(check_alert(
            "mgmt",
            &name,
            format!("Management interface {name} is down"),
            &name,
        ));
    }
    Check::from_down(
        "management_interfaces",
        "interfaces",
        "down",
        interfaces.len(),
        components,
        alerts,
    )
}

/// The management addresses (`eth.address`), without duplicates.
pub fn management_addresses(interfaces: &[NetworkInterfaceItem]) -> Vec<String> {
    let mut out: Vec<String> = Vec::new();
    for a in interfaces
        .iter()
        .filter_map(|i| i.eth.as_ref()?.address.clone())
        .filter(|a| !a.is_empty())
    {
        if !out.contains(&a) {
            out.push(a);
        }
    }
    out
}

fn stretched(p: &PodItem) -> bool {
    p.array_count.unwrap_or(0) > 1 || p.arrays.as_ref().is_some_and(|a| a.len() > 1)
}

/// The topology from what one poll read (see the module docs).
pub fn topology(
    controllers: Option<&[ControllerItem]>,
    connections: Option<&[ConnectionItem]>,
    pods: Option<&[PodItem]>,
    interfaces: Option<&[NetworkInterfaceItem]>,
    management_url: Option<String>,
) -> Topology {
    let array_controllers: Vec<&ControllerItem> = controllers
        .unwrap_or(&[])
        .iter()
        .filter(|c| c.r#type.as_deref() != Some("shelf_controller"))
        .collect();
    let sync = connections
        .unwrap_or(&[])
        .iter()
        .any(|c| c.r#type.as_deref() == Some("sync-replication"));
    let cluster_type = if sync || pods.unwrap_or(&[]).iter().any(stretched) {
        Some(ClusterType::ActiveCluster)
    } else if controllers.is_none() {
        None
    } else if array_controllers.len() >= 2 {
        Some(ClusterType::Ha)
    } else {
        Some(ClusterType::Local)
    };
    Topology {
        cluster_type,
        nodes: array_controllers
            .iter()
            .map(|c| TopologyNode {
                name: c.name.clone().unwrap_or_default(),
                model: c.model.clone(),
                serial: None,
                state: c.status.clone(),
                version: c.version.clone(),
            })
            .collect(),
        site_count: connections.map(|c| 1 + c.len() as u32),
        management_addresses: interfaces.map(management_addresses).unwrap_or_default(),
        dns_names: Vec::new(),
        partners: connections
            .unwrap_or(&[])
            .iter()
            .map(|c| Partner {
                name: c.name.clone().unwrap_or_default(),
                kind: c.r#type.clone().unwrap_or_else(|| "replication".into()),
                state: c.status.clone(),
            })
            .collect(),
        management_url,
    }
}

/// The space breakdown as `space` pools (see the module docs).
pub fn pools(item: &SpaceItem) -> Vec<Pool> {
    let (Some(total), Some(space)) = (item.capacity, item.space.as_ref()) else {
        return Vec::new();
    };
    [
        ("unique", space.unique),
        ("snapshots", space.snapshots),
        ("shared", space.shared),
        ("system", space.system),
        ("replication", space.replication),
    ]
    .into_iter()
    .filter_map(|(name, used)| {
        used.map(|used| Pool {
            kind: PoolKind::Space,
            name: name.into(),
            total_bytes: total,
            used_bytes: used,
            free_bytes: None,
        })
    })
    .collect()
}

fn rate(v: Option<f64>) -> Option<f64> {
    v.filter(|x| x.is_finite() && *x >= 0.0)
}

/// The array's performance from the first item of `/arrays/performance`.
pub fn performance(item: &ArrayPerformanceItem) -> Performance {
    let bytes = |v: Option<f64>| rate(v).map(|x| x.round() as u64);
    Performance {
        read_iops: rate(item.reads_per_sec),
        write_iops: rate(item.writes_per_sec),
        read_latency_us: rate(item.usec_per_read_op),
        write_latency_us: rate(item.usec_per_write_op),
        read_bytes_per_s: bytes(item.read_bytes_per_sec),
        write_bytes_per_s: bytes(item.write_bytes_per_sec),
    }
}
