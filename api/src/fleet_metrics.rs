//! Fleet metrics: the state of every system in the Prometheus text exposition format, served at
//! `/metrics/fleet` (the API's own `/metrics` describes the API). They come from the fleet cache
//! ([`crate::fleet`]), never from a query per scrape: the text is rendered once per loaded fleet
//! ([`render`], kept in [`crate::fleet::Fleet::metrics`]), and only the family that depends on the
//! clock, the age of the last successful poll, is written per scrape ([`Rendered::body`]).
//!
//! Reloading 10,000 systems after a commit takes longer than a scrape should (hundreds of ms on
//! SQLite), so a scrape never waits long for it ([`FleetMetrics::scrape`]): it starts the reload
//! in the background and serves its result if it is ready within [`FRESH_WAIT`], else the text of
//! the fleet loaded before, which the next scrape replaces.
//!
//! Every sample carries `system`, `vendor` and one label per tag key the operator chose
//! (`--metrics-tag-labels`, [`TagLabels`]), so the number of series grows with the fleet only.
//!
//! The text is written by hand rather than through prometheus-client: a registry would hold a
//! gauge per series (10,000 systems make ~250,000) and encode them all on every scrape, where a
//! loaded fleet never changes and its text can be kept.

use std::fmt::Write as _;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use tokio::sync::watch;

use sdash_proto::Performance;

use crate::fleet::{AlertCounts, Entry, Fleet};
use crate::http::ApiError;
use crate::routes::{HEALTHS, SEVERITIES, STATUSES};
use crate::state::AppState;

/// How long a scrape waits for a fleet reload before it serves the text of the fleet before.
pub const FRESH_WAIT: Duration = Duration::from_millis(100);

/// The latest rendered fleet metrics, refreshed from the fleet cache by the scrapes.
#[derive(Debug)]
pub struct FleetMetrics {
    tags: Arc<TagLabels>,
    latest: watch::Sender<Option<Arc<Rendered>>>,
    refreshing: AtomicBool,
}

impl FleetMetrics {
    pub fn new(tags: TagLabels) -> FleetMetrics {
        FleetMetrics {
            tags: Arc::new(tags),
            latest: watch::Sender::new(None),
            refreshing: AtomicBool::new(false),
        }
    }

    /// The metrics of the current fleet, or of the one before while the current one is still
    /// loading after [`FRESH_WAIT`]. The first scrape waits for its fleet (and gets its error).
    pub async fn scrape(&self, st: &Arc<AppState>) -> Result<Arc<Rendered>, ApiError> {
        let mut updates = self.latest.subscribe();
        let Some(previous) = updates.borrow_and_update().clone() else {
            let rendered = self.refresh(st).await?;
            self.latest.send_replace(Some(rendered.clone()));
            return Ok(rendered);
        };
        // One refresh at a time; a scrape during one waits for the same one.
        if !self.refreshing.swap(true, Ordering::AcqRel) {
            let st = st.clone();
            tokio::spawn(async move {
                let this = &st.fleet_metrics;
                match this.refresh(&st).await {
                    Ok(rendered) => {
                        this.latest.send_replace(Some(rendered));
                    }
                    Err(e) => tracing::warn!(error = %e, "fleet metrics not refreshed"),
                }
                this.refreshing.store(false, Ordering::Release);
            });
        }
        match tokio::time::timeout(FRESH_WAIT, updates.changed()).await {
            Ok(Ok(())) => Ok(updates.borrow().clone().unwrap_or(previous)),
            _ => Ok(previous),
        }
    }

    /// The current fleet from the cache, rendered unless it was already.
    async fn refresh(&self, st: &AppState) -> Result<Arc<Rendered>, ApiError> {
        let fleet: Arc<Fleet> = st.fleet.get(&st.db).await?;
        let rendered = fleet
            .metrics
            .get_or_try_init(|| async {
                let alerts = fleet.open_alerts(&st.db).await?.to_vec();
                let (fleet, tags) = (fleet.clone(), self.tags.clone());
                // Tens of ms for 10,000 systems: off the request threads.
                tokio::task::spawn_blocking(move || {
                    Arc::new(render(&fleet.entries, &alerts, &tags))
                })
                .await
                .map_err(|e| {
                    tracing::error!(error = %e, "rendering the fleet metrics failed");
                    ApiError::Internal
                })
            })
            .await?;
        Ok(rendered.clone())
    }
}

