//! Operator commands (`sdash.v1.command.*`, proto/SCHEMA.md "CommandRecord"), applied and
//! audited inside the batch transaction, after the snapshots (so an alert opened in the same
//! batch can be acknowledged): one read of what the batch's commands refer to (the commands
//! already audited, their systems, alert instances and, for `poll_now`, the live collectors),
//! the decisions in memory ([`decide`], pure code, in stream order), then one statement per kind
//! of row, and an `alert_updated` change per applied alert command into the outbox.
//!
//! The command id (the envelope's `event_id`) is the idempotency key: a command already in
//! `command_audit` is skipped, so a redelivery or a command published twice is applied once.

use std::collections::{BTreeMap, HashMap, HashSet};

use sdash_proto::{ChangeKind, ChangeRecord, CommandKind, CommandRecord, Envelope, Vendor};
use sqlx::{ColumnIndex, Decode, Row, SqlSafeStr, Type};

use super::derive::{self, Change};
use super::dialect::{Conn, Dialect};
use super::plan::{AlertDetails, clean};
use super::sql::{Bind, Sql};
use super::{CommitMeta, RowCounts, StoreError};

/// A collector is live when its last heartbeat is at most this old at the command's time (three
/// of the collector's default 10 s heartbeat intervals).
pub(crate) const LIVE_COLLECTOR_MS: i64 = 30_000;

/// The refusal reasons (`command_audit.reason` of a `refused` command).
pub(crate) const UNKNOWN_SYSTEM: &str = "unknown system";
pub(crate) const UNKNOWN_ALERT: &str = "unknown alert";
pub(crate) const ALERT_CLEARED: &str = "alert cleared";
pub(crate) const NO_ASSIGNEE: &str = "no assignee";
/// The reason of a `poll_now` whose system no live collector owns (`no_collector`).
pub(crate) const NO_COLLECTOR: &str = "no live collector owns this system";
/// Notes on applied commands that changed nothing.
pub(crate) const ALREADY_ACKNOWLEDGED: &str = "already acknowledged";
pub(crate) const NOT_ACKNOWLEDGED: &str = "not acknowledged";
pub(crate) const NOT_ASSIGNED: &str = "not assigned";

/// What became of a command (`command_audit.outcome`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Outcome {
    /// The writer applied it (alert commands, the assignee list).
    Applied,
    /// The writer refused it; `reason` says why.
    Refused,
    /// `poll_now`: a live collector owns the system (that collector polls it).
    Dispatched,
    /// `poll_now`: no live collector owns the system.
    NoCollector,
}

impl Outcome {
    const ALL: [Outcome; 4] = [
        Outcome::Applied,
        Outcome::Refused,
        Outcome::Dispatched,
        Outcome::NoCollector,
    ];

    pub(crate) fn as_str(self) -> &'static str {
        match self {
            Outcome::Applied => "applied",
            Outcome::Refused => "refused",
            Outcome::Dispatched => "dispatched",
            Outcome::NoCollector => "no_collector",
        }
    }

    fn index(self) -> usize {
        self as usize
    }
}

/// Commands a batch audited, per kind and outcome (`sdash_writer_commands_total`).
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct CommandTally([[u64; 4]; CommandKind::ALL.len()]);

impl CommandTally {
    fn count(&mut self, kind: CommandKind, outcome: Outcome) {
        if let Some(k) = CommandKind::ALL.iter().position(|v| *v == kind) {
            self.0[k][outcome.index()] += 1;
        }
    }

    pub(crate) fn add(&mut self, other: &CommandTally) {
        for (mine, theirs) in self.0.iter_mut().zip(other.0.iter()) {
            for (a, b) in mine.iter_mut().zip(theirs.iter()) {
                *a += b;
            }
        }
    }

    /// `(kind, outcome, commands)` for every pair that counted any.
    pub fn counts(&self) -> Vec<(&'static str, &'static str, u64)> {
        let mut out = Vec::new();
        for (kind, row) in CommandKind::ALL.iter().zip(self.0.iter()) {
            for (outcome, n) in Outcome::ALL.iter().zip(row.iter()) {
                if *n > 0 {
                    out.push((kind.as_str(), outcome.as_str(), *n));
                }
            }
        }
        out
    }

    /// All commands counted.
    pub fn total(&self) -> u64 {
        self.0.iter().flatten().sum()
    }
}

