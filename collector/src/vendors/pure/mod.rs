//! Pure Storage FlashArray, REST 2.x.
//!
//! # Session
//!
//! `GET /api/api_version` (no auth) lists the versions; we use the highest `2.x` compared
//! **numerically** ("2.26" > "2.9"). `POST /api/<v>/login` with the header `api-token` answers with
//! the session in the **response header** `x-auth-token`, sent on every later call. The session is
//! kept across polls; a 401 renews it once per poll (an `info` authentication event), a second 401
//! or a failing login makes the poll `auth_failed`. [`PureAdapter::logout`] ends it
//! (`POST /api/<v>/logout`). The API token is reread from its file/variable at every login.
//!
//! # Calls per poll
//!
//! | call | use | essential |
//! |---|---|---|
//! | `GET /api/api_version` | version choice (first poll, and after a connection failure) | yes |
//! | `POST /api/<v>/login` | session (when there is none, or on a 401) | yes |
//! | `GET /api/<v>/arrays` | `name`, `version` (Purity version), `os` | yes |
//! | `GET /api/<v>/arrays/space` | capacity | no |
//! | `GET /api/<v>/controllers` | controllers, model | no |
//! | `GET /api/<v>/hardware` | hardware components, chassis serial | no |
//! | `GET /api/<v>/drives` | drives | no |
//! | `GET /api/<v>/alerts?filter=state='open'` | open alerts | no |
//! | `GET /api/<v>/array-connections`, `GET /api/<v>/pods` | replication / ActiveCluster health, topology | no |
//! | `GET /api/<v>/network-interfaces?filter=services='management'` | management interface check, management addresses ([`deep`]) | no |
//! | `GET /api/<v>/arrays/performance` | performance ([`deep`]); bounded by [`PERFORMANCE_TIMEOUT`], a 404 is "no endpoint" | no, and never a degradation |
//!
//! Topology, pools, provisioned bytes and the management check: see [`deep`]. DNS names of the
//! management addresses are looked up on topology polls (the first, every 10th, a new version).
//!
//! An essential call that fails fails the poll (status from the error: `unreachable`,
//! `auth_failed` or `error`). A non-essential call that fails *degrades* the snapshot: the status
//! stays `online`, a `warning` event names the endpoint and the cause, and `error` says
//! "degraded: ...". A 401 that survives the renewal fails the poll as `auth_failed` wherever it
//! happens. Lists are read with `limit` and followed through `continuation_token` (or the
//! `x-next-token` header). REST 2.x has no per-field projection on these collections; the alert
//! query narrows server-side with `filter=state='open'`.
//!
//! # Normalization rules
//!
//! * **Capacity** ([`capacity`]): total = `capacity` (usable bytes); used = `space.total_used`,
//!   falling back to the deprecated `space.total_physical` only when `total_used` is absent;
//!   free = total − used (never below 0); data reduction = `space.data_reduction`.
//! * **Controllers** ([`controller_health`]): `type == shelf_controller` is ignored (shelf
//!   controllers are reported by `/hardware`). `status` ready/ok/online/healthy → ok; updating or
//!   unknown → warning; not ready or anything else → error; `mode == offline` → error.
//! * **Hardware** ([`hardware_health`]): status "", unused, not_installed → skipped (empty
//!   slot); critical, unhealthy, failed → error; ok, healthy, normal, identifying → ok; anything
//!   else (unknown...) → warning.
//! * **Drives** ([`drive_health`]): status "", empty, unused → skipped; failed, unhealthy,
//!   missing, unrecognized → error; healthy, ok, identifying, recovering, updating, unadmitted →
//!   ok; anything else → warning.
//! * **Hardware health** = the worst of controllers, hardware and drives. When one of those
//!   endpoints failed and the rest look fine, it is `unknown` (we cannot claim ok); an error found
//!   in the parts that were read stays an error.
//! * **Alerts** ([`alert`]): items with `state` other than closed. Severity critical → critical,
//!   warning → warning, info → info, hidden → info, anything else → warning; the raw word goes into
//!   `vendor_severity`. Title = `summary`, else `description`, `issue`, `name`. Opened at =
//!   `created` (ms). Alerts never change hardware health. When `/alerts` fails, the previous
//!   poll's alerts are carried over (an empty list would tell subscribers they all cleared).
//! * **Cluster** ([`cluster_health`]): without a `sync-replication` connection and without a
//!   stretched pod (`array_count > 1` or more than one entry in `arrays`) there is no ActiveCluster
//!   and the cluster is ok (also with no replication at all). Any array connection whose `status`
//!   is not `connected` → warning. In a stretched pod, an array whose `status` is not `online`
//!   (offline, resyncing, suspended, unknown) or a `mediator_status` other than `online`
//!   (unreachable, flummoxed, unknown) → warning; a stretched pod with no array online → error.
//!   When either endpoint fails, cluster health is `unknown`.
//!
//! Files: this one (calls, session, paging envelope, the adapter), [`model`] (response shapes),
//! [`rules`] (normalization rules).

