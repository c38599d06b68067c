//! The consume loop: JetStream durable pull consumer -> batches -> one transaction each -> ack.

use std::collections::HashSet;
use std::future::Future;
use std::hash::{BuildHasher, Hasher};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use async_nats::jetstream::{self, AckKind, Message, consumer};
use futures::StreamExt;
use prometheus_client::registry::Registry;
use sdash_proto::subjects::STREAM_SUBJECTS;
use sdash_service::bus;
use tokio::sync::watch;

use crate::config::WriterConfig;
use crate::lock::{WriterLock, sleep_or_stop};
use crate::metrics::WriterMetrics;
use crate::store::{BatchOutcome, Incoming, PreparedBatch, Store, StoreError};

type Consumer = consumer::Consumer<consumer::pull::Config>;

/// Backoff for database retries: full jitter between 0 and min(30 s, 100 ms * 2^attempt).
pub fn backoff(attempt: u32) -> Duration {
    let cap_ms = 100u64.saturating_mul(1u64 << attempt.min(20)).min(30_000);
    let r = std::collections::hash_map::RandomState::new()
        .build_hasher()
        .finish();
    Duration::from_millis((r % (cap_ms + 1)).max(10))
}

/// How long an idle pull request waits for a first message.
const IDLE_WAIT: Duration = Duration::from_secs(1);
/// How long a no-wait pull may take to answer before the batch goes ahead without it.
const FILL_MARGIN: Duration = Duration::from_millis(50);
/// How often an idle writer checks that its consumer still exists.
const CONSUMER_CHECK: Duration = Duration::from_secs(5);

#[derive(Default)]
struct Health {
    db: AtomicBool,
    consumer: AtomicBool,
    lock: AtomicBool,
}

impl Health {
    fn ready(&self) -> bool {
        self.db.load(Ordering::SeqCst)
            && self.consumer.load(Ordering::SeqCst)
            && self.lock.load(Ordering::SeqCst)
    }
}

enum End {
    Stop,
    LockLost,
    /// A configuration problem retrying cannot fix.
    Fatal(StoreError),
}

struct Ctx<'a> {
    config: &'a WriterConfig,
    metrics: &'a WriterMetrics,
    health: &'a Health,
}

