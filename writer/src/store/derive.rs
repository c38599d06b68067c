//! Deriving history from a batch's snapshots and the stored state of their systems: the new
//! latest states, status transitions, alert episodes (opened, seen again, cleared), capacity
//! samples and the capacity tiers (raw samples thinned by a deadband, hourly and daily
//! rollups, [`capacity`]), the pool and performance tiers ([`tiers`], the same rules), and the
//! changes published on
//! `sdash.v1.change.*` (alert opened or cleared, status and health transitions, capacity
//! threshold crossings). Pure code, the same for both backends.

use std::collections::{BTreeMap, HashMap, HashSet};

use sdash_proto::{
    Alert, ChangeKind, ChangeRecord, Envelope, Performance, Severity, Snapshot, Status,
};

use super::ledger::Ledger;
use super::plan::{
    AlertDetails, AlertEpisode, Merge, OpenAlertRow, PerformanceRollup, PerformanceSample, PoolKey,
    PoolSample, Rollup, SampleRow, StateRow, StoredState, SystemContext, TierRow, TransitionRow,
    clean, clean_opt, to_i64,
};

/// Default capacity thresholds, percent of total capacity (`--capacity-thresholds`).
pub const DEFAULT_CAPACITY_THRESHOLDS: [u8; 3] = [80, 90, 95];

/// The UTC day (`YYYY-MM-DD`) of a time in ms since the epoch.
pub fn utc_day(ms: i64) -> String {
    let days = ms.div_euclid(86_400_000);
    // Civil-from-days (Howard Hinnant), valid for the whole i64 ms range we can meet.
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let y = yoe + era * 400;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = doy - (153 * mp + 2) / 5 + 1;
    let m = if mp < 10 { mp + 3 } else { mp - 9 };
    let y = if m <= 2 { y + 1 } else { y };
    format!("{y:04}-{m:02}-{d:02}")
}

/// Rows derived from the snapshots of a batch against the stored state.
#[derive(Debug, Default)]
pub(crate) struct Derived {
    /// Full state rows for systems whose newest snapshot is newer than the stored one.
    pub states: Vec<StateRow>,
    /// `(system_id, last_online_at)` for systems whose state is not replaced but that got a
    /// (late) online snapshot newer than the stored `last_online_at`.
    pub last_online: Vec<(String, i64)>,
    pub transitions: Vec<TransitionRow>,
    pub alert_updates: Vec<AlertEpisode>,
    pub alert_inserts: Vec<AlertEpisode>,
    pub samples: Vec<SampleRow>,
    /// Every snapshot's pools, and its performance when it reported any metric.
    pub pools: Vec<PoolSample>,
    pub performance: Vec<PerformanceSample>,
    /// Minimal `systems` rows `(id, vendor)` for systems seen in snapshots.
    pub minimal_systems: Vec<(String, &'static str)>,
    /// What changed, in the order it happened per system (its context added by [`add_context`]).
    pub changes: Vec<Change>,
}

/// One change derived from a snapshot, before it gets its envelope.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Change {
    pub system_id: String,
    /// `observed_at` of the snapshot that showed it.
    pub observed_at: i64,
    pub record: ChangeRecord,
}

impl Change {
    /// A change of `kind` shown by `snap`, named by what the system reports (until
    /// [`add_context`] puts the inventory name over it).
    fn of(snap: &Envelope<Snapshot>, kind: ChangeKind) -> Change {
        Change {
            system_id: snap.system_id.clone(),
            observed_at: snap.observed_at,
            record: ChangeRecord {
                kind,
                cause_event_id: snap.event_id.clone(),
                vendor: snap.body.vendor,
                system_name: Some(
                    snap.body
                        .name
                        .clone()
                        .unwrap_or_else(|| snap.system_id.clone()),
                ),
                tags: BTreeMap::new(),
                alert: None,
                alert_opened_at: None,
                from: None,
                to: None,
                threshold_percent: None,
                rising: None,
                capacity: None,
                command: None,
                command_id: None,
            },
        }
    }

    fn alert(snap: &Envelope<Snapshot>, kind: ChangeKind, alert: Alert, opened_at: i64) -> Change {
        let mut c = Change::of(snap, kind);
        c.record.alert = Some(alert);
        c.record.alert_opened_at = Some(opened_at);
        c
    }
}

/// Whether `(used, total)` is at or above `threshold` percent; `None` without a total.
fn at_or_above((used, total): (i64, i64), threshold: u8) -> Option<bool> {
    (total > 0).then(|| i128::from(used) * 100 >= i128::from(threshold) * i128::from(total))
}

/// The capacity thresholds crossed from the previous sample `prev` to `new` (both `(used,
/// total)` bytes), as `(threshold, rising)`: rising when `prev` was below and `new` is at or
/// above it, falling when back below. Staying on one side crosses nothing. Without a previous
/// sample (a new system, or none ever had a total) every threshold at or below `new` is a rising
/// crossing, so a system that starts at 92 % announces 80 and 90 once. `thresholds` ascending;
/// the result is in the order the level moved through them.
pub(crate) fn crossings(
    prev: Option<(i64, i64)>,
    new: (i64, i64),
    thresholds: &[u8],
) -> Vec<(u8, bool)> {
    let mut out: Vec<(u8, bool)> = Vec::new();
    for &t in thresholds {
        let Some(now_above) = at_or_above(new, t) else {
            return out;
        };
        let was_above = prev.and_then(|p| at_or_above(p, t)).unwrap_or(false);
        if now_above != was_above {
            out.push((t, now_above));
        }
    }
    // Falling, the level passed the highest threshold first.
    if out.first().is_some_and(|&(_, rising)| !rising) {
        out.reverse();
    }
    out
}

/// The alert an open episode was stored with (for the change that clears it).
pub(crate) fn stored_alert(alert_id: &str, details: Option<&AlertDetails>) -> Alert {
    Alert {
        id: alert_id.to_owned(),
        severity: details
            .and_then(|d| Severity::parse(&d.severity))
            .unwrap_or(Severity::Info),
        vendor_severity: details
            .map(|d| d.vendor_severity.clone())
            .unwrap_or_default(),
        title: details.map(|d| d.title.clone()).unwrap_or_default(),
        component: details.and_then(|d| d.component.clone()),
        opened_at: details.and_then(|d| d.opened_at),
    }
}

/// Puts each system's inventory name (when it has one) over the name it reports, and its
/// inventory tags, on its changes.
pub(crate) fn add_context(changes: &mut [Change], contexts: &HashMap<String, SystemContext>) {
    for c in changes {
        if let Some(ctx) = contexts.get(&c.system_id) {
            if let Some(name) = &ctx.name {
                c.record.system_name = Some(name.clone());
            }
            c.record.tags = ctx.tags.clone();
        }
    }
}

/// JSON of a part of a snapshot, as stored in `system_state`.
fn json<T: serde::Serialize + ?Sized>(value: &T) -> Option<String> {
    serde_json::to_string(value).ok().map(|j| clean(&j))
}

/// The metrics of a snapshot's performance, in the order of `PERFORMANCE_METRICS`; a value
/// that is not a finite number counts as not reported.
fn performance_metrics(p: &Performance) -> [Option<f64>; 6] {
    [
        p.read_iops,
        p.write_iops,
        p.read_latency_us,
        p.write_latency_us,
        p.read_bytes_per_s.map(|v| v as f64),
        p.write_bytes_per_s.map(|v| v as f64),
    ]
    .map(|m| m.filter(|v| v.is_finite()))
}

