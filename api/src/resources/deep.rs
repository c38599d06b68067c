//! The deeper state of an array (#17): its topology, capacity per pool and performance as the
//! latest snapshot gave them (`GET /api/v1/systems/{id}`: `topology`, `pools`, `performance`),
//! and the history of performance (`GET /api/v1/systems/{id}/performance`: raw samples, hourly
//! or daily rollups) and of each pool (`GET /api/v1/systems/{id}/pools`: hourly or daily
//! rollups), from the finest tier that covers the range ([`super::tiers`]).

use schemars::JsonSchema;
use serde::Serialize;
use warp::http::HeaderMap;
use warp::reply::Response;

use super::rfc3339;
use super::tiers::{self, MAX_RAW_POINTS, Tables, in_range};
use crate::db::{PackedRow, Sql};
use crate::http::{ApiResult, Params, json_ok, percent};
use crate::routes::{POOL_RESOLUTIONS, RESOLUTIONS};
use crate::state::AppState;

/// Bytes from the bus (`u64`) as the API serves them (`i64`, saturating).
fn bytes(v: u64) -> i64 {
    i64::try_from(v).unwrap_or(i64::MAX)
}

/// How a system is built and reached (`SystemDetail.topology`).
#[derive(Debug, Clone, Serialize, JsonSchema)]
pub struct Topology {
    /// ha, metrocluster, active-cluster, local, multi-site or single-site.
    #[schemars(schema_with = "crate::openapi::cluster_type_or_null")]
    pub cluster_type: Option<String>,
    /// Controllers, nodes or HA members.
    pub nodes: Vec<TopologyNode>,
    pub site_count: Option<u32>,
    pub management_addresses: Vec<String>,
    /// DNS names of the management addresses (forward-confirmed reverse lookup).
    pub dns_names: Vec<String>,
    /// Replication and peer partners.
    pub partners: Vec<Partner>,
    /// The URL of the system's own web UI.
    pub management_url: Option<String>,
}

/// One node or controller.
#[derive(Debug, Clone, Serialize, JsonSchema)]
pub struct TopologyNode {
    pub name: String,
    pub model: Option<String>,
    pub serial: Option<String>,
    /// The vendor's state word (`up`, `ready`, `connected`, ...).
    pub state: Option<String>,
    pub version: Option<String>,
}

/// A replication or peer partner.
#[derive(Debug, Clone, Serialize, JsonSchema)]
pub struct Partner {
    pub name: String,
    /// `cluster-peer`, `metrocluster`, `sync-replication`, `async-replication`, `ha`, ...
    pub kind: String,
    pub state: Option<String>,
}

impl From<sdash_proto::Topology> for Topology {
    fn from(t: sdash_proto::Topology) -> Topology {
        Topology {
            cluster_type: t.cluster_type.map(|c| c.as_str().to_owned()),
            nodes: t
                .nodes
                .into_iter()
                .map(|n| TopologyNode {
                    name: n.name,
                    model: n.model,
                    serial: n.serial,
                    state: n.state,
                    version: n.version,
                })
                .collect(),
            site_count: t.site_count,
            management_addresses: t.management_addresses,
            dns_names: t.dns_names,
            partners: t
                .partners
                .into_iter()
                .map(|p| Partner {
                    name: p.name,
                    kind: p.kind,
                    state: p.state,
                })
                .collect(),
            management_url: t.management_url,
        }
    }
}

/// The topology stored with a system's latest state (JSON of the bus type), if it was read.
pub fn topology(text: Option<&str>) -> Option<Topology> {
    text.and_then(|t| serde_json::from_str::<sdash_proto::Topology>(t).ok())
        .map(Topology::from)
}

/// The key of a pool in the rollups and in the API: `<kind>:<name>`.
pub fn pool_key(kind: &str, name: &str) -> String {
    format!("{kind}:{name}")
}

