//! Webhook signatures: HMAC-SHA256 with the receiver's secret over `<timestamp>.<body>`, sent as
//!
//! ```text
//! X-Sdash-Timestamp: 1764690000            (Unix seconds when the request was signed)
//! X-Sdash-Signature: sha256=<64 hex digits>
//! ```
//!
//! A receiver recomputes the HMAC over the timestamp header, a `.`, and the raw body, compares it
//! in constant time, refuses a timestamp further than its tolerance from its clock (an old
//! request replayed), and remembers the signatures it accepted within the tolerance (the same
//! request replayed at once). [`verify`] does the first two, [`ReplayGuard`] all three.

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use hmac::{KeyInit, Mac};

type HmacSha256 = hmac::Hmac<sha2::Sha256>;

pub const TIMESTAMP_HEADER: &str = "X-Sdash-Timestamp";
pub const SIGNATURE_HEADER: &str = "X-Sdash-Signature";
/// The delivery's id (also in the body as `delivery_id`): the same on every retry of it.
pub const DELIVERY_HEADER: &str = "X-Sdash-Delivery";
/// How far a timestamp may be from the receiver's clock by default.
pub const DEFAULT_TOLERANCE: Duration = Duration::from_secs(300);

/// Why a request is refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SignatureError {
    #[error("the timestamp header is not a number of seconds")]
    BadTimestamp,
    #[error("the signature header is not sha256=<hex>")]
    BadSignature,
    #[error("the timestamp is {0} s away from now, more than the tolerance (a replay?)")]
    Stale(u64),
    #[error("the signature does not match the body (tampered, or another secret)")]
    Mismatch,
    #[error("this request was already accepted (a replay)")]
    Replayed,
}

fn mac(secret: &[u8], timestamp: &str, body: &[u8]) -> HmacSha256 {
    // HMAC takes keys of any length; this cannot fail.
    let mut mac = match HmacSha256::new_from_slice(secret) {
        Ok(m) => m,
        Err(_) => unreachable!("HMAC accepts every key length"),
    };
    mac.update(timestamp.as_bytes());
    mac.update(b".");
    mac.update(body);
    mac
}

/// The `X-Sdash-Signature` value for `body` signed at `timestamp` (Unix seconds, as sent in
/// `X-Sdash-Timestamp`).
pub fn sign(secret: &[u8], timestamp: &str, body: &[u8]) -> String {
    format!(
        "sha256={}",
        hex::encode(mac(secret, timestamp, body).finalize().into_bytes())
    )
}

fn unix_seconds(t: SystemTime) -> u64 {
    t.duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0)
}

/// Checks a request's headers against its raw body: the signature matches (constant-time) and
/// the timestamp is within `tolerance` of `now`.
pub fn verify(
    secret: &[u8],
    timestamp: &str,
    signature: &str,
    body: &[u8],
    now: SystemTime,
    tolerance: Duration,
) -> Result<(), SignatureError> {
    let sent: u64 = timestamp
        .trim()
        .parse()
        .map_err(|_| SignatureError::BadTimestamp)?;
    let hex_part = signature
        .trim()
        .strip_prefix("sha256=")
        .ok_or(SignatureError::BadSignature)?;
    let given = hex::decode(hex_part).map_err(|_| SignatureError::BadSignature)?;
    mac(secret, timestamp.trim(), body)
        .verify_slice(&given)
        .map_err(|_| SignatureError::Mismatch)?;
    let skew = unix_seconds(now).abs_diff(sent);
    if skew > tolerance.as_secs() {
        return Err(SignatureError::Stale(skew));
    }
    Ok(())
}

/// [`verify`] plus memory of what was accepted within the tolerance, so that a request replayed
/// before its timestamp goes stale is refused too. One per receiving endpoint.
pub struct ReplayGuard {
    secret: Vec<u8>,
    tolerance: Duration,
    seen: Mutex<HashMap<String, u64>>,
}

impl ReplayGuard {
    pub fn new(secret: &[u8], tolerance: Duration) -> ReplayGuard {
        ReplayGuard {
            secret: secret.to_vec(),
            tolerance,
            seen: Mutex::new(HashMap::new()),
        }
    }

    /// Verifies one request (see [`verify`]) and refuses one whose signature was accepted before.
    pub fn check(
        &self,
        timestamp: &str,
        signature: &str,
        body: &[u8],
        now: SystemTime,
    ) -> Result<(), SignatureError> {
        verify(
            &self.secret,
            timestamp,
            signature,
            body,
            now,
            self.tolerance,
        )?;
        let now_s = unix_seconds(now);
        let mut seen = self.seen.lock().unwrap_or_else(|p| p.into_inner());
        // Older than the tolerance: refused as stale anyway, no need to remember them.
        seen.retain(|_, at| now_s.abs_diff(*at) <= self.tolerance.as_secs());
        if seen.insert(signature.trim().to_owned(), now_s).is_some() {
            return Err(SignatureError::Replayed);
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sign_then_verify() {
        let now = SystemTime::now();
        let ts = unix_seconds(now).to_string();
        let body = br#"{"changes":[]}"#;
        let sig = sign(b"k", &ts, body);
        assert!(sig.starts_with("sha256=") && sig.len() == 7 + 64);
        let ok = |ts: &str, sig: &str, body: &[u8], secret: &[u8]| {
            verify(secret, ts, sig, body, now, DEFAULT_TOLERANCE)
        };
        assert_eq!(ok(&ts, &sig, body, b"k"), Ok(()));
        assert_eq!(
            ok(&ts, &sig, br#"{"changes":[1]}"#, b"k"),
            Err(SignatureError::Mismatch)
        );
        assert_eq!(ok(&ts, &sig, body, b"other"), Err(SignatureError::Mismatch));
        // Changing the timestamp breaks the signature: it is signed too.
        let later = (unix_seconds(now) + 1).to_string();
        assert_eq!(ok(&later, &sig, body, b"k"), Err(SignatureError::Mismatch));
        assert_eq!(ok("x", &sig, body, b"k"), Err(SignatureError::BadTimestamp));
        assert_eq!(
            ok(&ts, "md5=00", body, b"k"),
            Err(SignatureError::BadSignature)
        );
        // A correctly signed but old request is refused.
        let old = (unix_seconds(now) - 301).to_string();
        let old_sig = sign(b"k", &old, body);
        assert_eq!(
            ok(&old, &old_sig, body, b"k"),
            Err(SignatureError::Stale(301))
        );

        let guard = ReplayGuard::new(b"k", DEFAULT_TOLERANCE);
        assert_eq!(guard.check(&ts, &sig, body, now), Ok(()));
        assert_eq!(
            guard.check(&ts, &sig, body, now),
            Err(SignatureError::Replayed)
        );
    }
}
