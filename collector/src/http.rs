//! The one HTTP layer every vendor adapter uses.
//!
//! # What it gives an adapter
//!
//! * [`HttpClient::new`] builds a client from a [`SystemConfig`]: TLS verification on by default
//!   (native roots plus the system's `tls.ca_file`), no verification only with an explicit
//!   `tls.insecure = true`, the optional `proxy`, and `timeout` as the per-request timeout (connect,
//!   headers and body). Systems with the same TLS/proxy/timeout settings share one connection
//!   pool and TLS config (cheap to build per system, also for 10,000 systems). `address` is a **base URL that may carry a path** (the simulator serves
//!   each system under `https://127.0.0.1:8443/<system-id>`): [`HttpClient::url`] appends the
//!   vendor path (`/api/...`) to it, so always pass paths starting with `/`.
//! * [`HttpClient::request`] returns a small builder ([`Request`]): `.query()`, `.header()`,
//!   `.json()`, then `.send()`, which succeeds only for 2xx and reads at most [`MAX_BODY_BYTES`]
//!   of the body. Every failure is one [`HttpError`] variant: connect/refused/closed, timeout, TLS,
//!   HTTP status (code + a short body excerpt), too large, empty body, invalid JSON/wrong shape.
//!   [`Response::json`] decodes with serde; a decode error is [`HttpError::Decode`], never a panic.
//! * Each [`HttpError`] knows its [`Status`] ([`HttpError::status`]: unreachable / auth_failed /
//!   error), its event [`Category`] and turns into an [`EventRecord`] naming the endpoint, the
//!   HTTP status and a short reason ([`HttpError::event`]). Bodies are untrusted: excerpts are cut
//!   to [`EXCERPT_CHARS`] characters and control characters are dropped.
//! * [`Session`] + [`session_call`]: a vendor session token kept across polls, logged in lazily,
//!   renewed **once per poll** when a call answers 401; a second 401 (or a failing login) is
//!   `auth_failed`. Call [`Session::begin_poll`] at the start of each poll. ([`with_session`] is
//!   the same with async closures; closures taking references there make the poll future fail
//!   `tokio::spawn`'s `Send` check, so prefer [`session_call`].)
//! * [`PollContext`]: collects the events and "degradations" (non-essential endpoints that failed)
//!   of one poll; [`PollContext::degrade`] records the event and the text for `Snapshot::error`.
//! * Paging: [`Pager`] (or [`paginate`] with an owned cursor) drives any cursor-style paging
//!   with loop guards ([`MAX_PAGES`], and a repeated cursor stops it). Vendor page shapes: [`PureList`] (`continuation_token`, also the
//!   `x-next-token` header via [`pure_next_token`]), [`OntapCollection`] (`_links.next.href`, see
//!   [`OntapCollection::next_href`] and [`split_href`]), [`DdPagingInfo`] (`page`/`paging_info`).
//! * [`StatusTracker`]: derives reachability/health *transition* events from the previous poll.
//!
//! # Sketch of an adapter poll
//!
//! ```ignore
//! let mut ctx = PollContext::new();
//! self.session.begin_poll();
//! let http = &self.http;
//! let result = session_call(&mut self.session, &mut ctx,
//!         || Ok(http.post("/api/login").header("api-token", secret.expose())),  // login request
//!         |resp| resp.header("x-auth-token").map(str::to_owned)                  // token from it
//!             .ok_or_else(|| HttpError::Protocol { endpoint: resp.endpoint.clone(), reason: "no token".into() }),
//!         |token| http.get("/api/x").header("x-auth-token", token),             // the call
//!     ).await.and_then(|resp| resp.json::<Cluster>());
//! let about = match result {
//!     Ok(v) => v,
//!     // Essential endpoint: the failed snapshot (status from the error, an `error` event).
//!     Err(e) => { let snap = ctx.fail(vendor, &e); self.tracker.observe(&snap, &mut ctx); return .. }
//! };
//! // Non-essential endpoint: `ctx.degrade(&e)` and carry on; at the end
//! // `snapshot.error = ctx.error_text()`, `self.tracker.observe(&snapshot, &mut ctx)`,
//! // `PollOutput { snapshot, events: ctx.into_events() }`.
//! ```
//!
//! `vendors/pure.rs` is the reference user of all of the above.

use std::fmt;
use std::sync::Arc;
use std::time::{Duration, Instant};

use bytes::Bytes;
pub use reqwest::Method;
use reqwest::header::{HeaderMap, HeaderName, HeaderValue};
use sdash_proto::{Alert, Category, EventRecord, Health, Level, Snapshot, Status, Vendor};
use serde::Deserialize;
use serde::de::DeserializeOwned;

use crate::inventory::SystemConfig;

/// Largest response body read; a bigger body is [`HttpError::TooLarge`].
pub const MAX_BODY_BYTES: usize = 16 * 1024 * 1024;
/// Characters of a response body kept in errors and events.
pub const EXCERPT_CHARS: usize = 200;
/// Most pages a [`Pager`] follows before giving up (a loop guard against a broken cursor).
pub const MAX_PAGES: usize = 1000;

/// Why a client could not be built.
#[derive(Debug, thiserror::Error)]
pub enum SetupError {
    #[error("cannot read tls.ca_file {path}: {reason}")]
    CaFile { path: String, reason: String },
    #[error("invalid proxy URL: {0}")]
    Proxy(String),
    #[error("invalid address {0:?}: must be an http(s) URL")]
    Address(String),
    #[error("cannot build the HTTP client: {0}")]
    Client(String),
}

