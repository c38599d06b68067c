//! Operator commands (#14) at the API, against a real nats-server and both databases: who may
//! act (401/403 on every POST route of the route table), what is published (one JetStream
//! message per command, with the actor, the alert instance and Nats-Msg-Id = the command id),
//! what is refused before anything is published (400, 404, 429), 503 with nothing published
//! when the bus is unavailable, and the state the writer applied as the GET routes show it.

mod common;

use std::time::Duration;

use async_nats::jetstream;
use common::*;
use sdash_api::auth::OperatorTokens;
use sdash_api::routes::{ROUTES, RouteId};
use sdash_harness::{Backend, NatsServer, wait_for};
use sdash_proto::subjects::STREAM;
use sdash_proto::{
    AlertInstance, CommandKind, CommandRecord, Envelope, FLEET_TARGET, Record, Severity, Vendor,
    now_ms,
};
use sdash_service::bus::{NatsArgs, StreamArgs, ensure_stream};
use serde_json::{Value, json};

const READ: &str = "read-token-0123456789";
const ALICE: &str = "alice-token-0123456789abcdef";
const BOB: &str = "bob-token-0123456789abcdef";
const SYSTEM: &str = "fa-prod-01";

fn operators() -> OperatorTokens {
    OperatorTokens::parse(
        &format!("# operators\nalice {ALICE}\nbob {BOB}\n"),
        Some(READ),
    )
    .unwrap_or_else(|e| panic!("{e}"))
}

struct Cmd {
    env: Env,
    nats: NatsServer,
}

impl Cmd {
    /// The API with a read token, two operators and NATS (with the SDASH stream when `stream`).
    async fn start(
        backend: Backend,
        stream: bool,
        tweak: impl FnOnce(&mut sdash_api::Config),
    ) -> Cmd {
        let nats = NatsServer::start();
        if stream {
            let js = js(&nats).await;
            ensure_stream(&js, &StreamArgs::default())
                .await
                .unwrap_or_else(|e| panic!("{e}"));
        }
        let url = nats.url();
        let env = Env::with(backend, |c| {
            c.auth_token = Some(READ.into());
            c.operator_tokens = Some(operators());
            c.nats = Some(NatsArgs::plain(&url));
            c.instance_id = "api-under-test".into();
            tweak(c);
        })
        .await;
        let cmd = Cmd { env, nats };
        cmd.wait_connected(true).await;
        cmd
    }

    async fn wait_connected(&self, want: bool) {
        let ok = wait_for(Duration::from_secs(15), || async {
            let (_, body) = self.env.get("/api/v1/status").await;
            (body["nats_connected"] == want).then_some(())
        })
        .await;
        assert!(ok.is_some(), "nats_connected never became {want}");
    }

    async fn post(
        &self,
        path: &str,
        token: Option<&str>,
        body: Option<Value>,
    ) -> (u16, Value, reqwest::header::HeaderMap) {
        post(&self.env, path, token, body).await
    }

    /// Seeds SYSTEM with two open alerts and returns their ids (a1's first).
    async fn seed(&self) -> (i64, i64) {
        let now = now_ms();
        self.env
            .write(vec![
                system_rec(SYSTEM, "FA", Vendor::Pure, &[], now - 60_000),
                snapshot(
                    SYSTEM,
                    now - 30_000,
                    snapshot_body(
                        Vendor::Pure,
                        GIB,
                        4 * GIB,
                        vec![
                            alert("a1", Severity::Critical, "Controller failed"),
                            alert("a2", Severity::Warning, "Fan degraded"),
                        ],
                    ),
                ),
            ])
            .await;
        let list = self.env.ok("/api/v1/alerts?system=fa-prod-01").await;
        let id_of = |aid: &str| {
            list["items"]
                .as_array()
                .and_then(|a| a.iter().find(|i| i["alert_id"] == aid))
                .and_then(|i| i["id"].as_i64())
                .unwrap_or_else(|| panic!("alert {aid} not listed: {list}"))
        };
        (id_of("a1"), id_of("a2"))
    }
}

async fn js(nats: &NatsServer) -> jetstream::Context {
    let client = async_nats::connect(nats.url())
        .await
        .unwrap_or_else(|e| panic!("connect: {e}"));
    jetstream::new(client)
}

async fn post(
    env: &Env,
    path: &str,
    token: Option<&str>,
    body: Option<Value>,
) -> (u16, Value, reqwest::header::HeaderMap) {
    let mut req = env.http.post(env.url(path));
    if let Some(t) = token {
        req = req.bearer_auth(t);
    }
    if let Some(b) = body {
        req = req.json(&b);
    }
    let resp = req
        .send()
        .await
        .unwrap_or_else(|e| panic!("POST {path}: {e}"));
    let status = resp.status().as_u16();
    let headers = resp.headers().clone();
    let text = resp.text().await.unwrap_or_default();
    let json = serde_json::from_str(&text)
        .unwrap_or_else(|e| panic!("POST {path} -> {status}: not JSON ({e}): {text}"));
    (status, json, headers)
}

