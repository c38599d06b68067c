//! Capacity: one system's history (`GET /api/v1/systems/{id}/capacity`, raw samples or daily
//! rollups), and the fleet's totals now (`GET /api/v1/capacity/summary`) and per day
//! (`GET /api/v1/capacity/history`, also exported as CSV by [`super::export`]).

use std::collections::BTreeMap;

use schemars::JsonSchema;
use serde::Serialize;
use warp::http::HeaderMap;
use warp::reply::Response;

use super::{DAY_MS, day_index, day_of, range, require_system, rfc3339};
use crate::db::Sql;
use crate::fleet::{parse_tags, tag_text};
use crate::http::{ApiResult, Params, json_ok, percent};
use crate::routes::RESOLUTIONS;
use crate::state::AppState;

/// Most raw capacity samples one request returns.
const MAX_RAW_POINTS: i64 = 20_000;

/// A system's capacity over time.
#[derive(Debug, Clone, Serialize, JsonSchema)]
pub struct CapacitySeries {
    pub system_id: String,
    #[schemars(schema_with = "crate::openapi::resolution")]
    pub resolution: String,
    pub from: String,
    pub from_ms: i64,
    pub to: String,
    pub to_ms: i64,
    /// More raw samples matched than one response carries (the first ones are returned).
    pub truncated: bool,
    pub points: Vec<CapacityPoint>,
}

/// One raw sample, or one daily rollup (then with the `day` fields).
#[derive(Debug, Clone, Serialize, JsonSchema)]
pub struct CapacityPoint {
    /// The sample's time (for a day, its last sample's).
    pub at: String,
    pub at_ms: i64,
    pub total_bytes: i64,
    pub used_bytes: i64,
    pub free_bytes: i64,
    pub used_pct: Option<f64>,
    #[serde(flatten)]
    pub daily: Option<DailyStats>,
}

/// What a daily rollup adds to a point.
#[derive(Debug, Clone, Serialize, JsonSchema)]
pub struct DailyStats {
    /// The UTC day, `YYYY-MM-DD`.
    pub day: String,
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

/// `GET /api/v1/systems/{id}/capacity`
pub async fn series(st: &AppState, p: &Params, id: &str, h: &HeaderMap) -> ApiResult<Response> {
    let (from, to) = range(p, 30)?;
    let resolution = p.one_of("resolution", RESOLUTIONS, "raw")?;
    require_system(st, id).await?;
    let mut truncated = false;
    let points = if resolution == "raw" {
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
        truncated = rows.len() as i64 > MAX_RAW_POINTS;
        rows.truncate(MAX_RAW_POINTS as usize);
        rows.into_iter()
            .map(|r| CapacityPoint {
                at: rfc3339(r.observed_at),
                at_ms: r.observed_at,
                total_bytes: r.total_bytes,
                used_bytes: r.used_bytes,
                free_bytes: r.free_bytes,
                used_pct: percent(Some(r.used_bytes), Some(r.total_bytes)),
                daily: None,
            })
            .collect()
    } else {
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
        rows.into_iter()
            .map(|r| CapacityPoint {
                at: rfc3339(r.last_at),
                at_ms: r.last_at,
                total_bytes: r.total_bytes,
                used_bytes: r.used_bytes,
                free_bytes: r.free_bytes,
                used_pct: percent(Some(r.used_bytes), Some(r.total_bytes)),
                daily: Some(DailyStats {
                    used_avg: (r.samples > 0)
                        .then(|| (r.used_sum / r.samples as f64).round() as i64),
                    day: r.day,
                    samples: r.samples,
                    used_min: r.used_min,
                    used_max: r.used_max,
                }),
            })
            .collect()
    };
    let body = CapacitySeries {
        system_id: id.to_owned(),
        resolution: resolution.to_owned(),
        from: rfc3339(from),
        from_ms: from,
        to: rfc3339(to),
        to_ms: to,
        truncated,
        points,
    };
    Ok(json_ok(h, &body))
}

/// Capacity added up over a set of systems.
#[derive(Debug, Default, Clone)]
pub(crate) struct Tally {
    pub systems: i64,
    /// History only: systems whose value is their last earlier rollup (see [`CARRY_DAYS`]).
    pub carried: i64,
    pub with_capacity: i64,
    pub total: i64,
    pub used: i64,
    pub free: i64,
}

impl Tally {
    fn add(&mut self, total: Option<i64>, used: Option<i64>, free: Option<i64>) {
        self.systems += 1;
        if let Some(t) = total {
            self.with_capacity += 1;
            self.total = self.total.saturating_add(t);
            self.used = self.used.saturating_add(used.unwrap_or(0));
            self.free = self.free.saturating_add(free.unwrap_or(0));
        }
    }

