//! The route table: the one list of paths, their parameters and responses. The dispatcher routes
//! by it, `/metrics` labels by it, and `/api/v1/openapi.json` is generated from it
//! ([`crate::openapi`]).

/// What a route does; the dispatcher matches on it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum RouteId {
    Systems,
    System,
    SystemCapacity,
    SystemPerformance,
    SystemPools,
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
    ExportCapacityXlsx,
    ExportCapacityHistoryXlsx,
    Stream,
    OpenApi,
    Healthz,
    Readyz,
    Metrics,
    FleetMetrics,
    // Operator commands (#14): the POST routes and what they show.
    AlertDetail,
    Acknowledge,
    Unacknowledge,
    Assign,
    Unassign,
    Comment,
    BulkAcknowledge,
    BulkUnacknowledge,
    BulkAssign,
    BulkUnassign,
    BulkComment,
    PollNow,
    Assignees,
    ForgetAssignee,
    Audit,
}

/// The pattern of the command routes (POST with a JSON body, see [`RouteId::is_command`]): one
/// list for every `match` on [`RouteId`] that treats them alike.
macro_rules! command_route {
    () => {
        $crate::routes::RouteId::Acknowledge
            | $crate::routes::RouteId::Unacknowledge
            | $crate::routes::RouteId::Assign
            | $crate::routes::RouteId::Unassign
            | $crate::routes::RouteId::Comment
            | $crate::routes::RouteId::BulkAcknowledge
            | $crate::routes::RouteId::BulkUnacknowledge
            | $crate::routes::RouteId::BulkAssign
            | $crate::routes::RouteId::BulkUnassign
            | $crate::routes::RouteId::BulkComment
            | $crate::routes::RouteId::PollNow
            | $crate::routes::RouteId::ForgetAssignee
    };
}
pub(crate) use command_route;

impl RouteId {
    /// Whether the route is a command (POST with a JSON body; an operator token required).
    pub fn is_command(self) -> bool {
        matches!(self, command_route!())
    }

    /// Whether the `{id}` segment is an alert's `id` (else a system id).
    pub fn alert_id_in_path(self) -> bool {
        matches!(
            self,
            RouteId::AlertDetail
                | RouteId::Acknowledge
                | RouteId::Unacknowledge
                | RouteId::Assign
                | RouteId::Unassign
                | RouteId::Comment
        )
    }
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
            RouteId::Stream
                | RouteId::ExportCapacity
                | RouteId::ExportCapacityHistory
                | RouteId::ExportCapacityXlsx
                | RouteId::ExportCapacityHistoryXlsx
        )
    }

    /// Whether the path has a `{id}` segment.
    pub fn has_id(&self) -> bool {
        self.path.contains("{id}")
    }

    /// The route's HTTP method: `POST` for commands, else `GET` (and `HEAD`).
    pub fn method(&self) -> &'static str {
        if self.id.is_command() { "POST" } else { "GET" }
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
/// `sdash_proto::CommandKind` names (a test keeps them equal).
pub const COMMAND_KINDS: &[&str] = &[
    "acknowledge",
    "unacknowledge",
    "assign",
    "unassign",
    "comment",
    "poll_now",
    "forget_assignee",
    "remember_assignee",
];
/// Outcomes of a command in the writer's audit.
pub const COMMAND_OUTCOMES: &[&str] = &["applied", "refused", "dispatched", "no_collector"];
/// What `resolution=` asks a capacity series for: `auto`, the finest tier that covers the range,
/// or one tier.
pub const RESOLUTIONS: &[&str] = &["auto", "raw", "hourly", "daily"];
/// What `resolution=` asks the fleet history for: `auto` (hourly rollups for a range of at most
/// 2 days, else daily), `hourly` (at most 31 days) or `daily`.
pub const HISTORY_RESOLUTIONS: &[&str] = &["auto", "hourly", "daily"];
/// What `tier=` asks the pool history for: `auto` (the finest rollups that cover the range),
/// `hourly` or `daily` (pools have no raw tier).
pub const POOL_RESOLUTIONS: &[&str] = &["auto", "hourly", "daily"];
/// `sdash_proto::ClusterType` names (a test keeps them equal).
pub const CLUSTER_TYPES: &[&str] = &[
    "ha",
    "metrocluster",
    "active-cluster",
    "local",
    "multi-site",
    "single-site",
];
/// The storage tiers of capacity history, finest first (what a series says it was read from).
pub const TIERS: &[&str] = &["raw", "hourly", "daily"];
/// Named ranges (`range=`), ending at `to`; `all` starts at the first day with data.
pub const RANGES: &[&str] = &["1d", "7d", "30d", "90d", "1y", "2y", "all"];
/// Points of the fleet history: one per day, or one per ISO week (Monday to Sunday).
pub const INTERVALS: &[&str] = &["day", "week"];
/// What a week's point shows: its last day's totals, or the average of its days (never a sum).
pub const WEEK_VALUES: &[&str] = &["last", "avg"];
/// Media type of the XLSX exports.
pub const XLSX: &str = "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet";
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
const SUBGROUP_BY: ParamSpec = ParamSpec {
    name: "subgroup_by",
    kind: ParamKind::String,
    description: "Second tag key (with group_by): groups are the (group_by, subgroup_by) value pairs, with subtotals per group_by value and a grand total.",
    example: "storage_type",
    repeat: false,
};
const RANGE: ParamSpec = ParamSpec {
    name: "range",
    kind: ParamKind::Enum {
        values: RANGES,
        list: false,
    },
    description: "A named range ending at `to` (overrides `from`): 1d, 7d, 30d, 90d, 1y (365 days), 2y (730 days), or all (from the first day with data).",
    example: "all",
    repeat: false,
};
const INTERVAL: ParamSpec = ParamSpec {
    name: "interval",
    kind: ParamKind::Enum {
        values: INTERVALS,
        list: false,
    },
    description: "One point per day (default) or per ISO week (Monday to Sunday; see `week_value`).",
    example: "week",
    repeat: false,
};
const WEEK_VALUE: ParamSpec = ParamSpec {
    name: "week_value",
    kind: ParamKind::Enum {
        values: WEEK_VALUES,
        list: false,
    },
    description: "With interval=week: the week's last day's totals (`last`, default) or the average of its days (`avg`); never a sum.",
    example: "avg",
    repeat: false,
};
const HISTORY_RESOLUTION: ParamSpec = ParamSpec {
    name: "resolution",
    kind: ParamKind::Enum {
        values: HISTORY_RESOLUTIONS,
        list: false,
    },
    description: "`auto` (default): sums of hourly rollups for a range of at most 2 days (one point per hour, each system's last rollup carried for up to 24 hours), else of daily rollups; or `hourly` (at most 31 days), `daily` explicitly. `tier` says which.",
    example: "daily",
    repeat: false,
};
const HISTORY_PARAMS: &[ParamSpec] = &[
    GROUP_BY,
    SUBGROUP_BY,
    FROM,
    TO,
    RANGE,
    INTERVAL,
    WEEK_VALUE,
    HISTORY_RESOLUTION,
];
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

