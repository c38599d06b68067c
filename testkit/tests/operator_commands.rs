//! Operator commands across processes (#14), on SQLite and on PostgreSQL: a real nats-server,
//! the writer and the API (each through the library entry point its binary calls), and records
//! published on the bus the way a collector publishes them. Commands given over HTTP travel
//! over JetStream to the one writer and come back through the API's GET routes; a command
//! published twice with the same id is applied once; one sent while the writer is down is
//! applied when it starts; a reopened alert is unacknowledged again; the audit names the actor;
//! a disabled system is left out of every total.

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::time::Duration;

use async_nats::jetstream;
use sdash_harness::{Backend, NatsServer, TestDatabase, wait_for};
use sdash_proto::subjects::Kind;
use sdash_proto::*;
use sdash_service::Shutdown;
use sdash_service::bus::{NatsArgs, StreamArgs, ensure_stream};
use serde_json::{Value, json};

const READ: &str = "read-token-0123456789";
const ALICE: &str = "alice-token-0123456789abcdef";
const BOB: &str = "bob-token-0123456789abcdef";
const WAIT: Duration = Duration::from_secs(30);

struct World {
    nats: NatsServer,
    db: TestDatabase,
    js: jetstream::Context,
    api: SocketAddr,
    http: reqwest::Client,
    stop: Shutdown,
    writer: Option<(Shutdown, tokio::task::JoinHandle<()>)>,
    tasks: Vec<tokio::task::JoinHandle<()>>,
}

impl Drop for World {
    fn drop(&mut self) {
        self.stop.cancel();
        if let Some((stop, task)) = self.writer.take() {
            stop.cancel();
            task.abort();
        }
        for t in &self.tasks {
            t.abort();
        }
    }
}

impl World {
    async fn start(backend: Backend) -> World {
        sdash_testkit::install_crypto_provider();
        let nats = NatsServer::start();
        let db = TestDatabase::new(backend).await;
        let client = async_nats::connect(nats.url())
            .await
            .unwrap_or_else(|e| panic!("connect: {e}"));
        let js = jetstream::new(client);
        ensure_stream(&js, &StreamArgs::default())
            .await
            .unwrap_or_else(|e| panic!("stream: {e}"));
        let mut world = World {
            nats,
            db,
            js,
            api: SocketAddr::from(([127, 0, 0, 1], 0)),
            http: reqwest::Client::new(),
            stop: Shutdown::new(),
            writer: None,
            tasks: Vec::new(),
        };
        world.start_writer();
        // The API opens the database read-only: wait until the writer has created it.
        let mut config = sdash_api::Config::new(&world.db.url);
        config.nats = Some(NatsArgs::plain(&world.nats.url()));
        config.auth_token = Some(READ.into());
        config.operator_tokens = Some(
            sdash_api::auth::OperatorTokens::parse(
                &format!("alice {ALICE}\nbob {BOB}\n"),
                Some(READ),
            )
            .unwrap_or_else(|e| panic!("{e}")),
        );
        config.instance_id = "api-1".into();
        let mut attempt = 0;
        let (api, task) = loop {
            match sdash_api::spawn_with_shutdown(config.clone(), world.stop.clone()).await {
                Ok(v) => break v,
                Err(e) if attempt < 100 => {
                    attempt += 1;
                    tracing::debug!(error = %e, "api not up yet");
                    tokio::time::sleep(Duration::from_millis(100)).await;
                }
                Err(e) => panic!("api: {e}"),
            }
        };
        world.api = api;
        world.tasks.push(task);
        let connected = wait_for(WAIT, || async {
            (world.get("/api/v1/status").await["nats_connected"] == true).then_some(())
        })
        .await;
        assert!(connected.is_some(), "the API never connected to NATS");
        world
    }

    fn start_writer(&mut self) {
        let config = sdash_writer::WriterConfig::new(&self.nats.url(), &self.db.url);
        let stop = Shutdown::new();
        let writer_stop = stop.clone();
        let task = tokio::spawn(async move {
            if let Err(e) = sdash_writer::run(config, writer_stop).await {
                tracing::error!(error = %e, "writer failed");
            }
        });
        self.writer = Some((stop, task));
    }

