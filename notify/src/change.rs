//! A change from the bus ([`Change`]) and what it means to a receiver: its severity, the
//! condition it opens or closes ([`Condition`]: the key and labels of an Alertmanager alert, the
//! thing that is repeated while unresolved), its one-line summary, and its JSON form in webhook
//! payloads ([`Notice`]).

use std::collections::BTreeMap;

use sdash_proto::{Alert, Capacity, ChangeKind, ChangeRecord, Envelope, Health, Severity, Status};
use serde::{Deserialize, Serialize};

/// One change as received: the envelope's id (the dedupe key), system and time, and the record.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Change {
    pub id: String,
    pub system_id: String,
    pub observed_at: i64,
    pub record: ChangeRecord,
}

impl From<Envelope<ChangeRecord>> for Change {
    fn from(e: Envelope<ChangeRecord>) -> Change {
        Change {
            id: e.event_id,
            system_id: e.system_id,
            observed_at: e.observed_at,
            record: e.body,
        }
    }
}

/// Whether a change opens its condition, closes it, or only informs.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum State {
    Firing,
    Resolved,
    /// Neither (a health that became `unknown`): sent to webhooks and email, no alert change.
    Info,
}

/// What a change is about, as Alertmanager sees it: one alert per key.
#[derive(Debug, Clone, PartialEq)]
pub struct Condition {
    /// Stable per condition: `<system>/status`, `<system>/alert/<id>/<opened_at>`, ...
    pub key: String,
    pub alertname: &'static str,
    pub state: State,
    /// Identity labels beside alertname, system, vendor, severity and the tags.
    pub labels: BTreeMap<String, String>,
}

fn is_down(status: &str) -> bool {
    matches!(
        Status::parse(status),
        Some(Status::Unreachable | Status::AuthFailed | Status::Error)
    )
}

fn health_severity(health: Option<&str>) -> Severity {
    match health.and_then(Health::parse) {
        Some(Health::Error) => Severity::Error,
        Some(Health::Warning) => Severity::Warning,
        _ => Severity::Info,
    }
}

impl Change {
    /// The severity of the condition the change is about (the same for its opening and its
    /// resolution, so that one route carries both): an alert's own; `critical` for status;
    /// the worse of the two healths for hardware and cluster; by threshold for capacity
    /// (>= 95 % critical, >= 90 % error, else warning).
    pub fn severity(&self) -> Severity {
        let r = &self.record;
        match r.kind {
            ChangeKind::AlertOpened | ChangeKind::AlertCleared | ChangeKind::AlertUpdated => r
                .alert
                .as_ref()
                .map(|a| a.severity)
                .unwrap_or(Severity::Warning),
            ChangeKind::StatusChanged => Severity::Critical,
            ChangeKind::HardwareChanged | ChangeKind::ClusterChanged => {
                health_severity(r.from.as_deref()).max(health_severity(r.to.as_deref()))
            }
            ChangeKind::CapacityThreshold => match r.threshold_percent.unwrap_or(0) {
                95.. => Severity::Critical,
                90.. => Severity::Error,
                _ => Severity::Warning,
            },
        }
    }

