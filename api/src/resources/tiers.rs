//! The storage tiers a series is read from (raw samples, hourly rollups, daily rollups) and the
//! choice among them that every per-system series shares: capacity
//! (`/api/v1/systems/{id}/capacity`), performance (`/performance`) and pools (`/pools`, without a
//! raw tier). A request names a range and `auto` or a tier; `auto` takes the finest tier that
//! holds the whole range, and the answer says which (`tier`).

use super::capacity::request_range;
use super::history_cache::day_number;
use super::{DAY_MS, day_of, now, require_system};
use crate::db::Sql;
use crate::http::{ApiResult, Params};
use crate::state::AppState;

pub(crate) const HOUR_MS: i64 = 3_600_000;
/// Most raw samples one request returns; more give way to hourly rollups (`auto`).
pub(crate) const MAX_RAW_POINTS: i64 = 20_000;

/// The tables of one series: raw samples (keyed by `observed_at`; `None` when the series has no
/// raw tier), hourly rollups (by `hour`, ms) and daily rollups (by `day`, `YYYY-MM-DD`), each
/// with a `system_id` column.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Tables {
    pub raw: Option<&'static str>,
    pub hourly: &'static str,
    pub daily: &'static str,
}

/// The `WHERE` of one system's rows of `tier` in `[from, to]`, after `FROM <table>`.
pub(crate) fn in_range(sql: &mut Sql, tier: &str, id: &str, from: i64, to: i64) {
    sql.push(" WHERE system_id = ").bind(id);
    match tier {
        "raw" => sql
            .push(" AND observed_at >= ")
            .bind(from)
            .push(" AND observed_at <= ")
            .bind(to),
        "hourly" => sql
            .push(" AND hour >= ")
            .bind(from.div_euclid(HOUR_MS) * HOUR_MS)
            .push(" AND hour <= ")
            .bind(to),
        _ => sql
            .push(" AND day >= ")
            .bind(day_of(from))
            .push(" AND day <= ")
            .bind(day_of(to)),
    };
}

crate::row_struct! {
    /// What each tier holds of one system: the first raw sample and hourly rollup it still has
    /// (retention removes the oldest), and the first hourly and daily rollup in a range.
    #[derive(Debug)]
    pub(crate) struct Coverage {
        pub(crate) raw_min: Option<i64>,
        pub(crate) hourly_min: Option<i64>,
        pub(crate) hourly_first: Option<i64>,
        pub(crate) daily_first: Option<String>,
    }
}

impl Coverage {
    fn daily_ms(&self) -> Option<i64> {
        self.daily_first
            .as_deref()
            .and_then(day_number)
            .map(|d| d * DAY_MS)
    }

    /// Whether the raw samples hold the range from `from`: it starts within what raw still
    /// holds, or no rollup in the range has an earlier hour (hourly) or day (daily) than the
    /// first raw sample (nothing older was pruned, nor imported). Raw samples are thinned (a
    /// deadband and a maximum gap), so the first one of a range may come after its first hourly
    /// rollup: what counts is where raw starts, not where the range's first sample is.
    fn raw_covers(&self, from: i64) -> bool {
        self.raw_min.is_some_and(|r| {
            from >= r
                || (self
                    .hourly_first
                    .is_none_or(|h| h >= r.div_euclid(HOUR_MS) * HOUR_MS)
                    && self
                        .daily_ms()
                        .is_none_or(|d| d >= r.div_euclid(DAY_MS) * DAY_MS))
        })
    }

    /// Whether the hourly rollups hold the range from `from` (the same rule against daily).
    pub(crate) fn hourly_covers(&self, from: i64) -> bool {
        self.hourly_min.is_some_and(|h| {
            from >= h
                || self
                    .daily_ms()
                    .is_none_or(|d| d >= h.div_euclid(DAY_MS) * DAY_MS)
        })
    }

    /// The finest tier that holds the range from `from`: raw, else hourly, else daily; raw when
    /// no tier has anything in it.
    pub(crate) fn finest(&self, from: i64) -> &'static str {
        if self.raw_covers(from) || (self.hourly_first.is_none() && self.daily_first.is_none()) {
            "raw"
        } else if self.hourly_covers(from) {
            "hourly"
        } else {
            "daily"
        }
    }

    /// The first data of any tier (for `range=all`: ask with `from` 0).
    pub(crate) fn earliest(&self) -> Option<i64> {
        [self.raw_min, self.hourly_min, self.daily_ms()]
            .into_iter()
            .flatten()
            .min()
    }
}

/// What the tiers of system `id` hold, the rollups within `[from, to]`.
pub(crate) async fn coverage(
    st: &AppState,
    tables: &Tables,
    id: &str,
    from: i64,
    to: i64,
) -> ApiResult<Coverage> {
    let mut sql = Sql::new("SELECT ");
    match tables.raw {
        Some(raw) => {
            sql.push("(SELECT MIN(observed_at) FROM ")
                .push(raw)
                .push(" WHERE system_id = ")
                .bind(id)
                .push(") AS raw_min");
        }
        None => {
            sql.push("NULL AS raw_min");
        }
    }
    sql.push(", (SELECT MIN(hour) FROM ")
        .push(tables.hourly)
        .push(" WHERE system_id = ")
        .bind(id)
        .push(") AS hourly_min, (SELECT MIN(hour) FROM ")
        .push(tables.hourly)
        .push(" WHERE system_id = ")
        .bind(id)
        .push(" AND hour >= ")
        .bind(from.div_euclid(HOUR_MS) * HOUR_MS)
        .push(" AND hour <= ")
        .bind(to)
        .push(") AS hourly_first, (SELECT MIN(day) FROM ")
        .push(tables.daily)
        .push(" WHERE system_id = ")
        .bind(id)
        .push(" AND day >= ")
        .bind(day_of(from))
        .push(" AND day <= ")
        .bind(day_of(to))
        .push(") AS daily_first");
    Ok(st
        .db
        .fetch_optional_as::<Coverage>(&sql)
        .await?
        .unwrap_or(Coverage {
            raw_min: None,
            hourly_min: None,
            hourly_first: None,
            daily_first: None,
        }))
}

