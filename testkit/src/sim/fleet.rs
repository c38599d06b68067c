//! The running fleet: builds every simulated system from a [`SimConfig`], serves them (and the
//! control API) from [`server`](super::server), and lets tests change faults, scenarios and the
//! clock, or write the collector's inventory and secret files.

use std::collections::{HashMap, HashSet};
use std::net::SocketAddr;
use std::path::Path;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use sdash_proto::{Capacity, Vendor};

use super::{
    Clock, Fault, FaultSpec, Scenario, SimConfig, SimError, SimTime, SystemState, SystemStats,
    Unavailable, VendorSim, mix64, server, tls, vendor_sim,
};

/// What a test or the inventory writer needs to know about one system.
#[derive(Debug, Clone, PartialEq)]
pub struct SystemInfo {
    pub id: String,
    pub vendor: Vendor,
    pub username: String,
    /// API token (Pure) or password.
    pub secret: String,
}

pub(crate) struct Shared {
    pub(crate) systems: HashMap<String, Mutex<SystemState>>,
    pub(crate) order: Vec<String>,
    pub(crate) sims: HashMap<Vendor, Arc<dyn VendorSim>>,
    pub(crate) clock: Clock,
    pub(crate) hang: Duration,
}

impl Shared {
    pub(crate) fn sim(&self, vendor: Vendor) -> Arc<dyn VendorSim> {
        self.sims
            .get(&vendor)
            .cloned()
            .unwrap_or_else(|| Arc::new(Unavailable))
    }

    pub(crate) fn set_fault(&self, id: &str, spec: FaultSpec) -> bool {
        let Some(system) = self.systems.get(id) else {
            return false;
        };
        let mut s = lock(system);
        match spec.fault {
            Fault::ExpireSessions => s.sessions.clear(),
            Fault::WrongCredentials => {
                s.sessions.clear();
                s.fault = Fault::WrongCredentials;
                s.fault_endpoint = None;
            }
            fault => {
                s.fault = fault;
                s.fault_endpoint = spec.endpoint;
            }
        }
        true
    }
}

/// Locks a system, recovering from a poisoned lock (a panicking handler must not take the whole
/// simulated fleet down).
pub(crate) fn lock(m: &Mutex<SystemState>) -> std::sync::MutexGuard<'_, SystemState> {
    m.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
}

/// A running simulated fleet. Dropping it stops the listeners.
pub struct Fleet {
    shared: Arc<Shared>,
    addr: SocketAddr,
    control_addr: Option<SocketAddr>,
    ca_pem: String,
    tasks: Vec<tokio::task::JoinHandle<()>>,
}

impl Drop for Fleet {
    fn drop(&mut self) {
        for t in &self.tasks {
            t.abort();
        }
    }
}

