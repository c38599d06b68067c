//! Operator commands (#14) at the store level, on both backends: alert commands applied to the
//! alert instance, every command audited once with its actor and outcome, refusals with their
//! reason, the assignee list, poll-now audited by whether a live collector owns the system, and
//! the `alert_updated` changes in the outbox.

mod common;

use common::*;
use sdash_harness::{Backend, TestDatabase};
use sdash_proto::subjects::Kind;
use sdash_proto::*;
use sdash_writer::{BatchOutcome, Incoming, Store};

async fn write(store: &Store, batch: &[Incoming]) -> BatchOutcome {
    let outcome = store
        .write_batch(batch)
        .await
        .unwrap_or_else(|e| panic!("write_batch: {e}"));
    assert!(
        outcome.dead_lettered.is_empty(),
        "dead letters: {:?}",
        outcome.dead_lettered
    );
    outcome
}

const T0: i64 = 1_764_000_000_000;
const SYS: &str = "fa-01";

/// A command message with id `id` given at `at` by `actor`.
fn command(seq: u64, system: &str, id: &str, at: i64, record: CommandRecord) -> Incoming {
    let mut env = envelope(system, id, at, record);
    env.collector_id = "api-1".into();
    incoming(seq, env.body.kind.subject(system), enc(&env))
}

fn on_alert(kind: CommandKind, actor: &str, alert_id: &str, opened_at: i64) -> CommandRecord {
    CommandRecord {
        kind,
        actor: actor.into(),
        alert: Some(AlertInstance {
            alert_id: alert_id.into(),
            opened_at,
        }),
        assignee: None,
        comment: None,
    }
}

fn assign(actor: &str, alert_id: &str, opened_at: i64, assignee: &str) -> CommandRecord {
    CommandRecord {
        assignee: Some(assignee.into()),
        ..on_alert(CommandKind::Assign, actor, alert_id, opened_at)
    }
}

fn comment(actor: &str, alert_id: &str, opened_at: i64, text: &str) -> CommandRecord {
    CommandRecord {
        comment: Some(text.into()),
        ..on_alert(CommandKind::Comment, actor, alert_id, opened_at)
    }
}

/// A fleet-wide command (on an assignee name, not an alert).
fn fleet_command(
    seq: u64,
    id: &str,
    at: i64,
    kind: CommandKind,
    actor: &str,
    name: &str,
) -> Incoming {
    let record = CommandRecord {
        kind,
        actor: actor.into(),
        alert: None,
        assignee: Some(name.into()),
        comment: None,
    };
    command(seq, FLEET_TARGET, id, at, record)
}

fn poll_now(actor: &str) -> CommandRecord {
    CommandRecord {
        kind: CommandKind::PollNow,
        actor: actor.into(),
        alert: None,
        assignee: None,
        comment: None,
    }
}

fn online(seq: u64, system: &str, at: i64, alerts: &[&str]) -> Incoming {
    snapshot_msg(
        seq,
        system,
        at,
        snapshot_body(Status::Online, Health::Ok, alerts, Some(100)),
    )
}

fn heartbeat(seq: u64, collector: &str, at: i64, systems: &[&str]) -> Incoming {
    let mut env = envelope(
        "",
        &format!("hb-{collector}-{at}"),
        at,
        CollectorRecord {
            version: "1".into(),
            systems: systems.iter().map(|s| s.to_string()).collect(),
            polls: 0,
            failures: 0,
            outbox_depth: 0,
            started_at: T0,
        },
    );
    env.collector_id = collector.into();
    incoming(seq, Kind::Collector.subject(collector), enc(&env))
}

/// `(command_id, kind, actor, outcome, reason)` of every audit row, by command id.
async fn audit(db: &TestDatabase) -> Vec<Vec<Option<String>>> {
    rows(
        db,
        "SELECT command_id, kind, actor, outcome, reason FROM command_audit ORDER BY command_id",
    )
    .await
}

fn row(cells: &[Option<&str>]) -> Vec<Option<String>> {
    cells.iter().map(|c| c.map(str::to_owned)).collect()
}

