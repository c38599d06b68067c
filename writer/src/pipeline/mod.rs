//! The writer as a service: admin server, writer lock (one active writer, hot standby), database,
//! then the consume loop until shutdown or until the lock is lost.
//!
//! * [`consume`]: the loop (retention, consumer upkeep, one batch after another);
//! * [`consumer`]: the durable pull consumer and its upkeep;
//! * [`fetch`]: pulling one batch;
//! * [`batch`]: writing a batch while the next one is pulled and decoded;
//! * [`ack`]: writing with retries, isolating refused messages as dead letters, and acks;
//! * [`publish`]: publishing the derived changes of the outbox after their commit.

mod ack;
mod batch;
mod consume;
mod consumer;
mod fetch;
mod publish;

use std::hash::{BuildHasher, Hasher};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use async_nats::jetstream;
use prometheus_client::registry::Registry;
use sdash_service::{Secret, Shutdown, bus};

use crate::config::WriterConfig;
use crate::lock::{WriterLock, sleep_or_stop};
use crate::metrics::WriterMetrics;
use crate::store::{Store, StoreError};

/// Backoff for database retries: full jitter between 0 and min(30 s, 100 ms * 2^attempt).
pub fn backoff(attempt: u32) -> Duration {
    let cap_ms = 100u64.saturating_mul(1u64 << attempt.min(20)).min(30_000);
    let r = std::collections::hash_map::RandomState::new()
        .build_hasher()
        .finish();
    Duration::from_millis((r % (cap_ms + 1)).max(10))
}

/// What `/readyz` reports: ready while the database, the consumer and the lock are all fine.
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

/// Why this writer stopped leading.
enum End {
    Stop,
    LockLost,
    /// A configuration problem retrying cannot fix.
    Fatal(StoreError),
}

/// What every step of a leading writer reads.
struct Ctx<'a> {
    config: &'a WriterConfig,
    password: Option<&'a Secret>,
    metrics: &'a WriterMetrics,
    health: &'a Health,
    changes: &'a publish::ChangeFeed,
}

/// Runs the writer until `shutdown` is cancelled: admin server, writer lock (standby until it is
/// free), database, consumer, batches. With `--database-password-file` (PostgreSQL), the password
/// is read first (an empty or unreadable file is an error) and used by every connection.
pub async fn run(config: WriterConfig, shutdown: Shutdown) -> anyhow::Result<()> {
    let password = config.database_password()?;
    let mut registry = Registry::default();
    let metrics = WriterMetrics::new(&mut registry);
    let health = Arc::new(Health::default());
    let ready_health = health.clone();
    let (addr, admin) = sdash_service::serve_admin(
        config.admin_listen,
        Arc::new(registry),
        Arc::new(move || ready_health.ready()),
        shutdown.clone().cancelled_owned(),
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
    let changes = publish::ChangeFeed::new();
    let ctx = Ctx {
        config: &config,
        password: password.as_ref(),
        metrics: &metrics,
        health: &health,
        changes: &changes,
    };
    let result = async {
        loop {
            let Some(lock) = WriterLock::acquire(
                &config.database_url,
                ctx.password,
                config.lock_poll,
                &shutdown,
            )
            .await?
            else {
                return Ok::<(), anyhow::Error>(());
            };
            metrics.lock_held.set(1);
            health.lock.store(true, Ordering::SeqCst);
            let end = lead(&ctx, &js, &lock, &shutdown).await;
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

/// How long a writer that stops may take to publish the changes still in its outbox.
const PUBLISH_DRAIN: Duration = Duration::from_secs(5);

/// Leads while the lock is held: opens the database, publishes what the outbox holds (left by
/// an earlier writer, then after each commit) while it consumes, closes it.
async fn lead(ctx: &Ctx<'_>, js: &jetstream::Context, lock: &WriterLock, stop: &Shutdown) -> End {
    let store = match open_store(ctx, lock, stop).await {
        Ok(Some(store)) => Arc::new(store),
        Ok(None) if stop.is_cancelled() => return End::Stop,
        Ok(None) => return End::LockLost,
        Err(e) => return End::Fatal(e),
    };
    let publisher =
        publish::Publisher::start(ctx.changes, store.clone(), js.clone(), ctx.metrics.clone());
    let end = consume::consume(ctx, js, &store, lock, stop).await;
    // Only the lock holder publishes: after a lost lock, at once.
    let drain = match end {
        End::Stop => PUBLISH_DRAIN,
        _ => Duration::ZERO,
    };
    publisher.stop(drain, ctx.metrics).await;
    store.close().await;
    end
}

/// Opens the database, retrying with backoff; `Ok(None)` when stopping (or the lock is lost)
/// first.
async fn open_store(
    ctx: &Ctx<'_>,
    lock: &WriterLock,
    stop: &Shutdown,
) -> Result<Option<Store>, StoreError> {
    let mut attempt = 0;
    loop {
        match Store::connect(&ctx.config.database_url, ctx.password).await {
            Ok(store) => {
                let store = match &ctx.config.writer_id {
                    Some(id) => store.with_writer_id(id.clone()),
                    None => store,
                };
                let store = store
                    .with_capacity_thresholds(&ctx.config.capacity_thresholds.0)
                    .with_raw_samples(ctx.config.raw_sample_policy())
                    .with_late_sample_window(ctx.config.late_sample_window);
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
