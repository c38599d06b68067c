//! Retention, for either backend: deletes in statements of a few thousand rows, in steps of a
//! bounded time ([`step`], one transaction each) that the writer runs between its batches, so
//! that a large pass never holds up ingestion: each step ends after its time budget, the next
//! batch commits, then the pass goes on where it stopped.
//!
//! Every statement finds its rows through an index and reads about as many as it deletes:
//! events, raw samples and dead letters by their time index, daily rollups by their `day` index,
//! oldest first, each statement starting where the one before stopped ([`Mark`]); hourly rollups
//! (whose only index is their key `(system_id, hour, …)`, to keep them small) system by system,
//! a few systems per statement; the event limit one system at a time. The tiers of capacity,
//! pools and performance are pruned alike ([`RAW`], [`HOURLY`], [`DAILY`]).

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

/// How far a walk along a time column got: the rows of the pass before it are deleted. The next
/// statement starts there (rows at the mark itself may remain), so it neither reads again the
/// rows deleted before (in PostgreSQL they stay in the index until vacuumed) nor those it must
/// keep (kept events).
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
enum Mark {
    Int(i64),
    Text(String),
}

impl Mark {
    const FIRST_INT: Mark = Mark::Int(i64::MIN);
    const FIRST_TEXT: Mark = Mark::Text(String::new());

