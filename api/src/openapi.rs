//! The OpenAPI 3.0 document of `/api/v1/openapi.json`. Paths and parameters come from the route
//! table ([`crate::routes::ROUTES`]); the schemas are generated (schemars) from the very types the
//! handlers serialize, so the document cannot drift from the responses. Each route's response type
//! is named once, in [`response_schema`]; `api/tests/openapi.rs` checks real responses against it.

use schemars::generate::{SchemaGenerator, SchemaSettings};
use schemars::{JsonSchema, Schema, json_schema};
use serde_json::{Map, Value, json};

use crate::http::{CommandsUnavailableBody, ErrorBody};
use crate::resources::alerts::{AlertDetail, AlertList, EventList};
use crate::resources::capacity::{CapacityHistory, CapacitySeries, CapacitySummary};
use crate::resources::commands::{AssigneeList, AuditEntryList, CommandsAccepted};
use crate::resources::deep::{PerformanceSeries, PoolHistory};
use crate::resources::forecast::Forecast;
use crate::resources::status::{CollectorList, PipelineStatus};
use crate::resources::systems::{SystemDetail, SystemList};
use crate::routes::{
    ACCESS_TOKEN_PARAM, CLUSTER_TYPES, LEVELS, ParamKind, RESOLUTIONS, ROUTES, RouteId, SEVERITIES,
    TIERS, VENDORS, XLSX,
};

/// The generator of the document's schemas: OpenAPI 3.0 dialect (`nullable`, definitions under
/// `#/components/schemas`), describing what is serialized.
fn generator() -> SchemaGenerator {
    let mut generator = SchemaSettings::openapi3().for_serialize().into_generator();
    // Every error body; referenced by name from the error responses.
    generator.subschema_for::<ErrorBody>();
    generator
}

/// The schema (a `$ref`) of a route's 200 response, from the type its handler serializes; `None`
/// for bodies that are not typed JSON.
pub fn response_schema(route: RouteId, generator: &mut SchemaGenerator) -> Option<Schema> {
    fn of<T: JsonSchema>(generator: &mut SchemaGenerator) -> Option<Schema> {
        Some(generator.subschema_for::<T>())
    }
    match route {
        RouteId::Systems => of::<SystemList>(generator),
        RouteId::System => of::<SystemDetail>(generator),
        RouteId::SystemCapacity => of::<CapacitySeries>(generator),
        RouteId::SystemPerformance => of::<PerformanceSeries>(generator),
        RouteId::SystemPools => of::<PoolHistory>(generator),
        RouteId::SystemForecast => of::<Forecast>(generator),
        RouteId::SystemEvents | RouteId::Events => of::<EventList>(generator),
        RouteId::CapacitySummary => of::<CapacitySummary>(generator),
        RouteId::CapacityHistory => of::<CapacityHistory>(generator),
        RouteId::Alerts => of::<AlertList>(generator),
        RouteId::Collectors => of::<CollectorList>(generator),
        RouteId::Status => of::<PipelineStatus>(generator),
        RouteId::AlertDetail => of::<AlertDetail>(generator),
        RouteId::Assignees => of::<AssigneeList>(generator),
        RouteId::Audit => of::<AuditEntryList>(generator),
        crate::routes::command_route!() => of::<CommandsAccepted>(generator),
        RouteId::ExportCapacity
        | RouteId::ExportCapacityHistory
        | RouteId::ExportCapacityXlsx
        | RouteId::ExportCapacityHistoryXlsx
        | RouteId::Stream
        | RouteId::OpenApi
        | RouteId::Healthz
        | RouteId::Readyz
        | RouteId::Metrics
        | RouteId::FleetMetrics => None,
    }
}

/// The schemas the generator collected, with `Option<Struct>` written the OpenAPI 3.0 way.
fn schemas(generator: &mut SchemaGenerator) -> Value {
    let mut schemas = Value::Object(generator.take_definitions(true));
    nullable_refs(&mut schemas);
    schemas
}

