//! The live stream (SSE) against a real nats-server.

mod common;

use std::time::{Duration, Instant};

use common::*;
use sdash_harness::{Backend, NatsServer, TestDatabase};
use sdash_proto::{Vendor, now_ms};
use sdash_service::bus::NatsArgs;

async fn read_until(
    resp: &mut reqwest::Response,
    buf: &mut String,
    needle: &str,
    timeout: Duration,
) -> bool {
    let deadline = Instant::now() + timeout;
    while !buf.contains(needle) {
        let left = deadline.saturating_duration_since(Instant::now());
        match tokio::time::timeout(left, resp.chunk()).await {
            Ok(Ok(Some(chunk))) => buf.push_str(&String::from_utf8_lossy(&chunk)),
            _ => return false,
        }
    }
    true
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sse_delivers_a_published_snapshot_within_a_second() {
    let nats = NatsServer::start();
    let env = Env::with(Backend::Sqlite, |c| {
        c.nats = Some(NatsArgs::plain(&nats.url()))
    })
    .await;
    // Wait until the hub is subscribed.
    let ready = sdash_harness::wait_for(Duration::from_secs(10), || async {
        let resp = env.request("/api/v1/stream").send().await.ok()?;
        (resp.status().as_u16() == 200).then_some(())
    })
    .await;
    assert!(ready.is_some(), "stream never became available");

    let mut resp = env
        .ok_of_type("/api/v1/stream?system=fa-1", "text/event-stream")
        .await;
    let mut buf = String::new();
    assert!(
        read_until(&mut resp, &mut buf, "event:hello", Duration::from_secs(5)).await,
        "{buf}"
    );

    let client = async_nats::connect(nats.url())
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    let (other_subject, other) = simple_snapshot("fa-2", now_ms(), Vendor::Pure, 1, 2);
    let (subject, payload) = simple_snapshot("fa-1", now_ms(), Vendor::Pure, 3 * GIB, 4 * GIB);
    let started = Instant::now();
    client
        .publish(other_subject, other.into())
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    client
        .publish("sdash.v1.snapshot.fa-1", b"garbage".to_vec().into())
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    client
        .publish(subject, payload.into())
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    client.flush().await.unwrap_or_else(|e| panic!("{e}"));
    assert!(
        read_until(
            &mut resp,
            &mut buf,
            "event:snapshot",
            Duration::from_secs(1)
        )
        .await,
        "no snapshot within 1 s: {buf}"
    );
    assert!(started.elapsed() < Duration::from_secs(1));
    let data = buf
        .split("\n\n")
        .find(|block| block.contains("event:snapshot"))
        .and_then(|block| block.lines().find_map(|l| l.strip_prefix("data:")))
        .unwrap_or_else(|| panic!("no data line: {buf}"));
    let value: serde_json::Value =
        serde_json::from_str(data).unwrap_or_else(|e| panic!("{e}: {data}"));
    assert_eq!(value["system_id"], "fa-1");
    assert_eq!(value["body"]["capacity"]["used_bytes"], 3 * GIB);
    assert!(
        !buf.contains("fa-2"),
        "the system filter lets other systems through: {buf}"
    );

    // Events and system records are pushed too.
    client
        .publish(
            "sdash.v1.event.fa-1",
            event(
                "fa-1",
                now_ms(),
                sdash_proto::Level::Error,
                sdash_proto::Category::Connection,
                "down",
            )
            .1
            .into(),
        )
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    client
        .publish(
            "sdash.v1.system.fa-1",
            system_rec("fa-1", "FA 1", Vendor::Pure, &[], now_ms())
                .1
                .into(),
        )
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    assert!(
        read_until(&mut resp, &mut buf, "event:event", Duration::from_secs(2)).await,
        "{buf}"
    );
    assert!(
        read_until(&mut resp, &mut buf, "event:system", Duration::from_secs(2)).await,
        "{buf}"
    );

    // Of the writer's changes only `alert_updated` (an operator command applied) is forwarded.
    let change = |kind: sdash_proto::ChangeKind| {
        let mut body = sdash_proto::ChangeRecord::transition(kind, "cause", Vendor::Pure, "", "");
        body.from = None;
        body.to = None;
        body.alert_opened_at = Some(now_ms() - 1000);
        if kind == sdash_proto::ChangeKind::AlertUpdated {
            body.command = Some(Box::new(sdash_proto::CommandRecord {
                kind: sdash_proto::CommandKind::Acknowledge,
                actor: "alice".into(),
                alert: Some(sdash_proto::AlertInstance {
                    alert_id: "a1".into(),
                    opened_at: now_ms() - 1000,
                }),
                assignee: None,
                comment: None,
            }));
            body.command_id = Some("cmd-1".into());
        }
        let env = sdash_proto::Envelope::new("writer-1", "fa-1", body);
        sdash_proto::encode(&env).unwrap_or_else(|e| panic!("{e}"))
    };
    for kind in [
        sdash_proto::ChangeKind::AlertOpened,
        sdash_proto::ChangeKind::StatusChanged,
        sdash_proto::ChangeKind::AlertUpdated,
    ] {
        client
            .publish("sdash.v1.change.fa-1", change(kind).into())
            .await
            .unwrap_or_else(|e| panic!("{e}"));
    }
    client.flush().await.unwrap_or_else(|e| panic!("{e}"));
    assert!(
        read_until(
            &mut resp,
            &mut buf,
            "event:alert_updated",
            Duration::from_secs(2)
        )
        .await,
        "{buf}"
    );
    let data = buf
        .split("\n\n")
        .find(|block| block.contains("event:alert_updated"))
        .and_then(|block| block.lines().find_map(|l| l.strip_prefix("data:")))
        .unwrap_or_else(|| panic!("no data line: {buf}"));
    let value: serde_json::Value =
        serde_json::from_str(data).unwrap_or_else(|e| panic!("{e}: {data}"));
    assert_eq!(value["kind"], "alert_updated");
    assert_eq!(value["system_id"], "fa-1");
    assert_eq!(value["body"]["command_id"], "cmd-1");
    assert_eq!(value["body"]["command"]["actor"], "alice");
    assert_eq!(value["body"]["command"]["alert"]["alert_id"], "a1");
    // Published before it, in order: had they been forwarded, they would be here already.
    assert!(!buf.contains("\"kind\":\"alert_opened\""), "{buf}");
    assert!(!buf.contains("status_changed"), "{buf}");
    assert_eq!(buf.matches("event:alert_updated").count(), 1, "{buf}");

    let (_, metrics) = env.get_text("/metrics").await;
    assert!(metrics.contains("sdash_api_stream_clients 1"), "{metrics}");
    assert!(
        metrics.contains("sdash_api_stream_decode_errors_total 1"),
        "{metrics}"
    );
    drop(resp);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn idle_stream_sends_named_ping_events_at_the_interval() {
    let nats = NatsServer::start();
    let ping = Duration::from_millis(300);
    let env = Env::with(Backend::Sqlite, |c| {
        c.nats = Some(NatsArgs::plain(&nats.url()));
        c.stream_ping = ping;
    })
    .await;
    let mut resp = sdash_harness::wait_for(Duration::from_secs(10), || async {
        let resp = env.request("/api/v1/stream").send().await.ok()?;
        (resp.status().as_u16() == 200).then_some(resp)
    })
    .await
    .unwrap_or_else(|| panic!("stream never became available"));
    let mut buf = String::new();
    assert!(
        read_until(&mut resp, &mut buf, "event:hello", Duration::from_secs(5)).await,
        "{buf}"
    );
    assert!(
        buf.contains("\"ping_ms\":300"),
        "hello names the interval: {buf}"
    );
    let hello_at = Instant::now();
    let before = now_ms();
    // Nothing is published: the only thing that can arrive is the keep-alive, as a named event
    // (an SSE comment would be invisible to EventSource and scripts).
    assert!(
        read_until(&mut resp, &mut buf, "event:ping", ping * 3).await,
        "no ping event within {:?}: {buf}",
        ping * 3
    );
    assert!(hello_at.elapsed() < ping * 3);
    let block = buf
        .split("\n\n")
        .find(|b| b.contains("event:ping"))
        .unwrap_or_else(|| panic!("{buf}"));
    let at: i64 = block
        .lines()
        .find_map(|l| l.strip_prefix("data:"))
        .and_then(|d| d.trim().parse().ok())
        .unwrap_or_else(|| panic!("ping data is not ms since the epoch: {block}"));
    assert!(
        (before - 1000..=now_ms() + 1000).contains(&at),
        "ping data {at} is not the server time"
    );
    assert!(!buf.contains(": keep-alive"), "{buf}");
    // And they keep coming.
    let pings = buf.matches("event:ping").count();
    let needle = "event:ping";
    let deadline = Instant::now() + ping * 4;
    while buf.matches(needle).count() <= pings && Instant::now() < deadline {
        if let Ok(Ok(Some(chunk))) = tokio::time::timeout(ping, resp.chunk()).await {
            buf.push_str(&String::from_utf8_lossy(&chunk));
        }
    }
    assert!(buf.matches(needle).count() > pings, "only one ping: {buf}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn nats_down_is_503_for_the_stream_only() {
    install_crypto();
    let db = TestDatabase::new(Backend::Sqlite).await;
    let _store = sdash_writer::Store::open(&db.url)
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    let mut config = sdash_api::Config::new(&db.url);
    config.nats = Some(NatsArgs::plain(&format!(
        "nats://127.0.0.1:{}",
        sdash_harness::free_port()
    )));
    let (addr, task) = sdash_api::spawn(config)
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    let http = client();
    let resp = http
        .get(format!("http://{addr}/api/v1/stream"))
        .send()
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(resp.status().as_u16(), 503);
    let body: serde_json::Value = resp.json().await.unwrap_or_default();
    assert!(
        body["error"].as_str().is_some_and(|e| e.contains("NATS")),
        "{body}"
    );
    let resp = http
        .get(format!("http://{addr}/api/v1/systems"))
        .send()
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(resp.status().as_u16(), 200);
    let resp = http
        .get(format!("http://{addr}/api/v1/status"))
        .send()
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    let body: serde_json::Value = resp.json().await.unwrap_or_default();
    assert_eq!(body["nats_connected"], false);
    task.abort();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn graceful_shutdown_ends_open_streams() {
    install_crypto();
    let nats = NatsServer::start();
    let db = TestDatabase::new(Backend::Sqlite).await;
    let _store = sdash_writer::Store::open(&db.url)
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    let mut config = sdash_api::Config::new(&db.url);
    config.nats = Some(NatsArgs::plain(&nats.url()));
    let stop = sdash_service::Shutdown::new();
    let (addr, task) = sdash_api::spawn_with_shutdown(config, stop.clone())
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    let http = client();
    let url = format!("http://{addr}/api/v1/stream");
    let mut resp = sdash_harness::wait_for(Duration::from_secs(10), || {
        let (http, url) = (http.clone(), url.clone());
        async move {
            let r = http.get(url).send().await.ok()?;
            (r.status().as_u16() == 200).then_some(r)
        }
    })
    .await
    .unwrap_or_else(|| panic!("stream never became available"));
    let mut buf = String::new();
    assert!(read_until(&mut resp, &mut buf, "event:hello", Duration::from_secs(5)).await);
    stop.cancel();
    // The stream ends, then the server task.
    let ended = tokio::time::timeout(Duration::from_secs(5), async {
        while let Ok(Some(_)) = resp.chunk().await {}
    })
    .await;
    assert!(ended.is_ok(), "the open stream was not ended at shutdown");
    let done = tokio::time::timeout(Duration::from_secs(5), task).await;
    assert!(done.is_ok(), "shutdown waited for the open SSE connection");
}

/// The `id:` of every `event:snapshot` block complete in `buf` (removed from it).
fn take_snapshot_ids(buf: &mut String, ids: &mut Vec<String>) {
    while let Some(end) = buf.find("\n\n") {
        let block: String = buf.drain(..end + 2).collect();
        if block.lines().any(|l| l == "event:snapshot")
            && let Some(id) = block.lines().find_map(|l| l.strip_prefix("id:"))
        {
            ids.push(id.to_owned());
        }
    }
}

fn metric(text: &str, series: &str) -> Option<f64> {
    text.lines()
        .find_map(|l| l.strip_prefix(series)?.strip_prefix(' ')?.parse().ok())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_client_that_stops_reading_is_cut_off_and_counted_while_one_that_keeps_up_gets_every_record()
 {
    use std::sync::{Arc, Mutex};
    use tokio::io::{AsyncReadExt, AsyncWriteExt};

    const BUFFER: usize = 32;
    const BATCH: usize = BUFFER / 2;
    let nats = NatsServer::start();
    let env = Env::with(Backend::Sqlite, |c| {
        c.nats = Some(NatsArgs::plain(&nats.url()));
        c.stream_buffer = BUFFER;
    })
    .await;
    let mut fast = sdash_harness::wait_for(Duration::from_secs(10), || async {
        let resp = env.request("/api/v1/stream").send().await.ok()?;
        (resp.status().as_u16() == 200).then_some(resp)
    })
    .await
    .unwrap_or_else(|| panic!("stream never became available"));
    let mut buf = String::new();
    assert!(read_until(&mut fast, &mut buf, "event:hello", Duration::from_secs(5)).await);
    // The client that keeps up reads in a task of its own.
    let received = Arc::new(Mutex::new(Vec::<String>::new()));
    let reader = {
        let received = received.clone();
        tokio::spawn(async move {
            while let Ok(Some(chunk)) = fast.chunk().await {
                buf.push_str(&String::from_utf8_lossy(&chunk));
                let mut ids = received.lock().unwrap_or_else(|e| e.into_inner());
                take_snapshot_ids(&mut buf, &mut ids);
            }
        })
    };

    // The slow client: a raw connection with a small receive buffer that stops reading after
    // the hello, so the server's socket, its HTTP buffer and then the client's queue fill up.
    let socket = tokio::net::TcpSocket::new_v4().unwrap_or_else(|e| panic!("{e}"));
    socket
        .set_recv_buffer_size(4096)
        .unwrap_or_else(|e| panic!("{e}"));
    let mut slow = socket
        .connect(env.addr)
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    slow.write_all(b"GET /api/v1/stream HTTP/1.1\r\nHost: sdash\r\n\r\n")
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    let mut slow_bytes = Vec::new();
    let mut chunk = [0u8; 4096];
    while !String::from_utf8_lossy(&slow_bytes).contains("event:hello") {
        let n = tokio::time::timeout(Duration::from_secs(5), slow.read(&mut chunk))
            .await
            .unwrap_or_else(|_| panic!("no hello for the slow client"))
            .unwrap_or_else(|e| panic!("{e}"));
        assert!(n > 0, "closed before hello");
        slow_bytes.extend_from_slice(&chunk[..n]);
    }
    let (_, text) = env.get_text("/metrics").await;
    assert_eq!(
        metric(&text, "sdash_api_stream_clients"),
        Some(2.0),
        "{text}"
    );

    // Publish in batches smaller than the buffer, each once the fast client has the previous
    // one: it keeps up by construction. Large snapshots fill the slow client's pipe sooner.
    let bus = async_nats::connect(nats.url())
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    let alerts: Vec<_> = (0..40)
        .map(|a| {
            alert(
                &format!("a{a}"),
                sdash_proto::Severity::Warning,
                &"x".repeat(100),
            )
        })
        .collect();
    let body = snapshot_body(Vendor::Pure, GIB, 4 * GIB, alerts);
    let body_len = serde_json::to_string(&body).map(|j| j.len()).unwrap_or(0);
    let mut published = Vec::new();
    let mut most_queued = 0.0f64;
    let mut extra_batches = None;
    while extra_batches != Some(0) {
        assert!(
            published.len() < 20_000,
            "the slow client was never cut off"
        );
        for _ in 0..BATCH {
            let envelope = sdash_proto::Envelope {
                schema: sdash_proto::SCHEMA_VERSION,
                event_id: format!("live-{:06}", published.len()),
                collector_id: "c1".into(),
                system_id: "fa-1".into(),
                observed_at: now_ms(),
                body: body.clone(),
            };
            let bytes = sdash_proto::encode(&envelope).unwrap_or_else(|e| panic!("{e}"));
            bus.publish("sdash.v1.snapshot.fa-1", bytes.into())
                .await
                .unwrap_or_else(|e| panic!("{e}"));
            published.push(envelope.event_id);
        }
        bus.flush().await.unwrap_or_else(|e| panic!("{e}"));
        let caught_up = sdash_harness::wait_for(Duration::from_secs(20), || async {
            let n = received.lock().map(|r| r.len()).unwrap_or(0);
            (n >= published.len()).then_some(())
        })
        .await;
        assert!(
            caught_up.is_some(),
            "the fast client has {} of {} records",
            received.lock().map(|r| r.len()).unwrap_or(0),
            published.len()
        );
        let (_, text) = env.get_text("/metrics").await;
        let queued = metric(&text, "sdash_api_stream_queued_records").unwrap_or(-1.0);
        assert!(
            (0.0..=(2 * BUFFER) as f64).contains(&queued),
            "queued {queued}: {text}"
        );
        most_queued = most_queued.max(queued);
        let cut = metric(
            &text,
            "sdash_api_stream_clients_disconnected_total{reason=\"slow\"}",
        );
        extra_batches = match (extra_batches, cut) {
            (None, Some(1.0)) => Some(3),
            (None, _) => None,
            (Some(n), _) => Some(n - 1),
        };
    }
    // The fast client got every record, in order; the slow one was cut off, its queue freed.
    let got = received.lock().map(|r| r.clone()).unwrap_or_default();
    assert_eq!(got.len(), published.len());
    assert!(
        got == published,
        "records lost or reordered for the fast client"
    );
    let (_, text) = env.get_text("/metrics").await;
    assert_eq!(
        metric(
            &text,
            "sdash_api_stream_clients_disconnected_total{reason=\"slow\"}"
        ),
        Some(1.0),
        "{text}"
    );
    assert_eq!(
        metric(&text, "sdash_api_stream_clients"),
        Some(1.0),
        "{text}"
    );
    assert_eq!(
        metric(&text, "sdash_api_stream_queued_records"),
        Some(0.0),
        "{text}"
    );
    // The slow client's queue did hold records before the cut: the pipes to it had filled.
    assert!(
        most_queued > 0.0,
        "the slow client's queue never held a record"
    );
    eprintln!(
        "slow client cut after {} records of {} bytes",
        published.len(),
        body_len
    );

    // When the slow client reads again it gets what was in the pipes, then the connection closes
    // without the end of the chunked body: it was cut, not ended.
    let drained = tokio::time::timeout(Duration::from_secs(20), async {
        loop {
            match slow.read(&mut chunk).await {
                Ok(0) | Err(_) => break,
                Ok(n) => slow_bytes.extend_from_slice(&chunk[..n]),
            }
        }
    })
    .await;
    assert!(drained.is_ok(), "the slow client's connection stayed open");
    assert!(
        !slow_bytes.ends_with(b"0\r\n\r\n"),
        "the stream ended cleanly"
    );
    let slow_text = String::from_utf8_lossy(&slow_bytes);
    let slow_got = slow_text.matches("event:snapshot").count();
    assert!(
        slow_got < published.len(),
        "{slow_got} of {}",
        published.len()
    );
    reader.abort();
}
