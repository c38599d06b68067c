//! The consume loop of a leading writer: retention when due (in short steps between batches),
//! the consumer set up (again) when needed, then one batch after another, each written while
//! the next one is pulled.

use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

use async_nats::jetstream::{self, AckKind, Message};
use sdash_proto::subjects::STREAM_SUBJECTS;
use sdash_service::Shutdown;

use super::ack::Decoded;
use super::ack::{ack_all, progress_interval, release};
use super::batch::process_overlapped;
use super::consumer::{Consumer, fetch_failed, setup_consumer, still_exists};
use super::fetch::fetch;
use super::{Ctx, End, backoff};
use crate::lock::{WriterLock, sleep_or_stop};
use crate::store::{RetentionRun, Store};

/// How often an idle writer checks that its consumer still exists.
const CONSUMER_CHECK: Duration = Duration::from_secs(5);

/// How long one retention step may run before the next batch is pulled (the database has one
/// connection: a batch waits for the step, plus one bounded statement at most).
const RETENTION_STEP: Duration = Duration::from_millis(50);
/// The same while no messages come (a step then delays only a message arriving during it).
const RETENTION_IDLE_STEP: Duration = Duration::from_millis(500);

/// The budget of the next retention step: with a batch already pulled and waiting, none (one
/// bounded statement, then the batch goes first).
fn retention_budget(idle: bool, waiting: bool) -> Duration {
    match (waiting, idle) {
        (true, _) => Duration::ZERO,
        (false, true) => RETENTION_IDLE_STEP,
        (false, false) => RETENTION_STEP,
    }
}

/// Consumes until shutdown, a lost lock or a fatal database error; fetched messages that will not
/// be written are released for redelivery.
pub(super) async fn consume(
    ctx: &Ctx<'_>,
    js: &jetstream::Context,
    store: &Store,
    lock: &WriterLock,
    stop: &Shutdown,
) -> End {
    let mut consumer: Option<Consumer> = None;
    let mut nats_attempt = 0u32;
    let mut next_retention = Instant::now();
    let mut last_check = Instant::now();
    let policy = ctx.config.retention_policy();
    // The retention pass in progress, run a step before each batch until it is done.
    let mut retention: Option<RetentionRun> = None;
    let mut idle = false;
    // Fetched (and decoded) while the previous batch was written; not acknowledged yet.
    let mut ready: Vec<Message> = Vec::new();
    let mut ready_decoded: Option<Decoded> = None;
    loop {
        if stop.is_cancelled() {
            release(ctx, &mut ready).await;
            return End::Stop;
        }
        if !lock.is_held() {
            release(ctx, &mut ready).await;
            store.set_fence(None);
            return End::LockLost;
        }
        if retention.is_none() && Instant::now() >= next_retention {
            next_retention = Instant::now() + ctx.config.retention_interval;
            retention = Some(store.start_retention(&policy));
        }
        if let Some(run) = retention.as_mut() {
            let budget = retention_budget(idle, !ready.is_empty());
            if retention_step(ctx, store, run, budget, &ready).await {
                retention = None;
            }
        }
        let Some(c) = consumer.as_ref() else {
            match setup_consumer(ctx, js).await {
                Ok(c) => {
                    tracing::info!(consumer = %ctx.config.consumer, "consuming {STREAM_SUBJECTS}");
                    ctx.health.consumer.store(true, Ordering::SeqCst);
                    nats_attempt = 0;
                    consumer = Some(c);
                }
                Err(e) => {
                    ctx.metrics.nats_errors.inc();
                    ctx.health.consumer.store(false, Ordering::SeqCst);
                    nats_attempt += 1;
                    let delay = backoff(nats_attempt.min(5));
                    tracing::warn!(error = %e, ?delay, "cannot set up the stream or consumer; retrying");
                    if sleep_or_stop(delay, stop).await {
                        return End::Stop;
                    }
                }
            }
            continue;
        };
        // The decoded form belongs to `ready` only; a fresh fetch is decoded in `process`.
        let decoded = ready_decoded.take().filter(|_| !ready.is_empty());
        let messages = if ready.is_empty() {
            match fetch(c, ctx.config, stop, 0).await {
                Ok(m) => {
                    nats_attempt = 0;
                    ctx.health.consumer.store(true, Ordering::SeqCst);
                    m
                }
                Err(e) => {
                    if fetch_failed(ctx, e, &mut nats_attempt, &mut consumer, stop).await {
                        return End::Stop;
                    }
                    continue;
                }
            }
        } else {
            std::mem::take(&mut ready)
        };
        idle = messages.is_empty();
        if messages.is_empty() {
            // Idle: now and then make sure the consumer still exists.
            if last_check.elapsed() >= CONSUMER_CHECK {
                last_check = Instant::now();
                if !still_exists(ctx, store, c).await {
                    consumer = None;
                }
            }
            continue;
        }
        last_check = Instant::now();
        // Write this batch while the next one is pulled (max_ack_pending allows two batches).
        let (end, next, next_decoded) =
            process_overlapped(ctx, store, lock, c, &messages, decoded, stop).await;
        drop(messages);
        match next {
            Ok(m) => {
                nats_attempt = 0;
                ctx.health.consumer.store(true, Ordering::SeqCst);
                ready = m;
                ready_decoded = next_decoded;
            }
            Err(e) => {
                if end.is_none()
                    && fetch_failed(ctx, e, &mut nats_attempt, &mut consumer, stop).await
                {
                    return End::Stop;
                }
            }
        }
        if let Some(end) = end {
            release(ctx, &mut ready).await;
            if matches!(end, End::LockLost) {
                store.set_fence(None);
            }
            return end;
        }
    }
}

/// One step of a retention pass; whether the pass is over (done, or failed: a failure is
/// retried at the next interval). Messages fetched ahead (`ready`) get an in-progress ack if
/// it took long.
async fn retention_step(
    ctx: &Ctx<'_>,
    store: &Store,
    run: &mut RetentionRun,
    budget: Duration,
    ready: &[Message],
) -> bool {
    let started = Instant::now();
    let over = match store.retention_step(run, budget).await {
        Ok(step) => {
            ctx.metrics.record_retention(&step);
            if run.is_done() && run.deleted.total() > 0 {
                tracing::info!(deleted = ?run.deleted, "retention applied");
            }
            run.is_done()
        }
        Err(e) => {
            tracing::warn!(error = %e, "retention failed; will try again next interval");
            true
        }
    };
    ctx.metrics
        .retention_step_seconds
        .observe(started.elapsed().as_secs_f64());
    if !ready.is_empty() && started.elapsed() >= progress_interval(ctx.config) {
        ack_all(ctx, ready, |_| AckKind::Progress).await;
    }
    over
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_waiting_batch_waits_for_one_retention_statement_at_most() {
        assert_eq!(retention_budget(false, true), Duration::ZERO);
        assert_eq!(retention_budget(true, true), Duration::ZERO);
        assert_eq!(retention_budget(false, false), RETENTION_STEP);
        assert_eq!(retention_budget(true, false), RETENTION_IDLE_STEP);
    }
}
