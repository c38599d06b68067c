//! The query parameters that routes of several areas share: paging, ranges of time, and the
//! system, vendor, level and category filters.

use super::values::{CATEGORIES, LEVELS, MAX_PAGE, RANGES, VENDORS};
use super::{ParamKind, ParamSpec};

pub(super) const LIMIT: ParamSpec = ParamSpec {
    name: "limit",
    kind: ParamKind::Integer {
        min: 1,
        max: MAX_PAGE,
    },
    description: "Page size (default 100, at most 1000 or the server's --max-page-size).",
    example: "50",
    repeat: false,
};
pub(super) const CURSOR: ParamSpec = ParamSpec {
    name: "cursor",
    kind: ParamKind::Cursor,
    description: "Opaque cursor: the next_cursor of the previous page, with the same filters.",
    example: "",
    repeat: false,
};
pub(super) const FROM: ParamSpec = ParamSpec {
    name: "from",
    kind: ParamKind::Time,
    description: "Start of the range, RFC 3339 (inclusive; default 30 days before `to`).",
    example: "2026-01-01T00:00:00Z",
    repeat: false,
};
pub(super) const TO: ParamSpec = ParamSpec {
    name: "to",
    kind: ParamKind::Time,
    description: "End of the range, RFC 3339 (inclusive; default now).",
    example: "2030-01-01T00:00:00Z",
    repeat: false,
};
pub(super) const RANGE: ParamSpec = ParamSpec {
    name: "range",
    kind: ParamKind::Enum {
        values: RANGES,
        list: false,
    },
    description: "A named range ending at `to` (overrides `from`): 1d, 7d, 30d, 90d, 1y (365 days), 2y (730 days), or all (from the first day with data).",
    example: "all",
    repeat: false,
};
pub(super) const SYSTEM_FILTER: ParamSpec = ParamSpec {
    name: "system",
    kind: ParamKind::String,
    description: "Only this system id.",
    example: "fa-prod-01",
    repeat: false,
};
pub(super) const VENDOR_FILTER: ParamSpec = ParamSpec {
    name: "vendor",
    kind: ParamKind::Enum {
        values: VENDORS,
        list: true,
    },
    description: "Only these vendors (comma separated).",
    example: "pure",
    repeat: true,
};
pub(super) const LEVEL: ParamSpec = ParamSpec {
    name: "level",
    kind: ParamKind::Enum {
        values: LEVELS,
        list: false,
    },
    description: "Minimum level (debug < info < warning < error < critical).",
    example: "warning",
    repeat: false,
};
pub(super) const CATEGORY: ParamSpec = ParamSpec {
    name: "category",
    kind: ParamKind::Enum {
        values: CATEGORIES,
        list: true,
    },
    description: "Only these categories (comma separated).",
    example: "connection",
    repeat: true,
};
pub(super) const SINCE: ParamSpec = ParamSpec {
    name: "since",
    kind: ParamKind::Time,
    description: "Only events observed at or after this time (RFC 3339).",
    example: "2026-01-01T00:00:00Z",
    repeat: false,
};
pub(super) const UNTIL: ParamSpec = ParamSpec {
    name: "until",
    kind: ParamKind::Time,
    description: "Only events observed before this time (RFC 3339).",
    example: "2030-01-01T00:00:00Z",
    repeat: false,
};