    pub fn used_pct(&self) -> Option<f64> {
        percent(Some(self.used), Some(self.total))
    }

    fn totals(&self, key: Option<&str>) -> Totals {
        Totals {
            key: key.map(str::to_owned),
            label: key.unwrap_or("(none)").to_owned(),
            systems: self.systems,
            systems_with_capacity: self.with_capacity,
            total_bytes: self.total,
            used_bytes: self.used,
            free_bytes: self.free,
            used_pct: self.used_pct(),
        }
    }
}

/// Capacity of the fleet, or of the systems with one value of a tag.
#[derive(Debug, Clone, Serialize, JsonSchema)]
pub struct Totals {
    /// The tag value; null for the whole fleet and for the systems without the tag.
    pub key: Option<String>,
    pub label: String,
    pub systems: i64,
    pub systems_with_capacity: i64,
    pub total_bytes: i64,
    pub used_bytes: i64,
    pub free_bytes: i64,
    pub used_pct: Option<f64>,
}

/// `GET /api/v1/capacity/summary`
#[derive(Debug, Clone, Serialize, JsonSchema)]
pub struct CapacitySummary {
    pub group_by: Option<String>,
    pub overall: Totals,
    /// Named groups by key, then the systems without the tag.
    pub groups: Vec<Totals>,
}

/// `GET /api/v1/capacity/summary`
pub async fn summary(st: &AppState, p: &Params, h: &HeaderMap) -> ApiResult<Response> {
    let group_by = p.tag_key("group_by")?;
    let fleet = st.fleet.get(&st.db).await?;
    let mut overall = Tally::default();
    let mut groups: BTreeMap<Option<String>, Tally> = BTreeMap::new();
    for e in fleet.entries.iter().filter(|e| !e.removed) {
        let (t, u, f) = (e.row.total_bytes, e.row.used_bytes, e.row.free_bytes);
        overall.add(t, u, f);
        if let Some(key) = &group_by {
            groups.entry(e.tag(key)).or_default().add(t, u, f);
        }
    }
    // Named groups first (by key), the untagged group last.
    let mut list: Vec<Totals> = groups
        .iter()
        .filter(|(k, _)| k.is_some())
        .map(|(k, t)| t.totals(k.as_deref()))
        .collect();
    if let Some(none) = groups.get(&None) {
        list.push(none.totals(None));
    }
    let body = CapacitySummary {
        group_by,
        overall: overall.totals(None),
        groups: list,
    };
    Ok(json_ok(h, &body))
}

/// One group's daily totals, by day.
pub(crate) struct GroupDays {
    pub key: Option<String>,
    pub days: BTreeMap<String, Tally>,
}

/// A system's last daily rollup stands in for the days after it that have none (the system was
/// unreachable, or today's first poll has not come yet) for at most this many days, so that a
/// missing day does not show as a dip in the fleet's totals. Such points count the system in
/// `carried_forward`.
const CARRY_DAYS: i64 = 7;

/// One system's daily rollups in the range: (day number, total, used, free).
type DailyValues = Vec<(i64, Option<i64>, Option<i64>, Option<i64>)>;

crate::row_struct! {
    struct FleetDailyRow {
        system_id: String,
        day: String,
        total_bytes: Option<i64>,
        used_bytes: Option<i64>,
        free_bytes: Option<i64>,
        tags: Option<String>,
    }
}

/// The fleet's daily totals per group, and the range; shared with the CSV export.
pub(crate) struct History {
    pub group_by: Option<String>,
    pub from: i64,
    pub to: i64,
    pub series: Vec<GroupDays>,
}

pub(crate) async fn history_series(st: &AppState, p: &Params) -> ApiResult<History> {
    let group_by = p.tag_key("group_by")?;
    let (from, to) = range(p, 90)?;
    let (first, last) = (from.div_euclid(DAY_MS), to.div_euclid(DAY_MS));
    let mut sql = Sql::new(
        "SELECT cd.system_id AS system_id, cd.day AS day, cd.total_bytes AS total_bytes, cd.used_bytes AS used_bytes, \
         cd.free_bytes AS free_bytes, sy.tags AS tags FROM capacity_daily cd LEFT JOIN systems sy ON sy.id = cd.system_id \
         WHERE cd.day >= ",
    );
    // Look back far enough to carry a rollup into the first days of the range.
    sql.bind(day_of((first - CARRY_DAYS) * DAY_MS))
        .push(" AND cd.day <= ")
        .bind(day_of(to))
        .push(" AND (sy.removed IS NULL OR sy.removed = FALSE)")
        .push(" ORDER BY cd.system_id, cd.day");
    let rows = st.db.fetch_all_as::<FleetDailyRow>(&sql).await?;
    let mut systems: BTreeMap<String, (Option<String>, DailyValues)> = BTreeMap::new();
    for r in rows {
        let Some(day) = day_index(&r.day) else {
            continue;
        };
        let entry = systems.entry(r.system_id).or_insert_with(|| {
            let key = group_by
                .as_ref()
                .and_then(|k| tag_text(&parse_tags(r.tags.as_deref()), k));
            (key, Vec::new())
        });
        entry
            .1
            .push((day, r.total_bytes, r.used_bytes, r.free_bytes));
    }
    let mut groups: BTreeMap<Option<String>, BTreeMap<String, Tally>> = BTreeMap::new();
    for (key, days) in systems.into_values() {
        let mut next = days.iter().peekable();
        let mut known = None;
        for d in first..=last {
            while let Some(v) = next.next_if(|v| v.0 <= d) {
                known = Some(v);
            }
            let Some(&(at, total, used, free)) = known else {
                continue;
            };
            if d - at > CARRY_DAYS {
                continue;
            }
            let t = groups
                .entry(key.clone())
                .or_default()
                .entry(day_of(d * DAY_MS))
                .or_default();
            t.add(total, used, free);
            if at < d {
                t.carried += 1;
            }
        }
    }
    let mut series: Vec<GroupDays> = Vec::new();
    let none = groups.remove(&None);
    for (key, days) in groups {
        series.push(GroupDays { key, days });
    }
    if let Some(days) = none {
        series.push(GroupDays { key: None, days });
    }
    Ok(History {
        group_by,
        from,
        to,
        series,
    })
}

/// `GET /api/v1/capacity/history`
#[derive(Debug, Clone, Serialize, JsonSchema)]
pub struct CapacityHistory {
    pub group_by: Option<String>,
    pub from: String,
    pub from_ms: i64,
    pub to: String,
    pub to_ms: i64,
    /// Named groups by key, then the systems without the tag.
    pub series: Vec<HistorySeries>,
}

/// The daily totals of one group.
#[derive(Debug, Clone, Serialize, JsonSchema)]
pub struct HistorySeries {
    pub key: Option<String>,
    pub label: String,
    pub points: Vec<HistoryPoint>,
}

/// A group's totals on one day.
#[derive(Debug, Clone, Serialize, JsonSchema)]
pub struct HistoryPoint {
    pub day: String,
    pub systems: i64,
    /// Systems counted with an earlier day's rollup.
    pub carried_forward: i64,
    pub total_bytes: i64,
    pub used_bytes: i64,
    pub free_bytes: i64,
    pub used_pct: Option<f64>,
}

/// `GET /api/v1/capacity/history`
pub async fn history(st: &AppState, p: &Params, h: &HeaderMap) -> ApiResult<Response> {
    let history = history_series(st, p).await?;
    let series = history
        .series
        .iter()
        .map(|s| HistorySeries {
            key: s.key.clone(),
            label: s.key.as_deref().unwrap_or("(none)").to_owned(),
            points: s
                .days
                .iter()
                .map(|(day, t)| HistoryPoint {
                    day: day.clone(),
                    systems: t.systems,
                    carried_forward: t.carried,
                    total_bytes: t.total,
                    used_bytes: t.used,
                    free_bytes: t.free,
                    used_pct: t.used_pct(),
                })
                .collect(),
        })
        .collect();
    let body = CapacityHistory {
        group_by: history.group_by,
        from: rfc3339(history.from),
        from_ms: history.from,
        to: rfc3339(history.to),
        to_ms: history.to,
        series,
    };
    Ok(json_ok(h, &body))
}
