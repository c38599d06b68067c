//! The bookkeeping of polls, shared by every vendor: [`PollContext`] collects one poll's events
//! and degradations, [`StatusTracker`] turns status and health changes between polls into events,
//! and [`AlertMemory`] keeps the last known open alerts for a poll whose alert query failed.

use std::time::Instant;

use sdash_proto::{Alert, Category, EventRecord, Health, Level, Snapshot, Status, Vendor};

use crate::http::HttpError;

/// Collects the events and degradations of one poll, and times it.
#[derive(Debug)]
pub struct PollContext {
    started: Instant,
    events: Vec<EventRecord>,
    degradations: Vec<String>,
}

impl Default for PollContext {
    fn default() -> Self {
        PollContext::new()
    }
}

impl PollContext {
    pub fn new() -> PollContext {
        PollContext {
            started: Instant::now(),
            events: Vec::new(),
            degradations: Vec::new(),
        }
    }

    pub fn push(&mut self, event: EventRecord) {
        self.events.push(event);
    }

    /// Adds an event without endpoint or HTTP status.
    pub fn event(&mut self, level: Level, category: Category, message: impl Into<String>) {
        self.push(EventRecord {
            level,
            category,
            message: message.into(),
            details: None,
            http_status: None,
            endpoint: None,
        });
    }

    /// Records a failed non-essential call: a `warning` event naming the endpoint and cause, and
    /// the text that goes into `Snapshot::error` (see [`PollContext::error_text`]).
    pub fn degrade(&mut self, err: &HttpError) {
        self.push(err.event(Level::Warning));
        self.degradations.push(err.to_string());
    }

    /// Records a degradation that is not an HTTP failure (a missing field, say).
    pub fn degrade_with(&mut self, endpoint: &str, reason: impl Into<String>) {
        let reason = reason.into();
        self.push(EventRecord {
            level: Level::Warning,
            category: Category::DataQuery,
            message: format!("{endpoint}: {reason}"),
            details: None,
            http_status: None,
            endpoint: Some(endpoint.to_owned()),
        });
        self.degradations.push(format!("{endpoint}: {reason}"));
    }

    /// The degradations joined with "; ", or `None` on a clean poll.
    pub fn error_text(&self) -> Option<String> {
        (!self.degradations.is_empty())
            .then(|| format!("degraded: {}", self.degradations.join("; ")))
    }

    pub fn elapsed_ms(&self) -> u64 {
        u64::try_from(self.started.elapsed().as_millis()).unwrap_or(u64::MAX)
    }

    /// The last step of every poll that reached the system (the shell's, and the fuzz
    /// targets'): a capacity the bus contract refuses ([`sdash_proto::Capacity::is_plausible`]: used far
    /// beyond total, from an array reporting nonsense) is dropped with a degradation, rather
    /// than have the writer dead-letter the whole snapshot, its status and alerts with it. A
    /// capacity of 0 bytes used with a total above 0 (a Pure Evergreen//One array reports its
    /// usage to Pure1, not on the array) is not shown as 0 %: it is dropped, the poll is
    /// degraded with a warning event naming the cause, the **cluster** health becomes at least
    /// `warning` (the array itself is fine; what it reports about its capacity is not) and the
    /// synthetic alert `sdash:capacity:zero-used` is open while it lasts. Then the degradations
    /// become `error` and the poll's duration `poll_ms`.
    pub fn finish(&mut self, mut snapshot: Snapshot) -> Snapshot {
        if let Some(c) = snapshot.capacity.take_if(|c| !c.is_plausible()) {
            let reason = format!(
                "capacity dropped: used {} bytes is implausible for a total of {} bytes",
                c.used_bytes, c.total_bytes
            );
            self.event(Level::Warning, Category::DataQuery, reason.clone());
            self.degradations.push(reason);
        }
        if let Some(c) = snapshot
            .capacity
            .take_if(|c| c.used_bytes == 0 && c.total_bytes > 0)
        {
            let reason = format!(
                "capacity not shown: the system reports 0 bytes used of {} bytes (an Evergreen//One \
                 or subscription array reports its usage elsewhere)",
                c.total_bytes
            );
            self.event(Level::Warning, Category::DataQuery, reason.clone());
            self.degradations.push(reason);
            snapshot.cluster = snapshot.cluster.worst(Health::Warning);
            snapshot.alerts.push(super::topology::check_alert(
                "capacity",
                "zero-used",
                format!("Capacity reports 0 bytes used of {} bytes", c.total_bytes),
                "capacity",
            ));
        }
        snapshot.error = self.error_text();
        snapshot.poll_ms = self.elapsed_ms();
        snapshot
    }

    pub fn into_events(self) -> Vec<EventRecord> {
        self.events
    }

    /// For an essential call that failed: records an `error` event and returns the failed
    /// snapshot (status from [`HttpError::status`], `error` = the error text).
    pub fn fail(&mut self, vendor: Vendor, err: &HttpError) -> Snapshot {
        self.push(err.event(Level::Error));
        Snapshot::failed(vendor, err.status(), err.to_string(), self.elapsed_ms())
    }

    /// For a non-essential call: the value, or `None` after [`PollContext::degrade`].
    pub fn keep<T>(&mut self, result: Result<T, HttpError>) -> Option<T> {
        match result {
            Ok(value) => Some(value),
            Err(e) => {
                self.degrade(&e);
                None
            }
        }
    }

