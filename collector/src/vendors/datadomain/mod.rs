//! Dell PowerProtect DataDomain (REST `/rest/v1.0` and `/api/v1`, default port 3009).
//!
//! Authentication: `POST /rest/v1.0/auth` with JSON `{username, password}` answers 201 with the
//! session token in the response header `X-DD-AUTH-TOKEN` (the body is a `serviceStatus`, bare or
//! wrapped in `service_status`; both are accepted). The token is sent as `X-DD-AUTH-TOKEN` and
//! kept across polls; a 401 triggers one re-login per poll, a second 401 is `auth_failed`.
//! `DELETE /rest/v1.0/auth` logs out.
//!
//! Calls per poll (only paths that exist in DataDomain's published REST API; there is no
//! `/rest/v1.0/dd-systems/0/{ha,hardware,replication/contexts}`):
//!
//! | call | use | essential |
//! |---|---|---|
//! | `GET /rest/v1.0/system` | name, version, model, serial, type, capacity | yes |
//! | `GET /rest/v1.0/dd-systems/0/alerts?is_active=true` (paged) | open alerts, hardware alerts | no |
//! | `GET /api/v1/dd-systems/0/storage/disks` (paged) | failed disks | no |
//! | `GET /api/v1/dd-systems/0/ha` (only when `type == HA`) | HA state → cluster health | no |
//! | `GET /api/v1/dd-systems/0/mtree-replications` (paged) | replication → cluster health, partners | no |
//! | `GET /rest/v2.0/dd-systems/0/networks/nics` (paged) | NIC link check, management addresses ([`deep`]) | no |
//! | `GET /api/v3/dd-systems/0/stats/performance?filter=collection_epoch=(<start>,)` (paged) | performance ([`deep`]); bounded by [`PERFORMANCE_TIMEOUT`]; after a 404 not asked again until an outage | no, and never a degradation |
//!
//! Topology, tiers and performance: see [`deep`]; DNS names of the management addresses are
//! looked up on topology polls (the first, every 10th, a new version).
//!
//! Paging: `page` (0-based) and `size`, until `paging_info.total_entries` rows were read or a page
//! comes back short or empty.
//!
//! Health rules:
//!
//! * **Capacity** ([`capacity`]): `physical_capacity.{total, used, available}` (bytes); free is
//!   `available`, or total − used when absent; `compression_factor` is the data reduction.
//! * **Alerts** ([`alerts`]): only `status` active (or new, unresolved); CRITICAL, EMERGENCY,
//!   ALERT → critical; ERROR → error; WARNING → warning; NOTICE, INFO, DEBUG → info. DD has no
//!   hardware endpoint: an open alert of class HardwareFailure or Environment makes hardware
//!   error when its severity is critical, else warning ([`alert_hardware`]).
//! * **Disks** ([`disk_components`]): FAILED or ERROR → hardware error; UNKNOWN, FOREIGN,
//!   INVALID → warning. Unhealthy disks become components, plus one `disks` summary.
//! * **HA** ([`ha_components`]): the local and peer `state`: failed, error, critical, offline,
//!   down → cluster error; degraded, warning, and anything not online/ok/normal/active/standby →
//!   warning.
//! * **Replication** ([`replication_components`]): an enabled MTree context that is not
//!   connected, needs a resync, reports an `errorMessage`, or whose `state` is not NORMAL →
//!   cluster warning.
//!
//! Files: this one (calls, session, paging, the adapter), [`model`] (response shapes), [`rules`]
//! (normalization rules).

pub mod deep;
pub mod model;
pub mod rules;
#[cfg(test)]
mod tests;

pub use model::*;
pub use rules::*;

use std::marker::PhantomData;

use sdash_proto::{Snapshot, Vendor};
use serde::Deserialize;
use serde::de::DeserializeOwned;

use super::bookkeeping::{AlertMemory, PollContext, online_snapshot};
use super::components::{HealthPart, fold_check, fold_components};
use super::paging::{Page, PageSource, paginate};
use super::session::{Session, session_call};
use super::shell::{Poll, Shell, UserPassword, VendorAdapter};
use super::topology::{
    PERFORMANCE_TIMEOUT, PerfOutcome, TopologyState, management_url, performance_call,
};
use crate::http::{HttpClient, HttpError, Method, Request, Response};

