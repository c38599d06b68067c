//! The rollup tiers' tables as data: each column, how it is read from its row type and how a
//! batch's row merges into a stored row of the same key. Both backends build their statements
//! from these descriptions (`pg::upsert_sql`, `Sqlite::upsert_rows`), so each tier table and its
//! merge rules are written once: `capacity_hourly`, and the pool and performance tiers
//! (`capacity_daily` keeps its own merge, which replaces imported days).

use super::derive::TierSample;
use super::plan::{
    HourlyRow, PerformanceRollup, PerformanceSample, PoolKey, PoolSample, Rollup, TierRow,
};

/// How a column's value is read from a row, by its SQL type.
pub(crate) enum Get<R: 'static> {
    Int(fn(&R) -> i64),
    Real(fn(&R) -> f64),
    /// A nullable float.
    OptReal(fn(&R) -> Option<f64>),
    Text(fn(&R) -> &str),
}

/// How a stored row takes a batch's row (`excluded`) of the same key.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Rule {
    /// Part of the key (the series' columns, then the period's).
    Key,
    /// The stored value stays (a table whose columns are all `Key` or `Keep` inserts new keys
    /// only).
    Keep,
    /// The values add up (counts, sums).
    Add,
    Min,
    /// The larger; a NULL (no sample had the metric) gives way to any value.
    Max,
    /// The value of the row with the later (or equally late) `last_at`.
    Last,
}

pub(crate) struct Col<R: 'static> {
    pub name: &'static str,
    pub rule: Rule,
    pub get: Get<R>,
}

/// A table written from rows of type `R`.
pub(crate) struct Table<R: 'static> {
    pub name: &'static str,
    pub cols: &'static [Col<R>],
}

impl<R> Table<R> {
    /// `a, b, c`: the columns in the order they are bound.
    pub fn column_list(&self) -> String {
        let names: Vec<&str> = self.cols.iter().map(|c| c.name).collect();
        names.join(", ")
    }

    /// The `ON CONFLICT` clause merging a batch's row into the stored one, with the backend's
    /// two-argument `least` and `greatest` functions. In a `SET` list every expression sees the
    /// stored row as it was, so `Last` compares with the stored `last_at` before it moves.
    pub fn on_conflict(&self, least: &str, greatest: &str) -> String {
        let t = self.name;
        let key: Vec<&str> = self
            .cols
            .iter()
            .filter(|c| c.rule == Rule::Key)
            .map(|c| c.name)
            .collect();
        let sets: Vec<String> = self
            .cols
            .iter()
            .filter_map(|c| {
                let n = c.name;
                Some(match c.rule {
                    Rule::Key | Rule::Keep => return None,
                    Rule::Add => format!("{n} = {t}.{n} + excluded.{n}"),
                    Rule::Min => format!("{n} = {least}({t}.{n}, excluded.{n})"),
                    // SQLite's max() of a NULL is NULL; PostgreSQL's GREATEST skips it.
                    Rule::Max if matches!(c.get, Get::OptReal(_)) => format!(
                        "{n} = COALESCE({greatest}({t}.{n}, excluded.{n}), {t}.{n}, excluded.{n})"
                    ),
                    Rule::Max => format!("{n} = {greatest}({t}.{n}, excluded.{n})"),
                    Rule::Last => format!(
                        "{n} = CASE WHEN excluded.last_at >= {t}.last_at THEN excluded.{n} ELSE {t}.{n} END"
                    ),
                })
            })
            .collect();
        match sets.is_empty() {
            true => format!("ON CONFLICT ({}) DO NOTHING", key.join(", ")),
            false => format!(
                "ON CONFLICT ({}) DO UPDATE SET {}",
                key.join(", "),
                sets.join(", ")
            ),
        }
    }
}

/// A subquery for the newest `last_at` of the system `id` (an expression of the enclosing
/// query) in an hourly rollup table keyed `(system_id, hour, …)`: two seeks of the key (the
/// newest hour, then its rows: of a pool table, one per pool).
pub(crate) fn newest_last_at(table: &str, id: &str) -> String {
    format!(
        "(SELECT max(h.last_at) FROM {table} h WHERE h.system_id = {id} AND h.hour = \
         (SELECT max(x.hour) FROM {table} x WHERE x.system_id = {id}))"
    )
}

