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

use sdash_proto::{
    ClusterType, Component, Health, Partner, Pool, PoolKind, Topology, TopologyNode,
};

use super::model::{HaSysInfo, Nic, ReplContext, SystemInfo};
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