pub mod deep;
pub mod model;
pub mod rules;
#[cfg(test)]
mod tests;

pub use model::*;
pub use rules::*;

use std::marker::PhantomData;

use sdash_proto::{Category, Component, Health, Level, Snapshot, Vendor};
use serde::Deserialize;
use serde::de::DeserializeOwned;

use super::bookkeeping::{AlertMemory, PollContext, online_snapshot};
use super::components::{HealthPart, fold_check};
use super::paging::{Page, PageSource, paginate};
use super::session::{Session, session_call};
use super::shell::{Poll, ReadCredentials, Shell, VendorAdapter};
use super::topology::{
    PERFORMANCE_TIMEOUT, PerfOutcome, TopologyState, management_url, performance_call,
};
use crate::http::{HttpClient, HttpError, Request, Response};
use crate::inventory::{CredentialKind, Credentials, SystemConfig};
use rules::hardware_kind;

/// Items per page requested with `limit`.
pub const PAGE_LIMIT: usize = 500;

/// One FlashArray's adapter.
pub type PureAdapter = Shell<Pure>;

/// Pure's part of the adapter: the REST version in use, kept across polls.
#[derive(Debug, Default)]
pub struct Pure {
    version: Option<String>,
    topology: TopologyState,
    /// False after `/arrays/performance` answered 404 (until the next outage).
    no_performance: bool,
}

/// Pure needs its API token only to log in, and rereads it at each login (the file may have been
/// rotated). Without a session an unreadable token is a configuration problem (status error, an
/// authentication event), not something to send to the array; with a live session the poll goes on.
pub struct TokenAtLogin;

impl ReadCredentials for TokenAtLogin {
    const KIND: CredentialKind = CredentialKind::ApiToken;

    fn read(config: &SystemConfig, session_live: bool) -> Result<Self, String> {
        if !session_live {
            config.credentials().map_err(|e| e.to_string())?;
        }
        Ok(TokenAtLogin)
    }
}

impl VendorAdapter for Pure {
    const VENDOR: Vendor = Vendor::Pure;
    type Credentials = TokenAtLogin;

    async fn poll(&mut self, poll: Poll<'_, TokenAtLogin>) -> Result<Snapshot, HttpError> {
        let ctx = poll.ctx;
        let version = match &self.version {
            Some(version) => version.clone(),
            None => self
                .version
                .insert(choose_version(poll.http, ctx).await?)
                .clone(),
        };
        let mut api = Api {
            http: poll.http,
            config: poll.config,
            session: poll.session,
            version,
        };

        let arrays: Vec<ArrayItem> = api.list(ctx, "/arrays", &[]).await?;
        let array = first_array(arrays, &api.path("/arrays"))?;
        let responses = Responses {
            array,
            space: api.optional(ctx, "/arrays/space", &[]).await?,
            controllers: api.optional(ctx, "/controllers", &[]).await?,
            hardware: api.optional(ctx, "/hardware", &[]).await?,
            drives: api.optional(ctx, "/drives", &[]).await?,
            alerts: api
                .optional(ctx, "/alerts", &[("filter", "state='open'")])
                .await?,
            connections: api.optional(ctx, "/array-connections", &[]).await?,
            pods: api.optional(ctx, "/pods", &[]).await?,
            interfaces: api
                .optional(
                    ctx,
                    "/network-interfaces",
                    &[("filter", "services='management'")],
                )
                .await?,
            performance: None,
            management_url: management_url(poll.http.base_url(), None),
        };
        let mut responses = responses;
        if !self.no_performance {
            let limit = PERFORMANCE_TIMEOUT.min(poll.config.timeout);
            let endpoint = api.path("/arrays/performance");
            // `list` borrows the poll's context (session renewal events), so the outcome's own
            // events are collected apart and added afterwards.
            let mut scratch = PollContext::new();
            let call = api.list::<ArrayPerformanceItem>(ctx, "/arrays/performance", &[]);
            let outcome = performance_call(&mut scratch, &endpoint, limit, call, |e| {
                matches!(e, HttpError::Status { status: 404, .. })
            })
            .await;
            for event in scratch.into_events() {
                ctx.push(event);
            }
            match outcome {
                PerfOutcome::Value(items) => responses.performance = items.into_iter().next(),
                PerfOutcome::Unsupported => self.no_performance = true,
                PerfOutcome::Failed => {}
            }
        }
        let topology_due = self.topology.due(responses.array.version.as_deref());
        let mut snapshot = snapshot(responses, &api.version, ctx, poll.alerts);
        if let Some(fresh) = snapshot.topology.take() {
            snapshot.topology = Some(self.topology.resolve(topology_due, fresh).await);
        }
        Ok(snapshot)
    }