    async fn stop_writer(&mut self) {
        if let Some((stop, task)) = self.writer.take() {
            stop.cancel();
            let stopped = tokio::time::timeout(Duration::from_secs(20), task).await;
            assert!(stopped.is_ok(), "the writer did not stop");
        }
    }

    fn url(&self, path: &str) -> String {
        format!("http://{}{path}", self.api)
    }

    async fn get(&self, path: &str) -> Value {
        let resp = self
            .http
            .get(self.url(path))
            .bearer_auth(READ)
            .send()
            .await
            .unwrap_or_else(|e| panic!("GET {path}: {e}"));
        resp.json().await.unwrap_or_default()
    }

    async fn get_text(&self, path: &str) -> String {
        let resp = self
            .http
            .get(self.url(path))
            .bearer_auth(READ)
            .send()
            .await
            .unwrap_or_else(|e| panic!("GET {path}: {e}"));
        resp.text().await.unwrap_or_default()
    }

    async fn post(&self, path: &str, token: &str, body: Value) -> (u16, Value) {
        let resp = self
            .http
            .post(self.url(path))
            .bearer_auth(token)
            .json(&body)
            .send()
            .await
            .unwrap_or_else(|e| panic!("POST {path}: {e}"));
        let status = resp.status().as_u16();
        (status, resp.json().await.unwrap_or_default())
    }

    /// POST expecting 202; the command ids.
    async fn command(&self, path: &str, token: &str, body: Value) -> Vec<String> {
        let (status, reply) = self.post(path, token, body).await;
        assert_eq!(status, 202, "POST {path}: {reply}");
        reply["command_ids"]
            .as_array()
            .map(|a| {
                a.iter()
                    .filter_map(|v| v.as_str().map(String::from))
                    .collect()
            })
            .unwrap_or_default()
    }

    /// Publishes like a collector (Nats-Msg-Id = the event id) and waits for the PubAck;
    /// whether JetStream took it as a duplicate.
    async fn publish_with_id(&self, subject: String, payload: Vec<u8>, msg_id: &str) -> bool {
        let message = jetstream::message::PublishMessage::build()
            .payload(payload.into())
            .message_id(msg_id);
        let ack = self
            .js
            .send_publish(subject, message)
            .await
            .unwrap_or_else(|e| panic!("publish: {e}"))
            .await
            .unwrap_or_else(|e| panic!("pub ack: {e}"));
        ack.duplicate
    }

    async fn publish<T: serde::Serialize>(&self, subject: String, envelope: &Envelope<T>) {
        let payload = encode(envelope).unwrap_or_else(|e| panic!("encode: {e}"));
        self.publish_with_id(subject, payload, &envelope.event_id.clone())
            .await;
    }

    async fn system(&self, id: &str, enabled: bool, at: i64) {
        let body = SystemRecord {
            name: id.to_uppercase(),
            vendor: Vendor::Pure,
            address: format!("https://{id}.example.net"),
            tags: BTreeMap::from([("environment".to_owned(), "production".to_owned())]),
            interval_s: 60,
            enabled,
            removed: false,
        };
        let mut e = Envelope::new("collector-1", id, body);
        e.observed_at = at;
        self.publish(Kind::System.subject(id), &e).await;
    }

    async fn snapshot(&self, id: &str, at: i64, total: u64, alerts: &[(&str, Severity)]) {
        let mut body = Snapshot::failed(Vendor::Pure, Status::Online, String::new(), 50);
        body.error = None;
        body.hardware = Health::Ok;
        body.cluster = Health::Ok;
        body.capacity = Some(Capacity {
            total_bytes: total,
            used_bytes: total / 4,
            free_bytes: total - total / 4,
            data_reduction: None,
            provisioned_bytes: None,
        });
        body.alerts = alerts
            .iter()
            .map(|(aid, severity)| Alert {
                id: (*aid).into(),
                severity: *severity,
                vendor_severity: severity.as_str().to_uppercase(),
                title: format!("alert {aid}"),
                component: None,
                opened_at: None,
            })
            .collect();
        let mut e = Envelope::new("collector-1", id, body);
        e.observed_at = at;
        self.publish(Kind::Snapshot.subject(id), &e).await;
    }

