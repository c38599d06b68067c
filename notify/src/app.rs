//! The notifier as a service: the consumer task (bus -> decoded, routed, deduplicated changes),
//! the dispatcher (groups, alert state, acks, repeats; the one owner of that state) and one
//! worker per receiver (delivers in order, retries, dead-letters, records what was sent).

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use anyhow::Context as _;
use async_nats::jetstream::{self, AckKind, consumer, stream};
use futures::StreamExt;
use prometheus_client::registry::Registry;
use sdash_proto::Record;
use sdash_proto::subjects::Kind;
use sdash_service::{Shutdown, bus};
use serde_json::json;
use tokio::sync::mpsc;

use crate::change::{Change, State};
use crate::cli::NotifyArgs;
use crate::config::{Config, GroupBy, ReceiverKind};
use crate::metrics::{NotifyMetrics, receiver as label};
use crate::receivers::{Delivery, DeliveryError, Sender, alertmanager};
use crate::state::{Active, Outcome, StateStore};

/// The stream holding dead letters (file storage, 30 days).
pub const DEAD_LETTER_STREAM: &str = "SDASH_NOTIFY_DEAD_LETTERS";
/// Dead letters are published on `<prefix>.<receiver>` (`_undecodable` for bad messages).
pub const DEAD_LETTER_SUBJECT_PREFIX: &str = "sdash-notify.dead-letter";

/// Loads the configuration and sets every receiver up (secret and CA files read), as `run`
/// would, without connecting to anything.
pub fn check(args: &NotifyArgs) -> anyhow::Result<Config> {
    let config = Config::load(&args.config)?;
    for receiver in &config.receivers {
        Sender::new(receiver)?;
    }
    Ok(config)
}

async fn sleep_or_stop(delay: Duration, stop: &Shutdown) -> bool {
    tokio::select! {
        _ = tokio::time::sleep(delay) => false,
        _ = stop.cancelled() => true,
    }
}

fn nats_backoff(attempt: u32) -> Duration {
    Duration::from_millis((200u64 << attempt.min(5)).min(5_000))
}

