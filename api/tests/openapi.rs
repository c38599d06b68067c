//! The OpenAPI document matches the route table, and every documented route and parameter is
//! really served (and nothing undocumented is).

mod common;

use std::collections::BTreeSet;

use common::*;
use sdash_api::routes::{ROUTES, RouteId};
use sdash_harness::Backend;
use sdash_proto::{Vendor, now_ms};

async fn document_matches_routes(backend: Backend) {
    let env = Env::new(backend).await;
    let now = now_ms();
    env.write(vec![
        system_rec(
            "fa-prod-01",
            "FA",
            Vendor::Pure,
            &[("environment", "production")],
            now,
        ),
        snapshot(
            "fa-prod-01",
            now,
            snapshot_body(
                Vendor::Pure,
                1,
                2,
                vec![alert("a1", sdash_proto::Severity::Warning, "Fan")],
            ),
        ),
    ])
    .await;
    let alert_id = env.ok("/api/v1/alerts").await["items"][0]["id"]
        .as_i64()
        .unwrap_or_default();
    let doc = env.ok("/api/v1/openapi.json").await;
    assert_eq!(doc["openapi"], "3.0.3");
    let paths = doc["paths"].as_object().cloned().unwrap_or_default();
    let documented: BTreeSet<String> = paths.keys().cloned().collect();
    let routed: BTreeSet<String> = ROUTES.iter().map(|r| r.path.to_owned()).collect();
    assert_eq!(
        documented, routed,
        "OpenAPI paths and the route table differ"
    );
    assert_eq!(ROUTES.len(), routed.len(), "duplicate routes");

    for route in ROUTES {
        let path = if route.id.alert_id_in_path() {
            route.path.replace("{id}", &alert_id.to_string())
        } else {
            route.path.replace("{id}", "fa-prod-01")
        };
        if route.id.is_command() {
            // Commands: a POST with a JSON body; this server has no operator tokens (403).
            let op = &paths[route.path]["post"];
            assert!(op.is_object(), "{} has no POST", route.path);
            assert!(
                paths[route.path]["get"].is_null(),
                "{} has a GET",
                route.path
            );
            assert!(
                op["requestBody"]["content"]["application/json"]["schema"]["$ref"].is_string(),
                "{} documents no body",
                route.path
            );
            let params: Vec<&str> = op["parameters"]
                .as_array()
                .map(|a| a.iter().filter_map(|p| p["name"].as_str()).collect())
                .unwrap_or_default();
            assert_eq!(params, if route.has_id() { vec!["id"] } else { vec![] });
            for code in ["202", "400", "401", "403", "503"] {
                assert!(op["responses"][code].is_object(), "{} {code}", route.path);
            }
            assert_eq!(
                op["responses"]["202"]["content"]["application/json"]["schema"]["$ref"],
                "#/components/schemas/CommandsAccepted"
            );
            assert_eq!(
                op["responses"]["503"]["content"]["application/json"]["schema"]["$ref"],
                "#/components/schemas/CommandsUnavailableBody"
            );
            let resp = env
                .http
                .post(env.url(&path))
                .json(&serde_json::json!({}))
                .send()
                .await
                .unwrap_or_else(|e| panic!("{path}: {e}"));
            assert_eq!(resp.status().as_u16(), 403, "POST {path}");
            continue;
        }
        let op = &paths[route.path]["get"];
        assert!(op.is_object(), "{} has no GET", route.path);
        let doc_params: BTreeSet<String> = op["parameters"]
            .as_array()
            .map(|a| {
                a.iter()
                    .filter_map(|p| p["name"].as_str().map(String::from))
                    .collect()
            })
            .unwrap_or_default();
        let mut route_params: BTreeSet<String> =
            route.params.iter().map(|p| p.name.to_owned()).collect();
        if route.has_id() {
            route_params.insert("id".into());
        }
        assert_eq!(doc_params, route_params, "parameters of {}", route.path);
        for code in op["responses"]
            .as_object()
            .map(|r| r.keys().cloned().collect::<Vec<_>>())
            .unwrap_or_default()
        {
            if code != "200" && code != "304" {
                assert_eq!(
                    op["responses"][&code]["content"]["application/json"]["schema"]["$ref"],
                    "#/components/schemas/Error",
                    "{} {code}",
                    route.path
                );
            }
        }
        if let Some(schema) = route.schema {
            assert!(
                doc["components"]["schemas"][schema].is_object(),
                "schema {schema} missing"
            );
        }

        // Served with every documented parameter at its example value.
        let query: Vec<String> = route
            .params
            .iter()
            .filter(|p| !p.example.is_empty())
            .map(|p| format!("{}={}", p.name, p.example))
            .collect();
        let url = if query.is_empty() {
            path.clone()
        } else {
            format!("{path}?{}", query.join("&"))
        };
        let resp = env
            .request(&url)
            .send()
            .await
            .unwrap_or_else(|e| panic!("{url}: {e}"));
        let expected = if route.id == RouteId::Stream {
            503
        } else {
            200
        };
        assert_eq!(resp.status().as_u16(), expected, "{url}");
        let ctype = resp
            .headers()
            .get("content-type")
            .and_then(|v| v.to_str().ok())
            .unwrap_or("")
            .to_owned();
        if expected == 200 {
            assert!(
                ctype.starts_with(route.content),
                "{url}: content type {ctype} vs documented {}",
                route.content
            );
        }

        // And nothing undocumented is accepted.
        let sep = if url.contains('?') { '&' } else { '?' };
        let resp = env
            .request(&format!("{url}{sep}undocumented=1"))
            .send()
            .await
            .unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(
            resp.status().as_u16(),
            400,
            "{url} accepted an undocumented parameter"
        );
    }
}
both!(document_matches_routes);

