//! The HTTP surface as one warp filter: route matching by the route table, method and bearer-token
//! checks, parameter validation, dispatch to the resources, and per-route metrics.

use std::convert::Infallible;
use std::sync::Arc;
use std::time::Instant;

use futures::{Stream, StreamExt};
use warp::http::{HeaderMap, HeaderValue, Method, StatusCode, header};
use warp::reply::{Reply, Response};
use warp::{Buf, Filter};

use crate::auth::{Identity, identify};
use crate::http::{ApiError, Params, cached};
use crate::resources::{
    alerts, capacity, commands, deep, export, forecast, status, system_path_id, systems,
};
use crate::routes::{self, RouteId, RouteSpec};
use crate::state::AppState;

/// A request body as it arrives.
type BodyStream =
    futures::stream::BoxStream<'static, Result<warp::hyper::body::Bytes, warp::Error>>;

fn boxed_body<S, B>(body: S) -> BodyStream
where
    S: Stream<Item = Result<B, warp::Error>> + Send + 'static,
    B: Buf,
{
    Box::pin(body.map(|chunk| chunk.map(|mut b| b.copy_to_bytes(b.remaining()))))
}

/// The whole HTTP surface as one warp filter.
pub fn filter(
    state: Arc<AppState>,
) -> impl Filter<Extract = (Response,), Error = Infallible> + Clone {
    let query = warp::query::<Vec<(String, String)>>()
        .map(Some)
        .or(warp::any().map(|| None))
        .unify();
    // The body is read only by the command routes, after their token was checked.
    let body = warp::body::stream()
        .map(boxed_body)
        .or(warp::any().map(|| -> BodyStream { Box::pin(futures::stream::empty()) }))
        .unify();
    warp::any()
        .map(move || state.clone())
        .and(warp::method())
        .and(warp::path::full())
        .and(query)
        .and(warp::header::headers_cloned())
        .and(body)
        .then(
            |state: Arc<AppState>,
             method: Method,
             path: warp::path::FullPath,
             query,
             headers: HeaderMap,
             body: BodyStream| async move {
                let started = Instant::now();
                let (label, mut resp) =
                    handle(&state, &method, path.as_str(), query, &headers, body).await;
                resp.headers_mut().insert(
                    header::X_CONTENT_TYPE_OPTIONS,
                    HeaderValue::from_static("nosniff"),
                );
                state.metrics.observe(
                    label,
                    resp.status().as_u16(),
                    started.elapsed().as_secs_f64(),
                );
                resp
            },
        )
}

async fn handle<S, B>(
    state: &Arc<AppState>,
    method: &Method,
    path: &str,
    query: Option<Vec<(String, String)>>,
    headers: &HeaderMap,
    body: S,
) -> (&'static str, Response)
where
    S: Stream<Item = Result<B, warp::Error>> + Send,
    B: Buf,
{
    let Some((route, id)) = routes::match_path(path) else {
        return (
            "unmatched",
            ApiError::NotFound(format!("no route for {path}")).into_response(),
        );
    };
    let result = async {
        if route.id.is_command() {
            if method != Method::POST {
                return Err(ApiError::MethodNotAllowed("POST"));
            }
            let actor = operator(state, headers)?;
            let pairs = query.ok_or_else(|| ApiError::bad("malformed query string"))?;
            Params::new(pairs, route.params)?;
            let body = read_body(body, commands::MAX_BODY_BYTES).await?;
            return commands::handle(state, route.id, id.as_deref(), &actor, &body).await;
        }
        if method != Method::GET && method != Method::HEAD {
            return Err(ApiError::MethodNotAllowed("GET, HEAD"));
        }
        if route.protected()
            && state.auth_token.is_some()
            && authorized(state, route, headers, query.as_deref()) == Identity::Nobody
        {
            return Err(ApiError::Unauthorized);
        }
        let mut pairs = query.ok_or_else(|| ApiError::bad("malformed query string"))?;
        if route.query_token() {
            // Used (or ignored, without a server token) above; never seen by the handlers.
            pairs.retain(|(k, _)| k != routes::ACCESS_TOKEN_PARAM);
        }
        let params = Params::new(pairs, route.params)?;
        dispatch(state, route, &params, id.as_deref(), headers).await
    }
    .await;
    (route.path, result.unwrap_or_else(ApiError::into_response))
}

/// The bearer token of `Authorization: Bearer <token>`.
fn bearer(headers: &HeaderMap) -> Option<&str> {
    headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| {
            v.strip_prefix("Bearer ")
                .or_else(|| v.strip_prefix("bearer "))
        })
        .map(str::trim)
}

