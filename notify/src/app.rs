//! The notifier as a service: wires the consumer task (bus -> decoded, routed, deduplicated
//! changes, [`consume`]), the dispatcher (groups, alert state, acks, repeats; the one owner of
//! that state, [`dispatch`]) and one worker per receiver (delivers in order, retries,
//! dead-letters, records what was sent, [`worker`]); dead letters in [`dead_letter`].

mod consume;
mod dead_letter;
mod dispatch;
mod worker;

use std::collections::HashMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use anyhow::Context as _;
use async_nats::jetstream;
use prometheus_client::registry::Registry;
use sdash_service::{Shutdown, bus};
use tokio::sync::mpsc;

use crate::cli::NotifyArgs;
use crate::config::Config;
use crate::metrics::{NotifyMetrics, receiver as label};
use crate::receivers::Sender;
use crate::state::StateStore;
use consume::{ConsumeCtx, consume};
use dead_letter::ensure_dead_letter_stream;
use dispatch::Dispatcher;
use worker::Worker;

pub use dead_letter::{DEAD_LETTER_STREAM, DEAD_LETTER_SUBJECT_PREFIX};

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
