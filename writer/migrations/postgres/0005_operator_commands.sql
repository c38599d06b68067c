-- Operator commands (sdash.v1.command.*, proto/SCHEMA.md "CommandRecord"), applied and audited
-- by the writer (writer/README.md, "Operator commands"). The SQLite migration mirrors this one.

-- The state operators give an alert instance. Each `alerts` row is one instance (system_id,
-- alert_id, first_seen): a reopened alert is a new row, so it starts unacknowledged and
-- unassigned. NULL = none.
ALTER TABLE alerts ADD COLUMN acknowledged_by TEXT;     -- actor of the acknowledgement
ALTER TABLE alerts ADD COLUMN acknowledged_at BIGINT;   -- when it was given (the command's observed_at)
ALTER TABLE alerts ADD COLUMN assignee TEXT;            -- free text
ALTER TABLE alerts ADD COLUMN assigned_by TEXT;         -- actor of the assignment
ALTER TABLE alerts ADD COLUMN assigned_at BIGINT;       -- when it was given
CREATE INDEX alerts_instance ON alerts (system_id, alert_id, first_seen);

-- The comment thread of each alert instance, append-only.
CREATE TABLE alert_comments (
    id          BIGSERIAL PRIMARY KEY,              -- thread order
    command_id  TEXT NOT NULL UNIQUE,               -- the comment command's event_id
    system_id   TEXT NOT NULL,
    alert_id    TEXT NOT NULL,
    opened_at   BIGINT NOT NULL,                    -- the instance: alerts.first_seen
    author      TEXT NOT NULL,                      -- the command's actor
    at          BIGINT NOT NULL,                    -- when it was given (the command's observed_at)
    body        TEXT NOT NULL
);
CREATE INDEX alert_comments_instance ON alert_comments (system_id, alert_id, opened_at, id);

-- Previously used assignees, offered for autocomplete: `assign` and `remember_assignee` add or
-- refresh a name, `forget_assignee` deletes it (assignments stay as they are).
CREATE TABLE assignees (
    name          TEXT PRIMARY KEY,
    last_used_at  BIGINT NOT NULL                   -- the newest command that used it
);

-- Every command the writer consumed, applied or not, once (command_id is the idempotency key).
CREATE TABLE command_audit (
    command_id       TEXT PRIMARY KEY,              -- the command's event_id
    kind             TEXT NOT NULL,                 -- acknowledge | unacknowledge | assign | unassign | comment | poll_now | forget_assignee | remember_assignee
    system_id        TEXT NOT NULL,                 -- the target system, or _fleet
    actor            TEXT NOT NULL,
    alert_id         TEXT,                          -- alert commands: the instance
    alert_opened_at  BIGINT,
    assignee         TEXT,
    comment          TEXT,
    issued_at        BIGINT NOT NULL,               -- the envelope's observed_at
    recorded_at      BIGINT NOT NULL,               -- when the writer committed it
    publisher        TEXT NOT NULL,                 -- the envelope's collector_id (an API instance, an import)
    outcome          TEXT NOT NULL                  -- applied | refused | dispatched | no_collector (poll_now)
                     CHECK (outcome IN ('applied', 'refused', 'dispatched', 'no_collector')),
    reason           TEXT                           -- why it was refused (unknown system, unknown alert, alert cleared, ...), or a note
);
CREATE INDEX command_audit_recorded ON command_audit (recorded_at DESC);
CREATE INDEX command_audit_system ON command_audit (system_id, recorded_at DESC);