/// Why one HTTP call failed. Every variant names the endpoint (the request path, no query).
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum HttpError {
    /// Connection refused, DNS failure, reset or closed before a response.
    #[error("{endpoint}: connection failed: {reason}")]
    Connect { endpoint: String, reason: String },
    /// No complete response within the per-request timeout.
    #[error("{endpoint}: timed out after {timeout_ms} ms")]
    Timeout { endpoint: String, timeout_ms: u64 },
    /// TLS handshake failed (untrusted or invalid certificate, protocol mismatch).
    #[error("{endpoint}: TLS failure: {reason}")]
    Tls { endpoint: String, reason: String },
    /// A non-2xx answer. `excerpt` is the start of the body, sanitized.
    #[error("{endpoint}: HTTP {status}: {excerpt}")]
    Status {
        endpoint: String,
        status: u16,
        excerpt: String,
    },
    /// The body is bigger than [`MAX_BODY_BYTES`].
    #[error("{endpoint}: response body larger than {limit} bytes")]
    TooLarge { endpoint: String, limit: usize },
    /// A body was expected but the response had none.
    #[error("{endpoint}: empty response body")]
    EmptyBody { endpoint: String },
    /// The body is not JSON, or not the expected shape (serde's message, with a body excerpt).
    #[error("{endpoint}: invalid response: {reason}")]
    Decode { endpoint: String, reason: String },
    /// A 2xx answer that lacks what the protocol promises (e.g. no session header after login).
    #[error("{endpoint}: {reason}")]
    Protocol { endpoint: String, reason: String },
}

impl HttpError {
    pub fn endpoint(&self) -> &str {
        match self {
            HttpError::Connect { endpoint, .. }
            | HttpError::Timeout { endpoint, .. }
            | HttpError::Tls { endpoint, .. }
            | HttpError::Status { endpoint, .. }
            | HttpError::TooLarge { endpoint, .. }
            | HttpError::EmptyBody { endpoint }
            | HttpError::Decode { endpoint, .. }
            | HttpError::Protocol { endpoint, .. } => endpoint,
        }
    }

    /// The HTTP status of the answer, when there was one.
    pub fn http_status(&self) -> Option<u16> {
        match self {
            HttpError::Status { status, .. } => Some(*status),
            _ => None,
        }
    }

    /// True for a 401 (session missing or expired, or bad credentials at login).
    pub fn is_unauthorized(&self) -> bool {
        self.http_status() == Some(401)
    }

    /// The snapshot status this failure means when it fails the poll: network and TLS problems are
    /// `unreachable`, 401/403 are `auth_failed`, everything else (5xx, 429, bad bodies) is `error`.
    pub fn status(&self) -> Status {
        match self {
            HttpError::Connect { .. } | HttpError::Timeout { .. } | HttpError::Tls { .. } => {
                Status::Unreachable
            }
            HttpError::Status {
                status: 401 | 403, ..
            } => Status::AuthFailed,
            _ => Status::Error,
        }
    }

    /// The event category: connection (network, TLS), authentication (401/403), api_call (other
    /// HTTP statuses), data_query (bodies that cannot be used).
    pub fn category(&self) -> Category {
        match self {
            HttpError::Connect { .. } | HttpError::Timeout { .. } | HttpError::Tls { .. } => {
                Category::Connection
            }
            HttpError::Status {
                status: 401 | 403, ..
            } => Category::Authentication,
            HttpError::Status { .. } => Category::ApiCall,
            HttpError::TooLarge { .. }
            | HttpError::EmptyBody { .. }
            | HttpError::Decode { .. }
            | HttpError::Protocol { .. } => Category::DataQuery,
        }
    }

    /// A short, operator-readable cause without the endpoint ("HTTP 500", "timed out after 10000 ms").
    pub fn reason(&self) -> String {
        match self {
            HttpError::Connect { reason, .. } => format!("connection failed: {reason}"),
            HttpError::Timeout { timeout_ms, .. } => format!("timed out after {timeout_ms} ms"),
            HttpError::Tls { reason, .. } => format!("TLS failure: {reason}"),
            HttpError::Status { status, .. } => format!("HTTP {status} {}", status_text(*status)),
            HttpError::TooLarge { limit, .. } => format!("response body larger than {limit} bytes"),
            HttpError::EmptyBody { .. } => "empty response body".to_owned(),
            HttpError::Decode { reason, .. } => format!("invalid response: {reason}"),
            HttpError::Protocol { reason, .. } => reason.clone(),
        }
    }

    /// The system log event for this failure at `level`: message "`<endpoint>`: reason", the
    /// endpoint, the HTTP status, and the body excerpt as details where there is one.
    pub fn event(&self, level: Level) -> EventRecord {
        let details = match self {
            HttpError::Status { excerpt, .. } if !excerpt.is_empty() => Some(excerpt.clone()),
            _ => None,
        };
        EventRecord {
            level,
            category: self.category(),
            message: format!("{}: {}", self.endpoint(), self.reason()),
            details,
            http_status: self.http_status(),
            endpoint: Some(self.endpoint().to_owned()),
        }
    }
}

fn status_text(status: u16) -> &'static str {
    reqwest::StatusCode::from_u16(status)
        .ok()
        .and_then(|s| s.canonical_reason())
        .unwrap_or("")
}

/// Keeps at most [`EXCERPT_CHARS`] characters of an untrusted body, with control characters and
/// runs of whitespace collapsed, so it is safe to put in a log line.
pub fn excerpt(body: &[u8]) -> String {
    let text = String::from_utf8_lossy(&body[..body.len().min(EXCERPT_CHARS * 4)]);
    let mut out = String::new();
    let mut last_space = true;
    for c in text.chars() {
        if out.chars().count() >= EXCERPT_CHARS {
            out.push('…');
            break;
        }
        if c.is_whitespace() || c.is_control() {
            if !last_space {
                out.push(' ');
            }
            last_space = true;
        } else {
            out.push(c);
            last_space = false;
        }
    }
    out.trim_end().to_owned()
}

/// Installs the ring crypto provider for rustls once per process (reqwest is built with
/// `rustls-no-provider`). Safe to call many times.
pub fn install_crypto_provider() {
    let _ = rustls::crypto::ring::default_provider().install_default();
}

