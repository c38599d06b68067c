//! Writing a batch and acknowledging it: retries with backoff while its messages stay
//! unacknowledged (kept alive with in-progress acks), refused messages isolated as dead letters,
//! ack after commit, `Term` for dead letters, `Nak` for messages released unwritten.

use std::collections::HashSet;
use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

use async_nats::jetstream::{AckKind, Message};
use sdash_service::Shutdown;

use super::{Ctx, End, backoff};
use crate::config::WriterConfig;
use crate::lock::{WriterLock, sleep_or_stop};
use crate::store::{BatchOutcome, DeadLetterReason, Incoming, PreparedBatch, Store, StoreError};

/// How often unacknowledged messages held by the writer get an in-progress ack.
pub(super) fn progress_interval(config: &WriterConfig) -> Duration {
    (config.ack_wait / 3).max(Duration::from_millis(200))
}

/// Releases fetched messages that will not be written (nak: redelivered at once).
pub(super) async fn release(ctx: &Ctx<'_>, messages: &mut Vec<Message>) {
    if !messages.is_empty() {
        tracing::info!(
            messages = messages.len(),
            "releasing a fetched batch for redelivery"
        );
        ack_all(ctx, messages, |_| AckKind::Nak(None)).await;
        messages.clear();
    }
}

/// Writes a batch; when the database refuses its data (not its availability), writes it in
/// halves until the refused message is alone, and stores that one as a dead letter.
async fn write_isolating(
    store: &Store,
    batch: &[Incoming],
    prepared: &PreparedBatch,
) -> Result<BatchOutcome, StoreError> {
    match store.write_prepared(prepared).await {
        Err(e) if e.is_data_error() => {
            tracing::warn!(error = %e, messages = batch.len(), "the database refused the batch; writing it in parts");
            let mut total = BatchOutcome::default();
            let mut parts = vec![batch];
            while let Some(part) = parts.pop() {
                match store.write_batch(part).await {
                    Ok(o) => total.merge(o),
                    Err(e) if e.is_data_error() => match part {
                        [one] => {
                            tracing::warn!(error = %e, stream_seq = one.stream_seq, "message refused by the database: dead letter");
                            total.merge(
                                store
                                    .dead_letter(
                                        one,
                                        &DeadLetterReason::RefusedByDatabase(e.to_string()),
                                    )
                                    .await?,
                            );
                        }
                        _ => {
                            let (a, b) = part.split_at(part.len() / 2);
                            parts.push(b);
                            parts.push(a);
                        }
                    },
                    Err(e) => return Err(e),
                }
            }
            Ok(total)
        }
        other => other,
    }
}

pub(super) async fn ack_all(
    ctx: &Ctx<'_>,
    messages: &[Message],
    kind: impl Fn(&Message) -> AckKind,
) {
    for m in messages {
        if let Err(e) = m.ack_with(kind(m)).await {
            ctx.metrics.nats_errors.inc();
            tracing::debug!(error = %e, "ack failed (the message will be redelivered and written idempotently)");
        }
    }
}

