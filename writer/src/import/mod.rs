//! `sdash-writer import`: brings the predecessor dashboard's data along, through the bus.
//!
//! Sources: its database (`--from-sqlite FILE` or `--from-postgres URL`, opened read-only)
//! and its history CSV (`--from-csv FILE`). What they become:
//!
//! * systems → a collector inventory (`--inventory-out`), with tags, `*_file` references
//!   instead of credentials (never read from the source), and [`SystemRecord`]s for the
//!   systems sdash does not know yet, so their history has a name and tags at once;
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

mod csv;
mod db;
mod inventory;
mod map;
mod predecessor;
mod publish;
mod sdash;
mod summary;

use std::collections::{BTreeMap, HashMap, HashSet};
use std::path::PathBuf;
use std::time::{Duration, Instant};

use anyhow::Context as _;
use sdash_proto::codec::{MAX_FUTURE_SKEW_MS, MAX_PAYLOAD_BYTES};
use sdash_proto::subjects::Kind;
use sdash_proto::{
    AlertInstance, Category, CommandKind, CommandRecord, Envelope, EventRecord, FLEET_TARGET,
    HistoryDay, HistoryEvent, HistoryRecord, Level, SCHEMA_VERSION, SystemRecord, Vendor,
};
use sdash_service::parse_duration;
use serde::Serialize;

use crate::config::WriterConfig;
use db::ReadDb;
use predecessor::Predecessor;
use publish::Publisher;
use sdash::SdashState;

pub use inventory::InventorySystem;
pub use map::{system_id as suggested_system_id, tib_to_bytes};
pub use summary::{Count, Skipped, Summary, ranges};

/// The actor of the commands an import publishes.
pub const ACTOR: &str = "predecessor-import";
/// The `source` of history from the predecessor's database.
pub const SOURCE_DB: &str = "predecessor";
/// The `source` of history from its CSV.
pub const SOURCE_CSV: &str = "predecessor-csv";

/// The flags of `sdash-writer import` (the NATS and database flags are the writer's own,
/// given before the command or from the environment).
#[derive(Debug, Clone, clap::Args)]
pub struct ImportArgs {
    /// The predecessor's SQLite database file (opened read-only).
    #[arg(long = "from-sqlite", env = "SDASH_IMPORT_FROM_SQLITE")]
    pub from_sqlite: Option<PathBuf>,
    /// The predecessor's PostgreSQL database, postgres://USER@HOST:PORT/DB (read-only
    /// sessions; the password from the URL, a pgpass file or --from-postgres-password-file).
    #[arg(
        long = "from-postgres",
        env = "SDASH_IMPORT_FROM_POSTGRES",
        conflicts_with = "from_sqlite"
    )]
    pub from_postgres: Option<String>,
    /// File holding the password of --from-postgres (trailing newline removed).
    #[arg(
        long = "from-postgres-password-file",
        env = "SDASH_IMPORT_FROM_POSTGRES_PASSWORD_FILE"
    )]
    pub from_postgres_password_file: Option<PathBuf>,
    /// The predecessor's history CSV (date,system_name,total_tb,used_tb[,free_tb,percent_used]);
    /// its system names are matched, case-insensitively, to sdash's systems, to --inventory and
    /// to the systems of the database imported in the same run.
    #[arg(long = "from-csv", env = "SDASH_IMPORT_FROM_CSV")]
    pub from_csv: Option<PathBuf>,
    /// Write the predecessor's systems as a collector inventory (TOML) to this file; secrets
    /// are referenced as files under --secrets-dir, never imported.
    #[arg(long = "inventory-out", env = "SDASH_IMPORT_INVENTORY_OUT")]
    pub inventory_out: Option<PathBuf>,
    /// Directory of the secret files the written inventory references (relative paths are
    /// relative to the inventory file).
    #[arg(
        long = "secrets-dir",
        env = "SDASH_IMPORT_SECRETS_DIR",
        default_value = "secrets"
    )]
    pub secrets_dir: String,
    /// A collector inventory whose systems' names and ids the CSV's system names may match.
    #[arg(long = "inventory", env = "SDASH_IMPORT_INVENTORY")]
    pub inventory: Option<PathBuf>,
    /// Show what would be imported: nothing is published and no file is written.
    #[arg(long = "dry-run", env = "SDASH_IMPORT_DRY_RUN")]
    pub dry_run: bool,
    /// Mark the imported log events so that event retention (by age and per system) keeps them.
    #[arg(long = "keep-imported-events", env = "SDASH_IMPORT_KEEP_EVENTS")]
    pub keep_events: bool,
    /// Do not import the predecessor's system logs.
    #[arg(long = "no-events", env = "SDASH_IMPORT_NO_EVENTS")]
    pub no_events: bool,
    /// How long to wait for the running writer to store what was published (0 = do not wait).
    #[arg(long = "wait", env = "SDASH_IMPORT_WAIT", default_value = "10m", value_parser = parse_duration)]
    pub wait: Duration,
    /// The id the import publishes under (the envelopes' collector_id, the commands'
    /// publisher); keep it the same between runs so that earlier imports are recognized.
    #[arg(
        long = "import-id",
        env = "SDASH_IMPORT_ID",
        default_value = "sdash-import"
    )]
    pub import_id: String,
}

