//! Poll-now end to end (#14): `sdash-sim`, two collectors sharing the fleet, the writer (SQLite),
//! the API with operator tokens, a real nats-server. `POST /api/v1/systems/<id>/poll-now` makes
//! exactly one extra poll, by the collector that owns the system and by no other, and its result
//! (a new `last_poll_at_ms`) shows in `GET /api/v1/systems/<id>` within 2 s: the test measures
//! both. The audit says `dispatched`; a system no live collector owns is audited `no_collector`.
//!
//! The interval is an hour, and the target is a system whose next regular poll is minutes away,
//! so no regular poll can pass for the extra one.

use std::collections::{BTreeMap, HashMap};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use anyhow::anyhow;
use futures::StreamExt;
use sdash_collector::membership::owner;
use sdash_collector::scheduler::next_due;
use sdash_harness::{Backend, wait_for};
use sdash_proto::subjects::Kind;
use sdash_proto::{Envelope, Record, SystemRecord, Vendor};
use sdash_testkit::pipeline::{Pipeline, PipelineOptions};
use sdash_testkit::sim::{Fleet, Mix, SimConfig};
use serde_json::Value;

const TOKEN: &str = "op-token-poll-now-7d1e";
const INTERVAL: Duration = Duration::from_secs(3600);
const SYSTEMS: usize = 8;
/// The Pure simulator's path that every poll reads once.
const POLL_PATH_SUFFIX: &str = "/arrays/space";

fn polls_in_sim(fleet: &Fleet) -> BTreeMap<String, u64> {
    fleet
        .system_ids()
        .into_iter()
        .map(|id| {
            let n = fleet
                .stats(&id)
                .map(|s| {
                    s.requests
                        .iter()
                        .filter(|(p, _)| p.ends_with(POLL_PATH_SUFFIX))
                        .map(|(_, n)| *n)
                        .sum()
                })
                .unwrap_or(0);
            (id, n)
        })
        .collect()
}

async fn get_json(http: &reqwest::Client, url: &str) -> Option<Value> {
    let resp = http.get(url).send().await.ok()?;
    if !resp.status().is_success() {
        return None;
    }
    resp.json().await.ok()
}

async fn poll_now(http: &reqwest::Client, api: &str, system: &str) -> anyhow::Result<String> {
    let resp = http
        .post(format!("{api}/api/v1/systems/{system}/poll-now"))
        .bearer_auth(TOKEN)
        .json(&serde_json::json!({}))
        .send()
        .await?;
    let status = resp.status();
    let body: Value = resp.json().await?;
    anyhow::ensure!(status.as_u16() == 202, "poll-now {system}: {status} {body}");
    body["command_ids"][0]
        .as_str()
        .map(str::to_owned)
        .ok_or_else(|| anyhow!("no command id: {body}"))
}

async fn audit_outcome(http: &reqwest::Client, api: &str, command_id: &str) -> Option<String> {
    let v = get_json(http, &format!("{api}/api/v1/audit?kind=poll_now&limit=100")).await?;
    v["items"]
        .as_array()?
        .iter()
        .find(|i| i["command_id"] == command_id)
        .and_then(|i| i["outcome"].as_str().map(str::to_owned))
}

