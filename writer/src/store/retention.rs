//! Retention, for either backend: deletes in statements of a few thousand rows, in steps of a
//! bounded time ([`step`], one transaction each) that the writer runs between its batches, so
//! that a large pass never holds up ingestion: each step ends after its time budget, the next
//! batch commits, then the pass goes on where it stopped.
//!
//! Every delete finds its rows through an index: events, raw samples and dead letters by their
//! time index, daily rollups by their `day` index, hourly rollups (whose only index is their
//! key `(system_id, hour, …)`, to keep them small) system by system, a few systems per
//! statement. The tiers of capacity, pools and performance are pruned alike ([`RAW`],
//! [`HOURLY`], [`DAILY`]).

use std::time::{Duration, Instant};

use sqlx::{Pool, SqlSafeStr};

use super::dialect::{Conn, Dialect};
use super::sql::{Bind, Sql};
use super::{RetentionOutcome, StoreError};

/// What a pass deletes: rows older than these times (ms since the epoch; the day as
/// `YYYY-MM-DD` for daily rollups), and events beyond `keep_per_system` per system (0 = no
/// limit); `batch` rows per statement.
#[derive(Debug, Clone)]
pub(crate) struct Cutoffs {
    pub events_before: i64,
    pub samples_before: i64,
    pub performance_samples_before: i64,
    pub hourly_before: i64,
    /// `None`: daily rollups are kept forever.
    pub daily_before: Option<String>,
    pub dead_letters_before: i64,
    pub keep_per_system: i64,
    pub batch: i64,
}

/// Systems whose hourly rollups one statement looks at.
const HOURLY_SYSTEMS_PER_STATEMENT: i64 = 64;

/// A table of a tier: its name, and what counts its deleted rows.
struct TierTable {
    name: &'static str,
    deleted: fn(&mut RetentionOutcome) -> &mut u64,
}

/// Which cutoff of a pass applies to a table.
type Window = fn(&Cutoffs) -> i64;

/// The raw tiers (by `observed_at`), each with its own window.
const RAW: [(TierTable, Window); 2] = [
    (
        TierTable {
            name: "capacity_samples",
            deleted: |o| &mut o.capacity_samples_expired,
        },
        |c| c.samples_before,
    ),
    (
        TierTable {
            name: "performance_samples",
            deleted: |o| &mut o.performance_samples_expired,
        },
        |c| c.performance_samples_before,
    ),
];

/// The hourly tiers (`hourly_before`), with their keys (the system, the hour, then the rest).
const HOURLY: [(TierTable, &[&str]); 3] = [
    (
        TierTable {
            name: "capacity_hourly",
            deleted: |o| &mut o.capacity_hourly_expired,
        },
        &["system_id", "hour"],
    ),
    (
        TierTable {
            name: "pool_hourly",
            deleted: |o| &mut o.pool_hourly_expired,
        },
        &["system_id", "hour", "pool"],
    ),
    (
        TierTable {
            name: "performance_hourly",
            deleted: |o| &mut o.performance_hourly_expired,
        },
        &["system_id", "hour"],
    ),
];

/// The daily tiers (`daily_before`, by `day`).
const DAILY: [TierTable; 3] = [
    TierTable {
        name: "capacity_daily",
        deleted: |o| &mut o.capacity_daily_expired,
    },
    TierTable {
        name: "pool_daily",
        deleted: |o| &mut o.pool_daily_expired,
    },
    TierTable {
        name: "performance_daily",
        deleted: |o| &mut o.performance_daily_expired,
    },
];

/// Deletes at most `$4` rows of the hourly table `name` (keyed `key`) older than `$3` of the
/// systems after `$1` up to `$2`. Each system's old hours are a range of the key: no index on `hour` needed.
/// (CROSS JOIN makes SQLite seek each system's range rather than scan the chunk's rows;
/// PostgreSQL plans it like an inner join.)
fn delete_hours(name: &str, key: &[&str]) -> String {
    let picked: Vec<String> = key.iter().map(|k| format!("h.{k}")).collect();
    let key = key.join(", ");
    format!(
        "DELETE FROM {name} WHERE ({key}) IN (SELECT {picked} \
         FROM systems s CROSS JOIN {name} h \
         WHERE h.system_id = s.id AND s.id > $1 AND s.id <= $2 AND h.hour < $3 LIMIT $4)",
        picked = picked.join(", ")
    )
}