/// Rewrites `anyOf: [{$ref}, {nullable null}]` (how schemars writes an optional struct) as
/// `allOf: [{$ref}], nullable: true`: OpenAPI 3.0 ignores `nullable` beside a bare `$ref`.
fn nullable_refs(value: &mut Value) {
    match value {
        Value::Object(map) => {
            let rewrite = match map.get("anyOf").and_then(Value::as_array) {
                Some(options) if options.len() == 2 => {
                    let is_null = |v: &Value| {
                        v.get("enum") == Some(&json!([null]))
                            || v.get("type") == Some(&json!("null"))
                    };
                    match (&options[0], &options[1]) {
                        (r, n) | (n, r) if r.get("$ref").is_some() && is_null(n) => Some(r.clone()),
                        _ => None,
                    }
                }
                _ => None,
            };
            if let Some(reference) = rewrite {
                map.remove("anyOf");
                map.insert("allOf".into(), json!([reference]));
                map.insert("nullable".into(), Value::Bool(true));
            }
            map.values_mut().for_each(nullable_refs);
        }
        Value::Array(items) => items.iter_mut().for_each(nullable_refs),
        _ => {}
    }
}

fn string_enum(values: &[&str], nullable: bool) -> Schema {
    let mut schema = json_schema!({"type": "string", "enum": values});
    if nullable {
        schema.insert("nullable".into(), Value::Bool(true));
    }
    schema
}

/// Schema of a vendor name, or null.
pub fn vendor_or_null(_: &mut SchemaGenerator) -> Schema {
    string_enum(VENDORS, true)
}

/// Schema of a cluster type (`sdash_proto::ClusterType`), or null.
pub fn cluster_type_or_null(_: &mut SchemaGenerator) -> Schema {
    string_enum(CLUSTER_TYPES, true)
}

/// Schema of a pool's kind (`sdash_proto::PoolKind`).
pub fn pool_kind(_: &mut SchemaGenerator) -> Schema {
    string_enum(&sdash_proto::PoolKind::ALL.map(|k| k.as_str()), false)
}

/// Schema of an alert severity.
pub fn severity(_: &mut SchemaGenerator) -> Schema {
    string_enum(SEVERITIES, false)
}

/// Schema of an event level.
pub fn level(_: &mut SchemaGenerator) -> Schema {
    string_enum(LEVELS, false)
}

/// Schema of the storage tier a capacity series was read from.
pub fn tier(_: &mut SchemaGenerator) -> Schema {
    string_enum(TIERS, false)
}

/// Schema of what `resolution=` asked a capacity series for.
pub fn resolution_param(_: &mut SchemaGenerator) -> Schema {
    string_enum(RESOLUTIONS, false)
}

/// Schema of a `YYYY-MM-DD` day, or null.
pub fn date_or_null(_: &mut SchemaGenerator) -> Schema {
    json_schema!({"type": "string", "format": "date", "nullable": true})
}

fn param_schema(kind: ParamKind) -> Value {
    match kind {
        ParamKind::String | ParamKind::Cursor => json!({"type": "string"}),
        ParamKind::Integer { min, max } => {
            json!({"type": "integer", "minimum": min, "maximum": max})
        }
        ParamKind::Enum {
            values,
            list: false,
        } => json!({"type": "string", "enum": values}),
        ParamKind::Enum { values, list: true } => json!({
            "type": "string",
            "description": format!("comma-separated list of: {}", values.join(", ")),
            "pattern": format!("^({0})(,({0}))*$", values.join("|")),
        }),
        ParamKind::Time => json!({"type": "string", "format": "date-time"}),
        ParamKind::Boolean => json!({"type": "boolean"}),
    }
}

fn error_response(description: &str) -> Value {
    json!({
        "description": description,
        "content": {"application/json": {"schema": {"$ref": "#/components/schemas/Error"}}}
    })
}

