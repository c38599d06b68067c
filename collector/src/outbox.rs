//! The outbox between polling and NATS. Results wait here while NATS is slow or unreachable.
//! It is bounded by count and bytes; when full, a snapshot superseded by a newer snapshot of the
//! same system goes first, then the oldest message. Every drop is counted and logged. The
//! publisher retries each message with its own `Nats-Msg-Id` until JetStream acknowledges it, so
//! the server's duplicate window absorbs retries.

use std::collections::VecDeque;
use std::sync::Mutex;
use std::time::Duration;

use async_nats::jetstream;
use bytes::Bytes;
use sdash_proto::subjects::Kind;
use tokio::sync::Notify;

use crate::metrics::{CollectorMetrics, DropLabels, KindLabels};

/// One message waiting to be published.
#[derive(Debug, Clone)]
pub struct OutMessage {
    pub kind: Kind,
    /// The system (or collector) id the subject ends with.
    pub id: String,
    /// `Nats-Msg-Id`, the record's event id.
    pub msg_id: String,
    pub payload: Bytes,
}

impl OutMessage {
    pub fn subject(&self) -> String {
        self.kind.subject(&self.id)
    }
}

#[derive(Debug, Clone, Copy)]
pub struct OutboxLimits {
    pub max_messages: usize,
    pub max_bytes: usize,
}

struct Queue {
    messages: VecDeque<OutMessage>,
    bytes: usize,
    /// Taken by the publisher and not yet acknowledged: still waiting, so counted in the depth.
    in_flight: usize,
}

pub struct Outbox {
    queue: Mutex<Queue>,
    limits: OutboxLimits,
    ready: Notify,
    metrics: CollectorMetrics,
}