/// Content type of the Prometheus text format.
pub const CONTENT_TYPE: &str = "text/plain; version=0.0.4; charset=utf-8";

/// Label names the metrics set themselves; a tag label never takes one of them.
const FIXED_LABELS: &[&str] = &[
    "system", "vendor", "status", "health", "severity", "name", "model", "version", "pool",
];

/// A `--metrics-tag-labels` list that cannot become labels.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum TagLabelError {
    #[error("tag key {0:?} is not a tag key (letters, digits, '_', '-', '.', at most 64)")]
    InvalidKey(String),
    #[error("tag keys {0:?} and {1:?} both become the label {2:?}")]
    Collision(String, String, String),
}

/// The tag keys exported as labels, each with its Prometheus label name.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct TagLabels {
    /// (tag key, label name), in the order the operator gave them.
    pairs: Vec<(String, String)>,
}

impl TagLabels {
    /// Checks the tag keys and names their labels ([`label_name`]); empty items are ignored.
    pub fn new(keys: &[String]) -> Result<TagLabels, TagLabelError> {
        let mut pairs: Vec<(String, String)> = Vec::new();
        for key in keys.iter().map(|k| k.trim()).filter(|k| !k.is_empty()) {
            if !crate::http::valid_tag_key(key) {
                return Err(TagLabelError::InvalidKey(key.to_owned()));
            }
            let label = label_name(key);
            if let Some((other, _)) = pairs.iter().find(|(_, l)| *l == label) {
                if other == key {
                    continue;
                }
                return Err(TagLabelError::Collision(
                    other.clone(),
                    key.to_owned(),
                    label,
                ));
            }
            pairs.push((key.to_owned(), label));
        }
        Ok(TagLabels { pairs })
    }

    /// The label names, in order.
    pub fn label_names(&self) -> impl Iterator<Item = &str> {
        self.pairs.iter().map(|(_, l)| l.as_str())
    }
}

/// The Prometheus label name of a tag key: characters outside `[A-Za-z0-9_]` become `_`, a
/// leading digit gets a `_` before it, and a name the metrics use themselves (`system`, ...) or
/// one Prometheus reserves (`__*`) gets the prefix `tag_`.
pub fn label_name(key: &str) -> String {
    let mut name = String::with_capacity(key.len() + 4);
    if key.starts_with(|c: char| c.is_ascii_digit()) {
        name.push('_');
    }
    name.extend(key.chars().map(|c| {
        if c.is_ascii_alphanumeric() || c == '_' {
            c
        } else {
            '_'
        }
    }));
    if name.starts_with("__") || FIXED_LABELS.contains(&name.as_str()) {
        name.insert_str(0, "tag_");
    }
    name
}

/// Appends `value` as the inside of a quoted label value (`\`, `"` and newlines escaped).
fn push_label_value(out: &mut String, value: &str) {
    for c in value.chars() {
        match c {
            '\\' => out.push_str("\\\\"),
            '"' => out.push_str("\\\""),
            '\n' => out.push_str("\\n"),
            c => out.push(c),
        }
    }
}

/// Appends milliseconds as seconds with three decimals (exact, no float rounding).
fn push_seconds(out: &mut String, ms: i64) {
    let sign = if ms < 0 { "-" } else { "" };
    let ms = ms.unsigned_abs();
    let _ = write!(out, "{sign}{}.{:03}", ms / 1000, ms % 1000);
}

/// A sample's value.
#[derive(Clone, Copy)]
enum Value {
    Int(i64),
    Float(f64),
    /// Milliseconds, written as seconds.
    Millis(i64),
}

impl Value {
    fn push(self, out: &mut String) {
        match self {
            Value::Int(v) => {
                let _ = write!(out, "{v}");
            }
            Value::Float(v) => {
                let _ = write!(out, "{v}");
            }
            Value::Millis(ms) => push_seconds(out, ms),
        }
    }
}

