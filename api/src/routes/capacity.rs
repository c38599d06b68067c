//! The routes of the fleet's capacity: the summary and the history per group, and their CSV and
//! XLSX exports, with the grouping and history parameters they share.

use super::params::{FROM, RANGE, TO};
use super::values::{HISTORY_RESOLUTIONS, INTERVALS, WEEK_VALUES, XLSX};
use super::{ParamKind, ParamSpec, RouteId, RouteSpec};

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

/// The summary and the history.
pub(super) const FLEET: &[RouteSpec] = &[
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
];

/// The exports (they come after the status routes in [`super::ROUTES`]).
pub(super) const EXPORTS: &[RouteSpec] = &[
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
];
