//! The envelope and the record kinds on the bus. Every message is a MessagePack map with named
//! fields; unknown fields are ignored and fields added later carry defaults, so additive changes
//! keep the `v1` subjects. Timestamps are milliseconds since the Unix epoch (UTC); capacity is bytes.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use crate::subjects::Kind;

/// The schema version this crate writes and accepts on `v1` subjects.
pub const SCHEMA_VERSION: u16 = 1;

/// Wraps every record. `event_id` is also sent as the `Nats-Msg-Id` header, so the server drops
/// a retried publish within its duplicate window and the writer stores each id once.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Envelope<T> {
    /// Schema version of the record ([`SCHEMA_VERSION`]).
    pub schema: u16,
    /// Unique id of this message (a UUID v7 from the producer); the idempotency key.
    pub event_id: String,
    /// Id of the collector that produced the record.
    pub collector_id: String,
    /// The system the record is about; empty for collector heartbeats.
    #[serde(default)]
    pub system_id: String,
    /// When the producer observed what the record says, ms since the epoch (UTC).
    pub observed_at: i64,
    /// The record itself.
    pub body: T,
}

impl<T> Envelope<T> {
    /// A new envelope with a fresh event id, observed now.
    pub fn new(collector_id: &str, system_id: &str, body: T) -> Self {
        Envelope {
            schema: SCHEMA_VERSION,
            event_id: crate::new_event_id(),
            collector_id: collector_id.to_owned(),
            system_id: system_id.to_owned(),
            observed_at: crate::now_ms(),
            body,
        }
    }
}

/// Storage vendors sdash can poll.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Vendor {
    /// Pure Storage FlashArray (REST 2.x).
    Pure,
    /// NetApp ONTAP 9 (REST).
    Ontap,
    /// NetApp StorageGRID 11 (Grid Management API v3/v4).
    Storagegrid,
    /// Dell PowerProtect DataDomain (REST, port 3009).
    Datadomain,
}

impl Vendor {
    pub const ALL: [Vendor; 4] = [
        Vendor::Pure,
        Vendor::Ontap,
        Vendor::Storagegrid,
        Vendor::Datadomain,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            Vendor::Pure => "pure",
            Vendor::Ontap => "ontap",
            Vendor::Storagegrid => "storagegrid",
            Vendor::Datadomain => "datadomain",
        }
    }

    pub fn parse(text: &str) -> Option<Vendor> {
        Vendor::ALL.into_iter().find(|v| v.as_str() == text)
    }
}

/// Whether the last poll reached the system.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Status {
    /// The poll reached the system and read its state.
    Online,
    /// The system could not be reached (connection refused, timeout, TLS failure).
    Unreachable,
    /// The system answered but rejected the credentials.
    AuthFailed,
    /// The system answered but the answer could not be used (HTTP errors, invalid bodies).
    Error,
}

impl Status {
    pub const ALL: [Status; 4] = [
        Status::Online,
        Status::Unreachable,
        Status::AuthFailed,
        Status::Error,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            Status::Online => "online",
            Status::Unreachable => "unreachable",
            Status::AuthFailed => "auth_failed",
            Status::Error => "error",
        }
    }

    pub fn parse(text: &str) -> Option<Status> {
        Status::ALL.into_iter().find(|v| v.as_str() == text)
    }
}

/// Health of the hardware, the cluster or one component.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Health {
    Ok,
    Warning,
    Error,
    /// Not known: the system was not reached, or it does not report this.
    Unknown,
}

impl Health {
    pub const ALL: [Health; 4] = [Health::Ok, Health::Warning, Health::Error, Health::Unknown];