/// The fleet metrics of one loaded fleet.
#[derive(Debug)]
pub struct Rendered {
    /// Every family that does not depend on the clock.
    fixed: String,
    /// Per system with a successful poll: its label set (without the closing `}`) and when.
    last_success: Vec<(Box<str>, i64)>,
}

/// Lines of the fixed text per system, for sizing the buffer: info, up, statuses, healths,
/// capacity (with provisioned), reduction, performance, severities and the timestamp (and two
/// per pool, counted apart).
const LINES_PER_SYSTEM: usize =
    3 + STATUSES.len() + 2 * HEALTHS.len() + 5 + PERFORMANCE.len() + SEVERITIES.len();

/// The performance families: name, help, and the value from the snapshot's performance
/// (latency converted from µs to seconds, the Prometheus base unit).
type PerformanceFamily = (&'static str, &'static str, fn(&Performance) -> Option<f64>);
const PERFORMANCE: [PerformanceFamily; 6] = [
    (
        "sdash_system_performance_read_iops",
        "Read operations per second of the latest poll, when the array reports them.",
        |p| p.read_iops,
    ),
    (
        "sdash_system_performance_write_iops",
        "Write operations per second of the latest poll, when the array reports them.",
        |p| p.write_iops,
    ),
    (
        "sdash_system_performance_read_latency_seconds",
        "Average read latency of the latest poll, when the array reports it.",
        |p| p.read_latency_us.map(|us| us / 1e6),
    ),
    (
        "sdash_system_performance_write_latency_seconds",
        "Average write latency of the latest poll, when the array reports it.",
        |p| p.write_latency_us.map(|us| us / 1e6),
    ),
    (
        "sdash_system_performance_read_bytes_per_second",
        "Read bandwidth of the latest poll, when the array reports it.",
        |p| p.read_bytes_per_s.map(|b| b as f64),
    ),
    (
        "sdash_system_performance_write_bytes_per_second",
        "Write bandwidth of the latest poll, when the array reports it.",
        |p| p.write_bytes_per_s.map(|b| b as f64),
    ),
];

/// Writes the HELP and TYPE lines of a gauge family.
fn family(out: &mut String, name: &str, help: &str) {
    let _ = write!(out, "# HELP {name} {help}\n# TYPE {name} gauge\n");
}

/// One sample: `name{labels[,extra="value"]} value`.
fn sample(out: &mut String, name: &str, labels: &str, extra: Option<(&str, &str)>) {
    out.push_str(name);
    out.push_str(labels);
    if let Some((label, value)) = extra {
        let _ = write!(out, ",{label}=\"");
        push_label_value(out, value);
        out.push('"');
    }
    out.push_str("} ");
}

