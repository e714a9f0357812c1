-- Purged observation rows are kept for `include_purged` listings until `retention.history_ms`
-- after their purge; this index finds the ones whose time is up.
CREATE INDEX observations_purged ON observations(purged_at_ms) WHERE retention_state = 'purged';
