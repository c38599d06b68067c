//! Overlapped batching: a batch is written while the next one is pulled, and the next one is
//! decoded while this one is still being written (the database works on its own thread).

use std::time::Instant;

use async_nats::jetstream::{AckKind, Message};
use sdash_service::Shutdown;

use super::ack::{Decoded, ack_all, process, progress_interval};
use super::consumer::Consumer;
use super::fetch::{fetch, pending_after};
use super::{Ctx, End};
use crate::lock::WriterLock;
use crate::store::Store;

/// Writes `messages` (see [`process`]) while the next batch is pulled, and decodes the next batch
/// while this one is still being written (the database works on its own thread). The next batch
/// stays unacknowledged until its own commit; while this one is still being written (a
/// slow write or database retries) it is kept alive with in-progress acks like the batch being
/// written.
pub(super) async fn process_overlapped(
    ctx: &Ctx<'_>,
    store: &Store,
    lock: &WriterLock,
    c: &Consumer,
    messages: &[Message],
    decoded: Option<Decoded>,
    stop: &Shutdown,
) -> (Option<End>, anyhow::Result<Vec<Message>>, Option<Decoded>) {
    let hint = messages.last().map(pending_after).unwrap_or(0);
    let progress_every = progress_interval(ctx.config);
    let next = fetch(c, ctx.config, stop, hint);
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