/// The audited outcome of `command_id`, once the audit shows it (at most 10 s).
async fn audit_outcome_within_10s(
    http: &reqwest::Client,
    api: &str,
    command_id: &str,
) -> Option<String> {
    wait_for(Duration::from_secs(10), || {
        audit_outcome(http, api, command_id)
    })
    .await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn poll_now_polls_once_by_the_owner_and_shows_within_2_s() {
    sdash_testkit::install_crypto_provider();
    if let Err(e) = run(Backend::Sqlite).await {
        panic!("{e:#}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn poll_now_polls_once_by_the_owner_and_shows_within_2_s_on_postgres() {
    sdash_testkit::install_crypto_provider();
    if let Err(e) = run(Backend::Postgres).await {
        panic!("{e:#}");
    }
}

async fn run(backend: Backend) -> anyhow::Result<()> {
    let http = reqwest::Client::builder()
        .timeout(Duration::from_secs(10))
        .build()?;
    let tokens = sdash_api::auth::OperatorTokens::parse(&format!("alice {TOKEN}\n"), None)?;
    let pipeline = Pipeline::start_with_api(
        PipelineOptions {
            backend,
            sim: SimConfig {
                systems: SYSTEMS,
                mix: Mix(vec![(Vendor::Pure, 1)]),
                ..SimConfig::default()
            },
            interval: "1h".into(),
            collectors: 2,
        },
        move |config| config.operator_tokens = Some(tokens),
    )
    .await?;
    let api = pipeline.api_url();
    let names = ["test-collector-0", "test-collector-1"].map(String::from);

    // Snapshots and collector heartbeats as they pass on the bus.
    let client = async_nats::connect(pipeline.nats.url()).await?;
    let mut snapshots = client.subscribe(Kind::Snapshot.wildcard()).await?;
    let mut heartbeats = client.subscribe(Kind::Collector.wildcard()).await?;
    let seen: Arc<Mutex<Vec<(String, String, Instant)>>> = Arc::default();
    let owned: Arc<Mutex<HashMap<String, Vec<String>>>> = Arc::default();
    {
        let seen = seen.clone();
        tokio::spawn(async move {
            while let Some(m) = snapshots.next().await {
                if let Ok(Record::Snapshot(e)) =
                    sdash_proto::codec::decode_record(&m.subject, &m.payload)
                    && let Ok(mut seen) = seen.lock()
                {
                    seen.push((e.system_id, e.collector_id, Instant::now()));
                }
            }
        });
        let owned = owned.clone();
        tokio::spawn(async move {
            while let Some(m) = heartbeats.next().await {
                if let Ok(Record::Collector(e)) =
                    sdash_proto::codec::decode_record(&m.subject, &m.payload)
                    && let Ok(mut owned) = owned.lock()
                {
                    owned.insert(e.collector_id, e.body.systems);
                }
            }
        });
    }

    // Every system online in the API, and the collectors' heartbeats showing them sharing the
    // fleet the way rendezvous hashing over both says.
    let ids = pipeline.fleet.system_ids();
    wait_for(Duration::from_secs(60), || {
        let (http, url) = (
            http.clone(),
            format!("{api}/api/v1/systems?status=online&limit=100"),
        );
        async move {
            let v = get_json(&http, &url).await?;
            (v["items"].as_array()?.len() == SYSTEMS).then_some(())
        }
    })
    .await
    .ok_or_else(|| anyhow!("the systems did not come online through the pipeline"))?;
    wait_for(Duration::from_secs(30), || {
        let (owned, ids, names) = (owned.clone(), ids.clone(), names.clone());
        async move {
            let owned = owned.lock().ok()?;
            ids.iter()
                .all(|id| {
                    let expected = owner(names.iter(), id);
                    names.iter().all(|n| {
                        owned
                            .get(n)
                            .is_some_and(|s| s.contains(id) == (Some(n) == expected))
                    })
                })
                .then_some(())
        }
    })
    .await
    .ok_or_else(|| anyhow!("the two collectors did not settle on sharing the fleet"))?;
    // The start-up polls are over (at most 5 s after the collectors settled).
    tokio::time::sleep(Duration::from_secs(6)).await;

    let now = sdash_proto::now_ms();
    let target = ids
        .iter()
        .find(|id| next_due(now, id, INTERVAL) - now > 180_000)
        .cloned()
        .ok_or_else(|| anyhow!("no system with its regular poll minutes away"))?;
    let target_owner = owner(names.iter(), &target)
        .cloned()
        .ok_or_else(|| anyhow!("no owner"))?;
    let system_url = format!("{api}/api/v1/systems/{target}");
    let before_poll = get_json(&http, &system_url)
        .await
        .and_then(|v| v["last_poll_at_ms"].as_i64())
        .ok_or_else(|| anyhow!("no last poll of {target}"))?;
    let before = polls_in_sim(&pipeline.fleet);

    let sent = Instant::now();
    let command_id = poll_now(&http, &api, &target).await?;
    let accepted = sent.elapsed();
    let shown = wait_for(Duration::from_secs(10), || {
        let (http, url) = (http.clone(), system_url.clone());
        async move {
            let v = get_json(&http, &url).await?;
            (v["last_poll_at_ms"].as_i64()? > before_poll).then(Instant::now)
        }
    })
    .await
    .ok_or_else(|| anyhow!("the extra poll of {target} never showed in the API"))?;
    let took = shown.duration_since(sent);
    let on_bus = seen
        .lock()
        .map_err(|_| anyhow!("lock"))?
        .iter()
        .find(|(s, _, at)| *s == target && *at >= sent)
        .map(|(_, _, at)| at.duration_since(sent));
    eprintln!(
        "poll-now of {target} (owner {target_owner}): 202 after {accepted:?}, snapshot on the bus after {on_bus:?}, in the API after {took:?}"
    );
    anyhow::ensure!(
        took < Duration::from_secs(2),
        "the result shows in the API within 2 s: {took:?}"
    );

    // Exactly one extra poll, by the owner; nothing else polled.
    tokio::time::sleep(Duration::from_secs(3)).await;
    let extra: Vec<(String, String)> = seen
        .lock()
        .map_err(|_| anyhow!("lock"))?
        .iter()
        .filter(|(_, _, at)| *at >= sent)
        .map(|(s, c, _)| (s.clone(), c.clone()))
        .collect();
    anyhow::ensure!(
        extra == vec![(target.clone(), target_owner.clone())],
        "snapshots after the command: {extra:?}"
    );
    let after = polls_in_sim(&pipeline.fleet);
    for (id, n) in &after {
        let expected = before[id] + u64::from(*id == target);
        anyhow::ensure!(*n == expected, "{id}: {n} polls, expected {expected}");
    }
    let outcome = audit_outcome_within_10s(&http, &api, &command_id).await;
    anyhow::ensure!(
        outcome.as_deref() == Some("dispatched"),
        "audit of the poll-now: {outcome:?}"
    );

    // A system that no live collector owns (known to sdash, in no collector's inventory).
    let js = async_nats::jetstream::new(client.clone());
    let orphan = "fa-orphan-01";
    let record = SystemRecord {
        name: "Orphan".into(),
        vendor: Vendor::Pure,
        address: "https://fa-orphan-01.example.net".into(),
        tags: BTreeMap::new(),
        interval_s: 3600,
        enabled: true,
        removed: false,
    };
    let envelope = Envelope::new("poll-now-test", orphan, record);
    let mut headers = async_nats::HeaderMap::new();
    headers.insert("Nats-Msg-Id", envelope.event_id.as_str());
    js.publish_with_headers(
        Kind::System.subject(orphan),
        headers,
        sdash_proto::encode(&envelope)?.into(),
    )
    .await?
    .await?;
    wait_for(Duration::from_secs(20), || {
        let (http, url) = (http.clone(), format!("{api}/api/v1/systems/{orphan}"));
        async move { get_json(&http, &url).await.map(|_| ()) }
    })
    .await
    .ok_or_else(|| anyhow!("the orphan system did not reach the API"))?;
    let sent = Instant::now();
    let orphan_command = poll_now(&http, &api, orphan).await?;
    let outcome = audit_outcome_within_10s(&http, &api, &orphan_command).await;
    anyhow::ensure!(
        outcome.as_deref() == Some("no_collector"),
        "audit of the orphan's poll-now: {outcome:?}"
    );
    let polled: Vec<(String, String)> = seen
        .lock()
        .map_err(|_| anyhow!("lock"))?
        .iter()
        .filter(|(_, _, at)| *at >= sent)
        .map(|(s, c, _)| (s.clone(), c.clone()))
        .collect();
    anyhow::ensure!(polled.is_empty(), "nothing is polled for it: {polled:?}");
    anyhow::ensure!(
        polls_in_sim(&pipeline.fleet) == after,
        "the simulator saw polls"
    );
    pipeline.stop().await;
    Ok(())
}
