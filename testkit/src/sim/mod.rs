//! The fleet simulator: many storage systems behind **one** HTTPS listener, each under its own
//! path prefix. System `sim-pure-0001` lives at `https://127.0.0.1:<port>/sim-pure-0001`; the
//! collector treats that as the base URL and appends `/api/...`.
//!
//! * [`Fleet::start`] runs it in-process (tests); the `sdash-sim` binary wraps the same code.
//! * Values are deterministic per `seed`, system index and elapsed (simulated) time: capacity
//!   grows slowly, alerts open and close over time. [`SimConfig::frozen_clock`] stops the clock
//!   (move it with [`Fleet::advance`]) so tests can compare exact values.
//! * [`Mode::Fixture`] serves the spec-conformant vendor fixtures (`testkit/fixtures/<vendor>/`)
//!   unchanged, except for paging and filtering: the collector's fixture tests use it.
//! * Faults ([`Fault`]) per system, optionally limited to one endpoint: latency, an HTML 500 page,
//!   invalid JSON, wrong JSON types, an empty body, any HTTP status, session expiry, a hang,
//!   wrong credentials, a closed connection. Set them with [`Fleet::set_fault`] or at run time
//!   with `POST /control/<system>/fault` and a JSON body such as
//!   `{"kind":"status","code":503}`, `{"kind":"latency","ms":800}`,
//!   `{"kind":"html500","endpoint":"/drives"}` or `{"kind":"none"}`.
//!   Also: `POST /control/<system>/scenario` (`{"scenario":"degraded"}`), `GET /control/<system>`
//!   (state and request counters) and `GET /control/systems`.
//! * Scenarios ([`Scenario`]): healthy, degraded (a failed PSU and its critical alert), near full,
//!   and the checks of #17: a LIF down, a port down, a NIC without link, a management interface
//!   down, an Evergreen//One array with 0 used, no performance endpoint (an older version), slow
//!   performance queries (`{"scenario":"lif_down"}`, `port_down`, `nic_no_link`,
//!   `mgmt_interface_down`, `evergreen_zero_used`, `no_performance`, `slow_performance`).
//!
//! # Adding a vendor
//!
//! Implement [`VendorSim`] in `sim/<vendor>.rs` and return it from [`vendor_sim`]:
//!
//! ```ignore
//! pub struct OntapSim;
//! impl VendorSim for OntapSim {
//!     fn handle(&self, system: &mut SystemState, now: &SimTime, req: &SimRequest) -> SimResponse {
//!         // req.path is the vendor path ("/api/cluster"), req.query the decoded pairs,
//!         // req.header("authorization") the headers. Check system.credentials_ok(user, pass),
//!         // count logins in system.stats, keep sessions in system.sessions.
//!     }
//!     fn capacity(&self, system: &SystemState, now: &SimTime) -> Option<Capacity> { .. }
//!     fn error(&self, status: u16, message: &str) -> SimResponse { /* vendor error envelope */ }
//! }
//! ```
//!
//! The server applies faults before calling `handle` (the generic ones) and after it (wrong
//! types), so a vendor only implements its happy path, its auth and its error envelope. Shared
//! helpers: [`SimResponse::json`], [`live_capacity`] (per-system deterministic capacity),
//! [`mix64`], [`SimRequest::param`]. Systems without a simulator answer 404.

mod datadomain;
mod fleet;
mod history;
mod ontap;
mod pure;
mod server;
mod storagegrid;
mod tls;

use std::collections::{BTreeMap, HashMap, HashSet};
use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use bytes::Bytes;
use sdash_proto::{Capacity, Vendor};
use serde::{Deserialize, Serialize};

pub use datadomain::DataDomainSim;
pub use fleet::{Fleet, SystemInfo};
pub(crate) use fleet::{Shared, lock};
pub use history::{HistoryPoint, HistorySystem, display_name};
pub use ontap::OntapSim;
pub use pure::PureSim;
pub use storagegrid::StorageGridSim;