/// The operation of a command route (POST): its JSON body, 202 with the command ids, and the
/// answers of the authentication, the checks and the bus.
fn command_operation(route: &crate::routes::RouteSpec, generator: &mut SchemaGenerator) -> Value {
    let mut parameters: Vec<Value> = Vec::new();
    if route.has_id() {
        parameters.push(id_parameter(route.id));
    }
    let accepted = response_schema(route.id, generator)
        .map(|s| s.to_value())
        .unwrap_or_else(|| json!({"type": "object"}));
    let body = crate::resources::commands::request_schema(route.id, generator)
        .map(|s| s.to_value())
        .unwrap_or_else(|| json!({"type": "object"}));
    let unavailable = generator
        .subschema_for::<CommandsUnavailableBody>()
        .to_value();
    let mut responses = Map::new();
    responses.insert(
        "202".into(),
        json!({
            "description": "Accepted: JetStream acknowledged every command; the writer applies them next (see GET /api/v1/audit).",
            "content": {"application/json": {"schema": accepted}},
        }),
    );
    responses.insert(
        "400".into(),
        error_response("Invalid body or parameter (the command was not published)."),
    );
    responses.insert(
        "401".into(),
        error_response("No bearer token, or one the server does not know."),
    );
    responses.insert(
        "403".into(),
        error_response(
            "The token may read but not act (a read token), or commands are disabled (the server has no --operator-tokens-file).",
        ),
    );
    if route.has_id() || route.id.alert_id_in_path() || route.path.contains("/bulk/") {
        responses.insert(
            "404".into(),
            error_response(if route.id == RouteId::PollNow {
                "Unknown system."
            } else {
                "Unknown alert id(s)."
            }),
        );
    }
    responses.insert(
        "405".into(),
        error_response("Method not allowed (command routes take POST only)."),
    );
    if route.id == RouteId::PollNow {
        responses.insert(
            "429".into(),
            error_response(
                "The system was asked to poll less than --poll-now-min-interval ago; Retry-After says when to try again.",
            ),
        );
    }
    responses.insert("500".into(), error_response("Internal error."));
    responses.insert(
        "503".into(),
        json!({
            "description": "NATS unavailable or no acknowledgement within --command-publish-timeout; command_ids lists the commands published before the failure (empty: nothing was published).",
            "content": {"application/json": {"schema": unavailable}},
        }),
    );
    json!({
        "operationId": format!("{:?}", route.id),
        "summary": route.summary,
        "parameters": parameters,
        "requestBody": {
            // `{}` bodies may be left out.
            "required": !matches!(
                route.id,
                RouteId::Acknowledge | RouteId::Unacknowledge | RouteId::Unassign | RouteId::PollNow
            ),
            "content": {"application/json": {"schema": body}},
        },
        "responses": responses,
        "security": [{"bearer": []}],
    })
}

/// The `{id}` path parameter: an alert's id on alert routes, else a system id.
fn id_parameter(route: RouteId) -> Value {
    if route.alert_id_in_path() {
        json!({
            "name": "id", "in": "path", "required": true,
            "description": "Alert id: the `id` of an alert in GET /api/v1/alerts (one alert instance).",
            "schema": {"type": "integer", "minimum": 1},
            "example": 1,
        })
    } else {
        json!({
            "name": "id", "in": "path", "required": true,
            "description": "System id ([a-z0-9_-]{1,64}).",
            "schema": {"type": "string", "pattern": "^[a-z0-9_-]{1,64}$"},
            "example": "fa-prod-01",
        })
    }
}

