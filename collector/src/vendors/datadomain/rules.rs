//! DataDomain normalization rules (see the module docs of [`super`]): capacity, alerts, disks,
//! HA and replication health.

use sdash_proto::{Alert, Capacity, Component, Health, Severity};

use super::super::components;
use super::model::{DdAlert, DdDisk, HaSysInfo, ReplContext, SystemInfo};

/// Capacity from `/rest/v1.0/system`; `None` when the system reports no total.
pub fn capacity(system: &SystemInfo) -> Option<Capacity> {
    let p = &system.physical_capacity;
    if p.total == 0 && p.used == 0 {
        return None;
    }
    Some(Capacity {
        total_bytes: p.total,
        used_bytes: p.used,
        free_bytes: p
            .available
            .unwrap_or_else(|| p.total.saturating_sub(p.used)),
        data_reduction: system
            .compression_factor
            .filter(|f| f.is_finite() && *f > 0.0),
        provisioned_bytes: None,
    })
}

/// Normalized severity of a DD severity word (upper case in the spec; compared case-insensitively).
pub fn alert_severity(severity: &str) -> Severity {
    match severity.to_ascii_uppercase().as_str() {
        "CRITICAL" | "EMERGENCY" | "ALERT" => Severity::Critical,
        "ERROR" => Severity::Error,
        "WARNING" => Severity::Warning,
        _ => Severity::Info,
    }
}

fn is_active(a: &DdAlert) -> bool {
    matches!(
        a.status.to_ascii_lowercase().as_str(),
        "active" | "new" | "unresolved"
    )
}

/// The open alerts, normalized.
pub fn alerts(list: &[DdAlert]) -> Vec<Alert> {
    list.iter()
        .filter(|a| is_active(a))
        .map(|a| Alert {
            id: [&a.alert_id, &a.id, &a.name]
                .into_iter()
                .find(|s| !s.is_empty())
                .cloned()
                .unwrap_or_default(),
            severity: alert_severity(&a.severity),
            vendor_severity: a.severity.clone(),
            title: [&a.msg, &a.description, &a.name]
                .into_iter()
                .find(|s| !s.is_empty())
                .cloned()
                .unwrap_or_default(),
            component: [&a.part_name, &a.object_id]
                .into_iter()
                .find(|s| !s.is_empty())
                .cloned(),
            opened_at: a.alert_gen_epoch.and_then(|s| s.checked_mul(1000)),
        })
        .collect()
}

/// Hardware health implied by the open HardwareFailure/Environment alerts.
pub fn alert_hardware(list: &[DdAlert]) -> Health {
    list.iter()
        .filter(|a| is_active(a) && matches!(a.class.as_str(), "HardwareFailure" | "Environment"))
        .fold(Health::Ok, |acc, a| {
            acc.worst(if alert_severity(&a.severity) == Severity::Critical {
                Health::Error
            } else {
                Health::Warning
            })
        })
}

/// Health of one disk status.
pub fn disk_health(status: &str) -> Health {
    match status.to_ascii_uppercase().as_str() {
        "FAILED" | "ERROR" => Health::Error,
        "UNKNOWN" | "FOREIGN" | "INVALID" => Health::Warning,
        _ => Health::Ok,
    }
}

/// A `disks` summary component plus one `disk` component per unhealthy disk.
pub fn disk_components(disks: &[DdDisk]) -> Vec<Component> {
    components::disk_components(
        disks,
        |d| disk_health(&d.status),
        |d| (d.id.clone(), format!("{} {}", d.device, d.status)),
    )
}

/// Health of an HA state word.
pub fn ha_state_health(state: &str) -> Health {
    match state.to_ascii_lowercase().as_str() {
        "online" | "ok" | "normal" | "active" | "standby" | "running" => Health::Ok,
        "failed" | "error" | "critical" | "offline" | "down" => Health::Error,
        _ => Health::Warning,
    }
}

/// `ha` components for the local node and its peer.
pub fn ha_components(ha: &HaSysInfo) -> Vec<Component> {
    let h = &ha.ha_info;
    let mut out = vec![Component {
        kind: "ha_node".into(),
        name: if h.node_name.is_empty() {
            "local".into()
        } else {
            h.node_name.clone()
        },
        status: ha_state_health(&h.state),
        detail: Some(format!(
            "role {}, mode {}, state {}",
            h.role, h.mode, h.state
        )),
    }];
    if let Some(p) = &h.peer_info {
        out.push(Component {
            kind: "ha_node".into(),
            name: if p.node_name.is_empty() {
                "peer".into()
            } else {
                p.node_name.clone()
            },
            status: ha_state_health(&p.state),
            detail: Some(format!("peer, state {}", p.state)),
        });
    }
    out
}

/// One `replication` component per MTree replication context.
pub fn replication_components(contexts: &[ReplContext]) -> Vec<Component> {
    contexts
        .iter()
        .map(|c| {
            let mut problems = Vec::new();
            if c.enabled != Some(false) {
                if c.connected == Some(false) {
                    problems.push("not connected".to_owned());
                }
                if c.need_resync == Some(true) {
                    problems.push("needs resync".to_owned());
                }
                if !c.error_message.is_empty() {
                    problems.push(c.error_message.clone());
                }
                if !c.state.eq_ignore_ascii_case("normal") {
                    problems.push(format!("state {}", c.state));
                }
            }
            Component {
                kind: "replication".into(),
                name: format!("{} -> {}", c.source_mtree_path, c.destination_host),
                status: if problems.is_empty() {
                    Health::Ok
                } else {
                    Health::Warning
                },
                detail: Some(if problems.is_empty() {
                    format!("{} {}", c.mode, c.state)
                } else {
                    problems.join(", ")
                }),
            }
        })
        .collect()
}
