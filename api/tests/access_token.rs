//! `?access_token=`: with `--auth-token-file`, the live stream and the CSV exports (which browsers
//! open with EventSource and download links, neither able to send a header) also take the token
//! as a query parameter; every other route takes it only as `Authorization: Bearer`. The token
//! never shows up in a response or a log line.

mod common;

use std::time::Duration;

use common::*;
use sdash_api::routes::ROUTES;
use sdash_harness::{Backend, NatsServer};
use sdash_proto::{Vendor, now_ms};
use sdash_service::bus::NatsArgs;

const TOKEN: &str = "s3cret-access-token";

async fn status_of(env: &Env, path: &str, bearer: Option<&str>) -> (u16, String) {
    let mut req = env.http.get(env.url(path));
    if let Some(t) = bearer {
        req = req.bearer_auth(t);
    }
    let resp = req
        .send()
        .await
        .unwrap_or_else(|e| panic!("GET {path}: {e}"));
    let status = resp.status().as_u16();
    if resp
        .headers()
        .get("content-type")
        .and_then(|v| v.to_str().ok())
        .is_some_and(|c| c.starts_with("text/event-stream"))
    {
        // An open stream: read its first event, not the endless body.
        let mut resp = resp;
        let first = tokio::time::timeout(Duration::from_secs(5), resp.chunk())
            .await
            .ok()
            .and_then(|c| c.ok().flatten())
            .map(|c| String::from_utf8_lossy(&c).into_owned())
            .unwrap_or_default();
        return (status, first);
    }
    (status, resp.text().await.unwrap_or_default())
}

async fn access_token_only_on_stream_and_exports(backend: Backend) {
    let logs = sdash_harness::capture_logs();
    let nats = NatsServer::start();
    let env = Env::with(backend, |c| {
        c.auth_token = Some(TOKEN.into());
        c.nats = Some(NatsArgs::plain(&nats.url()));
    })
    .await;
    let now = now_ms();
    env.write(vec![
        system_rec(
            "fa-1",
            "FA 1",
            Vendor::Pure,
            &[("environment", "production")],
            now,
        ),
        snapshot(
            "fa-1",
            now,
            snapshot_body(
                Vendor::Pure,
                3 * GIB,
                4 * GIB,
                vec![alert("a1", sdash_proto::Severity::Warning, "Fan")],
            ),
        ),
    ])
    .await;
    let ready = sdash_harness::wait_for(Duration::from_secs(10), || async {
        let (code, _) = status_of(&env, "/api/v1/stream", Some(TOKEN)).await;
        (code == 200).then_some(())
    })
    .await;
    assert!(ready.is_some(), "stream never became available");

    let q = format!("access_token={TOKEN}");
    // The stream and the exports accept the right token in the query, with other parameters too.
    for path in [
        format!("/api/v1/stream?{q}"),
        format!("/api/v1/stream?system=fa-1&{q}"),
        format!("/api/v1/export/capacity.csv?{q}"),
        format!("/api/v1/export/capacity-history.csv?{q}&group_by=environment"),
    ] {
        let (code, body) = status_of(&env, &path, None).await;
        assert_eq!(code, 200, "{path}: {body}");
        if path.contains("stream") {
            assert!(body.contains("event:hello"), "{path}: {body}");
        } else {
            assert!(
                body.contains("fa-1") || body.starts_with("day,"),
                "{path}: {body}"
            );
            assert!(!body.contains(TOKEN), "{path} echoes the token");
        }
    }
    // ... and refuse a wrong, empty, or missing one.
    for route in [
        "/api/v1/stream",
        "/api/v1/export/capacity.csv",
        "/api/v1/export/capacity-history.csv",
    ] {
        for query in [
            "?access_token=wrong".to_owned(),
            format!("?access_token={TOKEN}X"),
            "?access_token=".to_owned(),
            String::new(),
            // The token under another name is no token.
            format!("?token={TOKEN}"),
        ] {
            let path = format!("{route}{query}");
            let (code, body) = status_of(&env, &path, None).await;
            assert_eq!(code, 401, "{path}: {body}");
            assert!(!body.contains(TOKEN), "{path}: the 401 echoes the token");
        }
        // Either credential is enough: a right query token works next to a wrong header.
        let (code, _) = status_of(&env, &format!("{route}?{q}"), Some("wrong")).await;
        assert_eq!(
            code, 200,
            "{route}: a right access_token with a wrong header"
        );
    }

    // Every other protected route takes the token only as a header (the POST routes, which
    // take operator tokens, are checked in tests/commands.rs).
    let others: Vec<_> = ROUTES
        .iter()
        .filter(|r| r.protected() && !r.query_token() && !r.id.is_command())
        .collect();
    assert!(others.len() >= 10, "{} other routes", others.len());
    let (_, alerts) = status_of(&env, "/api/v1/alerts", Some(TOKEN)).await;
    let alert_id = serde_json::from_str::<serde_json::Value>(&alerts).unwrap_or_default()["items"]
        [0]["id"]
        .as_i64()
        .unwrap_or_default();
    for route in others {
        let path = if route.id.alert_id_in_path() {
            route.path.replace("{id}", &alert_id.to_string())
        } else {
            route.path.replace("{id}", "fa-1")
        };
        let (code, body) = status_of(&env, &format!("{path}?{q}"), None).await;
        assert_eq!(code, 401, "{path} accepted access_token: {body}");
        assert!(!body.contains(TOKEN), "{path}: the 401 echoes the token");
        // With the header it is an unknown parameter (400), and the error does not echo it.
        let (code, body) = status_of(&env, &format!("{path}?{q}"), Some(TOKEN)).await;
        assert_eq!(code, 400, "{path}: {body}");
        assert!(!body.contains(TOKEN), "{path}: the 400 echoes the token");
        // The header alone works.
        let (code, body) = status_of(&env, &path, Some(TOKEN)).await;
        assert_eq!(code, 200, "{path}: {body}");
    }
    // Unprotected routes and the dashboard do not need it (and never see it).
    for path in ["/healthz", "/readyz", "/metrics", "/"] {
        let (code, body) = status_of(&env, path, None).await;
        assert_eq!(code, 200, "{path}");
        assert!(!body.contains(TOKEN), "{path}");
    }

    if let Some(logs) = logs {
        let text = logs.text();
        assert!(
            text.contains("live stream subscribed"),
            "the log capture saw nothing: {text}"
        );
        assert!(
            !text.contains(TOKEN),
            "the token appears in the logs:\n{}",
            text.lines()
                .filter(|l| l.contains(TOKEN))
                .collect::<Vec<_>>()
                .join("\n")
        );
    }
}
both!(access_token_only_on_stream_and_exports);

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn access_token_is_ignored_without_a_server_token() {
    let env = Env::new(Backend::Sqlite).await;
    let (code, body) = status_of(&env, "/api/v1/export/capacity.csv?access_token=x", None).await;
    assert_eq!(code, 200, "{body}");
    // Still unknown elsewhere.
    let (code, _) = status_of(&env, "/api/v1/systems?access_token=x", None).await;
    assert_eq!(code, 400);
}
