//! Topology shared by the vendors: the slower cadence of the topology calls, the last known
//! topology of a system, the synthetic check alerts, and DNS names by forward-confirmed reverse
//! lookup.
//!
//! * [`TopologyState`] (one per system, kept in the vendor's adapter state): a topology poll is
//!   due on the first poll, every [`TOPOLOGY_EVERY`]th poll and when the system's version
//!   changed. Between topology polls the adapter still builds what it reads anyway (nodes,
//!   peers) and [`TopologyState::fill`] completes it from the last full read, so every snapshot
//!   carries a topology.
//! * [`check_alert`]: the synthetic alert of a check that found something down (a LIF, a port, a
//!   NIC, a management interface); its id starts with `sdash:` and stays the same while the thing
//!   stays down, so the writer opens one alert instance and clears it when the thing comes back.
//! * [`dns_names`]: reverse lookup of each management address (the hosts file, then PTR records
//!   from the nameservers of resolv.conf through [`crate::dns`]), a name kept only when it
//!   resolves forward to the same address, all bounded by [`DNS_TIMEOUT`]; results are cached in
//!   the [`TopologyState`] and refreshed with it. An address whose lookup failed or ran out of
//!   time keeps its cached names; `--no-reverse-dns` ([`set_reverse_dns`]) turns lookups off.

use std::future::Future;
use std::net::IpAddr;
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use tokio::time::Instant;

use sdash_proto::{Alert, Category, Level, Severity, Topology};

use super::bookkeeping::PollContext;
use crate::dns::{self, ResolverConfig};
use crate::http::HttpError;

/// The longest a performance query may take (bounded by the system's own timeout too): a slow
/// performance endpoint must not hold up the poll.
pub const PERFORMANCE_TIMEOUT: Duration = Duration::from_secs(5);

/// How a performance query ended.
#[derive(Debug)]
pub enum PerfOutcome<T> {
    Value(T),
    /// The version or model has no such endpoint (404, an unknown field): not an error.
    Unsupported,
    /// It failed or was too slow: a warning event, no performance, no degradation.
    Failed,
}

/// Runs a performance query within `limit` (see [`PERFORMANCE_TIMEOUT`]). A failure is logged
/// as a warning event but does not degrade the snapshot: performance is an extra, and the
/// system's state was read. `unsupported` tells an answer meaning "no such endpoint here".
pub async fn performance_call<T>(
    ctx: &mut PollContext,
    endpoint: &str,
    limit: Duration,
    call: impl Future<Output = Result<T, HttpError>>,
    unsupported: impl Fn(&HttpError) -> bool,
) -> PerfOutcome<T> {
    match tokio::time::timeout(limit, call).await {
        Ok(Ok(value)) => PerfOutcome::Value(value),
        Ok(Err(e)) if unsupported(&e) => {
            let mut event = e.event(Level::Info);
            event.message = format!("{endpoint}: no performance endpoint on this system ({e})");
            ctx.push(event);
            PerfOutcome::Unsupported
        }
        Ok(Err(e)) => {
            ctx.push(e.event(Level::Warning));
            PerfOutcome::Failed
        }
        Err(_) => {
            ctx.push(sdash_proto::EventRecord {
                level: Level::Warning,
                category: Category::ApiCall,
                message: format!(
                    "{endpoint}: performance query took longer than {} ms; performance not reported",
                    limit.as_millis()
                ),
                details: None,
                http_status: None,
                endpoint: Some(endpoint.to_owned()),
            });
            PerfOutcome::Failed
        }
    }
}

/// A topology poll every this many polls (and on version changes).
pub const TOPOLOGY_EVERY: u32 = 10;
/// The time budget of all DNS lookups of one topology poll.
pub const DNS_TIMEOUT: Duration = Duration::from_secs(2);

/// The vendor severity word of synthetic alerts.
pub const SYNTHETIC_SEVERITY: &str = "sdash";

/// The topology cadence and the last full topology of one system.
#[derive(Debug, Default, Clone)]
pub struct TopologyState {
    polls: u32,
    version: Option<String>,
    last: Option<Topology>,
    /// DNS names by address, from the last topology poll.
    dns: Vec<(String, Vec<String>)>,
}

