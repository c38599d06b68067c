//! Vendor adapters: each turns one vendor's REST API into the snapshot contract of `sdash_proto`
//! and into system log events. Shared HTTP, session and paging code lives in [`crate::http`].

use sdash_proto::{EventRecord, Snapshot, Status, Vendor};

use crate::inventory::SystemConfig;

/// The result of one poll: the normalized snapshot and the events it produced.
#[derive(Debug, Clone, PartialEq)]
pub struct PollOutput {
    pub snapshot: Snapshot,
    pub events: Vec<EventRecord>,
}

/// Why an adapter could not be built (bad TLS files, bad proxy URL...).
#[derive(Debug, thiserror::Error)]
pub enum AdapterError {
    #[error("system {id}: {message}")]
    Setup { id: String, message: String },
}

/// One system's adapter; keeps the vendor session across polls.
pub struct Adapter {
    config: SystemConfig,
}

impl Adapter {
    pub fn new(config: &SystemConfig) -> Result<Adapter, AdapterError> {
        Ok(Adapter { config: config.clone() })
    }

    pub fn vendor(&self) -> Vendor {
        self.config.vendor
    }

    /// Polls the system once. Never panics and never fails: problems become the snapshot's status,
    /// its `error` and events.
    pub async fn poll(&mut self) -> PollOutput {
        PollOutput {
            snapshot: Snapshot::failed(self.config.vendor, Status::Error, "adapter not implemented yet".into(), 0),
            events: Vec::new(),
        }
    }

    /// Ends the vendor session, where the vendor has one (on shutdown).
    pub async fn logout(&mut self) {}
}
