//! Turning a batch of raw messages into rows: decoding and validation (bad messages become
//! dead letters), sorted by kind into a [`Plan`]; and the row types both backends write. Pure
//! code; history is derived from the snapshots in [`super::derive`].

use std::collections::{BTreeMap, HashMap, HashSet};

use sdash_proto::codec::{MAX_PAYLOAD_BYTES, decode_record};
use sdash_proto::{Envelope, Record, Snapshot};

use super::Incoming;
use super::commands::CommandRow;
use super::dead_letter::DeadLetterReason;

/// u64 to the i64 of a BIGINT column, saturating.
pub(crate) fn to_i64(v: u64) -> i64 {
    i64::try_from(v).unwrap_or(i64::MAX)
}

/// PostgreSQL text cannot hold NUL; SQLite can, but both backends store the same text.
pub(crate) fn clean(s: &str) -> String {
    if s.contains('\0') {
        s.replace('\0', "\u{FFFD}")
    } else {
        s.to_owned()
    }
}

pub(crate) fn clean_opt(s: &Option<String>) -> Option<String> {
    s.as_deref().map(clean)
}

#[derive(Debug, Clone)]
pub(crate) struct DeadRow {
    pub stream_seq: i64,
    pub subject: String,
    pub payload: Vec<u8>,
    pub reason: String,
    pub deliveries: i64,
    pub received_at: i64,
}

#[derive(Debug, Clone)]
pub(crate) struct EventRow {
    pub event_id: String,
    pub system_id: String,
    pub collector_id: String,
    pub observed_at: i64,
    pub level: &'static str,
    pub level_rank: i16,
    pub category: &'static str,
    pub message: String,
    pub details: Option<String>,
    pub http_status: Option<i32>,
    pub endpoint: Option<String>,
}

#[derive(Debug, Clone)]
pub(crate) struct SystemRow {
    pub id: String,
    pub name: String,
    pub vendor: &'static str,
    pub address: String,
    pub tags: String,
    pub interval_s: i64,
    pub enabled: bool,
    pub removed: bool,
    pub updated_at: i64,
}

#[derive(Debug, Clone)]
pub(crate) struct CollectorRow {
    pub id: String,
    pub version: String,
    pub systems: String,
    pub polls: i64,
    pub failures: i64,
    pub outbox_depth: i64,
    pub started_at: i64,
    pub last_seen: i64,
}

/// The latest state of a system as stored (what history is derived against).
#[derive(Debug, Clone)]
pub(crate) struct StoredState {
    pub system_id: String,
    pub observed_at: i64,
    pub status: String,
    pub hardware: String,
    pub cluster: String,
    pub last_online_at: Option<i64>,
    /// The last known capacity `(used, total)` bytes: the stored state's, else (its last
    /// snapshot had none, e.g. while unreachable) the newest capacity sample's. What capacity
    /// threshold crossings are derived against.
    pub capacity: Option<(i64, i64)>,
}

/// What a change about a system carries for routing, from its `systems` row.
#[derive(Debug, Clone, Default, PartialEq)]
pub(crate) struct SystemContext {
    /// The inventory name (`None` while only a snapshot named the system).
    pub name: Option<String>,
    pub tags: BTreeMap<String, String>,
}

/// One derived change, encoded, as stored in `change_outbox` until JetStream acknowledged it.
#[derive(Debug, Clone)]
pub(crate) struct OutboxRow {
    pub event_id: String,
    pub system_id: String,
    pub kind: &'static str,
    pub payload: Vec<u8>,
    pub created_at: i64,
}

/// An alert row that is open in the database.
#[derive(Debug, Clone)]
pub(crate) struct OpenAlertRow {
    pub id: i64,
    pub system_id: String,
    pub alert_id: String,
    /// When sdash first saw this episode open (it names the alert instance in changes).
    pub first_seen: i64,
    /// Its stored details, when the backend read them: an alert seen again with the same details
    /// then only needs its `last_seen` moved.
    pub details: Option<AlertDetails>,
}

/// The details of an alert as stored.
#[derive(Debug, Clone, PartialEq, serde::Deserialize)]
pub(crate) struct AlertDetails {
    pub severity: String,
    pub vendor_severity: String,
    pub title: String,
    pub component: Option<String>,
    pub opened_at: Option<i64>,
}

