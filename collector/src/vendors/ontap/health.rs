//! ONTAP health rules: nodes, aggregates (also the capacity), disks, cluster peers, SnapMirror
//! and MetroCluster, each turned into components (see the module docs of [`super`]).

use sdash_proto::{Capacity, Component, Health};

use super::super::components;
use super::model::{Aggregate, Disk, MetroCluster, Node, Peer, SnapMirror};

/// One node → a `node` component (see the module docs for the rules).
pub fn node_component(node: &Node) -> Component {
    let mut status = match node.state.as_str() {
        "up" => Health::Ok,
        "down" | "taken_over" | "degraded" => Health::Error,
        _ => Health::Warning,
    };
    let mut detail = vec![format!(
        "state {}",
        if node.state.is_empty() {
            "unknown"
        } else {
            &node.state
        }
    )];
    if !node.model.is_empty() {
        detail.push(format!("model {}", node.model));
    }
    const HA_OK: [&str; 5] = [
        "",
        "nothing_to_giveback",
        "not_attempted",
        "enabled",
        "ready",
    ];
    for (what, state) in [
        ("giveback", &node.ha.giveback.state),
        ("takeover", &node.ha.takeover.state),
    ] {
        if !HA_OK.contains(&state.as_str()) {
            status = status.worst(Health::Warning);
            detail.push(format!("HA {what} {state}"));
        }
    }
    if node.controller.failed_power_supply.count > 0 {
        status = status.worst(Health::Warning);
        detail.push(format!(
            "{} failed power supplies",
            node.controller.failed_power_supply.count
        ));
    }
    if node.controller.failed_fan.count > 0 {
        status = status.worst(Health::Warning);
        detail.push(format!("{} failed fans", node.controller.failed_fan.count));
    }
    if node.controller.over_temperature == "over" {
        status = status.worst(Health::Error);
        detail.push("over temperature".into());
    }
    Component {
        kind: "node".into(),
        name: node.name.clone(),
        status,
        detail: Some(detail.join(", ")),
    }
}

/// The common model of the nodes, or their models joined when they differ.
pub fn nodes_model(nodes: &[Node]) -> Option<String> {
    let mut models: Vec<&str> = nodes
        .iter()
        .map(|n| n.model.as_str())
        .filter(|m| !m.is_empty())
        .collect();
    models.dedup();
    models.sort_unstable();
    models.dedup();
    (!models.is_empty()).then(|| models.join(", "))
}

/// Capacity summed over the aggregates; `None` when there are none.
pub fn aggregate_capacity(aggregates: &[Aggregate]) -> Option<Capacity> {
    if aggregates.is_empty() {
        return None;
    }
    let total: u64 = aggregates.iter().map(|a| a.space.block_storage.size).sum();
    let used: u64 = aggregates.iter().map(|a| a.space.block_storage.used).sum();
    let free = if aggregates
        .iter()
        .all(|a| a.space.block_storage.available.is_some())
    {
        aggregates
            .iter()
            .filter_map(|a| a.space.block_storage.available)
            .sum()
    } else {
        total.saturating_sub(used)
    };
    let (mut weighted, mut weight) = (0.0_f64, 0.0_f64);
    let mut ratios = Vec::new();
    for a in aggregates {
        if let Some(r) = a
            .space
            .efficiency
            .as_ref()
            .and_then(|e| e.ratio)
            .filter(|r| r.is_finite() && *r > 0.0)
        {
            weighted += r * a.space.block_storage.used as f64;
            weight += a.space.block_storage.used as f64;
            ratios.push(r);
        }
    }
    let data_reduction = if weight > 0.0 {
        Some((weighted / weight * 100.0).round() / 100.0)
    } else {
        ratios.first().copied()
    };
    Some(Capacity {
        total_bytes: total,
        used_bytes: used,
        free_bytes: free,
        data_reduction,
        provisioned_bytes: None,
    })
}

/// One `aggregate` component per aggregate: `state` other than online → error.
pub fn aggregate_components(aggregates: &[Aggregate]) -> Vec<Component> {
    aggregates
        .iter()
        .map(|a| {
            let status = match a.state.as_str() {
                "online" | "" => Health::Ok,
                _ => Health::Error,
            };
            let b = &a.space.block_storage;
            let pct = if b.size > 0 {
                b.used as f64 * 100.0 / b.size as f64
            } else {
                0.0
            };
            Component {
                kind: "aggregate".into(),
                name: a.name.clone(),
                status,
                detail: Some(format!(
                    "state {}, {pct:.0} % used",
                    if a.state.is_empty() {
                        "unknown"
                    } else {
                        &a.state
                    }
                )),
            }
        })
        .collect()
}

/// Health of one disk (see the module docs).
pub fn disk_health(disk: &Disk) -> Health {
    if disk.state == "broken" || disk.container_type == "broken" {
        Health::Error
    } else if matches!(
        disk.state.as_str(),
        "reconstructing" | "maintenance" | "pending" | "removed"
    ) {
        Health::Warning
    } else {
        Health::Ok
    }
}

/// A `disks` summary component plus one `disk` component per unhealthy disk.
pub fn disk_components(disks: &[Disk]) -> Vec<Component> {
    components::disk_components(disks, disk_health, |d| {
        let detail = format!("state {}, container {}", d.state, d.container_type);
        (d.name.clone(), detail)
    })
}

/// One `peer` component per cluster peer: `status.state` other than available → warning.
pub fn peer_components(peers: &[Peer]) -> Vec<Component> {
    peers
        .iter()
        .map(|p| Component {
            kind: "peer".into(),
            name: p.name.clone(),
            status: if p.status.state == "available" {
                Health::Ok
            } else {
                Health::Warning
            },
            detail: Some(format!(
                "status {}",
                if p.status.state.is_empty() {
                    "unknown"
                } else {
                    &p.status.state
                }
            )),
        })
        .collect()
}

/// One `replication` component per SnapMirror relationship: `healthy == false` → warning.
pub fn snapmirror_components(relationships: &[SnapMirror]) -> Vec<Component> {
    relationships
        .iter()
        .map(|r| {
            let healthy = r.healthy != Some(false);
            let mut detail = format!("state {}", r.state);
            if let Some(reason) = r.unhealthy_reason.first().filter(|_| !healthy) {
                detail.push_str(": ");
                detail.push_str(&reason.message);
            }
            Component {
                kind: "replication".into(),
                name: format!("{} -> {}", r.source.path, r.destination.path),
                status: if healthy { Health::Ok } else { Health::Warning },
                detail: Some(detail),
            }
        })
        .collect()
}

/// A `metrocluster` component when MetroCluster is configured; `None` otherwise (the normal case).
pub fn metrocluster_component(mc: &MetroCluster) -> Option<Component> {
    if mc.local.configuration_state != "configured" {
        return None;
    }
    let mut status = Health::Ok;
    let mut detail = vec![format!(
        "{} local mode {}",
        mc.configuration_type, mc.local.mode
    )];
    if mc.local.mode != "normal" {
        status = Health::Warning;
    }
    if !mc.remote.mode.is_empty() && mc.remote.mode != "normal" {
        status = Health::Warning;
        detail.push(format!("remote mode {}", mc.remote.mode));
    }
    if mc.local.partner_cluster_reachable == Some(false) {
        status = Health::Warning;
        detail.push("partner cluster unreachable".into());
    }
    Some(Component {
        kind: "metrocluster".into(),
        name: if mc.remote.cluster.name.is_empty() {
            "metrocluster".into()
        } else {
            mc.remote.cluster.name.clone()
        },
        status,
        detail: Some(detail.join(", ")),
    })
}
