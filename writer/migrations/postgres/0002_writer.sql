-- Writer additions (sdash-writer): indexes its retention and history queries need.
CREATE INDEX IF NOT EXISTS dead_letters_received_at ON dead_letters (received_at);
CREATE INDEX IF NOT EXISTS alerts_system ON alerts (system_id, first_seen DESC);