/// The `alert_updated` changes waiting in the outbox, in order.
async fn alert_updates(store: &Store) -> Vec<Envelope<ChangeRecord>> {
    store
        .pending_changes(1000)
        .await
        .unwrap_or_else(|e| panic!("pending: {e}"))
        .into_iter()
        .filter(|p| p.kind == "alert_updated")
        .map(|p| {
            assert_eq!(p.subject(), Kind::Change.subject(&p.system_id));
            decode::<Envelope<ChangeRecord>>(&p.payload).unwrap_or_else(|e| panic!("{e}"))
        })
        .collect()
}

/// The operator columns of the `alerts` rows of `alert_id`, oldest instance first.
async fn instances(db: &TestDatabase, alert_id: &str) -> Vec<Vec<Option<String>>> {
    rows(
        db,
        &format!(
            "SELECT CAST(first_seen AS TEXT), CAST(cleared_at AS TEXT), acknowledged_by, \
             CAST(acknowledged_at AS TEXT), assignee, assigned_by, CAST(assigned_at AS TEXT) \
             FROM alerts WHERE system_id = '{SYS}' AND alert_id = '{alert_id}' ORDER BY first_seen"
        ),
    )
    .await
}

async fn alert_commands_are_applied_to_the_instance(backend: Backend) {
    let db = TestDatabase::new(backend).await;
    let store = open(&db).await;
    write(&store, &[online(1, SYS, T0, &["a1", "a2"])]).await;
    let out = write(
        &store,
        &[
            command(
                2,
                SYS,
                "cmd-ack",
                T0 + 10,
                on_alert(CommandKind::Acknowledge, "alice", "a1", T0),
            ),
            command(
                3,
                SYS,
                "cmd-assign",
                T0 + 11,
                assign("carol", "a1", T0, "bob"),
            ),
            command(
                4,
                SYS,
                "cmd-comment",
                T0 + 12,
                comment("dave", "a1", T0, "  replacing the fan  "),
            ),
        ],
    )
    .await;
    assert_eq!(out.rows.command_audit, 3);
    assert_eq!(out.rows.alert_comments, 1);
    assert_eq!(
        out.rows.commands.counts(),
        vec![
            ("acknowledge", "applied", 1),
            ("assign", "applied", 1),
            ("comment", "applied", 1),
        ]
    );

    let t = |v: i64| Some((T0 + v).to_string());
    assert_eq!(
        instances(&db, "a1").await,
        vec![vec![
            Some(T0.to_string()),
            None,
            Some("alice".into()),
            t(10),
            Some("bob".into()),
            Some("carol".into()),
            t(11),
        ]]
    );
    // The other alert is untouched.
    assert_eq!(
        instances(&db, "a2").await,
        vec![vec![
            Some(T0.to_string()),
            None,
            None,
            None,
            None,
            None,
            None
        ]]
    );
    assert_eq!(
        rows(
            &db,
            "SELECT command_id, system_id, alert_id, CAST(opened_at AS TEXT), author, CAST(at AS TEXT), body \
             FROM alert_comments"
        )
        .await,
        vec![row(&[
            Some("cmd-comment"),
            Some(SYS),
            Some("a1"),
            Some(&T0.to_string()),
            Some("dave"),
            Some(&(T0 + 12).to_string()),
            Some("replacing the fan"),
        ])]
    );
    assert_eq!(
        rows(
            &db,
            "SELECT name, CAST(last_used_at AS TEXT) FROM assignees"
        )
        .await,
        vec![row(&[Some("bob"), Some(&(T0 + 11).to_string())])]
    );
    // The audit names each actor, with what the command said.
    assert_eq!(
        audit(&db).await,
        vec![
            row(&[
                Some("cmd-ack"),
                Some("acknowledge"),
                Some("alice"),
                Some("applied"),
                None
            ]),
            row(&[
                Some("cmd-assign"),
                Some("assign"),
                Some("carol"),
                Some("applied"),
                None
            ]),
            row(&[
                Some("cmd-comment"),
                Some("comment"),
                Some("dave"),
                Some("applied"),
                None
            ]),
        ]
    );
    assert_eq!(
        rows(
            &db,
            "SELECT system_id, alert_id, CAST(alert_opened_at AS TEXT), assignee, comment, \
             CAST(issued_at AS TEXT), publisher FROM command_audit ORDER BY command_id"
        )
        .await,
        vec![
            row(&[
                Some(SYS),
                Some("a1"),
                Some(&T0.to_string()),
                None,
                None,
                Some(&(T0 + 10).to_string()),
                Some("api-1")
            ]),
            row(&[
                Some(SYS),
                Some("a1"),
                Some(&T0.to_string()),
                Some("bob"),
                None,
                Some(&(T0 + 11).to_string()),
                Some("api-1")
            ]),
            row(&[
                Some(SYS),
                Some("a1"),
                Some(&T0.to_string()),
                None,
                Some("replacing the fan"),
                Some(&(T0 + 12).to_string()),
                Some("api-1")
            ]),
        ]
    );
    assert_eq!(
        count(&db, "command_audit WHERE recorded_at < issued_at").await,
        0,
        "recorded_at is the writer's commit time"
    );

    // One alert_updated change per applied command, in stream order, with the instance.
    let changes = alert_updates(&store).await;
    let summary: Vec<_> = changes
        .iter()
        .map(|c| {
            (
                c.system_id.as_str(),
                c.observed_at,
                c.body.cause_event_id.as_str(),
                c.body.command_id.as_deref(),
                c.body.command.as_ref().map(|k| k.kind),
                c.body.command.as_ref().map(|k| k.actor.as_str()),
                c.body.alert_opened_at,
            )
        })
        .collect();
    assert_eq!(
        summary,
        vec![
            (
                SYS,
                T0 + 10,
                "cmd-ack",
                Some("cmd-ack"),
                Some(CommandKind::Acknowledge),
                Some("alice"),
                Some(T0)
            ),
            (
                SYS,
                T0 + 11,
                "cmd-assign",
                Some("cmd-assign"),
                Some(CommandKind::Assign),
                Some("carol"),
                Some(T0)
            ),
            (
                SYS,
                T0 + 12,
                "cmd-comment",
                Some("cmd-comment"),
                Some(CommandKind::Comment),
                Some("dave"),
                Some(T0)
            ),
        ]
    );
    let first = &changes[0].body;
    assert_eq!(first.kind, ChangeKind::AlertUpdated);
    assert_eq!(first.vendor, Vendor::Pure);
    assert_eq!(first.system_name.as_deref(), Some(SYS));
    assert_eq!(first.alert.as_ref(), Some(&alert("a1")));
    assert_eq!(
        changes[2]
            .body
            .command
            .as_ref()
            .and_then(|c| c.comment.as_deref()),
        Some("replacing the fan")
    );
    assert!(changes.iter().all(|c| c.event_id != c.body.cause_event_id));
}

