//! The route table: the one list of paths, their parameters and responses. The dispatcher routes
//! by it, `/metrics` labels by it, and `/api/v1/openapi.json` is generated from it
//! ([`crate::openapi`]).

/// What a route does; the dispatcher matches on it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum RouteId {
    Systems,
    System,
    SystemCapacity,
    SystemForecast,
    SystemEvents,
    CapacitySummary,
    CapacityHistory,
    Alerts,
    Events,
    Collectors,
    Status,
    ExportCapacity,
    ExportCapacityHistory,
    Stream,
    OpenApi,
    Healthz,
    Readyz,
    Metrics,
    FleetMetrics,
}

/// The type of a query parameter, for validation messages and the OpenAPI schema.
#[derive(Debug, Clone, Copy)]
pub enum ParamKind {
    String,
    Integer {
        min: i64,
        max: i64,
    },
    /// Comma-separated values from the list (or one value when `list` is false).
    Enum {
        values: &'static [&'static str],
        list: bool,
    },
    Time,
    Boolean,
    Cursor,
}

/// One documented query parameter.
#[derive(Debug, Clone, Copy)]
pub struct ParamSpec {
    pub name: &'static str,
    pub kind: ParamKind,
    pub description: &'static str,
    /// A valid example value (used by the OpenAPI document and the route tests).
    pub example: &'static str,
    /// Whether the parameter may be given more than once.
    pub repeat: bool,
}

/// One route.
#[derive(Debug, Clone, Copy)]
pub struct RouteSpec {
    pub id: RouteId,
    /// Path with `{id}` for the system id segment.
    pub path: &'static str,
    pub summary: &'static str,
    pub params: &'static [ParamSpec],
    /// Media type of the 200 response.
    pub content: &'static str,
    /// Schema name (under `components/schemas`) of the 200 response, the name of the type that
    /// [`crate::openapi::response_schema`] gives for the route (a test checks they agree); `None`
    /// for bodies that are not typed JSON.
    pub schema: Option<&'static str>,
}

impl RouteSpec {
    /// Whether the route is under `/api/` or serves fleet data (bearer token required when
    /// configured).
    pub fn protected(&self) -> bool {
        self.path.starts_with("/api/") || self.id == RouteId::FleetMetrics
    }

    /// Whether the token may also come as `?access_token=` (with `--auth-token-file`): only the
    /// live stream and the CSV exports, which browsers open with `EventSource` or as download
    /// links, neither of which can send an `Authorization` header.
    pub fn query_token(&self) -> bool {
        matches!(
            self.id,
            RouteId::Stream | RouteId::ExportCapacity | RouteId::ExportCapacityHistory
        )
    }

    /// Whether the path has a `{id}` segment.
    pub fn has_id(&self) -> bool {
        self.path.contains("{id}")
    }
}

pub const VENDORS: &[&str] = &["pure", "ontap", "storagegrid", "datadomain"];
pub const STATUSES: &[&str] = &["online", "unreachable", "auth_failed", "error", "pending"];
pub const HEALTHS: &[&str] = &["ok", "warning", "error", "unknown"];
pub const SEVERITIES: &[&str] = &["info", "warning", "error", "critical"];
pub const LEVELS: &[&str] = &["debug", "info", "warning", "error", "critical"];
pub const CATEGORIES: &[&str] = &[
    "connection",
    "authentication",
    "api_call",
    "data_query",
    "health",
];
pub const ALERT_STATES: &[&str] = &["open", "cleared", "all"];
pub const RESOLUTIONS: &[&str] = &["raw", "daily"];
pub const SYSTEM_SORTS: &[&str] = &[
    "id",
    "-id",
    "name",
    "-name",
    "vendor",
    "-vendor",
    "status",
    "-status",
    "hardware",
    "-hardware",
    "used_pct",
    "-used_pct",
    "used_bytes",
    "-used_bytes",
    "total_bytes",
    "-total_bytes",
    "free_bytes",
    "-free_bytes",
    "last_poll",
    "-last_poll",
    "alert_count",
    "-alert_count",
];

