//! The live stream: one core NATS subscription to `sdash.v1.>` fanned out to SSE clients.
//!
//! Memory stays bounded however many clients connect and however slowly they read: each record
//! is serialized once and shared (`Arc`) by the clients' queues, a queue holds at most
//! `--stream-buffer` records, and at most `--stream-max-clients` clients are served (one more is
//! refused). A client whose queue is full when a record arrives has fallen behind: it is cut off
//! at once (its queue freed, its connection closed with an error the next time the server writes
//! to it, so `EventSource` reconnects) and counted as `slow`. A client that stays within
//! `--stream-buffer` records gets every record the API received, in order. Records reach a
//! client at most 20 ms after the API received them, several per write.

use std::collections::VecDeque;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, OnceLock};
use std::time::Duration;

use futures::StreamExt;
use prometheus_client::metrics::gauge::Gauge;
use sdash_proto::Record;
use sdash_service::bus::NatsArgs;
use tokio::sync::Notify;
use warp::sse::Event;

use crate::metrics::{DisconnectLabels, Metrics};

/// One message for SSE clients, already serialized.
#[derive(Debug, Clone)]
pub struct StreamItem {
    pub kind: &'static str,
    pub system_id: String,
    pub event_id: String,
    pub json: Arc<str>,
}

/// How long a client waits after a record arrives before it writes (see [`ClientStream::next`]).
const COALESCE: Duration = Duration::from_millis(20);

/// Why a client's queue stopped taking records.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum End {
    /// It fell `buffer` records behind.
    Slow,
    /// The server is shutting down (or the client went away).
    Shutdown,
}

impl End {
    fn label(self) -> DisconnectLabels {
        DisconnectLabels {
            reason: match self {
                End::Slow => "slow",
                End::Shutdown => "shutdown",
            },
        }
    }
}

#[derive(Default)]
struct Queue {
    records: VecDeque<Arc<StreamItem>>,
    end: Option<End>,
}

/// The records one client has not been sent yet: the hub pushes, the client's response pops.
struct Outbox {
    queue: Mutex<Queue>,
    ready: Notify,
    /// `sdash_api_stream_queued_records`, kept equal to the records in every queue.
    queued: Gauge,
}

enum Push {
    Queued,
    Full,
}

impl Outbox {
    fn new(queued: Gauge, end: Option<End>) -> Outbox {
        Outbox {
            queue: Mutex::new(Queue {
                records: VecDeque::new(),
                end,
            }),
            ready: Notify::new(),
            queued,
        }
    }

    fn lock(&self) -> MutexGuard<'_, Queue> {
        // A panic while holding the lock cannot leave the queue half-changed; keep serving.
        self.queue.lock().unwrap_or_else(|e| e.into_inner())
    }

    fn push(&self, record: &Arc<StreamItem>, buffer: usize) -> Push {
        {
            let mut queue = self.lock();
            if queue.end.is_some() || queue.records.len() >= buffer {
                return Push::Full;
            }
            queue.records.push_back(record.clone());
        }
        self.queued.inc();
        self.ready.notify_one();
        Push::Queued
    }

    /// The next record, or why there is none coming (`Ok(None)`: none yet).
    fn pop(&self) -> Result<Option<Arc<StreamItem>>, End> {
        let mut queue = self.lock();
        match queue.records.pop_front() {
            Some(record) => {
                self.queued.dec();
                Ok(Some(record))
            }
            None => queue.end.map_or(Ok(None), Err),
        }
    }

    /// Stops the queue and frees what it held; false if it was stopped already.
    fn end(&self, why: End) -> bool {
        let was_open = {
            let mut queue = self.lock();
            let freed = queue.records.len();
            queue.records.clear();
            self.queued.dec_by(i64::try_from(freed).unwrap_or(i64::MAX));
            let was_open = queue.end.is_none();
            if was_open {
                queue.end = Some(why);
            }
            was_open
        };
        self.ready.notify_one();
        was_open
    }
}

struct Client {
    id: u64,
    system: Option<String>,
    outbox: Arc<Outbox>,
}

/// `--stream-max-clients` clients are connected already.
#[derive(Debug, thiserror::Error)]
#[error("the live stream serves at most {0} clients at once; try again later")]
pub struct HubFull(pub usize);