impl TopologyState {
    /// Whether this poll should read the topology: the first poll, every
    /// [`TOPOLOGY_EVERY`]th poll, or a poll that sees a new `version`. Counts the poll.
    pub fn due(&mut self, version: Option<&str>) -> bool {
        let changed = version.is_some() && self.version.as_deref() != version;
        if changed {
            self.version = version.map(str::to_owned);
        }
        let due = self.last.is_none() || changed || self.polls + 1 >= TOPOLOGY_EVERY;
        self.polls = if due { 0 } else { self.polls + 1 };
        due
    }

    /// Forces the next poll to read the topology (after an outage the system may have changed).
    pub fn invalidate(&mut self) {
        self.last = None;
    }

    /// Remembers a full topology (read on a due poll).
    pub fn store(&mut self, topology: &Topology) {
        self.last = Some(topology.clone());
    }

    /// Completes a partial topology (read between topology polls) from the last full one: each
    /// field the fresh read left empty takes the last known value.
    pub fn fill(&self, topology: &mut Topology) {
        let Some(last) = &self.last else {
            return;
        };
        if topology.cluster_type.is_none() {
            topology.cluster_type = last.cluster_type;
        }
        if topology.nodes.is_empty() {
            topology.nodes.clone_from(&last.nodes);
        }
        if topology.site_count.is_none() {
            topology.site_count = last.site_count;
        }
        if topology.management_addresses.is_empty() {
            topology
                .management_addresses
                .clone_from(&last.management_addresses);
        }
        if topology.dns_names.is_empty() {
            topology.dns_names.clone_from(&last.dns_names);
        }
        if topology.partners.is_empty() {
            topology.partners.clone_from(&last.partners);
        }
        if topology.management_url.is_none() {
            topology.management_url.clone_from(&last.management_url);
        }
    }

    /// The topology of a poll: on a due poll `fresh` is stored (with its DNS names looked up,
    /// see [`dns_names`], unless [`reverse_dns_enabled`] is off); otherwise it is completed
    /// from the last one.
    pub async fn resolve(&mut self, due: bool, fresh: Topology) -> Topology {
        let sources = if due && reverse_dns_enabled() && needs_lookup(&fresh) {
            Some(NameSources::system().await)
        } else {
            None
        };
        self.resolve_with(due, fresh, sources.as_ref()).await
    }

    /// [`TopologyState::resolve`] with these name sources (`None`: no lookups). An address whose
    /// lookup failed (a nameserver that did not answer in time, a refused query) keeps the
    /// names it had from the last topology poll; one that was answered (NXDOMAIN included)
    /// takes the answer.
    pub async fn resolve_with(
        &mut self,
        due: bool,
        mut fresh: Topology,
        sources: Option<&NameSources>,
    ) -> Topology {
        if due {
            if let Some(sources) = sources.filter(|_| needs_lookup(&fresh)) {
                let found = lookup_all(sources, &fresh.management_addresses, DNS_TIMEOUT).await;
                self.dns = found
                    .into_iter()
                    .map(|(address, lookup)| {
                        let names = if lookup.complete {
                            lookup.names
                        } else {
                            keep_cached(&self.dns, &address, lookup.names)
                        };
                        (address, names)
                    })
                    .collect();
                fresh.dns_names = names_of(&self.dns, &fresh.management_addresses);
            }
            self.store(&fresh);
        } else {
            if fresh.dns_names.is_empty() {
                fresh.dns_names = names_of(&self.dns, &fresh.management_addresses);
            }
            self.fill(&mut fresh);
        }
        fresh
    }
}

/// Whether a topology needs its DNS names looked up: it has addresses and no names yet.
fn needs_lookup(topology: &Topology) -> bool {
    topology.dns_names.is_empty() && !topology.management_addresses.is_empty()
}

/// The names of `address` after a failed lookup: the cached ones first, then any new ones the
/// partial lookup confirmed (the hosts file's, say).
fn keep_cached(cache: &[(String, Vec<String>)], address: &str, found: Vec<String>) -> Vec<String> {
    let mut names: Vec<String> = cache
        .iter()
        .find(|(a, _)| a == address)
        .map(|(_, n)| n.clone())
        .unwrap_or_default();
    for n in found {
        if !names.contains(&n) {
            names.push(n);
        }
    }
    names
}