/// Largest page any list route returns.
pub const MAX_PAGE: i64 = 1000;

/// The query parameter that carries the bearer token on [`RouteSpec::query_token`] routes.
pub const ACCESS_TOKEN_PARAM: &str = "access_token";

const LIMIT: ParamSpec = ParamSpec {
    name: "limit",
    kind: ParamKind::Integer {
        min: 1,
        max: MAX_PAGE,
    },
    description: "Page size (default 100, at most 1000 or the server's --max-page-size).",
    example: "50",
    repeat: false,
};
const CURSOR: ParamSpec = ParamSpec {
    name: "cursor",
    kind: ParamKind::Cursor,
    description: "Opaque cursor: the next_cursor of the previous page, with the same filters.",
    example: "",
    repeat: false,
};
const FROM: ParamSpec = ParamSpec {
    name: "from",
    kind: ParamKind::Time,
    description: "Start of the range, RFC 3339 (inclusive; default 30 days before `to`).",
    example: "2026-01-01T00:00:00Z",
    repeat: false,
};
const TO: ParamSpec = ParamSpec {
    name: "to",
    kind: ParamKind::Time,
    description: "End of the range, RFC 3339 (inclusive; default now).",
    example: "2030-01-01T00:00:00Z",
    repeat: false,
};
const GROUP_BY: ParamSpec = ParamSpec {
    name: "group_by",
    kind: ParamKind::String,
    description: "Tag key to group systems by ([A-Za-z0-9_.-]); systems without the tag form the group with key null.",
    example: "environment",
    repeat: false,
};
const SYSTEM_FILTER: ParamSpec = ParamSpec {
    name: "system",
    kind: ParamKind::String,
    description: "Only this system id.",
    example: "fa-prod-01",
    repeat: false,
};
const VENDOR_FILTER: ParamSpec = ParamSpec {
    name: "vendor",
    kind: ParamKind::Enum {
        values: VENDORS,
        list: true,
    },
    description: "Only these vendors (comma separated).",
    example: "pure",
    repeat: true,
};
const LEVEL: ParamSpec = ParamSpec {
    name: "level",
    kind: ParamKind::Enum {
        values: LEVELS,
        list: false,
    },
    description: "Minimum level (debug < info < warning < error < critical).",
    example: "warning",
    repeat: false,
};
const CATEGORY: ParamSpec = ParamSpec {
    name: "category",
    kind: ParamKind::Enum {
        values: CATEGORIES,
        list: true,
    },
    description: "Only these categories (comma separated).",
    example: "connection",
    repeat: true,
};
const SINCE: ParamSpec = ParamSpec {
    name: "since",
    kind: ParamKind::Time,
    description: "Only events observed at or after this time (RFC 3339).",
    example: "2026-01-01T00:00:00Z",
    repeat: false,
};
const UNTIL: ParamSpec = ParamSpec {
    name: "until",
    kind: ParamKind::Time,
    description: "Only events observed before this time (RFC 3339).",
    example: "2030-01-01T00:00:00Z",
    repeat: false,
};

