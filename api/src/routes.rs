//! The route table: the one list of paths, their parameters and responses. The dispatcher routes
//! by it, `/metrics` labels by it, and `/api/v1/openapi.json` is generated from it.

use serde_json::{Map, Value, json};

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
    /// Schema name (under `components/schemas`) of the 200 response; `None` for non-JSON bodies.
    pub schema: Option<&'static str>,
}

impl RouteSpec {
    /// Whether the route is under `/api/` (bearer token required when configured).
    pub fn protected(&self) -> bool {
        self.path.starts_with("/api/")
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

fn param_schema(kind: ParamKind) -> Value {
    match kind {
        ParamKind::String | ParamKind::Cursor => json!({"type": "string"}),
        ParamKind::Integer { min, max } => {
            json!({"type": "integer", "minimum": min, "maximum": max})
        }
        ParamKind::Enum {
            values,
            list: false,
        } => json!({"type": "string", "enum": values}),
        ParamKind::Enum { values, list: true } => json!({
            "type": "string",
            "description": format!("comma-separated list of: {}", values.join(", ")),
            "pattern": format!("^({0})(,({0}))*$", values.join("|")),
        }),
        ParamKind::Time => json!({"type": "string", "format": "date-time"}),
        ParamKind::Boolean => json!({"type": "boolean"}),
    }
}

fn error_response(description: &str) -> Value {
    json!({
        "description": description,
        "content": {"application/json": {"schema": {"$ref": "#/components/schemas/Error"}}}
    })
}

/// The OpenAPI 3 document, generated from [`ROUTES`].
pub fn openapi() -> Value {
    let mut paths = Map::new();
    for route in ROUTES {
        let mut parameters: Vec<Value> = Vec::new();
        if route.has_id() {
            parameters.push(json!({
                "name": "id", "in": "path", "required": true,
                "description": "System id ([a-z0-9_-]{1,64}).",
                "schema": {"type": "string", "pattern": "^[a-z0-9_-]{1,64}$"},
                "example": "fa-prod-01",
            }));
        }
        for p in route.params {
            let mut param = json!({
                "name": p.name, "in": "query", "required": false,
                "description": p.description,
                "schema": param_schema(p.kind),
            });
            if p.repeat {
                param["explode"] = json!(true);
                param["schema"] = json!({"type": "array", "items": param_schema(p.kind)});
            }
            if !p.example.is_empty() {
                param["example"] = if p.repeat {
                    json!([p.example])
                } else {
                    json!(p.example)
                };
            }
            parameters.push(param);
        }
        let ok_content = match route.schema {
            Some(schema) => {
                json!({route.content: {"schema": {"$ref": format!("#/components/schemas/{schema}")}}})
            }
            None => {
                json!({route.content: {"schema": {"type": if route.content == "application/json" { "object" } else { "string" }}}})
            }
        };
        let mut responses = Map::new();
        responses.insert(
            "200".into(),
            json!({"description": "OK", "content": ok_content}),
        );
        if route.content == "application/json" || route.content == "text/csv" {
            responses.insert(
                "304".into(),
                json!({"description": "Not modified (If-None-Match matched the ETag)."}),
            );
        }
        if !route.params.is_empty() || route.has_id() {
            responses.insert("400".into(), error_response("Invalid parameter."));
        }
        if route.protected() {
            responses.insert(
                "401".into(),
                error_response(if route.query_token() {
                    "Bearer token (header or access_token) required (when the server has one)."
                } else {
                    "Bearer token required (when the server has one)."
                }),
            );
        }
        if route.has_id() {
            responses.insert("404".into(), error_response("Unknown system."));
        }
        if route.id != RouteId::Healthz
            && route.id != RouteId::Metrics
            && route.id != RouteId::OpenApi
        {
            responses.insert(
                "503".into(),
                error_response("Database (or, for the stream, NATS) unavailable."),
            );
        }
        let mut op = json!({
            "operationId": format!("{:?}", route.id),
            "summary": route.summary,
            "parameters": parameters,
            "responses": responses,
        });
        if !route.protected() {
            op["security"] = json!([]);
        } else if route.query_token() {
            op["security"] = json!([{"bearer": []}, {"accessToken": []}]);
        }
        paths.insert(route.path.to_owned(), json!({ "get": op }));
    }
    json!({
        "openapi": "3.0.3",
        "info": {
            "title": "sdash API",
            "version": env!("CARGO_PKG_VERSION"),
            "description": "Read-only JSON API over the sdash database. Times are RFC 3339 (UTC) with a `_ms` twin in ms since the epoch; capacity is bytes. Errors are {\"error\": \"...\"}.",
        },
        "servers": [{"url": "/"}],
        "security": [{"bearer": []}],
        "paths": paths,
        "components": {
            "securitySchemes": {
                "bearer": {"type": "http", "scheme": "bearer"},
                "accessToken": {
                    "type": "apiKey", "in": "query", "name": ACCESS_TOKEN_PARAM,
                    "description": "The bearer token as a query parameter, accepted only by the live stream and the CSV exports (EventSource and download links cannot send a header). Prefer the header elsewhere: URLs end up in browser history and proxy logs.",
                },
            },
            "schemas": schemas(),
        },
    })
}

fn time_pair(props: &mut Map<String, Value>, name: &str, description: &str) {
    props.insert(name.into(), json!({"type": "string", "format": "date-time", "nullable": true, "description": description}));
    props.insert(format!("{name}_ms"), json!({"type": "integer", "nullable": true, "description": format!("{description} (ms since the epoch)")}));
}

fn obj(props: Map<String, Value>) -> Value {
    json!({"type": "object", "properties": props})
}

fn schemas() -> Value {
    let int = || json!({"type": "integer"});
    let int_n = || json!({"type": "integer", "nullable": true});
    let text = || json!({"type": "string"});
    let text_n = || json!({"type": "string", "nullable": true});
    let num_n = || json!({"type": "number", "nullable": true});

    let capacity = obj(Map::from_iter([
        ("total_bytes".into(), int()),
        ("used_bytes".into(), int()),
        ("free_bytes".into(), int()),
        ("used_pct".into(), num_n()),
        ("data_reduction".into(), num_n()),
    ]));

    let mut system = Map::from_iter([
        ("id".into(), text()),
        ("name".into(), text()),
        ("reported_name".into(), text_n()),
        (
            "vendor".into(),
            json!({"type": "string", "nullable": true, "enum": VENDORS}),
        ),
        ("address".into(), text_n()),
        (
            "tags".into(),
            json!({"type": "object", "additionalProperties": {"type": "string"}}),
        ),
        ("in_inventory".into(), json!({"type": "boolean"})),
        (
            "enabled".into(),
            json!({"type": "boolean", "nullable": true}),
        ),
        ("removed".into(), json!({"type": "boolean"})),
        ("poll_interval_s".into(), int_n()),
        (
            "status".into(),
            json!({"type": "string", "nullable": true, "description": "null when never polled"}),
        ),
        ("hardware".into(), text_n()),
        ("cluster".into(), text_n()),
        ("version".into(), text_n()),
        ("model".into(), text_n()),
        ("serial".into(), text_n()),
        (
            "capacity".into(),
            json!({"allOf": [{"$ref": "#/components/schemas/Capacity"}], "nullable": true}),
        ),
        ("alert_count".into(), int_n()),
        ("last_poll_duration_ms".into(), int_n()),
        ("error".into(), text_n()),
        ("collector_id".into(), text_n()),
        (
            "stale".into(),
            json!({"type": "boolean", "description": "last poll older than 3 poll intervals"}),
        ),
    ]);
    time_pair(
        &mut system,
        "last_poll_at",
        "When the latest snapshot was observed",
    );
    time_pair(
        &mut system,
        "last_online_at",
        "When the system was last seen online",
    );

    let mut detail = system.clone();
    detail.insert(
        "components".into(),
        json!({"type": "array", "items": {"type": "object", "properties": {
        "kind": text(), "name": text(), "status": text(), "detail": text_n()}}}),
    );
    detail.insert(
        "open_alerts".into(),
        json!({"type": "array", "items": {"$ref": "#/components/schemas/Alert"}}),
    );
    detail.insert(
        "transitions".into(),
        json!({"type": "array", "items": {"type": "object"}}),
    );

    let mut alert = Map::from_iter([
        ("id".into(), int()),
        ("system_id".into(), text()),
        ("system_name".into(), text()),
        ("vendor".into(), text_n()),
        ("alert_id".into(), text()),
        (
            "severity".into(),
            json!({"type": "string", "enum": SEVERITIES}),
        ),
        ("vendor_severity".into(), text()),
        ("title".into(), text()),
        ("component".into(), text_n()),
        ("open".into(), json!({"type": "boolean"})),
    ]);
    time_pair(
        &mut alert,
        "opened_at",
        "When the vendor says the alert opened",
    );
    time_pair(&mut alert, "first_seen", "First snapshot showing the alert");
    time_pair(&mut alert, "last_seen", "Last snapshot showing the alert");
    time_pair(
        &mut alert,
        "cleared_at",
        "First snapshot without the alert (null while open)",
    );

    let mut event = Map::from_iter([
        ("event_id".into(), text()),
        ("system_id".into(), text()),
        ("collector_id".into(), text()),
        ("level".into(), json!({"type": "string", "enum": LEVELS})),
        ("category".into(), text()),
        ("message".into(), text()),
        ("details".into(), text_n()),
        ("http_status".into(), int_n()),
        ("endpoint".into(), text_n()),
    ]);
    time_pair(&mut event, "observed_at", "When the event happened");

    let page = |item: &str| {
        json!({"type": "object", "properties": {
            "items": {"type": "array", "items": {"$ref": format!("#/components/schemas/{item}")}},
            "next_cursor": {"type": "string", "nullable": true, "description": "pass as cursor for the next page; null on the last page"},
            "limit": {"type": "integer"},
        }})
    };

    let totals = json!({"type": "object", "properties": {
        "key": {"type": "string", "nullable": true}, "label": text(),
        "systems": int(), "systems_with_capacity": int(),
        "total_bytes": int(), "used_bytes": int(), "free_bytes": int(), "used_pct": num_n(),
    }});

    let mut collector = Map::from_iter([
        ("id".into(), text()),
        ("version".into(), text()),
        ("systems".into(), json!({"type": "array", "items": text()})),
        ("system_count".into(), int()),
        ("polls".into(), int()),
        ("failures".into(), int()),
        ("outbox_depth".into(), int()),
        ("live".into(), json!({"type": "boolean"})),
    ]);
    time_pair(&mut collector, "started_at", "When the collector started");
    time_pair(&mut collector, "last_seen", "Last heartbeat");

    json!({
        "Error": {"type": "object", "required": ["error"], "properties": {"error": text()}},
        "Capacity": capacity,
        "System": obj(system),
        "SystemList": page("System"),
        "SystemDetail": obj(detail),
        "Alert": obj(alert),
        "AlertList": page("Alert"),
        "Event": obj(event),
        "EventList": page("Event"),
        "CapacitySeries": {"type": "object", "properties": {
            "system_id": text(), "resolution": {"type": "string", "enum": RESOLUTIONS},
            "from": text(), "to": text(), "from_ms": int(), "to_ms": int(),
            "points": {"type": "array", "items": {"type": "object", "properties": {
                "at": text(), "at_ms": int(), "day": text(),
                "total_bytes": int(), "used_bytes": int(), "free_bytes": int(), "used_pct": num_n(),
                "samples": int(), "used_min": int(), "used_max": int(), "used_avg": int()}}},
        }},
        "Forecast": {"type": "object", "properties": {
            "system_id": text(),
            "trend": {"type": "string", "enum": ["growing", "flat", "shrinking", "insufficient_data"]},
            "points_used": int(), "days": int(),
            "slope_bytes_per_day": num_n(), "total_bytes": int_n(), "used_bytes": int_n(), "used_pct": num_n(),
            "date_90_pct": {"type": "string", "format": "date", "nullable": true},
            "date_100_pct": {"type": "string", "format": "date", "nullable": true},
            "history": {"type": "array", "items": {"type": "object", "properties": {"day": text(), "used_bytes": int()}}},
            "projection": {"type": "array", "items": {"type": "object", "properties": {"day": text(), "used_bytes": int(), "used_pct": num_n()}}},
        }},
        "Totals": totals,
        "CapacitySummary": {"type": "object", "properties": {
            "group_by": text_n(),
            "overall": {"$ref": "#/components/schemas/Totals"},
            "groups": {"type": "array", "items": {"$ref": "#/components/schemas/Totals"}},
        }},
        "CapacityHistory": {"type": "object", "properties": {
            "group_by": text_n(), "from": text(), "to": text(),
            "series": {"type": "array", "items": {"type": "object", "properties": {
                "key": text_n(), "label": text(),
                "points": {"type": "array", "items": {"type": "object", "properties": {
                    "day": text(), "systems": int(), "carried_forward": int(),
                    "total_bytes": int(), "used_bytes": int(),
                    "free_bytes": int(), "used_pct": num_n()}}}}}},
        }},
        "Collector": obj(collector),
        "CollectorList": {"type": "object", "properties": {
            "items": {"type": "array", "items": {"$ref": "#/components/schemas/Collector"}},
            "live_window_s": int()}},
        "PipelineStatus": {"type": "object", "properties": {
            "database": text(), "database_ok": {"type": "boolean"}, "nats_connected": {"type": "boolean"},
            "writer_id": text_n(), "last_commit_at": text_n(), "last_commit_at_ms": int_n(),
            "writer_lag_ms": int_n(), "last_stream_seq": int_n(), "consumer_pending": int_n(),
            "dead_letters": int(), "systems": {"type": "object"}, "open_alerts": int(),
            "collectors_live": int()}},
    })
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
