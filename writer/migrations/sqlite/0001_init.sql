-- sdash schema v1 (SQLite). Timestamps are ms since the Unix epoch (UTC); capacity is bytes.
-- The PostgreSQL migration mirrors this table for table, column for column.

-- Inventory records (sdash.v1.system.*), newest observation wins.
CREATE TABLE systems (
    id          TEXT PRIMARY KEY,
    name        TEXT NOT NULL,
    vendor      TEXT NOT NULL,
    address     TEXT NOT NULL DEFAULT '',
    tags        TEXT NOT NULL DEFAULT '{}',      -- JSON object of string tags
    interval_s  BIGINT NOT NULL DEFAULT 0,
    enabled     BOOLEAN NOT NULL DEFAULT TRUE,
    removed     BOOLEAN NOT NULL DEFAULT FALSE,
    updated_at  BIGINT NOT NULL                  -- observed_at of the record applied
);

-- Latest snapshot per system (sdash.v1.snapshot.*), updated only by a newer observation.
CREATE TABLE system_state (
    system_id       TEXT PRIMARY KEY,
    event_id        TEXT NOT NULL,
    collector_id    TEXT NOT NULL,
    observed_at     BIGINT NOT NULL,
    vendor          TEXT NOT NULL,
    status          TEXT NOT NULL,               -- online | unreachable | auth_failed | error
    hardware        TEXT NOT NULL,               -- ok | warning | error | unknown
    cluster         TEXT NOT NULL,
    name            TEXT,
    version         TEXT,
    model           TEXT,
    serial          TEXT,
    total_bytes     BIGINT,
    used_bytes      BIGINT,
    free_bytes      BIGINT,
    data_reduction  REAL,
    alert_count     INTEGER NOT NULL DEFAULT 0,
    components      TEXT NOT NULL DEFAULT '[]',  -- JSON array of proto Component
    alerts          TEXT NOT NULL DEFAULT '[]',  -- JSON array of proto Alert (open alerts)
    poll_ms         BIGINT NOT NULL DEFAULT 0,
    error           TEXT,
    last_online_at  BIGINT                       -- observed_at of the newest online snapshot
);

-- Raw capacity samples, one per snapshot with capacity; kept for the raw retention window.
CREATE TABLE capacity_samples (
    system_id    TEXT NOT NULL,
    observed_at  BIGINT NOT NULL,
    total_bytes  BIGINT NOT NULL,
    used_bytes   BIGINT NOT NULL,
    free_bytes   BIGINT NOT NULL,
    PRIMARY KEY (system_id, observed_at)
);
CREATE INDEX capacity_samples_observed_at ON capacity_samples (observed_at);

-- Daily rollups per system (UTC days), kept for years.
CREATE TABLE capacity_daily (
    system_id        TEXT NOT NULL,
    day              TEXT NOT NULL,             -- YYYY-MM-DD (UTC)
    samples          BIGINT NOT NULL,
    used_min         BIGINT NOT NULL,
    used_max         BIGINT NOT NULL,
    used_sum         REAL NOT NULL, -- average = used_sum / samples
    last_at          BIGINT NOT NULL,           -- observed_at of the last sample of the day
    total_bytes      BIGINT NOT NULL,           -- of the last sample
    used_bytes       BIGINT NOT NULL,           -- of the last sample
    free_bytes       BIGINT NOT NULL,           -- of the last sample
    PRIMARY KEY (system_id, day)
);

-- Alert history derived from consecutive snapshots; an open alert has cleared_at NULL.
CREATE TABLE alerts (
    id               INTEGER PRIMARY KEY AUTOINCREMENT,
    system_id        TEXT NOT NULL,
    alert_id         TEXT NOT NULL,
    severity         TEXT NOT NULL,
    vendor_severity  TEXT NOT NULL,
    title            TEXT NOT NULL,
    component        TEXT,
    opened_at        BIGINT,
    first_seen       BIGINT NOT NULL,
    last_seen        BIGINT NOT NULL,
    cleared_at       BIGINT
);
CREATE UNIQUE INDEX alerts_open_unique ON alerts (system_id, alert_id) WHERE cleared_at IS NULL;
CREATE INDEX alerts_first_seen ON alerts (first_seen DESC);

-- Changes of status, hardware or cluster health between consecutive snapshots.
CREATE TABLE status_transitions (
    id          INTEGER PRIMARY KEY AUTOINCREMENT,
    system_id   TEXT NOT NULL,
    at          BIGINT NOT NULL,
    field       TEXT NOT NULL,                  -- status | hardware | cluster
    from_value  TEXT,
    to_value    TEXT NOT NULL,
    event_id    TEXT NOT NULL,                  -- the snapshot that showed the change
    UNIQUE (event_id, field)
);
CREATE INDEX status_transitions_system ON status_transitions (system_id, at DESC);

-- System log events (sdash.v1.event.*).
CREATE TABLE events (
    event_id      TEXT PRIMARY KEY,
    system_id     TEXT NOT NULL,
    collector_id  TEXT NOT NULL,
    observed_at   BIGINT NOT NULL,
    level         TEXT NOT NULL,                -- debug | info | warning | error | critical
    level_rank    SMALLINT NOT NULL,            -- 0 (debug) .. 4 (critical), for minimum-level filters
    category      TEXT NOT NULL,
    message       TEXT NOT NULL,
    details       TEXT,
    http_status   INTEGER,
    endpoint      TEXT
);
CREATE INDEX events_system_time ON events (system_id, observed_at DESC, event_id DESC);
CREATE INDEX events_time ON events (observed_at DESC, event_id DESC);

-- Collector heartbeats (sdash.v1.collector.*), newest wins.
CREATE TABLE collectors (
    id            TEXT PRIMARY KEY,
    version       TEXT NOT NULL,
    systems       TEXT NOT NULL DEFAULT '[]',   -- JSON array of owned system ids
    polls         BIGINT NOT NULL DEFAULT 0,
    failures      BIGINT NOT NULL DEFAULT 0,
    outbox_depth  BIGINT NOT NULL DEFAULT 0,
    started_at    BIGINT NOT NULL DEFAULT 0,
    last_seen     BIGINT NOT NULL
);

-- Messages that could not be decoded or validated, kept with their raw bytes.
CREATE TABLE dead_letters (
    id           INTEGER PRIMARY KEY AUTOINCREMENT,
    stream_seq   BIGINT UNIQUE,                 -- JetStream sequence: a redelivery is stored once
    subject      TEXT NOT NULL,
    payload      BLOB NOT NULL,
    reason       TEXT NOT NULL,
    deliveries   BIGINT NOT NULL,
    received_at  BIGINT NOT NULL
);

-- One row describing the writer's progress, for the API's pipeline status.
CREATE TABLE pipeline_status (
    id               INTEGER PRIMARY KEY CHECK (id = 1),
    writer_id        TEXT NOT NULL,
    last_commit_at   BIGINT NOT NULL,
    last_stream_seq  BIGINT NOT NULL,
    consumer_pending BIGINT NOT NULL DEFAULT 0
);