/// One command of a batch, as planned (text cleaned, names trimmed).
#[derive(Debug, Clone)]
pub(crate) struct CommandRow {
    /// The envelope's `event_id`: the idempotency key.
    pub command_id: String,
    /// The target system, or `_fleet`.
    pub system_id: String,
    /// The envelope's `collector_id` (the API instance, or an import).
    pub publisher: String,
    /// The envelope's `observed_at`: when the command was given.
    pub issued_at: i64,
    pub record: CommandRecord,
}

impl CommandRow {
    pub(crate) fn of(e: Envelope<CommandRecord>) -> CommandRow {
        let mut record = e.body;
        record.actor = clean(record.actor.trim());
        record.assignee = record
            .assignee
            .as_deref()
            .map(|a| clean(a.trim()))
            .filter(|a| !a.is_empty());
        record.comment = record.comment.as_deref().map(|c| clean(c.trim()));
        if let Some(alert) = &mut record.alert {
            alert.alert_id = clean(&alert.alert_id);
        }
        CommandRow {
            command_id: clean(&e.event_id),
            system_id: e.system_id,
            publisher: clean(&e.collector_id),
            issued_at: e.observed_at,
            record,
        }
    }

    /// The alert instance an alert command names: `(system_id, alert_id, first_seen)`.
    fn instance(&self) -> Option<(&str, &str, i64)> {
        if !self.record.kind.targets_alert() {
            return None;
        }
        let a = self.record.alert.as_ref()?;
        Some((self.system_id.as_str(), a.alert_id.as_str(), a.opened_at))
    }
}

/// The operator state of an alert instance (its `alerts` columns; `None` = none).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub(crate) struct AlertState {
    pub acknowledged_by: Option<String>,
    pub acknowledged_at: Option<i64>,
    pub assignee: Option<String>,
    pub assigned_by: Option<String>,
    pub assigned_at: Option<i64>,
}

/// An alert instance as stored (an `alerts` row).
#[derive(Debug, Clone)]
pub(crate) struct InstanceRow {
    pub id: i64,
    pub system_id: String,
    pub alert_id: String,
    pub first_seen: i64,
    pub cleared_at: Option<i64>,
    pub details: AlertDetails,
    pub state: AlertState,
}

/// A system a command names, as stored.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct KnownSystem {
    pub vendor: Vendor,
    /// The name the system reports (its latest state's), if any.
    pub name: Option<String>,
}

/// A collector whose heartbeat is recent enough to count.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct LiveCollector {
    pub id: String,
    pub systems: Vec<String>,
    pub last_seen: i64,
}

/// What the batch's commands refer to, as stored (read after the batch's snapshots).
#[derive(Debug, Default)]
pub(crate) struct CommandContext {
    /// Command ids already in `command_audit`.
    pub audited: HashSet<String>,
    pub systems: HashMap<String, KnownSystem>,
    pub instances: Vec<InstanceRow>,
    /// Collectors with a heartbeat no older than [`LIVE_COLLECTOR_MS`] before the oldest
    /// `poll_now` of the batch.
    pub collectors: Vec<LiveCollector>,
}

/// A `command_audit` row.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct AuditRow {
    pub command_id: String,
    pub kind: &'static str,
    pub system_id: String,
    pub actor: String,
    pub alert_id: Option<String>,
    pub alert_opened_at: Option<i64>,
    pub assignee: Option<String>,
    pub comment: Option<String>,
    pub issued_at: i64,
    pub recorded_at: i64,
    pub publisher: String,
    pub outcome: &'static str,
    pub reason: Option<&'static str>,
}

/// An `alert_comments` row.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct CommentRow {
    pub command_id: String,
    pub system_id: String,
    pub alert_id: String,
    pub opened_at: i64,
    pub author: String,
    pub at: i64,
    pub body: String,
}

/// The new operator state of the `alerts` row `id`.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct AlertStateRow {
    pub id: i64,
    pub state: AlertState,
}

/// What a batch's commands do.
#[derive(Debug, Default)]
pub(crate) struct Decisions {
    /// One per command not audited before, in stream order.
    pub audit: Vec<AuditRow>,
    /// The final state of each instance an applied command changed.
    pub states: Vec<AlertStateRow>,
    pub comments: Vec<CommentRow>,
    /// Names to delete from `assignees` (before [`Decisions::remember`] is written).
    pub forget: Vec<String>,
    /// Names to add to `assignees`, or refresh, each once with its newest time.
    pub remember: Vec<(String, i64)>,
    /// One `alert_updated` per applied alert command.
    pub changes: Vec<Change>,
    pub tally: CommandTally,
}

