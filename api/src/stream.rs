//! The live stream: one core NATS subscription to `sdash.v1.>` fanned out to SSE clients. Each
//! client has a bounded channel; a client that falls behind is dropped (never unbounded memory).

use std::convert::Infallible;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, OnceLock};
use std::time::Duration;

use futures::StreamExt;
use sdash_proto::Record;
use sdash_service::bus::NatsArgs;
use tokio::sync::mpsc;
use warp::sse::Event;

use crate::metrics::Metrics;

/// One message for SSE clients, already serialized.
#[derive(Debug, Clone)]
pub struct StreamItem {
    pub kind: &'static str,
    pub system_id: String,
    pub event_id: String,
    pub json: Arc<str>,
}

struct Client {
    id: u64,
    system: Option<String>,
    tx: mpsc::Sender<StreamItem>,
}

/// The fan-out hub.
pub struct Hub {
    clients: Mutex<Vec<Client>>,
    next_id: AtomicU64,
    nats: OnceLock<async_nats::Client>,
    subscribed: std::sync::atomic::AtomicBool,
    closed: std::sync::atomic::AtomicBool,
    buffer: usize,
    metrics: Arc<Metrics>,
}

impl Hub {
    pub fn new(buffer: usize, metrics: Arc<Metrics>) -> Hub {
        Hub {
            clients: Mutex::new(Vec::new()),
            next_id: AtomicU64::new(1),
            nats: OnceLock::new(),
            subscribed: std::sync::atomic::AtomicBool::new(false),
            closed: std::sync::atomic::AtomicBool::new(false),
            buffer: buffer.max(1),
            metrics,
        }
    }

    /// Whether the stream can serve: NATS connected and subscribed.
    pub fn available(&self) -> bool {
        self.subscribed.load(Ordering::SeqCst)
            && self
                .nats
                .get()
                .is_some_and(|c| c.connection_state() == async_nats::connection::State::Connected)
    }

    /// Registers a client; the receiver ends when the client is dropped for falling behind.
    pub fn register(self: &Arc<Hub>, system: Option<String>) -> ClientStream {
        let (tx, rx) = mpsc::channel(self.buffer);
        let id = self.next_id.fetch_add(1, Ordering::Relaxed);
        if let Ok(mut clients) = self.clients.lock() {
            // After close() the sender is dropped at once, so the stream ends immediately.
            if !self.closed.load(Ordering::SeqCst) {
                clients.push(Client { id, system, tx });
            }
        }
        self.metrics.stream_clients.inc();
        ClientStream {
            rx,
            guard: ClientGuard {
                hub: self.clone(),
                id,
            },
        }
    }

    fn publish(&self, item: StreamItem) {
        let Ok(mut clients) = self.clients.lock() else {
            return;
        };
        clients.retain(|c| {
            if c.system.as_deref().is_some_and(|s| s != item.system_id) {
                return !c.tx.is_closed();
            }
            match c.tx.try_send(item.clone()) {
                Ok(()) => true,
                Err(mpsc::error::TrySendError::Full(_)) => {
                    tracing::info!(
                        client = c.id,
                        "live-stream client fell behind, disconnecting it"
                    );
                    self.metrics.stream_dropped.inc();
                    false
                }
                Err(mpsc::error::TrySendError::Closed(_)) => false,
            }
        });
    }

    /// Ends every client stream (at shutdown, so that graceful shutdown does not wait forever
    /// for SSE connections) and refuses new ones.
    pub fn close(&self) {
        self.closed.store(true, Ordering::SeqCst);
        if let Ok(mut clients) = self.clients.lock() {
            clients.clear();
        }
    }

    fn remove(&self, id: u64) {
        if let Ok(mut clients) = self.clients.lock() {
            clients.retain(|c| c.id != id);
        }
    }