/// Writes one batch with retries, then acks it. `Some(end)` when the batch was abandoned.
pub(super) async fn process(
    ctx: &Ctx<'_>,
    store: &Store,
    lock: &WriterLock,
    messages: &[Message],
    decoded: Option<Decoded>,
    stop: &Shutdown,
) -> Option<End> {
    let Decoded { incoming, prepared } = match decoded {
        Some(d) => d,
        None => Decoded::of(store, messages),
    };
    if let Some(pending) = messages
        .last()
        .and_then(|m| m.info().ok())
        .map(|i| i.pending)
    {
        store.set_consumer_pending(pending);
        ctx.metrics
            .consumer_pending
            .set(i64::try_from(pending).unwrap_or(i64::MAX));
    }
    let progress_every = progress_interval(ctx.config);
    let mut last_progress = Instant::now();
    let mut attempt = 0u32;
    loop {
        let started = Instant::now();
        // Keep the batch alive in JetStream while a slow write is under way.
        let write = write_isolating(store, &incoming, &prepared);
        tokio::pin!(write);
        let result = loop {
            let next_progress = progress_every.saturating_sub(last_progress.elapsed());
            tokio::select! {
                r = &mut write => break r,
                _ = tokio::time::sleep(next_progress) => {
                    ack_all(ctx, messages, |_| AckKind::Progress).await;
                    last_progress = Instant::now();
                }
            }
        };
        match result {
            Ok(outcome) => {
                ctx.metrics
                    .record_batch(&outcome, started.elapsed().as_secs_f64());
                ctx.health.db.store(true, Ordering::SeqCst);
                if attempt > 0 {
                    tracing::info!(attempt, "database write succeeded after retries");
                }
                if outcome.rows.change_outbox > 0 {
                    ctx.changes
                        .committed(ctx.metrics, outcome.rows.change_outbox);
                }
                let dead: HashSet<u64> = outcome.dead_lettered.iter().copied().collect();
                for inc in incoming.iter().filter(|i| dead.contains(&i.stream_seq)) {
                    tracing::warn!(stream_seq = inc.stream_seq, subject = %inc.subject, "dead letter stored; message terminated");
                }
                ack_all(ctx, messages, |m| {
                    let seq = m.info().map(|i| i.stream_sequence).unwrap_or(0);
                    if dead.contains(&seq) {
                        AckKind::Term
                    } else {
                        AckKind::Ack
                    }
                })
                .await;
                return None;
            }
            Err(StoreError::LockLost) => {
                ack_all(ctx, messages, |_| AckKind::Nak(None)).await;
                return Some(End::LockLost);
            }
            Err(e) => {
                ctx.metrics.retries.inc();
                ctx.health.db.store(false, Ordering::SeqCst);
                attempt += 1;
                let delay = backoff(attempt);
                tracing::warn!(error = %e, attempt, ?delay, messages = messages.len(), "database write failed; retrying (messages stay unacknowledged)");
                let until = Instant::now() + delay;
                loop {
                    if last_progress.elapsed() >= progress_every {
                        ack_all(ctx, messages, |_| AckKind::Progress).await;
                        last_progress = Instant::now();
                    }
                    let left = until.saturating_duration_since(Instant::now());
                    if left.is_zero() {
                        break;
                    }
                    if sleep_or_stop(left.min(progress_every), stop).await {
                        tracing::info!(
                            "shutdown during database retries: releasing the batch for redelivery"
                        );
                        ack_all(ctx, messages, |_| AckKind::Nak(None)).await;
                        return Some(End::Stop);
                    }
                    if !lock.is_held() {
                        ack_all(ctx, messages, |_| AckKind::Nak(None)).await;
                        store.set_fence(None);
                        return Some(End::LockLost);
                    }
                }
                if last_progress.elapsed() >= progress_every {
                    ack_all(ctx, messages, |_| AckKind::Progress).await;
                    last_progress = Instant::now();
                }
            }
        }
    }
}

/// A fetched batch, decoded ahead of its write.
pub(super) struct Decoded {
    pub(super) incoming: Vec<Incoming>,
    pub(super) prepared: PreparedBatch,
}

impl Decoded {
    pub(super) fn of(store: &Store, messages: &[Message]) -> Decoded {
        let incoming: Vec<Incoming> = messages.iter().map(to_incoming).collect();
        let prepared = store.prepare(&incoming);
        Decoded { incoming, prepared }
    }
}

fn to_incoming(m: &Message) -> Incoming {
    let (stream_seq, deliveries) = match m.info() {
        Ok(i) => (
            i.stream_sequence,
            u64::try_from(i.delivered).unwrap_or(1).max(1),
        ),
        Err(_) => (0, 1),
    };
    Incoming {
        stream_seq,
        subject: m.subject.to_string(),
        payload: m.payload.to_vec(),
        deliveries,
    }
}
