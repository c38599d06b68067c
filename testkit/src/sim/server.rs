//! The HTTP(S) side of the simulator: accept loop, routing by system prefix, faults, control API.

use std::collections::HashMap;
use std::io;
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use http_body_util::{BodyExt, Full, Limited};
use hyper::body::Incoming;
use hyper::server::conn::http1;
use hyper::service::service_fn;
use hyper::{Request, Response};
use hyper_util::rt::TokioIo;
use sdash_collector::http::percent_decode;
use serde::Deserialize;
use tokio::net::TcpListener;
use tokio_rustls::TlsAcceptor;

use super::{Fault, FaultSpec, Scenario, Shared, SimRequest, SimResponse, lock};

/// Largest request body accepted.
const MAX_REQUEST_BODY: usize = 1 << 20;

/// Accepts connections until the task is aborted (dropping the `JoinSet` aborts the
/// connections too).
pub(crate) async fn serve(
    listener: TcpListener,
    tls: Option<TlsAcceptor>,
    shared: Arc<Shared>,
    control_only: bool,
) {
    let mut conns = tokio::task::JoinSet::new();
    loop {
        let accepted = listener.accept().await;
        while conns.try_join_next().is_some() {}
        let (tcp, _) = match accepted {
            Ok(a) => a,
            Err(_) => {
                // Out of file descriptors or similar: back off instead of spinning.
                tokio::time::sleep(Duration::from_millis(20)).await;
                continue;
            }
        };
        let _ = tcp.set_nodelay(true);
        let shared = shared.clone();
        let tls = tls.clone();
        conns.spawn(async move {
            match tls {
                Some(acceptor) => {
                    if let Ok(Ok(stream)) =
                        tokio::time::timeout(Duration::from_secs(10), acceptor.accept(tcp)).await
                    {
                        serve_conn(TokioIo::new(stream), shared, control_only).await;
                    }
                }
                None => serve_conn(TokioIo::new(tcp), shared, control_only).await,
            }
        });
    }
}

async fn serve_conn<I>(io: I, shared: Arc<Shared>, control_only: bool)
where
    I: hyper::rt::Read + hyper::rt::Write + Unpin + Send + 'static,
{
    let service = service_fn(move |req| {
        let shared = shared.clone();
        async move { handle(shared, req, control_only).await }
    });
    let _ = http1::Builder::new().serve_connection(io, service).await;
}

type HyperResponse = Response<Full<Bytes>>;