impl Fleet {
    /// Starts the listener(s) and returns once they accept connections.
    pub async fn start(config: SimConfig) -> Result<Fleet, SimError> {
        let mut systems = HashMap::new();
        let mut order = Vec::new();
        let mut index = 0;
        for (vendor, count) in config.mix.counts(config.systems) {
            for n in 1..=count {
                let id = format!("sim-{}-{n:04}", vendor.as_str());
                let h = mix64(config.seed ^ mix64(index as u64 + 1) ^ 0x5ec2);
                let secret = format!(
                    "{:08x}-{:04x}-{:04x}-{:04x}-{:012x}",
                    h >> 32,
                    (h >> 16) & 0xffff,
                    h & 0xffff,
                    mix64(h) >> 48,
                    mix64(h) & 0xffff_ffff_ffff
                );
                let state = SystemState {
                    id: id.clone(),
                    index,
                    vendor,
                    seed: config.seed,
                    mode: config.mode,
                    scenario: {
                        let roll =
                            (mix64(config.seed ^ mix64(index as u64 + 1) ^ 0x5ce7) % 100) as u8;
                        if roll < config.degraded_pct.min(100) {
                            Scenario::Degraded
                        } else if roll
                            < config
                                .degraded_pct
                                .min(100)
                                .saturating_add(config.near_full_pct)
                        {
                            Scenario::NearFull
                        } else {
                            Scenario::Healthy
                        }
                    },
                    fault: Fault::None,
                    fault_endpoint: None,
                    username: "sdash-monitor".into(),
                    secret,
                    sessions: HashSet::new(),
                    stats: SystemStats::default(),
                    page_cap: config.page_cap,
                    session_counter: 0,
                };
                systems.insert(id.clone(), Mutex::new(state));
                order.push(id);
                index += 1;
            }
        }
        let sims = Vendor::ALL
            .into_iter()
            .map(|v| (v, vendor_sim(v)))
            .collect();
        let started_epoch_ms = time::OffsetDateTime::now_utc().unix_timestamp() * 1000;
        let shared = Arc::new(Shared {
            systems,
            order,
            sims,
            clock: Clock {
                started: Instant::now(),
                started_epoch_ms,
                offset_ms: AtomicU64::new(0),
                frozen: config.frozen_clock,
            },
            hang: config.hang,
        });

        let (server_config, ca_pem) = tls::server_config(config.cert.as_ref(), config.listen.ip())?;
        let listener = tokio::net::TcpListener::bind(config.listen)
            .await
            .map_err(|source| SimError::Listen {
                addr: config.listen,
                source,
            })?;
        let addr = listener.local_addr().map_err(|source| SimError::Listen {
            addr: config.listen,
            source,
        })?;
        let acceptor = tokio_rustls::TlsAcceptor::from(Arc::new(server_config));
        let mut tasks = vec![tokio::spawn(server::serve(
            listener,
            Some(acceptor),
            shared.clone(),
            false,
        ))];
        let mut control_addr = None;
        if let Some(control) = config.control_listen {
            let listener = tokio::net::TcpListener::bind(control)
                .await
                .map_err(|source| SimError::Listen {
                    addr: control,
                    source,
                })?;
            control_addr = listener.local_addr().ok();
            tasks.push(tokio::spawn(server::serve(
                listener,
                None,
                shared.clone(),
                true,
            )));
        }
        Ok(Fleet {
            shared,
            addr,
            control_addr,
            ca_pem,
            tasks,
        })
    }

    /// The TLS listener's address.
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// The plain-HTTP control listener's address, if one was asked for.
    pub fn control_addr(&self) -> Option<SocketAddr> {
        self.control_addr
    }

    /// The base URL of a system, e.g. `https://127.0.0.1:8443/sim-pure-0001`.
    pub fn base_url(&self, id: &str) -> String {
        let ip = self.addr.ip();
        let host = if ip.is_unspecified() {
            "127.0.0.1".to_owned()
        } else if ip.is_ipv6() {
            format!("[{ip}]")
        } else {
            ip.to_string()
        };
        format!("https://{host}:{}/{id}", self.addr.port())
    }

    /// The PEM of the CA that signed the served certificate (the certificate itself with `--cert`).
    pub fn ca_pem(&self) -> &str {
        &self.ca_pem
    }

    /// Ids of all systems, in fleet order.
    pub fn system_ids(&self) -> Vec<String> {
        self.shared.order.clone()
    }

    pub fn systems(&self) -> Vec<SystemInfo> {
        self.shared
            .order
            .iter()
            .filter_map(|id| self.system(id))
            .collect()
    }

    pub fn system(&self, id: &str) -> Option<SystemInfo> {
        let s = lock(self.shared.systems.get(id)?);
        Some(SystemInfo {
            id: s.id.clone(),
            vendor: s.vendor,
            username: s.username.clone(),
            secret: s.secret.clone(),
        })
    }

    /// The capacity the system serves right now.
    pub fn expected_capacity(&self, id: &str) -> Option<Capacity> {
        let s = lock(self.shared.systems.get(id)?);
        self.shared
            .sim(s.vendor)
            .capacity(&s, &self.shared.clock.now())
    }

    /// Sets (or with [`Fault::None`] clears) a system's fault on all endpoints.
    pub fn set_fault(&self, id: &str, fault: Fault) -> bool {
        self.shared.set_fault(
            id,
            FaultSpec {
                fault,
                endpoint: None,
            },
        )
    }

    /// Sets a fault on the endpoints whose path ends with `endpoint` (e.g. `/drives`).
    pub fn set_fault_on(&self, id: &str, endpoint: &str, fault: Fault) -> bool {
        self.shared.set_fault(
            id,
            FaultSpec {
                fault,
                endpoint: Some(endpoint.to_owned()),
            },
        )
    }

