//! Watching the snapshots on the bus, shared by the multi-collector tests (`fleet`, `poll_now`,
//! `membership_restart`), included with `#[path]` so that they do not compile the vendor
//! scaffolding of `common/mod.rs`.

use futures::StreamExt;
use sdash_proto::{Envelope, Snapshot};

/// Subscribes to every snapshot subject and hands each snapshot that decodes to `on_snapshot`,
/// in a background task that keeps `client` alive for as long as the test runs.
pub async fn watch_snapshots(
    client: async_nats::Client,
    mut on_snapshot: impl FnMut(Envelope<Snapshot>) + Send + 'static,
) {
    let mut sub = client
        .subscribe("sdash.v1.snapshot.*")
        .await
        .expect("subscribe");
    tokio::spawn(async move {
        let _client = client;
        while let Some(msg) = sub.next().await {
            if let Ok(sdash_proto::Record::Snapshot(env)) =
                sdash_proto::codec::decode_record(&msg.subject, &msg.payload)
            {
                on_snapshot(env);
            }
        }
    });
}