/// A path of the route with `{id}` filled in, and a body it accepts.
fn example(route: &sdash_api::routes::RouteSpec, alert: i64) -> (String, Value) {
    let path = if route.id.alert_id_in_path() {
        route.path.replace("{id}", &alert.to_string())
    } else {
        route.path.replace("{id}", SYSTEM)
    };
    let body = match route.id {
        RouteId::Assign => json!({"assignee": "bob"}),
        RouteId::Comment => json!({"text": "looking"}),
        RouteId::BulkAssign => json!({"alerts": [alert], "assignee": "bob"}),
        RouteId::BulkComment => json!({"alerts": [alert], "text": "looking"}),
        RouteId::BulkAcknowledge | RouteId::BulkUnacknowledge | RouteId::BulkUnassign => {
            json!({"alerts": [alert]})
        }
        RouteId::ForgetAssignee => json!({"assignee": "bob"}),
        _ => json!({}),
    };
    (path, body)
}

/// Every command message in the stream: (subject, envelope, Nats-Msg-Id).
async fn commands_in_stream(nats: &NatsServer) -> Vec<(String, Envelope<CommandRecord>, String)> {
    use futures::StreamExt;
    let js = js(nats).await;
    let stream = js
        .get_stream(STREAM)
        .await
        .unwrap_or_else(|e| panic!("stream: {e}"));
    let consumer = stream
        .create_consumer(jetstream::consumer::pull::Config {
            filter_subject: "sdash.v1.command.>".into(),
            deliver_policy: jetstream::consumer::DeliverPolicy::All,
            ack_policy: jetstream::consumer::AckPolicy::None,
            ..Default::default()
        })
        .await
        .unwrap_or_else(|e| panic!("consumer: {e}"));
    let mut out = Vec::new();
    let mut batch = consumer
        .fetch()
        .max_messages(10_000)
        .messages()
        .await
        .unwrap_or_else(|e| panic!("fetch: {e}"));
    while let Some(Ok(msg)) = batch.next().await {
        let subject = msg.subject.to_string();
        let id = msg
            .headers
            .as_ref()
            .and_then(|h| h.get("Nats-Msg-Id"))
            .map(|v| v.to_string())
            .unwrap_or_default();
        match sdash_proto::codec::decode_record(&subject, &msg.payload) {
            Ok(Record::Command(e)) => out.push((subject, e, id)),
            other => panic!("{subject}: not a command: {other:?}"),
        }
    }
    out
}

fn ids(body: &Value) -> Vec<String> {
    body["command_ids"]
        .as_array()
        .map(|a| {
            a.iter()
                .filter_map(|v| v.as_str().map(String::from))
                .collect()
        })
        .unwrap_or_default()
}

/// Every POST route of the route table: 401 without a token or with a wrong one, 403 with the
/// read token, 405 for GET; and an operator token reads like the read token.
async fn every_post_route_checks_the_token(backend: Backend) {
    let cmd = Cmd::start(backend, true, |_| {}).await;
    let (a1, _) = cmd.seed().await;
    let mut checked = 0;
    for route in ROUTES.iter().filter(|r| r.id.is_command()) {
        let (path, body) = example(route, a1);
        for (token, want) in [
            (None, 401),
            (Some("wrong-token-0123456789"), 401),
            (Some(READ), 403),
        ] {
            let (status, error, headers) = cmd.post(&path, token, Some(body.clone())).await;
            assert_eq!(status, want, "POST {path} with {token:?}: {error}");
            assert!(
                error["error"].as_str().is_some_and(|e| !e.is_empty()),
                "{error}"
            );
            if want == 401 {
                assert!(headers.contains_key("www-authenticate"), "POST {path}");
            }
            let text = error.to_string();
            for secret in [READ, ALICE, BOB] {
                assert!(!text.contains(secret), "a token in an error: {text}");
            }
        }
        let (status, _) = cmd.env.get(&path).await;
        assert_eq!(status, 405, "GET {path}");
        checked += 1;
    }
    assert!(checked >= 12, "only {checked} command routes");
    assert_eq!(cmd.env.ok("/api/v1/status").await["commands_enabled"], true);
    assert!(
        commands_in_stream(&cmd.nats).await.is_empty(),
        "a refused request published"
    );
    // An operator token reads (the dashboard keeps one token).
    let resp = cmd
        .env
        .http
        .get(cmd.env.url("/api/v1/alerts"))
        .bearer_auth(ALICE)
        .send()
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(resp.status().as_u16(), 200);
    let resp = cmd
        .env
        .http
        .get(cmd.env.url("/api/v1/alerts"))
        .send()
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(resp.status().as_u16(), 401, "reads still need a token");
}
both!(every_post_route_checks_the_token);

