//! `GET /api/v1/systems/{id}/forecast`: a least-squares line through the daily used capacity and
//! the dates it reaches 80 %, 90 % and 100 % of the current total.

use schemars::JsonSchema;
use serde::Serialize;
use warp::http::HeaderMap;
use warp::reply::Response;

use super::{DAY_MS, day_index, day_name, now, require_system};
use crate::db::Sql;
use crate::http::{ApiResult, Params, json_ok, percent};
use crate::state::AppState;

/// Fewest daily points a forecast is fitted on.
pub const MIN_FORECAST_POINTS: usize = 3;

/// Where used capacity is heading.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum Trend {
    Growing,
    Flat,
    Shrinking,
    InsufficientData,
}

/// `GET /api/v1/systems/{id}/forecast`
#[derive(Debug, Clone, Serialize, JsonSchema)]
pub struct Forecast {
    pub system_id: String,
    /// Days of rollups asked for.
    pub days: i64,
    /// Daily points the line was fitted on.
    pub points_used: usize,
    /// Fewest points a line is fitted on (fewer: `insufficient_data`).
    pub min_points: usize,
    pub trend: Trend,
    pub slope_bytes_per_day: Option<f64>,
    pub total_bytes: Option<i64>,
    pub used_bytes: Option<i64>,
    pub used_pct: Option<f64>,
    /// The day used capacity reaches 80 % (null when it is not heading there).
    #[schemars(schema_with = "crate::openapi::date_or_null")]
    pub date_80_pct: Option<String>,
    /// The day used capacity reaches 90 % (null when it is not heading there).
    #[schemars(schema_with = "crate::openapi::date_or_null")]
    pub date_90_pct: Option<String>,
    /// The day used capacity reaches 100 % (null when it is not heading there).
    #[schemars(schema_with = "crate::openapi::date_or_null")]
    pub date_100_pct: Option<String>,
    pub history: Vec<HistoryDay>,
    pub projection: Vec<ProjectedDay>,
}

/// A fitted day: the day's average used capacity.
#[derive(Debug, Clone, Serialize, JsonSchema)]
pub struct HistoryDay {
    pub day: String,
    pub used_bytes: i64,
    pub total_bytes: i64,
}

/// A day of the projection (weekly beyond 120 days).
#[derive(Debug, Clone, Serialize, JsonSchema)]
pub struct ProjectedDay {
    pub day: String,
    pub used_bytes: i64,
    pub used_pct: f64,
}

/// Result of fitting a line to daily used capacity.
#[derive(Debug, Clone, PartialEq)]
pub struct Fit {
    pub slope: f64,
    pub intercept: f64,
}

/// Least-squares line through `(x, y)` points; `None` with fewer than two distinct x.
pub fn least_squares(points: &[(f64, f64)]) -> Option<Fit> {
    let n = points.len() as f64;
    if points.len() < 2 {
        return None;
    }
    let mx = points.iter().map(|p| p.0).sum::<f64>() / n;
    let my = points.iter().map(|p| p.1).sum::<f64>() / n;
    let sxx: f64 = points.iter().map(|p| (p.0 - mx).powi(2)).sum();
    let sxy: f64 = points.iter().map(|p| (p.0 - mx) * (p.1 - my)).sum();
    if sxx <= 0.0 || !sxx.is_finite() || !sxy.is_finite() {
        return None;
    }
    let slope = sxy / sxx;
    Some(Fit {
        slope,
        intercept: my - slope * mx,
    })
}

/// What a line through daily used capacity says: the trend, and the day each share of the total
/// is reached. The one place both forecasts (a system's, [`forecast`], and a group's in the
/// capacity summary) are worked out.
#[derive(Debug, Clone)]
pub struct Outlook {
    pub fit: Option<Fit>,
    pub trend: Trend,
    /// The total the shares are of (the last point's), when positive.
    pub total: Option<i64>,
    pub used_now: Option<i64>,
    /// The day number of the last point.
    pub last_x: Option<i64>,
    pub points_used: usize,
    today: i64,
}

impl Outlook {
    /// Fits `points` (day number, used bytes), in day order, when there are at least
    /// [`MIN_FORECAST_POINTS`]; `total` and `used_now` are the last point's.
    pub fn new(
        points: &[(f64, f64)],
        total: Option<i64>,
        used_now: Option<i64>,
        today: i64,
    ) -> Outlook {
        let fit = if points.len() >= MIN_FORECAST_POINTS {
            least_squares(points)
        } else {
            None
        };
        let total = total.filter(|t| *t > 0);
        let last_x = points.last().map(|p| p.0 as i64);
        let mut trend = Trend::InsufficientData;
        if let (Some(fit), Some(total), Some(_)) = (&fit, total, last_x) {
            let eps = (total as f64 * 1e-6).max(1.0);
            trend = if fit.slope > eps {
                Trend::Growing
            } else if fit.slope < -eps {
                Trend::Shrinking
            } else {
                Trend::Flat
            };
        }
        Outlook {
            fit,
            trend,
            total,
            used_now,
            last_x,
            points_used: points.len(),
            today,
        }
    }