/// Renders the fleet: `entries` as the cache holds them (removed systems are left out, as the
/// fleet list leaves them out, and disabled ones, which no total counts: a dashboard that sums
/// these series must not count them), `open_alerts` index-aligned with them.
pub fn render(entries: &[Entry], open_alerts: &[AlertCounts], tags: &TagLabels) -> Rendered {
    let systems: Vec<(usize, &Entry)> = entries
        .iter()
        .enumerate()
        .filter(|(_, e)| e.counted())
        .collect();
    let labels: Vec<String> = systems
        .iter()
        .map(|(_, e)| {
            let mut l = String::with_capacity(64);
            l.push_str("{system=\"");
            push_label_value(&mut l, &e.id);
            l.push_str("\",vendor=\"");
            push_label_value(&mut l, e.vendor.as_deref().unwrap_or(""));
            l.push('"');
            for (key, label) in &tags.pairs {
                let _ = write!(l, ",{label}=\"");
                if let Some(value) = e.tag(key) {
                    push_label_value(&mut l, &value);
                }
                l.push('"');
            }
            l
        })
        .collect();
    let label_bytes: usize = labels.iter().map(String::len).sum();
    let pool_lines: usize = 2 * systems.iter().map(|(_, e)| e.pools.len()).sum::<usize>();
    // Per line: the label set, a metric name (< 48), an extra label and a value (< 32).
    let mut out = String::with_capacity(
        LINES_PER_SYSTEM * (label_bytes + systems.len() * 80)
            + pool_lines * (label_bytes / systems.len().max(1) + 120)
            + 4096,
    );
    let each = |out: &mut String, name: &str, help: &str, f: &dyn Fn(&mut String, &str, &Entry)| {
        family(out, name, help);
        for ((_, e), l) in systems.iter().zip(&labels) {
            f(out, l, e);
        }
    };

    each(
        &mut out,
        "sdash_system_info",
        "Always 1: the system's name, model and software version as labels.",
        &|out, l, e| {
            let row = &e.row;
            out.push_str("sdash_system_info");
            out.push_str(l);
            for (label, value) in [
                ("name", Some(e.name.as_str())),
                ("model", row.model.as_deref()),
                ("version", row.version.as_deref()),
            ] {
                let _ = write!(out, ",{label}=\"");
                push_label_value(out, value.unwrap_or(""));
                out.push('"');
            }
            out.push_str("} 1\n");
        },
    );
    each(
        &mut out,
        "sdash_system_up",
        "1 when the latest poll reached the system (status online), else 0.",
        &|out, l, e| {
            sample(out, "sdash_system_up", l, None);
            out.push_str(if e.row.status.as_deref() == Some("online") {
                "1\n"
            } else {
                "0\n"
            });
        },
    );
    each(
        &mut out,
        "sdash_system_status",
        "1 for the system's status from its latest poll (pending: never polled), 0 for the others.",
        &|out, l, e| {
            let status = e.row.status.as_deref().unwrap_or("pending");
            for s in STATUSES {
                sample(out, "sdash_system_status", l, Some(("status", s)));
                out.push_str(if *s == status { "1\n" } else { "0\n" });
            }
        },
    );
    for (name, help, field) in [
        (
            "sdash_system_hardware_health",
            "1 for the hardware health of the latest poll (unknown when not reported), 0 for the others.",
            (|e: &Entry| e.row.hardware.as_deref()) as fn(&Entry) -> Option<&str>,
        ),
        (
            "sdash_system_cluster_health",
            "1 for the cluster health of the latest poll (unknown when not reported), 0 for the others.",
            |e: &Entry| e.row.cluster.as_deref(),
        ),
    ] {
        each(&mut out, name, help, &|out, l, e| {
            let health = field(e).unwrap_or("unknown");
            for h in HEALTHS {
                sample(out, name, l, Some(("health", h)));
                out.push_str(if *h == health { "1\n" } else { "0\n" });
            }
        });
    }
    // A family with a sample for each system that has a value.
    let each_present =
        |out: &mut String, name: &str, help: &str, value: fn(&Entry) -> Option<Value>| {
            each(out, name, help, &|out, l, e| {
                if let Some(v) = value(e) {
                    sample(out, name, l, None);
                    v.push(out);
                    out.push('\n');
                }
            });
        };
    for (name, help, value) in [
        (
            "sdash_system_capacity_total_bytes",
            "Usable capacity of the latest poll that reported capacity.",
            (|e: &Entry| e.row.total_bytes.map(Value::Int)) as fn(&Entry) -> Option<Value>,
        ),
        (
            "sdash_system_capacity_used_bytes",
            "Used capacity of the latest poll that reported capacity.",
            |e: &Entry| e.row.used_bytes.map(Value::Int),
        ),
        (
            "sdash_system_capacity_free_bytes",
            "Free capacity of the latest poll that reported capacity.",
            |e: &Entry| e.row.free_bytes.map(Value::Int),
        ),
        (
            "sdash_system_capacity_provisioned_bytes",
            "Provisioned (thin, promised to hosts) capacity of the latest poll, where the vendor reports it.",
            |e: &Entry| e.row.provisioned_bytes.map(Value::Int),
        ),
        (
            "sdash_system_data_reduction_ratio",
            "Data reduction the system reports (logical / physical), when it reports one.",
            |e: &Entry| {
                e.row
                    .data_reduction
                    .filter(|v| v.is_finite())
                    .map(Value::Float)
            },
        ),
    ] {
        each_present(&mut out, name, help, value);
    }
    for (name, help, value) in PERFORMANCE {
        each(&mut out, name, help, &|out, l, e| {
            if let Some(v) = e
                .performance
                .as_ref()
                .and_then(value)
                .filter(|v| v.is_finite())
            {
                sample(out, name, l, None);
                Value::Float(v).push(out);
                out.push('\n');
            }
        });
    }
    for (name, help, value) in [
        (
            "sdash_system_pool_total_bytes",
            "Capacity of each pool of the latest poll (aggregate, site, storage pool, tier or space category; pool=\"<kind>:<name>\").",
            (|p: &sdash_proto::Pool| p.total_bytes) as fn(&sdash_proto::Pool) -> u64,
        ),
        (
            "sdash_system_pool_used_bytes",
            "Used capacity of each pool of the latest poll (pool=\"<kind>:<name>\").",
            |p: &sdash_proto::Pool| p.used_bytes,
        ),
    ] {
        each(&mut out, name, help, &|out, l, e| {
            for p in &e.pools {
                let key = crate::resources::deep::pool_key(p.kind.as_str(), &p.name);
                sample(out, name, l, Some(("pool", &key)));
                let _ = writeln!(out, "{}", value(p));
            }
        });
    }
    family(
        &mut out,
        "sdash_system_alerts_open",
        "Open alerts no operator acknowledged, by severity (acknowledged alerts are known and left out).",
    );
    for ((i, _), l) in systems.iter().zip(&labels) {
        let counts = open_alerts.get(*i).copied().unwrap_or_default();
        for (s, n) in SEVERITIES.iter().zip(counts) {
            sample(
                &mut out,
                "sdash_system_alerts_open",
                l,
                Some(("severity", s)),
            );
            let _ = writeln!(out, "{n}");
        }
    }
    each_present(
        &mut out,
        "sdash_system_last_successful_poll_timestamp_seconds",
        "When the latest poll that reached the system was observed (Unix time).",
        |e| e.row.last_online_at.map(Value::Millis),
    );
    let last_success = systems
        .iter()
        .zip(labels)
        .filter_map(|((_, e), l)| e.row.last_online_at.map(|at| (l.into_boxed_str(), at)))
        .collect();
    Rendered {
        fixed: out,
        last_success,
    }
}

