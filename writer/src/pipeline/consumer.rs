//! The writer's durable pull consumer on the `SDASH` stream: setting it (and the stream) up, and
//! noticing when the server lost it.

use std::sync::atomic::Ordering;
use std::time::Duration;

use async_nats::jetstream::{self, consumer};
use sdash_proto::subjects::STREAM_SUBJECTS;
use sdash_service::{Shutdown, bus};

use super::{Ctx, backoff};
use crate::lock::sleep_or_stop;
use crate::store::Store;

pub(super) type Consumer = consumer::Consumer<consumer::pull::Config>;

/// Creates the stream if missing, then the durable consumer (or binds to the existing one).
pub(super) async fn setup_consumer(
    ctx: &Ctx<'_>,
    js: &jetstream::Context,
) -> anyhow::Result<Consumer> {
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

/// Whether an idle writer's consumer still exists (a server that lost its store answers pull
/// requests with silence, not errors); records its pending count on the way. `false` when it is
/// gone and must be set up again.
pub(super) async fn still_exists(ctx: &Ctx<'_>, store: &Store, c: &Consumer) -> bool {
    match tokio::time::timeout(Duration::from_secs(5), c.get_info()).await {
        Ok(Ok(info)) => {
            ctx.metrics
                .consumer_pending
                .set(i64::try_from(info.num_pending).unwrap_or(i64::MAX));
            store.set_consumer_pending(info.num_pending);
            true
        }
        Ok(Err(e)) => {
            tracing::warn!(error = %e, "the consumer is gone; setting the stream and consumer up again");
            ctx.health.consumer.store(false, Ordering::SeqCst);
            false
        }
        Err(_) => {
            tracing::warn!("consumer info timed out");
            true
        }
    }
}

/// Counts a failed pull, forgets the consumer (the server may have lost it) and backs off.
/// `true` when shutdown was requested meanwhile.
pub(super) async fn fetch_failed(
    ctx: &Ctx<'_>,
    e: anyhow::Error,
    nats_attempt: &mut u32,
    consumer: &mut Option<Consumer>,
    stop: &Shutdown,
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
