//! Poll-now commands (`sdash.v1.command.poll_now.<system>`, issue #14): an operator asks for a
//! system to be polled at once. Every collector receives the command on a core NATS subscription
//! (it also sees the messages the API publishes to JetStream); only the collector that owns the
//! system by the membership's rendezvous hashing (the decision the scheduler makes before every
//! poll) wakes that system's task, the others ignore it. Each command id is acted on once: the
//! recent ids are remembered, so a command republished with the same id polls nothing more.
//!
//! The extra poll is published like any other (snapshot and events through the outbox), and it
//! leaves the regular schedule as it is: the next regular poll comes at its usual phase-aligned
//! time, so a poll-now shortly before it is followed by the regular one (see
//! [`crate::scheduler::system_task`]).

use std::collections::{HashSet, VecDeque};

use sdash_proto::{CommandKind, Record};
use tokio::sync::Notify;

use crate::inventory::SystemConfig;
use crate::membership::Membership;

/// Command ids remembered for deduplication (a bound against a noisy bus; the API's per-system
/// rate limit keeps the real rate far below it).
pub const RECENT_IDS: usize = 4096;

/// What a collector did with one poll-now command, the `outcome` label of
/// `sdash_collector_poll_now_total`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Outcome {
    /// This collector owns the system: its task polls it now.
    Polled,
    /// Another collector owns the system: ignored here.
    NotOwned,
    /// The system is not in this collector's inventory.
    UnknownSystem,
    /// The system is in the inventory with `enabled = false`: never polled.
    Disabled,
    /// A command id already acted on (or ignored) here.
    Duplicate,
    /// Not a valid poll-now command (undecodable, or of another kind).
    Invalid,
}

impl Outcome {
    pub fn as_str(self) -> &'static str {
        match self {
            Outcome::Polled => "polled",
            Outcome::NotOwned => "not_owned",
            Outcome::UnknownSystem => "unknown_system",
            Outcome::Disabled => "disabled",
            Outcome::Duplicate => "duplicate",
            Outcome::Invalid => "invalid",
        }
    }
}

/// The last [`RECENT_IDS`] command ids seen, oldest first out.
#[derive(Default)]
pub struct RecentIds {
    order: VecDeque<String>,
    seen: HashSet<String>,
}

impl RecentIds {
    /// True when `id` is new (and remembers it), false when it was seen already.
    pub fn insert(&mut self, id: &str) -> bool {
        if self.seen.contains(id) {
            return false;
        }
        if self.order.len() >= RECENT_IDS
            && let Some(oldest) = self.order.pop_front()
        {
            self.seen.remove(&oldest);
        }
        self.order.push_back(id.to_owned());
        self.seen.insert(id.to_owned());
        true
    }
}

/// Decides what to do with one poll-now message and, when this collector owns the system, wakes
/// its task through `lookup`'s trigger. `lookup` finds a running system by id: its config and
/// its poll-now trigger.
pub fn dispatch<'a>(
    subject: &str,
    payload: &[u8],
    recent: &mut RecentIds,
    membership: &Membership,
    lookup: impl Fn(&str) -> Option<(&'a SystemConfig, &'a Notify)>,
) -> (Outcome, Option<String>) {
    let envelope = match sdash_proto::codec::decode_record(subject, payload) {
        Ok(Record::Command(envelope)) if envelope.body.kind == CommandKind::PollNow => envelope,
        Ok(_) => return (Outcome::Invalid, None),
        Err(e) => {
            tracing::debug!(error = %e, subject, "undecodable poll-now command");
            return (Outcome::Invalid, None);
        }
    };
    let system = envelope.system_id;
    if !recent.insert(&envelope.event_id) {
        return (Outcome::Duplicate, Some(system));
    }
    let outcome = match lookup(&system) {
        None => Outcome::UnknownSystem,
        Some((config, _)) if !config.enabled => Outcome::Disabled,
        Some(_) if !membership.owns(&system) => Outcome::NotOwned,
        Some((_, trigger)) => {
            // A stored permit: a command that arrives during a poll runs right after it.
            trigger.notify_one();
            tracing::info!(
                system = %system,
                command = %envelope.event_id,
                actor = %envelope.body.actor,
                "poll now"
            );
            Outcome::Polled
        }
    };
    (outcome, Some(system))
}

