//! NetApp ONTAP 9 (REST API, unversioned paths under `/api`).
//!
//! Authentication: HTTP Basic on every request; there is no session, login or logout.
//!
//! Calls per poll (every `fields=` list names only fields that exist in the ONTAP 9 model: one
//! unknown name makes ONTAP fail the whole call with 400/262197):
//!
//! | call | use | essential |
//! |---|---|---|
//! | `GET /api/cluster?fields=name,uuid,version` | name, version (`version.full` up to the first `:`) | yes: a non-200 fails the poll (`auth_failed` on 401/403, else `error`) |
//! | `GET /api/cluster/nodes?fields=…` | nodes, model, hardware health (on 400/262197 retried once with the basic fields only) | no |
//! | `GET /api/storage/aggregates?fields=name,state,space` | capacity, aggregate state | no |
//! | `GET /api/storage/disks?fields=name,state,container_type` | broken disks | no |
//! | `GET /api/support/ems/events` (problems, then recoveries) | open alerts | no |
//! | `GET /api/cluster/peers?fields=name,uuid,status` | cluster peer availability | no |
//! | `GET /api/snapmirror/relationships?fields=…` | replication health | no |
//! | `GET /api/cluster/metrocluster` | MetroCluster state (only when configured) | no |
//! | `GET /api/network/ip/interfaces?fields=name,state,enabled,svm.name,location.node.name,location.port.name` | LIF check ([`network`]) | no |
//! | `GET /api/network/ethernet/ports?fields=name,node.name,state,type,enabled` | port check ([`network`]) | no |
//! | `GET /api/cluster?fields=management_interfaces` | management addresses (topology polls only: the first, every 10th, a new version) | no |
//! | `GET /api/storage/volumes?fields=space.size` | provisioned bytes = the sum of the volumes' sizes (topology polls only; kept in between) | no |
//!
//! | `GET /api/cluster?fields=metric.iops,metric.latency,metric.throughput` | performance ([`topology`]); bounded by [`PERFORMANCE_TIMEOUT`] | no, and never a degradation |
//!
//! A release without the cluster `metric` (before 9.6; 400/262197) reports no performance, which
//! is not a degradation; it is not asked again until the next outage (an upgrade). A slow or
//! failing metric query is a warning event and no performance.
//!
//! Collections are followed through `_links.next.href` until it is absent. A failing
//! non-essential call degrades the snapshot (`error` set, a warning event naming the endpoint,
//! the HTTP status and ONTAP's own reason such as `262197: …`) instead of failing the poll.
//!
//! Health rules (each one is a function below, with its own tests):
//!
//! * **Nodes** ([`node_component`]): `state` up → ok; booting, waiting_for_giveback, unknown →
//!   warning; down, taken_over, degraded → error. HA giveback/takeover states outside
//!   {nothing_to_giveback, not_attempted, enabled, ready, ""} → warning. Failed power supplies or
//!   fans (`controller.failed_*.count > 0`) → warning (the node runs on its redundant unit);
//!   `controller.over_temperature == "over"` → error. Hardware health = the worst node.
//! * **Aggregates** ([`aggregate_capacity`], [`aggregate_components`]): capacity is the sum of
//!   `space.block_storage.size` / `.used`; free is the sum of `.available` when every aggregate
//!   reports it, else size − used. Data reduction is `space.efficiency.ratio`, weighted by used
//!   bytes over the aggregates that report it. `state` other than online → hardware error.
//! * **Disks** ([`disk_components`]): `state == broken` or `container_type == broken` → hardware
//!   error; reconstructing, maintenance, pending, removed → warning. Only unhealthy disks become
//!   components, plus one `disks` summary component.
//! * **EMS** ([`ems_alerts`]): the two EMS queries are a log, not a state store, so open problems
//!   are reconstructed: events older than the look-back window (96 h) are dropped; names with a
//!   hardware prefix (`hm.`, `disk.`, `raid.`, `nvme.`, `nvmf.`, `env.`, `cf.`, `node.`, `sas.`,
//!   `fc.`, `callhome.`, `cpeer.`) are kept at any fetched severity, others only at emergency or
//!   alert; a problem with a newer recovery for the same key is dropped (`hm.alert.raised`/
//!   `cleared`: node + alert id; `cpeer.unavailable`/`available`: peer name;
//!   `cf.fsm.monitor.globalStatus.critical`/`ok`: node). Severity: emergency → critical,
//!   alert → error, error → error. An open emergency event → hardware error; an open event with a
//!   hardware prefix → hardware warning. If the problem query fails the poll is degraded and
//!   reports no alerts; if only the recovery query fails, every problem in the window counts as
//!   open (a stale alert beats a silently missing one).
//! * **Cluster** ([`peer_components`], [`snapmirror_components`], [`metrocluster_component`]):
//!   a peer whose `status.state` is not `available` → cluster warning; a SnapMirror relationship
//!   with `healthy == false` → cluster warning; MetroCluster is only looked at when
//!   `local.configuration_state == configured` (not_configured is the normal case): a local or
//!   remote mode other than `normal`, or an unreachable partner cluster → cluster warning.

