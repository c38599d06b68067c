//! sdash-collector: polls storage arrays and publishes normalized results to NATS JetStream.
//!
//! * [`inventory`]: the TOML inventory and secret references.
//! * [`dns`]: a small DNS stub client (PTR, A, AAAA) for the DNS names of management addresses.
//! * [`http`]: the HTTP client, TLS and the classification of failures.
//! * [`vendors`]: one adapter per vendor inside a shared shell, behind [`vendors::Adapter`];
//!   [`vendors::REGISTRY`] lists them.
//! * [`scheduler`]: per-system polling at phase-spread intervals with a bound on polls in flight.
//! * [`membership`]: sharing the fleet between collectors (NATS KV heartbeats, rendezvous hashing).
//! * [`double_polls`]: systems polled by two collectors in one interval, as seen on the bus.
//! * [`poll_now`]: poll-now commands from the bus, acted on by the system's owner only.
//! * [`outbox`]: the bounded queue in front of JetStream, with retry until acknowledged.
//! * [`app`]: the command line, `run` and `probe`; [`metrics`]: the collector's Prometheus metrics.

pub mod app;
pub mod dns;
pub mod double_polls;
#[doc(hidden)]
pub mod fuzzing;
pub mod http;
pub mod inventory;
pub mod membership;
pub mod metrics;
pub mod outbox;
pub mod poll_now;
pub mod scheduler;
pub mod vendors;
