//! The open problems of an ONTAP cluster, reconstructed from the EMS log: the two queries
//! (problems and recoveries) and the pairing of each problem with its recovery.

use std::collections::HashMap;
use std::time::Duration;

use sdash_proto::{Alert, Health, Severity};
use time::OffsetDateTime;
use time::format_description::well_known::Rfc3339;

use super::EMS_FIELDS;
use super::model::EmsEvent;

/// The EMS problem query: emergency, alert and error events newer than `since`.
pub fn ems_problems_path(since: OffsetDateTime) -> String {
    format!(
        "/api/support/ems/events?message.severity=emergency%7Calert%7Cerror&time=%3E{}&{EMS_FIELDS}",
        since_query(since)
    )
}

/// The EMS recovery query: the events that clear a problem, newer than `since`.
pub fn ems_recoveries_path(since: OffsetDateTime) -> String {
    format!(
        "/api/support/ems/events?message.name=cf.fsm.monitor.globalStatus.ok%7Ccpeer.available%7Chm.alert.cleared&time=%3E{}&{EMS_FIELDS}",
        since_query(since)
    )
}

fn since_query(since: OffsetDateTime) -> String {
    since
        .replace_nanosecond(0)
        .unwrap_or(since)
        .format(&Rfc3339)
        .unwrap_or_default()
        .replace(':', "%3A")
        .replace('+', "%2B")
}

const HARDWARE_PREFIXES: [&str; 12] = [
    "hm.",
    "disk.",
    "raid.",
    "nvme.",
    "nvmf.",
    "env.",
    "cf.",
    "node.",
    "sas.",
    "fc.",
    "callhome.",
    "cpeer.",
];

fn has_hardware_prefix(name: &str) -> bool {
    HARDWARE_PREFIXES.iter().any(|p| name.starts_with(p))
}

/// The pairing key of a problem or recovery event: (family, key).
fn pairing_key(event: &EmsEvent) -> Option<(&'static str, String)> {
    let node = event.node.name.as_str();
    match event.message.name.as_str() {
        "hm.alert.raised" | "hm.alert.cleared" => Some((
            "hm.alert",
            format!(
                "{node}/{}",
                event.param(&["alertId", "alert_id"]).unwrap_or("")
            ),
        )),
        "cpeer.unavailable" | "cpeer.available" => Some((
            "cpeer",
            event
                .param(&["peerName", "peer_name", "peer"])
                .unwrap_or("")
                .to_owned(),
        )),
        "cf.fsm.monitor.globalStatus.critical" | "cf.fsm.monitor.globalStatus.ok" => {
            Some(("cf.fsm", node.to_owned()))
        }
        _ => None,
    }
}

/// Result of the EMS reconstruction: the open alerts and the hardware health they imply.
#[derive(Debug, Clone, PartialEq)]
pub struct EmsState {
    pub alerts: Vec<Alert>,
    pub hardware: Health,
}

/// Normalized severity of an EMS severity word.
pub fn ems_severity(severity: &str) -> Severity {
    match severity {
        "emergency" => Severity::Critical,
        "alert" | "error" => Severity::Error,
        "notice" | "informational" | "debug" => Severity::Info,
        _ => Severity::Warning,
    }
}

/// Reconstructs the open problems from the EMS problem and recovery events (see the module docs).
pub fn ems_alerts(
    problems: &[EmsEvent],
    recoveries: &[EmsEvent],
    now_ms: i64,
    window: Duration,
) -> EmsState {
    let cutoff = now_ms.saturating_sub(i64::try_from(window.as_millis()).unwrap_or(i64::MAX));
    let mut latest_recovery: HashMap<(&'static str, String), i64> = HashMap::new();
    for r in recoveries {
        if let (Some(key), Some(t)) = (pairing_key(r), r.time_ms()) {
            let entry = latest_recovery.entry(key).or_insert(t);
            *entry = (*entry).max(t);
        }
    }
    let mut alerts: Vec<Alert> = Vec::new();
    let mut hardware = Health::Ok;
    for p in problems {
        let Some(t) = p.time_ms() else { continue };
        if t < cutoff {
            continue;
        }
        let name = p.message.name.as_str();
        let severity = p.message.severity.as_str();
        let hw = has_hardware_prefix(name);
        if !hw && !matches!(severity, "emergency" | "alert") {
            continue;
        }
        if let Some(key) = pairing_key(p)
            && latest_recovery.get(&key).is_some_and(|rt| *rt > t)
        {
            continue;
        }
        if severity == "emergency" {
            hardware = Health::Error;
        } else if hw {
            hardware = hardware.worst(Health::Warning);
        }
        let id = format!("{}/{}", p.node.name, p.index);
        if alerts.iter().any(|a| a.id == id) {
            continue;
        }
        alerts.push(Alert {
            id,
            severity: ems_severity(severity),
            vendor_severity: severity.to_owned(),
            title: if p.log_message.is_empty() {
                name.to_owned()
            } else {
                p.log_message.clone()
            },
            component: (!p.node.name.is_empty()).then(|| p.node.name.clone()),
            opened_at: Some(t),
        });
    }
    EmsState { alerts, hardware }
}
