//! The writer's metrics, one typed struct registered once.

use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::{Histogram, exponential_buckets};
use prometheus_client::registry::Registry;

use crate::store::{BatchOutcome, RetentionOutcome};

type Labels = [(&'static str, &'static str); 1];
type CommandLabels = [(&'static str, &'static str); 2];

#[derive(Clone)]
pub struct WriterMetrics {
    /// Committed batches.
    pub batches: Counter,
    /// Messages committed (stored or dead-lettered), i.e. acknowledged or terminated.
    pub messages: Counter,
    /// Rows inserted or updated, per table.
    pub rows: Family<Labels, Counter>,
    /// Duration of a batch transaction, seconds.
    pub commit_seconds: Histogram,
    /// Batch attempts that failed and were retried.
    pub retries: Counter,
    /// Messages delivered more than once.
    pub redeliveries: Counter,
    /// Messages stored as dead letters.
    pub dead_letters: Counter,
    /// Messages left in the consumer (not yet delivered to the writer).
    pub consumer_pending: Gauge,
    /// Messages dropped without being stored. Must stay 0: nothing is ever dropped.
    pub dropped: Counter,
    /// 1 while this process holds the writer lock (0 while standby).
    pub lock_held: Gauge,
    /// Rows deleted by retention, per kind.
    pub retention_deleted: Family<Labels, Counter>,
    /// Retention steps run between batches, and their duration in seconds.
    pub retention_step_seconds: Histogram,
    /// Capacity samples older than `--late-sample-window` and not newer than what the rollups
    /// had counted for their system (redelivered, or too late): not counted.
    pub capacity_samples_not_newer: Counter,
    /// Capacity samples the ledger knows were counted (redelivered): not counted again.
    pub capacity_samples_repeated: Counter,
    /// Capacity samples counted late (older than one counted, within the window).
    pub capacity_samples_late: Counter,
    /// Capacity samples counted in the rollups but not stored raw (inside the deadband).
    pub capacity_samples_thinned: Counter,
    /// Errors talking to NATS (fetch, ack), each followed by a retry.
    pub nats_errors: Counter,
    /// Derived changes published on `sdash.v1.change.*` and acknowledged by JetStream, per kind.
    pub changes_published: Family<Labels, Counter>,
    /// Of those, changes JetStream already had (published again after a crash between its
    /// PubAck and the outbox delete): dropped by its duplicate window.
    pub changes_duplicate: Counter,
    /// Attempts to publish from the change outbox that failed (NATS unreachable, no PubAck, or
    /// the outbox unreadable), each followed by a retry with backoff.
    pub change_publish_failures: Counter,
    /// Derived changes waiting in the outbox to be published (0 while standby).
    pub change_outbox_depth: Gauge,
    /// Operator commands recorded in `command_audit`, per kind and outcome (applied, refused,
    /// dispatched, no_collector).
    pub commands: Family<CommandLabels, Counter>,
}