#[derive(Debug, Clone)]
pub(crate) struct StateRow {
    pub system_id: String,
    pub event_id: String,
    pub collector_id: String,
    pub observed_at: i64,
    pub vendor: &'static str,
    pub status: &'static str,
    pub hardware: &'static str,
    pub cluster: &'static str,
    pub name: Option<String>,
    pub version: Option<String>,
    pub model: Option<String>,
    pub serial: Option<String>,
    pub total_bytes: Option<i64>,
    pub used_bytes: Option<i64>,
    pub free_bytes: Option<i64>,
    pub data_reduction: Option<f64>,
    pub alert_count: i32,
    pub components: String,
    pub alerts: String,
    pub poll_ms: i64,
    pub error: Option<String>,
    pub last_online_at: Option<i64>,
    pub provisioned_bytes: Option<i64>,
    /// `topology.cluster_type`, its kebab-case word.
    pub cluster_type: Option<&'static str>,
    /// JSON of the snapshot's proto `Topology`, `Pool` array and `Performance`.
    pub topology: Option<String>,
    pub pools: String,
    pub performance: Option<String>,
}

#[derive(Debug, Clone)]
pub(crate) struct TransitionRow {
    pub system_id: String,
    pub at: i64,
    pub field: &'static str,
    pub from_value: Option<String>,
    pub to_value: String,
    pub event_id: String,
}

/// One alert episode (open .. cleared) touched by the batch.
#[derive(Debug, Clone)]
pub(crate) struct AlertEpisode {
    /// The row id when the episode is already stored (open) in the database.
    pub existing: Option<i64>,
    pub dirty: bool,
    /// Whether a snapshot of the batch showed the alert (its details are then current).
    pub seen: bool,
    /// Stored, seen again with the details it has stored and not cleared: only `last_seen` moves.
    pub touch_only: bool,
    pub system_id: String,
    pub alert_id: String,
    pub severity: &'static str,
    pub vendor_severity: String,
    pub title: String,
    pub component: Option<String>,
    pub opened_at: Option<i64>,
    pub first_seen: i64,
    pub last_seen: i64,
    pub cleared_at: Option<i64>,
}

#[derive(Debug, Clone, PartialEq)]
pub(crate) struct SampleRow {
    pub system_id: String,
    pub observed_at: i64,
    pub total_bytes: i64,
    pub used_bytes: i64,
    pub free_bytes: i64,
}

/// Adding up rollups: what the upserts of the rollup tables do to a stored row.
pub(crate) trait Merge {
    /// Adds `other` (of samples none of which `self` counted).
    fn add(&mut self, other: &Self);
}

/// A rollup of samples: count, min, max and sum of used, and the last sample's values (the
/// columns `capacity_hourly` and `capacity_daily` share after their key; `pool_hourly` and
/// `pool_daily` have all but `free_bytes`).
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Rollup {
    pub samples: i64,
    pub used_min: i64,
    pub used_max: i64,
    pub used_sum: f64,
    pub last_at: i64,
    pub total_bytes: i64,
    pub used_bytes: i64,
    pub free_bytes: i64,
}

impl Rollup {
    /// The rollup of one sample.
    pub fn of(s: &SampleRow) -> Rollup {
        Rollup::one(s.observed_at, s.total_bytes, s.used_bytes, s.free_bytes)
    }

    /// The rollup of one sample at `at`.
    pub fn one(at: i64, total_bytes: i64, used_bytes: i64, free_bytes: i64) -> Rollup {
        Rollup {
            samples: 1,
            used_min: used_bytes,
            used_max: used_bytes,
            used_sum: used_bytes as f64,
            last_at: at,
            total_bytes,
            used_bytes,
            free_bytes,
        }
    }
}

impl Merge for Rollup {
    /// Counts and sums add, min and max widen, the later (or equally late) last sample wins.
    fn add(&mut self, other: &Rollup) {
        self.samples += other.samples;
        self.used_min = self.used_min.min(other.used_min);
        self.used_max = self.used_max.max(other.used_max);
        self.used_sum += other.used_sum;
        if other.last_at >= self.last_at {
            self.last_at = other.last_at;
            self.total_bytes = other.total_bytes;
            self.used_bytes = other.used_bytes;
            self.free_bytes = other.free_bytes;
        }
    }
}

