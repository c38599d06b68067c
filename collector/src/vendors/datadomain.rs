//! Dell PowerProtect DataDomain (REST `/rest/v1.0` and `/api/v1`, default port 3009).
//!
//! Authentication: `POST /rest/v1.0/auth` with JSON `{username, password}` answers 201 with the
//! session token in the response header `X-DD-AUTH-TOKEN` (the body is a `serviceStatus`, bare or
//! wrapped in `service_status`; both are accepted). The token is sent as `X-DD-AUTH-TOKEN` and
//! kept across polls; a 401 triggers one re-login per poll, a second 401 is `auth_failed`.
//! `DELETE /rest/v1.0/auth` logs out.
//!
//! Calls per poll (only paths that exist in `dd_api.json`; the predecessor's
//! `/rest/v1.0/dd-systems/0/{ha,hardware,replication/contexts}` do not):
//!
//! | call | use | essential |
//! |---|---|---|
//! | `GET /rest/v1.0/system` | name, version, model, serial, type, capacity | yes |
//! | `GET /rest/v1.0/dd-systems/0/alerts?is_active=true` (paged) | open alerts, hardware alerts | no |
//! | `GET /api/v1/dd-systems/0/storage/disks` (paged) | failed disks | no |
//! | `GET /api/v1/dd-systems/0/ha` (only when `type == HA`) | HA state → cluster health | no |
//! | `GET /api/v1/dd-systems/0/mtree-replications` (paged) | replication → cluster health | no |
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

use sdash_proto::{Alert, Capacity, Component, Health, Severity, Snapshot, Status, Vendor};
use serde::Deserialize;
use serde::de::DeserializeOwned;

use super::PollOutput;
use crate::http::{
    AlertMemory, DdPagingInfo, HttpClient, HttpError, Method, Pager, PollContext, Session,
    SetupError, StatusTracker, session_call, worst_health,
};
use crate::inventory::{Credentials, Secret, SystemConfig};

pub const AUTH_PATH: &str = "/rest/v1.0/auth";
pub const SYSTEM_PATH: &str = "/rest/v1.0/system";
pub const ALERTS_PATH: &str = "/rest/v1.0/dd-systems/0/alerts";
pub const DISKS_PATH: &str = "/api/v1/dd-systems/0/storage/disks";
pub const HA_PATH: &str = "/api/v1/dd-systems/0/ha";
pub const REPLICATION_PATH: &str = "/api/v1/dd-systems/0/mtree-replications";
/// The token header, both for the login answer and for every later call.
pub const TOKEN_HEADER: &str = "X-DD-AUTH-TOKEN";

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(default)]
pub struct SystemInfo {
    pub name: String,
    #[serde(rename = "type")]
    pub system_type: String,
    pub version: String,
    pub serialno: String,
    pub model: String,
    pub physical_capacity: CapacityInfo,
    pub compression_factor: Option<f64>,
}

impl SystemInfo {
    pub fn is_ha(&self) -> bool {
        self.system_type.eq_ignore_ascii_case("ha")
    }
}

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(default)]
pub struct CapacityInfo {
    pub total: u64,
    pub used: u64,
    pub available: Option<u64>,
}

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(default)]
pub struct AlertList {
    pub alert_list: Vec<DdAlert>,
    pub paging_info: Option<DdPagingInfo>,
}

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(default)]
pub struct DdAlert {
    pub id: String,
    pub alert_id: String,
    pub name: String,
    pub alert_gen_epoch: Option<i64>,
    pub msg: String,
    pub description: String,
    pub status: String,
    pub class: String,
    pub severity: String,
    pub object_id: String,
    #[serde(rename = "partName")]
    pub part_name: String,
}

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(default)]
pub struct DiskList {
    #[serde(rename = "diskInfo")]
    pub disk_info: Vec<DdDisk>,
    pub paging_info: Option<DdPagingInfo>,
}

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(default)]
pub struct DdDisk {
    pub id: String,
    pub device: String,
    pub status: String,
}

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(default)]
pub struct HaSysInfo {
    #[serde(rename = "haInfo")]
    pub ha_info: HaInfo,
}

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(default)]
pub struct HaInfo {
    pub role: String,
    pub mode: String,
    pub state: String,
    #[serde(rename = "nodeName")]
    pub node_name: String,
    #[serde(rename = "peerInfo")]
    pub peer_info: Option<HaPeer>,
}

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(default)]
pub struct HaPeer {
    #[serde(rename = "nodeName")]
    pub node_name: String,
    pub state: String,
}

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(default)]
pub struct ReplicationList {
    pub contexts: Vec<ReplContext>,
    pub paging_info: Option<DdPagingInfo>,
}

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(default)]
pub struct ReplContext {
    pub id: String,
    pub mode: String,
    pub state: String,
    pub enabled: Option<bool>,
    #[serde(rename = "needResync")]
    pub need_resync: Option<bool>,
    pub connected: Option<bool>,
    #[serde(rename = "sourceMtreePath")]
    pub source_mtree_path: String,
    #[serde(rename = "destinationHost")]
    pub destination_host: String,
    #[serde(rename = "errorMessage")]
    pub error_message: String,
}