    pub fn as_str(self) -> &'static str {
        match self {
            Health::Ok => "ok",
            Health::Warning => "warning",
            Health::Error => "error",
            Health::Unknown => "unknown",
        }
    }

    pub fn parse(text: &str) -> Option<Health> {
        Health::ALL.into_iter().find(|v| v.as_str() == text)
    }

    /// The worse of two known healths (`error` > `warning` > `ok`); `unknown` only when both are.
    pub fn worst(self, other: Health) -> Health {
        match (self, other) {
            (Health::Unknown, x) | (x, Health::Unknown) => x,
            (a, b) => a.max(b),
        }
    }
}

/// Normalized alert severity; the vendor's own word is kept in `vendor_severity`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Severity {
    Info,
    Warning,
    Error,
    Critical,
}

impl Severity {
    pub const ALL: [Severity; 4] = [
        Severity::Info,
        Severity::Warning,
        Severity::Error,
        Severity::Critical,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            Severity::Info => "info",
            Severity::Warning => "warning",
            Severity::Error => "error",
            Severity::Critical => "critical",
        }
    }

    pub fn parse(text: &str) -> Option<Severity> {
        Severity::ALL.into_iter().find(|v| v.as_str() == text)
    }
}

/// Capacity of a system, always in bytes (never "TB" that is really TiB).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Capacity {
    /// Usable capacity, bytes.
    pub total_bytes: u64,
    /// Used capacity, bytes.
    pub used_bytes: u64,
    /// Free capacity, bytes (the vendor's figure where it has one, else total - used).
    pub free_bytes: u64,
    /// Data reduction ratio (e.g. 4.2 means 4.2:1), where the vendor reports one.
    #[serde(default)]
    pub data_reduction: Option<f64>,
    /// Provisioned (promised to hosts, thin) bytes, where the vendor reports them.
    #[serde(default)]
    pub provisioned_bytes: Option<u64>,
}

impl Capacity {
    /// Whether decoders accept it: used may exceed total (thin provisioning, rounding), but not
    /// by more than four times (or at all when total is 0). Producers check it before publishing.
    pub fn is_plausible(&self) -> bool {
        self.used_bytes <= self.total_bytes.saturating_mul(4).max(self.total_bytes)
    }
}

/// One open alert on a system.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Alert {
    /// The vendor's alert id, stable while the alert stays open.
    pub id: String,
    pub severity: Severity,
    /// The vendor's own severity word, unchanged.
    pub vendor_severity: String,
    pub title: String,
    /// The component the alert is about, where the vendor names one.
    #[serde(default)]
    pub component: Option<String>,
    /// When the vendor says the alert opened, ms since the epoch.
    #[serde(default)]
    pub opened_at: Option<i64>,
}

/// One hardware or logical component (controller, node, drive, PSU, peer, ...).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Component {
    /// What it is: `controller`, `node`, `drive`, `disk`, `psu`, `fan`, `peer`, `pod`, ...
    pub kind: String,
    pub name: String,
    pub status: Health,
    /// The vendor's own status text or a short explanation.
    #[serde(default)]
    pub detail: Option<String>,
}

/// One normalized poll result (`sdash.v1.snapshot.<system_id>`): the full state at `observed_at`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Snapshot {
    pub vendor: Vendor,
    pub status: Status,
    pub hardware: Health,
    pub cluster: Health,
    /// The system's own name, as it reports it.
    #[serde(default)]
    pub name: Option<String>,
    /// Operating system version, e.g. "6.7.3" or "NetApp Release 9.15.1P4".
    #[serde(default)]
    pub version: Option<String>,
    #[serde(default)]
    pub model: Option<String>,
    #[serde(default)]
    pub serial: Option<String>,
    /// `None` when the poll did not get as far as capacity.
    #[serde(default)]
    pub capacity: Option<Capacity>,
    /// The full set of open alerts (not a delta): an alert missing here has cleared.
    #[serde(default)]
    pub alerts: Vec<Alert>,
    #[serde(default)]
    pub components: Vec<Component>,
    /// How long the poll took, milliseconds.
    pub poll_ms: u64,
    /// Why the poll failed or was degraded; `None` on a clean poll.
    #[serde(default)]
    pub error: Option<String>,
    /// How the system is built and reached (read at a slower cadence than the rest and repeated
    /// in every snapshot); `None` when it was never read.
    #[serde(default)]
    pub topology: Option<Topology>,
    /// Capacity per pool (aggregates, sites, storage pools, tiers, the space breakdown).
    #[serde(default)]
    pub pools: Vec<Pool>,
    /// Array-level performance; `None` when the vendor or version has no endpoint for it.
    #[serde(default)]
    pub performance: Option<Performance>,
}