/// Capacity of one pool in the latest snapshot (`SystemDetail.pools`).
#[derive(Debug, Clone, Serialize, JsonSchema)]
pub struct PoolState {
    /// `<kind>:<name>`, the pool's key in `GET /api/v1/systems/{id}/pools`.
    pub pool: String,
    #[schemars(schema_with = "crate::openapi::pool_kind")]
    pub kind: String,
    pub name: String,
    pub total_bytes: i64,
    pub used_bytes: i64,
    pub free_bytes: Option<i64>,
    /// used / total in percent (null when total is 0).
    pub used_pct: Option<f64>,
}

impl From<&sdash_proto::Pool> for PoolState {
    fn from(p: &sdash_proto::Pool) -> PoolState {
        let (total, used) = (bytes(p.total_bytes), bytes(p.used_bytes));
        PoolState {
            pool: pool_key(p.kind.as_str(), &p.name),
            kind: p.kind.as_str().to_owned(),
            name: p.name.clone(),
            total_bytes: total,
            used_bytes: used,
            free_bytes: p.free_bytes.map(bytes),
            used_pct: percent(Some(used), Some(total)),
        }
    }
}

/// The six performance metrics, each null when not reported (or, in a rollup, when no sample of
/// it had the metric).
#[derive(Debug, Clone, Default, PartialEq, Serialize, JsonSchema)]
pub struct PerformanceValues {
    pub read_iops: Option<f64>,
    pub write_iops: Option<f64>,
    /// Average read latency, microseconds.
    pub read_latency_us: Option<f64>,
    /// Average write latency, microseconds.
    pub write_latency_us: Option<f64>,
    pub read_bytes_per_s: Option<f64>,
    pub write_bytes_per_s: Option<f64>,
}

impl PerformanceValues {
    fn from_array([a, b, c, d, e, f]: [Option<f64>; 6]) -> PerformanceValues {
        PerformanceValues {
            read_iops: a,
            write_iops: b,
            read_latency_us: c,
            write_latency_us: d,
            read_bytes_per_s: e,
            write_bytes_per_s: f,
        }
    }
}

impl From<&sdash_proto::Performance> for PerformanceValues {
    fn from(p: &sdash_proto::Performance) -> PerformanceValues {
        PerformanceValues {
            read_iops: p.read_iops,
            write_iops: p.write_iops,
            read_latency_us: p.read_latency_us,
            write_latency_us: p.write_latency_us,
            read_bytes_per_s: p.read_bytes_per_s.map(|v| v as f64),
            write_bytes_per_s: p.write_bytes_per_s.map(|v| v as f64),
        }
    }
}

/// Performance in the latest snapshot (`SystemDetail.performance`).
#[derive(Debug, Clone, Serialize, JsonSchema)]
pub struct PerformanceNow {
    #[serde(flatten)]
    pub values: PerformanceValues,
    /// When the snapshot with these values was observed.
    pub observed_at: String,
    pub observed_at_ms: i64,
}

impl PerformanceNow {
    pub fn of(p: &sdash_proto::Performance, observed_at: i64) -> PerformanceNow {
        PerformanceNow {
            values: p.into(),
            observed_at: rfc3339(observed_at),
            observed_at_ms: observed_at,
        }
    }
}