    /// The day number used capacity reaches `fraction` of the total: the last point's day when
    /// it is there already, `None` when it is not heading there (or not within 100 years).
    pub fn reach(&self, fraction: f64) -> Option<i64> {
        let (Some(fit), Some(total), Some(last_x)) = (&self.fit, self.total, self.last_x) else {
            return None;
        };
        let target = total as f64 * fraction;
        if self.used_now.map(|u| u as f64).unwrap_or(0.0) >= target {
            return Some(last_x);
        }
        if self.trend != Trend::Growing {
            return None;
        }
        let x = ((target - fit.intercept) / fit.slope).ceil();
        if !x.is_finite() || x > (self.today + 36_500) as f64 {
            return None;
        }
        Some((x as i64).max(last_x))
    }
}

crate::row_struct! {
    struct ForecastRow {
        day: String,
        samples: i64,
        used_sum: f64,
        used_bytes: i64,
        total_bytes: i64,
    }
}

/// `GET /api/v1/systems/{id}/forecast`
pub async fn forecast(st: &AppState, p: &Params, id: &str, h: &HeaderMap) -> ApiResult<Response> {
    let days = p.int("days", 90, 2, 3650)?;
    let horizon = p.int("horizon", 365, 1, 3650)?;
    require_system(st, id).await?;
    let today = now().div_euclid(DAY_MS);
    let mut sql = Sql::new(
        "SELECT day, samples, used_sum, used_bytes, total_bytes FROM capacity_daily WHERE system_id = ",
    );
    sql.bind(id)
        .push(" AND day >= ")
        .bind(day_name(today - days + 1))
        .push(" ORDER BY day");
    let rows = st.db.fetch_all_as::<ForecastRow>(&sql).await?;
    let mut history = Vec::new();
    let mut points = Vec::new();
    for r in &rows {
        let Some(x) = day_index(&r.day) else {
            continue;
        };
        let used = if r.samples > 0 {
            r.used_sum / r.samples as f64
        } else {
            r.used_bytes as f64
        };
        points.push((x as f64, used));
        history.push(HistoryDay {
            day: r.day.clone(),
            used_bytes: used.round() as i64,
            total_bytes: r.total_bytes,
        });
    }
    let last = rows.last();
    let total = last.map(|r| r.total_bytes);
    let used_now = last.map(|r| r.used_bytes);
    let outlook = Outlook::new(&points, total, used_now, today);
    let mut projection = Vec::new();
    if let (Some(fit), Some(total), Some(last_x)) = (&outlook.fit, outlook.total, outlook.last_x) {
        let total_f = total as f64;
        let step = if horizon <= 120 { 1 } else { 7 };
        let mut x = last_x;
        while x <= today + horizon {
            let y = (fit.intercept + fit.slope * x as f64).max(0.0);
            projection.push(ProjectedDay {
                day: day_name(x),
                used_bytes: y.round() as i64,
                used_pct: (y * 10_000.0 / total_f).round() / 100.0,
            });
            x += step;
        }
    }
    let (trend, fit) = (outlook.trend, outlook.fit.clone());
    let date_80_pct = outlook.reach(0.8).map(day_name);
    let date_90_pct = outlook.reach(0.9).map(day_name);
    let date_100_pct = outlook.reach(1.0).map(day_name);
    let body = Forecast {
        system_id: id.to_owned(),
        days,
        points_used: outlook.points_used,
        min_points: MIN_FORECAST_POINTS,
        trend,
        slope_bytes_per_day: fit.as_ref().map(|f| f.slope),
        total_bytes: total,
        used_bytes: used_now,
        used_pct: percent(used_now, total),
        date_80_pct,
        date_90_pct,
        date_100_pct,
        history,
        projection,
    };
    Ok(json_ok(h, &body))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn least_squares_fits_a_line() {
        let fit = least_squares(&[(0.0, 1.0), (1.0, 3.0), (2.0, 5.0)]).expect("fit");
        assert!((fit.slope - 2.0).abs() < 1e-9);
        assert!((fit.intercept - 1.0).abs() < 1e-9);
        assert!(least_squares(&[(1.0, 1.0)]).is_none());
        assert!(least_squares(&[(1.0, 1.0), (1.0, 2.0)]).is_none());
    }

    #[test]
    fn outlook_reaches_shares_of_the_total() {
        // 10, 12, 14 of 100 on days 100..=102: +2 a day.
        let points = [(100.0, 10.0), (101.0, 12.0), (102.0, 14.0)];
        let o = Outlook::new(&points, Some(100), Some(14), 102);
        assert_eq!(o.trend, Trend::Growing);
        // 80 = 10 + 2 (x - 100) at x = 135.
        assert_eq!(o.reach(0.8), Some(135));
        assert_eq!(o.reach(1.0), Some(145));
        // Already there: the last day.
        assert_eq!(o.reach(0.1), Some(102));
        // Too few points, or no total: nothing.
        let few = Outlook::new(&points[..2], Some(100), Some(12), 102);
        assert_eq!((few.trend, few.reach(0.9)), (Trend::InsufficientData, None));
        let flat = Outlook::new(&[(1.0, 5.0), (2.0, 5.0), (3.0, 5.0)], Some(100), Some(5), 3);
        assert_eq!((flat.trend, flat.reach(0.9)), (Trend::Flat, None));
    }
}