/// Checks `value` against `schema` (resolving `$ref` in `doc`), recording into `seen` each
/// `(schema name, property)` that a body carried, and into `errors` every disagreement.
fn conforms(
    doc: &serde_json::Value,
    schema: &serde_json::Value,
    value: &serde_json::Value,
    at: &str,
    seen: &mut BTreeSet<(String, String)>,
    errors: &mut Vec<String>,
) {
    use serde_json::Value;
    if let Some(reference) = schema["$ref"].as_str() {
        let name = reference.trim_start_matches("#/components/schemas/");
        let target = &doc["components"]["schemas"][name];
        if target.is_null() {
            errors.push(format!("{at}: dangling {reference}"));
            return;
        }
        if let (Some(props), Some(body)) = (target["properties"].as_object(), value.as_object()) {
            for key in props.keys().filter(|k| body.contains_key(*k)) {
                seen.insert((name.to_owned(), key.clone()));
            }
        }
        return conforms(doc, target, value, &format!("{at}<{name}>"), seen, errors);
    }
    if value.is_null() {
        if schema["nullable"] != Value::Bool(true) {
            errors.push(format!("{at}: null where the document says not nullable"));
        }
        return;
    }
    if let Some(all) = schema["allOf"].as_array() {
        for s in all {
            conforms(doc, s, value, at, seen, errors);
        }
    }
    if let Some(values) = schema["enum"].as_array()
        && !values.contains(value)
    {
        errors.push(format!("{at}: {value} is not one of {values:?}"));
    }
    let kind_ok = match schema["type"].as_str() {
        None => true,
        Some("object") => value.is_object(),
        Some("array") => value.is_array(),
        Some("string") => value.is_string(),
        Some("integer") => value.is_i64() || value.is_u64(),
        Some("number") => value.is_number(),
        Some("boolean") => value.is_boolean(),
        Some(other) => {
            errors.push(format!("{at}: unknown type {other}"));
            true
        }
    };
    if !kind_ok {
        errors.push(format!("{at}: {value} is not of type {}", schema["type"]));
        return;
    }
    if let Some(items) = value.as_array() {
        for (i, item) in items.iter().enumerate() {
            conforms(
                doc,
                &schema["items"],
                item,
                &format!("{at}[{i}]"),
                seen,
                errors,
            );
        }
    }
    if let Some(body) = value.as_object() {
        let props = schema["properties"].as_object();
        for key in schema["required"].as_array().into_iter().flatten() {
            let key = key.as_str().unwrap_or_default();
            if !body.contains_key(key) {
                errors.push(format!("{at}: required property {key} is missing"));
            }
        }
        for (key, v) in body {
            let at = format!("{at}.{key}");
            match props.and_then(|p| p.get(key)) {
                Some(s) => conforms(doc, s, v, &at, seen, errors),
                None if schema["additionalProperties"].is_object() => {
                    conforms(doc, &schema["additionalProperties"], v, &at, seen, errors)
                }
                None if props.is_some() => errors.push(format!("{at}: not in the document")),
                None => {}
            }
        }
    }
}