/// An alert opened by a snapshot of the batch can be acted on in the same batch, whatever the
/// order of the two in the stream; the change that carries the inventory name and tags.
async fn an_alert_opened_in_the_batch_can_be_acknowledged(backend: Backend) {
    let db = TestDatabase::new(backend).await;
    let store = open(&db).await;
    let inventory = envelope(
        SYS,
        "inv-1",
        T0 - 1000,
        SystemRecord {
            name: "Array One".into(),
            vendor: Vendor::Pure,
            address: "https://fa-01.example".into(),
            tags: [("site".to_owned(), "fra".to_owned())].into(),
            interval_s: 60,
            enabled: true,
            removed: false,
        },
    );
    write(
        &store,
        &[incoming(1, Kind::System.subject(SYS), enc(&inventory))],
    )
    .await;
    write(
        &store,
        &[
            command(
                2,
                SYS,
                "cmd-ack",
                T0 + 5,
                on_alert(CommandKind::Acknowledge, "alice", "a1", T0),
            ),
            online(3, SYS, T0, &["a1"]),
        ],
    )
    .await;
    assert_eq!(
        audit(&db).await,
        vec![row(&[
            Some("cmd-ack"),
            Some("acknowledge"),
            Some("alice"),
            Some("applied"),
            None
        ])]
    );
    assert_eq!(
        scalar(
            &db,
            "SELECT CAST(count(*) AS TEXT) FROM alerts WHERE acknowledged_by = 'alice'"
        )
        .await,
        1
    );
    let pending = store
        .pending_changes(100)
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    // The snapshot's changes come first, then the command's.
    let kinds: Vec<&str> = pending.iter().map(|p| p.kind.as_str()).collect();
    assert_eq!(
        kinds,
        vec![
            "status_changed",
            "hardware_changed",
            "cluster_changed",
            "alert_opened",
            "alert_updated"
        ]
    );
    let changes = alert_updates(&store).await;
    assert_eq!(changes[0].body.system_name.as_deref(), Some("Array One"));
    assert_eq!(
        changes[0].body.tags.get("site").map(String::as_str),
        Some("fra")
    );
}