/// How a system is clustered ([`Topology::cluster_type`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum ClusterType {
    /// Two or more nodes or controllers in an HA pair (ONTAP HA, DataDomain HA, Pure controllers).
    Ha,
    /// ONTAP MetroCluster (configured).
    Metrocluster,
    /// Pure ActiveCluster (synchronous replication, stretched pods).
    ActiveCluster,
    /// One node, no partner.
    Local,
    /// StorageGRID over more than one site.
    MultiSite,
    /// StorageGRID on one site.
    SingleSite,
}

impl ClusterType {
    pub const ALL: [ClusterType; 6] = [
        ClusterType::Ha,
        ClusterType::Metrocluster,
        ClusterType::ActiveCluster,
        ClusterType::Local,
        ClusterType::MultiSite,
        ClusterType::SingleSite,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            ClusterType::Ha => "ha",
            ClusterType::Metrocluster => "metrocluster",
            ClusterType::ActiveCluster => "active-cluster",
            ClusterType::Local => "local",
            ClusterType::MultiSite => "multi-site",
            ClusterType::SingleSite => "single-site",
        }
    }

    pub fn parse(text: &str) -> Option<ClusterType> {
        ClusterType::ALL.into_iter().find(|v| v.as_str() == text)
    }
}

/// The topology and network of a system.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
pub struct Topology {
    #[serde(default)]
    pub cluster_type: Option<ClusterType>,
    /// Controllers, nodes or HA members.
    #[serde(default)]
    pub nodes: Vec<TopologyNode>,
    /// Number of sites (1 + connected arrays for Pure, distinct sites for StorageGRID, ...).
    #[serde(default)]
    pub site_count: Option<u32>,
    /// Management IP addresses.
    #[serde(default)]
    pub management_addresses: Vec<String>,
    /// DNS names of the management addresses (forward-confirmed reverse lookup).
    #[serde(default)]
    pub dns_names: Vec<String>,
    /// Replication and peer partners.
    #[serde(default)]
    pub partners: Vec<Partner>,
    /// The URL of the system's own web UI.
    #[serde(default)]
    pub management_url: Option<String>,
}

/// One node or controller of a system.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
pub struct TopologyNode {
    pub name: String,
    #[serde(default)]
    pub model: Option<String>,
    #[serde(default)]
    pub serial: Option<String>,
    /// The vendor's state word (`up`, `ready`, `connected`, ...).
    #[serde(default)]
    pub state: Option<String>,
    #[serde(default)]
    pub version: Option<String>,
}

/// A replication or peer partner of a system.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
pub struct Partner {
    pub name: String,
    /// What the relation is: `cluster-peer`, `metrocluster`, `sync-replication`,
    /// `async-replication`, `ha`, `mtree-replication`, ...
    pub kind: String,
    /// The vendor's state word (`available`, `connected`, `normal`, ...).
    #[serde(default)]
    pub state: Option<String>,
}

/// What a [`Pool`] is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum PoolKind {
    /// ONTAP aggregate.
    Aggregate,
    /// StorageGRID site.
    Site,
    /// StorageGRID storage pool.
    StoragePool,
    /// DataDomain active tier.
    ActiveTier,
    /// DataDomain cloud tier.
    CloudTier,
    /// One part of Pure's array space breakdown (unique, snapshots, shared, system, replication).
    Space,
}