    fn after_outage(&mut self) {
        self.version = None;
        self.no_performance = false;
        self.topology.invalidate();
    }

    /// `POST /api/<v>/logout`, once a version was chosen.
    fn logout<'a>(&self, http: &'a HttpClient, token: &str) -> Option<Request<'a>> {
        let version = self.version.as_ref()?;
        Some(
            http.post(&format!("/api/{version}/logout"))
                .header("x-auth-token", token),
        )
    }
}

/// What one poll read from a FlashArray: the first item of `/arrays` (essential) and each
/// non-essential list, `None` when its call failed (already recorded as a degradation).
#[derive(Debug)]
pub struct Responses {
    pub array: ArrayItem,
    pub space: Option<Vec<SpaceItem>>,
    pub controllers: Option<Vec<ControllerItem>>,
    pub hardware: Option<Vec<HardwareItem>>,
    pub drives: Option<Vec<DriveItem>>,
    pub alerts: Option<Vec<AlertItem>>,
    pub connections: Option<Vec<ConnectionItem>>,
    pub pods: Option<Vec<PodItem>>,
    pub interfaces: Option<Vec<NetworkInterfaceItem>>,
    /// The first item of `/arrays/performance`; `None` without one.
    pub performance: Option<ArrayPerformanceItem>,
    /// The array's web UI: its API base URL.
    pub management_url: Option<String>,
}

/// The array a poll is about: the first item of `/arrays`; none is a protocol error.
pub fn first_array(arrays: Vec<ArrayItem>, endpoint: &str) -> Result<ArrayItem, HttpError> {
    arrays
        .into_iter()
        .next()
        .ok_or_else(|| HttpError::Protocol {
            endpoint: endpoint.to_owned(),
            reason: "no array in the response".into(),
        })
}

