//! The fleet's capacity now (`GET /api/v1/capacity/summary`, and the XLSX report): the totals of
//! the fleet, of each group and of each subtotal, from the fleet cache, each with the forecast of
//! its summed daily series.

use schemars::JsonSchema;
use serde::Serialize;
use warp::http::HeaderMap;
use warp::reply::Response;

use super::grouping::{NONE_LABEL, group_label, grouping, key_order};
use crate::http::{ApiResult, Params, json_ok};
use crate::resources::day_name;
use crate::resources::forecast::{Outlook, Trend};
use crate::resources::history_cache::{GroupKey, Grouping, Tally};
use crate::state::AppState;

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