/// Runs the writer until `shutdown` resolves: admin server, writer lock (standby until it is
/// free), database, consumer, batches.
pub async fn run(
    config: WriterConfig,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> anyhow::Result<()> {
    let (stop_tx, stop_rx) = watch::channel(false);
    tokio::spawn(async move {
        shutdown.await;
        let _ = stop_tx.send(true);
        // Keep the sender alive so receivers see the value, not a closed channel.
        std::future::pending::<()>().await;
    });
    let mut registry = Registry::default();
    let metrics = WriterMetrics::new(&mut registry);
    let health = Arc::new(Health::default());
    let ready_health = health.clone();
    let admin_stop = {
        let mut rx = stop_rx.clone();
        async move {
            let _ = rx.wait_for(|s| *s).await;
        }
    };
    let (addr, admin) = sdash_service::serve_admin(
        config.admin_listen,
        Arc::new(registry),
        Arc::new(move || ready_health.ready()),
        admin_stop,
    )
    .await
    .map_err(|e| {
        anyhow::anyhow!(
            "cannot listen on --admin-listen {}: {e}",
            config.admin_listen
        )
    })?;
    tracing::info!(%addr, "admin server listening (/healthz, /readyz, /metrics)");

    let client = match bus::connect(&config.nats, "sdash-writer", true).await {
        Ok(c) => c,
        Err(e) => {
            admin.abort();
            return Err(e.into());
        }
    };
    let js = jetstream::new(client.clone());
    let ctx = Ctx {
        config: &config,
        metrics: &metrics,
        health: &health,
    };
    let mut stop = stop_rx.clone();
    let result = async {
        loop {
            let Some(lock) =
                WriterLock::acquire(&config.database_url, config.lock_poll, &mut stop).await?
            else {
                return Ok::<(), anyhow::Error>(());
            };
            metrics.lock_held.set(1);
            health.lock.store(true, Ordering::SeqCst);
            let end = lead(&ctx, &js, &lock, &mut stop).await;
            metrics.lock_held.set(0);
            health.lock.store(false, Ordering::SeqCst);
            health.db.store(false, Ordering::SeqCst);
            drop(lock);
            match end {
                End::Stop => return Ok(()),
                End::LockLost => tracing::warn!("writer lock lost; going back to standby"),
                End::Fatal(e) => {
                    return Err(anyhow::Error::new(e).context("cannot use the database"));
                }
            }
        }
    }
    .await;
    // Push out the last acks before leaving.
    let _ = tokio::time::timeout(Duration::from_secs(5), client.flush()).await;
    if result.is_err() {
        admin.abort();
    }
    let _ = admin.await;
    tracing::info!("writer stopped");
    result
}

/// Open the database; `Ok(None)` when stopping first.
async fn open_store(
    ctx: &Ctx<'_>,
    lock: &WriterLock,
    stop: &mut watch::Receiver<bool>,
) -> Result<Option<Store>, StoreError> {
    let mut attempt = 0;
    loop {
        match Store::open(&ctx.config.database_url).await {
            Ok(store) => {
                let store = match &ctx.config.writer_id {
                    Some(id) => store.with_writer_id(id.clone()),
                    None => store,
                };
                store.set_max_deliver(ctx.config.max_deliver);
                if let Some(pid) = lock.pg_pid() {
                    store.set_fence(Some(pid));
                }
                ctx.health.db.store(true, Ordering::SeqCst);
                tracing::info!(backend = store.backend_name(), writer_id = store.writer_id(), lock = %lock.describe(), "database open");
                return Ok(Some(store));
            }
            Err(e @ (StoreError::Url(_) | StoreError::SchemaTooNew { .. })) => return Err(e),
            Err(e) => {
                attempt += 1;
                let delay = backoff(attempt);
                tracing::warn!(error = %e, attempt, ?delay, "cannot open the database; retrying");
                if sleep_or_stop(delay, stop).await || !lock.is_held() {
                    return Ok(None);
                }
            }
        }
    }
}

async fn setup_consumer(ctx: &Ctx<'_>, js: &jetstream::Context) -> anyhow::Result<Consumer> {
    let stream = bus::ensure_stream(js, &ctx.config.stream).await?;
    let batch = ctx.config.batch_max as i64;
    let config = consumer::pull::Config {
        durable_name: Some(ctx.config.consumer.clone()),
        description: Some("sdash-writer: persists the stream to the database".into()),
        filter_subject: STREAM_SUBJECTS.to_owned(),
        ack_policy: consumer::AckPolicy::Explicit,
        ack_wait: ctx.config.ack_wait,
        // Unlimited on the server: the writer counts deliveries itself and dead-letters poison.
        max_deliver: -1,
        max_ack_pending: (batch * 2).max(1000),
        deliver_policy: consumer::DeliverPolicy::All,
        ..Default::default()
    };
    let consumer = stream
        .get_or_create_consumer(&ctx.config.consumer, config)
        .await
        .map_err(|e| {
            anyhow::anyhow!(
                "cannot create the durable consumer {}: {e}",
                ctx.config.consumer
            )
        })?;
    Ok(consumer)
}

async fn lead(
    ctx: &Ctx<'_>,
    js: &jetstream::Context,
    lock: &WriterLock,
    stop: &mut watch::Receiver<bool>,
) -> End {
    let store = match open_store(ctx, lock, stop).await {
        Ok(Some(store)) => store,
        Ok(None) if *stop.borrow() => return End::Stop,
        Ok(None) => return End::LockLost,
        Err(e) => return End::Fatal(e),
    };
    let end = consume(ctx, js, &store, lock, stop).await;
    store.close().await;
    end
}

async fn consume(
    ctx: &Ctx<'_>,
    js: &jetstream::Context,
    store: &Store,
    lock: &WriterLock,
    stop: &mut watch::Receiver<bool>,
) -> End {
    let mut consumer: Option<Consumer> = None;
    let mut nats_attempt = 0u32;
    let mut next_retention = Instant::now();
    let mut last_check = Instant::now();
    let policy = ctx.config.retention_policy();
    // Fetched (and decoded) while the previous batch was written; not acknowledged yet.
    let mut ready: Vec<Message> = Vec::new();
    let mut ready_decoded: Option<Decoded> = None;
    loop {
        if *stop.borrow() {
            release(ctx, &mut ready).await;
            return End::Stop;
        }
        if !lock.is_held() {
            release(ctx, &mut ready).await;
            store.set_fence(None);
            return End::LockLost;
        }
        if Instant::now() >= next_retention {
            next_retention = Instant::now() + ctx.config.retention_interval;
            let started = Instant::now();
            match store.apply_retention(&policy).await {
                Ok(o) => {
                    ctx.metrics.record_retention(&o);
                    if o.total() > 0 {
                        tracing::info!(?o, "retention applied");
                    }
                }
                Err(e) => {
                    tracing::warn!(error = %e, "retention failed; will try again next interval")
                }
            }
            if !ready.is_empty() && started.elapsed() >= progress_interval(ctx.config) {
                ack_all(ctx, &ready, |_| AckKind::Progress).await;
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
        if messages.is_empty() {
            // Idle: now and then make sure the consumer still exists (a server that lost its
            // store answers pull requests with silence, not errors).
            if last_check.elapsed() >= CONSUMER_CHECK {
                last_check = Instant::now();
                match tokio::time::timeout(Duration::from_secs(5), c.get_info()).await {
                    Ok(Ok(info)) => {
                        ctx.metrics
                            .consumer_pending
                            .set(i64::try_from(info.num_pending).unwrap_or(i64::MAX));
                        store.set_consumer_pending(info.num_pending);
                    }
                    Ok(Err(e)) => {
                        tracing::warn!(error = %e, "the consumer is gone; setting the stream and consumer up again");
                        ctx.health.consumer.store(false, Ordering::SeqCst);
                        consumer = None;
                    }
                    Err(_) => tracing::warn!("consumer info timed out"),
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

/// Counts a failed pull, forgets the consumer (the server may have lost it) and backs off.
/// `true` when shutdown was requested meanwhile.
async fn fetch_failed(
    ctx: &Ctx<'_>,
    e: anyhow::Error,
    nats_attempt: &mut u32,
    consumer: &mut Option<Consumer>,
    stop: &mut watch::Receiver<bool>,
) -> bool {
    ctx.metrics.nats_errors.inc();
    ctx.health.consumer.store(false, Ordering::SeqCst);
    *nats_attempt += 1;
    let delay = backoff((*nats_attempt).min(5));
    tracing::warn!(error = %e, ?delay, "fetching from the consumer failed; retrying");
    // Set the stream and consumer up again (the server may have lost them).
    *consumer = None;
    sleep_or_stop(delay, stop).await
}

/// Releases fetched messages that will not be written (nak: redelivered at once).
async fn release(ctx: &Ctx<'_>, messages: &mut Vec<Message>) {
    if !messages.is_empty() {
        tracing::info!(
            messages = messages.len(),
            "releasing a fetched batch for redelivery"
        );
        ack_all(ctx, messages, |_| AckKind::Nak(None)).await;
        messages.clear();
    }
}

/// A fetched batch, decoded ahead of its write.
struct Decoded {
    incoming: Vec<Incoming>,
    prepared: PreparedBatch,
}

impl Decoded {
    fn of(store: &Store, messages: &[Message]) -> Decoded {
        let incoming: Vec<Incoming> = messages.iter().map(to_incoming).collect();
        let prepared = store.prepare(&incoming);
        Decoded { incoming, prepared }
    }
}

/// Writes `messages` (see [`process`]) while the next batch is pulled, and decodes the next
/// batch while this one is still being written (the database works on its own thread). The next
/// batch stays unacknowledged until its own commit; while this one is still being written (a
/// slow write or database retries) it is kept alive with in-progress acks like the batch being
/// written.
async fn process_overlapped(
    ctx: &Ctx<'_>,
    store: &Store,
    lock: &WriterLock,
    c: &Consumer,
    messages: &[Message],
    decoded: Option<Decoded>,
    stop: &mut watch::Receiver<bool>,
) -> (Option<End>, anyhow::Result<Vec<Message>>, Option<Decoded>) {
    let hint = messages.last().map(pending_after).unwrap_or(0);
    let mut fetch_stop = stop.clone();
    let progress_every = progress_interval(ctx.config);
    let next = fetch(c, ctx.config, &mut fetch_stop, hint);
    let work = process(ctx, store, lock, messages, decoded, stop);
    tokio::pin!(next, work);
    let mut fetched: Option<anyhow::Result<Vec<Message>>> = None;
    let mut next_decoded: Option<Decoded> = None;
    let mut done: Option<Option<End>> = None;
    let mut last_progress = Instant::now();
    loop {
        let hold = matches!(&fetched, Some(Ok(m)) if !m.is_empty());
        tokio::select! {
            r = &mut next, if fetched.is_none() => {
                if done.is_none()
                    && let Ok(m) = &r
                    && !m.is_empty()
                {
                    next_decoded = Some(Decoded::of(store, m));
                }
                fetched = Some(r);
                last_progress = Instant::now();
            }
            e = &mut work, if done.is_none() => done = Some(e),
            _ = tokio::time::sleep(progress_every.saturating_sub(last_progress.elapsed())), if hold && done.is_none() => {
                if let Some(Ok(m)) = &fetched {
                    ack_all(ctx, m, |_| AckKind::Progress).await;
                }
                last_progress = Instant::now();
            }
        }
        if let (Some(_), Some(_)) = (&done, &fetched) {
            break;
        }
    }
    match (done, fetched) {
        (Some(end), Some(next)) => (end, next, next_decoded),
        _ => unreachable!("the loop ends when both are done"),
    }
}

/// How a pull request ended.
enum Pulled {
    /// The server ended it (batch filled, expired, no messages) or its guard fired.
    Done,
    /// Shutdown was requested while reading it.
    Stopped,
}

/// Sends one pull request for up to `want` messages and reads it until the server ends it, the
/// `guard` time has passed, or shutdown. `no_wait` requests are answered at once with what is
/// available; the others wait up to `expires`. Returns the number of messages appended to `out`.
#[allow(clippy::too_many_arguments)]
async fn pull(
    c: &Consumer,
    want: usize,
    no_wait: bool,
    expires: Duration,
    guard: Duration,
    batch_timeout: Duration,
    deadline: &mut Option<Instant>,
    out: &mut Vec<Message>,
    stop: &mut watch::Receiver<bool>,
) -> anyhow::Result<Pulled> {
    let mut batch = if no_wait {
        c.fetch().max_messages(want).messages().await
    } else {
        c.batch()
            .max_messages(want)
            .expires(expires)
            .messages()
            .await
    }
    .map_err(|e| anyhow::anyhow!("pull request failed: {e}"))?;
    let guard = tokio::time::sleep(guard);
    tokio::pin!(guard);
    loop {
        tokio::select! {
            biased;
            next = batch.next() => match next {
                Some(Ok(m)) => {
                    out.push(m);
                    if deadline.is_none() {
                        *deadline = Some(Instant::now() + batch_timeout);
                    }
                }
                Some(Err(e)) => {
                    if out.is_empty() {
                        return Err(anyhow::anyhow!("{e}"));
                    }
                    tracing::debug!(error = %e, "pull request ended with an error; keeping the batch so far");
                    return Ok(Pulled::Done);
                }
                None => return Ok(Pulled::Done),
            },
            _ = &mut guard => {
                tracing::debug!(no_wait, want, "pull request did not end in time; abandoning it");
                return Ok(Pulled::Done);
            }
            _ = stop.changed() => return Ok(Pulled::Stopped),
        }
    }
}

/// Messages the consumer had not delivered yet when `m` was delivered.
fn pending_after(m: &Message) -> u64 {
    m.info().map(|i| i.pending).unwrap_or(0)
}

/// One batch: up to `batch_max` messages, or what arrived within `batch_timeout` of the first.
///
/// No pull request outlives the batch: an idle writer waits for the first message with a
/// one-message request (or, when `pending_hint` says messages are waiting, asks for a whole batch
/// without waiting); the rest of the batch is filled with no-wait requests, which the server
/// answers at once, until the batch is full or its window has passed. Each read is bounded by a
/// guard, so a request the server fails to end cannot hold a batch past its window by more than
/// [`FILL_MARGIN`].
async fn fetch(
    c: &Consumer,
    config: &WriterConfig,
    stop: &mut watch::Receiver<bool>,
    pending_hint: u64,
) -> anyhow::Result<Vec<Message>> {
    if *stop.borrow() {
        return Ok(Vec::new());
    }
    let max = config.batch_max as usize;
    let poll =
        (config.batch_timeout / 10).clamp(Duration::from_millis(2), Duration::from_millis(20));
    let mut out: Vec<Message> = Vec::new();
    let mut deadline: Option<Instant> = None;
    let t = config.batch_timeout;
    // The first messages.
    if pending_hint > 0 {
        let guard = t + FILL_MARGIN;
        match pull(
            c,
            max,
            true,
            Duration::ZERO,
            guard,
            t,
            &mut deadline,
            &mut out,
            stop,
        )
        .await
        {
            Ok(Pulled::Done) => {}
            Ok(Pulled::Stopped) => return Ok(out),
            // Fall back to a waiting request, which reports a lasting problem.
            Err(e) => tracing::debug!(error = %e, "no-wait pull for a whole batch failed"),
        }
    }
    if out.is_empty() {
        let pulled = pull(
            c,
            1,
            false,
            IDLE_WAIT,
            IDLE_WAIT + Duration::from_secs(1),
            t,
            &mut deadline,
            &mut out,
            stop,
        )
        .await?;
        if matches!(pulled, Pulled::Stopped) || out.is_empty() {
            // Idle: let the caller look at shutdown, the lock and retention.
            return Ok(out);
        }
    }
    // The rest: no-wait requests until the batch is full or its window has passed.
    let deadline = deadline.unwrap_or_else(Instant::now);
    let mut waiting = out.last().map(pending_after).unwrap_or(0);
    loop {
        if out.len() >= max {
            return Ok(out);
        }
        let left = deadline.saturating_duration_since(Instant::now());
        if waiting == 0 {
            if left.is_zero() {
                return Ok(out);
            }
            // Nothing waiting on the server: look again shortly (last at the deadline).
            tokio::select! {
                _ = tokio::time::sleep(left.min(poll)) => {}
                _ = stop.changed() => return Ok(out),
            }
        } else if left.is_zero() {
            return Ok(out);
        }
        let before = out.len();
        let guard = deadline.saturating_duration_since(Instant::now()) + FILL_MARGIN;
        let mut no_deadline = None;
        match pull(
            c,
            max - out.len(),
            true,
            Duration::ZERO,
            guard,
            t,
            &mut no_deadline,
            &mut out,
            stop,
        )
        .await
        {
            Ok(Pulled::Done) => {}
            Ok(Pulled::Stopped) => return Ok(out),
            Err(e) => {
                tracing::debug!(error = %e, "a no-wait pull failed; ending the batch");
                return Ok(out);
            }
        }
        waiting = if out.len() > before {
            out.last().map(pending_after).unwrap_or(0)
        } else {
            0
        };
    }
}

/// How often unacknowledged messages held by the writer get an in-progress ack.
fn progress_interval(config: &WriterConfig) -> Duration {
    (config.ack_wait / 3).max(Duration::from_millis(200))
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
                                    .dead_letter(one, &format!("refused by the database: {e}"))
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

async fn ack_all(ctx: &Ctx<'_>, messages: &[Message], kind: impl Fn(&Message) -> AckKind) {
    for m in messages {
        if let Err(e) = m.ack_with(kind(m)).await {
            ctx.metrics.nats_errors.inc();
            tracing::debug!(error = %e, "ack failed (the message will be redelivered and written idempotently)");
        }
    }
}

/// Writes one batch with retries, then acks it. `Some(end)` when the batch was abandoned.
async fn process(
    ctx: &Ctx<'_>,
    store: &Store,
    lock: &WriterLock,
    messages: &[Message],
    decoded: Option<Decoded>,
    stop: &mut watch::Receiver<bool>,
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backoff_is_capped_full_jitter() {
        for attempt in 0..64 {
            let d = backoff(attempt);
            assert!(d <= Duration::from_secs(30));
            assert!(d >= Duration::from_millis(10));
        }
        assert!(backoff(1) <= Duration::from_millis(200));
    }
}
