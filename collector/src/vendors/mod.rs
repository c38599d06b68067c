//! Vendor adapters: each turns one vendor's REST API into the snapshot contract of `sdash_proto`
//! and into system log events.
//!
//! * [`Adapter`] is the only type the scheduler and `probe` use.
//! * [`shell`]: the [`VendorAdapter`] trait each vendor implements, and the [`Shell`] around it
//!   that does credentials, the session, logout and the poll bookkeeping.
//! * [`session`]: the session token and its renewal on 401; [`bookkeeping`]: the events,
//!   degradations, status transitions and alert memory of polls; [`paging`]: cursor paging with
//!   loop guards; [`components`]: component helpers shared by the vendors' rules.
//! * One module per vendor ([`pure`], [`ontap`], [`storagegrid`], [`datadomain`]), each with its
//!   calls, response shapes, paging envelope and normalization rules.
//!
//! Adding a vendor: its module (a type implementing [`VendorAdapter`], declared with `pub mod`
//! here) and one line in [`REGISTRY`]. Nothing else in the collector lists vendors: the inventory
//! asks the registry which vendors exist and which secrets each needs.

pub mod bookkeeping;
pub mod components;
pub mod datadomain;
pub mod ontap;
pub mod paging;
pub mod pure;
pub mod session;
pub mod shell;
pub mod storagegrid;
pub mod topology;

use futures::future::BoxFuture;
use sdash_proto::{EventRecord, Snapshot, Vendor};

pub use shell::{Poll, ReadCredentials, Shell, UserPassword, VendorAdapter};

use crate::http::SetupError;
use crate::inventory::{CredentialKind, SystemConfig};

/// Every vendor adapter, one line each: the only place where vendors are dispatched.
pub const REGISTRY: &[Registration] = &[
    Registration::of::<pure::Pure>(),
    Registration::of::<ontap::Ontap>(),
    Registration::of::<storagegrid::StorageGrid>(),
    Registration::of::<datadomain::DataDomain>(),
];

/// One vendor's entry in [`REGISTRY`].
pub struct Registration {
    pub vendor: Vendor,
    /// The secret fields the inventory requires for the vendor's systems.
    pub credentials: CredentialKind,
    build: fn(&SystemConfig) -> Result<Box<dyn Polling>, SetupError>,
}

impl Registration {
    pub const fn of<V: VendorAdapter>() -> Registration {
        Registration {
            vendor: V::VENDOR,
            credentials: <V::Credentials as ReadCredentials>::KIND,
            build: build::<V>,
        }
    }
}

fn build<V: VendorAdapter>(config: &SystemConfig) -> Result<Box<dyn Polling>, SetupError> {
    Ok(Box::new(Shell::<V>::new(config)?))
}

/// The registration of `vendor`, if it has an adapter.
pub fn registration(vendor: Vendor) -> Option<&'static Registration> {
    REGISTRY.iter().find(|r| r.vendor == vendor)
}

/// The credentials `vendor` authenticates with (user and password when it has no adapter).
pub fn credential_kind(vendor: Vendor) -> CredentialKind {
    registration(vendor).map_or(CredentialKind::UserPassword, |r| r.credentials)
}

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

/// A [`Shell`] of any vendor, as the scheduler drives it.
trait Polling: Send {
    fn poll(&mut self) -> BoxFuture<'_, PollOutput>;
    fn logout(&mut self) -> BoxFuture<'_, ()>;
}

impl<V: VendorAdapter> Polling for Shell<V> {
    fn poll(&mut self) -> BoxFuture<'_, PollOutput> {
        Box::pin(Shell::poll(self))
    }

    fn logout(&mut self) -> BoxFuture<'_, ()> {
        Box::pin(Shell::logout(self))
    }
}

/// One system's adapter; keeps the vendor session across polls.
pub struct Adapter {
    inner: Box<dyn Polling>,
}

impl Adapter {
    pub fn new(config: &SystemConfig) -> Result<Adapter, AdapterError> {
        let setup = |message: String| AdapterError::Setup {
            id: config.id.clone(),
            message,
        };
        let registration = registration(config.vendor)
            .ok_or_else(|| setup(format!("no adapter for vendor {}", config.vendor.as_str())))?;
        let inner = (registration.build)(config).map_err(|e| setup(e.to_string()))?;
        Ok(Adapter { inner })
    }

    /// Polls the system once. Never panics and never fails: problems become the snapshot's status,
    /// its `error` and events.
    pub async fn poll(&mut self) -> PollOutput {
        self.inner.poll().await
    }

    /// Ends the vendor session, where the vendor has one (on shutdown).
    pub async fn logout(&mut self) {
        self.inner.logout().await
    }
}
