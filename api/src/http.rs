//! Request parameters, errors and response helpers shared by every route.

use std::hash::{Hash, Hasher};

use schemars::JsonSchema;
use serde::Serialize;
use serde_json::Value;
use warp::http::{HeaderMap, HeaderValue, StatusCode, header};
use warp::reply::Response;

use crate::db::DbError;

/// Every failure a route can answer with; each becomes `{"error": "..."}` with its status.
#[derive(Debug, thiserror::Error)]
pub enum ApiError {
    #[error("{0}")]
    BadRequest(String),
    #[error("{0}")]
    NotFound(String),
    #[error("missing or invalid bearer token")]
    Unauthorized,
    /// The token is known but may not do this (a read token on a command route), or commands
    /// are disabled.
    #[error("{0}")]
    Forbidden(String),
    /// The methods the route allows (`Allow`).
    #[error("method not allowed")]
    MethodNotAllowed(&'static str),
    /// Too soon: try again after `retry_after_s` seconds (`Retry-After`).
    #[error("{message}")]
    TooManyRequests { message: String, retry_after_s: u64 },
    #[error("{0}")]
    Unavailable(String),
    /// A command route could not publish (NATS unavailable, no acknowledgement in time):
    /// `accepted` are the ids of the commands JetStream acknowledged before (bulk routes).
    #[error("{message}")]
    CommandsUnavailable {
        message: String,
        accepted: Vec<String>,
    },
    #[error("internal error")]
    Internal,
}

/// The body of every error response.
#[derive(Debug, Serialize, JsonSchema)]
#[schemars(rename = "Error")]
pub struct ErrorBody {
    pub error: String,
}

/// The body of a 503 from a command route: the error and the ids of the commands JetStream
/// accepted before the failure (empty: nothing was published).
#[derive(Debug, Serialize, JsonSchema)]
pub struct CommandsUnavailableBody {
    pub error: String,
    /// Commands published (and so applied) despite the error; empty: none.
    pub command_ids: Vec<String>,
}

impl ApiError {
    pub fn bad(msg: impl Into<String>) -> ApiError {
        ApiError::BadRequest(msg.into())
    }

    pub fn status(&self) -> StatusCode {
        match self {
            ApiError::BadRequest(_) => StatusCode::BAD_REQUEST,
            ApiError::NotFound(_) => StatusCode::NOT_FOUND,
            ApiError::Unauthorized => StatusCode::UNAUTHORIZED,
            ApiError::Forbidden(_) => StatusCode::FORBIDDEN,
            ApiError::MethodNotAllowed(_) => StatusCode::METHOD_NOT_ALLOWED,
            ApiError::TooManyRequests { .. } => StatusCode::TOO_MANY_REQUESTS,
            ApiError::Unavailable(_) | ApiError::CommandsUnavailable { .. } => {
                StatusCode::SERVICE_UNAVAILABLE
            }
            ApiError::Internal => StatusCode::INTERNAL_SERVER_ERROR,
        }
    }

    pub fn into_response(self) -> Response {
        let status = self.status();
        let mut resp = match &self {
            ApiError::CommandsUnavailable { message, accepted } => json_response(
                status,
                &CommandsUnavailableBody {
                    error: message.clone(),
                    command_ids: accepted.clone(),
                },
            ),
            _ => json_response(
                status,
                &ErrorBody {
                    error: self.to_string(),
                },
            ),
        };
        let headers = resp.headers_mut();
        headers.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
        match self {
            ApiError::Unauthorized => {
                headers.insert(
                    header::WWW_AUTHENTICATE,
                    HeaderValue::from_static("Bearer realm=\"sdash\""),
                );
            }
            ApiError::MethodNotAllowed(allow) => {
                headers.insert(header::ALLOW, HeaderValue::from_static(allow));
            }
            ApiError::TooManyRequests { retry_after_s, .. } => {
                headers.insert(header::RETRY_AFTER, HeaderValue::from(retry_after_s.max(1)));
            }
            ApiError::Unavailable(_) | ApiError::CommandsUnavailable { .. } => {
                headers.insert(header::RETRY_AFTER, HeaderValue::from_static("5"));
            }
            _ => {}
        }
        resp
    }
}

impl From<DbError> for ApiError {
    fn from(e: DbError) -> ApiError {
        match e {
            DbError::Column { .. } => {
                tracing::error!(error = %e, "a query and its row type disagree");
                ApiError::Internal
            }
            DbError::Timeout => {
                tracing::warn!(error = %e, "database query failed");
                ApiError::Unavailable("database query timed out".into())
            }
            DbError::Sqlx(_) | DbError::Url(_) => {
                tracing::warn!(error = %e, "database query failed");
                ApiError::Unavailable("database unavailable".into())
            }
        }
    }
}

pub type ApiResult<T> = Result<T, ApiError>;

/// A JSON response without caching headers.
pub fn json_response(status: StatusCode, body: &impl Serialize) -> Response {
    let bytes =
        serde_json::to_vec(body).unwrap_or_else(|_| b"{\"error\":\"encoding failed\"}".to_vec());
    let mut resp = Response::new(bytes.into());
    *resp.status_mut() = status;
    resp.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/json"),
    );
    resp
}

