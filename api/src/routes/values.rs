//! The values that query parameters take and answers name (vendors, statuses, severities, tiers,
//! ranges, ...), the page limit and the media type of the XLSX exports. Tests keep the lists of
//! proto types equal to them, and the dashboard's `enums.js` to those.

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

/// The query parameter that carries the bearer token on [`super::RouteSpec::query_token`] routes.
pub const ACCESS_TOKEN_PARAM: &str = "access_token";
