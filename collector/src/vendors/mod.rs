//! Vendor adapters: each turns one vendor's REST API into the snapshot contract of `sdash_proto`
//! and into system log events. Shared HTTP, session and paging code lives in [`crate::http`].
//!
//! [`Adapter`] is the only type the scheduler and `probe` use. It dispatches to one adapter per
//! vendor ([`pure::PureAdapter`], ...). Adding a vendor takes one variant in `Inner` and one arm
//! in each of the three `match`es below; a vendor adapter has this shape:
//!
//! ```ignore
//! impl XAdapter {
//!     pub fn new(config: &SystemConfig) -> Result<XAdapter, crate::http::SetupError>;
//!     pub async fn poll(&mut self) -> PollOutput;   // never fails, never panics
//!     pub async fn logout(&mut self);               // ends the session, if the vendor has one
//! }
//! ```
//!
//! Until a vendor's adapter is wired in, its systems poll as `Status::Error` with
//! "vendor adapter not available" (and an event saying so).

pub mod datadomain;
pub mod ontap;
pub mod pure;
pub mod storagegrid;

use sdash_proto::{EventRecord, Snapshot, Vendor};

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
    inner: Inner,
}

enum Inner {
    Pure(Box<pure::PureAdapter>),
    Ontap(Box<ontap::OntapAdapter>),
    Storagegrid(Box<storagegrid::StorageGridAdapter>),
    Datadomain(Box<datadomain::DataDomainAdapter>),
}

impl Adapter {
    pub fn new(config: &SystemConfig) -> Result<Adapter, AdapterError> {
        let setup = |e: crate::http::SetupError| AdapterError::Setup {
            id: config.id.clone(),
            message: e.to_string(),
        };
        let inner = match config.vendor {
            Vendor::Pure => Inner::Pure(Box::new(pure::PureAdapter::new(config).map_err(setup)?)),
            Vendor::Ontap => {
                Inner::Ontap(Box::new(ontap::OntapAdapter::new(config).map_err(setup)?))
            }
            Vendor::Storagegrid => Inner::Storagegrid(Box::new(
                storagegrid::StorageGridAdapter::new(config).map_err(setup)?,
            )),
            Vendor::Datadomain => Inner::Datadomain(Box::new(
                datadomain::DataDomainAdapter::new(config).map_err(setup)?,
            )),
        };
        Ok(Adapter {
            config: config.clone(),
            inner,
        })
    }

    pub fn vendor(&self) -> Vendor {
        self.config.vendor
    }

    /// Polls the system once. Never panics and never fails: problems become the snapshot's status,
    /// its `error` and events.
    pub async fn poll(&mut self) -> PollOutput {
        match &mut self.inner {
            Inner::Pure(a) => a.poll().await,
            Inner::Ontap(a) => a.poll().await,
            Inner::Storagegrid(a) => a.poll().await,
            Inner::Datadomain(a) => a.poll().await,
        }
    }

    /// Ends the vendor session, where the vendor has one (on shutdown).
    pub async fn logout(&mut self) {
        match &mut self.inner {
            Inner::Pure(a) => a.logout().await,
            Inner::Ontap(a) => a.logout().await,
            Inner::Storagegrid(a) => a.logout().await,
            Inner::Datadomain(a) => a.logout().await,
        }
    }
}