/// The snapshot from what a poll read with REST `version`, by the rules of the module docs;
/// degradations go into `ctx`, a failed alert query falls back on `alerts`. Shared by
/// [`Pure::poll`] and the fuzz target (`crate::fuzzing::pure`).
pub fn snapshot(
    responses: Responses,
    version: &str,
    ctx: &mut PollContext,
    alerts: &mut AlertMemory,
) -> Snapshot {
    let path = |resource: &str| format!("/api/{version}{resource}");
    let array = responses.array;

    let mut snapshot = Snapshot {
        name: array.name.clone(),
        version: array.version.clone(),
        ..online_snapshot(Vendor::Pure)
    };

    // Capacity and the space pools.
    if let Some(space) = responses.space {
        match space.into_iter().next() {
            Some(item) => {
                snapshot.capacity = capacity(&item);
                snapshot.pools = deep::pools(&item);
            }
            None => ctx.degrade_with(&path("/arrays/space"), "no capacity in the response"),
        }
        if snapshot.capacity.is_none() {
            ctx.degrade_with(&path("/arrays/space"), "capacity missing");
        }
    }

    // Hardware: controllers, hardware, drives.
    let mut hardware = Health::Ok;
    let mut missing_part = false;
    let controllers = responses.controllers;
    match &controllers {
        Some(controllers) => {
            for c in controllers
                .iter()
                .filter(|c| c.r#type.as_deref() != Some("shelf_controller"))
            {
                let health = controller_health(c);
                hardware = hardware.worst(health);
                if snapshot.model.is_none() || c.mode.as_deref() == Some("primary") {
                    snapshot.model = c.model.clone().or(snapshot.model.take());
                }
                snapshot.components.push(Component {
                    kind: "controller".into(),
                    name: c.name.clone().unwrap_or_default(),
                    status: health,
                    detail: Some(format!(
                        "{} {}",
                        c.status.as_deref().unwrap_or("unknown"),
                        c.mode.as_deref().unwrap_or("")
                    ))
                    .map(|d| d.trim().to_owned()),
                });
            }
        }
        None => missing_part = true,
    }
    match responses.hardware {
        Some(items) => {
            for h in &items {
                if h.r#type.as_deref() == Some("ch") && snapshot.serial.is_none() {
                    snapshot.serial = h.serial.clone();
                }
                let Some(health) = hardware_health(h.status.as_deref().unwrap_or("")) else {
                    continue;
                };
                hardware = hardware.worst(health);
                snapshot.components.push(Component {
                    kind: hardware_kind(h.r#type.as_deref().unwrap_or("")),
                    name: h.name.clone().unwrap_or_default(),
                    status: health,
                    detail: h.details.clone().or_else(|| h.status.clone()),
                });
            }
        }
        None => missing_part = true,
    }
    match responses.drives {
        Some(items) => {
            for d in &items {
                let Some(health) = drive_health(d.status.as_deref().unwrap_or("")) else {
                    continue;
                };
                hardware = hardware.worst(health);
                snapshot.components.push(Component {
                    kind: "drive".into(),
                    name: d.name.clone().unwrap_or_default(),
                    status: health,
                    detail: d.details.clone().or_else(|| {
                        Some(
                            format!(
                                "{} {}",
                                d.r#type.as_deref().unwrap_or(""),
                                d.status.as_deref().unwrap_or("")
                            )
                            .trim()
                            .to_owned(),
                        )
                    }),
                });
            }
        }
        None => missing_part = true,
    }
    snapshot.hardware = if missing_part && hardware == Health::Ok {
        Health::Unknown
    } else {
        hardware
    };

    // Alerts.
    let fresh = responses.alerts.map(|items| {
        items
            .iter()
            .filter(|a| a.state.as_deref() != Some("closed"))
            .map(alert)
            .collect()
    });
    snapshot.alerts = alerts.resolve(fresh);

    // Management interfaces (hardware health); a failed query keeps the check's last alerts.
    let mgmt = responses.interfaces.as_deref().map(deep::management_check);
    fold_check(&mut snapshot, HealthPart::Hardware, alerts, "mgmt", mgmt);

    // Replication / ActiveCluster.
    if let (Some(connections), Some(pods)) = (&responses.connections, &responses.pods) {
        let (health, components) = cluster_health(connections, pods);
        snapshot.cluster = health;
        snapshot.components.extend(components);
    }

    snapshot.performance = responses.performance.as_ref().map(deep::performance);
    snapshot.topology = Some(deep::topology(
        controllers.as_deref(),
        responses.connections.as_deref(),
        responses.pods.as_deref(),
        responses.interfaces.as_deref(),
        responses.management_url,
    ));
    snapshot
}

/// `GET /api/api_version` (no auth) and the highest 2.x version in it.
async fn choose_version(http: &HttpClient, ctx: &mut PollContext) -> Result<String, HttpError> {
    let version = offered_version(&http.get("/api/api_version").send().await?)?;
    ctx.event(
        Level::Debug,
        Category::ApiCall,
        format!("using REST API version {version}"),
    );
    Ok(version)
}

/// The highest 2.x version in the answer of `GET /api/api_version`; none is a protocol error.
pub fn offered_version(resp: &Response) -> Result<String, HttpError> {
    let versions: ApiVersions = resp.json()?;
    pick_version(&versions.version).ok_or_else(|| HttpError::Protocol {
        endpoint: resp.endpoint.clone(),
        reason: format!(
            "no REST 2.x version offered (got {})",
            versions.version.join(", ")
        ),
    })
}

/// One poll's view of the API: client, session and the REST version.
struct Api<'a> {
    http: &'a HttpClient,
    config: &'a SystemConfig,
    session: &'a mut Session,
    version: String,
}