async fn a_command_is_applied_once(backend: Backend) {
    let db = TestDatabase::new(backend).await;
    let store = open(&db).await;
    write(&store, &[online(1, SYS, T0, &["a1"])]).await;
    let note = command(2, SYS, "cmd-1", T0 + 1, comment("alice", "a1", T0, "once"));
    let ack = command(
        3,
        SYS,
        "cmd-2",
        T0 + 2,
        on_alert(CommandKind::Acknowledge, "alice", "a1", T0),
    );
    // Twice in one batch (published twice with the same id, under two stream sequences).
    let mut note_again = note.clone();
    note_again.stream_seq = 4;
    let out = write(&store, &[note.clone(), ack.clone(), note_again]).await;
    assert_eq!(out.rows.command_audit, 2);
    assert_eq!(out.rows.commands.total(), 2);
    // Redelivered in a later batch, after the acknowledgement was taken back: the old
    // acknowledgement is not applied again.
    write(
        &store,
        &[command(
            5,
            SYS,
            "cmd-3",
            T0 + 3,
            on_alert(CommandKind::Unacknowledge, "bob", "a1", T0),
        )],
    )
    .await;
    let mut redelivered = ack.clone();
    redelivered.deliveries = 2;
    let out = write(&store, &[note, redelivered]).await;
    assert_eq!(out.rows.command_audit, 0);
    assert_eq!(out.rows.alert_comments, 0);
    assert_eq!(out.rows.change_outbox, 0);
    assert_eq!(out.rows.commands.total(), 0);

    assert_eq!(count(&db, "alert_comments").await, 1);
    assert_eq!(count(&db, "command_audit").await, 3);
    assert_eq!(count(&db, "alerts WHERE acknowledged_by IS NULL").await, 1);
    assert_eq!(alert_updates(&store).await.len(), 3);
}

