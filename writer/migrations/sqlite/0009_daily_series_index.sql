-- A system's daily capacity series (the API's charts: `WHERE system_id = ? AND day BETWEEN ...`)
-- read from one index range. capacity_daily keeps its rowid (retention deletes old days through
-- capacity_daily_day by rowid), and its rows lie in the order they were written, day by day for
-- the whole fleet: without this index, two years of one system are 731 rows on about as many
-- table pages, one page read per point (BENCHMARKS.md, history-scale: the 2-year chart of one
-- system on SQLite). The index holds every column the series reads, so the table is not read.
-- PostgreSQL needs none: its 2-year chart met the target without it.
CREATE INDEX capacity_daily_series ON capacity_daily
    (system_id, day, samples, used_min, used_max, used_sum, last_at, total_bytes, used_bytes, free_bytes);