/// Runs the notifier until `shutdown` is cancelled.
pub async fn run(args: NotifyArgs, shutdown: Shutdown) -> anyhow::Result<()> {
    let config = Arc::new(check(&args)?);
    let mut senders = HashMap::new();
    for receiver in &config.receivers {
        senders.insert(receiver.name.clone(), Arc::new(Sender::new(receiver)?));
    }
    let mut registry = Registry::default();
    let metrics = NotifyMetrics::new(&mut registry);
    for receiver in &config.receivers {
        // Every receiver's series exist from the start, at 0.
        let l = label(&receiver.name);
        let _ = metrics.sent.get_or_create(&l);
        let _ = metrics.failed.get_or_create(&l);
        let _ = metrics.dead_lettered.get_or_create(&l);
        let _ = metrics.changes_sent.get_or_create(&l);
    }
    let ready = Arc::new(AtomicBool::new(false));
    let ready_check = ready.clone();
    let (addr, admin) = sdash_service::serve_admin(
        args.admin_listen,
        Arc::new(registry),
        Arc::new(move || ready_check.load(Ordering::SeqCst)),
        shutdown.clone().cancelled_owned(),
    )
    .await
    .with_context(|| format!("cannot listen on --admin-listen {}", args.admin_listen))?;
    tracing::info!(%addr, receivers = config.receivers.len(), routes = config.routes.len(), "admin server listening (/healthz, /readyz, /metrics)");

    let client = bus::connect(&args.nats, "sdash-notify", true).await?;
    let js = jetstream::new(client.clone());
    let setup = async {
        let mut attempt = 0;
        loop {
            let attempt_setup = async {
                bus::ensure_stream(&js, &args.stream).await?;
                ensure_dead_letter_stream(&js, args.stream.replicas).await?;
                let state = StateStore::open(
                    &js,
                    &args.state_bucket,
                    config.dedupe_window,
                    args.stream.replicas,
                )
                .await?;
                let firing = state.load_firing().await?;
                anyhow::Ok((state, firing))
            };
            match attempt_setup.await {
                Ok(v) => return Some(v),
                Err(e) => {
                    attempt += 1;
                    metrics.nats_errors.inc();
                    tracing::warn!(error = %e, attempt, "cannot set up the streams and state; retrying");
                    if sleep_or_stop(nats_backoff(attempt), &shutdown).await {
                        return None;
                    }
                }
            }
        }
    };
    let Some((state, firing)) = setup.await else {
        let _ = admin.await;
        return Ok(());
    };
    let state = Arc::new(state);

    let (incoming_tx, incoming_rx) = mpsc::channel(1000);
    let (report_tx, report_rx) = mpsc::unbounded_channel();
    let consumer_stop = shutdown.child_token();
    let consumer_task = tokio::spawn(consume(
        ConsumeCtx {
            js: js.clone(),
            args: args.clone(),
            config: config.clone(),
            state: state.clone(),
            metrics: metrics.clone(),
            ready: ready.clone(),
        },
        incoming_tx,
        consumer_stop.clone(),
    ));

    let mut workers = HashMap::new();
    let mut worker_tasks = Vec::new();
    for receiver in &config.receivers {
        let (tx, rx) = mpsc::unbounded_channel();
        workers.insert(receiver.name.clone(), tx);
        let worker = Worker {
            receiver: receiver.name.clone(),
            sender: senders[&receiver.name].clone(),
            config: config.clone(),
            state: state.clone(),
            js: js.clone(),
            metrics: metrics.clone(),
            reports: report_tx.clone(),
            stop: shutdown.clone(),
        };
        worker_tasks.push(tokio::spawn(worker.run(rx)));
    }
    drop(report_tx);

    let mut dispatcher = Dispatcher::new(config.clone(), metrics.clone(), workers, args.ack_wait);
    for (receiver, active) in firing {
        dispatcher
            .firing
            .entry(receiver)
            .or_default()
            .insert(active.key.clone(), active);
    }
    dispatcher.update_firing_gauges();
    dispatcher
        .run(incoming_rx, report_rx, &shutdown, args.shutdown_grace)
        .await;
    consumer_stop.cancel();
    let _ = consumer_task.await;
    for task in worker_tasks {
        task.abort();
    }
    let _ = tokio::time::timeout(Duration::from_secs(5), client.flush()).await;
    let _ = admin.await;
    tracing::info!("notifier stopped");
    Ok(())
}

async fn ensure_dead_letter_stream(js: &jetstream::Context, replicas: usize) -> anyhow::Result<()> {
    if js.get_stream(DEAD_LETTER_STREAM).await.is_ok() {
        return Ok(());
    }
    let config = stream::Config {
        name: DEAD_LETTER_STREAM.to_owned(),
        subjects: vec![format!("{DEAD_LETTER_SUBJECT_PREFIX}.>")],
        storage: stream::StorageType::File,
        max_age: Duration::from_secs(30 * 86_400),
        num_replicas: replicas.max(1),
        description: Some("sdash-notify: deliveries receivers kept refusing".into()),
        ..Default::default()
    };
    if let Err(e) = js.create_stream(config).await
        && js.get_stream(DEAD_LETTER_STREAM).await.is_err()
    {
        anyhow::bail!("cannot create the {DEAD_LETTER_STREAM} stream: {e}");
    }
    Ok(())
}

/// A change on its way to the dispatcher, with the receivers that still need it.
struct Incoming {
    message: jetstream::Message,
    change: Change,
    receivers: Vec<String>,
}

struct ConsumeCtx {
    js: jetstream::Context,
    args: NotifyArgs,
    config: Arc<Config>,
    state: Arc<StateStore>,
    metrics: NotifyMetrics,
    ready: Arc<AtomicBool>,
}

async fn setup_consumer(
    ctx: &ConsumeCtx,
) -> anyhow::Result<consumer::Consumer<consumer::pull::Config>> {
    let stream = bus::ensure_stream(&ctx.js, &ctx.args.stream).await?;
    let config = consumer::pull::Config {
        durable_name: Some(ctx.args.consumer.clone()),
        description: Some("sdash-notify: routes changes to receivers".into()),
        filter_subject: Kind::Change.wildcard(),
        ack_policy: consumer::AckPolicy::Explicit,
        ack_wait: ctx.args.ack_wait,
        max_deliver: -1,
        max_ack_pending: 10_000,
        deliver_policy: if ctx.args.replay_history {
            consumer::DeliverPolicy::All
        } else {
            consumer::DeliverPolicy::New
        },
        ..Default::default()
    };
    stream
        .get_or_create_consumer(&ctx.args.consumer, config)
        .await
        .with_context(|| format!("cannot create the durable consumer {}", ctx.args.consumer))
}