/// What the batch does to one name of the assignee list, in order: forgotten (deleted) at some
/// point, then used at `used_at` (the newest use after the last forget).
#[derive(Debug, Default)]
struct NameOps {
    forgotten: bool,
    used_at: Option<i64>,
}

/// Decides every command of the batch in stream order against what is stored (`ctx`) and what
/// the batch's earlier commands did. Commands already audited are skipped.
///
/// * Alert commands are refused for an `unknown system` (no `systems` or `system_state` row),
///   an `unknown alert` (no such instance) and, except `comment`, an instance that had `alert
///   cleared` when the command was given (`cleared_at` ≤ its time; so the outcome does not
///   depend on whether the clearing snapshot came in the same batch or an earlier one).
/// * `acknowledge` keeps the first acknowledgement (a second is applied, noted `already
///   acknowledged`); `assign` replaces the assignee and adds the name to the list;
///   `unacknowledge` and `unassign` of an instance without are applied, noted.
/// * `remember_assignee` / `forget_assignee` are always applied.
/// * `poll_now` is `dispatched` when a live collector owns the system, else `no_collector`.
pub(crate) fn decide(commands: &[CommandRow], ctx: &CommandContext, now: i64) -> Decisions {
    let mut d = Decisions::default();
    let mut instances: Vec<InstanceRow> = ctx.instances.clone();
    let mut by_key: HashMap<(String, String, i64), usize> = HashMap::new();
    for (i, inst) in instances.iter().enumerate() {
        let key = (
            inst.system_id.clone(),
            inst.alert_id.clone(),
            inst.first_seen,
        );
        // Two rows for one instance cannot be made by the writer; the newest would win.
        match by_key.get(&key) {
            Some(&j) if instances[j].id > inst.id => {}
            _ => {
                by_key.insert(key, i);
            }
        }
    }
    let mut dirty: Vec<usize> = Vec::new();
    let mut names: BTreeMap<String, NameOps> = BTreeMap::new();
    let mut done: HashSet<&str> = HashSet::new();

    for cmd in commands {
        if ctx.audited.contains(&cmd.command_id) || !done.insert(cmd.command_id.as_str()) {
            continue;
        }
        let r = &cmd.record;
        let (outcome, reason) = match r.kind {
            CommandKind::ForgetAssignee | CommandKind::RememberAssignee => match &r.assignee {
                None => (Outcome::Refused, Some(NO_ASSIGNEE)),
                Some(name) => {
                    let ops = names.entry(name.clone()).or_default();
                    if r.kind == CommandKind::ForgetAssignee {
                        *ops = NameOps {
                            forgotten: true,
                            used_at: None,
                        };
                    } else {
                        ops.used_at =
                            Some(ops.used_at.map_or(cmd.issued_at, |t| t.max(cmd.issued_at)));
                    }
                    (Outcome::Applied, None)
                }
            },
            CommandKind::PollNow => match ctx.systems.get(&cmd.system_id) {
                None => (Outcome::Refused, Some(UNKNOWN_SYSTEM)),
                Some(_) => {
                    let live = ctx.collectors.iter().any(|c| {
                        c.last_seen >= cmd.issued_at - LIVE_COLLECTOR_MS
                            && c.systems.contains(&cmd.system_id)
                    });
                    match live {
                        true => (Outcome::Dispatched, None),
                        false => (Outcome::NoCollector, Some(NO_COLLECTOR)),
                    }
                }
            },
            _ => {
                let system = ctx.systems.get(&cmd.system_id);
                let found = cmd
                    .instance()
                    .and_then(|(s, a, f)| by_key.get(&(s.to_owned(), a.to_owned(), f)).copied());
                match (system, found) {
                    (None, _) => (Outcome::Refused, Some(UNKNOWN_SYSTEM)),
                    (_, None) => (Outcome::Refused, Some(UNKNOWN_ALERT)),
                    (Some(system), Some(i)) => {
                        let inst = &mut instances[i];
                        let cleared = inst.cleared_at.is_some_and(|t| t <= cmd.issued_at);
                        if cleared && r.kind != CommandKind::Comment {
                            (Outcome::Refused, Some(ALERT_CLEARED))
                        } else {
                            let note = apply(cmd, inst, &mut d.comments, &mut names);
                            if r.kind != CommandKind::Comment && !dirty.contains(&i) {
                                dirty.push(i);
                            }
                            d.changes.push(alert_updated(cmd, system, inst));
                            (Outcome::Applied, note)
                        }
                    }
                }
            }
        };
        d.tally.count(r.kind, outcome);
        d.audit.push(AuditRow {
            command_id: cmd.command_id.clone(),
            kind: r.kind.as_str(),
            system_id: cmd.system_id.clone(),
            actor: r.actor.clone(),
            alert_id: r.alert.as_ref().map(|a| a.alert_id.clone()),
            alert_opened_at: r.alert.as_ref().map(|a| a.opened_at),
            assignee: r.assignee.clone(),
            comment: r.comment.clone(),
            issued_at: cmd.issued_at,
            recorded_at: now,
            publisher: cmd.publisher.clone(),
            outcome: outcome.as_str(),
            reason,
        });
    }
    d.states = dirty
        .into_iter()
        .map(|i| AlertStateRow {
            id: instances[i].id,
            state: instances[i].state.clone(),
        })
        .collect();
    for (name, ops) in names {
        if ops.forgotten {
            d.forget.push(name.clone());
        }
        if let Some(at) = ops.used_at {
            d.remember.push((name, at));
        }
    }
    d
}

