//! Operator commands (#14): the POST routes that acknowledge, assign and comment alerts, ask for
//! a poll now and forget an assignee, and the GET routes of what they leave behind (the
//! previously used assignees, the command audit log).
//!
//! The API never writes the database: a command is validated, its target resolved from the
//! read-only database (an alert's `id` becomes its instance: system, vendor alert id and
//! `first_seen`), and published to JetStream on `sdash.v1.command.<kind>.<system>` with
//! `Nats-Msg-Id` = the command id (a new UUID v7 event id). The route answers 202 with the ids
//! only after JetStream acknowledged every command; the one writer applies and audits them.
//! A bulk route checks and resolves every alert before it publishes the first command; when
//! publishing fails midway, the 503 names the ids JetStream took before.

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use async_nats::jetstream;
use schemars::JsonSchema;
use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};
use warp::http::{HeaderMap, HeaderValue, StatusCode, header};
use warp::reply::Response;

use sdash_proto::{AlertInstance, CommandKind, CommandRecord, Envelope, FLEET_TARGET};

use super::page::{Keyset, Page};
use super::{limit_param, require_system, rfc3339, system_path_id};
use crate::db::Sql;
use crate::http::{ApiError, ApiResult, Params, json_ok, json_response};
use crate::routes::{COMMAND_KINDS, COMMAND_OUTCOMES, RouteId};
use crate::state::AppState;

/// Most alerts one bulk request may name.
pub const MAX_BULK: usize = 1000;
/// Largest request body accepted by a command route.
pub const MAX_BODY_BYTES: usize = 64 * 1024;

/// What the command routes share: who publishes, how long to wait, the poll-now rate limit.
#[derive(Debug)]
pub struct Commands {
    /// The envelope's `collector_id` of every command published here.
    pub instance_id: String,
    /// How long one publish waits for JetStream's acknowledgement.
    pub publish_timeout: Duration,
    /// Least time between two accepted poll-now commands of one system.
    pub poll_now_min_interval: Duration,
    /// When each system's last poll-now was accepted.
    poll_now: Mutex<HashMap<String, Instant>>,
}

impl Commands {
    pub fn new(
        instance_id: String,
        publish_timeout: Duration,
        poll_now_min_interval: Duration,
    ) -> Commands {
        Commands {
            instance_id,
            publish_timeout,
            poll_now_min_interval,
            poll_now: Mutex::new(HashMap::new()),
        }
    }

    /// Reserves a poll-now of `system` (429 when the last one is too recent); the returned
    /// previous time gives the reservation back with [`Commands::release_poll_now`].
    fn reserve_poll_now(&self, system: &str) -> ApiResult<Option<Instant>> {
        let mut map = self.poll_now.lock().unwrap_or_else(|e| e.into_inner());
        let now = Instant::now();
        let previous = map.get(system).copied();
        if let Some(last) = previous {
            let since = now.saturating_duration_since(last);
            if since < self.poll_now_min_interval {
                let wait = self.poll_now_min_interval - since;
                let retry_after_s = wait.as_secs() + u64::from(wait.subsec_nanos() > 0);
                return Err(ApiError::TooManyRequests {
                    message: format!(
                        "system {system:?} was asked to poll {} s ago; poll-now is accepted at most once per {} s per system (retry in {retry_after_s} s)",
                        since.as_secs(),
                        self.poll_now_min_interval.as_secs_f64().ceil() as u64,
                    ),
                    retry_after_s,
                });
            }
        }
        map.insert(system.to_owned(), now);
        Ok(previous)
    }

    fn release_poll_now(&self, system: &str, previous: Option<Instant>) {
        let mut map = self.poll_now.lock().unwrap_or_else(|e| e.into_inner());
        match previous {
            Some(at) => map.insert(system.to_owned(), at),
            None => map.remove(system),
        };
    }
}

/// Body of the alert commands without fields (`acknowledge`, `unacknowledge`, `unassign`) and
/// of `poll-now`: `{}` or no body at all.
#[derive(Debug, Default, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct EmptyBody {}

/// Body of `POST /api/v1/alerts/{id}/assign`.
#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct AssignBody {
    /// Who the alert is assigned to (free text, 1 to 128 characters).
    pub assignee: String,
}