/// Pulls changes, routes them, drops what was already handled everywhere, and hands the rest to
/// the dispatcher. Set up again after any error (the server may have lost the consumer).
async fn consume(ctx: ConsumeCtx, out: mpsc::Sender<Incoming>, stop: Shutdown) {
    let mut attempt = 0;
    while !stop.is_cancelled() {
        let messages = match setup_consumer(&ctx).await {
            Ok(c) => c.messages().await.map_err(anyhow::Error::from),
            Err(e) => Err(e),
        };
        let mut messages = match messages {
            Ok(m) => m,
            Err(e) => {
                attempt += 1;
                ctx.metrics.nats_errors.inc();
                ctx.ready.store(false, Ordering::SeqCst);
                tracing::warn!(error = %e, attempt, "cannot consume changes; retrying");
                if sleep_or_stop(nats_backoff(attempt), &stop).await {
                    return;
                }
                continue;
            }
        };
        ctx.ready.store(true, Ordering::SeqCst);
        tracing::info!(consumer = %ctx.args.consumer, "consuming changes");
        loop {
            let next = tokio::select! {
                _ = stop.cancelled() => return,
                next = messages.next() => next,
            };
            match next {
                Some(Ok(message)) => {
                    attempt = 0;
                    if let Some(incoming) = admit(&ctx, message).await
                        && out.send(incoming).await.is_err()
                    {
                        return;
                    }
                }
                Some(Err(e)) => {
                    ctx.metrics.nats_errors.inc();
                    tracing::warn!(error = %e, "pulling changes failed; setting the consumer up again");
                    break;
                }
                None => break,
            }
        }
        ctx.ready.store(false, Ordering::SeqCst);
        attempt += 1;
        if sleep_or_stop(nats_backoff(attempt), &stop).await {
            return;
        }
    }
}

/// Decodes and routes one message; acknowledges it at once (returning `None`) when there is
/// nothing to send.
async fn admit(ctx: &ConsumeCtx, message: jetstream::Message) -> Option<Incoming> {
    ctx.metrics.changes.inc();
    let subject = message.subject.to_string();
    let change = match sdash_proto::codec::decode_record(&subject, &message.payload) {
        Ok(Record::Change(envelope)) => Change::from(envelope),
        other => {
            let reason = match other {
                Err(e) => e.to_string(),
                Ok(r) => format!("a {} record on a change subject", r.kind().as_str()),
            };
            ctx.metrics.undecodable.inc();
            tracing::warn!(
                subject,
                reason,
                "dead-lettering an undecodable change message"
            );
            let body = json!({
                "receiver": null,
                "reason": reason,
                "subject": subject,
                "at": sdash_proto::format_ms(sdash_proto::now_ms()),
                "payload_hex": hex::encode(&message.payload[..]),
            });
            publish_dead_letter(&ctx.js, "_undecodable", &body, &ctx.metrics, None).await;
            let _ = message.ack_with(AckKind::Term).await;
            return None;
        }
    };
    let routed = crate::route::receivers_for(&ctx.config.routes, &change);
    if routed.is_empty() {
        ctx.metrics.unrouted.inc();
        let _ = message.ack().await;
        return None;
    }
    let mut receivers = Vec::new();
    for receiver in routed {
        let mut handled = None;
        for attempt in 0..3 {
            match ctx.state.handled(&change.id, &receiver).await {
                Ok(h) => {
                    handled = Some(h);
                    break;
                }
                Err(e) => {
                    ctx.metrics.nats_errors.inc();
                    tracing::warn!(error = %e, attempt, "cannot look up whether a change was sent");
                    tokio::time::sleep(nats_backoff(attempt)).await;
                }
            }
        }
        // Unknown counts as not sent: a duplicate is better than a lost notification.
        if handled != Some(true) {
            receivers.push(receiver);
        }
    }
    if receivers.is_empty() {
        ctx.metrics.duplicates.inc();
        tracing::debug!(change = %change.id, "already handled at every receiver");
        let _ = message.ack().await;
        return None;
    }
    Some(Incoming {
        message,
        change,
        receivers,
    })
}