/// The end of a response whose client fell behind: warp turns it into a closed connection.
#[derive(Debug, thiserror::Error)]
#[error("live-stream client fell {0} records behind and was disconnected")]
pub struct CutOff(pub usize);

/// The fan-out hub.
pub struct Hub {
    clients: Mutex<Vec<Client>>,
    next_id: AtomicU64,
    nats: OnceLock<async_nats::Client>,
    subscribed: AtomicBool,
    closed: AtomicBool,
    buffer: usize,
    max_clients: usize,
    metrics: Arc<Metrics>,
}

impl Hub {
    /// A hub that queues at most `buffer` records per client for at most `max_clients` clients.
    pub fn new(buffer: usize, max_clients: usize, metrics: Arc<Metrics>) -> Hub {
        Hub {
            clients: Mutex::new(Vec::new()),
            next_id: AtomicU64::new(1),
            nats: OnceLock::new(),
            subscribed: AtomicBool::new(false),
            closed: AtomicBool::new(false),
            buffer: buffer.max(1),
            max_clients: max_clients.max(1),
            metrics,
        }
    }

    fn clients(&self) -> MutexGuard<'_, Vec<Client>> {
        self.clients.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// The NATS connection, once made (the command routes publish through it); `None` before.
    pub fn client(&self) -> Option<async_nats::Client> {
        self.nats.get().cloned()
    }

    /// Whether the stream can serve: NATS connected and subscribed.
    pub fn available(&self) -> bool {
        self.subscribed.load(Ordering::SeqCst)
            && self
                .nats
                .get()
                .is_some_and(|c| c.connection_state() == async_nats::connection::State::Connected)
    }

    /// Registers a client (records of `system` only, when given); its stream ends when the hub
    /// lets it go.
    pub fn register(self: &Arc<Hub>, system: Option<String>) -> Result<ClientStream, HubFull> {
        let id = self.next_id.fetch_add(1, Ordering::Relaxed);
        let mut clients = self.clients();
        // After close() the stream ends at once.
        let end = self.closed.load(Ordering::SeqCst).then_some(End::Shutdown);
        let outbox = Arc::new(Outbox::new(self.metrics.stream_queued.clone(), end));
        if end.is_none() {
            if clients.len() >= self.max_clients {
                self.metrics.stream_refused.inc();
                return Err(HubFull(self.max_clients));
            }
            clients.push(Client {
                id,
                system,
                outbox: outbox.clone(),
            });
            self.set_gauge(&clients);
        }
        Ok(ClientStream {
            guard: ClientGuard {
                hub: self.clone(),
                id,
                outbox,
            },
            buffer: self.buffer,
        })
    }

    fn set_gauge(&self, clients: &[Client]) {
        self.metrics
            .stream_clients
            .set(i64::try_from(clients.len()).unwrap_or(i64::MAX));
    }

    fn publish(&self, item: StreamItem) {
        let record = Arc::new(item);
        let mut clients = self.clients();
        let before = clients.len();
        clients.retain(|c| {
            if c.system.as_deref().is_some_and(|s| s != record.system_id) {
                return true;
            }
            match c.outbox.push(&record, self.buffer) {
                Push::Queued => true,
                Push::Full => {
                    tracing::info!(
                        client = c.id,
                        buffer = self.buffer,
                        "live-stream client fell behind, disconnecting it"
                    );
                    if c.outbox.end(End::Slow) {
                        self.metrics
                            .stream_disconnected
                            .get_or_create(&End::Slow.label())
                            .inc();
                    }
                    false
                }
            }
        });
        if clients.len() != before {
            self.set_gauge(&clients);
        }
    }

    /// Ends every client stream (at shutdown, so that graceful shutdown does not wait forever
    /// for SSE connections) and refuses new ones.
    pub fn close(&self) {
        self.closed.store(true, Ordering::SeqCst);
        let mut clients = self.clients();
        for c in clients.drain(..) {
            if c.outbox.end(End::Shutdown) {
                self.metrics
                    .stream_disconnected
                    .get_or_create(&End::Shutdown.label())
                    .inc();
            }
        }
        self.set_gauge(&clients);
    }