/// The `serviceStatus` envelope `{details, code}`, bare or wrapped in `service_status`.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(default)]
pub struct ServiceStatus {
    pub details: String,
    pub code: Option<i64>,
    pub service_status: Option<Box<ServiceStatus>>,
}

impl ServiceStatus {
    fn inner(&self) -> &ServiceStatus {
        self.service_status.as_deref().unwrap_or(self)
    }
}

/// A readable reason from a DataDomain error body (`serviceStatus`).
pub fn error_reason(body: &[u8]) -> Option<String> {
    let s: ServiceStatus = serde_json::from_slice(body).ok()?;
    let s = s.inner();
    if s.details.is_empty() {
        return None;
    }
    Some(match s.code {
        Some(c) => format!("{c}: {}", s.details),
        None => s.details.clone(),
    })
}

/// Capacity from `/rest/v1.0/system`; `None` when the system reports no total.
pub fn capacity(system: &SystemInfo) -> Option<Capacity> {
    let p = &system.physical_capacity;
    if p.total == 0 && p.used == 0 {
        return None;
    }
    Some(Capacity {
        total_bytes: p.total,
        used_bytes: p.used,
        free_bytes: p
            .available
            .unwrap_or_else(|| p.total.saturating_sub(p.used)),
        data_reduction: system
            .compression_factor
            .filter(|f| f.is_finite() && *f > 0.0),
    })
}

/// Normalized severity of a DD severity word (upper case in the spec; compared case-insensitively).
pub fn alert_severity(severity: &str) -> Severity {
    match severity.to_ascii_uppercase().as_str() {
        "CRITICAL" | "EMERGENCY" | "ALERT" => Severity::Critical,
        "ERROR" => Severity::Error,
        "WARNING" => Severity::Warning,
        _ => Severity::Info,
    }
}

fn is_active(a: &DdAlert) -> bool {
    matches!(
        a.status.to_ascii_lowercase().as_str(),
        "active" | "new" | "unresolved"
    )
}

/// The open alerts, normalized.
pub fn alerts(list: &[DdAlert]) -> Vec<Alert> {
    list.iter()
        .filter(|a| is_active(a))
        .map(|a| Alert {
            id: [&a.alert_id, &a.id, &a.name]
                .into_iter()
                .find(|s| !s.is_empty())
                .cloned()
                .unwrap_or_default(),
            severity: alert_severity(&a.severity),
            vendor_severity: a.severity.clone(),
            title: [&a.msg, &a.description, &a.name]
                .into_iter()
                .find(|s| !s.is_empty())
                .cloned()
                .unwrap_or_default(),
            component: [&a.part_name, &a.object_id]
                .into_iter()
                .find(|s| !s.is_empty())
                .cloned(),
            opened_at: a.alert_gen_epoch.and_then(|s| s.checked_mul(1000)),
        })
        .collect()
}

/// Hardware health implied by the open HardwareFailure/Environment alerts.
pub fn alert_hardware(list: &[DdAlert]) -> Health {
    list.iter()
        .filter(|a| is_active(a) && matches!(a.class.as_str(), "HardwareFailure" | "Environment"))
        .fold(Health::Ok, |acc, a| {
            acc.worst(if alert_severity(&a.severity) == Severity::Critical {
                Health::Error
            } else {
                Health::Warning
            })
        })
}

/// Health of one disk status.
pub fn disk_health(status: &str) -> Health {
    match status.to_ascii_uppercase().as_str() {
        "FAILED" | "ERROR" => Health::Error,
        "UNKNOWN" | "FOREIGN" | "INVALID" => Health::Warning,
        _ => Health::Ok,
    }
}

