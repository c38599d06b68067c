//! What the notifier remembers across restarts, in two NATS KV buckets (file storage):
//!
//! * `<bucket>` (default `sdash-notify`): one key `<change id>.<receiver>` per change handed to a
//!   receiver (value `sent` or `dead_lettered`), kept for the dedupe window (the bucket's max
//!   age), so a change redelivered after a crash is not sent again;
//! * `<bucket>-firing`: the conditions still firing per receiver (`<receiver>.<hash>` -> JSON
//!   [`Active`]), which Alertmanager gets again every resend interval and webhooks and email
//!   every repeat interval.
//!
//! The buckets' backing streams (`KV_<bucket>`) are created here: async-nats' KV creation
//! helpers cannot parse nats-server 2.9's account info.

use std::collections::BTreeMap;
use std::time::Duration;

use async_nats::jetstream::{self, kv, stream};
use futures::StreamExt;
use serde::{Deserialize, Serialize};
use sha2::Digest;

use crate::change::Change;

#[derive(Debug, thiserror::Error)]
#[error("notifier state (NATS KV {bucket}): {message}")]
pub struct StateError {
    pub bucket: String,
    pub message: String,
}

/// A condition firing at a receiver.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Active {
    /// The condition's key ([`crate::change::Condition::key`]).
    pub key: String,
    /// The change that opened it (or last changed it while firing).
    pub change: Change,
    /// Alertmanager labels of its alert.
    pub labels: BTreeMap<String, String>,
    /// When it started firing, ms.
    pub starts_at: i64,
    /// When it was last sent to the receiver, ms.
    pub last_sent: i64,
}

/// What happened to a change at one receiver.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Outcome {
    Sent,
    DeadLettered,
}

impl Outcome {
    fn as_str(self) -> &'static str {
        match self {
            Outcome::Sent => "sent",
            Outcome::DeadLettered => "dead_lettered",
        }
    }
}

pub struct StateStore {
    sent_bucket: String,
    sent: kv::Store,
    firing: kv::Store,
}

/// A change id as a key token: itself when it is one (UUIDs are), else a hash of it.
fn key_token(text: &str) -> String {
    let plain = !text.is_empty()
        && text.len() <= 64
        && text
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_');
    if plain { text.to_owned() } else { hash(text) }
}

fn hash(text: &str) -> String {
    hex::encode(&sha2::Sha256::digest(text.as_bytes())[..16])
}

fn bucket_config(bucket: &str, max_age: Duration) -> stream::Config {
    stream::Config {
        name: format!("KV_{bucket}"),
        subjects: vec![format!("$KV.{bucket}.>")],
        max_messages_per_subject: 1,
        max_age,
        // The duplicate window may not exceed max age.
        duplicate_window: if max_age.is_zero() {
            Duration::from_secs(120)
        } else {
            max_age.min(Duration::from_secs(120))
        },
        storage: stream::StorageType::File,
        discard: stream::DiscardPolicy::Old,
        allow_rollup: true,
        deny_delete: true,
        allow_direct: true,
        ..Default::default()
    }
}

/// Creates a bucket's stream or brings its max age in line, then opens it.
async fn open_bucket(
    js: &jetstream::Context,
    bucket: &str,
    max_age: Duration,
    replicas: usize,
) -> Result<kv::Store, StateError> {
    let error = |message: String| StateError {
        bucket: bucket.to_owned(),
        message,
    };
    let mut wanted = bucket_config(bucket, max_age);
    wanted.num_replicas = replicas.max(1);
    match js.get_stream(&wanted.name).await {
        Ok(existing) => {
            let have = existing.cached_info().config.clone();
            if have.max_age != wanted.max_age {
                let updated = stream::Config {
                    max_age: wanted.max_age,
                    duplicate_window: wanted.duplicate_window,
                    ..have
                };
                js.update_stream(&updated)
                    .await
                    .map_err(|e| error(format!("cannot update its max age: {e}")))?;
            }
        }
        Err(_) => {
            if let Err(e) = js.create_stream(wanted.clone()).await {
                // Another notifier may have made it at the same moment.
                if js.get_stream(&wanted.name).await.is_err() {
                    return Err(error(format!("cannot create it: {e}")));
                }
            }
        }
    }
    js.get_key_value(bucket)
        .await
        .map_err(|e| error(e.to_string()))
}

