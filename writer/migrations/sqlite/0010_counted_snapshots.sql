-- The ledger of counted snapshots (writer/README.md, "Capacity tiers"; store/ledger.rs): every
-- snapshot the tiers counted whose observed_at is above the floor. A snapshot older than one
-- its system's tiers already counted is counted when it is not here (it arrived late: a
-- message JetStream delivered again after the writer gave up on a pull, a slower collector's
-- publish) and skipped when it is (a redelivery of a committed batch). The writer prunes rows
-- older than --late-sample-window and raises the floor with them.
-- Keyed by time first: pruning deletes a range of the key (the PostgreSQL migration mirrors
-- this one; here WITHOUT ROWID, the key is its only index).
CREATE TABLE counted_snapshots (
    observed_at  BIGINT NOT NULL,
    system_id    TEXT NOT NULL,
    PRIMARY KEY (observed_at, system_id)
) WITHOUT ROWID;

-- Every snapshot counted with a later observed_at than floor_at is in counted_snapshots; at or
-- below it only a snapshot newer than what its system's tiers counted is counted. A new database
-- starts at 0. One with history starts above everything it may have counted before there was a
-- ledger: its newest snapshot, and the clock now plus the 10 minutes a snapshot may be ahead
-- (sdash_proto::codec::MAX_FUTURE_SKEW_MS). (EXISTS and the state table only: cheap on any size.)
CREATE TABLE counted_snapshots_floor (
    id        SMALLINT PRIMARY KEY CHECK (id = 1),
    floor_at  BIGINT NOT NULL
);
INSERT INTO counted_snapshots_floor (id, floor_at)
SELECT 1, CASE WHEN EXISTS (SELECT 1 FROM system_state) OR EXISTS (SELECT 1 FROM capacity_samples)
    OR EXISTS (SELECT 1 FROM capacity_hourly) OR EXISTS (SELECT 1 FROM capacity_daily)
    OR EXISTS (SELECT 1 FROM pool_hourly) OR EXISTS (SELECT 1 FROM performance_samples)
    OR EXISTS (SELECT 1 FROM performance_hourly)
  THEN max(COALESCE((SELECT MAX(observed_at) FROM system_state), 0), CAST(strftime('%s', 'now') AS INTEGER) * 1000 + 600000)
  ELSE 0 END;