#[derive(Debug, Clone, PartialEq, Eq)]
enum Phase {
    EventsExpired,
    ListOverLimit,
    /// Systems over the event limit, the next one to look at, and the cut of the one being
    /// trimmed (its newest event beyond the limit).
    EventsOverLimit {
        systems: Vec<String>,
        next: usize,
        trimming: Option<(String, i64, String)>,
    },
    /// The raw tier `RAW[tier]`.
    Samples {
        tier: usize,
    },
    /// Hourly rollups (of `HOURLY[tier]`) of the systems after `after` (by id).
    Hourly {
        tier: usize,
        after: String,
        chunk: Option<Vec<String>>,
    },
    /// The daily tier `DAILY[tier]`.
    Daily {
        tier: usize,
    },
    DeadLetters,
    Done,
}

/// One retention pass in progress (see [`crate::Store::start_retention`]).
#[derive(Debug, Clone)]
pub struct RetentionRun {
    cut: Cutoffs,
    phase: Phase,
    /// What the pass deleted so far.
    pub deleted: RetentionOutcome,
}

impl RetentionRun {
    pub(crate) fn new(cut: Cutoffs) -> RetentionRun {
        RetentionRun {
            cut,
            phase: Phase::EventsExpired,
            deleted: RetentionOutcome::default(),
        }
    }

    /// Whether the pass is over.
    pub fn is_done(&self) -> bool {
        self.phase == Phase::Done
    }
}