/// Body of `POST /api/v1/alerts/{id}/comment`.
#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct CommentBody {
    /// The comment (1 to 4000 characters).
    pub text: String,
}

/// Body of the bulk routes: the alerts (their `id` in `GET /api/v1/alerts`), and the
/// assignee (`bulk/assign`) or the text (`bulk/comment`).
#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct BulkBody {
    /// 1 to 1000 alert ids, each once.
    pub alerts: Vec<i64>,
    /// `bulk/assign` only. (`skip_serializing_if` keeps it optional in the document, which is
    /// generated for serialization.)
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub assignee: Option<String>,
    /// `bulk/comment` only.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub text: Option<String>,
}

/// Body of `POST /api/v1/assignees/forget`.
#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct ForgetBody {
    /// The name to remove from the previously used assignees.
    pub assignee: String,
}

/// The 202 answer of every command route.
#[derive(Debug, Serialize, JsonSchema)]
pub struct CommandsAccepted {
    /// The commands' ids (their event ids; bulk: one per alert, in the request's order),
    /// acknowledged by JetStream. The writer applies them next; the audit log shows the outcome.
    pub command_ids: Vec<String>,
}

/// The JSON schema of a command route's request body.
pub fn request_schema(
    route: RouteId,
    generator: &mut schemars::generate::SchemaGenerator,
) -> Option<schemars::Schema> {
    match route {
        RouteId::Acknowledge | RouteId::Unacknowledge | RouteId::Unassign | RouteId::PollNow => {
            Some(generator.subschema_for::<EmptyBody>())
        }
        RouteId::Assign => Some(generator.subschema_for::<AssignBody>()),
        RouteId::Comment => Some(generator.subschema_for::<CommentBody>()),
        RouteId::BulkAcknowledge
        | RouteId::BulkUnacknowledge
        | RouteId::BulkAssign
        | RouteId::BulkUnassign
        | RouteId::BulkComment => Some(generator.subschema_for::<BulkBody>()),
        RouteId::ForgetAssignee => Some(generator.subschema_for::<ForgetBody>()),
        _ => None,
    }
}

/// The command kind of a command route.
pub fn kind_of(route: RouteId) -> Option<CommandKind> {
    Some(match route {
        RouteId::Acknowledge | RouteId::BulkAcknowledge => CommandKind::Acknowledge,
        RouteId::Unacknowledge | RouteId::BulkUnacknowledge => CommandKind::Unacknowledge,
        RouteId::Assign | RouteId::BulkAssign => CommandKind::Assign,
        RouteId::Unassign | RouteId::BulkUnassign => CommandKind::Unassign,
        RouteId::Comment | RouteId::BulkComment => CommandKind::Comment,
        RouteId::PollNow => CommandKind::PollNow,
        RouteId::ForgetAssignee => CommandKind::ForgetAssignee,
        _ => return None,
    })
}

fn parse_body<T: DeserializeOwned + Default>(body: &[u8]) -> ApiResult<T> {
    if body.iter().all(u8::is_ascii_whitespace) {
        return Ok(T::default());
    }
    parse_required(body)
}

fn parse_required<T: DeserializeOwned>(body: &[u8]) -> ApiResult<T> {
    serde_json::from_slice(body).map_err(|e| ApiError::bad(format!("invalid JSON body: {e}")))
}

/// The `{id}` of an alert route.
fn alert_path_id(id: Option<&str>) -> ApiResult<i64> {
    match id.map(|t| (t, t.parse::<i64>())) {
        Some((_, Ok(n))) if n > 0 => Ok(n),
        Some((t, _)) => Err(ApiError::bad(format!(
            "invalid alert id {t:?}: expected the id of an alert in GET /api/v1/alerts"
        ))),
        None => Err(ApiError::bad("missing alert id")),
    }
}

crate::row_struct! {
    struct InstanceRow {
        id: i64,
        system_id: String,
        alert_id: String,
        first_seen: i64,
    }
}