//!
//! Files: this one (calls, paging envelope, the adapter), [`model`] (response bodies),
//! [`health`] (node, aggregate, disk and cluster rules), [`ems`] (open problems from the EMS log).

pub mod ems;
pub mod health;
pub mod model;
pub mod network;
#[cfg(test)]
mod tests;
pub mod topology;

use std::marker::PhantomData;
use std::time::Duration;

use base64::Engine;
use base64::engine::general_purpose::STANDARD as BASE64;
use sdash_proto::{Category, Health, Level, Snapshot, Vendor};
use serde::Deserialize;
use serde::de::DeserializeOwned;
use time::OffsetDateTime;

pub use ems::*;
pub use health::*;
pub use model::*;
pub use network::*;
pub use topology::{performance, pools, provisioned_bytes, topology};

use super::bookkeeping::{AlertMemory, PollContext, online_snapshot};
#[cfg(test)]
use super::components::worst_health;
use super::components::{HealthPart, fold_check, fold_components};
use super::paging::{Page, PageSource, paginate};
use super::shell::{Poll, Shell, UserPassword, VendorAdapter};
use super::topology::{
    PERFORMANCE_TIMEOUT, PerfOutcome, TopologyState, management_url, performance_call,
};
use crate::http::{HttpClient, HttpError, percent_decode};

/// EMS look-back window: events older than 96 hours are not open problems any more.
pub const EMS_WINDOW: Duration = Duration::from_secs(96 * 3600);

/// Paths and queries (fields named explicitly; every name exists in the ONTAP 9 model).
pub const CLUSTER_PATH: &str = "/api/cluster?fields=name,uuid,version";
/// The cluster's performance `metric` (ONTAP 9.6+).
/// Performance: only the `metric` members read ([`topology::performance`]), not its
/// timestamp, duration, status or `other`/`total` splits.
pub const METRIC_PATH: &str = "/api/cluster?fields=metric.iops,metric.latency,metric.throughput";
/// The management addresses, asked on topology polls.
pub const CLUSTER_MANAGEMENT_PATH: &str = "/api/cluster?fields=management_interfaces";
pub const INTERFACES_PATH: &str = "/api/network/ip/interfaces?fields=name,state,enabled,svm.name,location.node.name,location.port.name";
pub const PORTS_PATH: &str = "/api/network/ethernet/ports?fields=name,node.name,state,type,enabled";
/// The volumes' provisioned sizes, asked on topology polls.
pub const VOLUMES_PATH: &str = "/api/storage/volumes?fields=space.size";
pub const NODES_PATH: &str = "/api/cluster/nodes?fields=name,uuid,state,model,serial_number,version,ha,\
controller.failed_power_supply.count,controller.failed_fan.count,controller.over_temperature";
/// The node query for releases that reject one of the [`NODES_PATH`] fields (400/262197).
pub const NODES_MINIMAL_PATH: &str =
    "/api/cluster/nodes?fields=name,uuid,state,model,serial_number,version";
