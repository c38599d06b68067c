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