    pub fn set_scenario(&self, id: &str, scenario: Scenario) -> bool {
        let Some(system) = self.shared.systems.get(id) else {
            return false;
        };
        lock(system).scenario = scenario;
        true
    }

    /// Moves the simulated clock forward.
    pub fn advance(&self, by: Duration) {
        self.shared
            .clock
            .offset_ms
            .fetch_add(by.as_millis() as u64, Ordering::Relaxed);
    }

    pub fn now(&self) -> SimTime {
        self.shared.clock.now()
    }

    pub fn stats(&self, id: &str) -> Option<SystemStats> {
        Some(lock(self.shared.systems.get(id)?).stats.clone())
    }

    /// Writes a ready inventory: the CA PEM as `sim-ca.pem` and one secret file per system in
    /// `secrets/` next to `path` (mode 0600), referenced by relative paths; no secret is inlined.
    /// Systems get demo tags (environment, storage_type by vendor, department) so that grouped
    /// capacity reports have something to group.
    pub fn write_inventory(&self, path: &Path, interval: &str) -> Result<(), SimError> {
        let dir = path
            .parent()
            .filter(|p| !p.as_os_str().is_empty())
            .unwrap_or(Path::new("."));
        let secrets = dir.join("secrets");
        std::fs::create_dir_all(&secrets).map_err(|source| SimError::Write {
            path: secrets.clone(),
            source,
        })?;
        let ca = dir.join("sim-ca.pem");
        std::fs::write(&ca, &self.ca_pem).map_err(|source| SimError::Write {
            path: ca.clone(),
            source,
        })?;
        let mut toml = String::from(
            "# Written by sdash-sim: a simulated fleet. Secrets are in secrets/, never inline.\n",
        );
        for info in self.systems() {
            let (file, auth) = match info.vendor {
                Vendor::Pure => {
                    let file = format!("secrets/{}.token", info.id);
                    let auth = format!("{{ api_token_file = \"{file}\" }}");
                    (file, auth)
                }
                _ => {
                    let file = format!("secrets/{}.password", info.id);
                    let auth = format!(
                        "{{ username = \"{}\", password_file = \"{file}\" }}",
                        info.username
                    );
                    (file, auth)
                }
            };
            write_secret(&dir.join(&file), &info.secret)?;
            toml.push_str(&format!(
                "\n[[system]]\nid = \"{id}\"\nname = \"Simulated {vendor} {id}\"\nvendor = \"{vendor}\"\naddress = \"{address}\"\n\
                 interval = \"{interval}\"\ntags = {{ environment = \"{environment}\", storage_type = \"{storage_type}\", department = \"{department}\", simulator = \"sdash-sim\" }}\n\
                 tls = {{ ca_file = \"sim-ca.pem\" }}\nauth = {auth}\n",
                id = info.id,
                vendor = info.vendor.as_str(),
                address = self.base_url(&info.id),
                environment = demo_tag(&info.id, &["production", "production", "test", "development"]),
                storage_type = match info.vendor {
                    Vendor::Pure => "block",
                    Vendor::Ontap => "file",
                    Vendor::Storagegrid => "object",
                    Vendor::Datadomain => "backup",
                },
                department = demo_tag(&info.id, &["finance", "engineering", "sales", "research", "operations"]),
            ));
        }
        std::fs::write(path, toml).map_err(|source| SimError::Write {
            path: path.to_owned(),
            source,
        })
    }
}

fn write_secret(path: &Path, secret: &str) -> Result<(), SimError> {
    use std::io::Write;
    use std::os::unix::fs::OpenOptionsExt;
    let mut file = std::fs::OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(true)
        .mode(0o600)
        .open(path)
        .map_err(|source| SimError::Write {
            path: path.to_owned(),
            source,
        })?;
    file.write_all(secret.as_bytes())
        .map_err(|source| SimError::Write {
            path: path.to_owned(),
            source,
        })
}

/// A deterministic pick from `choices` for a system id (demo tags).
fn demo_tag<'a>(id: &str, choices: &[&'a str]) -> &'a str {
    let h = id.bytes().fold(0u64, |h, b| mix64(h ^ u64::from(b)));
    choices[(h % choices.len().max(1) as u64) as usize]
}
