//! Publishing the change outbox: a task of the leading writer, next to the consume loop, that
//! publishes the derived changes committed in `change_outbox` on `sdash.v1.change.<system>`,
//! oldest first, with `Nats-Msg-Id` = their event id, and deletes them once JetStream
//! acknowledged them. It starts with whatever a previous writer left there, is woken after each
//! commit that stored changes, and retries with backoff while NATS is away: the consume loop
//! never waits for it, so an outage only makes the outbox grow
//! (`sdash_writer_change_outbox_depth`).

use std::future::IntoFuture;
use std::sync::Arc;
use std::time::Duration;

use async_nats::jetstream::{self, context::PublishAckFuture};
use sdash_proto::ChangeKind;
use sdash_service::Shutdown;
use tokio::sync::Notify;

use super::backoff;
use crate::lock::sleep_or_stop;
use crate::metrics::WriterMetrics;
use crate::store::{PendingChange, Store};

/// The exit status of a [`Failpoint`].
pub(super) const FAILPOINT_EXIT: i32 = 86;

/// Changes read from the outbox and published per round.
const ROUND: i64 = 256;
/// How often an idle publisher looks at the outbox without being woken (a safety net).
const IDLE_CHECK: Duration = Duration::from_secs(30);

/// TEST ONLY: `SDASH_WRITER_FAILPOINT` makes the process exit at once (status
/// [`FAILPOINT_EXIT`], no clean-up, like a crash) at one point of the commit-then-publish path,
/// so that tests can show a crash there loses and duplicates nothing. Never set it in production.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Failpoint {
    None,
    /// `exit-after-commit`: exit right after a commit that stored changes, before they are
    /// published (and before the batch is acknowledged).
    ExitAfterCommit,
    /// `exit-after-publish`: exit after JetStream acknowledged published changes, before they
    /// are deleted from the outbox.
    ExitAfterPublish,
}

impl Failpoint {
    pub(super) fn from_env() -> Failpoint {
        match std::env::var("SDASH_WRITER_FAILPOINT").as_deref() {
            Ok("exit-after-commit") => Failpoint::ExitAfterCommit,
            Ok("exit-after-publish") => Failpoint::ExitAfterPublish,
            _ => Failpoint::None,
        }
    }

    fn hit(self, at: Failpoint) {
        if self == at && at != Failpoint::None {
            tracing::error!(failpoint = ?at, "SDASH_WRITER_FAILPOINT (test only): exiting now");
            std::process::exit(FAILPOINT_EXIT);
        }
    }
}

/// What the consume loop tells the publisher: a commit stored changes.
pub(super) struct ChangeFeed {
    wake: Arc<Notify>,
    failpoint: Failpoint,
}

impl ChangeFeed {
    pub(super) fn new() -> ChangeFeed {
        ChangeFeed {
            wake: Arc::new(Notify::new()),
            failpoint: Failpoint::from_env(),
        }
    }

    /// After a commit that stored `changes` changes in the outbox.
    pub(super) fn committed(&self, metrics: &WriterMetrics, changes: u64) {
        self.failpoint.hit(Failpoint::ExitAfterCommit);
        metrics
            .change_outbox_depth
            .inc_by(i64::try_from(changes).unwrap_or(i64::MAX));
        self.wake.notify_one();
    }
}

/// The publisher of one leading writer: started when it took the lock, ended with its lead.
pub(super) struct Publisher {
    task: tokio::task::JoinHandle<()>,
    drain: Shutdown,
}

impl Publisher {
    pub(super) fn start(
        feed: &ChangeFeed,
        store: Arc<Store>,
        js: jetstream::Context,
        metrics: WriterMetrics,
    ) -> Publisher {
        let drain = Shutdown::new();
        let task = tokio::spawn(run(
            store,
            js,
            metrics,
            feed.wake.clone(),
            feed.failpoint,
            drain.clone(),
        ));
        Publisher { task, drain }
    }

