//! Alertmanager API v2: `POST <url>/api/v2/alerts` with a JSON list of alerts. Each condition is
//! one alert, named by its labels (`alertname`, `system`, `vendor`, `severity`, the tags, and
//! `alert_id` or `threshold_percent` where the condition has one); firing alerts carry an
//! `endsAt` a few resend intervals ahead and are posted again every `resend_interval`, resolved
//! ones an `endsAt` of when they resolved.

use std::collections::BTreeMap;

use serde_json::{Value, json};

use super::{Delivery, DeliveryError, SetupError, authenticate, http_client, send_http};
use crate::change::{Change, Condition};
use crate::config::AlertmanagerConfig;

/// Labels of our own, which a tag of the same name must not overwrite.
const OWN_LABELS: [&str; 6] = [
    "alertname",
    "system",
    "vendor",
    "severity",
    "alert_id",
    "threshold_percent",
];

/// A tag key as a Prometheus label name: `[a-zA-Z_][a-zA-Z0-9_]*`, other characters become `_`;
/// `tag_` in front when it would start with a digit or collide with a label of ours.
pub fn tag_label(key: &str) -> String {
    let mut name: String = key
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || c == '_' {
                c
            } else {
                '_'
            }
        })
        .collect();
    if name.is_empty()
        || name.starts_with(|c: char| c.is_ascii_digit())
        || OWN_LABELS.contains(&name.as_str())
        || name.starts_with("__")
    {
        name = format!("tag_{name}");
    }
    name
}

/// The labels naming a condition's alert.
pub fn labels(change: &Change, condition: &Condition) -> BTreeMap<String, String> {
    let mut labels: BTreeMap<String, String> = change
        .record
        .tags
        .iter()
        .map(|(k, v)| (tag_label(k), v.clone()))
        .collect();
    labels.insert("alertname".into(), condition.alertname.into());
    labels.insert("system".into(), change.system_id.clone());
    labels.insert("vendor".into(), change.record.vendor.as_str().into());
    labels.insert("severity".into(), change.severity().as_str().into());
    labels.extend(condition.labels.clone());
    labels
}

/// One alert of the v2 API: `labels` as [`labels`], annotations for people, `startsAt` and
/// `endsAt` (ms since the epoch, sent as RFC 3339).
pub fn alert(
    change: &Change,
    labels: &BTreeMap<String, String>,
    starts_at: i64,
    ends_at: i64,
) -> Value {
    let r = &change.record;
    let mut annotations = BTreeMap::new();
    annotations.insert("summary", change.summary());
    annotations.insert("system_name", change.system_name().to_owned());
    annotations.insert("change_kind", r.kind.as_str().to_owned());
    annotations.insert("change_id", change.id.clone());
    if let Some(from) = &r.from {
        annotations.insert("from", from.clone());
    }
    if let Some(to) = &r.to {
        annotations.insert("to", to.clone());
    }
    if let Some(a) = &r.alert {
        annotations.insert("title", a.title.clone());
        annotations.insert("vendor_severity", a.vendor_severity.clone());
        if let Some(component) = &a.component {
            annotations.insert("component", component.clone());
        }
    }
    json!({
        "labels": labels,
        "annotations": annotations,
        "startsAt": sdash_proto::format_ms(starts_at),
        "endsAt": sdash_proto::format_ms(ends_at.max(starts_at)),
    })
}

pub struct AlertmanagerSender {
    client: reqwest::Client,
    endpoint: String,
    config: AlertmanagerConfig,
}

impl AlertmanagerSender {
    pub fn new(name: &str, config: &AlertmanagerConfig) -> Result<Self, SetupError> {
        Ok(AlertmanagerSender {
            client: http_client(name, &config.http)?,
            endpoint: format!("{}/api/v2/alerts", config.url),
            config: config.clone(),
        })
    }

    pub async fn send(&self, delivery: &Delivery) -> Result<(), DeliveryError> {
        if delivery.alerts.is_empty() {
            return Ok(());
        }
        let request = self.client.post(&self.endpoint).json(&delivery.alerts);
        send_http(authenticate(request, &self.config.http)).await
    }
}
