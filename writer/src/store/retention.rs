//! Retention, for either backend: deletes in statements of a few thousand rows, in steps of a
//! bounded time ([`step`], one transaction each) that the writer runs between its batches, so
//! that a large pass never holds up ingestion: each step ends after its time budget, the next
//! batch commits, then the pass goes on where it stopped.
//!
//! Every delete finds its rows through an index: events, raw samples and dead letters by their
//! time index, daily rollups by `capacity_daily_day`, hourly rollups (whose only index is their
//! key `(system_id, hour)`, to keep them small) system by system, a few systems per statement.

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
    pub hourly_before: i64,
    /// `None`: daily rollups are kept forever.
    pub daily_before: Option<String>,
    pub dead_letters_before: i64,
    pub keep_per_system: i64,
    pub batch: i64,
}

/// Systems whose hourly rollups one statement looks at.
const HOURLY_SYSTEMS_PER_STATEMENT: i64 = 64;

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
    Samples,
    /// Hourly rollups of the systems after `after` (by id).
    Hourly {
        after: String,
        chunk: Option<Vec<String>>,
    },
    Daily,
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
                    true => Phase::Samples,
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
                None => Phase::Samples,
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
            Phase::Samples => {
                let n = delete_some::<D>(
                    c,
                    "capacity_samples",
                    "observed_at < $2",
                    &[Bind::Int(run.cut.samples_before)],
                    batch,
                )
                .await?;
                out.capacity_samples_expired += n;
                match (n < batch as u64, run.cut.hourly_before) {
                    (false, _) => Phase::Samples,
                    (true, i64::MIN) => Phase::Daily,
                    (true, _) => Phase::Hourly {
                        after: String::new(),
                        chunk: None,
                    },
                }
            }
            Phase::Hourly { after, chunk: None } => {
                let chunk = D::Db::fetch_all(
                    c,
                    "SELECT id FROM systems WHERE id > $1 ORDER BY id LIMIT $2".into_sql_str(),
                    &[Bind::Text(&after), Bind::Int(HOURLY_SYSTEMS_PER_STATEMENT)],
                )
                .await?
                .iter()
                .map(|r| D::Db::text(r, 0))
                .collect::<Result<Vec<_>, _>>()?;
                match chunk.is_empty() {
                    true => Phase::Daily,
                    false => Phase::Hourly {
                        after,
                        chunk: Some(chunk),
                    },
                }
            }
            Phase::Hourly {
                after,
                chunk: Some(chunk),
            } => {
                let last = chunk.last().cloned().unwrap_or_default();
                // Each system's old hours are a range of the key: no index on `hour` needed.
                // (CROSS JOIN makes SQLite seek each system's range rather than scan the
                // chunk's rows; PostgreSQL plans it like an inner join.)
                let n = D::Db::execute(
                    c,
                    "DELETE FROM capacity_hourly WHERE (system_id, hour) IN (SELECT h.system_id, h.hour \
                     FROM systems s CROSS JOIN capacity_hourly h \
                     WHERE h.system_id = s.id AND s.id > $1 AND s.id <= $2 AND h.hour < $3 LIMIT $4)"
                        .into_sql_str(),
                    &[
                        Bind::Text(&after),
                        Bind::Text(&last),
                        Bind::Int(run.cut.hourly_before),
                        Bind::Int(batch),
                    ],
                )
                .await?;
                out.capacity_hourly_expired += n;
                match n < batch as u64 {
                    true => Phase::Hourly {
                        after: last,
                        chunk: None,
                    },
                    false => Phase::Hourly {
                        after,
                        chunk: Some(chunk),
                    },
                }
            }
            Phase::Daily => match run.cut.daily_before.clone() {
                None => Phase::DeadLetters,
                Some(day) => {
                    let n = delete_some::<D>(
                        c,
                        "capacity_daily",
                        "day < $2",
                        &[Bind::Text(&day)],
                        batch,
                    )
                    .await?;
                    out.capacity_daily_expired += n;
                    match n < batch as u64 {
                        true => Phase::DeadLetters,
                        false => Phase::Daily,
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