impl StateStore {
    /// Opens (creating when missing) `bucket` with max age `dedupe_window`, and `<bucket>-firing`.
    pub async fn open(
        js: &jetstream::Context,
        bucket: &str,
        dedupe_window: Duration,
        replicas: usize,
    ) -> Result<StateStore, StateError> {
        let sent = open_bucket(js, bucket, dedupe_window, replicas).await?;
        let firing = open_bucket(js, &format!("{bucket}-firing"), Duration::ZERO, replicas).await?;
        Ok(StateStore {
            sent_bucket: bucket.to_owned(),
            sent,
            firing,
        })
    }

    fn error(&self, message: String) -> StateError {
        StateError {
            bucket: self.sent_bucket.clone(),
            message,
        }
    }

    /// Whether `change_id` was already sent to (or dead-lettered for) `receiver`.
    pub async fn handled(&self, change_id: &str, receiver: &str) -> Result<bool, StateError> {
        let key = format!("{}.{receiver}", key_token(change_id));
        self.sent
            .get(&key)
            .await
            .map(|v| v.is_some())
            .map_err(|e| self.error(e.to_string()))
    }

    /// Records that `change_id` was handled at `receiver`.
    pub async fn record(
        &self,
        change_id: &str,
        receiver: &str,
        outcome: Outcome,
    ) -> Result<(), StateError> {
        let key = format!("{}.{receiver}", key_token(change_id));
        self.sent
            .put(&key, outcome.as_str().into())
            .await
            .map(|_| ())
            .map_err(|e| self.error(e.to_string()))
    }

    fn firing_key(receiver: &str, condition: &str) -> String {
        format!("{receiver}.{}", hash(condition))
    }

    /// Every firing condition, per receiver.
    pub async fn load_firing(&self) -> Result<Vec<(String, Active)>, StateError> {
        let mut keys = match self.firing.keys().await {
            Ok(keys) => keys,
            Err(e) => return Err(self.error(format!("listing firing conditions: {e}"))),
        };
        let mut found = Vec::new();
        while let Some(key) = keys.next().await {
            let key = key.map_err(|e| self.error(e.to_string()))?;
            let Some((receiver, _)) = key.split_once('.') else {
                continue;
            };
            let value = self
                .firing
                .get(&key)
                .await
                .map_err(|e| self.error(e.to_string()))?;
            let Some(value) = value else { continue };
            match serde_json::from_slice::<Active>(&value) {
                Ok(active) => found.push((receiver.to_owned(), active)),
                Err(e) => {
                    tracing::warn!(key, error = %e, "ignoring an unreadable firing condition")
                }
            }
        }
        Ok(found)
    }

    pub async fn put_firing(&self, receiver: &str, active: &Active) -> Result<(), StateError> {
        let value = serde_json::to_vec(active).map_err(|e| self.error(e.to_string()))?;
        self.firing
            .put(Self::firing_key(receiver, &active.key), value.into())
            .await
            .map(|_| ())
            .map_err(|e| self.error(e.to_string()))
    }

    pub async fn delete_firing(&self, receiver: &str, condition: &str) -> Result<(), StateError> {
        self.firing
            .delete(Self::firing_key(receiver, condition))
            .await
            .map_err(|e| self.error(e.to_string()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn key_tokens() {
        let id = "0190a5b2-7c3d-7e4f-8a1b-123456789abc";
        assert_eq!(key_token(id), id);
        let odd = key_token("a.b c");
        assert_eq!(odd.len(), 32);
        assert!(odd.bytes().all(|b| b.is_ascii_hexdigit()));
    }
}
