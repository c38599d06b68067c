-- Capacity storage tiers (writer/README.md, "Capacity tiers"): raw samples only where they carry
-- information (a deadband and a maximum gap), hourly rollups for about 400 days, daily rollups
-- for years. The SQLite migration mirrors this one.

-- Hourly rollups per system, of EVERY sample (stored raw or not), like capacity_daily.
CREATE TABLE capacity_hourly (
    system_id    TEXT NOT NULL,
    hour         BIGINT NOT NULL,            -- ms since the epoch, start of the UTC hour
    samples      BIGINT NOT NULL,
    used_min     BIGINT NOT NULL,
    used_max     BIGINT NOT NULL,
    used_sum     DOUBLE PRECISION NOT NULL,  -- average = used_sum / samples
    last_at      BIGINT NOT NULL,            -- observed_at of the last sample of the hour
    total_bytes  BIGINT NOT NULL,            -- of the last sample
    used_bytes   BIGINT NOT NULL,            -- of the last sample
    free_bytes   BIGINT NOT NULL,            -- of the last sample
    PRIMARY KEY (system_id, hour)
);

-- The hours the raw samples still cover.
INSERT INTO capacity_hourly (system_id, hour, samples, used_min, used_max, used_sum, last_at, total_bytes, used_bytes, free_bytes)
SELECT g.system_id, g.hour, g.samples, g.used_min, g.used_max, g.used_sum, g.last_at, s.total_bytes, s.used_bytes, s.free_bytes
FROM (
    SELECT system_id, observed_at / 3600000 * 3600000 AS hour, count(*) AS samples, min(used_bytes) AS used_min,
           max(used_bytes) AS used_max, sum(used_bytes)::double precision AS used_sum, max(observed_at) AS last_at
    FROM capacity_samples GROUP BY system_id, observed_at / 3600000
) g
JOIN capacity_samples s ON s.system_id = g.system_id AND s.observed_at = g.last_at;

-- Where a daily row came from: 'measured' (rolled up by the writer from samples) or 'imported'
-- (history imported from the predecessor, `sdash-writer import`). A measured sample for an
-- imported day replaces the imported values.
ALTER TABLE capacity_daily ADD COLUMN source TEXT NOT NULL DEFAULT 'measured';
-- Readers of the fleet's latest days (WHERE day >= ...).
CREATE INDEX capacity_daily_day ON capacity_daily (day);

-- Set to the commit time by every transaction that writes a capacity_daily row older than
-- yesterday (UTC): readers may cache older days until it moves.
ALTER TABLE pipeline_status ADD COLUMN capacity_past_version BIGINT NOT NULL DEFAULT 0;
