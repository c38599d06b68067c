-- The writer's outbox of derived changes (sdash.v1.change.<system_id>, proto/SCHEMA.md
-- "ChangeRecord"): written in the transaction that derived them, published after the commit
-- with Nats-Msg-Id = event_id, deleted once JetStream acknowledged them (docs/operations.md,
-- "Change outbox"). Numbered like the PostgreSQL migration (SQLite has no 0003).
CREATE TABLE change_outbox (
    seq         INTEGER PRIMARY KEY AUTOINCREMENT, -- publication order, never reused
    event_id    TEXT NOT NULL UNIQUE,              -- the change's id, sent as Nats-Msg-Id
    system_id   TEXT NOT NULL,                     -- the subject's last token
    kind        TEXT NOT NULL,                     -- alert_opened | alert_cleared | status_changed | ...
    payload     BLOB NOT NULL,                     -- the encoded Envelope<ChangeRecord>
    created_at  BIGINT NOT NULL                    -- when the writer committed it
);
