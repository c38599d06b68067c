//! Bad parameters, unknown paths, auth, caching headers, health, metrics and read-only access.

mod common;

use common::*;
use sdash_api::db::{Db, DbOptions, Sql};
use sdash_harness::{Backend, TestDatabase};
use sdash_proto::{Vendor, now_ms};
use std::time::Duration;

fn hex(text: &str) -> String {
    text.bytes().map(|b| format!("{b:02x}")).collect()
}

async fn bad_parameters_are_400_json(backend: Backend) {
    let env = Env::new(backend).await;
    let now = now_ms();
    env.write(vec![
        system_rec("fa-1", "FA 1", Vendor::Pure, &[], now),
        simple_snapshot("fa-1", now, Vendor::Pure, 1, 2),
    ])
    .await;
    let wrong_cursor = hex(r#"{"s":"id"}"#);
    let events_cursor = hex(r#"{"t":"x","id":1}"#);
    let cases = [
        "/api/v1/systems?limit=0".to_owned(),
        "/api/v1/systems?limit=-1".into(),
        "/api/v1/systems?limit=1001".into(),
        "/api/v1/systems?limit=abc".into(),
        "/api/v1/systems?limit=1.5".into(),
        "/api/v1/systems?limit=".into(),
        "/api/v1/systems?limit=99999999999999999999999".into(),
        "/api/v1/systems?limit=1&limit=2".into(),
        "/api/v1/systems?vendor=netapp".into(),
        "/api/v1/systems?vendor=pure,".into(),
        "/api/v1/systems?status=up".into(),
        "/api/v1/systems?hardware=broken".into(),
        "/api/v1/systems?sort=bogus".into(),
        "/api/v1/systems?sort=id%3BDROP%20TABLE%20systems".into(),
        "/api/v1/systems?tag=novalue".into(),
        "/api/v1/systems?tag=bad%20key:x".into(),
        "/api/v1/systems?tag=%27%29%20OR%201%3D1--:x".into(),
        "/api/v1/systems?cursor=zz".into(),
        "/api/v1/systems?cursor=abc".into(),
        format!("/api/v1/systems?cursor={wrong_cursor}"),
        "/api/v1/systems?include_removed=maybe".into(),
        "/api/v1/systems?unknown=1".into(),
        format!("/api/v1/systems?q={}", "x".repeat(600)),
        "/api/v1/systems/FA-1".into(),
        "/api/v1/systems/fa-1%27%20OR%20%271%27%3D%271".into(),
        "/api/v1/systems/fa-1/capacity?resolution=weekly".into(),
        "/api/v1/systems/fa-1/capacity?from=yesterday".into(),
        "/api/v1/systems/fa-1/capacity?from=2026-13-01T00:00:00Z".into(),
        "/api/v1/systems/fa-1/capacity?from=2026-02-01T00:00:00Z&to=2026-01-01T00:00:00Z".into(),
        "/api/v1/systems/fa-1/forecast?days=1".into(),
        "/api/v1/systems/fa-1/forecast?horizon=abc".into(),
        "/api/v1/systems/fa-1/events?level=verbose".into(),
        "/api/v1/systems/fa-1?verbose=true".into(),
        "/api/v1/alerts?state=closed".into(),
        "/api/v1/alerts?severity=fatal".into(),
        "/api/v1/alerts?system=%27%20OR%201%3D1%20--".into(),
        "/api/v1/alerts?vendor=emc".into(),
        format!("/api/v1/alerts?cursor={events_cursor}"),
        "/api/v1/events?level=verbose".into(),
        "/api/v1/events?category=disk".into(),
        "/api/v1/events?since=notatime".into(),
        "/api/v1/events?until=2026-01-01".into(),
        "/api/v1/events?since=2026-02-01T00:00:00Z&until=2026-01-01T00:00:00Z".into(),
        format!("/api/v1/events?cursor={events_cursor}"),
        "/api/v1/events?cursor=%7B%7D".into(),
        "/api/v1/capacity/summary?group_by=bad%20key".into(),
        "/api/v1/capacity/history?from=x".into(),
        "/api/v1/export/capacity-history.csv?group_by=%27".into(),
        "/api/v1/export/capacity.csv?limit=5".into(),
        "/api/v1/collectors?x=1".into(),
        "/api/v1/status?x=1".into(),
        "/api/v1/stream?system=NOT%20AN%20ID".into(),
    ];
    for path in &cases {
        let resp = env
            .request(path)
            .send()
            .await
            .unwrap_or_else(|e| panic!("{path}: {e}"));
        let code = resp.status().as_u16();
        let ctype = resp
            .headers()
            .get("content-type")
            .and_then(|v| v.to_str().ok())
            .unwrap_or("")
            .to_owned();
        let body: serde_json::Value = resp
            .json()
            .await
            .unwrap_or_else(|e| panic!("{path}: body not JSON: {e}"));
        assert_eq!(code, 400, "{path}: {body}");
        assert_eq!(ctype, "application/json", "{path}");
        assert!(
            body["error"].as_str().is_some_and(|e| !e.is_empty()),
            "{path}: {body}"
        );
    }
    // The database is untouched and still answers.
    assert_eq!(ids(&env.ok("/api/v1/systems").await), ["fa-1"]);
}
both!(bad_parameters_are_400_json);

async fn unknown_paths_methods_and_caching(backend: Backend) {
    let env = Env::new(backend).await;
    for path in [
        "/nope",
        "/api",
        "/api/v1",
        "/api/v1/nope",
        "/api/v1/systems/a/b/c",
        "/api/v2/systems",
    ] {
        let (code, body) = env.get(path).await;
        assert_eq!(code, 404, "{path}");
        assert!(body["error"].is_string(), "{path}: {body}");
    }
    let resp = env
        .http
        .post(env.url("/api/v1/systems"))
        .send()
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(resp.status().as_u16(), 405);
    let body: serde_json::Value = resp.json().await.unwrap_or_default();
    assert!(body["error"].is_string());
    // ETag and 304.
    let resp = env
        .request("/api/v1/systems")
        .send()
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(
        resp.headers()
            .get("cache-control")
            .and_then(|v| v.to_str().ok()),
        Some("no-cache")
    );
    let etag = resp
        .headers()
        .get("etag")
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default()
        .to_owned();
    assert!(etag.starts_with('"'), "{etag}");
    let again = env
        .request("/api/v1/systems")
        .header("if-none-match", &etag)
        .send()
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(again.status().as_u16(), 304);
    env.write_one(system_rec("fa-1", "FA 1", Vendor::Pure, &[], now_ms()))
        .await;
    let changed = env
        .request("/api/v1/systems")
        .header("if-none-match", &etag)
        .send()
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(changed.status().as_u16(), 200);
    // HEAD answers like GET, without a body.
    let head = env
        .http
        .head(env.url("/api/v1/systems"))
        .send()
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(head.status().as_u16(), 200);
    assert!(head.bytes().await.unwrap_or_default().is_empty());
    // gzip when accepted, with its own ETag; plain otherwise.
    let plain = env
        .request("/api/v1/openapi.json")
        .send()
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    assert!(plain.headers().get("content-encoding").is_none());
    let plain_etag = plain
        .headers()
        .get("etag")
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default()
        .to_owned();
    let plain_body = plain.bytes().await.unwrap_or_default();
    let gz = env
        .request("/api/v1/openapi.json")
        .header("accept-encoding", "gzip")
        .send()
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(
        gz.headers()
            .get("content-encoding")
            .and_then(|v| v.to_str().ok()),
        Some("gzip")
    );
    let gz_etag = gz
        .headers()
        .get("etag")
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default()
        .to_owned();
    assert_ne!(gz_etag, plain_etag);
    let compressed = gz.bytes().await.unwrap_or_default();
    assert!(compressed.len() < plain_body.len() / 2);
    let mut text = String::new();
    std::io::Read::read_to_string(
        &mut flate2::read::GzDecoder::new(&compressed[..]),
        &mut text,
    )
    .unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(text.as_bytes(), &plain_body[..]);
    let again = env
        .request("/api/v1/openapi.json")
        .header("accept-encoding", "gzip")
        .header("if-none-match", &gz_etag)
        .send()
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(again.status().as_u16(), 304);
    // The dashboard is served at `/`.
    let index = env
        .http
        .get(env.url("/"))
        .send()
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(index.status().as_u16(), 200);
    assert!(
        index
            .headers()
            .get("content-type")
            .and_then(|v| v.to_str().ok())
            .is_some_and(|c| c.starts_with("text/html"))
    );
    // Health and metrics.
    assert_eq!(env.get_text("/healthz").await, (200, "ok".to_owned()));
    assert_eq!(env.get_text("/readyz").await.0, 200);
    let (code, metrics) = env.get_text("/metrics").await;
    assert_eq!(code, 200);
    assert!(
        metrics.contains("sdash_api_requests_total{route=\"/api/v1/systems\",status=\"304\"} 1"),
        "{metrics}"
    );
    assert!(
        metrics.contains("sdash_api_requests_total{route=\"unmatched\",status=\"404\"}"),
        "{metrics}"
    );
    assert!(
        metrics.contains("sdash_api_request_duration_seconds_bucket{"),
        "{metrics}"
    );
    assert!(metrics.contains("sdash_api_stream_clients 0"), "{metrics}");
}
both!(unknown_paths_methods_and_caching);

async fn bearer_token_is_enforced(backend: Backend) {
    let env = Env::with(backend, |c| c.auth_token = Some("s3cret-token".into())).await;
    assert_eq!(
        env.ok("/api/v1/systems").await["items"],
        serde_json::json!([])
    );
    for auth in [
        None,
        Some("Bearer wrong"),
        Some("Bearer s3cret-tokenX"),
        Some("Basic czNjcmV0LXRva2Vu"),
        Some("s3cret-token"),
    ] {
        let mut req = env.http.get(env.url("/api/v1/systems"));
        if let Some(a) = auth {
            req = req.header("authorization", a);
        }
        let resp = req.send().await.unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(resp.status().as_u16(), 401, "{auth:?}");
        assert!(resp.headers().get("www-authenticate").is_some());
        let body: serde_json::Value = resp.json().await.unwrap_or_default();
        assert!(body["error"].is_string());
    }
    let resp = env
        .http
        .get(env.url("/api/v1/openapi.json"))
        .send()
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(resp.status().as_u16(), 401);
    for open in ["/healthz", "/readyz", "/metrics"] {
        let resp = env
            .http
            .get(env.url(open))
            .send()
            .await
            .unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(resp.status().as_u16(), 200, "{open}");
    }
}
both!(bearer_token_is_enforced);

async fn connections_are_read_only(backend: Backend) {
    let db = TestDatabase::new(backend).await;
    let _store = sdash_writer::Store::open(&db.url)
        .await
        .unwrap_or_else(|e| panic!("store: {e}"));
    let ro = Db::open(
        &db.url,
        &DbOptions {
            max_connections: 2,
            query_timeout: Duration::from_secs(5),
            password: None,
        },
    )
    .unwrap_or_else(|e| panic!("open: {e}"));
    assert!(ro.ping().await);
    let write = Sql::new("INSERT INTO collectors (id, version, last_seen) VALUES ('x', 'v', 1)");
    assert!(
        ro.fetch(&write).await.is_err(),
        "a write through the API pool must fail"
    );
    let rows = ro
        .fetch(&Sql::new("SELECT COUNT(*) AS n FROM collectors"))
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(rows[0].i64("n"), Some(0));
}
both!(connections_are_read_only);

#[tokio::test]
async fn sqlite_file_missing_at_start_is_waited_for_not_created() {
    install_crypto();
    let dir = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
    let path = dir.path().join("later.db");
    let url = format!("sqlite://{}", path.display());
    let (addr, task) = sdash_api::spawn(sdash_api::Config::new(&url))
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    let http = client();
    let readyz = http
        .get(format!("http://{addr}/readyz"))
        .send()
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(readyz.status().as_u16(), 503);
    let resp = http
        .get(format!("http://{addr}/api/v1/systems"))
        .send()
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(resp.status().as_u16(), 503);
    let body: serde_json::Value = resp.json().await.unwrap_or_default();
    assert!(body["error"].is_string());
    assert!(!path.exists(), "the API must not create the database");
    // The writer creates it; the API picks it up without a restart.
    let store = sdash_writer::Store::open(&url)
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    let ok = sdash_harness::wait_for(Duration::from_secs(10), || {
        let http = http.clone();
        async move {
            let r = http
                .get(format!("http://{addr}/api/v1/systems"))
                .send()
                .await
                .ok()?;
            (r.status().as_u16() == 200).then_some(())
        }
    })
    .await;
    assert!(ok.is_some());
    drop(store);
    task.abort();
}

#[tokio::test]
async fn unreachable_postgres_is_503_not_500() {
    install_crypto();
    let port = sdash_harness::free_port();
    let url = format!("postgres://postgres@127.0.0.1:{port}/nope");
    let mut config = sdash_api::Config::new(&url);
    config.query_timeout = Duration::from_millis(500);
    let (addr, task) = sdash_api::spawn(config)
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    let http = client();
    for path in ["/api/v1/systems", "/api/v1/status", "/readyz"] {
        let resp = http
            .get(format!("http://{addr}{path}"))
            .send()
            .await
            .unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(resp.status().as_u16(), 503, "{path}");
    }
    let resp = http
        .get(format!("http://{addr}/healthz"))
        .send()
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(resp.status().as_u16(), 200);
    task.abort();
}

async fn slow_queries_time_out(backend: Backend) {
    let db = TestDatabase::new(backend).await;
    let _store = sdash_writer::Store::open(&db.url)
        .await
        .unwrap_or_else(|e| panic!("store: {e}"));
    let ro = Db::open(
        &db.url,
        &DbOptions {
            max_connections: 2,
            query_timeout: Duration::from_millis(300),
            password: None,
        },
    )
    .unwrap_or_else(|e| panic!("open: {e}"));
    let slow = match backend {
        Backend::Postgres => Sql::new("SELECT pg_sleep(5) IS NULL AS slept"),
        Backend::Sqlite => Sql::new(
            "WITH RECURSIVE c(x) AS (SELECT 1 UNION ALL SELECT x + 1 FROM c WHERE x < 1000000000) SELECT COUNT(*) AS n FROM c",
        ),
    };
    let started = std::time::Instant::now();
    let result = ro.fetch(&slow).await;
    assert!(result.is_err(), "the slow query was not stopped");
    assert!(
        started.elapsed() < Duration::from_secs(3),
        "{:?}",
        started.elapsed()
    );
}
both!(slow_queries_time_out);
