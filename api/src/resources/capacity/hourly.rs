//! The fleet's hourly capacity totals per group, summed from the systems' hourly rollups, for the
//! history of a short range (`resolution=hourly`, or `auto` up to 2 days).

use crate::db::Sql;
use crate::http::ApiResult;
use crate::resources::history_cache::{self, GroupKey, Grouping, Tally};
use crate::resources::tiers::HOUR_MS;
use crate::resources::{DAY_MS, now};
use crate::state::AppState;

/// A system's hourly rollup stands in for the hours after it that have none for at most this
/// many hours (the current hour before its first poll, a short outage).
const CARRY_HOURS: i64 = 24;
/// The longest range the fleet history sums hourly rollups for (`resolution=hourly`).
pub(super) const MAX_HOURLY_DAYS: i64 = 31;
/// `resolution=auto` sums hourly rollups for ranges up to this long.
pub(super) const AUTO_HOURLY_MS: i64 = 2 * DAY_MS;
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
pub(super) async fn hourly_groups(
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
    let (keys, of) = history_cache::assign(&fleet, g);
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
