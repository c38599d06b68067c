//! The errors of the HTTP layer: why a client could not be built ([`SetupError`]) and why one
//! call failed ([`HttpError`]), with the snapshot status, event category and event each failure
//! means. Response bodies are untrusted: [`excerpt`] keeps a short, single-line, printable start.

use sdash_proto::{Category, EventRecord, Level, Status};
use serde::de::DeserializeOwned;

/// Characters of a response body kept in errors and events.
pub const EXCERPT_CHARS: usize = 200;

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
    /// The body is bigger than [`MAX_BODY_BYTES`](super::MAX_BODY_BYTES).
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
}
