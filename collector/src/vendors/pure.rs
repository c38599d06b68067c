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
//! | `GET /api/<v>/array-connections`, `GET /api/<v>/pods` | replication / ActiveCluster health | no |
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

use std::time::Instant;

use sdash_proto::{
    Alert, Capacity, Category, Component, Health, Level, Severity, Snapshot, Status, Vendor,
};
use serde::Deserialize;
use serde::de::DeserializeOwned;

use super::PollOutput;
use crate::http::{
    AlertMemory, HttpClient, HttpError, Pager, PollContext, PureList, Request, Response, Session,
    SetupError, StatusTracker, pure_next_token, session_call,
};
use crate::inventory::{Credentials, SystemConfig};

/// Items per page requested with `limit`.
pub const PAGE_LIMIT: usize = 500;

/// One FlashArray's adapter; keeps the API version and the session across polls.
pub struct PureAdapter {
    config: SystemConfig,
    http: HttpClient,
    version: Option<String>,
    session: Session,
    tracker: StatusTracker,
    alerts: AlertMemory,
}

impl PureAdapter {
    pub fn new(config: &SystemConfig) -> Result<PureAdapter, SetupError> {
        Ok(PureAdapter {
            config: config.clone(),
            http: HttpClient::new(config)?,
            version: None,
            session: Session::default(),
            tracker: StatusTracker::default(),
            alerts: AlertMemory::default(),
        })
    }

    /// Logins performed so far (first login plus renewals).
    pub fn logins(&self) -> u64 {
        self.session.logins
    }

    pub async fn poll(&mut self) -> PollOutput {
        let mut ctx = PollContext::new();
        self.session.begin_poll();
        // Without a session the token is needed now: an unreadable token file is a configuration
        // problem (status error, an authentication event), not something to send to the array.
        if !self.session.is_active()
            && let Err(e) = self.config.credentials()
        {
            let message = format!("cannot read the API token: {e}");
            ctx.event(Level::Error, Category::Authentication, message.clone());
            let snapshot = Snapshot::failed(Vendor::Pure, Status::Error, message, ctx.elapsed_ms());
            self.tracker.observe(&snapshot, &mut ctx);
            return PollOutput {
                snapshot,
                events: ctx.into_events(),
            };
        }
        let mut snapshot = match self.poll_inner(&mut ctx).await {
            Ok(snapshot) => snapshot,
            Err(err) => {
                if err.status() == Status::Unreachable {
                    // The array may come back upgraded: choose the version again next time.
                    self.version = None;
                }
                ctx.fail(Vendor::Pure, &err)
            }
        };
        snapshot.poll_ms = ctx.elapsed_ms();
        self.tracker.observe(&snapshot, &mut ctx);
        PollOutput {
            snapshot,
            events: ctx.into_events(),
        }
    }

    pub async fn logout(&mut self) {
        if let (Some(version), Some(token)) = (self.version.clone(), self.session.clear()) {
            let _ = self
                .http
                .post(&format!("/api/{version}/logout"))
                .header("x-auth-token", &token)
                .allow_empty()
                .send()
                .await;
        }
    }