/// Publishes a dead letter until JetStream has it (or `stop`).
async fn publish_dead_letter(
    js: &jetstream::Context,
    receiver: &str,
    body: &serde_json::Value,
    metrics: &NotifyMetrics,
    stop: Option<&Shutdown>,
) -> bool {
    let subject = format!("{DEAD_LETTER_SUBJECT_PREFIX}.{receiver}");
    let payload = serde_json::to_vec(body).unwrap_or_default();
    let mut attempt = 0;
    loop {
        let published = match js.publish(subject.clone(), payload.clone().into()).await {
            Ok(ack) => ack.await.map(|_| ()).map_err(|e| e.to_string()),
            Err(e) => Err(e.to_string()),
        };
        match published {
            Ok(()) => return true,
            Err(e) => {
                attempt += 1;
                metrics.nats_errors.inc();
                tracing::warn!(error = %e, attempt, "cannot publish a dead letter; retrying");
                let delay = nats_backoff(attempt);
                match stop {
                    Some(stop) => {
                        if sleep_or_stop(delay, stop).await {
                            return false;
                        }
                    }
                    None => {
                        if attempt >= 10 {
                            return false;
                        }
                        tokio::time::sleep(delay).await;
                    }
                }
            }
        }
    }
}

/// One delivery for a worker. `tracked` deliveries carry changes waiting for their ack; the
/// others are reminders (repeats, Alertmanager re-posts).
struct Job {
    delivery: Delivery,
    tracked: bool,
    /// Firing state to store before sending, in order.
    firing_updates: Vec<FiringUpdate>,
}

enum FiringUpdate {
    Put(Box<Active>),
    Delete(String),
}

/// A worker's word that these changes are handled at its receiver.
struct Report {
    receiver: String,
    change_ids: Vec<String>,
}

struct Worker {
    receiver: String,
    sender: Arc<Sender>,
    config: Arc<Config>,
    state: Arc<StateStore>,
    js: jetstream::Context,
    metrics: NotifyMetrics,
    reports: mpsc::UnboundedSender<Report>,
    stop: Shutdown,
}

impl Worker {
    async fn run(self, mut jobs: mpsc::UnboundedReceiver<Job>) {
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

/// A change waiting for its ack.
struct PendingChange {
    message: jetstream::Message,
    remaining: BTreeSet<String>,
}

/// Changes for one receiver and group key, waiting for the group window to close.
/// What groups `change`: its value of each `group_by` key.
fn group_values(group_by: &[GroupBy], change: &Change) -> Vec<String> {
    group_by.iter().map(|by| change.group_value(by)).collect()
}

/// A group's values named by their `group_by` keys, as a delivery shows them.
fn group_labels(group_by: &[GroupBy], values: Vec<String>) -> BTreeMap<String, String> {
    group_by.iter().map(|by| by.name()).zip(values).collect()
}

struct Group {
    opened: Instant,
    group: BTreeMap<String, String>,
    changes: Vec<Change>,
}

struct Dispatcher {
    config: Arc<Config>,
    metrics: NotifyMetrics,
    workers: HashMap<String, mpsc::UnboundedSender<Job>>,
    pending: HashMap<String, PendingChange>,
    groups: BTreeMap<(String, Vec<String>), Group>,
    /// receiver -> condition key -> what is firing there.
    firing: HashMap<String, BTreeMap<String, Active>>,
    last_resend: HashMap<String, Instant>,
    ack_wait: Duration,
    last_progress: Instant,
}

impl Dispatcher {
    fn new(
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

    async fn run(
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
            let Some(firing) = self.firing.get_mut(&receiver) else {
                continue;
            };
            if firing.is_empty() {
                continue;
            }
            let resend = match self.config.receivers.iter().find(|r| r.name == receiver) {
                Some(r) => match &r.kind {
                    ReceiverKind::Alertmanager(am) => Some(am.resend_interval),
                    _ => None,
                },
                None => continue,
            };
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

    fn update_firing_gauges(&self) {
        for (receiver, firing) in &self.firing {
            self.metrics
                .firing
                .get_or_create(&label(receiver))
                .set(firing.len() as i64);
        }
    }
}