/// Bodies smaller than this are not worth compressing.
const GZIP_MIN_BYTES: usize = 1024;

/// Whether the request's `Accept-Encoding` allows gzip (`gzip` or `*`, not with `q=0`).
pub fn accepts_gzip(request: &HeaderMap) -> bool {
    request
        .get_all(header::ACCEPT_ENCODING)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','))
        .any(|item| {
            let mut parts = item.split(';').map(str::trim);
            let name = parts.next().unwrap_or("").to_ascii_lowercase();
            let refused = parts.any(|p| {
                p.strip_prefix("q=")
                    .is_some_and(|q| q.trim().parse::<f32>().map(|q| q <= 0.0).unwrap_or(false))
            });
            (name == "gzip" || name == "*") && !refused
        })
}

fn gzip(body: &[u8]) -> Option<Vec<u8>> {
    use std::io::Write;
    let mut encoder = flate2::write::GzEncoder::new(
        Vec::with_capacity(body.len() / 4),
        flate2::Compression::fast(),
    );
    encoder.write_all(body).ok()?;
    encoder.finish().ok()
}

/// A successful body with a strong ETag (304 when the client has it), a cache policy, and gzip
/// when the client accepts it (the compressed variant has its own ETag; `Vary: Accept-Encoding`).
pub fn cached(
    request: &HeaderMap,
    content_type: &'static str,
    body: Vec<u8>,
    cache_control: &'static str,
) -> Response {
    let mut hasher = std::hash::DefaultHasher::new();
    body.hash(&mut hasher);
    let tag = format!("{:016x}{:08x}", hasher.finish(), body.len());
    let compress = body.len() >= GZIP_MIN_BYTES && accepts_gzip(request);
    let etag = if compress {
        format!("\"{tag}-gz\"")
    } else {
        format!("\"{tag}\"")
    };
    let plain_etag = format!("\"{tag}\"");
    let gz_etag = format!("\"{tag}-gz\"");
    let matches = request
        .get(header::IF_NONE_MATCH)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| {
            v.split(',')
                .map(|t| t.trim().trim_start_matches("W/"))
                .any(|t| t == plain_etag || t == gz_etag || t == "*")
        });
    let mut resp = if matches {
        let mut r = Response::new(Vec::new().into());
        *r.status_mut() = StatusCode::NOT_MODIFIED;
        r
    } else {
        let compressed = if compress { gzip(&body) } else { None };
        let gzipped = compressed.is_some();
        let mut r = Response::new(compressed.unwrap_or(body).into());
        r.headers_mut()
            .insert(header::CONTENT_TYPE, HeaderValue::from_static(content_type));
        if gzipped {
            r.headers_mut()
                .insert(header::CONTENT_ENCODING, HeaderValue::from_static("gzip"));
        }
        r
    };
    let headers = resp.headers_mut();
    headers.insert(
        header::CACHE_CONTROL,
        HeaderValue::from_static(cache_control),
    );
    headers.insert(
        header::VARY,
        HeaderValue::from_static("Accept-Encoding, Authorization"),
    );
    if let Ok(v) = HeaderValue::from_str(&etag) {
        headers.insert(header::ETAG, v);
    }
    resp
}

/// A JSON body with ETag handling; API data is revalidated on every use (`no-cache`).
pub fn json_ok(request: &HeaderMap, body: &impl Serialize) -> Response {
    let bytes = serde_json::to_vec(body).unwrap_or_default();
    cached(request, "application/json", bytes, "no-cache")
}

/// Query parameters of one request, checked against the names the route accepts.
#[derive(Debug, Default)]
pub struct Params {
    pairs: Vec<(String, String)>,
}

/// Longest accepted parameter value.
const MAX_VALUE_LEN: usize = 512;