/// The rustls client config for a system: the platform roots plus `tls.ca_file` (all
/// certificates in it), or no verification at all when `tls.insecure` (explicit opt-in).
fn tls_config(
    insecure: bool,
    ca: Option<(&std::path::Path, &[u8])>,
) -> Result<rustls::ClientConfig, SetupError> {
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let builder = rustls::ClientConfig::builder_with_provider(provider.clone())
        .with_safe_default_protocol_versions()
        .map_err(|e| SetupError::Client(e.to_string()))?;
    if insecure {
        return Ok(builder
            .dangerous()
            .with_custom_certificate_verifier(Arc::new(NoVerify(provider)))
            .with_no_client_auth());
    }
    let mut roots = rustls::RootCertStore::empty();
    // Platform roots are best effort (a missing or partly unreadable store is not fatal), and
    // read once per process: a fleet of thousands of systems must not reread them per adapter.
    static NATIVE_ROOTS: std::sync::OnceLock<Vec<rustls::pki_types::CertificateDer<'static>>> =
        std::sync::OnceLock::new();
    for cert in NATIVE_ROOTS.get_or_init(|| rustls_native_certs::load_native_certs().certs) {
        let _ = roots.add(cert.clone());
    }
    if let Some((path, pem)) = ca {
        let shown = path.display().to_string();
        let mut added = 0;
        for cert in rustls_pemfile::certs(&mut &pem[..]) {
            let cert = cert.map_err(|e| SetupError::CaFile {
                path: shown.clone(),
                reason: e.to_string(),
            })?;
            roots.add(cert).map_err(|e| SetupError::CaFile {
                path: shown.clone(),
                reason: e.to_string(),
            })?;
            added += 1;
        }
        if added == 0 {
            return Err(SetupError::CaFile {
                path: shown,
                reason: "no PEM certificate in the file".into(),
            });
        }
    }
    Ok(builder.with_root_certificates(roots).with_no_client_auth())
}

/// Accepts any server certificate (only with `tls.insecure = true`); signatures are still
/// checked so the handshake itself is sound.
#[derive(Debug)]
struct NoVerify(Arc<rustls::crypto::CryptoProvider>);

impl rustls::client::danger::ServerCertVerifier for NoVerify {
    fn verify_server_cert(
        &self,
        _end_entity: &rustls::pki_types::CertificateDer<'_>,
        _intermediates: &[rustls::pki_types::CertificateDer<'_>],
        _server_name: &rustls::pki_types::ServerName<'_>,
        _ocsp_response: &[u8],
        _now: rustls::pki_types::UnixTime,
    ) -> Result<rustls::client::danger::ServerCertVerified, rustls::Error> {
        Ok(rustls::client::danger::ServerCertVerified::assertion())
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &rustls::pki_types::CertificateDer<'_>,
        dss: &rustls::DigitallySignedStruct,
    ) -> Result<rustls::client::danger::HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls12_signature(
            message,
            cert,
            dss,
            &self.0.signature_verification_algorithms,
        )
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &rustls::pki_types::CertificateDer<'_>,
        dss: &rustls::DigitallySignedStruct,
    ) -> Result<rustls::client::danger::HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls13_signature(
            message,
            cert,
            dss,
            &self.0.signature_verification_algorithms,
        )
    }

    fn supported_verify_schemes(&self) -> Vec<rustls::SignatureScheme> {
        self.0.signature_verification_algorithms.supported_schemes()
    }
}

/// What makes two systems' clients interchangeable: the CA file's *content* (so a rotated file
/// is picked up by adapters built later), `insecure`, the proxy and the timeout.
#[derive(Clone, PartialEq, Eq, Hash)]
struct ClientKey {
    ca: Option<Vec<u8>>,
    insecure: bool,
    proxy: Option<String>,
    timeout: Duration,
}

/// One `reqwest::Client` (connection pool, TLS config, root store) per distinct [`ClientKey`],
/// shared by every system that has it: 10,000 systems must not hold 10,000 copies of the
/// platform root store.
fn shared_client(config: &SystemConfig) -> Result<reqwest::Client, SetupError> {
    static CLIENTS: std::sync::OnceLock<
        std::sync::Mutex<std::collections::HashMap<ClientKey, reqwest::Client>>,
    > = std::sync::OnceLock::new();
    let ca = match &config.tls.ca_file {
        Some(path) => Some(std::fs::read(path).map_err(|e| SetupError::CaFile {
            path: path.display().to_string(),
            reason: e.to_string(),
        })?),
        None => None,
    };
    let key = ClientKey {
        ca,
        insecure: config.tls.insecure,
        proxy: config.proxy.clone(),
        timeout: config.timeout,
    };
    let cache = CLIENTS.get_or_init(Default::default);
    if let Some(client) = cache.lock().unwrap_or_else(|p| p.into_inner()).get(&key) {
        return Ok(client.clone());
    }
    let tls = tls_config(
        key.insecure,
        config.tls.ca_file.as_deref().zip(key.ca.as_deref()),
    )?;
    let mut builder = reqwest::Client::builder()
        .tls_backend_preconfigured(tls)
        .timeout(config.timeout)
        .connect_timeout(config.timeout)
        .pool_idle_timeout(Duration::from_secs(90))
        .pool_max_idle_per_host(8)
        .redirect(reqwest::redirect::Policy::none())
        .user_agent(concat!("sdash-collector/", env!("CARGO_PKG_VERSION")));
    builder = match &config.proxy {
        Some(proxy) => {
            builder.proxy(reqwest::Proxy::all(proxy).map_err(|e| SetupError::Proxy(e.to_string()))?)
        }
        None => builder.no_proxy(),
    };
    let client = builder
        .build()
        .map_err(|e| SetupError::Client(e.to_string()))?;
    cache
        .lock()
        .unwrap_or_else(|p| p.into_inner())
        .insert(key, client.clone());
    Ok(client)
}

/// An HTTPS client bound to one system's base URL.
#[derive(Clone)]
pub struct HttpClient {
    client: reqwest::Client,
    base: Arc<str>,
    timeout: Duration,
}

impl fmt::Debug for HttpClient {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("HttpClient")
            .field("base", &self.base)
            .field("timeout", &self.timeout)
            .finish()
    }
}

