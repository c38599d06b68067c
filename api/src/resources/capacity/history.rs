//! The fleet's capacity history (`GET /api/v1/capacity/history`, and the CSV and XLSX history
//! exports): per group, subtotal and total, one point per day or ISO week (its last day's or its
//! days' average, never a sum) from the cached daily totals, or per hour for short ranges
//! ([`super::hourly`]).

use schemars::JsonSchema;
use serde::Serialize;
use warp::http::HeaderMap;
use warp::reply::Response;

use super::grouping::{NONE_LABEL, group_label, grouping, key_order};
use super::hourly::{AUTO_HOURLY_MS, MAX_HOURLY_DAYS, hourly_groups};
use super::request_range;
use crate::http::{ApiError, ApiResult, Params, json_ok};
use crate::resources::history_cache::{GroupKey, Grouping, Tally, View};
use crate::resources::{DAY_MS, day_name, rfc3339};
use crate::routes::WEEK_VALUES;
use crate::state::AppState;

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
