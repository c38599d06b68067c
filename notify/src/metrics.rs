//! The notifier's metrics, one typed struct registered once (prefix `sdash_notify_`).

use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::registry::Registry;

/// Label set naming a receiver.
pub type ReceiverLabel = [(&'static str, String); 1];

pub fn receiver(name: &str) -> ReceiverLabel {
    [("receiver", name.to_owned())]
}

#[derive(Clone, Default)]
pub struct NotifyMetrics {
    /// Changes received from the bus (redeliveries included).
    pub changes: Counter,
    /// Changes already handled at every matching receiver (a redelivery), acknowledged unsent.
    pub duplicates: Counter,
    /// Changes no route matched, acknowledged unsent.
    pub unrouted: Counter,
    /// Messages on the change subjects that could not be decoded (dead-lettered).
    pub undecodable: Counter,
    /// Deliveries (webhook posts, emails, Alertmanager posts) the receiver accepted.
    pub sent: Family<ReceiverLabel, Counter>,
    /// Changes delivered, per receiver.
    pub changes_sent: Family<ReceiverLabel, Counter>,
    /// Delivery attempts that failed (each is retried or dead-lettered).
    pub failed: Family<ReceiverLabel, Counter>,
    /// Changes dead-lettered because the receiver kept refusing them.
    pub dead_lettered: Family<ReceiverLabel, Counter>,
    /// Reminders sent: Alertmanager re-posts and repeats of unresolved conditions.
    pub repeats: Family<ReceiverLabel, Counter>,
    /// Conditions firing, per receiver.
    pub firing: Family<ReceiverLabel, Gauge>,
    /// Changes received but not yet acknowledged (grouping, sending, retrying).
    pub pending: Gauge,
    /// Errors talking to NATS (consumer, state, dead letters), each followed by a retry.
    pub nats_errors: Counter,
}

impl NotifyMetrics {
    pub fn new(registry: &mut Registry) -> NotifyMetrics {
        let m = NotifyMetrics::default();
        let r = registry.sub_registry_with_prefix("sdash_notify");
        r.register(
            "changes",
            "Changes received from the bus",
            m.changes.clone(),
        );
        r.register(
            "duplicates",
            "Changes already handled at every matching receiver, acknowledged unsent",
            m.duplicates.clone(),
        );
        r.register(
            "unrouted",
            "Changes no route matched, acknowledged unsent",
            m.unrouted.clone(),
        );
        r.register(
            "undecodable",
            "Messages on the change subjects that could not be decoded",
            m.undecodable.clone(),
        );
        r.register("sent", "Deliveries the receiver accepted", m.sent.clone());
        r.register(
            "changes_sent",
            "Changes delivered, per receiver",
            m.changes_sent.clone(),
        );
        r.register(
            "failed",
            "Delivery attempts that failed (retried or dead-lettered)",
            m.failed.clone(),
        );
        r.register(
            "dead_lettered",
            "Changes dead-lettered because the receiver kept refusing them",
            m.dead_lettered.clone(),
        );
        r.register(
            "repeats",
            "Reminders sent (Alertmanager re-posts, repeats of unresolved conditions)",
            m.repeats.clone(),
        );
        r.register(
            "firing",
            "Conditions firing, per receiver",
            m.firing.clone(),
        );
        r.register(
            "pending",
            "Changes received but not yet acknowledged",
            m.pending.clone(),
        );
        r.register(
            "nats_errors",
            "Errors talking to NATS, each followed by a retry",
            m.nats_errors.clone(),
        );
        m
    }
}
