//! `sdash-writer import`: brings the predecessor dashboard's data along, through the bus.
//!
//! Sources: its database (`--from-sqlite FILE` or `--from-postgres URL`, opened read-only)
//! and its history CSV (`--from-csv FILE`). What they become:
//!
//! * systems → a collector inventory (`--inventory-out`), with tags, `*_file` references
//!   instead of credentials (never read from the source), and
//!   [`SystemRecord`](sdash_proto::SystemRecord)s for the systems sdash does not know yet, so
//!   their history has a name and tags at once;
//! * daily capacity (TiB floats, rounded half away from zero to bytes; the predecessor's local
//!   day taken as the UTC day) → `sdash.v1.history.<system>` records, stored by the writer as
//!   daily rollups marked `imported` that never replace a day sdash measured;
//! * system logs → events inside those history records (not on `sdash.v1.event.*`, so live
//!   subscribers do not see them), optionally kept by retention (`--keep-imported-events`);
//! * alert acknowledgements, assignees and comments → operator commands on alert instances
//!   that are open in sdash now; the assignee list → `remember_assignee` commands.
//!
//! Nothing here writes the database: it reads sdash's database (`--database-url`, read-only)
//! to publish only what is new, publishes with deterministic ids (a re-run publishes the same
//! ids, and the writer's natural keys drop repeats), waits until the writer has stored
//! everything (`--wait`), and prints a [`Summary`] with every skipped row and its reason.

mod alerts;
mod args;
mod csv;
mod days;
mod db;
mod events;
mod inventory;
mod map;
mod predecessor;
mod publish;
mod sdash;
mod summary;
mod systems;

use std::collections::{BTreeMap, HashSet};
use std::time::{Duration, Instant};

use anyhow::Context as _;
use sdash_proto::codec::MAX_PAYLOAD_BYTES;
use sdash_proto::{Envelope, SCHEMA_VERSION, Vendor};
use serde::Serialize;

use crate::config::WriterConfig;
use db::ReadDb;
use predecessor::Predecessor;
use publish::Publisher;
use sdash::SdashState;

pub use args::ImportArgs;
pub use inventory::InventorySystem;
pub use map::{system_id as suggested_system_id, tib_to_bytes};
pub use summary::{Count, Skipped, Summary, ranges};

/// The actor of the commands an import publishes.
pub const ACTOR: &str = "predecessor-import";
/// The `source` of history from the predecessor's database.
pub const SOURCE_DB: &str = "predecessor";
/// The `source` of history from its CSV.
pub const SOURCE_CSV: &str = "predecessor-csv";

const DAY_MS: i64 = 86_400_000;
/// Days per history record (about 80 KiB).
const DAYS_PER_RECORD: usize = 1000;
/// Events per history record, and their approximate size limit.
const EVENTS_PER_RECORD: usize = 2000;
const EVENT_BYTES_PER_RECORD: usize = 256 * 1024;
/// Longest message and details kept from a log row (characters).
const MAX_MESSAGE_CHARS: usize = 8192;
const MAX_DETAILS_CHARS: usize = 32768;
/// The predecessor cut alert keys at this many characters.
const ALERT_KEY_CHARS: usize = 500;

/// A system of this import: where it came from and what it is in sdash.
#[derive(Debug, Clone)]
struct Mapped {
    pred_id: i64,
    id: String,
    name: String,
    vendor: Vendor,
    address: String,
    enabled: bool,
    tags: BTreeMap<String, String>,
    /// sdash has its inventory record already (matched by name).
    known: bool,
    updated_ms: i64,
}