/// Runs `run` on for about `budget` (at least one statement): returns what this step deleted.
pub(crate) async fn step<D: Dialect>(
    pool: &Pool<D::Db>,
    run: &mut RetentionRun,
    budget: Duration,
) -> Result<RetentionOutcome, StoreError> {
    let started = Instant::now();
    // One transaction per step: one commit (one fsync) for all its statements. It only deletes
    // old rows, which no batch touches, and lasts about `budget`.
    let mut tx = D::begin(pool).await?;
    let c: &mut Conn<D> = &mut tx;
    let mut out = RetentionOutcome::default();
    let batch = run.cut.batch;
    while run.phase != Phase::Done {
        let phase = std::mem::replace(&mut run.phase, Phase::Done);
        run.phase = match phase {
            Phase::EventsExpired => {
                let n = delete_some::<D>(
                    c,
                    "events",
                    "observed_at < $2 AND NOT keep", // kept (imported) events stay
                    &[Bind::Int(run.cut.events_before)],
                    batch,
                )
                .await?;
                out.events_expired += n;
                match n < batch as u64 {
                    true if run.cut.keep_per_system > 0 => Phase::ListOverLimit,
                    true => Phase::Samples { tier: 0 },
                    false => Phase::EventsExpired,
                }
            }
            Phase::ListOverLimit => {
                let systems = D::Db::fetch_all(
                    c,
                    "SELECT system_id FROM events WHERE NOT keep GROUP BY system_id HAVING count(*) > $1 ORDER BY system_id"
                        .into_sql_str(),
                    &[Bind::Int(run.cut.keep_per_system)],
                )
                .await?
                .iter()
                .map(|r| D::Db::text(r, 0))
                .collect::<Result<Vec<_>, _>>()?;
                Phase::EventsOverLimit {
                    systems,
                    next: 0,
                    trimming: None,
                }
            }
            Phase::EventsOverLimit {
                systems,
                next,
                trimming: Some((system, at, id)),
            } => {
                let n = delete_some::<D>(
                    c,
                    "events",
                    "system_id = $2 AND (observed_at, event_id) <= ($3, $4) AND NOT keep",
                    &[Bind::Text(&system), Bind::Int(at), Bind::Text(&id)],
                    batch,
                )
                .await?;
                out.events_over_limit += n;
                let trimming = (n == batch as u64).then_some((system, at, id));
                Phase::EventsOverLimit {
                    systems,
                    next,
                    trimming,
                }
            }
            Phase::EventsOverLimit {
                systems,
                next,
                trimming: None,
            } => match systems.get(next) {
                None => Phase::Samples { tier: 0 },
                Some(system) => {
                    // The newest event beyond the limit: it and everything older go.
                    let newest_beyond = D::Db::fetch_all(
                        c,
                        "SELECT observed_at, event_id FROM events WHERE system_id = $1 AND NOT keep \
                         ORDER BY observed_at DESC, event_id DESC LIMIT 1 OFFSET $2"
                            .into_sql_str(),
                        &[Bind::Text(system), Bind::Int(run.cut.keep_per_system)],
                    )
                    .await?;
                    let trimming = match newest_beyond.first() {
                        Some(row) => {
                            out.systems_trimmed += 1;
                            Some((system.clone(), D::Db::int(row, 0)?, D::Db::text(row, 1)?))
                        }
                        None => None,
                    };
                    Phase::EventsOverLimit {
                        systems,
                        next: next + 1,
                        trimming,
                    }
                }
            },
            Phase::Samples { tier } => {
                let (table, before) = &RAW[tier];
                let n = delete_some::<D>(
                    c,
                    table.name,
                    "observed_at < $2",
                    &[Bind::Int(before(&run.cut))],
                    batch,
                )
                .await?;
                *(table.deleted)(&mut out) += n;
                match (
                    n < batch as u64,
                    tier + 1 < RAW.len(),
                    run.cut.hourly_before,
                ) {
                    (false, _, _) => Phase::Samples { tier },
                    (true, true, _) => Phase::Samples { tier: tier + 1 },
                    (true, false, i64::MIN) => Phase::Daily { tier: 0 },
                    (true, false, _) => Phase::Hourly {
                        tier: 0,
                        after: String::new(),
                        chunk: None,
                    },
                }
            }
            Phase::Hourly {
                tier,
                after,
                chunk: None,
            } => {
                let chunk = D::Db::fetch_all(
                    c,
                    "SELECT id FROM systems WHERE id > $1 ORDER BY id LIMIT $2".into_sql_str(),
                    &[Bind::Text(&after), Bind::Int(HOURLY_SYSTEMS_PER_STATEMENT)],
                )
                .await?
                .iter()
                .map(|r| D::Db::text(r, 0))
                .collect::<Result<Vec<_>, _>>()?;
                match (chunk.is_empty(), tier + 1 < HOURLY.len()) {
                    (true, true) => Phase::Hourly {
                        tier: tier + 1,
                        after: String::new(),
                        chunk: None,
                    },
                    (true, false) => Phase::Daily { tier: 0 },
                    (false, _) => Phase::Hourly {
                        tier,
                        after,
                        chunk: Some(chunk),
                    },
                }
            }
            Phase::Hourly {
                tier,
                after,
                chunk: Some(chunk),
            } => {
                let last = chunk.last().cloned().unwrap_or_default();
                let (table, key) = &HOURLY[tier];
                let sql = sqlx::AssertSqlSafe(delete_hours(table.name, key)).into_sql_str();
                let n = D::Db::execute(
                    c,
                    sql,
                    &[
                        Bind::Text(&after),
                        Bind::Text(&last),
                        Bind::Int(run.cut.hourly_before),
                        Bind::Int(batch),
                    ],
                )
                .await?;
                *(table.deleted)(&mut out) += n;
                match n < batch as u64 {
                    true => Phase::Hourly {
                        tier,
                        after: last,
                        chunk: None,
                    },
                    false => Phase::Hourly {
                        tier,
                        after,
                        chunk: Some(chunk),
                    },
                }
            }
            Phase::Daily { tier } => match run.cut.daily_before.clone() {
                None => Phase::DeadLetters,
                Some(day) => {
                    let table = &DAILY[tier];
                    let n = delete_some::<D>(c, table.name, "day < $2", &[Bind::Text(&day)], batch)
                        .await?;
                    *(table.deleted)(&mut out) += n;
                    match (n < batch as u64, tier + 1 < DAILY.len()) {
                        (false, _) => Phase::Daily { tier },
                        (true, true) => Phase::Daily { tier: tier + 1 },
                        (true, false) => Phase::DeadLetters,
                    }
                }
            },
            Phase::DeadLetters => {
                let n = delete_some::<D>(
                    c,
                    "dead_letters",
                    "received_at < $2",
                    &[Bind::Int(run.cut.dead_letters_before)],
                    batch,
                )
                .await?;
                out.dead_letters_expired += n;
                match n < batch as u64 {
                    true => Phase::Done,
                    false => Phase::DeadLetters,
                }
            }
            Phase::Done => Phase::Done,
        };
        if started.elapsed() >= budget {
            break;
        }
    }
    tx.commit().await?;
    run.deleted.add(&out);
    Ok(out)
}

/// Deletes at most `batch` rows of `table` matching `condition`; how many went.
async fn delete_some<D: Dialect>(
    c: &mut Conn<D>,
    table: &str,
    condition: &str,
    binds: &[Bind<'_>],
    batch: i64,
) -> Result<u64, StoreError> {
    let sql = sqlx::AssertSqlSafe(std::sync::Arc::<str>::from(D::delete_some(
        table, condition,
    )))
    .into_sql_str();
    let binds: Vec<Bind<'_>> = std::iter::once(Bind::Int(batch))
        .chain(binds.iter().copied())
        .collect();
    Ok(D::Db::execute(c, sql, &binds).await?)
}