impl PoolKind {
    pub const ALL: [PoolKind; 6] = [
        PoolKind::Aggregate,
        PoolKind::Site,
        PoolKind::StoragePool,
        PoolKind::ActiveTier,
        PoolKind::CloudTier,
        PoolKind::Space,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            PoolKind::Aggregate => "aggregate",
            PoolKind::Site => "site",
            PoolKind::StoragePool => "storage_pool",
            PoolKind::ActiveTier => "active_tier",
            PoolKind::CloudTier => "cloud_tier",
            PoolKind::Space => "space",
        }
    }

    pub fn parse(text: &str) -> Option<PoolKind> {
        PoolKind::ALL.into_iter().find(|v| v.as_str() == text)
    }
}

/// Capacity of one pool, bytes.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Pool {
    pub kind: PoolKind,
    pub name: String,
    pub total_bytes: u64,
    pub used_bytes: u64,
    #[serde(default)]
    pub free_bytes: Option<u64>,
}

/// Array-level performance at the time of the poll. Every field is absent when the vendor (or
/// its version) does not report it.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
pub struct Performance {
    #[serde(default)]
    pub read_iops: Option<f64>,
    #[serde(default)]
    pub write_iops: Option<f64>,
    /// Average read latency, microseconds.
    #[serde(default)]
    pub read_latency_us: Option<f64>,
    /// Average write latency, microseconds.
    #[serde(default)]
    pub write_latency_us: Option<f64>,
    #[serde(default)]
    pub read_bytes_per_s: Option<u64>,
    #[serde(default)]
    pub write_bytes_per_s: Option<u64>,
}

impl Snapshot {
    /// A snapshot for a poll that did not reach the point of reading anything.
    pub fn failed(vendor: Vendor, status: Status, error: String, poll_ms: u64) -> Snapshot {
        Snapshot {
            vendor,
            status,
            hardware: Health::Unknown,
            cluster: Health::Unknown,
            name: None,
            version: None,
            model: None,
            serial: None,
            capacity: None,
            alerts: Vec::new(),
            components: Vec::new(),
            poll_ms,
            error: Some(error),
            topology: None,
            pools: Vec::new(),
            performance: None,
        }
    }
}

/// Event levels, ordered from least to most severe.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Level {
    Debug,
    Info,
    Warning,
    Error,
    Critical,
}

impl Level {
    pub const ALL: [Level; 5] = [
        Level::Debug,
        Level::Info,
        Level::Warning,
        Level::Error,
        Level::Critical,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            Level::Debug => "debug",
            Level::Info => "info",
            Level::Warning => "warning",
            Level::Error => "error",
            Level::Critical => "critical",
        }
    }

    pub fn parse(text: &str) -> Option<Level> {
        Level::ALL.into_iter().find(|v| v.as_str() == text)
    }

    /// A number that sorts like the level (0 = debug), for storage and filters.
    pub fn rank(self) -> i16 {
        self as i16
    }
}

/// What an event is about.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Category {
    /// Reaching the system: connection refused, timeouts, TLS, reachability changes.
    Connection,
    /// Logging in, session renewal, rejected credentials.
    Authentication,
    /// One API call failed (endpoint, HTTP status, reason).
    ApiCall,
    /// A response could not be used (invalid body, missing fields).
    DataQuery,
    /// Hardware or cluster health changed.
    Health,
}

impl Category {
    pub const ALL: [Category; 5] = [
        Category::Connection,
        Category::Authentication,
        Category::ApiCall,
        Category::DataQuery,
        Category::Health,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            Category::Connection => "connection",
            Category::Authentication => "authentication",
            Category::ApiCall => "api_call",
            Category::DataQuery => "data_query",
            Category::Health => "health",
        }
    }

    pub fn parse(text: &str) -> Option<Category> {
        Category::ALL.into_iter().find(|v| v.as_str() == text)
    }
}