async fn handle(
    shared: Arc<Shared>,
    req: Request<Incoming>,
    control_only: bool,
) -> Result<HyperResponse, io::Error> {
    let method = req.method().as_str().to_owned();
    let path = req.uri().path().to_owned();
    let query = parse_query(req.uri().query().unwrap_or(""));
    let headers: HashMap<String, String> = req
        .headers()
        .iter()
        .filter_map(|(k, v)| Some((k.as_str().to_ascii_lowercase(), v.to_str().ok()?.to_owned())))
        .collect();
    let body = match Limited::new(req.into_body(), MAX_REQUEST_BODY)
        .collect()
        .await
    {
        Ok(b) => b.to_bytes(),
        Err(_) => return Ok(plain(413, "request body too large or broken")),
    };

    if let Some(rest) = path.strip_prefix("/control/") {
        return Ok(control(&shared, &method, rest, &body));
    }
    if control_only {
        return Ok(plain(404, "only /control/... is served here"));
    }

    let trimmed = path.trim_start_matches('/');
    let (id, vendor_path) = match trimmed.split_once('/') {
        Some((id, rest)) => (id, format!("/{rest}")),
        None => (trimmed, "/".to_owned()),
    };
    let Some(system) = shared.systems.get(id) else {
        return Ok(plain(404, "no such simulated system"));
    };
    let (fault, vendor) = {
        let mut s = lock(system);
        *s.stats.requests.entry(vendor_path.clone()).or_default() += 1;
        let applies = s
            .fault_endpoint
            .as_ref()
            .is_none_or(|e| vendor_path.ends_with(e.as_str()));
        (
            if applies {
                s.fault.clone()
            } else {
                Fault::None
            },
            s.vendor,
        )
    };
    let sim = shared.sim(vendor);
    match &fault {
        Fault::Unreachable => {
            return Err(io::Error::new(
                io::ErrorKind::ConnectionAborted,
                "simulated: unreachable",
            ));
        }
        Fault::Hang => {
            tokio::time::sleep(shared.hang).await;
            return Err(io::Error::new(io::ErrorKind::TimedOut, "simulated: hang"));
        }
        Fault::Latency { ms } => tokio::time::sleep(Duration::from_millis(*ms)).await,
        Fault::Html500 => {
            return Ok(to_hyper(SimResponse {
                status: 500,
                headers: vec![("content-type".into(), "text/html; charset=utf-8".into())],
                body: Bytes::from_static(
                    b"<!DOCTYPE html>\n<html><head><title>500 Internal Server Error</title></head>\n<body><h1>Internal Server Error</h1>\n<p>The server encountered an internal error and was unable to complete your request.</p>\n<hr><address>Apache Server</address></body></html>\n",
                ),
            }));
        }
        Fault::Status { code } => {
            let mut r = sim.error(*code, "simulated failure");
            if *code == 429 {
                r = r.with_header("retry-after", "1");
            }
            return Ok(to_hyper(r));
        }
        Fault::EmptyBody => {
            return Ok(to_hyper(
                SimResponse::empty(200).with_header("content-type", "application/json"),
            ));
        }
        Fault::InvalidJson => {
            return Ok(to_hyper(SimResponse {
                status: 200,
                headers: vec![("content-type".into(), "application/json".into())],
                body: Bytes::from_static(
                    b"{\"continuation_token\": null, \"items\": [{\"name\": \"CT0\", \"status\": ",
                ),
            }));
        }
        Fault::None | Fault::WrongTypes | Fault::ExpireSessions | Fault::WrongCredentials => {}
    }
    let now = shared.clock.now();
    let request = SimRequest {
        method,
        path: vendor_path,
        query,
        headers,
        body,
    };
    let delay = sim.delay(&lock(system), &request);
    if let Some(delay) = delay {
        tokio::time::sleep(delay).await;
    }
    let mut resp = {
        let mut s = lock(system);
        sim.handle(&mut s, &now, &request)
    };
    if fault == Fault::WrongTypes
        && resp.status < 300
        && let Ok(value) = serde_json::from_slice::<serde_json::Value>(&resp.body)
    {
        resp.body = Bytes::from(swap_types(value).to_string());
    }
    Ok(to_hyper(resp))
}

/// Strings become numbers and numbers strings, recursively: the right shape, the wrong types.
fn swap_types(value: serde_json::Value) -> serde_json::Value {
    use serde_json::Value;
    match value {
        Value::String(_) => Value::from(42),
        Value::Number(n) => Value::String(n.to_string()),
        Value::Bool(b) => Value::String(b.to_string()),
        Value::Array(items) => Value::Array(items.into_iter().map(swap_types).collect()),
        Value::Object(map) => {
            Value::Object(map.into_iter().map(|(k, v)| (k, swap_types(v))).collect())
        }
        Value::Null => Value::Null,
    }
}

#[derive(Deserialize)]
struct ScenarioBody {
    scenario: Scenario,
}

fn control(shared: &Shared, method: &str, rest: &str, body: &[u8]) -> HyperResponse {
    let parts: Vec<&str> = rest.split('/').filter(|p| !p.is_empty()).collect();
    match (method, parts.as_slice()) {
        ("GET", ["systems"]) => {
            let list: Vec<serde_json::Value> = shared
                .order
                .iter()
                .filter_map(|id| {
                    let s = lock(shared.systems.get(id)?);
                    Some(serde_json::json!({ "id": s.id, "vendor": s.vendor.as_str(), "path": format!("/{}", s.id) }))
                })
                .collect();
            to_hyper(SimResponse::json(200, &serde_json::Value::Array(list)))
        }
        ("GET", [id]) => match shared.systems.get(*id) {
            Some(system) => {
                let s = lock(system);
                let capacity = shared.sim(s.vendor).capacity(&s, &shared.clock.now());
                to_hyper(SimResponse::json(
                    200,
                    &serde_json::json!({
                        "id": s.id,
                        "vendor": s.vendor.as_str(),
                        "scenario": s.scenario,
                        "fault": s.fault,
                        "fault_endpoint": s.fault_endpoint,
                        "sessions": s.sessions.len(),
                        "stats": s.stats,
                        "capacity": capacity,
                    }),
                ))
            }
            None => plain(404, "no such simulated system"),
        },
        ("POST", [id, "fault"]) => match serde_json::from_slice::<FaultSpec>(body) {
            Ok(spec) => {
                if shared.set_fault(id, spec) {
                    to_hyper(SimResponse::json(200, &serde_json::json!({ "ok": true })))
                } else {
                    plain(404, "no such simulated system")
                }
            }
            Err(e) => plain(400, &format!("invalid fault: {e}")),
        },
        ("POST", [id, "scenario"]) => match serde_json::from_slice::<ScenarioBody>(body) {
            Ok(b) => match shared.systems.get(*id) {
                Some(system) => {
                    lock(system).scenario = b.scenario;
                    to_hyper(SimResponse::json(200, &serde_json::json!({ "ok": true })))
                }
                None => plain(404, "no such simulated system"),
            },
            Err(e) => plain(400, &format!("invalid scenario: {e}")),
        },
        _ => plain(404, "unknown control route"),
    }
}

