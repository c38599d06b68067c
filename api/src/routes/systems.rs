//! The routes of the fleet list and of one system: its detail, its capacity, performance and pool
//! histories (which share the range and tier parameters of [`series_params`]), its forecast and
//! its log events.

use super::params::{CATEGORY, CURSOR, FROM, LEVEL, LIMIT, RANGE, SINCE, TO, UNTIL, VENDOR_FILTER};
use super::values::{
    CLUSTER_TYPES, HEALTHS, POOL_RESOLUTIONS, RESOLUTIONS, STATUSES, SYSTEM_SORTS,
};
use super::{ParamKind, ParamSpec, RouteId, RouteSpec};

/// The tier choice of a per-system series with raw samples (capacity, performance).
const SERIES_TIER: &str = "`auto` (default): the finest tier that holds the whole range (raw samples, else hourly rollups, else daily rollups; raw gives way to hourly when more than 20,000 samples match); or `raw`, `hourly` (UTC hours), `daily` (UTC days) explicitly.";

/// The parameters of a per-system history: its range (`from`, `to`, `range`) and the choice of
/// tier, `tier_param` (`auto` or one of `tiers`, described by `description`).
const fn series_params(
    tier_param: &'static str,
    tiers: &'static [&'static str],
    description: &'static str,
) -> [ParamSpec; 4] {
    [
        FROM,
        TO,
        RANGE,
        ParamSpec {
            name: tier_param,
            kind: ParamKind::Enum {
                values: tiers,
                list: false,
            },
            description,
            example: "daily",
            repeat: false,
        },
    ]
}

/// The tier choice of a pool history (pools have no raw tier).
const POOL_TIER: &str = "`auto` (default): hourly rollups when they hold the whole range, else daily rollups; or `hourly` (UTC hours), `daily` (UTC days) explicitly.";

pub(super) const ROUTES: &[RouteSpec] = &[
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
        params: &series_params("resolution", RESOLUTIONS, SERIES_TIER),
        content: "application/json",
        schema: Some("CapacitySeries"),
    },
    RouteSpec {
        id: RouteId::SystemPerformance,
        path: "/api/v1/systems/{id}/performance",
        summary: "Array performance history of one system (read/write IOPS, latency in µs, bytes/s) from the finest storage tier that covers the range: raw samples, else hourly, else daily rollups (their points carry the averages of their samples); `tier` says which.",
        params: &series_params("tier", RESOLUTIONS, SERIES_TIER),
        content: "application/json",
        schema: Some("PerformanceSeries"),
    },
    RouteSpec {
        id: RouteId::SystemPools,
        path: "/api/v1/systems/{id}/pools",
        summary: "Capacity history of each pool of one system (aggregates, sites, storage pools, tiers, space categories): the last sample of each hour or day, from the finest rollups that cover the range; `tier` says which.",
        params: &series_params("tier", POOL_RESOLUTIONS, POOL_TIER),
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
];