    /// Ends it: on a clean stop it first publishes what is pending for at most `drain`; after a
    /// lost lock at once (the next active writer publishes what is left).
    pub(super) async fn stop(mut self, drain: Duration, metrics: &WriterMetrics) {
        if !drain.is_zero() {
            self.drain.cancel();
            if tokio::time::timeout(drain, &mut self.task).await.is_ok() {
                metrics.change_outbox_depth.set(0);
                return;
            }
        }
        self.task.abort();
        let _ = self.task.await;
        metrics.change_outbox_depth.set(0);
    }
}

/// Publishes until `drain` is cancelled, then until the outbox is empty or a publish fails.
async fn run(
    store: Arc<Store>,
    js: jetstream::Context,
    metrics: WriterMetrics,
    wake: Arc<Notify>,
    failpoint: Failpoint,
    drain: Shutdown,
) {
    let mut attempt = 0u32;
    loop {
        match publish_round(&store, &js, &metrics, failpoint).await {
            Ok(more) => {
                attempt = 0;
                if more {
                    continue;
                }
                if drain.is_cancelled() {
                    return;
                }
                tokio::select! {
                    _ = wake.notified() => {}
                    _ = drain.cancelled() => {}
                    _ = tokio::time::sleep(IDLE_CHECK) => {}
                }
            }
            Err(e) => {
                metrics.change_publish_failures.inc();
                if drain.is_cancelled() {
                    tracing::warn!(error = %e, "stopping with changes left in the outbox; the next active writer publishes them");
                    return;
                }
                attempt += 1;
                let delay = backoff(attempt.min(5));
                tracing::warn!(error = %e, attempt, ?delay, "cannot publish the change outbox; retrying (the changes stay in it)");
                if sleep_or_stop(delay, &drain).await {
                    // Stopping: one more round, then return.
                    continue;
                }
            }
        }
    }
}

/// Publishes the oldest changes of the outbox and deletes those JetStream acknowledged, in
/// order (a change after a failed one is published again next round). `Ok(true)` when more may
/// be waiting.
async fn publish_round(
    store: &Store,
    js: &jetstream::Context,
    metrics: &WriterMetrics,
    failpoint: Failpoint,
) -> anyhow::Result<bool> {
    let pending = store.pending_changes(ROUND).await?;
    if pending.is_empty() {
        metrics.change_outbox_depth.set(0);
        return Ok(false);
    }
    let mut acks: Vec<PublishAckFuture> = Vec::with_capacity(pending.len());
    for change in &pending {
        let message = jetstream::message::PublishMessage::build()
            .payload(change.payload.clone().into())
            .message_id(&change.event_id);
        match tokio::time::timeout(
            Duration::from_secs(5),
            js.send_publish(change.subject(), message),
        )
        .await
        {
            Ok(Ok(ack)) => acks.push(ack),
            // The connection is likely down: the rest waits for the next round.
            _ => break,
        }
    }
    // The acks together under one deadline (pipelined, like the collector's outbox).
    let results = tokio::time::timeout(
        Duration::from_secs(10),
        futures::future::join_all(acks.into_iter().map(IntoFuture::into_future)),
    )
    .await
    .unwrap_or_default();
    let acked: Vec<bool> = results
        .iter()
        .take_while(|r| r.is_ok())
        .map(|r| r.as_ref().is_ok_and(|ack| ack.duplicate))
        .collect();
    if let Some(last) = acked.len().checked_sub(1).map(|i| &pending[i]) {
        failpoint.hit(Failpoint::ExitAfterPublish);
        store.forget_changes_through(last.seq).await?;
        for (change, duplicate) in pending.iter().zip(&acked) {
            count_published(metrics, change, *duplicate);
        }
    }
    metrics
        .change_outbox_depth
        .set(store.change_outbox_depth().await?);
    if acked.len() < pending.len() {
        anyhow::bail!(
            "JetStream acknowledged {} of {} changes",
            acked.len(),
            pending.len()
        );
    }
    Ok(pending.len() as i64 == ROUND)
}

fn count_published(metrics: &WriterMetrics, change: &PendingChange, duplicate: bool) {
    let kind = ChangeKind::parse(&change.kind).map_or("unknown", ChangeKind::as_str);
    metrics
        .changes_published
        .get_or_create(&[("kind", kind)])
        .inc();
    if duplicate {
        metrics.changes_duplicate.inc();
    }
}