/// Without --operator-tokens-file every POST route answers 403 "commands are disabled".
async fn commands_are_disabled_without_operator_tokens(backend: Backend) {
    let cmd = Cmd::start(backend, true, |c| c.operator_tokens = None).await;
    let (a1, _) = cmd.seed().await;
    for route in ROUTES.iter().filter(|r| r.id.is_command()) {
        let (path, body) = example(route, a1);
        for token in [None, Some(READ), Some(ALICE)] {
            let (status, error, _) = cmd.post(&path, token, Some(body.clone())).await;
            assert_eq!(status, 403, "POST {path}: {error}");
            assert!(
                error["error"]
                    .as_str()
                    .is_some_and(|e| e.contains("commands are disabled")),
                "{error}"
            );
        }
    }
    assert!(commands_in_stream(&cmd.nats).await.is_empty());
    assert_eq!(
        cmd.env.ok("/api/v1/status").await["commands_enabled"],
        false
    );
}
both!(commands_are_disabled_without_operator_tokens);

/// What one published command should be: target system, kind, actor, alert instance.
type Expected = (
    String,
    CommandKind,
    &'static str,
    Option<(&'static str, i64)>,
);

/// Each command route publishes its command once JetStream acknowledged it: the actor is the
/// token's name, the target the alert instance, the id the Nats-Msg-Id.
async fn commands_are_published_with_actor_and_instance(backend: Backend) {
    let cmd = Cmd::start(backend, true, |_| {}).await;
    let (a1, a2) = cmd.seed().await;
    let env = &cmd.env;
    let first_seen = async |id: i64| {
        let body = env.ok(&format!("/api/v1/alerts/{id}")).await;
        body["first_seen_ms"].as_i64().unwrap_or_default()
    };
    let (f1, f2) = (first_seen(a1).await, first_seen(a2).await);
    let mut expected: Vec<Expected> = Vec::new();
    let accept = async |path: String, token: &str, body: Value, n: usize| {
        let (status, reply, headers) = cmd.post(&path, Some(token), Some(body)).await;
        assert_eq!(status, 202, "POST {path}: {reply}");
        assert_eq!(
            headers.get("cache-control").and_then(|v| v.to_str().ok()),
            Some("no-store")
        );
        let got = ids(&reply);
        assert_eq!(got.len(), n, "{reply}");
        got
    };
    let mut all: Vec<String> = Vec::new();
    for (route, kind) in [
        ("acknowledge", CommandKind::Acknowledge),
        ("unacknowledge", CommandKind::Unacknowledge),
        ("unassign", CommandKind::Unassign),
    ] {
        all.extend(accept(format!("/api/v1/alerts/{a1}/{route}"), ALICE, json!({}), 1).await);
        expected.push((SYSTEM.into(), kind, "alice", Some(("a1", f1))));
    }
    // No body at all is the same as {}.
    let resp = cmd
        .env
        .http
        .post(cmd.env.url(&format!("/api/v1/alerts/{a2}/acknowledge")))
        .bearer_auth(BOB)
        .send()
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(resp.status().as_u16(), 202);
    let body: Value = resp.json().await.unwrap_or_default();
    all.extend(ids(&body));
    expected.push((
        SYSTEM.into(),
        CommandKind::Acknowledge,
        "bob",
        Some(("a2", f2)),
    ));
    let on = |kind, actor, alert| -> Expected { (SYSTEM.into(), kind, actor, alert) };
    // Each request, and the commands it publishes, in order.
    let steps: Vec<(String, &str, Value, Vec<Expected>)> = vec![
        (
            format!("/api/v1/alerts/{a1}/assign"),
            BOB,
            json!({"assignee": " carol "}),
            vec![on(CommandKind::Assign, "bob", Some(("a1", f1)))],
        ),
        (
            format!("/api/v1/alerts/{a1}/comment"),
            ALICE,
            json!({"text": "on it"}),
            vec![on(CommandKind::Comment, "alice", Some(("a1", f1)))],
        ),
        // Bulk: one command per alert, in the request's order.
        (
            "/api/v1/alerts/bulk/acknowledge".into(),
            ALICE,
            json!({"alerts": [a2, a1]}),
            vec![
                on(CommandKind::Acknowledge, "alice", Some(("a2", f2))),
                on(CommandKind::Acknowledge, "alice", Some(("a1", f1))),
            ],
        ),
        (
            "/api/v1/alerts/bulk/comment".into(),
            BOB,
            json!({"alerts": [a1, a2], "text": "batch"}),
            vec![
                on(CommandKind::Comment, "bob", Some(("a1", f1))),
                on(CommandKind::Comment, "bob", Some(("a2", f2))),
            ],
        ),
        (
            "/api/v1/alerts/bulk/assign".into(),
            BOB,
            json!({"alerts": [a2], "assignee": "dave"}),
            vec![on(CommandKind::Assign, "bob", Some(("a2", f2)))],
        ),
        (
            "/api/v1/alerts/bulk/unassign".into(),
            BOB,
            json!({"alerts": [a2]}),
            vec![on(CommandKind::Unassign, "bob", Some(("a2", f2)))],
        ),
        (
            "/api/v1/alerts/bulk/unacknowledge".into(),
            BOB,
            json!({"alerts": [a2]}),
            vec![on(CommandKind::Unacknowledge, "bob", Some(("a2", f2)))],
        ),
        (
            format!("/api/v1/systems/{SYSTEM}/poll-now"),
            ALICE,
            json!({}),
            vec![on(CommandKind::PollNow, "alice", None)],
        ),
        (
            "/api/v1/assignees/forget".into(),
            ALICE,
            json!({"assignee": "dave"}),
            vec![(
                FLEET_TARGET.into(),
                CommandKind::ForgetAssignee,
                "alice",
                None,
            )],
        ),
    ];
    for (path, token, body, commands) in steps {
        all.extend(accept(path, token, body, commands.len()).await);
        expected.extend(commands);
    }

    let published = commands_in_stream(&cmd.nats).await;
    assert_eq!(published.len(), expected.len(), "one message per command");
    for (((subject, env, msg_id), id), (system, kind, actor, instance)) in
        published.iter().zip(&all).zip(&expected)
    {
        assert_eq!(&env.event_id, id, "the answer's id is the command's");
        assert_eq!(msg_id, id, "Nats-Msg-Id = the command id");
        assert_eq!(subject, &kind.subject(system));
        assert_eq!(&env.system_id, system);
        assert_eq!(env.collector_id, "api-under-test");
        assert_eq!(env.body.kind, *kind);
        assert_eq!(env.body.actor, *actor);
        assert_eq!(
            env.body.alert,
            instance.map(|(alert_id, opened_at)| AlertInstance {
                alert_id: alert_id.into(),
                opened_at,
            })
        );
        assert!((now_ms() - env.observed_at).abs() < 60_000);
        assert_eq!(id.len(), 36, "a UUID");
    }
    let assign = &published[4].1.body;
    assert_eq!(assign.assignee.as_deref(), Some("carol"), "trimmed");
    assert_eq!(published[5].1.body.comment.as_deref(), Some("on it"));
    assert_eq!(published[8].1.body.comment.as_deref(), Some("batch"));
    assert_eq!(published[14].1.body.assignee.as_deref(), Some("dave"));
}
both!(commands_are_published_with_actor_and_instance);

/// 400 and 404 are answered before anything is published; poll-now is rate-limited per system
/// with 429 and Retry-After.
async fn bad_requests_publish_nothing(backend: Backend) {
    let cmd = Cmd::start(backend, true, |c| {
        c.poll_now_min_interval = Duration::from_secs(30)
    })
    .await;
    let (a1, a2) = cmd.seed().await;
    let long = "x".repeat(4001);
    let cases: Vec<(String, Value, u16)> = vec![
        (format!("/api/v1/alerts/{a1}/assign"), json!({}), 400),
        (
            format!("/api/v1/alerts/{a1}/assign"),
            json!({"assignee": "  "}),
            400,
        ),
        (
            format!("/api/v1/alerts/{a1}/comment"),
            json!({"text": ""}),
            400,
        ),
        (
            format!("/api/v1/alerts/{a1}/comment"),
            json!({"text": long}),
            400,
        ),
        (
            format!("/api/v1/alerts/{a1}/acknowledge"),
            json!({"extra": 1}),
            400,
        ),
        (
            format!("/api/v1/alerts/{a1}/acknowledge"),
            json!("not an object"),
            400,
        ),
        ("/api/v1/alerts/abc/acknowledge".into(), json!({}), 400),
        ("/api/v1/alerts/0/acknowledge".into(), json!({}), 400),
        (
            "/api/v1/alerts/bulk/acknowledge".into(),
            json!({"alerts": []}),
            400,
        ),
        (
            "/api/v1/alerts/bulk/acknowledge".into(),
            json!({"alerts": [a1, a1]}),
            400,
        ),
        (
            "/api/v1/alerts/bulk/acknowledge".into(),
            json!({"alerts": [a1], "text": "x"}),
            400,
        ),
        (
            "/api/v1/alerts/bulk/assign".into(),
            json!({"alerts": [a1]}),
            400,
        ),
        (
            "/api/v1/alerts/bulk/comment".into(),
            json!({"alerts": [a1], "text": " "}),
            400,
        ),
        (
            "/api/v1/alerts/bulk/acknowledge".into(),
            json!({"alerts": (1..=1001).collect::<Vec<i64>>()}),
            400,
        ),
        (
            "/api/v1/assignees/forget".into(),
            json!({"assignee": ""}),
            400,
        ),
        ("/api/v1/systems/BAD!/poll-now".into(), json!({}), 400),
        ("/api/v1/alerts/999999/acknowledge".into(), json!({}), 404),
        // One unknown id among known ones: nothing is published, not even the known ones.
        (
            "/api/v1/alerts/bulk/acknowledge".into(),
            json!({"alerts": [a1, 999998, a2]}),
            404,
        ),
        (
            "/api/v1/systems/no-such-system/poll-now".into(),
            json!({}),
            404,
        ),
    ];
    for (path, body, want) in cases {
        let (status, error, _) = cmd.post(&path, Some(ALICE), Some(body.clone())).await;
        assert_eq!(status, want, "POST {path} {body}: {error}");
        assert!(error["error"].is_string(), "{error}");
        if path.contains("999998") {
            assert!(
                error["error"]
                    .as_str()
                    .is_some_and(|e| e.contains("999998")),
                "{error}"
            );
        }
    }
    // A body larger than 64 KiB.
    let resp = cmd
        .env
        .http
        .post(cmd.env.url(&format!("/api/v1/alerts/{a1}/comment")))
        .bearer_auth(ALICE)
        .body(format!("{{\"text\":\"{}\"}}", "y".repeat(70_000)))
        .send()
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(resp.status().as_u16(), 400);
    assert!(
        commands_in_stream(&cmd.nats).await.is_empty(),
        "a refused request published"
    );

    // Poll-now: once per 30 s per system.
    let poll = format!("/api/v1/systems/{SYSTEM}/poll-now");
    let (status, _, _) = cmd.post(&poll, Some(ALICE), None).await;
    assert_eq!(status, 202);
    let (status, error, headers) = cmd.post(&poll, Some(BOB), None).await;
    assert_eq!(status, 429, "{error}");
    assert!(
        error["error"].as_str().is_some_and(|e| e.contains("poll")),
        "{error}"
    );
    let retry: u64 = headers
        .get("retry-after")
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse().ok())
        .unwrap_or_default();
    assert!((1..=30).contains(&retry), "Retry-After {retry}");
    let polls = commands_in_stream(&cmd.nats)
        .await
        .into_iter()
        .filter(|(_, e, _)| e.body.kind == CommandKind::PollNow)
        .count();
    assert_eq!(polls, 1, "the limited request published nothing");
}
both!(bad_requests_publish_nothing);

