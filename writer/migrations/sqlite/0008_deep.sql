-- Deeper state of every array (#17): topology, pools, provisioned capacity and performance in the
-- latest state; per-pool capacity and array performance with history in tiers like capacity
-- (writer/README.md, "Pools and performance"). The PostgreSQL migration mirrors this one
-- (here the hourly tables are WITHOUT ROWID: their key is their only index; the tables that
-- retention deletes through a time index keep their rowid, like capacity_samples).

-- Latest state: the snapshot's new fields, as they came (JSON of the proto types).
ALTER TABLE system_state ADD COLUMN provisioned_bytes BIGINT;
ALTER TABLE system_state ADD COLUMN cluster_type TEXT;                  -- topology.cluster_type, for filters
ALTER TABLE system_state ADD COLUMN topology TEXT;                      -- JSON proto Topology, NULL when never read
ALTER TABLE system_state ADD COLUMN pools TEXT NOT NULL DEFAULT '[]';   -- JSON array of proto Pool
ALTER TABLE system_state ADD COLUMN performance TEXT;                   -- JSON proto Performance, NULL when absent

-- Per-pool capacity rollups (pool = '<kind>:<name>', e.g. 'aggregate:aggr1'), of every sample,
-- hourly (kept like capacity_hourly) and daily (kept like capacity_daily). The key has the period
-- before the pool: a system's pools over a range are one range of the key (the API's reads), and
-- so are a system's old hours (retention, like capacity_hourly without an index on `hour`).
CREATE TABLE pool_hourly (
    system_id    TEXT NOT NULL,
    pool         TEXT NOT NULL,
    hour         BIGINT NOT NULL,            -- ms since the epoch, start of the UTC hour
    samples      BIGINT NOT NULL,
    used_min     BIGINT NOT NULL,
    used_max     BIGINT NOT NULL,
    used_sum     REAL NOT NULL,  -- average = used_sum / samples
    last_at      BIGINT NOT NULL,            -- observed_at of the last sample of the hour
    total_bytes  BIGINT NOT NULL,            -- of the last sample
    used_bytes   BIGINT NOT NULL,            -- of the last sample
    PRIMARY KEY (system_id, hour, pool)
) WITHOUT ROWID;
CREATE TABLE pool_daily (
    system_id    TEXT NOT NULL,
    pool         TEXT NOT NULL,
    day          TEXT NOT NULL,              -- YYYY-MM-DD (UTC)
    samples      BIGINT NOT NULL,
    used_min     BIGINT NOT NULL,
    used_max     BIGINT NOT NULL,
    used_sum     REAL NOT NULL,
    last_at      BIGINT NOT NULL,
    total_bytes  BIGINT NOT NULL,
    used_bytes   BIGINT NOT NULL,
    PRIMARY KEY (system_id, day, pool)
);
-- Retention of daily rollups finds old days through it (like capacity_daily_day).
CREATE INDEX pool_daily_day ON pool_daily (day);

-- Raw array performance, one row per snapshot with performance (every field may be NULL: the
-- vendor did not report it); kept for the raw performance window.
CREATE TABLE performance_samples (
    system_id          TEXT NOT NULL,
    observed_at        BIGINT NOT NULL,
    read_iops          REAL,
    write_iops         REAL,
    read_latency_us    REAL,
    write_latency_us   REAL,
    read_bytes_per_s   REAL,
    write_bytes_per_s  REAL,
    PRIMARY KEY (system_id, observed_at)
);
CREATE INDEX performance_samples_observed_at ON performance_samples (observed_at);

-- Performance rollups: for each metric m, m_n (samples that had it), m_sum (average = m_sum /
-- m_n) and m_max, per UTC hour (performance_hourly: hour, ms since the epoch) or UTC day
-- (performance_daily: day, YYYY-MM-DD).
CREATE TABLE performance_hourly (
    system_id    TEXT NOT NULL,
    hour         BIGINT NOT NULL,            -- ms since the epoch, start of the UTC hour
    samples      BIGINT NOT NULL,
    last_at      BIGINT NOT NULL,            -- observed_at of the last sample counted
    read_iops_n   BIGINT NOT NULL DEFAULT 0,
    read_iops_sum REAL NOT NULL DEFAULT 0,
    read_iops_max REAL,
    write_iops_n   BIGINT NOT NULL DEFAULT 0,
    write_iops_sum REAL NOT NULL DEFAULT 0,
    write_iops_max REAL,
    read_latency_us_n   BIGINT NOT NULL DEFAULT 0,
    read_latency_us_sum REAL NOT NULL DEFAULT 0,
    read_latency_us_max REAL,
    write_latency_us_n   BIGINT NOT NULL DEFAULT 0,
    write_latency_us_sum REAL NOT NULL DEFAULT 0,
    write_latency_us_max REAL,
    read_bytes_per_s_n   BIGINT NOT NULL DEFAULT 0,
    read_bytes_per_s_sum REAL NOT NULL DEFAULT 0,
    read_bytes_per_s_max REAL,
    write_bytes_per_s_n   BIGINT NOT NULL DEFAULT 0,
    write_bytes_per_s_sum REAL NOT NULL DEFAULT 0,
    write_bytes_per_s_max REAL,
    PRIMARY KEY (system_id, hour)
) WITHOUT ROWID;
CREATE TABLE performance_daily (
    system_id    TEXT NOT NULL,
    day          TEXT NOT NULL,              -- YYYY-MM-DD (UTC)
    samples      BIGINT NOT NULL,
    last_at      BIGINT NOT NULL,            -- observed_at of the last sample counted
    read_iops_n   BIGINT NOT NULL DEFAULT 0,
    read_iops_sum REAL NOT NULL DEFAULT 0,
    read_iops_max REAL,
    write_iops_n   BIGINT NOT NULL DEFAULT 0,
    write_iops_sum REAL NOT NULL DEFAULT 0,
    write_iops_max REAL,
    read_latency_us_n   BIGINT NOT NULL DEFAULT 0,
    read_latency_us_sum REAL NOT NULL DEFAULT 0,
    read_latency_us_max REAL,
    write_latency_us_n   BIGINT NOT NULL DEFAULT 0,
    write_latency_us_sum REAL NOT NULL DEFAULT 0,
    write_latency_us_max REAL,
    read_bytes_per_s_n   BIGINT NOT NULL DEFAULT 0,
    read_bytes_per_s_sum REAL NOT NULL DEFAULT 0,
    read_bytes_per_s_max REAL,
    write_bytes_per_s_n   BIGINT NOT NULL DEFAULT 0,
    write_bytes_per_s_sum REAL NOT NULL DEFAULT 0,
    write_bytes_per_s_max REAL,
    PRIMARY KEY (system_id, day)
);
-- Retention of daily rollups finds old days through it.
CREATE INDEX performance_daily_day ON performance_daily (day);