/// The alert instances of `ids` (in their order); 404 naming every unknown id.
async fn resolve(st: &AppState, ids: &[i64]) -> ApiResult<Vec<(String, AlertInstance)>> {
    let mut sql = Sql::new("SELECT id, system_id, alert_id, first_seen FROM alerts WHERE id IN ");
    sql.bind_list(ids.iter().copied());
    let rows = st.db.fetch_all_as::<InstanceRow>(&sql).await?;
    let by_id: HashMap<i64, InstanceRow> = rows.into_iter().map(|r| (r.id, r)).collect();
    let missing: Vec<String> = ids
        .iter()
        .filter(|id| !by_id.contains_key(id))
        .map(i64::to_string)
        .collect();
    if !missing.is_empty() {
        return Err(ApiError::NotFound(format!(
            "unknown alert id{} {}",
            if missing.len() == 1 { "" } else { "s" },
            missing.join(", ")
        )));
    }
    Ok(ids
        .iter()
        .filter_map(|id| by_id.get(id))
        .map(|r| {
            (
                r.system_id.clone(),
                AlertInstance {
                    alert_id: r.alert_id.clone(),
                    opened_at: r.first_seen,
                },
            )
        })
        .collect())
}

fn record(kind: CommandKind, actor: &str) -> CommandRecord {
    CommandRecord {
        kind,
        actor: actor.to_owned(),
        alert: None,
        assignee: None,
        comment: None,
    }
}

/// A command route: `actor` is the name of the operator token the request presented.
pub async fn handle(
    st: &AppState,
    route: RouteId,
    id: Option<&str>,
    actor: &str,
    body: &[u8],
) -> ApiResult<Response> {
    let Some(kind) = kind_of(route) else {
        return Err(ApiError::NotFound("not a command route".into()));
    };
    // Each command as (target system, record), all checked before anything is published.
    let mut commands: Vec<(String, CommandRecord)> = Vec::new();
    let mut poll_now: Option<String> = None;
    match route {
        RouteId::Acknowledge | RouteId::Unacknowledge | RouteId::Unassign => {
            let alert = alert_path_id(id)?;
            let EmptyBody {} = parse_body(body)?;
            for (system, instance) in resolve(st, &[alert]).await? {
                let mut r = record(kind, actor);
                r.alert = Some(instance);
                commands.push((system, r));
            }
        }
        RouteId::Assign => {
            let alert = alert_path_id(id)?;
            let b: AssignBody = parse_required(body)?;
            for (system, instance) in resolve(st, &[alert]).await? {
                let mut r = record(kind, actor);
                r.alert = Some(instance);
                r.assignee = Some(b.assignee.trim().to_owned());
                commands.push((system, r));
            }
        }
        RouteId::Comment => {
            let alert = alert_path_id(id)?;
            let b: CommentBody = parse_required(body)?;
            for (system, instance) in resolve(st, &[alert]).await? {
                let mut r = record(kind, actor);
                r.alert = Some(instance);
                r.comment = Some(b.text.clone());
                commands.push((system, r));
            }
        }
        RouteId::BulkAcknowledge
        | RouteId::BulkUnacknowledge
        | RouteId::BulkAssign
        | RouteId::BulkUnassign
        | RouteId::BulkComment => {
            let b: BulkBody = parse_required(body)?;
            if b.alerts.is_empty() || b.alerts.len() > MAX_BULK {
                return Err(ApiError::bad(format!(
                    "alerts must list 1 to {MAX_BULK} alert ids"
                )));
            }
            let mut seen = std::collections::HashSet::new();
            if let Some(dup) = b.alerts.iter().find(|a| !seen.insert(**a)) {
                return Err(ApiError::bad(format!("alert id {dup} is listed twice")));
            }
            let wants_assignee = kind == CommandKind::Assign;
            let wants_text = kind == CommandKind::Comment;
            if b.assignee.is_some() != wants_assignee {
                return Err(ApiError::bad(if wants_assignee {
                    "bulk/assign needs an assignee"
                } else {
                    "assignee is only for bulk/assign"
                }));
            }
            if b.text.is_some() != wants_text {
                return Err(ApiError::bad(if wants_text {
                    "bulk/comment needs a text"
                } else {
                    "text is only for bulk/comment"
                }));
            }
            // Field checks before the lookup: a bad text is a 400 whatever the ids.
            let mut template = record(kind, actor);
            template.assignee = b.assignee.map(|a| a.trim().to_owned());
            template.comment = b.text;
            check_fields(&template)?;
            for (system, instance) in resolve(st, &b.alerts).await? {
                let mut r = template.clone();
                r.alert = Some(instance);
                commands.push((system, r));
            }
        }
        RouteId::PollNow => {
            let system = system_path_id(id)?;
            let EmptyBody {} = parse_body(body)?;
            require_system(st, &system).await?;
            commands.push((system.clone(), record(kind, actor)));
            poll_now = Some(system);
        }
        RouteId::ForgetAssignee => {
            let b: ForgetBody = parse_required(body)?;
            let mut r = record(kind, actor);
            r.assignee = Some(b.assignee.trim().to_owned());
            commands.push((FLEET_TARGET.to_owned(), r));
        }
        _ => return Err(ApiError::NotFound("not a command route".into())),
    }
    for (system, r) in &commands {
        r.validate(system).map_err(ApiError::BadRequest)?;
    }
    let reserved = match &poll_now {
        Some(system) => Some(st.commands.reserve_poll_now(system)?),
        None => None,
    };
    let published = publish(st, commands).await;
    if published.is_err() {
        st.metrics.commands_unavailable.inc();
    }
    if let (Err(_), Some(system), Some(previous)) = (&published, &poll_now, reserved) {
        st.commands.release_poll_now(system, previous);
    }
    let command_ids = published?;
    let mut resp = json_response(StatusCode::ACCEPTED, &CommandsAccepted { command_ids });
    resp.headers_mut()
        .insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    Ok(resp)
}