/// Who a read request is: the server's read token or an operator token (operators may read
/// too), as `Authorization: Bearer <token>` on every protected route, or as
/// `?access_token=<token>` on the routes that allow it ([`RouteSpec::query_token`]: the live
/// stream and the CSV exports). Every comparison takes constant time; the token is never logged
/// (the API logs no request URLs).
fn authorized(
    state: &AppState,
    route: &RouteSpec,
    headers: &HeaderMap,
    query: Option<&[(String, String)]>,
) -> Identity {
    let read = state.auth_token.as_deref();
    let ops = state.operators.as_ref();
    let by_header = identify(bearer(headers), read, ops);
    if by_header != Identity::Nobody || !route.query_token() {
        return by_header;
    }
    let token = query
        .and_then(|q| q.iter().find(|(k, _)| k == routes::ACCESS_TOKEN_PARAM))
        .map(|(_, v)| v.as_str());
    identify(token, read, ops)
}

/// The actor of a command request: the name of the operator token in its `Authorization`
/// header. 403 when commands are disabled (no `--operator-tokens-file`) or the token is the
/// read token; 401 without a token or with an unknown one.
fn operator(state: &AppState, headers: &HeaderMap) -> Result<String, ApiError> {
    let Some(operators) = &state.operators else {
        return Err(ApiError::Forbidden(
            "commands are disabled on this server: it has no --operator-tokens-file".into(),
        ));
    };
    match identify(
        bearer(headers),
        state.auth_token.as_deref(),
        Some(operators),
    ) {
        Identity::Operator(name) => Ok(name),
        Identity::Reader => Err(ApiError::Forbidden(
            "this token may read but not act: commands need an operator token".into(),
        )),
        Identity::Nobody => Err(ApiError::Unauthorized),
    }
}

/// A request body of at most `limit` bytes (400 beyond).
async fn read_body<S, B>(body: S, limit: usize) -> Result<Vec<u8>, ApiError>
where
    S: Stream<Item = Result<B, warp::Error>> + Send,
    B: Buf,
{
    let mut body = std::pin::pin!(body);
    let mut out = Vec::new();
    while let Some(chunk) = body.next().await {
        let mut chunk = chunk.map_err(|_| ApiError::bad("the request body could not be read"))?;
        if out.len() + chunk.remaining() > limit {
            return Err(ApiError::bad(format!(
                "the request body is larger than {limit} bytes"
            )));
        }
        while chunk.has_remaining() {
            let bytes = chunk.chunk();
            let n = bytes.len();
            out.extend_from_slice(bytes);
            chunk.advance(n);
        }
    }
    Ok(out)
}