impl Rendered {
    /// The whole exposition at `now_ms`: the fixed text and the ages of the last successful polls.
    pub fn body(&self, now_ms: i64) -> String {
        const NAME: &str = "sdash_system_last_successful_poll_age_seconds";
        let labels: usize = self.last_success.iter().map(|(l, _)| l.len()).sum();
        let mut out =
            String::with_capacity(self.fixed.len() + labels + self.last_success.len() * 72 + 256);
        out.push_str(&self.fixed);
        family(
            &mut out,
            NAME,
            "Seconds since the latest poll that reached the system was observed.",
        );
        for (l, at) in &self.last_success {
            sample(&mut out, NAME, l, None);
            push_seconds(&mut out, now_ms.saturating_sub(*at).max(0));
            out.push('\n');
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::fleet::SystemRow;

    fn entry(id: &str, f: impl FnOnce(&mut SystemRow)) -> Entry {
        let mut row = SystemRow {
            id: id.into(),
            ..SystemRow::default()
        };
        f(&mut row);
        Entry::new(row)
    }

    fn tags(keys: &[&str]) -> TagLabels {
        let keys: Vec<String> = keys.iter().map(|k| k.to_string()).collect();
        TagLabels::new(&keys).unwrap_or_else(|e| panic!("{e}"))
    }

    /// A polled system, one never polled, a removed one and a disabled one (both left out).
    fn small_fleet() -> (Vec<Entry>, Vec<AlertCounts>) {
        let online = entry("fa-1", |r| {
            r.inv_name = Some("Prod array".into());
            r.inv_vendor = Some("pure".into());
            r.inv_updated_at = Some(1);
            r.tags = Some(r#"{"environment":"prod","storage_type":"block"}"#.into());
            r.st_vendor = Some("pure".into());
            r.status = Some("online".into());
            r.hardware = Some("warning".into());
            r.cluster = Some("ok".into());
            r.model = Some("FA-X70".into());
            r.version = Some("6.7.3".into());
            r.total_bytes = Some(1000);
            r.used_bytes = Some(600);
            r.free_bytes = Some(400);
            r.data_reduction = Some(3.5);
            r.provisioned_bytes = Some(5000);
            r.last_online_at = Some(1_700_000_000_250);
            r.performance = Some(
                r#"{"read_iops":1500.5,"write_iops":700.0,"read_latency_us":250.0,"write_latency_us":null,"read_bytes_per_s":1048576,"write_bytes_per_s":524288}"#.into(),
            );
            r.pools = Some(
                r#"[{"kind":"space","name":"unique","total_bytes":1000,"used_bytes":450,"free_bytes":null},{"kind":"space","name":"snap\"s","total_bytes":1000,"used_bytes":150}]"#.into(),
            );
        });
        let pending = entry("nas-2", |r| {
            r.inv_vendor = Some("ontap".into());
            r.inv_updated_at = Some(1);
            r.tags = Some(r#"{"environment":"dev"}"#.into());
        });
        let removed = entry("old-3", |r| {
            r.inv_vendor = Some("pure".into());
            r.removed = Some(true);
            r.status = Some("online".into());
        });
        let disabled = entry("off-4", |r| {
            r.inv_vendor = Some("pure".into());
            r.inv_updated_at = Some(1);
            r.enabled = Some(false);
            r.status = Some("online".into());
            r.total_bytes = Some(7000);
        });
        (
            vec![online, pending, removed, disabled],
            vec![[0, 2, 0, 1], [0, 0, 0, 0], [5, 5, 5, 5], [7, 7, 7, 7]],
        )
    }

    #[test]
    fn renders_a_small_fleet_exactly() {
        let (entries, alerts) = small_fleet();
        let text = render(&entries, &alerts, &tags(&["environment"])).body(1_700_000_010_000);
        let fa = r#"system="fa-1",vendor="pure",environment="prod""#;
        let nas = r#"system="nas-2",vendor="ontap",environment="dev""#;
        let mut expected = String::new();
        let mut fam = |name: &str, help: &str, lines: &[String]| {
            expected.push_str(&format!("# HELP {name} {help}\n# TYPE {name} gauge\n"));
            for l in lines {
                expected.push_str(l);
                expected.push('\n');
            }
        };
        fam(
            "sdash_system_info",
            "Always 1: the system's name, model and software version as labels.",
            &[
                format!(
                    r#"sdash_system_info{{{fa},name="Prod array",model="FA-X70",version="6.7.3"}} 1"#
                ),
                format!(r#"sdash_system_info{{{nas},name="nas-2",model="",version=""}} 1"#),
            ],
        );
        fam(
            "sdash_system_up",
            "1 when the latest poll reached the system (status online), else 0.",
            &[
                format!("sdash_system_up{{{fa}}} 1"),
                format!("sdash_system_up{{{nas}}} 0"),
            ],
        );
        let one_hot = |name: &str, label: &str, values: &[&str], set: &str, l: &str| {
            values
                .iter()
                .map(|v| format!("{name}{{{l},{label}=\"{v}\"}} {}", u8::from(*v == set)))
                .collect::<Vec<_>>()
        };
        fam(
            "sdash_system_status",
            "1 for the system's status from its latest poll (pending: never polled), 0 for the others.",
            &[
                one_hot("sdash_system_status", "status", STATUSES, "online", fa),
                one_hot("sdash_system_status", "status", STATUSES, "pending", nas),
            ]
            .concat(),
        );
        fam(
            "sdash_system_hardware_health",
            "1 for the hardware health of the latest poll (unknown when not reported), 0 for the others.",
            &[
                one_hot(
                    "sdash_system_hardware_health",
                    "health",
                    HEALTHS,
                    "warning",
                    fa,
                ),
                one_hot(
                    "sdash_system_hardware_health",
                    "health",
                    HEALTHS,
                    "unknown",
                    nas,
                ),
            ]
            .concat(),
        );
        fam(
            "sdash_system_cluster_health",
            "1 for the cluster health of the latest poll (unknown when not reported), 0 for the others.",
            &[
                one_hot("sdash_system_cluster_health", "health", HEALTHS, "ok", fa),
                one_hot(
                    "sdash_system_cluster_health",
                    "health",
                    HEALTHS,
                    "unknown",
                    nas,
                ),
            ]
            .concat(),
        );
        fam(
            "sdash_system_capacity_total_bytes",
            "Usable capacity of the latest poll that reported capacity.",
            &[format!("sdash_system_capacity_total_bytes{{{fa}}} 1000")],
        );
        fam(
            "sdash_system_capacity_used_bytes",
            "Used capacity of the latest poll that reported capacity.",
            &[format!("sdash_system_capacity_used_bytes{{{fa}}} 600")],
        );
        fam(
            "sdash_system_capacity_free_bytes",
            "Free capacity of the latest poll that reported capacity.",
            &[format!("sdash_system_capacity_free_bytes{{{fa}}} 400")],
        );
        fam(
            "sdash_system_capacity_provisioned_bytes",
            "Provisioned (thin, promised to hosts) capacity of the latest poll, where the vendor reports it.",
            &[format!(
                "sdash_system_capacity_provisioned_bytes{{{fa}}} 5000"
            )],
        );
        fam(
            "sdash_system_data_reduction_ratio",
            "Data reduction the system reports (logical / physical), when it reports one.",
            &[format!("sdash_system_data_reduction_ratio{{{fa}}} 3.5")],
        );
        fam(
            "sdash_system_performance_read_iops",
            "Read operations per second of the latest poll, when the array reports them.",
            &[format!("sdash_system_performance_read_iops{{{fa}}} 1500.5")],
        );
        fam(
            "sdash_system_performance_write_iops",
            "Write operations per second of the latest poll, when the array reports them.",
            &[format!("sdash_system_performance_write_iops{{{fa}}} 700")],
        );
        fam(
            "sdash_system_performance_read_latency_seconds",
            "Average read latency of the latest poll, when the array reports it.",
            &[format!(
                "sdash_system_performance_read_latency_seconds{{{fa}}} 0.00025"
            )],
        );
        // Not reported: no sample.
        fam(
            "sdash_system_performance_write_latency_seconds",
            "Average write latency of the latest poll, when the array reports it.",
            &[],
        );
        fam(
            "sdash_system_performance_read_bytes_per_second",
            "Read bandwidth of the latest poll, when the array reports it.",
            &[format!(
                "sdash_system_performance_read_bytes_per_second{{{fa}}} 1048576"
            )],
        );
        fam(
            "sdash_system_performance_write_bytes_per_second",
            "Write bandwidth of the latest poll, when the array reports it.",
            &[format!(
                "sdash_system_performance_write_bytes_per_second{{{fa}}} 524288"
            )],
        );
        fam(
            "sdash_system_pool_total_bytes",
            "Capacity of each pool of the latest poll (aggregate, site, storage pool, tier or space category; pool=\"<kind>:<name>\").",
            &[
                format!(r#"sdash_system_pool_total_bytes{{{fa},pool="space:unique"}} 1000"#),
                format!(r#"sdash_system_pool_total_bytes{{{fa},pool="space:snap\"s"}} 1000"#),
            ],
        );
        fam(
            "sdash_system_pool_used_bytes",
            "Used capacity of each pool of the latest poll (pool=\"<kind>:<name>\").",
            &[
                format!(r#"sdash_system_pool_used_bytes{{{fa},pool="space:unique"}} 450"#),
                format!(r#"sdash_system_pool_used_bytes{{{fa},pool="space:snap\"s"}} 150"#),
            ],
        );
        fam(
            "sdash_system_alerts_open",
            "Open alerts no operator acknowledged, by severity (acknowledged alerts are known and left out).",
            &[
                format!(r#"sdash_system_alerts_open{{{fa},severity="info"}} 0"#),
                format!(r#"sdash_system_alerts_open{{{fa},severity="warning"}} 2"#),
                format!(r#"sdash_system_alerts_open{{{fa},severity="error"}} 0"#),
                format!(r#"sdash_system_alerts_open{{{fa},severity="critical"}} 1"#),
                format!(r#"sdash_system_alerts_open{{{nas},severity="info"}} 0"#),
                format!(r#"sdash_system_alerts_open{{{nas},severity="warning"}} 0"#),
                format!(r#"sdash_system_alerts_open{{{nas},severity="error"}} 0"#),
                format!(r#"sdash_system_alerts_open{{{nas},severity="critical"}} 0"#),
            ],
        );
        fam(
            "sdash_system_last_successful_poll_timestamp_seconds",
            "When the latest poll that reached the system was observed (Unix time).",
            &[format!(
                "sdash_system_last_successful_poll_timestamp_seconds{{{fa}}} 1700000000.250"
            )],
        );
        fam(
            "sdash_system_last_successful_poll_age_seconds",
            "Seconds since the latest poll that reached the system was observed.",
            &[format!(
                "sdash_system_last_successful_poll_age_seconds{{{fa}}} 9.750"
            )],
        );
        assert_eq!(text, expected);
    }

    #[test]
    fn every_family_has_help_and_type_and_its_samples_follow() {
        let (entries, alerts) = small_fleet();
        let text = render(&entries, &alerts, &TagLabels::default()).body(0);
        let mut current = String::new();
        for line in text.lines() {
            if let Some(rest) = line.strip_prefix("# HELP ") {
                current = rest.split(' ').next().unwrap_or_default().to_owned();
                continue;
            }
            if let Some(rest) = line.strip_prefix("# TYPE ") {
                assert_eq!(rest, format!("{current} gauge"));
                continue;
            }
            assert!(line.starts_with(&format!("{current}{{")), "{line}");
        }
        // A system with a successful poll in the future (clock skew) is not a negative age.
        assert!(text.ends_with(
            "sdash_system_last_successful_poll_age_seconds{system=\"fa-1\",vendor=\"pure\"} 0.000\n"
        ));
    }

    #[test]
    fn label_values_are_escaped() {
        let e = entry("we\"ird\\id\nx", |r| {
            r.tags = Some(r#"{"site":"a \"b\" \\ c\nd","rack":7}"#.into());
            r.inv_updated_at = Some(1);
        });
        let text = render(&[e], &[[0; 4]], &tags(&["site", "rack", "missing"])).body(0);
        assert!(
            text.contains(
                r#"sdash_system_up{system="we\"ird\\id\nx",vendor="",site="a \"b\" \\ c\nd",rack="7",missing=""} 0"#
            ),
            "{text}"
        );
        assert_eq!(
            text.lines().filter(|l| !l.starts_with('#')).count(),
            1 + 1 + 5 + 4 + 4 + 4,
            "{text}"
        );
    }

    #[test]
    fn tag_keys_become_valid_label_names() {
        assert_eq!(label_name("environment"), "environment");
        assert_eq!(label_name("storage-type"), "storage_type");
        assert_eq!(label_name("site.rack"), "site_rack");
        assert_eq!(label_name("9lives"), "_9lives");
        assert_eq!(label_name("vendor"), "tag_vendor");
        assert_eq!(label_name("__x"), "tag___x");
        let t = tags(&["environment", " storage_type ", "", "environment"]);
        assert_eq!(
            t.label_names().collect::<Vec<_>>(),
            ["environment", "storage_type"]
        );
        let keys =
            |k: &[&str]| TagLabels::new(&k.iter().map(|s| s.to_string()).collect::<Vec<_>>());
        assert_eq!(
            keys(&["a.b", "a-b"]),
            Err(TagLabelError::Collision(
                "a.b".into(),
                "a-b".into(),
                "a_b".into()
            ))
        );
        assert_eq!(keys(&["a b"]), Err(TagLabelError::InvalidKey("a b".into())));
    }
}