    /// The condition this change opens, closes or informs about.
    pub fn condition(&self) -> Condition {
        let r = &self.record;
        let system = &self.system_id;
        let mut labels = BTreeMap::new();
        let (key, alertname, state) = match r.kind {
            ChangeKind::AlertOpened | ChangeKind::AlertCleared => {
                let id = r.alert.as_ref().map(|a| a.id.as_str()).unwrap_or("");
                labels.insert("alert_id".to_owned(), id.to_owned());
                let opened = r.alert_opened_at.unwrap_or(0);
                let state = if r.kind == ChangeKind::AlertOpened {
                    State::Firing
                } else {
                    State::Resolved
                };
                (
                    format!("{system}/alert/{id}/{opened}"),
                    "SdashArrayAlert",
                    state,
                )
            }
            ChangeKind::StatusChanged => {
                let state = match r.to.as_deref() {
                    Some(to) if is_down(to) => State::Firing,
                    Some("online") => State::Resolved,
                    _ => State::Info,
                };
                (format!("{system}/status"), "SdashSystemDown", state)
            }
            ChangeKind::HardwareChanged | ChangeKind::ClusterChanged => {
                let (what, name) = if r.kind == ChangeKind::HardwareChanged {
                    ("hardware", "SdashHardwareUnhealthy")
                } else {
                    ("cluster", "SdashClusterUnhealthy")
                };
                let state = match r.to.as_deref().and_then(Health::parse) {
                    Some(Health::Warning | Health::Error) => State::Firing,
                    Some(Health::Ok) => State::Resolved,
                    _ => State::Info,
                };
                (format!("{system}/{what}"), name, state)
            }
            ChangeKind::AlertUpdated => {
                let id = r.alert.as_ref().map(|a| a.id.as_str()).unwrap_or("");
                labels.insert("alert_id".to_owned(), id.to_owned());
                let opened = r.alert_opened_at.unwrap_or(0);
                let command = r.command_id.as_deref().unwrap_or("");
                (
                    format!("{system}/alert/{id}/{opened}/update/{command}"),
                    "SdashAlertUpdated",
                    State::Info,
                )
            }
            ChangeKind::CapacityThreshold => {
                let threshold = r.threshold_percent.unwrap_or(0);
                labels.insert("threshold_percent".to_owned(), threshold.to_string());
                let state = if r.rising.unwrap_or(false) {
                    State::Firing
                } else {
                    State::Resolved
                };
                (
                    format!("{system}/capacity/{threshold}"),
                    "SdashCapacityThreshold",
                    state,
                )
            }
        };
        Condition {
            key,
            alertname,
            state,
            labels,
        }
    }

    /// The system's display name: the record's, else its id.
    pub fn system_name(&self) -> &str {
        self.record
            .system_name
            .as_deref()
            .unwrap_or(&self.system_id)
    }

    /// One line for people (email subjects and bodies, webhook `summary`, Alertmanager).
    pub fn summary(&self) -> String {
        let r = &self.record;
        let name = self.system_name();
        let arrow = || {
            format!(
                "{} -> {}",
                r.from.as_deref().unwrap_or("(new)"),
                r.to.as_deref().unwrap_or("?")
            )
        };
        match r.kind {
            ChangeKind::AlertOpened | ChangeKind::AlertCleared => {
                let title = r.alert.as_ref().map(|a| a.title.as_str()).unwrap_or("");
                let verb = if r.kind == ChangeKind::AlertOpened {
                    "opened"
                } else {
                    "cleared"
                };
                format!("{name}: alert {verb}: {title}")
            }
            ChangeKind::AlertUpdated => {
                let id = r.alert.as_ref().map(|a| a.id.as_str()).unwrap_or("");
                let (verb, actor) = r
                    .command
                    .as_ref()
                    .map(|c| (c.kind.as_str(), c.actor.as_str()))
                    .unwrap_or(("updated", "?"));
                format!("{name}: alert {id}: {verb} by {actor}")
            }
            ChangeKind::StatusChanged => format!("{name}: status {}", arrow()),
            ChangeKind::HardwareChanged => format!("{name}: hardware health {}", arrow()),
            ChangeKind::ClusterChanged => format!("{name}: cluster health {}", arrow()),
            ChangeKind::CapacityThreshold => {
                let direction = if r.rising.unwrap_or(false) {
                    "rose to or above"
                } else {
                    "fell below"
                };
                let used = r
                    .capacity
                    .as_ref()
                    .filter(|c| c.total_bytes > 0)
                    .map(|c| {
                        format!(
                            " ({:.1} % used)",
                            c.used_bytes as f64 * 100.0 / c.total_bytes as f64
                        )
                    })
                    .unwrap_or_default();
                format!(
                    "{name}: used capacity {direction} {} %{used}",
                    r.threshold_percent.unwrap_or(0)
                )
            }
        }
    }

    /// The value of one group-by dimension for this change.
    pub fn group_value(&self, by: &crate::config::GroupBy) -> String {
        use crate::config::GroupBy;
        match by {
            GroupBy::System => self.system_id.clone(),
            GroupBy::Vendor => self.record.vendor.as_str().to_owned(),
            GroupBy::Kind => self.record.kind.as_str().to_owned(),
            GroupBy::Severity => self.severity().as_str().to_owned(),
            GroupBy::Tag(key) => self.record.tags.get(key).cloned().unwrap_or_default(),
        }
    }

