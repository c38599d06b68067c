-- Tables whose rows are updated in place on every poll (the latest state, open alerts' last_seen,
-- today's capacity rollup, the pipeline's status) leave room on each page, so that PostgreSQL can
-- keep the new row version on the same page (a HOT update: no new index entries, no index
-- clean-up). With full pages every update also inserts into every index of the table.
ALTER TABLE system_state SET (fillfactor = 50);
ALTER TABLE alerts SET (fillfactor = 80);
ALTER TABLE capacity_daily SET (fillfactor = 80);
ALTER TABLE collectors SET (fillfactor = 50);
ALTER TABLE pipeline_status SET (fillfactor = 50);