/// A `disks` summary component plus one `disk` component per unhealthy disk.
pub fn disk_components(disks: &[DdDisk]) -> Vec<Component> {
    let mut out = vec![];
    let mut worst = Health::Ok;
    for d in disks {
        let h = disk_health(&d.status);
        if h != Health::Ok {
            worst = worst.worst(h);
            out.push(Component {
                kind: "disk".into(),
                name: d.id.clone(),
                status: h,
                detail: Some(format!("{} {}", d.device, d.status)),
            });
        }
    }
    let bad = out.len();
    out.insert(
        0,
        Component {
            kind: "disks".into(),
            name: "disks".into(),
            status: worst,
            detail: Some(format!("{} disks, {bad} unhealthy", disks.len())),
        },
    );
    out
}

/// Health of an HA state word.
pub fn ha_state_health(state: &str) -> Health {
    match state.to_ascii_lowercase().as_str() {
        "online" | "ok" | "normal" | "active" | "standby" | "running" => Health::Ok,
        "failed" | "error" | "critical" | "offline" | "down" => Health::Error,
        _ => Health::Warning,
    }
}

/// `ha` components for the local node and its peer.
pub fn ha_components(ha: &HaSysInfo) -> Vec<Component> {
    let h = &ha.ha_info;
    let mut out = vec![Component {
        kind: "ha_node".into(),
        name: if h.node_name.is_empty() {
            "local".into()
        } else {
            h.node_name.clone()
        },
        status: ha_state_health(&h.state),
        detail: Some(format!(
            "role {}, mode {}, state {}",
            h.role, h.mode, h.state
        )),
    }];
    if let Some(p) = &h.peer_info {
        out.push(Component {
            kind: "ha_node".into(),
            name: if p.node_name.is_empty() {
                "peer".into()
            } else {
                p.node_name.clone()
            },
            status: ha_state_health(&p.state),
            detail: Some(format!("peer, state {}", p.state)),
        });
    }
    out
}

/// One `replication` component per MTree replication context.
pub fn replication_components(contexts: &[ReplContext]) -> Vec<Component> {
    contexts
        .iter()
        .map(|c| {
            let mut problems = Vec::new();
            if c.enabled != Some(false) {
                if c.connected == Some(false) {
                    problems.push("not connected".to_owned());
                }
                if c.need_resync == Some(true) {
                    problems.push("needs resync".to_owned());
                }
                if !c.error_message.is_empty() {
                    problems.push(c.error_message.clone());
                }
                if !c.state.eq_ignore_ascii_case("normal") {
                    problems.push(format!("state {}", c.state));
                }
            }
            Component {
                kind: "replication".into(),
                name: format!("{} -> {}", c.source_mtree_path, c.destination_host),
                status: if problems.is_empty() {
                    Health::Ok
                } else {
                    Health::Warning
                },
                detail: Some(if problems.is_empty() {
                    format!("{} {}", c.mode, c.state)
                } else {
                    problems.join(", ")
                }),
            }
        })
        .collect()
}

/// A paged DataDomain list: its rows and its `paging_info`.
pub trait DdList: DeserializeOwned {
    type Item;
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

/// The DataDomain adapter of one system. Keeps the `X-DD-AUTH-TOKEN` session across polls.
#[derive(Debug)]
pub struct DataDomainAdapter {
    config: SystemConfig,
    http: HttpClient,
    session: Session,
    tracker: StatusTracker,
    alerts: AlertMemory,
}

impl DataDomainAdapter {
    pub fn new(config: &SystemConfig) -> Result<DataDomainAdapter, SetupError> {
        Ok(DataDomainAdapter {
            config: config.clone(),
            http: HttpClient::new(config)?,
            session: Session::default(),
            tracker: StatusTracker::default(),
            alerts: AlertMemory::default(),
        })
    }

    /// Logins performed so far (first login and renewals).
    pub fn logins(&self) -> u64 {
        self.session.logins
    }

    /// Ends the session: `DELETE /rest/v1.0/auth` (failures are ignored).
    pub async fn logout(&mut self) {
        if let Some(token) = self.session.clear() {
            let _ = self
                .http
                .request(Method::DELETE, AUTH_PATH)
                .header("x-dd-auth-token", &token)
                .allow_empty()
                .send()
                .await;
        }
    }