pub const AUTH_PATH: &str = "/rest/v1.0/auth";
pub const SYSTEM_PATH: &str = "/rest/v1.0/system";
pub const ALERTS_PATH: &str = "/rest/v1.0/dd-systems/0/alerts";
pub const DISKS_PATH: &str = "/api/v1/dd-systems/0/storage/disks";
pub const HA_PATH: &str = "/api/v1/dd-systems/0/ha";
pub const REPLICATION_PATH: &str = "/api/v1/dd-systems/0/mtree-replications";
pub const NICS_PATH: &str = "/rest/v2.0/dd-systems/0/networks/nics";
pub const PERFORMANCE_PATH: &str = "/api/v3/dd-systems/0/stats/performance";
/// DataDomain `paging_info` (`page` is 0-based; ask with `page` and `size`).
#[derive(Debug, Clone, Deserialize)]
pub struct DdPagingInfo {
    #[serde(default)]
    pub current_page: Option<u64>,
    #[serde(default)]
    pub page_entries: Option<u64>,
    #[serde(default)]
    pub total_entries: Option<u64>,
    #[serde(default)]
    pub page_size: Option<u64>,
}

impl DdPagingInfo {
    /// The next page number, or `None` when this was the last page (or the info is incomplete).
    pub fn next_page(&self) -> Option<u64> {
        let current = self.current_page?;
        let size = self.page_size.filter(|s| *s > 0)?;
        let total = self.total_entries?;
        let seen = current.checked_add(1)?.checked_mul(size)?;
        (seen < total && self.page_entries.unwrap_or(size) > 0).then_some(current + 1)
    }
}

/// A paged DataDomain list: its rows and its `paging_info`.
pub trait DdList: DeserializeOwned + Send {
    type Item: Send;
    fn split(self) -> (Vec<Self::Item>, Option<DdPagingInfo>);
}

impl DdList for AlertList {
    type Item = DdAlert;
    fn split(self) -> (Vec<DdAlert>, Option<DdPagingInfo>) {
        (self.alert_list, self.paging_info)
    }
}

impl DdList for DiskList {
    type Item = DdDisk;
    fn split(self) -> (Vec<DdDisk>, Option<DdPagingInfo>) {
        (self.disk_info, self.paging_info)
    }
}

impl DdList for NicList {
    type Item = Nic;
    fn split(self) -> (Vec<Nic>, Option<DdPagingInfo>) {
        (self.nics, self.paging_info)
    }
}

impl DdList for PerformanceList {
    type Item = PerfSample;
    fn split(self) -> (Vec<PerfSample>, Option<DdPagingInfo>) {
        (self.stats_performance, self.paging_info)
    }
}

impl DdList for ReplicationList {
    type Item = ReplContext;
    fn split(self) -> (Vec<ReplContext>, Option<DdPagingInfo>) {
        (self.contexts, self.paging_info)
    }
}

/// Rows asked for per page.
pub const PAGE_SIZE: u64 = 100;

// ---------------------------------------------------------------------------------------------
// The adapter.
// ---------------------------------------------------------------------------------------------

/// The DataDomain adapter of one system.
pub type DataDomainAdapter = Shell<DataDomain>;

/// DataDomain's part of the adapter: the topology cadence and whether the performance
/// endpoint exists (the session is the shell's).
#[derive(Debug, Default)]
pub struct DataDomain {
    topology: TopologyState,
    /// True after the performance endpoint answered 404 (until the next outage).
    no_performance: bool,
}

impl VendorAdapter for DataDomain {
    const VENDOR: Vendor = Vendor::Datadomain;
    type Credentials = UserPassword;

