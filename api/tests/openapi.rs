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
        simple_snapshot("fa-prod-01", now, Vendor::Pure, 1, 2),
    ])
    .await;
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
        let path = route.path.replace("{id}", "fa-prod-01");
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
    let env = Env::new(backend).await;
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

    let doc = env.ok("/api/v1/openapi.json").await;
    let mut seen = BTreeSet::new();
    let mut errors = Vec::new();
    let mut served = 0;
    for route in ROUTES {
        let ok = &doc["paths"][route.path]["get"]["responses"]["200"]["content"]["application/json"]
            ["schema"];
        if ok["$ref"].is_null() {
            continue;
        }
        let path = route.path.replace("{id}", "fa-prod-01");
        let mut urls = vec![path.clone()];
        if route.id == RouteId::SystemCapacity {
            urls.push(format!("{path}?resolution=daily"));
        }
        if route.id == RouteId::CapacitySummary || route.id == RouteId::CapacityHistory {
            urls.push(format!("{path}?group_by=environment"));
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
    let never: Vec<String> = schemas
        .iter()
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