impl Params {
    /// Rejects names the route does not document and repeats of non-repeatable names.
    pub fn new(
        pairs: Vec<(String, String)>,
        allowed: &[crate::routes::ParamSpec],
    ) -> ApiResult<Params> {
        for (i, (k, v)) in pairs.iter().enumerate() {
            let Some(spec) = allowed.iter().find(|p| p.name == k) else {
                let mut names: Vec<&str> = allowed.iter().map(|p| p.name).collect();
                names.sort_unstable();
                return Err(ApiError::bad(format!(
                    "unknown query parameter {k:?} (accepted: {})",
                    if names.is_empty() {
                        "none".to_owned()
                    } else {
                        names.join(", ")
                    }
                )));
            };
            if v.len() > MAX_VALUE_LEN {
                return Err(ApiError::bad(format!(
                    "query parameter {k:?} is longer than {MAX_VALUE_LEN} characters"
                )));
            }
            if !spec.repeat && pairs[..i].iter().any(|(k2, _)| k2 == k) {
                return Err(ApiError::bad(format!(
                    "query parameter {k:?} given more than once"
                )));
            }
        }
        Ok(Params { pairs })
    }

    pub fn get(&self, name: &str) -> Option<&str> {
        self.pairs
            .iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.as_str())
    }

    pub fn all(&self, name: &str) -> Vec<&str> {
        self.pairs
            .iter()
            .filter(|(k, _)| k == name)
            .map(|(_, v)| v.as_str())
            .collect()
    }

    /// A positive integer no larger than `max`, or `default` when absent.
    pub fn int(&self, name: &str, default: i64, min: i64, max: i64) -> ApiResult<i64> {
        let Some(text) = self.get(name) else {
            return Ok(default);
        };
        let bad = || {
            ApiError::bad(format!(
                "{name} must be an integer from {min} to {max}, got {text:?}"
            ))
        };
        if text.is_empty() || text.len() > 12 || !text.bytes().all(|b| b.is_ascii_digit()) {
            return Err(bad());
        }
        let v: i64 = text.parse().map_err(|_| bad())?;
        if v < min || v > max {
            return Err(bad());
        }
        Ok(v)
    }

    /// An RFC 3339 time as ms since the epoch.
    pub fn time(&self, name: &str) -> ApiResult<Option<i64>> {
        match self.get(name) {
            None => Ok(None),
            Some(text) => sdash_proto::parse_rfc3339_ms(text)
                .filter(|ms| (0..=253_402_300_799_000).contains(ms))
                .map(Some)
                .ok_or_else(|| {
                    ApiError::bad(format!(
                        "{name} must be an RFC 3339 time like 2026-01-31T12:00:00Z, got {text:?}"
                    ))
                }),
        }
    }

    /// A comma-separated list of enum values (repeatable), each checked by `parse`.
    pub fn enums<T>(
        &self,
        name: &str,
        parse: impl Fn(&str) -> Option<T>,
        accepted: &[&str],
    ) -> ApiResult<Vec<T>> {
        let mut out = Vec::new();
        for value in self.all(name) {
            for part in value.split(',') {
                match parse(part.trim()) {
                    Some(v) => out.push(v),
                    None => {
                        return Err(ApiError::bad(format!(
                            "{name} must be one of {}, got {part:?}",
                            accepted.join(", ")
                        )));
                    }
                }
            }
        }
        Ok(out)
    }

    /// One enum value (or `default`).
    pub fn one_of<'a>(
        &self,
        name: &str,
        accepted: &[&'a str],
        default: &'a str,
    ) -> ApiResult<&'a str> {
        match self.get(name) {
            None => Ok(default),
            Some(v) => accepted.iter().find(|a| **a == v).copied().ok_or_else(|| {
                ApiError::bad(format!(
                    "{name} must be one of {}, got {v:?}",
                    accepted.join(", ")
                ))
            }),
        }
    }

    /// A system id (`[a-z0-9_-]{1,64}`).
    pub fn system_id(&self, name: &str) -> ApiResult<Option<String>> {
        match self.get(name) {
            None => Ok(None),
            Some(v) if sdash_proto::valid_system_id(v) => Ok(Some(v.to_owned())),
            Some(v) => Err(ApiError::bad(format!(
                "{name} must be a system id ([a-z0-9_-]{{1,64}}), got {v:?}"
            ))),
        }
    }

    /// `true` or `false`.
    pub fn boolean(&self, name: &str, default: bool) -> ApiResult<bool> {
        match self.get(name) {
            None => Ok(default),
            Some("true") | Some("1") => Ok(true),
            Some("false") | Some("0") => Ok(false),
            Some(v) => Err(ApiError::bad(format!(
                "{name} must be true or false, got {v:?}"
            ))),
        }
    }

    /// A tag key (`[A-Za-z0-9_.-]{1,64}`).
    pub fn tag_key(&self, name: &str) -> ApiResult<Option<String>> {
        match self.get(name) {
            None => Ok(None),
            Some(v) if valid_tag_key(v) => Ok(Some(v.to_owned())),
            Some(v) => Err(ApiError::bad(format!(
                "{name} must be a tag key ([A-Za-z0-9_.-]{{1,64}}), got {v:?}"
            ))),
        }
    }
}