    async fn poll(&mut self, poll: Poll<'_, UserPassword>) -> Result<Snapshot, HttpError> {
        let ctx = poll.ctx;
        let mut api = Api {
            http: poll.http,
            session: poll.session,
            credentials: &poll.credentials,
        };
        let system_response = api.response(ctx, SYSTEM_PATH, &[]).await?;
        let system: SystemInfo = system_response.json()?;
        let array_now_s = system_response
            .header("date")
            .and_then(http_date_s)
            .unwrap_or_else(|| time::OffsetDateTime::now_utc().unix_timestamp());
        let alerts = api
            .try_list::<AlertList>(ctx, ALERTS_PATH, &[("is_active", "true")])
            .await;
        let disks = api.try_list::<DiskList>(ctx, DISKS_PATH, &[]).await;
        let ha = if system.is_ha() {
            let result = api.get::<HaSysInfo>(ctx, HA_PATH, &[]).await;
            ctx.keep(result)
        } else {
            None
        };
        let replications = api
            .try_list::<ReplicationList>(ctx, REPLICATION_PATH, &[])
            .await;
        let nics = api.try_list::<NicList>(ctx, NICS_PATH, &[]).await;
        let mut performance = None;
        if !self.no_performance {
            let limit = PERFORMANCE_TIMEOUT.min(poll.config.timeout);
            let filter = deep::performance_filter(array_now_s);
            // The call borrows the poll's context (session renewal events), so the outcome's
            // own events are collected apart and added afterwards.
            let mut scratch = PollContext::new();
            let query = [("filter", filter.as_str())];
            let call = api.list::<PerformanceList>(ctx, PERFORMANCE_PATH, &query);
            let outcome = performance_call(&mut scratch, PERFORMANCE_PATH, limit, call, |e| {
                matches!(e, HttpError::Status { status: 404, .. })
            })
            .await;
            for event in scratch.into_events() {
                ctx.push(event);
            }
            match outcome {
                PerfOutcome::Value(samples) => performance = Some(samples),
                PerfOutcome::Unsupported => self.no_performance = true,
                PerfOutcome::Failed => {}
            }
        }
        let topology_due = self.topology.due(non_empty(&system.version).as_deref());
        let responses = Responses {
            system,
            alerts,
            disks,
            ha,
            replications,
            nics,
            performance,
            management_url: management_url(poll.http.base_url(), Some(443)),
        };
        let mut snapshot = snapshot(responses, ctx, poll.alerts);
        if let Some(fresh) = snapshot.topology.take() {
            snapshot.topology = Some(self.topology.resolve(topology_due, fresh).await);
        }
        Ok(snapshot)
    }

    fn after_outage(&mut self) {
        self.no_performance = false;
        self.topology.invalidate();
    }

    /// `DELETE /rest/v1.0/auth`.
    fn logout<'a>(&self, http: &'a HttpClient, token: &str) -> Option<Request<'a>> {
        Some(
            http.request(Method::DELETE, AUTH_PATH)
                .header("x-dd-auth-token", token),
        )
    }
}

/// What one poll read from a DataDomain: `/rest/v1.0/system` (essential) and each non-essential
/// list, `None` when its call failed (already recorded as a degradation); `ha` is also `None`
/// on a system that is not an HA pair (it is not asked then).
#[derive(Debug)]
pub struct Responses {
    pub system: SystemInfo,
    pub alerts: Option<Vec<DdAlert>>,
    pub disks: Option<Vec<DdDisk>>,
    pub ha: Option<HaSysInfo>,
    pub replications: Option<Vec<ReplContext>>,
    pub nics: Option<Vec<Nic>>,
    /// The performance samples of the last minutes; `None` when not asked, unsupported or
    /// failed.
    pub performance: Option<Vec<PerfSample>>,
    /// DD System Manager: the API host on port 443.
    pub management_url: Option<String>,
}

/// The snapshot from what a poll read, by the rules of the module docs; degradations go into
/// `ctx`, a failed alert query falls back on `alerts`. Shared by [`DataDomain::poll`] and the
/// fuzz target (`crate::fuzzing::datadomain`).
pub fn snapshot(responses: Responses, ctx: &mut PollContext, alerts: &mut AlertMemory) -> Snapshot {
    let system = responses.system;
    let mut snapshot = Snapshot {
        name: non_empty(&system.name),
        version: non_empty(&system.version),
        model: non_empty(&system.model),
        serial: non_empty(&system.serialno),
        capacity: capacity(&system),
        pools: deep::pools(&system),
        performance: responses.performance.as_deref().and_then(deep::performance),
        ..online_snapshot(Vendor::Datadomain)
    };
    if snapshot.capacity.is_none() {
        ctx.degrade_with(
            SYSTEM_PATH,
            "no physical_capacity in the answer, capacity unknown",
        );
    }

    let fresh = responses.alerts.map(|list| {
        snapshot.hardware = snapshot.hardware.worst(alert_hardware(&list));
        rules::alerts(&list)
    });
    snapshot.alerts = alerts.resolve(fresh);
    if let Some(disks) = responses.disks {
        fold_components(&mut snapshot, HealthPart::Hardware, disk_components(&disks));
    }
    let nics = responses.nics.as_deref().map(deep::nic_check);
    fold_check(&mut snapshot, HealthPart::Hardware, alerts, "nic", nics);
    if let Some(ha) = &responses.ha {
        fold_components(&mut snapshot, HealthPart::Cluster, ha_components(ha));
    }
    if let Some(contexts) = &responses.replications {
        fold_components(
            &mut snapshot,
            HealthPart::Cluster,
            replication_components(contexts),
        );
    }
    snapshot.topology = Some(deep::topology(
        &system,
        responses.ha.as_ref(),
        responses.nics.as_deref(),
        responses.replications.as_deref(),
        responses.management_url,
    ));
    snapshot
}