/// Applies an alert command to its (open, or for a comment any) instance; a note when it
/// changed nothing.
fn apply(
    cmd: &CommandRow,
    inst: &mut InstanceRow,
    comments: &mut Vec<CommentRow>,
    names: &mut BTreeMap<String, NameOps>,
) -> Option<&'static str> {
    let r = &cmd.record;
    let s = &mut inst.state;
    match r.kind {
        CommandKind::Acknowledge => {
            if s.acknowledged_by.is_some() {
                return Some(ALREADY_ACKNOWLEDGED);
            }
            s.acknowledged_by = Some(r.actor.clone());
            s.acknowledged_at = Some(cmd.issued_at);
        }
        CommandKind::Unacknowledge => {
            if s.acknowledged_by.is_none() {
                return Some(NOT_ACKNOWLEDGED);
            }
            s.acknowledged_by = None;
            s.acknowledged_at = None;
        }
        CommandKind::Assign => {
            s.assignee = r.assignee.clone();
            s.assigned_by = Some(r.actor.clone());
            s.assigned_at = Some(cmd.issued_at);
            if let Some(name) = &r.assignee {
                let ops = names.entry(name.clone()).or_default();
                ops.used_at = Some(ops.used_at.map_or(cmd.issued_at, |t| t.max(cmd.issued_at)));
            }
        }
        CommandKind::Unassign => {
            if s.assignee.is_none() {
                return Some(NOT_ASSIGNED);
            }
            s.assignee = None;
            s.assigned_by = None;
            s.assigned_at = None;
        }
        CommandKind::Comment => comments.push(CommentRow {
            command_id: cmd.command_id.clone(),
            system_id: inst.system_id.clone(),
            alert_id: inst.alert_id.clone(),
            opened_at: inst.first_seen,
            author: r.actor.clone(),
            at: cmd.issued_at,
            body: r.comment.clone().unwrap_or_default(),
        }),
        CommandKind::PollNow | CommandKind::ForgetAssignee | CommandKind::RememberAssignee => {}
    }
    None
}

/// The `alert_updated` change of an applied alert command.
fn alert_updated(cmd: &CommandRow, system: &KnownSystem, inst: &InstanceRow) -> Change {
    Change {
        system_id: cmd.system_id.clone(),
        observed_at: cmd.issued_at,
        record: ChangeRecord {
            kind: ChangeKind::AlertUpdated,
            cause_event_id: cmd.command_id.clone(),
            vendor: system.vendor,
            // The inventory name and tags are put over it by `derive::add_context`.
            system_name: Some(system.name.clone().unwrap_or_else(|| cmd.system_id.clone())),
            tags: BTreeMap::new(),
            alert: Some(derive::stored_alert(&inst.alert_id, Some(&inst.details))),
            alert_opened_at: Some(inst.first_seen),
            from: None,
            to: None,
            threshold_percent: None,
            rising: None,
            capacity: None,
            command: Some(Box::new(cmd.record.clone())),
            command_id: Some(cmd.command_id.clone()),
        },
    }
}