async fn refusals_are_audited_with_their_reason(backend: Backend) {
    let db = TestDatabase::new(backend).await;
    let store = open(&db).await;
    write(&store, &[online(1, SYS, T0, &["a1", "a2"])]).await;
    // a2 clears at T0 + 100.
    write(&store, &[online(2, SYS, T0 + 100, &["a1"])]).await;
    let before = store
        .pending_changes(100)
        .await
        .unwrap_or_else(|e| panic!("{e}"))
        .len();
    let cmds = [
        // No such system.
        command(
            3,
            "fa-99",
            "r-1",
            T0 + 200,
            on_alert(CommandKind::Acknowledge, "alice", "a1", T0),
        ),
        command(
            4,
            "fa-99",
            "r-2",
            T0 + 200,
            comment("alice", "a1", T0, "hi"),
        ),
        command(5, "fa-99", "r-3", T0 + 200, poll_now("alice")),
        // No such instance (a1 opened at T0, not T0 + 1), no such alert.
        command(
            6,
            SYS,
            "r-4",
            T0 + 200,
            on_alert(CommandKind::Acknowledge, "alice", "a1", T0 + 1),
        ),
        command(7, SYS, "r-5", T0 + 200, assign("alice", "zz", T0, "bob")),
        // a2 had cleared when these were given.
        command(
            8,
            SYS,
            "r-6",
            T0 + 200,
            on_alert(CommandKind::Acknowledge, "alice", "a2", T0),
        ),
        command(9, SYS, "r-7", T0 + 200, assign("alice", "a2", T0, "bob")),
        command(
            10,
            SYS,
            "r-8",
            T0 + 200,
            on_alert(CommandKind::Unassign, "alice", "a2", T0),
        ),
        // A comment on a cleared instance is kept.
        command(
            11,
            SYS,
            "r-9",
            T0 + 200,
            comment("erin", "a2", T0, "post mortem"),
        ),
    ];
    let out = write(&store, &cmds).await;
    assert_eq!(out.rows.command_audit, 9);
    let refused = |id: &str, kind: &str, reason: &str| {
        row(&[
            Some(id),
            Some(kind),
            Some("alice"),
            Some("refused"),
            Some(reason),
        ])
    };
    assert_eq!(
        audit(&db).await,
        vec![
            refused("r-1", "acknowledge", "unknown system"),
            refused("r-2", "comment", "unknown system"),
            refused("r-3", "poll_now", "unknown system"),
            refused("r-4", "acknowledge", "unknown alert"),
            refused("r-5", "assign", "unknown alert"),
            refused("r-6", "acknowledge", "alert cleared"),
            refused("r-7", "assign", "alert cleared"),
            refused("r-8", "unassign", "alert cleared"),
            row(&[
                Some("r-9"),
                Some("comment"),
                Some("erin"),
                Some("applied"),
                None
            ]),
        ]
    );
    // Nothing refused left a trace beyond its audit row.
    assert_eq!(
        count(
            &db,
            "alerts WHERE acknowledged_by IS NOT NULL OR assignee IS NOT NULL"
        )
        .await,
        0
    );
    assert_eq!(count(&db, "assignees").await, 0);
    assert_eq!(
        rows(&db, "SELECT command_id, alert_id, body FROM alert_comments").await,
        vec![row(&[Some("r-9"), Some("a2"), Some("post mortem")])]
    );
    let changes = alert_updates(&store).await;
    assert_eq!(changes.len(), 1);
    assert_eq!(changes[0].body.command_id.as_deref(), Some("r-9"));
    assert_eq!(
        store
            .pending_changes(100)
            .await
            .unwrap_or_else(|e| panic!("{e}"))
            .len(),
        before + 1
    );
    assert_eq!(
        out.rows.commands.counts(),
        vec![
            ("acknowledge", "refused", 3),
            ("assign", "refused", 2),
            ("unassign", "refused", 1),
            ("comment", "applied", 1),
            ("comment", "refused", 1),
            ("poll_now", "refused", 1),
        ]
    );
}

async fn a_reopened_alert_comes_back_unacknowledged(backend: Backend) {
    let db = TestDatabase::new(backend).await;
    let store = open(&db).await;
    write(&store, &[online(1, SYS, T0, &["a1"])]).await;
    write(
        &store,
        &[
            command(
                2,
                SYS,
                "c-ack",
                T0 + 1,
                on_alert(CommandKind::Acknowledge, "alice", "a1", T0),
            ),
            command(3, SYS, "c-assign", T0 + 2, assign("alice", "a1", T0, "bob")),
        ],
    )
    .await;
    // Clears, then opens again: a new instance.
    write(&store, &[online(4, SYS, T0 + 100, &[])]).await;
    write(&store, &[online(5, SYS, T0 + 200, &["a1"])]).await;
    let t = |v: i64| Some((T0 + v).to_string());
    assert_eq!(
        instances(&db, "a1").await,
        vec![
            vec![
                Some(T0.to_string()),
                t(100),
                Some("alice".into()),
                t(1),
                Some("bob".into()),
                Some("alice".into()),
                t(2)
            ],
            vec![t(200), None, None, None, None, None, None],
        ]
    );
    // Acting on the old instance is refused; the new one is acknowledged on its own.
    write(
        &store,
        &[
            command(
                6,
                SYS,
                "c-old",
                T0 + 300,
                on_alert(CommandKind::Unacknowledge, "carol", "a1", T0),
            ),
            command(
                7,
                SYS,
                "c-new",
                T0 + 301,
                on_alert(CommandKind::Acknowledge, "carol", "a1", T0 + 200),
            ),
        ],
    )
    .await;
    assert_eq!(
        rows(
            &db,
            "SELECT command_id, outcome, reason FROM command_audit WHERE actor = 'carol' ORDER BY command_id"
        )
        .await,
        vec![
            row(&[Some("c-new"), Some("applied"), None]),
            row(&[Some("c-old"), Some("refused"), Some("alert cleared")]),
        ]
    );
    let now = instances(&db, "a1").await;
    assert_eq!(now[0][2].as_deref(), Some("alice"));
    assert_eq!(now[1][2].as_deref(), Some("carol"));
    assert_eq!(
        now[1][4], None,
        "the assignment stayed with the old instance"
    );
}

