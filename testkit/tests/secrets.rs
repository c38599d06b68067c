//! Secrets never leave the collector: known passwords and API tokens (the simulator's) appear in
//! no bus message, no database byte, no log line and no API response, including while logins
//! fail and sessions are renewed.

use std::io::Write;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use futures::StreamExt;
use sdash_harness::{Backend, wait_for};
use sdash_proto::Vendor;
use sdash_testkit::pipeline::{Pipeline, PipelineOptions};
use sdash_testkit::sim::{Fault, Mix, SimConfig};

/// Every log line of every in-process service, at debug level.
#[derive(Clone, Default)]
struct LogBuffer(Arc<Mutex<Vec<u8>>>);

impl Write for LogBuffer {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0
            .lock()
            .map_err(|_| std::io::Error::other("poisoned"))?
            .extend_from_slice(buf);
        Ok(buf.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

fn contains(haystack: &[u8], needle: &str) -> bool {
    !needle.is_empty()
        && haystack
            .windows(needle.len())
            .any(|w| w == needle.as_bytes())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn planted_secrets_appear_nowhere() {
    let logs = LogBuffer::default();
    let writer = logs.clone();
    tracing_subscriber::fmt()
        .with_max_level(tracing::Level::DEBUG)
        .with_ansi(false)
        .with_writer(move || writer.clone())
        .init();

    let sim = SimConfig {
        systems: 8,
        mix: Mix(Vendor::ALL.iter().map(|v| (*v, 1)).collect()),
        ..SimConfig::default()
    };
    let pipeline = Pipeline::start(PipelineOptions {
        backend: Backend::Sqlite,
        sim,
        interval: "1s".into(),
        collectors: 1,
    })
    .await
    .expect("pipeline");
    let systems = pipeline.fleet.systems();
    let secrets: Vec<String> = systems.iter().map(|s| s.secret.clone()).collect();
    assert!(
        secrets.iter().all(|s| s.len() >= 8),
        "the simulator's secrets are real strings"
    );

    // Everything on the bus, including the membership bucket.
    let bus: Arc<Mutex<Vec<u8>>> = Arc::default();
    let client = async_nats::connect(pipeline.nats.url())
        .await
        .expect("connect");
    for subject in ["sdash.>", "$KV.>", "$JS.>"] {
        let mut sub = client.subscribe(subject).await.expect("subscribe");
        let bus = bus.clone();
        tokio::spawn(async move {
            while let Some(msg) = sub.next().await {
                let mut bus = bus.lock().expect("lock");
                bus.extend_from_slice(&msg.payload);
                if let Some(headers) = &msg.headers {
                    for (name, values) in headers.iter() {
                        bus.extend_from_slice(name.to_string().as_bytes());
                        for v in values {
                            bus.extend_from_slice(v.as_str().as_bytes());
                        }
                    }
                }
            }
        });
    }

    // Exercise the authentication paths: rejected credentials on two systems, expired sessions on others.
    let wrong: Vec<&str> = systems
        .iter()
        .filter(|s| s.vendor != Vendor::Ontap)
        .take(2)
        .map(|s| s.id.as_str())
        .collect();
    for id in &wrong {
        pipeline.fleet.set_fault(id, Fault::WrongCredentials);
    }
    let api = pipeline.api_url();
    let auth_failed = wait_for(Duration::from_secs(30), || {
        let url = format!("{api}/api/v1/systems?status=auth_failed");
        async move {
            let body: serde_json::Value = reqwest::get(url).await.ok()?.json().await.ok()?;
            (body["items"].as_array()?.len() == 2).then_some(())
        }
    })
    .await;
    if auth_failed.is_none() {
        let body = reqwest::get(format!("{api}/api/v1/systems"))
            .await
            .expect("list")
            .text()
            .await
            .expect("text");
        let text = String::from_utf8_lossy(&logs.0.lock().expect("lock")).to_string();
        let interesting: Vec<&str> = text
            .lines()
            .filter(|l| l.contains("WARN") || l.contains("ERROR"))
            .take(40)
            .collect();
        panic!(
            "the wrong-credential systems {wrong:?} should show auth_failed: {body}\n{}",
            interesting.join("\n")
        );
    }
    for s in &systems {
        if !wrong.contains(&s.id.as_str()) {
            pipeline.fleet.set_fault(&s.id, Fault::ExpireSessions);
        }
    }
    for id in &wrong {
        pipeline.fleet.set_fault(id, Fault::None);
    }
    tokio::time::sleep(Duration::from_secs(4)).await;

    // Every API response.
    let mut responses = Vec::new();
    let mut urls: Vec<String> = [
        "/api/v1/systems?limit=1000",
        "/api/v1/alerts?state=all",
        "/api/v1/events?limit=1000&level=debug",
        "/api/v1/collectors",
        "/api/v1/status",
        "/api/v1/capacity/summary?group_by=environment",
        "/api/v1/export/capacity.csv",
        "/api/v1/openapi.json",
        "/metrics",
    ]
    .iter()
    .map(|p| format!("{api}{p}"))
    .collect();
    for s in &systems {
        for suffix in [
            "",
            "/events?limit=1000&level=debug",
            "/capacity",
            "/forecast",
        ] {
            urls.push(format!("{api}/api/v1/systems/{}{suffix}", s.id));
        }
    }
    for url in &urls {
        let response = reqwest::get(url).await.expect("request");
        assert!(
            response.status().is_success(),
            "{url}: {}",
            response.status()
        );
        responses.extend_from_slice(&response.bytes().await.expect("body"));
    }
    let events: serde_json::Value = reqwest::get(format!(
        "{api}/api/v1/events?limit=1000&category=authentication"
    ))
    .await
    .expect("events")
    .json()
    .await
    .expect("json");
    assert!(
        events["items"].as_array().is_some_and(|e| !e.is_empty()),
        "authentication events were logged, so the paths that handle secrets really ran"
    );

    let mut pipeline = pipeline;
    pipeline.shutdown().await;
    let db_dir = pipeline.db.dir().expect("sqlite dir").to_owned();
    let mut database = Vec::new();
    for entry in std::fs::read_dir(&db_dir).expect("db dir") {
        let path = entry.expect("entry").path();
        database.extend(std::fs::read(&path).unwrap_or_default());
    }
    let logs = logs.0.lock().expect("lock").clone();
    let bus = bus.lock().expect("lock").clone();
    assert!(
        logs.len() > 1000 && bus.len() > 1000 && database.len() > 1000,
        "something was captured"
    );
    for secret in &secrets {
        assert!(!contains(&bus, secret), "a secret went on the bus");
        assert!(!contains(&database, secret), "a secret was stored");
        assert!(
            !contains(&responses, secret),
            "a secret was served by the API"
        );
        assert!(!contains(&logs, secret), "a secret was logged");
    }
}