/// With NATS stopped the API answers 503 with a clear error and nothing reaches the stream,
/// then recovers; without the SDASH stream (no PubAck) it answers 503 too.
async fn bus_unavailable_is_503_and_nothing_is_published(backend: Backend) {
    let mut cmd = Cmd::start(backend, true, |c| {
        c.command_publish_timeout = Duration::from_secs(2)
    })
    .await;
    let (a1, a2) = cmd.seed().await;
    cmd.nats.kill();
    cmd.wait_connected(false).await;
    for (path, body) in [
        (format!("/api/v1/alerts/{a1}/acknowledge"), json!({})),
        (
            "/api/v1/alerts/bulk/comment".into(),
            json!({"alerts": [a1, a2], "text": "x"}),
        ),
        (format!("/api/v1/systems/{SYSTEM}/poll-now"), json!({})),
    ] {
        let started = std::time::Instant::now();
        let (status, error, headers) = cmd.post(&path, Some(ALICE), Some(body)).await;
        assert_eq!(status, 503, "POST {path}: {error}");
        assert!(started.elapsed() < Duration::from_secs(5));
        assert!(
            error["error"]
                .as_str()
                .is_some_and(|e| e.contains("nothing was published")),
            "{error}"
        );
        assert_eq!(error["command_ids"], json!([]), "{error}");
        assert!(headers.contains_key("retry-after"));
    }
    cmd.nats.restart();
    cmd.wait_connected(true).await;
    // Nothing was queued and sent on reconnect.
    tokio::time::sleep(Duration::from_millis(500)).await;
    assert!(
        commands_in_stream(&cmd.nats).await.is_empty(),
        "a 503 published"
    );
    // The poll-now refused with 503 did not use up the system's slot.
    let (status, reply, _) = cmd
        .post(
            &format!("/api/v1/systems/{SYSTEM}/poll-now"),
            Some(ALICE),
            None,
        )
        .await;
    assert_eq!(status, 202, "{reply}");
    assert_eq!(commands_in_stream(&cmd.nats).await.len(), 1);
    let (_, metrics) = cmd.env.get_text("/metrics").await;
    assert!(
        metrics.contains("sdash_api_commands_unavailable_total 3"),
        "{metrics}"
    );
    assert!(
        metrics.contains("sdash_api_commands_published_total 1"),
        "{metrics}"
    );

    // NATS up, but no stream takes the subject: no acknowledgement, 503.
    let cmd = Cmd::start(backend, false, |c| {
        c.command_publish_timeout = Duration::from_secs(1)
    })
    .await;
    let (a1, _) = cmd.seed().await;
    let (status, error, _) = cmd
        .post(
            &format!("/api/v1/alerts/{a1}/acknowledge"),
            Some(ALICE),
            None,
        )
        .await;
    assert_eq!(status, 503, "{error}");
    assert_eq!(error["command_ids"], json!([]));
}
both!(bus_unavailable_is_503_and_nothing_is_published);