/// Errors starting the simulator or writing its files.
#[derive(Debug, thiserror::Error)]
pub enum SimError {
    #[error("cannot listen on {addr}: {source}")]
    Listen {
        addr: SocketAddr,
        source: std::io::Error,
    },
    #[error("TLS setup: {0}")]
    Tls(String),
    #[error("cannot write {path}: {source}")]
    Write {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("invalid mix {0:?}: expected vendor=weight pairs like pure=40,ontap=30")]
    Mix(String),
}

/// What the simulated systems serve.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Mode {
    /// Per-system values that move over time.
    #[default]
    Live,
    /// The vendor fixtures, byte for byte in content (paging and filters still apply).
    Fixture,
}

/// A system's state of health (in [`Mode::Live`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Scenario {
    #[default]
    Healthy,
    /// A failed power supply and its critical alert.
    Degraded,
    /// Above 90 % used and a capacity alert.
    NearFull,
    /// ONTAP: the data LIF `lif_nfs01_a01` is down (also in [`Mode::Fixture`]).
    LifDown,
    /// ONTAP: the physical port `e0c` of `cl-prod-a-01` is down (also in [`Mode::Fixture`]).
    PortDown,
    /// DataDomain: the enabled NIC `ethV0` has no link (also in [`Mode::Fixture`]).
    NicNoLink,
    /// Pure: the management interface `ct1.eth0` is disabled (also in [`Mode::Fixture`]).
    MgmtInterfaceDown,
    /// Pure: an Evergreen//One array reporting 0 bytes used with its capacity (also in
    /// [`Mode::Fixture`]).
    EvergreenZeroUsed,
    /// An older API version without the performance endpoint (also in [`Mode::Fixture`]).
    NoPerformance,
    /// The performance endpoint answers after [`SLOW_PERFORMANCE`] (also in [`Mode::Fixture`]).
    SlowPerformance,
}

/// How long the performance endpoints take in [`Scenario::SlowPerformance`].
pub const SLOW_PERFORMANCE: Duration = Duration::from_secs(3);

/// A fault injected into one system's answers.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum Fault {
    #[default]
    None,
    /// Answer normally after a delay.
    Latency { ms: u64 },
    /// HTTP 500 with an HTML error page (a proxy or a crashed web server).
    Html500,
    /// HTTP 200 with a truncated, invalid JSON body.
    InvalidJson,
    /// HTTP 200 with the normal JSON, but strings and numbers swapped.
    WrongTypes,
    /// HTTP 200 with no body at all.
    EmptyBody,
    /// This status with the vendor's error envelope (403, 429, 500, 503...).
    Status { code: u16 },
    /// One-shot: every session of the system becomes invalid (next call: 401). Not kept.
    ExpireSessions,
    /// Never answer (the connection is closed after [`SimConfig::hang`]).
    Hang,
    /// The configured credentials are rejected (login 401; current sessions are dropped).
    WrongCredentials,
    /// Close the connection without an answer.
    Unreachable,
}

/// A fault and the endpoint it is limited to (a path suffix such as `/drives`), for the
/// `POST /control/<system>/fault` body.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
pub struct FaultSpec {
    #[serde(flatten)]
    pub fault: Fault,
    #[serde(default)]
    pub endpoint: Option<String>,
}

/// Vendor weights, e.g. `pure=40,ontap=30,storagegrid=15,datadomain=15`.
#[derive(Debug, Clone, PartialEq)]
pub struct Mix(pub Vec<(Vendor, u32)>);

impl Default for Mix {
    fn default() -> Self {
        Mix(vec![(Vendor::Pure, 100)])
    }
}

impl std::str::FromStr for Mix {
    type Err = SimError;
    fn from_str(text: &str) -> Result<Mix, SimError> {
        let bad = || SimError::Mix(text.to_owned());
        let mut out: Vec<(Vendor, u32)> = Vec::new();
        for part in text.split(',').map(str::trim).filter(|p| !p.is_empty()) {
            let (name, weight) = part.split_once('=').ok_or_else(bad)?;
            let vendor = Vendor::parse(name.trim()).ok_or_else(bad)?;
            let weight: u32 = weight.trim().parse().map_err(|_| bad())?;
            if out.iter().any(|(v, _)| *v == vendor) {
                return Err(bad());
            }
            out.push((vendor, weight));
        }
        if out.iter().map(|(_, w)| *w as u64).sum::<u64>() == 0 {
            return Err(bad());
        }
        Ok(Mix(out))
    }
}