impl HttpClient {
    /// Builds the client: TLS per `config.tls`, `config.proxy`, `config.timeout` per request.
    pub fn new(config: &SystemConfig) -> Result<HttpClient, SetupError> {
        install_crypto_provider();
        let base = config.address.trim_end_matches('/');
        if !(base.starts_with("https://") || base.starts_with("http://")) {
            return Err(SetupError::Address(config.address.clone()));
        }
        let client = shared_client(config)?;
        Ok(HttpClient {
            client,
            base: Arc::from(base),
            timeout: config.timeout,
        })
    }

    /// The base URL (the inventory `address` without a trailing `/`).
    pub fn base_url(&self) -> &str {
        &self.base
    }

    /// The full URL of `path` (which starts with `/`) under the base URL.
    pub fn url(&self, path: &str) -> String {
        if path.starts_with('/') {
            format!("{}{path}", self.base)
        } else {
            format!("{}/{path}", self.base)
        }
    }

    /// Starts a request to `path` (relative to the base URL, starting with `/`). Add the query with
    /// [`Request::query`] (encoded for you); a literal `?query` in `path` is sent as written. The
    /// endpoint named in errors and events is the path without its query.
    pub fn request<'a>(&'a self, method: Method, path: &str) -> Request<'a> {
        Request {
            client: self,
            method,
            path: path.to_owned(),
            query: Vec::new(),
            headers: HeaderMap::new(),
            body: None,
            allow_empty: false,
        }
    }

    pub fn get<'a>(&'a self, path: &str) -> Request<'a> {
        self.request(Method::GET, path)
    }

    pub fn post<'a>(&'a self, path: &str) -> Request<'a> {
        self.request(Method::POST, path)
    }
}

/// A request being built; see [`HttpClient::request`].
#[must_use]
pub struct Request<'a> {
    client: &'a HttpClient,
    method: Method,
    path: String,
    query: Vec<(String, String)>,
    headers: HeaderMap,
    body: Option<Vec<u8>>,
    allow_empty: bool,
}

impl Request<'_> {
    /// Adds one query parameter (URL-encoded by the client).
    pub fn query(mut self, key: &str, value: impl Into<String>) -> Self {
        self.query.push((key.to_owned(), value.into()));
        self
    }

    /// Adds a header. A value that is not a valid header value (a secret with a newline from a
    /// badly written file, say) is dropped; the server then answers 401, which is the truth.
    pub fn header(mut self, name: &str, value: &str) -> Self {
        // `from_bytes` lower-cases and never panics (unlike `from_static` with "X-DD-AUTH-TOKEN").
        if let (Ok(name), Ok(mut value)) = (
            HeaderName::from_bytes(name.as_bytes()),
            HeaderValue::from_str(value),
        ) {
            let secret = matches!(
                name.as_str(),
                "api-token" | "x-auth-token" | "authorization" | "x-dd-auth-token" | "cookie"
            );
            value.set_sensitive(secret);
            self.headers.insert(name, value);
        }
        self
    }

    /// Sends `body` as JSON.
    pub fn json(mut self, body: &serde_json::Value) -> Self {
        self.body = Some(body.to_string().into_bytes());
        self.headers.insert(
            reqwest::header::CONTENT_TYPE,
            HeaderValue::from_static("application/json"),
        );
        self
    }

    /// Accepts a 2xx response without a body (logout, DELETE) instead of failing it later.
    pub fn allow_empty(mut self) -> Self {
        self.allow_empty = true;
        self
    }

    /// Sends the request. Only 2xx answers are `Ok`; the body is read fully (up to
    /// [`MAX_BODY_BYTES`]). An empty 2xx body is [`HttpError::EmptyBody`] unless
    /// [`Request::allow_empty`] was set.
    pub async fn send(self) -> Result<Response, HttpError> {
        let endpoint = self.path.split('?').next().unwrap_or_default().to_owned();
        let timeout_ms = u64::try_from(self.client.timeout.as_millis()).unwrap_or(u64::MAX);
        let mut req = self
            .client
            .client
            .request(self.method, self.client.url(&self.path))
            .headers(self.headers)
            .header(reqwest::header::ACCEPT, "application/json");
        if !self.query.is_empty() {
            req = req.query(&self.query);
        }
        if let Some(body) = self.body {
            req = req.body(body);
        }
        let mut resp = req
            .send()
            .await
            .map_err(|e| classify(&endpoint, timeout_ms, &e))?;
        let status = resp.status().as_u16();
        let headers = resp.headers().clone();
        if let Some(len) = resp.content_length()
            && len > MAX_BODY_BYTES as u64
        {
            return Err(HttpError::TooLarge {
                endpoint,
                limit: MAX_BODY_BYTES,
            });
        }
        let mut body = Vec::new();
        loop {
            match resp.chunk().await {
                Ok(Some(chunk)) => {
                    if body.len() + chunk.len() > MAX_BODY_BYTES {
                        return Err(HttpError::TooLarge {
                            endpoint,
                            limit: MAX_BODY_BYTES,
                        });
                    }
                    body.extend_from_slice(&chunk);
                }
                Ok(None) => break,
                Err(e) => return Err(classify(&endpoint, timeout_ms, &e)),
            }
        }
        if !(200..300).contains(&status) {
            return Err(HttpError::Status {
                endpoint,
                status,
                excerpt: excerpt(&body),
            });
        }
        if body.iter().all(u8::is_ascii_whitespace) && !self.allow_empty {
            return Err(HttpError::EmptyBody { endpoint });
        }
        Ok(Response {
            endpoint,
            status,
            headers,
            body: Bytes::from(body),
        })
    }
}