pub const AGGREGATES_PATH: &str = "/api/storage/aggregates?fields=name,state,space";
pub const DISKS_PATH: &str = "/api/storage/disks?fields=name,state,container_type";
pub const PEERS_PATH: &str = "/api/cluster/peers?fields=name,uuid,status";
pub const SNAPMIRROR_PATH: &str =
    "/api/snapmirror/relationships?fields=healthy,unhealthy_reason,state,source,destination";
pub const METROCLUSTER_PATH: &str = "/api/cluster/metrocluster";
pub(crate) const EMS_FIELDS: &str = "fields=index,message.name,message.severity,log_message,time,node.name,parameters&max_records=500&order_by=time%20desc";

/// The ONTAP adapter of one cluster.
pub type OntapAdapter = Shell<Ontap>;

/// ONTAP's part of the adapter. ONTAP has no session: the Basic credentials are read at the start
/// of each poll (so a rotated password file is picked up) and sent on every call.
#[derive(Debug)]
pub struct Ontap {
    /// A fixed "now" for the EMS window (tests replaying fixtures recorded at a known time).
    frozen_now_ms: Option<i64>,
    /// The EMS look-back window.
    pub ems_window: Duration,
    /// Whether the release knows the cluster `metric` (false after a 262197 for it).
    metric: bool,
    topology: TopologyState,
    /// The sum of the volumes' sizes from the last topology poll.
    provisioned: Option<u64>,
}

impl Default for Ontap {
    fn default() -> Ontap {
        Ontap {
            frozen_now_ms: None,
            ems_window: EMS_WINDOW,
            metric: true,
            topology: TopologyState::default(),
            provisioned: None,
        }
    }
}

impl Ontap {
    fn now_ms(&self) -> i64 {
        self.frozen_now_ms.unwrap_or_else(sdash_proto::now_ms)
    }
}

impl Shell<Ontap> {
    /// Evaluates the EMS look-back window at `now_ms` instead of the clock (for fixture replays).
    pub fn freeze_clock(&mut self, now_ms: i64) {
        self.vendor_mut().frozen_now_ms = Some(now_ms);
    }
}

impl VendorAdapter for Ontap {
    const VENDOR: Vendor = Vendor::Ontap;
    type Credentials = UserPassword;

