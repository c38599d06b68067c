//! Capacity: one system's history ([`series`]: `GET /api/v1/systems/{id}/capacity`, from the
//! finest storage tier that covers the range: raw samples, hourly or daily rollups), and the
//! fleet's totals now ([`summary`]: `GET /api/v1/capacity/summary`) and per day, week or hour
//! ([`history`]: `GET /api/v1/capacity/history`, short ranges summed from hourly rollups by
//! [`hourly`]), grouped by one or two tag keys with subtotals ([`grouping`]), and a forecast per
//! group. The CSV and XLSX exports of the report and the history are shaped by
//! [`super::export`].
//!
//! This file holds what the series and the fleet history share: the range of a request.

mod grouping;
mod history;
mod hourly;
mod series;
mod summary;

pub use history::{CapacityHistory, HistoryPoint, HistorySeries, Level, history};
pub(crate) use history::{History, history_series};
pub use series::{CapacityPoint, CapacitySeries, DailyStats, series};
pub(crate) use summary::report;
pub use summary::{CapacitySummary, GroupForecast, Totals, summary};

use super::{DAY_MS, now};
use crate::http::{ApiError, ApiResult, Params};

/// The `from`/`to` of a request: `to` defaults to now; `range=` names a span ending at `to`
/// (`all`: from the first data, which `first` finds), else `from`, else `default_days` before
/// `to`.
pub(crate) async fn request_range<F>(
    p: &Params,
    default_days: i64,
    first: F,
) -> ApiResult<(i64, i64)>
where
    F: std::future::Future<Output = ApiResult<Option<i64>>>,
{
    let to = p.time("to")?.unwrap_or_else(now);
    let days = match p.get("range") {
        None => None,
        Some("all") => {
            let from = first.await?.unwrap_or(to).min(to);
            return Ok((from, to));
        }
        Some(r) => Some(match r {
            "1d" => 1,
            "7d" => 7,
            "30d" => 30,
            "90d" => 90,
            "1y" => 365,
            "2y" => 730,
            other => {
                return Err(ApiError::bad(format!(
                    "range must be one of {}, got {other:?}",
                    crate::routes::RANGES.join(", ")
                )));
            }
        }),
    };
    let from = match (days, p.time("from")?) {
        (Some(d), _) => to - d * DAY_MS,
        (None, Some(from)) => from,
        (None, None) => to - default_days * DAY_MS,
    };
    if from > to {
        return Err(ApiError::bad("from must not be after to"));
    }
    Ok((from, to))
}