/// Sorts a reqwest error into connect / timeout / TLS by walking its source chain.
fn classify(endpoint: &str, timeout_ms: u64, err: &reqwest::Error) -> HttpError {
    let endpoint = endpoint.to_owned();
    if err.is_timeout() {
        return HttpError::Timeout {
            endpoint,
            timeout_ms,
        };
    }
    let mut chain = Vec::new();
    let mut source: Option<&(dyn std::error::Error + 'static)> = Some(err);
    let mut tls = false;
    let mut closed = false;
    while let Some(e) = source {
        if e.downcast_ref::<rustls::Error>().is_some() {
            tls = true;
        }
        if let Some(io) = e.downcast_ref::<std::io::Error>() {
            use std::io::ErrorKind;
            match io.kind() {
                ErrorKind::TimedOut => {
                    return HttpError::Timeout {
                        endpoint,
                        timeout_ms,
                    };
                }
                // The peer hung up (also mid-TLS, "closed without close_notify"): not a TLS problem.
                ErrorKind::UnexpectedEof
                | ErrorKind::ConnectionReset
                | ErrorKind::ConnectionAborted
                | ErrorKind::BrokenPipe => {
                    closed = true;
                }
                _ => {}
            }
            if io
                .get_ref()
                .is_some_and(|inner| inner.is::<rustls::Error>())
            {
                tls = true;
            }
        }
        chain.push(e.to_string());
        source = e.source();
    }
    // The innermost messages say the most ("invalid peer certificate: UnknownIssuer").
    chain.dedup();
    let reason = chain
        .iter()
        .rev()
        .take(2)
        .rev()
        .cloned()
        .collect::<Vec<_>>()
        .join(": ");
    let reason = excerpt(reason.as_bytes());
    let lower = reason.to_ascii_lowercase();
    if !closed && (tls || lower.contains("certificate") || lower.contains("handshake")) {
        HttpError::Tls { endpoint, reason }
    } else {
        HttpError::Connect { endpoint, reason }
    }
}

/// A 2xx response with its body read.
#[derive(Debug, Clone)]
pub struct Response {
    /// The request path.
    pub endpoint: String,
    pub status: u16,
    pub headers: HeaderMap,
    pub body: Bytes,
}

impl Response {
    /// A header as text, if present and valid UTF-8.
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers.get(name).and_then(|v| v.to_str().ok())
    }

    /// Decodes the body as `T`; invalid JSON or a wrong shape is [`HttpError::Decode`].
    pub fn json<T: DeserializeOwned>(&self) -> Result<T, HttpError> {
        decode(&self.endpoint, &self.body)
    }
}

/// Decodes untrusted JSON; the error carries serde's message (line, column) and a body excerpt.
pub fn decode<T: DeserializeOwned>(endpoint: &str, body: &[u8]) -> Result<T, HttpError> {
    if body.iter().all(u8::is_ascii_whitespace) {
        return Err(HttpError::EmptyBody {
            endpoint: endpoint.to_owned(),
        });
    }
    serde_json::from_slice(body).map_err(|e| HttpError::Decode {
        endpoint: endpoint.to_owned(),
        reason: format!("{e}; body starts: {}", excerpt(&body[..body.len().min(80)])),
    })
}

// ---------------------------------------------------------------------------------------------
// Sessions
// ---------------------------------------------------------------------------------------------

/// A vendor session token kept across polls. Its `Debug` never shows the token.
#[derive(Default)]
pub struct Session {
    token: Option<String>,
    renewed_this_poll: bool,
    /// Logins performed over the adapter's life (first login and renewals).
    pub logins: u64,
}

impl fmt::Debug for Session {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Session")
            .field("token", &self.token.as_ref().map(|_| "[redacted]"))
            .field("logins", &self.logins)
            .finish()
    }
}

impl Session {
    /// Resets the renewal budget: one renewal per poll.
    pub fn begin_poll(&mut self) {
        self.renewed_this_poll = false;
    }

    pub fn token(&self) -> Option<&str> {
        self.token.as_deref()
    }

    pub fn set(&mut self, token: String) {
        self.token = Some(token);
    }

    /// Forgets the token (after logout, or when the server rejected it).
    pub fn clear(&mut self) -> Option<String> {
        self.token.take()
    }

    pub fn is_active(&self) -> bool {
        self.token.is_some()
    }
}

/// Sends the request built by `call(token)` with a session token. Logs in first when there is no
/// token (`login()` builds the login request, `extract` takes the token out of its response; a
/// `debug` authentication event). When the call answers 401 and no renewal happened yet in this
/// poll, it logs in again (an `info` authentication event "session rejected, logging in again")
/// and retries once. A failing login, or a 401 after the renewal, returns that error (its
/// [`HttpError::status`] is `auth_failed` for 401/403) and forgets the token.
///
/// The closures are plain (not async) so the poll future stays `Send` for `tokio::spawn`.
pub async fn session_call<'a>(
    session: &mut Session,
    ctx: &mut PollContext,
    login: impl Fn() -> Result<Request<'a>, HttpError>,
    extract: impl Fn(&Response) -> Result<String, HttpError>,
    call: impl Fn(&str) -> Request<'a>,
) -> Result<Response, HttpError> {
    let mut renewed_now = false;
    loop {
        let token = match session.token.clone() {
            Some(token) => token,
            None => {
                let resp = login()?.send().await?;
                let token = extract(&resp)?;
                session.logins += 1;
                ctx.push(EventRecord {
                    level: Level::Debug,
                    category: Category::Authentication,
                    message: format!("{}: logged in, new session", resp.endpoint),
                    details: None,
                    http_status: Some(resp.status),
                    endpoint: Some(resp.endpoint.clone()),
                });
                session.token = Some(token.clone());
                token
            }
        };
        match call(&token).send().await {
            Err(e) if e.is_unauthorized() => {
                session.token = None;
                if session.renewed_this_poll || renewed_now {
                    return Err(e);
                }
                session.renewed_this_poll = true;
                renewed_now = true;
                ctx.push(EventRecord {
                    level: Level::Info,
                    category: Category::Authentication,
                    message: format!(
                        "{}: session rejected (HTTP 401), logging in again",
                        e.endpoint()
                    ),
                    details: None,
                    http_status: Some(401),
                    endpoint: Some(e.endpoint().to_owned()),
                });
            }
            other => return other,
        }
    }
}

