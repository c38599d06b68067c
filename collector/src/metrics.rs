//! Every collector metric, in one typed place, exported on `/metrics`.

use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::Histogram;
use prometheus_client::registry::Registry;

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct PollLabels {
    pub vendor: String,
    pub result: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct VendorLabels {
    pub vendor: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct DropLabels {
    pub reason: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct KindLabels {
    pub kind: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct OutcomeLabels {
    pub outcome: String,
}

/// The collector's metrics. Cloning shares the underlying values.
#[derive(Clone)]
pub struct CollectorMetrics {
    pub polls: Family<PollLabels, Counter>,
    pub poll_duration: Family<VendorLabels, Histogram>,
    pub polls_on_time: Counter,
    pub polls_late: Counter,
    pub polls_startup: Counter,
    pub owned_systems: Gauge,
    pub live_collectors: Gauge,
    /// Double polls this collector took part in (see `crate::double_polls`).
    pub double_polls: Counter,
    pub outbox_depth: Gauge,
    pub outbox_bytes: Gauge,
    pub outbox_dropped: Family<DropLabels, Counter>,
    pub published: Family<KindLabels, Counter>,
    pub publish_retries: Counter,
    /// Poll-now commands received, by what this collector did (`crate::poll_now::Outcome`).
    pub poll_now: Family<OutcomeLabels, Counter>,
}

impl CollectorMetrics {
    /// Creates the metrics and registers them under `sdash_collector_*`.
    pub fn new(registry: &mut Registry) -> CollectorMetrics {
        let metrics = CollectorMetrics {
            polls: Family::default(),
            poll_duration: Family::new_with_constructor(|| {
                Histogram::new([0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0])
            }),
            polls_on_time: Counter::default(),
            polls_late: Counter::default(),
            polls_startup: Counter::default(),
            owned_systems: Gauge::default(),
            live_collectors: Gauge::default(),
            double_polls: Counter::default(),
            outbox_depth: Gauge::default(),
            outbox_bytes: Gauge::default(),
            outbox_dropped: Family::default(),
            published: Family::default(),
            publish_retries: Counter::default(),
            poll_now: Family::default(),
        };
        let r = registry.sub_registry_with_prefix("sdash_collector");
        r.register(
            "polls",
            "Polls completed, by vendor and result (the snapshot status)",
            metrics.polls.clone(),
        );
        r.register(
            "poll_duration_seconds",
            "Duration of polls, by vendor",
            metrics.poll_duration.clone(),
        );
        r.register(
            "polls_on_time",
            "Polls started within 1 s of their schedule",
            metrics.polls_on_time.clone(),
        );
        r.register(
            "polls_late",
            "Polls started more than 1 s after their schedule",
            metrics.polls_late.clone(),
        );
        r.register(
            "polls_startup",
            "First polls after start: they run as soon as possible, off the schedule, so they count as neither on time nor late",
            metrics.polls_startup.clone(),
        );
        r.register(
            "owned_systems",
            "Systems this collector owns now",
            metrics.owned_systems.clone(),
        );
        r.register(
            "live_collectors",
            "Collectors seen alive in the membership bucket",
            metrics.live_collectors.clone(),
        );
        r.register(
            "double_polls",
            "Intervals in which a system this collector polled was also polled by another collector, as seen on the bus (each collector involved counts it); grows while the collectors disagree on who is alive",
            metrics.double_polls.clone(),
        );
        r.register(
            "outbox_depth",
            "Messages waiting in the outbox for NATS",
            metrics.outbox_depth.clone(),
        );
        r.register(
            "outbox_bytes",
            "Bytes waiting in the outbox for NATS",
            metrics.outbox_bytes.clone(),
        );
        r.register(
            "outbox_dropped",
            "Messages dropped because the outbox was full, by reason",
            metrics.outbox_dropped.clone(),
        );
        r.register(
            "published",
            "Messages acknowledged by JetStream, by kind",
            metrics.published.clone(),
        );
        r.register(
            "publish_retries",
            "Publish attempts that failed and were retried with the same message id",
            metrics.publish_retries.clone(),
        );
        r.register(
            "poll_now",
            "Poll-now commands received, by outcome: polled (this collector owns the system and polled it at once), not_owned (another collector does), unknown_system, disabled, duplicate (a command id seen before), invalid",
            metrics.poll_now.clone(),
        );
        metrics
    }

    /// Metrics registered nowhere (probe runs, tests).
    pub fn detached() -> CollectorMetrics {
        CollectorMetrics::new(&mut Registry::default())
    }
}
