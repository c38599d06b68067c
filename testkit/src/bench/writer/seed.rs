//! seed-scenario: many producers publish events at once, each awaiting its PubAck and retrying
//! with the same `Nats-Msg-Id`; the writer must store every acknowledged event exactly once.

use std::collections::HashSet;
use std::time::{Duration, Instant};

use async_nats::jetstream;
use sdash_harness::{Backend, NatsServer, TestDatabase};
use sdash_proto::subjects::Kind;
use sdash_proto::*;
use sqlx::{Connection, Row as _};

use super::super::{Options, Report, Row, http_client};
use super::{RunningWriter, event_envelope};

/// One producer of the seed scenario: its own connection and system id; publishes `m` events
/// one at a time, each with `Nats-Msg-Id`, awaiting the PubAck and retrying with the same id.
async fn producer(url: String, p: usize, m: usize) -> anyhow::Result<(Vec<String>, u64, u64)> {
    let client = async_nats::connect(&url).await?;
    let js = jetstream::new(client.clone());
    let system = format!("seed-{p:04}");
    let subject = Kind::Event.subject(&system);
    let mut acked = Vec::with_capacity(m);
    let (mut retries, mut duplicates) = (0u64, 0u64);
    for i in 0..m {
        let id = format!("seed-{p:04}-{i:06}");
        let env = event_envelope(&system, id.clone(), now_ms(), i);
        let payload: bytes::Bytes = encode(&env)?.into();
        let mut attempt = 0;
        loop {
            let mut headers = async_nats::HeaderMap::new();
            headers.insert("Nats-Msg-Id", id.as_str());
            let result = async {
                js.publish_with_headers(subject.clone(), headers, payload.clone())
                    .await?
                    .await
                    .map_err(anyhow::Error::from)
            }
            .await;
            match result {
                Ok(ack) => {
                    duplicates += u64::from(ack.duplicate);
                    acked.push(id);
                    break;
                }
                Err(e) if attempt < 50 => {
                    attempt += 1;
                    retries += 1;
                    tracing::debug!(error = %e, "publish retry");
                    tokio::time::sleep(Duration::from_millis(100)).await;
                }
                Err(e) => return Err(e.context(format!("producer {p}: event {id}"))),
            }
        }
    }
    client.flush().await?;
    Ok((acked, retries, duplicates))
}

pub(crate) async fn seed(options: &Options, report: &mut Report) -> anyhow::Result<()> {
    let client = http_client()?;
    for producers in [32usize, 320] {
        let per = match (options.quick, producers) {
            (true, 32) => 20,
            (true, _) => 3,
            (false, 32) => 1000,
            (false, _) => 100,
        };
        let case = format!("{producers} producers x {per} events, sqlite");
        println!("-- {case}");
        let nats = NatsServer::start();
        super::jetstream(&nats.url()).await?;
        let db = TestDatabase::new(Backend::Sqlite).await;
        let writer = RunningWriter::start(&nats.url(), &db.url);
        // Wait until the writer is up (admin server answers) before timing.
        let up = sdash_harness::wait_for(Duration::from_secs(30), || async {
            writer.metric(&client, "sdash_writer_messages_total").await
        })
        .await;
        anyhow::ensure!(up.is_some(), "the writer did not start");

        let started = Instant::now();
        let tasks: Vec<_> = (0..producers)
            .map(|p| tokio::spawn(producer(nats.url(), p, per)))
            .collect();
        let mut acked: Vec<String> = Vec::with_capacity(producers * per);
        let (mut retries, mut duplicates) = (0u64, 0u64);
        for t in tasks {
            let (ids, r, d) = t.await??;
            acked.extend(ids);
            retries += r;
            duplicates += d;
        }
        let publish_secs = started.elapsed().as_secs_f64();
        writer
            .wait_messages(&client, acked.len() as u64, Duration::from_secs(600))
            .await?;
        let secs = started.elapsed().as_secs_f64();
        let lock_errors = writer
            .metric_or_zero(&client, "sdash_writer_retries_total")
            .await;
        let dropped = writer
            .metric_or_zero(&client, "sdash_writer_dropped_total")
            .await;
        let dead = writer
            .metric_or_zero(&client, "sdash_writer_dead_letters_total")
            .await;
        let messages = writer
            .metric_or_zero(&client, "sdash_writer_messages_total")
            .await;
        writer.stop().await?;

        let mut c = sqlx::SqliteConnection::connect(&db.url).await?;
        let ids: Vec<String> = sqlx::query("SELECT event_id FROM events")
            .fetch_all(&mut c)
            .await?
            .iter()
            .map(|r| r.try_get::<String, _>(0))
            .collect::<Result<_, _>>()?;
        let _ = c.close().await;
        let stored: HashSet<&str> = ids.iter().map(String::as_str).collect();
        let lost = acked
            .iter()
            .filter(|id| !stored.contains(id.as_str()))
            .count();
        let wanted: HashSet<&str> = acked.iter().map(String::as_str).collect();
        // Rows beyond one per acknowledged id: duplicates (impossible by key) or strays.
        let duplicated =
            ids.len() - stored.len() + stored.iter().filter(|id| !wanted.contains(*id)).count();

        let rate = acked.len() as f64 / secs;
        report.push(Row::new(
            &case,
            "acknowledged events",
            acked.len() as f64,
            "events",
        ));
        report.push(
            Row::new(&case, "lock errors (writer retries)", lock_errors, "")
                .target("= 0", lock_errors == 0.0),
        );
        report.push(Row::new(&case, "lost", lost as f64, "").target("= 0", lost == 0));
        report.push(
            Row::new(&case, "duplicated", duplicated as f64, "").target("= 0", duplicated == 0),
        );
        report.push(
            Row::new(&case, "dropped + dead letters", dropped + dead, "")
                .target("= 0", dropped + dead == 0.0),
        );
        report.push(
            Row::new(&case, "throughput (publish -> stored)", rate, "events/s")
                .vs("producers' publish rate", acked.len() as f64 / publish_secs),
        );
        report.push(Row::new(
            &case,
            "publish retries / server-side duplicates",
            (retries + duplicates) as f64,
            "",
        ));
        report.push(Row::new(&case, "writer messages committed", messages, ""));
    }
    report.note(
        "Each producer is a task with its own NATS connection and system id, publishing one event at a time \
         with Nats-Msg-Id and awaiting the PubAck (retrying with the same id), like one predecessor polling thread. \
         Lock errors are the writer's sdash_writer_retries_total (every failed database attempt, 'database is locked' included).",
    );
    report.note(
        "The throughput ratio compares end-to-end (acknowledged -> committed) with the producers' own publish rate: \
         1.0 means the writer keeps up with the producers.",
    );
    Ok(())
}