/// Runs `call` with a session token: logs in first when there is no token; when `call` answers
/// 401 and no renewal happened yet in this poll, logs in again (an `info` authentication event
/// "session expired, renewing") and retries once. A failing login, or a 401 after the renewal,
/// returns the error (its [`HttpError::status`] is `auth_failed` for 401/403) and clears the token.
///
/// `login` returns the new token; it may push its own events into the context.
///
/// **Caution:** async closures taking references (`&str`, `&mut PollContext`) make the calling
/// future fail the `Send` check of `tokio::spawn` (a rustc limitation with higher-ranked
/// lifetimes). The scheduler spawns polls, so prefer [`session_call`], which takes plain closures.
pub async fn with_session<T>(
    session: &mut Session,
    ctx: &mut PollContext,
    mut login: impl AsyncFnMut(&mut PollContext) -> Result<String, HttpError>,
    mut call: impl AsyncFnMut(&str) -> Result<T, HttpError>,
) -> Result<T, HttpError> {
    if session.token.is_none() {
        let token = login(ctx).await?;
        session.logins += 1;
        session.token = Some(token);
    }
    let token = session.token.clone().unwrap_or_default();
    match call(&token).await {
        Err(e) if e.is_unauthorized() && !session.renewed_this_poll => {
            session.renewed_this_poll = true;
            session.token = None;
            ctx.push(EventRecord {
                level: Level::Info,
                category: Category::Authentication,
                message: format!(
                    "{}: session rejected (HTTP 401), logging in again",
                    e.endpoint()
                ),
                details: None,
                http_status: Some(401),
                endpoint: Some(e.endpoint().to_owned()),
            });
            let token = login(ctx).await?;
            session.logins += 1;
            session.token = Some(token.clone());
            let result = call(&token).await;
            if matches!(&result, Err(e) if e.is_unauthorized()) {
                session.token = None;
            }
            result
        }
        Err(e) => {
            if e.is_unauthorized() {
                session.token = None;
            }
            Err(e)
        }
        ok => ok,
    }
}

// ---------------------------------------------------------------------------------------------
// Poll context
// ---------------------------------------------------------------------------------------------

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

    pub fn is_degraded(&self) -> bool {
        !self.degradations.is_empty()
    }

    /// The degradations joined with "; ", or `None` on a clean poll.
    pub fn error_text(&self) -> Option<String> {
        (!self.degradations.is_empty())
            .then(|| format!("degraded: {}", self.degradations.join("; ")))
    }

    pub fn elapsed_ms(&self) -> u64 {
        u64::try_from(self.started.elapsed().as_millis()).unwrap_or(u64::MAX)
    }

    pub fn events(&self) -> &[EventRecord] {
        &self.events
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
}

// ---------------------------------------------------------------------------------------------
// Transitions
// ---------------------------------------------------------------------------------------------

/// The last complete set of open alerts of a system. A snapshot carries the full set of open
/// alerts and the writer clears every alert missing from a newer one, so when the alert query
/// fails the adapter reports the last known set ("unchanged") instead of none ("all cleared");
/// the poll is marked degraded by the failed call itself.
#[derive(Debug, Default, Clone)]
pub struct AlertMemory(Vec<Alert>);

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

// ---------------------------------------------------------------------------------------------
// Paging
// ---------------------------------------------------------------------------------------------

/// Drives cursor-style paging with loop guards. Usage:
///
/// ```ignore
/// let mut pager = Pager::new(&path);
/// let mut all = Vec::new();
/// while let Some(cursor) = pager.next_cursor() {      // None once the last page was read
///     let page = fetch(cursor).await?;                 // cursor: Option<C>, None for page one
///     all.extend(page.items);
///     pager.advance(page.next)?;                       // Err on a repeated cursor or > MAX_PAGES
/// }
/// ```
#[derive(Debug)]
pub struct Pager<C> {
    endpoint: String,
    cursor: Option<C>,
    seen: Vec<C>,
    pages: usize,
    done: bool,
}

impl<C: Clone + PartialEq> Pager<C> {
    pub fn new(endpoint: &str) -> Pager<C> {
        Pager {
            endpoint: endpoint.to_owned(),
            cursor: None,
            seen: Vec::new(),
            pages: 0,
            done: false,
        }
    }

    /// The cursor of the page to fetch next (`Some(None)` for the first page), or `None` when done.
    pub fn next_cursor(&self) -> Option<Option<C>> {
        (!self.done).then(|| self.cursor.clone())
    }

    /// Records the `next` cursor of the page just read (`None` on the last page).
    pub fn advance(&mut self, next: Option<C>) -> Result<(), HttpError> {
        self.pages += 1;
        match next {
            None => {
                self.done = true;
                Ok(())
            }
            Some(_) if self.pages >= MAX_PAGES => {
                self.done = true;
                Err(HttpError::Protocol {
                    endpoint: self.endpoint.clone(),
                    reason: format!("more than {MAX_PAGES} pages"),
                })
            }
            Some(next) if self.seen.contains(&next) => {
                self.done = true;
                Err(HttpError::Protocol {
                    endpoint: self.endpoint.clone(),
                    reason: "paging cursor repeated".into(),
                })
            }
            Some(next) => {
                self.seen.push(next.clone());
                self.cursor = Some(next);
                Ok(())
            }
        }
    }

    /// Pages read so far.
    pub fn pages(&self) -> usize {
        self.pages
    }
}

/// One page: its items and the cursor of the next page (`None` on the last page).
#[derive(Debug)]
pub struct Page<T, C> {
    pub items: Vec<T>,
    pub next: Option<C>,
}

/// Collects all pages with [`Pager`]: `fetch(None)` gets the first page, `fetch(Some(cursor))`
/// the following ones. The cursor is passed by value, which keeps the future `Send`.
pub async fn paginate<T, C: Clone + PartialEq>(
    endpoint: &str,
    mut fetch: impl AsyncFnMut(Option<C>) -> Result<Page<T, C>, HttpError>,
) -> Result<Vec<T>, HttpError> {
    let mut all = Vec::new();
    let mut pager = Pager::new(endpoint);
    while let Some(cursor) = pager.next_cursor() {
        let page = fetch(cursor).await?;
        all.extend(page.items);
        pager.advance(page.next)?;
    }
    Ok(all)
}

