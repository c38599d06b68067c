//! sdash-notify: a subscriber of the bus that tells people and their alerting about what the
//! writer derived: alerts opened and cleared, status and health transitions, capacity
//! thresholds (`sdash.v1.change.<system>`, `ChangeRecord` in `proto/SCHEMA.md`).
//!
//! * [`run`]: the service. A durable pull consumer of its own on the `SDASH` stream (explicit
//!   ack, independent of the writer's), routes ([`route`]), groups per receiver and group key
//!   within the group window, delivers with retries and backoff ([`receivers`]), dead-letters
//!   what a receiver keeps refusing (stream `SDASH_NOTIFY_DEAD_LETTERS`), and acknowledges a
//!   change only once every matching receiver has it or it was dead-lettered. What was sent is
//!   remembered in NATS KV ([`state`]) for the dedupe window, so redeliveries after a crash are
//!   not sent again; firing conditions are re-posted to Alertmanager and repeated to webhooks and
//!   email until they resolve.
//! * [`Config`]: the TOML configuration; [`Cli`]/[`NotifyArgs`]: the flags.
//! * [`signature`]: webhook signatures, and their verification for receivers.

mod app;
pub mod change;
mod cli;
pub mod config;
pub mod metrics;
pub mod receivers;
pub mod route;
pub mod signature;
pub mod state;

pub use app::{DEAD_LETTER_STREAM, DEAD_LETTER_SUBJECT_PREFIX, check, run};
pub use cli::{Cli, NotifyArgs, defaults};
pub use config::{Config, ConfigError};
pub use metrics::NotifyMetrics;

/// Installs the ring crypto provider for rustls once per process (reqwest and lettre are built
/// without one of their own). Safe to call many times.
pub fn install_crypto_provider() {
    let _ = rustls::crypto::ring::default_provider().install_default();
}
