//! The routes of the fleet's alerts and log events (an alert's detail and the operator commands
//! are [`super::commands`]).

use super::params::{CATEGORY, CURSOR, LEVEL, LIMIT, SINCE, SYSTEM_FILTER, UNTIL, VENDOR_FILTER};
use super::values::{ALERT_STATES, SEVERITIES};
use super::{ParamKind, ParamSpec, RouteId, RouteSpec};

pub(super) const ROUTES: &[RouteSpec] = &[
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
];
