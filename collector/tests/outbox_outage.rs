//! The outbox rides out a NATS outage: every message produced while nats-server is down reaches
//! the stream once it is back, exactly once, and publishing resumes by itself.

use std::collections::HashSet;
use std::sync::Arc;
use std::time::Duration;

use async_nats::jetstream::{self, consumer};
use futures::StreamExt;
use sdash_collector::metrics::CollectorMetrics;
use sdash_collector::outbox::{OutMessage, Outbox, OutboxLimits};
use sdash_harness::NatsServer;
use sdash_proto::subjects::Kind;
use sdash_service::bus::{self, NatsArgs, StreamArgs};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn outbox_keeps_every_message_through_a_20s_nats_outage() {
    let mut nats = NatsServer::start();
    let client = bus::connect(&NatsArgs::plain(&nats.url()), "outage-test", true)
        .await
        .expect("connect");
    let js = jetstream::new(client);
    bus::ensure_stream(&js, &StreamArgs::default())
        .await
        .expect("stream");

    let metrics = CollectorMetrics::detached();
    let outbox = Arc::new(Outbox::new(
        OutboxLimits {
            max_messages: 100_000,
            max_bytes: 64 << 20,
        },
        metrics.clone(),
    ));
    let (stop_tx, stop_rx) = tokio::sync::oneshot::channel::<()>();
    let publisher = {
        let (outbox, js) = (outbox.clone(), js.clone());
        tokio::spawn(async move {
            outbox
                .run_publisher(
                    js,
                    async move { drop(stop_rx.await) },
                    Duration::from_secs(60),
                )
                .await
        })
    };

    // Produce steadily before, during and after the outage.
    let produced = {
        let outbox = outbox.clone();
        tokio::spawn(async move {
            let mut ids = Vec::new();
            for n in 0..1200u32 {
                let id = format!("evt-{n:05}");
                outbox.push(OutMessage {
                    kind: Kind::Event,
                    id: format!("sys-{}", n % 7),
                    msg_id: id.clone(),
                    payload: format!("payload {n}").into_bytes().into(),
                });
                ids.push(id);
                tokio::time::sleep(Duration::from_millis(25)).await;
            }
            ids
        })
    };
    tokio::time::sleep(Duration::from_secs(3)).await;
    nats.kill();
    tokio::time::sleep(Duration::from_secs(20)).await;
    assert!(
        outbox.depth() > 100,
        "messages should wait in the outbox during the outage, depth {}",
        outbox.depth()
    );
    nats.restart();

    let ids = produced.await.expect("producer");
    let drained = sdash_harness::wait_for(Duration::from_secs(60), || {
        let outbox = outbox.clone();
        async move { (outbox.depth() == 0).then_some(()) }
    })
    .await;
    assert!(
        drained.is_some(),
        "outbox did not drain after NATS came back: {}",
        outbox.depth()
    );
    let _ = stop_tx.send(());
    let unsent = publisher.await.expect("publisher");
    assert_eq!(unsent, 0);

    // Read the whole stream back: every id exactly once.
    let stream = js
        .get_stream(sdash_proto::subjects::STREAM)
        .await
        .expect("stream after restart");
    let consumer = stream
        .create_consumer(consumer::pull::Config {
            deliver_policy: consumer::DeliverPolicy::All,
            ..Default::default()
        })
        .await
        .expect("consumer");
    let mut messages = consumer.messages().await.expect("messages");
    let mut seen = Vec::new();
    while seen.len() < ids.len() {
        let next = tokio::time::timeout(Duration::from_secs(5), messages.next()).await;
        let Ok(Some(Ok(message))) = next else { break };
        let id = message
            .headers
            .as_ref()
            .and_then(|h| h.get(async_nats::header::NATS_MESSAGE_ID))
            .map(|v| v.as_str().to_owned())
            .expect("every message carries its Nats-Msg-Id");
        seen.push(id);
        message.ack().await.ok();
    }
    let unique: HashSet<&String> = seen.iter().collect();
    assert_eq!(unique.len(), seen.len(), "duplicates in the stream");
    let expected: HashSet<&String> = ids.iter().collect();
    assert_eq!(unique, expected, "lost or foreign messages");
    let info = js
        .get_stream(sdash_proto::subjects::STREAM)
        .await
        .expect("stream")
        .info()
        .await
        .expect("info")
        .state
        .messages;
    assert_eq!(info, ids.len() as u64, "the stream holds each message once");
    assert!(
        metrics.publish_retries.get() > 0,
        "the outage should have caused retries"
    );
}