pub const ROUTES: &[RouteSpec] = &[
    RouteSpec {
        id: RouteId::Systems,
        path: "/api/v1/systems",
        summary: "List systems with their latest state (inventory and polled systems alike).",
        params: &[
            VENDOR_FILTER,
            ParamSpec {
                name: "status",
                kind: ParamKind::Enum {
                    values: STATUSES,
                    list: true,
                },
                description: "Only these statuses (comma separated); `pending` means never polled.",
                example: "online",
                repeat: true,
            },
            ParamSpec {
                name: "hardware",
                kind: ParamKind::Enum {
                    values: HEALTHS,
                    list: true,
                },
                description: "Only these hardware healths (comma separated).",
                example: "ok",
                repeat: true,
            },
            ParamSpec {
                name: "tag",
                kind: ParamKind::String,
                description: "key:value; only systems with this tag (repeat for several, all must match).",
                example: "environment:production",
                repeat: true,
            },
            ParamSpec {
                name: "q",
                kind: ParamKind::String,
                description: "Free text, case-insensitive, matched against id, name and address.",
                example: "prod",
                repeat: false,
            },
            ParamSpec {
                name: "sort",
                kind: ParamKind::Enum {
                    values: SYSTEM_SORTS,
                    list: false,
                },
                description: "Sort key; prefix with `-` for descending. Ties are broken by id.",
                example: "-used_pct",
                repeat: false,
            },
            ParamSpec {
                name: "include_removed",
                kind: ParamKind::Boolean,
                description: "Include systems removed from the inventory (default false).",
                example: "true",
                repeat: false,
            },
            LIMIT,
            CURSOR,
        ],
        content: "application/json",
        schema: Some("SystemList"),
    },
    RouteSpec {
        id: RouteId::System,
        path: "/api/v1/systems/{id}",
        summary: "One system: latest state, components, open alerts, capacity, tags, recent transitions.",
        params: &[],
        content: "application/json",
        schema: Some("SystemDetail"),
    },
    RouteSpec {
        id: RouteId::SystemCapacity,
        path: "/api/v1/systems/{id}/capacity",
        summary: "Capacity history of one system, raw samples or daily rollups.",
        params: &[
            FROM,
            TO,
            ParamSpec {
                name: "resolution",
                kind: ParamKind::Enum {
                    values: RESOLUTIONS,
                    list: false,
                },
                description: "`raw` samples (default) or `daily` rollups (UTC days).",
                example: "daily",
                repeat: false,
            },
        ],
        content: "application/json",
        schema: Some("CapacitySeries"),
    },
    RouteSpec {
        id: RouteId::SystemForecast,
        path: "/api/v1/systems/{id}/forecast",
        summary: "Least-squares linear trend of daily used capacity and the projected dates of 90 % and 100 %.",
        params: &[
            ParamSpec {
                name: "days",
                kind: ParamKind::Integer { min: 2, max: 3650 },
                description: "How many recent days of rollups to fit (default 90).",
                example: "90",
                repeat: false,
            },
            ParamSpec {
                name: "horizon",
                kind: ParamKind::Integer { min: 1, max: 3650 },
                description: "How many days ahead the projection series reaches (default 365).",
                example: "365",
                repeat: false,
            },
        ],
        content: "application/json",
        schema: Some("Forecast"),
    },
    RouteSpec {
        id: RouteId::SystemEvents,
        path: "/api/v1/systems/{id}/events",
        summary: "Log events of one system, newest first.",
        params: &[LEVEL, CATEGORY, SINCE, UNTIL, LIMIT, CURSOR],
        content: "application/json",
        schema: Some("EventList"),
    },
    RouteSpec {
        id: RouteId::CapacitySummary,
        path: "/api/v1/capacity/summary",
        summary: "Fleet capacity totals, overall and per value of a tag.",
        params: &[GROUP_BY],
        content: "application/json",
        schema: Some("CapacitySummary"),
    },
    RouteSpec {
        id: RouteId::CapacityHistory,
        path: "/api/v1/capacity/history",
        summary: "Daily fleet capacity series, per value of a tag (from the daily rollups; a system without a rollup on a day counts with its last one of the 7 days before, in carried_forward).",
        params: &[GROUP_BY, FROM, TO],
        content: "application/json",
        schema: Some("CapacityHistory"),
    },
    RouteSpec {
        id: RouteId::Alerts,
        path: "/api/v1/alerts",
        summary: "Alert history, newest first by first_seen.",
        params: &[
            ParamSpec {
                name: "state",
                kind: ParamKind::Enum {
                    values: ALERT_STATES,
                    list: false,
                },
                description: "open (default), cleared or all.",
                example: "all",
                repeat: false,
            },
            ParamSpec {
                name: "severity",
                kind: ParamKind::Enum {
                    values: SEVERITIES,
                    list: true,
                },
                description: "Only these severities (comma separated).",
                example: "critical",
                repeat: true,
            },
            SYSTEM_FILTER,
            VENDOR_FILTER,
            LIMIT,
            CURSOR,
        ],
        content: "application/json",
        schema: Some("AlertList"),
    },
    RouteSpec {
        id: RouteId::Events,
        path: "/api/v1/events",
        summary: "Log events of the whole fleet, newest first.",
        params: &[SYSTEM_FILTER, LEVEL, CATEGORY, SINCE, UNTIL, LIMIT, CURSOR],
        content: "application/json",
        schema: Some("EventList"),
    },
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
    RouteSpec {
        id: RouteId::ExportCapacity,
        path: "/api/v1/export/capacity.csv",
        summary: "Current capacity of every system as CSV.",
        params: &[],
        content: "text/csv",
        schema: None,
    },
    RouteSpec {
        id: RouteId::ExportCapacityHistory,
        path: "/api/v1/export/capacity-history.csv",
        summary: "Daily capacity history per tag value as CSV.",
        params: &[GROUP_BY, FROM, TO],
        content: "text/csv",
        schema: None,
    },
    RouteSpec {
        id: RouteId::Stream,
        path: "/api/v1/stream",
        summary: "Server-Sent Events: `hello` on connect (data {\"ok\":true,\"ping_ms\":N}), then live `snapshot`, `event` and `system` records from the bus (data = the record as JSON, id = its event id), and a `ping` event every --stream-ping-secs (data = the server time, ms since the epoch) so clients can tell a live connection from a dead one (503 while NATS is unreachable).",
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
        summary: "Fleet metrics for Prometheus (text format 0.0.4): every system's status, health, capacity, open alerts and poll freshness, labelled by system, vendor and the --metrics-tag-labels tags; served from the fleet cache. Takes the bearer token like /api/ routes.",
        params: &[],
        content: "text/plain",
        schema: None,
    },
];