impl Mix {
    /// How many of `n` systems each vendor gets (largest remainder, in the mix order).
    pub fn counts(&self, n: usize) -> Vec<(Vendor, usize)> {
        let total: u64 = self.0.iter().map(|(_, w)| *w as u64).sum::<u64>().max(1);
        let mut counts: Vec<(Vendor, usize, u64)> = self
            .0
            .iter()
            .map(|(v, w)| {
                let exact = n as u64 * *w as u64;
                (*v, (exact / total) as usize, exact % total)
            })
            .collect();
        let mut left = n - counts.iter().map(|c| c.1).sum::<usize>();
        let mut order: Vec<usize> = (0..counts.len()).collect();
        order.sort_by(|a, b| counts[*b].2.cmp(&counts[*a].2).then(a.cmp(b)));
        for i in order.into_iter().cycle().take(counts.len() * 2) {
            if left == 0 {
                break;
            }
            if self.0[i].1 > 0 {
                counts[i].1 += 1;
                left -= 1;
            }
        }
        counts.into_iter().map(|(v, c, _)| (v, c)).collect()
    }
}

/// How to run the simulator.
#[derive(Debug, Clone)]
pub struct SimConfig {
    pub systems: usize,
    pub seed: u64,
    /// `127.0.0.1:0` picks a free port.
    pub listen: SocketAddr,
    pub mix: Mix,
    pub mode: Mode,
    /// PEM certificate chain and key to serve; `None` generates a CA and a certificate for
    /// 127.0.0.1 and localhost.
    pub cert: Option<(PathBuf, PathBuf)>,
    /// Serve list endpoints in pages of at most this many items, even when the client asks for
    /// more (real arrays cut pages short too). `None`: pages only when the client sends `limit`.
    pub page_cap: Option<usize>,
    /// Stop the simulated clock; move it with [`Fleet::advance`].
    pub frozen_clock: bool,
    /// How long [`Fault::Hang`] holds a request before closing the connection.
    pub hang: Duration,
    /// An extra plain-HTTP listener for `/control/...` only.
    pub control_listen: Option<SocketAddr>,
    /// Percent of the systems that start [`Scenario::Degraded`] (chosen per seed).
    pub degraded_pct: u8,
    /// Percent of the systems that start [`Scenario::NearFull`] (chosen per seed).
    pub near_full_pct: u8,
}

impl Default for SimConfig {
    fn default() -> Self {
        SimConfig {
            systems: 1,
            seed: 1,
            listen: SocketAddr::from(([127, 0, 0, 1], 0)),
            mix: Mix::default(),
            mode: Mode::Live,
            cert: None,
            page_cap: None,
            frozen_clock: false,
            hang: Duration::from_secs(120),
            control_listen: None,
            degraded_pct: 0,
            near_full_pct: 0,
        }
    }
}

/// The simulated time a request is answered at.
#[derive(Debug, Clone, Copy)]
pub struct SimTime {
    /// Since the fleet started (plus [`Fleet::advance`]).
    pub elapsed: Duration,
    /// Wall-clock ms since the epoch of the fleet start, plus `elapsed`.
    pub epoch_ms: i64,
}

#[derive(Debug)]
pub(crate) struct Clock {
    started: Instant,
    started_epoch_ms: i64,
    offset_ms: AtomicU64,
    frozen: bool,
}

impl Clock {
    pub(crate) fn now(&self) -> SimTime {
        let running = if self.frozen {
            Duration::ZERO
        } else {
            self.started.elapsed()
        };
        let elapsed = running + Duration::from_millis(self.offset_ms.load(Ordering::Relaxed));
        SimTime {
            elapsed,
            epoch_ms: self.started_epoch_ms + elapsed.as_millis() as i64,
        }
    }
}

/// Request counters of one system.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct SystemStats {
    /// Successful logins.
    pub logins: u64,
    /// Rejected logins.
    pub failed_logins: u64,
    pub logouts: u64,
    /// Requests answered 401 because of a missing or invalid session.
    pub unauthorized: u64,
    /// Requests per path (without the system prefix and the query).
    pub requests: BTreeMap<String, u64>,
}

