//! Operator commands (`sdash.v1.command.<kind>.<system_id>`): what a person asked sdash to do.
//! The API publishes them (it never writes the database); the one writer applies and audits the
//! alert commands, the owning collector runs `poll_now`. The envelope's `event_id` is the
//! command's id and its idempotency key, `observed_at` when the command was given,
//! `collector_id` the id of the process that published it (an API instance, or an import),
//! `system_id` the target system ([`FLEET_TARGET`] for commands about no one system).

use serde::{Deserialize, Serialize};

/// The `system_id` of commands that are about the whole installation (`forget_assignee`,
/// `remember_assignee`). System
/// ids that begin with `_` are reserved for such targets; the inventory refuses them.
pub const FLEET_TARGET: &str = "_fleet";

/// The longest actor name, assignee or comment accepted on the bus (characters).
pub const MAX_ACTOR_CHARS: usize = 128;
pub const MAX_ASSIGNEE_CHARS: usize = 128;
pub const MAX_COMMENT_CHARS: usize = 4000;

/// What a command asks for ([`CommandRecord::kind`]); also the subject token after `command`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum CommandKind {
    /// Acknowledge one open alert instance (`alert` is set).
    Acknowledge,
    /// Take an acknowledgement back (`alert` is set).
    Unacknowledge,
    /// Assign an alert instance to someone (`alert`, `assignee` are set; free text).
    Assign,
    /// Remove the assignee of an alert instance (`alert` is set).
    Unassign,
    /// Append a comment to an alert instance's thread (`alert`, `comment` are set).
    Comment,
    /// Poll the system now (`system_id` names it); only its owning collector does.
    PollNow,
    /// Remove a name from the list of previously used assignees offered for autocomplete
    /// (`assignee` is set, `system_id` is [`FLEET_TARGET`]); assignments stay as they are.
    ForgetAssignee,
    /// Add a name to that list without assigning anything (`assignee` is set, `system_id` is
    /// [`FLEET_TARGET`]): how an import brings the predecessor's assignee history along.
    RememberAssignee,
}

impl CommandKind {
    pub const ALL: [CommandKind; 8] = [
        CommandKind::Acknowledge,
        CommandKind::Unacknowledge,
        CommandKind::Assign,
        CommandKind::Unassign,
        CommandKind::Comment,
        CommandKind::PollNow,
        CommandKind::ForgetAssignee,
        CommandKind::RememberAssignee,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            CommandKind::Acknowledge => "acknowledge",
            CommandKind::Unacknowledge => "unacknowledge",
            CommandKind::Assign => "assign",
            CommandKind::Unassign => "unassign",
            CommandKind::Comment => "comment",
            CommandKind::PollNow => "poll_now",
            CommandKind::ForgetAssignee => "forget_assignee",
            CommandKind::RememberAssignee => "remember_assignee",
        }
    }

    pub fn parse(text: &str) -> Option<CommandKind> {
        CommandKind::ALL.into_iter().find(|v| v.as_str() == text)
    }

    /// Whether the command is about the assignee list, not one system ([`FLEET_TARGET`]).
    pub fn targets_fleet(self) -> bool {
        matches!(
            self,
            CommandKind::ForgetAssignee | CommandKind::RememberAssignee
        )
    }

    /// Whether the command targets one alert instance (and so needs `alert`).
    pub fn targets_alert(self) -> bool {
        matches!(
            self,
            CommandKind::Acknowledge
                | CommandKind::Unacknowledge
                | CommandKind::Assign
                | CommandKind::Unassign
                | CommandKind::Comment
        )
    }

    /// The subject of a command of this kind about `system_id`.
    pub fn subject(self, system_id: &str) -> String {
        format!(
            "{}.command.{}.{system_id}",
            crate::subjects::PREFIX,
            self.as_str()
        )
    }

    /// The wildcard subject matching every command of this kind (`sdash.v1.command.poll_now.*`).
    pub fn wildcard(self) -> String {
        format!("{}.command.{}.*", crate::subjects::PREFIX, self.as_str())
    }
}

/// One alert instance: a system's vendor alert id and the opening the command refers to. An
/// alert that clears and reopens is a new instance, with a new `opened_at`.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct AlertInstance {
    /// The vendor's alert id (`Alert::id`).
    pub alert_id: String,
    /// When sdash first saw this instance open, ms since the epoch: the API's `first_seen` of
    /// the alert, and `alert_opened_at` of the `alert_opened` change.
    pub opened_at: i64,
}

/// One operator command (`sdash.v1.command.<kind>.<system_id>`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct CommandRecord {
    pub kind: CommandKind,
    /// Who gave it: the name of the operator token used (never the token).
    pub actor: String,
    /// Alert commands: the alert instance.
    #[serde(default)]
    pub alert: Option<AlertInstance>,
    /// `assign`, `forget_assignee`: the assignee (free text).
    #[serde(default)]
    pub assignee: Option<String>,
    /// `comment`: the comment text.
    #[serde(default)]
    pub comment: Option<String>,
}