    /// Polls the system once (see the module docs for the calls and rules).
    pub async fn poll(&mut self) -> PollOutput {
        let mut ctx = PollContext::new();
        self.session.begin_poll();
        let credentials = match self.config.credentials() {
            Ok(Credentials::UserPassword { username, password }) => (username, password),
            Ok(Credentials::ApiToken(_)) => {
                return self
                    .credential_failure(ctx, "DataDomain needs a username and password".into());
            }
            Err(e) => return self.credential_failure(ctx, e.to_string()),
        };
        let mut api = Api {
            http: &self.http,
            session: &mut self.session,
            credentials: &credentials,
        };

        let system: SystemInfo = match api.get(&mut ctx, SYSTEM_PATH, &[]).await {
            Ok(s) => s,
            Err(e) => {
                let snapshot = ctx.fail(Vendor::Datadomain, &e);
                return self.finish(snapshot, ctx);
            }
        };
        let mut snapshot = Snapshot {
            vendor: Vendor::Datadomain,
            status: Status::Online,
            hardware: Health::Unknown,
            cluster: Health::Unknown,
            name: non_empty(&system.name),
            version: non_empty(&system.version),
            model: non_empty(&system.model),
            serial: non_empty(&system.serialno),
            capacity: capacity(&system),
            alerts: Vec::new(),
            components: Vec::new(),
            poll_ms: 0,
            error: None,
        };
        if snapshot.capacity.is_none() {
            ctx.degrade_with(
                SYSTEM_PATH,
                "no physical_capacity in the answer, capacity unknown",
            );
        }

        let fresh = api
            .try_list::<AlertList>(&mut ctx, ALERTS_PATH, &[("is_active", "true")])
            .await
            .map(|list| {
                snapshot.hardware = snapshot.hardware.worst(alert_hardware(&list));
                alerts(&list)
            });
        snapshot.alerts = self.alerts.resolve(fresh);
        if let Some(disks) = api.try_list::<DiskList>(&mut ctx, DISKS_PATH, &[]).await {
            let comps = disk_components(&disks);
            snapshot.hardware = snapshot.hardware.worst(worst_health(&comps));
            snapshot.components.extend(comps);
        }
        if system.is_ha() {
            match api.get::<HaSysInfo>(&mut ctx, HA_PATH, &[]).await {
                Ok(ha) => {
                    let comps = ha_components(&ha);
                    snapshot.cluster = snapshot.cluster.worst(worst_health(&comps));
                    snapshot.components.extend(comps);
                }
                Err(e) => ctx.degrade(&e),
            }
        }
        if let Some(contexts) = api
            .try_list::<ReplicationList>(&mut ctx, REPLICATION_PATH, &[])
            .await
        {
            let comps = replication_components(&contexts);
            snapshot.cluster = snapshot.cluster.worst(worst_health(&comps));
            snapshot.components.extend(comps);
        }

        snapshot.error = ctx.error_text();
        snapshot.poll_ms = ctx.elapsed_ms();
        self.finish(snapshot, ctx)
    }

    fn credential_failure(&mut self, mut ctx: PollContext, reason: String) -> PollOutput {
        let snapshot = ctx.credentials_failed(Vendor::Datadomain, &reason);
        self.finish(snapshot, ctx)
    }

    fn finish(&mut self, snapshot: Snapshot, ctx: PollContext) -> PollOutput {
        let (snapshot, events) = self.tracker.finish(snapshot, ctx);
        PollOutput { snapshot, events }
    }
}

fn non_empty(text: &str) -> Option<String> {
    (!text.trim().is_empty()).then(|| text.trim().to_owned())
}

/// One poll's view of the API: client, session and credentials.
struct Api<'a> {
    http: &'a HttpClient,
    session: &'a mut Session,
    credentials: &'a (String, Secret),
}

