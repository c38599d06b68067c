//! The consumer task: pulls changes from the notifier's durable consumer, decodes and routes
//! them, drops what every matching receiver already has, and hands the rest to the dispatcher.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use anyhow::Context as _;
use async_nats::jetstream::{self, AckKind, consumer};
use futures::StreamExt;
use sdash_proto::Record;
use sdash_proto::subjects::Kind;
use sdash_service::{Shutdown, bus};
use serde_json::json;
use tokio::sync::mpsc;

use super::dead_letter::publish_dead_letter;
use super::{nats_backoff, sleep_or_stop};
use crate::change::Change;
use crate::cli::NotifyArgs;
use crate::config::Config;
use crate::metrics::NotifyMetrics;
use crate::state::StateStore;

/// A change on its way to the dispatcher, with the receivers that still need it.
pub(super) struct Incoming {
    pub(super) message: jetstream::Message,
    pub(super) change: Change,
    pub(super) receivers: Vec<String>,
}

pub(super) struct ConsumeCtx {
    pub(super) js: jetstream::Context,
    pub(super) args: NotifyArgs,
    pub(super) config: Arc<Config>,
    pub(super) state: Arc<StateStore>,
    pub(super) metrics: NotifyMetrics,
    pub(super) ready: Arc<AtomicBool>,
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
pub(super) async fn consume(ctx: ConsumeCtx, out: mpsc::Sender<Incoming>, stop: Shutdown) {
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
