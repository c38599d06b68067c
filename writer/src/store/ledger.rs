//! The ledger of counted snapshots (`counted_snapshots`, migration 0010): which snapshots the
//! tiers counted, over the last `--late-sample-window`. It tells a late snapshot from a
//! redelivered one. Both are older than a snapshot of their system that the tiers already
//! counted. The late one (a message JetStream delivered again after the writer gave up on a
//! pull, a slower collector's publish) was never counted and is counted now; the redelivered one
//! (of a committed batch) is in the ledger and is not counted again.
//!
//! Every snapshot a batch counts above the ledger's floor is recorded in the batch's own
//! transaction, so a batch that did not commit recorded nothing. Rows older than the window are
//! pruned a bounded number at a time, raising the floor with them: at or below the floor
//! [`Ledger::counted`] cannot tell, and the tiers count only a sample newer than what they
//! counted of its system (the rule before the ledger; a redelivery is never counted twice, a
//! sample that late is lost and counted as not newer).

use std::collections::{BTreeMap, HashMap, HashSet};

use sdash_proto::{Envelope, Snapshot};
use sqlx::{AssertSqlSafe, SqlSafeStr};

use super::StoreError;
use super::dialect::{Conn, Dialect};
use super::plan::StoredState;
use super::sql::{Bind, Sql};
use super::tables::{Col, Get, Rule, Table};

/// Default for `--late-sample-window`: how late a snapshot may reach the writer and still be
/// counted (redeliveries come after `--ack-wait`, a collector's retries after seconds).
pub const DEFAULT_LATE_SAMPLE_WINDOW_MS: i64 = 3_600_000;

/// The floor is raised (and rows pruned) once it lags the window by this much: not in every
/// batch.
const PRUNE_STEP_MS: i64 = 10_000;

/// At most this many rows are pruned in one batch (after a long stop, the backlog goes over
/// several batches).
const PRUNE_ROWS: i64 = 5_000;

/// Pairs looked up per statement.
const LOOKUP_CHUNK: usize = 400;

/// What the ledger says about a batch's snapshots.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Ledger {
    /// Every snapshot counted with a later `observed_at` is in the ledger.
    pub floor: i64,
    /// Those of the batch's snapshots that the ledger holds: system → times.
    pub known: HashMap<String, HashSet<i64>>,
}

impl Ledger {
    /// A ledger that tells nothing (every time is at or below its floor): the tiers count only
    /// samples newer than what they counted.
    pub fn none() -> Ledger {
        Ledger::above(i64::MAX)
    }

    /// An empty ledger above `floor`.
    pub fn above(floor: i64) -> Ledger {
        Ledger {
            floor,
            known: HashMap::new(),
        }
    }

    /// Whether the tiers counted the snapshot of `system` at `at`; `None` at or below the floor,
    /// where the ledger cannot tell.
    pub fn counted(&self, system: &str, at: i64) -> Option<bool> {
        (at > self.floor).then(|| self.known.get(system).is_some_and(|t| t.contains(&at)))
    }

    /// Notes a snapshot as counted.
    pub fn insert(&mut self, system: &str, at: i64) {
        self.known.entry(system.to_owned()).or_default().insert(at);
    }
}

/// A row of `counted_snapshots`.
pub(crate) struct CountedRow {
    pub observed_at: i64,
    pub system_id: String,
}

/// `counted_snapshots`: keys only, a stored row is kept.
pub(crate) static COUNTED_SNAPSHOTS: Table<CountedRow> = Table {
    name: "counted_snapshots",
    cols: &[
        Col {
            name: "observed_at",
            rule: Rule::Key,
            get: Get::Int(|r| r.observed_at),
        },
        Col {
            name: "system_id",
            rule: Rule::Key,
            get: Get::Text(|r| &r.system_id),
        },
    ],
};

/// Reads the floor, and which of the batch's snapshots above it the ledger holds. Only
/// snapshots not newer than their system's stored state can be there (the state is the newest
/// snapshot committed), so a batch of new snapshots looks nothing up.
pub(crate) async fn read<D: Dialect>(
    c: &mut Conn<D>,
    snapshots: &BTreeMap<String, Vec<Envelope<Snapshot>>>,
    states: &HashMap<String, StoredState>,
) -> Result<Ledger, StoreError> {
    let rows = D::Db::fetch_all(
        c,
        "SELECT floor_at FROM counted_snapshots_floor WHERE id = 1".into_sql_str(),
        &[],
    )
    .await?;
    // Without the row (removed by hand) the ledger tells nothing, as before it.
    let Some(row) = rows.first() else {
        return Ok(Ledger::none());
    };
    let mut ledger = Ledger::above(D::Db::int(row, 0)?);
    let mut candidates: Vec<(&str, i64)> = Vec::new();
    for (system, list) in snapshots {
        let Some(state) = states.get(system) else {
            continue;
        };
        for s in list {
            if s.observed_at > ledger.floor && s.observed_at <= state.observed_at {
                candidates.push((system.as_str(), s.observed_at));
            }
        }
    }
    candidates.sort_unstable();
    candidates.dedup();
    for chunk in candidates.chunks(LOOKUP_CHUNK) {
        let pairs: Vec<String> = (0..chunk.len())
            .map(|i| format!("(${}, ${})", 2 * i + 1, 2 * i + 2))
            .collect();
        let sql = format!(
            "SELECT system_id, observed_at FROM counted_snapshots WHERE (observed_at, system_id) IN (VALUES {})",
            pairs.join(", ")
        );
        let binds: Vec<Bind<'_>> = chunk
            .iter()
            .flat_map(|&(system, at)| [Bind::Int(at), Bind::Text(system)])
            .collect();
        for row in D::Db::fetch_all(c, AssertSqlSafe(sql).into_sql_str(), &binds).await? {
            ledger.insert(&D::Db::text(&row, 0)?, D::Db::int(&row, 1)?);
        }
    }
    Ok(ledger)
}