/// The tier choice of a per-system series with raw samples (capacity, performance).
const SERIES_TIER: &str = "`auto` (default): the finest tier that holds the whole range (raw samples, else hourly rollups, else daily rollups; raw gives way to hourly when more than 20,000 samples match); or `raw`, `hourly` (UTC hours), `daily` (UTC days) explicitly.";

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
                name: "cluster_type",
                kind: ParamKind::Enum {
                    values: CLUSTER_TYPES,
                    list: true,
                },
                description: "Only these cluster types (comma separated); systems whose topology was never read have none and never match.",
                example: "ha",
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
        summary: "Capacity history of one system from the finest storage tier that covers the range (raw samples, hourly or daily rollups); `tier` says which.",
        params: &[
            FROM,
            TO,
            RANGE,
            ParamSpec {
                name: "resolution",
                kind: ParamKind::Enum {
                    values: RESOLUTIONS,
                    list: false,
                },
                description: SERIES_TIER,
                example: "daily",
                repeat: false,
            },
        ],
        content: "application/json",
        schema: Some("CapacitySeries"),
    },
    RouteSpec {
        id: RouteId::SystemPerformance,
        path: "/api/v1/systems/{id}/performance",
        summary: "Array performance history of one system (read/write IOPS, latency in µs, bytes/s) from the finest storage tier that covers the range: raw samples, else hourly, else daily rollups (their points carry the averages of their samples); `tier` says which.",
        params: &[
            FROM,
            TO,
            RANGE,
            ParamSpec {
                name: "tier",
                kind: ParamKind::Enum {
                    values: RESOLUTIONS,
                    list: false,
                },
                description: SERIES_TIER,
                example: "daily",
                repeat: false,
            },
        ],
        content: "application/json",
        schema: Some("PerformanceSeries"),
    },
    RouteSpec {
        id: RouteId::SystemPools,
        path: "/api/v1/systems/{id}/pools",
        summary: "Capacity history of each pool of one system (aggregates, sites, storage pools, tiers, space categories): the last sample of each hour or day, from the finest rollups that cover the range; `tier` says which.",
        params: &[
            FROM,
            TO,
            RANGE,
            ParamSpec {
                name: "tier",
                kind: ParamKind::Enum {
                    values: POOL_RESOLUTIONS,
                    list: false,
                },
                description: "`auto` (default): hourly rollups when they hold the whole range, else daily rollups; or `hourly` (UTC hours), `daily` (UTC days) explicitly.",
                example: "daily",
                repeat: false,
            },
        ],
        content: "application/json",
        schema: Some("PoolHistory"),
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
        summary: "Fleet capacity totals (enabled systems), overall and per value of a tag or pair of tags, with subtotals and a forecast per group (least squares through the group's summed daily series).",
        params: &[
            GROUP_BY,
            SUBGROUP_BY,
            ParamSpec {
                name: "forecast_days",
                kind: ParamKind::Integer { min: 2, max: 3650 },
                description: "How many recent days of each group's daily totals its forecast is fitted on (default 90).",
                example: "90",
                repeat: false,
            },
        ],
        content: "application/json",
        schema: Some("CapacitySummary"),
    },
    RouteSpec {
        id: RouteId::CapacityHistory,
        path: "/api/v1/capacity/history",
        summary: "Daily (or weekly) fleet capacity series of the enabled systems, per value of a tag or pair of tags, with subtotals and the grand total (from the daily rollups, `tier`; a system without a rollup on a day counts with its last one of the 7 days before, in carried_forward).",
        params: HISTORY_PARAMS,
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
            ParamSpec {
                name: "acknowledged",
                kind: ParamKind::Boolean,
                description: "Only acknowledged (true) or only unacknowledged (false) alerts.",
                example: "false",
                repeat: false,
            },
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
        summary: "Current capacity of every system as CSV, with one `tag:<key>` column per tag key present (sorted).",
        params: &[],
        content: "text/csv",
        schema: None,
    },
    RouteSpec {
        id: RouteId::ExportCapacityHistory,
        path: "/api/v1/export/capacity-history.csv",
        summary: "Daily (or weekly) capacity history per tag value (or pair) as CSV.",
        params: HISTORY_PARAMS,
        content: "text/csv",
        schema: None,
    },
    RouteSpec {
        id: RouteId::ExportCapacityXlsx,
        path: "/api/v1/export/capacity.xlsx",
        summary: "The capacity report as XLSX: sheet Systems (the columns of capacity.csv) and sheet Summary (the groups, subtotals and total of /capacity/summary with their forecasts).",
        params: &[GROUP_BY, SUBGROUP_BY],
        content: XLSX,
        schema: None,
    },
    RouteSpec {
        id: RouteId::ExportCapacityHistoryXlsx,
        path: "/api/v1/export/capacity-history.xlsx",
        summary: "The capacity history as XLSX: sheet History (the rows of capacity-history.csv).",
        params: HISTORY_PARAMS,
        content: XLSX,
        schema: None,
    },
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
    RouteSpec {
        id: RouteId::AlertDetail,
        path: "/api/v1/alerts/{id}",
        summary: "One alert instance (by the id of GET /api/v1/alerts): its state, who acknowledged it, its assignee and its comment thread (oldest first).",
        params: &[],
        content: "application/json",
        schema: Some("AlertDetail"),
    },
    // Bulk routes before `/api/v1/alerts/{id}/...`: the first matching path wins.
    RouteSpec {
        id: RouteId::BulkAcknowledge,
        path: "/api/v1/alerts/bulk/acknowledge",
        summary: "Acknowledge several open alerts (body {\"alerts\": [id, ...]}); acknowledged alerts no longer count towards a system's health.",
        params: &[],
        content: "application/json",
        schema: Some("CommandsAccepted"),
    },
    RouteSpec {
        id: RouteId::BulkUnacknowledge,
        path: "/api/v1/alerts/bulk/unacknowledge",
        summary: "Take back the acknowledgement of several alerts (body {\"alerts\": [id, ...]}).",
        params: &[],
        content: "application/json",
        schema: Some("CommandsAccepted"),
    },
    RouteSpec {
        id: RouteId::BulkAssign,
        path: "/api/v1/alerts/bulk/assign",
        summary: "Assign several open alerts to someone (body {\"alerts\": [id, ...], \"assignee\": \"name\"}).",
        params: &[],
        content: "application/json",
        schema: Some("CommandsAccepted"),
    },
    RouteSpec {
        id: RouteId::BulkUnassign,
        path: "/api/v1/alerts/bulk/unassign",
        summary: "Remove the assignee of several alerts (body {\"alerts\": [id, ...]}).",
        params: &[],
        content: "application/json",
        schema: Some("CommandsAccepted"),
    },
    RouteSpec {
        id: RouteId::BulkComment,
        path: "/api/v1/alerts/bulk/comment",
        summary: "Add the same comment to several alerts (body {\"alerts\": [id, ...], \"text\": \"...\"}).",
        params: &[],
        content: "application/json",
        schema: Some("CommandsAccepted"),
    },
    RouteSpec {
        id: RouteId::Acknowledge,
        path: "/api/v1/alerts/{id}/acknowledge",
        summary: "Acknowledge an open alert: it no longer counts towards its system's health (until it clears; a reopened alert is unacknowledged).",
        params: &[],
        content: "application/json",
        schema: Some("CommandsAccepted"),
    },
    RouteSpec {
        id: RouteId::Unacknowledge,
        path: "/api/v1/alerts/{id}/unacknowledge",
        summary: "Take back the acknowledgement of an alert.",
        params: &[],
        content: "application/json",
        schema: Some("CommandsAccepted"),
    },
    RouteSpec {
        id: RouteId::Assign,
        path: "/api/v1/alerts/{id}/assign",
        summary: "Assign an open alert to someone (body {\"assignee\": \"name\"}, free text; see GET /api/v1/assignees).",
        params: &[],
        content: "application/json",
        schema: Some("CommandsAccepted"),
    },
    RouteSpec {
        id: RouteId::Unassign,
        path: "/api/v1/alerts/{id}/unassign",
        summary: "Remove the assignee of an alert.",
        params: &[],
        content: "application/json",
        schema: Some("CommandsAccepted"),
    },
    RouteSpec {
        id: RouteId::Comment,
        path: "/api/v1/alerts/{id}/comment",
        summary: "Append a comment to an alert's thread (body {\"text\": \"...\"}, 1 to 4000 characters).",
        params: &[],
        content: "application/json",
        schema: Some("CommandsAccepted"),
    },
    RouteSpec {
        id: RouteId::PollNow,
        path: "/api/v1/systems/{id}/poll-now",
        summary: "Ask the collector that owns the system to poll it now (at most once per --poll-now-min-interval per system: 429 with Retry-After otherwise).",
        params: &[],
        content: "application/json",
        schema: Some("CommandsAccepted"),
    },
    RouteSpec {
        id: RouteId::Assignees,
        path: "/api/v1/assignees",
        summary: "Previously used assignees, most recently used first (for autocomplete).",
        params: &[],
        content: "application/json",
        schema: Some("AssigneeList"),
    },
    RouteSpec {
        id: RouteId::ForgetAssignee,
        path: "/api/v1/assignees/forget",
        summary: "Remove a name from the previously used assignees (body {\"assignee\": \"name\"}); assignments stay as they are.",
        params: &[],
        content: "application/json",
        schema: Some("CommandsAccepted"),
    },
    RouteSpec {
        id: RouteId::Audit,
        path: "/api/v1/audit",
        summary: "The command audit log, newest first: every command the writer consumed, applied or refused (with the reason), and who gave it.",
        params: &[
            SYSTEM_FILTER,
            ParamSpec {
                name: "actor",
                kind: ParamKind::String,
                description: "Only commands given by this operator (token name).",
                example: "alice",
                repeat: false,
            },
            ParamSpec {
                name: "kind",
                kind: ParamKind::Enum {
                    values: COMMAND_KINDS,
                    list: true,
                },
                description: "Only these command kinds (comma separated).",
                example: "acknowledge",
                repeat: true,
            },
            ParamSpec {
                name: "outcome",
                kind: ParamKind::Enum {
                    values: COMMAND_OUTCOMES,
                    list: true,
                },
                description: "Only these outcomes (comma separated).",
                example: "applied",
                repeat: true,
            },
            LIMIT,
            CURSOR,
        ],
        content: "application/json",
        schema: Some("AuditEntryList"),
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
        use sdash_proto::{Category, ClusterType, Health, Level, Severity, Status, Vendor};
        assert_eq!(VENDORS, Vendor::ALL.map(|v| v.as_str()));
        assert_eq!(&STATUSES[..4], Status::ALL.map(|v| v.as_str()));
        assert_eq!(HEALTHS, Health::ALL.map(|v| v.as_str()));
        assert_eq!(SEVERITIES, Severity::ALL.map(|v| v.as_str()));
        assert_eq!(LEVELS, Level::ALL.map(|v| v.as_str()));
        assert_eq!(CATEGORIES, Category::ALL.map(|v| v.as_str()));
        assert_eq!(CLUSTER_TYPES, ClusterType::ALL.map(|v| v.as_str()));
        assert_eq!(
            COMMAND_KINDS,
            sdash_proto::CommandKind::ALL.map(|v| v.as_str())
        );
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
        let (r, id) = match_path("/api/v1/alerts/bulk/assign").expect("route");
        assert_eq!((r.id, id), (RouteId::BulkAssign, None));
        let (r, id) = match_path("/api/v1/alerts/12/assign").expect("route");
        assert_eq!((r.id, id.as_deref()), (RouteId::Assign, Some("12")));
        assert!(match_path("/api/v2/systems").is_none());
    }
}