/// The checks of [`CommandRecord::validate`] that do not need the alert (bulk routes check the
/// text or assignee before resolving the ids).
fn check_fields(template: &CommandRecord) -> ApiResult<()> {
    let mut probe = template.clone();
    if probe.kind.targets_alert() {
        probe.alert = Some(AlertInstance {
            alert_id: "probe".into(),
            opened_at: 1,
        });
    }
    probe.validate("probe").map_err(ApiError::BadRequest)
}

/// Publishes the commands in order, each acknowledged by JetStream before the next; the ids on
/// success. Nothing is sent unless NATS is connected; a failure names the ids accepted before.
async fn publish(st: &AppState, commands: Vec<(String, CommandRecord)>) -> ApiResult<Vec<String>> {
    let mut messages = Vec::with_capacity(commands.len());
    for (system, body) in commands {
        let subject = body.kind.subject(&system);
        let envelope = Envelope::new(&st.commands.instance_id, &system, body);
        let payload = sdash_proto::encode(&envelope).map_err(|e| {
            tracing::error!(error = %e, "encoding a command failed");
            ApiError::Internal
        })?;
        messages.push((subject, envelope.event_id, payload));
    }
    let client = match &st.hub {
        None => {
            return Err(ApiError::CommandsUnavailable {
                message: "the bus is unavailable: commands need NATS, and this server runs without it (--no-stream); nothing was published".into(),
                accepted: Vec::new(),
            });
        }
        Some(hub) => hub.client(),
    };
    let Some(client) = client else {
        return Err(ApiError::CommandsUnavailable {
            message:
                "the bus is unavailable: NATS is not connected, nothing was published; try again"
                    .into(),
            accepted: Vec::new(),
        });
    };
    let js = jetstream::new(client.clone());
    let timeout = st.commands.publish_timeout;
    let total = messages.len();
    let mut accepted: Vec<String> = Vec::with_capacity(total);
    for (n, (subject, id, payload)) in messages.into_iter().enumerate() {
        // A client that is not connected would queue the message and send it on reconnect,
        // after this request was answered 503: publish only while connected.
        if client.connection_state() != async_nats::connection::State::Connected {
            return Err(unavailable(
                "NATS is not connected, nothing was published".into(),
                n,
                total,
                accepted,
            ));
        }
        let message = jetstream::message::PublishMessage::build()
            .payload(payload.into())
            .message_id(&id);
        let result = tokio::time::timeout(timeout, async {
            js.send_publish(subject, message)
                .await
                .map_err(|e| e.to_string())?
                .await
                .map_err(|e| e.to_string())
        })
        .await;
        match result {
            Ok(Ok(_ack)) => {
                st.metrics.commands_published.inc();
                accepted.push(id);
            }
            Ok(Err(e)) => {
                tracing::warn!(error = %e, "publishing a command failed");
                return Err(unavailable(
                    format!("JetStream refused the command ({e})"),
                    n,
                    total,
                    accepted,
                ));
            }
            Err(_) => {
                tracing::warn!(
                    timeout_ms = timeout.as_millis() as u64,
                    "no PubAck for a command"
                );
                return Err(unavailable(
                    format!(
                        "JetStream did not acknowledge command {} within {} ms (the stream may be missing)",
                        n + 1,
                        timeout.as_millis()
                    ),
                    n,
                    total,
                    accepted,
                ));
            }
        }
    }
    Ok(accepted)
}