    fn bind(&self) -> Bind<'_> {
        match self {
            Mark::Int(v) => Bind::Int(*v),
            Mark::Text(v) => Bind::Text(v),
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
enum Phase {
    EventsExpired {
        from: Mark,
    },
    /// Event limits, system by system (of those with events) after `after`, and the cut of the
    /// one being trimmed (its newest event beyond the limit) with how far its trimming got.
    EventsOverLimit {
        after: String,
        trimming: Option<(String, i64, String, Mark)>,
    },
    /// The raw tier `RAW[tier]`.
    Samples {
        tier: usize,
        from: Mark,
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
        from: Mark,
    },
    DeadLetters {
        from: Mark,
    },
    Done,
}

/// One retention pass in progress (see [`crate::Store::start_retention`]).
#[derive(Debug, Clone)]
pub struct RetentionRun {
    cut: Cutoffs,
    phase: Phase,
    /// Statements the pass ran so far (each bounded: at most `cut.batch` rows, found through
    /// an index).
    statements: u64,
    /// What the pass deleted so far.
    pub deleted: RetentionOutcome,
}

impl RetentionRun {
    pub(crate) fn new(cut: Cutoffs) -> RetentionRun {
        RetentionRun {
            cut,
            phase: Phase::EventsExpired {
                from: Mark::FIRST_INT,
            },
            statements: 0,
            deleted: RetentionOutcome::default(),
        }
    }

    /// Whether the pass is over.
    pub fn is_done(&self) -> bool {
        self.phase == Phase::Done
    }

    /// The statements the pass ran so far: each deletes or reads at most the pass's batch of
    /// rows (or the events of one system) through an index.
    pub fn statements(&self) -> u64 {
        self.statements
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
        run.statements += 1;
        run.phase = match phase {
            Phase::EventsExpired { from } => {
                let (n, next) = delete_oldest::<D>(
                    c,
                    ("events", "observed_at"),
                    &from,
                    "observed_at < $3 AND NOT keep", // kept (imported) events stay
                    &[Bind::Int(run.cut.events_before)],
                    batch,
                )
                .await?;
                out.events_expired += n;
                match next {
                    Some(from) => Phase::EventsExpired { from },
                    None if run.cut.keep_per_system > 0 => Phase::EventsOverLimit {
                        after: String::new(),
                        trimming: None,
                    },
                    None => Phase::Samples {
                        tier: 0,
                        from: Mark::FIRST_INT,
                    },
                }
            }
            Phase::EventsOverLimit {
                after,
                trimming: Some((system, at, id, from)),
            } => {
                let (n, next) = delete_oldest::<D>(
                    c,
                    ("events", "observed_at"),
                    &from,
                    "system_id = $3 AND (observed_at, event_id) <= ($4, $5) AND NOT keep",
                    &[Bind::Text(&system), Bind::Int(at), Bind::Text(&id)],
                    batch,
                )
                .await?;
                out.events_over_limit += n;
                Phase::EventsOverLimit {
                    after,
                    trimming: next.map(|from| (system, at, id, from)),
                }
            }
            Phase::EventsOverLimit {
                after,
                trimming: None,
            } => {
                // The next system with events: one step down the (system, time) index, where
                // counting every system's events at once would read the whole table.
                let next = D::Db::fetch_all(
                    c,
                    "SELECT system_id FROM events WHERE system_id > $1 ORDER BY system_id LIMIT 1"
                        .into_sql_str(),
                    &[Bind::Text(&after)],
                )
                .await?;
                match next.first() {
                    None => Phase::Samples {
                        tier: 0,
                        from: Mark::FIRST_INT,
                    },
                    Some(row) => {
                        let system = D::Db::text(row, 0)?;
                        // Its newest event beyond the limit: it and everything older go.
                        run.statements += 1;
                        let newest_beyond = D::Db::fetch_all(
                            c,
                            "SELECT observed_at, event_id FROM events WHERE system_id = $1 AND NOT keep \
                             ORDER BY observed_at DESC, event_id DESC LIMIT 1 OFFSET $2"
                                .into_sql_str(),
                            &[Bind::Text(&system), Bind::Int(run.cut.keep_per_system)],
                        )
                        .await?;
                        let trimming = match newest_beyond.first() {
                            Some(row) => {
                                out.systems_trimmed += 1;
                                Some((
                                    system.clone(),
                                    D::Db::int(row, 0)?,
                                    D::Db::text(row, 1)?,
                                    Mark::FIRST_INT,
                                ))
                            }
                            None => None,
                        };
                        Phase::EventsOverLimit {
                            after: system,
                            trimming,
                        }
                    }
                }
            }
            Phase::Samples { tier, from } => {
                let (table, before) = &RAW[tier];
                let (n, next) = delete_oldest::<D>(
                    c,
                    (table.name, "observed_at"),
                    &from,
                    "observed_at < $3",
                    &[Bind::Int(before(&run.cut))],
                    batch,
                )
                .await?;
                *(table.deleted)(&mut out) += n;
                match (next, tier + 1 < RAW.len(), run.cut.hourly_before) {
                    (Some(from), _, _) => Phase::Samples { tier, from },
                    (None, true, _) => Phase::Samples {
                        tier: tier + 1,
                        from: Mark::FIRST_INT,
                    },
                    (None, false, i64::MIN) => Phase::Daily {
                        tier: 0,
                        from: Mark::FIRST_TEXT,
                    },
                    (None, false, _) => Phase::Hourly {
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
                    (true, false) => Phase::Daily {
                        tier: 0,
                        from: Mark::FIRST_TEXT,
                    },
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
                let sql = sqlx::AssertSqlSafe(D::delete_hours(table.name, key)).into_sql_str();
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
            Phase::Daily { tier, from } => match run.cut.daily_before.clone() {
                None => Phase::DeadLetters {
                    from: Mark::FIRST_INT,
                },
                Some(day) => {
                    let table = &DAILY[tier];
                    let (n, next) = delete_oldest::<D>(
                        c,
                        (table.name, "day"),
                        &from,
                        "day < $3",
                        &[Bind::Text(&day)],
                        batch,
                    )
                    .await?;
                    *(table.deleted)(&mut out) += n;
                    match (next, tier + 1 < DAILY.len()) {
                        (Some(from), _) => Phase::Daily { tier, from },
                        (None, true) => Phase::Daily {
                            tier: tier + 1,
                            from: Mark::FIRST_TEXT,
                        },
                        (None, false) => Phase::DeadLetters {
                            from: Mark::FIRST_INT,
                        },
                    }
                }
            },
            Phase::DeadLetters { from } => {
                let (n, next) = delete_oldest::<D>(
                    c,
                    ("dead_letters", "received_at"),
                    &from,
                    "received_at < $3",
                    &[Bind::Int(run.cut.dead_letters_before)],
                    batch,
                )
                .await?;
                out.dead_letters_expired += n;
                match next {
                    Some(from) => Phase::DeadLetters { from },
                    None => Phase::Done,
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

/// Deletes the `batch` oldest rows (by `column`, from `from` on) of `table` that match
/// `condition` (which binds `$3 …`: `binds`): how many went, and where the next statement
/// starts when it was a whole batch (`None`: no more rows to delete).
async fn delete_oldest<D: Dialect>(
    c: &mut Conn<D>,
    (table, column): (&str, &str),
    from: &Mark,
    condition: &str,
    binds: &[Bind<'_>],
    batch: i64,
) -> Result<(u64, Option<Mark>), StoreError> {
    let sql = sqlx::AssertSqlSafe(std::sync::Arc::<str>::from(D::delete_oldest(
        table,
        &format!("{column} >= $2 AND {condition}"),
        column,
    )))
    .into_sql_str();
    let binds: Vec<Bind<'_>> = [Bind::Int(batch), from.bind()]
        .into_iter()
        .chain(binds.iter().copied())
        .collect();
    let gone = D::Db::fetch_all(c, sql, &binds).await?;
    let mut newest: Option<Mark> = None;
    for row in &gone {
        let at = match from {
            Mark::Int(_) => Mark::Int(D::Db::int(row, 0)?),
            Mark::Text(_) => Mark::Text(D::Db::text(row, 0)?),
        };
        newest = newest.max(Some(at));
    }
    Ok(match gone.len() as u64 {
        n if n < batch as u64 => (n, None),
        n => (n, newest),
    })
}