    async fn poll(&mut self, poll: Poll<'_, UserPassword>) -> Result<Snapshot, HttpError> {
        let ctx = poll.ctx;
        let UserPassword { username, password } = &poll.credentials;
        let basic = BASE64.encode(format!("{username}:{}", password.expose()));
        let authorization = format!("Basic {basic}");
        let api = Api {
            http: poll.http,
            authorization: &authorization,
        };

        let mut cluster: ClusterInfo = api.get(CLUSTER_PATH).await?;
        if self.metric {
            let limit = PERFORMANCE_TIMEOUT.min(poll.config.timeout);
            let call = api.get::<ClusterInfo>(METRIC_PATH);
            match performance_call(ctx, "/api/cluster", limit, call, is_invalid_field).await {
                PerfOutcome::Value(m) => cluster.metric = m.metric,
                PerfOutcome::Unsupported => self.metric = false,
                PerfOutcome::Failed => {}
            }
        }
        let topology_due = self.topology.due(cluster.version().as_deref());
        if topology_due
            && let Some(m) = ctx.keep(api.get::<ClusterInfo>(CLUSTER_MANAGEMENT_PATH).await)
        {
            cluster.management_interfaces = m.management_interfaces;
        }
        if topology_due && let Some(v) = ctx.keep(api.collect::<Volume>(VOLUMES_PATH).await) {
            self.provisioned = Some(provisioned_bytes(&v));
        }
        let nodes = match api.collect::<Node>(NODES_PATH).await {
            Err(e) if is_invalid_field(&e) => {
                // An older release without one of the controller/HA fields: node states still
                // count, the PSU/fan/temperature/HA checks are skipped (and said so).
                ctx.push(e.event(Level::Info));
                ctx.event(
                    Level::Info,
                    Category::DataQuery,
                    "/api/cluster/nodes: retrying with the basic fields; PSU, fan, temperature and HA checks skipped",
                );
                api.collect::<Node>(NODES_MINIMAL_PATH).await
            }
            other => other,
        };
        let nodes = ctx.keep(nodes);
        let aggregates = ctx.keep(api.collect::<Aggregate>(AGGREGATES_PATH).await);
        let disks = ctx.keep(api.collect::<Disk>(DISKS_PATH).await);
        // Alerts: EMS problems paired with their recoveries, inside the look-back window.
        let now_ms = self.now_ms();
        let window_ms = i64::try_from(self.ems_window.as_millis()).unwrap_or(i64::MAX);
        let since = OffsetDateTime::from_unix_timestamp(now_ms.saturating_sub(window_ms) / 1000)
            .unwrap_or(OffsetDateTime::UNIX_EPOCH);
        let problems = ctx.keep(api.collect::<EmsEvent>(&ems_problems_path(since)).await);
        let recoveries = match problems {
            Some(_) => ctx.keep(api.collect::<EmsEvent>(&ems_recoveries_path(since)).await),
            None => None,
        };
        let responses = Responses {
            cluster,
            nodes,
            aggregates,
            disks,
            problems,
            recoveries,
            peers: ctx.keep(api.collect::<Peer>(PEERS_PATH).await),
            snapmirror: ctx.keep(api.collect::<SnapMirror>(SNAPMIRROR_PATH).await),
            metrocluster: ctx.keep(api.get::<MetroCluster>(METROCLUSTER_PATH).await),
            interfaces: ctx.keep(api.collect::<IpInterface>(INTERFACES_PATH).await),
            ports: ctx.keep(api.collect::<Port>(PORTS_PATH).await),
            management_url: management_url(poll.http.base_url(), None),
        };
        let mut snapshot = snapshot(responses, now_ms, self.ems_window, ctx, poll.alerts);
        if let Some(c) = snapshot.capacity.as_mut() {
            c.provisioned_bytes = self.provisioned;
        }
        if let Some(fresh) = snapshot.topology.take() {
            snapshot.topology = Some(self.topology.resolve(topology_due, fresh).await);
        }
        Ok(snapshot)
    }

    fn after_outage(&mut self) {
        // The cluster may come back upgraded (with the metric) or changed.
        self.metric = true;
        self.topology.invalidate();
        self.provisioned = None;
    }
}

/// What one poll read from a cluster: `/api/cluster` (essential) and each non-essential
/// collection, `None` when its call failed (already recorded as a degradation). `recoveries` is
/// only asked when `problems` was read.
#[derive(Debug)]
pub struct Responses {
    pub cluster: ClusterInfo,
    pub nodes: Option<Vec<Node>>,
    pub aggregates: Option<Vec<Aggregate>>,
    pub disks: Option<Vec<Disk>>,
    pub problems: Option<Vec<EmsEvent>>,
    pub recoveries: Option<Vec<EmsEvent>>,
    pub peers: Option<Vec<Peer>>,
    pub snapmirror: Option<Vec<SnapMirror>>,
    pub metrocluster: Option<MetroCluster>,
    pub interfaces: Option<Vec<IpInterface>>,
    pub ports: Option<Vec<Port>>,
    /// The web UI (System Manager) of the cluster: its API base URL.
    pub management_url: Option<String>,
}