/// One simulated system: identity, credentials, scenario, fault, sessions and counters.
#[derive(Debug)]
pub struct SystemState {
    pub id: String,
    /// Position in the fleet (0-based), an input of its deterministic values.
    pub index: usize,
    pub vendor: Vendor,
    pub seed: u64,
    pub mode: Mode,
    pub scenario: Scenario,
    pub fault: Fault,
    pub fault_endpoint: Option<String>,
    /// User name (ONTAP, StorageGRID, DataDomain).
    pub username: String,
    /// The API token (Pure) or the password (others).
    pub secret: String,
    /// Valid session tokens.
    pub sessions: HashSet<String>,
    pub stats: SystemStats,
    pub page_cap: Option<usize>,
    session_counter: u64,
}

impl SystemState {
    /// True when `secret` is the configured one and no [`Fault::WrongCredentials`] is set.
    pub fn credentials_ok(&self, username: Option<&str>, secret: &str) -> bool {
        self.fault != Fault::WrongCredentials
            && secret == self.secret
            && username.is_none_or(|u| u == self.username)
    }

    /// Creates and remembers a new session token.
    pub fn new_session(&mut self) -> String {
        self.session_counter += 1;
        let a = mix64(self.seed ^ mix64(self.index as u64) ^ self.session_counter.rotate_left(32));
        let b = mix64(a ^ 0x5e55);
        let token = format!(
            "{:08x}-{:04x}-{:04x}-{:04x}-{:012x}",
            a >> 32,
            (a >> 16) & 0xffff,
            a & 0xffff,
            b >> 48,
            b & 0xffff_ffff_ffff
        );
        self.sessions.insert(token.clone());
        token
    }

    /// A per-system deterministic number for `salt`.
    pub fn hash(&self, salt: u64) -> u64 {
        mix64(self.seed ^ mix64(self.index as u64 + 1) ^ mix64(salt.wrapping_add(0x9e37)))
    }
}

/// splitmix64: a good, cheap, deterministic mixer.
pub fn mix64(x: u64) -> u64 {
    let mut z = x.wrapping_add(0x9e37_79b9_7f4a_7c15);
    z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    z ^ (z >> 31)
}

const TIB: u64 = 1 << 40;

/// Deterministic live capacity of a system: total 250, 500 or 1000 TiB; used starts at 30–69 %
/// (92–96 % when near full) and grows by 0.5–2.5 GiB per TiB of total per simulated hour, in
/// one-minute steps, never above 99.5 %.
pub fn live_capacity(system: &SystemState, now: &SimTime) -> Capacity {
    let h = system.hash(1);
    let total = [250, 500, 1000][(h % 3) as usize] * TIB;
    let start_pct = match system.scenario {
        Scenario::NearFull => 92 + (h >> 8) % 5,
        _ => 30 + (h >> 8) % 40,
    };
    let start = total / 100 * start_pct;
    let per_minute = total / TIB * ((1 + (h >> 16) % 5) << 29) / 60;
    let minutes = now.elapsed.as_secs() / 60;
    let used = (start + per_minute.saturating_mul(minutes)).min(total / 1000 * 995);
    let reduction = 2.0 + ((h >> 24) % 40) as f64 / 10.0;
    Capacity {
        total_bytes: total,
        used_bytes: used,
        free_bytes: total - used,
        data_reduction: Some(reduction),
        provisioned_bytes: None,
    }
}

/// One request, as a vendor simulator sees it.
#[derive(Debug)]
pub struct SimRequest {
    pub method: String,
    /// The vendor path, without the system prefix and without the query.
    pub path: String,
    /// Decoded query pairs, in order.
    pub query: Vec<(String, String)>,
    /// Header names in lower case.
    pub headers: HashMap<String, String>,
    pub body: Bytes,
}

impl SimRequest {
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .get(&name.to_ascii_lowercase())
            .map(String::as_str)
    }

    /// The first value of a query parameter.
    pub fn param(&self, name: &str) -> Option<&str> {
        self.query
            .iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.as_str())
    }
}

