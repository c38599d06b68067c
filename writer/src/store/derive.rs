//! Deriving history from a batch's snapshots and the stored state of their systems: the new
//! latest states, status transitions, alert episodes (opened, seen again, cleared), capacity
//! samples, and the daily rollup of capacity samples. Pure code, the same for both backends.

use std::collections::{BTreeMap, HashMap, HashSet};

use sdash_proto::{Envelope, Snapshot, Status};

use super::plan::{
    AlertDetails, AlertEpisode, DailyRow, OpenAlertRow, SampleRow, StateRow, StoredState,
    TransitionRow, clean, clean_opt, to_i64,
};

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