/// Pure REST 2.x list envelope: `{continuation_token, items[], more_items_remaining, total_item_count}`.
/// Page with `limit` and `continuation_token` (see [`pure_next_token`]).
#[derive(Debug, Deserialize)]
pub struct PureList<T> {
    #[serde(default = "Vec::new")]
    pub items: Vec<T>,
    #[serde(default)]
    pub continuation_token: Option<String>,
    #[serde(default)]
    pub more_items_remaining: Option<bool>,
    #[serde(default)]
    pub total_item_count: Option<u64>,
}

/// The continuation token of the next Pure page: the `x-next-token` header or the body's
/// `continuation_token`; `None` when `more_items_remaining` is false or no token was given.
pub fn pure_next_token<T>(resp: &Response, list: &PureList<T>) -> Option<String> {
    if list.more_items_remaining == Some(false) {
        return None;
    }
    resp.header("x-next-token")
        .map(str::to_owned)
        .or_else(|| list.continuation_token.clone())
        .filter(|t| !t.is_empty())
}

/// ONTAP collection envelope: `{records[], num_records, _links: {self, next?}}`. Page with
/// `max_records` and follow [`OntapCollection::next_href`].
#[derive(Debug, Deserialize)]
pub struct OntapCollection<T> {
    #[serde(default = "Vec::new")]
    pub records: Vec<T>,
    #[serde(default)]
    pub num_records: Option<u64>,
    #[serde(default)]
    pub _links: Option<OntapLinks>,
}

#[derive(Debug, Deserialize)]
pub struct OntapLinks {
    #[serde(default)]
    pub next: Option<OntapHref>,
}

#[derive(Debug, Deserialize)]
pub struct OntapHref {
    pub href: String,
}

impl<T> OntapCollection<T> {
    /// The `_links.next.href` of this page (a path plus query, e.g.
    /// `/api/storage/disks?start.uuid=...&max_records=100`), if there is a next page.
    pub fn next_href(&self) -> Option<&str> {
        self._links
            .as_ref()?
            .next
            .as_ref()
            .map(|n| n.href.as_str())
            .filter(|h| !h.is_empty())
    }
}

/// Splits an ONTAP `href` into its path and decoded query pairs, to feed [`HttpClient::request`]
/// and [`Request::query`]. Only relative hrefs (starting with `/`) are accepted, so a hostile
/// server cannot send us elsewhere.
pub fn split_href(href: &str) -> Option<(String, Vec<(String, String)>)> {
    if !href.starts_with('/') || href.starts_with("//") {
        return None;
    }
    let (path, query) = href.split_once('?').unwrap_or((href, ""));
    let pairs = query
        .split('&')
        .filter(|p| !p.is_empty())
        .map(|p| {
            let (k, v) = p.split_once('=').unwrap_or((p, ""));
            (percent_decode(k), percent_decode(v))
        })
        .collect();
    Some((path.to_owned(), pairs))
}