/// Whether topology polls look up DNS names. On by default; `--no-reverse-dns`
/// (`SDASH_NO_REVERSE_DNS`) turns it off for the whole process, for sites whose nameservers do
/// not answer for the management networks (each topology poll would spend up to
/// [`DNS_TIMEOUT`] waiting).
static REVERSE_DNS: AtomicBool = AtomicBool::new(true);

/// Turns the DNS lookups of topology polls on or off (see [`REVERSE_DNS`]).
pub fn set_reverse_dns(enabled: bool) {
    REVERSE_DNS.store(enabled, Ordering::Relaxed);
}

/// Whether topology polls look up DNS names.
pub fn reverse_dns_enabled() -> bool {
    REVERSE_DNS.load(Ordering::Relaxed)
}

fn names_of(cache: &[(String, Vec<String>)], addresses: &[String]) -> Vec<String> {
    let mut out: Vec<String> = Vec::new();
    for a in addresses {
        if let Some((_, names)) = cache.iter().find(|(addr, _)| addr == a) {
            for n in names {
                if !out.contains(n) {
                    out.push(n.clone());
                }
            }
        }
    }
    out
}

/// Where the names of management addresses come from (see [`dns_names`]).
#[derive(Debug, Clone)]
pub struct NameSources {
    /// Read first for reverse names (`/etc/hosts`).
    pub hosts_file: PathBuf,
    /// Asked next for PTR records; `None`: the hosts file only.
    pub dns: Option<ResolverConfig>,
    /// How a reverse name is confirmed.
    pub forward: Forward,
}

/// The forward half of the lookup: the names must resolve back to the address.
#[derive(Debug, Clone)]
pub enum Forward {
    /// The system resolver (`getaddrinfo` through tokio: hosts file, DNS, nsswitch).
    System,
    /// A and AAAA queries to these nameservers only.
    Dns(ResolverConfig),
}

impl NameSources {
    /// The system's: `/etc/hosts`, the nameservers of `/etc/resolv.conf` (read now) and the
    /// system resolver for confirmation.
    pub async fn system() -> Self {
        NameSources {
            hosts_file: PathBuf::from(HOSTS_FILE),
            dns: Some(ResolverConfig::system().await),
            forward: Forward::System,
        }
    }
}

/// The system's hosts file.
pub const HOSTS_FILE: &str = "/etc/hosts";

/// The DNS names of `addresses` (forward-confirmed reverse lookup), in address order without
/// duplicates, within `timeout` in all; an address without a confirmed name adds nothing.
pub async fn dns_names(
    sources: &NameSources,
    addresses: &[String],
    timeout: Duration,
) -> Vec<String> {
    let found: Vec<(String, Vec<String>)> = lookup_all(sources, addresses, timeout)
        .await
        .into_iter()
        .map(|(address, lookup)| (address, lookup.names))
        .collect();
    names_of(&found, addresses)
}

/// The confirmed names of one address, and whether every step was answered in time (a failed
/// or timed-out step leaves `complete` false: its names may be missing, not gone).
#[derive(Debug, Default)]
struct Lookup {
    names: Vec<String>,
    complete: bool,
}

/// The confirmed names of each address. The addresses are looked up at once, each step bounded
/// by the shared deadline, so a silent nameserver costs `timeout` once and keeps what was found
/// before it (the hosts file's names, other addresses' names).
async fn lookup_all(
    sources: &NameSources,
    addresses: &[String],
    timeout: Duration,
) -> Vec<(String, Lookup)> {
    let deadline = Instant::now() + timeout;
    let hosts = tokio::fs::read_to_string(&sources.hosts_file)
        .await
        .unwrap_or_default();
    let hosts = hosts.as_str();
    let lookups = addresses.iter().filter_map(|a| {
        let ip = a.parse::<IpAddr>().ok()?;
        Some(async move {
            let lookup = confirmed_names(sources, hosts, ip, deadline).await;
            (a.clone(), lookup)
        })
    });
    futures::future::join_all(lookups).await
}

