//! The dispatcher, the one owner of the notifier's state: groups changes per receiver and
//! group key for the group window, keeps what is firing at each receiver, turns closed groups
//! and reminders into jobs for the workers, keeps pending changes alive and acknowledges each
//! once every matching receiver has it.

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::sync::Arc;
use std::time::{Duration, Instant};

use async_nats::jetstream::{self, AckKind};
use sdash_service::Shutdown;
use tokio::sync::mpsc;

use super::consume::Incoming;
use super::worker::{FiringUpdate, Job, Report};
use crate::change::{Change, State};
use crate::config::{Config, GroupBy, ReceiverKind};
use crate::metrics::{NotifyMetrics, receiver as label};
use crate::receivers::{Delivery, alertmanager};
use crate::state::Active;

/// A change waiting for its ack.
struct PendingChange {
    message: jetstream::Message,
    remaining: BTreeSet<String>,
}

/// What groups `change`: its value of each `group_by` key.
fn group_values(group_by: &[GroupBy], change: &Change) -> Vec<String> {
    group_by.iter().map(|by| change.group_value(by)).collect()
}

/// A group's values named by their `group_by` keys, as a delivery shows them.
fn group_labels(group_by: &[GroupBy], values: Vec<String>) -> BTreeMap<String, String> {
    group_by.iter().map(|by| by.name()).zip(values).collect()
}

/// Changes for one receiver and group key, waiting for the group window to close.
struct Group {
    opened: Instant,
    group: BTreeMap<String, String>,
    changes: Vec<Change>,
}

pub(super) struct Dispatcher {
    config: Arc<Config>,
    metrics: NotifyMetrics,
    workers: HashMap<String, mpsc::UnboundedSender<Job>>,
    pending: HashMap<String, PendingChange>,
    groups: BTreeMap<(String, Vec<String>), Group>,
    /// receiver -> condition key -> what is firing there.
    pub(super) firing: HashMap<String, BTreeMap<String, Active>>,
    last_resend: HashMap<String, Instant>,
    ack_wait: Duration,
    last_progress: Instant,
}

impl Dispatcher {
    pub(super) fn new(
        config: Arc<Config>,
        metrics: NotifyMetrics,
        workers: HashMap<String, mpsc::UnboundedSender<Job>>,
        ack_wait: Duration,
    ) -> Dispatcher {
        Dispatcher {
            config,
            metrics,
            workers,
            pending: HashMap::new(),
            groups: BTreeMap::new(),
            firing: HashMap::new(),
            last_resend: HashMap::new(),
            ack_wait,
            last_progress: Instant::now(),
        }
    }