/// One row of a rollup tier: the rollup of one series' samples (a system's capacity or
/// performance, one pool of a system: `key`) in one UTC period (`period`: the hour's start in
/// ms, or the day as `YYYY-MM-DD`).
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct TierRow<K, P, R> {
    pub key: K,
    pub period: P,
    pub rollup: R,
}

/// One `capacity_hourly` row (key: the system id).
pub(crate) type HourlyRow = TierRow<String, i64, Rollup>;
/// One `capacity_daily` row.
pub(crate) type DailyRow = TierRow<String, String, Rollup>;

/// A pool of a system: `pool` is `<kind>:<name>` (`aggregate:aggr1`).
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub(crate) struct PoolKey {
    pub system_id: String,
    pub pool: String,
}

/// One pool's capacity in one snapshot.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct PoolSample {
    pub key: PoolKey,
    pub observed_at: i64,
    pub total_bytes: i64,
    pub used_bytes: i64,
}

/// The performance metrics, in the order of [`PerformanceSample::metrics`]: the column names of
/// `performance_samples` and the column prefixes of `performance_hourly` and `performance_daily`.
pub const PERFORMANCE_METRICS: [&str; 6] = [
    "read_iops",
    "write_iops",
    "read_latency_us",
    "write_latency_us",
    "read_bytes_per_s",
    "write_bytes_per_s",
];

/// A system's performance in one snapshot (`None`: not reported).
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct PerformanceSample {
    pub system_id: String,
    pub observed_at: i64,
    pub metrics: [Option<f64>; 6],
}

/// A rollup of performance samples: per metric, how many samples had it (`n`), their sum and
/// their maximum (`None` while no sample had it).
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct PerformanceRollup {
    pub samples: i64,
    pub last_at: i64,
    pub n: [i64; 6],
    pub sum: [f64; 6],
    pub max: [Option<f64>; 6],
}

impl PerformanceRollup {
    /// The rollup of one sample.
    pub fn of(s: &PerformanceSample) -> PerformanceRollup {
        PerformanceRollup {
            samples: 1,
            last_at: s.observed_at,
            n: s.metrics.map(|m| i64::from(m.is_some())),
            sum: s.metrics.map(|m| m.unwrap_or(0.0)),
            max: s.metrics,
        }
    }
}

impl Merge for PerformanceRollup {
    fn add(&mut self, other: &PerformanceRollup) {
        self.samples += other.samples;
        self.last_at = self.last_at.max(other.last_at);
        for i in 0..PERFORMANCE_METRICS.len() {
            self.n[i] += other.n[i];
            self.sum[i] += other.sum[i];
            self.max[i] = match (self.max[i], other.max[i]) {
                (Some(a), Some(b)) => Some(a.max(b)),
                (a, b) => a.or(b),
            };
        }
    }
}

/// A batch, decoded and sorted by kind.
#[derive(Debug, Default)]
pub(crate) struct Plan {
    pub dead: Vec<DeadRow>,
    pub events: Vec<EventRow>,
    pub systems: Vec<SystemRow>,
    pub collectors: Vec<CollectorRow>,
    /// Snapshots by system id, each list in observed_at order, duplicates (same event id) removed.
    pub snapshots: BTreeMap<String, Vec<Envelope<Snapshot>>>,
    /// Operator commands in stream order, duplicates (same event id) removed.
    pub commands: Vec<CommandRow>,
    /// Imported history (`sdash.v1.history.*`).
    pub history: super::history::HistoryRows,
    pub last_stream_seq: Option<i64>,
    pub redelivered: u64,
}

