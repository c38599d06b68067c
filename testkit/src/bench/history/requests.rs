//! Requests to the API: timestamps for query strings, one GET parsed, readers of one URL until
//! told to stop, and their latency percentiles.

use std::time::Instant;

use sdash_proto::format_ms;
use tokio::sync::watch;

use crate::bench::percentile;

pub(super) fn rfc(ms: i64) -> String {
    format_ms(ms).replace(':', "%3A").replace('+', "%2B")
}

/// One GET read to the end and parsed: its latency and body size.
pub(super) async fn get_json(
    client: &reqwest::Client,
    url: &str,
) -> anyhow::Result<(f64, usize, serde_json::Value)> {
    let t = Instant::now();
    let resp = client.get(url).send().await?.error_for_status()?;
    let body = resp.bytes().await?;
    let ms = t.elapsed().as_secs_f64() * 1000.0;
    Ok((ms, body.len(), serde_json::from_slice(&body)?))
}

/// `clients` readers of `url` until `stop` turns true; latencies (ms) and errors.
pub(super) async fn read_until(
    client: &reqwest::Client,
    url: String,
    clients: usize,
    stop: watch::Receiver<bool>,
) -> (Vec<f64>, u64) {
    let tasks: Vec<_> = (0..clients)
        .map(|_| {
            let (client, url, stop) = (client.clone(), url.clone(), stop.clone());
            tokio::spawn(async move {
                let mut lat = Vec::new();
                let mut errors = 0u64;
                while !*stop.borrow() {
                    let t = Instant::now();
                    let ok = match client.get(&url).send().await {
                        Ok(r) => r.status().is_success() && r.bytes().await.is_ok(),
                        Err(_) => false,
                    };
                    if ok {
                        lat.push(t.elapsed().as_secs_f64() * 1000.0);
                    } else {
                        errors += 1;
                    }
                }
                (lat, errors)
            })
        })
        .collect();
    let mut all = Vec::new();
    let mut errors = 0;
    for t in tasks {
        if let Ok((l, e)) = t.await {
            all.extend(l);
            errors += e;
        }
    }
    (all, errors)
}

pub(super) struct Latency {
    pub(super) p50: f64,
    pub(super) p99: f64,
    pub(super) n: usize,
    pub(super) errors: u64,
}

pub(super) fn latency(mut samples: Vec<f64>, errors: u64) -> Latency {
    Latency {
        p50: percentile(&mut samples, 50.0),
        p99: percentile(&mut samples, 99.0),
        n: samples.len(),
        errors,
    }
}