fn command(system: &str, at: i64, body: CommandRecord) -> (String, Vec<u8>) {
    let subject = body.kind.subject(system);
    let mut env = Envelope::new("api-under-test", system, body);
    env.observed_at = at;
    (
        subject,
        sdash_proto::encode(&env).unwrap_or_else(|e| panic!("{e}")),
    )
}

fn rec(kind: CommandKind, actor: &str, alert: Option<(&str, i64)>) -> CommandRecord {
    CommandRecord {
        kind,
        actor: actor.into(),
        alert: alert.map(|(alert_id, opened_at)| AlertInstance {
            alert_id: alert_id.into(),
            opened_at,
        }),
        assignee: None,
        comment: None,
    }
}

/// The GET routes show what the writer applied: acknowledgement, assignee and comments on each
/// alert, the acknowledged filter, the thread, the assignees, the audit (paged, filtered), and
/// the fleet's counts without the acknowledged alerts.
async fn applied_state_is_visible(backend: Backend) {
    let env = Env::with(backend, |c| c.auth_token = None).await;
    let now = now_ms();
    env.write(vec![
        system_rec(SYSTEM, "FA", Vendor::Pure, &[], now - 60_000),
        snapshot(
            SYSTEM,
            now - 50_000,
            snapshot_body(
                Vendor::Pure,
                GIB,
                4 * GIB,
                vec![
                    alert("a1", Severity::Critical, "Controller failed"),
                    alert("a2", Severity::Warning, "Fan degraded"),
                ],
            ),
        ),
    ])
    .await;
    let list = env.ok("/api/v1/alerts").await;
    let item = |aid: &str| -> Value {
        list["items"]
            .as_array()
            .and_then(|a| a.iter().find(|i| i["alert_id"] == aid).cloned())
            .unwrap_or_default()
    };
    let (a1, a2) = (item("a1"), item("a2"));
    let f1 = a1["first_seen_ms"].as_i64().unwrap_or_default();
    let id1 = a1["id"].as_i64().unwrap_or_default();
    assert_eq!(a1["acknowledged"], false);
    assert_eq!(a1["comment_count"], 0);
    let system = env.ok("/api/v1/systems").await;
    assert_eq!(system["items"][0]["unacknowledged_alerts"], 2, "{system}");
    assert_eq!(system["items"][0]["acknowledged_alerts"], 0);

    let mut assign = rec(CommandKind::Assign, "bob", Some(("a1", f1)));
    assign.assignee = Some("carol".into());
    let mut comment = rec(CommandKind::Comment, "alice", Some(("a1", f1)));
    comment.comment = Some("first".into());
    let mut second = rec(CommandKind::Comment, "bob", Some(("a1", f1)));
    second.comment = Some("second".into());
    env.write(vec![
        command(
            SYSTEM,
            now - 40_000,
            rec(CommandKind::Acknowledge, "alice", Some(("a1", f1))),
        ),
        command(SYSTEM, now - 39_000, assign),
        command(SYSTEM, now - 38_000, comment),
        command(SYSTEM, now - 37_000, second),
        // Refused and audited: unknown instance.
        command(
            SYSTEM,
            now - 36_000,
            rec(CommandKind::Acknowledge, "bob", Some(("a1", f1 + 1))),
        ),
    ])
    .await;
    let detail = env.ok(&format!("/api/v1/alerts/{id1}")).await;
    assert_eq!(detail["acknowledged"], true, "{detail}");
    assert_eq!(detail["acknowledged_by"], "alice");
    assert_eq!(detail["acknowledged_at_ms"], now - 40_000);
    assert!(detail["acknowledged_at"].is_string());
    assert_eq!(detail["assignee"], "carol");
    assert_eq!(detail["assigned_by"], "bob");
    assert_eq!(detail["assigned_at_ms"], now - 39_000);
    assert_eq!(detail["comment_count"], 2);
    assert_eq!(detail["system_name"], "FA");
    let thread: Vec<(String, String, i64)> = detail["comments"]
        .as_array()
        .map(|a| {
            a.iter()
                .map(|c| {
                    (
                        c["author"].as_str().unwrap_or_default().to_owned(),
                        c["text"].as_str().unwrap_or_default().to_owned(),
                        c["at_ms"].as_i64().unwrap_or_default(),
                    )
                })
                .collect()
        })
        .unwrap_or_default();
    assert_eq!(
        thread,
        [
            ("alice".to_owned(), "first".to_owned(), now - 38_000),
            ("bob".to_owned(), "second".to_owned(), now - 37_000)
        ]
    );
    let (status, _) = env.get("/api/v1/alerts/999999").await;
    assert_eq!(status, 404);
    let (status, _) = env.get("/api/v1/alerts/nope").await;
    assert_eq!(status, 400);

    // The list carries the state, and filters by it.
    let acked = env.ok("/api/v1/alerts?acknowledged=true").await;
    let names: Vec<&str> = acked["items"]
        .as_array()
        .map(|a| a.iter().filter_map(|i| i["alert_id"].as_str()).collect())
        .unwrap_or_default();
    assert_eq!(names, ["a1"]);
    assert_eq!(acked["items"][0]["comment_count"], 2);
    let unacked = env.ok("/api/v1/alerts?acknowledged=false").await;
    assert_eq!(unacked["items"].as_array().map(Vec::len), Some(1));
    assert_eq!(unacked["items"][0]["alert_id"], a2["alert_id"]);
    assert_eq!(
        env.ok("/api/v1/alerts").await["items"]
            .as_array()
            .map(Vec::len),
        Some(2)
    );
    let (status, _) = env.get("/api/v1/alerts?acknowledged=maybe").await;
    assert_eq!(status, 400);

    // The fleet: the acknowledged alert no longer counts.
    let systems = env.ok("/api/v1/systems").await;
    assert_eq!(systems["items"][0]["unacknowledged_alerts"], 1, "{systems}");
    assert_eq!(systems["items"][0]["acknowledged_alerts"], 1);
    assert_eq!(
        systems["items"][0]["alert_count"], 2,
        "what the array reports"
    );
    let detail = env.ok(&format!("/api/v1/systems/{SYSTEM}")).await;
    assert_eq!(detail["unacknowledged_alerts"], 1);
    assert_eq!(detail["acknowledged_alerts"], 1);
    let open: Vec<bool> = detail["open_alerts"]
        .as_array()
        .map(|a| a.iter().map(|x| x["acknowledged"] == true).collect())
        .unwrap_or_default();
    assert_eq!(open.iter().filter(|a| **a).count(), 1, "{detail}");
    let status = env.ok("/api/v1/status").await;
    assert_eq!(status["open_alerts"], 1);
    assert_eq!(status["acknowledged_alerts"], 1);
    let (_, fleet) = env.get_text("/metrics/fleet").await;
    assert!(
        fleet.contains(&format!(
            "sdash_system_alerts_open{{system=\"{SYSTEM}\",vendor=\"pure\",severity=\"critical\"}} 0"
        )),
        "{fleet}"
    );
    assert!(fleet.contains(&format!(
        "sdash_system_alerts_open{{system=\"{SYSTEM}\",vendor=\"pure\",severity=\"warning\"}} 1"
    )));

    // Assignees, and forgetting one.
    assert_eq!(
        env.ok("/api/v1/assignees").await["items"][0]["name"],
        "carol"
    );
    let mut remember = rec(CommandKind::RememberAssignee, "import", None);
    remember.assignee = Some("erin".into());
    env.write(vec![command(FLEET_TARGET, now - 30_000, remember)])
        .await;
    let names = |v: Value| -> Vec<String> {
        v["items"]
            .as_array()
            .map(|a| {
                a.iter()
                    .filter_map(|i| i["name"].as_str().map(String::from))
                    .collect()
            })
            .unwrap_or_default()
    };
    assert_eq!(names(env.ok("/api/v1/assignees").await), ["erin", "carol"]);
    let mut forget = rec(CommandKind::ForgetAssignee, "alice", None);
    forget.assignee = Some("carol".into());
    env.write(vec![command(FLEET_TARGET, now - 20_000, forget)])
        .await;
    assert_eq!(names(env.ok("/api/v1/assignees").await), ["erin"]);
    assert_eq!(
        env.ok(&format!("/api/v1/alerts/{id1}")).await["assignee"],
        "carol",
        "assignments stay"
    );

    // The audit: every command, newest first, paged and filtered.
    let audit = env.ok("/api/v1/audit").await;
    let items = audit["items"].as_array().cloned().unwrap_or_default();
    assert_eq!(items.len(), 7, "{audit}");
    let recorded: Vec<i64> = items
        .iter()
        .filter_map(|i| i["recorded_at_ms"].as_i64())
        .collect();
    assert!(
        recorded.windows(2).all(|w| w[0] >= w[1]),
        "newest first: {recorded:?}"
    );
    let refused: Vec<&Value> = items.iter().filter(|i| i["outcome"] == "refused").collect();
    assert_eq!(refused.len(), 1, "{audit}");
    assert_eq!(refused[0]["reason"], "unknown alert");
    assert_eq!(refused[0]["actor"], "bob");
    assert!(items.iter().all(|i| i["publisher"] == "api-under-test"));
    let by_alice = env.ok("/api/v1/audit?actor=alice").await;
    assert_eq!(by_alice["items"].as_array().map(Vec::len), Some(3));
    let comments = env.ok("/api/v1/audit?kind=comment&system=fa-prod-01").await;
    assert_eq!(comments["items"].as_array().map(Vec::len), Some(2));
    assert!(comments["items"][0]["comment"].is_string());
    assert_eq!(comments["items"][0]["alert_opened_at_ms"], f1);
    let fleet_cmds = env.ok("/api/v1/audit?system=_fleet").await;
    assert_eq!(fleet_cmds["items"].as_array().map(Vec::len), Some(2));
    let refused = env.ok("/api/v1/audit?outcome=refused").await;
    assert_eq!(refused["items"].as_array().map(Vec::len), Some(1));
    // Paging: 7 commands in pages of 3, no repeats.
    let mut seen = Vec::new();
    let mut url = "/api/v1/audit?limit=3".to_owned();
    loop {
        let page = env.ok(&url).await;
        for i in page["items"].as_array().cloned().unwrap_or_default() {
            seen.push(i["command_id"].as_str().unwrap_or_default().to_owned());
        }
        match page["next_cursor"].as_str() {
            Some(c) => url = format!("/api/v1/audit?limit=3&cursor={c}"),
            None => break,
        }
    }
    let mut unique = seen.clone();
    unique.sort();
    unique.dedup();
    assert_eq!((seen.len(), unique.len()), (7, 7));
    let (status, _) = env.get("/api/v1/audit?kind=nonsense").await;
    assert_eq!(status, 400);
}
both!(applied_state_is_visible);