/// The pages of one list.
struct Pages<'a, 'b, L> {
    api: &'a mut Api<'b>,
    ctx: &'a mut PollContext,
    path: &'a str,
    query: &'a [(&'a str, &'a str)],
    list: PhantomData<fn() -> L>,
}

impl<L: DdList> PageSource for Pages<'_, '_, L> {
    type Item = L::Item;
    type Cursor = u64;

    async fn fetch(&mut self, page: Option<u64>) -> Result<Page<L::Item, u64>, HttpError> {
        let mut q: Vec<(&str, String)> = self
            .query
            .iter()
            .map(|(k, v)| (*k, (*v).to_owned()))
            .collect();
        q.push(("page", page.unwrap_or(0).to_string()));
        q.push(("size", PAGE_SIZE.to_string()));
        let (items, paging) = self.api.get::<L>(self.ctx, self.path, &q).await?.split();
        let next = if items.is_empty() {
            None
        } else {
            paging.and_then(|p| p.next_page())
        };
        Ok(Page { items, next })
    }
}

/// Epoch seconds of an HTTP `Date` header (IMF-fixdate, `Thu, 20 Nov 2026 08:00:00 GMT`).
pub fn http_date_s(value: &str) -> Option<i64> {
    let format = time::macros::format_description!(
        "[weekday repr:short], [day] [month repr:short] [year] [hour]:[minute]:[second] GMT"
    );
    time::PrimitiveDateTime::parse(value.trim(), format)
        .ok()
        .map(|t| t.assume_utc().unix_timestamp())
}

fn non_empty(text: &str) -> Option<String> {
    (!text.trim().is_empty()).then(|| text.trim().to_owned())
}

/// One poll's view of the API: client, session and credentials.
struct Api<'a> {
    http: &'a HttpClient,
    session: &'a mut Session,
    credentials: &'a UserPassword,
}

impl Api<'_> {
    /// `GET path?query` with the session token, decoded.
    async fn get<T: DeserializeOwned>(
        &mut self,
        ctx: &mut PollContext,
        path: &str,
        query: &[(&str, String)],
    ) -> Result<T, HttpError> {
        self.response(ctx, path, query).await?.json()
    }

    /// `GET path?query` with the session token (logging in, or renewing once on a 401).
    async fn response(
        &mut self,
        ctx: &mut PollContext,
        path: &str,
        query: &[(&str, String)],
    ) -> Result<Response, HttpError> {
        let http = self.http;
        let UserPassword { username, password } = self.credentials;
        session_call(
            self.session,
            ctx,
            || {
                Ok(http
                    .post(AUTH_PATH)
                    .json(&serde_json::json!({"username": username, "password": password.expose()}))
                    .allow_empty())
            },
            |resp| {
                resp.header("x-dd-auth-token")
                    .map(str::trim)
                    .filter(|t| !t.is_empty())
                    .map(str::to_owned)
                    .ok_or_else(|| {
                        let detail = error_reason(&resp.body)
                            .map(|r| format!(" ({r})"))
                            .unwrap_or_default();
                        HttpError::Protocol {
                            endpoint: resp.endpoint.clone(),
                            reason: format!("login answer has no X-DD-AUTH-TOKEN header{detail}"),
                        }
                    })
            },
            |token| {
                query
                    .iter()
                    .fold(http.get(path), |r, (k, v)| r.query(k, v.clone()))
                    .header("x-dd-auth-token", token)
            },
        )
        .await
    }

    /// All rows of a paged list (`page` from 0, `size` [`PAGE_SIZE`], until `paging_info` says
    /// the last page was read).
    async fn list<L: DdList>(
        &mut self,
        ctx: &mut PollContext,
        path: &str,
        query: &[(&str, &str)],
    ) -> Result<Vec<L::Item>, HttpError> {
        let mut pages = Pages::<L> {
            api: self,
            ctx,
            path,
            query,
            list: PhantomData,
        };
        paginate(path, &mut pages).await
    }

    /// [`Api::list`] for a non-essential call: a failure degrades the poll and gives `None`.
    async fn try_list<L: DdList>(
        &mut self,
        ctx: &mut PollContext,
        path: &str,
        query: &[(&str, &str)],
    ) -> Option<Vec<L::Item>> {
        let result = self.list::<L>(ctx, path, query).await;
        ctx.keep(result)
    }
}
