//! Collector membership and system ownership, without configuration: every collector heartbeats
//! into a NATS KV bucket whose max age stands in for a lease (nats-server 2.9 has no per-key TTL), reads
//! the live members back, and computes the owner of each system by rendezvous hashing. Every
//! collector computes the same owner from the same member set, so each system is polled once;
//! when a collector stops heartbeating its key expires within one lease and its systems move.
//!
//! The bucket is stored on file, so it survives a nats-server restart; when it is gone all the
//! same (a restart that lost the store), the first collector whose heartbeat fails makes it
//! again, and every collector watches it afresh, so the fleet has one owner per system again
//! within one lease of the server coming back.

use std::collections::{BTreeSet, HashMap};
use std::sync::{Arc, RwLock};
use std::time::{Duration, Instant};

use async_nats::jetstream::{self, kv, stream};
use futures::StreamExt;

/// The KV bucket collectors heartbeat into.
pub const BUCKET: &str = "sdash-collectors";

/// 64-bit FNV-1a followed by a SplitMix64 finalizer: stable across processes and versions.
pub fn stable_hash(parts: &[&str]) -> u64 {
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for part in parts {
        for b in part.bytes().chain(std::iter::once(0xff)) {
            h ^= u64::from(b);
            h = h.wrapping_mul(0x0000_0100_0000_01b3);
        }
    }
    h = (h ^ (h >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    h = (h ^ (h >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    h ^ (h >> 31)
}

/// The member with the highest score for `system_id` (rendezvous / highest-random-weight hashing).
pub fn owner<'a>(
    members: impl IntoIterator<Item = &'a String>,
    system_id: &str,
) -> Option<&'a String> {
    members
        .into_iter()
        .max_by_key(|m| (stable_hash(&[m.as_str(), system_id]), m.as_str()))
}

/// The live member set as this collector last saw it. Shared by every system task.
#[derive(Clone)]
pub struct Membership {
    me: String,
    members: Arc<RwLock<BTreeSet<String>>>,
    /// True once the member set has been read from the bucket (or sharding is off).
    settled: Arc<tokio::sync::watch::Sender<bool>>,
}

impl Membership {
    /// A membership of one: this collector owns every system (used before the first refresh,
    /// by `probe`, and when running without sharding).
    pub fn solo(me: &str) -> Membership {
        let members = BTreeSet::from([me.to_owned()]);
        Membership {
            me: me.to_owned(),
            members: Arc::new(RwLock::new(members)),
            settled: Arc::new(tokio::sync::watch::channel(false).0),
        }
    }

    /// Marks the member set as known: without sharding at once, with sharding after the first
    /// read of the bucket.
    pub fn mark_settled(&self) {
        self.settled.send_replace(true);
    }

    /// Waits until the member set is known, at most `limit` (NATS may be down: then this
    /// collector goes on with what it knows).
    pub async fn settled(&self, limit: std::time::Duration) {
        let mut rx = self.settled.subscribe();
        let _ = tokio::time::timeout(limit, rx.wait_for(|s| *s)).await;
    }

    pub fn me(&self) -> &str {
        &self.me
    }

    pub fn owns(&self, system_id: &str) -> bool {
        let members = self.members.read().unwrap_or_else(|p| p.into_inner());
        owner(members.iter(), system_id).is_none_or(|o| o == &self.me)
    }

    pub fn members(&self) -> BTreeSet<String> {
        self.members
            .read()
            .unwrap_or_else(|p| p.into_inner())
            .clone()
    }

    fn set(&self, mut live: BTreeSet<String>) -> bool {
        // Always count ourselves: we are alive even when our heartbeat could not be written.
        live.insert(self.me.clone());
        let mut members = self.members.write().unwrap_or_else(|p| p.into_inner());
        if *members != live {
            *members = live;
            true
        } else {
            false
        }
    }
}

/// How often a collector heartbeats and re-reads the member set: four times per lease.
pub fn refresh_period(lease: Duration) -> Duration {
    (lease / 4).max(Duration::from_millis(200))
}

/// How long a heartbeat keeps a member alive (the bucket's max age): one refresh period less
/// than the lease, so that a dead member's key is gone and noticed by the others within one
/// lease of its last heartbeat, while a live member heartbeats three times per key lifetime (a
/// busy machine may delay a heartbeat by half a lease before a live member looks dead).
pub fn key_ttl(lease: Duration) -> Duration {
    lease
        .saturating_sub(refresh_period(lease))
        .max(Duration::from_millis(400))
}

/// The bucket's backing stream.
fn stream_name() -> String {
    format!("KV_{BUCKET}")
}

/// The settings a KV bucket's stream needs. File storage: the bucket (and the keys younger than
/// a lease) survives a nats-server restart, so the collectors go on agreeing on who is alive the
/// moment the server is back, instead of each polling the whole fleet until the bucket is made
/// again. `replicas` copies in a JetStream cluster (3 survives the loss of one node).
fn bucket_config(lease: Duration, replicas: usize) -> stream::Config {
    stream::Config {
        name: stream_name(),
        subjects: vec![format!("$KV.{BUCKET}.>")],
        max_messages_per_subject: 1,
        max_age: key_ttl(lease),
        // The duplicate window may not exceed max age.
        duplicate_window: key_ttl(lease).min(Duration::from_secs(120)),
        storage: stream::StorageType::File,
        discard: stream::DiscardPolicy::New,
        allow_rollup: true,
        deny_delete: true,
        allow_direct: true,
        num_replicas: replicas.max(1),
        ..Default::default()
    }
}

fn is_stream_not_found(error: &jetstream::context::GetStreamError) -> bool {
    matches!(
        error.kind(),
        jetstream::context::GetStreamErrorKind::JetStream(e)
            if e.error_code() == jetstream::ErrorCode::STREAM_NOT_FOUND
    )
}

/// Makes sure the bucket's backing stream (`KV_sdash-collectors`) exists, creating it when the
/// server says it does not (first start, or a restart that lost it). Returns whether it was
/// (re)created just now. The async-nats KV creation helpers cannot parse nats-server 2.9's
/// account info, so the stream is made here with the settings a KV bucket needs. An existing
/// bucket with fewer than `replicas` copies is raised to `replicas` (never lowered: collectors
/// started with different settings must not undo each other).
pub async fn ensure_bucket(
    js: &jetstream::Context,
    lease: Duration,
    replicas: usize,
) -> Result<bool, String> {
    let name = stream_name();
    match js.get_stream(&name).await {
        Ok(existing) => {
            let config = &existing.cached_info().config;
            if config.num_replicas < replicas {
                let raised = stream::Config {
                    num_replicas: replicas,
                    ..config.clone()
                };
                // The bucket works as it is: a refusal (a single server) is only worth a warning.
                match js.update_stream(&raised).await {
                    Ok(_) => tracing::info!(replicas, "raised the membership bucket's replicas"),
                    Err(e) => tracing::warn!(
                        error = %e,
                        replicas,
                        "cannot raise the membership bucket's replicas; it keeps {}",
                        config.num_replicas
                    ),
                }
            }
            // An older collector made the bucket with memory storage. It is kept: a stream's
            // storage cannot change in place, and deleting it under running collectors would
            // drop their heartbeats (each would poll the whole fleet for a while) to gain
            // nothing until the next nats-server restart, which removes it anyway and after
            // which it is made again here, on file.
            if existing.cached_info().config.storage == stream::StorageType::Memory {
                tracing::info!(
                    "the membership bucket has memory storage (made by an older collector); it is kept until a nats-server restart removes it, then recreated on file"
                );
            }
            Ok(false)
        }
        Err(e) if is_stream_not_found(&e) => {
            match js.create_stream(bucket_config(lease, replicas)).await {
                Ok(_) => Ok(true),
                // Another collector may have created it at the same moment (with other limits, if
                // its lease differs): what counts is that it exists now.
                Err(create_error) => match js.get_stream(&name).await {
                    Ok(_) => Ok(true),
                    Err(_) => Err(format!(
                        "cannot create the membership bucket: {create_error}"
                    )),
                },
            }
        }
        Err(e) => Err(format!("cannot look up the membership bucket: {e}")),
    }
}

/// Creates the bucket if needed (see [`ensure_bucket`]) and opens it.
pub async fn open_bucket(
    js: &jetstream::Context,
    lease: Duration,
    replicas: usize,
) -> Result<kv::Store, String> {
    ensure_bucket(js, lease, replicas).await?;
    js.get_key_value(BUCKET).await.map_err(|e| e.to_string())
}

/// When each member's heartbeat was last seen by the watcher.
type Heard = Arc<std::sync::Mutex<HashMap<String, Instant>>>;

/// Writes this collector's heartbeat, at most `limit` long.
async fn heartbeat(bucket: &kv::Store, me: &str, limit: Duration) -> Result<(), String> {
    let beat = bucket.put(me, bytes::Bytes::from(sdash_proto::now_ms().to_string()));
    match tokio::time::timeout(limit, beat).await {
        Ok(Ok(_)) => Ok(()),
        Ok(Err(e)) => Err(e.to_string()),
        Err(_) => Err("timed out".into()),
    }
}

/// Heartbeats every [`refresh_period`] and keeps the member set current until `stop` resolves;
/// then deletes this collector's key so the others take over at once.
///
/// A watcher on the bucket sees every heartbeat as it happens (a listing of the keys can miss a
/// key that is being overwritten at that moment, and a member that looks dead for one refresh
/// makes two collectors poll its systems). A member is live while its last heartbeat is younger
/// than [`key_ttl`]; a purge (a collector stopping) removes it at once.
///
/// The bucket can disappear under a running collector (a nats-server restart that lost its
/// store, or an old memory-storage bucket): a heartbeat that fails makes it check the bucket and
/// recreate it, then write the heartbeat again. The watcher is started afresh whenever
/// heartbeats resume after failing, and whenever it has not heard this collector's own
/// heartbeats for two periods: the consumer behind a watch resumes from the stream sequence it
/// last saw, which a recreated stream has not reached, and retries for seconds after a restart.
/// A bucket it makes has `replicas` copies (see [`ensure_bucket`]).
pub async fn run(
    membership: Membership,
    js: jetstream::Context,
    lease: Duration,
    replicas: usize,
    on_change: impl Fn(&BTreeSet<String>) + Send,
    stop: impl std::future::Future<Output = ()>,
) {
    let mut stop = std::pin::pin!(stop);
    let period = refresh_period(lease);
    let ttl = key_ttl(lease);
    let deaf_after = period * 2;
    let heard: Heard = Arc::default();
    let caught_up = Arc::new(std::sync::atomic::AtomicBool::new(false));
    let mut bucket: Option<kv::Store> = None;
    let mut watcher: Option<(tokio::task::JoinHandle<()>, Instant)> = None;
    let mut last_beat_written = false;
    // Heartbeats keep a fixed rhythm whatever else the process is doing.
    let mut ticker = tokio::time::interval(period);
    ticker.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tokio::select! {
            _ = ticker.tick() => {}
            _ = &mut stop => break,
        }
        if bucket.is_none() {
            match tokio::time::timeout(period, open_bucket(&js, lease, replicas)).await {
                Ok(Ok(b)) => bucket = Some(b),
                Ok(Err(e)) => {
                    tracing::warn!(error = %e, "cannot open the membership bucket yet; polling everything meanwhile")
                }
                Err(_) => tracing::warn!(
                    "opening the membership bucket timed out; polling everything meanwhile"
                ),
            }
        }
        if let Some(store) = &bucket {
            let written =
                beat_or_recreate(&js, store, membership.me(), (lease, replicas), period).await;
            let recovered = written && !last_beat_written;
            last_beat_written = written;
            let deaf = written
                && watcher
                    .as_ref()
                    .is_some_and(|(_, started)| started.elapsed() >= deaf_after)
                && heard
                    .lock()
                    .unwrap_or_else(|p| p.into_inner())
                    .get(membership.me())
                    .is_none_or(|at| at.elapsed() >= deaf_after);
            if deaf {
                tracing::warn!("the membership watch hears nothing; watching again");
            }
            if watcher.is_none() || recovered || deaf {
                if let Some((old, _)) = watcher.take() {
                    old.abort();
                    // Silence while our own watch was broken says nothing about the others
                    // (a new watch hears only new heartbeats): each member known gets a key's
                    // life from one period ago to be heard again before it counts as gone.
                    let since = Instant::now()
                        .checked_sub(period)
                        .unwrap_or_else(Instant::now);
                    for at in heard.lock().unwrap_or_else(|p| p.into_inner()).values_mut() {
                        *at = (*at).max(since);
                    }
                }
                let (store, heard, caught_up) = (store.clone(), heard.clone(), caught_up.clone());
                let task =
                    tokio::spawn(async move { watch(store, heard, caught_up, period).await });
                watcher = Some((task, Instant::now()));
            }
        }
        if !caught_up.load(std::sync::atomic::Ordering::SeqCst) {
            continue;
        }
        let live: BTreeSet<String> = {
            let mut heard = heard.lock().unwrap_or_else(|p| p.into_inner());
            heard.retain(|_, at| at.elapsed() < ttl);
            heard.keys().cloned().collect()
        };
        let changed = membership.set(live);
        membership.mark_settled();
        if changed {
            let members = membership.members();
            tracing::info!(members = ?members, "collector membership changed");
            on_change(&members);
        }
    }
    if let Some((task, _)) = watcher {
        task.abort();
    }
    if let Some(store) = bucket
        && let Err(e) = store.purge(membership.me()).await
    {
        tracing::debug!(error = %e, "removing our membership key");
    }
}

/// Writes one heartbeat; when that fails, recreates the bucket if it is gone and writes it
/// again. Returns whether the heartbeat was written.
async fn beat_or_recreate(
    js: &jetstream::Context,
    bucket: &kv::Store,
    me: &str,
    (lease, replicas): (Duration, usize),
    period: Duration,
) -> bool {
    let Err(e) = heartbeat(bucket, me, period).await else {
        return true;
    };
    match tokio::time::timeout(period, ensure_bucket(js, lease, replicas)).await {
        Ok(Ok(true)) => {
            tracing::warn!(error = %e, "the membership bucket was gone; recreated it");
            match heartbeat(bucket, me, period).await {
                Ok(()) => true,
                Err(e) => {
                    tracing::warn!(error = %e, "membership heartbeat failed after recreating the bucket");
                    false
                }
            }
        }
        Ok(Ok(false)) => {
            tracing::warn!(error = %e, "membership heartbeat failed");
            false
        }
        Ok(Err(check)) => {
            tracing::warn!(error = %e, check = %check, "membership heartbeat failed");
            false
        }
        Err(_) => {
            tracing::warn!(error = %e, "membership heartbeat failed (NATS does not answer)");
            false
        }
    }
}

/// Follows every heartbeat and removal in the bucket; watches again when the watch fails or
/// ends ([`run`] also restarts it when it goes deaf or the bucket was recreated).
async fn watch(
    bucket: kv::Store,
    heard: Heard,
    caught_up: Arc<std::sync::atomic::AtomicBool>,
    period: Duration,
) {
    loop {
        match bucket.watch_all().await {
            Ok(mut entries) => {
                // A bucket with no keys yet delivers nothing: count as caught up after one period.
                let started = Instant::now();
                loop {
                    let next = tokio::time::timeout(period, entries.next()).await;
                    if started.elapsed() >= period {
                        caught_up.store(true, std::sync::atomic::Ordering::SeqCst);
                    }
                    let entry = match next {
                        Err(_) => continue,
                        Ok(Some(Ok(entry))) => entry,
                        Ok(Some(Err(e))) => {
                            tracing::warn!(error = %e, "membership watch failed; watching again");
                            break;
                        }
                        Ok(None) => break,
                    };
                    let mut heard = heard.lock().unwrap_or_else(|p| p.into_inner());
                    match entry.operation {
                        kv::Operation::Put => {
                            heard.insert(entry.key, Instant::now());
                        }
                        kv::Operation::Delete | kv::Operation::Purge => {
                            heard.remove(&entry.key);
                        }
                    }
                    if entry.delta == 0 {
                        caught_up.store(true, std::sync::atomic::Ordering::SeqCst);
                    }
                }
            }
            Err(e) => tracing::warn!(error = %e, "cannot watch the membership bucket yet"),
        }
        tokio::time::sleep(period).await;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rendezvous_spreads_and_moves_only_the_dead_members_systems() {
        let three: Vec<String> = ["c1", "c2", "c3"].iter().map(|s| s.to_string()).collect();
        let systems: Vec<String> = (0..3000).map(|i| format!("sys-{i}")).collect();
        let mut counts = std::collections::HashMap::new();
        for s in &systems {
            *counts.entry(owner(&three, s).cloned()).or_insert(0) += 1;
        }
        for c in &three {
            let n = counts[&Some(c.clone())];
            assert!((800..1200).contains(&n), "{c} owns {n} of 3000");
        }
        // c3 dies: only its systems move; the others keep theirs.
        let two = &three[..2];
        for s in &systems {
            let before = owner(&three, s).cloned();
            let after = owner(two, s).cloned();
            if before.as_deref() != Some("c3") {
                assert_eq!(before, after, "{s} moved although its owner lives");
            }
        }
    }

    #[test]
    fn solo_owns_everything() {
        let m = Membership::solo("c1");
        assert!(m.owns("anything"));
        m.set(BTreeSet::from(["c2".to_string()]));
        assert_eq!(m.members().len(), 2);
    }
}
