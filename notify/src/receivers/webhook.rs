//! The generic webhook: one JSON `POST` per group, signed (see [`crate::signature`]).
//!
//! ```json
//! {"version": 1, "delivery_id": "…", "receiver": "ops-hook", "group": {"system": "fa-01"},
//!  "repeat": false, "changes": [ {"change_id": "…", "kind": "status_changed", "state": "firing", …} ]}
//! ```

use std::time::{SystemTime, UNIX_EPOCH};

use serde_json::json;

use super::{Delivery, DeliveryError, SetupError, authenticate, http_client, send_http};
use crate::config::WebhookConfig;
use crate::signature::{DELIVERY_HEADER, SIGNATURE_HEADER, TIMESTAMP_HEADER, sign};

pub struct WebhookSender {
    name: String,
    client: reqwest::Client,
    config: WebhookConfig,
}

/// The payload's JSON bytes.
pub fn payload(receiver: &str, delivery: &Delivery) -> Vec<u8> {
    let changes: Vec<_> = delivery.changes.iter().map(|c| c.notice()).collect();
    let body = json!({
        "version": 1,
        "delivery_id": delivery.id,
        "receiver": receiver,
        "group": delivery.group,
        "repeat": delivery.repeat,
        "changes": changes,
    });
    serde_json::to_vec(&body).unwrap_or_default()
}

impl WebhookSender {
    pub fn new(name: &str, config: &WebhookConfig) -> Result<Self, SetupError> {
        Ok(WebhookSender {
            name: name.to_owned(),
            client: http_client(name, &config.http)?,
            config: config.clone(),
        })
    }

    pub async fn send(&self, delivery: &Delivery) -> Result<(), DeliveryError> {
        let body = payload(&self.name, delivery);
        // Signed at each attempt, so a retry after a long outage is not stale on arrival.
        let timestamp = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map(|d| d.as_secs())
            .unwrap_or(0)
            .to_string();
        let signature = sign(self.config.secret.expose().as_bytes(), &timestamp, &body);
        let request = self
            .client
            .post(&self.config.url)
            .header("content-type", "application/json")
            .header(TIMESTAMP_HEADER, &timestamp)
            .header(SIGNATURE_HEADER, signature)
            .header(DELIVERY_HEADER, &delivery.id)
            .body(body);
        send_http(authenticate(request, &self.config.http)).await
    }
}