/// Finds the route for a request path; returns the system id of `{id}` paths.
pub fn match_path(path: &str) -> Option<(&'static RouteSpec, Option<String>)> {
    let segments: Vec<&str> = path.trim_end_matches('/').split('/').collect();
    'routes: for route in ROUTES {
        let pattern: Vec<&str> = route.path.split('/').collect();
        if pattern.len() != segments.len() {
            continue;
        }
        let mut id = None;
        for (p, s) in pattern.iter().zip(&segments) {
            if *p == "{id}" {
                if s.is_empty() {
                    continue 'routes;
                }
                id = Some((*s).to_owned());
            } else if p != s {
                continue 'routes;
            }
        }
        return Some((route, id));
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn enum_lists_match_the_proto_types() {
        use sdash_proto::{Category, Health, Level, Severity, Status, Vendor};
        assert_eq!(VENDORS, Vendor::ALL.map(|v| v.as_str()));
        assert_eq!(&STATUSES[..4], Status::ALL.map(|v| v.as_str()));
        assert_eq!(HEALTHS, Health::ALL.map(|v| v.as_str()));
        assert_eq!(SEVERITIES, Severity::ALL.map(|v| v.as_str()));
        assert_eq!(LEVELS, Level::ALL.map(|v| v.as_str()));
        assert_eq!(CATEGORIES, Category::ALL.map(|v| v.as_str()));
    }

    #[test]
    fn paths_match() {
        assert_eq!(
            match_path("/api/v1/systems").map(|(r, _)| r.id),
            Some(RouteId::Systems)
        );
        let (r, id) = match_path("/api/v1/systems/fa-1/capacity").expect("route");
        assert_eq!(
            (r.id, id.as_deref()),
            (RouteId::SystemCapacity, Some("fa-1"))
        );
        assert!(match_path("/api/v1/systems//capacity").is_none());
        assert!(match_path("/api/v2/systems").is_none());
    }
}