    /// Connects (retrying forever in the background) and feeds clients until the task is dropped.
    pub async fn run(self: Arc<Hub>, args: NatsArgs) {
        let client = loop {
            match sdash_service::bus::connect(&args, "sdash-api", true).await {
                Ok(c) => break c,
                Err(e) => {
                    tracing::warn!(error = %e, "live stream: cannot connect to NATS, retrying");
                    tokio::time::sleep(Duration::from_secs(5)).await;
                }
            }
        };
        let _ = self.nats.set(client.clone());
        loop {
            let mut sub = match client
                .subscribe(sdash_proto::subjects::STREAM_SUBJECTS)
                .await
            {
                Ok(s) => s,
                Err(e) => {
                    tracing::warn!(error = %e, "live stream: subscribe failed, retrying");
                    tokio::time::sleep(Duration::from_secs(1)).await;
                    continue;
                }
            };
            self.subscribed.store(true, Ordering::SeqCst);
            tracing::info!(
                "live stream subscribed to {}",
                sdash_proto::subjects::STREAM_SUBJECTS
            );
            while let Some(msg) = sub.next().await {
                self.metrics.stream_messages.inc();
                match sdash_proto::codec::decode_record(msg.subject.as_str(), &msg.payload) {
                    Ok(record) => {
                        if let Some(item) = to_item(&record) {
                            self.publish(item);
                        }
                    }
                    Err(e) => {
                        self.metrics.stream_decode_errors.inc();
                        tracing::debug!(subject = %msg.subject, error = %e, "live stream: undecodable message");
                    }
                }
            }
            self.subscribed.store(false, Ordering::SeqCst);
        }
    }
}

fn to_item(record: &Record) -> Option<StreamItem> {
    fn item<T: serde::Serialize>(
        kind: &'static str,
        e: &sdash_proto::Envelope<T>,
    ) -> Option<StreamItem> {
        let mut value = serde_json::to_value(e).ok()?;
        if let Some(obj) = value.as_object_mut() {
            obj.insert("kind".into(), kind.into());
            obj.insert(
                "observed_at_rfc3339".into(),
                sdash_proto::format_ms(e.observed_at).into(),
            );
        }
        Some(StreamItem {
            kind,
            system_id: e.system_id.clone(),
            event_id: e.event_id.clone(),
            json: Arc::from(value.to_string()),
        })
    }
    match record {
        Record::Snapshot(e) => item("snapshot", e),
        Record::Event(e) => item("event", e),
        Record::System(e) => item("system", e),
        Record::Collector(_) => None,
    }
}

struct ClientGuard {
    hub: Arc<Hub>,
    id: u64,
}

impl Drop for ClientGuard {
    fn drop(&mut self) {
        self.hub.remove(self.id);
        self.hub.metrics.stream_clients.dec();
    }
}

/// The receiving end of one client.
pub struct ClientStream {
    rx: mpsc::Receiver<StreamItem>,
    guard: ClientGuard,
}

impl ClientStream {
    /// SSE events for this client: `hello` (with the ping interval), the records, and a `ping`
    /// (data: the server time in ms since the epoch) every `ping`; ends when the hub drops the
    /// client.
    pub fn into_events(
        self,
        ping: Duration,
    ) -> impl futures::Stream<Item = Result<Event, Infallible>> + Send + Sync + 'static {
        let ping = ping.max(Duration::from_millis(10));
        let hello = Event::default()
            .event("hello")
            .data(format!("{{\"ok\":true,\"ping_ms\":{}}}", ping.as_millis()))
            .retry(Duration::from_secs(3));
        let first = futures::stream::iter([Ok::<Event, Infallible>(hello)]);
        let mut ticker = tokio::time::interval_at(tokio::time::Instant::now() + ping, ping);
        ticker.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        let rest = futures::stream::unfold((self, ticker), |(mut state, mut ticker)| async move {
            let event = tokio::select! {
                item = state.rx.recv() => {
                    let item = item?;
                    Event::default()
                        .event(item.kind)
                        .id(item.event_id)
                        .data(item.json.to_string())
                }
                _ = ticker.tick() => ping_event(),
            };
            let _keep = &state.guard;
            Some((Ok(event), (state, ticker)))
        });
        first.chain(rest)
    }
}

