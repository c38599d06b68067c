//! The shell around every vendor adapter: the part of a poll that is the same for all vendors.
//!
//! A vendor implements [`VendorAdapter`] (its calls and normalization rules); [`Shell`] wraps it
//! and does the rest:
//!
//! * builds the [`HttpClient`] from the system's configuration;
//! * reads the credentials at the start of a poll ([`ReadCredentials`]); when they cannot be read
//!   the poll fails as `error` with an authentication event, and nothing is sent to the system;
//! * keeps the vendor [`Session`] across polls and resets its renewal budget (one re-login on a
//!   401 per poll, see [`session_call`](super::session::session_call));
//! * turns the vendor's result into the [`PollOutput`]: an essential failure becomes the failed
//!   snapshot ([`PollContext::fail`]), the degradations become `Snapshot::error`, `poll_ms` is
//!   the poll's duration, and the [`StatusTracker`] adds the transition events;
//! * keeps the last known alerts ([`AlertMemory`]) for the vendor to fall back on;
//! * ends the session on shutdown with the vendor's [`VendorAdapter::logout`] request.

use std::future::Future;

use sdash_proto::{Snapshot, Status, Vendor};

use super::PollOutput;
use super::bookkeeping::{AlertMemory, PollContext, StatusTracker};
use super::session::Session;
use crate::http::{HttpClient, HttpError, Request, SetupError};
use crate::inventory::{CredentialKind, Credentials, Secret, SystemConfig};

/// One vendor's part of an adapter: its state across polls (`Default` is the state before the
/// first poll), its calls and its rules.
pub trait VendorAdapter: Default + Send + 'static {
    /// The vendor this adapter serves.
    const VENDOR: Vendor;
    /// What the adapter needs to authenticate, read by the shell before each poll.
    type Credentials: ReadCredentials;

    /// One poll: the snapshot (status `online`, the vendor's findings) or the error of the
    /// essential call that failed. Non-essential failures are recorded in `poll.ctx` instead.
    fn poll(
        &mut self,
        poll: Poll<'_, Self::Credentials>,
    ) -> impl Future<Output = Result<Snapshot, HttpError>> + Send;

    /// Called after a poll that did not reach the system: the system may come back upgraded,
    /// so this is where a vendor forgets the API version it chose.
    fn after_outage(&mut self) {}

    /// The request that ends the session `token`, where the vendor has sessions. The shell sends
    /// it on shutdown and ignores its failure (the session expires anyway).
    fn logout<'a>(&self, _http: &'a HttpClient, _token: &str) -> Option<Request<'a>> {
        None
    }
}

/// What one poll gives the vendor: the system, its client and session, the poll's bookkeeping,
/// the alert memory and the credentials read for this poll.
pub struct Poll<'a, C> {
    pub config: &'a SystemConfig,
    pub http: &'a HttpClient,
    pub session: &'a mut Session,
    pub ctx: &'a mut PollContext,
    pub alerts: &'a mut AlertMemory,
    pub credentials: C,
}

/// Credentials as a vendor needs them, read from the inventory's secret files or variables.
pub trait ReadCredentials: Sized + Send + Sync {
    /// Which secret fields the inventory requires for this vendor.
    const KIND: CredentialKind;
    /// Reads them now (files may have been rotated). `session_live`: a session from an earlier
    /// poll is still held. The error is the reason, for the "cannot read ..." event.
    fn read(config: &SystemConfig, session_live: bool) -> Result<Self, String>;
}

/// A user name and password, read at the start of every poll (sent on every call, or kept for a
/// re-login within the poll).
pub struct UserPassword {
    pub username: String,
    pub password: Secret,
}

impl ReadCredentials for UserPassword {
    const KIND: CredentialKind = CredentialKind::UserPassword;

    fn read(config: &SystemConfig, _session_live: bool) -> Result<Self, String> {
        match config.credentials() {
            Ok(Credentials::UserPassword { username, password }) => {
                Ok(UserPassword { username, password })
            }
            Ok(Credentials::ApiToken(_)) => Err(format!(
                "{} needs a username and password",
                config.vendor.as_str()
            )),
            Err(e) => Err(e.to_string()),
        }
    }
}

/// One system's adapter: the vendor part `V` inside the shared shell. The vendor files name
/// their instance (`pub type PureAdapter = Shell<Pure>;`).
pub struct Shell<V> {
    config: SystemConfig,
    http: HttpClient,
    session: Session,
    tracker: StatusTracker,
    alerts: AlertMemory,
    vendor: V,
}

impl<V> std::fmt::Debug for Shell<V> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Shell")
            .field("system", &self.config.id)
            .field("http", &self.http)
            .field("session", &self.session)
            .finish()
    }
}

impl<V: VendorAdapter> Shell<V> {
    pub fn new(config: &SystemConfig) -> Result<Shell<V>, SetupError> {
        Ok(Shell {
            config: config.clone(),
            http: HttpClient::new(config)?,
            session: Session::default(),
            tracker: StatusTracker::default(),
            alerts: AlertMemory::default(),
            vendor: V::default(),
        })
    }

    /// Logins performed so far (first login plus renewals).
    pub fn logins(&self) -> u64 {
        self.session.logins
    }

    /// The vendor part, for vendor-specific settings.
    pub fn vendor_mut(&mut self) -> &mut V {
        &mut self.vendor
    }

    /// Polls the system once. Never panics and never fails: problems become the snapshot's
    /// status, its `error` and events.
    pub async fn poll(&mut self) -> PollOutput {
        let mut ctx = PollContext::new();
        self.session.begin_poll();
        let snapshot = match V::Credentials::read(&self.config, self.session.is_active()) {
            Err(reason) => {
                ctx.credentials_failed(V::VENDOR, V::Credentials::KIND.describe(), &reason)
            }
            Ok(credentials) => {
                let poll = Poll {
                    config: &self.config,
                    http: &self.http,
                    session: &mut self.session,
                    ctx: &mut ctx,
                    alerts: &mut self.alerts,
                    credentials,
                };
                match self.vendor.poll(poll).await {
                    Ok(snapshot) => ctx.finish(snapshot),
                    Err(e) => ctx.fail(V::VENDOR, &e),
                }
            }
        };
        if snapshot.status == Status::Unreachable {
            self.vendor.after_outage();
        }
        self.tracker.observe(&snapshot, &mut ctx);
        PollOutput {
            snapshot,
            events: ctx.into_events(),
        }
    }

    /// Ends the vendor session, where the vendor has one (on shutdown).
    pub async fn logout(&mut self) {
        if let Some(token) = self.session.clear()
            && let Some(request) = self.vendor.logout(&self.http, &token)
        {
            let _ = request.allow_empty().send().await;
        }
    }
}