fn state_row(e: &Envelope<Snapshot>, last_online_at: Option<i64>) -> StateRow {
    let s = &e.body;
    let cap = s.capacity.as_ref();
    StateRow {
        system_id: e.system_id.clone(),
        event_id: clean(&e.event_id),
        collector_id: clean(&e.collector_id),
        observed_at: e.observed_at,
        vendor: s.vendor.as_str(),
        status: s.status.as_str(),
        hardware: s.hardware.as_str(),
        cluster: s.cluster.as_str(),
        name: clean_opt(&s.name),
        version: clean_opt(&s.version),
        model: clean_opt(&s.model),
        serial: clean_opt(&s.serial),
        total_bytes: cap.map(|c| to_i64(c.total_bytes)),
        used_bytes: cap.map(|c| to_i64(c.used_bytes)),
        free_bytes: cap.map(|c| to_i64(c.free_bytes)),
        data_reduction: cap.and_then(|c| c.data_reduction).filter(|v| v.is_finite()),
        alert_count: i32::try_from(s.alerts.len()).unwrap_or(i32::MAX),
        components: clean(&serde_json::to_string(&s.components).unwrap_or_else(|_| "[]".into())),
        alerts: clean(&serde_json::to_string(&s.alerts).unwrap_or_else(|_| "[]".into())),
        poll_ms: to_i64(s.poll_ms),
        error: clean_opt(&s.error),
        last_online_at,
        provisioned_bytes: cap.and_then(|c| c.provisioned_bytes).map(to_i64),
        cluster_type: s
            .topology
            .as_ref()
            .and_then(|t| t.cluster_type)
            .map(|c| c.as_str()),
        topology: s.topology.as_ref().and_then(json),
        pools: json(&s.pools).unwrap_or_else(|| "[]".into()),
        performance: s.performance.as_ref().and_then(json),
    }
}

/// Derives history. Rules:
/// * a snapshot not newer than the stored state (a replay, a redelivery, a late arrival) changes
///   no state and no history; it still contributes its capacity, pool and performance samples
///   (which the tiers count only when newer than what they counted) and `last_online_at`;
/// * transitions are recorded for status, hardware and cluster (from NULL for a new system);
/// * alerts are derived only from `online` snapshots (an unreachable system's empty alert list
///   says nothing about its alerts): new ids open an episode, present ones move `last_seen`,
///   missing ones are cleared at the snapshot's time;
/// * every transition, opened and cleared episode and capacity threshold crossing (see
///   [`crossings`], against the last known capacity) is also a [`Change`]; so only snapshots
///   newer than the stored state make changes.
pub(crate) fn derive(
    snapshots: &BTreeMap<String, Vec<Envelope<Snapshot>>>,
    stored: &HashMap<String, StoredState>,
    open: &[OpenAlertRow],
    capacity_thresholds: &[u8],
) -> Derived {
    let mut out = Derived::default();
    let mut open_by_system: HashMap<&str, Vec<&OpenAlertRow>> = HashMap::new();
    for row in open {
        open_by_system
            .entry(row.system_id.as_str())
            .or_default()
            .push(row);
    }
    for (system_id, list) in snapshots {
        // Samples are keyed by (system, time); the system is this one.
        let mut sample_times: HashSet<i64> = HashSet::with_capacity(list.len());
        let Some(first) = list.first() else { continue };
        let stored_state = stored.get(system_id);
        if stored_state.is_none() {
            // A stored state implies its `systems` row (both are written in one transaction,
            // and neither is ever deleted), so only new systems need the minimal row.
            out.minimal_systems
                .push((system_id.clone(), first.body.vendor.as_str()));
        }
        let mut cur: Option<(i64, &str, &str, &str)> = stored_state.map(|s| {
            (
                s.observed_at,
                s.status.as_str(),
                s.hardware.as_str(),
                s.cluster.as_str(),
            )
        });
        let stored_last_online = stored_state.and_then(|s| s.last_online_at);
        let mut last_online = stored_last_online;
        let mut newest: Option<&Envelope<Snapshot>> = None;
        let mut capacity = stored_state.and_then(|s| s.capacity);

        let mut episodes: Vec<AlertEpisode> = Vec::new();
        // Episode index -> the alert as last known (for the change that clears it).
        let mut last_alert: Vec<Alert> = Vec::new();
        let mut open_idx: HashMap<String, usize> = HashMap::new();
        // Episode index -> the alert as last seen in this batch (for episodes seen again).
        let mut last_sighting: HashMap<usize, &sdash_proto::Alert> = HashMap::new();
        let mut stored_details: HashMap<usize, &AlertDetails> = HashMap::new();
        for row in open_by_system
            .get(system_id.as_str())
            .map(|v| v.as_slice())
            .unwrap_or(&[])
        {
            if let Some(d) = &row.details {
                stored_details.insert(episodes.len(), d);
            }
            last_alert.push(stored_alert(&row.alert_id, row.details.as_ref()));
            open_idx.insert(row.alert_id.clone(), episodes.len());
            episodes.push(AlertEpisode {
                existing: Some(row.id),
                dirty: false,
                seen: false,
                touch_only: false,
                system_id: system_id.clone(),
                alert_id: row.alert_id.clone(),
                severity: "info",
                vendor_severity: String::new(),
                title: String::new(),
                component: None,
                opened_at: None,
                first_seen: row.first_seen,
                last_seen: 0,
                cleared_at: None,
            });
        }

        for snap in list {
            let t = snap.observed_at;
            if let Some(c) = &snap.body.capacity
                && sample_times.insert(t)
            {
                out.samples.push(SampleRow {
                    system_id: system_id.clone(),
                    observed_at: t,
                    total_bytes: to_i64(c.total_bytes),
                    used_bytes: to_i64(c.used_bytes),
                    free_bytes: to_i64(c.free_bytes),
                });
            }
            // A pool named twice at one time, or a second snapshot at the same time, is not
            // newer than the first: the tiers count one ([`tiers`]).
            for p in &snap.body.pools {
                out.pools.push(PoolSample {
                    key: PoolKey {
                        system_id: system_id.clone(),
                        pool: clean(&format!("{}:{}", p.kind.as_str(), p.name)),
                    },
                    observed_at: t,
                    total_bytes: to_i64(p.total_bytes),
                    used_bytes: to_i64(p.used_bytes),
                });
            }
            if let Some(p) = &snap.body.performance {
                let metrics = performance_metrics(p);
                // Without any metric it says nothing (the state still shows what came).
                if metrics.iter().any(Option::is_some) {
                    out.performance.push(PerformanceSample {
                        system_id: system_id.clone(),
                        observed_at: t,
                        metrics,
                    });
                }
            }
            if snap.body.status == Status::Online {
                last_online = Some(last_online.map_or(t, |l| l.max(t)));
            }
            if cur.as_ref().is_some_and(|c| t <= c.0) {
                continue;
            }
            let new_values = [
                ("status", snap.body.status.as_str()),
                ("hardware", snap.body.hardware.as_str()),
                ("cluster", snap.body.cluster.as_str()),
            ];
            for (i, (field, to)) in new_values.iter().enumerate() {
                let from = cur.map(|c| match i {
                    0 => c.1,
                    1 => c.2,
                    _ => c.3,
                });
                if from != Some(*to) {
                    let kind = match i {
                        0 => ChangeKind::StatusChanged,
                        1 => ChangeKind::HardwareChanged,
                        _ => ChangeKind::ClusterChanged,
                    };
                    let mut change = Change::of(snap, kind);
                    change.record.from = from.map(str::to_owned);
                    change.record.to = Some((*to).to_owned());
                    out.changes.push(change);
                    out.transitions.push(TransitionRow {
                        system_id: system_id.clone(),
                        at: t,
                        field,
                        from_value: from.map(str::to_owned),
                        to_value: (*to).to_owned(),
                        event_id: clean(&snap.event_id),
                    });
                }
            }
            if snap.body.status == Status::Online {
                let mut present: HashSet<&str> = HashSet::new();
                for alert in &snap.body.alerts {
                    if !present.insert(alert.id.as_str()) {
                        continue;
                    }
                    match open_idx.get(&alert.id) {
                        Some(&i) => {
                            // Its details are copied once, from its last sighting (below).
                            let ep = &mut episodes[i];
                            ep.dirty = true;
                            ep.seen = true;
                            ep.last_seen = t;
                            last_sighting.insert(i, alert);
                            last_alert[i] = alert.clone();
                        }
                        None => {
                            out.changes.push(Change::alert(
                                snap,
                                ChangeKind::AlertOpened,
                                alert.clone(),
                                t,
                            ));
                            last_alert.push(alert.clone());
                            open_idx.insert(alert.id.clone(), episodes.len());
                            episodes.push(AlertEpisode {
                                existing: None,
                                dirty: true,
                                seen: true,
                                touch_only: false,
                                system_id: system_id.clone(),
                                alert_id: clean(&alert.id),
                                severity: alert.severity.as_str(),
                                vendor_severity: clean(&alert.vendor_severity),
                                title: clean(&alert.title),
                                component: clean_opt(&alert.component),
                                opened_at: alert.opened_at,
                                first_seen: t,
                                last_seen: t,
                                cleared_at: None,
                            });
                        }
                    }
                }
                let mut gone: Vec<String> = open_idx
                    .keys()
                    .filter(|id| !present.contains(id.as_str()))
                    .cloned()
                    .collect();
                // In a stable order: the changes are published in it.
                gone.sort_unstable();
                for id in gone {
                    if let Some(i) = open_idx.remove(&id) {
                        episodes[i].dirty = true;
                        episodes[i].cleared_at = Some(t);
                        out.changes.push(Change::alert(
                            snap,
                            ChangeKind::AlertCleared,
                            last_alert[i].clone(),
                            episodes[i].first_seen,
                        ));
                    }
                }
            }
            if let Some(c) = &snap.body.capacity {
                let sample = (to_i64(c.used_bytes), to_i64(c.total_bytes));
                for (threshold, rising) in crossings(capacity, sample, capacity_thresholds) {
                    let mut change = Change::of(snap, ChangeKind::CapacityThreshold);
                    change.record.threshold_percent = Some(threshold);
                    change.record.rising = Some(rising);
                    change.record.capacity = Some(c.clone());
                    out.changes.push(change);
                }
                if sample.1 > 0 {
                    capacity = Some(sample);
                }
            }
            cur = Some((
                t,
                snap.body.status.as_str(),
                snap.body.hardware.as_str(),
                snap.body.cluster.as_str(),
            ));
            newest = Some(snap);
        }

        match newest {
            Some(snap) => out.states.push(state_row(snap, last_online)),
            None => {
                if let Some(l) = last_online
                    && last_online != stored_last_online
                {
                    out.last_online.push((system_id.clone(), l));
                }
            }
        }
        for (i, alert) in last_sighting {
            let ep = &mut episodes[i];
            ep.severity = alert.severity.as_str();
            ep.vendor_severity = clean(&alert.vendor_severity);
            ep.title = clean(&alert.title);
            ep.component = clean_opt(&alert.component);
            ep.opened_at = alert.opened_at;
            if ep.cleared_at.is_none()
                && let Some(d) = stored_details.get(&i)
            {
                ep.touch_only = d.severity == ep.severity
                    && d.vendor_severity == ep.vendor_severity
                    && d.title == ep.title
                    && d.component == ep.component
                    // The update keeps a stored opened_at when the alert has none.
                    && (ep.opened_at.is_none() || ep.opened_at == d.opened_at);
            }
        }
        for ep in episodes {
            match ep.existing {
                Some(_) if ep.dirty => out.alert_updates.push(ep),
                Some(_) => {}
                None => out.alert_inserts.push(ep),
            }
        }
    }
    out
}