async fn acknowledgement_and_assignment_rules(backend: Backend) {
    let db = TestDatabase::new(backend).await;
    let store = open(&db).await;
    write(&store, &[online(1, SYS, T0, &["a1"])]).await;
    write(
        &store,
        &[
            command(
                2,
                SYS,
                "c1",
                T0 + 1,
                on_alert(CommandKind::Acknowledge, "alice", "a1", T0),
            ),
            // A second acknowledgement keeps the first.
            command(
                3,
                SYS,
                "c2",
                T0 + 2,
                on_alert(CommandKind::Acknowledge, "bob", "a1", T0),
            ),
            command(4, SYS, "c3", T0 + 3, assign("alice", "a1", T0, "bob")),
            // Reassigned.
            command(5, SYS, "c4", T0 + 4, assign("bob", "a1", T0, "carol")),
        ],
    )
    .await;
    let t = |v: i64| Some((T0 + v).to_string());
    assert_eq!(
        instances(&db, "a1").await,
        vec![vec![
            Some(T0.to_string()),
            None,
            Some("alice".into()),
            t(1),
            Some("carol".into()),
            Some("bob".into()),
            t(4)
        ]]
    );
    assert_eq!(
        rows(
            &db,
            "SELECT reason FROM command_audit WHERE command_id = 'c2'"
        )
        .await,
        vec![row(&[Some("already acknowledged")])]
    );
    // Taken back, in a later batch; then once more (nothing to take back: applied, noted).
    write(
        &store,
        &[
            command(
                6,
                SYS,
                "c5",
                T0 + 5,
                on_alert(CommandKind::Unacknowledge, "bob", "a1", T0),
            ),
            command(
                7,
                SYS,
                "c6",
                T0 + 6,
                on_alert(CommandKind::Unassign, "bob", "a1", T0),
            ),
            command(
                8,
                SYS,
                "c7",
                T0 + 7,
                on_alert(CommandKind::Unassign, "bob", "a1", T0),
            ),
        ],
    )
    .await;
    assert_eq!(
        instances(&db, "a1").await,
        vec![vec![
            Some(T0.to_string()),
            None,
            None,
            None,
            None,
            None,
            None
        ]]
    );
    assert_eq!(
        rows(
            &db,
            "SELECT outcome, reason FROM command_audit WHERE command_id = 'c7'"
        )
        .await,
        vec![row(&[Some("applied"), Some("not assigned")])]
    );
    // Both names were used: both are offered.
    assert_eq!(
        rows(&db, "SELECT name FROM assignees ORDER BY name").await,
        vec![row(&[Some("bob")]), row(&[Some("carol")])]
    );
}