/// Every JSON route's real response conforms to the schema the document gives for it, and every
/// property of every documented schema is served by some route: a response type and the document
/// cannot disagree.
async fn responses_match_the_document(backend: Backend) {
    use sdash_proto::{Category, Level, Severity, Status};
    const OPERATOR: &str = "operator-token-0123456789";
    // NATS without the SDASH stream at first: a command is answered 503 (no acknowledgement).
    let nats = sdash_harness::NatsServer::start();
    let url = nats.url();
    let env = Env::with(backend, |c| {
        c.nats = Some(sdash_service::bus::NatsArgs::plain(&url));
        c.operator_tokens = Some(
            sdash_api::auth::OperatorTokens::parse(&format!("alice {OPERATOR}"), None)
                .unwrap_or_else(|e| panic!("{e}")),
        );
        c.command_publish_timeout = std::time::Duration::from_secs(1);
    })
    .await;
    let now = now_ms();
    let mut records = vec![
        system_rec(
            "fa-prod-01",
            "FA",
            Vendor::Pure,
            &[("environment", "production")],
            now - 6 * DAY_MS,
        ),
        collector("c1", now, &["fa-prod-01"]),
    ];
    // A week of daily rollups (for the daily series and the forecast) and a status change.
    for day in (0..6).rev() {
        let mut alerts = vec![alert("a1", Severity::Critical, "Controller failed")];
        if day == 0 {
            alerts.push(alert("a2", Severity::Warning, "Fan degraded"));
        }
        let mut body = snapshot_body(Vendor::Pure, (10 + 5 * (6 - day)) * GIB, 100 * GIB, alerts);
        if day == 5 {
            body.status = Status::Unreachable;
        }
        // The deeper state (#17): topology, pools (one without free bytes), performance.
        if let Some(c) = body.capacity.as_mut() {
            c.provisioned_bytes = Some(300 * GIB);
        }
        body.topology = Some(topology(
            sdash_proto::ClusterType::Ha,
            "https://fa-prod-01.example.net/",
        ));
        body.pools = vec![
            pool(
                sdash_proto::PoolKind::Space,
                "unique",
                5 * GIB,
                100 * GIB,
                None,
            ),
            pool(
                sdash_proto::PoolKind::Space,
                "snapshots",
                GIB,
                100 * GIB,
                Some(99 * GIB),
            ),
        ];
        body.performance = Some(performance(
            [Some(100.0), Some(50.0), Some(300.0), Some(400.0)],
            [Some(1 << 20), Some(1 << 19)],
        ));
        records.push(snapshot("fa-prod-01", now - day as i64 * DAY_MS, body));
    }
    for at in [now - 1000, now] {
        records.push(event(
            "fa-prod-01",
            at,
            Level::Error,
            Category::Connection,
            "timed out",
        ));
    }
    env.write(records).await;
    // Operator commands the writer applies: an acknowledgement, an assignment, a comment.
    let alert_row = env.ok("/api/v1/alerts?limit=1000").await["items"]
        .as_array()
        .and_then(|a| a.iter().find(|i| i["alert_id"] == "a1").cloned())
        .unwrap_or_default();
    let alert_id = alert_row["id"].as_i64().unwrap_or_default();
    let instance = sdash_proto::AlertInstance {
        alert_id: "a1".into(),
        opened_at: alert_row["first_seen_ms"].as_i64().unwrap_or_default(),
    };
    let mut commands = Vec::new();
    for (kind, assignee, comment) in [
        (sdash_proto::CommandKind::Acknowledge, None, None),
        (sdash_proto::CommandKind::Assign, Some("bob"), None),
        (sdash_proto::CommandKind::Comment, None, Some("on it")),
    ] {
        let body = sdash_proto::CommandRecord {
            kind,
            actor: "alice".into(),
            alert: Some(instance.clone()),
            assignee: assignee.map(String::from),
            comment: comment.map(String::from),
        };
        let e = sdash_proto::Envelope::new("api-1", "fa-prod-01", body);
        commands.push((
            kind.subject("fa-prod-01"),
            sdash_proto::encode(&e).unwrap_or_else(|e| panic!("{e}")),
        ));
    }
    env.write(commands).await;

    let doc = env.ok("/api/v1/openapi.json").await;
    let mut seen = BTreeSet::new();
    let mut errors = Vec::new();
    let mut served = 0;
    // A command, answered 503 (no stream yet), then 202 (stream made).
    let ok_connected = sdash_harness::wait_for(std::time::Duration::from_secs(10), || async {
        (env.ok("/api/v1/status").await["nats_connected"] == true).then_some(())
    })
    .await;
    assert!(ok_connected.is_some(), "NATS never connected");
    let ack = format!("/api/v1/alerts/{alert_id}/acknowledge");
    let ack_op = &doc["paths"]["/api/v1/alerts/{id}/acknowledge"]["post"]["responses"];
    for (code, make_stream) in [("503", true), ("202", false)] {
        let resp = env
            .http
            .post(env.url(&ack))
            .bearer_auth(OPERATOR)
            .send()
            .await
            .unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(resp.status().as_str(), code);
        let body: serde_json::Value = resp.json().await.unwrap_or_default();
        let schema = &ack_op[code]["content"]["application/json"]["schema"];
        conforms(&doc, schema, &body, &ack, &mut seen, &mut errors);
        served += 1;
        if make_stream {
            let client = async_nats::connect(nats.url())
                .await
                .unwrap_or_else(|e| panic!("{e}"));
            sdash_service::bus::ensure_stream(
                &async_nats::jetstream::new(client),
                &sdash_service::bus::StreamArgs::default(),
            )
            .await
            .unwrap_or_else(|e| panic!("{e}"));
        }
    }
    for route in ROUTES {
        let ok = &doc["paths"][route.path]["get"]["responses"]["200"]["content"]["application/json"]
            ["schema"];
        if ok["$ref"].is_null() {
            continue;
        }
        let path = if route.id.alert_id_in_path() {
            route.path.replace("{id}", &alert_id.to_string())
        } else {
            route.path.replace("{id}", "fa-prod-01")
        };
        let mut urls = vec![path.clone()];
        if route.id == RouteId::SystemCapacity {
            urls.push(format!("{path}?resolution=daily"));
            urls.push(format!("{path}?resolution=hourly"));
        }
        if route.id == RouteId::SystemPerformance || route.id == RouteId::SystemPools {
            urls.push(format!("{path}?tier=daily"));
            urls.push(format!("{path}?tier=hourly"));
        }
        if route.id == RouteId::CapacitySummary || route.id == RouteId::CapacityHistory {
            urls.push(format!("{path}?group_by=environment"));
            urls.push(format!(
                "{path}?group_by=environment&subgroup_by=storage_type"
            ));
        }
        if route.id == RouteId::CapacityHistory {
            urls.push(format!("{path}?interval=week&week_value=avg&range=all"));
            urls.push(format!("{path}?range=1d&group_by=environment"));
        }
        if route.id == RouteId::Alerts || route.id == RouteId::Events {
            urls.push(format!("{path}?limit=1"));
        }
        for url in urls {
            let body = env.ok(&url).await;
            conforms(&doc, ok, &body, &url, &mut seen, &mut errors);
            served += 1;
        }
    }
    let (status, error) = env.get("/api/v1/systems?limit=0").await;
    assert_eq!(status, 400);
    let error_schema = serde_json::json!({"$ref": "#/components/schemas/Error"});
    conforms(&doc, &error_schema, &error, "error", &mut seen, &mut errors);
    assert!(served >= 10, "only {served} JSON responses checked");
    assert!(
        errors.is_empty(),
        "responses disagree with the document:\n{}",
        errors.join("\n")
    );
    let schemas = doc["components"]["schemas"]
        .as_object()
        .cloned()
        .unwrap_or_default();
    // Request bodies are sent, not served.
    let requests: BTreeSet<String> = doc["paths"]
        .as_object()
        .into_iter()
        .flat_map(|p| p.values())
        .filter_map(|p| {
            p["post"]["requestBody"]["content"]["application/json"]["schema"]["$ref"].as_str()
        })
        .map(|r| r.trim_start_matches("#/components/schemas/").to_owned())
        .collect();
    assert!(requests.contains("AssignBody"), "{requests:?}");
    let never: Vec<String> = schemas
        .iter()
        .filter(|(name, _)| !requests.contains(*name))
        .flat_map(|(name, s)| {
            let props = s["properties"].as_object().cloned().unwrap_or_default();
            props
                .keys()
                .filter(|p| !seen.contains(&(name.clone(), (*p).clone())))
                .map(|p| format!("{name}.{p}"))
                .collect::<Vec<_>>()
        })
        .collect();
    assert!(never.is_empty(), "documented but never served: {never:?}");
}
both!(responses_match_the_document);