/// The columns of a [`Rollup`] tier table: the key's, then the rollup's (`free_bytes` among the
/// `$last` ones where the table has it).
macro_rules! rollup_table {
    ($name:literal, $row:ty, [$($key:expr),+], [$($last:expr),*]) => {
        Table::<$row> {
            name: $name,
            cols: &[
                $($key,)+
                Col { name: "samples", rule: Rule::Add, get: Get::Int(|r| r.rollup.samples) },
                Col { name: "used_min", rule: Rule::Min, get: Get::Int(|r| r.rollup.used_min) },
                Col { name: "used_max", rule: Rule::Max, get: Get::Int(|r| r.rollup.used_max) },
                Col { name: "used_sum", rule: Rule::Add, get: Get::Real(|r| r.rollup.used_sum) },
                Col { name: "last_at", rule: Rule::Max, get: Get::Int(|r| r.rollup.last_at) },
                Col { name: "total_bytes", rule: Rule::Last, get: Get::Int(|r| r.rollup.total_bytes) },
                Col { name: "used_bytes", rule: Rule::Last, get: Get::Int(|r| r.rollup.used_bytes) },
                $($last,)*
            ],
        }
    };
}

/// Calls `$mac!(…, [index "metric", …])` with the performance metrics, in the order of
/// `PERFORMANCE_METRICS` (a test checks it): the one list the performance tables are made of.
macro_rules! with_metrics {
    ($mac:ident($($args:tt)*)) => {
        $mac!($($args)* [0 "read_iops", 1 "write_iops", 2 "read_latency_us", 3 "write_latency_us", 4 "read_bytes_per_s", 5 "write_bytes_per_s"])
    };
}

/// `performance_samples`: the system, the time, and each metric as it came.
macro_rules! performance_samples_table {
    ([$($i:literal $metric:literal),+]) => {
        Table::<PerformanceSample> {
            name: "performance_samples",
            cols: &[
                Col { name: "system_id", rule: Rule::Key, get: Get::Text(|r| &r.system_id) },
                Col { name: "observed_at", rule: Rule::Key, get: Get::Int(|r| r.observed_at) },
                $(Col { name: $metric, rule: Rule::Keep, get: Get::OptReal(|r| r.metrics[$i]) },)+
            ],
        }
    };
}

/// The columns of a [`PerformanceRollup`] tier table: the system and the period, then per
/// metric `_n`, `_sum`, `_max`.
macro_rules! performance_table {
    ($name:literal, $row:ty, $period:expr, [$($i:literal $metric:literal),+]) => {
        Table::<$row> {
            name: $name,
            cols: &[
                Col { name: "system_id", rule: Rule::Key, get: Get::Text(|r| &r.key) },
                $period,
                Col { name: "samples", rule: Rule::Add, get: Get::Int(|r| r.rollup.samples) },
                Col { name: "last_at", rule: Rule::Max, get: Get::Int(|r| r.rollup.last_at) },
                $(
                    Col { name: concat!($metric, "_n"), rule: Rule::Add, get: Get::Int(|r| r.rollup.n[$i]) },
                    Col { name: concat!($metric, "_sum"), rule: Rule::Add, get: Get::Real(|r| r.rollup.sum[$i]) },
                    Col { name: concat!($metric, "_max"), rule: Rule::Max, get: Get::OptReal(|r| r.rollup.max[$i]) },
                )+
            ],
        }
    };
}

pub(crate) static CAPACITY_HOURLY: Table<HourlyRow> = rollup_table!(
    "capacity_hourly",
    HourlyRow,
    [
        Col {
            name: "system_id",
            rule: Rule::Key,
            get: Get::Text(|r| &r.key)
        },
        Col {
            name: "hour",
            rule: Rule::Key,
            get: Get::Int(|r| r.period)
        }
    ],
    [Col {
        name: "free_bytes",
        rule: Rule::Last,
        get: Get::Int(|r| r.rollup.free_bytes)
    }]
);

type PoolHourly = TierRow<PoolKey, i64, Rollup>;
type PoolDaily = TierRow<PoolKey, String, Rollup>;

pub(crate) static POOL_HOURLY: Table<PoolHourly> = rollup_table!(
    "pool_hourly",
    PoolHourly,
    [
        Col {
            name: "system_id",
            rule: Rule::Key,
            get: Get::Text(|r| &r.key.system_id)
        },
        Col {
            name: "hour",
            rule: Rule::Key,
            get: Get::Int(|r| r.period)
        },
        Col {
            name: "pool",
            rule: Rule::Key,
            get: Get::Text(|r| &r.key.pool)
        }
    ],
    []
);

pub(crate) static POOL_DAILY: Table<PoolDaily> = rollup_table!(
    "pool_daily",
    PoolDaily,
    [
        Col {
            name: "system_id",
            rule: Rule::Key,
            get: Get::Text(|r| &r.key.system_id)
        },
        Col {
            name: "day",
            rule: Rule::Key,
            get: Get::Text(|r| &r.period)
        },
        Col {
            name: "pool",
            rule: Rule::Key,
            get: Get::Text(|r| &r.key.pool)
        }
    ],
    []
);

type PerformanceHourly = TierRow<String, i64, PerformanceRollup>;
type PerformanceDaily = TierRow<String, String, PerformanceRollup>;