impl Api<'_> {
    fn path(&self, resource: &str) -> String {
        format!("/api/{}{resource}", self.version)
    }

    /// A non-essential list: `Ok(None)` after recording a degradation, `Err` only for a 401 that
    /// survived the renewal (the whole poll is then `auth_failed`).
    async fn optional<T: DeserializeOwned + Send>(
        &mut self,
        ctx: &mut PollContext,
        resource: &str,
        query: &[(&str, &str)],
    ) -> Result<Option<Vec<T>>, HttpError> {
        match self.list(ctx, resource, query).await {
            Ok(items) => Ok(Some(items)),
            Err(e) if e.is_unauthorized() => Err(e),
            Err(e) => {
                ctx.degrade(&e);
                Ok(None)
            }
        }
    }

    /// Reads every page of `GET /api/<v><resource>` with the session.
    async fn list<T: DeserializeOwned + Send>(
        &mut self,
        ctx: &mut PollContext,
        resource: &str,
        query: &[(&str, &str)],
    ) -> Result<Vec<T>, HttpError> {
        let path = self.path(resource);
        let mut pages = Items {
            login_path: self.path("/login"),
            path: path.clone(),
            api: self,
            ctx,
            query,
            limit: PAGE_LIMIT.to_string(),
            items: PhantomData,
        };
        paginate(&path, &mut pages).await
    }
}

/// The pages of one list.
struct Items<'a, 'b, T> {
    api: &'a mut Api<'b>,
    ctx: &'a mut PollContext,
    path: String,
    login_path: String,
    query: &'a [(&'a str, &'a str)],
    limit: String,
    items: PhantomData<fn() -> T>,
}

impl<T: DeserializeOwned + Send> PageSource for Items<'_, '_, T> {
    type Item = T;
    type Cursor = String;

    async fn fetch(&mut self, cursor: Option<String>) -> Result<Page<T, String>, HttpError> {
        let (http, config) = (self.api.http, self.api.config);
        let resp = session_call(
            self.api.session,
            self.ctx,
            || login_request(http, config, &self.login_path),
            session_token,
            |token| {
                let mut req = http.get(&self.path).query("limit", self.limit.clone());
                for (k, v) in self.query {
                    req = req.query(k, *v);
                }
                if let Some(c) = &cursor {
                    req = req.query("continuation_token", c.clone());
                }
                req.header("x-auth-token", token)
            },
        )
        .await?;
        let list: PureList<T> = resp.json()?;
        Ok(Page {
            next: next_token(&resp, &list),
            items: list.items,
        })
    }
}

/// Pure REST 2.x list envelope: `{continuation_token, items[], more_items_remaining,
/// total_item_count}`. Page with `limit` and `continuation_token` (see [`next_token`]).
#[derive(Debug, Deserialize)]
pub struct PureList<T> {
    #[serde(default = "Vec::new")]
    pub items: Vec<T>,
    #[serde(default)]
    pub continuation_token: Option<String>,
    #[serde(default)]
    pub more_items_remaining: Option<bool>,
}

/// The continuation token of the next page: the `x-next-token` header or the body's
/// `continuation_token`; `None` when `more_items_remaining` is false or no token was given.
pub fn next_token<T>(resp: &Response, list: &PureList<T>) -> Option<String> {
    if list.more_items_remaining == Some(false) {
        return None;
    }
    resp.header("x-next-token")
        .map(str::to_owned)
        .or_else(|| list.continuation_token.clone())
        .filter(|t| !t.is_empty())
}

/// `POST /api/<v>/login` with the API token (reread now: the file may have been rotated).
fn login_request<'a>(
    http: &'a HttpClient,
    config: &SystemConfig,
    endpoint: &str,
) -> Result<Request<'a>, HttpError> {
    let token = match config.credentials() {
        Ok(Credentials::ApiToken(token)) => token,
        Ok(Credentials::UserPassword { .. }) => {
            return Err(HttpError::Protocol {
                endpoint: endpoint.to_owned(),
                reason: "pure needs an API token, not a user name and password".into(),
            });
        }
        Err(e) => {
            return Err(HttpError::Protocol {
                endpoint: endpoint.to_owned(),
                reason: e.to_string(),
            });
        }
    };
    Ok(http
        .post(endpoint)
        .header("api-token", token.expose())
        .allow_empty())
}

/// The session is the `x-auth-token` response header of the login.
fn session_token(resp: &Response) -> Result<String, HttpError> {
    match resp.header("x-auth-token") {
        Some(session) if !session.trim().is_empty() => Ok(session.trim().to_owned()),
        _ => Err(HttpError::Protocol {
            endpoint: resp.endpoint.clone(),
            reason: "login answered without an x-auth-token header".into(),
        }),
    }
}