/// The tier a request is answered from, and its range.
#[derive(Debug)]
pub(crate) struct Choice {
    /// What was asked for: `auto` or a tier.
    pub requested: &'static str,
    /// The tier to read.
    pub tier: &'static str,
    pub from: i64,
    pub to: i64,
    /// With `auto`: what the tiers hold in the range.
    coverage: Option<Coverage>,
}

impl Choice {
    /// The points of the chosen tier, read by `read` (which says whether it cut raw samples at
    /// [`MAX_RAW_POINTS`]), and the tier they come from: with `auto`, too many raw samples do
    /// not cover the range, and the hourly rollups are read instead when they hold it.
    pub(crate) async fn read<T, F, Fut>(&self, read: F) -> ApiResult<(&'static str, Vec<T>, bool)>
    where
        F: Fn(&'static str) -> Fut,
        Fut: std::future::Future<Output = ApiResult<(Vec<T>, bool)>>,
    {
        let (points, truncated) = read(self.tier).await?;
        let hourly_holds = || {
            self.coverage
                .as_ref()
                .is_some_and(|c| c.hourly_covers(self.from))
        };
        if truncated && self.tier == "raw" && hourly_holds() {
            let (points, truncated) = read("hourly").await?;
            return Ok(("hourly", points, truncated));
        }
        Ok((self.tier, points, truncated))
    }
}

/// The tier of a request for system `id`'s series in `tables`: parameter `param` (`auto` or one
/// of `accepted`, which lists `auto` first), the range of [`request_range`] (default
/// `default_days`). 404 for an unknown system. Without a raw tier, `auto` takes hourly where the
/// rule says raw.
pub(crate) async fn choose(
    st: &AppState,
    p: &Params,
    id: &str,
    tables: &Tables,
    (param, accepted): (&str, &'static [&'static str]),
    default_days: i64,
) -> ApiResult<Choice> {
    let requested = p.one_of(param, accepted, "auto")?;
    require_system(st, id).await?;
    let (from, to) = request_range(p, default_days, async {
        Ok(
            coverage(st, tables, id, 0, now().max(p.time("to")?.unwrap_or(0)))
                .await?
                .earliest(),
        )
    })
    .await?;
    if requested != "auto" {
        return Ok(Choice {
            requested,
            tier: requested,
            from,
            to,
            coverage: None,
        });
    }
    let c = coverage(st, tables, id, from, to).await?;
    let tier = match c.finest(from) {
        "raw" if tables.raw.is_none() => "hourly",
        tier => tier,
    };
    Ok(Choice {
        requested,
        tier,
        from,
        to,
        coverage: Some(c),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tiers_by_what_each_holds() {
        let f = |raw: Option<i64>,
                 hourly_min: Option<i64>,
                 hourly: Option<i64>,
                 daily: Option<&str>| Coverage {
            raw_min: raw,
            hourly_min,
            hourly_first: hourly,
            daily_first: daily.map(str::to_owned),
        };
        let day = day_number("2026-03-10").unwrap_or(0) * DAY_MS;
        let from = day + 5 * HOUR_MS + 30 * 60_000;
        // The range starts within what raw holds, although (thinned) its first sample in the
        // range comes after the range's first hourly rollup.
        let thinned = f(
            Some(day - 80 * DAY_MS),
            Some(day - 80 * DAY_MS),
            Some(day + 5 * HOUR_MS),
            Some("2026-03-10"),
        );
        assert_eq!(thinned.finest(from), "raw");
        // Everything starts inside the range, on the same day: raw holds it.
        assert_eq!(
            f(
                Some(day + 7 * HOUR_MS),
                Some(day + 7 * HOUR_MS),
                Some(day + 7 * HOUR_MS),
                Some("2026-03-10")
            )
            .finest(from),
            "raw"
        );
        // Hourly rollups from before the first raw sample: raw was pruned.
        let pruned = f(
            Some(day + 9 * HOUR_MS),
            Some(day - 30 * DAY_MS),
            Some(day + 5 * HOUR_MS),
            Some("2026-03-10"),
        );
        assert_eq!(pruned.finest(from), "hourly");
        // Daily rollups from an earlier day (imported, or hourly pruned too).
        let old = f(
            Some(day + 9 * HOUR_MS),
            Some(day + 9 * HOUR_MS),
            Some(day + 9 * HOUR_MS),
            Some("2026-03-01"),
        );
        assert_eq!(old.finest(day - 20 * DAY_MS), "daily");
        assert_eq!(
            f(None, None, None, Some("2026-03-09")).finest(from - DAY_MS),
            "daily"
        );
        assert_eq!(
            f(None, Some(day), Some(day), Some("2026-03-10")).finest(from),
            "hourly"
        );
        assert_eq!(f(None, None, None, None).finest(from), "raw");
        assert_eq!(old.earliest(), Some(day - 9 * DAY_MS));
    }
}
