//! The route table: the one list of paths, their parameters and responses. The dispatcher routes
//! by it, `/metrics` labels by it, and `/api/v1/openapi.json` is generated from it
//! ([`crate::openapi`]).
//!
//! This file holds the table's types, [`ROUTES`] put together from the tables of each area, and
//! the matching of a path. The areas: [`systems`] (the fleet list, one system and its
//! histories), [`capacity`] (the fleet's capacity and its exports), [`alerts`] (alerts and log
//! events), [`service`] (pipeline status, live stream, OpenAPI, health and metrics) and
//! [`commands`] (operator commands and what they show); [`params`] holds the query parameters
//! several areas share and [`values`] the values parameters and answers take.

mod alerts;
mod capacity;
mod commands;
mod params;
mod service;
mod systems;
mod values;

pub use values::*;

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
/// The route table, area by area in the order that [`match_path`] tries them (the first matching
/// path wins).
pub const ROUTES: &[RouteSpec] = &ALL_ROUTES;

/// The areas' tables, in order.
const AREAS: &[&[RouteSpec]] = &[
    systems::ROUTES,
    capacity::FLEET,
    alerts::ROUTES,
    service::PIPELINE,
    capacity::EXPORTS,
    service::SERVICE,
    commands::ROUTES,
];

const ALL_ROUTES: [RouteSpec; route_count(AREAS)] = concat(AREAS);

/// How many routes the tables hold.
const fn route_count(tables: &[&[RouteSpec]]) -> usize {
    let mut count = 0;
    let mut i = 0;
    while i < tables.len() {
        count += tables[i].len();
        i += 1;
    }
    count
}

/// The tables one after the other (at compile time: `ROUTES` stays one constant slice).
const fn concat<const N: usize>(tables: &[&[RouteSpec]]) -> [RouteSpec; N] {
    let mut all = [tables[0][0]; N];
    let mut n = 0;
    let mut i = 0;
    while i < tables.len() {
        let mut j = 0;
        while j < tables[i].len() {
            all[n] = tables[i][j];
            n += 1;
            j += 1;
        }
        i += 1;
    }
    all
}

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