pub(crate) static PERFORMANCE_HOURLY: Table<PerformanceHourly> = with_metrics!(performance_table(
    "performance_hourly",
    PerformanceHourly,
    Col {
        name: "hour",
        rule: Rule::Key,
        get: Get::Int(|r| r.period)
    },
));

pub(crate) static PERFORMANCE_DAILY: Table<PerformanceDaily> = with_metrics!(performance_table(
    "performance_daily",
    PerformanceDaily,
    Col {
        name: "day",
        rule: Rule::Key,
        get: Get::Text(|r| &r.period)
    },
));

/// Raw performance: one row per counted sample, a stored one kept.
pub(crate) static PERFORMANCE_SAMPLES: Table<PerformanceSample> =
    with_metrics!(performance_samples_table());

/// A kind of sample written to its own tiers by the generic step (`write::write_tiers`): its
/// hourly and daily tables, and its raw table if it has one (every counted sample is stored raw).
pub(crate) trait Tiered: TierSample + Sync + 'static {
    fn raw() -> Option<&'static Table<Self>>;
    fn hourly() -> &'static Table<TierRow<Self::Key, i64, Self::Rollup>>;
    fn daily() -> &'static Table<TierRow<Self::Key, String, Self::Rollup>>;
}

impl Tiered for PoolSample {
    fn raw() -> Option<&'static Table<Self>> {
        None
    }
    fn hourly() -> &'static Table<PoolHourly> {
        &POOL_HOURLY
    }
    fn daily() -> &'static Table<PoolDaily> {
        &POOL_DAILY
    }
}

impl Tiered for PerformanceSample {
    fn raw() -> Option<&'static Table<Self>> {
        Some(&PERFORMANCE_SAMPLES)
    }
    fn hourly() -> &'static Table<PerformanceHourly> {
        &PERFORMANCE_HOURLY
    }
    fn daily() -> &'static Table<PerformanceDaily> {
        &PERFORMANCE_DAILY
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::plan::PERFORMANCE_METRICS;

    #[test]
    fn performance_columns_follow_the_metrics() {
        for cols in [
            PERFORMANCE_HOURLY
                .cols
                .iter()
                .map(|c| c.name)
                .collect::<Vec<_>>(),
            PERFORMANCE_DAILY.cols.iter().map(|c| c.name).collect(),
        ] {
            let metrics: Vec<String> = PERFORMANCE_METRICS
                .iter()
                .flat_map(|m| [format!("{m}_n"), format!("{m}_sum"), format!("{m}_max")])
                .collect();
            assert_eq!(
                cols[4..],
                metrics.iter().map(String::as_str).collect::<Vec<_>>()
            );
        }
        let raw: Vec<&str> = PERFORMANCE_SAMPLES.cols[2..]
            .iter()
            .map(|c| c.name)
            .collect();
        assert_eq!(raw, PERFORMANCE_METRICS);
    }

    #[test]
    fn merge_clauses() {
        assert_eq!(
            CAPACITY_HOURLY.on_conflict("LEAST", "GREATEST"),
            "ON CONFLICT (system_id, hour) DO UPDATE SET samples = capacity_hourly.samples + excluded.samples, \
             used_min = LEAST(capacity_hourly.used_min, excluded.used_min), \
             used_max = GREATEST(capacity_hourly.used_max, excluded.used_max), \
             used_sum = capacity_hourly.used_sum + excluded.used_sum, \
             last_at = GREATEST(capacity_hourly.last_at, excluded.last_at), \
             total_bytes = CASE WHEN excluded.last_at >= capacity_hourly.last_at THEN excluded.total_bytes ELSE capacity_hourly.total_bytes END, \
             used_bytes = CASE WHEN excluded.last_at >= capacity_hourly.last_at THEN excluded.used_bytes ELSE capacity_hourly.used_bytes END, \
             free_bytes = CASE WHEN excluded.last_at >= capacity_hourly.last_at THEN excluded.free_bytes ELSE capacity_hourly.free_bytes END"
        );
        assert_eq!(
            PERFORMANCE_SAMPLES.on_conflict("min", "max"),
            "ON CONFLICT (system_id, observed_at) DO NOTHING"
        );
        let perf = PERFORMANCE_DAILY.on_conflict("min", "max");
        assert!(
            perf.starts_with("ON CONFLICT (system_id, day) DO UPDATE SET "),
            "{perf}"
        );
        assert!(
            perf.contains("read_iops_max = COALESCE(max(performance_daily.read_iops_max, excluded.read_iops_max), performance_daily.read_iops_max, excluded.read_iops_max)"),
            "{perf}"
        );
        assert!(
            POOL_DAILY
                .on_conflict("min", "max")
                .starts_with("ON CONFLICT (system_id, day, pool) DO UPDATE SET ")
        );
    }
}