pub(crate) fn plan(batch: &[Incoming], max_deliver: u64, now: i64) -> Plan {
    let mut plan = Plan::default();
    let mut seen_snapshots: HashSet<String> = HashSet::new();
    let mut seen_commands: HashSet<String> = HashSet::new();
    let mut newest_system: HashMap<String, usize> = HashMap::new();
    let mut newest_collector: HashMap<String, usize> = HashMap::new();
    for inc in batch {
        let seq = to_i64(inc.stream_seq);
        plan.last_stream_seq = Some(plan.last_stream_seq.map_or(seq, |s| s.max(seq)));
        if inc.deliveries > 1 {
            plan.redelivered += 1;
        }
        let refused = if inc.payload.len() > MAX_PAYLOAD_BYTES {
            Some(DeadLetterReason::oversized(
                inc.payload.len(),
                MAX_PAYLOAD_BYTES,
            ))
        } else if max_deliver > 0 && inc.deliveries > max_deliver {
            Some(DeadLetterReason::poison(inc.deliveries, max_deliver))
        } else {
            None
        };
        let record = match refused {
            Some(reason) => Err(reason),
            None => decode_record(&inc.subject, &inc.payload)
                .map_err(|e| DeadLetterReason::Rejected(e.to_string())),
        };
        match record {
            Err(reason) => plan.dead.push(DeadRow {
                stream_seq: seq,
                subject: clean(&inc.subject),
                payload: inc.payload.clone(),
                reason: clean(&reason.to_string()),
                deliveries: to_i64(inc.deliveries),
                received_at: now,
            }),
            Ok(Record::Event(e)) => plan.events.push(EventRow {
                event_id: clean(&e.event_id),
                system_id: e.system_id.clone(),
                collector_id: clean(&e.collector_id),
                observed_at: e.observed_at,
                level: e.body.level.as_str(),
                level_rank: e.body.level.rank(),
                category: e.body.category.as_str(),
                message: clean(&e.body.message),
                details: clean_opt(&e.body.details),
                http_status: e.body.http_status.map(i32::from),
                endpoint: clean_opt(&e.body.endpoint),
            }),
            Ok(Record::System(e)) => {
                let tags = serde_json::to_string(&e.body.tags).unwrap_or_else(|_| "{}".into());
                let row = SystemRow {
                    id: e.system_id.clone(),
                    name: clean(&e.body.name),
                    vendor: e.body.vendor.as_str(),
                    address: clean(&e.body.address),
                    tags: clean(&tags),
                    interval_s: to_i64(e.body.interval_s),
                    enabled: e.body.enabled,
                    removed: e.body.removed,
                    updated_at: e.observed_at,
                };
                // One row per id per statement: keep the newest of the batch.
                match newest_system.get(&row.id) {
                    Some(&i) if plan.systems[i].updated_at >= row.updated_at => {}
                    Some(&i) => plan.systems[i] = row,
                    None => {
                        newest_system.insert(row.id.clone(), plan.systems.len());
                        plan.systems.push(row);
                    }
                }
            }
            Ok(Record::Collector(e)) => {
                let systems =
                    serde_json::to_string(&e.body.systems).unwrap_or_else(|_| "[]".into());
                let row = CollectorRow {
                    id: clean(&e.collector_id),
                    version: clean(&e.body.version),
                    systems: clean(&systems),
                    polls: to_i64(e.body.polls),
                    failures: to_i64(e.body.failures),
                    outbox_depth: to_i64(e.body.outbox_depth),
                    started_at: e.body.started_at,
                    last_seen: e.observed_at,
                };
                match newest_collector.get(&row.id) {
                    Some(&i) if plan.collectors[i].last_seen >= row.last_seen => {}
                    Some(&i) => plan.collectors[i] = row,
                    None => {
                        newest_collector.insert(row.id.clone(), plan.collectors.len());
                        plan.collectors.push(row);
                    }
                }
            }
            // The writer's own derived changes (published from its outbox after the commit that
            // stored them) pass through its consumer too: they are acknowledged, not stored.
            Ok(Record::Change(_)) => {}
            // Operator commands: applied and audited after the snapshots (`super::commands`),
            // in stream order; a command id seen twice in the batch is planned once.
            Ok(Record::Command(e)) => {
                if seen_commands.insert(e.event_id.clone()) {
                    plan.commands.push(CommandRow::of(e));
                }
            }
            Ok(Record::History(e)) => plan.history.add(&e),
            Ok(Record::Snapshot(e)) => {
                if seen_snapshots.insert(e.event_id.clone()) {
                    plan.snapshots
                        .entry(e.system_id.clone())
                        .or_default()
                        .push(e);
                }
            }
        }
    }
    for list in plan.snapshots.values_mut() {
        list.sort_by(|a, b| {
            a.observed_at
                .cmp(&b.observed_at)
                .then_with(|| a.event_id.cmp(&b.event_id))
        });
    }
    plan
}