/// Applies and audits the batch's commands (after its snapshots, in its transaction).
pub(crate) async fn write<D: Dialect>(
    c: &mut Conn<D>,
    commands: &[CommandRow],
    meta: &CommitMeta<'_>,
    rows: &mut RowCounts,
) -> Result<(), StoreError> {
    let ids: Vec<&str> = commands.iter().map(|c| c.command_id.as_str()).collect();
    let audited = D::audited_commands(c, &ids).await?;
    let fresh: Vec<&CommandRow> = commands
        .iter()
        .filter(|c| !audited.contains(&c.command_id))
        .collect();
    if fresh.is_empty() {
        return Ok(());
    }
    let mut systems: Vec<&str> = fresh
        .iter()
        .filter(|c| !c.record.kind.targets_fleet())
        .map(|c| c.system_id.as_str())
        .collect();
    systems.sort_unstable();
    systems.dedup();
    let mut keys: Vec<(&str, &str, i64)> = fresh.iter().filter_map(|c| c.instance()).collect();
    keys.sort_unstable();
    keys.dedup();
    let oldest_poll = fresh
        .iter()
        .filter(|c| c.record.kind == CommandKind::PollNow)
        .map(|c| c.issued_at)
        .min();
    let ctx = CommandContext {
        audited,
        systems: match systems.is_empty() {
            true => HashMap::new(),
            false => D::command_systems(c, &systems).await?,
        },
        instances: match keys.is_empty() {
            true => Vec::new(),
            false => D::alert_instances(c, &keys).await?,
        },
        collectors: match oldest_poll {
            Some(t) => live_collectors::<D::Db>(c, t - LIVE_COLLECTOR_MS).await?,
            None => Vec::new(),
        },
    };
    let mut d = decide(commands, &ctx, meta.now);

    if !d.states.is_empty() {
        rows.alerts += D::set_alert_states(c, &d.states).await?;
    }
    if !d.comments.is_empty() {
        rows.alert_comments += D::insert_alert_comments(c, &d.comments).await?;
    }
    for name in &d.forget {
        rows.assignees += D::Db::execute(
            c,
            "DELETE FROM assignees WHERE name = $1".into_sql_str(),
            &[Bind::Text(name)],
        )
        .await?;
    }
    if !d.remember.is_empty() {
        rows.assignees += D::upsert_assignees(c, &d.remember).await?;
    }
    if !d.audit.is_empty() {
        rows.command_audit += D::insert_command_audit(c, &d.audit).await?;
    }
    rows.commands.add(&d.tally);
    super::write::write_changes::<D>(c, &mut d.changes, meta, rows).await
}

/// The collectors whose last heartbeat is at or after `since`, with the systems they own.
async fn live_collectors<DB: Sql>(
    c: &mut DB::Connection,
    since: i64,
) -> Result<Vec<LiveCollector>, StoreError> {
    let rows = DB::fetch_all(
        c,
        "SELECT id, systems, last_seen FROM collectors WHERE last_seen >= $1".into_sql_str(),
        &[Bind::Int(since)],
    )
    .await?;
    let mut out = Vec::with_capacity(rows.len());
    for r in &rows {
        let systems = DB::text(r, 1)?;
        out.push(LiveCollector {
            id: DB::text(r, 0)?,
            // A malformed list owns nothing.
            systems: serde_json::from_str(&systems).unwrap_or_default(),
            last_seen: DB::int(r, 2)?,
        });
    }
    Ok(out)
}

/// The known systems of rows `(id, systems.vendor, system_state.vendor, system_state.name)`
/// (a system is known when it has either row).
pub(crate) fn known_systems<R: Row>(rows: &[R]) -> Result<HashMap<String, KnownSystem>, StoreError>
where
    usize: ColumnIndex<R>,
    for<'r> String: Decode<'r, R::Database> + Type<R::Database>,
{
    let mut out = HashMap::with_capacity(rows.len());
    for r in rows {
        let inventory: Option<String> = r.try_get(1)?;
        let state: Option<String> = r.try_get(2)?;
        let vendor = inventory
            .as_deref()
            .and_then(Vendor::parse)
            .or_else(|| state.as_deref().and_then(Vendor::parse));
        if let Some(vendor) = vendor {
            out.insert(
                r.try_get(0)?,
                KnownSystem {
                    vendor,
                    name: r.try_get(3)?,
                },
            );
        }
    }
    Ok(out)
}