/// One system log event (`sdash.v1.event.<system_id>`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct EventRecord {
    pub level: Level,
    pub category: Category,
    pub message: String,
    /// Longer free text (a response excerpt, a reason).
    #[serde(default)]
    pub details: Option<String>,
    /// HTTP status of the call the event is about.
    #[serde(default)]
    pub http_status: Option<u16>,
    /// The endpoint (path) of the call the event is about.
    #[serde(default)]
    pub endpoint: Option<String>,
}

/// The non-secret inventory record of a system (`sdash.v1.system.<system_id>`), or its removal.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SystemRecord {
    pub name: String,
    pub vendor: Vendor,
    /// Base URL of the management API (no credentials).
    pub address: String,
    #[serde(default)]
    pub tags: BTreeMap<String, String>,
    /// Poll interval, seconds.
    pub interval_s: u64,
    pub enabled: bool,
    /// True when the system was removed from the inventory.
    #[serde(default)]
    pub removed: bool,
}

/// A collector heartbeat (`sdash.v1.collector.<collector_id>`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct CollectorRecord {
    /// sdash version of the collector.
    pub version: String,
    /// Ids of the systems this collector owns now.
    #[serde(default)]
    pub systems: Vec<String>,
    /// Polls completed since the previous heartbeat.
    #[serde(default)]
    pub polls: u64,
    /// Polls that did not end `online` since the previous heartbeat.
    #[serde(default)]
    pub failures: u64,
    /// Messages waiting in the outbox for NATS.
    #[serde(default)]
    pub outbox_depth: u64,
    /// When the collector started, ms since the epoch.
    #[serde(default)]
    pub started_at: i64,
}

/// What kind of change the writer derived ([`ChangeRecord::kind`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ChangeKind {
    /// A vendor alert opened (a new alert instance): `alert` is set.
    AlertOpened,
    /// An open alert instance cleared (missing from a newer online snapshot): `alert` is set,
    /// `alert_opened_at` names the instance.
    AlertCleared,
    /// The system's reachability changed (`online`, `unreachable`, `auth_failed`, `error`):
    /// `from` and `to` are status values; `from` is null for a system seen for the first time.
    StatusChanged,
    /// Hardware health changed: `from`/`to` are health values (`ok`, `warning`, `error`, `unknown`).
    HardwareChanged,
    /// Cluster health changed: `from`/`to` are health values.
    ClusterChanged,
    /// Used capacity crossed a threshold: `threshold_percent`, `rising` and `capacity` are set.
    CapacityThreshold,
    /// An operator command changed an alert instance's state (acknowledged, unacknowledged,
    /// assigned, unassigned, commented): `alert_opened_at`, `command` and `command_id` are set,
    /// and `alert` when the instance is known.
    AlertUpdated,
}

impl ChangeKind {
    pub const ALL: [ChangeKind; 7] = [
        ChangeKind::AlertOpened,
        ChangeKind::AlertCleared,
        ChangeKind::StatusChanged,
        ChangeKind::HardwareChanged,
        ChangeKind::ClusterChanged,
        ChangeKind::CapacityThreshold,
        ChangeKind::AlertUpdated,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            ChangeKind::AlertOpened => "alert_opened",
            ChangeKind::AlertCleared => "alert_cleared",
            ChangeKind::StatusChanged => "status_changed",
            ChangeKind::HardwareChanged => "hardware_changed",
            ChangeKind::ClusterChanged => "cluster_changed",
            ChangeKind::CapacityThreshold => "capacity_threshold",
            ChangeKind::AlertUpdated => "alert_updated",
        }
    }

    pub fn parse(text: &str) -> Option<ChangeKind> {
        ChangeKind::ALL.into_iter().find(|v| v.as_str() == text)
    }
}