/// The 503 of a failed publish: `n` of `total` commands were acknowledged before (`accepted`).
fn unavailable(why: String, n: usize, total: usize, accepted: Vec<String>) -> ApiError {
    let message = if accepted.is_empty() {
        format!("the bus is unavailable: {why}; no command was acknowledged, try again")
    } else {
        format!(
            "the bus is unavailable: {why}; {n} of {total} commands were published (command_ids), the others were not acknowledged: retry those"
        )
    };
    ApiError::CommandsUnavailable { message, accepted }
}

/// A previously used assignee.
#[derive(Debug, Clone, Serialize, JsonSchema)]
pub struct Assignee {
    pub name: String,
    /// When a command last used the name.
    pub last_used_at: String,
    /// When a command last used the name (ms since the epoch).
    pub last_used_at_ms: i64,
}

/// `GET /api/v1/assignees`
#[derive(Debug, Clone, Serialize, JsonSchema)]
pub struct AssigneeList {
    /// Most recently used first (at most 1000).
    pub items: Vec<Assignee>,
}

crate::row_struct! {
    struct AssigneeRow {
        name: String,
        last_used_at: i64,
    }
}

/// `GET /api/v1/assignees`
pub async fn assignees(st: &AppState, h: &HeaderMap) -> ApiResult<Response> {
    let rows = st
        .db
        .fetch_all_as::<AssigneeRow>(&Sql::new(
            "SELECT name, last_used_at FROM assignees ORDER BY last_used_at DESC, name LIMIT 1000",
        ))
        .await?;
    let items = rows
        .into_iter()
        .map(|r| Assignee {
            name: r.name,
            last_used_at: rfc3339(r.last_used_at),
            last_used_at_ms: r.last_used_at,
        })
        .collect();
    Ok(json_ok(h, &AssigneeList { items }))
}

/// One command of the audit log, as the writer recorded it.
#[derive(Debug, Clone, Serialize, JsonSchema)]
pub struct AuditEntry {
    pub command_id: String,
    #[schemars(schema_with = "command_kind")]
    pub kind: String,
    /// The target system, or `_fleet` for assignee-list commands.
    pub system_id: String,
    /// Who gave it (the operator token's name).
    pub actor: String,
    /// Alert commands: the vendor alert id of the instance.
    pub alert_id: Option<String>,
    /// Alert commands: when the instance opened (its `first_seen`).
    pub alert_opened_at: Option<String>,
    /// Alert commands: when the instance opened (ms since the epoch).
    pub alert_opened_at_ms: Option<i64>,
    pub assignee: Option<String>,
    pub comment: Option<String>,
    /// When the command was given.
    pub issued_at: String,
    /// When the command was given (ms since the epoch).
    pub issued_at_ms: i64,
    /// When the writer recorded it.
    pub recorded_at: String,
    /// When the writer recorded it (ms since the epoch).
    pub recorded_at_ms: i64,
    /// The process that published it (an API instance, an import).
    pub publisher: String,
    /// `applied`, `refused`, `dispatched` (poll-now handed to collectors) or `no_collector`.
    #[schemars(schema_with = "command_outcome")]
    pub outcome: String,
    /// Why it was refused, or a note.
    pub reason: Option<String>,
}

fn command_kind(_: &mut schemars::generate::SchemaGenerator) -> schemars::Schema {
    schemars::json_schema!({"type": "string", "enum": COMMAND_KINDS})
}

fn command_outcome(_: &mut schemars::generate::SchemaGenerator) -> schemars::Schema {
    schemars::json_schema!({"type": "string", "enum": COMMAND_OUTCOMES})
}

pub type AuditEntryList = Page<AuditEntry>;

crate::row_struct! {
    struct AuditRow {
        command_id: String,
        kind: String,
        system_id: String,
        actor: String,
        alert_id: Option<String>,
        alert_opened_at: Option<i64>,
        assignee: Option<String>,
        comment: Option<String>,
        issued_at: i64,
        recorded_at: i64,
        publisher: String,
        outcome: String,
        reason: Option<String>,
    }
}