fn plain(status: u16, message: &str) -> HyperResponse {
    to_hyper(SimResponse::json(
        status,
        &serde_json::json!({ "error": message }),
    ))
}

fn to_hyper(resp: SimResponse) -> HyperResponse {
    let mut builder = Response::builder().status(resp.status);
    for (k, v) in &resp.headers {
        builder = builder.header(k.as_str(), v.as_str());
    }
    match builder.body(Full::new(resp.body)) {
        Ok(r) => r,
        Err(_) => {
            let mut r = Response::new(Full::new(Bytes::from_static(
                b"{\"error\":\"simulator built an invalid response\"}",
            )));
            *r.status_mut() = hyper::StatusCode::INTERNAL_SERVER_ERROR;
            r
        }
    }
}

/// Decodes `a=1&b=x%27y` into pairs (`+` is a space).
pub(crate) fn parse_query(query: &str) -> Vec<(String, String)> {
    query
        .split('&')
        .filter(|p| !p.is_empty())
        .map(|p| {
            let (k, v) = p.split_once('=').unwrap_or((p, ""));
            (percent_decode(k), percent_decode(v))
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn queries_decode() {
        assert_eq!(
            parse_query("filter=state%3D%27open%27&limit=5&x"),
            vec![
                ("filter".into(), "state='open'".into()),
                ("limit".into(), "5".into()),
                ("x".into(), "".into())
            ]
        );
        assert_eq!(percent_decode("a+b%2"), "a b%2");
    }

    #[tokio::test]
    async fn the_control_listener_sets_faults_and_reports_state() {
        let _ = rustls::crypto::ring::default_provider().install_default();
        let fleet = super::super::Fleet::start(super::super::SimConfig {
            systems: 2,
            control_listen: Some(std::net::SocketAddr::from(([127, 0, 0, 1], 0))),
            ..Default::default()
        })
        .await
        .expect("starts");
        let control = fleet.control_addr().expect("control listener");
        let client = reqwest::Client::builder()
            .no_proxy()
            .build()
            .expect("client");
        let url = |p: &str| format!("http://{control}/control/{p}");
        let resp = client
            .post(url("sim-pure-0002/fault"))
            .body(r#"{"kind":"latency","ms":5,"endpoint":"/arrays"}"#)
            .send()
            .await
            .expect("answer");
        assert_eq!(resp.status().as_u16(), 200);
        let state: serde_json::Value = client
            .get(url("sim-pure-0002"))
            .send()
            .await
            .expect("answer")
            .json()
            .await
            .expect("json");
        assert_eq!(
            state["fault"],
            serde_json::json!({"kind": "latency", "ms": 5})
        );
        assert_eq!(state["fault_endpoint"], "/arrays");
        assert!(
            state["capacity"]["total_bytes"]
                .as_u64()
                .is_some_and(|t| t > 0)
        );
        let bad = client
            .post(url("sim-pure-0002/fault"))
            .body("{")
            .send()
            .await
            .expect("answer");
        assert_eq!(bad.status().as_u16(), 400);
        let list: serde_json::Value = client
            .get(url("systems"))
            .send()
            .await
            .expect("answer")
            .json()
            .await
            .expect("json");
        assert_eq!(list.as_array().map(Vec::len), Some(2));
        // Only /control is served on the plain listener.
        let other = client
            .get(format!("http://{control}/sim-pure-0001/api/api_version"))
            .send()
            .await
            .expect("answer");
        assert_eq!(other.status().as_u16(), 404);
    }
}
