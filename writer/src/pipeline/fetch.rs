//! Pulling one batch from the consumer: up to `--batch-max` messages, or what arrived within
//! `--batch-timeout` of the first, with no pull request outliving the batch.

use std::time::{Duration, Instant};

use async_nats::jetstream::Message;
use futures::StreamExt;
use sdash_service::Shutdown;

use super::consumer::Consumer;
use crate::config::WriterConfig;

/// How long an idle pull request waits for a first message.
const IDLE_WAIT: Duration = Duration::from_secs(1);
/// How long a no-wait pull may take to answer before the batch goes ahead without it.
const FILL_MARGIN: Duration = Duration::from_millis(50);

/// How a pull request ended.
enum Pulled {
    /// The server ended it (batch filled, expired, no messages) or its guard fired.
    Done,
    /// Shutdown was requested while reading it.
    Stopped,
}

/// A batch being filled, one pull request after another.
struct Filling<'a> {
    consumer: &'a Consumer,
    stop: &'a Shutdown,
    /// How long the batch may wait for more messages after its first one (`--batch-timeout`).
    window: Duration,
    messages: Vec<Message>,
    /// When the window closes: `window` after the first message arrived.
    closes: Option<Instant>,
}

impl Filling<'_> {
    /// Sends one pull request for up to `want` messages and reads it until the server ends it,
    /// the `guard` time has passed, or shutdown. Without `wait` the server answers at once with
    /// what is available; with it, the request waits up to that long for messages.
    async fn pull(
        &mut self,
        want: usize,
        wait: Option<Duration>,
        guard: Duration,
    ) -> anyhow::Result<Pulled> {
        let mut request = match wait {
            None => self.consumer.fetch().max_messages(want).messages().await,
            Some(expires) => {
                self.consumer
                    .batch()
                    .max_messages(want)
                    .expires(expires)
                    .messages()
                    .await
            }
        }
        .map_err(|e| anyhow::anyhow!("pull request failed: {e}"))?;
        let guard = tokio::time::sleep(guard);
        let stopped = self.stop.cancelled();
        tokio::pin!(guard, stopped);
        loop {
            tokio::select! {
                biased;
                next = request.next() => match next {
                    Some(Ok(m)) => {
                        self.messages.push(m);
                        if self.closes.is_none() {
                            self.closes = Some(Instant::now() + self.window);
                        }
                    }
                    Some(Err(e)) => {
                        if self.messages.is_empty() {
                            return Err(anyhow::anyhow!("{e}"));
                        }
                        tracing::debug!(error = %e, "pull request ended with an error; keeping the batch so far");
                        return Ok(Pulled::Done);
                    }
                    None => return Ok(Pulled::Done),
                },
                _ = &mut guard => {
                    tracing::debug!(no_wait = wait.is_none(), want, "pull request did not end in time; abandoning it");
                    return Ok(Pulled::Done);
                }
                _ = &mut stopped => return Ok(Pulled::Stopped),
            }
        }
    }
}

/// Messages the consumer had not delivered yet when `m` was delivered.
pub(super) fn pending_after(m: &Message) -> u64 {
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
pub(super) async fn fetch(
    c: &Consumer,
    config: &WriterConfig,
    stop: &Shutdown,
    pending_hint: u64,
) -> anyhow::Result<Vec<Message>> {
    if stop.is_cancelled() {
        return Ok(Vec::new());
    }
    let max = config.batch_max as usize;
    let poll =
        (config.batch_timeout / 10).clamp(Duration::from_millis(2), Duration::from_millis(20));
    let mut batch = Filling {
        consumer: c,
        stop,
        window: config.batch_timeout,
        messages: Vec::new(),
        closes: None,
    };
    // The first messages.
    if pending_hint > 0 {
        match batch.pull(max, None, batch.window + FILL_MARGIN).await {
            Ok(Pulled::Done) => {}
            Ok(Pulled::Stopped) => return Ok(batch.messages),
            // Fall back to a waiting request, which reports a lasting problem.
            Err(e) => tracing::debug!(error = %e, "no-wait pull for a whole batch failed"),
        }
    }
    if batch.messages.is_empty() {
        let guard = IDLE_WAIT + Duration::from_secs(1);
        let pulled = batch.pull(1, Some(IDLE_WAIT), guard).await?;
        if matches!(pulled, Pulled::Stopped) || batch.messages.is_empty() {
            // Idle: let the caller look at shutdown, the lock and retention.
            return Ok(batch.messages);
        }
    }
    // The rest: no-wait requests until the batch is full or its window has passed.
    let closes = batch.closes.unwrap_or_else(Instant::now);
    let mut waiting = batch.messages.last().map(pending_after).unwrap_or(0);
    loop {
        if batch.messages.len() >= max {
            return Ok(batch.messages);
        }
        let left = closes.saturating_duration_since(Instant::now());
        if waiting == 0 {
            if left.is_zero() {
                return Ok(batch.messages);
            }
            // Nothing waiting on the server: look again shortly (last when the window closes).
            tokio::select! {
                _ = tokio::time::sleep(left.min(poll)) => {}
                _ = stop.cancelled() => return Ok(batch.messages),
            }
        } else if left.is_zero() {
            return Ok(batch.messages);
        }
        let before = batch.messages.len();
        let guard = closes.saturating_duration_since(Instant::now()) + FILL_MARGIN;
        match batch.pull(max - before, None, guard).await {
            Ok(Pulled::Done) => {}
            Ok(Pulled::Stopped) => return Ok(batch.messages),
            Err(e) => {
                tracing::debug!(error = %e, "a no-wait pull failed; ending the batch");
                return Ok(batch.messages);
            }
        }
        waiting = if batch.messages.len() > before {
            batch.messages.last().map(pending_after).unwrap_or(0)
        } else {
            0
        };
    }
}