const AUDIT_PAGING: Keyset = Keyset {
    time_column: "recorded_at",
    id_column: "command_id",
};

/// `GET /api/v1/audit`
pub async fn audit(st: &AppState, p: &Params, h: &HeaderMap) -> ApiResult<Response> {
    let limit = limit_param(st, p)?;
    let system = match p.get("system") {
        Some(FLEET_TARGET) => Some(FLEET_TARGET.to_owned()),
        _ => p.system_id("system")?,
    };
    let actor = p.get("actor").map(str::to_owned);
    let kinds = p.enums(
        "kind",
        |k| CommandKind::parse(k).map(CommandKind::as_str),
        COMMAND_KINDS,
    )?;
    let outcomes = p.enums(
        "outcome",
        |o| COMMAND_OUTCOMES.iter().find(|x| **x == o).copied(),
        COMMAND_OUTCOMES,
    )?;
    let cursor = Keyset::cursor::<String>(p)?;
    let mut sql = Sql::new(
        "SELECT command_id, kind, system_id, actor, alert_id, alert_opened_at, assignee, comment, \
         issued_at, recorded_at, publisher, outcome, reason FROM command_audit WHERE 1=1",
    );
    if let Some(system) = system {
        sql.push(" AND system_id = ").bind(system);
    }
    if let Some(actor) = actor {
        sql.push(" AND actor = ").bind(actor);
    }
    if !kinds.is_empty() {
        sql.push(" AND kind IN ").bind_list(kinds);
    }
    if !outcomes.is_empty() {
        sql.push(" AND outcome IN ").bind_list(outcomes);
    }
    AUDIT_PAGING.finish_query(&mut sql, cursor, limit);
    let rows = st.db.fetch_all_as::<AuditRow>(&sql).await?;
    let page: AuditEntryList = Keyset::page(
        rows,
        limit,
        |r| (r.recorded_at, r.command_id.clone()),
        |r| AuditEntry {
            command_id: r.command_id,
            kind: r.kind,
            system_id: r.system_id,
            actor: r.actor,
            alert_id: r.alert_id,
            alert_opened_at: r.alert_opened_at.map(rfc3339),
            alert_opened_at_ms: r.alert_opened_at,
            assignee: r.assignee,
            comment: r.comment,
            issued_at: rfc3339(r.issued_at),
            issued_at_ms: r.issued_at,
            recorded_at: rfc3339(r.recorded_at),
            recorded_at_ms: r.recorded_at,
            publisher: r.publisher,
            outcome: r.outcome,
            reason: r.reason,
        },
    );
    Ok(json_ok(h, &page))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn poll_now_is_limited_per_system_and_a_failed_publish_gives_the_slot_back() {
        let c = Commands::new(
            "api".into(),
            Duration::from_secs(5),
            Duration::from_secs(30),
        );
        let first = c.reserve_poll_now("fa-1");
        assert!(matches!(first, Ok(None)));
        match c.reserve_poll_now("fa-1") {
            Err(ApiError::TooManyRequests { retry_after_s, .. }) => {
                assert!((29..=30).contains(&retry_after_s), "{retry_after_s}")
            }
            other => panic!("{other:?}"),
        }
        assert!(
            c.reserve_poll_now("fa-2").is_ok(),
            "other systems are not limited"
        );
        c.release_poll_now("fa-2", None);
        assert!(c.reserve_poll_now("fa-2").is_ok(), "released");
        let none = Commands::new("api".into(), Duration::from_secs(5), Duration::ZERO);
        assert!(none.reserve_poll_now("fa-1").is_ok());
        assert!(none.reserve_poll_now("fa-1").is_ok(), "no limit at 0 s");
    }

    #[test]
    fn every_command_route_has_a_kind_and_a_body() {
        let mut generator = schemars::generate::SchemaGenerator::default();
        for route in crate::routes::ROUTES {
            assert_eq!(
                route.id.is_command(),
                kind_of(route.id).is_some(),
                "{}",
                route.path
            );
            assert_eq!(
                route.id.is_command(),
                request_schema(route.id, &mut generator).is_some(),
                "{}",
                route.path
            );
        }
    }
}