async fn the_assignee_list(backend: Backend) {
    use CommandKind::{ForgetAssignee as Forget, RememberAssignee as Remember};
    const ASSIGNEES: &str = "SELECT name, CAST(last_used_at AS TEXT) FROM assignees ORDER BY name";
    let db = TestDatabase::new(backend).await;
    let store = open(&db).await;
    write(&store, &[online(1, SYS, T0, &["a1"])]).await;
    write(
        &store,
        &[
            fleet_command(2, "f1", T0 + 1, Remember, "import", "old-team"),
            fleet_command(3, "f2", T0 + 2, Remember, "import", "xavier"),
            command(4, SYS, "f3", T0 + 3, assign("alice", "a1", T0, "yvonne")),
            fleet_command(5, "f4", T0 + 4, Forget, "alice", "old-team"),
        ],
    )
    .await;
    assert_eq!(
        rows(&db, ASSIGNEES).await,
        vec![
            row(&[Some("xavier"), Some(&(T0 + 2).to_string())]),
            row(&[Some("yvonne"), Some(&(T0 + 3).to_string())]),
        ]
    );
    // Forgetting a name leaves the assignment alone; remembering moves last_used_at forward
    // only; forgetting an unknown name is applied too.
    write(
        &store,
        &[
            fleet_command(6, "f5", T0 + 5, Forget, "alice", "yvonne"),
            fleet_command(7, "f6", T0 + 1, Remember, "import", "xavier"),
            fleet_command(8, "f7", T0 + 6, Forget, "alice", "nobody"),
        ],
    )
    .await;
    assert_eq!(
        rows(&db, ASSIGNEES).await,
        vec![row(&[Some("xavier"), Some(&(T0 + 2).to_string())])]
    );
    assert_eq!(
        rows(&db, "SELECT assignee FROM alerts").await,
        vec![row(&[Some("yvonne")])]
    );
    assert_eq!(
        count(
            &db,
            "command_audit WHERE outcome = 'applied' AND system_id = '_fleet'"
        )
        .await,
        6
    );
    // The list is not about an alert: no alert_updated change.
    assert_eq!(alert_updates(&store).await.len(), 1);
}

async fn poll_now_is_audited_by_ownership(backend: Backend) {
    let db = TestDatabase::new(backend).await;
    let store = open(&db).await;
    let now = now_ms();
    write(
        &store,
        &[
            online(1, "fa-01", now - 5000, &[]),
            online(2, "fa-02", now - 5000, &[]),
            online(3, "fa-03", now - 5000, &[]),
            // col-a is live and owns fa-01; col-b owns fa-03 but its last heartbeat is old.
            heartbeat(4, "col-a", now - 2000, &["fa-01"]),
            heartbeat(5, "col-b", now - 120_000, &["fa-03"]),
        ],
    )
    .await;
    let out = write(
        &store,
        &[
            command(6, "fa-01", "p-1", now, poll_now("alice")),
            command(7, "fa-02", "p-2", now, poll_now("bob")),
            command(8, "fa-03", "p-3", now, poll_now("carol")),
            command(9, "fa-04", "p-4", now, poll_now("dave")),
        ],
    )
    .await;
    assert_eq!(
        audit(&db).await,
        vec![
            row(&[
                Some("p-1"),
                Some("poll_now"),
                Some("alice"),
                Some("dispatched"),
                None
            ]),
            row(&[
                Some("p-2"),
                Some("poll_now"),
                Some("bob"),
                Some("no_collector"),
                Some("no live collector owns this system")
            ]),
            row(&[
                Some("p-3"),
                Some("poll_now"),
                Some("carol"),
                Some("no_collector"),
                Some("no live collector owns this system")
            ]),
            row(&[
                Some("p-4"),
                Some("poll_now"),
                Some("dave"),
                Some("refused"),
                Some("unknown system")
            ]),
        ]
    );
    assert_eq!(
        out.rows.commands.counts(),
        vec![
            ("poll_now", "refused", 1),
            ("poll_now", "dispatched", 1),
            ("poll_now", "no_collector", 2),
        ]
    );
    // col-b comes back (its heartbeat in the same batch as the command counts).
    write(
        &store,
        &[
            heartbeat(10, "col-b", now + 1000, &["fa-03"]),
            command(11, "fa-03", "p-5", now + 1000, poll_now("carol")),
        ],
    )
    .await;
    assert_eq!(
        rows(
            &db,
            "SELECT outcome FROM command_audit WHERE command_id = 'p-5'"
        )
        .await,
        vec![row(&[Some("dispatched")])]
    );
    // poll_now changes no alert and publishes no change.
    assert_eq!(alert_updates(&store).await.len(), 0);
}