impl CommandRecord {
    /// Checks what the bus contract requires of a command of its kind: an actor, the fields its
    /// kind needs, the lengths, and the fleet target only for `forget_assignee`.
    pub fn validate(&self, system_id: &str) -> Result<(), String> {
        let actor = self.actor.trim();
        if actor.is_empty() || self.actor.chars().count() > MAX_ACTOR_CHARS {
            return Err(format!("actor must have 1 to {MAX_ACTOR_CHARS} characters"));
        }
        let fleet = system_id == FLEET_TARGET;
        if fleet != self.kind.targets_fleet() {
            return Err(format!(
                "{} commands {} the target {FLEET_TARGET:?}",
                self.kind.as_str(),
                if fleet { "may not have" } else { "must have" }
            ));
        }
        if self.kind.targets_alert() {
            let Some(alert) = &self.alert else {
                return Err(format!("{} needs an alert instance", self.kind.as_str()));
            };
            if alert.alert_id.is_empty() || alert.alert_id.len() > 256 {
                return Err("alert_id must have 1 to 256 bytes".into());
            }
            if alert.opened_at <= 0 {
                return Err("the alert instance's opened_at must be a time".into());
            }
        }
        if matches!(self.kind, CommandKind::Assign | CommandKind::ForgetAssignee) {
            match self.assignee.as_deref().map(str::trim) {
                Some(a) if !a.is_empty() && a.chars().count() <= MAX_ASSIGNEE_CHARS => {}
                _ => {
                    return Err(format!(
                        "{} needs an assignee of 1 to {MAX_ASSIGNEE_CHARS} characters",
                        self.kind.as_str()
                    ));
                }
            }
        }
        if self.kind == CommandKind::Comment {
            match self.comment.as_deref().map(str::trim) {
                Some(c) if !c.is_empty() && c.chars().count() <= MAX_COMMENT_CHARS => {}
                _ => {
                    return Err(format!(
                        "comment needs a text of 1 to {MAX_COMMENT_CHARS} characters"
                    ));
                }
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::codec::decode_record;
    use crate::{Envelope, Record, encode, subjects};

    fn ack() -> CommandRecord {
        CommandRecord {
            kind: CommandKind::Acknowledge,
            actor: "alice".into(),
            alert: Some(AlertInstance {
                alert_id: "a-1".into(),
                opened_at: 1_764_000_000_000,
            }),
            assignee: None,
            comment: None,
        }
    }

    #[test]
    fn commands_round_trip_on_their_kind_subject() {
        let env = Envelope::new("api-1", "fa-01", ack());
        let bytes = encode(&env).expect("encode");
        let subject = CommandKind::Acknowledge.subject("fa-01");
        assert_eq!(subject, "sdash.v1.command.acknowledge.fa-01");
        assert_eq!(
            subjects::parse(&subject),
            Some((subjects::Kind::Command, "fa-01"))
        );
        let back = decode_record(&subject, &bytes).expect("decode");
        assert_eq!(back, Record::Command(env.clone()));
        // The kind on the subject must be the body's.
        assert!(decode_record(&CommandKind::Comment.subject("fa-01"), &bytes).is_err());
        assert!(decode_record(&CommandKind::Acknowledge.subject("fa-02"), &bytes).is_err());
        assert!(subjects::parse("sdash.v1.command.nonsense.fa-01").is_none());
        assert!(subjects::parse("sdash.v1.command.fa-01").is_none());
        for kind in CommandKind::ALL {
            assert_eq!(CommandKind::parse(kind.as_str()), Some(kind));
        }
    }

    #[test]
    fn the_fleet_target_is_for_forget_assignee_only() {
        let forget = CommandRecord {
            kind: CommandKind::ForgetAssignee,
            alert: None,
            assignee: Some("bob".into()),
            ..ack()
        };
        let env = Envelope::new("api-1", FLEET_TARGET, forget.clone());
        let bytes = encode(&env).expect("encode");
        let subject = CommandKind::ForgetAssignee.subject(FLEET_TARGET);
        assert!(matches!(
            decode_record(&subject, &bytes),
            Ok(Record::Command(_))
        ));
        assert!(forget.validate("fa-01").is_err());
        assert!(ack().validate(FLEET_TARGET).is_err());
        let env = Envelope::new("api-1", FLEET_TARGET, ack());
        let bytes = encode(&env).expect("encode");
        assert!(decode_record(&CommandKind::Acknowledge.subject(FLEET_TARGET), &bytes).is_err());
    }

    #[test]
    fn a_command_without_what_its_kind_needs_is_refused() {
        assert!(ack().validate("fa-01").is_ok());
        let no_alert = CommandRecord {
            alert: None,
            ..ack()
        };
        assert!(no_alert.validate("fa-01").is_err());
        let no_actor = CommandRecord {
            actor: " ".into(),
            ..ack()
        };
        assert!(no_actor.validate("fa-01").is_err());
        let assign = CommandRecord {
            kind: CommandKind::Assign,
            ..ack()
        };
        assert!(assign.validate("fa-01").is_err());
        let comment = CommandRecord {
            kind: CommandKind::Comment,
            comment: Some("x".repeat(MAX_COMMENT_CHARS + 1)),
            ..ack()
        };
        assert!(comment.validate("fa-01").is_err());
        let poll = CommandRecord {
            kind: CommandKind::PollNow,
            alert: None,
            ..ack()
        };
        assert!(poll.validate("fa-01").is_ok());
    }
}
