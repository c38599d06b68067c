//! The routes about the service itself: the collectors and the pipeline's status, the live
//! stream, this OpenAPI document, health, and the metrics of the process and of the fleet.

use super::{ParamKind, ParamSpec, RouteId, RouteSpec};

/// The collectors and the pipeline status.
pub(super) const PIPELINE: &[RouteSpec] = &[
    RouteSpec {
        id: RouteId::Collectors,
        path: "/api/v1/collectors",
        summary: "Collectors from their heartbeats; live when seen within the liveness window.",
        params: &[],
        content: "application/json",
        schema: Some("CollectorList"),
    },
    RouteSpec {
        id: RouteId::Status,
        path: "/api/v1/status",
        summary: "Pipeline health: writer progress and lag, consumer backlog, dead letters, fleet counts.",
        params: &[],
        content: "application/json",
        schema: Some("PipelineStatus"),
    },
];

/// The live stream, the document, health and metrics (after the exports in [`super::ROUTES`]).
pub(super) const SERVICE: &[RouteSpec] = &[
    RouteSpec {
        id: RouteId::Stream,
        path: "/api/v1/stream",
        summary: "Server-Sent Events: `hello` on connect (data {\"ok\":true,\"ping_ms\":N}), then live `snapshot`, `event` and `system` records from the bus and `alert_updated` changes (an operator command the writer applied to an alert) (data = the record as JSON, id = its event id), and a `ping` event every --stream-ping-secs (data = the server time, ms since the epoch) so clients can tell a live connection from a dead one (503 while NATS is unreachable).",
        params: &[ParamSpec {
            name: "system",
            kind: ParamKind::String,
            description: "Only records about this system id.",
            example: "fa-prod-01",
            repeat: false,
        }],
        content: "text/event-stream",
        schema: None,
    },
    RouteSpec {
        id: RouteId::OpenApi,
        path: "/api/v1/openapi.json",
        summary: "This OpenAPI 3 document.",
        params: &[],
        content: "application/json",
        schema: None,
    },
    RouteSpec {
        id: RouteId::Healthz,
        path: "/healthz",
        summary: "Liveness: the process answers.",
        params: &[],
        content: "text/plain",
        schema: None,
    },
    RouteSpec {
        id: RouteId::Readyz,
        path: "/readyz",
        summary: "Readiness: the database answers (503 otherwise).",
        params: &[],
        content: "text/plain",
        schema: None,
    },
    RouteSpec {
        id: RouteId::Metrics,
        path: "/metrics",
        summary: "Prometheus metrics (OpenMetrics text).",
        params: &[],
        content: "application/openmetrics-text",
        schema: None,
    },
    RouteSpec {
        id: RouteId::FleetMetrics,
        path: "/metrics/fleet",
        summary: "Fleet metrics for Prometheus (text format 0.0.4): every system's status, health, capacity (provisioned and per pool), performance, open alerts and poll freshness, labelled by system, vendor and the --metrics-tag-labels tags; served from the fleet cache. Takes the bearer token like /api/ routes.",
        params: &[],
        content: "text/plain",
        schema: None,
    },
];