/// Runs an import (see the module docs).
pub async fn import(config: &WriterConfig, args: &ImportArgs) -> anyhow::Result<Summary> {
    if args.from_sqlite.is_none() && args.from_postgres.is_none() && args.from_csv.is_none() {
        anyhow::bail!("nothing to import: give --from-sqlite, --from-postgres and/or --from-csv");
    }
    if args.import_id.trim().is_empty() {
        anyhow::bail!("--import-id must not be empty");
    }
    let password = config.database_password()?;
    let sdash_db = ReadDb::open(&config.database_url, password.as_ref())
        .await
        .context(
            "cannot open sdash's database (--database-url) read-only; start sdash-writer once \
             first: it creates and migrates it",
        )?;
    let sdash = SdashState::read(&sdash_db, &args.import_id)
        .await
        .context("cannot read sdash's database")?;
    let publisher = if args.dry_run {
        None
    } else {
        Some(Publisher::connect(config, "sdash-writer-import").await?)
    };
    let now = sdash_proto::now_ms();
    let mut run = Run {
        config,
        args,
        now,
        today: map::utc_day(now),
        sdash_db,
        sdash,
        out: Summary {
            dry_run: args.dry_run,
            ..Summary::default()
        },
        publisher,
        mapped: Vec::new(),
        days_done: HashSet::new(),
        retention: (0, 0),
        measured_kept: 0,
    };
    let result = run.all().await;
    run.sdash_db.close().await;
    result?;
    Ok(run.out)
}

struct Run<'a> {
    config: &'a WriterConfig,
    args: &'a ImportArgs,
    now: i64,
    today: String,
    sdash_db: ReadDb,
    sdash: SdashState,
    out: Summary,
    publisher: Option<Publisher>,
    mapped: Vec<Mapped>,
    /// (system id, day) imported from the database in this run.
    days_done: HashSet<(String, String)>,
    retention: (u64, u64),
    /// Days sdash measured itself that a source had too (kept as measured).
    measured_kept: u64,
}