    async fn poll_inner(&mut self, ctx: &mut PollContext) -> Result<Snapshot, HttpError> {
        let started = Instant::now();
        if self.version.is_none() {
            let versions: ApiVersions = self.http.get("/api/api_version").send().await?.json()?;
            let version = pick_version(&versions.version).ok_or_else(|| HttpError::Protocol {
                endpoint: "/api/api_version".into(),
                reason: format!(
                    "no REST 2.x version offered (got {})",
                    versions.version.join(", ")
                ),
            })?;
            ctx.event(
                Level::Debug,
                Category::ApiCall,
                format!("using REST API version {version}"),
            );
            self.version = Some(version);
        }

        let arrays: Vec<ArrayItem> = self.list(ctx, "/arrays", &[]).await?;
        let array = arrays
            .into_iter()
            .next()
            .ok_or_else(|| HttpError::Protocol {
                endpoint: self.path("/arrays"),
                reason: "no array in the response".into(),
            })?;

        let mut snapshot = Snapshot {
            vendor: Vendor::Pure,
            status: Status::Online,
            hardware: Health::Unknown,
            cluster: Health::Unknown,
            name: array.name.clone(),
            version: array.version.clone(),
            model: None,
            serial: None,
            capacity: None,
            alerts: Vec::new(),
            components: Vec::new(),
            poll_ms: 0,
            error: None,
        };

        // Capacity.
        if let Some(space) = self
            .optional::<SpaceItem>(ctx, "/arrays/space", &[])
            .await?
        {
            match space.into_iter().next() {
                Some(item) => snapshot.capacity = capacity(&item),
                None => {
                    ctx.degrade_with(&self.path("/arrays/space"), "no capacity in the response")
                }
            }
            if snapshot.capacity.is_none() {
                ctx.degrade_with(&self.path("/arrays/space"), "capacity missing");
            }
        }

        // Hardware: controllers, hardware, drives.
        let mut hardware = Health::Ok;
        let mut missing_part = false;
        match self
            .optional::<ControllerItem>(ctx, "/controllers", &[])
            .await?
        {
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
        match self.optional::<HardwareItem>(ctx, "/hardware", &[]).await? {
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
        match self.optional::<DriveItem>(ctx, "/drives", &[]).await? {
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
        let fresh = self
            .optional::<AlertItem>(ctx, "/alerts", &[("filter", "state='open'")])
            .await?
            .map(|items| {
                items
                    .iter()
                    .filter(|a| a.state.as_deref() != Some("closed"))
                    .map(alert)
                    .collect()
            });
        snapshot.alerts = self.alerts.resolve(fresh);

        // Replication / ActiveCluster.
        let connections = self
            .optional::<ConnectionItem>(ctx, "/array-connections", &[])
            .await?;
        let pods = self.optional::<PodItem>(ctx, "/pods", &[]).await?;
        if let (Some(connections), Some(pods)) = (connections, pods) {
            let (health, components) = cluster_health(&connections, &pods);
            snapshot.cluster = health;
            snapshot.components.extend(components);
        }

        snapshot.error = ctx.error_text();
        snapshot.poll_ms = u64::try_from(started.elapsed().as_millis()).unwrap_or(u64::MAX);
        Ok(snapshot)
    }

    fn path(&self, resource: &str) -> String {
        format!(
            "/api/{}{resource}",
            self.version.as_deref().unwrap_or("2.x")
        )
    }

    /// A non-essential list: `Ok(None)` after recording a degradation, `Err` only for a 401 that
    /// survived the renewal (the whole poll is then `auth_failed`).
    async fn optional<T: DeserializeOwned>(
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
    async fn list<T: DeserializeOwned>(
        &mut self,
        ctx: &mut PollContext,
        resource: &str,
        query: &[(&str, &str)],
    ) -> Result<Vec<T>, HttpError> {
        let version = self.version.clone().unwrap_or_else(|| "2.0".into());
        let path = format!("/api/{version}{resource}");
        let login_path = format!("/api/{version}/login");
        let http = &self.http;
        let config = &self.config;
        let limit = PAGE_LIMIT.to_string();
        let mut all = Vec::new();
        let mut pager: Pager<String> = Pager::new(&path);
        while let Some(cursor) = pager.next_cursor() {
            let resp = session_call(
                &mut self.session,
                ctx,
                || login_request(http, config, &login_path),
                session_token,
                |token| {
                    let mut req = http.get(&path).query("limit", limit.clone());
                    for (k, v) in query {
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
            let next = pure_next_token(&resp, &list);
            all.extend(list.items);
            pager.advance(next)?;
        }
        Ok(all)
    }
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

/// The highest `2.x` version, compared numerically ("2.26" > "2.9").
pub fn pick_version(versions: &[String]) -> Option<String> {
    versions
        .iter()
        .filter_map(|v| {
            let (major, minor) = v.trim().split_once('.')?;
            let (major, minor) = (major.parse::<u32>().ok()?, minor.parse::<u32>().ok()?);
            (major == 2).then_some((minor, v.trim().to_owned()))
        })
        .max_by_key(|(minor, _)| *minor)
        .map(|(_, v)| v)
}

pub fn capacity(item: &SpaceItem) -> Option<Capacity> {
    let total = item.capacity?;
    let space = item.space.as_ref()?;
    let used = space.total_used.or(space.total_physical)?;
    Some(Capacity {
        total_bytes: total,
        used_bytes: used,
        free_bytes: total.saturating_sub(used),
        data_reduction: space.data_reduction,
    })
}

pub fn controller_health(c: &ControllerItem) -> Health {
    if c.mode.as_deref() == Some("offline") {
        return Health::Error;
    }
    match c.status.as_deref().unwrap_or("unknown") {
        "ready" | "ok" | "online" | "healthy" => Health::Ok,
        "updating" | "unknown" => Health::Warning,
        _ => Health::Error,
    }
}

/// `None` for an empty slot (skipped).
pub fn hardware_health(status: &str) -> Option<Health> {
    match status {
        "" | "unused" | "not_installed" => None,
        "critical" | "unhealthy" | "failed" => Some(Health::Error),
        "ok" | "healthy" | "normal" | "identifying" => Some(Health::Ok),
        _ => Some(Health::Warning),
    }
}

/// `None` for an empty bay (skipped).
pub fn drive_health(status: &str) -> Option<Health> {
    match status {
        "" | "empty" | "unused" => None,
        "failed" | "unhealthy" | "missing" | "unrecognized" => Some(Health::Error),
        "healthy" | "ok" | "identifying" | "recovering" | "updating" | "unadmitted" => {
            Some(Health::Ok)
        }
        _ => Some(Health::Warning),
    }
}

fn hardware_kind(kind: &str) -> String {
    match kind {
        "pwr" => "psu",
        "fan" | "fm" => "fan",
        "tmp" => "temperature_sensor",
        "eth" | "fc" | "ib" | "sas" => "port",
        "ch" => "chassis",
        "ct" => "controller_module",
        "sh" => "shelf",
        "bay" => "bay",
        "nvb" => "nvram_bay",
        "iom" => "io_module",
        "" => "hardware",
        other => other,
    }
    .to_owned()
}

pub fn alert(a: &AlertItem) -> Alert {
    let raw = a.severity.clone().unwrap_or_default();
    let severity = match raw.as_str() {
        "critical" => Severity::Critical,
        "warning" => Severity::Warning,
        "info" | "hidden" => Severity::Info,
        _ => Severity::Warning,
    };
    let title = [&a.summary, &a.description, &a.issue, &a.name]
        .into_iter()
        .find_map(|t| t.clone().filter(|t| !t.is_empty()))
        .unwrap_or_else(|| "alert".to_owned());
    Alert {
        id: a.id.clone().or_else(|| a.name.clone()).unwrap_or_default(),
        severity,
        vendor_severity: raw,
        title,
        component: a.component_name.clone().filter(|c| !c.is_empty()),
        opened_at: a.created,
    }
}

pub fn cluster_health(
    connections: &[ConnectionItem],
    pods: &[PodItem],
) -> (Health, Vec<Component>) {
    let mut health = Health::Ok;
    let mut components = Vec::new();
    for c in connections {
        let status = c.status.as_deref().unwrap_or("unknown");
        let h = if status == "connected" {
            Health::Ok
        } else {
            Health::Warning
        };
        health = health.worst(h);
        components.push(Component {
            kind: "peer".into(),
            name: c.name.clone().unwrap_or_default(),
            status: h,
            detail: Some(format!(
                "{} {status}",
                c.r#type.as_deref().unwrap_or("replication")
            )),
        });
    }
    for p in pods {
        let arrays = p.arrays.as_deref().unwrap_or(&[]);
        let stretched = p.array_count.unwrap_or(0) > 1 || arrays.len() > 1;
        if !stretched {
            continue;
        }
        let mut problems = Vec::new();
        for a in arrays {
            let name = a.name.as_deref().unwrap_or("?");
            let status = a.status.as_deref().unwrap_or("unknown");
            if status != "online" {
                problems.push(format!("array {name} {status}"));
            }
            let mediator = a.mediator_status.as_deref().unwrap_or("unknown");
            if mediator != "online" {
                problems.push(format!("mediator {mediator} from {name}"));
            }
        }
        let any_online = arrays.iter().any(|a| a.status.as_deref() == Some("online"));
        let h = if !any_online {
            Health::Error
        } else if problems.is_empty() {
            Health::Ok
        } else {
            Health::Warning
        };
        health = health.worst(h);
        components.push(Component {
            kind: "pod".into(),
            name: p.name.clone().unwrap_or_default(),
            status: h,
            detail: Some(if problems.is_empty() {
                "stretched, all arrays online".into()
            } else {
                problems.join(", ")
            }),
        });
    }
    (health, components)
}

// Response shapes (only the fields used; unknown fields are ignored, wrong types are errors).

#[derive(Debug, Deserialize)]
struct ApiVersions {
    version: Vec<String>,
}

#[derive(Debug, Deserialize)]
pub struct ArrayItem {
    #[serde(default)]
    pub name: Option<String>,
    #[serde(default)]
    pub version: Option<String>,
    #[serde(default)]
    pub os: Option<String>,
}

#[derive(Debug, Deserialize)]
pub struct SpaceItem {
    #[serde(default)]
    pub capacity: Option<u64>,
    #[serde(default)]
    pub space: Option<Space>,
}

#[derive(Debug, Deserialize)]
pub struct Space {
    #[serde(default)]
    pub total_used: Option<u64>,
    #[serde(default)]
    pub total_physical: Option<u64>,
    #[serde(default)]
    pub data_reduction: Option<f64>,
}

#[derive(Debug, Deserialize)]
pub struct ControllerItem {
    #[serde(default)]
    pub name: Option<String>,
    #[serde(default)]
    pub status: Option<String>,
    #[serde(default)]
    pub mode: Option<String>,
    #[serde(default)]
    pub model: Option<String>,
    #[serde(default)]
    pub r#type: Option<String>,
}

#[derive(Debug, Deserialize)]
pub struct HardwareItem {
    #[serde(default)]
    pub name: Option<String>,
    #[serde(default)]
    pub r#type: Option<String>,
    #[serde(default)]
    pub status: Option<String>,
    #[serde(default)]
    pub details: Option<String>,
    #[serde(default)]
    pub serial: Option<String>,
}

#[derive(Debug, Deserialize)]
pub struct DriveItem {
    #[serde(default)]
    pub name: Option<String>,
    #[serde(default)]
    pub r#type: Option<String>,
    #[serde(default)]
    pub status: Option<String>,
    #[serde(default)]
    pub details: Option<String>,
}

#[derive(Debug, Deserialize)]
pub struct AlertItem {
    #[serde(default)]
    pub id: Option<String>,
    #[serde(default)]
    pub name: Option<String>,
    #[serde(default)]
    pub summary: Option<String>,
    #[serde(default)]
    pub description: Option<String>,
    #[serde(default)]
    pub issue: Option<String>,
    #[serde(default)]
    pub severity: Option<String>,
    #[serde(default)]
    pub created: Option<i64>,
    #[serde(default)]
    pub component_name: Option<String>,
    #[serde(default)]
    pub state: Option<String>,
}

#[derive(Debug, Deserialize)]
pub struct ConnectionItem {
    #[serde(default)]
    pub name: Option<String>,
    #[serde(default)]
    pub status: Option<String>,
    #[serde(default)]
    pub r#type: Option<String>,
}

#[derive(Debug, Deserialize)]
pub struct PodItem {
    #[serde(default)]
    pub name: Option<String>,
    #[serde(default)]
    pub array_count: Option<u64>,
    #[serde(default)]
    pub arrays: Option<Vec<PodArray>>,
}

#[derive(Debug, Deserialize)]
pub struct PodArray {
    #[serde(default)]
    pub name: Option<String>,
    #[serde(default)]
    pub status: Option<String>,
    #[serde(default)]
    pub mediator_status: Option<String>,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn versions_compare_numerically() {
        let v =
            |list: &[&str]| pick_version(&list.iter().map(|s| s.to_string()).collect::<Vec<_>>());
        assert_eq!(
            v(&["1.19", "2.9", "2.10", "2.26", "2.3"]),
            Some("2.26".into())
        );
        assert_eq!(v(&["2.9", "2.10"]), Some("2.10".into()));
        assert_eq!(v(&["1.0", "x", "3.0"]), None);
    }

    #[test]
    fn health_rules() {
        assert_eq!(hardware_health("unused"), None);
        assert_eq!(hardware_health("critical"), Some(Health::Error));
        assert_eq!(hardware_health("unknown"), Some(Health::Warning));
        assert_eq!(drive_health("empty"), None);
        assert_eq!(drive_health("recovering"), Some(Health::Ok));
        assert_eq!(drive_health("missing"), Some(Health::Error));
        assert_eq!(drive_health("evacuating"), Some(Health::Warning));
        let c = |status: &str, mode: &str| ControllerItem {
            name: None,
            status: Some(status.into()),
            mode: Some(mode.into()),
            model: None,
            r#type: None,
        };
        assert_eq!(controller_health(&c("ready", "primary")), Health::Ok);
        assert_eq!(
            controller_health(&c("updating", "secondary")),
            Health::Warning
        );
        assert_eq!(
            controller_health(&c("not ready", "secondary")),
            Health::Error
        );
        assert_eq!(controller_health(&c("ready", "offline")), Health::Error);
    }

    #[test]
    fn capacity_prefers_total_used() {
        let item = |used, physical| SpaceItem {
            capacity: Some(100),
            space: Some(Space {
                total_used: used,
                total_physical: physical,
                data_reduction: None,
            }),
        };
        assert_eq!(
            capacity(&item(Some(40), Some(50))).map(|c| c.used_bytes),
            Some(40)
        );
        assert_eq!(
            capacity(&item(None, Some(50))).map(|c| c.used_bytes),
            Some(50)
        );
        assert_eq!(
            capacity(&item(Some(120), None)).map(|c| c.free_bytes),
            Some(0)
        );
        assert_eq!(capacity(&item(None, None)), None);
    }

    #[test]
    fn cluster_rules() {
        let pod = |arrays: Vec<(&str, &str)>| PodItem {
            name: Some("p".into()),
            array_count: Some(arrays.len() as u64),
            arrays: Some(
                arrays
                    .into_iter()
                    .map(|(s, m)| PodArray {
                        name: Some("a".into()),
                        status: Some(s.into()),
                        mediator_status: Some(m.into()),
                    })
                    .collect(),
            ),
        };
        assert_eq!(cluster_health(&[], &[]).0, Health::Ok);
        assert_eq!(
            cluster_health(&[], &[pod(vec![("offline", "online")])]).0,
            Health::Ok,
            "not stretched"
        );
        assert_eq!(
            cluster_health(
                &[],
                &[pod(vec![("online", "online"), ("online", "online")])]
            )
            .0,
            Health::Ok
        );
        assert_eq!(
            cluster_health(
                &[],
                &[pod(vec![("online", "unreachable"), ("online", "online")])]
            )
            .0,
            Health::Warning
        );
        assert_eq!(
            cluster_health(
                &[],
                &[pod(vec![("online", "online"), ("offline", "online")])]
            )
            .0,
            Health::Warning
        );
        assert_eq!(
            cluster_health(
                &[],
                &[pod(vec![("offline", "online"), ("offline", "online")])]
            )
            .0,
            Health::Error
        );
        let conn = ConnectionItem {
            name: Some("x".into()),
            status: Some("disconnected".into()),
            r#type: Some("async-replication".into()),
        };
        assert_eq!(cluster_health(&[conn], &[]).0, Health::Warning);
    }
}