/// One change the writer derived and committed (`sdash.v1.change.<system_id>`). The envelope's
/// `collector_id` is the producing writer's id, `observed_at` the time of the observation that
/// caused the change, and `event_id` the change's own id (stored in the writer's outbox in the
/// same transaction as what it derived, published after the commit with `Nats-Msg-Id` = that id,
/// so a crash neither loses nor invents a change; subscribers deduplicate by it).
///
/// It carries the system's context (name, vendor, tags) so a subscriber can route it without
/// reading the database.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ChangeRecord {
    pub kind: ChangeKind,
    /// The event id of the record (a snapshot) the change was derived from.
    pub cause_event_id: String,
    pub vendor: Vendor,
    /// The system's display name (inventory name, else its own name, else its id).
    #[serde(default)]
    pub system_name: Option<String>,
    /// The system's inventory tags, for routing.
    #[serde(default)]
    pub tags: BTreeMap<String, String>,
    /// `alert_opened`, `alert_cleared`: the alert as last seen.
    #[serde(default)]
    pub alert: Option<Alert>,
    /// `alert_opened`, `alert_cleared`: when the instance opened (first seen by sdash, ms): with
    /// the system id and `alert.id` it names the alert instance (a reopened alert is a new one).
    #[serde(default)]
    pub alert_opened_at: Option<i64>,
    /// Transitions: the previous value (null when there was none).
    #[serde(default)]
    pub from: Option<String>,
    /// Transitions: the new value.
    #[serde(default)]
    pub to: Option<String>,
    /// `capacity_threshold`: the threshold crossed, percent of total (e.g. 80, 90, 95).
    #[serde(default)]
    pub threshold_percent: Option<u8>,
    /// `capacity_threshold`: true when used capacity rose above it, false when it fell below.
    #[serde(default)]
    pub rising: Option<bool>,
    /// `capacity_threshold`: the capacity that crossed it.
    #[serde(default)]
    pub capacity: Option<Capacity>,
    /// `alert_updated`: the operator command that was applied.
    #[serde(default)]
    pub command: Option<Box<crate::CommandRecord>>,
    /// `alert_updated`: the applied command's id (its envelope's `event_id`).
    #[serde(default)]
    pub command_id: Option<String>,
}

impl ChangeRecord {
    /// A change of `kind` from `from` to `to`, without the system's name and tags or the fields
    /// of the other kinds (set those with struct update syntax).
    pub fn transition(
        kind: ChangeKind,
        cause_event_id: impl Into<String>,
        vendor: Vendor,
        from: &str,
        to: &str,
    ) -> ChangeRecord {
        ChangeRecord {
            kind,
            cause_event_id: cause_event_id.into(),
            vendor,
            system_name: None,
            tags: BTreeMap::new(),
            alert: None,
            alert_opened_at: None,
            from: Some(from.into()),
            to: Some(to.into()),
            threshold_percent: None,
            rising: None,
            capacity: None,
            command: None,
            command_id: None,
        }
    }
}

/// Any record, as decoded from a subject and payload.
#[derive(Debug, Clone, PartialEq)]
pub enum Record {
    System(Envelope<SystemRecord>),
    Snapshot(Envelope<Snapshot>),
    Event(Envelope<EventRecord>),
    Collector(Envelope<CollectorRecord>),
    Change(Envelope<ChangeRecord>),
    Command(Envelope<crate::CommandRecord>),
    History(Envelope<crate::HistoryRecord>),
}

impl Record {
    pub fn kind(&self) -> Kind {
        match self {
            Record::System(_) => Kind::System,
            Record::Snapshot(_) => Kind::Snapshot,
            Record::Event(_) => Kind::Event,
            Record::Collector(_) => Kind::Collector,
            Record::Change(_) => Kind::Change,
            Record::Command(_) => Kind::Command,
            Record::History(_) => Kind::History,
        }
    }

    pub fn event_id(&self) -> &str {
        match self {
            Record::System(e) => &e.event_id,
            Record::Snapshot(e) => &e.event_id,
            Record::Event(e) => &e.event_id,
            Record::Collector(e) => &e.event_id,
            Record::Change(e) => &e.event_id,
            Record::Command(e) => &e.event_id,
            Record::History(e) => &e.event_id,
        }
    }
}
