//! One worker per receiver: stores the firing state a job carries, delivers it in order with
//! retries and backoff, dead-letters what the receiver keeps refusing, records what was sent
//! and reports the handled changes to the dispatcher.

use std::sync::Arc;

use async_nats::jetstream;
use sdash_service::Shutdown;
use serde_json::json;
use tokio::sync::mpsc;

use super::dead_letter::{DEAD_LETTER_STREAM, publish_dead_letter};
use super::{nats_backoff, sleep_or_stop};
use crate::config::Config;
use crate::metrics::{NotifyMetrics, receiver as label};
use crate::receivers::{Delivery, DeliveryError, Sender};
use crate::state::{Active, Outcome, StateStore};

/// One delivery for a worker. `tracked` deliveries carry changes waiting for their ack; the
/// others are reminders (repeats, Alertmanager re-posts).
pub(super) struct Job {
    pub(super) delivery: Delivery,
    pub(super) tracked: bool,
    /// Firing state to store before sending, in order.
    pub(super) firing_updates: Vec<FiringUpdate>,
}

pub(super) enum FiringUpdate {
    Put(Box<Active>),
    Delete(String),
}

/// A worker's word that these changes are handled at its receiver.
pub(super) struct Report {
    pub(super) receiver: String,
    pub(super) change_ids: Vec<String>,
}

pub(super) struct Worker {
    pub(super) receiver: String,
    pub(super) sender: Arc<Sender>,
    pub(super) config: Arc<Config>,
    pub(super) state: Arc<StateStore>,
    pub(super) js: jetstream::Context,
    pub(super) metrics: NotifyMetrics,
    pub(super) reports: mpsc::UnboundedSender<Report>,
    pub(super) stop: Shutdown,
}

impl Worker {
    pub(super) async fn run(self, mut jobs: mpsc::UnboundedReceiver<Job>) {
        while let Some(job) = jobs.recv().await {
            self.handle(job).await;
        }
    }

    async fn handle(&self, job: Job) {
        for update in &job.firing_updates {
            let result = match update {
                FiringUpdate::Put(active) => self.state.put_firing(&self.receiver, active).await,
                FiringUpdate::Delete(key) => self.state.delete_firing(&self.receiver, key).await,
            };
            if let Err(e) = result {
                // The alert state is for repeats; losing one update only costs a reminder.
                self.metrics.nats_errors.inc();
                tracing::warn!(receiver = %self.receiver, error = %e, "cannot store the firing state");
            }
        }
        let l = label(&self.receiver);
        let count = job.delivery.changes.len();
        let mut attempt = 0;
        let outcome = loop {
            attempt += 1;
            match self.sender.send(&job.delivery).await {
                Ok(()) => {
                    self.metrics.sent.get_or_create(&l).inc();
                    if job.tracked {
                        self.metrics
                            .changes_sent
                            .get_or_create(&l)
                            .inc_by(count as u64);
                    } else {
                        self.metrics.repeats.get_or_create(&l).inc();
                    }
                    tracing::debug!(receiver = %self.receiver, delivery = %job.delivery.id, changes = count, attempt, "delivered");
                    break Outcome::Sent;
                }
                Err(e) => {
                    self.metrics.failed.get_or_create(&l).inc();
                    let give_up = matches!(e, DeliveryError::Refused(_))
                        || attempt >= self.config.retry.max_attempts;
                    if give_up {
                        tracing::warn!(receiver = %self.receiver, delivery = %job.delivery.id, attempt, error = %e, "giving up on a delivery");
                        if !job.tracked {
                            return;
                        }
                        if !self.dead_letter(&job.delivery, &e, attempt).await {
                            return;
                        }
                        break Outcome::DeadLettered;
                    }
                    let delay = self.config.retry.backoff(attempt);
                    tracing::info!(receiver = %self.receiver, delivery = %job.delivery.id, attempt, ?delay, error = %e, "delivery failed; retrying");
                    // Stopping: the changes stay unacknowledged and go to the next start.
                    if sleep_or_stop(delay, &self.stop).await {
                        return;
                    }
                }
            }
        };
        if !job.tracked {
            return;
        }
        // Recorded at once and in parallel: a crash between the receiver's answer and this
        // record is the one moment a change can be sent twice.
        let records = job.delivery.changes.iter().map(|change| async move {
            for attempt in 0..5 {
                match self.state.record(&change.id, &self.receiver, outcome).await {
                    Ok(()) => return,
                    Err(e) => {
                        self.metrics.nats_errors.inc();
                        tracing::warn!(error = %e, attempt, "cannot record a sent change");
                        tokio::time::sleep(nats_backoff(attempt)).await;
                    }
                }
            }
            // Acknowledged anyway: the receiver has it; without the record a redelivery
            // could send it again, so say so.
            tracing::warn!(change = %change.id, receiver = %self.receiver, "a sent change is not recorded; a redelivery may send it again");
        });
        futures::future::join_all(records).await;
        let ids = job.delivery.changes.iter().map(|c| c.id.clone()).collect();
        let _ = self.reports.send(Report {
            receiver: self.receiver.clone(),
            change_ids: ids,
        });
    }

    async fn dead_letter(&self, delivery: &Delivery, error: &DeliveryError, attempts: u32) -> bool {
        let changes: Vec<_> = delivery.changes.iter().map(|c| c.notice()).collect();
        let body = json!({
            "receiver": self.receiver,
            "delivery_id": delivery.id,
            "reason": error.to_string(),
            "attempts": attempts,
            "at": sdash_proto::format_ms(sdash_proto::now_ms()),
            "group": delivery.group,
            "changes": changes,
        });
        let ok = publish_dead_letter(
            &self.js,
            &self.receiver,
            &body,
            &self.metrics,
            Some(&self.stop),
        )
        .await;
        if ok {
            self.metrics
                .dead_lettered
                .get_or_create(&label(&self.receiver))
                .inc_by(delivery.changes.len() as u64);
            tracing::warn!(receiver = %self.receiver, delivery = %delivery.id, changes = delivery.changes.len(), "dead-lettered to {DEAD_LETTER_STREAM}");
        }
        ok
    }
}
