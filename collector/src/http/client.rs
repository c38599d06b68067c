//! The HTTPS client bound to one system: the shared connection pool ([`HttpClient::new`]), the
//! request builder ([`Request`]), the response with its body read ([`Response`]), the sorting of
//! transport failures into [`HttpError`] variants, and URL query decoding.

use std::fmt;
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use reqwest::Method;
use reqwest::header::{HeaderMap, HeaderName, HeaderValue};
use serde::de::DeserializeOwned;

use super::errors::{decode, excerpt};
use super::tls::{install_crypto_provider, tls_config};
use super::{HttpError, MAX_BODY_BYTES, SetupError};
use crate::inventory::SystemConfig;

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

#[cfg(test)]
mod tests {
    use super::*;
    use sdash_proto::{Category, Vendor};

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
