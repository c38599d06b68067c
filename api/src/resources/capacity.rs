//! Capacity: one system's history (`GET /api/v1/systems/{id}/capacity`, from the finest storage
//! tier that covers the range: raw samples, hourly or daily rollups), and the fleet's totals now
//! (`GET /api/v1/capacity/summary`) and per day or week (`GET /api/v1/capacity/history`, also
//! exported as CSV and XLSX by [`super::export`]), grouped by one or two tag keys with subtotals,
//! and a forecast per group.

use schemars::JsonSchema;
use serde::Serialize;
use warp::http::HeaderMap;
use warp::reply::Response;

use super::forecast::{Outlook, Trend};
use super::history_cache::{GroupKey, Grouping, Tally, View};
use super::tiers::{self, HOUR_MS, MAX_RAW_POINTS};
use super::{DAY_MS, day_name, day_of, now, rfc3339};
use crate::db::Sql;
use crate::http::{ApiError, ApiResult, Params, json_ok, percent};
use crate::routes::{RESOLUTIONS, WEEK_VALUES};
use crate::state::AppState;

/// Label of the systems without a tag.
const NONE_LABEL: &str = "(none)";

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
    struct DailyRow {
        day: String,
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

crate::row_struct! {
    struct HourlyRow {
        hour: i64,
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

fn rollup_point(
    at: i64,
    (samples, used_min, used_max, used_sum): (i64, i64, i64, f64),
    (total, used, free): (i64, i64, i64),
    day: String,
    hour: Option<i64>,
) -> CapacityPoint {
    CapacityPoint {
        at: rfc3339(at),
        at_ms: at,
        total_bytes: total,
        used_bytes: used,
        free_bytes: free,
        used_pct: percent(Some(used), Some(total)),
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
                "SELECT observed_at, total_bytes, used_bytes, free_bytes FROM capacity_samples WHERE system_id = ",
            );
            sql.bind(id)
                .push(" AND observed_at >= ")
                .bind(from)
                .push(" AND observed_at <= ")
                .bind(to)
                .push(" ORDER BY observed_at LIMIT ")
                .bind(MAX_RAW_POINTS + 1);
            let mut rows = st.db.fetch_all_as::<SampleRow>(&sql).await?;
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
        "hourly" => {
            let mut sql = Sql::new(
                "SELECT hour, samples, used_min, used_max, used_sum, last_at, total_bytes, used_bytes, free_bytes \
                 FROM capacity_hourly WHERE system_id = ",
            );
            sql.bind(id)
                .push(" AND hour >= ")
                .bind(from.div_euclid(HOUR_MS) * HOUR_MS)
                .push(" AND hour <= ")
                .bind(to)
                .push(" ORDER BY hour");
            let rows = st.db.fetch_all_as::<HourlyRow>(&sql).await?;
            let points = rows
                .into_iter()
                .map(|r| {
                    rollup_point(
                        r.last_at,
                        (r.samples, r.used_min, r.used_max, r.used_sum),
                        (r.total_bytes, r.used_bytes, r.free_bytes),
                        day_of(r.hour),
                        Some(r.hour),
                    )
                })
                .collect();
            Ok((points, false))
        }
        _ => {
            let mut sql = Sql::new(
                "SELECT day, samples, used_min, used_max, used_sum, last_at, total_bytes, used_bytes, free_bytes \
                 FROM capacity_daily WHERE system_id = ",
            );
            sql.bind(id)
                .push(" AND day >= ")
                .bind(day_of(from))
                .push(" AND day <= ")
                .bind(day_of(to))
                .push(" ORDER BY day");
            let rows = st.db.fetch_all_as::<DailyRow>(&sql).await?;
            let points = rows
                .into_iter()
                .map(|r| {
                    rollup_point(
                        r.last_at,
                        (r.samples, r.used_min, r.used_max, r.used_sum),
                        (r.total_bytes, r.used_bytes, r.free_bytes),
                        r.day,
                        None,
                    )
                })
                .collect();
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

/// The grouping of a request: `group_by` and `subgroup_by` (which needs `group_by`).
pub(crate) fn grouping(p: &Params) -> ApiResult<Grouping> {
    let group_by = p.tag_key("group_by")?;
    let subgroup_by = p.tag_key("subgroup_by")?;
    if subgroup_by.is_some() && group_by.is_none() {
        return Err(ApiError::bad("subgroup_by needs group_by"));
    }
    Ok(Grouping {
        group_by,
        subgroup_by,
    })
}

/// Orders groups by value, the systems without the tag last (at each level).
fn key_order(k: &GroupKey) -> (bool, Option<&str>, bool, Option<&str>) {
    (k.0.is_none(), k.0.as_deref(), k.1.is_none(), k.1.as_deref())
}

/// A group's label: its value(s), `(none)` for a missing tag.
pub(crate) fn group_label(g: &Grouping, k: &GroupKey) -> String {
    let one = |v: &Option<String>| v.clone().unwrap_or_else(|| NONE_LABEL.into());
    if g.subgroup_by.is_some() {
        format!("{} / {}", one(&k.0), one(&k.1))
    } else {
        one(&k.0)
    }
}

/// Where a group's used capacity is heading: a line through its summed daily series.
#[derive(Debug, Clone, Serialize, JsonSchema)]
pub struct GroupForecast {
    /// Daily points the line was fitted on.
    pub points_used: usize,
    pub trend: Trend,
    pub slope_bytes_per_day: Option<f64>,
    /// Days from today until used capacity reaches 80 % of the group's total (0: already there;
    /// null: not heading there).
    pub days_to_80_pct: Option<i64>,
    pub days_to_90_pct: Option<i64>,
    pub days_to_100_pct: Option<i64>,
    #[schemars(schema_with = "crate::openapi::date_or_null")]
    pub date_80_pct: Option<String>,
    #[schemars(schema_with = "crate::openapi::date_or_null")]
    pub date_90_pct: Option<String>,
    #[schemars(schema_with = "crate::openapi::date_or_null")]
    pub date_100_pct: Option<String>,
}

/// The forecast of a daily series (day number, totals), fitted on its last `days` days to today.
pub(crate) fn group_forecast(daily: &[(i64, Tally)], today: i64, days: i64) -> GroupForecast {
    let recent: Vec<&(i64, Tally)> = daily
        .iter()
        .filter(|(d, _)| *d > today - days && *d <= today)
        .collect();
    let points: Vec<(f64, f64)> = recent
        .iter()
        .map(|(d, t)| (*d as f64, t.used as f64))
        .collect();
    let last = recent.last().map(|(_, t)| t);
    let outlook = Outlook::new(&points, last.map(|t| t.total), last.map(|t| t.used), today);
    let days_to = |f: f64| outlook.reach(f).map(|d| (d - today).max(0));
    GroupForecast {
        points_used: outlook.points_used,
        trend: outlook.trend,
        slope_bytes_per_day: outlook.fit.as_ref().map(|f| f.slope),
        days_to_80_pct: days_to(0.8),
        days_to_90_pct: days_to(0.9),
        days_to_100_pct: days_to(1.0),
        date_80_pct: outlook.reach(0.8).map(|d| day_name(d.max(today))),
        date_90_pct: outlook.reach(0.9).map(|d| day_name(d.max(today))),
        date_100_pct: outlook.reach(1.0).map(|d| day_name(d.max(today))),
    }
}

/// Capacity of the fleet, or of the systems with one value of a tag (or pair of tags).
#[derive(Debug, Clone, Serialize, JsonSchema)]
pub struct Totals {
    /// The `group_by` value; null for the whole fleet and for the systems without the tag.
    pub key: Option<String>,
    /// The `subgroup_by` value (groups of a two-level grouping only; null: without the tag).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub subkey: Option<Option<String>>,
    pub label: String,
    pub systems: i64,
    pub systems_with_capacity: i64,
    pub total_bytes: i64,
    pub used_bytes: i64,
    pub free_bytes: i64,
    pub used_pct: Option<f64>,
    /// From the group's summed daily rollups (the fleet's for `overall`).
    pub forecast: GroupForecast,
}

/// `GET /api/v1/capacity/summary`
#[derive(Debug, Clone, Serialize, JsonSchema)]
pub struct CapacitySummary {
    pub group_by: Option<String>,
    pub subgroup_by: Option<String>,
    /// The enabled systems (removed and disabled ones are left out).
    pub overall: Totals,
    /// Named groups by key, then the systems without the tag (by pair with `subgroup_by`).
    pub groups: Vec<Totals>,
    /// With `subgroup_by`: one per `group_by` value, the sum of its groups.
    pub subtotals: Vec<Totals>,
}

/// The current totals of a grouping's groups, subtotals and fleet, from the fleet cache, each
/// with its forecast: what the summary and the XLSX report show.
pub(crate) struct Report {
    pub grouping: Grouping,
    pub overall: Totals,
    pub groups: Vec<Totals>,
    pub subtotals: Vec<Totals>,
}

pub(crate) async fn report(st: &AppState, p: &Params) -> ApiResult<Report> {
    let g = grouping(p)?;
    let days = p.int("forecast_days", 90, 2, 3650)?;
    let fleet = st.fleet.get(&st.db).await?;
    let view = st.history.view(st, &g).await?;
    let today = view.today;
    // The daily series of each of the view's groups, of each subtotal and of the fleet.
    let from = today - days + 1;
    let mut by_group: std::collections::HashMap<GroupKey, Vec<(i64, Tally)>> = Default::default();
    let mut by_first: std::collections::HashMap<Option<String>, Vec<(i64, Tally)>> =
        Default::default();
    let mut fleet_days: Vec<(i64, Tally)> = Vec::new();
    for d in from..=today {
        let mut all = Tally::default();
        let mut firsts: std::collections::HashMap<&Option<String>, Tally> = Default::default();
        for (i, k) in view.groups().iter().enumerate() {
            if let Some(t) = view.tally(i, d) {
                by_group.entry(k.clone()).or_default().push((d, *t));
                firsts.entry(&k.0).or_default().merge(t);
                all.merge(t);
            }
        }
        for (k, t) in firsts {
            by_first.entry(k.clone()).or_default().push((d, t));
        }
        if all.systems > 0 {
            fleet_days.push((d, all));
        }
    }
    let forecast_of = |series: Option<&Vec<(i64, Tally)>>| {
        group_forecast(series.map_or(&[][..], |s| &s[..]), today, days)
    };
    let mut overall = Tally::default();
    let mut groups: std::collections::BTreeMap<GroupKey, Tally> = Default::default();
    for e in fleet.entries.iter().filter(|e| e.counted()) {
        let (t, u, f) = (e.row.total_bytes, e.row.used_bytes, e.row.free_bytes);
        overall.add(t, u, f);
        if let Some(k) = &g.group_by {
            let key = (e.tag(k), g.subgroup_by.as_deref().and_then(|s| e.tag(s)));
            groups.entry(key).or_default().add(t, u, f);
        }
    }
    let totals = |key: Option<String>,
                  subkey: Option<Option<String>>,
                  label: String,
                  t: &Tally,
                  forecast: GroupForecast| Totals {
        key,
        subkey,
        label,
        systems: t.systems,
        systems_with_capacity: t.with_capacity,
        total_bytes: t.total,
        used_bytes: t.used,
        free_bytes: t.free,
        used_pct: t.used_pct(),
        forecast,
    };
    let mut keys: Vec<&GroupKey> = groups.keys().collect();
    keys.sort_by(|a, b| key_order(a).cmp(&key_order(b)));
    let two = g.subgroup_by.is_some();
    let list: Vec<Totals> = keys
        .iter()
        .map(|k| {
            totals(
                k.0.clone(),
                two.then(|| k.1.clone()),
                group_label(&g, k),
                &groups[*k],
                forecast_of(by_group.get(*k)),
            )
        })
        .collect();
    let mut subtotals = Vec::new();
    if two {
        let mut firsts: std::collections::BTreeMap<(bool, Option<String>), Tally> =
            Default::default();
        for (k, t) in &groups {
            firsts
                .entry((k.0.is_none(), k.0.clone()))
                .or_default()
                .merge(t);
        }
        for ((_, k), t) in firsts {
            let label = k.clone().unwrap_or_else(|| NONE_LABEL.into());
            let forecast = forecast_of(by_first.get(&k));
            subtotals.push(totals(k, None, label, &t, forecast));
        }
    }
    Ok(Report {
        overall: totals(
            None,
            None,
            NONE_LABEL.into(),
            &overall,
            forecast_of(Some(&fleet_days)),
        ),
        grouping: g,
        groups: list,
        subtotals,
    })
}

/// `GET /api/v1/capacity/summary`
pub async fn summary(st: &AppState, p: &Params, h: &HeaderMap) -> ApiResult<Response> {
    let r = report(st, p).await?;
    let body = CapacitySummary {
        group_by: r.grouping.group_by,
        subgroup_by: r.grouping.subgroup_by,
        overall: r.overall,
        groups: r.groups,
        subtotals: r.subtotals,
    };
    Ok(json_ok(h, &body))
}

/// Which rows of a history a series is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum Level {
    /// One value of `group_by` (or pair with `subgroup_by`); the whole fleet without grouping.
    Group,
    /// The sum of the groups with one value of `group_by` (two-level groupings only).
    Subtotal,
    /// The sum of all groups.
    Total,
}

/// One point of a history: a day's totals, or a week's (its last day's or its days' average).
#[derive(Debug, Clone)]
pub(crate) struct Bucket {
    /// The day, or the first day of the week (a Monday).
    pub day: i64,
    /// Hourly points: the start of the hour (ms).
    pub hour: Option<i64>,
    /// Daily points the value is made of.
    pub days: i64,
    pub tally: Tally,
}

/// The points of one group, subtotal or the total.
pub(crate) struct GroupSeries {
    pub key: Option<String>,
    pub subkey: Option<Option<String>>,
    pub label: String,
    pub level: Level,
    pub points: Vec<Bucket>,
}

/// The fleet's history per group in a range; shared with the exports.
pub(crate) struct History {
    pub grouping: Grouping,
    pub from: i64,
    pub to: i64,
    /// `daily`, or `hourly` for short ranges.
    pub tier: &'static str,
    /// `day`, `week`, or `hour` (hourly tier).
    pub interval: &'static str,
    pub week_value: Option<&'static str>,
    pub series: Vec<GroupSeries>,
    pub subtotals: Vec<GroupSeries>,
    pub total: GroupSeries,
}

/// A `group_by` value in group order (the systems without the tag last).
type FirstKey = (bool, Option<String>);

/// Monday of the ISO week of day number `d`.
fn week_of(d: i64) -> i64 {
    d - (d + 3).rem_euclid(7)
}

/// Daily totals into points: one per day, or per week with its last day's or average values.
fn bucket(days: &[(i64, Tally)], weekly: Option<&str>) -> Vec<Bucket> {
    let Some(how) = weekly else {
        return days
            .iter()
            .map(|(d, t)| Bucket {
                day: *d,
                hour: None,
                days: 1,
                tally: *t,
            })
            .collect();
    };
    let mut out: Vec<Bucket> = Vec::new();
    let mut i = 0;
    while i < days.len() {
        let week = week_of(days[i].0);
        let mut j = i;
        while j < days.len() && week_of(days[j].0) == week {
            j += 1;
        }
        let part = &days[i..j];
        let n = part.len() as i64;
        let tally = if how == "avg" {
            let avg = |f: fn(&Tally) -> i64| -> i64 {
                let sum: i128 = part.iter().map(|(_, t)| i128::from(f(t))).sum();
                ((sum as f64) / (n as f64)).round() as i64
            };
            Tally {
                systems: avg(|t| t.systems),
                carried: avg(|t| t.carried),
                with_capacity: avg(|t| t.with_capacity),
                total: avg(|t| t.total),
                used: avg(|t| t.used),
                free: avg(|t| t.free),
            }
        } else {
            part[part.len() - 1].1
        };
        out.push(Bucket {
            day: week,
            hour: None,
            days: n,
            tally,
        });
        i = j;
    }
    out
}

/// The series of a grouping's groups (each with its values by slot: a day number or an hour's
/// ms), then the subtotals per `group_by` value (two-level groupings) and the total, points
/// made by `points`.
fn assemble(
    g: &Grouping,
    mut groups: Vec<(GroupKey, Vec<(i64, Tally)>)>,
    points: impl Fn(&[(i64, Tally)]) -> Vec<Bucket>,
) -> (Vec<GroupSeries>, Vec<GroupSeries>, GroupSeries) {
    groups.retain(|(_, v)| !v.is_empty());
    groups.sort_by(|a, b| key_order(&a.0).cmp(&key_order(&b.0)));
    let two = g.subgroup_by.is_some();
    let mut series = Vec::new();
    let mut firsts: std::collections::BTreeMap<FirstKey, std::collections::BTreeMap<i64, Tally>> =
        Default::default();
    let mut total: std::collections::BTreeMap<i64, Tally> = Default::default();
    for (key, values) in &groups {
        for (d, t) in values {
            total.entry(*d).or_default().merge(t);
            if two {
                firsts
                    .entry((key.0.is_none(), key.0.clone()))
                    .or_default()
                    .entry(*d)
                    .or_default()
                    .merge(t);
            }
        }
        series.push(GroupSeries {
            key: key.0.clone(),
            subkey: two.then(|| key.1.clone()),
            label: if g.group_by.is_some() {
                group_label(g, key)
            } else {
                NONE_LABEL.into()
            },
            level: Level::Group,
            points: points(values),
        });
    }
    let subtotals = firsts
        .into_iter()
        .map(|((_, key), sum)| {
            let values: Vec<(i64, Tally)> = sum.into_iter().collect();
            GroupSeries {
                label: key.clone().unwrap_or_else(|| NONE_LABEL.into()),
                key,
                subkey: None,
                level: Level::Subtotal,
                points: points(&values),
            }
        })
        .collect();
    let total: Vec<(i64, Tally)> = total.into_iter().collect();
    let total = GroupSeries {
        key: None,
        subkey: None,
        label: "All systems".into(),
        level: Level::Total,
        points: points(&total),
    };
    (series, subtotals, total)
}

/// A system's hourly rollup stands in for the hours after it that have none for at most this
/// many hours (the current hour before its first poll, a short outage).
const CARRY_HOURS: i64 = 24;
/// The longest range the fleet history sums hourly rollups for (`resolution=hourly`).
const MAX_HOURLY_DAYS: i64 = 31;
/// `resolution=auto` sums hourly rollups for ranges up to this long.
const AUTO_HOURLY_MS: i64 = 2 * DAY_MS;
/// Systems per query of the hourly fleet history.
const HOURLY_CHUNK: usize = 500;

crate::row_struct! {
    struct FleetHourRow {
        system_id: String,
        hour: i64,
        total_bytes: i64,
        used_bytes: i64,
        free_bytes: i64,
    }
}

/// The fleet's hourly totals per group in `[from, to]`, from the hourly rollups (each system's
/// last rollup carried for up to [`CARRY_HOURS`]); `None` when the range has none.
async fn hourly_groups(
    st: &AppState,
    g: &Grouping,
    from: i64,
    to: i64,
) -> ApiResult<Option<Vec<(GroupKey, Vec<(i64, Tally)>)>>> {
    let fleet = st.fleet.get(&st.db).await?;
    let first = from.div_euclid(HOUR_MS);
    let last = to.min(now()).div_euclid(HOUR_MS);
    if last < first {
        return Ok(None);
    }
    let hours = (last - first + 1) as usize;
    let (keys, of) = super::history_cache::assign(&fleet, g);
    let mut groups: Vec<(GroupKey, Vec<Tally>)> = keys
        .into_iter()
        .map(|k| (k, vec![Tally::default(); hours]))
        .collect();
    let mut ids: Vec<&str> = of.keys().copied().collect();
    ids.sort_unstable();
    let mut any = false;
    for chunk in ids.chunks(HOURLY_CHUNK) {
        let mut sql = Sql::new(
            "SELECT system_id, hour, total_bytes, used_bytes, free_bytes FROM capacity_hourly WHERE system_id IN ",
        );
        sql.bind_list(chunk.iter().copied())
            .push(" AND hour >= ")
            .bind((first - CARRY_HOURS) * HOUR_MS)
            .push(" AND hour <= ")
            .bind(last * HOUR_MS)
            .push(" ORDER BY system_id, hour");
        let rows = st.db.fetch_all_as::<FleetHourRow>(&sql).await?;
        any |= rows.iter().any(|r| r.hour >= first * HOUR_MS);
        for (i, r) in rows.iter().enumerate() {
            let Some(&gi) = of.get(r.system_id.as_str()) else {
                continue;
            };
            let h = r.hour.div_euclid(HOUR_MS);
            let next = rows
                .get(i + 1)
                .filter(|n| n.system_id == r.system_id)
                .map_or(i64::MAX, |n| n.hour.div_euclid(HOUR_MS));
            let end = next.min(h + CARRY_HOURS + 1).min(last + 1);
            for t in h.max(first)..end {
                let tally = &mut groups[gi].1[(t - first) as usize];
                tally.add(Some(r.total_bytes), Some(r.used_bytes), Some(r.free_bytes));
                if t > h {
                    tally.carried += 1;
                }
            }
        }
    }
    if !any {
        return Ok(None);
    }
    Ok(Some(
        groups
            .into_iter()
            .map(|(k, v)| {
                let values = v
                    .into_iter()
                    .enumerate()
                    .filter(|(_, t)| t.systems > 0)
                    .map(|(i, t)| ((first + i as i64) * HOUR_MS, t))
                    .collect();
                (k, values)
            })
            .collect(),
    ))
}

pub(crate) async fn history_series(st: &AppState, p: &Params) -> ApiResult<History> {
    let g = grouping(p)?;
    let interval = p.one_of("interval", crate::routes::INTERVALS, "day")?;
    let week_value = (interval == "week")
        .then(|| p.one_of("week_value", WEEK_VALUES, "last"))
        .transpose()?;
    let resolution = p.one_of("resolution", crate::routes::HISTORY_RESOLUTIONS, "auto")?;
    let (from, to) = request_range(p, 90, async {
        let view = st.history.view(st, &g).await?;
        Ok(view.first_day().map(|d| d * DAY_MS))
    })
    .await?;
    if resolution == "hourly" && interval == "week" {
        return Err(ApiError::bad(
            "interval=week needs daily points (resolution=daily or auto)",
        ));
    }
    if resolution == "hourly" && to - from > MAX_HOURLY_DAYS * DAY_MS {
        return Err(ApiError::bad(format!(
            "resolution=hourly covers at most {MAX_HOURLY_DAYS} days"
        )));
    }
    let hourly = resolution == "hourly"
        || (resolution == "auto" && interval == "day" && to - from <= AUTO_HOURLY_MS);
    if hourly && let Some(groups) = hourly_groups(st, &g, from, to).await? {
        let points = |values: &[(i64, Tally)]| {
            values
                .iter()
                .map(|(h, t)| Bucket {
                    day: h.div_euclid(DAY_MS),
                    hour: Some(*h),
                    days: 1,
                    tally: *t,
                })
                .collect()
        };
        let (series, subtotals, total) = assemble(&g, groups, points);
        return Ok(History {
            grouping: g,
            from,
            to,
            tier: "hourly",
            interval: "hour",
            week_value: None,
            series,
            subtotals,
            total,
        });
    }
    let view: View = st.history.view(st, &g).await?;
    let (first, last) = (
        from.div_euclid(DAY_MS),
        to.div_euclid(DAY_MS).min(view.today),
    );
    let groups: Vec<(GroupKey, Vec<(i64, Tally)>)> = view
        .groups()
        .iter()
        .enumerate()
        .map(|(i, key)| {
            let days = (first..=last)
                .filter_map(|d| view.tally(i, d).map(|t| (d, *t)))
                .collect();
            (key.clone(), days)
        })
        .collect();
    let (series, subtotals, total) = assemble(&g, groups, |days| bucket(days, week_value));
    Ok(History {
        grouping: g,
        from,
        to,
        tier: "daily",
        interval,
        week_value,
        series,
        subtotals,
        total,
    })
}

/// `GET /api/v1/capacity/history`
#[derive(Debug, Clone, Serialize, JsonSchema)]
pub struct CapacityHistory {
    pub group_by: Option<String>,
    pub subgroup_by: Option<String>,
    /// The storage tier the totals come from: `daily` rollups, or `hourly` ones for a range of
    /// at most 2 days (`resolution=auto`) or 31 days (`resolution=hourly`).
    #[schemars(schema_with = "crate::openapi::tier")]
    pub tier: String,
    /// `day`, `week`, or `hour` (hourly tier).
    pub interval: String,
    /// Weekly points: `last` (the week's last day) or `avg` (the average of its days).
    pub week_value: Option<String>,
    pub from: String,
    pub from_ms: i64,
    pub to: String,
    pub to_ms: i64,
    /// Named groups by key, then the systems without the tag.
    pub series: Vec<HistorySeries>,
    /// With `subgroup_by`: the sum of each `group_by` value's groups.
    pub subtotals: Vec<HistorySeries>,
    /// The sum of all groups.
    pub total: HistorySeries,
}

/// The daily totals of one group.
#[derive(Debug, Clone, Serialize, JsonSchema)]
pub struct HistorySeries {
    pub key: Option<String>,
    /// The `subgroup_by` value (groups of a two-level grouping only).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub subkey: Option<Option<String>>,
    pub label: String,
    pub level: Level,
    pub points: Vec<HistoryPoint>,
}

/// A group's totals on one day (or week).
#[derive(Debug, Clone, Serialize, JsonSchema)]
pub struct HistoryPoint {
    /// The day, or the Monday of the week (for an hour, its day).
    pub day: String,
    /// Hourly points: the start of the hour.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub hour: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub hour_ms: Option<i64>,
    /// Values the point is made of (1 for a day or an hour, or the week's days in the range).
    pub days: i64,
    pub systems: i64,
    /// Systems counted with an earlier day's rollup.
    pub carried_forward: i64,
    pub total_bytes: i64,
    pub used_bytes: i64,
    pub free_bytes: i64,
    pub used_pct: Option<f64>,
}

fn history_json(s: &GroupSeries) -> HistorySeries {
    HistorySeries {
        key: s.key.clone(),
        subkey: s.subkey.clone(),
        label: s.label.clone(),
        level: s.level,
        points: s
            .points
            .iter()
            .map(|b| HistoryPoint {
                day: day_name(b.day),
                hour: b.hour.map(rfc3339),
                hour_ms: b.hour,
                days: b.days,
                systems: b.tally.systems,
                carried_forward: b.tally.carried,
                total_bytes: b.tally.total,
                used_bytes: b.tally.used,
                free_bytes: b.tally.free,
                used_pct: b.tally.used_pct(),
            })
            .collect(),
    }
}

/// `GET /api/v1/capacity/history`
pub async fn history(st: &AppState, p: &Params, h: &HeaderMap) -> ApiResult<Response> {
    let history = history_series(st, p).await?;
    let body = CapacityHistory {
        group_by: history.grouping.group_by.clone(),
        subgroup_by: history.grouping.subgroup_by.clone(),
        tier: history.tier.into(),
        interval: history.interval.into(),
        week_value: history.week_value.map(str::to_owned),
        from: rfc3339(history.from),
        from_ms: history.from,
        to: rfc3339(history.to),
        to_ms: history.to,
        series: history.series.iter().map(history_json).collect(),
        subtotals: history.subtotals.iter().map(history_json).collect(),
        total: history_json(&history.total),
    };
    Ok(json_ok(h, &body))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn t(used: i64, total: i64) -> Tally {
        Tally {
            systems: 1,
            carried: 0,
            with_capacity: 1,
            total,
            used,
            free: total - used,
        }
    }

    #[test]
    fn weeks_take_the_last_day_or_the_average_never_the_sum() {
        // Day 4 (1970-01-05) is a Monday.
        let days: Vec<(i64, Tally)> = (4..=12).map(|d| (d, t(d * 10, 1000))).collect();
        let last = bucket(&days, Some("last"));
        assert_eq!(last.len(), 2);
        assert_eq!((last[0].day, last[0].days, last[0].tally.used), (4, 7, 100));
        assert_eq!(
            (last[1].day, last[1].days, last[1].tally.used),
            (11, 2, 120)
        );
        let avg = bucket(&days, Some("avg"));
        assert_eq!(avg[0].tally.used, 70);
        assert_eq!(avg[0].tally.total, 1000);
        assert_eq!(avg[1].tally.used, 115);
        assert_eq!(bucket(&days, None).len(), 9);
    }
}
