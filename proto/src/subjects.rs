//! Subject names and stream parameters. One family per record kind, the id last so that
//! subscribers can filter with a wildcard (`sdash.v1.snapshot.*`, `sdash.v1.*.fa-prod-01`).

/// The JetStream stream every record is published to.
pub const STREAM: &str = "SDASH";
/// The subjects the stream captures.
pub const STREAM_SUBJECTS: &str = "sdash.v1.>";
/// The duplicate window during which a repeated `Nats-Msg-Id` is dropped by the server.
pub const DUPLICATE_WINDOW: std::time::Duration = std::time::Duration::from_secs(120);
/// The prefix shared by all v1 subjects.
pub const PREFIX: &str = "sdash.v1";

/// The record kinds carried on the bus; the subject token of each is its `as_str()`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Kind {
    System,
    Snapshot,
    Event,
    Collector,
    /// What the writer derived and committed (alert opened or cleared, status and health
    /// transitions, capacity threshold crossings), published from its outbox after the commit.
    Change,
    /// An operator command (`sdash.v1.command.<command_kind>.<system_id>`, see
    /// [`crate::command`]): the only kind with a second token before the id.
    Command,
    /// Imported history of a system (daily capacity, old log events; see [`crate::history`]).
    History,
}

impl Kind {
    pub const ALL: [Kind; 7] = [
        Kind::System,
        Kind::Snapshot,
        Kind::Event,
        Kind::Collector,
        Kind::Change,
        Kind::Command,
        Kind::History,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            Kind::System => "system",
            Kind::Snapshot => "snapshot",
            Kind::Event => "event",
            Kind::Collector => "collector",
            Kind::Change => "change",
            Kind::Command => "command",
            Kind::History => "history",
        }
    }

    /// The subject of a record of this kind about `id` (a system id, or a collector id). Commands
    /// have their own kind token: use [`crate::CommandKind::subject`].
    pub fn subject(self, id: &str) -> String {
        format!("{PREFIX}.{}.{id}", self.as_str())
    }

    /// The wildcard subject matching every record of this kind.
    pub fn wildcard(self) -> String {
        match self {
            Kind::Command => format!("{PREFIX}.command.*.*"),
            _ => format!("{PREFIX}.{}.*", self.as_str()),
        }
    }
}

/// Splits a subject into its kind and id; `None` for anything that is not a v1 subject. For a
/// command the id is the system id after the command kind, which must be a known one.
pub fn parse(subject: &str) -> Option<(Kind, &str)> {
    let rest = subject.strip_prefix(PREFIX)?.strip_prefix('.')?;
    let (kind, id) = rest.split_once('.')?;
    let kind = Kind::ALL.into_iter().find(|k| k.as_str() == kind)?;
    let id = match kind {
        Kind::Command => {
            let (command, id) = id.split_once('.')?;
            crate::CommandKind::parse(command)?;
            id
        }
        _ => id,
    };
    if id.is_empty() || id.contains('.') {
        return None;
    }
    Some((kind, id))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn subjects_round_trip() {
        // Commands carry their own kind token (tested in `command`).
        for kind in Kind::ALL.into_iter().filter(|k| *k != Kind::Command) {
            let s = kind.subject("fa-01");
            assert_eq!(parse(&s), Some((kind, "fa-01")));
        }
        assert_eq!(Kind::Snapshot.subject("x"), "sdash.v1.snapshot.x");
        assert_eq!(parse("sdash.v1.nope.x"), None);
        assert_eq!(parse("sdash.v1.snapshot"), None);
        assert_eq!(parse("sdash.v1.snapshot.a.b"), None);
        assert_eq!(parse("other.v1.snapshot.a"), None);
    }
}
