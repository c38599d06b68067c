//! Polling schedule. Each system gets a task that polls at its interval, with a phase derived
//! from its id so that polls spread across the interval (no thundering herd at :00) and every
//! collector agrees on when a system is due, which keeps a hand-over from double-polling.
//! A global semaphore bounds the polls in flight. A system that keeps failing is retried less
//! often (up to every 8th interval), while a snapshot saying so is still published every interval.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use sdash_proto::subjects::Kind;
use sdash_proto::{Envelope, EventRecord, Level, Snapshot, Status};
use tokio::sync::{Notify, Semaphore};
use tokio_util::sync::CancellationToken;

use crate::inventory::SystemConfig;
use crate::membership::{Membership, stable_hash};
use crate::metrics::{CollectorMetrics, PollLabels, VendorLabels};
use crate::outbox::{OutMessage, Outbox};
use crate::vendors::{Adapter, PollOutput};

/// What every system task shares.
pub struct Shared {
    pub collector_id: String,
    pub outbox: Arc<Outbox>,
    pub membership: Membership,
    pub in_flight: Arc<Semaphore>,
    pub metrics: CollectorMetrics,
    /// Events below this level are not published.
    pub event_level: Level,
    pub polls: AtomicU64,
    pub failures: AtomicU64,
    /// Systems in the inventory (all collectors'), for sizing the start-up window.
    pub systems: std::sync::atomic::AtomicUsize,
}

impl Shared {
    /// Encodes a record and queues it for publishing.
    pub fn enqueue<T: serde::Serialize>(&self, kind: Kind, id: &str, envelope: &Envelope<T>) {
        match sdash_proto::encode(envelope) {
            Ok(bytes) => self.outbox.push(OutMessage {
                kind,
                id: id.to_owned(),
                msg_id: envelope.event_id.clone(),
                payload: bytes.into(),
            }),
            Err(e) => {
                tracing::error!(error = %e, kind = kind.as_str(), id, "cannot encode a record")
            }
        }
    }

    /// Queues a poll's snapshot and its events (those at or above the event level).
    pub fn publish_poll(&self, system_id: &str, output: &PollOutput) {
        for event in output.events.iter().filter(|e| e.level >= self.event_level) {
            let envelope = Envelope::new(&self.collector_id, system_id, event.clone());
            self.enqueue(Kind::Event, system_id, &envelope);
        }
        let envelope = Envelope::new(&self.collector_id, system_id, output.snapshot.clone());
        self.enqueue(Kind::Snapshot, system_id, &envelope);
    }
}

/// Milliseconds into the interval at which `system_id` is polled.
pub fn phase_ms(system_id: &str, interval: Duration) -> u64 {
    let interval_ms = (interval.as_millis() as u64).max(1);
    stable_hash(&["phase", system_id]) % interval_ms
}

/// Which interval of `system_id`'s schedule the time `at_ms` falls in: the polls of one
/// interval, by whichever collector, share this index (every collector computes the same phase).
pub fn interval_index(system_id: &str, at_ms: i64, interval: Duration) -> i64 {
    let interval_ms = (interval.as_millis() as i64).max(1);
    (at_ms - phase_ms(system_id, interval) as i64).div_euclid(interval_ms)
}

/// The first schedule time (ms since the epoch) at or after `now_ms`.
pub fn next_due(now_ms: i64, system_id: &str, interval: Duration) -> i64 {
    let interval_ms = (interval.as_millis() as i64).max(1);
    let phase = phase_ms(system_id, interval) as i64;
    let k = (now_ms - phase).div_euclid(interval_ms) + 1;
    k * interval_ms + phase
}

/// CPU a collector may spend on one first poll (TLS handshake and login included) when it sizes
/// its start-up window.
const STARTUP_POLL_BUDGET: Duration = Duration::from_millis(6);
/// The shortest start-up window.
const STARTUP_WINDOW_MIN: Duration = Duration::from_secs(5);

/// The window over which a collector spreads the first polls of the `owned` systems it expects to
/// own: 5 s for a small fleet (data soon after start), growing with the fleet so that the burst
/// of first polls, each with a handshake and a login, leaves room for the scheduled ones, and at
/// most one interval (the first polls are then spread as evenly as the scheduled ones).
pub fn startup_window(owned: usize, interval: Duration) -> Duration {
    let wanted = STARTUP_POLL_BUDGET.saturating_mul(u32::try_from(owned).unwrap_or(u32::MAX));
    wanted
        .max(STARTUP_WINDOW_MIN)
        .min(interval.max(Duration::from_millis(1)))
}

