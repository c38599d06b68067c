//! The API's Prometheus metrics, one typed struct registered once.

use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::{Histogram, exponential_buckets};
use prometheus_client::registry::Registry;

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct RequestLabels {
    /// The route pattern (`/api/v1/systems/{id}`), or `unmatched`.
    pub route: String,
    pub status: u16,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct RouteLabels {
    pub route: String,
}

/// Why the live stream let a client go (`sdash_api_stream_clients_disconnected_total`).
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct DisconnectLabels {
    /// `slow` (its queue was full: it fell `--stream-buffer` records behind), `client_closed`
    /// (the client went away) or `shutdown`.
    pub reason: &'static str,
}

type HistogramFamily = Family<RouteLabels, Histogram, fn() -> Histogram>;

fn latency_histogram() -> Histogram {
    Histogram::new(exponential_buckets(0.0005, 2.0, 16))
}

/// Every metric the API exports.
#[derive(Debug)]
pub struct Metrics {
    pub requests: Family<RequestLabels, Counter>,
    pub latency: HistogramFamily,
    pub stream_clients: Gauge,
    pub stream_disconnected: Family<DisconnectLabels, Counter>,
    pub stream_refused: Counter,
    pub stream_queued: Gauge,
    pub stream_messages: Counter,
    pub stream_decode_errors: Counter,
    /// Operator commands JetStream acknowledged (`sdash_api_commands_published_total`).
    pub commands_published: Counter,
    /// Command requests answered 503 because the bus was unavailable.
    pub commands_unavailable: Counter,
}

impl Metrics {
    /// Creates the metrics and registers them in `registry`.
    pub fn new(registry: &mut Registry) -> Metrics {
        let m = Metrics {
            requests: Family::default(),
            latency: Family::new_with_constructor(latency_histogram as fn() -> Histogram),
            stream_clients: Gauge::default(),
            stream_disconnected: Family::default(),
            stream_refused: Counter::default(),
            stream_queued: Gauge::default(),
            stream_messages: Counter::default(),
            stream_decode_errors: Counter::default(),
            commands_published: Counter::default(),
            commands_unavailable: Counter::default(),
        };
        registry.register(
            "sdash_api_requests",
            "HTTP requests by route and status",
            m.requests.clone(),
        );
        registry.register(
            "sdash_api_request_duration_seconds",
            "HTTP request latency by route",
            m.latency.clone(),
        );
        registry.register(
            "sdash_api_stream_clients",
            "Connected live-stream (SSE) clients",
            m.stream_clients.clone(),
        );
        registry.register(
            "sdash_api_stream_clients_disconnected",
            "Live-stream clients let go, by reason (slow: fell --stream-buffer records behind)",
            m.stream_disconnected.clone(),
        );
        registry.register(
            "sdash_api_stream_clients_refused",
            "Live-stream connections refused because --stream-max-clients were connected",
            m.stream_refused.clone(),
        );
        registry.register(
            "sdash_api_stream_queued_records",
            "Records waiting in the live-stream clients' queues (each at most --stream-buffer)",
            m.stream_queued.clone(),
        );
        registry.register(
            "sdash_api_stream_messages",
            "Bus messages received for the live stream",
            m.stream_messages.clone(),
        );
        registry.register(
            "sdash_api_stream_decode_errors",
            "Bus messages the live stream could not decode",
            m.stream_decode_errors.clone(),
        );
        registry.register(
            "sdash_api_commands_published",
            "Operator commands published to JetStream and acknowledged",
            m.commands_published.clone(),
        );
        registry.register(
            "sdash_api_commands_unavailable",
            "Operator command requests answered 503: NATS unavailable or no acknowledgement in time",
            m.commands_unavailable.clone(),
        );
        m
    }

    pub fn observe(&self, route: &str, status: u16, seconds: f64) {
        self.requests
            .get_or_create(&RequestLabels {
                route: route.to_owned(),
                status,
            })
            .inc();
        self.latency
            .get_or_create(&RouteLabels {
                route: route.to_owned(),
            })
            .observe(seconds);
    }
}