pub fn valid_tag_key(key: &str) -> bool {
    !key.is_empty()
        && key.len() <= 64
        && key
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-' || b == b'.')
}

/// Encodes a cursor as opaque URL-safe text (hex of its JSON).
pub fn encode_cursor(value: &Value) -> String {
    let text = value.to_string();
    let mut out = String::with_capacity(text.len() * 2);
    for b in text.bytes() {
        out.push_str(&format!("{b:02x}"));
    }
    out
}

/// Decodes a cursor made by [`encode_cursor`]; 400 for anything else.
pub fn decode_cursor(text: &str) -> ApiResult<Value> {
    let bad =
        || ApiError::bad("cursor is malformed: pass next_cursor from a previous page unchanged");
    if !text.len().is_multiple_of(2) || text.len() > 1024 {
        return Err(bad());
    }
    let bytes = (0..text.len())
        .step_by(2)
        .map(|i| {
            text.get(i..i + 2)
                .and_then(|h| u8::from_str_radix(h, 16).ok())
        })
        .collect::<Option<Vec<u8>>>()
        .ok_or_else(bad)?;
    let value: Value = serde_json::from_slice(&bytes).map_err(|_| bad())?;
    if value.is_object() {
        Ok(value)
    } else {
        Err(bad())
    }
}

/// `used / total` as a percentage rounded to 0.01, `None` when total is zero or unknown.
pub fn percent(used: Option<i64>, total: Option<i64>) -> Option<f64> {
    match (used, total) {
        (Some(u), Some(t)) if t > 0 => Some(((u as f64) * 10_000.0 / (t as f64)).round() / 100.0),
        _ => None,
    }
}

/// One CSV field, quoted when needed (RFC 4180); text that a spreadsheet would run as a formula
/// is prefixed with `'`.
pub fn csv_field(text: &str) -> String {
    let guarded;
    let text = if text.starts_with(['=', '+', '-', '@', '\t', '\r']) && text.parse::<f64>().is_err()
    {
        guarded = format!("'{text}");
        guarded.as_str()
    } else {
        text
    };
    if text.contains([',', '"', '\n', '\r']) {
        format!("\"{}\"", text.replace('"', "\"\""))
    } else {
        text.to_owned()
    }
}

/// Appends one CSV record (CRLF line end).
pub fn csv_row(out: &mut String, fields: &[String]) {
    let line: Vec<String> = fields.iter().map(|f| csv_field(f)).collect();
    out.push_str(&line.join(","));
    out.push_str("\r\n");
}

/// Constant-time comparison of two byte strings (length is not hidden).
pub fn constant_time_eq(a: &[u8], b: &[u8]) -> bool {
    if a.len() != b.len() {
        return false;
    }
    a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn cursors_round_trip_and_garbage_is_rejected() {
        let v = json!({"t": 5, "id": "x"});
        assert_eq!(decode_cursor(&encode_cursor(&v)).ok(), Some(v));
        assert!(decode_cursor("zz").is_err());
        assert!(decode_cursor("abc").is_err());
        assert!(decode_cursor(&encode_cursor(&json!([1]))).is_err());
    }

    #[test]
    fn csv_quotes_and_guards() {
        assert_eq!(csv_field("plain"), "plain");
        assert_eq!(csv_field("a,b"), "\"a,b\"");
        assert_eq!(csv_field("say \"hi\""), "\"say \"\"hi\"\"\"");
        assert_eq!(csv_field("line\nbreak"), "\"line\nbreak\"");
        assert_eq!(csv_field("=SUM(A1)"), "'=SUM(A1)");
        assert_eq!(csv_field("-12.5"), "-12.5");
    }

    #[test]
    fn gzip_negotiation() {
        let mut h = HeaderMap::new();
        assert!(!accepts_gzip(&h));
        h.insert(
            header::ACCEPT_ENCODING,
            HeaderValue::from_static("br, gzip;q=0.8"),
        );
        assert!(accepts_gzip(&h));
        h.insert(
            header::ACCEPT_ENCODING,
            HeaderValue::from_static("gzip;q=0, br"),
        );
        assert!(!accepts_gzip(&h));
        h.insert(
            header::ACCEPT_ENCODING,
            HeaderValue::from_static("identity"),
        );
        assert!(!accepts_gzip(&h));
    }

    #[test]
    fn constant_time_compare() {
        assert!(constant_time_eq(b"secret", b"secret"));
        assert!(!constant_time_eq(b"secret", b"secreT"));
        assert!(!constant_time_eq(b"secret", b"secrets"));
    }
}
