//! One system's capacity over time (`GET /api/v1/systems/{id}/capacity`): the points of the
//! finest storage tier that covers the range (raw samples, hourly or daily rollups; the choice is
//! [`crate::resources::tiers`]), each rollup with its samples' minimum, maximum and average.

use schemars::JsonSchema;
use serde::Serialize;
use warp::http::HeaderMap;
use warp::reply::Response;

use crate::db::{ColumnKind, FromRow, PackedRow, Sql};
use crate::http::{ApiResult, Params, json_ok, percent};
use crate::resources::tiers::{self, MAX_RAW_POINTS, in_range};
use crate::resources::{day_of, rfc3339};
use crate::routes::RESOLUTIONS;
use crate::state::AppState;

/// A system's capacity over time.
#[derive(Debug, Clone, Serialize, JsonSchema)]
pub struct CapacitySeries {
    pub system_id: String,
    /// The storage tier the points come from (the same as `tier`; kept for older clients).
    #[schemars(schema_with = "crate::openapi::tier")]
    pub resolution: String,
    /// The storage tier the points come from: `raw` samples, `hourly` or `daily` rollups.
    #[schemars(schema_with = "crate::openapi::tier")]
    pub tier: String,
    /// What was asked for: `auto` (the finest tier that covers the range) or a tier.
    #[schemars(schema_with = "crate::openapi::resolution_param")]
    pub requested: String,
    pub from: String,
    pub from_ms: i64,
    pub to: String,
    pub to_ms: i64,
    /// More raw samples matched than one response carries (the first ones are returned).
    pub truncated: bool,
    pub points: Vec<CapacityPoint>,
}

/// One raw sample, or one hourly or daily rollup (then with the rollup fields).
#[derive(Debug, Clone, Serialize, JsonSchema)]
pub struct CapacityPoint {
    /// The sample's time (for a rollup, its last sample's).
    pub at: String,
    pub at_ms: i64,
    pub total_bytes: i64,
    pub used_bytes: i64,
    pub free_bytes: i64,
    pub used_pct: Option<f64>,
    #[serde(flatten)]
    pub daily: Option<DailyStats>,
}

/// What a rollup adds to a point.
#[derive(Debug, Clone, Serialize, JsonSchema)]
pub struct DailyStats {
    /// The UTC day, `YYYY-MM-DD`.
    pub day: String,
    /// Hourly rollups: the start of the UTC hour.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub hour: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub hour_ms: Option<i64>,
    pub samples: i64,
    pub used_min: i64,
    pub used_max: i64,
    pub used_avg: Option<i64>,
}

crate::row_struct! {
    struct SampleRow {
        observed_at: i64,
        total_bytes: i64,
        used_bytes: i64,
        free_bytes: i64,
    }
}

crate::row_struct! {
    /// The columns of an hourly or daily rollup after its key (`hour` or `day`).
    struct RollupRow {
        samples: i64,
        used_min: i64,
        used_max: i64,
        used_sum: f64,
        last_at: i64,
        total_bytes: i64,
        used_bytes: i64,
        free_bytes: i64,
    }
}

/// The capacity tiers (`resolution=`).
const TABLES: tiers::Tables = tiers::Tables {
    raw: Some("capacity_samples"),
    hourly: "capacity_hourly",
    daily: "capacity_daily",
};

impl RollupRow {
    /// The point of the rollup of UTC `day` (and, for an hourly one, `hour`).
    fn point(self, day: String, hour: Option<i64>) -> CapacityPoint {
        let RollupRow {
            samples,
            used_min,
            used_max,
            used_sum,
            last_at,
            total_bytes,
            used_bytes,
            free_bytes,
        } = self;
        CapacityPoint {
            at: rfc3339(last_at),
            at_ms: last_at,
            total_bytes,
            used_bytes,
            free_bytes,
            used_pct: percent(Some(used_bytes), Some(total_bytes)),
            daily: Some(DailyStats {
                used_avg: (samples > 0).then(|| (used_sum / samples as f64).round() as i64),
                day,
                hour: hour.map(rfc3339),
                hour_ms: hour,
                samples,
                used_min,
                used_max,
            }),
        }
    }
}

/// The points of one tier in `[from, to]`; raw ones with whether more matched than returned.
async fn tier_points(
    st: &AppState,
    id: &str,
    tier: &str,
    from: i64,
    to: i64,
) -> ApiResult<(Vec<CapacityPoint>, bool)> {
    match tier {
        "raw" => {
            let mut sql = Sql::new(
                "SELECT observed_at, total_bytes, used_bytes, free_bytes FROM capacity_samples",
            );
            in_range(&mut sql, tier, id, from, to);
            sql.push(" ORDER BY observed_at LIMIT ")
                .bind(MAX_RAW_POINTS + 1);
            let mut rows = st
                .db
                .fetch_packed_as::<SampleRow>(&sql, "observed_at")
                .await?;
            let truncated = rows.len() as i64 > MAX_RAW_POINTS;
            rows.truncate(MAX_RAW_POINTS as usize);
            let points = rows
                .into_iter()
                .map(|r| CapacityPoint {
                    at: rfc3339(r.observed_at),
                    at_ms: r.observed_at,
                    total_bytes: r.total_bytes,
                    used_bytes: r.used_bytes,
                    free_bytes: r.free_bytes,
                    used_pct: percent(Some(r.used_bytes), Some(r.total_bytes)),
                    daily: None,
                })
                .collect();
            Ok((points, truncated))
        }
        _ => {
            let hourly = tier == "hourly";
            let (table, key) = if hourly {
                (TABLES.hourly, ("hour", ColumnKind::Int))
            } else {
                (TABLES.daily, ("day", ColumnKind::Text))
            };
            let columns: Vec<_> = std::iter::once(key)
                .chain(RollupRow::COLUMNS.iter().copied())
                .collect();
            let key = key.0;
            let names: Vec<&str> = columns.iter().map(|(name, _)| *name).collect();
            let mut sql = Sql::new("SELECT ");
            sql.push(&names.join(", ")).push(" FROM ").push(table);
            in_range(&mut sql, tier, id, from, to);
            sql.push(" ORDER BY ").push(key);
            let mut points = Vec::new();
            for mut row in st.db.fetch_packed(&sql, &columns, key).await? {
                let (day, hour) = if hourly {
                    let hour = row.take::<i64>("hour")?;
                    (day_of(hour), Some(hour))
                } else {
                    (row.take::<String>("day")?, None)
                };
                points.push(RollupRow::from_row(&mut row)?.point(day, hour));
            }
            Ok((points, false))
        }
    }
}

/// `GET /api/v1/systems/{id}/capacity`
pub async fn series(st: &AppState, p: &Params, id: &str, h: &HeaderMap) -> ApiResult<Response> {
    let choice = tiers::choose(st, p, id, &TABLES, ("resolution", RESOLUTIONS), 30).await?;
    let (requested, from, to) = (choice.requested, choice.from, choice.to);
    let (tier, points, truncated) = choice
        .read(|tier| tier_points(st, id, tier, from, to))
        .await?;
    let body = CapacitySeries {
        system_id: id.to_owned(),
        resolution: tier.to_owned(),
        tier: tier.to_owned(),
        requested: requested.to_owned(),
        from: rfc3339(from),
        from_ms: from,
        to: rfc3339(to),
        to_ms: to,
        truncated,
        points,
    };
    Ok(json_ok(h, &body))
}