/// Records the batch's snapshots above the floor that the ledger did not hold (the tiers
/// counted them in this transaction), then prunes rows older than `window_ms` before `now`
/// when the floor lags by more than a step. Returns the rows recorded.
pub(crate) async fn record<D: Dialect>(
    c: &mut Conn<D>,
    ledger: &Ledger,
    snapshots: &BTreeMap<String, Vec<Envelope<Snapshot>>>,
    now: i64,
    window_ms: i64,
) -> Result<u64, StoreError> {
    let mut rows: Vec<CountedRow> = Vec::new();
    let mut seen: HashSet<(&str, i64)> = HashSet::new();
    for (system, list) in snapshots {
        for s in list {
            if ledger.counted(system, s.observed_at) == Some(false)
                && seen.insert((system.as_str(), s.observed_at))
            {
                rows.push(CountedRow {
                    observed_at: s.observed_at,
                    system_id: system.clone(),
                });
            }
        }
    }
    let recorded = match rows.is_empty() {
        true => 0,
        false => D::upsert_rows(c, &COUNTED_SNAPSHOTS, &rows).await?,
    };
    let cutoff = now.saturating_sub(window_ms.max(0));
    if ledger.floor != i64::MAX && cutoff.saturating_sub(ledger.floor) >= PRUNE_STEP_MS {
        prune::<D>(c, cutoff).await?;
    }
    Ok(recorded)
}

/// Deletes the rows at or below `cutoff`, at most about [`PRUNE_ROWS`] of them (all of one
/// time go together), and raises the floor to the newest time deleted.
async fn prune<D: Dialect>(c: &mut Conn<D>, cutoff: i64) -> Result<(), StoreError> {
    let oldest = first_int::<D>(
        c,
        "SELECT observed_at FROM counted_snapshots ORDER BY observed_at LIMIT 1",
        &[],
    )
    .await?;
    let nth = first_int::<D>(
        c,
        "SELECT observed_at FROM counted_snapshots WHERE observed_at <= $1 ORDER BY observed_at LIMIT 1 OFFSET $2",
        &[Bind::Int(cutoff), Bind::Int(PRUNE_ROWS)],
    )
    .await?;
    let cut = prune_cut(cutoff, oldest, nth);
    D::Db::execute(
        c,
        "DELETE FROM counted_snapshots WHERE observed_at <= $1".into_sql_str(),
        &[Bind::Int(cut)],
    )
    .await?;
    D::Db::execute(
        c,
        "UPDATE counted_snapshots_floor SET floor_at = $1 WHERE id = 1 AND floor_at < $1"
            .into_sql_str(),
        &[Bind::Int(cut)],
    )
    .await?;
    Ok(())
}

/// How far a prune deletes (and the floor rises), given the `cutoff`, the oldest row's time and
/// the time of the row after the first [`PRUNE_ROWS`] at or below the cutoff (`None`: fewer):
/// the cutoff, or with more rows than a batch's share up to the time before that row, or all of
/// the oldest time when that time alone has more.
fn prune_cut(cutoff: i64, oldest: Option<i64>, nth: Option<i64>) -> i64 {
    match (oldest, nth) {
        (Some(oldest), Some(nth)) if nth > oldest => nth - 1,
        (_, Some(nth)) => nth,
        _ => cutoff,
    }
}

/// The integer of the first row of a one-column query, `None` without a row (not a NULL
/// aggregate: SQLite's driver reads a NULL integer as 0).
async fn first_int<D: Dialect>(
    c: &mut Conn<D>,
    sql: &'static str,
    binds: &[Bind<'_>],
) -> Result<Option<i64>, StoreError> {
    let rows = D::Db::fetch_all(c, sql.into_sql_str(), binds).await?;
    Ok(rows.first().map(|r| D::Db::int(r, 0)).transpose()?)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_ledger_tells_only_above_its_floor() {
        let mut ledger = Ledger::above(100);
        ledger.insert("a", 150);
        assert_eq!(ledger.counted("a", 150), Some(true));
        assert_eq!(ledger.counted("a", 151), Some(false));
        assert_eq!(ledger.counted("b", 150), Some(false));
        assert_eq!(ledger.counted("a", 100), None);
        assert_eq!(Ledger::none().counted("a", i64::MAX - 1), None);
    }

    #[test]
    fn a_prune_deletes_at_most_a_share_but_always_makes_progress() {
        // Few rows: everything up to the cutoff.
        assert_eq!(prune_cut(1_000, Some(10), None), 1_000);
        assert_eq!(prune_cut(1_000, None, None), 1_000);
        // More: up to the time before the row past the share (ties at that time stay).
        assert_eq!(prune_cut(1_000, Some(10), Some(500)), 499);
        // The oldest time alone has more: all of it goes.
        assert_eq!(prune_cut(1_000, Some(10), Some(10)), 10);
    }
}