async fn dispatch(
    st: &Arc<AppState>,
    route: &RouteSpec,
    p: &Params,
    id: Option<&str>,
    h: &HeaderMap,
) -> Result<Response, ApiError> {
    match route.id {
        RouteId::Systems => systems::list(st, p, h).await,
        RouteId::System => systems::detail(st, &system_path_id(id)?, h).await,
        RouteId::SystemCapacity => capacity::series(st, p, &system_path_id(id)?, h).await,
        RouteId::SystemPerformance => deep::performance(st, p, &system_path_id(id)?, h).await,
        RouteId::SystemPools => deep::pools(st, p, &system_path_id(id)?, h).await,
        RouteId::SystemForecast => forecast::forecast(st, p, &system_path_id(id)?, h).await,
        RouteId::SystemEvents => alerts::events(st, p, id, h).await,
        RouteId::CapacitySummary => capacity::summary(st, p, h).await,
        RouteId::CapacityHistory => capacity::history(st, p, h).await,
        RouteId::Alerts => alerts::alerts(st, p, h).await,
        RouteId::Events => alerts::events(st, p, None, h).await,
        RouteId::Collectors => status::collectors(st, h).await,
        RouteId::Status => status::status(st, h).await,
        RouteId::ExportCapacity => export::capacity(st, h).await,
        RouteId::ExportCapacityHistory => export::capacity_history(st, p, h).await,
        RouteId::ExportCapacityXlsx => export::capacity_xlsx(st, p, h).await,
        RouteId::ExportCapacityHistoryXlsx => export::capacity_history_xlsx(st, p, h).await,
        RouteId::Stream => live_stream(st, p),
        RouteId::OpenApi => Ok(cached(
            h,
            "application/json",
            st.openapi.clone(),
            "public, max-age=300",
        )),
        RouteId::Healthz => Ok(text(StatusCode::OK, "ok")),
        RouteId::Readyz => Ok(if st.db.ping().await {
            text(StatusCode::OK, "ready")
        } else {
            text(StatusCode::SERVICE_UNAVAILABLE, "database not reachable")
        }),
        RouteId::FleetMetrics => fleet_metrics(st).await,
        RouteId::AlertDetail => alerts::detail(st, id, h).await,
        RouteId::Assignees => commands::assignees(st, h).await,
        RouteId::Audit => commands::audit(st, p, h).await,
        // Served by `handle` before dispatch (POST).
        crate::routes::command_route!() => Err(ApiError::MethodNotAllowed("POST")),
        RouteId::Metrics => {
            let mut resp = Response::new(sdash_service::render_metrics(&st.registry).into());
            resp.headers_mut().insert(
                header::CONTENT_TYPE,
                HeaderValue::from_static(
                    "application/openmetrics-text; version=1.0.0; charset=utf-8",
                ),
            );
            Ok(resp)
        }
    }
}

/// `GET /metrics/fleet` ([`crate::fleet_metrics::FleetMetrics::scrape`]).
async fn fleet_metrics(st: &Arc<AppState>) -> Result<Response, ApiError> {
    let rendered = st.fleet_metrics.scrape(st).await?;
    let mut resp = Response::new(rendered.body(sdash_proto::now_ms()).into());
    resp.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static(crate::fleet_metrics::CONTENT_TYPE),
    );
    resp.headers_mut()
        .insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    Ok(resp)
}

fn text(status: StatusCode, body: &'static str) -> Response {
    let mut resp = Response::new(body.into());
    *resp.status_mut() = status;
    resp.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("text/plain; charset=utf-8"),
    );
    resp.headers_mut()
        .insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    resp
}

fn live_stream(st: &Arc<AppState>, p: &Params) -> Result<Response, ApiError> {
    let system = p.system_id("system")?;
    let hub = match &st.hub {
        Some(hub) if hub.available() => hub.clone(),
        Some(_) => {
            return Err(ApiError::Unavailable(
                "live stream unavailable: NATS is not connected".into(),
            ));
        }
        None => {
            return Err(ApiError::Unavailable(
                "live stream disabled on this server".into(),
            ));
        }
    };
    let events = hub
        .register(system)
        .map_err(|full| ApiError::Unavailable(full.to_string()))?
        .into_events(st.stream_ping);
    let mut resp = warp::sse::reply(events).into_response();
    resp.headers_mut()
        .insert(header::CACHE_CONTROL, HeaderValue::from_static("no-cache"));
    resp.headers_mut()
        .insert("x-accel-buffering", HeaderValue::from_static("no"));
    Ok(resp)
}