/// ms in an hour and in a day.
const HOUR_MS: i64 = 3_600_000;
const DAY_MS: i64 = 86_400_000;

/// Which capacity samples are stored raw (`--capacity-raw-deadband`, `--capacity-raw-max-gap`):
/// a system's first one, one whose used or total capacity moved by more than the deadband from
/// the last one stored, and one at least `max_gap_ms` after it. The rollups count every sample.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct RawSamplePolicy {
    /// Percent of the last stored sample's total capacity (0.1 = 0.1 %).
    pub deadband_percent: f64,
    /// Bytes; the deadband is the larger of the two.
    pub deadband_bytes: u64,
    /// ms; 0 stores every sample.
    pub max_gap_ms: i64,
}

impl Default for RawSamplePolicy {
    fn default() -> Self {
        RawSamplePolicy {
            deadband_percent: 0.1,
            deadband_bytes: 0,
            max_gap_ms: 6 * HOUR_MS,
        }
    }
}

impl RawSamplePolicy {
    /// Every sample stored raw (the behaviour before the deadband).
    pub const EVERY_SAMPLE: RawSamplePolicy = RawSamplePolicy {
        deadband_percent: 0.0,
        deadband_bytes: 0,
        max_gap_ms: 0,
    };

    /// Whether `s` is stored raw after the newest stored raw sample `last` (observed_at, used,
    /// total). A late `s` (older than `last`) is judged by the deadband alone.
    fn keeps(&self, last: Option<(i64, i64, i64)>, s: &SampleRow) -> bool {
        let Some((at, used, total)) = last else {
            return true;
        };
        if self.max_gap_ms <= 0 || s.observed_at.saturating_sub(at) >= self.max_gap_ms {
            return true;
        }
        let percent = if self.deadband_percent.is_finite() {
            self.deadband_percent.max(0.0)
        } else {
            0.0
        };
        // f64 to i64 saturates.
        let band = ((total.max(0) as f64) * percent / 100.0) as i64;
        let band = band.max(to_i64(self.deadband_bytes));
        s.used_bytes.abs_diff(used) > band.unsigned_abs()
            || s.total_bytes.abs_diff(total) > band.unsigned_abs()
    }
}

/// What the capacity tiers hold for one system: what the batch's samples are derived against.
#[derive(Debug, Clone, Default, PartialEq)]
pub(crate) struct CapacityMark {
    /// observed_at of the newest sample the rollups counted (the newest hourly row's `last_at`,
    /// or the newest raw sample's when that is newer): at or below the ledger's floor only newer
    /// samples are counted, so a redelivered one is never counted twice ([`newer`]).
    pub counted_through: Option<i64>,
    /// The newest raw sample `(observed_at, used, total)`: the deadband is measured from it.
    pub last_raw: Option<(i64, i64, i64)>,
}

/// A sample the rollup tiers count: of a series (`key`: a system's capacity or performance, or
/// one pool of a system), at a time, rolling up into `Rollup`.
pub(crate) trait TierSample: Clone {
    type Key: Ord + Clone + std::fmt::Debug + Send + Sync + 'static;
    type Rollup: Merge + Clone + PartialEq + std::fmt::Debug + Send + Sync + 'static;
    fn key(&self) -> &Self::Key;
    /// The system of the series: how far the tiers counted is read per system.
    fn system_id(&self) -> &str;
    fn at(&self) -> i64;
    fn rollup(&self) -> Self::Rollup;
}

/// A sample of a series per system (`key` = the system id), rolling up by `$rollup::of`.
macro_rules! system_series {
    ($sample:ty, $rollup:ident) => {
        impl TierSample for $sample {
            type Key = String;
            type Rollup = $rollup;
            fn key(&self) -> &String {
                &self.system_id
            }
            fn system_id(&self) -> &str {
                &self.system_id
            }
            fn at(&self) -> i64 {
                self.observed_at
            }
            fn rollup(&self) -> $rollup {
                $rollup::of(self)
            }
        }
    };
}

system_series!(SampleRow, Rollup);
system_series!(PerformanceSample, PerformanceRollup);

impl TierSample for PoolSample {
    type Key = PoolKey;
    type Rollup = Rollup;
    fn key(&self) -> &PoolKey {
        &self.key
    }
    fn system_id(&self) -> &str {
        &self.key.system_id
    }
    fn at(&self) -> i64 {
        self.observed_at
    }
    /// `free_bytes` is not stored for pools.
    fn rollup(&self) -> Rollup {
        let free = self.total_bytes.saturating_sub(self.used_bytes);
        Rollup::one(self.observed_at, self.total_bytes, self.used_bytes, free)
    }
}

/// The rows a batch's samples of one kind make in its tiers.
#[derive(Debug, PartialEq)]
pub(crate) struct TierRows<S: TierSample> {
    /// Samples stored raw.
    pub raw: Vec<S>,
    pub hourly: Vec<TierRow<S::Key, i64, S::Rollup>>,
    pub daily: Vec<TierRow<S::Key, String, S::Rollup>>,
    /// Samples at or below the ledger's floor not newer than what the rollups counted
    /// (redelivered, or too late to be counted): ignored.
    pub not_newer: u64,
    /// Samples the ledger knows were counted (redelivered), or twice in the batch: ignored.
    pub repeated: u64,
    /// Samples counted although older than one the rollups had counted (late).
    pub late: u64,
    /// Samples counted in the rollups but not stored raw (capacity: inside the deadband).
    pub thinned: u64,
}

