//! A quick latency check of the fleet list at 10,000 systems (ignored by default; the real
//! benchmark lives with the other benchmarks). Run with `cargo test -p sdash-api --test load -- --ignored --nocapture`.

mod common;

use std::time::{Duration, Instant};

use common::*;
use sdash_harness::Backend;
use sdash_proto::{Vendor, now_ms};

async fn list_of_10k_systems(backend: Backend) {
    let env = Env::new(backend).await;
    let now = now_ms();
    for chunk in 0..20u64 {
        let mut batch = Vec::new();
        for i in chunk * 500..(chunk + 1) * 500 {
            let id = format!("sys-{i:05}");
            batch.push(system_rec(
                &id,
                &id,
                Vendor::Pure,
                &[("environment", if i % 2 == 0 { "prod" } else { "dev" })],
                now - 5000,
            ));
            batch.push(simple_snapshot(
                &id,
                now - 1000,
                Vendor::Pure,
                (i % 97) * GIB,
                100 * GIB,
            ));
        }
        env.write(batch).await;
    }
    for path in [
        "/api/v1/systems",
        "/api/v1/systems?sort=-used_pct",
        "/api/v1/systems?limit=1000",
        "/api/v1/capacity/summary?group_by=environment",
    ] {
        let started = Instant::now();
        let mut latencies = Vec::new();
        let mut tasks = Vec::new();
        for _ in 0..64 {
            let http = env.http.clone();
            let url = env.url(path);
            tasks.push(tokio::spawn(async move {
                let mut l = Vec::new();
                for _ in 0..5 {
                    let t = Instant::now();
                    let ok = http
                        .get(&url)
                        .send()
                        .await
                        .map(|r| r.status().as_u16() == 200)
                        .unwrap_or(false);
                    assert!(ok);
                    l.push(t.elapsed());
                }
                l
            }));
        }
        for t in tasks {
            latencies.extend(t.await.unwrap_or_default());
        }
        latencies.sort();
        let p =
            |q: f64| latencies[((latencies.len() as f64 * q) as usize).min(latencies.len() - 1)];
        println!(
            "{backend:?} {path}: {} requests in {:?}, p50 {:?}, p99 {:?}",
            latencies.len(),
            started.elapsed(),
            p(0.5),
            p(0.99)
        );
        assert!(p(0.99) < Duration::from_secs(10));
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore]
async fn load_sqlite() {
    list_of_10k_systems(Backend::Sqlite).await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore]
async fn load_postgres() {
    list_of_10k_systems(Backend::Postgres).await
}