/// The schedule time after a poll due at `due`, at `now_ms`: the following phase-aligned time.
/// After a late start (or a suspended machine) this skips what was missed instead of bursting.
/// After the off-schedule first poll it is the start of the next interval, so every interval
/// from the first on has its poll (a poll close after the first one is the price of no gap).
pub fn following_due(due: i64, now_ms: i64, system_id: &str, interval: Duration) -> i64 {
    next_due(due.max(now_ms), system_id, interval)
}

/// Polls one system until `cancel` fires; then logs out of its session.
///
/// `poll_now` wakes the task for an extra poll (a poll-now command this collector owns, see
/// [`crate::poll_now`]): it polls at once, publishes as usual and leaves the schedule as it was,
/// so the next regular poll still comes at its phase-aligned time (the extra poll neither shifts
/// nor replaces it). Its result updates the failure bookkeeping like any poll; a system in
/// back-off is polled all the same.
pub async fn system_task(
    config: SystemConfig,
    shared: Arc<Shared>,
    cancel: CancellationToken,
    poll_now: Arc<Notify>,
) {
    let vendor = config.vendor.as_str();
    let mut adapter = match Adapter::new(&config) {
        Ok(a) => Some(a),
        Err(e) => {
            tracing::error!(system = %config.id, error = %e, "cannot set up the system's adapter");
            None
        }
    };
    let mut consecutive_failures: u32 = 0;
    let mut skip_until_attempt: u32 = 0;
    let mut last_failure: Option<PollOutput> = None;
    // The first poll comes soon after start, spread over at most 5 s, once the collectors know
    // each other (so that collectors starting together do not all poll every system); after it,
    // polls follow the phase-aligned schedule every collector agrees on.
    shared.membership.settled(Duration::from_secs(5)).await;
    let members = shared.membership.members().len().max(1);
    let owned = shared.systems.load(Ordering::Relaxed) / members;
    let window = startup_window(owned, config.interval).as_millis() as u64;
    let first_delay = phase_ms(&config.id, config.interval) % window.max(1);
    let mut due = sdash_proto::now_ms() + first_delay as i64;
    // The first poll is off the schedule (counted apart, neither on time nor late).
    let mut first = true;
    loop {
        let wait = Duration::from_millis((due - sdash_proto::now_ms()).max(0) as u64);
        let extra = tokio::select! {
            _ = tokio::time::sleep(wait) => false,
            _ = poll_now.notified() => true,
            _ = cancel.cancelled() => break,
        };
        let scheduled = due;
        let startup = !extra && std::mem::take(&mut first);
        if !extra {
            // Next: the following phase-aligned time. After a late start (or a suspended
            // machine) this skips what was missed instead of bursting. An extra poll keeps `due`.
            due = following_due(due, sdash_proto::now_ms(), &config.id, config.interval);
        }
        if !config.enabled || !shared.membership.owns(&config.id) {
            last_failure = None;
            consecutive_failures = 0;
            continue;
        }
        // Back off a system that keeps failing, but still say every interval that it is down.
        if !extra && skip_until_attempt > 0 {
            skip_until_attempt -= 1;
            if let Some(previous) = &last_failure {
                let mut snapshot = previous.snapshot.clone();
                snapshot.poll_ms = 0;
                let note = format!(
                    "{} (retrying after {consecutive_failures} consecutive failures)",
                    snapshot.error.as_deref().unwrap_or("poll failed")
                );
                snapshot.error = Some(note);
                shared.publish_poll(
                    &config.id,
                    &PollOutput {
                        snapshot,
                        events: Vec::new(),
                    },
                );
            }
            continue;
        }
        let Ok(_permit) = shared.in_flight.clone().acquire_owned().await else {
            break;
        };
        let started = sdash_proto::now_ms();
        if extra {
            // Off the schedule: counted by `sdash_collector_poll_now_total` instead.
        } else if startup {
            shared.metrics.polls_startup.inc();
        } else if started - scheduled <= 1000 {
            shared.metrics.polls_on_time.inc();
        } else {
            shared.metrics.polls_late.inc();
        }
        let output = match adapter.as_mut() {
            Some(adapter) => tokio::select! {
                out = adapter.poll() => out,
                _ = cancel.cancelled() => break,
            },
            None => PollOutput {
                snapshot: Snapshot::failed(
                    config.vendor,
                    Status::Error,
                    "the system's adapter could not be set up (see the collector log)".into(),
                    0,
                ),
                events: Vec::new(),
            },
        };
        drop(_permit);
        let status = output.snapshot.status;
        shared
            .metrics
            .polls
            .get_or_create(&PollLabels {
                vendor: vendor.into(),
                result: status.as_str().into(),
            })
            .inc();
        shared
            .metrics
            .poll_duration
            .get_or_create(&VendorLabels {
                vendor: vendor.into(),
            })
            .observe(output.snapshot.poll_ms as f64 / 1000.0);
        shared.polls.fetch_add(1, Ordering::Relaxed);
        if status == Status::Online {
            consecutive_failures = 0;
            last_failure = None;
        } else {
            shared.failures.fetch_add(1, Ordering::Relaxed);
            consecutive_failures += 1;
            // 3 failures in a row: try every 2nd interval, then every 4th, at most every 8th.
            if consecutive_failures >= 3 {
                skip_until_attempt = (1u32 << (consecutive_failures - 2).min(3)) - 1;
            }
            last_failure = Some(output.clone());
        }
        shared.publish_poll(&config.id, &output);
    }
    if let Some(adapter) = adapter.as_mut() {
        adapter.logout().await;
    }
}