/// The snapshot from what a poll read at `now_ms` with the EMS look-back `ems_window`, by the
/// rules of the module docs; degradations go into `ctx`, a failed EMS query falls back on
/// `alerts`. Shared by [`Ontap::poll`] and the fuzz target (`crate::fuzzing::ontap`).
pub fn snapshot(
    responses: Responses,
    now_ms: i64,
    ems_window: Duration,
    ctx: &mut PollContext,
    alerts: &mut AlertMemory,
) -> Snapshot {
    let cluster = responses.cluster;
    let mut snapshot = Snapshot {
        name: (!cluster.name.is_empty()).then(|| cluster.name.clone()),
        version: cluster.version(),
        ..online_snapshot(Vendor::Ontap)
    };

    // Hardware: nodes, aggregates, disks.
    if let Some(nodes) = &responses.nodes {
        snapshot.model = nodes_model(nodes);
        fold_components(
            &mut snapshot,
            HealthPart::Hardware,
            nodes.iter().map(node_component).collect(),
        );
    }
    if let Some(aggs) = responses.aggregates {
        snapshot.pools = pools(&aggs);
        snapshot.capacity = aggregate_capacity(&aggs);
        if snapshot.capacity.is_none() {
            ctx.degrade_with(
                "/api/storage/aggregates",
                "no aggregates listed, capacity unknown",
            );
        }
        fold_components(
            &mut snapshot,
            HealthPart::Hardware,
            aggregate_components(&aggs),
        );
    }
    if let Some(disks) = responses.disks {
        fold_components(&mut snapshot, HealthPart::Hardware, disk_components(&disks));
    }

    let recoveries = responses.recoveries;
    let fresh = responses.problems.map(|problems| {
        // Without the recoveries every problem in the window counts as open (and the poll is
        // already marked degraded): better a stale alert than a silently missing one.
        let ems = ems_alerts(
            &problems,
            recoveries.as_deref().unwrap_or(&[]),
            now_ms,
            ems_window,
        );
        snapshot.hardware = snapshot.hardware.worst(ems.hardware);
        ems.alerts
    });
    // Without the problems query the open alerts are unknown: keep the last known set.
    snapshot.alerts = alerts.resolve(fresh);

    // Network checks: LIFs (cluster health) and ports (hardware health); a failed query keeps
    // the check's last alerts.
    let lifs = responses.interfaces.map(|l| lif_checks(&l));
    let ports = responses.ports.map(|p| port_checks(&p));
    fold_check(&mut snapshot, HealthPart::Cluster, alerts, "lif", lifs);
    fold_check(&mut snapshot, HealthPart::Hardware, alerts, "port", ports);
    snapshot.performance = performance(&cluster);

    // Cluster: peers, SnapMirror, MetroCluster.
    if let Some(peers) = &responses.peers {
        fold_components(&mut snapshot, HealthPart::Cluster, peer_components(peers));
    }
    if let Some(rels) = responses.snapmirror {
        fold_components(
            &mut snapshot,
            HealthPart::Cluster,
            snapmirror_components(&rels),
        );
    }
    if let Some(mc) = &responses.metrocluster {
        snapshot.cluster = snapshot.cluster.worst(Health::Ok);
        if let Some(c) = metrocluster_component(mc) {
            snapshot.cluster = snapshot.cluster.worst(c.status);
            snapshot.components.push(c);
        }
    }
    snapshot.topology = Some(topology(
        &cluster,
        responses.nodes.as_deref(),
        responses.peers.as_deref(),
        responses.metrocluster.as_ref(),
        responses.management_url,
    ));
    snapshot
}

/// True for ONTAP's "invalid name in `fields`" answer (HTTP 400, code 262197).
fn is_invalid_field(e: &HttpError) -> bool {
    matches!(e, HttpError::Status { status: 400, excerpt, .. } if excerpt.contains("262197"))
}

/// Puts the reason from an ONTAP error body (e.g. `262197: invalid field`) into the excerpt.
fn with_reason(e: HttpError) -> HttpError {
    match e {
        HttpError::Status {
            endpoint,
            status,
            excerpt,
        } => {
            let excerpt = error_reason(excerpt.as_bytes()).unwrap_or(excerpt);
            HttpError::Status {
                endpoint,
                status,
                excerpt,
            }
        }
        other => other,
    }
}