/// The columns [`instance_rows`] reads, in its order, from the `alerts` row `a`.
macro_rules! instance_columns {
    () => {
        "a.id, a.system_id, a.alert_id, a.first_seen, a.cleared_at, \
         a.severity, a.vendor_severity, a.title, a.component, a.opened_at, \
         a.acknowledged_by, a.acknowledged_at, a.assignee, a.assigned_by, a.assigned_at"
    };
}
pub(crate) use instance_columns;

/// The instances of rows selected with [`instance_columns`].
pub(crate) fn instance_rows<R: Row>(rows: &[R]) -> Result<Vec<InstanceRow>, StoreError>
where
    usize: ColumnIndex<R>,
    for<'r> String: Decode<'r, R::Database> + Type<R::Database>,
    for<'r> i64: Decode<'r, R::Database> + Type<R::Database>,
{
    rows.iter()
        .map(|r| {
            Ok(InstanceRow {
                id: r.try_get(0)?,
                system_id: r.try_get(1)?,
                alert_id: r.try_get(2)?,
                first_seen: r.try_get(3)?,
                cleared_at: r.try_get(4)?,
                details: AlertDetails {
                    severity: r.try_get(5)?,
                    vendor_severity: r.try_get(6)?,
                    title: r.try_get(7)?,
                    component: r.try_get(8)?,
                    opened_at: r.try_get(9)?,
                },
                state: AlertState {
                    acknowledged_by: r.try_get(10)?,
                    acknowledged_at: r.try_get(11)?,
                    assignee: r.try_get(12)?,
                    assigned_by: r.try_get(13)?,
                    assigned_at: r.try_get(14)?,
                },
            })
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use sdash_proto::{AlertInstance, FLEET_TARGET};

    const T: i64 = 1_764_000_000_000;

    fn cmd(id: &str, kind: CommandKind, system: &str, at: i64) -> CommandRow {
        CommandRow {
            command_id: id.into(),
            system_id: system.into(),
            publisher: "api-1".into(),
            issued_at: at,
            record: CommandRecord {
                kind,
                actor: "alice".into(),
                alert: kind.targets_alert().then(|| AlertInstance {
                    alert_id: "a-1".into(),
                    opened_at: T,
                }),
                assignee: matches!(
                    kind,
                    CommandKind::Assign
                        | CommandKind::ForgetAssignee
                        | CommandKind::RememberAssignee
                )
                .then(|| "bob".into()),
                comment: (kind == CommandKind::Comment).then(|| "looking".into()),
            },
        }
    }

    fn by(mut c: CommandRow, actor: &str) -> CommandRow {
        c.record.actor = actor.into();
        c
    }

    fn instance(id: i64, first_seen: i64, cleared_at: Option<i64>) -> InstanceRow {
        InstanceRow {
            id,
            system_id: "fa-01".into(),
            alert_id: "a-1".into(),
            first_seen,
            cleared_at,
            details: AlertDetails {
                severity: "warning".into(),
                vendor_severity: "warning".into(),
                title: "alert a-1".into(),
                component: Some("ct0".into()),
                opened_at: None,
            },
            state: AlertState::default(),
        }
    }

    fn ctx(instances: Vec<InstanceRow>) -> CommandContext {
        CommandContext {
            systems: HashMap::from([(
                "fa-01".to_owned(),
                KnownSystem {
                    vendor: Vendor::Pure,
                    name: Some("array one".into()),
                },
            )]),
            instances,
            ..Default::default()
        }
    }

    fn outcomes(d: &Decisions) -> Vec<(&str, &str, Option<&str>)> {
        d.audit
            .iter()
            .map(|a| (a.command_id.as_str(), a.outcome, a.reason))
            .collect()
    }

    #[test]
    fn acknowledge_keeps_the_first_and_unacknowledge_clears_it() {
        let d = decide(
            &[
                by(cmd("c1", CommandKind::Acknowledge, "fa-01", T + 1), "alice"),
                by(cmd("c2", CommandKind::Acknowledge, "fa-01", T + 2), "carol"),
            ],
            &ctx(vec![instance(7, T, None)]),
            T + 10,
        );
        assert_eq!(
            outcomes(&d),
            vec![
                ("c1", "applied", None),
                ("c2", "applied", Some(ALREADY_ACKNOWLEDGED))
            ]
        );
        assert_eq!(d.states.len(), 1);
        assert_eq!(d.states[0].id, 7);
        assert_eq!(d.states[0].state.acknowledged_by.as_deref(), Some("alice"));
        assert_eq!(d.states[0].state.acknowledged_at, Some(T + 1));
        assert_eq!(d.changes.len(), 2);
        assert!(d.audit.iter().all(|a| a.recorded_at == T + 10));

        // In stream order: acknowledged then taken back within one batch.
        let d = decide(
            &[
                cmd("c1", CommandKind::Acknowledge, "fa-01", T + 1),
                cmd("c2", CommandKind::Unacknowledge, "fa-01", T + 2),
                cmd("c3", CommandKind::Unacknowledge, "fa-01", T + 3),
            ],
            &ctx(vec![instance(7, T, None)]),
            T + 10,
        );
        assert_eq!(d.states[0].state, AlertState::default());
        assert_eq!(d.audit[2].reason, Some(NOT_ACKNOWLEDGED));
    }

    #[test]
    fn assign_sets_the_assignee_and_remembers_the_name() {
        let d = decide(
            &[
                cmd("c1", CommandKind::Assign, "fa-01", T + 1),
                cmd("c2", CommandKind::Unassign, "fa-01", T + 2),
                cmd("c3", CommandKind::Unassign, "fa-01", T + 3),
                cmd("c4", CommandKind::Assign, "fa-01", T + 4),
            ],
            &ctx(vec![instance(7, T, None)]),
            T + 10,
        );
        assert_eq!(d.audit[2].reason, Some(NOT_ASSIGNED));
        let s = &d.states[0].state;
        assert_eq!(s.assignee.as_deref(), Some("bob"));
        assert_eq!(s.assigned_by.as_deref(), Some("alice"));
        assert_eq!(s.assigned_at, Some(T + 4));
        assert_eq!(d.remember, vec![("bob".to_owned(), T + 4)]);
        assert!(d.forget.is_empty());
    }

    #[test]
    fn refusals_name_their_reason() {
        let mut unknown_alert = cmd("c2", CommandKind::Acknowledge, "fa-01", T + 1);
        if let Some(a) = &mut unknown_alert.record.alert {
            a.opened_at = T - 5; // an earlier instance of the same alert id
        }
        let d = decide(
            &[
                cmd("c1", CommandKind::Acknowledge, "fa-99", T + 1),
                unknown_alert,
                cmd("c3", CommandKind::Assign, "fa-01", T + 60),
                cmd("c4", CommandKind::Comment, "fa-01", T + 61),
                cmd("c5", CommandKind::Comment, "fa-99", T + 61),
                cmd("c6", CommandKind::PollNow, "fa-99", T + 61),
            ],
            &ctx(vec![instance(7, T, Some(T + 50))]),
            T + 100,
        );
        assert_eq!(
            outcomes(&d),
            vec![
                ("c1", "refused", Some(UNKNOWN_SYSTEM)),
                ("c2", "refused", Some(UNKNOWN_ALERT)),
                ("c3", "refused", Some(ALERT_CLEARED)),
                ("c4", "applied", None),
                ("c5", "refused", Some(UNKNOWN_SYSTEM)),
                ("c6", "refused", Some(UNKNOWN_SYSTEM)),
            ]
        );
        // Only the comment (kept on a cleared instance) did anything.
        assert!(d.states.is_empty() && d.remember.is_empty());
        assert_eq!(d.comments.len(), 1);
        assert_eq!(d.changes.len(), 1);
        assert_eq!(d.tally.total(), 6);
    }

    #[test]
    fn a_clear_after_the_command_was_given_does_not_refuse_it() {
        // The clearing snapshot (T + 50) came in the same batch as the acknowledgement given
        // at T + 40: the instance was open when the operator acted.
        let d = decide(
            &[cmd("c1", CommandKind::Acknowledge, "fa-01", T + 40)],
            &ctx(vec![instance(7, T, Some(T + 50))]),
            T + 100,
        );
        assert_eq!(outcomes(&d), vec![("c1", "applied", None)]);
    }

    #[test]
    fn a_command_is_decided_once() {
        let mut c = ctx(vec![instance(7, T, None)]);
        c.audited.insert("c0".into());
        let d = decide(
            &[
                cmd("c0", CommandKind::Acknowledge, "fa-01", T + 1),
                cmd("c1", CommandKind::Comment, "fa-01", T + 2),
                cmd("c1", CommandKind::Comment, "fa-01", T + 2),
            ],
            &c,
            T + 10,
        );
        assert_eq!(outcomes(&d), vec![("c1", "applied", None)]);
        assert_eq!(d.comments.len(), 1);
        assert!(d.states.is_empty());
    }

    #[test]
    fn poll_now_is_dispatched_to_a_live_owner() {
        let mut c = ctx(vec![]);
        c.collectors = vec![
            LiveCollector {
                id: "stale".into(),
                systems: vec!["fa-01".into()],
                last_seen: T - LIVE_COLLECTOR_MS - 1,
            },
            LiveCollector {
                id: "other".into(),
                systems: vec!["fa-02".into()],
                last_seen: T,
            },
        ];
        let d = decide(&[cmd("p1", CommandKind::PollNow, "fa-01", T)], &c, T);
        assert_eq!(
            outcomes(&d),
            vec![("p1", "no_collector", Some(NO_COLLECTOR))]
        );
        c.collectors[0].last_seen = T - LIVE_COLLECTOR_MS;
        let d = decide(&[cmd("p1", CommandKind::PollNow, "fa-01", T)], &c, T);
        assert_eq!(outcomes(&d), vec![("p1", "dispatched", None)]);
        assert!(d.changes.is_empty());
        assert_eq!(d.tally.counts(), vec![("poll_now", "dispatched", 1)]);
    }

    #[test]
    fn the_assignee_list_follows_the_batch_in_order() {
        let d = decide(
            &[
                cmd("r1", CommandKind::RememberAssignee, FLEET_TARGET, T + 5),
                cmd("f1", CommandKind::ForgetAssignee, FLEET_TARGET, T + 6),
                cmd("r2", CommandKind::RememberAssignee, FLEET_TARGET, T + 1),
            ],
            &CommandContext::default(),
            T + 10,
        );
        assert_eq!(d.forget, vec!["bob".to_owned()]);
        // Forgotten, then used again: deleted first, then added with the use after the forget.
        assert_eq!(d.remember, vec![("bob".to_owned(), T + 1)]);
        let d = decide(
            &[
                cmd("r1", CommandKind::RememberAssignee, FLEET_TARGET, T + 5),
                cmd("f1", CommandKind::ForgetAssignee, FLEET_TARGET, T + 6),
            ],
            &CommandContext::default(),
            T + 10,
        );
        assert!(d.remember.is_empty());
        let mut nameless = cmd("r3", CommandKind::RememberAssignee, FLEET_TARGET, T);
        nameless.record.assignee = None;
        let d = decide(&[nameless], &CommandContext::default(), T);
        assert_eq!(outcomes(&d), vec![("r3", "refused", Some(NO_ASSIGNEE))]);
    }

    #[test]
    fn an_applied_alert_command_gives_an_alert_updated_change() {
        let d = decide(
            &[cmd("c1", CommandKind::Comment, "fa-01", T + 3)],
            &ctx(vec![instance(7, T, None)]),
            T + 10,
        );
        let [change] = d.changes.as_slice() else {
            panic!("{:?}", d.changes)
        };
        assert_eq!(change.system_id, "fa-01");
        assert_eq!(change.observed_at, T + 3);
        let r = &change.record;
        assert_eq!(r.kind, ChangeKind::AlertUpdated);
        assert_eq!(r.cause_event_id, "c1");
        assert_eq!(r.command_id.as_deref(), Some("c1"));
        assert_eq!(r.alert_opened_at, Some(T));
        assert_eq!(r.system_name.as_deref(), Some("array one"));
        assert_eq!(r.vendor, Vendor::Pure);
        assert_eq!(
            r.alert.as_ref().map(|a| a.title.as_str()),
            Some("alert a-1")
        );
        assert_eq!(
            r.command.as_ref().map(|c| c.comment.as_deref()),
            Some(Some("looking"))
        );
        assert!(r.from.is_none() && r.to.is_none());
    }

    #[test]
    fn planned_commands_are_cleaned_and_trimmed() {
        let env = Envelope::new(
            "api-1",
            "fa-01",
            CommandRecord {
                kind: CommandKind::Assign,
                actor: " alice ".into(),
                alert: Some(AlertInstance {
                    alert_id: "a\0b".into(),
                    opened_at: T,
                }),
                assignee: Some("  bob\n".into()),
                comment: None,
            },
        );
        let row = CommandRow::of(env.clone());
        assert_eq!(row.command_id, env.event_id);
        assert_eq!(row.record.actor, "alice");
        assert_eq!(row.record.assignee.as_deref(), Some("bob"));
        assert_eq!(row.instance(), Some(("fa-01", "a\u{FFFD}b", T)));
    }
}