/// The OpenAPI 3 document: paths from [`ROUTES`], schemas from the response types.
pub fn openapi() -> Value {
    let mut generator = generator();
    let mut paths = Map::new();
    for route in ROUTES {
        if route.id.is_command() {
            let op = command_operation(route, &mut generator);
            paths.insert(route.path.to_owned(), json!({ "post": op }));
            continue;
        }
        let mut parameters: Vec<Value> = Vec::new();
        if route.has_id() {
            parameters.push(id_parameter(route.id));
        }
        for p in route.params {
            let mut param = json!({
                "name": p.name, "in": "query", "required": false,
                "description": p.description,
                "schema": param_schema(p.kind),
            });
            if p.repeat {
                param["explode"] = json!(true);
                param["schema"] = json!({"type": "array", "items": param_schema(p.kind)});
            }
            if !p.example.is_empty() {
                param["example"] = if p.repeat {
                    json!([p.example])
                } else {
                    json!(p.example)
                };
            }
            parameters.push(param);
        }
        let ok_schema = match response_schema(route.id, &mut generator) {
            Some(schema) => schema.to_value(),
            None if route.content == "application/json" => json!({"type": "object"}),
            None if route.content == XLSX => json!({"type": "string", "format": "binary"}),
            None => json!({"type": "string"}),
        };
        let ok_content = json!({route.content: {"schema": ok_schema}});
        let mut responses = Map::new();
        responses.insert(
            "200".into(),
            json!({"description": "OK", "content": ok_content}),
        );
        let download = route.content == "text/csv" || route.content == XLSX;
        if route.content == "application/json" || download {
            responses.insert(
                "304".into(),
                json!({"description": "Not modified (If-None-Match matched the ETag)."}),
            );
        }
        if !route.params.is_empty() || route.has_id() {
            responses.insert("400".into(), error_response("Invalid parameter."));
        }
        if route.protected() {
            responses.insert(
                "401".into(),
                error_response(if route.query_token() {
                    "Bearer token (header or access_token) required (when the server has one)."
                } else {
                    "Bearer token required (when the server has one)."
                }),
            );
        }
        if route.has_id() {
            responses.insert(
                "404".into(),
                error_response(if route.id.alert_id_in_path() {
                    "Unknown alert."
                } else {
                    "Unknown system."
                }),
            );
        }
        if route.id != RouteId::Healthz
            && route.id != RouteId::Metrics
            && route.id != RouteId::OpenApi
        {
            responses.insert(
                "503".into(),
                error_response("Database (or, for the stream, NATS) unavailable."),
            );
        }
        if route.schema.is_some() || download {
            responses.insert(
                "500".into(),
                error_response("Internal error (a query and its row type disagree)."),
            );
        }
        let mut op = json!({
            "operationId": format!("{:?}", route.id),
            "summary": route.summary,
            "parameters": parameters,
            "responses": responses,
        });
        if !route.protected() {
            op["security"] = json!([]);
        } else if route.query_token() {
            op["security"] = json!([{"bearer": []}, {"accessToken": []}]);
        }
        paths.insert(route.path.to_owned(), json!({ "get": op }));
    }
    json!({
        "openapi": "3.0.3",
        "info": {
            "title": "sdash API",
            "version": env!("CARGO_PKG_VERSION"),
            "description": "JSON API over the sdash database: reads (GET), and operator commands (POST: acknowledge, assign, comment, poll now) that are published to the bus for the writer to apply, never written by the API itself. Commands need an operator token (--operator-tokens-file); a read token gets 403. Times are RFC 3339 (UTC) with a `_ms` twin in ms since the epoch; capacity is bytes. Errors are {\"error\": \"...\"}.",
        },
        "servers": [{"url": "/"}],
        "security": [{"bearer": []}],
        "paths": paths,
        "components": {
            "securitySchemes": {
                "bearer": {"type": "http", "scheme": "bearer"},
                "accessToken": {
                    "type": "apiKey", "in": "query", "name": ACCESS_TOKEN_PARAM,
                    "description": "The bearer token as a query parameter, accepted only by the live stream and the CSV and XLSX exports (EventSource and download links cannot send a header). Prefer the header elsewhere: URLs end up in browser history and proxy logs.",
                },
            },
            "schemas": schemas(&mut generator),
        },
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The route table names each response schema; it must be the name of the handler's type.
    #[test]
    fn route_table_names_the_response_types() {
        let mut generator = generator();
        for route in ROUTES {
            let reference = response_schema(route.id, &mut generator)
                .and_then(|s| s.get("$ref").and_then(Value::as_str).map(str::to_owned));
            let named = route
                .schema
                .map(|name| format!("#/components/schemas/{name}"));
            assert_eq!(reference, named, "{}", route.path);
        }
    }

    /// OpenAPI 3.0 has no JSON Schema 2020-12 keywords: nothing the generator emits may use them.
    #[test]
    fn schemas_are_openapi_3_0() {
        fn walk(path: &str, value: &Value) {
            match value {
                Value::Object(map) => {
                    for key in ["$schema", "$defs", "const", "prefixItems", "examples"] {
                        assert!(!map.contains_key(key), "{path} uses {key}");
                    }
                    if let Some(Value::Array(_)) = map.get("type") {
                        panic!("{path} has a type list (OpenAPI 3.0 uses nullable)");
                    }
                    if let Some(Value::String(r)) = map.get("$ref") {
                        assert!(r.starts_with("#/components/schemas/"), "{path}: {r}");
                    }
                    for (k, v) in map {
                        walk(&format!("{path}/{k}"), v);
                    }
                }
                Value::Array(items) => items.iter().for_each(|v| walk(path, v)),
                _ => {}
            }
        }
        walk("", &openapi());
    }
}
