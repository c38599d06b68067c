//! Dead letters: the stream that keeps what receivers kept refusing (and undecodable
//! messages), and publishing one until JetStream has it.

use std::time::Duration;

use async_nats::jetstream::{self, stream};
use sdash_service::Shutdown;

use super::{nats_backoff, sleep_or_stop};
use crate::metrics::NotifyMetrics;

/// The stream holding dead letters (file storage, 30 days).
pub const DEAD_LETTER_STREAM: &str = "SDASH_NOTIFY_DEAD_LETTERS";
/// Dead letters are published on `<prefix>.<receiver>` (`_undecodable` for bad messages).
pub const DEAD_LETTER_SUBJECT_PREFIX: &str = "sdash-notify.dead-letter";

pub(super) async fn ensure_dead_letter_stream(
    js: &jetstream::Context,
    replicas: usize,
) -> anyhow::Result<()> {
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

/// Publishes a dead letter until JetStream has it (or `stop`).
pub(super) async fn publish_dead_letter(
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