    /// Its JSON form in webhook payloads.
    pub fn notice(&self) -> Notice<'_> {
        let r = &self.record;
        Notice {
            change_id: &self.id,
            kind: r.kind.as_str(),
            state: self.condition().state,
            severity: self.severity().as_str(),
            summary: self.summary(),
            system_id: &self.system_id,
            system_name: self.system_name(),
            vendor: r.vendor.as_str(),
            tags: &r.tags,
            observed_at: self.observed_at,
            observed_at_rfc3339: sdash_proto::format_ms(self.observed_at),
            alert: r.alert.as_ref(),
            alert_opened_at: r.alert_opened_at,
            from: r.from.as_deref(),
            to: r.to.as_deref(),
            threshold_percent: r.threshold_percent,
            rising: r.rising,
            capacity: r.capacity.as_ref(),
        }
    }
}

/// One change in a webhook payload (documented in docs/operations.md).
#[derive(Debug, Serialize)]
pub struct Notice<'a> {
    pub change_id: &'a str,
    pub kind: &'static str,
    pub state: State,
    pub severity: &'static str,
    pub summary: String,
    pub system_id: &'a str,
    pub system_name: &'a str,
    pub vendor: &'static str,
    pub tags: &'a BTreeMap<String, String>,
    /// ms since the epoch.
    pub observed_at: i64,
    pub observed_at_rfc3339: String,
    pub alert: Option<&'a Alert>,
    pub alert_opened_at: Option<i64>,
    pub from: Option<&'a str>,
    pub to: Option<&'a str>,
    pub threshold_percent: Option<u8>,
    pub rising: Option<bool>,
    pub capacity: Option<&'a Capacity>,
}

#[cfg(test)]
mod tests {
    use super::*;
    use sdash_proto::Vendor;

    pub(crate) fn status(system: &str, from: &str, to: &str) -> Change {
        Change {
            id: sdash_proto::new_event_id(),
            system_id: system.into(),
            observed_at: sdash_proto::now_ms(),
            record: ChangeRecord {
                system_name: Some(format!("{system} name")),
                ..ChangeRecord::transition(
                    ChangeKind::StatusChanged,
                    "cause",
                    Vendor::Pure,
                    from,
                    to,
                )
            },
        }
    }

    #[test]
    fn status_conditions() {
        let down = status("fa-01", "online", "unreachable");
        let c = down.condition();
        assert_eq!(
            (c.key.as_str(), c.alertname, c.state),
            ("fa-01/status", "SdashSystemDown", State::Firing)
        );
        assert_eq!(down.severity(), Severity::Critical);
        let up = status("fa-01", "unreachable", "online");
        assert_eq!(up.condition().state, State::Resolved);
        assert_eq!(up.condition().key, c.key);
        assert_eq!(up.summary(), "fa-01 name: status unreachable -> online");
        let json = serde_json::to_value(down.notice()).unwrap_or_default();
        assert_eq!(json["state"], "firing");
        assert_eq!(json["kind"], "status_changed");
        assert_eq!(json["system_id"], "fa-01");
    }

    #[test]
    fn capacity_and_health_severities() {
        let mut c = status("x", "ok", "error");
        c.record.kind = ChangeKind::HardwareChanged;
        assert_eq!(c.severity(), Severity::Error);
        assert_eq!(c.condition().state, State::Firing);
        c.record.from = Some("error".into());
        c.record.to = Some("ok".into());
        assert_eq!(c.severity(), Severity::Error, "the resolution keeps it");
        assert_eq!(c.condition().state, State::Resolved);
        c.record.to = Some("unknown".into());
        assert_eq!(c.condition().state, State::Info);
        c.record.kind = ChangeKind::CapacityThreshold;
        for (t, s) in [
            (80, Severity::Warning),
            (90, Severity::Error),
            (95, Severity::Critical),
        ] {
            c.record.threshold_percent = Some(t);
            assert_eq!(c.severity(), s);
        }
        c.record.rising = Some(true);
        assert_eq!(c.condition().state, State::Firing);
        assert_eq!(c.condition().labels["threshold_percent"], "95");
    }
}