    pub(super) async fn run(
        &mut self,
        mut incoming: mpsc::Receiver<Incoming>,
        mut reports: mpsc::UnboundedReceiver<Report>,
        stop: &Shutdown,
        grace: Duration,
    ) {
        let tick_every =
            (self.config.group_window / 4).clamp(Duration::from_millis(20), Duration::from_secs(1));
        let mut tick = tokio::time::interval(tick_every);
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            tokio::select! {
                _ = stop.cancelled() => break,
                Some(item) = incoming.recv() => self.admit(item),
                Some(report) = reports.recv() => self.report(report).await,
                _ = tick.tick() => {
                    self.flush(false);
                    self.remind();
                    self.keep_alive().await;
                }
            }
        }
        // Stopping: send what is grouped now, then wait (bounded) for the workers to report.
        incoming.close();
        while let Ok(item) = incoming.try_recv() {
            self.admit(item);
        }
        self.flush(true);
        self.workers.clear();
        let deadline = tokio::time::Instant::now() + grace;
        while !self.pending.is_empty() {
            match tokio::time::timeout_at(deadline, reports.recv()).await {
                Ok(Some(report)) => self.report(report).await,
                Ok(None) | Err(_) => break,
            }
        }
        if !self.pending.is_empty() {
            tracing::info!(
                pending = self.pending.len(),
                "stopping with changes unsent; they are redelivered to the next start"
            );
        }
    }

    fn admit(&mut self, item: Incoming) {
        let Incoming {
            message,
            change,
            receivers,
        } = item;
        if let Some(pending) = self.pending.get_mut(&change.id) {
            // A redelivery of a change still in a group or being sent: acking the newest
            // delivery acknowledges the message.
            pending.message = message;
            return;
        }
        for receiver in &receivers {
            let values = group_values(&self.config.group_by, &change);
            let group = self
                .groups
                .entry((receiver.clone(), values.clone()))
                .or_insert_with(|| Group {
                    opened: Instant::now(),
                    group: group_labels(&self.config.group_by, values),
                    changes: Vec::new(),
                });
            group.changes.push(change.clone());
        }
        self.pending.insert(
            change.id.clone(),
            PendingChange {
                message,
                remaining: receivers.into_iter().collect(),
            },
        );
        self.metrics.pending.set(self.pending.len() as i64);
    }

    fn receiver_kind(&self, name: &str) -> Option<&ReceiverKind> {
        self.config
            .receivers
            .iter()
            .find(|r| r.name == name)
            .map(|r| &r.kind)
    }

    fn resend_interval(&self, receiver: &str) -> Option<Duration> {
        match self.receiver_kind(receiver) {
            Some(ReceiverKind::Alertmanager(am)) => Some(am.resend_interval),
            _ => None,
        }
    }

    /// Sends the groups whose window has closed (all of them when `all`).
    fn flush(&mut self, all: bool) {
        let window = self.config.group_window;
        let due: Vec<_> = self
            .groups
            .iter()
            .filter(|(_, g)| all || g.opened.elapsed() >= window)
            .map(|(k, _)| k.clone())
            .collect();
        for key in due {
            let Some(group) = self.groups.remove(&key) else {
                continue;
            };
            let receiver = key.0;
            let job = self.job_for(&receiver, group);
            if let Some(worker) = self.workers.get(&receiver) {
                let _ = worker.send(job);
            }
        }
        self.update_firing_gauges();
    }

    /// Turns a closed group into a job: updates the receiver's firing state and, for
    /// Alertmanager, builds the alerts (the last state of each condition in the group).
    fn job_for(&mut self, receiver: &str, group: Group) -> Job {
        let resend = self.resend_interval(receiver);
        let now = sdash_proto::now_ms();
        let firing = self.firing.entry(receiver.to_owned()).or_default();
        let mut updates = Vec::new();
        // Keyed by the alert's labels: Alertmanager's identity of an alert.
        let mut alerts: BTreeMap<String, serde_json::Value> = BTreeMap::new();
        let ends_ahead = |starts: i64| {
            let ahead = resend.unwrap_or_default().as_millis() as i64 * 4;
            now.max(starts) + ahead
        };
        for change in &group.changes {
            let condition = change.condition();
            let labels = alertmanager::labels(change, &condition);
            let labels_key = serde_json::to_string(&labels).unwrap_or_default();
            match condition.state {
                State::Firing => {
                    let starts_at = match firing.get(&condition.key) {
                        Some(old) if old.labels == labels => old.starts_at,
                        Some(old) => {
                            // Same condition, other labels (a severity changed): the old alert
                            // resolves, a new one fires.
                            let old_key = serde_json::to_string(&old.labels).unwrap_or_default();
                            alerts.insert(
                                old_key,
                                alertmanager::alert(
                                    change,
                                    &old.labels,
                                    old.starts_at,
                                    change.observed_at,
                                ),
                            );
                            change.observed_at
                        }
                        None => change.observed_at,
                    };
                    let active = Active {
                        key: condition.key.clone(),
                        change: change.clone(),
                        labels: labels.clone(),
                        starts_at,
                        last_sent: now,
                    };
                    alerts.insert(
                        labels_key,
                        alertmanager::alert(change, &labels, starts_at, ends_ahead(starts_at)),
                    );
                    updates.push(FiringUpdate::Put(Box::new(active.clone())));
                    firing.insert(condition.key.clone(), active);
                }
                State::Resolved => {
                    let (labels, starts_at) = match firing.remove(&condition.key) {
                        Some(old) => {
                            updates.push(FiringUpdate::Delete(condition.key.clone()));
                            (old.labels, old.starts_at)
                        }
                        None => (labels, change.observed_at),
                    };
                    let labels_key = serde_json::to_string(&labels).unwrap_or_default();
                    alerts.insert(
                        labels_key,
                        alertmanager::alert(change, &labels, starts_at, change.observed_at),
                    );
                }
                State::Info => {}
            }
        }
        Job {
            delivery: Delivery {
                id: sdash_proto::new_event_id(),
                group: group.group,
                repeat: false,
                changes: group.changes,
                alerts: if resend.is_some() {
                    alerts.into_values().collect()
                } else {
                    Vec::new()
                },
            },
            tracked: true,
            firing_updates: updates,
        }
    }

    /// Reminders: every firing alert to Alertmanager each resend interval; each condition still
    /// unresolved to webhooks and email each repeat interval (grouped as changes are).
    fn remind(&mut self) {
        let now = sdash_proto::now_ms();
        let repeat_ms = self.config.repeat_interval.as_millis() as i64;
        let receivers: Vec<String> = self
            .config
            .receivers
            .iter()
            .map(|r| r.name.clone())
            .collect();
        for receiver in receivers {
            // `receivers` are the configuration's, so each one's kind is known.
            let resend = self.resend_interval(&receiver);
            let Some(firing) = self.firing.get_mut(&receiver) else {
                continue;
            };
            if firing.is_empty() {
                continue;
            }
            let mut jobs = Vec::new();
            if let Some(resend) = resend {
                let last = self
                    .last_resend
                    .entry(receiver.clone())
                    .or_insert_with(Instant::now);
                if last.elapsed() < resend {
                    continue;
                }
                *last = Instant::now();
                let ahead = resend.as_millis() as i64 * 4;
                let alerts = firing
                    .values()
                    .map(|a| alertmanager::alert(&a.change, &a.labels, a.starts_at, now + ahead))
                    .collect();
                jobs.push(Job {
                    delivery: Delivery {
                        id: sdash_proto::new_event_id(),
                        group: BTreeMap::new(),
                        repeat: true,
                        changes: Vec::new(),
                        alerts,
                    },
                    tracked: false,
                    firing_updates: Vec::new(),
                });
            } else {
                let mut groups: BTreeMap<Vec<String>, Vec<Change>> = BTreeMap::new();
                let mut updates = Vec::new();
                for active in firing.values_mut() {
                    if now - active.last_sent < repeat_ms {
                        continue;
                    }
                    active.last_sent = now;
                    updates.push(FiringUpdate::Put(Box::new(active.clone())));
                    let values = group_values(&self.config.group_by, &active.change);
                    groups
                        .entry(values)
                        .or_default()
                        .push(active.change.clone());
                }
                let mut updates = Some(updates);
                for (values, changes) in groups {
                    jobs.push(Job {
                        delivery: Delivery {
                            id: sdash_proto::new_event_id(),
                            group: group_labels(&self.config.group_by, values),
                            repeat: true,
                            changes,
                            alerts: Vec::new(),
                        },
                        tracked: false,
                        firing_updates: updates.take().unwrap_or_default(),
                    });
                }
            }
            if let Some(worker) = self.workers.get(&receiver) {
                for job in jobs {
                    let _ = worker.send(job);
                }
            }
        }
    }

    /// In-progress acks for what waits in groups and retries, so JetStream does not redeliver it.
    async fn keep_alive(&mut self) {
        if self.last_progress.elapsed() < self.ack_wait / 3 {
            return;
        }
        self.last_progress = Instant::now();
        for pending in self.pending.values() {
            if pending.message.ack_with(AckKind::Progress).await.is_err() {
                self.metrics.nats_errors.inc();
            }
        }
    }

    async fn report(&mut self, report: Report) {
        for id in report.change_ids {
            let done = match self.pending.get_mut(&id) {
                Some(p) => {
                    p.remaining.remove(&report.receiver);
                    p.remaining.is_empty()
                }
                None => false,
            };
            if done
                && let Some(p) = self.pending.remove(&id)
                && let Err(e) = p.message.ack().await
            {
                // Redelivered later, then found handled and acknowledged unsent.
                self.metrics.nats_errors.inc();
                tracing::warn!(error = %e, change = %id, "cannot acknowledge a change");
            }
        }
        self.metrics.pending.set(self.pending.len() as i64);
    }

    pub(super) fn update_firing_gauges(&self) {
        for (receiver, firing) in &self.firing {
            self.metrics
                .firing
                .get_or_create(&label(receiver))
                .set(firing.len() as i64);
        }
    }
}