impl Outbox {
    pub fn new(limits: OutboxLimits, metrics: CollectorMetrics) -> Outbox {
        Outbox {
            queue: Mutex::new(Queue {
                messages: VecDeque::new(),
                bytes: 0,
                in_flight: 0,
            }),
            limits,
            ready: Notify::new(),
            metrics,
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Queue> {
        // A panic while holding the lock cannot leave the queue half-updated in a way that
        // matters more than losing the process; keep serving instead of poisoning every caller.
        self.queue
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    /// Queues a message, making room by the drop policy when the outbox is full.
    pub fn push(&self, message: OutMessage) {
        {
            let mut q = self.lock();
            while !q.messages.is_empty()
                && (q.messages.len() + 1 > self.limits.max_messages
                    || q.bytes + message.payload.len() > self.limits.max_bytes)
            {
                let (victim, reason) = match superseded_snapshot(&q.messages, &message) {
                    Some(i) => (q.messages.remove(i), "superseded_snapshot"),
                    None => (q.messages.pop_front(), "oldest"),
                };
                if let Some(victim) = victim {
                    q.bytes -= victim.payload.len();
                    self.metrics
                        .outbox_dropped
                        .get_or_create(&DropLabels {
                            reason: reason.into(),
                        })
                        .inc();
                    tracing::warn!(
                        kind = victim.kind.as_str(),
                        id = %victim.id,
                        msg_id = %victim.msg_id,
                        reason,
                        "outbox full: dropped a message"
                    );
                }
            }
            q.bytes += message.payload.len();
            q.messages.push_back(message);
            self.update_gauges(&q);
        }
        self.ready.notify_one();
    }

    /// Messages not yet acknowledged by JetStream: queued plus being published.
    pub fn depth(&self) -> usize {
        let q = self.lock();
        q.messages.len() + q.in_flight
    }

    fn update_gauges(&self, q: &Queue) {
        self.metrics
            .outbox_depth
            .set((q.messages.len() + q.in_flight) as i64);
        self.metrics.outbox_bytes.set(q.bytes as i64);
    }

    /// Up to `max` messages from the front, at most one snapshot per system: the publisher
    /// pipelines a batch, and of two snapshots of a system in one batch the older one could
    /// fail while the newer one is stored (a stream leader lost mid-batch); retried, the older
    /// one would then come after the newer one, a late sample the writer's tiers cannot count.
    /// The later snapshots wait, in order, for the next batch.
    fn take(&self, max: usize) -> Vec<OutMessage> {
        let mut q = self.lock();
        let mut batch: Vec<OutMessage> = Vec::with_capacity(max.min(q.messages.len()));
        let mut waiting: Vec<OutMessage> = Vec::new();
        let mut snapshots: std::collections::HashSet<String> = Default::default();
        while batch.len() < max {
            let Some(m) = q.messages.pop_front() else {
                break;
            };
            if m.kind == Kind::Snapshot && !snapshots.insert(m.id.clone()) {
                waiting.push(m);
            } else {
                batch.push(m);
            }
        }
        for m in waiting.into_iter().rev() {
            q.messages.push_front(m);
        }
        q.bytes -= batch.iter().map(|m| m.payload.len()).sum::<usize>();
        q.in_flight += batch.len();
        self.update_gauges(&q);
        batch
    }

    /// Ends the publishing of `taken` messages: the unacknowledged ones go back to the front,
    /// in their original order.
    fn settle(&self, taken: usize, failed: Vec<OutMessage>) {
        let mut q = self.lock();
        q.in_flight = q.in_flight.saturating_sub(taken);
        for m in failed.into_iter().rev() {
            q.bytes += m.payload.len();
            q.messages.push_front(m);
        }
        self.update_gauges(&q);
    }

    /// Publishes until `stop` resolves; then keeps flushing for at most `drain` before returning
    /// the number of messages left unsent.
    pub async fn run_publisher(
        &self,
        js: jetstream::Context,
        stop: impl std::future::Future<Output = ()>,
        drain: Duration,
    ) -> usize {
        let mut stop = std::pin::pin!(stop);
        let mut backoff = Duration::from_millis(100);
        let mut stopping: Option<tokio::time::Instant> = None;
        loop {
            if let Some(deadline) = stopping
                && (tokio::time::Instant::now() >= deadline || self.depth() == 0)
            {
                return self.depth();
            }
            let batch = self.take(512);
            if batch.is_empty() {
                if stopping.is_some() {
                    return 0;
                }
                tokio::select! {
                    _ = self.ready.notified() => {}
                    _ = &mut stop => { stopping = Some(tokio::time::Instant::now() + drain); }
                    _ = tokio::time::sleep(Duration::from_secs(1)) => {}
                }
                continue;
            }
            let taken = batch.len();
            let failed = self.publish_batch(&js, batch).await;
            let unacknowledged = failed.len();
            self.settle(taken, failed);
            if unacknowledged == 0 {
                backoff = Duration::from_millis(100);
                continue;
            }
            self.metrics.publish_retries.inc_by(unacknowledged as u64);
            tracing::warn!(
                unacknowledged,
                retry_in_ms = backoff.as_millis() as u64,
                "NATS did not acknowledge; retrying with the same message ids"
            );
            tokio::select! {
                _ = tokio::time::sleep(backoff) => {}
                _ = &mut stop, if stopping.is_none() => { stopping = Some(tokio::time::Instant::now() + drain); }
            }
            backoff = (backoff * 2).min(Duration::from_secs(2));
        }
    }

    /// Publishes a batch with pipelined acks; returns the messages that were not acknowledged.
    async fn publish_batch(
        &self,
        js: &jetstream::Context,
        batch: Vec<OutMessage>,
    ) -> Vec<OutMessage> {
        let mut pending = Vec::with_capacity(batch.len());
        let mut failed = Vec::new();
        let mut iter = batch.into_iter();
        for m in iter.by_ref() {
            let publish = jetstream::message::PublishMessage::build()
                .payload(m.payload.clone())
                .message_id(&m.msg_id);
            match tokio::time::timeout(
                Duration::from_secs(5),
                js.send_publish(m.subject(), publish),
            )
            .await
            {
                Ok(Ok(ack)) => pending.push((m, ack)),
                _ => {
                    failed.push(m);
                    break;
                }
            }
        }
        // After the first send failure the connection is likely down: keep the rest for later.
        failed.extend(iter);
        // Await the acks together under one deadline: a lost ack (no stream yet while another
        // subscriber listens on the subject, so no "no responders") costs one timeout per batch,
        // not one per message.
        let (messages, acks): (Vec<OutMessage>, Vec<_>) = pending.into_iter().unzip();
        let results = tokio::time::timeout(
            Duration::from_secs(10),
            futures::future::join_all(acks.into_iter().map(|ack| ack.into_future())),
        )
        .await;
        let mut acked_failed = Vec::new();
        match results {
            Ok(results) => {
                for (m, result) in messages.into_iter().zip(results) {
                    if result.is_ok() {
                        self.metrics
                            .published
                            .get_or_create(&KindLabels {
                                kind: m.kind.as_str().into(),
                            })
                            .inc();
                    } else {
                        acked_failed.push(m);
                    }
                }
            }
            Err(_) => acked_failed.extend(messages),
        }
        acked_failed.extend(failed);
        acked_failed
    }
}

/// Index of a queued snapshot that a newer snapshot of the same system (queued, or `incoming`)
/// makes obsolete.
fn superseded_snapshot(queue: &VecDeque<OutMessage>, incoming: &OutMessage) -> Option<usize> {
    use std::collections::HashSet;
    let mut newer: HashSet<&str> = HashSet::new();
    if incoming.kind == Kind::Snapshot {
        newer.insert(incoming.id.as_str());
    }
    // Walk from the newest: a snapshot is superseded when a later one of its system was seen.
    for (i, m) in queue.iter().enumerate().rev() {
        if m.kind == Kind::Snapshot && !newer.insert(m.id.as_str()) {
            return Some(i);
        }
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    fn msg(kind: Kind, id: &str, n: usize) -> OutMessage {
        OutMessage {
            kind,
            id: id.into(),
            msg_id: format!("{id}-{n}"),
            payload: Bytes::from(vec![0u8; 10]),
        }
    }

    fn ids(o: &Outbox) -> Vec<String> {
        o.lock().messages.iter().map(|m| m.msg_id.clone()).collect()
    }

    #[test]
    fn a_batch_takes_one_snapshot_per_system_and_keeps_the_order_of_the_rest() {
        let o = Outbox::new(
            OutboxLimits {
                max_messages: 100,
                max_bytes: 1 << 20,
            },
            CollectorMetrics::detached(),
        );
        // A backlog: two polls of a and b, events of a in between.
        o.push(msg(Kind::Snapshot, "a", 1));
        o.push(msg(Kind::Event, "a", 2));
        o.push(msg(Kind::Event, "a", 3));
        o.push(msg(Kind::Snapshot, "b", 4));
        o.push(msg(Kind::Snapshot, "a", 5));
        o.push(msg(Kind::Snapshot, "b", 6));
        o.push(msg(Kind::Snapshot, "c", 7));
        let taken = |batch: &[OutMessage]| -> Vec<String> {
            batch.iter().map(|m| m.msg_id.clone()).collect()
        };
        let first = o.take(512);
        assert_eq!(taken(&first), ["a-1", "a-2", "a-3", "b-4", "c-7"]);
        assert_eq!(
            ids(&o),
            ["a-5", "b-6"],
            "the newer snapshots wait, in order"
        );
        assert_eq!(o.depth(), 7);
        // The first batch's snapshot of a failed: it goes back first, before its successor,
        // and the next batch again carries one snapshot of a: the older one.
        o.settle(first.len(), vec![first[0].clone()]);
        assert_eq!(ids(&o), ["a-1", "a-5", "b-6"]);
        let second = o.take(512);
        assert_eq!(taken(&second), ["a-1", "b-6"]);
        o.settle(second.len(), Vec::new());
        assert_eq!(taken(&o.take(512)), ["a-5"]);
        // `max` still bounds a batch.
        o.push(msg(Kind::Event, "a", 8));
        o.push(msg(Kind::Event, "a", 9));
        assert_eq!(taken(&o.take(1)), ["a-8"]);
    }

    #[test]
    fn full_outbox_drops_superseded_snapshots_first_then_oldest() {
        let metrics = CollectorMetrics::detached();
        let o = Outbox::new(
            OutboxLimits {
                max_messages: 3,
                max_bytes: 1 << 20,
            },
            metrics.clone(),
        );
        o.push(msg(Kind::Snapshot, "a", 1));
        o.push(msg(Kind::Event, "a", 2));
        o.push(msg(Kind::Snapshot, "b", 3));
        // A newer snapshot of a: the old snapshot of a goes, the event stays.
        o.push(msg(Kind::Snapshot, "a", 4));
        assert_eq!(ids(&o), ["a-2", "b-3", "a-4"]);
        // Nothing superseded by an event: the oldest goes.
        o.push(msg(Kind::Event, "c", 5));
        assert_eq!(ids(&o), ["b-3", "a-4", "c-5"]);
        let dropped: u64 = ["superseded_snapshot", "oldest"]
            .iter()
            .map(|r| {
                metrics
                    .outbox_dropped
                    .get_or_create(&DropLabels {
                        reason: (*r).into(),
                    })
                    .get()
            })
            .sum();
        assert_eq!(dropped, 2);
        assert_eq!(metrics.outbox_depth.get(), 3);
    }

    #[test]
    fn byte_limit_applies_and_requeue_keeps_order() {
        let o = Outbox::new(
            OutboxLimits {
                max_messages: 100,
                max_bytes: 25,
            },
            CollectorMetrics::detached(),
        );
        o.push(msg(Kind::Event, "a", 1));
        o.push(msg(Kind::Event, "a", 2));
        o.push(msg(Kind::Event, "a", 3));
        assert_eq!(ids(&o), ["a-2", "a-3"]);
        let batch = o.take(10);
        assert_eq!(
            o.depth(),
            2,
            "messages being published still count as waiting"
        );
        o.push(msg(Kind::Event, "b", 4));
        o.settle(2, batch);
        assert_eq!(o.depth(), 3);
        assert_eq!(ids(&o), ["a-2", "a-3", "b-4"]);
    }
}