impl WriterMetrics {
    pub fn new(registry: &mut Registry) -> WriterMetrics {
        let m = WriterMetrics {
            batches: Counter::default(),
            messages: Counter::default(),
            rows: Family::default(),
            commit_seconds: Histogram::new(exponential_buckets(0.001, 2.0, 16)),
            retries: Counter::default(),
            redeliveries: Counter::default(),
            dead_letters: Counter::default(),
            consumer_pending: Gauge::default(),
            dropped: Counter::default(),
            lock_held: Gauge::default(),
            retention_deleted: Family::default(),
            retention_step_seconds: Histogram::new(exponential_buckets(0.001, 2.0, 14)),
            capacity_samples_not_newer: Counter::default(),
            capacity_samples_repeated: Counter::default(),
            capacity_samples_late: Counter::default(),
            capacity_samples_thinned: Counter::default(),
            nats_errors: Counter::default(),
            changes_published: Family::default(),
            changes_duplicate: Counter::default(),
            change_publish_failures: Counter::default(),
            change_outbox_depth: Gauge::default(),
            commands: Family::default(),
        };
        let r = registry.sub_registry_with_prefix("sdash_writer");
        r.register("batches", "Committed batches", m.batches.clone());
        r.register(
            "messages",
            "Messages committed (stored or dead-lettered)",
            m.messages.clone(),
        );
        r.register(
            "rows",
            "Rows inserted or updated, per table",
            m.rows.clone(),
        );
        r.register(
            "commit_seconds",
            "Duration of a batch transaction",
            m.commit_seconds.clone(),
        );
        r.register(
            "retries",
            "Batch attempts that failed and were retried",
            m.retries.clone(),
        );
        r.register(
            "redeliveries",
            "Messages delivered more than once",
            m.redeliveries.clone(),
        );
        r.register(
            "dead_letters",
            "Messages stored as dead letters",
            m.dead_letters.clone(),
        );
        r.register(
            "consumer_pending",
            "Messages waiting in the consumer",
            m.consumer_pending.clone(),
        );
        r.register(
            "dropped",
            "Messages dropped without being stored (always 0)",
            m.dropped.clone(),
        );
        r.register(
            "lock_held",
            "1 while this process holds the writer lock",
            m.lock_held.clone(),
        );
        r.register(
            "retention_deleted",
            "Rows deleted by retention",
            m.retention_deleted.clone(),
        );
        r.register(
            "retention_step_seconds",
            "Duration of a retention step (run between batches)",
            m.retention_step_seconds.clone(),
        );
        r.register(
            "capacity_samples_not_newer",
            "Capacity samples older than --late-sample-window and not newer than the rollups of their system (redelivered, or too late): not counted",
            m.capacity_samples_not_newer.clone(),
        );
        r.register(
            "capacity_samples_repeated",
            "Capacity samples the rollups had counted (redelivered): not counted again",
            m.capacity_samples_repeated.clone(),
        );
        r.register(
            "capacity_samples_late",
            "Capacity samples counted late (older than one counted of their system, within --late-sample-window)",
            m.capacity_samples_late.clone(),
        );
        r.register(
            "capacity_samples_thinned",
            "Capacity samples counted in the rollups but not stored raw (inside the deadband)",
            m.capacity_samples_thinned.clone(),
        );
        r.register(
            "nats_errors",
            "Errors talking to NATS",
            m.nats_errors.clone(),
        );
        r.register(
            "changes_published",
            "Derived changes published on sdash.v1.change.* and acknowledged by JetStream, per kind",
            m.changes_published.clone(),
        );
        r.register(
            "changes_duplicate",
            "Published changes JetStream already had (dropped by its duplicate window)",
            m.changes_duplicate.clone(),
        );
        r.register(
            "change_publish_failures",
            "Failed attempts to publish from the change outbox, each retried with backoff",
            m.change_publish_failures.clone(),
        );
        r.register(
            "change_outbox_depth",
            "Derived changes waiting in the outbox to be published",
            m.change_outbox_depth.clone(),
        );
        r.register(
            "commands",
            "Operator commands recorded in the audit, per kind and outcome",
            m.commands.clone(),
        );
        m
    }

    pub(crate) fn record_batch(&self, outcome: &BatchOutcome, seconds: f64) {
        self.batches.inc();
        self.messages.inc_by(outcome.messages as u64);
        self.redeliveries.inc_by(outcome.redelivered);
        self.dead_letters.inc_by(outcome.dead_lettered.len() as u64);
        for (table, n) in outcome.rows.by_table() {
            if n > 0 {
                self.rows.get_or_create(&[("table", table)]).inc_by(n);
            }
        }
        for (kind, outcome, n) in outcome.rows.commands.counts() {
            self.commands
                .get_or_create(&[("kind", kind), ("outcome", outcome)])
                .inc_by(n);
        }
        self.commit_seconds.observe(seconds);
        self.capacity_samples_not_newer
            .inc_by(outcome.rows.capacity_samples_not_newer);
        self.capacity_samples_repeated
            .inc_by(outcome.rows.capacity_samples_repeated);
        self.capacity_samples_late
            .inc_by(outcome.rows.capacity_samples_late);
        self.capacity_samples_thinned
            .inc_by(outcome.rows.capacity_samples_thinned);
    }

    pub(crate) fn record_retention(&self, o: &RetentionOutcome) {
        for (kind, n) in [
            ("events_expired", o.events_expired),
            ("events_over_limit", o.events_over_limit),
            ("capacity_samples", o.capacity_samples_expired),
            ("capacity_hourly", o.capacity_hourly_expired),
            ("capacity_daily", o.capacity_daily_expired),
            ("performance_samples", o.performance_samples_expired),
            ("pool_hourly", o.pool_hourly_expired),
            ("pool_daily", o.pool_daily_expired),
            ("performance_hourly", o.performance_hourly_expired),
            ("performance_daily", o.performance_daily_expired),
            ("dead_letters", o.dead_letters_expired),
        ] {
            self.retention_deleted
                .get_or_create(&[("kind", kind)])
                .inc_by(n);
        }
    }
}