impl Run<'_> {
    async fn all(&mut self) -> anyhow::Result<()> {
        let source = if let Some(path) = &self.args.from_sqlite {
            Some(Predecessor {
                db: ReadDb::sqlite_file(path).await?,
                label: format!("SQLite file {}", path.display()),
            })
        } else if let Some(url) = &self.args.from_postgres {
            let password = match &self.args.from_postgres_password_file {
                Some(p) => Some(sdash_service::read_password_file(
                    "--from-postgres-password-file",
                    p,
                )?),
                None => None,
            };
            Some(Predecessor {
                db: ReadDb::open(url, password.as_ref())
                    .await
                    .context("cannot open --from-postgres")?,
                label: "PostgreSQL database".into(),
            })
        } else {
            None
        };
        if let Some(pred) = &source {
            let done = self.database(pred).await;
            pred.db.close().await;
            done?;
        }
        if let Some(path) = self.args.from_csv.clone() {
            self.csv(&path).await?;
        }
        if self.measured_kept > 0 {
            self.out.note(format!(
                "{} day(s) that sdash measured itself are kept as measured (an import never \
                 replaces a measured day)",
                self.measured_kept
            ));
        }
        if self.args.no_events {
            self.out.retention_would_remove = Some((0, 0));
        } else if self.args.keep_events {
            self.out.retention_would_remove = None;
        } else {
            self.out.retention_would_remove = Some(self.retention);
        }
        self.finish().await
    }

    /// Publishes one record (counted, size-checked); with `--dry-run` only checks it.
    async fn publish<T: Serialize>(
        &mut self,
        subject: String,
        env: &Envelope<T>,
    ) -> anyhow::Result<()> {
        let payload = sdash_proto::encode(env).context("cannot encode a record")?;
        if payload.len() > MAX_PAYLOAD_BYTES {
            anyhow::bail!(
                "a record for {subject} is {} bytes, over the bus limit (a bug: records are chunked)",
                payload.len()
            );
        }
        if let Some(p) = &mut self.publisher {
            p.send(subject, env.event_id.clone(), payload).await?;
        }
        Ok(())
    }

    fn envelope<T>(
        &self,
        system_id: &str,
        event_id: String,
        observed_at: i64,
        body: T,
    ) -> Envelope<T> {
        Envelope {
            schema: SCHEMA_VERSION,
            event_id,
            collector_id: self.args.import_id.clone(),
            system_id: system_id.to_owned(),
            observed_at: observed_at.clamp(1, self.now),
            body,
        }
    }

    async fn finish(&mut self) -> anyhow::Result<()> {
        let Some(p) = &mut self.publisher else {
            return Ok(());
        };
        p.finish().await?;
        let (last_seq, published) = (p.last_seq, p.published);
        if published == 0 || self.args.wait.is_zero() {
            self.out.stored = (published == 0).then_some(true);
        } else {
            let started = Instant::now();
            let stored = loop {
                match SdashState::last_stream_seq(&self.sdash_db).await {
                    Ok(seq) if seq >= last_seq => break true,
                    Ok(_) => {}
                    Err(e) => tracing::warn!(error = %e, "cannot read pipeline_status"),
                }
                if started.elapsed() >= self.args.wait {
                    break false;
                }
                tokio::time::sleep(Duration::from_millis(250)).await;
            };
            self.out.stored = Some(stored);
        }
        if self.out.stored == Some(true) {
            self.out.command_outcomes =
                SdashState::command_outcomes(&self.sdash_db, &self.args.import_id).await?;
        }
        Ok(())
    }

    // ---- the predecessor's database ----

    async fn database(&mut self, pred: &Predecessor) -> anyhow::Result<()> {
        pred.check().await?;
        let systems = pred.systems().await?;
        let tags = pred.tags().await?;
        let settings = pred.settings().await?;
        self.settings(&settings);
        let skipped_systems = self.map_systems(&systems);
        self.map_tags(&systems, &tags, &skipped_systems);
        self.write_inventory(&pred.label)?;
        let existing: HashSet<i64> = systems.iter().map(|s| s.id).collect();
        // Rows of deleted systems, and of systems not imported.
        for (table, what) in [
            ("capacity_history", "capacity days"),
            ("system_logs", "events"),
        ] {
            if table == "system_logs" && self.args.no_events {
                continue;
            }
            for (row, owner) in pred.owners(table).await? {
                let reason = match owner {
                    None => "no system_id".to_owned(),
                    Some(o) if !existing.contains(&o) => {
                        format!("orphan: system {o} no longer exists")
                    }
                    Some(o) => match skipped_systems.get(&o) {
                        Some(why) => format!("system {o} is not imported ({why})"),
                        None => continue,
                    },
                };
                self.out.count(what).read += 1;
                self.out.skip(what, table, row, reason);
            }
        }
        let mapped = self.mapped.clone();
        for m in &mapped {
            if !m.known {
                self.system_record(m).await?;
            } else {
                self.out.count("systems").already += 1;
            }
            let rows = pred.history(m.pred_id).await?;
            self.history(m, rows).await?;
            if !self.args.no_events {
                let logs = pred.logs(m.pred_id).await?;
                self.events(m, logs).await?;
            }
        }
        let states = pred.alert_states().await?;
        self.alert_states(&systems, &skipped_systems, states)
            .await?;
        let names = pred.assignees().await?;
        self.assignees(names).await?;
        Ok(())
    }

    fn settings(&mut self, settings: &BTreeMap<String, String>) {
        if let Some(days) = settings
            .get("log_retention_days")
            .and_then(|v| v.parse::<u32>().ok())
        {
            self.out
                .predecessor_settings
                .push(format!("--event-retention-days {days}"));
        }
        if let Some(n) = settings
            .get("max_logs_per_system")
            .and_then(|v| v.parse::<u64>().ok())
        {
            self.out
                .predecessor_settings
                .push(format!("--events-per-system {n}"));
        }
        if let Some(level) = settings.get("min_log_level") {
            self.out.note(format!(
                "the predecessor stored log rows from level {level} up; sdash stores every \
                 level and filters by level when reading (the dashboard's level filter)"
            ));
        }
    }
}

/// The skip reason of a predecessor `field` that is empty or not `what` it should be.
fn unreadable(field: &str, value: Option<&str>, what: &str) -> String {
    match value {
        Some(v) => format!("{field} {v:?} is not {what}"),
        None => format!("{field} is empty"),
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn every_flag_has_an_env_twin_and_help() {
        use clap::CommandFactory;
        let broken = sdash_service::flags_breaking_conventions(&crate::Cli::command());
        assert!(broken.is_empty(), "{broken:?}");
    }
}