#[cfg(test)]
mod tests {
    use super::*;
    use sdash_proto::{CommandRecord, Envelope};

    #[test]
    fn recent_ids_forget_the_oldest_beyond_the_bound() {
        let mut recent = RecentIds::default();
        assert!(recent.insert("a"));
        assert!(!recent.insert("a"));
        for i in 0..RECENT_IDS {
            assert!(recent.insert(&format!("x{i}")));
        }
        assert_eq!(recent.order.len(), RECENT_IDS);
        assert_eq!(recent.seen.len(), RECENT_IDS);
        // "a" was the oldest: forgotten, so it counts as new again.
        assert!(recent.insert("a"));
    }

    fn poll_now(system: &str) -> (String, Vec<u8>) {
        let body = CommandRecord {
            kind: CommandKind::PollNow,
            actor: "alice".into(),
            alert: None,
            assignee: None,
            comment: None,
        };
        let envelope = Envelope::new("api-1", system, body);
        let bytes = sdash_proto::encode(&envelope).expect("encode");
        (CommandKind::PollNow.subject(system), bytes)
    }

    #[tokio::test]
    async fn only_the_owner_of_an_enabled_known_system_polls_once_per_command() {
        let text = r#"
[[system]]
id = "fa-01"
vendor = "pure"
address = "https://127.0.0.1:9"
auth = { api_token_env = "POLL_NOW_TEST_TOKEN" }

[[system]]
id = "fa-02"
vendor = "pure"
address = "https://127.0.0.1:9"
enabled = false
auth = { api_token_env = "POLL_NOW_TEST_TOKEN" }
"#;
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("inventory.toml");
        std::fs::write(&path, text).expect("write");
        let systems = crate::inventory::load(&path).expect("load").systems;
        let triggers: Vec<Notify> = systems.iter().map(|_| Notify::new()).collect();
        let lookup = |id: &str| {
            systems
                .iter()
                .position(|s| s.id == id)
                .map(|i| (&systems[i], &triggers[i]))
        };
        let me = Membership::solo("c1");
        let mut recent = RecentIds::default();

        let (subject, bytes) = poll_now("fa-01");
        let (outcome, _) = dispatch(&subject, &bytes, &mut recent, &me, lookup);
        assert_eq!(outcome, Outcome::Polled);
        // The permit is stored for the task.
        tokio::time::timeout(std::time::Duration::from_secs(1), triggers[0].notified())
            .await
            .expect("the system's task is woken");
        // The same command again: nothing more.
        let (outcome, _) = dispatch(&subject, &bytes, &mut recent, &me, lookup);
        assert_eq!(outcome, Outcome::Duplicate);
        assert!(
            tokio::time::timeout(std::time::Duration::from_millis(50), triggers[0].notified())
                .await
                .is_err()
        );

        let (subject, bytes) = poll_now("fa-02");
        let (outcome, _) = dispatch(&subject, &bytes, &mut recent, &me, lookup);
        assert_eq!(outcome, Outcome::Disabled);
        let (subject, bytes) = poll_now("fa-99");
        let (outcome, _) = dispatch(&subject, &bytes, &mut recent, &me, lookup);
        assert_eq!(outcome, Outcome::UnknownSystem);
        // Garbage on the subject, or the body of another subject.
        let (outcome, _) = dispatch(&subject, b"\x01\x02", &mut recent, &me, lookup);
        assert_eq!(outcome, Outcome::Invalid);
        let (_, other) = poll_now("fa-01");
        let (outcome, _) = dispatch(&subject, &other, &mut recent, &me, lookup);
        assert_eq!(outcome, Outcome::Invalid);
    }
}