/// The keep-alive: a named event (unlike an SSE comment, scripts and `EventSource` see it).
fn ping_event() -> Event {
    Event::default()
        .event("ping")
        .data(sdash_proto::now_ms().to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn item(system: &str) -> StreamItem {
        StreamItem {
            kind: "snapshot",
            system_id: system.into(),
            event_id: "e".into(),
            json: Arc::from("{}"),
        }
    }

    #[tokio::test]
    async fn idle_clients_get_named_ping_events_and_records_still_flow() {
        use futures::StreamExt;
        let mut registry = prometheus_client::registry::Registry::default();
        let metrics = Arc::new(Metrics::new(&mut registry));
        let hub = Arc::new(Hub::new(4, metrics));
        let events = hub.register(None).into_events(Duration::from_millis(50));
        let mut events = Box::pin(events);
        let mut next = async || {
            let event = tokio::time::timeout(Duration::from_secs(5), events.next())
                .await
                .ok()
                .flatten()
                .map(|e| e.map(|e| e.to_string()));
            match event {
                Some(Ok(text)) => text,
                other => panic!("no event: {other:?}"),
            }
        };
        let hello = next().await;
        assert!(
            hello.contains("event:hello") && hello.contains("\"ping_ms\":50"),
            "{hello}"
        );
        let before = sdash_proto::now_ms();
        let ping = next().await;
        assert!(ping.contains("event:ping"), "{ping}");
        let at: i64 = ping
            .lines()
            .find_map(|l| l.strip_prefix("data:"))
            .and_then(|d| d.trim().parse().ok())
            .unwrap_or_else(|| panic!("ping data is not a time in ms: {ping}"));
        assert!(
            (before - 1000..=sdash_proto::now_ms() + 1000).contains(&at),
            "{ping}"
        );
        hub.publish(item("a"));
        let mut saw_record = false;
        for _ in 0..3 {
            if next().await.contains("event:snapshot") {
                saw_record = true;
                break;
            }
        }
        assert!(saw_record, "records are delivered between pings");
        // The stream ends when the hub lets the client go, pings or not.
        hub.close();
        let end = tokio::time::timeout(Duration::from_secs(5), async {
            while events.next().await.is_some() {}
        })
        .await;
        assert!(end.is_ok(), "the stream did not end after close()");
    }

    #[tokio::test]
    async fn slow_clients_are_dropped_and_filters_apply() {
        let mut registry = prometheus_client::registry::Registry::default();
        let metrics = Arc::new(Metrics::new(&mut registry));
        let hub = Arc::new(Hub::new(2, metrics.clone()));
        let mut fast = hub.register(None);
        let slow = hub.register(None);
        let mut filtered = hub.register(Some("b".into()));
        assert_eq!(metrics.stream_clients.get(), 3);
        for _ in 0..2 {
            hub.publish(item("a"));
            assert!(fast.rx.recv().await.is_some());
        }
        // The slow client's buffer (2) is full: the third message disconnects it.
        hub.publish(item("a"));
        assert_eq!(metrics.stream_dropped.get(), 1);
        assert!(fast.rx.recv().await.is_some());
        hub.publish(item("b"));
        assert_eq!(
            filtered.rx.recv().await.map(|i| i.system_id),
            Some("b".to_owned())
        );
        assert!(
            filtered.rx.try_recv().is_err(),
            "messages about other systems are filtered out"
        );
        // The dropped client drains what it had, then its stream ends.
        let mut slow = slow;
        assert!(slow.rx.recv().await.is_some());
        assert!(slow.rx.recv().await.is_some());
        assert!(slow.rx.recv().await.is_none());
        drop(slow);
        assert_eq!(metrics.stream_clients.get(), 2);
        assert_eq!(hub.clients.lock().map(|c| c.len()).unwrap_or(0), 2);
    }
}