/// A disabled system is shown as disabled and left out of the status counts, the open alert
/// totals and the fleet metrics.
async fn disabled_systems_are_left_out_of_totals(backend: Backend) {
    let env = Env::new(backend).await;
    let now = now_ms();
    let mut disabled = system_rec("off-1", "Off", Vendor::Pure, &[], now - 1000);
    {
        // Re-encode with enabled = false.
        let Ok(Record::System(mut e)) = sdash_proto::codec::decode_record(&disabled.0, &disabled.1)
        else {
            panic!("system record");
        };
        e.body.enabled = false;
        disabled.1 = sdash_proto::encode(&e).unwrap_or_else(|e| panic!("{e}"));
    }
    env.write(vec![
        system_rec("on-1", "On 1", Vendor::Pure, &[], now - 1000),
        system_rec("on-2", "On 2", Vendor::Ontap, &[], now - 1000),
        disabled,
        snapshot(
            "on-1",
            now - 500,
            snapshot_body(
                Vendor::Pure,
                GIB,
                4 * GIB,
                vec![alert("x", Severity::Critical, "x")],
            ),
        ),
        simple_snapshot("on-2", now - 500, Vendor::Ontap, GIB, 2 * GIB),
        snapshot(
            "off-1",
            now - 500,
            snapshot_body(
                Vendor::Pure,
                5 * GIB,
                10 * GIB,
                vec![alert("y", Severity::Critical, "y")],
            ),
        ),
    ])
    .await;
    let list = env.ok("/api/v1/systems").await;
    let disabled_flags: Vec<(String, bool)> = list["items"]
        .as_array()
        .map(|a| {
            a.iter()
                .map(|i| {
                    (
                        i["id"].as_str().unwrap_or_default().to_owned(),
                        i["disabled"].as_bool().unwrap_or(false),
                    )
                })
                .collect()
        })
        .unwrap_or_default();
    assert_eq!(
        disabled_flags,
        [
            ("off-1".into(), true),
            ("on-1".into(), false),
            ("on-2".into(), false)
        ],
        "still listed, shown as disabled"
    );
    let status = env.ok("/api/v1/status").await;
    assert_eq!(status["systems"]["total"], 2, "{status}");
    assert_eq!(status["systems"]["online"], 2);
    assert_eq!(status["systems_disabled"], 1);
    assert_eq!(
        status["open_alerts"], 1,
        "the disabled system's alert is not counted"
    );
    let summary = env.ok("/api/v1/capacity/summary").await;
    assert_eq!(
        summary["overall"]["total_bytes"],
        json!(6 * GIB),
        "{summary}"
    );
    let (_, fleet) = env.get_text("/metrics/fleet").await;
    assert!(fleet.contains("system=\"on-1\""));
    assert!(!fleet.contains("system=\"off-1\""), "{fleet}");
}
both!(disabled_systems_are_left_out_of_totals);