/// One poll's view of the API: the client and the Basic authorization header.
struct Api<'a> {
    http: &'a HttpClient,
    authorization: &'a str,
}

impl Api<'_> {
    async fn get<T: DeserializeOwned>(&self, path: &str) -> Result<T, HttpError> {
        self.http
            .get(path)
            .header("authorization", self.authorization)
            .send()
            .await
            .map_err(with_reason)?
            .json()
    }

    /// All records of a collection, following `_links.next.href` (relative hrefs only).
    async fn collect<T: DeserializeOwned + Send>(&self, path: &str) -> Result<Vec<T>, HttpError> {
        let endpoint = path.split('?').next().unwrap_or(path).to_owned();
        let mut pages = Collection {
            api: self,
            path,
            endpoint: &endpoint,
            records: PhantomData,
        };
        paginate(&endpoint, &mut pages).await
    }
}

/// The pages of one collection.
struct Collection<'a, T> {
    api: &'a Api<'a>,
    path: &'a str,
    endpoint: &'a str,
    records: PhantomData<fn() -> T>,
}

impl<T: DeserializeOwned + Send> PageSource for Collection<'_, T> {
    type Item = T;
    type Cursor = String;

    async fn fetch(&mut self, next: Option<String>) -> Result<Page<T, String>, HttpError> {
        let http = self.api.http;
        let request = match next {
            None => http.get(self.path),
            Some(href) => {
                let (next_path, query) = split_href(&href).ok_or_else(|| HttpError::Protocol {
                    endpoint: self.endpoint.to_owned(),
                    reason: format!(
                        "unusable _links.next.href {:?}",
                        crate::http::excerpt(href.as_bytes())
                    ),
                })?;
                query
                    .into_iter()
                    .fold(http.get(&next_path), |r, (k, v)| r.query(&k, v))
            }
        };
        let page: OntapCollection<T> = request
            .header("authorization", self.api.authorization)
            .send()
            .await
            .map_err(with_reason)?
            .json()?;
        Ok(Page {
            next: page.next_href().map(str::to_owned),
            items: page.records,
        })
    }
}

/// ONTAP collection envelope: `{records[], num_records, _links: {self, next?}}`. Page with
/// `max_records` and follow [`OntapCollection::next_href`].
#[derive(Debug, Deserialize)]
pub struct OntapCollection<T> {
    #[serde(default = "Vec::new")]
    pub records: Vec<T>,
    #[serde(default)]
    pub num_records: Option<u64>,
    #[serde(default)]
    pub _links: Option<OntapLinks>,
}

#[derive(Debug, Deserialize)]
pub struct OntapLinks {
    #[serde(default)]
    pub next: Option<OntapHref>,
}

#[derive(Debug, Deserialize)]
pub struct OntapHref {
    pub href: String,
}

impl<T> OntapCollection<T> {
    /// The `_links.next.href` of this page (a path plus query, e.g.
    /// `/api/storage/disks?start.uuid=...&max_records=100`), if there is a next page.
    pub fn next_href(&self) -> Option<&str> {
        self._links
            .as_ref()?
            .next
            .as_ref()
            .map(|n| n.href.as_str())
            .filter(|h| !h.is_empty())
    }
}

/// Splits an ONTAP `href` into its path and decoded query pairs, to feed [`HttpClient::request`](crate::http::HttpClient::request)
/// and [`Request::query`](crate::http::Request::query). Only relative hrefs (starting with `/`) are accepted, so a hostile
/// server cannot send us elsewhere.
pub fn split_href(href: &str) -> Option<(String, Vec<(String, String)>)> {
    if !href.starts_with('/') || href.starts_with("//") {
        return None;
    }
    let (path, query) = href.split_once('?').unwrap_or((href, ""));
    let pairs = query
        .split('&')
        .filter(|p| !p.is_empty())
        .map(|p| {
            let (k, v) = p.split_once('=').unwrap_or((p, ""));
            (percent_decode(k), percent_decode(v))
        })
        .collect();
    Some((path.to_owned(), pairs))
}