/// The reverse names of `ip` (hosts file first, then PTR records) that resolve forward to `ip`.
/// The hosts file's names are confirmed while the PTR query runs, so a slow nameserver does not
/// take their time.
async fn confirmed_names(
    sources: &NameSources,
    hosts: &str,
    ip: IpAddr,
    deadline: Instant,
) -> Lookup {
    let from_hosts = hosts_names(hosts, ip);
    let from_dns = async {
        let Some(config) = &sources.dns else {
            return (Vec::new(), true);
        };
        let Ok(Ok(names)) =
            tokio::time::timeout_at(deadline, dns::reverse_lookup(config, ip, deadline)).await
        else {
            return (Vec::new(), false);
        };
        let fresh = names
            .into_iter()
            .filter(|n| !from_hosts.iter().any(|h| h.eq_ignore_ascii_case(n)))
            .collect();
        confirm(sources, fresh, ip, deadline).await
    };
    let ((mut names, hosts_complete), (more, dns_complete)) =
        futures::join!(confirm(sources, from_hosts.clone(), ip, deadline), from_dns);
    names.extend(more);
    Lookup {
        names,
        complete: hosts_complete && dns_complete,
    }
}

/// The `names` (in order) that resolve to `ip` before `deadline`, and whether every check
/// finished before it.
async fn confirm(
    sources: &NameSources,
    names: Vec<String>,
    ip: IpAddr,
    deadline: Instant,
) -> (Vec<String>, bool) {
    let checks = names.into_iter().map(|name| async move {
        let confirmed =
            tokio::time::timeout_at(deadline, resolves_to(&sources.forward, &name, ip, deadline))
                .await;
        (name, confirmed)
    });
    let mut complete = true;
    let mut out = Vec::new();
    for (name, confirmed) in futures::future::join_all(checks).await {
        match confirmed {
            Ok(true) => out.push(name),
            Ok(false) => {}
            Err(_) => complete = false,
        }
    }
    (out, complete)
}

async fn resolves_to(forward: &Forward, name: &str, ip: IpAddr, deadline: Instant) -> bool {
    match forward {
        Forward::System => match tokio::net::lookup_host((name, 0)).await {
            Ok(mut addrs) => addrs.any(|sa| sa.ip() == ip),
            Err(_) => false,
        },
        Forward::Dns(config) => dns::forward_lookup(config, name, deadline)
            .await
            .is_ok_and(|addrs| addrs.contains(&ip)),
    }
}

/// The names a hosts file gives `ip` (first the canonical name, then the aliases).
pub fn hosts_names(text: &str, ip: IpAddr) -> Vec<String> {
    let mut out = Vec::new();
    for line in text.lines() {
        let line = line.split('#').next().unwrap_or("");
        let mut words = line.split_whitespace();
        let Some(addr) = words.next() else {
            continue;
        };
        if addr.parse::<IpAddr>().ok() != Some(ip) {
            continue;
        }
        for w in words {
            if !out.iter().any(|n: &String| n == w) {
                out.push(w.to_owned());
            }
        }
    }
    out
}

/// The synthetic alert of a failed check: id `sdash:<check>:<key>`, severity warning.
pub fn check_alert(check: &str, key: &str, title: String, component: &str) -> Alert {
    Alert {
        id: format!("sdash:{check}:{key}"),
        severity: Severity::Warning,
        vendor_severity: SYNTHETIC_SEVERITY.into(),
        title,
        component: Some(component.to_owned()),
        opened_at: None,
    }
}

