-- Imported history (`sdash-writer import`, sdash.v1.history.*): events imported with
-- --keep-imported-events are kept by event retention (neither deleted by age nor counted or
-- deleted by the per-system limit). Live events are never kept.
ALTER TABLE events ADD COLUMN keep BOOLEAN NOT NULL DEFAULT FALSE;