    /// For a poll that cannot start because the credentials cannot be read (a missing password
    /// file, an unset variable): an `error` authentication event "cannot read `what`: `reason`"
    /// and the failed snapshot with status `error` (a configuration problem; nothing was sent to
    /// the system).
    pub fn credentials_failed(&mut self, vendor: Vendor, what: &str, reason: &str) -> Snapshot {
        let message = format!("cannot read {what}: {reason}");
        self.event(Level::Error, Category::Authentication, message.clone());
        Snapshot::failed(vendor, Status::Error, message, self.elapsed_ms())
    }
}

/// The last complete set of open alerts of a system. A snapshot carries the full set of open
/// alerts and the writer clears every alert missing from a newer one, so when the alert query
/// fails the adapter reports the last known set ("unchanged") instead of none ("all cleared");
/// the poll is marked degraded by the failed call itself.
///
/// The synthetic alerts of the adapters' own checks (a LIF or port down, a NIC without link, see
/// [`super::topology::check_alert`]) are remembered per check the same way
/// ([`AlertMemory::resolve_check`]): a failed LIF query keeps the LIF alerts open.
#[derive(Debug, Default, Clone)]
pub struct AlertMemory(Vec<Alert>, Vec<(&'static str, Vec<Alert>)>);

impl AlertMemory {
    /// `fresh` is the alert query's result, `None` when it failed.
    pub fn resolve(&mut self, fresh: Option<Vec<Alert>>) -> Vec<Alert> {
        match fresh {
            Some(alerts) => {
                self.0.clone_from(&alerts);
                alerts
            }
            None => self.0.clone(),
        }
    }

    /// The synthetic alerts of `check`: `fresh` when the check ran, else the last known ones.
    pub fn resolve_check(&mut self, check: &'static str, fresh: Option<Vec<Alert>>) -> Vec<Alert> {
        let slot = match self.1.iter().position(|(c, _)| *c == check) {
            Some(i) => i,
            None => {
                self.1.push((check, Vec::new()));
                self.1.len() - 1
            }
        };
        match fresh {
            Some(alerts) => {
                self.1[slot].1.clone_from(&alerts);
                alerts
            }
            None => self.1[slot].1.clone(),
        }
    }
}

/// Remembers the previous poll's status and healths and turns changes into events:
/// reachability changes (category `connection`) and hardware/cluster health changes (`health`).
/// The first poll of a system (after the collector starts or takes it over) produces one `info`
/// event saying what was found, so every system's log starts with a line.
#[derive(Debug, Default, Clone)]
pub struct StatusTracker {
    last: Option<(Status, Health, Health)>,
}

impl StatusTracker {
    pub fn observe(&mut self, snapshot: &Snapshot, ctx: &mut PollContext) {
        let now = (snapshot.status, snapshot.hardware, snapshot.cluster);
        if self.last.is_none() {
            let what = match (&snapshot.model, &snapshot.version) {
                (Some(model), Some(version)) => format!(" ({model}, {version})"),
                (None, Some(version)) => format!(" ({version})"),
                (Some(model), None) => format!(" ({model})"),
                (None, None) => String::new(),
            };
            ctx.event(
                Level::Info,
                Category::Connection,
                format!(
                    "monitoring started: {}{what}, hardware {}, cluster {}",
                    now.0.as_str(),
                    now.1.as_str(),
                    now.2.as_str()
                ),
            );
        }
        if let Some((status, hardware, cluster)) = self.last {
            if status != now.0 {
                let level = match now.0 {
                    Status::Online => Level::Info,
                    Status::Unreachable => Level::Critical,
                    Status::AuthFailed | Status::Error => Level::Error,
                };
                ctx.event(
                    level,
                    Category::Connection,
                    format!(
                        "status changed from {} to {}",
                        status.as_str(),
                        now.0.as_str()
                    ),
                );
            }
            // Health is only compared while the system is reachable; "unknown" during an outage is
            // reported by the status change above.
            if now.0 == Status::Online {
                for (what, before, after) in
                    [("hardware", hardware, now.1), ("cluster", cluster, now.2)]
                {
                    if before != after && after != Health::Unknown && before != Health::Unknown {
                        let level = match after {
                            Health::Ok => Level::Info,
                            Health::Warning => Level::Warning,
                            Health::Error => Level::Error,
                            Health::Unknown => Level::Info,
                        };
                        ctx.event(
                            level,
                            Category::Health,
                            format!(
                                "{what} health changed from {} to {}",
                                before.as_str(),
                                after.as_str()
                            ),
                        );
                    }
                }
            }
        }
        // Keep the last known healths across an outage so recovery compares with real values.
        let keep = |old: Option<Health>, new: Health| {
            if new == Health::Unknown {
                old.unwrap_or(new)
            } else {
                new
            }
        };
        self.last = Some((
            now.0,
            keep(self.last.map(|l| l.1), now.1),
            keep(self.last.map(|l| l.2), now.2),
        ));
    }
}

/// The snapshot a poll builds on once the system answered its essential call: `online`, the
/// healths `unknown` until the vendor's rules set them, nothing read yet (as in a snapshot of a
/// poll that read nothing, but without its error).
pub fn online_snapshot(vendor: Vendor) -> Snapshot {
    Snapshot {
        error: None,
        ..Snapshot::failed(vendor, Status::Online, String::new(), 0)
    }
}
