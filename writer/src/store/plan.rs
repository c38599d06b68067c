//! Turning a batch of raw messages into rows: decoding and validation (bad messages become
//! dead letters), and deriving history (alerts, transitions, capacity samples) by comparing each
//! snapshot with the stored state. Pure code; the backends only move the rows in and out.

use std::collections::{BTreeMap, HashMap, HashSet};

use sdash_proto::codec::{MAX_PAYLOAD_BYTES, decode_record};
use sdash_proto::{Envelope, Record, Snapshot, Status};

use super::Incoming;

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

fn clean_opt(s: &Option<String>) -> Option<String> {
    s.as_deref().map(clean)
}

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
}

/// An alert row that is open in the database.
#[derive(Debug, Clone)]
pub(crate) struct OpenAlertRow {
    pub id: i64,
    pub system_id: String,
    pub alert_id: String,
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

#[derive(Debug, Clone)]
pub(crate) struct DailyRow {
    pub system_id: String,
    pub day: String,
    pub samples: i64,
    pub used_min: i64,
    pub used_max: i64,
    pub used_sum: f64,
    pub last_at: i64,
    pub total_bytes: i64,
    pub used_bytes: i64,
    pub free_bytes: i64,
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
    pub last_stream_seq: Option<i64>,
    pub redelivered: u64,
}

pub(crate) fn plan(batch: &[Incoming], max_deliver: u64, now: i64) -> Plan {
    let mut plan = Plan::default();
    let mut seen_snapshots: HashSet<String> = HashSet::new();
    let mut newest_system: HashMap<String, usize> = HashMap::new();
    let mut newest_collector: HashMap<String, usize> = HashMap::new();
    for inc in batch {
        let seq = to_i64(inc.stream_seq);
        plan.last_stream_seq = Some(plan.last_stream_seq.map_or(seq, |s| s.max(seq)));
        if inc.deliveries > 1 {
            plan.redelivered += 1;
        }
        let reason = if inc.payload.len() > MAX_PAYLOAD_BYTES {
            Some(format!(
                "oversized: payload of {} bytes is larger than the {MAX_PAYLOAD_BYTES}-byte limit",
                inc.payload.len()
            ))
        } else if max_deliver > 0 && inc.deliveries > max_deliver {
            Some(format!(
                "poison: delivered {} times (more than --max-deliver {max_deliver})",
                inc.deliveries
            ))
        } else {
            None
        };
        let record = match reason {
            Some(r) => Err(r),
            None => decode_record(&inc.subject, &inc.payload).map_err(|e| format!("rejected: {e}")),
        };
        match record {
            Err(reason) => plan.dead.push(DeadRow {
                stream_seq: seq,
                subject: clean(&inc.subject),
                payload: inc.payload.clone(),
                reason,
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
    /// Minimal `systems` rows `(id, vendor)` for systems seen in snapshots.
    pub minimal_systems: Vec<(String, &'static str)>,
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
    }
}

/// Derives history. Rules:
/// * a snapshot not newer than the stored state (a replay, a redelivery, a late arrival) changes
///   no state and no history; it still contributes its capacity sample and `last_online_at`;
/// * transitions are recorded for status, hardware and cluster (from NULL for a new system);
/// * alerts are derived only from `online` snapshots (an unreachable system's empty alert list
///   says nothing about its alerts): new ids open an episode, present ones move `last_seen`,
///   missing ones are cleared at the snapshot's time.
pub(crate) fn derive(
    snapshots: &BTreeMap<String, Vec<Envelope<Snapshot>>>,
    stored: &HashMap<String, StoredState>,
    open: &[OpenAlertRow],
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

        let mut episodes: Vec<AlertEpisode> = Vec::new();
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
                first_seen: 0,
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
                        }
                        None => {
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
                let gone: Vec<String> = open_idx
                    .keys()
                    .filter(|id| !present.contains(id.as_str()))
                    .cloned()
                    .collect();
                for id in gone {
                    if let Some(i) = open_idx.remove(&id) {
                        episodes[i].dirty = true;
                        episodes[i].cleared_at = Some(t);
                    }
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

/// Daily rollups of the samples whose insert actually happened (so a redelivery adds nothing).
pub(crate) fn rollup(inserted: &[SampleRow]) -> Vec<DailyRow> {
    // Keyed by the day's number; its text is made once per (system, day).
    let mut by_day: BTreeMap<(&str, i64), DailyRow> = BTreeMap::new();
    for s in inserted {
        let key = (s.system_id.as_str(), s.observed_at.div_euclid(86_400_000));
        match by_day.get_mut(&key) {
            Some(d) => {
                d.samples += 1;
                d.used_min = d.used_min.min(s.used_bytes);
                d.used_max = d.used_max.max(s.used_bytes);
                d.used_sum += s.used_bytes as f64;
                if s.observed_at >= d.last_at {
                    d.last_at = s.observed_at;
                    d.total_bytes = s.total_bytes;
                    d.used_bytes = s.used_bytes;
                    d.free_bytes = s.free_bytes;
                }
            }
            None => {
                by_day.insert(
                    key,
                    DailyRow {
                        system_id: s.system_id.clone(),
                        day: utc_day(s.observed_at),
                        samples: 1,
                        used_min: s.used_bytes,
                        used_max: s.used_bytes,
                        used_sum: s.used_bytes as f64,
                        last_at: s.observed_at,
                        total_bytes: s.total_bytes,
                        used_bytes: s.used_bytes,
                        free_bytes: s.free_bytes,
                    },
                );
            }
        }
    }
    by_day.into_values().collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn utc_days() {
        assert_eq!(utc_day(0), "1970-01-01");
        assert_eq!(utc_day(86_400_000 - 1), "1970-01-01");
        assert_eq!(utc_day(86_400_000), "1970-01-02");
        assert_eq!(utc_day(1_764_000_000_000), "2025-11-24");
        assert_eq!(utc_day(951_782_400_000), "2000-02-29");
        assert_eq!(utc_day(-1), "1969-12-31");
    }
}