impl Api<'_> {
    /// `GET path?query` with the session token (logging in, or renewing once on a 401).
    async fn get<T: DeserializeOwned>(
        &mut self,
        ctx: &mut PollContext,
        path: &str,
        query: &[(&str, String)],
    ) -> Result<T, HttpError> {
        let http = self.http;
        let (username, password) = self.credentials;
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
        .await?
        .json()
    }

    /// All rows of a paged list (`page` from 0, `size` [`PAGE_SIZE`], until `paging_info` says
    /// the last page was read).
    async fn list<L: DdList>(
        &mut self,
        ctx: &mut PollContext,
        path: &str,
        query: &[(&str, &str)],
    ) -> Result<Vec<L::Item>, HttpError> {
        let mut pager: Pager<u64> = Pager::new(path);
        let mut all = Vec::new();
        while let Some(page) = pager.next_cursor() {
            let mut q: Vec<(&str, String)> =
                query.iter().map(|(k, v)| (*k, (*v).to_owned())).collect();
            q.push(("page", page.unwrap_or(0).to_string()));
            q.push(("size", PAGE_SIZE.to_string()));
            let (items, paging) = self.get::<L>(ctx, path, &q).await?.split();
            let next = if items.is_empty() {
                None
            } else {
                paging.and_then(|p| p.next_page())
            };
            all.extend(items);
            pager.advance(next)?;
        }
        Ok(all)
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

#[cfg(test)]
mod tests {
    use super::*;

    const TIB: u64 = 1 << 40;

    #[test]
    fn system_capacity_and_identity() {
        let s: SystemInfo = serde_json::from_str(include_str!(
            "../../../testkit/fixtures/datadomain/rest_v1.0_system.json"
        ))
        .unwrap_or_default();
        assert!(s.is_ha());
        assert_eq!(s.version, "Data Domain OS 8.3.0.15-1161254");
        assert_eq!(
            (s.model.as_str(), s.serialno.as_str()),
            ("DD9410", "APM00242100071")
        );
        let c = capacity(&s);
        assert_eq!(
            c,
            Some(Capacity {
                total_bytes: 500 * TIB,
                used_bytes: 346_346_162_749_440,
                free_bytes: 203_409_651_138_560,
                data_reduction: Some(18.4)
            })
        );
        assert_eq!(capacity(&SystemInfo::default()), None);
    }

    #[test]
    fn alerts_only_active_with_mapped_severities() {
        let l: AlertList = serde_json::from_str(include_str!(
            "../../../testkit/fixtures/datadomain/rest_v1.0_dd-systems_0_alerts.json"
        ))
        .unwrap_or_default();
        assert_eq!(l.alert_list.len(), 4);
        let a = alerts(&l.alert_list);
        let sev: Vec<_> = a.iter().map(|a| a.severity).collect();
        assert_eq!(
            sev,
            vec![Severity::Critical, Severity::Warning, Severity::Info]
        );
        assert_eq!(a[0].id, "p0-1207");
        assert_eq!(a[0].component.as_deref(), Some("Disk 3.9"));
        assert_eq!(a[0].opened_at, Some(1_795_147_200_000));
        assert_eq!(alert_hardware(&l.alert_list), Health::Error);
        for (w, s) in [
            ("EMERGENCY", Severity::Critical),
            ("ALERT", Severity::Critical),
            ("ERROR", Severity::Error),
            ("INFO", Severity::Info),
        ] {
            assert_eq!(alert_severity(w), s);
        }
    }

    #[test]
    fn disks_ha_replication() {
        let d: DiskList = serde_json::from_str(include_str!(
            "../../../testkit/fixtures/datadomain/api_v1_dd-systems_0_storage_disks.json"
        ))
        .unwrap_or_default();
        let comps = disk_components(&d.disk_info);
        assert_eq!(comps.len(), 2);
        assert_eq!(
            (comps[0].status, comps[1].name.as_str()),
            (Health::Error, "3.9")
        );
        let ha: HaSysInfo = serde_json::from_str(include_str!(
            "../../../testkit/fixtures/datadomain/api_v1_dd-systems_0_ha.json"
        ))
        .unwrap_or_default();
        let comps = ha_components(&ha);
        assert_eq!(comps.len(), 2);
        assert!(comps.iter().all(|c| c.status == Health::Ok));
        assert_eq!(ha_state_health("degraded"), Health::Warning);
        assert_eq!(ha_state_health("failed"), Health::Error);
        let r: ReplicationList = serde_json::from_str(include_str!(
            "../../../testkit/fixtures/datadomain/api_v1_dd-systems_0_mtree-replications.json"
        ))
        .unwrap_or_default();
        let mut ctx = r.contexts.clone();
        assert!(
            replication_components(&ctx)
                .iter()
                .all(|c| c.status == Health::Ok)
        );
        ctx[1].connected = Some(false);
        assert_eq!(replication_components(&ctx)[1].status, Health::Warning);
    }

    #[test]
    fn auth_and_error_bodies() {
        let wrapped = br#"{"service_status":{"details":"bad token","code":5023}}"#;
        assert_eq!(error_reason(wrapped).as_deref(), Some("5023: bad token"));
        let bare = include_bytes!("../../../testkit/fixtures/datadomain/error.json");
        assert_eq!(
            error_reason(bare).as_deref(),
            Some("5023: Authentication failed. Invalid or expired token.")
        );
        assert_eq!(error_reason(b"<html>"), None);
    }
}
