//! The API's resources: one module per group of routes, each with its queries, its typed rows and
//! its typed responses (which the OpenAPI document is generated from, see [`crate::openapi`]).
//! Every value from a request is bound, never spliced into SQL.
//!
//! - [`systems`]: the fleet list and one system's detail; [`deep`]: its topology, pools and
//!   performance, and their history;
//! - [`capacity`]: capacity series, fleet summary and history; [`forecast`]; [`export`] (CSV,
//!   XLSX); [`history_cache`]: the cached fleet history;
//! - [`alerts`]: alerts and log events;
//! - [`status`]: pipeline status and collectors;
//! - [`commands`]: operator commands (POST, published to the bus), assignees and the audit log.
//!
//! [`page`] holds the keyset pagination and the page envelope that the list routes share;
//! [`tiers`] the choice of storage tier that the per-system series share.

pub mod alerts;
pub mod capacity;
pub mod commands;
pub mod deep;
pub mod export;
pub mod forecast;
pub mod history_cache;
pub mod page;
pub mod status;
pub mod systems;
pub mod tiers;

use crate::db::Sql;
use crate::http::{ApiError, ApiResult, Params};
use crate::state::AppState;

pub(crate) const DAY_MS: i64 = 86_400_000;
/// Page size when the request names none (capped by `--max-page-size`).
const DEFAULT_PAGE: i64 = 100;

fn now() -> i64 {
    sdash_proto::now_ms()
}

/// A time as RFC 3339, the text twin of every `*_ms` field.
fn rfc3339(ms: i64) -> String {
    sdash_proto::format_ms(ms)
}

/// The UTC day (`YYYY-MM-DD`) of a time.
fn day_of(ms: i64) -> String {
    let text = sdash_proto::format_ms(ms);
    text.get(..10).unwrap_or(&text).to_owned()
}

/// The number of a UTC day (days since the epoch), from its `YYYY-MM-DD` name.
fn day_index(day: &str) -> Option<i64> {
    sdash_proto::parse_rfc3339_ms(&format!("{day}T00:00:00Z")).map(|ms| ms.div_euclid(DAY_MS))
}

/// The name of day number `index`.
fn day_name(index: i64) -> String {
    day_of(index.saturating_mul(DAY_MS))
}

/// The `{id}` segment of a path, checked.
pub(crate) fn system_path_id(id: Option<&str>) -> ApiResult<String> {
    match id {
        Some(id) if sdash_proto::valid_system_id(id) => Ok(id.to_owned()),
        Some(id) => Err(ApiError::bad(format!(
            "invalid system id {id:?}: expected [a-z0-9_-]{{1,64}}"
        ))),
        None => Err(ApiError::bad("missing system id")),
    }
}

crate::row_struct! {
    struct SystemId {
        id: String,
    }
}

/// 404 unless the system is in the inventory or has a snapshot.
async fn require_system(st: &AppState, id: &str) -> ApiResult<()> {
    let mut sql = Sql::new("SELECT id FROM systems WHERE id = ");
    sql.bind(id)
        .push(" UNION SELECT system_id AS id FROM system_state WHERE system_id = ")
        .bind(id);
    match st.db.fetch_optional_as::<SystemId>(&sql).await? {
        Some(found) if found.id == id => Ok(()),
        _ => Err(ApiError::NotFound(format!("system {id:?} not found"))),
    }
}

/// The `limit` parameter of a list route.
fn limit_param(st: &AppState, p: &Params) -> ApiResult<i64> {
    p.int("limit", DEFAULT_PAGE.min(st.max_page), 1, st.max_page)
}

/// The `from`/`to` parameters as ms; `to` defaults to now, `from` to `default_days` before it.
pub(crate) fn range(p: &Params, default_days: i64) -> ApiResult<(i64, i64)> {
    let to = p.time("to")?.unwrap_or_else(now);
    let from = p.time("from")?.unwrap_or(to - default_days * DAY_MS);
    if from > to {
        return Err(ApiError::bad("from must not be after to"));
    }
    Ok((from, to))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn days_round_trip() {
        let i = day_index("2026-03-01").expect("day");
        assert_eq!(day_name(i), "2026-03-01");
    }
}