    /// Waits until `check` holds on the JSON of `path`; the last body.
    async fn until(&self, path: &str, what: &str, check: impl Fn(&Value) -> bool) -> Value {
        let got = wait_for(WAIT, || async {
            let body = self.get(path).await;
            check(&body).then_some(body)
        })
        .await;
        match got {
            Some(body) => body,
            None => panic!("{what}: never true of {path}: {}", self.get(path).await),
        }
    }

    /// The alert item of `alert_id` on fa-1 in the given state.
    async fn alert(&self, alert_id: &str, state: &str) -> Value {
        let list = self
            .get(&format!("/api/v1/alerts?system=fa-1&state={state}"))
            .await;
        list["items"]
            .as_array()
            .and_then(|a| a.iter().find(|i| i["alert_id"] == alert_id).cloned())
            .unwrap_or(Value::Null)
    }

    async fn audit_of(&self, command_id: &str) -> Vec<Value> {
        let mut out = Vec::new();
        let mut url = "/api/v1/audit?limit=1000".to_owned();
        loop {
            let page = self.get(&url).await;
            for item in page["items"].as_array().cloned().unwrap_or_default() {
                if item["command_id"] == command_id {
                    out.push(item);
                }
            }
            match page["next_cursor"].as_str() {
                Some(c) => url = format!("/api/v1/audit?limit=1000&cursor={c}"),
                None => return out,
            }
        }
    }
}

fn count(v: &Value) -> usize {
    v["items"].as_array().map_or(0, Vec::len)
}