impl ImportArgs {
    /// The defaults, for the CSV at `csv` (tests, tools).
    pub fn csv(csv: impl Into<PathBuf>) -> ImportArgs {
        ImportArgs {
            from_csv: Some(csv.into()),
            ..ImportArgs::none()
        }
    }

    /// The defaults, without a source.
    pub fn none() -> ImportArgs {
        ImportArgs {
            from_sqlite: None,
            from_postgres: None,
            from_postgres_password_file: None,
            from_csv: None,
            inventory_out: None,
            secrets_dir: "secrets".into(),
            inventory: None,
            dry_run: false,
            keep_events: false,
            no_events: false,
            wait: Duration::from_secs(600),
            import_id: "sdash-import".into(),
        }
    }
}

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

    /// Maps the predecessor's systems to sdash ids; the skipped ones with their reasons.
    fn map_systems(&mut self, systems: &[predecessor::System]) -> HashMap<i64, String> {
        let mut skipped = HashMap::new();
        let mut claimed: HashSet<String> = HashSet::new();
        let sdash_ids: HashSet<String> = self.sdash.systems.iter().map(|s| s.id.clone()).collect();
        for s in systems {
            self.out.count("systems").read += 1;
            let name = s.name.as_deref().unwrap_or_default().trim().to_owned();
            let reason = if name.is_empty() {
                Some("no name".to_owned())
            } else {
                None
            };
            let vendor = match (&reason, &s.vendor) {
                (Some(_), _) => None,
                (None, None) => {
                    skipped.insert(s.id, "no vendor".to_owned());
                    None
                }
                (None, Some(v)) => match map::vendor(v) {
                    Some(v) => Some(v),
                    None => {
                        skipped.insert(s.id, format!("unknown vendor {v:?}"));
                        None
                    }
                },
            };
            if let Some(r) = reason {
                skipped.insert(s.id, r);
            }
            let Some(vendor) = vendor else {
                let why = skipped.get(&s.id).cloned().unwrap_or_default();
                self.out.skip(
                    "systems",
                    "storage_systems",
                    s.id,
                    format!("{name:?}: {why}"),
                );
                continue;
            };
            let Some(address) = s
                .ip_address
                .as_deref()
                .and_then(|h| map::address(h, s.port, vendor))
            else {
                let why = format!("no usable address (ip_address {:?})", s.ip_address);
                self.out.skip(
                    "systems",
                    "storage_systems",
                    s.id,
                    format!("{name:?}: {why}"),
                );
                skipped.insert(s.id, why);
                continue;
            };
            // sdash knows the system already when one of its systems has this name (exactly,
            // else ignoring case) and the vendor; else the id comes from the name, made unique.
            let lower = name.to_lowercase();
            let candidates = |exact: bool| -> Vec<&sdash::SdashSystem> {
                self.sdash
                    .systems
                    .iter()
                    .filter(|x| {
                        (if exact {
                            x.name.trim() == name
                        } else {
                            x.name.trim().to_lowercase() == lower
                        }) && x.vendor == vendor.as_str()
                            && !claimed.contains(&x.id)
                    })
                    .collect()
            };
            let exact = candidates(true);
            let found = if exact.len() == 1 {
                Some(exact[0].clone())
            } else if exact.is_empty() {
                let loose = candidates(false);
                (loose.len() == 1).then(|| loose[0].clone())
            } else {
                None
            };
            let (id, known) = match found {
                Some(x) => (x.id.clone(), x.updated_at > 0),
                None => {
                    let base = map::system_id(&name).unwrap_or_else(|| format!("system-{}", s.id));
                    // An id sdash has only from snapshots or history (no inventory record
                    // yet) of the same vendor is this system: the collector polls it under the
                    // id this import's inventory gave it.
                    let free = |id: &str| {
                        !claimed.contains(id)
                            && (!sdash_ids.contains(id)
                                || self.sdash.systems.iter().any(|x| {
                                    x.id == id && x.updated_at == 0 && x.vendor == vendor.as_str()
                                }))
                    };
                    let mut id = base.clone();
                    if !free(&id) {
                        id = format!("{base}-{}", s.id);
                        let mut n = 2;
                        while !free(&id) {
                            id = format!("{base}-{}-{n}", s.id);
                            n += 1;
                        }
                    }
                    (id, false)
                }
            };
            if id != map::system_id(&name).unwrap_or_default() {
                self.out.note(format!(
                    "storage_systems id {}: {name:?} is sdash system {id}",
                    s.id
                ));
            }
            claimed.insert(id.clone());
            let updated_ms = s
                .updated_at
                .as_deref()
                .or(s.created_at.as_deref())
                .and_then(map::naive_utc_ms)
                .unwrap_or(1);
            self.mapped.push(Mapped {
                pred_id: s.id,
                id,
                name,
                vendor,
                address,
                enabled: s.enabled.unwrap_or(true),
                tags: BTreeMap::new(),
                known,
                updated_ms,
            });
        }
        skipped
    }

    /// Tags: one value per key in sdash; several values of one group are joined.
    fn map_tags(
        &mut self,
        systems: &[predecessor::System],
        tags: &predecessor::Tags,
        skipped_systems: &HashMap<i64, String>,
    ) {
        const WHAT: &str = "system tags";
        let existing: HashSet<i64> = systems.iter().map(|s| s.id).collect();
        let mut keys: BTreeMap<i64, String> = BTreeMap::new();
        let mut used: HashSet<String> = HashSet::new();
        for (gid, name) in &tags.groups {
            let Some(base) = name.as_deref().and_then(map::tag_key) else {
                continue;
            };
            let mut key = base.clone();
            let mut n = 2;
            while used.contains(&key) {
                key = format!("{base}_{n}");
                n += 1;
            }
            if name.as_deref() != Some(key.as_str()) {
                self.out.note(format!(
                    "tag group {:?} is the sdash tag key {key}",
                    name.as_deref().unwrap_or_default()
                ));
            }
            used.insert(key.clone());
            keys.insert(*gid, key);
        }
        let mut values: BTreeMap<i64, BTreeMap<String, Vec<String>>> = BTreeMap::new();
        for (row, system, tag) in &tags.links {
            self.out.count(WHAT).read += 1;
            let (Some(system), Some(tag)) = (system, tag) else {
                self.out.skip(
                    WHAT,
                    "storage_system_tags",
                    *row,
                    "system_id or tag_id is NULL",
                );
                continue;
            };
            if !existing.contains(system) {
                self.out.skip(
                    WHAT,
                    "storage_system_tags",
                    *row,
                    format!("orphan: system {system} no longer exists"),
                );
                continue;
            }
            if let Some(why) = skipped_systems.get(system) {
                self.out.skip(
                    WHAT,
                    "storage_system_tags",
                    *row,
                    format!("system {system} is not imported ({why})"),
                );
                continue;
            }
            let Some((Some(value), group)) = tags.tags.get(tag) else {
                self.out.skip(
                    WHAT,
                    "storage_system_tags",
                    *row,
                    format!("orphan: tag {tag} no longer exists (or has no name)"),
                );
                continue;
            };
            let Some(key) = group.and_then(|g| keys.get(&g)) else {
                self.out.skip(
                    WHAT,
                    "storage_system_tags",
                    *row,
                    format!("orphan: the tag group of tag {tag} no longer exists (or has no name)"),
                );
                continue;
            };
            self.out.count(WHAT).imported += 1;
            values
                .entry(*system)
                .or_default()
                .entry(key.clone())
                .or_default()
                .push(value.clone());
        }
        for m in &mut self.mapped {
            let Some(v) = values.remove(&m.pred_id) else {
                continue;
            };
            for (key, mut vals) in v {
                vals.sort();
                vals.dedup();
                if vals.len() > 1 {
                    self.out.notes.push(format!(
                        "{}: tag {key} has {} values in the predecessor ({}); sdash keeps one \
                         value per key, so they are joined as {:?}",
                        m.id,
                        vals.len(),
                        vals.join(", "),
                        vals.join(", ")
                    ));
                }
                m.tags.insert(key, vals.join(", "));
            }
        }
    }

    fn write_inventory(&mut self, label: &str) -> anyhow::Result<()> {
        let systems: Vec<InventorySystem> = self
            .mapped
            .iter()
            .map(|m| InventorySystem {
                id: m.id.clone(),
                name: m.name.clone(),
                vendor: m.vendor,
                address: m.address.clone(),
                enabled: m.enabled,
                tags: m.tags.clone(),
                predecessor_id: Some(m.pred_id),
            })
            .collect();
        let Some(path) = &self.args.inventory_out else {
            if !systems.is_empty() {
                self.out.note(
                    "no --inventory-out given: the systems' inventory was not written".to_owned(),
                );
            }
            return Ok(());
        };
        self.out.secret_files = inventory::secret_files(&systems, &self.args.secrets_dir);
        if self.args.dry_run {
            self.out.note(format!(
                "would write the inventory of {} system(s) to {}",
                systems.len(),
                path.display()
            ));
            return Ok(());
        }
        inventory::write(
            path,
            &systems,
            &self.args.secrets_dir,
            &format!("the predecessor's {label}"),
        )?;
        self.out.inventory_out = Some(path.display().to_string());
        Ok(())
    }

    async fn system_record(&mut self, m: &Mapped) -> anyhow::Result<()> {
        let body = SystemRecord {
            name: m.name.clone(),
            vendor: m.vendor,
            address: m.address.clone(),
            tags: m.tags.clone(),
            interval_s: 60,
            enabled: m.enabled,
            removed: false,
        };
        // The predecessor's own time: the collector's records of the system are newer and win.
        let at = m.updated_ms.clamp(1, self.now);
        let tags = serde_json::to_string(&m.tags).unwrap_or_default();
        let id = map::uuid5(&[
            "system",
            &m.id,
            &at.to_string(),
            &m.name,
            &m.address,
            &tags,
            &m.enabled.to_string(),
        ]);
        let env = self.envelope(&m.id, id, at, body);
        self.out.count("systems").imported += 1;
        self.publish(Kind::System.subject(&m.id), &env).await
    }

    /// Checks one day's values; the bytes `(total, used, free)` or why it is refused.
    fn day_values(
        &self,
        day: &str,
        total: Option<f64>,
        used: Option<f64>,
    ) -> Result<(u64, u64, u64), String> {
        if day >= self.today.as_str() {
            return Err("today or later: sdash measures the current day itself".into());
        }
        let (Some(total), Some(used)) = (total, used) else {
            return Err(match total {
                None => "total_tb is empty",
                Some(_) => "used_tb is empty",
            }
            .into());
        };
        let (Some(t), Some(u)) = (map::tib_to_bytes(total), map::tib_to_bytes(used)) else {
            return Err(format!(
                "total_tb {total} or used_tb {used} is negative, not finite or too large"
            ));
        };
        if t == 0 {
            return Err("total_tb is 0 (no measurement that day)".into());
        }
        if u > t.saturating_mul(4) {
            return Err(format!(
                "used_tb {used} is implausibly larger than total_tb {total}"
            ));
        }
        Ok((t, u, t.saturating_sub(u)))
    }

    /// Publishes `days` of `system` in records of at most [`DAYS_PER_RECORD`].
    async fn publish_days(
        &mut self,
        system: &str,
        vendor: Vendor,
        source: &str,
        mut days: Vec<HistoryDay>,
    ) -> anyhow::Result<()> {
        days.sort_by(|a, b| a.day.cmp(&b.day));
        for chunk in days.chunks(DAYS_PER_RECORD) {
            let (Some(first), Some(last)) = (chunk.first(), chunk.last()) else {
                continue;
            };
            let id = map::uuid5(&[
                "history-days",
                source,
                system,
                &first.day,
                &last.day,
                &chunk.len().to_string(),
            ]);
            let body = HistoryRecord {
                source: source.to_owned(),
                vendor,
                days: chunk.to_vec(),
                events: Vec::new(),
                keep_events: false,
            };
            let env = self.envelope(system, id, self.now, body);
            self.publish(Kind::History.subject(system), &env).await?;
        }
        Ok(())
    }

    async fn history(
        &mut self,
        m: &Mapped,
        rows: Vec<predecessor::HistoryRow>,
    ) -> anyhow::Result<()> {
        const WHAT: &str = "capacity days";
        let stored = SdashState::days(&self.sdash_db, &m.id).await?;
        let mut seen: HashMap<String, i64> = HashMap::new();
        let mut days = Vec::new();
        let (mut free_mismatch, mut free_zero) = (0_u64, 0_u64);
        for r in rows {
            self.out.count(WHAT).read += 1;
            let Some(day) = r.date.as_deref().and_then(map::day_of) else {
                self.out.skip(
                    WHAT,
                    "capacity_history",
                    r.id,
                    unreadable("date", r.date.as_deref(), "a day"),
                );
                continue;
            };
            let (total, used, free) = match self.day_values(&day, r.total_tb, r.used_tb) {
                Ok(v) => v,
                Err(why) => {
                    self.out.skip(WHAT, "capacity_history", r.id, why);
                    continue;
                }
            };
            if let Some(&first) = seen.get(&day) {
                self.out.skip(
                    WHAT,
                    "capacity_history",
                    r.id,
                    format!("repeats day {day} of row {first}"),
                );
                continue;
            }
            seen.insert(day.clone(), r.id);
            if let (Some(f), Some(t), Some(u)) = (r.free_tb, r.total_tb, r.used_tb) {
                if f == 0.0 && t - u > 0.005 {
                    free_zero += 1;
                } else if (f - (t - u)).abs() > 0.015 {
                    free_mismatch += 1;
                }
            }
            match stored.get(&day).map(String::as_str) {
                Some(source) => {
                    self.out.count(WHAT).already += 1;
                    if source != "imported" {
                        self.measured_kept += 1;
                    }
                }
                None => {
                    self.out.count(WHAT).imported += 1;
                    self.days_done.insert((m.id.clone(), day.clone()));
                    days.push(HistoryDay {
                        day,
                        total_bytes: total,
                        used_bytes: used,
                        free_bytes: free,
                    });
                }
            }
        }
        if free_zero + free_mismatch > 0 {
            self.out.note(format!(
                "{}: free_tb was 0 on {free_zero} day(s) and disagreed with total_tb - used_tb on \
                 {free_mismatch}; free is taken as total - used",
                m.id
            ));
        }
        self.publish_days(&m.id, m.vendor, SOURCE_DB, days).await
    }

    async fn events(&mut self, m: &Mapped, rows: Vec<predecessor::LogRow>) -> anyhow::Result<()> {
        const WHAT: &str = "events";
        let stored =
            SdashState::imported_event_ids(&self.sdash_db, &m.id, &self.args.import_id).await?;
        let max_at = self.now + MAX_FUTURE_SKEW_MS;
        let mut new: Vec<HistoryEvent> = Vec::new();
        let mut notes: BTreeMap<String, u64> = BTreeMap::new();
        for r in rows {
            self.out.count(WHAT).read += 1;
            let Some(at) = r.timestamp.as_deref().and_then(map::naive_utc_ms) else {
                self.out.skip(
                    WHAT,
                    "system_logs",
                    r.id,
                    unreadable("timestamp", r.timestamp.as_deref(), "a time"),
                );
                continue;
            };
            if at <= 0 || at > max_at {
                self.out.skip(
                    WHAT,
                    "system_logs",
                    r.id,
                    format!(
                        "timestamp {:?} is before 1970 or in the future",
                        r.timestamp
                    ),
                );
                continue;
            }
            let level = match r.level.as_deref().map(str::to_lowercase).as_deref() {
                Some("debug" | "trace") => Level::Debug,
                Some("info" | "information" | "notice") => Level::Info,
                Some("warning" | "warn") => Level::Warning,
                Some("error" | "err") => Level::Error,
                Some("critical" | "crit" | "fatal" | "alert" | "emergency") => Level::Critical,
                other => {
                    *notes
                        .entry(format!("level {:?} stored as info", other.unwrap_or("")))
                        .or_default() += 1;
                    Level::Info
                }
            };
            let mut details = r.details.clone();
            let category = match r.category.as_deref().map(str::to_lowercase).as_deref() {
                Some("connection" | "network") => Category::Connection,
                Some("authentication" | "auth") => Category::Authentication,
                Some("api_call" | "api") => Category::ApiCall,
                Some("data_query" | "data" | "query") => Category::DataQuery,
                Some("health" | "hardware") => Category::Health,
                other => {
                    let other = other.unwrap_or("");
                    *notes
                        .entry(format!(
                            "category {other:?} stored as data_query (the original in details)"
                        ))
                        .or_default() += 1;
                    let tag = format!("[predecessor category: {other}]");
                    details = Some(match details {
                        Some(d) => format!("{d}\n{tag}"),
                        None => tag,
                    });
                    Category::DataQuery
                }
            };
            let mut message = r.message.clone().unwrap_or_default();
            if message.trim().is_empty() {
                message = "(no message)".into();
            }
            if message.chars().count() > MAX_MESSAGE_CHARS {
                message = message.chars().take(MAX_MESSAGE_CHARS).collect();
                *notes
                    .entry("message cut to 8192 characters".into())
                    .or_default() += 1;
            }
            if let Some(d) = &details
                && d.chars().count() > MAX_DETAILS_CHARS
            {
                details = Some(d.chars().take(MAX_DETAILS_CHARS).collect());
                *notes
                    .entry("details cut to 32768 characters".into())
                    .or_default() += 1;
            }
            let http_status = r
                .status_code
                .and_then(|c| u16::try_from(c).ok())
                .filter(|c| (100..=999).contains(c));
            let event_id = map::uuid5(&[
                "log",
                &m.id,
                &r.id.to_string(),
                &at.to_string(),
                r.message.as_deref().unwrap_or_default(),
            ]);
            if stored.contains(&event_id) {
                self.out.count(WHAT).already += 1;
                continue;
            }
            self.out.count(WHAT).imported += 1;
            new.push(HistoryEvent {
                event_id,
                observed_at: at,
                event: EventRecord {
                    level,
                    category,
                    message,
                    details,
                    http_status,
                    endpoint: r.api_endpoint.clone(),
                },
            });
        }
        for (what, n) in notes {
            self.out.note(format!("{}: {n} log row(s): {what}", m.id));
        }
        self.count_retention(&m.id, &new).await?;
        // Records of at most EVENTS_PER_RECORD events or about EVENT_BYTES_PER_RECORD.
        let mut chunk: Vec<HistoryEvent> = Vec::new();
        let mut bytes = 0;
        let mut all = new.into_iter().peekable();
        while let Some(e) = all.next() {
            bytes += 200
                + e.event.message.len()
                + e.event.details.as_ref().map_or(0, String::len)
                + e.event.endpoint.as_ref().map_or(0, String::len);
            chunk.push(e);
            if chunk.len() >= EVENTS_PER_RECORD
                || bytes >= EVENT_BYTES_PER_RECORD
                || all.peek().is_none()
            {
                let ids: Vec<&str> = chunk.iter().map(|e| e.event_id.as_str()).collect();
                let id = map::uuid5(&[&["history-events", &m.id], ids.as_slice()].concat());
                let body = HistoryRecord {
                    source: SOURCE_DB.into(),
                    vendor: m.vendor,
                    days: Vec::new(),
                    events: std::mem::take(&mut chunk),
                    keep_events: self.args.keep_events,
                };
                let env = self.envelope(&m.id, id, self.now, body);
                self.publish(Kind::History.subject(&m.id), &env).await?;
                bytes = 0;
            }
        }
        Ok(())
    }

    /// Adds how many of `new` (events of `system`) retention as configured would delete.
    async fn count_retention(&mut self, system: &str, new: &[HistoryEvent]) -> anyhow::Result<()> {
        if new.is_empty() || self.args.keep_events {
            return Ok(());
        }
        let policy = self.config.retention_policy();
        let cutoff = match policy.event_retention_days {
            0 => i64::MIN,
            d => self.now - i64::from(d) * DAY_MS,
        };
        let by_age = new.iter().filter(|e| e.observed_at < cutoff).count() as u64;
        let left = new.len() as u64 - by_age;
        let by_count = if policy.events_per_system > 0 && left > 0 {
            let live = SdashState::live_events_since(&self.sdash_db, system, cutoff.max(0)).await?;
            (live + left)
                .saturating_sub(policy.events_per_system)
                .min(left)
        } else {
            0
        };
        self.retention.0 += by_age;
        self.retention.1 += by_count;
        Ok(())
    }

    async fn alert_states(
        &mut self,
        systems: &[predecessor::System],
        skipped_systems: &HashMap<i64, String>,
        states: Vec<predecessor::AlertStateRow>,
    ) -> anyhow::Result<()> {
        const WHAT: &str = "alert states";
        // Every name of the predecessor, longest first (a name may begin with another's).
        let mut names: Vec<(String, i64)> = Vec::new();
        for s in systems {
            if let Some(n) = &s.name {
                names.push((n.clone(), s.id));
                if n.trim() != n {
                    names.push((n.trim().to_owned(), s.id));
                }
            }
        }
        names.sort_by(|a, b| b.0.len().cmp(&a.0.len()).then_with(|| a.1.cmp(&b.1)));
        let by_pred: HashMap<i64, Mapped> =
            self.mapped.iter().map(|m| (m.pred_id, m.clone())).collect();
        for st in states {
            self.out.count(WHAT).read += 1;
            let Some(key) = st.alert_key.clone().filter(|k| !k.is_empty()) else {
                self.out.skip(WHAT, "alert_states", st.id, "no alert_key");
                continue;
            };
            let acknowledged = st.acknowledged.unwrap_or(false);
            if !acknowledged && st.assignee.is_none() && st.comment.is_none() {
                self.out.skip(
                    WHAT,
                    "alert_states",
                    st.id,
                    "nothing to bring: not acknowledged, no assignee, no comment",
                );
                continue;
            }
            let Some((name, pred_id)) = names
                .iter()
                .find(|(n, _)| key.starts_with(&format!("{n}|")))
                .cloned()
            else {
                self.out.skip(
                    WHAT,
                    "alert_states",
                    st.id,
                    "orphan: its alert_key names no system of the predecessor",
                );
                continue;
            };
            let Some(m) = by_pred.get(&pred_id) else {
                let why = skipped_systems.get(&pred_id).cloned().unwrap_or_default();
                self.out.skip(
                    WHAT,
                    "alert_states",
                    st.id,
                    format!("system {pred_id} is not imported ({why})"),
                );
                continue;
            };
            // The alert: sdash's open instance whose key (cut like the predecessor's) is the
            // key, else the one whose alert id follows the name (its title differs).
            let rest = &key[name.len() + 1..];
            let open: Vec<&sdash::OpenAlert> = self
                .sdash
                .open_alerts
                .iter()
                .filter(|a| a.system_id == m.id)
                .collect();
            let cut = |a: &sdash::OpenAlert| -> String {
                format!("{name}|{}|{}", a.alert_id, a.title)
                    .chars()
                    .take(ALERT_KEY_CHARS)
                    .collect()
            };
            let found = open
                .iter()
                .find(|a| cut(a) == key)
                .or_else(|| {
                    open.iter()
                        .filter(|a| {
                            rest.starts_with(&format!("{}|", a.alert_id))
                                || (key.chars().count() >= ALERT_KEY_CHARS
                                    && a.alert_id.starts_with(rest))
                        })
                        .max_by_key(|a| a.alert_id.len())
                })
                .map(|a| (*a).clone());
            let Some(alert) = found else {
                self.out.skip(
                    WHAT,
                    "alert_states",
                    st.id,
                    "no open alert in sdash matches (the alert is gone, or sdash has not seen it \
                     open yet: import again after the collector's first polls)",
                );
                continue;
            };
            let at = st
                .updated_at
                .as_deref()
                .and_then(map::naive_utc_ms)
                .unwrap_or(self.now)
                .clamp(1, self.now);
            let instance = AlertInstance {
                alert_id: alert.alert_id.clone(),
                opened_at: alert.first_seen,
            };
            let mut commands: Vec<CommandRecord> = Vec::new();
            let command = |kind: CommandKind| CommandRecord {
                kind,
                actor: ACTOR.into(),
                alert: Some(instance.clone()),
                assignee: None,
                comment: None,
            };
            if acknowledged {
                commands.push(command(CommandKind::Acknowledge));
            }
            if let Some(a) = &st.assignee {
                if a.chars().count() <= sdash_proto::command::MAX_ASSIGNEE_CHARS {
                    commands.push(CommandRecord {
                        assignee: Some(a.clone()),
                        ..command(CommandKind::Assign)
                    });
                } else {
                    self.out.note(format!(
                        "alert_states id {}: the assignee is longer than {} characters; not assigned",
                        st.id,
                        sdash_proto::command::MAX_ASSIGNEE_CHARS
                    ));
                }
            }
            if let Some(c) = &st.comment {
                let chars: Vec<char> = c.chars().collect();
                for part in chars.chunks(sdash_proto::command::MAX_COMMENT_CHARS) {
                    commands.push(CommandRecord {
                        comment: Some(part.iter().collect()),
                        ..command(CommandKind::Comment)
                    });
                }
            }
            let mut new = 0;
            for (n, c) in commands.into_iter().enumerate() {
                let id = map::uuid5(&[
                    "alert-state",
                    &st.id.to_string(),
                    c.kind.as_str(),
                    &n.to_string(),
                    &m.id,
                    &instance.alert_id,
                    &instance.opened_at.to_string(),
                ]);
                if self.sdash.audited.contains(&id) {
                    continue;
                }
                new += 1;
                let subject = c.kind.subject(&m.id);
                let env = self.envelope(&m.id, id, at, c);
                self.publish(subject, &env).await?;
            }
            if new > 0 {
                self.out.count(WHAT).imported += 1;
            } else {
                self.out.count(WHAT).already += 1;
            }
        }
        Ok(())
    }

    async fn assignees(&mut self, rows: Vec<predecessor::AssigneeRow>) -> anyhow::Result<()> {
        const WHAT: &str = "assignee names";
        for r in rows {
            self.out.count(WHAT).read += 1;
            let Some(name) = r.name.clone() else {
                self.out.skip(WHAT, "assignee_history", r.id, "no name");
                continue;
            };
            if name.chars().count() > sdash_proto::command::MAX_ASSIGNEE_CHARS {
                self.out.skip(
                    WHAT,
                    "assignee_history",
                    r.id,
                    format!(
                        "longer than {} characters",
                        sdash_proto::command::MAX_ASSIGNEE_CHARS
                    ),
                );
                continue;
            }
            let id = map::uuid5(&["assignee", &name]);
            if self.sdash.assignees.contains(&name) || self.sdash.audited.contains(&id) {
                self.out.count(WHAT).already += 1;
                continue;
            }
            self.out.count(WHAT).imported += 1;
            let at = r
                .used_at
                .as_deref()
                .and_then(map::naive_utc_ms)
                .unwrap_or(self.now);
            let body = CommandRecord {
                kind: CommandKind::RememberAssignee,
                actor: ACTOR.into(),
                alert: None,
                assignee: Some(name),
                comment: None,
            };
            let env = self.envelope(FLEET_TARGET, id, at, body);
            self.publish(CommandKind::RememberAssignee.subject(FLEET_TARGET), &env)
                .await?;
        }
        Ok(())
    }

    // ---- the history CSV ----

    async fn csv(&mut self, path: &std::path::Path) -> anyhow::Result<()> {
        const WHAT: &str = "capacity days";
        let text = std::fs::read_to_string(path)
            .with_context(|| format!("cannot read {}", path.display()))?;
        let label = format!("CSV {}", path.display());
        let (rows, skips) = csv::parse(&text).with_context(|| format!("{}", path.display()))?;
        for s in &skips {
            self.out.count(WHAT).read += 1;
            self.out.skip(WHAT, &label, s.line, s.reason.clone());
        }
        // Names (and ids) → systems: this run's, sdash's, the --inventory's.
        let mut names: HashMap<String, Vec<(String, Vendor)>> = HashMap::new();
        let mut add = |key: &str, id: &str, vendor: Vendor| {
            let list = names.entry(key.trim().to_lowercase()).or_default();
            if !list.iter().any(|(i, _)| i == id) {
                list.push((id.to_owned(), vendor));
            }
        };
        for m in &self.mapped {
            add(&m.name, &m.id, m.vendor);
        }
        for s in &self.sdash.systems {
            if let Some(v) = Vendor::parse(&s.vendor) {
                add(&s.name, &s.id, v);
                add(&s.id, &s.id, v);
            }
        }
        if let Some(inv) = &self.args.inventory {
            for k in inventory::read_known(inv)? {
                add(&k.name, &k.id, k.vendor);
                add(&k.id, &k.id, k.vendor);
            }
        }
        let mut by_system: BTreeMap<(String, Vendor), Vec<csv::CsvRow>> = BTreeMap::new();
        for r in rows {
            self.out.count(WHAT).read += 1;
            match names.get(&r.system_name.to_lowercase()).map(Vec::as_slice) {
                Some([(id, vendor)]) => by_system.entry((id.clone(), *vendor)).or_default().push(r),
                Some(several) if several.len() > 1 => {
                    let ids: Vec<&str> = several.iter().map(|(i, _)| i.as_str()).collect();
                    self.out.skip(
                        WHAT,
                        &label,
                        r.line,
                        format!("system_name {:?} matches several systems: {}", r.system_name, ids.join(", ")),
                    );
                }
                _ => self.out.skip(
                    WHAT,
                    &label,
                    r.line,
                    format!(
                        "system_name {:?} matches no system (of sdash, --inventory or the imported database)",
                        r.system_name
                    ),
                ),
            }
        }
        for ((system, vendor), rows) in by_system {
            let stored = SdashState::days(&self.sdash_db, &system).await?;
            let mut days = Vec::new();
            let mut free_mismatch = 0_u64;
            for r in rows {
                let (total, used, free) =
                    match self.day_values(&r.day, Some(r.total_tib), Some(r.used_tib)) {
                        Ok(v) => v,
                        Err(why) => {
                            self.out.skip(WHAT, &label, r.line, why);
                            continue;
                        }
                    };
                if let Some(f) = r.free_tib
                    && f != 0.0
                    && (f - (r.total_tib - r.used_tib)).abs() > 0.015
                {
                    free_mismatch += 1;
                }
                if self.days_done.contains(&(system.clone(), r.day.clone())) {
                    self.out.count(WHAT).already += 1;
                    continue;
                }
                match stored.get(&r.day).map(String::as_str) {
                    Some(source) => {
                        self.out.count(WHAT).already += 1;
                        if source != "imported" {
                            self.measured_kept += 1;
                        }
                    }
                    None => {
                        self.out.count(WHAT).imported += 1;
                        days.push(HistoryDay {
                            day: r.day,
                            total_bytes: total,
                            used_bytes: used,
                            free_bytes: free,
                        });
                    }
                }
            }
            if free_mismatch > 0 {
                self.out.note(format!(
                    "{system}: free_tb disagreed with total_tb - used_tb on {free_mismatch} CSV \
                     row(s); free is taken as total - used"
                ));
            }
            self.publish_days(&system, vendor, SOURCE_CSV, days).await?;
        }
        Ok(())
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
