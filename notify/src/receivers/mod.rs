//! The receivers: what one [`Delivery`] (a group of changes, or the firing alerts) becomes for
//! Alertmanager ([`alertmanager`]), a signed webhook ([`webhook`]) or an email ([`email`]), and
//! whether a failure is worth retrying ([`DeliveryError`]).

pub mod alertmanager;
pub mod email;
pub mod webhook;

use std::collections::BTreeMap;
use std::path::Path;
use std::sync::Arc;

use crate::change::Change;
use crate::config::{HttpOptions, Receiver, ReceiverKind};

/// One thing to send to one receiver.
#[derive(Debug, Clone)]
pub struct Delivery {
    /// Unique per delivery, the same on each retry (`X-Sdash-Delivery`, the email Message-ID).
    pub id: String,
    /// The group's key: dimension name -> value (`system` -> `fa-01`).
    pub group: BTreeMap<String, String>,
    /// A reminder of conditions still unresolved, not new changes.
    pub repeat: bool,
    /// The changes, oldest first.
    pub changes: Vec<Change>,
    /// Alertmanager only: the alerts to post (built from the receiver's alert state).
    pub alerts: Vec<serde_json::Value>,
}

/// Why a delivery failed.
#[derive(Debug, Clone, thiserror::Error)]
pub enum DeliveryError {
    /// Worth trying again (network, timeouts, 5xx, 408, 429, temporary SMTP errors).
    #[error("{0}")]
    Retry(String),
    /// The receiver refuses it and will again (4xx, permanent SMTP errors): dead-lettered now.
    #[error("refused: {0}")]
    Refused(String),
}

/// Why a receiver cannot be set up.
#[derive(Debug, thiserror::Error)]
pub enum SetupError {
    #[error("receiver {receiver:?}: ca_file {path}: {reason}")]
    CaFile {
        receiver: String,
        path: String,
        reason: String,
    },
    #[error("receiver {receiver:?}: {reason}")]
    Client { receiver: String, reason: String },
}

/// A receiver ready to send.
pub enum Sender {
    Alertmanager(alertmanager::AlertmanagerSender),
    Webhook(webhook::WebhookSender),
    Email(email::EmailSender),
}

impl Sender {
    pub fn new(receiver: &Receiver) -> Result<Sender, SetupError> {
        Ok(match &receiver.kind {
            ReceiverKind::Alertmanager(c) => {
                Sender::Alertmanager(alertmanager::AlertmanagerSender::new(&receiver.name, c)?)
            }
            ReceiverKind::Webhook(c) => {
                Sender::Webhook(webhook::WebhookSender::new(&receiver.name, c)?)
            }
            ReceiverKind::Email(c) => Sender::Email(email::EmailSender::new(&receiver.name, c)?),
        })
    }

    pub async fn send(&self, delivery: &Delivery) -> Result<(), DeliveryError> {
        match self {
            Sender::Alertmanager(s) => s.send(delivery).await,
            Sender::Webhook(s) => s.send(delivery).await,
            Sender::Email(s) => s.send(delivery).await,
        }
    }
}

/// Reads every PEM certificate of a CA file.
pub(crate) fn read_ca_pem(receiver: &str, path: &Path) -> Result<Vec<u8>, SetupError> {
    let ca_error = |reason: String| SetupError::CaFile {
        receiver: receiver.to_owned(),
        path: path.display().to_string(),
        reason,
    };
    let pem = std::fs::read(path).map_err(|e| ca_error(e.to_string()))?;
    let count = rustls_pemfile::certs(&mut &pem[..])
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| ca_error(e.to_string()))?
        .len();
    if count == 0 {
        return Err(ca_error("no PEM certificate in the file".into()));
    }
    Ok(pem)
}

/// An HTTP client trusting the platform's roots plus the receiver's `ca_file`.
pub(crate) fn http_client(
    receiver: &str,
    options: &HttpOptions,
) -> Result<reqwest::Client, SetupError> {
    crate::install_crypto_provider();
    let client_error = |reason: String| SetupError::Client {
        receiver: receiver.to_owned(),
        reason,
    };
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let mut roots = rustls::RootCertStore::empty();
    for cert in rustls_native_certs::load_native_certs().certs {
        let _ = roots.add(cert);
    }
    if let Some(path) = &options.ca_file {
        let pem = read_ca_pem(receiver, path)?;
        for cert in rustls_pemfile::certs(&mut &pem[..]).flatten() {
            roots.add(cert).map_err(|e| SetupError::CaFile {
                receiver: receiver.to_owned(),
                path: path.display().to_string(),
                reason: e.to_string(),
            })?;
        }
    }
    let tls = rustls::ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .map_err(|e| client_error(e.to_string()))?
        .with_root_certificates(roots)
        .with_no_client_auth();
    reqwest::Client::builder()
        .tls_backend_preconfigured(tls)
        .timeout(options.timeout)
        .user_agent(concat!("sdash-notify/", env!("CARGO_PKG_VERSION")))
        .build()
        .map_err(|e| client_error(e.without_url().to_string()))
}

/// Adds the receiver's authentication to a request.
pub(crate) fn authenticate(
    request: reqwest::RequestBuilder,
    options: &HttpOptions,
) -> reqwest::RequestBuilder {
    if let Some((user, password)) = &options.basic_auth {
        request.basic_auth(user, Some(password.expose()))
    } else if let Some(token) = &options.bearer_token {
        request.bearer_auth(token.expose())
    } else {
        request
    }
}

/// Sends a request and sorts the outcome: 2xx delivered; 408, 429, 5xx and network errors
/// retried; any other status refused. Messages carry no URL (it may hold a token).
pub(crate) async fn send_http(request: reqwest::RequestBuilder) -> Result<(), DeliveryError> {
    let response = request
        .send()
        .await
        .map_err(|e| DeliveryError::Retry(e.without_url().to_string()))?;
    let status = response.status();
    if status.is_success() {
        return Ok(());
    }
    let body = response.text().await.unwrap_or_default();
    let body: String = body.chars().take(200).collect();
    let message = format!("HTTP {status}: {}", body.trim());
    if status.is_server_error() || status.as_u16() == 408 || status.as_u16() == 429 {
        Err(DeliveryError::Retry(message))
    } else {
        Err(DeliveryError::Refused(message))
    }
}