async fn operators_act_through_the_bus(backend: Backend) {
    let mut w = World::start(backend).await;
    let t0 = now_ms() - 600_000;
    // Three systems, one of them disabled in the inventory.
    w.system("fa-1", true, t0).await;
    w.system("fa-2", true, t0).await;
    w.system("fa-3", false, t0).await;
    w.snapshot(
        "fa-1",
        t0 + 1000,
        1000 * GIB,
        &[("a1", Severity::Critical), ("a2", Severity::Warning)],
    )
    .await;
    w.snapshot("fa-2", t0 + 1000, 100 * GIB, &[]).await;
    w.snapshot("fa-3", t0 + 1000, 7000 * GIB, &[("x1", Severity::Critical)])
        .await;
    w.until("/api/v1/alerts?system=fa-1", "two open alerts", |b| {
        count(b) == 2
    })
    .await;
    w.until("/api/v1/systems", "three systems", |b| count(b) == 3)
        .await;
    let a1 = w.alert("a1", "open").await;
    let a2 = w.alert("a2", "open").await;
    let (id1, id2) = (
        a1["id"].as_i64().unwrap_or(0),
        a2["id"].as_i64().unwrap_or(0),
    );
    assert_eq!(a1["acknowledged"], false);

    // Acknowledge, assign, comment over HTTP; visible once the writer applied them.
    let ack = w
        .command(
            &format!("/api/v1/alerts/{id1}/acknowledge"),
            ALICE,
            json!({}),
        )
        .await;
    let assign = w
        .command(
            &format!("/api/v1/alerts/{id1}/assign"),
            BOB,
            json!({"assignee": "carol"}),
        )
        .await;
    let comment = w
        .command(
            &format!("/api/v1/alerts/{id1}/comment"),
            ALICE,
            json!({"text": "replacing the controller"}),
        )
        .await;
    let detail = w
        .until(
            &format!("/api/v1/alerts/{id1}"),
            "ack, assignee and comment applied",
            |b| {
                b["acknowledged_by"] == "alice"
                    && b["assignee"] == "carol"
                    && b["comment_count"] == 1
            },
        )
        .await;
    assert_eq!(detail["acknowledged"], true);
    assert_eq!(detail["assigned_by"], "bob");
    assert_eq!(detail["comments"][0]["author"], "alice");
    assert_eq!(detail["comments"][0]["text"], "replacing the controller");
    // The fleet no longer counts the acknowledged alert.
    let systems = w.get("/api/v1/systems").await;
    let fa1 = systems["items"]
        .as_array()
        .and_then(|a| a.iter().find(|s| s["id"] == "fa-1").cloned())
        .unwrap_or_default();
    assert_eq!(fa1["unacknowledged_alerts"], 1, "{fa1}");
    assert_eq!(fa1["acknowledged_alerts"], 1);
    assert_eq!(count(&w.get("/api/v1/alerts?acknowledged=true").await), 1);
    // The audit names each actor.
    for (id, actor, kind) in [
        (&ack[0], "alice", "acknowledge"),
        (&assign[0], "bob", "assign"),
        (&comment[0], "alice", "comment"),
    ] {
        let rows = w.audit_of(id).await;
        assert_eq!(rows.len(), 1, "{rows:?}");
        assert_eq!(rows[0]["actor"], actor);
        assert_eq!(rows[0]["kind"], kind);
        assert_eq!(rows[0]["outcome"], "applied");
        assert_eq!(rows[0]["publisher"], "api-1");
    }
    assert_eq!(
        w.get("/api/v1/assignees").await["items"][0]["name"],
        "carol"
    );

    // The same command twice: within the duplicate window JetStream drops it; beyond it (a new
    // Nats-Msg-Id, same event id) the writer applies it once.
    let record = CommandRecord {
        kind: CommandKind::Comment,
        actor: "bob".into(),
        alert: Some(AlertInstance {
            alert_id: "a1".into(),
            opened_at: a1["first_seen_ms"].as_i64().unwrap_or(0),
        }),
        assignee: None,
        comment: Some("said twice".into()),
    };
    let twice = Envelope::new("api-1", "fa-1", record);
    let payload = encode(&twice).unwrap_or_else(|e| panic!("{e}"));
    let subject = CommandKind::Comment.subject("fa-1");
    assert!(
        !w.publish_with_id(subject.clone(), payload.clone(), &twice.event_id)
            .await
    );
    assert!(
        w.publish_with_id(subject.clone(), payload.clone(), &twice.event_id)
            .await,
        "JetStream takes the same Nats-Msg-Id as a duplicate"
    );
    assert!(
        !w.publish_with_id(subject, payload, &format!("{}-redelivered", twice.event_id))
            .await,
        "as if the duplicate window had passed"
    );
    // A later command, applied after both copies (one stream, in order).
    let marker = w
        .command(
            &format!("/api/v1/alerts/{id2}/comment"),
            ALICE,
            json!({"text": "marker"}),
        )
        .await;
    w.until(
        &format!("/api/v1/alerts/{id2}"),
        "the marker comment",
        |b| b["comment_count"] == 1,
    )
    .await;
    assert_eq!(w.audit_of(&marker[0]).await.len(), 1);
    let detail = w.get(&format!("/api/v1/alerts/{id1}")).await;
    let texts: Vec<&str> = detail["comments"]
        .as_array()
        .map(|a| a.iter().filter_map(|c| c["text"].as_str()).collect())
        .unwrap_or_default();
    assert_eq!(
        texts,
        ["replacing the controller", "said twice"],
        "applied once"
    );
    assert_eq!(w.audit_of(&twice.event_id).await.len(), 1, "audited once");

    // A command sent while the writer is down: 202 now, applied when it starts.
    w.stop_writer().await;
    let late = w
        .command(&format!("/api/v1/alerts/{id2}/acknowledge"), BOB, json!({}))
        .await;
    tokio::time::sleep(Duration::from_secs(1)).await;
    assert_eq!(
        w.get(&format!("/api/v1/alerts/{id2}")).await["acknowledged"],
        false,
        "nobody applied it yet"
    );
    w.start_writer();
    w.until(
        &format!("/api/v1/alerts/{id2}"),
        "the late acknowledgement",
        |b| b["acknowledged_by"] == "bob",
    )
    .await;
    let rows = w.audit_of(&late[0]).await;
    assert_eq!((rows.len(), rows[0]["actor"].clone()), (1, json!("bob")));

    // a1 clears and reopens: the new instance is unacknowledged, unassigned, without comments.
    w.snapshot("fa-1", t0 + 2000, 1000 * GIB, &[("a2", Severity::Warning)])
        .await;
    w.until(
        "/api/v1/alerts?system=fa-1&state=cleared",
        "a1 cleared",
        |b| count(b) == 1,
    )
    .await;
    w.snapshot(
        "fa-1",
        t0 + 3000,
        1000 * GIB,
        &[("a1", Severity::Critical), ("a2", Severity::Warning)],
    )
    .await;
    w.until(
        "/api/v1/alerts?system=fa-1&state=open",
        "a1 reopened",
        |b| count(b) == 2,
    )
    .await;
    let reopened = w.alert("a1", "open").await;
    assert_ne!(reopened["id"], json!(id1), "a new instance");
    assert_eq!(reopened["acknowledged"], false, "{reopened}");
    assert_eq!(reopened["acknowledged_by"], Value::Null);
    assert_eq!(reopened["assignee"], Value::Null);
    assert_eq!(reopened["comment_count"], 0);
    let old = w.get(&format!("/api/v1/alerts/{id1}")).await;
    assert_eq!(
        old["acknowledged_by"], "alice",
        "the cleared instance keeps its history"
    );
    assert_eq!(old["open"], false);
    // Acknowledging the cleared instance is refused by the writer, and audited.
    let refused = w
        .command(
            &format!("/api/v1/alerts/{id1}/acknowledge"),
            ALICE,
            json!({}),
        )
        .await;
    let row = wait_for(WAIT, || async {
        w.audit_of(&refused[0]).await.into_iter().next()
    })
    .await
    .unwrap_or_else(|| panic!("the refused command was not audited"));
    assert_eq!(row["outcome"], "refused");
    assert_eq!(row["reason"], "alert cleared");
    assert_eq!(row["actor"], "alice");
    let systems = w.get("/api/v1/systems").await;
    let fa1 = systems["items"]
        .as_array()
        .and_then(|a| a.iter().find(|s| s["id"] == "fa-1").cloned())
        .unwrap_or_default();
    assert_eq!(
        fa1["unacknowledged_alerts"], 1,
        "reopened a1 counts again, a2 is acknowledged: {fa1}"
    );

    // The disabled system is shown as disabled and left out of every total.
    let fa3 = systems["items"]
        .as_array()
        .and_then(|a| a.iter().find(|s| s["id"] == "fa-3").cloned())
        .unwrap_or_default();
    assert_eq!(fa3["disabled"], true, "{fa3}");
    assert_eq!(
        fa3["unacknowledged_alerts"], 1,
        "its own alert is still shown"
    );
    let status = w.get("/api/v1/status").await;
    assert_eq!(status["systems"]["total"], 2, "{status}");
    assert_eq!(status["systems"]["online"], 2);
    assert_eq!(status["systems_disabled"], 1);
    assert_eq!(
        status["open_alerts"], 1,
        "fa-1's reopened a1 only: {status}"
    );
    assert_eq!(status["acknowledged_alerts"], 1);
    let summary = w.get("/api/v1/capacity/summary").await;
    assert_eq!(
        summary["overall"]["total_bytes"],
        json!(1100 * GIB),
        "{summary}"
    );
    assert_eq!(summary["overall"]["systems"], 2);
    let history = w.get("/api/v1/capacity/history").await;
    let history_text = history.to_string();
    assert!(
        history_text.contains(&(1100 * GIB).to_string())
            && !history_text.contains(&(8100 * GIB).to_string()),
        "the day's total leaves fa-3 out: {history_text}"
    );
    let csv = w.get_text("/api/v1/export/capacity.csv").await;
    assert!(csv.contains("fa-1") && !csv.contains("fa-3"), "{csv}");
    let fleet = w.get_text("/metrics/fleet").await;
    assert!(
        fleet.contains("system=\"fa-1\"") && !fleet.contains("system=\"fa-3\""),
        "{fleet}"
    );
}

const GIB: u64 = 1 << 30;

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn operators_act_through_the_bus_on_sqlite() {
    operators_act_through_the_bus(Backend::Sqlite).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn operators_act_through_the_bus_on_postgres() {
    operators_act_through_the_bus(Backend::Postgres).await;
}
