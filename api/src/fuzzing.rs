//! The query-parameter parsing of a request as the cargo-fuzz target `api_query` (`fuzz/`, see
//! `FUZZING.md`) and its corpus replay test (`api/tests/fuzz_corpus.rs`) run it: one function, so
//! the test replays exactly what was fuzzed. Not an API for anything else.

use crate::http::{ApiError, ApiResult, Params, decode_cursor};
use crate::resources::page::Keyset;
use crate::routes::{self, ParamKind};

/// Parses fuzz input as a request target `path?query` (lossy UTF-8) the way the server does
/// before it reaches the database: the route and its `{id}` segment, the query string decoded as
/// `warp::query` decodes it, the names checked against the route's table, then every parameter
/// the route declares read by its declared type, the cursor and the `from`/`to` range. `Ok` when
/// the server would go on to run the route's query.
pub fn query(data: &[u8]) -> ApiResult<Params> {
    let text = String::from_utf8_lossy(data);
    let (path, raw_query) = text.split_once('?').unwrap_or((&text, ""));
    let (route, id) = routes::match_path(path)
        .ok_or_else(|| ApiError::NotFound(format!("no route for {path}")))?;
    if route.has_id() {
        crate::resources::system_path_id(id.as_deref())?;
    }
    let mut pairs: Vec<(String, String)> = serde_urlencoded::from_str(raw_query)
        .map_err(|_| ApiError::bad("malformed query string"))?;
    if route.query_token() {
        pairs.retain(|(k, _)| k != routes::ACCESS_TOKEN_PARAM);
    }
    let params = Params::new(pairs, route.params)?;
    for spec in route.params {
        let name = spec.name;
        match spec.kind {
            ParamKind::Integer { min, max } => {
                params.int(name, min, min, max)?;
            }
            ParamKind::Time => {
                params.time(name)?;
            }
            ParamKind::Enum { values, list: true } => {
                params.enums(name, |v| values.contains(&v).then_some(()), values)?;
            }
            ParamKind::Enum {
                values,
                list: false,
            } => {
                params.one_of(name, values, values.first().copied().unwrap_or_default())?;
            }
            ParamKind::Boolean => {
                params.boolean(name, false)?;
            }
            ParamKind::Cursor => {
                if let Some(text) = params.get(name) {
                    decode_cursor(text)?;
                }
                // Both id types of the keyset-paged lists (alerts: text ids, events: numbers).
                let text_ids = Keyset::cursor::<String>(&params);
                let number_ids = Keyset::cursor::<i64>(&params);
                if params.get(name).is_some() && text_ids.is_err() && number_ids.is_err() {
                    return Err(ApiError::bad("cursor does not belong to this list"));
                }
            }
            ParamKind::String => match name {
                "system" => {
                    params.system_id(name)?;
                }
                "group_by" | "subgroup_by" => {
                    params.tag_key(name)?;
                }
                "tag" => {
                    crate::resources::systems::tag_filters(&params)?;
                }
                _ => {}
            },
        }
    }
    if route
        .params
        .iter()
        .any(|p| p.name == "from" || p.name == "to")
    {
        crate::resources::range(&params, 30)?;
    }
    Ok(params)
}