    /// Forgets a client whose response was dropped (it went away, or was let go before).
    fn remove(&self, id: u64) {
        let mut clients = self.clients();
        if let Some(i) = clients.iter().position(|c| c.id == id) {
            let client = clients.swap_remove(i);
            client.outbox.end(End::Shutdown);
            self.metrics
                .stream_disconnected
                .get_or_create(&DisconnectLabels {
                    reason: "client_closed",
                })
                .inc();
            self.set_gauge(&clients);
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

/// The SSE event name of `alert_updated` changes.
pub const ALERT_UPDATED: &str = "alert_updated";

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
        // An operator command the writer applied: other dashboards redraw the alert.
        Record::Change(e) if e.body.kind == sdash_proto::ChangeKind::AlertUpdated => {
            item(ALERT_UPDATED, e)
        }
        // Heartbeats, the writer's other derived changes and the commands themselves are for
        // other subscribers, not browsers.
        Record::Collector(_) | Record::Change(_) | Record::Command(_) => None,
        #[allow(unreachable_patterns)]
        _ => None,
    }
}

struct ClientGuard {
    hub: Arc<Hub>,
    id: u64,
    outbox: Arc<Outbox>,
}

impl Drop for ClientGuard {
    fn drop(&mut self) {
        self.hub.remove(self.id);
        // Frees what a client that was let go still had queued.
        self.outbox.end(End::Shutdown);
    }
}

/// The receiving end of one client.
pub struct ClientStream {
    guard: ClientGuard,
    buffer: usize,
}

/// What a client's response sends next.
enum Next {
    Event(Event),
    CutOff,
    End,
}

impl ClientStream {
    async fn next(&self, ticker: &mut tokio::time::Interval) -> Next {
        let outbox = &self.guard.outbox;
        loop {
            match outbox.pop() {
                Ok(Some(record)) => return Next::Event(record_event(&record)),
                Ok(None) => {}
                Err(End::Slow) => return Next::CutOff,
                Err(End::Shutdown) => return Next::End,
            }
            // A record pushed after pop() leaves a permit, so this cannot miss it.
            tokio::select! {
                _ = outbox.ready.notified() => {
                    // Let the records of the next few milliseconds join this one: they then go
                    // out in one write, one wakeup and one syscall per client instead of one per
                    // record (`sdash-bench live`: 1,000 clients at 167 records/s).
                    tokio::time::sleep(COALESCE).await;
                }
                _ = ticker.tick() => return Next::Event(ping_event()),
            }
        }
    }

    /// SSE events for this client: `hello` (with the ping interval), the records, and a `ping`
    /// (data: the server time in ms since the epoch) every `ping`. The stream ends when the hub
    /// lets the client go at shutdown, and fails ([`CutOff`], so the connection is closed) when
    /// the client fell behind.
    pub fn into_events(
        self,
        ping: Duration,
    ) -> impl futures::Stream<Item = Result<Event, CutOff>> + Send + Sync + 'static {
        let ping = ping.max(Duration::from_millis(10));
        let hello = Event::default()
            .event("hello")
            .data(format!("{{\"ok\":true,\"ping_ms\":{}}}", ping.as_millis()))
            .retry(Duration::from_secs(3));
        let first = futures::stream::iter([Ok::<Event, CutOff>(hello)]);
        let mut ticker = tokio::time::interval_at(tokio::time::Instant::now() + ping, ping);
        ticker.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        let rest =
            futures::stream::unfold((Some(self), ticker), |(state, mut ticker)| async move {
                let client = state?;
                match client.next(&mut ticker).await {
                    Next::Event(event) => Some((Ok(event), (Some(client), ticker))),
                    Next::CutOff => {
                        let behind = client.buffer;
                        Some((Err(CutOff(behind)), (None, ticker)))
                    }
                    Next::End => None,
                }
            });
        first.chain(rest)
    }
}

