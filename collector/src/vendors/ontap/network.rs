//! ONTAP network checks: LIFs and ethernet ports that are down become components and synthetic
//! alerts (see [`crate::vendors::topology::check_alert`]).
//!
//! * **LIFs** ([`lif_checks`]): `state != up` → warning, except LIFs with `enabled == false`
//!   (taken down on purpose) and LIFs of SVMs whose names end in `-mc` (the MetroCluster
//!   destination copies, down by design until a switchover). Counted in **cluster** health
//!   (logical network). Alert id `sdash:lif:<svm or "cluster">:<lif>`.
//! * **Ports** ([`port_checks`]): `state != up` → warning, except `type == vlan` (a VLAN follows
//!   its parent port, which is reported itself) and ports with `enabled == false`. Counted in
//!   **hardware** health. Alert id `sdash:port:<node>:<port>`.
//!
//! Each check gives one summary component (`lifs` / `ports`, "N LIFs, M down") and one component
//! per thing that is down.

use sdash_proto::{Component, Health};

use super::model::{IpInterface, Port};
pub use crate::vendors::components::Check;
use crate::vendors::topology::check_alert;

/// Whether a LIF is checked at all (see the module docs).
pub fn lif_checked(lif: &IpInterface) -> bool {
    lif.enabled != Some(false) && !lif.svm.name.ends_with("-mc")
}

/// The LIF check.
pub fn lif_checks(lifs: &[IpInterface]) -> Check {
    let mut components = Vec::new();
    let mut alerts = Vec::new();
    let checked: Vec<&IpInterface> = lifs.iter().filter(|l| lif_checked(l)).collect();
    for lif in &checked {
        if lif.state == "up" {
            continue;
        }
        let svm = if lif.svm.name.is_empty() {
            "cluster"
        } else {
            lif.svm.name.as_str()
        };
        let state = if lif.state.is_empty() {
            "unknown"
        } else {
            &lif.state
        };
        let mut detail = format!("state {state}, svm {svm}");
        if !lif.location.node.name.is_empty() {
            detail.push_str(&format!(
                ", on {} {}",
                lif.location.node.name, lif.location.port.name
            ));
        }
        components.push(Component {
            kind: "lif".into(),
            name: lif.name.clone(),
            status: Health::Warning,
            detail: Some(detail),
        });
        alerts.push(check_alert(
            "lif",
            &format!("{svm}:{}", lif.name),
            format!("LIF {} of {svm} is {state}", lif.name),
            &lif.name,
        ));
    }
    Check::from_down("lifs", "LIFs", "down", checked.len(), components, alerts)
}

/// The port check.
pub fn port_checks(ports: &[Port]) -> Check {
    let mut components = Vec::new();
    let mut alerts = Vec::new();
    let checked: Vec<&Port> = ports
        .iter()
        .filter(|p| p.kind != "vlan" && p.enabled != Some(false))
        .collect();
    for port in &checked {
        if port.state == "up" {
            continue;
        }
        let state = if port.state.is_empty() {
            "unknown"
        } else {
            &port.state
        };
        let name = format!("{}:{}", port.node.name, port.name);
        components.push(Component {
            kind: "port".into(),
            name: name.clone(),
            status: Health::Warning,
            detail: Some(format!("state {state}, type {}", port.kind)),
        });
        alerts.push(check_alert(
            "port",
            &name,
            format!("Port {} on {} is {state}", port.name, port.node.name),
            &name,
        ));
    }
    Check::from_down("ports", "ports", "down", checked.len(), components, alerts)
}