/// One response from a vendor simulator.
#[derive(Debug, Clone)]
pub struct SimResponse {
    pub status: u16,
    pub headers: Vec<(String, String)>,
    pub body: Bytes,
}

impl SimResponse {
    pub fn json(status: u16, value: &serde_json::Value) -> SimResponse {
        SimResponse {
            status,
            headers: vec![("content-type".into(), "application/json".into())],
            body: Bytes::from(value.to_string()),
        }
    }

    pub fn empty(status: u16) -> SimResponse {
        SimResponse {
            status,
            headers: Vec::new(),
            body: Bytes::new(),
        }
    }

    pub fn with_header(mut self, name: &str, value: &str) -> SimResponse {
        self.headers.push((name.to_owned(), value.to_owned()));
        self
    }
}

/// A vendor's simulator; see the module docs.
pub trait VendorSim: Send + Sync + 'static {
    /// Answers one request of one system (called with the system locked: do not block).
    fn handle(&self, system: &mut SystemState, now: &SimTime, req: &SimRequest) -> SimResponse;
    /// The capacity the system reports right now, as the collector should normalize it.
    fn capacity(&self, system: &SystemState, now: &SimTime) -> Option<Capacity>;
    /// An error response in the vendor's error envelope.
    fn error(&self, status: u16, message: &str) -> SimResponse;
    /// How long to wait before answering `req` (slow endpoints of a scenario); the server sleeps
    /// without holding the system's lock.
    fn delay(&self, _system: &SystemState, _req: &SimRequest) -> Option<Duration> {
        None
    }
}

/// The simulator of a vendor. Add a match arm here for a new vendor.
pub fn vendor_sim(vendor: Vendor) -> Arc<dyn VendorSim> {
    match vendor {
        Vendor::Pure => Arc::new(PureSim::new()),
        Vendor::Ontap => Arc::new(OntapSim::new()),
        Vendor::Storagegrid => Arc::new(StorageGridSim::new()),
        Vendor::Datadomain => Arc::new(DataDomainSim::new()),
    }
}

/// Answers 404 to everything: a vendor without a simulator yet.
struct Unavailable;

impl VendorSim for Unavailable {
    fn handle(&self, _system: &mut SystemState, _now: &SimTime, _req: &SimRequest) -> SimResponse {
        self.error(404, "this vendor is not simulated yet")
    }
    fn capacity(&self, _system: &SystemState, _now: &SimTime) -> Option<Capacity> {
        None
    }
    fn error(&self, status: u16, message: &str) -> SimResponse {
        SimResponse::json(status, &serde_json::json!({ "error": message }))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn mix_parses_and_splits() {
        let mix: Mix = "pure=40,ontap=30,storagegrid=15,datadomain=15"
            .parse()
            .expect("valid");
        let counts = mix.counts(20);
        assert_eq!(counts.iter().map(|c| c.1).sum::<usize>(), 20);
        assert_eq!(counts[0], (Vendor::Pure, 8));
        assert_eq!(counts[1], (Vendor::Ontap, 6));
        assert_eq!(Mix::default().counts(7), vec![(Vendor::Pure, 7)]);
        let odd: Mix = "pure=1,ontap=1,storagegrid=1".parse().expect("valid");
        assert_eq!(odd.counts(2).iter().map(|c| c.1).sum::<usize>(), 2);
        assert!("pure=x".parse::<Mix>().is_err());
        assert!("emc=1".parse::<Mix>().is_err());
        assert!("pure=0".parse::<Mix>().is_err());
    }

    #[test]
    fn fault_specs_parse_from_control_json() {
        let spec: FaultSpec =
            serde_json::from_str(r#"{"kind":"status","code":429,"endpoint":"/drives"}"#)
                .expect("valid");
        assert_eq!(spec.fault, Fault::Status { code: 429 });
        assert_eq!(spec.endpoint.as_deref(), Some("/drives"));
        let spec: FaultSpec = serde_json::from_str(r#"{"kind":"none"}"#).expect("valid");
        assert_eq!(spec.fault, Fault::None);
    }
}