/// A record as an SSE event: its kind, its event id, its JSON.
fn record_event(record: &StreamItem) -> Event {
    Event::default()
        .event(record.kind)
        .id(record.event_id.as_str())
        .data(&*record.json)
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

    fn hub(buffer: usize, max_clients: usize) -> (Arc<Hub>, Arc<Metrics>) {
        let mut registry = prometheus_client::registry::Registry::default();
        let metrics = Arc::new(Metrics::new(&mut registry));
        (
            Arc::new(Hub::new(buffer, max_clients, metrics.clone())),
            metrics,
        )
    }

    fn register(hub: &Arc<Hub>, system: Option<&str>) -> ClientStream {
        hub.register(system.map(str::to_owned))
            .unwrap_or_else(|e| panic!("{e}"))
    }

    fn disconnected(metrics: &Metrics, reason: &'static str) -> u64 {
        metrics
            .stream_disconnected
            .get_or_create(&DisconnectLabels { reason })
            .get()
    }

    #[tokio::test]
    async fn idle_clients_get_named_ping_events_and_records_still_flow() {
        let (hub, _) = hub(4, 10);
        let events = register(&hub, None).into_events(Duration::from_millis(50));
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
    async fn slow_clients_are_cut_off_at_once_and_filters_apply() {
        let (hub, metrics) = hub(2, 10);
        let fast = register(&hub, None);
        let slow = register(&hub, None);
        let filtered = register(&hub, Some("b"));
        let pop = |c: &ClientStream| c.guard.outbox.pop().map(|r| r.map(|r| r.system_id.clone()));
        assert_eq!(metrics.stream_clients.get(), 3);
        for _ in 0..2 {
            hub.publish(item("a"));
            assert_eq!(pop(&fast), Ok(Some("a".to_owned())));
        }
        assert_eq!(metrics.stream_queued.get(), 2, "the slow client's two");
        // The slow client's buffer (2) is full: the third record cuts it off and frees its queue.
        hub.publish(item("a"));
        assert_eq!(disconnected(&metrics, "slow"), 1);
        assert_eq!(metrics.stream_clients.get(), 2);
        assert_eq!(
            pop(&slow),
            Err(End::Slow),
            "nothing more, not even its backlog"
        );
        assert_eq!(pop(&fast), Ok(Some("a".to_owned())));
        hub.publish(item("b"));
        assert_eq!(pop(&filtered), Ok(Some("b".to_owned())));
        assert_eq!(pop(&filtered), Ok(None), "other systems are filtered out");
        assert_eq!(pop(&fast), Ok(Some("b".to_owned())));
        assert_eq!(metrics.stream_queued.get(), 0);
        drop(slow);
        assert_eq!(
            disconnected(&metrics, "client_closed"),
            0,
            "it was let go before"
        );
        drop(fast);
        assert_eq!(disconnected(&metrics, "client_closed"), 1);
        assert_eq!(metrics.stream_clients.get(), 1);
        assert_eq!(hub.clients().len(), 1);
        hub.close();
        assert_eq!(disconnected(&metrics, "shutdown"), 1);
        assert_eq!(pop(&filtered), Err(End::Shutdown));
        assert_eq!(metrics.stream_clients.get(), 0);
    }

    #[tokio::test]
    async fn a_cut_off_client_gets_an_error_so_its_connection_closes() {
        let (hub, _) = hub(1, 10);
        let mut events = Box::pin(register(&hub, None).into_events(Duration::from_secs(60)));
        assert!(matches!(events.next().await, Some(Ok(_))), "hello");
        hub.publish(item("a"));
        hub.publish(item("a"));
        let next = tokio::time::timeout(Duration::from_secs(5), events.next()).await;
        assert!(matches!(next, Ok(Some(Err(CutOff(1))))), "{next:?}");
        let after = tokio::time::timeout(Duration::from_secs(5), events.next()).await;
        assert!(matches!(after, Ok(None)), "{after:?}");
    }

    #[tokio::test]
    async fn clients_beyond_the_limit_are_refused_and_queues_stay_within_the_buffer() {
        let (hub, metrics) = hub(8, 2);
        let a = register(&hub, None);
        let _b = register(&hub, None);
        assert!(matches!(hub.register(None), Err(HubFull(2))));
        assert_eq!(metrics.stream_refused.get(), 1);
        drop(a);
        let _c = register(&hub, None);
        // Neither reads: each holds at most 8 records, then is cut; nothing grows beyond that.
        for n in 0..100 {
            hub.publish(item("a"));
            assert!(metrics.stream_queued.get() <= 16, "after {n}");
        }
        assert_eq!(disconnected(&metrics, "slow"), 2);
        assert_eq!(metrics.stream_queued.get(), 0);
        assert!(hub.clients().is_empty());
    }
}
