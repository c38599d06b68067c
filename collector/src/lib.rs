//! sdash-collector: polls storage arrays and publishes normalized results to NATS JetStream.
//!
//! * [`inventory`]: the TOML inventory and secret references.
//! * [`vendors`]: one adapter per vendor, behind [`vendors::Adapter`].

pub mod inventory;
pub mod vendors;