/// Declares the answer of a per-system history read from one tier (performance, pools): the
/// system, the tier the points come from (described by `tier_doc`, as the tiers differ) and the
/// one asked for, the range, then the history's own fields; and `new`, which fills it. One
/// declaration keeps the two answers' common fields, and their OpenAPI schemas, alike.
macro_rules! tier_history {
    (
        $(#[$meta:meta])*
        pub struct $name:ident {
            tier_doc: $tier_doc:literal,
            $( $(#[$field_meta:meta])* pub $field:ident: $ty:ty, )*
        }
    ) => {
        $(#[$meta])*
        #[derive(Debug, Clone, Serialize, JsonSchema)]
        pub struct $name {
            pub system_id: String,
            #[doc = $tier_doc]
            #[schemars(schema_with = "crate::openapi::tier")]
            pub tier: String,
            /// What was asked for: `auto` (the finest tier that covers the range) or a tier.
            #[schemars(schema_with = "crate::openapi::resolution_param")]
            pub requested_tier: String,
            pub from: String,
            pub from_ms: i64,
            pub to: String,
            pub to_ms: i64,
            $( $(#[$field_meta])* pub $field: $ty, )*
        }

        impl $name {
            /// The answer for system `id` read from `tier` of `choice`, with the history's own
            /// fields.
            fn new(id: &str, tier: &str, choice: &tiers::Choice, $($field: $ty),*) -> $name {
                $name {
                    system_id: id.to_owned(),
                    tier: tier.to_owned(),
                    requested_tier: choice.requested.to_owned(),
                    from: rfc3339(choice.from),
                    from_ms: choice.from,
                    to: rfc3339(choice.to),
                    to_ms: choice.to,
                    $($field),*
                }
            }
        }
    };
}

tier_history! {
    /// `GET /api/v1/systems/{id}/performance`
    pub struct PerformanceSeries {
        tier_doc: "The storage tier the points come from: `raw` samples, `hourly` or `daily` rollups.",
        /// More raw samples matched than one response carries (the first ones are returned).
        pub truncated: bool,
        pub points: Vec<PerformancePoint>,
    }
}

/// One raw sample (`samples` 1), or one hourly or daily rollup with the averages of its samples.
#[derive(Debug, Clone, Serialize, JsonSchema)]
pub struct PerformancePoint {
    /// The sample's time (for a rollup, its last sample's).
    pub at: String,
    pub at_ms: i64,
    pub samples: i64,
    #[serde(flatten)]
    pub values: PerformanceValues,
}

/// The performance tiers.
const PERFORMANCE: Tables = Tables {
    raw: Some("performance_samples"),
    hourly: "performance_hourly",
    daily: "performance_daily",
};

crate::row_struct! {
    /// A raw sample of `performance_samples` (the metrics in [`PerformanceValues`] order).
    struct PerformanceRaw {
        observed_at: i64,
        read_iops: Option<f64>,
        write_iops: Option<f64>,
        read_latency_us: Option<f64>,
        write_latency_us: Option<f64>,
        read_bytes_per_s: Option<f64>,
        write_bytes_per_s: Option<f64>,
    }
}

crate::row_struct! {
    /// An hourly or daily rollup: per metric, how many samples had it and their sum.
    struct PerformanceRollup {
        samples: i64,
        last_at: i64,
        read_iops_n: i64,
        read_iops_sum: f64,
        write_iops_n: i64,
        write_iops_sum: f64,
        read_latency_us_n: i64,
        read_latency_us_sum: f64,
        write_latency_us_n: i64,
        write_latency_us_sum: f64,
        read_bytes_per_s_n: i64,
        read_bytes_per_s_sum: f64,
        write_bytes_per_s_n: i64,
        write_bytes_per_s_sum: f64,
    }
}

impl PerformancePoint {
    fn new(at: i64, samples: i64, values: [Option<f64>; 6]) -> PerformancePoint {
        PerformancePoint {
            at: rfc3339(at),
            at_ms: at,
            samples,
            values: PerformanceValues::from_array(values),
        }
    }
}

impl From<PerformanceRaw> for PerformancePoint {
    fn from(r: PerformanceRaw) -> PerformancePoint {
        let values = [
            r.read_iops,
            r.write_iops,
            r.read_latency_us,
            r.write_latency_us,
            r.read_bytes_per_s,
            r.write_bytes_per_s,
        ];
        PerformancePoint::new(r.observed_at, 1, values)
    }
}

impl From<PerformanceRollup> for PerformancePoint {
    /// Each metric's average over the samples that had it.
    fn from(r: PerformanceRollup) -> PerformancePoint {
        let average = |n: i64, sum: f64| (n > 0).then(|| sum / n as f64);
        let values = [
            average(r.read_iops_n, r.read_iops_sum),
            average(r.write_iops_n, r.write_iops_sum),
            average(r.read_latency_us_n, r.read_latency_us_sum),
            average(r.write_latency_us_n, r.write_latency_us_sum),
            average(r.read_bytes_per_s_n, r.read_bytes_per_s_sum),
            average(r.write_bytes_per_s_n, r.write_bytes_per_s_sum),
        ];
        PerformancePoint::new(r.last_at, r.samples, values)
    }
}

/// `a, b, c`: the column list of a packed row type, for its `SELECT`.
fn column_list<T: PackedRow>() -> String {
    let names: Vec<&str> = T::COLUMNS.iter().map(|(name, _)| *name).collect();
    names.join(", ")
}

/// The points of the rows `T` of one tier's `SELECT … ORDER BY key` (one packed value on
/// SQLite, [`crate::db::Db::fetch_packed_as`]).
async fn read_points<T: PackedRow + Into<PerformancePoint>>(
    st: &AppState,
    sql: &Sql,
    key: &'static str,
) -> ApiResult<Vec<PerformancePoint>> {
    let rows = st.db.fetch_packed_as::<T>(sql, key).await?;
    Ok(rows.into_iter().map(Into::into).collect())
}

/// The performance points of one tier in `[from, to]`, with whether more raw samples matched
/// than returned.
async fn performance_points(
    st: &AppState,
    id: &str,
    tier: &str,
    from: i64,
    to: i64,
) -> ApiResult<(Vec<PerformancePoint>, bool)> {
    let (table, key) = match tier {
        "raw" => (PERFORMANCE.raw.unwrap_or_default(), "observed_at"),
        "hourly" => (PERFORMANCE.hourly, "hour"),
        _ => (PERFORMANCE.daily, "day"),
    };
    let mut sql = Sql::new("SELECT ");
    match tier {
        "raw" => sql.push(&column_list::<PerformanceRaw>()),
        _ => sql
            .push(&column_list::<PerformanceRollup>())
            .push(", ")
            .push(key),
    };
    sql.push(" FROM ").push(table);
    in_range(&mut sql, tier, id, from, to);
    sql.push(" ORDER BY ").push(key);
    if tier == "raw" {
        sql.push(" LIMIT ").bind(MAX_RAW_POINTS + 1);
    }
    let mut points = match tier {
        "raw" => read_points::<PerformanceRaw>(st, &sql, key).await?,
        _ => read_points::<PerformanceRollup>(st, &sql, key).await?,
    };
    let truncated = points.len() as i64 > MAX_RAW_POINTS;
    points.truncate(MAX_RAW_POINTS as usize);
    Ok((points, truncated))
}

/// `GET /api/v1/systems/{id}/performance`
pub async fn performance(
    st: &AppState,
    p: &Params,
    id: &str,
    h: &HeaderMap,
) -> ApiResult<Response> {
    let choice = tiers::choose(st, p, id, &PERFORMANCE, ("tier", RESOLUTIONS), 30).await?;
    let (from, to) = (choice.from, choice.to);
    let (tier, points, truncated) = choice
        .read(|tier| performance_points(st, id, tier, from, to))
        .await?;
    let body = PerformanceSeries::new(id, tier, &choice, truncated, points);
    Ok(json_ok(h, &body))
}

tier_history! {
    /// `GET /api/v1/systems/{id}/pools`
    pub struct PoolHistory {
        tier_doc: "The storage tier the points come from: `hourly` or `daily` rollups.",
        /// Every pool with a rollup in the range, by key.
        pub pools: Vec<PoolSeries>,
    }
}

/// The history of one pool.
#[derive(Debug, Clone, Serialize, JsonSchema)]
pub struct PoolSeries {
    /// `<kind>:<name>`.
    pub pool: String,
    #[schemars(schema_with = "crate::openapi::pool_kind")]
    pub kind: String,
    pub name: String,
    pub points: Vec<PoolPoint>,
}

/// A pool's capacity at the last sample of an hour or a day.
#[derive(Debug, Clone, Serialize, JsonSchema)]
pub struct PoolPoint {
    /// The time of the hour's (day's) last sample.
    pub at: String,
    pub at_ms: i64,
    pub used_bytes: i64,
    pub total_bytes: i64,
}

/// The pool tiers (no raw samples: pools are kept as rollups only).
const POOLS: Tables = Tables {
    raw: None,
    hourly: "pool_hourly",
    daily: "pool_daily",
};

crate::row_struct! {
    struct PoolRow {
        pool: String,
        last_at: i64,
        used_bytes: i64,
        total_bytes: i64,
    }
}

/// `GET /api/v1/systems/{id}/pools`
pub async fn pools(st: &AppState, p: &Params, id: &str, h: &HeaderMap) -> ApiResult<Response> {
    let choice = tiers::choose(st, p, id, &POOLS, ("tier", POOL_RESOLUTIONS), 30).await?;
    let (tier, from, to) = (choice.tier, choice.from, choice.to);
    let (table, key) = if tier == "hourly" {
        (POOLS.hourly, "hour")
    } else {
        (POOLS.daily, "day")
    };
    let mut sql = Sql::new("SELECT ");
    sql.push(&column_list::<PoolRow>())
        .push(", ")
        .push(key)
        .push(" FROM ")
        .push(table);
    in_range(&mut sql, tier, id, from, to);
    sql.push(" ORDER BY pool")
        .push(st.db.dialect().binary_collation())
        .push(", ")
        .push(key);
    // SQLite orders text by its bytes, as the collation asks of PostgreSQL.
    let packed_order = if tier == "hourly" {
        "pool, hour"
    } else {
        "pool, day"
    };
    let mut pools: Vec<PoolSeries> = Vec::new();
    for r in st.db.fetch_packed_as::<PoolRow>(&sql, packed_order).await? {
        let point = PoolPoint {
            at: rfc3339(r.last_at),
            at_ms: r.last_at,
            used_bytes: r.used_bytes,
            total_bytes: r.total_bytes,
        };
        match pools.last_mut() {
            Some(last) if last.pool == r.pool => last.points.push(point),
            _ => {
                let (kind, name) = r.pool.split_once(':').unwrap_or(("", &r.pool));
                pools.push(PoolSeries {
                    kind: kind.to_owned(),
                    name: name.to_owned(),
                    pool: r.pool.clone(),
                    points: vec![point],
                });
            }
        }
    }
    let body = PoolHistory::new(id, tier, &choice, pools);
    Ok(json_ok(h, &body))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The metrics' names in [`PerformanceValues`] order, from its own JSON.
    fn metrics() -> Vec<String> {
        let values = PerformanceValues::from_array([1.0, 2.0, 3.0, 4.0, 5.0, 6.0].map(Some));
        let json = serde_json::to_value(&values).unwrap_or_default();
        let object = json.as_object().cloned().unwrap_or_default();
        (1..=6)
            .map(|i| {
                let found = object
                    .iter()
                    .find(|(_, v)| v.as_f64() == Some(f64::from(i)));
                found.map(|(k, _)| k.clone()).unwrap_or_default()
            })
            .collect()
    }

    #[test]
    fn performance_rows_read_the_metrics_in_the_order_of_the_values() {
        let names = |cols: &[(&str, crate::db::ColumnKind)]| -> Vec<String> {
            cols.iter().map(|(n, _)| (*n).to_owned()).collect()
        };
        let m = metrics();
        assert_eq!(m.len(), 6);
        let raw: Vec<String> = std::iter::once("observed_at".to_owned())
            .chain(m.iter().cloned())
            .collect();
        assert_eq!(names(PerformanceRaw::COLUMNS), raw);
        let rollup: Vec<String> = ["samples".to_owned(), "last_at".to_owned()]
            .into_iter()
            .chain(
                m.iter()
                    .flat_map(|m| [format!("{m}_n"), format!("{m}_sum")]),
            )
            .collect();
        assert_eq!(names(PerformanceRollup::COLUMNS), rollup);
    }
}
