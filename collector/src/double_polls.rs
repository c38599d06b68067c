//! Double polls, as this collector can tell from the bus: a system this collector polled that
//! another collector also polled in the same interval of the system's schedule. Sharding keeps
//! this at 0; it grows while the collectors disagree on who is alive (a member joining or
//! leaving, the membership bucket unreachable or lost) and must stop growing within one lease.
//!
//! Every collector already publishes one snapshot per owned system and interval on
//! `sdash.v1.snapshot.<system>`, and the envelope names the collector that made it, so a core
//! NATS subscription to every snapshot shows who polled what when; nothing is added to the bus.
//! Each collector counts the double polls it took part in, so a system polled by two collectors
//! in one interval is counted once by each of them.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use futures::StreamExt;
use prometheus_client::metrics::counter::Counter;
use sdash_proto::Envelope;
use sdash_proto::subjects::{self, Kind};

use crate::inventory::SystemConfig;
use crate::scheduler::interval_index;

/// Intervals remembered per system: snapshots published late (an outbox draining after an
/// outage) still meet the ones of their interval, and memory stays bounded.
const RECENT_INTERVALS: usize = 8;
/// Distinct collectors remembered per system and interval (a bound against a noisy bus).
const COLLECTORS_PER_INTERVAL: usize = 16;

/// Who published a snapshot of which system in which interval, for the systems of this
/// collector's inventory.
pub struct DoublePolls {
    me: String,
    intervals: HashMap<String, Duration>,
    /// Per system, sorted by interval index: the collectors seen polling it in that interval.
    recent: HashMap<String, Vec<(i64, Vec<String>)>>,
}

impl DoublePolls {
    pub fn new(me: &str) -> DoublePolls {
        DoublePolls {
            me: me.to_owned(),
            intervals: HashMap::new(),
            recent: HashMap::new(),
        }
    }

    /// Follows the inventory: only its systems are tracked, each with its own interval.
    pub fn set_systems(&mut self, systems: &[SystemConfig]) {
        self.intervals = systems.iter().map(|s| (s.id.clone(), s.interval)).collect();
        let intervals = &self.intervals;
        self.recent.retain(|id, _| intervals.contains_key(id));
    }

    /// Records a snapshot of `system_id` that `collector_id` observed at `observed_at` (ms).
    /// True when it makes that interval a double poll this collector took part in (once per
    /// system and interval, however many snapshots follow).
    pub fn record(&mut self, system_id: &str, collector_id: &str, observed_at: i64) -> bool {
        let Some(interval) = self.intervals.get(system_id) else {
            return false;
        };
        let index = interval_index(system_id, observed_at, *interval);
        let slots = self.recent.entry(system_id.to_owned()).or_default();
        let at = match slots.binary_search_by_key(&index, |(k, _)| *k) {
            Ok(at) => at,
            // Older than every interval kept: too late to tell.
            Err(0) if slots.len() >= RECENT_INTERVALS => return false,
            Err(at) if slots.len() >= RECENT_INTERVALS => {
                slots.remove(0);
                slots.insert(at - 1, (index, Vec::new()));
                at - 1
            }
            Err(at) => {
                slots.insert(at, (index, Vec::new()));
                at
            }
        };
        let collectors = &mut slots[at].1;
        let me = self.me.as_str();
        let doubled = |c: &[String]| c.iter().any(|x| x == me) && c.iter().any(|x| x != me);
        let before = doubled(collectors.as_slice());
        if collectors.len() < COLLECTORS_PER_INTERVAL
            && !collectors.iter().any(|c| c == collector_id)
        {
            collectors.push(collector_id.to_owned());
        }
        !before && doubled(collectors.as_slice())
    }
}

/// Subscribes to every snapshot and counts this collector's double polls in `counter` until
/// `stop` resolves. The client resubscribes by itself after a reconnect.
pub async fn follow(
    client: async_nats::Client,
    tracker: Arc<Mutex<DoublePolls>>,
    counter: Counter,
    stop: impl std::future::Future<Output = ()>,
) {
    let mut stop = std::pin::pin!(stop);
    let mut snapshots = match client.subscribe(Kind::Snapshot.wildcard()).await {
        Ok(s) => s,
        Err(e) => {
            tracing::warn!(error = %e, "cannot subscribe to snapshots; double polls are not counted");
            return;
        }
    };
    loop {
        let message = tokio::select! {
            m = snapshots.next() => match m {
                Some(m) => m,
                None => break,
            },
            _ = &mut stop => break,
        };
        let Some((Kind::Snapshot, system_id)) = subjects::parse(&message.subject) else {
            continue;
        };
        // Only the envelope is read: the snapshot itself is not needed here.
        let envelope: Envelope<serde::de::IgnoredAny> = match sdash_proto::codec::decode(
            &message.payload,
        ) {
            Ok(e) => e,
            Err(e) => {
                tracing::debug!(error = %e, subject = %message.subject, "undecodable snapshot envelope");
                continue;
            }
        };
        if envelope.system_id != system_id {
            continue;
        }
        let doubled = tracker.lock().unwrap_or_else(|p| p.into_inner()).record(
            system_id,
            &envelope.collector_id,
            envelope.observed_at,
        );
        if doubled {
            counter.inc();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tracker(me: &str, interval: Duration) -> DoublePolls {
        let mut t = DoublePolls::new(me);
        t.intervals.insert("a".into(), interval);
        t
    }

    #[test]
    fn another_collector_in_the_same_interval_is_one_double_poll() {
        let interval = Duration::from_secs(10);
        let mut t = tracker("c1", interval);
        let start = 1_764_000_000_000 + crate::scheduler::phase_ms("a", interval) as i64;
        assert!(!t.record("a", "c1", start + 100));
        // A republished snapshot of ours counts nothing.
        assert!(!t.record("a", "c1", start + 200));
        assert!(t.record("a", "c2", start + 300));
        // A third collector in the same interval: still one double poll for us.
        assert!(!t.record("a", "c3", start + 400));
        // The next interval, c2 only: not ours, not counted; then ours too: counted.
        assert!(!t.record("a", "c2", start + 10_100));
        assert!(t.record("a", "c1", start + 10_200));
        // A hand-over (c2 in one interval, we in the next) is no double poll.
        assert!(!t.record("a", "c2", start + 20_100));
        assert!(!t.record("a", "c1", start + 30_100));
        // Systems of other inventories are not tracked.
        assert!(!t.record("b", "c1", start));
        assert!(!t.record("b", "c2", start));
    }

    #[test]
    fn late_snapshots_meet_their_interval_and_memory_stays_bounded() {
        let interval = Duration::from_secs(1);
        let mut t = tracker("c1", interval);
        let start = 1_764_000_000_000 + crate::scheduler::phase_ms("a", interval) as i64;
        for k in 0..100 {
            t.record("a", "c1", start + k * 1000);
        }
        assert_eq!(t.recent["a"].len(), RECENT_INTERVALS);
        // A snapshot published late (from an outbox) still finds our poll of its interval.
        assert!(t.record("a", "c2", start + 95 * 1000 + 500));
        // One older than anything kept is ignored.
        assert!(!t.record("a", "c2", start));
        assert_eq!(t.recent["a"].len(), RECENT_INTERVALS);
    }
}