/// Decodes one key or value of a URL query string: `%XX` becomes that byte and `+` a space; a
/// `%` not followed by two hex digits is kept as is, and invalid UTF-8 is replaced (lossy).
/// Shared with the simulator (`sdash_testkit::sim`), which parses the queries it is sent.
pub fn percent_decode(text: &str) -> String {
    let bytes = text.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        match bytes[i] {
            b'%' if i + 2 < bytes.len() => {
                let hex = std::str::from_utf8(&bytes[i + 1..i + 3])
                    .ok()
                    .and_then(|h| u8::from_str_radix(h, 16).ok());
                match hex {
                    Some(b) => {
                        out.push(b);
                        i += 3;
                    }
                    None => {
                        out.push(b'%');
                        i += 1;
                    }
                }
            }
            b'+' => {
                out.push(b' ');
                i += 1;
            }
            b => {
                out.push(b);
                i += 1;
            }
        }
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// DataDomain `paging_info` (`page` is 0-based; ask with `page` and `size`).
#[derive(Debug, Clone, Deserialize)]
pub struct DdPagingInfo {
    #[serde(default)]
    pub current_page: Option<u64>,
    #[serde(default)]
    pub page_entries: Option<u64>,
    #[serde(default)]
    pub total_entries: Option<u64>,
    #[serde(default)]
    pub page_size: Option<u64>,
}

impl DdPagingInfo {
    /// The next page number, or `None` when this was the last page (or the info is incomplete).
    pub fn next_page(&self) -> Option<u64> {
        let current = self.current_page?;
        let size = self.page_size.filter(|s| *s > 0)?;
        let total = self.total_entries?;
        let seen = current.checked_add(1)?.checked_mul(size)?;
        (seen < total && self.page_entries.unwrap_or(size) > 0).then_some(current + 1)
    }
}

// ---------------------------------------------------------------------------------------------
// Adapter glue (added for the ONTAP, StorageGRID and DataDomain adapters; additive)
// ---------------------------------------------------------------------------------------------

impl PollContext {
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
    /// file, an unset variable): an `error` authentication event and the failed snapshot with
    /// status `error` (a configuration problem; nothing was sent to the system).
    pub fn credentials_failed(&mut self, vendor: Vendor, reason: &str) -> Snapshot {
        let message = format!("cannot read the credentials: {reason}");
        self.event(Level::Error, Category::Authentication, message.clone());
        Snapshot::failed(vendor, Status::Error, message, self.elapsed_ms())
    }
}

impl StatusTracker {
    /// Observes the poll's final snapshot (transition events) and hands back the snapshot and
    /// all the poll's events.
    pub fn finish(
        &mut self,
        snapshot: Snapshot,
        mut ctx: PollContext,
    ) -> (Snapshot, Vec<EventRecord>) {
        self.observe(&snapshot, &mut ctx);
        (snapshot, ctx.into_events())
    }
}

/// The worst health of some components (`ok` when there are none).
pub fn worst_health<'a>(
    components: impl IntoIterator<Item = &'a sdash_proto::Component>,
) -> Health {
    components
        .into_iter()
        .fold(Health::Ok, |acc, c| acc.worst(c.status))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn excerpts_are_short_and_single_line() {
        let body = format!("<html>\n<body>{}</body></html>", "x".repeat(1000));
        let e = excerpt(body.as_bytes());
        assert!(e.chars().count() <= EXCERPT_CHARS + 1, "{e}");
        assert!(!e.contains('\n'));
        assert!(e.starts_with("<html> <body>"));
        assert_eq!(excerpt(&[0xff, 0xfe, b'a']), "��a");
    }

    #[test]
    fn errors_map_to_status_and_category() {
        let s = |status| HttpError::Status {
            endpoint: "/api/x".into(),
            status,
            excerpt: String::new(),
        };
        assert_eq!(s(401).status(), Status::AuthFailed);
        assert_eq!(s(403).category(), Category::Authentication);
        assert_eq!(s(500).status(), Status::Error);
        assert_eq!(s(429).category(), Category::ApiCall);
        let t = HttpError::Timeout {
            endpoint: "/a".into(),
            timeout_ms: 5,
        };
        assert_eq!(
            (t.status(), t.category()),
            (Status::Unreachable, Category::Connection)
        );
        let d = decode::<Vec<u8>>("/a", b"<html>").expect_err("not json");
        assert_eq!(
            (d.status(), d.category()),
            (Status::Error, Category::DataQuery)
        );
        assert!(matches!(
            decode::<Vec<u8>>("/a", b" "),
            Err(HttpError::EmptyBody { .. })
        ));
        let ev = s(500).event(Level::Error);
        assert_eq!(ev.endpoint.as_deref(), Some("/api/x"));
        assert_eq!(ev.http_status, Some(500));
        assert!(
            ev.message.contains("HTTP 500 Internal Server Error"),
            "{}",
            ev.message
        );
    }

    #[test]
    fn hrefs_split_and_reject_absolute_urls() {
        let (path, q) =
            split_href("/api/storage/disks?start.uuid=a%20b&max_records=2").expect("relative");
        assert_eq!(path, "/api/storage/disks");
        assert_eq!(
            q,
            vec![
                ("start.uuid".into(), "a b".into()),
                ("max_records".into(), "2".into())
            ]
        );
        assert!(split_href("https://evil.example/api").is_none());
        assert!(split_href("//evil.example/api").is_none());
        assert_eq!(percent_decode("%4"), "%4");
        assert_eq!(percent_decode("%zz%41"), "%zzA");
    }

    #[test]
    fn dd_paging() {
        let p = DdPagingInfo {
            current_page: Some(0),
            page_entries: Some(2),
            total_entries: Some(5),
            page_size: Some(2),
        };
        assert_eq!(p.next_page(), Some(1));
        let p = DdPagingInfo {
            current_page: Some(2),
            page_entries: Some(1),
            total_entries: Some(5),
            page_size: Some(2),
        };
        assert_eq!(p.next_page(), None);
    }

    #[test]
    fn pager_follows_and_guards() {
        let pages = [vec![1, 2], vec![3], vec![4]];
        let mut pager = Pager::new("/x");
        let mut all = Vec::new();
        while let Some(cursor) = pager.next_cursor() {
            let i: usize = cursor.unwrap_or(0);
            all.extend(pages[i].clone());
            pager
                .advance((i + 1 < pages.len()).then_some(i + 1))
                .expect("no loop");
        }
        assert_eq!(all, vec![1, 2, 3, 4]);
        assert_eq!(pager.pages(), 3);
        let mut looping = Pager::new("/x");
        assert!(looping.advance(Some(1)).is_ok());
        assert!(matches!(
            looping.advance(Some(1)),
            Err(HttpError::Protocol { .. })
        ));
        assert_eq!(looping.next_cursor(), None);
    }

    /// A plain-HTTP server on a free port that answers every connection with `head` followed by
    /// `body_len` bytes of `x`.
    async fn raw_server(head: &'static str, body_len: usize) -> String {
        use tokio::io::{AsyncReadExt, AsyncWriteExt};
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind");
        let addr = listener.local_addr().expect("addr");
        tokio::spawn(async move {
            while let Ok((mut stream, _)) = listener.accept().await {
                tokio::spawn(async move {
                    let mut buf = [0u8; 4096];
                    let _ = stream.read(&mut buf).await;
                    let _ = stream.write_all(head.as_bytes()).await;
                    let chunk = vec![b'x'; 64 * 1024];
                    let mut left = body_len;
                    while left > 0 {
                        let n = left.min(chunk.len());
                        if stream.write_all(&chunk[..n]).await.is_err() {
                            break;
                        }
                        left -= n;
                    }
                });
            }
        });
        format!("http://{addr}/base")
    }

    fn plain_config(address: String) -> SystemConfig {
        SystemConfig {
            id: "t".into(),
            name: "t".into(),
            vendor: Vendor::Pure,
            address,
            interval: Duration::from_secs(60),
            tags: Default::default(),
            enabled: true,
            tls: Default::default(),
            auth: Default::default(),
            proxy: None,
            timeout: Duration::from_secs(5),
        }
    }

    #[tokio::test]
    async fn oversized_bodies_are_refused() {
        // Announced too large.
        let url = raw_server("HTTP/1.1 200 OK\r\ncontent-length: 99999999999\r\n\r\n", 10).await;
        let client = HttpClient::new(&plain_config(url)).expect("client");
        let err = client.get("/api/x").send().await.expect_err("too large");
        assert_eq!(
            err,
            HttpError::TooLarge {
                endpoint: "/api/x".into(),
                limit: MAX_BODY_BYTES
            }
        );
        // Not announced, streamed until the connection closes.
        let url = raw_server(
            "HTTP/1.1 200 OK\r\nconnection: close\r\n\r\n",
            MAX_BODY_BYTES + 100_000,
        )
        .await;
        let client = HttpClient::new(&plain_config(url)).expect("client");
        let err = client
            .get("/api/y?q=1")
            .send()
            .await
            .expect_err("too large");
        assert!(
            matches!(err, HttpError::TooLarge { ref endpoint, .. } if endpoint == "/api/y"),
            "{err:?}"
        );
        assert_eq!(err.category(), Category::DataQuery);
    }
}