impl<S: TierSample> Default for TierRows<S> {
    fn default() -> Self {
        TierRows {
            raw: Vec::new(),
            hourly: Vec::new(),
            daily: Vec::new(),
            not_newer: 0,
            repeated: 0,
            late: 0,
            thinned: 0,
        }
    }
}

impl<S: TierSample> TierRows<S> {
    /// No rows yet, with the counts of what [`newer`] ignored or found late.
    fn judged(j: &Judged<'_, S>) -> TierRows<S> {
        TierRows {
            not_newer: j.not_newer,
            repeated: j.repeated,
            late: j.late,
            ..TierRows::default()
        }
    }
}

/// The rows of the three capacity tiers.
pub(crate) type CapacityRows = TierRows<SampleRow>;

/// What [`newer`] made of a batch's samples of one kind.
struct Judged<'a, S> {
    /// The samples to count, in (series, time) order.
    counted: Vec<&'a S>,
    /// Of those, how many are older than what their system's tiers had counted.
    late: u64,
    /// Samples the ledger knows the tiers counted (redelivered), or twice in the batch.
    repeated: u64,
    /// Samples at or below the ledger's floor and not newer than what their system's tiers
    /// counted: redelivered, or too late to be counted.
    not_newer: u64,
}

/// The rule of every tier: of a batch's samples (any order), each series' samples that its
/// tiers have not counted. Above the ledger's floor the ledger tells ([`Ledger::counted`]): a
/// late sample (older than one counted) is counted, a redelivered one is not. At or below it
/// only a sample newer than how far its system's rollups counted (`counted_through`) is: a
/// redelivery is never counted twice, but a sample that late is not counted at all.
fn newer<'a, S: TierSample>(
    samples: &'a [S],
    counted_through: impl Fn(&str) -> Option<i64>,
    ledger: &Ledger,
) -> Judged<'a, S> {
    let mut sorted: Vec<&S> = samples.iter().collect();
    sorted.sort_by(|a, b| (a.key(), a.at()).cmp(&(b.key(), b.at())));
    let mut out = Judged {
        counted: Vec::with_capacity(sorted.len()),
        late: 0,
        repeated: 0,
        not_newer: 0,
    };
    let mut previous: Option<(&S::Key, i64)> = None;
    let mut through: Option<i64> = None;
    for s in sorted {
        if previous.map(|(key, _)| key) != Some(s.key()) {
            through = counted_through(s.system_id());
        }
        let repeated = previous == Some((s.key(), s.at()));
        previous = Some((s.key(), s.at()));
        let older = through.is_some_and(|t| s.at() <= t);
        match (repeated, ledger.counted(s.system_id(), s.at())) {
            (true, _) | (false, Some(true)) => out.repeated += 1,
            (false, Some(false)) => {
                out.late += u64::from(older);
                out.counted.push(s);
            }
            (false, None) if older => out.not_newer += 1,
            (false, None) => out.counted.push(s),
        }
    }
    out
}

/// Adds the hourly and daily rollups of `counted` to `out`.
fn roll_up<S: TierSample>(counted: &[&S], out: &mut TierRows<S>) {
    out.hourly = fold(counted, HOUR_MS)
        .into_iter()
        .map(|((key, hour), rollup)| TierRow {
            key: key.clone(),
            period: hour * HOUR_MS,
            rollup,
        })
        .collect();
    out.daily = fold(counted, DAY_MS)
        .into_iter()
        .map(|((key, day), rollup)| TierRow {
            key: key.clone(),
            period: utc_day(day * DAY_MS),
            rollup,
        })
        .collect();
}

/// Derives the capacity tiers' rows from a batch's samples and the systems' marks: the samples
/// not counted yet ([`newer`]) go into the hourly and daily rollups, and those the policy keeps
/// (against the newest raw sample, stored or of this batch) are stored raw. A late sample, older
/// than the newest raw one, is stored raw only when it is outside the deadband of that one (or
/// the policy stores every sample); it does not move the deadband's reference.
pub(crate) fn capacity(
    samples: &[SampleRow],
    marks: &HashMap<String, CapacityMark>,
    policy: &RawSamplePolicy,
    ledger: &Ledger,
) -> CapacityRows {
    let judged = newer(
        samples,
        |id| marks.get(id).and_then(|m| m.counted_through),
        ledger,
    );
    let mut out = CapacityRows::judged(&judged);
    let counted = judged.counted;
    let mut system: Option<&str> = None;
    let mut last_raw: Option<(i64, i64, i64)> = None;
    for &s in &counted {
        if system != Some(s.system_id.as_str()) {
            system = Some(s.system_id.as_str());
            last_raw = marks.get(&s.system_id).and_then(|m| m.last_raw);
        }
        if policy.keeps(last_raw, s) {
            if last_raw.is_none_or(|(at, _, _)| s.observed_at > at) {
                last_raw = Some((s.observed_at, s.used_bytes, s.total_bytes));
            }
            out.raw.push(s.clone());
        } else {
            out.thinned += 1;
        }
    }
    roll_up(&counted, &mut out);
    out
}

/// Derives the pool or performance tiers' rows from a batch's samples, like [`capacity`]
/// without a deadband: `counted_through` is the newest `last_at` of each system's hourly
/// rollups; every counted sample is stored raw when the kind has a raw tier (`raw`).
pub(crate) fn tiers<S: TierSample>(
    samples: &[S],
    counted_through: &HashMap<String, i64>,
    raw: bool,
    ledger: &Ledger,
) -> TierRows<S> {
    let judged = newer(samples, |id| counted_through.get(id).copied(), ledger);
    let mut out = TierRows::judged(&judged);
    let counted = judged.counted;
    if raw {
        out.raw = counted.iter().map(|&s| s.clone()).collect();
    }
    roll_up(&counted, &mut out);
    out
}