/// A bulk request whose publishing fails midway names the commands JetStream took: a stream
/// that holds one more message only (discard new) takes the first command and refuses the
/// second.
async fn a_bulk_request_failing_midway_names_what_was_accepted(backend: Backend) {
    let cmd = Cmd::start(backend, false, |_| {}).await;
    let js = js(&cmd.nats).await;
    let mut config = sdash_service::bus::stream_config(&StreamArgs::default());
    config.max_messages = 1;
    config.discard = jetstream::stream::DiscardPolicy::New;
    js.create_stream(config)
        .await
        .unwrap_or_else(|e| panic!("stream: {e}"));
    let (a1, a2) = cmd.seed().await;
    let (status, error, _) = cmd
        .post(
            "/api/v1/alerts/bulk/acknowledge",
            Some(ALICE),
            Some(json!({"alerts": [a1, a2]})),
        )
        .await;
    assert_eq!(status, 503, "{error}");
    let accepted = ids(&error);
    assert_eq!(accepted.len(), 1, "{error}");
    assert!(
        error["error"]
            .as_str()
            .is_some_and(|e| e.contains("1 of 2")),
        "{error}"
    );
    let published = commands_in_stream(&cmd.nats).await;
    assert_eq!(published.len(), 1);
    assert_eq!(
        published[0].1.event_id, accepted[0],
        "the one named is the one stored"
    );
    assert_eq!(
        published[0]
            .1
            .body
            .alert
            .as_ref()
            .map(|a| a.alert_id.as_str()),
        Some("a1"),
        "in the request's order"
    );
}
both!(a_bulk_request_failing_midway_names_what_was_accepted);
