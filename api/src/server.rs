//! The HTTP surface as one warp filter: route matching by the route table, method and bearer-token
//! checks, parameter validation, dispatch to the resources, and per-route metrics.

use std::convert::Infallible;
use std::sync::Arc;
use std::time::Instant;

use warp::Filter;
use warp::http::{HeaderMap, HeaderValue, Method, StatusCode, header};
use warp::reply::{Reply, Response};

use crate::http::{ApiError, Params, cached, constant_time_eq};
use crate::resources::{alerts, capacity, export, forecast, status, system_path_id, systems};
use crate::routes::{self, RouteId, RouteSpec};
use crate::state::AppState;

/// The whole HTTP surface as one warp filter.
pub fn filter(
    state: Arc<AppState>,
) -> impl Filter<Extract = (Response,), Error = Infallible> + Clone {
    let query = warp::query::<Vec<(String, String)>>()
        .map(Some)
        .or(warp::any().map(|| None))
        .unify();
    warp::any()
        .map(move || state.clone())
        .and(warp::method())
        .and(warp::path::full())
        .and(query)
        .and(warp::header::headers_cloned())
        .then(
            |state: Arc<AppState>,
             method: Method,
             path: warp::path::FullPath,
             query,
             headers: HeaderMap| async move {
                let started = Instant::now();
                let (label, mut resp) =
                    handle(&state, &method, path.as_str(), query, &headers).await;
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

async fn handle(
    state: &Arc<AppState>,
    method: &Method,
    path: &str,
    query: Option<Vec<(String, String)>>,
    headers: &HeaderMap,
) -> (&'static str, Response) {
    let Some((route, id)) = routes::match_path(path) else {
        return (
            "unmatched",
            ApiError::NotFound(format!("no route for {path}")).into_response(),
        );
    };
    let result = async {
        if method != Method::GET && method != Method::HEAD {
            return Err(ApiError::MethodNotAllowed);
        }
        if route.protected()
            && let Some(token) = &state.auth_token
            && !authorized(route, headers, query.as_deref(), token)
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

/// Whether a request presents the server's token: as `Authorization: Bearer <token>` on every
/// protected route, or as `?access_token=<token>` on the routes that allow it
/// ([`RouteSpec::query_token`]: the live stream and the CSV exports). Both comparisons take
/// constant time; the token is never logged (the API logs no request URLs).
fn authorized(
    route: &RouteSpec,
    headers: &HeaderMap,
    query: Option<&[(String, String)]>,
    token: &str,
) -> bool {
    let bearer = headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| {
            v.strip_prefix("Bearer ")
                .or_else(|| v.strip_prefix("bearer "))
        })
        .map(str::trim);
    let by_header = bearer.is_some_and(|t| constant_time_eq(t.as_bytes(), token.as_bytes()));
    let by_query = route.query_token()
        && query
            .and_then(|q| q.iter().find(|(k, _)| k == routes::ACCESS_TOKEN_PARAM))
            .is_some_and(|(_, v)| constant_time_eq(v.as_bytes(), token.as_bytes()));
    by_header || by_query
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
