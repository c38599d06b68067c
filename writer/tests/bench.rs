//! Ingest benchmark (ignored by default; run with
//! `cargo test -p sdash-writer --release --test bench -- --ignored --nocapture`).
//! Prints NATS -> database throughput next to a bulk insert of the same rows through the same
//! store (the baseline), as a ratio. Target (BENCHMARKS.md): ratio >= 0.5.

mod common;

use std::time::{Duration, Instant};

use common::*;
use sdash_harness::{Backend, NatsServer, TestDatabase, wait_for};
use sdash_proto::subjects::Kind;
use sdash_proto::*;
use sdash_writer::{Incoming, Store, WriterConfig};

const N: usize = 50_000;

async fn bench(backend: Backend) {
    let t0 = now_ms() - 60_000;
    let messages: Vec<Incoming> = (0..N)
        .map(|i| {
            let system = format!("bench-{}", i % 200);
            let id = format!("bench-{i:07}");
            let env = envelope(&system, &id, t0 + i as i64, event_body(&id));
            incoming(i as u64 + 1, Kind::Event.subject(&system), enc(&env))
        })
        .collect();

    // Baseline: the same rows, bulk inserted in batches of 1000 straight into the database.
    let base_db = TestDatabase::new(backend).await;
    let store = Store::open(&base_db.url)
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    let started = Instant::now();
    for chunk in messages.chunks(1000) {
        store
            .write_batch(chunk)
            .await
            .unwrap_or_else(|e| panic!("{e}"));
    }
    let base_rate = N as f64 / started.elapsed().as_secs_f64();
    store.close().await;

    // Through the pipeline: pre-published, then drained by the writer.
    let nats = NatsServer::start();
    let js = jetstream(&nats.url()).await;
    let mut acks = Vec::with_capacity(1000);
    for m in &messages {
        let ack = js
            .publish(m.subject.clone(), bytes::Bytes::from(m.payload.clone()))
            .await
            .unwrap_or_else(|e| panic!("{e}"));
        acks.push(ack);
        if acks.len() == 1000 {
            for a in acks.drain(..) {
                a.await.unwrap_or_else(|e| panic!("{e}"));
            }
        }
    }
    for a in acks.drain(..) {
        a.await.unwrap_or_else(|e| panic!("{e}"));
    }
    let db = TestDatabase::new(backend).await;
    Store::open(&db.url)
        .await
        .unwrap_or_else(|e| panic!("{e}"))
        .close()
        .await;
    let config = WriterConfig::new(&nats.url(), &db.url);
    let stop = sdash_service::Shutdown::new();
    let started = Instant::now();
    let task = tokio::spawn(sdash_writer::run(config, stop.clone()));
    let done = wait_for(Duration::from_secs(120), || async {
        (count(&db, "events").await == N as i64).then_some(())
    })
    .await;
    let rate = N as f64 / started.elapsed().as_secs_f64();
    assert!(done.is_some());
    println!(
        "{backend:?}: pipeline {rate:.0} events/s, bulk insert baseline {base_rate:.0} rows/s, ratio {:.2}",
        rate / base_rate
    );
    stop.cancel();
    let _ = task.await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore]
async fn ingest_sqlite() {
    bench(Backend::Sqlite).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore]
async fn ingest_postgres() {
    bench(Backend::Postgres).await;
}