/// The rollups of `samples` per (series, period number) for periods of `period_ms`.
fn fold<'a, S: TierSample>(
    samples: &[&'a S],
    period_ms: i64,
) -> BTreeMap<(&'a S::Key, i64), S::Rollup> {
    let mut by: BTreeMap<(&S::Key, i64), S::Rollup> = BTreeMap::new();
    for &s in samples {
        let key = (s.key(), s.at().div_euclid(period_ms));
        let one = s.rollup();
        match by.get_mut(&key) {
            Some(d) => d.add(&one),
            None => {
                by.insert(key, one);
            }
        }
    }
    by
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testing::{ChangeSummary, alert_change, change_summary, crossing, transition};
    use sdash_proto::{Capacity, Health, Vendor};

    const T: &[u8] = &DEFAULT_CAPACITY_THRESHOLDS;

    #[test]
    fn capacity_crossings() {
        // Rising: below, then at or above.
        assert_eq!(crossings(Some((500, 1000)), (800, 1000), T), [(80, true)]);
        assert_eq!(crossings(Some((799, 1000)), (850, 1000), T), [(80, true)]);
        // Through two at once, in the order the level passed them.
        assert_eq!(
            crossings(Some((500, 1000)), (920, 1000), T),
            [(80, true), (90, true)]
        );
        // Falling back below, highest first.
        assert_eq!(
            crossings(Some((960, 1000)), (850, 1000), T),
            [(95, false), (90, false)]
        );
        assert_eq!(crossings(Some((800, 1000)), (799, 1000), T), [(80, false)]);
        // Staying on one side (above or below) crosses nothing: no flapping.
        assert!(crossings(Some((850, 1000)), (880, 1000), T).is_empty());
        assert!(crossings(Some((880, 1000)), (850, 1000), T).is_empty());
        assert!(crossings(Some((100, 1000)), (200, 1000), T).is_empty());
        // A first sample above 90 %: one rising crossing per threshold at or below it.
        assert_eq!(crossings(None, (920, 1000), T), [(80, true), (90, true)]);
        assert!(crossings(None, (500, 1000), T).is_empty());
        // A previous sample without a total counts as none.
        assert_eq!(crossings(Some((0, 0)), (850, 1000), T), [(80, true)]);
        // No total now: nothing to compare.
        assert!(crossings(Some((500, 1000)), (10, 0), T).is_empty());
        // The capacity changed (an array grew): the percentage decides, not the bytes.
        assert_eq!(
            crossings(Some((900, 1000)), (900, 2000), T),
            [(90, false), (80, false)]
        );
        // No thresholds, no crossings; byte counts near i64::MAX do not overflow.
        assert!(crossings(None, (920, 1000), &[]).is_empty());
        assert_eq!(
            crossings(Some((0, i64::MAX)), (i64::MAX, i64::MAX), &[95]),
            [(95, true)]
        );
    }

    fn snap(t: i64, status: Status, alerts: &[&str], used: Option<u64>) -> Envelope<Snapshot> {
        let mut body = Snapshot::failed(Vendor::Pure, status, String::new(), 1);
        body.hardware = Health::Ok;
        body.cluster = Health::Ok;
        body.name = Some("reported".into());
        body.alerts = alerts
            .iter()
            .map(|id| Alert {
                id: (*id).into(),
                severity: Severity::Critical,
                vendor_severity: "crit".into(),
                title: format!("title {id}"),
                component: None,
                opened_at: None,
            })
            .collect();
        body.capacity = used.map(|u| Capacity {
            total_bytes: 1000,
            used_bytes: u,
            free_bytes: 1000 - u,
            data_reduction: None,
            provisioned_bytes: None,
        });
        Envelope {
            schema: 1,
            event_id: format!("e{t}"),
            collector_id: "c".into(),
            system_id: "s1".into(),
            observed_at: t,
            body,
        }
    }

    fn summary(d: &Derived) -> Vec<ChangeSummary> {
        d.changes
            .iter()
            .map(|c| change_summary(&c.record))
            .collect()
    }

    #[test]
    fn changes_of_a_new_system_in_one_batch() {
        let list = vec![
            snap(10, Status::Online, &["a1"], Some(500)),
            snap(20, Status::Online, &[], Some(850)),
            snap(30, Status::Unreachable, &[], None),
            // Back online above 90 %: the last known capacity (85 %) is the previous sample.
            snap(40, Status::Online, &[], Some(920)),
            snap(50, Status::Online, &[], Some(930)),
        ];
        let snapshots: BTreeMap<String, Vec<Envelope<Snapshot>>> = [("s1".to_owned(), list)].into();
        let d = derive(&snapshots, &HashMap::new(), &[], T);
        assert_eq!(
            summary(&d),
            vec![
                transition("status_changed", "e10", None, "online"),
                transition("hardware_changed", "e10", None, "ok"),
                transition("cluster_changed", "e10", None, "ok"),
                alert_change("alert_opened", "e10", "a1", 10),
                alert_change("alert_cleared", "e20", "a1", 10),
                crossing("e20", 80, true),
                transition("status_changed", "e30", Some("online"), "unreachable"),
                transition("status_changed", "e40", Some("unreachable"), "online"),
                crossing("e40", 90, true),
            ]
        );
        let c = &d.changes[5].record;
        assert_eq!(c.capacity.as_ref().map(|c| c.used_bytes), Some(850));
        assert_eq!(c.vendor, Vendor::Pure);
        assert_eq!(c.system_name.as_deref(), Some("reported"));
        assert_eq!(
            d.changes[4].record.alert.as_ref().map(|a| a.title.as_str()),
            Some("title a1")
        );
        // The inventory name wins over the reported one; tags come along.
        let mut changes = d.changes.clone();
        let ctx = SystemContext {
            name: Some("Inventory".into()),
            tags: [("env".to_owned(), "prod".to_owned())].into(),
        };
        add_context(&mut changes, &[("s1".to_owned(), ctx.clone())].into());
        assert!(
            changes
                .iter()
                .all(|c| c.record.system_name.as_deref() == Some("Inventory")
                    && c.record.tags == ctx.tags)
        );
        // Without an inventory name the reported one stays.
        let mut changes = d.changes.clone();
        add_context(
            &mut changes,
            &[("s1".to_owned(), SystemContext::default())].into(),
        );
        assert_eq!(changes[0].record.system_name.as_deref(), Some("reported"));
    }

    #[test]
    fn changes_against_the_stored_state() {
        let stored: HashMap<String, StoredState> = [(
            "s1".to_owned(),
            StoredState {
                system_id: "s1".into(),
                observed_at: 100,
                status: "online".into(),
                hardware: "ok".into(),
                cluster: "ok".into(),
                last_online_at: Some(100),
                capacity: Some((910, 1000)),
            },
        )]
        .into();
        let open = [OpenAlertRow {
            id: 7,
            system_id: "s1".into(),
            alert_id: "a1".into(),
            first_seen: 42,
            details: Some(AlertDetails {
                severity: "error".into(),
                vendor_severity: "major".into(),
                title: "stored title".into(),
                component: Some("ct1".into()),
                opened_at: Some(40),
            }),
        }];
        // A late snapshot (not newer than the stored state) and one newer: only the newer one
        // makes changes; the stored alert clears with its stored details and instance.
        let list = vec![
            snap(90, Status::Unreachable, &[], Some(100)),
            snap(110, Status::Online, &[], Some(700)),
        ];
        let snapshots: BTreeMap<String, Vec<Envelope<Snapshot>>> = [("s1".to_owned(), list)].into();
        let d = derive(&snapshots, &stored, &open, T);
        assert_eq!(
            summary(&d),
            vec![
                alert_change("alert_cleared", "e110", "a1", 42),
                crossing("e110", 90, false),
                crossing("e110", 80, false),
            ]
        );
        let alert = d.changes[0].record.alert.clone();
        assert_eq!(
            alert,
            Some(Alert {
                id: "a1".into(),
                severity: Severity::Error,
                vendor_severity: "major".into(),
                title: "stored title".into(),
                component: Some("ct1".into()),
                opened_at: Some(40),
            })
        );
        // The same batch again (a redelivery after the commit): nothing is newer, no change.
        let mut after = stored.clone();
        if let Some(s) = after.get_mut("s1") {
            s.observed_at = 110;
            s.capacity = Some((700, 1000));
        }
        assert!(derive(&snapshots, &after, &[], T).changes.is_empty());
    }

    #[test]
    fn utc_days() {
        assert_eq!(utc_day(0), "1970-01-01");
        assert_eq!(utc_day(86_400_000 - 1), "1970-01-01");
        assert_eq!(utc_day(86_400_000), "1970-01-02");
        assert_eq!(utc_day(1_764_000_000_000), "2025-11-24");
        assert_eq!(utc_day(951_782_400_000), "2000-02-29");
        assert_eq!(utc_day(-1), "1969-12-31");
    }

    /// A small deterministic generator (xorshift64*), so every case can be replayed by seed.
    struct Rng(u64);

    impl Rng {
        fn next(&mut self) -> u64 {
            self.0 ^= self.0 >> 12;
            self.0 ^= self.0 << 25;
            self.0 ^= self.0 >> 27;
            self.0.wrapping_mul(0x2545_f491_4f6c_dd1d)
        }
        fn below(&mut self, n: u64) -> u64 {
            self.next() % n.max(1)
        }
    }

    /// What the database holds of one kind's tiers, modelled with the statements' semantics:
    /// raw samples keyed by (series, time), a stored one kept; rollups merged by adding (min,
    /// max, sum, count; the later last wins); and the ledger of counted snapshots above its
    /// floor (not compared: two histories of the same samples hold the same rows).
    #[derive(Debug)]
    struct Tiers<S: TierSample> {
        raw: BTreeMap<(S::Key, i64), S>,
        hourly: BTreeMap<(S::Key, i64), S::Rollup>,
        daily: BTreeMap<(S::Key, String), S::Rollup>,
        floor: i64,
        ledger: std::collections::BTreeSet<(String, i64)>,
    }

    impl<S: TierSample + PartialEq> PartialEq for Tiers<S> {
        fn eq(&self, o: &Self) -> bool {
            self.raw == o.raw && self.hourly == o.hourly && self.daily == o.daily
        }
    }

    impl<S: TierSample> Default for Tiers<S> {
        fn default() -> Self {
            Tiers::with_floor(i64::MIN)
        }
    }

    impl<S: TierSample> Tiers<S> {
        /// Empty tiers whose ledger starts at `floor` (`i64::MAX`: no ledger).
        fn with_floor(floor: i64) -> Self {
            Tiers {
                raw: BTreeMap::new(),
                hourly: BTreeMap::new(),
                daily: BTreeMap::new(),
                floor,
                ledger: Default::default(),
            }
        }

        /// What the ledger says of a batch (`ledger::read`).
        fn ledger_of(&self, batch: &[S]) -> Ledger {
            let mut l = Ledger::above(self.floor);
            for s in batch {
                if self.ledger.contains(&(s.system_id().to_owned(), s.at())) {
                    l.insert(s.system_id(), s.at());
                }
            }
            l
        }

        /// Records a committed batch in the ledger (`ledger::record`).
        fn record(&mut self, batch: &[S]) {
            for s in batch {
                if s.at() > self.floor {
                    self.ledger.insert((s.system_id().to_owned(), s.at()));
                }
            }
        }

        /// Merges a batch's rows into the stored ones, as the statements do.
        fn merge(&mut self, rows: &TierRows<S>) {
            for r in &rows.raw {
                self.raw
                    .entry((r.key().clone(), r.at()))
                    .or_insert_with(|| r.clone());
            }
            for h in &rows.hourly {
                self.hourly
                    .entry((h.key.clone(), h.period))
                    .and_modify(|o| o.add(&h.rollup))
                    .or_insert_with(|| h.rollup.clone());
            }
            for d in &rows.daily {
                self.daily
                    .entry((d.key.clone(), d.period.clone()))
                    .and_modify(|o| o.add(&d.rollup))
                    .or_insert_with(|| d.rollup.clone());
            }
        }

        /// The newest `last_at` of each system's hourly rows (`Dialect::read_counted_through`).
        fn counted_through(&self) -> HashMap<String, i64>
        where
            S: Sample,
        {
            let mut out: HashMap<String, i64> = HashMap::new();
            for (key, r) in &self.hourly {
                let at = out
                    .entry(S::system_of(&key.0).to_owned())
                    .or_insert(i64::MIN);
                *at = (*at).max(S::last_of(r));
            }
            out
        }
    }

    /// The system of a series key (the model reads marks per system, as the database does).
    trait Sample: TierSample + PartialEq + std::fmt::Debug {
        fn system_of(key: &Self::Key) -> &str;
        fn last_of(rollup: &Self::Rollup) -> i64;
    }

    impl Sample for PoolSample {
        fn system_of(key: &PoolKey) -> &str {
            &key.system_id
        }
        fn last_of(rollup: &Rollup) -> i64 {
            rollup.last_at
        }
    }

    impl Sample for PerformanceSample {
        fn system_of(key: &String) -> &str {
            key
        }
        fn last_of(rollup: &PerformanceRollup) -> i64 {
            rollup.last_at
        }
    }

    impl Tiers<SampleRow> {
        fn marks(&self) -> HashMap<String, CapacityMark> {
            let mut marks: HashMap<String, CapacityMark> = HashMap::new();
            for ((system, _), h) in &self.hourly {
                let m = marks.entry(system.clone()).or_default();
                m.counted_through = m.counted_through.max(Some(h.last_at));
            }
            for r in self.raw.values() {
                let m = marks.entry(r.system_id.clone()).or_default();
                m.counted_through = m.counted_through.max(Some(r.observed_at));
                if m.last_raw.is_none_or(|l| l.0 < r.observed_at) {
                    m.last_raw = Some((r.observed_at, r.used_bytes, r.total_bytes));
                }
            }
            marks
        }

        /// One batch: derived against the stored marks, then written.
        fn write(&mut self, batch: &[SampleRow], policy: &RawSamplePolicy) -> CapacityRows {
            let rows = capacity(batch, &self.marks(), policy, &self.ledger_of(batch));
            self.merge(&rows);
            self.record(batch);
            rows
        }
    }

    /// `items` delivered in batches of up to `most`, in order but for about one in `hold_one_in`
    /// held back a few batches (delivered after newer ones: late) and now and then one
    /// delivered again (a redelivery of a batch already written).
    fn late_deliveries<T: Clone>(
        rng: &mut Rng,
        items: &[T],
        most: u64,
        hold_one_in: u64,
    ) -> Vec<Vec<T>> {
        let mut out = Vec::new();
        let mut held: Vec<(usize, &T)> = Vec::new();
        let (mut next, mut round) = (0, 0);
        while next < items.len() || !held.is_empty() {
            round += 1;
            let end = (next + 1 + rng.below(most) as usize).min(items.len());
            let mut batch: Vec<T> = Vec::new();
            for item in &items[next..end] {
                match rng.below(hold_one_in) {
                    0 => held.push((round + 1 + rng.below(4) as usize, item)),
                    _ => batch.push(item.clone()),
                }
            }
            next = end;
            let (due, wait): (Vec<_>, Vec<_>) = held
                .into_iter()
                .partition(|(at, _)| *at <= round || next >= items.len());
            held = wait;
            batch.extend(due.into_iter().map(|(_, item)| item.clone()));
            if next > 0 && rng.below(3) == 0 {
                batch.push(items[rng.below(next as u64) as usize].clone());
            }
            out.push(batch);
        }
        out
    }

    /// A history of samples of up to three systems in time order: slow growth inside the
    /// deadband, jumps, a grown total, gaps longer than the maximum.
    fn history(rng: &mut Rng) -> Vec<SampleRow> {
        let systems = 1 + rng.below(3);
        let mut out = Vec::new();
        for s in 0..systems {
            let mut t = 1_764_000_000_000 + rng.below(3_600_000) as i64;
            let mut total: i64 = 1_000_000;
            let mut used: i64 = rng.below(500_000) as i64;
            for _ in 0..rng.below(120) {
                t += match rng.below(10) {
                    0 => 3_600_000 + rng.below(7_200_000) as i64,
                    _ => 30_000 + rng.below(600_000) as i64,
                };
                used = match rng.below(8) {
                    0 => (used + rng.below(50_000) as i64).min(total),
                    1 => (used - rng.below(50_000) as i64).max(0),
                    _ => (used + rng.below(1500) as i64 - 700).clamp(0, total),
                };
                if rng.below(40) == 0 {
                    total += 500_000;
                }
                out.push(SampleRow {
                    system_id: format!("s{s}"),
                    observed_at: t,
                    total_bytes: total,
                    used_bytes: used,
                    free_bytes: total - used,
                });
            }
        }
        out.sort_by_key(|s| s.observed_at);
        out
    }

    /// (samples, min, max, sum, last_at, last used) of an hour.
    type Agg6 = (i64, i64, i64, f64, i64, i64);

    /// The property of the capacity tiers: whatever the batches (split anywhere, with
    /// redeliveries of samples already written, in any order inside a batch, with samples held
    /// back and delivered after newer ones), the rollups are those of delivering each sample
    /// once in order, counting every sample exactly once; and the raw rows follow the deadband
    /// and maximum gap (in order; a late sample may add a raw row, never one that is no sample).
    #[test]
    fn capacity_tiers_ignore_redeliveries_and_batch_splits_and_count_late_samples() {
        let policy = RawSamplePolicy {
            deadband_percent: 0.1,
            deadband_bytes: 0,
            max_gap_ms: 3_600_000,
        };
        let (mut late_total, mut repeated_total) = (0, 0);
        for seed in 1..=300u64 {
            let mut rng = Rng(seed.wrapping_mul(0x9e37_79b9_7f4a_7c15) | 1);
            let all = history(&mut rng);
            let mut once = Tiers::<SampleRow>::default();
            for s in &all {
                once.write(std::slice::from_ref(s), &policy);
            }
            let mut whole = Tiers::<SampleRow>::default();
            whole.write(&all, &policy);
            assert_eq!(once, whole, "seed {seed}: one batch");

            // Random batches: each takes the next few new samples and redelivers some already
            // written ones (older than the new ones), shuffled.
            let mut messy = Tiers::<SampleRow>::default();
            let mut next = 0;
            while next < all.len() {
                let take = 1 + rng.below(20) as usize;
                let end = (next + take).min(all.len());
                let mut batch: Vec<SampleRow> = all[next..end].to_vec();
                for _ in 0..rng.below(6) {
                    if next > 0 {
                        let i = rng.below(next as u64) as usize;
                        batch.push(all[i].clone());
                    }
                }
                for i in (1..batch.len()).rev() {
                    let j = rng.below(i as u64 + 1) as usize;
                    batch.swap(i, j);
                }
                messy.write(&batch, &policy);
                // A whole batch delivered again adds nothing: the ledger knows every sample.
                let again = messy.write(&batch, &policy);
                assert!(
                    again.raw.is_empty() && again.hourly.is_empty(),
                    "seed {seed}"
                );
                assert_eq!(again.repeated, batch.len() as u64, "seed {seed}");
                assert_eq!(again.not_newer + again.late, 0, "seed {seed}");
                next = end;
            }
            assert_eq!(once, messy, "seed {seed}: redelivered, split");

            // Late samples (held back a few batches, then delivered with redeliveries): with
            // the ledger every sample is counted once, and the rollups are those of delivering
            // each once in order. Raw rows are a subset of the samples; with a policy that
            // stores every sample, all of them.
            for (policy, all_raw) in [(policy, false), (RawSamplePolicy::EVERY_SAMPLE, true)] {
                let mut ordered = Tiers::<SampleRow>::default();
                ordered.write(&all, &policy);
                let mut late = Tiers::<SampleRow>::default();
                let (mut late_counted, mut repeated) = (0, 0);
                for batch in late_deliveries(&mut rng, &all, 8, 4) {
                    let rows = late.write(&batch, &policy);
                    assert_eq!(rows.not_newer, 0, "seed {seed}");
                    late_counted += rows.late;
                    repeated += rows.repeated;
                }
                assert_eq!(late.hourly, ordered.hourly, "seed {seed}: late, hourly");
                assert_eq!(late.daily, ordered.daily, "seed {seed}: late, daily");
                let every: BTreeMap<(String, i64), SampleRow> = all
                    .iter()
                    .map(|s| ((s.system_id.clone(), s.observed_at), s.clone()))
                    .collect();
                assert!(
                    late.raw.iter().all(|(k, r)| every.get(k) == Some(r)),
                    "seed {seed}: a raw row that is no sample"
                );
                if all_raw {
                    assert_eq!(late.raw, every, "seed {seed}: every sample raw");
                }
                late_total += late_counted;
                repeated_total += repeated;
            }

            // Every sample counted once; the rollups are exact.
            let mut truth: BTreeMap<(String, i64), Agg6> = BTreeMap::new();
            for s in &all {
                let e = truth
                    .entry((s.system_id.clone(), s.observed_at.div_euclid(3_600_000)))
                    .or_insert((0, i64::MAX, i64::MIN, 0.0, 0, 0));
                e.0 += 1;
                e.1 = e.1.min(s.used_bytes);
                e.2 = e.2.max(s.used_bytes);
                e.3 += s.used_bytes as f64;
                e.4 = s.observed_at;
                e.5 = s.used_bytes;
            }
            let got: BTreeMap<(String, i64), Agg6> = once
                .hourly
                .iter()
                .map(|((system, hour), h)| {
                    (
                        (system.clone(), hour / 3_600_000),
                        (
                            h.samples,
                            h.used_min,
                            h.used_max,
                            h.used_sum,
                            h.last_at,
                            h.used_bytes,
                        ),
                    )
                })
                .collect();
            assert_eq!(got, truth, "seed {seed}: hourly");
            let daily_samples: i64 = once.daily.values().map(|d| d.samples).sum();
            assert_eq!(daily_samples, all.len() as i64, "seed {seed}: daily");

            // The raw rows: the first sample of each system, then exactly those outside the
            // deadband of the previous stored one or at least the maximum gap after it.
            let mut last: HashMap<&str, (i64, i64, i64)> = HashMap::new();
            for s in &all {
                let stored = once.raw.contains_key(&(s.system_id.clone(), s.observed_at));
                let expect = match last.get(s.system_id.as_str()) {
                    None => true,
                    Some(&(at, used, total)) => {
                        let band = total / 1000;
                        s.observed_at - at >= 3_600_000
                            || (s.used_bytes - used).abs() > band
                            || (s.total_bytes - total).abs() > band
                    }
                };
                assert_eq!(stored, expect, "seed {seed}: raw {s:?}");
                if stored {
                    last.insert(&s.system_id, (s.observed_at, s.used_bytes, s.total_bytes));
                }
            }
        }
        // The late deliveries did come after newer samples, and redeliveries were met.
        assert!(
            late_total > 500 && repeated_total > 100,
            "{late_total} {repeated_total}"
        );
    }

    /// Snapshots of up to three systems in time order, each with its pools (one sometimes
    /// missing, one sometimes listed twice) and its performance (some metrics absent); gaps of
    /// hours. Metric values are multiples of 1/4, so that sums are exact in any order.
    fn deep_history(rng: &mut Rng) -> (Vec<Vec<PoolSample>>, Vec<Vec<PerformanceSample>>) {
        let (mut pools, mut performance) = (Vec::new(), Vec::new());
        for s in 0..1 + rng.below(3) {
            let system_id = format!("s{s}");
            let mut t = 1_764_000_000_000 + rng.below(3_600_000) as i64;
            for _ in 0..rng.below(80) {
                t += match rng.below(10) {
                    0 => 3_600_000 + rng.below(30_000_000) as i64,
                    _ => 30_000 + rng.below(900_000) as i64,
                };
                let mut snap: Vec<PoolSample> = Vec::new();
                for pool in ["aggregate:a1", "aggregate:a2", "site:dc1"] {
                    if rng.below(8) != 0 {
                        snap.push(PoolSample {
                            key: PoolKey {
                                system_id: system_id.clone(),
                                pool: pool.into(),
                            },
                            observed_at: t,
                            total_bytes: 1_000_000 + rng.below(3) as i64,
                            used_bytes: rng.below(1_000_000) as i64,
                        });
                    }
                }
                if rng.below(10) == 0
                    && let Some(first) = snap.first().cloned()
                {
                    snap.push(first);
                }
                pools.push(snap);
                let metrics =
                    [0; 6].map(|_| (rng.below(4) != 0).then(|| rng.below(40_000) as f64 / 4.0));
                performance.push(vec![PerformanceSample {
                    system_id: system_id.clone(),
                    observed_at: t,
                    metrics,
                }]);
            }
        }
        // The systems' snapshots interleaved in time order (a snapshot without pools is empty).
        pools.sort_by_key(|s: &Vec<PoolSample>| s.first().map_or(0, |p| p.observed_at));
        performance.sort_by_key(|s: &Vec<PerformanceSample>| s[0].observed_at);
        (pools, performance)
    }

    /// The rollups of exactly `samples` (distinct, in time order per series), as the tiers
    /// should hold them.
    fn rollups_of<S: TierSample>(samples: &[S], raw: bool) -> Tiers<S> {
        let mut want = Tiers::default();
        for s in samples {
            let one = TierRows {
                raw: if raw { vec![s.clone()] } else { Vec::new() },
                hourly: vec![TierRow {
                    key: s.key().clone(),
                    period: s.at().div_euclid(HOUR_MS) * HOUR_MS,
                    rollup: s.rollup(),
                }],
                daily: vec![TierRow {
                    key: s.key().clone(),
                    period: utc_day(s.at()),
                    rollup: s.rollup(),
                }],
                ..TierRows::default()
            };
            want.merge(&one);
        }
        want
    }

    /// The property of the pool and performance tiers, with the marks read per system as the
    /// database gives them: whatever the batches (split between any snapshots, with
    /// redeliveries of snapshots already written, shuffled), the tiers hold every distinct
    /// sample counted exactly once; a batch delivered again adds nothing; and a snapshot
    /// delivered late (after a newer one of its system was written) is counted once above the
    /// ledger's floor and, at or below it, only when newer than what was counted, never twice.
    fn tiers_count_each_sample_once<S: Sample>(
        seed: u64,
        rng: &mut Rng,
        snaps: &[Vec<S>],
        raw: bool,
    ) -> LateCounts {
        let write = |tiers: &mut Tiers<S>, batch: &[S]| {
            let rows = super::tiers(
                batch,
                &tiers.counted_through(),
                raw,
                &tiers.ledger_of(batch),
            );
            tiers.merge(&rows);
            tiers.record(batch);
            rows
        };
        // Every distinct sample, in time order per series (the repeats of a pool are equal).
        let mut distinct: Vec<S> = Vec::new();
        let mut seen: std::collections::BTreeSet<(S::Key, i64)> = Default::default();
        for s in snaps.iter().flatten() {
            if seen.insert((s.key().clone(), s.at())) {
                distinct.push(s.clone());
            }
        }
        let want = rollups_of(&distinct, raw);

        let mut once = Tiers::default();
        for snap in snaps {
            write(&mut once, snap);
        }
        assert_eq!(once, want, "seed {seed}: one snapshot per batch");
        let mut whole = Tiers::default();
        write(&mut whole, &snaps.concat());
        assert_eq!(whole, want, "seed {seed}: one batch");

        let mut messy = Tiers::default();
        let mut next = 0;
        while next < snaps.len() {
            let end = (next + 1 + rng.below(12) as usize).min(snaps.len());
            let mut batch: Vec<Vec<S>> = snaps[next..end].to_vec();
            for _ in 0..rng.below(5) {
                batch.push(snaps[rng.below(end as u64) as usize].clone());
            }
            for i in (1..batch.len()).rev() {
                batch.swap(i, rng.below(i as u64 + 1) as usize);
            }
            let batch = batch.concat();
            write(&mut messy, &batch);
            let again = write(&mut messy, &batch);
            assert!(
                again.raw.is_empty() && again.hourly.is_empty() && again.daily.is_empty(),
                "seed {seed}: a batch delivered again counted"
            );
            assert_eq!(again.repeated, batch.len() as u64, "seed {seed}");
            next = end;
        }
        assert_eq!(messy, want, "seed {seed}: redelivered, split, shuffled");

        // Late snapshots: some are held back and delivered a few batches later, with
        // redeliveries. Above the ledger's floor each batch counts exactly its samples the
        // tiers never counted; at or below it, those newer than what their systems' tiers
        // counted before it. With the ledger everywhere (floor MIN) every sample is counted
        // once; without it (floor MAX) late ones are lost.
        let middle = distinct
            .get(rng.below(distinct.len() as u64) as usize)
            .map_or(0, |s| s.at());
        let mut counts = LateCounts::default();
        for floor in [i64::MIN, i64::MAX, middle] {
            let mut late = Tiers::with_floor(floor);
            let mut counted: Vec<S> = Vec::new();
            let mut mark: HashMap<String, i64> = HashMap::new();
            let mut known: std::collections::BTreeSet<(String, i64)> = Default::default();
            let mut late_counted = 0;
            for batch in late_deliveries(rng, snaps, 6, 5) {
                let batch: Vec<S> = batch.into_iter().flatten().collect();
                let mut fresh: Vec<S> = Vec::new();
                let mut in_batch: std::collections::BTreeSet<(S::Key, i64)> = Default::default();
                for s in &batch {
                    let new = match s.at() > floor {
                        true => !known.contains(&(s.system_id().to_owned(), s.at())),
                        false => mark.get(s.system_id()).is_none_or(|&m| s.at() > m),
                    };
                    if new && in_batch.insert((s.key().clone(), s.at())) {
                        fresh.push(s.clone());
                    }
                }
                let rows = write(&mut late, &batch);
                assert_eq!(
                    rows.not_newer + rows.repeated,
                    (batch.len() - fresh.len()) as u64,
                    "seed {seed} floor {floor}"
                );
                late_counted += rows.late;
                for s in &fresh {
                    let m = mark.entry(s.system_id().to_owned()).or_insert(i64::MIN);
                    *m = (*m).max(s.at());
                }
                for s in batch.iter().filter(|s| s.at() > floor) {
                    known.insert((s.system_id().to_owned(), s.at()));
                }
                counted.extend(fresh);
            }
            counted.sort_by(|a, b| (a.key(), a.at()).cmp(&(b.key(), b.at())));
            assert_eq!(
                late,
                rollups_of(&counted, raw),
                "seed {seed} floor {floor}: late snapshots"
            );
            match floor {
                i64::MIN => {
                    assert_eq!(late, want, "seed {seed}: late snapshots, all counted");
                    counts.counted_late += late_counted;
                }
                i64::MAX => {
                    assert_eq!(late_counted, 0, "seed {seed}: no ledger, nothing late");
                    counts.lost_without_ledger += distinct.len() - counted.len();
                }
                _ => {}
            }
        }
        counts
    }

    /// What the late deliveries of [`tiers_count_each_sample_once`] did.
    #[derive(Debug, Default)]
    struct LateCounts {
        /// Samples counted late with the ledger.
        counted_late: u64,
        /// Samples never counted without it.
        lost_without_ledger: usize,
    }

    #[test]
    fn pool_and_performance_tiers_count_each_sample_once() {
        let (mut pools, mut performance) = (LateCounts::default(), LateCounts::default());
        for seed in 1..=200u64 {
            let mut rng = Rng(seed.wrapping_mul(0x9e37_79b9_7f4a_7c15) | 1);
            let (pool_snaps, performance_snaps) = deep_history(&mut rng);
            let p = tiers_count_each_sample_once(seed, &mut rng, &pool_snaps, false);
            let f = tiers_count_each_sample_once(seed, &mut rng, &performance_snaps, true);
            pools.counted_late += p.counted_late;
            pools.lost_without_ledger += p.lost_without_ledger;
            performance.counted_late += f.counted_late;
            performance.lost_without_ledger += f.lost_without_ledger;
        }
        // The late deliveries did come after newer snapshots.
        assert!(
            pools.counted_late > 100
                && performance.counted_late > 50
                && pools.lost_without_ledger > 100
                && performance.lost_without_ledger > 50,
            "{pools:?} {performance:?}"
        );
    }

    #[test]
    fn performance_rollups() {
        let s = |t: i64, m: [Option<f64>; 6]| PerformanceSample {
            system_id: "s".into(),
            observed_at: t,
            metrics: m,
        };
        let mut r = PerformanceRollup::of(&s(20, [Some(4.0), None, Some(1.5), None, None, None]));
        r.add(&PerformanceRollup::of(&s(
            10,
            [Some(6.0), None, None, Some(2.0), None, None],
        )));
        assert_eq!(
            r,
            PerformanceRollup {
                samples: 2,
                last_at: 20,
                n: [2, 0, 1, 1, 0, 0],
                sum: [10.0, 0.0, 1.5, 2.0, 0.0, 0.0],
                max: [Some(6.0), None, Some(1.5), Some(2.0), None, None],
            }
        );
        let mut p = Performance {
            read_iops: Some(f64::NAN),
            write_iops: Some(f64::INFINITY),
            read_bytes_per_s: Some(7),
            ..Performance::default()
        };
        assert_eq!(
            performance_metrics(&p),
            [None, None, None, None, Some(7.0), None]
        );
        p.read_iops = Some(1.0);
        assert_eq!(performance_metrics(&p)[0], Some(1.0));
    }

    #[test]
    fn raw_sample_policy() {
        let s = |t: i64, used: i64, total: i64| SampleRow {
            system_id: "s".into(),
            observed_at: t,
            total_bytes: total,
            used_bytes: used,
            free_bytes: total - used,
        };
        let p = RawSamplePolicy::default();
        let last = Some((0, 500_000, 1_000_000));
        assert!(p.keeps(None, &s(0, 1, 10)));
        // 0.1 % of 1,000,000 is 1,000 bytes: a move of exactly that stays inside.
        assert!(!p.keeps(last, &s(60_000, 501_000, 1_000_000)));
        assert!(p.keeps(last, &s(60_000, 501_001, 1_000_000)));
        assert!(p.keeps(last, &s(60_000, 498_999, 1_000_000)));
        assert!(p.keeps(last, &s(60_000, 500_000, 1_001_001)));
        // The maximum gap.
        assert!(!p.keeps(last, &s(p.max_gap_ms - 1, 500_000, 1_000_000)));
        assert!(p.keeps(last, &s(p.max_gap_ms, 500_000, 1_000_000)));
        // A byte deadband larger than the percentage wins.
        let bytes = RawSamplePolicy {
            deadband_bytes: 5_000,
            ..p
        };
        assert!(!bytes.keeps(last, &s(60_000, 504_000, 1_000_000)));
        assert!(bytes.keeps(last, &s(60_000, 505_001, 1_000_000)));
        // Every sample.
        assert!(RawSamplePolicy::EVERY_SAMPLE.keeps(last, &s(0, 500_000, 1_000_000)));
    }
}
