//! Pure normalization rules (see the module docs of [`super`]): version choice, capacity,
//! controller, hardware and drive health, alerts and ActiveCluster health.

use sdash_proto::{Alert, Capacity, Component, Health, Severity};

use super::model::{AlertItem, ConnectionItem, ControllerItem, PodItem, SpaceItem};

/// The highest `2.x` version, compared numerically ("2.26" > "2.9").
pub fn pick_version(versions: &[String]) -> Option<String> {
    versions
        .iter()
        .filter_map(|v| {
            let (major, minor) = v.trim().split_once('.')?;
            let (major, minor) = (major.parse::<u32>().ok()?, minor.parse::<u32>().ok()?);
            (major == 2).then_some((minor, v.trim().to_owned()))
        })
        .max_by_key(|(minor, _)| *minor)
        .map(|(_, v)| v)
}

pub fn capacity(item: &SpaceItem) -> Option<Capacity> {
    let total = item.capacity?;
    let space = item.space.as_ref()?;
    let used = space.total_used.or(space.total_physical)?;
    Some(Capacity {
        total_bytes: total,
        used_bytes: used,
        free_bytes: total.saturating_sub(used),
        data_reduction: space.data_reduction,
        provisioned_bytes: space.total_provisioned,
    })
}

pub fn controller_health(c: &ControllerItem) -> Health {
    if c.mode.as_deref() == Some("offline") {
        return Health::Error;
    }
    match c.status.as_deref().unwrap_or("unknown") {
        "ready" | "ok" | "online" | "healthy" => Health::Ok,
        "updating" | "unknown" => Health::Warning,
        _ => Health::Error,
    }
}

/// `None` for an empty slot (skipped).
pub fn hardware_health(status: &str) -> Option<Health> {
    match status {
        "" | "unused" | "not_installed" => None,
        "critical" | "unhealthy" | "failed" => Some(Health::Error),
        "ok" | "healthy" | "normal" | "identifying" => Some(Health::Ok),
        _ => Some(Health::Warning),
    }
}

/// `None` for an empty bay (skipped).
pub fn drive_health(status: &str) -> Option<Health> {
    match status {
        "" | "empty" | "unused" => None,
        "failed" | "unhealthy" | "missing" | "unrecognized" => Some(Health::Error),
        "healthy" | "ok" | "identifying" | "recovering" | "updating" | "unadmitted" => {
            Some(Health::Ok)
        }
        _ => Some(Health::Warning),
    }
}

pub(super) fn hardware_kind(kind: &str) -> String {
    match kind {
        "pwr" => "psu",
        "fan" | "fm" => "fan",
        "tmp" => "temperature_sensor",
        "eth" | "fc" | "ib" | "sas" => "port",
        "ch" => "chassis",
        "ct" => "controller_module",
        "sh" => "shelf",
        "bay" => "bay",
        "nvb" => "nvram_bay",
        "iom" => "io_module",
        "" => "hardware",
        other => other,
    }
    .to_owned()
}

pub fn alert(a: &AlertItem) -> Alert {
    let raw = a.severity.clone().unwrap_or_default();
    let severity = match raw.as_str() {
        "critical" => Severity::Critical,
        "warning" => Severity::Warning,
        "info" | "hidden" => Severity::Info,
        _ => Severity::Warning,
    };
    let title = [&a.summary, &a.description, &a.issue, &a.name]
        .into_iter()
        .find_map(|t| t.clone().filter(|t| !t.is_empty()))
        .unwrap_or_else(|| "alert".to_owned());
    Alert {
        id: a.id.clone().or_else(|| a.name.clone()).unwrap_or_default(),
        severity,
        vendor_severity: raw,
        title,
        component: a.component_name.clone().filter(|c| !c.is_empty()),
        opened_at: a.created,
    }
}

pub fn cluster_health(
    connections: &[ConnectionItem],
    pods: &[PodItem],
) -> (Health, Vec<Component>) {
    let mut health = Health::Ok;
    let mut components = Vec::new();
    for c in connections {
        let status = c.status.as_deref().unwrap_or("unknown");
        let h = if status == "connected" {
            Health::Ok
        } else {
            Health::Warning
        };
        health = health.worst(h);
        components.push(Component {
            kind: "peer".into(),
            name: c.name.clone().unwrap_or_default(),
            status: h,
            detail: Some(format!(
                "{} {status}",
                c.r#type.as_deref().unwrap_or("replication")
            )),
        });
    }
    for p in pods {
        let arrays = p.arrays.as_deref().unwrap_or(&[]);
        let stretched = p.array_count.unwrap_or(0) > 1 || arrays.len() > 1;
        if !stretched {
            continue;
        }
        let mut problems = Vec::new();
        for a in arrays {
            let name = a.name.as_deref().unwrap_or("?");
            let status = a.status.as_deref().unwrap_or("unknown");
            if status != "online" {
                problems.push(format!("array {name} {status}"));
            }
            let mediator = a.mediator_status.as_deref().unwrap_or("unknown");
            if mediator != "online" {
                problems.push(format!("mediator {mediator} from {name}"));
            }
        }
        let any_online = arrays.iter().any(|a| a.status.as_deref() == Some("online"));
        let h = if !any_online {
            Health::Error
        } else if problems.is_empty() {
            Health::Ok
        } else {
            Health::Warning
        };
        health = health.worst(h);
        components.push(Component {
            kind: "pod".into(),
            name: p.name.clone().unwrap_or_default(),
            status: h,
            detail: Some(if problems.is_empty() {
                "stretched, all arrays online".into()
            } else {
                problems.join(", ")
            }),
        });
    }
    (health, components)
}