/// Through the bus: commands published while no writer runs are applied once it starts, a
/// command published again under another message id (after JetStream's duplicate window) is
/// applied once, and `sdash_writer_commands_total` counts them.
async fn commands_wait_for_the_writer_and_are_counted(backend: Backend) {
    use std::time::Duration;
    let nats = sdash_harness::NatsServer::start();
    let db = TestDatabase::new(backend).await;
    let dir = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
    let js = jetstream(&nats.url()).await;
    let now = now_ms();
    let snap = online(0, SYS, now - 1000, &["a1"]);
    publish_acked(&js, snap.subject, snap.payload, "snap-1").await;
    let ack = command(
        0,
        SYS,
        "bus-ack",
        now,
        on_alert(CommandKind::Acknowledge, "alice", "a1", now - 1000),
    );
    publish_acked(&js, ack.subject.clone(), ack.payload.clone(), "bus-ack").await;
    // The same command again: dropped by JetStream (same message id) ...
    publish_acked(&js, ack.subject.clone(), ack.payload.clone(), "bus-ack").await;
    // ... and published again after the duplicate window (another message id): the writer
    // still applies it once.
    publish_acked(&js, ack.subject, ack.payload, "bus-ack-again").await;
    let poll = command(0, SYS, "bus-poll", now, poll_now("bob"));
    publish_acked(&js, poll.subject, poll.payload, "bus-poll").await;

    let writer = WriterProcess::spawn(&nats.url(), &db.url, "cmd-writer", dir.path(), &[]);
    let ready = sdash_harness::wait_for(Duration::from_secs(30), || async {
        writer.ready().await.then_some(())
    })
    .await;
    assert!(ready.is_some(), "{}", writer.log_text());
    let audited = sdash_harness::wait_for(Duration::from_secs(30), || async {
        (count(&db, "command_audit").await == 2).then_some(())
    })
    .await;
    assert!(audited.is_some(), "{}", writer.log_text());
    assert_eq!(
        rows(&db, "SELECT acknowledged_by FROM alerts").await,
        vec![row(&[Some("alice")])]
    );
    assert_eq!(
        audit(&db).await,
        vec![
            row(&[
                Some("bus-ack"),
                Some("acknowledge"),
                Some("alice"),
                Some("applied"),
                None
            ]),
            row(&[
                Some("bus-poll"),
                Some("poll_now"),
                Some("bob"),
                Some("no_collector"),
                Some("no live collector owns this system")
            ]),
        ]
    );
    let counted = sdash_harness::wait_for(Duration::from_secs(10), || async {
        let body = writer.metrics().await;
        let applied = metric(
            &body,
            r#"sdash_writer_commands_total{kind="acknowledge",outcome="applied"}"#,
        );
        let no_collector = metric(
            &body,
            r#"sdash_writer_commands_total{kind="poll_now",outcome="no_collector"}"#,
        );
        // Every message was consumed: the snapshot, the two copies of the acknowledgement
        // JetStream kept, the poll (and the writer's own changes coming back).
        let messages = metric(&body, "sdash_writer_messages_total").unwrap_or(0.0);
        (messages >= 4.0).then_some((applied, no_collector))
    })
    .await;
    assert_eq!(
        counted,
        Some((Some(1.0), Some(1.0))),
        "{}",
        writer.metrics().await
    );
    assert_eq!(count(&db, "dead_letters").await, 0);
}

both_backends!(
    alert_commands_are_applied_to_the_instance,
    an_alert_opened_in_the_batch_can_be_acknowledged,
    a_command_is_applied_once,
    refusals_are_audited_with_their_reason,
    a_reopened_alert_comes_back_unacknowledged,
    acknowledgement_and_assignment_rules,
    the_assignee_list,
    poll_now_is_audited_by_ownership,
    commands_wait_for_the_writer_and_are_counted,
);