/// The management URL of a system's web UI from its API base URL: scheme, host and port, with
/// the path kept (a simulator prefix); `web_port` replaces the port when the UI listens
/// elsewhere than the API (DataDomain: API 3009, DD System Manager 443).
pub fn management_url(base_url: &str, web_port: Option<u16>) -> Option<String> {
    let (scheme, rest) = base_url.split_once("://")?;
    let (authority, path) = rest.split_once('/').map_or((rest, ""), |(a, p)| (a, p));
    let authority = match web_port {
        None => authority.to_owned(),
        Some(port) => {
            let host = match authority.rsplit_once(':') {
                Some((h, p)) if !p.is_empty() && p.chars().all(|c| c.is_ascii_digit()) => h,
                _ => authority,
            };
            if port == 443 && scheme == "https" {
                host.to_owned()
            } else {
                format!("{host}:{port}")
            }
        }
    };
    let path = path.trim_end_matches('/');
    Some(if path.is_empty() {
        format!("{scheme}://{authority}/")
    } else {
        format!("{scheme}://{authority}/{path}/")
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cadence_is_first_poll_every_tenth_and_version_changes() {
        let mut s = TopologyState::default();
        assert!(s.due(Some("1")));
        s.store(&Topology::default());
        let due: Vec<bool> = (0..10).map(|_| s.due(Some("1"))).collect();
        assert_eq!(due.iter().filter(|d| **d).count(), 1);
        assert!(due[9], "ten polls after a topology poll: {due:?}");
        assert!(!s.due(Some("1")));
        assert!(s.due(Some("2")), "a new version is due");
        assert!(!s.due(None), "an unknown version is no change");
        s.invalidate();
        assert!(s.due(Some("2")));
    }

    #[test]
    fn fill_keeps_fresh_values_and_completes_the_rest() {
        let mut s = TopologyState::default();
        s.store(&Topology {
            management_addresses: vec!["10.0.0.1".into()],
            site_count: Some(2),
            ..Topology::default()
        });
        let mut t = Topology {
            site_count: Some(3),
            ..Topology::default()
        };
        s.fill(&mut t);
        assert_eq!(t.site_count, Some(3));
        assert_eq!(t.management_addresses, vec!["10.0.0.1".to_owned()]);
    }

    #[test]
    fn hosts_file_names() {
        let text = "127.0.0.1 localhost loopback # x\n::1 ip6-localhost\n10.0.0.1 fa.example fa\n";
        let ip: IpAddr = "10.0.0.1".parse().expect("ip");
        assert_eq!(hosts_names(text, ip), vec!["fa.example", "fa"]);
    }

    #[test]
    fn management_urls() {
        assert_eq!(
            management_url("https://fa.example:443", None).as_deref(),
            Some("https://fa.example:443/")
        );
        assert_eq!(
            management_url("https://dd.example:3009", Some(443)).as_deref(),
            Some("https://dd.example/")
        );
        assert_eq!(
            management_url("https://127.0.0.1:8443/sim-dd-0001", Some(443)).as_deref(),
            Some("https://127.0.0.1/sim-dd-0001/")
        );
    }

    #[tokio::test]
    async fn with_reverse_dns_off_a_topology_poll_looks_nothing_up() {
        // 127.0.0.1 has names in almost every hosts file; with the lookups off it gets none,
        // and the addresses are still reported.
        set_reverse_dns(false);
        let mut state = TopologyState::default();
        let fresh = Topology {
            management_addresses: vec!["127.0.0.1".into()],
            ..Topology::default()
        };
        let out = state.resolve(true, fresh).await;
        set_reverse_dns(true);
        assert_eq!(out.dns_names, Vec::<String>::new());
        assert_eq!(out.management_addresses, vec!["127.0.0.1".to_owned()]);
    }

    #[tokio::test]
    async fn localhost_is_forward_confirmed() {
        // The hosts file only, confirmed by the system resolver (no DNS traffic from a unit test).
        let sources = NameSources {
            hosts_file: PathBuf::from(HOSTS_FILE),
            dns: None,
            forward: Forward::System,
        };
        let addresses = ["127.0.0.1".into(), "not-an-ip".into()];
        let names = dns_names(&sources, &addresses, DNS_TIMEOUT).await;
        let hosts = std::fs::read_to_string(HOSTS_FILE).unwrap_or_default();
        let expected = hosts_names(&hosts, "127.0.0.1".parse().expect("ip"));
        // Every name found is one the hosts file gives 127.0.0.1 and resolves back to it.
        assert!(names.iter().all(|n| expected.contains(n)), "{names:?}");
        if expected.iter().any(|n| n == "localhost") {
            assert!(names.contains(&"localhost".to_owned()), "{names:?}");
        }
    }
}