/// A collector heartbeat record for `sdash.v1.collector.<id>`.
pub fn heartbeat(
    shared: &Shared,
    owned: Vec<String>,
    started_at: i64,
) -> Envelope<sdash_proto::CollectorRecord> {
    let body = sdash_proto::CollectorRecord {
        version: env!("CARGO_PKG_VERSION").to_owned(),
        systems: owned,
        polls: shared.polls.swap(0, Ordering::Relaxed),
        failures: shared.failures.swap(0, Ordering::Relaxed),
        outbox_depth: shared.outbox.depth() as u64,
        started_at,
    };
    Envelope::new(&shared.collector_id, "", body)
}

/// An event about the collector's own handling of a system (not from the array).
pub fn local_event(level: Level, category: sdash_proto::Category, message: String) -> EventRecord {
    EventRecord {
        level,
        category,
        message,
        details: None,
        http_status: None,
        endpoint: None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_startup_window_grows_with_the_fleet_up_to_one_interval() {
        let minute = Duration::from_secs(60);
        assert_eq!(startup_window(20, minute), Duration::from_secs(5));
        assert_eq!(startup_window(0, minute), Duration::from_secs(5));
        assert_eq!(startup_window(2_000, minute), Duration::from_secs(12));
        assert_eq!(startup_window(10_000, minute), minute);
        assert_eq!(startup_window(usize::MAX, minute), minute);
        // Never longer than the interval, even a short one.
        assert_eq!(
            startup_window(20, Duration::from_secs(2)),
            Duration::from_secs(2)
        );
    }

    #[test]
    fn after_the_first_poll_every_interval_has_its_poll() {
        let interval = Duration::from_secs(60);
        for i in 0..500 {
            let id = format!("s{i}");
            let phase = phase_ms(&id, interval) as i64;
            let index = |t: i64| (t - phase).div_euclid(60_000);
            let first = 1_764_000_000_000 + i * 7_919;
            let next = following_due(first, first, &id, interval);
            // The next poll starts the very next interval: none is skipped.
            assert_eq!(index(next), index(first) + 1, "{id}");
            assert_eq!(next - phase, index(next) * 60_000, "{id}: aligned");
            assert_eq!(following_due(next, next, &id, interval) - next, 60_000);
            // A poll that started late does not make the next one burst.
            let late = following_due(next, next + 90_000, &id, interval);
            assert_eq!(index(late), index(next) + 2, "{id}");
        }
    }

    #[test]
    fn schedule_is_phase_aligned_and_spread() {
        let interval = Duration::from_secs(60);
        let due = next_due(1_000_000, "a", interval);
        assert!(due > 1_000_000 && due <= 1_060_000);
        assert_eq!((due as u64) % 60_000, phase_ms("a", interval));
        // Every collector computes the same due time for a system.
        assert_eq!(next_due(1_000_000, "a", interval), due);
        // Phases spread over the interval.
        let phases: std::collections::BTreeSet<u64> = (0..1000)
            .map(|i| phase_ms(&format!("s{i}"), interval) / 1000)
            .collect();
        assert!(phases.len() > 50, "phases bunch up: {}", phases.len());
    }
}
